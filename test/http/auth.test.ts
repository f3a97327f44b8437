import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, clientFor, createTestApp, type TestApp } from '../helpers/app';
import { mintBundle, mintSystem, startSession } from '../helpers/factories';
import { startHarness, type Harness } from '../proxy/harness';

// One shared suite: every tenant route rejects a missing, a wrong and a
// foreign key the same way (401 for the first two; 404 for a foreign handle).

let t: TestApp;
let ids!: { art: string; bnd: string; ses: string };
beforeAll(async () => {
  t = createTestApp();
  const owner = t.tenant('owner');
  const art = await mintSystem(owner.client);
  const bnd = await mintBundle(owner.client, [art.id]);
  const ses = await startSession(owner.client, { base: bnd.id });
  ids = { art: art.id, bnd: bnd.id, ses: ses.id };
});
afterAll(() => t.close());

type Route = [method: string, path: () => string, body: () => unknown, label: string];
const tenantRoutes: Route[] = [
  ['POST', () => '/v1/artifacts', () => ({ kind: 'system', content: 'x' }), '/v1/artifacts'],
  ['POST', () => `/v1/artifacts/${ids.art}/versions`, () => ({ content: 'x2' }), '/v1/artifacts/{art}/versions'],
  ['POST', () => '/v1/bundles', () => ({ members: [ids.art] }), '/v1/bundles'],
  ['POST', () => `/v1/bundles/${ids.bnd}/versions`, () => ({ members: [ids.art] }), '/v1/bundles/{bnd}/versions'],
  ['POST', () => '/v1/sessions', () => ({ base: ids.bnd }), '/v1/sessions'],
  ['POST', () => `/v1/sessions/${ids.ses}/messages`, () => ({ messages: [{ role: 'user', content: 'x' }] }), '/v1/sessions/{ses}/messages'],
  ['GET', () => `/v1/handles/${ids.art}`, () => (undefined), '/v1/handles/{art}'],
  ['GET', () => '/v1/handles', () => (undefined), '/v1/handles'],
  ['GET', () => `/v1/handles/${ids.bnd}/expand?format=anthropic`, () => (undefined), '/v1/handles/{bnd}/expand?format=anthropic'],
  ['DELETE', () => `/v1/handles/${ids.ses}`, () => (undefined), '/v1/handles/{ses}'],
];

for (const [method, path, body, label] of tenantRoutes) describe(`${method} ${label}`, () => {
  it('rejects a missing key with 401', async () => {
    const res = await clientFor(t.app).call(method, path(), body());
    expect(res.status).toBe(401);
    expect(res.json.code).toBe('unauthorized');
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
  });

  it('rejects a wrong key with 401', async () => {
    const res = await clientFor(t.app, 'phk_not-a-real-key').call(method, path(), body());
    expect(res.status).toBe(401);
    expect(res.json.code).toBe('unauthorized');
  });

  it("rejects the admin key, which is not a tenant's key", async () => {
    const res = await clientFor(t.app, ADMIN_KEY).call(method, path(), body());
    expect(res.status).toBe(401);
  });

  it("gives a foreign tenant nothing of the owner's handles", async () => {
    const stranger = t.tenant();
    const res = await stranger.client.call(method, path(), body());
    const touchesOwner = /(art|bnd|ses)_/.test(JSON.stringify([path(), body()]));
    if (touchesOwner) {
      expect(res.status).toBe(404);
      expect(res.json.code).toBe('not_found');
    } else if (method === 'GET') {
      expect(res.json.handles).toEqual([]);
    } else {
      expect(res.status).toBe(201);
    }
  });
});

