import http from 'node:http';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import { createSimulatorApp } from '../../src/simulator/server';
import { createTestApp, listen, type TestApp } from '../helpers/app';

// What the fuzz of every route (fuzz.test.ts) found, each pinned by the input that showed it.

let t: TestApp;
let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  t?.close();
});

/** POSTs over one kept-alive connection (one socket for every call), as SDKs and browsers send them. */
function keptAlive(base: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const post = (path: string, body: string, headers: Record<string, string>) =>
    new Promise<{ status: number; connection: string | undefined } | { error: string }>((resolve) => {
      const req = http.request(`${base}${path}`, { method: 'POST', agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection }));
      });
      req.on('error', (e) => resolve({ error: e.message }));
      req.end(body);
    });
  return { post, close: () => agent.destroy() };
}

describe('a refusal before the body was read', () => {
  it('closes the connection and says so: the next call on a kept-alive connection does not fail', async () => {
    // Found as `fetch failed: other side closed` on the call after a 413 of a 300 KB body to POST /v1/tenants.
    t = createTestApp({ config: { maxBodyBytes: 100_000 } });
    const server = await listen(t.app);
    stop = server.close;
    const me = t.tenant();
    const json = { 'content-type': 'application/json', authorization: `Bearer ${me.key}` };
    const big = JSON.stringify({ kind: 'system', content: 'x'.repeat(400_000) });
    const fits = JSON.stringify({ kind: 'system', content: 'x'.repeat(60_000) });
    const small = JSON.stringify({ kind: 'system', content: 'ok' });
    const client = keptAlive(server.base);
    const refusals: Array<[string, string, Record<string, string>, number]> = [
      ['/v1/artifacts', big, json, 413],
      ['/v1/artifacts', fits, { ...json, 'content-type': 'text/plain' }, 415],
      ['/v1/artifacts', fits, { 'content-type': 'application/json' }, 401],
      ['/v1/tenants', fits, { 'content-type': 'application/json' }, 401],
      ['/proxy/anthropic/v1/messages/count_tokens', fits, { 'content-type': 'application/json' }, 401],
      // Routes ahead of the middleware (fastRoute) too: a model call, a render, a usage report.
      ['/proxy/anthropic/v1/messages', fits, { 'content-type': 'application/json' }, 401],
      ['/v1/render', big, json, 413],
      ['/v1/usage', fits, { 'content-type': 'application/json' }, 401],
      ['/ui/sign-in', big, { 'content-type': 'application/x-www-form-urlencoded' }, 413],
    ];
    for (const [path, body, headers, status] of refusals) {
      expect(await client.post(path, body, headers), path).toEqual({ status, connection: 'close' });
      expect(await client.post('/v1/artifacts', small, json), `the call after ${path}`).toEqual({ status: 201, connection: 'keep-alive' });
    }
    // A refusal of a body read whole keeps the connection.
    expect(await client.post('/v1/artifacts', JSON.stringify({ kind: 'nope', content: 'x' }), json)).toEqual({ status: 422, connection: 'keep-alive' });
    client.close();
  });
});

describe("a problem's requestId", () => {
  it('on GET /v1/handles/{ref}/expand is the client x-request-id only when it is a sane one, as on every other route', async () => {
    // Found as `"requestId":"z(M{{Xg"`: the expand route, ahead of the request-id middleware, echoed any id it was sent.
    t = createTestApp();
    const server = await listen(t.app);
    stop = server.close;
    for (const path of ['/v1/handles/art_x/expand', '/v1/handles']) {
      const odd = await fetch(`${server.base}${path}`, { headers: { 'x-request-id': 'z(M{{Xg' } });
      const body = (await odd.json()) as { code: string; requestId: string };
      expect([odd.status, body.code], path).toEqual([401, 'unauthorized']);
      expect(body.requestId, path).toMatch(/^[0-9a-f-]{36}$/);
      expect(odd.headers.get('x-request-id'), path).toBe(body.requestId);
      const sane = await fetch(`${server.base}${path}`, { headers: { 'x-request-id': 'trace-42' } });
      expect(((await sane.json()) as { requestId: string }).requestId, path).toBe('trace-42');
    }
  });
});

