// The routes added last, fuzzed over real HTTP on a database file: tenant rename and deletion (names at the rules'
// edges, foreign, unknown and deleted tenants, deletion beside a tenant's own calls), the request list's cursors
// (forged, stale, another tenant's, another filter's) and dates, the reports' type/kind/days/by_type/ranges, the
// dashboard's query strings (a model's lists too), the proxy's x-ph-session (unknown, foreign, deleted, pinned, not a session), and every /v1
// route of the OpenAPI document with a query name it does not take. No answer is a 5xx; a
// refusal is problem+json with a stable code (the dashboard's an HTML page) and changes no row; a page lists the
// tenant's own requests only. FUZZ_SEED and FUZZ_RUNS (per property) for a longer hunt.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import { tenantNameKey } from '../../src/domain/tenants';
import { CLASSES } from '../../src/domain/reconcile/waterfall';
import { PROBLEM_CODES } from '../../src/http/problem';
import { createSimulatorApp } from '../../src/simulator/server';
import { ADMIN_KEY, createTestApp, listen, type TestApp } from '../helpers/app';
import { FakeClock } from '../helpers/clock';
import { fingerprint as dbFingerprint, tableNames } from '../helpers/fingerprint';
import { mintBundle, mintDocument, startSession } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic } from '../helpers/scenario';

const SEED = Number(process.env.FUZZ_SEED ?? 20261205);
const RUNS = Number(process.env.FUZZ_RUNS ?? 40);
const DAY = 86_400_000;

let dir: string;
let t: TestApp;
let base: string;
let closers: Array<() => Promise<void>> = [];
let tables: string[] = [];

interface Tenant {
  id: string;
  key: string;
}
let owner!: Tenant;
let stranger!: Tenant;
/** The owner's handles by role, and the stranger's. */
let h!: Record<'sys' | 'doc' | 'bundle' | 'session' | 'deletedDoc' | 'deletedSession' | 'foreign' | 'foreignSession', string>;
let ownRequests = new Set<string>();
/** next_cursor values: the owner's (of other filters too), the stranger's. */
let cursors!: { own: string[]; stranger: string[] };

const unknown = (prefix: string) => `${prefix}_${'Q'.repeat(21)}`;

/** A call over loopback; `key` as a bearer (or x-ph-key on the proxy, or the dashboard's cookie). */
async function call(method: string, path: string, opts: { key?: string; body?: string; headers?: Record<string, string>; as?: 'bearer' | 'proxy' | 'cookie' } = {}) {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.key) {
    if (opts.as === 'proxy') headers['x-ph-key'] = opts.key;
    else if (opts.as === 'cookie') headers.cookie = `ph_ui_key=${encodeURIComponent(opts.key)}`;
    else headers.authorization = `Bearer ${opts.key}`;
  }
  if (opts.body !== undefined) headers['content-type'] ??= 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body: opts.body, redirect: 'manual' });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', text, json: () => JSON.parse(text) as Record<string, any> };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ph-fuzz-recent-'));
  const clock = new FakeClock();
  const sim = await listen(createSimulatorApp({ catalog: new ModelCatalog(loadCatalog()), clock }));
  t = createTestApp({ clock, databasePath: join(dir, 'prefix-handles.db'), config: { anthropicBaseUrl: sim.base, openaiBaseUrl: sim.base, geminiBaseUrl: sim.base } });
  const app = await listen(t.app);
  base = app.base;
  closers = [app.close, sim.close];

  const o = t.tenant('owner');
  const s = t.tenant('stranger');
  owner = { id: o.id, key: o.key };
  stranger = { id: s.id, key: s.key };
  const sys = await mintDocument(o.client, LONG_SYSTEM);
  const doc = await mintDocument(o.client);
  const bundle = await mintBundle(o.client, [sys.id, doc.id]);
  const session = await startSession(o.client, { base: bundle.id, messages: [{ role: 'user', content: 'hi' }] });
  const deletedDoc = await mintDocument(o.client);
  const deletedSession = await startSession(o.client);
  const foreign = await mintDocument(s.client);
  const foreignSession = await startSession(s.client);
  // Requests over three days and two models, reported (some read, some written), one left unreported.
  for (let i = 0; i < 9; i++) {
    const model = i % 3 === 0 ? 'claude-haiku-4-5' : 'claude-sonnet-4-5';
    const r = await renderAnthropic(o.client, { model, prefix: [i % 2 ? bundle.id : session.id], messages: [{ role: 'user', content: `q${i}` }] });
    ownRequests.add(r.request_id);
    if (i < 8) {
      const total = promptTokens(r);
      const res = await o.client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(total, i % 2 ? Math.floor(total / 2) : 0, i % 2 ? 0 : Math.floor(total / 2)) });
      expect(res.status, res.text).toBe(201);
    }
    clock.advance(i % 3 === 2 ? DAY : 7 * 60_000);
  }
  for (let i = 0; i < 3; i++) await renderAnthropic(s.client, { prefix: [foreign.id], messages: [{ role: 'user', content: `s${i}` }] });
  // Its session at version 2: @1 is pinned to an older version.
  expect((await o.client.post(`/v1/sessions/${session.id}/messages`, { messages: [{ role: 'assistant', content: 'hello' }] })).status).toBe(201);
  for (const id of [deletedDoc.id, deletedSession.id]) expect((await o.client.delete(`/v1/handles/${id}`)).status).toBe(204);
  await t.services.writes.idle();
  h = { sys: sys.id, doc: doc.id, bundle: bundle.id, session: session.id, deletedDoc: deletedDoc.id, deletedSession: deletedSession.id, foreign: foreign.id, foreignSession: foreignSession.id };

  const pagesOf = async (key: string, query: string) => {
    const out: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await call('GET', `/v1/requests?limit=${key === s.key ? 1 : 2}${query}${cursor ? `&cursor=${cursor}` : ''}`, { key });
      expect(res.status, res.text).toBe(200);
      cursor = res.json().next_cursor as string | null;
      if (cursor) out.push(cursor);
    } while (cursor && out.length < 6);
    return out;
  };
  cursors = {
    own: [...(await pagesOf(o.key, '')), ...(await pagesOf(o.key, `&handle=${h.sys}`)), ...(await pagesOf(o.key, '&class=captured')), ...(await pagesOf(o.key, '&model=claude-haiku-4-5'))],
    stranger: await pagesOf(s.key, ''),
  };
  expect(cursors.own.length).toBeGreaterThan(3);
  expect(cursors.stranger.length).toBeGreaterThan(0);
  tables = tableNames(t.sqlite);
});