describe('admin routes', () => {
  it('create tenants and keys only with PH_ADMIN_KEY; keys rotate and revoke', async () => {
    const anon = clientFor(t.app);
    expect((await anon.post('/v1/tenants', { name: 'x' })).status).toBe(401);
    const tenantKey = t.tenant().key;
    expect((await clientFor(t.app, tenantKey).post('/v1/tenants', { name: 'x' })).status).toBe(401);

    const admin = clientFor(t.app, ADMIN_KEY);
    const created = await admin.post('/v1/tenants', { name: 'acme' });
    expect(created.status).toBe(201);
    expect(created.json.api_key).toMatch(/^phk_/);
    const acme = clientFor(t.app, created.json.api_key);
    expect((await acme.get('/v1/handles')).status).toBe(200);

    const rotated = await admin.post(`/v1/keys/${created.json.id}/rotate`);
    expect(rotated.status).toBe(201);
    const old = await acme.get('/v1/handles');
    expect([old.status, old.json.code]).toEqual([401, 'unauthorized']);
    // A revoked key is told so (it said "not valid", as a mistyped one does).
    expect(old.json.detail).toBe(`the API key was revoked on ${new Date(t.clock.now()).toISOString()}: use the key that replaced it, or ask the operator for a new one`);
    expect((await clientFor(t.app, `${created.json.api_key}x`).get('/v1/handles')).json.detail).toBe('the API key is not valid');
    const acme2 = clientFor(t.app, rotated.json.api_key);
    expect((await acme2.get('/v1/handles')).status).toBe(200);
    // The operator's list: every tenant's key ids (what rotate and revoke take), a hint, never a secret.
    const listed = await admin.get('/v1/tenants');
    expect(listed.status).toBe(200);
    const acmeListed = listed.json.tenants.find((x: { id: string }) => x.id === created.json.tenant);
    expect(acmeListed).toEqual({
      id: created.json.tenant,
      name: 'acme',
      same_name_as: [],
      time_zone: 'UTC',
      created_at: expect.any(String),
      keys: [
        { id: created.json.id, hint: created.json.api_key.slice(0, 12), created_at: expect.any(String), revoked_at: expect.any(String) },
        { id: rotated.json.id, hint: rotated.json.api_key.slice(0, 12), created_at: expect.any(String), revoked_at: null },
      ],
    });
    expect(listed.text).not.toContain(created.json.api_key);
    expect(listed.text).not.toContain(rotated.json.api_key);
    expect((await clientFor(t.app, rotated.json.api_key).get('/v1/tenants')).status).toBe(401);
    // The key it replaced is revoked: rotating it again says so (it exists), rather than that it does not.
    const again = await admin.post(`/v1/keys/${created.json.id}/rotate`);
    expect(again.status).toBe(409);
    expect(again.json.detail).toContain('was revoked');

    // A field these routes do not take (a key's name) is refused, not dropped; an empty object is no field.
    const named = await admin.post(`/v1/tenants/${created.json.tenant}/keys`, { name: 'ci' });
    expect(named.status).toBe(422);
    expect(named.json.errors[0].pointer).toBe('/name');
    expect((await admin.post(`/v1/keys/${rotated.json.id}/rotate`, { name: 'ci' })).status).toBe(422);
    expect(t.sqlite.prepare("select count(*) from api_keys where tenant_id = ?").pluck().get(created.json.tenant)).toBe(2);
    expect((await admin.post(`/v1/tenants/${created.json.tenant}/keys`, {})).status).toBe(201);
    const extra = await admin.post(`/v1/tenants/${created.json.tenant}/keys`);
    expect(extra.status).toBe(201);
    expect((await admin.delete(`/v1/keys/${extra.json.id}`)).status).toBe(204);
    expect((await clientFor(t.app, extra.json.api_key).get('/v1/handles')).status).toBe(401);
    expect((await admin.post('/v1/tenants/ten_nope/keys')).status).toBe(404);
  });

  it('stores keys hashed, never in clear', () => {
    const { key } = t.tenant();
    const hashes = t.sqlite.prepare('select key_hash from api_keys').pluck().all() as string[];
    expect(hashes).not.toContain(key);
    expect(hashes).toContain(createHash('sha256').update(key).digest('hex'));
  });
});