describe('the built-in provider simulator', () => {
  it('refuses a body nested past 512 levels with a 400, as a provider does (the proxy count_tokens, which renders it, with its own 400 invalid_request)', async () => {
    // Found as a 500 "Internal simulator error" (a stack overflow) for POST /proxy/anthropic/v1/messages/count_tokens
    // with `"content":[[[[…` some thousands of levels deep.
    const sim = await listen(createSimulatorApp({ catalog: new ModelCatalog(loadCatalog()) }));
    t = createTestApp({ config: { anthropicBaseUrl: sim.base, openaiBaseUrl: sim.base } });
    const server = await listen(t.app);
    stop = async () => (await server.close(), await sim.close());
    const me = t.tenant();
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    const body = (model: string) => `{"model":"${model}","max_tokens":8,"messages":[{"role":"user","content":${deep}}]}`;
    const key = { 'content-type': 'application/json', 'x-api-key': 'sk-ant-x', authorization: 'Bearer sk-x' };
    // The proxy renders count_tokens' body as it would the call's (its handles), so it is the service that refuses it.
    const viaProxy = await fetch(`${server.base}/proxy/anthropic/v1/messages/count_tokens`, {
      method: 'POST',
      headers: { ...key, 'x-ph-key': me.key },
      body: body('claude-sonnet-4-5'),
    });
    expect(viaProxy.status).toBe(400);
    expect(((await viaProxy.json()) as { code: string }).code).toBe('invalid_request');
    const calls: Array<[string, string, Record<string, string>]> = [
      [`${sim.base}/v1/messages/count_tokens`, body('claude-sonnet-4-5'), key],
      [`${sim.base}/v1/messages`, body('claude-sonnet-4-5'), key],
      [`${sim.base}/v1/chat/completions`, body('gpt-4.1'), key],
    ];
    for (const [url, text, headers] of calls) {
      const res = await fetch(url, { method: 'POST', headers, body: text });
      expect(res.status, url).toBe(400);
      expect(await res.text(), url).toContain('nested more than 512 levels');
    }
  });
});

// What the fuzz of the routes added last (fuzz-recent.test.ts) found.

describe('a blank x-ph-session or x-ph-prefix', () => {
  it('is a 400 at the header before the provider is called, not a call without the session or prefix the caller expects', async () => {
    // Found as a 200 for `x-ph-session: " "`: the header trimmed to nothing was read as no session, so a client whose
    // session variable was unset (`'x-ph-session': process.env.SES ?? ''`) paid for every turn without one, told nothing.
    const sim = await listen(createSimulatorApp({ catalog: new ModelCatalog(loadCatalog()) }));
    t = createTestApp({ config: { anthropicBaseUrl: sim.base } });
    const server = await listen(t.app);
    stop = async () => {
      await server.close();
      await sim.close();
    };
    const me = t.tenant();
    const body = JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    const send = (headers: Record<string, string>) =>
      fetch(`${server.base}/proxy/anthropic/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-ph-key': me.key, 'x-api-key': 'sk-ant-x', ...headers }, body });
    for (const [header, value] of [['x-ph-session', ''], ['x-ph-session', '  '], ['x-ph-prefix', ''], ['x-ph-prefix', ' , ']] as const) {
      const res = await send({ [header]: value });
      const problem = (await res.json()) as { code: string; errors: Array<{ pointer: string }> };
      expect([res.status, res.headers.get('content-type'), problem.code, problem.errors.map((e) => e.pointer)], `${header}: ${JSON.stringify(value)}`).toEqual([400, 'application/problem+json', 'invalid_request', [`header:${header}`]]);
    }
    // The official SDKs show the error's message alone (OpenAI's error.message): it names the header, not only what is
    // wrong with it ('400 is empty: name the session …' said neither which header nor that one was sent).
    for (const [header, value] of [['x-ph-session', ''], ['x-ph-prefix', ' , ']] as const) {
      const openai = new OpenAI({ baseURL: `${server.base}/proxy/openai/v1`, apiKey: 'sk-x', maxRetries: 0, defaultHeaders: { 'x-ph-key': me.key, [header]: value } });
      const anthropic = new Anthropic({ baseURL: `${server.base}/proxy/anthropic`, apiKey: 'sk-ant-x', maxRetries: 0, defaultHeaders: { 'x-ph-key': me.key, [header]: value } });
      const fromOpenAI = await openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }).catch((e: Error) => e);
      const fromAnthropic = await anthropic.messages.create({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }).catch((e: Error) => e);
      expect(fromOpenAI, header).toBeInstanceOf(OpenAI.BadRequestError);
      expect((fromOpenAI as Error).message, header).toMatch(new RegExp(`^400 ${header} (is empty|names no handle): `));
      expect(fromAnthropic, header).toBeInstanceOf(Anthropic.BadRequestError);
      expect((fromAnthropic as Error).message, header).toContain(`"message":"${header} `);
    }
    expect(t.sqlite.prepare('select count(*) from requests').pluck().get()).toBe(0);
    // Left out, each is no session and no prefix, as before.
    expect((await send({})).status).toBe(200);
  });
});