afterAll(async () => {
  for (const close of closers) await close();
  t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A digest of every row of every table. */
const fingerprint = () => dbFingerprint(t.sqlite, tables);

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    await t.services.writes.idle();
  }
}

/** An API answer: below 500; a refusal problem+json with a stable code, a 422 naming where. */
function checkApi(res: Awaited<ReturnType<typeof call>>, label: string, pointers: RegExp = /^(query|path|header):|^\/|^$/) {
  expect(res.status, `${label}\n→ ${res.status} ${res.text.slice(0, 500)}`).toBeLessThan(500);
  if (res.status < 400) return;
  expect(res.type, label).toBe('application/problem+json');
  const p = res.json() as { code: string; status: number; detail: string; errors?: Array<{ pointer: string; detail: string }> };
  expect(PROBLEM_CODES, label).toContain(p.code);
  expect(p.status, label).toBe(res.status);
  expect(p.detail, label).toBeTruthy();
  if (p.code === 'invalid_request') {
    expect(p.errors?.length, `${label}: a 422 names where`).toBeGreaterThan(0);
    for (const e of p.errors!) expect(e.pointer, `${label}: ${res.text}`).toMatch(pointers);
  }
}

// ---- inputs ----

const oddText = fc.oneof(
  fc.constantFrom('', ' ', '0', '-1', '1.5', '1e3', 'NaN', 'true', 'null', '%', '%ZZ', '%00', '%E2%80%AE', '\u00e9', 'a'.repeat(3000)),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
);
const oddDate = fc.oneof(
  fc.constantFrom(
    '0', '1', '99999999999', '100000000000', '8640000000000000', '8640000000000001', '9999999999999999', '-1', '1e12',
    '2026-12-01', '2026-02-29', '2024-02-29', '2026-13-01', '0000-01-01', '0001-01-01', '1969-12-31', '9999-12-31', '+275760-09-13',
    '2026-12-01T09:00:00Z', '2026-12-01T09:00:00', '2026-12-01T09:00:00+14:00', '2026-12-01T09:00:00-23:59', '0000-01-01T00:00:00+23:59',
    '9999-12-31T23:59:59.999999999Z', '2026-12-01T24:00:00Z', '2026-12-01T23:59:60Z', '2026-12-01t09:00:00z', '2026-12-01 09:00:00Z',
  ),
  fc.date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.date({ noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10)),
  oddText,
);
const oddLimit = fc.oneof(fc.constantFrom('1', '2', '500', '501', '100000', '100001', '0', '007', '1e2', '0x10', ' 5', '99999999999999999999', '-1'), oddText);

/** A cursor: the owner's (of any filter), the stranger's, or forged (a real one changed). */
const cursor = () =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...cursors.own, ...cursors.stranger) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(fc.constantFrom(...cursors.own, ...cursors.stranger), fc.constantFrom('0', '1', '100000000000', '9999999999999999', '8640000000000000', '4102444800000'), fc.boolean())
        .map(([c, at, sameId]) => `${at}_${sameId ? c.slice(c.indexOf('_') + 1) : unknown('req')}`),
    },
    { weight: 1, arbitrary: fc.constantFrom(`1_${unknown('req')}`, `${'9'.repeat(17)}_${unknown('req')}`, 'req_x', '_', `-1_${unknown('req')}`, `1_${unknown('art')}`, `${cursors.own[0]}x`) },
    { weight: 1, arbitrary: oddText },
  );

