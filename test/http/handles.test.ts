import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createTestApp, type TestApp } from '../helpers/app';
import { png } from '../helpers/media';
import { assistantMessage, mintArtifact, mintBundle, mintDocument, mintSystem, mintTools, startSession, userMessage } from '../helpers/factories';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('artifacts', () => {
  it('mints version 1 with the digest and size of the exact bytes', async () => {
    const { client } = t.tenant();
    const text = 'Système: réponds en français.\n';
    const a = await mintArtifact(client, 'system', text, { name: 'fr' });
    expect(a.id).toMatch(/^art_[0-9A-Za-z]{21}$/);
    expect(a.version).toBe(1);
    expect(a.ref).toBe(`${a.id}@1`);
    expect(a.digest).toBe(sha(text));
    expect(a.size).toBe(Buffer.byteLength(text));
  });

  it('canonicalises JSON content so key order does not change the bytes', async () => {
    const { client } = t.tenant();
    const a = await mintArtifact(client, 'tools', [{ name: 'f', input_schema: { type: 'object', properties: { b: {}, a: {} } } }]);
    const b = await mintArtifact(client, 'tools', [{ input_schema: { properties: { a: {}, b: {} }, type: 'object' }, name: 'f' }]);
    expect(a.digest).toBe(b.digest);
    expect(a.id).not.toBe(b.id);
  });

  it('makes the next version, and returns the latest unchanged for identical content', async () => {
    const { client } = t.tenant();
    const a = await mintSystem(client, 'v1 text');
    const v2 = await client.post(`/v1/artifacts/${a.id}/versions`, { content: 'v2 text' });
    expect(v2.status).toBe(201);
    expect(v2.json.version).toBe(2);
    expect(v2.json.created).toBe(true);
    const same = await client.post(`/v1/artifacts/${a.id}/versions`, { content: 'v2 text' });
    expect(same.status).toBe(200);
    expect(same.json.version).toBe(2);
    expect(same.json.created).toBe(false);
    const h = await client.get(`/v1/handles/${a.id}`);
    expect(h.json.latest_version).toBe(2);
    expect(h.json.versions.map((v: { digest: string }) => v.digest)).toEqual([sha('v1 text'), sha('v2 text')]);
    const pinned = await client.get(`/v1/handles/${a.id}@1`);
    expect(pinned.json.version.version).toBe(1);
    // ?versions=N: the newest N only (a session has one per turn); the named version is still given whole.
    await client.post(`/v1/artifacts/${a.id}/versions`, { content: 'v3 text' });
    const newest = await client.get(`/v1/handles/${a.id}@1?versions=2`);
    expect(newest.json.versions.map((v: { version: number }) => v.version)).toEqual([2, 3]);
    expect(newest.json.version.version).toBe(1);
    expect(newest.json.latest_version).toBe(3);
    expect((await client.get(`/v1/handles/${a.id}?versions=0`)).json.versions).toEqual([]);
    expect((await client.get(`/v1/handles/${a.id}?versions=9`)).json.versions).toHaveLength(3);
    for (const bad of ['-1', 'x', '1.5']) {
      const res = await client.get(`/v1/handles/${a.id}?versions=${bad}`);
      expect(res.status, bad).toBe(422);
      expect(res.json.errors[0].pointer).toMatch(/versions/);
    }
  });

  it('validates content by kind and names every failing path', async () => {
    const { client } = t.tenant();
    const res = await client.post('/v1/artifacts', {
      kind: 'tools',
      content: [{ name: 'bad name!', input_schema: {} }, { description: 3, input_schema: 'x' }],
    });
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.json.code).toBe('invalid_request');
    const pointers = res.json.errors.map((e: { pointer: string }) => e.pointer);
    expect(pointers).toEqual(expect.arrayContaining(['/content/0/name', '/content/1/name', '/content/1/description', '/content/1/input_schema']));
  });

  it('rejects a version of the wrong content kind without writing anything', async () => {
    const { client } = t.tenant();
    const a = await mintSystem(client, 'text');
    const res = await client.post(`/v1/artifacts/${a.id}/versions`, { content: [{ role: 'user', content: 'x' }] });
    expect(res.status).toBe(422);
    expect((await client.get(`/v1/handles/${a.id}`)).json.latest_version).toBe(1);
  });
});