describe('a query parameter given twice', () => {
  it('is refused saying so, not with its schema\'s message for a missing or mistyped value', async () => {
    // Found as `DELETE /v1/tenants/{id}?confirm=Acme&confirm=Acme` answering "confirm is required: the tenant's name…",
    // and `GET /v1/requests?limit=1&limit=2` "Invalid input: expected string, received array".
    t = createTestApp();
    const server = await listen(t.app);
    stop = server.close;
    const me = t.tenant('Acme');
    const cases: Array<[string, string, string]> = [
      [`/v1/tenants/${me.id}?confirm=Acme&confirm=Acme`, 'test-admin-key-0123456789', 'confirm is given 2 times: give it once'],
      ['/v1/requests?limit=1&limit=2&limit=3', me.key, 'limit is given 3 times: give it once'],
      ['/v1/reports?kind=artifact&kind=bundle', me.key, 'kind is given 2 times: give it once'],
    ];
    for (const [path, key, detail] of cases) {
      const res = await fetch(`${server.base}${path}`, { method: path.startsWith('/v1/tenants') ? 'DELETE' : 'GET', headers: { authorization: `Bearer ${key}` } });
      const problem = (await res.json()) as { code: string; errors: Array<{ pointer: string; detail: string }> };
      const name = detail.split(' ')[0]!;
      expect([res.status, problem.code, problem.errors], path).toEqual([422, 'invalid_request', [{ pointer: `query:${name}`, detail }]]);
    }
    // Nothing deleted.
    expect(t.sqlite.prepare('select name from tenants where id = ?').pluck().get(me.id)).toBe('Acme');
  });
});

describe('signing in to the dashboard with a control character in next', () => {
  it('goes to the overview, not a 500: a Location header cannot hold one', async () => {
    // Found as a 500 problem+json (undici: 'Headers.set: "/ui/\r\nX-Evil: 1" is an invalid header value') for a valid
    // key and a next of /ui/ with CR LF, or NUL, after it.
    t = createTestApp();
    const server = await listen(t.app);
    stop = server.close;
    const me = t.tenant();
    for (const next of ['/ui/\r\nX-Evil: 1', '/ui/\u0000', '/ui?period=7d\n', '/ui/\u007f']) {
      const res = await fetch(`${server.base}/ui/sign-in`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.base },
        body: new URLSearchParams({ key: me.key, next }).toString(),
      });
      expect([res.status, res.headers.get('location'), res.headers.get('x-evil')], JSON.stringify(next)).toEqual([303, '/ui', null]);
    }
    // A plain one is followed as before.
    const res = await fetch(`${server.base}/ui/sign-in`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.base }, body: new URLSearchParams({ key: me.key, next: '/ui/sessions?period=30d' }).toString() });
    expect([res.status, res.headers.get('location')]).toEqual([303, '/ui/sessions?period=30d']);
  });
});
