// A query parameter a route does not take is a 422 naming it, on every /v1 route of the OpenAPI document (the fast
// routes ahead of the middleware included), and nothing is written; the route's own parameters, and `_`, still
// work. Over real HTTP on a database file. The proxy, the dashboard and the probes keep taking any query.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, createTestApp, listen, type TestApp } from '../helpers/app';
import { mintBundle, mintDocument, startSession } from '../helpers/factories';
import { fingerprint, tableNames } from '../helpers/fingerprint';
import { anthropicUsage, promptTokens, renderAnthropic } from '../helpers/scenario';
import { startHarness, type Harness } from '../proxy/harness';

let dir: string;
let t: TestApp;
let base: string;
let close: () => Promise<void>;
let tables: string[];
let me: ReturnType<TestApp['tenant']>;

interface Route {
  method: string;
  path: string;
  params: string[];
  admin: boolean;
  csv: boolean;
  /** The statuses its responses in the document list, with their content types. */
  responses: Record<string, string[]>;
}
let routes: Route[];

/** A request each route answers with a 2xx, its own parameters included: made when it is sent (a delete needs a victim). */
type Sample = () => Promise<{ path: string; query?: string; body?: unknown }>;
let samples: Record<string, Sample>;

async function call(method: string, path: string, opts: { admin?: boolean; body?: unknown } = {}) {
  const headers: Record<string, string> = { authorization: `Bearer ${opts.admin ? ADMIN_KEY : me.key}` };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', text, json: () => JSON.parse(text) as Record<string, any> };
}

async function settled(): Promise<string> {
  await new Promise((resolve) => setImmediate(resolve));
  await t.services.writes.idle();
  return fingerprint(t.sqlite, tables);
}

