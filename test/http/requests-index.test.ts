// GET /v1/requests finds a rare class's requests and the calls through no handle by an index (migration 0019,
// request_index), not by reading the list: over real HTTP on a database file, a history of 6,000 calls with 5
// drifts far apart is answered in one page. Each filter's pages are compared with a brute-force filter of the whole
// list (a fast-check property over class, handle or type, range and page size); pruning and a tenant's deletion leave
// the index as the requests they keep; a database built before 0019 and migrated answers as one built after it.
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INDEXED_CLASSES } from '../../src/domain/reconcile/request-summary';
import { CLASSES } from '../../src/domain/reconcile/waterfall';
import { ADMIN_KEY, clientFor, createTestApp, listen, type TestApp } from '../helpers/app';
import { FakeClock } from '../helpers/clock';
import { mintSystem } from '../helpers/factories';
import { asBefore0019 } from '../helpers/migrations';
import { allRequestPages, getRequests, type RequestPage } from '../helpers/request-pages';
import { anthropicUsage, LONG_SYSTEM } from '../helpers/scenario';

const CALLS = 6000;
const STEP = 20_000;
const MIN = 60_000;
const DAY = 86_400_000;
/** The calls that drift (a time inline before the system prompt), far apart. */
const DRIFT_AT = [700, 1900, 3100, 4300, 5500];
/** The call that comes after ten minutes without one: the system prompt expired. */
const EXPIRED_AT = 3600;

interface Line {
  id: string;
  model: string;
  started_at: string;
  classes: Record<string, number>;
  class_tokens?: number;
}
type Page = RequestPage<Line>;

let dir: string;
let file: string;
let t: TestApp;
let server: Awaited<ReturnType<typeof listen>>;
let key: string;
let tid: string;
let sys: string;
let doc: string;
const ids = { drift: [] as string[], expired: '', inline: [] as string[] };

/**
 * The history, rendered and reconciled through the domain in chunks (6,000 calls over HTTP would take minutes): every
 * 20 seconds a call on the system prompt that reads it from the cache, but for the drifts and the expired call; every
 * thousandth pair of calls at 250 on Haiku (under its minimum: cold, then below_minimum), at 500 with the system prompt inline (through no handle), at
 * 900 on a document (cold, then expired each time).
 */
async function build(app: TestApp): Promise<void> {
  let pending: Array<{ id: string; usage: object; at: number }> = [];
  const flush = async () => {
    const results = await app.services.reconciler.ingestMany(
      tid,
      pending.map((p) => ({ request_id: p.id, usage: p.usage, started_at: p.at, first_byte_at: p.at + 500, finished_at: p.at + 1000 })),
    );
    expect(results.filter((r) => !r.ok)).toEqual([]);
    pending = [];
  };
  for (let i = 0; i < CALLS; i++) {
    if (i === EXPIRED_AT) app.clock.advance(10 * MIN);
    const ref = (id: string) => ({ type: 'handle', ref: id });
    const kind = DRIFT_AT.includes(i) ? 'drift' : i % 1000 === 250 || i % 1000 === 251 ? 'haiku' : i % 1000 === 500 ? 'inline' : i % 1000 === 900 ? 'doc' : i === 0 || i === EXPIRED_AT ? 'write' : 'read';
    const system = kind === 'drift' ? [{ type: 'text', text: `Now: call ${i}` }, ref(sys)] : kind === 'inline' ? LONG_SYSTEM : kind === 'doc' ? [ref(doc)] : [ref(sys)];
    const model = kind === 'haiku' ? 'claude-haiku-4-5' : 'claude-sonnet-4-5';
    const body = JSON.stringify({ model, max_tokens: 256, system, messages: [{ role: 'user', content: `question ${i}` }] });
    const r = app.services.requests.render({ tenantId: tid, format: 'anthropic', bodyText: body, pointer: '/request' });
    const total = r.segments.at(-1)!.token_end;
    const written = r.breakpoints.at(-1)?.token_end ?? 0;
    const usage = kind === 'read' ? anthropicUsage(total, written, 0) : kind === 'haiku' || kind === 'inline' ? anthropicUsage(total, 0, 0) : anthropicUsage(total, 0, written);
    pending.push({ id: r.requestId, usage, at: app.clock.now() });
    if (kind === 'drift') ids.drift.unshift(r.requestId);
    if (i === EXPIRED_AT) ids.expired = r.requestId;
    if (kind === 'inline') ids.inline.unshift(r.requestId);
    if (pending.length === 200) await flush();
    app.clock.advance(STEP);
  }
  await flush();
  await app.services.writes.idle();
}

