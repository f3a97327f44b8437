import { createConfig, lintFromString } from '@redocly/openapi-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ADMIN_KEY, clientFor, createTestApp, type Client } from '../helpers/app';
import { Contract, type OpenApiDoc } from '../helpers/contract';
import { mintBundle, mintSystem, mintTools, startSession, userMessage } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic } from '../helpers/scenario';
import { committed, startHarness, type Harness } from '../proxy/harness';

// A client generated from GET /openapi.json in another language (openapi-generator, openapi-python-client,
// oapi-codegen) trusts the document: an undocumented status, a content type it does not list, or a body its schema
// refuses breaks such a client or silently loses data. Every operation is driven here over real HTTP, with its
// successes and its refusals, and every answer is checked against the document (status, content type, JSON Schema
// 2020-12 with ajv). An operation the document lists that no call here reached fails the last test.

const MAX_BODY = 64 * 1024;

let h: Harness;
let contract: Contract;
/** Every mismatch found, each test's own checked at its end. */
let found: string[] = [];
let admin: Client;
let tenant: Client;
let anonymous: Client;

/** The mismatches found since the last look. */
function mismatches(): string[] {
  const all = found;
  found = [];
  return all;
}

/** A client whose every answer is checked against the document. */
function checked(key?: string): Client {
  return clientFor({ request: async (path, init) => contract.check(init?.method ?? 'GET', path, await fetch(`${h.url}${path}`, init), found) }, key);
}

/** A raw call (headers as given, the body as bytes), its answer checked. */
async function raw(method: string, path: string, init: { headers?: Record<string, string>; body?: string } = {}): Promise<Response> {
  const res = await fetch(`${h.url}${path}`, { method, headers: init.headers, body: init.body });
  return contract.check(method, path, res, found);
}

/** Each call was answered the status it asked for, and every answer so far matches the document. */
function expectStatuses(results: Array<{ status: number }>, statuses: number[]) {
  expect({ statuses: results.map((r) => r.status).join(' '), mismatches: mismatches() }).toEqual({ statuses: statuses.join(' '), mismatches: [] });
}

beforeAll(async () => {
  h = await startHarness({ maxBodyBytes: MAX_BODY });
  contract = new Contract((await (await fetch(`${h.url}/openapi.json`)).json()) as OpenApiDoc);
  admin = checked(ADMIN_KEY);
  tenant = checked(h.key);
  anonymous = checked();
});
afterAll(() => h.close());