const handleRef = () =>
  fc.oneof(
    fc.constantFrom(...Object.values(h)),
    fc.constantFrom(unknown('art'), unknown('ses'), `${h.sys}@1`, `${h.session}@1`, 'art_x', `${h.sys.toUpperCase()}`, ` ${h.sys}`),
    oddText,
  );

/** A query string of these parameters, each at most once or now and then twice; a value typed (a stray % kept) or encoded. */
function queryOf(params: Record<string, fc.Arbitrary<string>>): fc.Arbitrary<string> {
  const names = Object.keys(params);
  const one = fc.constantFrom(...names).chain((name) => fc.tuple(fc.constant(name), params[name]!, fc.boolean()));
  return fc.array(one, { maxLength: 5 }).map((ps) =>
    ps.length ? `?${ps.map(([n, v, asTyped]) => `${n}=${asTyped && /^[\x21-\x7e]*$/.test(v) && !/[&#+]/.test(v) ? v : encodeURIComponent(v)}`).join('&')}` : '',
  );
}

const settings = (offset: number) => ({ seed: SEED + offset, numRuns: RUNS, endOnFailure: process.env.FUZZ_SHRINK === undefined });

// ---- the properties ----

describe('GET /v1/requests: cursors and dates', () => {
  it('answers any cursor, date, limit, handle, class, type, no_handle and model with a page of the tenant\'s own requests or a 4xx problem', async () => {
    const query = queryOf({
      cursor: cursor(),
      from: oddDate,
      to: oddDate,
      limit: oddLimit,
      handle: handleRef(),
      class: fc.oneof(fc.constantFrom(...CLASSES), oddText),
      type: fc.oneof(fc.constantFrom('artifact', 'bundle', 'session', 'Session', 'sessions'), oddText),
      no_handle: fc.oneof(fc.constantFrom('true', 'false', 'TRUE', '1'), oddText),
      model: fc.oneof(fc.constantFrom('claude-sonnet-4-5', 'claude-haiku-4-5', 'gpt-4.1'), oddText),
    });
    const before = fingerprint();
    await fc.assert(
      fc.asyncProperty(query, fc.boolean(), async (q, asStranger) => {
        const label = `GET /v1/requests${q} as ${asStranger ? 'stranger' : 'owner'}`;
        const res = await call('GET', `/v1/requests${q}`, { key: asStranger ? stranger.key : owner.key });
        checkApi(res, label, /^query:/);
        if (res.status !== 200) return;
        const page = res.json() as { requests: Array<{ id: string }>; next_cursor: string | null };
        // Whatever cursor it was given (the other tenant's, another filter's, forged), a page is of the caller's requests.
        for (const r of page.requests) expect(ownRequests.has(r.id), `${label}: ${r.id}`).toBe(!asStranger);
        if (page.next_cursor !== null) expect(page.next_cursor, label).toMatch(/^\d{1,16}_req_[0-9A-Za-z]{21}$/);
      }),
      settings(1),
    );
    await settle();
    expect(fingerprint(), 'listing wrote rows').toBe(before);
  });
});

describe('GET /v1/reports and /v1/reports/handles/{id}', () => {
  it('answers any type, kind, days, by_type, range, limit and model with a report or a 4xx problem naming the parameter', async () => {
    const tenantQuery = queryOf({
      type: fc.oneof(fc.constantFrom('artifact', 'bundle', 'session', 'Session', 'sessions', 'system'), oddText),
      kind: fc.oneof(fc.constantFrom('artifact', 'bundle', 'session', 'Artifact', 'artifacts', 'system'), oddText),
      days: fc.oneof(fc.constantFrom('true', 'false', 'TRUE', '1', 'yes'), oddText),
      by_type: fc.oneof(fc.constantFrom('true', 'false', 'True', '1', 'yes'), oddText),
      from: oddDate,
      to: oddDate,
      limit: oddLimit,
      model: fc.oneof(fc.constantFrom('claude-sonnet-4-5', 'nope'), oddText),
    });
    const handleQuery = queryOf({
      versions: oddLimit,
      versions_through: fc.oneof(fc.constantFrom('1', '2', '999999', '1000000', '1000001', '9999999'), oddLimit),
      from: oddDate,
      to: oddDate,
      model: fc.oneof(fc.constantFrom('claude-sonnet-4-5', 'nope'), oddText),
    });
    const path = fc.oneof(
      tenantQuery.map((q) => `/v1/reports${q}`),
      fc.tuple(handleRef(), handleQuery).map(([id, q]) => `/v1/reports/handles/${encodeURIComponent(id)}${q}`),
    );
    await fc.assert(
      fc.asyncProperty(path, fc.boolean(), async (p, asStranger) => {
        await settle();
        const before = fingerprint();
        const res = await call('GET', p, { key: asStranger ? stranger.key : owner.key });
        const label = `GET ${p} as ${asStranger ? 'stranger' : 'owner'}`;
        checkApi(res, label, /^(query|path):/);
        if (res.status >= 400) {
          await settle();
          expect(fingerprint(), `${label}: a refusal wrote rows`).toBe(before);
          return;
        }
        const report = res.json();
        if (p.startsWith('/v1/reports?') && /(^|&|\?)days=true(&|$)/.test(p))
          for (const d of report.days as Array<{ day: string }>) expect(d.day, label).toMatch(/^\d{4}-\d{2}-\d{2}$/);
        if (p.startsWith('/v1/reports?')) {
          // by_type only when asked, each type's count of handles a count (handles_total), as the report's own is.
          expect('by_type' in report, label).toBe(/(^|&|\?)by_type=true(&|$)/.test(p));
          if (report.by_type) {
            expect(Object.keys(report.by_type), label).toEqual(['artifact', 'bundle', 'session']);
            for (const v of Object.values(report.by_type) as Array<Record<string, unknown>>) {
              expect(Number.isInteger(v.handles_total) && (v.handles_total as number) >= 0, label).toBe(true);
              expect(v, label).not.toHaveProperty('handles');
            }
          }
          // type= (or its alias kind=) lists that type's handles only.
          const type = /(?:^|&|\?)(?:type|kind)=(artifact|bundle|session)(?:&|$)/.exec(p)?.[1];
          if (type) for (const row of report.handles as Array<{ type: string }>) expect(row.type, label).toBe(type);
        }
        // A foreign handle's report is the same 404 as an unknown one's: a 200 is the caller's own handle.
        if (p.startsWith('/v1/reports/handles/')) expect(asStranger ? [h.foreign, h.foreignSession] : Object.values(h), label).toContain(report.handle.id);
      }),
      settings(2),
    );
  });
});

describe('the dashboard with odd query strings', () => {
  it('answers a page, a redirect or an HTML error page, never a 5xx, and writes nothing', async () => {
    const q = queryOf({
      period: fc.oneof(fc.constantFrom('24h', '7d', '30d', 'all', 'ALL', '__proto__', 'constructor', 'toString'), oddText),
      class: fc.oneof(fc.constantFrom(...CLASSES), fc.constantFrom('__proto__', 'Expired'), oddText),
      batches: fc.oneof(fc.constantFrom('1', '2', '0', '9999999999', '99999999999', '-1'), oddText),
      handle: handleRef(),
      id: fc.oneof(fc.constantFrom(...ownRequests, unknown('req')), handleRef()),
      next: fc.constantFrom('/ui', '//evil.example', 'https://evil.example', '/ui/handles/x', '\\\\evil', ''),
      model: fc.oneof(fc.constantFrom('claude-sonnet-4-5', 'claude-haiku-4-5', 'gpt-4.1', 'Claude-Sonnet-4-5', 'nope'), oddText),
    });
    const page = fc.oneof(
      fc.constantFrom('/ui', '/ui/', '/ui/sessions', '/ui/fragments/overview', '/ui/fragments/sessions', '/ui/requests', '/ui/sign-in'),
      handleRef().map((id) => `/ui/handles/${encodeURIComponent(id)}`),
      handleRef().map((id) => `/ui/fragments/handles/${encodeURIComponent(id)}`),
      fc.oneof(fc.constantFrom(...ownRequests, unknown('req')), handleRef()).map((id) => `/ui/requests/${encodeURIComponent(id)}`),
    );
    await settle();
    const before = fingerprint();
    await fc.assert(
      fc.asyncProperty(page, q, fc.constantFrom('own', 'stranger', 'none'), async (p, query, who) => {
        const res = await call('GET', `${p}${query}`, { key: who === 'own' ? owner.key : who === 'stranger' ? stranger.key : undefined, as: 'cookie' });
        const label = `GET ${p}${query} as ${who}\n→ ${res.status} ${res.text.slice(0, 400)}`;
        expect(res.status, label).toBeLessThan(500);
        if (res.status >= 400) expect(res.type, label).toMatch(p.includes('/fragments/') ? /^text\/(html|plain)/ : /^text\/html/);
        // An error page of ours says what is wrong in its heading and title.
        if (res.status >= 400 && res.type.startsWith('text/html')) expect(res.text, label).toMatch(/<title>[^<]+<\/title>/);
        // A list of a model (the tenant-wide one or a handle's) shows that model's requests only; one the tenant never
        // sent a request to is refused, never an empty list.
        const models = [...query.matchAll(/[?&]model=([^&]*)/g)].map((m) => m[1]!);
        if ((p === '/ui/requests' || p.startsWith('/ui/handles/')) && models.length === 1 && ['claude-sonnet-4-5', 'claude-haiku-4-5', 'gpt-4.1', 'Claude-Sonnet-4-5', 'nope'].includes(models[0]!) && res.status === 200 && who !== 'none') {
          const cells = [...res.text.matchAll(/<td data-model>([^<]*)<\/td>/g)].map((m) => m[1]);
          for (const cell of cells) expect(cell, label).toBe(models[0]);
          expect(['gpt-4.1', 'Claude-Sonnet-4-5', 'nope'], label).not.toContain(models[0]);
        }
      }),
      settings(3),
    );
    await settle();
    expect(fingerprint(), 'the dashboard wrote rows').toBe(before);
  });

  it('signing in with any next goes inside the dashboard (a redirect to /ui…), never a 5xx', async () => {
    const next = fc.oneof(
      { weight: 1, arbitrary: fc.constantFrom('/ui', '/ui/sessions?period=30d', '//evil.example', '/ui\\evil', '/ui/..//evil.example', 'https://evil.example/ui', '/uix') },
      { weight: 4, arbitrary: fc.tuple(fc.constantFrom('/ui', '/ui/', '/ui?', '/ui#'), fc.string({ unit: fc.oneof(fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)), fc.constantFrom('é', '😀', '\u2028', '%')), minLength: 1, maxLength: 8 })).map(([a, b]) => a + b) },
    );
    await fc.assert(
      fc.asyncProperty(next, fc.oneof({ weight: 3, arbitrary: fc.constant(owner.key) }, { weight: 1, arbitrary: fc.constantFrom('phk_not-a-key', '') }), async (n, key) => {
        const res = await fetch(`${base}/ui/sign-in`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base }, body: new URLSearchParams({ key, next: n }).toString() });
        const label = `POST /ui/sign-in next=${JSON.stringify(n)} key=${key.slice(0, 8)} → ${res.status}`;
        await res.text();
        expect(res.status, label).toBeLessThan(500);
        if (key === owner.key) {
          expect(res.status, label).toBe(303);
          // Inside the dashboard, on this origin.
          expect(new URL(res.headers.get('location')!, base).origin, label).toBe(base);
          expect(res.headers.get('location'), label).toMatch(/^\/ui([/?#]|$)/);
        } else expect(res.headers.get('content-type'), label).toMatch(/^text\/html/);
      }),
      settings(7),
    );
  });
});

describe("the proxy's x-ph-session", () => {
  it('an unknown, foreign, deleted, pinned or non-session x-ph-session is a 4xx problem at header:x-ph-session before any call, and writes nothing', async () => {
    const session = fc.oneof(
      fc.constantFrom(unknown('ses'), h.foreignSession, h.deletedSession, `${h.session}@1`, `${h.session}@0`, `${h.session}@99`, h.sys, h.bundle, h.deletedDoc, h.foreign, `${h.foreignSession}@1`, `ses_x`, ` ${unknown('ses')} `, `${h.session},${h.session}`, '', ' ', '\t'),
      fc.string({ unit: fc.constantFrom(...'ses_QZ09@,; '.split('')), maxLength: 30 }),
    );
    const route = fc.constantFrom(
      { path: '/proxy/anthropic/v1/messages', body: { model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] } },
      { path: '/proxy/anthropic/v1/messages/count_tokens', body: { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'hi' }] } },
      { path: '/proxy/openai/v1/chat/completions', body: { model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] } },
      { path: '/proxy/openai/v1/responses', body: { model: 'gpt-4.1', input: 'hi' } },
      { path: '/proxy/gemini/v1beta/models/gemini-2.5-flash:generateContent', body: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] } },
    );
    await fc.assert(
      fc.asyncProperty(route, session, fc.boolean(), async (r, ses, asStranger) => {
        // Only the stranger's own session is a valid one for it, and the owner's for the owner: those calls are left out.
        const own = asStranger ? h.foreignSession : h.session;
        if (ses.trim() === own || (asStranger && ses.trim() === `${own}@1`)) return;
        await settle();
        const before = fingerprint();
        const res = await call('POST', r.path, {
          key: asStranger ? stranger.key : owner.key,
          as: 'proxy',
          body: JSON.stringify(r.body),
          headers: { 'x-ph-session': ses, 'x-api-key': 'sk-ant-fuzz', authorization: 'Bearer sk-fuzz', 'x-goog-api-key': 'gemini-fuzz' },
        });
        const label = `POST ${r.path} x-ph-session: ${JSON.stringify(ses)} as ${asStranger ? 'stranger' : 'owner'}`;
        checkApi(res, label, /^header:x-ph-session$/);
        expect(res.status, `${label}\n→ ${res.text}`).toBeGreaterThanOrEqual(400);
        expect((res.json() as { errors?: Array<{ pointer: string }> }).errors?.map((e) => e.pointer), label).toEqual(['header:x-ph-session']);
        await settle();
        expect(fingerprint(), `${label}: a refusal wrote rows`).toBe(before);
      }),
      settings(4),
    );
  });
});