const get = (query: string) => getRequests<Page>(server.base, key, query);
const allPages = (query: string) => allRequestPages<Page>(server.base, key, query);
const idsOf = (pages: Page[]) => pages.flatMap((p) => p.requests.map((r) => r.id));

/** The whole list, newest start first, and each handle's lines (their classes that handle's), read once. */
let everything: Line[];
const byHandle: Record<string, Map<string, Line>> = {};

/** What an index answers, filtered by brute force from the whole list: the same order, the same lines. */
function bruteForce(cls: string, within: string, from?: number, to?: number): string[] {
  const inRange = (l: Line) => {
    const day = Math.floor(Date.parse(l.started_at) / DAY);
    return (from === undefined || day >= Math.floor(from / DAY)) && (to === undefined || day <= Math.floor(to / DAY));
  };
  const has = (l: Line) => {
    if (within === '') return (l.classes[cls] ?? 0) > 0;
    if (within === 'artifact') return [sys, doc].some((h) => (byHandle[h]!.get(l.id)?.classes[cls] ?? 0) > 0);
    if (within === 'bundle' || within === 'session') return false;
    return (byHandle[within]!.get(l.id)?.classes[cls] ?? 0) > 0;
  };
  return everything.filter((l) => inRange(l) && has(l)).map((l) => l.id);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ph-requests-index-'));
  file = join(dir, 'db.sqlite');
  t = createTestApp({ databasePath: file, clock: new FakeClock(Date.UTC(2026, 0, 1, 6, 0, 0)) });
  const me = t.tenant();
  key = me.key;
  tid = me.id;
  sys = (await mintSystem(me.client, LONG_SYSTEM)).id;
  doc = (await mintSystem(me.client, 'A handbook chapter on refunds. '.repeat(400))).id;
  await build(t);
  server = await listen(t.app);
  everything = (await allPages('limit=500')).flatMap((p) => p.requests);
  for (const h of [sys, doc]) byHandle[h] = new Map((await allPages(`handle=${h}&limit=500`)).flatMap((p) => p.requests.map((r) => [r.id, r] as const)));
}, 600_000);
afterAll(async () => {
  await server?.close();
  t?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a rare class among 6,000 requests', () => {
  it('one page holds all 5 drifts, exact: on any handle, on the handle, on its type; no scan figures', async () => {
    expect(everything).toHaveLength(CALLS);
    for (const q of ['class=drift', `class=drift&handle=${sys}`, 'class=drift&type=artifact']) {
      const res = await get(q);
      expect(res.status, q).toBe(200);
      expect(res.json.requests.map((r) => r.id), q).toEqual(ids.drift);
      expect([res.json.next_cursor, res.json.scanned, res.json.scan_budget_spent], q).toEqual([null, undefined, undefined]);
      for (const r of res.json.requests) expect(r.class_tokens, q).toBeGreaterThan(0);
    }
    // Not the document's, nor a session's.
    for (const q of [`class=drift&handle=${doc}`, 'class=drift&type=session']) expect((await get(q)).json, q).toEqual({ requests: [], next_cursor: null });
    // A page of 2: full pages, then the rest; the cursors neither skip nor repeat one.
    const pages = await allPages('class=drift&limit=2');
    expect([pages.map((p) => p.requests.length), idsOf(pages)]).toEqual([[2, 2, 1], ids.drift]);
    // The expired call, and the brute force's answer for it.
    expect((await get('class=expired&type=artifact&limit=500')).json.requests.map((r) => r.id)).toContain(ids.expired);
    // The CSV as the JSON, without the scan headers.
    const csv = await fetch(`${server.base}/v1/requests?class=drift&format=csv`, { headers: { authorization: `Bearer ${key}` } });
    expect([csv.status, csv.headers.get('x-ph-scanned'), (await csv.text()).split('\n').filter((l) => l.includes('req_')).length]).toEqual([200, null, 5]);
  });

  it('from and to: the drifts of those whole UTC days', async () => {
    const days = [...new Set(everything.map((l) => l.started_at.slice(0, 10)))];
    expect(days.length).toBeGreaterThan(1);
    for (const day of days) {
      const at = Date.parse(`${day}T00:00:00Z`);
      const q = `class=drift&from=${day}&to=${day}`;
      expect(idsOf(await allPages(q)), q).toEqual(bruteForce('drift', '', at, at));
    }
    const second = Date.parse(`${days[1]}T00:00:00Z`);
    expect(idsOf(await allPages(`class=drift&from=${days[1]}&limit=1`))).toEqual(bruteForce('drift', '', second));
    expect(idsOf(await allPages(`class=drift&to=${days[0]}&limit=1`))).toEqual(bruteForce('drift', '', undefined, Date.parse(`${days[0]}T00:00:00Z`)));
  });

  it('every rare class, on any handle, a handle or a type, in any range and page size: the brute-force filter of the whole list, page by page', async () => {
    const days = [...new Set(everything.map((l) => Date.parse(`${l.started_at.slice(0, 10)}T00:00:00Z`)))];
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...[...INDEXED_CLASSES]),
        fc.constantFrom('', sys, doc, 'artifact', 'bundle', 'session'),
        fc.option(fc.constantFrom(...days), { nil: undefined }),
        fc.option(fc.constantFrom(...days), { nil: undefined }),
        fc.integer({ min: 1, max: 4 }),
        async (cls, within, a, b, limit) => {
          const [from, to] = a !== undefined && b !== undefined && a > b ? [b, a] : [a, b];
          return check(cls, within, from, to, limit);
        },
      ),
      { numRuns: 60 },
    );
    async function check(cls: string, within: string, from?: number, to?: number, limit = 3): Promise<boolean> {
      const q = `class=${cls}${within.includes('_') ? `&handle=${within}` : within ? `&type=${within}` : ''}${from !== undefined ? `&from=${from}` : ''}${to !== undefined ? `&to=${to}` : ''}&limit=${limit}`;
      const pages = await allPages(q);
      const expected = bruteForce(cls, within, from, to);
      expect(idsOf(pages), q).toEqual(expected);
      // Exact pages: full ones, then the rest (one empty page when there is nothing).
      expect(pages.map((p) => p.requests.length), q).toEqual(expected.length ? pages.map((_, i) => Math.min(limit, expected.length - i * limit)) : [0]);
      expect(pages.every((p) => p.scanned === undefined && p.scan_budget_spent === undefined), q).toBe(true);
      if (expected.length) seen.add(cls);
      return true;
    }
    for (const cls of CLASSES.filter((c) => INDEXED_CLASSES.has(c))) await check(cls, '', undefined, undefined, 2);
    // The history has several of them, so the comparisons are not all of empty lists.
    expect([...seen].sort()).toEqual(expect.arrayContaining(['below_minimum', 'drift', 'expired']));
  });

  it('no_handle is an exact page of its index; a model is read from the list, or from the index beside a rare class or no_handle, within the budget', async () => {
    const inline = await allPages('no_handle=true&limit=4');
    expect([idsOf(inline), inline.map((p) => p.scanned)]).toEqual([ids.inline, [undefined, undefined]]);
    // The model is checked on the index's rows: it reads those only (six calls through no handle).
    const none = await get('no_handle=true&model=claude-haiku-4-5');
    expect([none.json.requests, none.json.scanned, none.json.scan_budget_spent]).toEqual([[], ids.inline.length, false]);
    expect(idsOf(await allPages('no_handle=true&model=claude-sonnet-4-5&limit=1'))).toEqual(ids.inline);
    // No index holds a model: its requests are read from the list, 2,000 a page at most.
    const haiku = everything.filter((l) => l.model === 'claude-haiku-4-5').map((l) => l.id);
    expect(haiku).toHaveLength((2 * CALLS) / 1000);
    const pages = await allPages('model=claude-haiku-4-5&limit=4');
    expect(idsOf(pages)).toEqual(haiku);
    expect(pages.every((p) => p.scanned! <= 2000)).toBe(true);
    expect(pages.some((p) => p.scan_budget_spent)).toBe(true);
    const both = await get('class=below_minimum&model=claude-haiku-4-5&limit=500');
    expect([both.json.requests.map((r) => r.id), both.json.scanned]).toEqual([bruteForce('below_minimum', '').filter((id) => haiku.includes(id)), bruteForce('below_minimum', '').length]);
  });
});