describe('images in handles', () => {
  it('an image in a messages artifact counts as the provider bills it; the same base64 written into a document is text', async () => {
    const { client } = t.tenant();
    const data = png(640, 480, 30_000).toString('base64');
    const pictured = await mintArtifact(client, 'messages', [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data } }, { type: 'text', text: 'What is this?' }] }]);
    const written = await mintArtifact(client, 'document', `The API returned {"data":"${data}"}`);
    const tokensOf = async (id: string) => (await client.get(`/v1/handles/${id}`)).json.version.meta.tokens as Record<string, number>;
    // 640 × 480 / 750 = 410 tokens and the message around it.
    expect((await tokensOf(pictured.id)).anthropic).toBeLessThan(500);
    expect((await tokensOf(written.id)).o200k_base).toBeGreaterThan(10_000);
  });
});

describe('bundles', () => {
  it('pins each member to its current version and keeps the pin when the member moves on', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, 'sys v1');
    const tools = await mintTools(client);
    const b = await mintBundle(client, [tools.id, sys.id]);
    expect(b.members).toEqual([`${tools.id}@1`, `${sys.id}@1`]);
    await client.post(`/v1/artifacts/${sys.id}/versions`, { content: 'sys v2' });
    const before = await client.get(`/v1/handles/${b.id}/expand?format=neutral`);
    expect(JSON.parse(before.text).system).toEqual(['sys v1']);
    const v2 = await client.post(`/v1/bundles/${b.id}/versions`, { members: [tools.id, sys.id] });
    expect(v2.status).toBe(201);
    expect(v2.json.members).toEqual([`${tools.id}@1`, `${sys.id}@2`]);
    const same = await client.post(`/v1/bundles/${b.id}/versions`, { members: [tools.id, `${sys.id}@2`] });
    expect(same.status).toBe(200);
  });

  it('nests bundles and renders tools, then system, then messages whatever the member order', async () => {
    const { client } = t.tenant();
    const doc = await mintDocument(client, 'the doc');
    const sys = await mintSystem(client, 'the system');
    const tools = await mintTools(client, 'lookup');
    const inner = await mintBundle(client, [doc.id, sys.id]);
    const outer = await mintBundle(client, [inner.id, tools.id]);
    const res = await client.get(`/v1/handles/${outer.id}/expand?format=anthropic`);
    expect(res.status).toBe(200);
    expect(Object.keys(JSON.parse(res.text))).toEqual(['tools', 'system', 'messages']);
    expect(JSON.parse(res.text)).toEqual({
      tools: [{ name: 'lookup', description: 'Get the weather for a city', input_schema: expect.any(Object) }],
      system: [{ type: 'text', text: 'the system' }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'the doc' }] }],
    });
  });

  it('refuses sessions, unknown refs and versions that do not exist, pointing at the member', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client);
    const ses = await startSession(client);
    const r1 = await client.post('/v1/bundles', { members: [sys.id, ses.id] });
    expect(r1.status).toBe(422);
    expect(r1.json.errors[0].pointer).toBe('/members/1');
    const r2 = await client.post('/v1/bundles', { members: [`${sys.id}@7`] });
    expect(r2.status).toBe(404);
    expect(r2.json.errors[0].pointer).toBe('/members/0');
    const r3 = await client.post('/v1/bundles', { members: ['not-a-ref'] });
    expect(r3.status).toBe(422);
    // The same handle twice, whatever the versions: its content would be sent twice.
    await client.post(`/v1/artifacts/${sys.id}/versions`, { content: 'second' });
    const twice = await client.post('/v1/bundles', { members: [sys.id, `${sys.id}@1`] });
    expect(twice.status).toBe(422);
    expect(twice.json.errors).toEqual([{ pointer: '/members/1', detail: `${sys.id} is already member 0: its content would be sent twice` }]);
    expect((await client.get('/v1/handles')).json.handles.filter((h: { type: string }) => h.type === 'bundle')).toEqual([]);
    // The same artifact version reached through two members (a bundle that holds it already, or two such bundles).
    const inner = (await client.post('/v1/bundles', { members: [`${sys.id}@1`] })).json;
    const nested = await client.post('/v1/bundles', { members: [inner.id, `${sys.id}@1`] });
    expect(nested.json.errors).toEqual([{ pointer: '/members/1', detail: `${sys.id}@1 is also inside member 0: its content would be sent twice` }]);
    const other = (await client.post('/v1/bundles', { members: [`${sys.id}@1`], name: 'other' })).json;
    expect((await client.post('/v1/bundles', { members: [inner.id, other.id] })).json.errors[0].pointer).toBe('/members/1');
    // Another version of it is other content: allowed.
    expect((await client.post('/v1/bundles', { members: [inner.id, `${sys.id}@2`] })).status).toBe(201);
  });
});