describe('any /v1 route with a query name it does not take', () => {
  it('answers a 422 at query:<name> saying so, whatever the name, and writes nothing', async () => {
    // The routes of the document, its path parameters unknown ids: a refusal missed would be another 4xx, not this one.
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, Record<string, { parameters?: Array<{ in: string; name: string }>; security?: Array<Record<string, unknown>> }>> };
    const routes = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith('/v1/'))
      .flatMap(([path, ops]) =>
        Object.entries(ops).map(([method, op]) => ({
          method: method.toUpperCase(),
          label: `${method.toUpperCase()} ${path}`,
          path: path.replace(/\{[^}]+\}/g, unknown('art')),
          taken: new Set(['_', ...(op.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name)]),
          admin: (op.security ?? []).some((s) => 'adminKey' in s),
        })),
      );
    const name = fc.oneof(
      fc.constantFrom('form', 'formt', 'Format', 'format', 'FROM', 'limit ', 'utm_source', 'fbclid', '__proto__', 'constructor', 'toString', '%', '+', 'a=b', 'é', '\u202e', 'x'.repeat(2000)),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }),
    );
    await settle();
    const before = fingerprint();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), name, oddText, fc.boolean(), async (route, n, value, withBuster) => {
        // Names it takes are the other properties' business (and `_` on POST /v1/sessions would mint one).
        fc.pre(!route.taken.has(n));
        const query = `${withBuster ? '_=1&' : ''}${encodeURIComponent(n)}=${encodeURIComponent(value)}`;
        const res = await call(route.method, `${route.path}?${query}`, { key: route.admin ? ADMIN_KEY : owner.key, body: route.method === 'POST' || route.method === 'PATCH' ? '{}' : undefined });
        const label = `${route.label}?${query}`;
        checkApi(res, label, /^query:/);
        expect(res.status, label).toBe(422);
        const p = res.json();
        expect(p.errors, label).toEqual([{ pointer: `query:${n}`, detail: expect.stringMatching(new RegExp(`^not a parameter of ${route.label.replace(/[{}$.*+?^()|[\]\\]/g, '\\$&')}`)) }]);
        expect(p.detail, label).toMatch(/ it takes /);
      }),
      settings(8),
    );
    await settle();
    expect(fingerprint(), 'a refused query wrote rows').toBe(before);
  });
});