/** `from` → `rfom`: its first two letters swapped, one edit from it. */
const swapped = (name: string) => `${name[1]}${name[0]}${name.slice(2)}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ph-unknown-query-'));
  t = createTestApp({ databasePath: join(dir, 'prefix-handles.db') });
  const served = await listen(t.app);
  [base, close] = [served.base, served.close];
  me = t.tenant('owner');
  tables = tableNames(t.sqlite);

  const doc = await mintDocument(me.client);
  const other = await mintDocument(me.client);
  const bundle = await mintBundle(me.client, [doc.id]);
  const session = await startSession(me.client);
  const rendered = await Promise.all([1, 2, 3].map((i) => renderAnthropic(me.client, { prefix: [doc.id], messages: [{ role: 'user', content: `q${i}` }] })));
  const usage = (i: number) => ({ request_id: rendered[i]!.request_id, usage: anthropicUsage(promptTokens(rendered[i]!), 0, 0) });
  expect((await me.client.post('/v1/usage', usage(0))).status).toBe(201);
  await t.services.writes.idle();
  let n = 0;
  samples = {
    'POST /v1/tenants': async () => ({ path: '/v1/tenants', body: { name: `made ${++n}` } }),
    'GET /v1/tenants': async () => ({ path: '/v1/tenants' }),
    'PATCH /v1/tenants/{id}': async () => ({ path: `/v1/tenants/${t.tenant().id}`, body: { name: `renamed ${++n}` } }),
    'DELETE /v1/tenants/{id}': async () => {
      const name = `leaving ${++n}`;
      return { path: `/v1/tenants/${t.tenant(name).id}`, query: `confirm=${encodeURIComponent(name)}` };
    },
    'POST /v1/tenants/{id}/keys': async () => ({ path: `/v1/tenants/${me.id}/keys` }),
    'POST /v1/keys/{id}/rotate': async () => ({ path: `/v1/keys/${t.services.tenants.issueKey(me.id).id}/rotate` }),
    'DELETE /v1/keys/{id}': async () => ({ path: `/v1/keys/${t.services.tenants.issueKey(me.id).id}` }),
    'POST /v1/prune': async () => ({ path: '/v1/prune', body: { older_than_days: 30 } }),
    'POST /v1/artifacts': async () => ({ path: '/v1/artifacts', body: { kind: 'document', content: `minted ${++n}` } }),
    'POST /v1/artifacts/{id}/versions': async () => ({ path: `/v1/artifacts/${doc.id}/versions`, body: { content: `version ${++n}` } }),
    'POST /v1/bundles': async () => ({ path: '/v1/bundles', body: { members: [doc.id] } }),
    'POST /v1/bundles/{id}/versions': async () => ({ path: `/v1/bundles/${bundle.id}/versions`, body: { members: [doc.id, other.id] } }),
    'POST /v1/sessions': async () => ({ path: '/v1/sessions', body: {} }),
    'POST /v1/sessions/{id}/messages': async () => ({ path: `/v1/sessions/${session.id}/messages`, body: { messages: [{ role: 'user', content: `turn ${++n}` }] } }),
    'GET /v1/handles/{ref}': async () => ({ path: `/v1/handles/${doc.id}`, query: 'versions=1' }),
    'GET /v1/handles': async () => ({ path: '/v1/handles', query: 'kind=document&limit=2' }),
    'DELETE /v1/handles/{ref}': async () => ({ path: `/v1/handles/${(await mintDocument(me.client)).id}` }),
    'GET /v1/handles/{ref}/expand': async () => ({ path: `/v1/handles/${doc.id}/expand`, query: 'format=anthropic' }),
    'POST /v1/render': async () => ({ path: '/v1/render', body: { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 5, messages: [{ role: 'user', content: `render ${++n}` }] } } }),
    'GET /v1/models': async () => ({ path: '/v1/models' }),
    'POST /v1/usage': async () => ({ path: '/v1/usage', body: usage(1) }),
    'POST /v1/usage/batch': async () => ({ path: '/v1/usage/batch', body: { records: [usage(2)] } }),
    'GET /v1/reports/handles/{id}': async () => ({ path: `/v1/reports/handles/${doc.id}`, query: 'from=2026-01-01&versions=2' }),
    'GET /v1/reports': async () => ({ path: '/v1/reports', query: 'from=2026-01-01&by_type=true&format=csv' }),
    'GET /v1/requests': async () => ({ path: '/v1/requests', query: 'limit=5&format=json' }),
    'GET /v1/requests/{id}': async () => ({ path: `/v1/requests/${rendered[0]!.request_id}` }),
  };

  const doc31 = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string }>; security?: Array<Record<string, unknown>>; responses: Record<string, { content?: Record<string, unknown> }> }>> };
  routes = Object.entries(doc31.paths)
    .filter(([path]) => path.startsWith('/v1/'))
    .flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({
        method: method.toUpperCase(),
        path,
        params: (op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name),
        admin: (op.security ?? []).some((s) => 'adminKey' in s),
        csv: Object.values(op.responses).some((r) => r.content !== undefined && 'text/csv' in r.content),
        responses: Object.fromEntries(Object.entries(op.responses).map(([status, r]) => [status, Object.keys(r.content ?? {})])),
      })),
    );
});

afterAll(async () => {
  await close?.();
  t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('every /v1 route of the OpenAPI document', () => {
  it('the document lists the fast routes and has a sample for every route (a new route gets its refusals checked all the same)', () => {
    const listed = routes.map((r) => `${r.method} ${r.path}`);
    for (const fast of ['GET /v1/handles/{ref}/expand', 'POST /v1/usage', 'POST /v1/render']) expect(listed).toContain(fast);
    expect(listed.length).toBeGreaterThanOrEqual(26);
    expect(listed.filter((r) => !(r in samples)), 'routes without a sample: only their refusals are checked').toEqual([]);
  });

  it('documents the 422 an unknown name gets, as problem+json: a client generated from the document knows the answer', () => {
    // GET /v1/tenants, GET /v1/models and DELETE /v1/keys/{id} listed none: they had no query or body to refuse.
    const without = routes.filter((r) => r.responses['422']?.join() !== 'application/problem+json').map((r) => `${r.method} ${r.path}`);
    expect(without).toEqual([]);
  });

  it('refuses a name it does not take with a 422 at query:<name>, its parameters and a did-you-mean in the detail, and writes nothing', async () => {
    const csvRoutes = routes.filter((r) => r.csv).map((r) => `GET ${r.path}`).sort();
    expect(csvRoutes).toEqual(['GET /v1/reports', 'GET /v1/reports/handles/{id}', 'GET /v1/requests']);
    for (const route of routes) {
      const label = `${route.method} ${route.path}`;
      const sample = await (samples[label] ?? (async (): ReturnType<Sample> => ({ path: route.path.replace(/\{[^}]+\}/g, 'x'), body: route.method === 'GET' || route.method === 'DELETE' ? undefined : {} })))();
      const own = sample.query ? `${sample.query}&` : '';
      // Each of its parameters misspelt (one swap), format where there is none, a tracker's parameter.
      const wrong: Array<[string, string]> = route.params.map((p) => [swapped(p), `; did you mean ${p}?`]);
      if (!route.params.includes('format')) wrong.push(['format', `: it has no format to choose; CSV is exported by ${csvRoutes.join(', ').replace(/, (?=[^,]*$)/, ' and ')} (format=csv)`]);
      wrong.push(['utm_source', '']);
      const before = await settled();
      for (const [name, hint] of wrong) {
        const res = await call(route.method, `${sample.path}?${own}${name}=1`, { admin: route.admin, body: sample.body });
        const at = `${label} with ${name}: ${res.text}`;
        expect([res.status, res.type], at).toEqual([422, 'application/problem+json']);
        const p = res.json();
        expect(p.code, at).toBe('invalid_request');
        expect(p.errors, at).toEqual([{ pointer: `query:${name}`, detail: `not a parameter of ${label}${hint}` }]);
        expect(p.detail, at).toBe(`${label} does not take ${name}: it takes ${route.params.length ? route.params.join(', ').replace(/, (?=[^,]*$)/, ' and ') : 'no query parameters'}`);
      }
      expect(await settled(), `${label}: a refusal wrote rows`).toBe(before);
      if (!samples[label]) continue;
      // The same request without it is answered; with the cache buster `_` too.
      const ok = await call(route.method, `${sample.path}${sample.query ? `?${sample.query}` : ''}`, { admin: route.admin, body: sample.body });
      expect(ok.status, `${label}: ${ok.text}`).toBeLessThan(300);
      if (route.method !== 'GET') continue;
      const busted = await call('GET', `${sample.path}?${own}_=1733390000000`, { admin: route.admin });
      expect(busted.status, `${label} with _: ${busted.text}`).toBe(200);
      expect(busted.text, label).toBe(ok.text);
    }
  });
});

describe('the names and the message', () => {
  it('names every unknown parameter once, decoded as the route reads its own, a known one beside them still read', async () => {
    const res = await call('GET', '/v1/reports?form=2026-12-01&%66ormt=csv&form=2&by+type=true&&limit=1');
    expect(res.status).toBe(422);
    expect(res.json().errors).toEqual([
      { pointer: 'query:form', detail: 'not a parameter of GET /v1/reports; did you mean from?' },
      { pointer: 'query:formt', detail: 'not a parameter of GET /v1/reports; did you mean format?' },
      { pointer: 'query:by type', detail: 'not a parameter of GET /v1/reports; did you mean by_type?' },
    ]);
    expect(res.json().detail).toBe('GET /v1/reports does not take form, formt and by type: it takes from, to, model, format, bom, limit, type, kind, days and by_type');
  });

  it('a fragment in a raw request line is no part of the query: the route reads none of it, so nothing in it is refused', async () => {
    // No client sends a fragment, but an HTTP request line can carry one, and Hono reads the query up to it.
    const raw = (target: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const { hostname, port } = new URL(base);
        const socket = connect(Number(port), hostname, () => socket.end(`GET ${target} HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${me.key}\r\nConnection: close\r\n\r\n`));
        let text = '';
        socket.setEncoding('utf8').on('data', (d: string) => (text += d)).on('error', reject).on('end', () => resolve({ status: Number(text.slice(9, 12)), body: text.slice(text.indexOf('\r\n\r\n') + 4) }));
      });
    const plain = await call('GET', '/v1/requests?limit=1');
    for (const target of ['/v1/requests?limit=1#&status=failed', '/v1/requests?limit=1#status', '/v1/requests?limit=1&#form=1']) {
      const res = await raw(target);
      expect(res.status, `${target}: ${res.body}`).toBe(200);
      expect(res.body, target).toContain(JSON.parse(plain.text).requests[0].id);
    }
    // Before it, a name is refused as ever.
    const refused = await raw('/v1/requests?lmit=1#x');
    expect([refused.status, refused.body], refused.body).toEqual([422, expect.stringContaining('"pointer":"query:lmit"')]);
  });

  it('suggests a name that differs in case or by a few edits, and none when nothing is near', async () => {
    const hint = async (path: string) => ((await call('GET', path)).json().errors as Array<{ detail: string }>)[0]!.detail.replace(/^[^;:]*/, '');
    expect(await hint('/v1/handles?Limit=5')).toBe('; did you mean limit?');
    expect(await hint('/v1/reports/handles/art_x?versionsThrough=2')).toBe('; did you mean versions_through?');
    expect(await hint('/v1/reports?by-type=true')).toBe('; did you mean by_type?');
    expect(await hint('/v1/requests?models=gpt-4.1')).toBe('; did you mean model?');
    expect(await hint('/v1/requests?status=failed')).toBe('');
    expect(await hint('/v1/requests?page=2')).toBe('');
  });

  it('on a route without CSV, format=json and CSV asked under a misspelt name say the route has no format and which routes export CSV', async () => {
    const csv = ': it has no format to choose; CSV is exported by GET /v1/reports, GET /v1/reports/handles/{id} and GET /v1/requests (format=csv)';
    const items = async (query: string) => (await call('GET', `/v1/handles?${query}`)).json().errors as Array<{ pointer: string; detail: string }>;
    // format=json asked for what the route answers: not told about CSV as if it had asked for it, but that there is no choice.
    expect(await items('format=json')).toEqual([{ pointer: 'query:format', detail: `not a parameter of GET /v1/handles${csv}` }]);
    expect(await items('formt=csv')).toEqual([{ pointer: 'query:formt', detail: `not a parameter of GET /v1/handles${csv}` }]);
    expect(await items('fmt=CSV&output=json')).toEqual([
      { pointer: 'query:fmt', detail: `not a parameter of GET /v1/handles${csv}` },
      { pointer: 'query:output', detail: 'not a parameter of GET /v1/handles' },
    ]);
    expect(await items('f%6Frmt=c%73v')).toEqual([{ pointer: 'query:formt', detail: `not a parameter of GET /v1/handles${csv}` }]);
    // A name near one the route takes is named as that one, whatever its value.
    expect(await items('kidn=csv')).toEqual([{ pointer: 'query:kidn', detail: 'not a parameter of GET /v1/handles; did you mean kind?' }]);
    const reports = await call('GET', '/v1/reports?formt=csv');
    expect(reports.json().errors).toEqual([{ pointer: 'query:formt', detail: 'not a parameter of GET /v1/reports; did you mean format?' }]);
  });

  it('a parameter given twice keeps its own 422; a refused name is reported before the values are read', async () => {
    const twice = await call('GET', '/v1/requests?limit=1&limit=2');
    expect([twice.status, twice.json().errors]).toEqual([422, [{ pointer: 'query:limit', detail: 'limit is given 2 times: give it once' }]]);
    const both = await call('GET', '/v1/requests?limit=abc&status=failed');
    expect([both.status, both.json().errors.map((e: { pointer: string }) => e.pointer)]).toEqual([422, ['query:status']]);
  });

  it("expand's format=csv names the routes that export CSV", async () => {
    const doc = await mintDocument(me.client);
    const res = await call('GET', `/v1/handles/${doc.id}/expand?format=csv`);
    expect([res.status, res.json().errors]).toEqual([
      422,
      [{ pointer: 'query:format', detail: "format is one of neutral, anthropic, openai-chat, openai-responses, gemini here (a provider's request shape); CSV is exported by GET /v1/reports, GET /v1/reports/handles/{id} and GET /v1/requests" }],
    ]);
  });

  it('the key comes first: without one the answer is a 401, whatever the query', async () => {
    for (const path of ['/v1/handles?form=1', '/v1/reports?form=1']) expect((await fetch(`${base}${path}`)).status).toBe(401);
    const usage = await fetch(`${base}/v1/usage?form=1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(usage.status).toBe(401);
  });

  it('an unknown path or method stays a 404 or 405, not a 422 about its query', async () => {
    expect((await call('GET', '/v1/nothing?form=1')).status).toBe(404);
    expect((await call('GET', '/v1/usage?form=1')).status).toBe(405);
  });
});

describe('outside the API, a query is not ours to refuse', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("the proxy sends the SDK's query to the provider as given", async () => {
    const sdk = h.anthropic();
    await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }, { query: { beta: 'true', utm_source: 'x' } });
    expect(h.tap.at(-1)!.path).toBe('/v1/messages?beta=true&utm_source=x');
    const models = await fetch(`${h.url}/proxy/openai/v1/models?after=x&from=1`, { headers: { 'x-ph-key': h.key, authorization: 'Bearer sk-test' } });
    expect(models.status).toBe(200);
    expect(h.tap.at(-1)!.path).toBe('/v1/models?after=x&from=1');
  });

  it('the dashboard, the probes and the document take any query', async () => {
    const page = await h.t.app.request('/ui?utm_source=newsletter&fbclid=abc&form=1', { headers: { cookie: `ph_ui_key=${h.key}` } });
    expect([page.status, page.headers.get('content-type')]).toEqual([200, 'text/html; charset=UTF-8']);
    for (const path of ['/healthz?probe=1', '/readyz?_=1', '/openapi.json?v=2']) expect((await h.t.app.request(path)).status, path).toBe(200);
    expect((await h.t.app.request('/metrics?x=1', { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).status).toBe(200);
  });
});