describe('sessions', () => {
  it('appends batches as versions and each version extends the previous one', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, 'be brief');
    const base = await mintBundle(client, [sys.id]);
    const s = await startSession(client, { base: base.id, messages: [userMessage('hi')] });
    expect(s.version).toBe(1);
    expect(s.message_count).toBe(1);
    const a = await client.post(`/v1/sessions/${s.id}/messages`, { messages: [assistantMessage('hello'), userMessage('weather?')] });
    expect(a.status).toBe(201);
    expect(a.json.version).toBe(2);
    expect(a.json.message_count).toBe(3);
    expect(a.headers.get('etag')).toBe('"2"');
    for (const format of ['neutral', 'anthropic', 'openai-chat', 'openai-responses', 'gemini']) {
      const v1 = (await client.get(`/v1/handles/${s.id}@1/expand?format=${format}`)).text;
      const v2 = (await client.get(`/v1/handles/${s.id}@2/expand?format=${format}`)).text;
      expect(v2.startsWith(v1.slice(0, -2)), format).toBe(true);
    }
  });

  it('refuses an append on a stale If-Match with the current version', async () => {
    const { client } = t.tenant();
    const s = await startSession(client, { messages: [userMessage('a')] });
    const ok = await client.post(`/v1/sessions/${s.id}/messages`, { messages: [assistantMessage('b')] }, { 'if-match': '"1"' });
    expect(ok.status).toBe(201);
    const stale = await client.post(`/v1/sessions/${s.id}/messages`, { messages: [assistantMessage('c')] }, { 'if-match': '"1"' });
    expect(stale.status).toBe(409);
    expect(stale.json.code).toBe('version_conflict');
    expect(stale.json.current_version).toBe(2);
    expect(stale.json.errors).toEqual([{ pointer: 'header:if-match', detail: 'expected version 1; the latest is 2' }]);
    const h = await client.get(`/v1/handles/${s.id}`);
    expect(h.json.latest_version).toBe(2);
    expect(h.json.version.message_count).toBe(2);
  });

  it('refuses an If-Match that is not a version: half-quoted, or past what a number holds exactly', async () => {
    const { client } = t.tenant();
    const s = await startSession(client, { messages: [userMessage('a')] });
    for (const value of ['"1', '1"', '"99999999999999999999"', '"9007199254740993"', '"0"', 'W/"x"', 'W/1']) {
      const res = await client.post(`/v1/sessions/${s.id}/messages`, { messages: [assistantMessage('b')] }, { 'if-match': value });
      expect(res.status, value).toBe(422);
      expect(res.json.errors[0].pointer, value).toBe('header:if-match');
    }
    // A weak tag never matches under If-Match's strong comparison: refused, saying so.
    const weak = await client.post(`/v1/sessions/${s.id}/messages`, { messages: [assistantMessage('b')] }, { 'if-match': 'W/"1"' });
    expect(weak.status).toBe(422);
    expect(weak.json.errors).toEqual([{ pointer: 'header:if-match', detail: 'If-Match compares strong tags: a weak one (W/"1") never matches; send "1"' }]);
    for (const value of ['"1"', '2']) {
      const res = await client.post(`/v1/sessions/${s.id}/messages`, { messages: [assistantMessage(`b${value}`)] }, { 'if-match': value });
      expect(res.status, value).toBe(201);
    }
    // `*` matches any current version (RFC 9110): the append goes on as without the header.
    const any = await client.post(`/v1/sessions/${s.id}/messages`, { messages: [userMessage('c')] }, { 'if-match': '*' });
    expect(any.status, any.text).toBe(201);
    expect(any.json.version).toBe(4);
  });

  it('loses and duplicates nothing under concurrent appends', async () => {
    const { client } = t.tenant();
    const s = await startSession(client);
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => client.post(`/v1/sessions/${s.id}/messages`, { messages: [userMessage(`m${i}`)] })),
    );
    expect(results.every((r) => r.status === 201)).toBe(true);
    expect(new Set(results.map((r) => r.json.version)).size).toBe(40);
    const body = JSON.parse((await client.get(`/v1/handles/${s.id}/expand`)).text);
    const texts = body.messages.map((m: { content: string }) => m.content).sort();
    expect(texts).toEqual(Array.from({ length: 40 }, (_, i) => `m${i}`).sort());
  });

  it('only accepts a bundle as base', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client);
    const res = await client.post('/v1/sessions', { base: sys.id });
    expect(res.status).toBe(422);
    expect(res.json.errors[0].pointer).toBe('/base');
  });

  it('refuses images a provider would refuse: a URL that is not http(s), empty base64 data; nothing is written', async () => {
    const { client } = t.tenant();
    const ses = (await client.post('/v1/sessions', { messages: [{ role: 'user', content: 'hello' }] })).json;
    const image = (source: Record<string, unknown>) => ({ messages: [{ role: 'user', content: [{ type: 'image', source }] }] });
    for (const [source, pointer, detail] of [
      [{ type: 'url', url: 'ftp://example.com/a.png' }, '/messages/0/content/0/source/url', 'must be an http(s) URL'],
      [{ type: 'url', url: 'javascript:alert(1)' }, '/messages/0/content/0/source/url', 'must be an http(s) URL'],
      [{ type: 'url', url: 'file:///etc/passwd' }, '/messages/0/content/0/source/url', 'must be an http(s) URL'],
      [{ type: 'base64', media_type: 'image/png', data: '' }, '/messages/0/content/0/source/data', 'must be base64, not empty'],
    ] as const) {
      const started = await client.post('/v1/sessions', image(source));
      expect(started.status, source.type).toBe(422);
      expect(started.json.errors).toEqual([{ pointer, detail }]);
      const appended = await client.post(`/v1/sessions/${ses.id}/messages`, image(source));
      expect(appended.json.errors).toEqual([{ pointer, detail }]);
    }
    expect((await client.get(`/v1/handles/${ses.id}`)).json.latest_version).toBe(1);
    expect((await client.get('/v1/handles?kind=session')).json.handles).toHaveLength(1);
    // http and https stay accepted.
    expect((await client.post(`/v1/sessions/${ses.id}/messages`, image({ type: 'url', url: 'https://example.com/a.png' }))).status).toBe(201);
    expect((await client.post('/v1/sessions', image({ type: 'url', url: 'http://example.com/a.png' }))).status).toBe(201);
  });

  it('refuses tool calls a provider would refuse: a result answering no call before it, a call the next message leaves unanswered', async () => {
    const { client } = t.tenant();
    const call = { role: 'assistant', content: [{ type: 'tool_use', id: 'call_1', name: 'lookup', input: { q: 'x' } }] };
    const result = (id: string) => ({ role: 'user', content: [{ type: 'tool_result', tool_use_id: id, content: 'found' }] });
    const ses = (await client.post('/v1/sessions', { messages: [{ role: 'user', content: 'find x' }, call] })).json;
    // The call is the session's last message: the next append must answer it, with its id.
    const unanswered = await client.post(`/v1/sessions/${ses.id}/messages`, { messages: [{ role: 'user', content: 'never mind' }] });
    expect(unanswered.json.errors).toEqual([{ pointer: '/messages/0', detail: 'must answer the tool_use "call_1" of the message before it with a tool_result' }]);
    const wrongId = await client.post(`/v1/sessions/${ses.id}/messages`, { messages: [result('call_9')] });
    expect(wrongId.json.errors).toEqual([{ pointer: '/messages/0/content/0/tool_use_id', detail: 'answers no tool_use of the message before it ("call_9")' }]);
    expect((await client.get(`/v1/handles/${ses.id}`)).json.latest_version).toBe(1);
    expect((await client.post(`/v1/sessions/${ses.id}/messages`, { messages: [result('call_1'), { role: 'assistant', content: 'x is 4' }] })).status).toBe(201);
    // Inside one batch, and inside a messages artifact (whose first result may answer a call placed before it).
    expect((await client.post(`/v1/sessions/${ses.id}/messages`, { messages: [{ role: 'user', content: 'again' }, call, { role: 'user', content: 'no' }] })).json.errors[0].pointer).toBe('/messages/2');
    expect((await client.post('/v1/artifacts', { kind: 'messages', content: [call, { role: 'user', content: 'no' }] })).json.errors[0].pointer).toBe('/content/1');
    expect((await client.post('/v1/artifacts', { kind: 'messages', content: [result('call_1'), { role: 'assistant', content: 'ok' }] })).status).toBe(201);
    // Calls come from the assistant, results from the user and first in it, each id once: other formats cannot render the rest.
    const use = { type: 'tool_use', id: 't1', name: 'f', input: {} };
    const res1 = { type: 'tool_result', tool_use_id: 't1', content: 'r' };
    for (const [messages, pointer, detail] of [
      [[{ role: 'user', content: [use] }], '/messages/0/content/0', 'a tool_use comes from the assistant'],
      [[{ role: 'user', content: 'q' }, { role: 'assistant', content: [use, res1] }], '/messages/1/content/1', 'a tool_result comes from the user'],
      [[{ role: 'user', content: 'q' }, { role: 'assistant', content: [use, use] }], '/messages/1/content/1', '"t1" appears twice in this message'],
      [[{ role: 'user', content: 'q' }, { role: 'assistant', content: [use] }, { role: 'user', content: [{ type: 'text', text: 'here' }, res1] }], '/messages/2/content/1', "tool_result blocks come before the message's other blocks"],
    ] as const) {
      const res = await client.post('/v1/sessions', { messages });
      expect(res.json.errors, pointer).toEqual([{ pointer, detail }]);
    }
  });
});

