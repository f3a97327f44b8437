import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app';
import { mintSystem } from '../helpers/factories';

let t: TestApp;
beforeEach(() => {
  t = createTestApp({ config: { maxBodyBytes: 4096 } });
});
afterEach(() => t.close());

function expectProblem(res: { status: number; headers: Headers; json: any }, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.json).toMatchObject({ status, code, type: `urn:prefix-handles:problem:${code}` });
  expect(typeof res.json.title).toBe('string');
  expect(typeof res.json.detail).toBe('string');
  expect(res.json.requestId).toBeTruthy();
}

describe('problem+json errors', () => {
  it('a bad ref in the path is named as path:ref, on describe and on expand alike', async () => {
    const { client } = t.tenant();
    for (const path of ['/v1/handles/art_x@0', '/v1/handles/art_x@0/expand?format=anthropic']) {
      const res = await client.get(path);
      expectProblem(res, 422, 'invalid_request');
      expect(res.json.errors.map((e: { pointer: string }) => e.pointer)).toEqual(['path:ref']);
    }
  });

  it('a handle id of the wrong kind, or with a version, where the route acts on a handle: 422 naming path:id', async () => {
    const { client } = t.tenant();
    const art = (await client.post('/v1/artifacts', { kind: 'system', content: 'x' })).json.id as string;
    const ses = (await client.post('/v1/sessions', { messages: [{ role: 'user', content: 'hi' }] })).json.id as string;
    const cases: Array<[string, string, object | undefined, RegExp]> = [
      ['delete', `/v1/handles/${art}@1`, undefined, /^expected a handle id/],
      ['post', `/v1/sessions/${ses}@1/messages`, { messages: [{ role: 'user', content: 'x' }] }, /^expected a session id/],
      ['post', `/v1/sessions/${art}/messages`, { messages: [{ role: 'user', content: 'x' }] }, /^expected a session id/],
      ['post', `/v1/artifacts/${ses}/versions`, { content: 'y' }, /^expected an artifact id/],
      ['post', `/v1/bundles/${art}/versions`, { members: [art] }, /^expected a bundle id/],
      ['get', `/v1/reports/handles/${art}@1`, undefined, /^expected a handle id/],
      ['get', `/v1/requests/${art}`, undefined, /^expected a request id/],
    ];
    for (const [method, path, body, detail] of cases) {
      const res = method === 'get' ? await client.get(path) : method === 'delete' ? await client.delete(path) : await client.post(path, body);
      expectProblem(res, 422, 'invalid_request');
      // /v1/handles/{ref}: one parameter name for the path, for GET and DELETE alike.
      const pointer = path.startsWith('/v1/handles/') ? 'path:ref' : 'path:id';
      expect(res.json.errors, `${method} ${path}`).toEqual([{ pointer, detail: expect.stringMatching(detail) }]);
      expect(res.json.detail).toBe('1 invalid field in the path');
    }
    // An id with a character too many or too few (a typo, a copy cut short): the detail says what an id is made of.
    for (const [path, pointer] of [[`/v1/reports/handles/${art}x`, 'path:id'], [`/v1/handles/${art.slice(0, -1)}`, 'path:ref'], [`/v1/requests?handle=${ses}x`, 'query:handle'], ['/v1/requests/req_typo', 'path:id']] as const) {
      const res = await client.get(path);
      expectProblem(res, 422, 'invalid_request');
      expect(res.json.errors, path).toEqual([{ pointer, detail: expect.stringContaining('_ and 21 letters or digits') }]);
    }
    // Nothing changed: the artifact still exists at version 1, the session too.
    expect((await client.get(`/v1/handles/${art}`)).json.latest_version).toBe(1);
    expect((await client.get(`/v1/handles/${ses}`)).json.latest_version).toBe(1);
  });

  it('answers malformed JSON with 400 malformed_json and writes nothing', async () => {
    const { client } = t.tenant();
    const res = await client.post('/v1/artifacts', '{"kind": "system", "content": ');
    expectProblem(res, 400, 'malformed_json');
    // The parser's own words, as on the routes that read their body themselves.
    expect(res.json.detail).toBe('The request body is not valid JSON: Unexpected end of JSON input');
    const misplaced = await client.post('/v1/bundles', '{"name": "b" "members": []}');
    expectProblem(misplaced, 400, 'malformed_json');
    expect(misplaced.json.detail).toMatch(/^The request body is not valid JSON: .* after property value in JSON at position 13/);
    expect((await client.get('/v1/handles')).json.handles).toEqual([]);
  });

  it('refuses a body that is not UTF-8 (invalid, overlong, a surrogate) with 400 and writes nothing', async () => {
    const { key, client } = t.tenant();
    for (const bad of [[0xff, 0xfe], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]) {
      const head = Buffer.from('{"kind":"system","content":"a');
      const body = Buffer.concat([head, Buffer.from(bad), Buffer.from('b"}')]);
      const res = await t.app.request('/v1/artifacts', { method: 'POST', body, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' } });
      expect(res.status, String(bad)).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'malformed_json', detail: `The request body is not valid UTF-8 (at byte ${head.length}): send the text as UTF-8` });
    }
    // Without a key, the key is what is wrong.
    const anonymous = await t.app.request('/v1/artifacts', { method: 'POST', body: Buffer.from([0x7b, 0xff, 0x7d]), headers: { 'content-type': 'application/json' } });
    expect(anonymous.status).toBe(401);
    expect((await client.get('/v1/handles')).json.handles).toEqual([]);
    // Valid UTF-8 in every width is stored as sent.
    const ok = await client.post('/v1/artifacts', { kind: 'system', content: 'é € 𝄞 a' });
    expect(ok.status).toBe(201);
    expect(ok.json.size).toBe(Buffer.byteLength('é € 𝄞 a'));
  });

  it('answers an oversize body with 413 payload_too_large', async () => {
    const { client } = t.tenant();
    const res = await client.post('/v1/artifacts', { kind: 'system', content: 'x'.repeat(5000) });
    expectProblem(res, 413, 'payload_too_large');
    expect((await client.get('/v1/handles')).json.handles).toEqual([]);
  });

  it('answers a non-JSON content type with 415', async () => {
    const { client } = t.tenant();
    const res = await client.post('/v1/artifacts', 'kind=system', { 'content-type': 'application/x-www-form-urlencoded' });
    expectProblem(res, 415, 'unsupported_media_type');
  });

  it('answers JSON declared in a charset other than UTF-8 with 415, before anything is read as UTF-8', async () => {
    const { client } = t.tenant();
    for (const path of ['/v1/artifacts', '/v1/render', '/v1/usage']) {
      const res = await client.post(path, Buffer.from('{"kind":"system","content":"caf\xe9"}', 'latin1'), { 'content-type': 'application/json; charset=latin1' });
      expectProblem(res, 415, 'unsupported_media_type');
      expect(res.json.detail, path).toContain('charset=latin1');
    }
    expect((await client.get('/v1/handles')).json.handles).toEqual([]);
    expect((await client.post('/v1/artifacts', '{"kind":"system","content":"x"}', { 'content-type': 'application/json; charset="UTF-8"' })).status).toBe(201);
    // UTF-8's other label, and ASCII (UTF-8 as it is), as clients send them.
    for (const charset of ['utf8', 'UTF8', 'us-ascii'])
      expect((await client.post('/v1/artifacts', '{"kind":"system","content":"x"}', { 'content-type': `application/json; charset=${charset}` })).status, charset).toBe(201);
  });

  it.each(['application/json ; charset=utf-8', 'application/json;', 'application/json;charset=utf-8;', 'Application/JSON'])('accepts every JSON type form HTTP allows (%s) on the schema-validated routes', async (type) => {
    const { client } = t.tenant();
    const sys = await client.post('/v1/artifacts', JSON.stringify({ kind: 'system', content: 'x' }), { 'content-type': type });
    expect(sys.status, sys.text).toBe(201);
    const bundle = await client.post('/v1/bundles', JSON.stringify({ members: [sys.json.id] }), { 'content-type': type });
    expect(bundle.status, bundle.text).toBe(201);
  });

  it('one leading byte-order mark is ignored; two are malformed JSON, on every route', async () => {
    const { client } = t.tenant();
    const one = await client.post('/v1/artifacts', '\ufeff{"kind":"system","content":"x"}', { 'content-type': 'application/json' });
    expect(one.status, one.text).toBe(201);
    for (const path of ['/v1/artifacts', '/v1/sessions', '/v1/render', '/v1/usage']) {
      const two = await client.post(path, '\ufeff\ufeff{"kind":"system","content":"x"}', { 'content-type': 'application/json' });
      expectProblem(two, 400, 'malformed_json');
      // The same words on the routes ahead of the middleware (render, usage) as behind it.
      expect(two.json.detail, path).toBe('The request body is not valid JSON: it starts with two byte-order marks');
    }
    expect((await client.get('/v1/handles')).json.handles).toHaveLength(1);
  });

  it('a POST with no body at all, where one is required, is a 422 naming what is missing (never a 201 or a 400)', async () => {
    const { client } = t.tenant();
    for (const path of ['/v1/sessions', '/v1/render', '/v1/usage', '/v1/artifacts', '/v1/bundles']) {
      const res = await client.post(path);
      expectProblem(res, 422, 'invalid_request');
      expect(res.json.errors.length, path).toBeGreaterThan(0);
    }
    expect((await client.get('/v1/handles')).json.handles).toEqual([]);
  });

  it('lists every failing JSON pointer on 422', async () => {
    const { client } = t.tenant();
    const res = await client.post('/v1/sessions', {
      messages: [{ role: 'robot', content: 'x' }, { role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/bmp', data: '!!' } }] }],
      surprise: 1,
    });
    expectProblem(res, 422, 'invalid_request');
    const pointers = res.json.errors.map((e: { pointer: string }) => e.pointer);
    expect(pointers).toEqual(expect.arrayContaining(['/messages/0/role', '/surprise']));
    expect(pointers.some((p: string) => p.startsWith('/messages/1/content/0/source'))).toBe(true);
  });

  it('refuses blank text wherever it would be kept and sent back (providers refuse empty text blocks)', async () => {
    const { client } = t.tenant();
    const session = (await client.post('/v1/sessions', { messages: [{ role: 'user', content: 'hi' }] })).json;
    const cases: Array<[string, object, string]> = [
      ['/v1/artifacts', { kind: 'messages', content: [{ role: 'user', content: '' }] }, '/content/0/content'],
      ['/v1/artifacts', { kind: 'messages', content: [{ role: 'user', content: [{ type: 'text', text: '  ' }] }] }, '/content/0/content/0/text'],
      ['/v1/artifacts', { kind: 'system', content: ' \n ' }, '/content'],
      [`/v1/sessions/${session.id}/messages`, { messages: [{ role: 'assistant', content: '' }] }, '/messages/0/content'],
    ];
    for (const [path, body, pointer] of cases) {
      const res = await client.post(path, body);
      expectProblem(res, 422, 'invalid_request');
      expect(res.json.errors, path).toContainEqual({ pointer, detail: expect.stringMatching(/non-whitespace text/) });
    }
    expect((await client.get('/v1/handles')).json.handles).toHaveLength(1);
    expect((await client.get(`/v1/handles/${session.id}`)).json.latest_version).toBe(1);
  });

  it('rejects lone surrogates instead of repairing them', async () => {
    const { client } = t.tenant();
    const res = await client.post('/v1/artifacts', '{"kind":"system","content":"bad \\ud800 text"}');
    expectProblem(res, 422, 'invalid_request');
    expect(res.json.errors[0].pointer).toBe('/content');
    const tools = await client.post('/v1/artifacts', '{"kind":"tools","content":[{"name":"f","input_schema":{"\\udc00":1}}]}');
    expectProblem(tools, 422, 'invalid_request');
    expect(tools.json.errors[0].pointer).toBe('/content/0/input_schema/\ufffd');
    expect((await client.get('/v1/handles')).json.handles).toEqual([]);
  });

  it('answers unknown routes with 404 route_not_found', async () => {
    const { client, key } = t.tenant();
    expectProblem(await client.get('/v1/nothing-here'), 404, 'route_not_found');
    expectProblem(await client.get('/nothing'), 404, 'route_not_found');
    // A route that exists, asked with another method: 405 with the methods it takes.
    const get = await client.get('/v1/usage');
    expectProblem(get, 405, 'method_not_allowed');
    expect(get.headers.get('allow')).toBe('POST');
    const post = await client.post('/v1/handles/art_AAAAAAAAAAAAAAAAAAAAA', {});
    expectProblem(post, 405, 'method_not_allowed');
    expect(post.headers.get('allow')).toBe('GET, DELETE');
    expect((await client.post('/v1/handles/art_AAAAAAAAAAAAAAAAAAAAA/expand', {})).headers.get('allow')).toBe('GET');
    // Under /proxy an SDK reads `error.message`: our problems carry it there too.
    const sdk = await client.get('/proxy/openai/v1/chat/completions', { 'x-ph-key': key });
    expectProblem(sdk, 405, 'method_not_allowed');
    expect(sdk.json.error).toEqual({ type: 'method_not_allowed', code: 'method_not_allowed', message: sdk.json.detail });
    const embeddings = await client.post('/proxy/openai/v1/embeddings', {}, { 'x-ph-key': key });
    expect(embeddings.json.error.code).toBe('route_not_found');
    // The base URL is right there: the 404 says the proxy does not serve that endpoint, not to change the base URL.
    expect(embeddings.json.error.message).toMatch(/the base URL is right, but the proxy serves only POST chat\/completions, POST responses and GET models there: call embeddings at the provider itself/);
    const batches = await client.post('/proxy/anthropic/v1/messages/batches', {}, { 'x-ph-key': key });
    expect(batches.json.detail).toMatch(/the proxy serves only POST messages, POST messages\/count_tokens and GET models there: call messages\/batches at the provider itself/);
    expect((await client.get('/proxy/openai/v1/responses/resp_123', { 'x-ph-key': key })).json.detail).toMatch(/call responses\/resp_123 at the provider itself/);
    // A base URL off by a segment (OpenAI's without /v1, Anthropic's with it): the 404 says which one to set.
    const noV1 = await client.post('/proxy/openai/chat/completions', {}, { 'x-ph-key': key });
    expectProblem(noV1, 404, 'route_not_found');
    expect(noV1.json.detail).toMatch(/the OpenAI SDK's base URL is http:\/\/[^ ]+\/proxy\/openai\/v1 \(with \/v1\)/);
    const twoV1 = await client.post('/proxy/anthropic/v1/v1/messages', {}, { 'x-ph-key': key });
    expect(twoV1.json.error.message).toMatch(/the Anthropic SDK's base URL is http:\/\/[^ ]+\/proxy\/anthropic \(without \/v1/);
    expect((await client.get('/v1/nothing-here')).json.error).toBeUndefined();
  });

  it('a 404 or 410 for what the path names points at the path parameter', async () => {
    const { client } = t.tenant();
    const missing = 'art_AAAAAAAAAAAAAAAAAAAAA';
    for (const [res, pointer] of [
      // /v1/handles/{ref}: one parameter name for the path, for GET and DELETE alike.
      [await client.delete(`/v1/handles/${missing}`), 'path:ref'],
      [await client.post(`/v1/artifacts/${missing}/versions`, { content: 'x' }), 'path:id'],
      [await client.post('/v1/sessions/ses_AAAAAAAAAAAAAAAAAAAAA/messages', { messages: [{ role: 'user', content: 'x' }] }), 'path:id'],
      [await client.get(`/v1/reports/handles/${missing}`), 'path:id'],
      [await client.get('/v1/requests/req_AAAAAAAAAAAAAAAAAAAAA'), 'path:id'],
    ] as const) {
      expect(res.status).toBe(404);
      expect(res.json.errors).toEqual([{ pointer, detail: expect.stringMatching(/does not exist$/) }]);
    }
    const sys = await mintSystem(client);
    expect((await client.delete(`/v1/handles/${sys.id}`)).status).toBe(204);
    const gone = await client.post(`/v1/artifacts/${sys.id}/versions`, { content: 'again' });
    expect([gone.status, gone.json.errors[0]?.pointer]).toEqual([410, 'path:id']);
  });

  it('answers a malformed ref with 422 and a foreign-looking ref with 404', async () => {
    const { client } = t.tenant();
    expectProblem(await client.get('/v1/handles/art_short'), 422, 'invalid_request');
    expectProblem(await client.get('/v1/handles/art_AAAAAAAAAAAAAAAAAAAAA'), 404, 'not_found');
    const sys = await mintSystem(client);
    expectProblem(await client.get(`/v1/handles/${sys.id}@2`), 404, 'not_found');
  });

  it('never answers 5xx for hostile input', async () => {
    const { client } = t.tenant();
    const bodies = [
      'null', '[]', '"x"', '1', '{}', '{"kind":null}', '{"kind":"tools","content":{}}', '{"kind":"messages","content":[{}]}',
      '{"members":"x"}', '{"__proto__":{"x":1},"kind":"system","content":"a"}', '{"kind":"system","content":"a","name":""}',
    ];
    for (const path of ['/v1/artifacts', '/v1/bundles', '/v1/sessions', '/v1/tenants'])
      for (const body of bodies) {
        const res = await client.post(path, body);
        expect(res.status, `${path} ${body}`).toBeLessThan(500);
        expect(res.status, `${path} ${body}`).toBeGreaterThanOrEqual(200);
      }
  });
});

describe('docs', () => {
  it('serves an OpenAPI 3.1 document naming every route, and a local docs page', async () => {
    const res = await t.app.request('/openapi.json');
    const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe('3.1.0');
    const routes = ['/v1/artifacts', '/v1/artifacts/{id}/versions', '/v1/bundles', '/v1/sessions', '/v1/sessions/{id}/messages', '/v1/handles', '/v1/handles/{ref}', '/v1/handles/{ref}/expand', '/v1/tenants'];
    const served = ['/v1/render', '/v1/usage', '/v1/usage/batch', '/v1/reports', '/proxy/anthropic/v1/messages', '/proxy/openai/v1/chat/completions', '/proxy/openai/v1/responses', '/proxy/anthropic/v1/messages/count_tokens', '/proxy/openai/v1/models', '/proxy/openai/v1/models/{id}', '/proxy/anthropic/v1/models/{id}'];
    for (const p of [...routes, ...served]) expect(Object.keys(doc.paths), p).toContain(p);
    // A batch's records are checked one by one, but documented as usage reports.
    const schemas = (doc as unknown as { components: { schemas: Record<string, any> } }).components.schemas;
    expect(schemas.UsageBatch.properties.records.items).toEqual({ $ref: '#/components/schemas/UsageReport' });
    expect(schemas.UsageReport.properties.request_id).toBeDefined();
    const docs = await t.app.request('/docs');
    expect(docs.status).toBe(200);
    const html = await docs.text();
    expect(html).not.toMatch(/https?:\/\//);
    expect((await t.app.request('/docs/swagger-ui-bundle.js')).status).toBe(200);
    expect((await t.app.request('/favicon.ico')).status).toBe(204);
    expect(await (await t.app.request('/healthz')).json()).toEqual({ status: 'ok' });
  });
});