describe('admin routes when PH_ADMIN_KEY is unset', () => {
  it('are refused', async () => {
    const bare = createTestApp({ config: { adminKey: undefined } });
    const res = await clientFor(bare.app, 'anything-at-all-long').post('/v1/tenants', { name: 'x' });
    expect(res.status).toBe(401);
    expect(res.json.detail).toMatch(/PH_ADMIN_KEY is not set/);
    bare.close();
  });
});

// Every route that takes an id answers another tenant's exactly as an unknown one of the same kind: the same status,
// code and body (ids aside), so no answer tells a tenant that another's handle, session or request exists. The proxy
// over real HTTP (the simulator behind it), the dashboard in-process with the stranger's cookie.
describe("another tenant's ids answer exactly as unknown ones", () => {
  let h: Harness;
  let own!: { art: string; bnd: string; ses: string; req: string };
  const unknown = { art: 'art_000000000000000000000', bnd: 'bnd_000000000000000000000', ses: 'ses_000000000000000000000', req: 'req_0000000000000000000000'.slice(0, 25) };
  let stranger!: ReturnType<TestApp['tenant']>;
  beforeAll(async () => {
    h = await startHarness();
    const owner = h.tenant.client;
    const art = await mintSystem(owner);
    const bnd = await mintBundle(owner, [art.id]);
    const ses = await startSession(owner, { base: bnd.id });
    const rendered = await owner.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 5, prefix: [art.id], messages: [{ role: 'user', content: 'q' }] } });
    expect((await owner.post('/v1/usage', { request_id: rendered.json.request_id, usage: { input_tokens: 30, output_tokens: 1 } })).status).toBe(201);
    own = { art: art.id, bnd: bnd.id, ses: ses.id, req: rendered.json.request_id };
    unknown.req = `req_${own.req.slice(4, 12)}0000000000000`;
    stranger = h.t.tenant();
  });
  afterAll(() => h.close());

  /** What a client could tell apart: status, type and body, the ids named and request ids aside. */
  const seen = (status: number, type: string | null, text: string) =>
    [status, type, text.replace(/"requestId":"[^"]*"/g, '').replace(/\b(art|bnd|ses|req)_[0-9A-Za-z]{21}\b/g, '$1_ID')] as const;
  type Kind = keyof typeof unknown;
  const pairs = (kind: Kind) => [own[kind], unknown[kind]] as const;

  const api: Array<[method: string, path: string, body: string | undefined, kind: Kind]> = [
    ['GET', '/v1/handles/X', undefined, 'art'],
    ['GET', '/v1/handles/X@1', undefined, 'ses'],
    ['GET', '/v1/handles/X/expand?format=anthropic', undefined, 'bnd'],
    ['DELETE', '/v1/handles/X', undefined, 'art'],
    ['POST', '/v1/artifacts/X/versions', '{"content":"y"}', 'art'],
    ['POST', '/v1/bundles', '{"members":["X"]}', 'art'],
    ['POST', '/v1/bundles/X/versions', '{"members":[]}', 'bnd'],
    ['POST', '/v1/sessions', '{"base":"X"}', 'bnd'],
    ['POST', '/v1/sessions/X/messages', '{"messages":[{"role":"user","content":"x"}]}', 'ses'],
    ['POST', '/v1/render', '{"format":"anthropic","request":{"model":"claude-sonnet-4-5","max_tokens":5,"prefix":["X"],"messages":[{"role":"user","content":"q"}]}}', 'art'],
    ['POST', '/v1/render', '{"format":"anthropic","request":{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"type":"handle","ref":"X"},{"role":"user","content":"q"}]}}', 'ses'],
    ['GET', '/v1/requests/X', undefined, 'req'],
    ['GET', '/v1/requests?handle=X', undefined, 'art'],
    ['GET', '/v1/requests?handle=X&class=cold', undefined, 'art'],
    ['GET', '/v1/requests?handle=X&format=csv', undefined, 'bnd'],
    ['GET', '/v1/reports/handles/X', undefined, 'art'],
    ['GET', '/v1/reports/handles/X?format=csv', undefined, 'ses'],
    ['POST', '/v1/usage', '{"request_id":"X","usage":{"input_tokens":30,"output_tokens":1}}', 'req'],
    ['POST', '/v1/usage/batch', '{"records":[{"request_id":"X","usage":{"input_tokens":30,"output_tokens":1}}]}', 'req'],
  ];
  it.each(api)('%s %s (%s)', async (method, path, body, kind) => {
    const [foreign, missing] = await Promise.all(
      pairs(kind).map(async (id) => {
        const res = await stranger.client.call(method, path.replace('X', id), body?.replace('X', id));
        return seen(res.status, res.headers.get('content-type'), res.text);
      }),
    );
    expect(foreign![0]).toBeGreaterThanOrEqual(200);
    expect(foreign).toEqual(missing);
  });

  const pages: Array<[path: string, kind: Kind]> = [
    ['/ui/handles/X', 'art'],
    ['/ui/handles/X?batches=1', 'ses'],
    ['/ui/handles/X?class=cold', 'bnd'],
    ['/ui/handles/X/report.csv', 'art'],
    ['/ui/fragments/handles/X', 'ses'],
    ['/ui/requests/X', 'req'],
  ];
  it.each(pages)('the dashboard: %s (%s)', async (path, kind) => {
    const [foreign, missing] = await Promise.all(
      pairs(kind).map(async (id) => {
        const res = await h.t.app.request(path.replace('X', id), { headers: { cookie: `ph_ui_key=${stranger.key}` } });
        return seen(res.status, res.headers.get('content-type'), await res.text());
      }),
    );
    expect(foreign![0]).toBe(404);
    expect(foreign).toEqual(missing);
  });

  const proxied: Array<[label: string, path: string, headers: Record<string, string>, body: string, kind: Kind]> = [
    ['x-ph-prefix', '/proxy/anthropic/v1/messages', { 'x-ph-prefix': 'X' }, '{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"q"}]}', 'bnd'],
    ['x-ph-session', '/proxy/anthropic/v1/messages', { 'x-ph-session': 'X' }, '{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"q"}]}', 'ses'],
    ['x-ph-session naming an artifact', '/proxy/openai/v1/chat/completions', { 'x-ph-session': 'X' }, '{"model":"gpt-4.1","messages":[{"role":"user","content":"q"}]}', 'art'],
    ['a top-level prefix', '/proxy/openai/v1/responses', {}, '{"model":"gpt-4.1","prefix":["X"],"input":"q"}', 'art'],
    ['a handle block', '/proxy/anthropic/v1/messages', {}, '{"model":"claude-sonnet-4-5","max_tokens":5,"system":[{"type":"handle","ref":"X"}],"messages":[{"role":"user","content":"q"}]}', 'art'],
    ['count_tokens', '/proxy/anthropic/v1/messages/count_tokens', { 'x-ph-prefix': 'X' }, '{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"q"}]}', 'art'],
    ['gemini', '/proxy/gemini/v1beta/models/gemini-2.5-flash:generateContent', { 'x-ph-session': 'X' }, '{"contents":[{"role":"user","parts":[{"text":"q"}]}]}', 'ses'],
  ];
  it.each(proxied)('the proxy: %s', async (_label, path, headers, body, kind) => {
    const [foreign, missing] = await Promise.all(
      pairs(kind).map(async (id) => {
        const res = await fetch(`${h.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-ph-key': stranger.key, 'x-api-key': 'sk-ant-test', ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, v.replace('X', id)])) },
          body: body.replace('X', id),
        });
        return seen(res.status, res.headers.get('content-type'), await res.text());
      }),
    );
    expect(foreign![0]).toBe(404);
    expect(foreign).toEqual(missing);
    expect(h.tap).toHaveLength(0);
  });
});