describe('expansion', () => {
  it('serves ETag, Content-Digest and version headers and answers If-None-Match with 304', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, 'stable');
    const res = await client.get(`/v1/handles/${sys.id}/expand?format=openai-chat`);
    expect(res.status).toBe(200);
    expect(res.text).toBe('{"messages":[{"role":"system","content":"stable"}]}');
    expect(res.headers.get('etag')).toBe(`"${sha(res.text)}"`);
    expect(res.headers.get('content-digest')).toBe(`sha-256=:${createHash('sha256').update(res.text).digest('base64')}:`);
    expect(res.headers.get('x-handle-version')).toBe('1');
    const again = await client.get(`/v1/handles/${sys.id}/expand?format=openai-chat`, { 'if-none-match': res.headers.get('etag')! });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
    expect((await client.get(`/v1/handles/${sys.id}/expand?format=openai-chat`, { 'if-none-match': '*' })).status).toBe(304);
    expect((await client.get(`/v1/handles/${sys.id}/expand?format=openai-chat`, { 'if-none-match': '"other"' })).status).toBe(200);
  });

  it('refuses an unknown format', async () => {
    const { client } = t.tenant();
    const sys0 = await mintSystem(client);
    const twice = await client.get(`/v1/handles/${sys0.id}/expand?format=anthropic&format=openai-chat`);
    expect(twice.status).toBe(422);
    expect(twice.json.errors).toEqual([{ pointer: 'query:format', detail: 'give one format' }]);
    // Named twice without a value is twice too.
    expect((await client.get(`/v1/handles/${sys0.id}/expand?format=gemini&format`)).json.errors).toEqual([{ pointer: 'query:format', detail: 'give one format' }]);
    // One format, and another parameter whose value mentions format= (the cache buster, the one other it takes), is fine.
    expect((await client.get(`/v1/handles/${sys0.id}/expand?format=anthropic&_=format=1`)).status).toBe(200);
    const sys = await mintSystem(client);
    const res = await client.get(`/v1/handles/${sys.id}/expand?format=cohere`);
    expect(res.status).toBe(422);
    expect(res.json.errors[0].pointer).toBe('query:format');
  });
});