describe('PATCH and DELETE /v1/tenants/{id}', () => {
  /** A name's variants at the rules' edges: case, spacing and normalisation (the same name), and near misses (another). */
  const VARIANTS: Array<(n: string) => string> = [
    (n) => n,
    (n) => n.toUpperCase(),
    (n) => ` ${n}\t`,
    (n) => n.replace(/ /g, '\u00a0'),
    (n) => n.replace(/ /g, '  '),
    (n) => n.normalize('NFD'),
    (n) => `${n}\u200b`,
    (n) => `${n}\u0000`,
    (n) => n.slice(1),
  ];
  const EDGES = ['', ' ', '\t\n', '\u00a0', '\u3000', '\u200b', '\ud800', 'x\udfff', 'é'.repeat(200), 'é'.repeat(201), '😀'.repeat(100), '😀'.repeat(101), 'a'.repeat(200), 'a'.repeat(201), 'Cafe\u0301', 'Café', '__proto__', 'İstanbul', 'ß', 'owner', 'STRANGER'];
  /** A name: a variant of a name the model holds (picked when the step runs), an edge, or any string. */
  const name = fc.oneof(
    { weight: 4, arbitrary: fc.tuple(fc.nat(), fc.nat(VARIANTS.length - 1)).map(([i, v]) => ({ pick: i, variant: v })) },
    { weight: 2, arbitrary: fc.constantFrom(...EDGES) },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
  );
  /** A tenant: one this test made (live or deleted, picked when the step runs), the owner or stranger for a rename, or no tenant. */
  const target = fc.oneof(
    { weight: 6, arbitrary: fc.nat().map((i) => ({ pick: i })) },
    { weight: 1, arbitrary: fc.constantFrom(unknown('ten'), 'ten_nope', '%20', 'ten_%00', encodeURIComponent('ten_é'), 'a'.repeat(500)) },
  );
  const body = fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('extra', '{"name":', '[]', 'null', '{"name":1}', '{}') });

  it('renames and deletes as a model of the rules predicts: 404 unknown or deleted, 422 at the name or confirm, 409 naming the holder; a refusal changes no row', async () => {
    const admin = { key: ADMIN_KEY };
    /** The model: live tenants' names by id (the owner's and stranger's stay: they are renamed to their own names only). */
    const names = new Map<string, string>([[owner.id, 'owner'], [stranger.id, 'stranger']]);
    const made: string[] = [];
    let n = 0;
    const sameName = (a: string, b: string) => tenantNameKey(a) === tenantNameKey(b);
    const op = fc.oneof(
      fc.record({ kind: fc.constant('rename' as const), target, name, body }),
      fc.record({ kind: fc.constant('delete' as const), target, confirm: fc.option(fc.oneof(name, fc.constant('%ZZ')), { nil: undefined }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 6 }), async (ops) => {
        // Three live tenants of this test at least, each run.
        while ([...names.keys()].filter((id) => made.includes(id)).length < 3) {
          const res = await call('POST', '/v1/tenants', { ...admin, body: JSON.stringify({ name: `Tenant ${++n} Inc` }) });
          expect(res.status, res.text).toBe(201);
          made.push(res.json().tenant);
          names.set(res.json().tenant, `Tenant ${n} Inc`);
        }
        const held = () => [...names.values()];
        for (const o of ops) {
          const id = typeof o.target === 'string' ? o.target : made[o.target.pick % made.length]!;
          const nameOf = (x: string | { pick: number; variant: number }) =>
            typeof x === 'string' ? x : VARIANTS[x.variant]!(held()[x.pick % held().length]!);
          await settle();
          const before = fingerprint();
          let res: Awaited<ReturnType<typeof call>>;
          let expected: number;
          let label: string;
          const current = names.get(id);
          if (o.kind === 'rename') {
            const wanted = nameOf(o.name);
            const text = o.body === undefined ? JSON.stringify({ name: wanted }) : o.body === 'extra' ? JSON.stringify({ name: wanted, x: 1 }) : o.body;
            label = `PATCH /v1/tenants/${id} ${text.slice(0, 300)}`;
            res = await call('PATCH', `/v1/tenants/${id}`, { ...admin, body: text });
            const badName = wanted.length < 1 || [...wanted].length > 200 || /[\ud800-\udfff]/.test(wanted.replace(/[\ud800-\udbff][\udc00-\udfff]/g, '')) || tenantNameKey(wanted) === '';
            if (o.body === '{"name":') expected = 400;
            else if (o.body !== undefined || badName) expected = 422;
            else if (current === undefined) expected = 404;
            else if (!sameName(current, wanted) && [...names].some(([other, held]) => other !== id && sameName(held, wanted))) expected = 409;
            else expected = 200;
            if (res.status === 200) {
              names.set(id, wanted);
              expect(res.json(), label).toMatchObject({ id, name: wanted });
            }
          } else {
            const confirm = o.confirm === undefined ? undefined : nameOf(o.confirm);
            const q = confirm === undefined ? '' : confirm === '%ZZ' ? '?confirm=%ZZ' : `?confirm=${encodeURIComponent(confirm.replace(/[\ud800-\udfff]/g, ''))}`;
            label = `DELETE /v1/tenants/${id}${q}`;
            res = await call('DELETE', `/v1/tenants/${id}${q}`, admin);
            const given = confirm?.replace(/[\ud800-\udfff]/g, '');
            if (given === undefined || given === '') expected = 422;
            else if (current === undefined || !made.includes(id)) expected = 404;
            else expected = sameName(current, given) ? 200 : 422;
            if (res.status === 200) {
              names.delete(id);
              expect(res.json(), label).toMatchObject({ id, name: current });
              expect(t.sqlite.prepare('select count(*) from tenants where id = ?').pluck().get(id), label).toBe(0);
            }
          }
          checkApi(res, label, /^(query:confirm|\/name|\/x|)$/);
          expect(res.status, `${label}\n→ ${res.text.slice(0, 500)}`).toBe(expected);
          if (res.status === 409) expect([...names.keys()], `${label}: 409 names the holder`).toContain(res.json().tenant);
          await settle();
          if (res.status >= 400) expect(fingerprint(), `${label}: a refusal changed rows`).toBe(before);
        }
        // The list is the model: each live tenant with its name, none deleted.
        const listed = (await call('GET', '/v1/tenants', admin)).json().tenants as Array<{ id: string; name: string }>;
        expect(new Map(listed.map((x) => [x.id, x.name]))).toEqual(names);
      }),
      { ...settings(5), numRuns: Math.max(5, Math.floor(RUNS / 2)) },
    );
  });
});