describe('the OpenAPI document', () => {
  it('lints clean under Redocly\'s recommended rules (operationIds, refs, paths, servers)', async () => {
    // No license to name: the package is private (a warning no generator reads).
    const config = await createConfig({ extends: ['recommended'], rules: { 'info-license': 'off' } });
    const problems = await lintFromString({ source: JSON.stringify(contract.doc), absoluteRef: 'openapi.json', config });
    expect(problems.map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer}`)).toEqual([]);
  });

  it('names every operation once, in a form every generator takes', () => {
    const ids = Object.values(contract.doc.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
    expect(ids.filter((id) => id === undefined || !/^[a-z][A-Za-z0-9]*$/.test(id))).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('the check itself', () => {
  const json = 'application/json';
  const problemJson = 'application/problem+json';
  const issued = JSON.stringify({ id: 'key_1', tenant: 'ten_1', api_key: 'phk_x', created_at: '2026-12-06T00:00:00.000Z' });
  const problem = (extra: object = {}) => JSON.stringify({ type: 'urn:x', title: 'x', status: 404, detail: 'x', code: 'not_found', ...extra });
  const check = (status: number, type: string | null, text: string, method = 'POST', path = '/v1/tenants/ten_1/keys') => contract.mismatches(method, path, status, type, text);

  it('passes an answer as documented', () => {
    expect(check(201, json, issued)).toEqual([]);
    expect(check(404, `${problemJson}; charset=utf-8`, problem())).toEqual([]);
    expect(check(204, null, '', 'DELETE', '/v1/keys/key_1')).toEqual([]);
  });

  it('refuses what a generated client would break on or drop', () => {
    const found = [
      check(409, problemJson, problem({ status: 409, code: 'conflict' })),
      // Not its 201, and not the problem+json every other status is documented as.
      check(200, json, issued),
      check(201, 'text/plain', issued),
      check(404, json, problem()),
      check(201, json, JSON.stringify({ ...JSON.parse(issued), api_key: undefined })),
      check(201, json, JSON.stringify({ ...JSON.parse(issued), expires_at: null })),
      check(201, json, JSON.stringify({ ...JSON.parse(issued), created_at: null })),
      check(404, problemJson, problem({ code: 'no_such_code' })),
      check(201, json, ''),
      check(204, json, '{}', 'DELETE', '/v1/keys/key_1'),
    ];
    expect(found.map((f) => f.length)).toEqual(Array(found.length).fill(1));
    expect(found.length).toBe(10);
    expect(found.map(([f]) => /listed only under default|content type|must have required property|does not name: \/expires_at|must be string|must be equal to one of|empty body|no body/.test(f!))).toEqual(Array(found.length).fill(true));
    expect(() => check(200, json, '{}', 'GET', '/v1/nowhere')).toThrow(/not in the document/);
  });
});

describe('every answer matches the document', () => {
  it('admin: tenants, keys, prune', async () => {
    const created = await admin.post('/v1/tenants', { name: 'contract team' });
    const id = created.json.tenant as string;
    const results = [
      created,
      await admin.post('/v1/tenants', { name: 'contract team' }),
      await admin.post('/v1/tenants', { name: '' }),
      await admin.post('/v1/tenants', '{"name":'),
      await admin.post('/v1/tenants', 'name=x', { 'content-type': 'text/plain' }),
      await admin.post('/v1/tenants', { name: 'x'.repeat(MAX_BODY) }),
      await anonymous.post('/v1/tenants', { name: 'nobody' }),
      await tenant.post('/v1/tenants', { name: 'not an admin' }),
      await admin.get('/v1/tenants'),
      await admin.get('/v1/tenants?nope=1'),
      await admin.call('PATCH', `/v1/tenants/${id}`, { name: 'contract team 2' }),
      await admin.call('PATCH', '/v1/tenants/ten_nope', { name: 'x' }),
      await admin.call('PATCH', `/v1/tenants/${id}`, { name: 42 }),
    ];
    expectStatuses(results, [201, 409, 422, 400, 415, 413, 401, 401, 200, 422, 200, 404, 422]);
    const other = await admin.post('/v1/tenants', { name: 'contract other' });
    expect((await admin.call('PATCH', `/v1/tenants/${other.json.tenant}`, { name: 'contract team 2' })).status).toBe(409);

    const issued = await admin.post(`/v1/tenants/${id}/keys`, {});
    const keyId = issued.json.id as string;
    const rotated = await admin.post(`/v1/keys/${keyId}/rotate`, {});
    expectStatuses(
      [
        issued,
        await admin.post('/v1/tenants/ten_nope/keys', {}),
        await admin.post(`/v1/tenants/${id}/keys`, { extra: 1 }),
        rotated,
        await admin.post(`/v1/keys/${keyId}/rotate`, {}),
        await admin.post('/v1/keys/key_nope/rotate', {}),
        await admin.delete(`/v1/keys/${rotated.json.id}`),
        await admin.delete('/v1/keys/key_nope'),
        await admin.post('/v1/prune', { older_than_days: 30 }),
        await admin.post('/v1/prune', { older_than_days: 0 }),
        await admin.delete(`/v1/tenants/${id}`),
        await admin.delete(`/v1/tenants/${id}?confirm=someone%20else`),
        await admin.delete('/v1/tenants/ten_nope?confirm=x'),
        await admin.delete(`/v1/tenants/${id}?confirm=contract%20team%202`),
      ],
      [201, 404, 422, 201, 409, 404, 204, 404, 200, 422, 422, 422, 404, 200],
    );
    expect(mismatches()).toEqual([]);
  });

  it('handles: artifacts, bundles, sessions, reads, expansion, deletion', async () => {
    const tools = await mintTools(tenant);
    const sys = await mintSystem(tenant, LONG_SYSTEM);
    const doomed = await mintSystem(tenant);
    const bundle = await mintBundle(tenant, [tools.id, sys.id], 'contract bundle');
    const session = await startSession(tenant, { base: bundle.ref });
    expectStatuses(
      [
        await tenant.post('/v1/artifacts', { kind: 'system' }),
        await tenant.post('/v1/artifacts', { kind: 'system', content: 'x'.repeat(MAX_BODY) }),
        await tenant.post('/v1/artifacts', '[', {}),
        await tenant.post('/v1/artifacts', 'x', { 'content-type': 'text/plain' }),
        await anonymous.post('/v1/artifacts', { kind: 'system', content: 'x' }),
        await tenant.post(`/v1/artifacts/${sys.id}/versions`, { content: `${LONG_SYSTEM} v2` }),
        await tenant.post(`/v1/artifacts/${sys.id}/versions`, { content: `${LONG_SYSTEM} v2` }),
        await tenant.post('/v1/artifacts/art_V1StGXR8Z5jdHi6B3myTq/versions', { content: 'x' }),
        await tenant.post(`/v1/artifacts/${sys.id}/versions`, {}),
        await tenant.post('/v1/bundles', { members: ['art_V1StGXR8Z5jdHi6B3myTq'] }),
        await tenant.post('/v1/bundles', { members: 'no' }),
        await tenant.post(`/v1/bundles/${bundle.id}/versions`, { members: [sys.id] }),
        await tenant.post(`/v1/bundles/${bundle.id}/versions`, { members: [sys.id] }),
        await tenant.post('/v1/bundles/bnd_V1StGXR8Z5jdHi6B3myTq/versions', { members: [sys.id] }),
        await tenant.post('/v1/sessions', { base: 'bnd_V1StGXR8Z5jdHi6B3myTq' }),
        await tenant.post('/v1/sessions', { base: 3 }),
        await tenant.post(`/v1/sessions/${session.id}/messages`, { messages: [userMessage('hello')] }, { 'if-match': '"1"' }),
        await tenant.post(`/v1/sessions/${session.id}/messages`, { messages: [userMessage('again')] }, { 'if-match': '"1"' }),
        await tenant.post(`/v1/sessions/${session.id}/messages`, { messages: [userMessage('again')] }, { 'if-match': 'W/"2"' }),
        await tenant.post('/v1/sessions/ses_V1StGXR8Z5jdHi6B3myTq/messages', { messages: [userMessage('x')] }),
      ],
      [422, 413, 400, 415, 401, 201, 200, 404, 422, 404, 422, 201, 200, 404, 404, 422, 201, 409, 422, 404],
    );

    const expanded = await tenant.get(`/v1/handles/${bundle.ref}/expand?format=anthropic`);
    expectStatuses(
      [
        await tenant.get(`/v1/handles/${sys.id}`),
        await tenant.get(`/v1/handles/${session.id}?versions=1`),
        await tenant.get(`/v1/handles/${bundle.ref}`),
        await tenant.get('/v1/handles/art_V1StGXR8Z5jdHi6B3myTq'),
        await tenant.get('/v1/handles/nope'),
        await tenant.get('/v1/handles'),
        await tenant.get('/v1/handles?kind=system&limit=1'),
        await tenant.get('/v1/handles?limit=0'),
        await anonymous.get('/v1/handles'),
        expanded,
        await tenant.get(`/v1/handles/${bundle.ref}/expand?format=openai-chat`),
        await tenant.get(`/v1/handles/${bundle.ref}/expand?format=anthropic`, { 'if-none-match': expanded.headers.get('etag')! }),
        await tenant.get('/v1/handles/art_V1StGXR8Z5jdHi6B3myTq/expand'),
        await tenant.get(`/v1/handles/${bundle.ref}/expand?format=nope`),
        await tenant.delete(`/v1/handles/${tools.id}`),
        await tenant.delete(`/v1/handles/${doomed.id}`),
        await tenant.delete(`/v1/handles/${doomed.id}`),
        await tenant.get(`/v1/handles/${doomed.id}`),
        await tenant.get(`/v1/handles/${doomed.id}/expand`),
        await tenant.post(`/v1/artifacts/${doomed.id}/versions`, { content: 'after' }),
        await tenant.post('/v1/bundles', { members: [doomed.id] }),
        await tenant.delete('/v1/handles/art_V1StGXR8Z5jdHi6B3myTq'),
        await tenant.delete('/v1/handles/nope'),
      ],
      [200, 200, 200, 404, 422, 200, 200, 422, 401, 200, 200, 304, 404, 422, 409, 204, 410, 410, 410, 410, 410, 404, 422],
    );
    expect(mismatches()).toEqual([]);
  });

  it('render, models, usage, reports, requests', async () => {
    const sys = await mintSystem(tenant, LONG_SYSTEM);
    const bundle = await mintBundle(tenant, [sys.id]);
    const r1 = await renderAnthropic(tenant, { prefix: [bundle.id], messages: [userMessage('hi')] });
    const r2 = await renderAnthropic(tenant, { system: [{ type: 'text', text: 'Now: 10:01' }, { type: 'handle', ref: sys.id }], messages: [userMessage('hi')] });
    const chat = await tenant.post('/v1/render', { format: 'openai-chat', request: { model: 'gpt-4o', prefix: [bundle.id], messages: [userMessage('x')] } });
    const usage = { request_id: r1.request_id, usage: anthropicUsage(promptTokens(r1), 0, r1.breakpoints[0]!.token_end) };
    expectStatuses(
      [
        chat,
        await tenant.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 10, prefix: ['art_V1StGXR8Z5jdHi6B3myTq'], messages: [userMessage('x')] } }),
        await tenant.post('/v1/render', { format: 'nope', request: {} }),
        await tenant.post('/v1/render', '{', {}),
        await anonymous.post('/v1/render', { format: 'anthropic', request: {} }),
        await tenant.get('/v1/models'),
        await tenant.get('/v1/models?x=1'),
        await tenant.post('/v1/usage', usage),
        await tenant.post('/v1/usage', usage),
        await tenant.post('/v1/usage', { ...usage, usage: anthropicUsage(promptTokens(r1) + 5, 0, 0) }),
        await tenant.post('/v1/usage', { request_id: 'req_V1StGXR8Z5jdHi6B3myTq', usage: { input_tokens: 1 } }),
        await tenant.post('/v1/usage', { request_id: r2.request_id }),
        await tenant.post('/v1/usage/batch', { records: [{ request_id: r2.request_id, usage: anthropicUsage(promptTokens(r2), 0, 0) }, { request_id: 'req_nope' }] }),
        await tenant.post('/v1/usage/batch', { records: 'no' }),
      ],
      [200, 404, 422, 400, 401, 200, 422, 201, 200, 409, 404, 422, 200, 422],
    );
    await committed(h);
    const requestId = r1.request_id;
    expectStatuses(
      [
        await tenant.get(`/v1/reports/handles/${sys.id}`),
        await tenant.get(`/v1/reports/handles/${bundle.id}?model=claude-sonnet-4-5&versions=2`),
        await tenant.get(`/v1/reports/handles/${sys.id}?format=csv&bom=true`),
        await tenant.get('/v1/reports/handles/art_V1StGXR8Z5jdHi6B3myTq'),
        await tenant.get(`/v1/reports/handles/${sys.id}?from=yesterday`),
        await tenant.get('/v1/reports'),
        await tenant.get('/v1/reports?days=true&by_type=true&type=artifact'),
        await tenant.get('/v1/reports?format=csv'),
        await tenant.get('/v1/reports?limit=-1'),
        await tenant.get('/v1/requests'),
        await tenant.get(`/v1/requests?handle=${sys.id}&limit=1`),
        await tenant.get('/v1/requests?handle=art_V1StGXR8Z5jdHi6B3myTq'),
        await tenant.get('/v1/requests?format=csv'),
        await tenant.get('/v1/requests?class=nope'),
        await tenant.get(`/v1/requests/${requestId}`),
        await tenant.get(`/v1/requests/${chat.json.request_id}`),
        await tenant.get('/v1/requests/req_V1StGXR8Z5jdHi6B3myTq'),
        await tenant.get('/v1/requests/nope'),
        await anonymous.get('/v1/requests'),
      ],
      [200, 200, 200, 404, 422, 200, 200, 200, 422, 200, 200, 404, 200, 422, 200, 200, 404, 422, 401],
    );
    expect(mismatches()).toEqual([]);
  });

  it('the proxy: each provider\'s calls, streams, counts and model lists, and its refusals', async () => {
    const sys = await mintSystem(tenant, LONG_SYSTEM);
    const PROVIDER_KEY: Record<string, Record<string, string>> = {
      anthropic: { 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01' },
      openai: { authorization: 'Bearer sk-openai-test' },
      gemini: { 'x-goog-api-key': 'gemini-test-key' },
    };
    /** A call as the provider's SDK sends it: its key in its header, the tenant's in x-ph-key. */
    const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
      raw(method, path, {
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), 'x-ph-key': h.key, ...PROVIDER_KEY[path.split('/')[2]!], ...headers },
        body: body === undefined || typeof body === 'string' ? body : JSON.stringify(body),
      });
    const anthropic = { model: 'claude-sonnet-4-5', max_tokens: 64, system: [{ type: 'handle', ref: sys.id }], messages: [userMessage('hi')] };
    const gemini = { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] };
    const results: Response[] = [
      await call('POST', '/proxy/anthropic/v1/messages', anthropic),
      await call('POST', '/proxy/anthropic/v1/messages', { ...anthropic, stream: true }),
      await call('POST', '/proxy/anthropic/v1/messages/count_tokens', { model: anthropic.model, system: anthropic.system, messages: anthropic.messages }),
      await call('POST', '/proxy/openai/v1/chat/completions', { model: 'gpt-4o', messages: [{ role: 'system', content: [{ type: 'handle', ref: sys.id }] }, userMessage('hi')] }),
      await call('POST', '/proxy/openai/v1/chat/completions', { model: 'gpt-4o', stream: true, messages: [userMessage('hi')] }),
      await call('POST', '/proxy/openai/v1/responses', { model: 'gpt-4o', input: 'hi' }),
      await call('POST', '/proxy/openai/v1/responses', { model: 'gpt-4o', input: 'hi', stream: true }),
    ];
    for (const version of ['v1beta', 'v1']) {
      results.push(
        await call('POST', `/proxy/gemini/${version}/models/gemini-2.5-flash:generateContent`, gemini),
        await call('POST', `/proxy/gemini/${version}/models/gemini-2.5-flash:streamGenerateContent?alt=sse`, gemini),
        await call('POST', `/proxy/gemini/${version}/models/gemini-2.5-flash:countTokens`, gemini),
        await call('GET', `/proxy/gemini/${version}/models`),
        await call('GET', `/proxy/gemini/${version}/models/gemini-2.5-flash`),
      );
    }
    for (const provider of ['anthropic', 'openai'])
      results.push(await call('GET', `/proxy/${provider}/v1/models`), await call('GET', `/proxy/${provider}/v1/models/${provider === 'openai' ? 'gpt-4o' : 'claude-sonnet-4-5'}`));
    expect(results.map((r) => r.status)).toEqual(Array(results.length).fill(200));

    expectStatuses(
      [
        await call('POST', '/proxy/anthropic/v1/messages', anthropic, { 'x-ph-key': 'phk_wrong' }),
        await call('POST', '/proxy/anthropic/v1/messages', '{"model":'),
        await call('POST', '/proxy/anthropic/v1/messages', anthropic, { 'content-type': 'text/plain' }),
        await call('POST', '/proxy/anthropic/v1/messages', { ...anthropic, system: [{ type: 'handle', ref: 'art_V1StGXR8Z5jdHi6B3myTq' }] }),
        await call('POST', '/proxy/anthropic/v1/messages', { ...anthropic, system: [{ type: 'handle', ref: 'nope' }] }),
        await call('POST', '/proxy/anthropic/v1/messages', { ...anthropic, messages: [userMessage('x'.repeat(MAX_BODY))] }),
        await call('POST', '/proxy/openai/v1/chat/completions', { model: 'gpt-4o', messages: [userMessage('hi')] }, { 'x-ph-prefix': 'art_V1StGXR8Z5jdHi6B3myTq' }),
        await call('POST', '/proxy/anthropic/v1/messages/count_tokens', { model: anthropic.model, messages: anthropic.messages }, { 'x-ph-key': '' }),
        await call('POST', '/proxy/gemini/v1beta/models/gemini-2.5-flash:generateContent', gemini, { 'x-ph-session': 'ses_V1StGXR8Z5jdHi6B3myTq' }),
        // The provider's own refusals, passed through as it sent them.
        await call('GET', '/proxy/openai/v1/models/no-such-model'),
        await call('POST', '/proxy/anthropic/v1/messages', { ...anthropic, max_tokens: undefined }),
      ],
      [401, 400, 400, 404, 400, 413, 404, 401, 404, 404, 400],
    );

    // A deleted handle; a provider that cannot be reached, and one that never answers.
    const doomed = await mintSystem(tenant);
    expect((await tenant.delete(`/v1/handles/${doomed.id}`)).status).toBe(204);
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const unreachable = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const away = createTestApp({ config: { anthropicBaseUrl: unreachable, openaiBaseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, upstreamTimeoutMs: 50 } });
    try {
      const key = away.tenant().key;
      const viaAway = async (path: string, headers: Record<string, string>, body?: unknown) => {
        const init = { method: body === undefined ? 'GET' : 'POST', headers: { 'x-ph-key': key, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers }, body: body === undefined ? undefined : JSON.stringify(body) };
        return contract.check(init.method, path, await away.app.request(path, init), found);
      };
      expectStatuses(
        [
          await call('POST', '/proxy/anthropic/v1/messages', { ...anthropic, system: [{ type: 'handle', ref: doomed.id }] }),
          await viaAway('/proxy/anthropic/v1/messages', { 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01' }, { ...anthropic, system: 'plain' }),
          await viaAway('/proxy/anthropic/v1/models', { 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01' }),
          await viaAway('/proxy/openai/v1/chat/completions', { authorization: 'Bearer sk-openai-test' }, { model: 'gpt-4o', messages: [userMessage('hi')] }),
        ],
        [404, 502, 502, 504],
      );
    } finally {
      away.close();
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('what the proxy recorded (every provider, streamed or not, a session\'s turns) reads as documented', async () => {
    const session = await startSession(tenant, { messages: [userMessage('first')] });
    const turn = await raw('POST', '/proxy/anthropic/v1/messages', {
      headers: { 'content-type': 'application/json', 'x-ph-key': h.key, 'x-ph-session': session.id, 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [userMessage('second')] }),
    });
    expect(turn.status).toBe(200);
    h.clock.advance(10 * 60_000);
    // The same turn past the cache's lifetime: an expired read to explain.
    await raw('POST', '/proxy/anthropic/v1/messages', {
      headers: { 'content-type': 'application/json', 'x-ph-key': h.key, 'x-ph-session': session.id, 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [userMessage('third')] }),
    });
    await committed(h);
    const list = await tenant.get('/v1/requests?limit=500');
    expect(list.status).toBe(200);
    expect(list.json.requests.length).toBeGreaterThan(15);
    const views = [];
    for (const r of list.json.requests as Array<{ id: string }>) views.push(await tenant.get(`/v1/requests/${r.id}`));
    expect(views.map((v) => v.status)).toEqual(Array(views.length).fill(200));
    expectStatuses(
      [
        await tenant.get(`/v1/handles/${session.id}`),
        await tenant.get(`/v1/reports/handles/${session.id}?versions=3`),
        await tenant.get('/v1/reports?days=true&by_type=true'),
        await tenant.get('/v1/requests?type=session&class=captured'),
        await tenant.get(`/v1/handles/${session.id}/expand?format=openai-responses`),
        await tenant.get(`/v1/handles/${session.id}/expand?format=gemini`),
      ],
      [200, 200, 200, 200, 200, 200],
    );
  });

  it('the service: its probes, metrics and docs', async () => {
    const [health, ready, metrics, docs] = [await anonymous.get('/healthz'), await anonymous.get('/readyz'), await admin.get('/metrics'), await anonymous.get('/docs')];
    expectStatuses([health, ready, metrics, await anonymous.get('/metrics'), await tenant.get('/metrics'), docs], [200, 200, 200, 401, 401, 200]);
    expect([health.json, ready.json]).toEqual([{ status: 'ok' }, { status: 'ok' }]);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(metrics.text).toContain('# TYPE ph_http_requests_total counter');
    expect(docs.headers.get('content-type')).toMatch(/^text\/html/);
    // A probe asked with another method: the 405 naming the one it takes, as for every documented path.
    const wrong = await fetch(`${h.url}/healthz`, { method: 'POST' });
    expect([wrong.status, wrong.headers.get('allow')]).toEqual([405, 'GET']);
  });

  it('reached every operation the document lists', () => {
    expect(contract.exercised.size).toBeGreaterThan(0);
    expect(contract.operations().filter((op) => !contract.exercised.has(op))).toEqual([]);
  });
});