describe('listing and deleting', () => {
  it('pages through handles with a cursor and filters by kind', async () => {
    const { client } = t.tenant();
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await mintSystem(client)).id);
    await mintDocument(client);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await client.get(`/v1/handles?kind=system&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      seen.push(...res.json.handles.map((h: { id: string }) => h.id));
      cursor = res.json.next_cursor;
    } while (cursor);
    expect(seen.sort()).toEqual(ids.sort());
  });

  it('takes a limit written as a plain number only', async () => {
    const { client } = t.tenant();
    for (const limit of ['0x10', '%205', '1e2', '0', '501', '2.5']) {
      const res = await client.get(`/v1/handles?limit=${limit}`);
      expect(res.status, limit).toBe(422);
      expect(res.json.errors[0].pointer, limit).toBe('query:limit');
    }
    expect((await client.get('/v1/handles?limit=500')).status).toBe(200);
  });

  it('deletes, then answers 410 gone; refuses while pinned, naming the referrers', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client);
    const b = await mintBundle(client, [sys.id]);
    const s = await startSession(client, { base: b.id });
    const inUse = await client.delete(`/v1/handles/${sys.id}`);
    expect(inUse.status).toBe(409);
    expect(inUse.json.code).toBe('handle_in_use');
    expect(inUse.json.referrers).toEqual([b.id]);
    expect((await client.delete(`/v1/handles/${b.id}`)).json.referrers).toEqual([s.id]);
    expect((await client.delete(`/v1/handles/${s.id}`)).status).toBe(204);
    expect((await client.delete(`/v1/handles/${b.id}`)).status).toBe(204);
    expect((await client.delete(`/v1/handles/${sys.id}`)).status).toBe(204);
    const gone = await client.get(`/v1/handles/${sys.id}/expand`);
    expect(gone.status).toBe(410);
    expect(gone.json.code).toBe('gone');
  });
});

describe('tenancy', () => {
  it("never lets one tenant see, expand, list, version or delete another's handles", async () => {
    const a = t.tenant('a');
    const b = t.tenant('b');
    const sys = await mintSystem(a.client);
    const missing = await b.client.get('/v1/handles/art_000000000000000000000');
    for (const res of [
      await b.client.get(`/v1/handles/${sys.id}`),
      await b.client.get(`/v1/handles/${sys.id}/expand`),
      await b.client.post(`/v1/artifacts/${sys.id}/versions`, { content: 'x' }),
      await b.client.delete(`/v1/handles/${sys.id}`),
    ]) {
      expect(res.status).toBe(404);
      expect(res.json.code).toBe('not_found');
    }
    expect(missing.status).toBe(404);
    expect((await b.client.post('/v1/bundles', { members: [sys.id] })).status).toBe(404);
    expect((await b.client.get('/v1/handles')).json.handles).toEqual([]);
    expect((await a.client.get(`/v1/handles/${sys.id}`)).status).toBe(200);
  });
});