describe('a tenant deleted while its own calls are under way', () => {
  it('answers each call below 500 (a refusal problem+json), and leaves no row of the tenant in any table', async () => {
    let n = 0;
    const kinds = ['render', 'usage', 'mint', 'append', 'report', 'list', 'rename', 'delete-again', 'proxy', 'proxy-session', 'key'] as const;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.constantFrom(...kinds), { minLength: 3, maxLength: 12 }), fc.nat(12), async (calls, deleteAt) => {
        const name = `Doomed ${++n}`;
        const made = await call('POST', '/v1/tenants', { key: ADMIN_KEY, body: JSON.stringify({ name }) });
        expect(made.status, made.text).toBe(201);
        const { tenant: id, api_key: key } = made.json() as { tenant: string; api_key: string };
        const post = (path: string, body: unknown) => call('POST', path, { key, body: JSON.stringify(body) });
        const doc = (await post('/v1/artifacts', { kind: 'document', content: `doc of ${name}` })).json().id as string;
        const bnd = (await post('/v1/bundles', { members: [doc] })).json().id as string;
        const ses = (await post('/v1/sessions', { base: bnd })).json().id as string;
        expect(ses, name).toMatch(/^ses_/);
        const rendered: string[] = [];
        for (let i = 0; i < 3; i++) rendered.push((await post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 8, prefix: [doc], messages: [{ role: 'user', content: `r${i}` }] } })).json().request_id);
        const proxy = (headers: Record<string, string>) =>
          call('POST', '/proxy/anthropic/v1/messages', { key, as: 'proxy', headers: { 'x-api-key': 'sk-ant-x', ...headers }, body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }) });
        const one = (kind: (typeof kinds)[number], i: number) => {
          switch (kind) {
            case 'render': return post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 8, prefix: [doc], messages: [{ role: 'user', content: `c${i}` }] } });
            case 'usage': return post('/v1/usage', { request_id: rendered[i % 3], usage: anthropicUsage(50, 0, 0) });
            case 'mint': return post('/v1/artifacts', { kind: 'system', content: `sys ${i}` });
            case 'append': return post(`/v1/sessions/${ses}/messages`, { messages: [{ role: 'user', content: `m${i}` }] });
            case 'report': return call('GET', `/v1/reports/handles/${doc}?versions=2`, { key });
            case 'list': return call('GET', `/v1/requests?handle=${doc}&class=cold`, { key });
            // Its own name in another case: the deletion's confirm holds whichever lands first.
            case 'rename': return call('PATCH', `/v1/tenants/${id}`, { key: ADMIN_KEY, body: JSON.stringify({ name: i % 2 ? name.toUpperCase() : ` ${name.toLowerCase()}` }) });
            case 'delete-again': return call('DELETE', `/v1/tenants/${id}?confirm=${encodeURIComponent(i % 2 ? name : 'nope')}`, { key: ADMIN_KEY });
            case 'proxy': return proxy({ 'x-ph-prefix': doc });
            case 'proxy-session': return proxy({ 'x-ph-session': ses });
            case 'key': return call('POST', `/v1/tenants/${id}/keys`, { key: ADMIN_KEY });
          }
        };
        // The deletion is sent among the calls, all at once.
        const at = deleteAt % (calls.length + 1);
        const pending = calls.map((kind, i) => ({ kind: kind as string, send: () => one(kind, i) }));
        pending.splice(at, 0, { kind: 'delete', send: () => call('DELETE', `/v1/tenants/${id}?confirm=${encodeURIComponent(name)}`, { key: ADMIN_KEY }) });
        const answers = await Promise.all(pending.map(async ({ kind, send }) => ({ kind, res: await send() })));
        for (const { kind, res } of answers) checkApi(res, `${kind} while ${id} is deleted`, /^(query:confirm|\/name|header:x-ph-session|\/.*|)$/);
        // It is deleted: by this DELETE, or by another with its name that came first (this one then a 404, or joined to it).
        const deletes = answers.filter((a) => a.kind.startsWith('delete'));
        expect(deletes.map((a) => a.res.status), `calls ${calls.join(', ')}`).toContain(200);
        expect([200, 404], answers[at]!.res.text).toContain(answers[at]!.res.status);
        // What a call under way left behind (a proxied turn's reconciliation, its session append) writes nothing.
        for (let i = 0; i < 20 && t.services.proxyOrder.pending > 0; i++) await new Promise((r) => setTimeout(r, 5));
        await settle();
        const left = tables.flatMap((table) =>
          (t.sqlite.prepare(`select * from "${table}"`).all() as unknown[]).map((r) => JSON.stringify(r)).filter((r) => [id, ses, doc, bnd].some((x) => r.includes(x))).map((r) => `${table}: ${r.slice(0, 200)}`),
        );
        expect(left, `calls ${calls.join(', ')}, the deletion at ${at}`).toEqual([]);
        expect((await call('GET', '/v1/tenants', { key: ADMIN_KEY })).json().deleting).toEqual([]);
      }),
      { ...settings(6), numRuns: Math.max(4, Math.floor(RUNS / 4)) },
    );
  });
});