describe('keeping the index', () => {
  it('a database built before 0019, migrated, answers as the one built after it, to the byte', async () => {
    const queries = ['class=drift', `class=drift&handle=${sys}`, 'class=expired&type=artifact&limit=500', 'class=below_minimum&limit=500', 'class=unknown', 'no_handle=true', 'no_handle=true&model=claude-sonnet-4-5&limit=2', 'class=below_minimum&model=claude-haiku-4-5', `class=expired&handle=${doc}&limit=2`];
    const answers = async (base: string) => Promise.all(queries.map(async (q) => (await fetch(`${base}/v1/requests?${q}`, { headers: { authorization: `Bearer ${key}` } })).text()));
    const now = await answers(server.base);
    const index = () => (t.sqlite.prepare('select * from request_classes order by tenant_id, class, within, started_at, request_id').all() as unknown[]);
    const starts = (db: Database.Database) => db.prepare('select * from request_starts order by request_id').all();
    const written = { index: index(), starts: starts(t.sqlite) };
    expect(written.index.length).toBeGreaterThan(0);
    await t.services.writes.idle();
    t.sqlite.pragma('wal_checkpoint(TRUNCATE)');
    const copy = join(dir, 'before.sqlite');
    copyFileSync(file, copy);
    const raw = new Database(copy);
    asBefore0019(raw);
    raw.close();
    const upgraded = createTestApp({ databasePath: copy, clock: t.clock });
    const served = await listen(upgraded.app);
    try {
      expect(upgraded.sqlite.prepare('select * from request_classes order by tenant_id, class, within, started_at, request_id').all()).toEqual(written.index);
      expect(starts(upgraded.sqlite)).toEqual(written.starts);
      expect(await answers(served.base)).toEqual(now);
    } finally {
      await served.close();
      upgraded.close();
    }
  });

  it('a request without a summary (reconciled before 0012) is indexed from its outcome', async () => {
    const copy = join(dir, 'no-summaries.sqlite');
    t.sqlite.pragma('wal_checkpoint(TRUNCATE)');
    copyFileSync(file, copy);
    const raw = new Database(copy);
    asBefore0019(raw);
    raw.prepare('delete from request_summaries').run();
    raw.close();
    const upgraded = createTestApp({ databasePath: copy, clock: t.clock });
    try {
      expect(upgraded.sqlite.prepare('select * from request_classes order by tenant_id, class, within, started_at, request_id').all()).toEqual(
        t.sqlite.prepare('select * from request_classes order by tenant_id, class, within, started_at, request_id').all(),
      );
      expect(upgraded.sqlite.prepare('select request_id from request_starts where no_handle = 1 order by started_at desc').pluck().all()).toEqual(ids.inline);
    } finally {
      upgraded.close();
    }
  });

  it('pruning deletes the index rows of the requests it deletes; the rest are listed as before', async () => {
    const copy = join(dir, 'pruned.sqlite');
    t.sqlite.pragma('wal_checkpoint(TRUNCATE)');
    copyFileSync(file, copy);
    // Thirty days on, the requests rendered before the third drift's start are pruned (a day: the first of them).
    const clock = new FakeClock(t.clock.now());
    const pruned = createTestApp({ databasePath: copy, clock });
    const served = await listen(pruned.app);
    try {
      const firstDay = Math.floor(Date.parse(everything.at(-1)!.started_at) / DAY);
      const keep = everything.filter((l) => Math.floor(Date.parse(l.started_at) / DAY) > firstDay).map((l) => l.id);
      clock.set((firstDay + 1) * DAY + 30 * DAY);
      const res = await clientFor(pruned.app, ADMIN_KEY).post('/v1/prune', { older_than_days: 30 });
      expect(res.status, res.text).toBe(200);
      const left = pruned.sqlite.prepare('select count(*) from requests').pluck().get() as number;
      expect(left).toBeLessThan(CALLS);
      const stored = new Set(pruned.sqlite.prepare('select id from requests').pluck().all() as string[]);
      // No row of the index names a request that is gone; the list of drifts is the stored ones.
      expect(pruned.sqlite.prepare('select count(*) from request_classes where request_id not in (select id from requests)').pluck().get()).toBe(0);
      expect(pruned.sqlite.prepare('select count(*) from request_starts where request_id not in (select id from requests)').pluck().get()).toBe(0);
      const drift = (await getRequests<Page>(served.base, key, 'class=drift')).json.requests.map((r) => r.id);
      expect(drift).toEqual(ids.drift.filter((id) => stored.has(id)));
      expect(drift.length).toBeLessThan(ids.drift.length);
      expect(drift.length).toBeGreaterThan(0);
      expect(keep.every((id) => stored.has(id))).toBe(true);
      const inline = (await getRequests<Page>(served.base, key, 'no_handle=true')).json.requests.map((r) => r.id);
      expect(inline).toEqual(ids.inline.filter((id) => stored.has(id)));
    } finally {
      await served.close();
      pruned.close();
    }
  });

  it("a tenant's deletion deletes its index rows, and another tenant's stay", async () => {
    const copy = join(dir, 'deleted.sqlite');
    t.sqlite.pragma('wal_checkpoint(TRUNCATE)');
    copyFileSync(file, copy);
    const app = createTestApp({ databasePath: copy, clock: t.clock });
    try {
      // Another tenant with a drift of its own.
      const other = app.tenant();
      const o = (await mintSystem(other.client, LONG_SYSTEM)).id;
      for (const stamp of ['', 'Now: 1', 'Now: 2']) {
        const system = stamp ? [{ type: 'text', text: stamp }, { type: 'handle', ref: o }] : [{ type: 'handle', ref: o }];
        const r = (await other.client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 5, system, messages: [{ role: 'user', content: 'q' }] } })).json;
        expect((await other.client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(r.segments.at(-1).token_end, 0, r.breakpoints.at(-1).token_end) })).status).toBe(201);
        app.clock.advance(MIN);
      }
      await app.services.writes.idle();
      const theirs = (await other.client.get('/v1/requests?class=drift')).json.requests.map((r: { id: string }) => r.id);
      expect(theirs.length).toBeGreaterThan(0);
      const count = (tenant: string) => app.sqlite.prepare('select count(*) from request_classes where tenant_id = ?').pluck().get(tenant) as number;
      const before = count(other.id);
      expect(count(tid)).toBeGreaterThan(0);
      const name = (await clientFor(app.app, ADMIN_KEY).get('/v1/tenants')).json.tenants.find((x: { id: string }) => x.id === tid).name;
      const res = await clientFor(app.app, ADMIN_KEY).delete(`/v1/tenants/${tid}?confirm=${encodeURIComponent(name)}`);
      expect(res.status, res.text).toBe(200);
      expect([count(tid), count(other.id)]).toEqual([0, before]);
      expect(app.sqlite.prepare('select count(*) from request_starts where tenant_id = ?').pluck().get(tid)).toBe(0);
      expect((await other.client.get('/v1/requests?class=drift')).json.requests.map((r: { id: string }) => r.id)).toEqual(theirs);
    } finally {
      app.close();
    }
  });
});
