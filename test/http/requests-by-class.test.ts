// GET /v1/requests?class=: the requests behind a leak figure ("drift: 40,000 tokens in 12 requests"), over real HTTP on
// a database file, with a history the reconciler classes: cold, captured, drift (a time inline before the prompt),
// expired (ten minutes unused), unconfirmed, below_minimum (Haiku 4.5 under its minimum), and a call not reported.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientFor, createTestApp, listen, type Client, type TestApp } from '../helpers/app';
import { mintSystem, userMessage } from '../helpers/factories';
import { BIN, runNode } from '../helpers/processes';
import { allRequestPages, getRequests, type RequestPage } from '../helpers/request-pages';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report, type Rendered } from '../helpers/scenario';

const MIN = 60_000;
let dir: string;
let t: TestApp;
let server: Awaited<ReturnType<typeof listen>>;
let client: Client;
let key: string;
let sys: { id: string };
let doc: { id: string };
const ids: Record<string, string> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ph-by-class-'));
  t = createTestApp({ databasePath: join(dir, 'db.sqlite') });
  server = await listen(t.app);
  const me = t.tenant();
  key = me.key;
  client = clientFor({ request: (path: string, init?: RequestInit) => fetch(`${server.base}${path}`, init) }, key);
  sys = await mintSystem(client, LONG_SYSTEM);
  doc = await mintSystem(client, 'A handbook chapter on refunds. '.repeat(400));
  const written = (r: Rendered) => anthropicUsage(promptTokens(r), 0, r.breakpoints.at(-1)!.token_end);
  const read = (r: Rendered) => anthropicUsage(promptTokens(r), r.breakpoints.at(-1)!.token_end, 0);
  const call = async (name: string, system: unknown[], usage: (r: Rendered) => object, model = 'claude-sonnet-4-5') => {
    const r = await renderAnthropic(client, { model, system, messages: [userMessage(name)] });
    ids[name] = r.request_id;
    await report(client, t, r, usage(r));
  };
  const h = (id: string) => ({ type: 'handle', ref: id });
  await call('first', [h(sys.id)], written);
  t.clock.advance(MIN);
  await call('read', [h(sys.id)], read);
  t.clock.advance(MIN);
  await call('stamp1', [{ type: 'text', text: 'Now: 10:00' }, h(sys.id)], written);
  t.clock.advance(MIN);
  await call('stamp2', [{ type: 'text', text: 'Now: 10:01' }, h(sys.id)], written);
  t.clock.advance(10 * MIN);
  await call('late', [h(sys.id)], written);
  await call('doc', [h(doc.id)], written);
  t.clock.advance(MIN);
  await call('both', [h(doc.id), h(sys.id)], written);
  await call('haiku1', [h(sys.id)], (r) => anthropicUsage(promptTokens(r), 0, 0), 'claude-haiku-4-5');
  t.clock.advance(MIN);
  await call('haiku2', [h(sys.id)], (r) => anthropicUsage(promptTokens(r), 0, 0), 'claude-haiku-4-5');
  ids.unreported = (await renderAnthropic(client, { system: [h(sys.id)], messages: [userMessage('unreported')] })).request_id;
  await t.services.writes.idle();
});
afterAll(async () => {
  await server.close();
  t.close();
  rmSync(dir, { recursive: true, force: true });
});


interface Line {
  id: string;
  classes: Record<string, number>;
  class_tokens?: number;
}
type Page = RequestPage<Line>;

const get = (query: string, base = server.base, as = key) => getRequests<Page>(base, as, query);

/** Every page of a query, following next_cursor. */
const allPages = (query: string, base = server.base) => allRequestPages<Page>(base, key, query);

const SYS_TOKENS = 2596;
const DOC_TOKENS = 2884;
/** The history's requests with tokens of each class, newest start first: [handle ('' any), class, names, tokens each]. */
const CASES: Array<[() => string, string, string[], number[]]> = [
  [() => '', 'drift', ['both', 'stamp2', 'stamp1'], [SYS_TOKENS, SYS_TOKENS, SYS_TOKENS]],
  [() => sys.id, 'drift', ['both', 'stamp2', 'stamp1'], [SYS_TOKENS, SYS_TOKENS, SYS_TOKENS]],
  [() => doc.id, 'drift', [], []],
  // Cold: the inline user message of every call is cold too, but it is no handle's: 'read' is not listed.
  [() => '', 'cold', ['haiku1', 'doc', 'first'], [SYS_TOKENS, DOC_TOKENS, SYS_TOKENS]],
  [() => sys.id, 'cold', ['haiku1', 'first'], [SYS_TOKENS, SYS_TOKENS]],
  [() => doc.id, 'cold', ['doc'], [DOC_TOKENS]],
  [() => '', 'expired', ['late'], [SYS_TOKENS]],
  [() => doc.id, 'unconfirmed', ['both'], [DOC_TOKENS]],
  [() => sys.id, 'unconfirmed', [], []],
  [() => '', 'below_minimum', ['haiku2'], [SYS_TOKENS]],
  [() => '', 'captured', ['read'], [SYS_TOKENS]],
  [() => '', 'lookback', [], []],
];
/** The classes read from the list in its order (most requests have them); every other one has an index. */
const SCANNED = ['captured', 'cold'];
const query = (handle: string, cls: string) => `class=${cls}${handle ? `&handle=${handle}` : ''}`;

describe('GET /v1/requests?class=', () => {
  it('lists exactly the reconciled requests with tokens of the class (on the handle, or on any handle), each with its tokens of it', async () => {
    for (const [handle, cls, names, tokens] of CASES) {
      const res = await get(`${query(handle(), cls)}&limit=500`);
      expect(res.status).toBe(200);
      expect(res.json.requests.map((r) => r.id), query(handle(), cls)).toEqual(names.map((n) => ids[n]));
      expect(res.json.requests.map((r) => r.class_tokens), query(handle(), cls)).toEqual(tokens);
      // The line's classes are the handle's (or every handle's), the filtered class among them with the same figure.
      for (const r of res.json.requests) expect(r.classes[cls]).toBe(r.class_tokens);
      // A rare class is read from its index: the page is exact, and says nothing of a scan. Captured and cold (most
      // requests have them) are read from the list: the page read the whole of it (of the handle's requests: nine of
      // sys's, two of doc's) once.
      const scan = SCANNED.includes(cls) ? [false, { '': 10, [sys.id]: 9, [doc.id]: 2 }[handle()]] : [undefined, undefined];
      expect([res.json.next_cursor, res.json.scan_budget_spent, res.json.scanned]).toEqual([null, ...scan]);
    }
    // Both handles' segments of one request: with no handle, each class's tokens of every handle.
    const both = (await get('class=unconfirmed')).json.requests;
    expect(both.map((r) => [r.id, r.classes])).toEqual([[ids.both, { unconfirmed: DOC_TOKENS, drift: SYS_TOKENS }]]);
    // No filter: every request, no class_tokens and no scan figures (the list as it was).
    const plain = (await get('limit=500')).json;
    expect([plain.requests.length, plain.requests[0]!.class_tokens, plain.scanned, plain.scan_budget_spent]).toEqual([10, undefined, undefined, undefined]);
  });

  it('model filters by the model as sent, alone (reconciled or not) or with a class', async () => {
    const ofModel = async (q: string) => (await get(q)).json.requests.map((r) => r.id);
    expect(await ofModel('model=claude-haiku-4-5')).toEqual([ids.haiku2, ids.haiku1]);
    expect(await ofModel('model=claude-haiku-4-5&class=cold')).toEqual([ids.haiku1]);
    expect(await ofModel(`model=claude-sonnet-4-5&class=cold&handle=${sys.id}`)).toEqual([ids.first]);
    expect((await ofModel('model=claude-sonnet-4-5&limit=2'))).toEqual([ids.unreported, ids.both]);
    expect(await ofModel('model=gpt-5')).toEqual([]);
  });

  it('pages the filtered list: every match once, in order; only the last page short', async () => {
    for (const [handle, cls, names] of CASES)
      for (const limit of [1, 2, 3]) {
        const q = `${query(handle(), cls)}&limit=${limit}`;
        const pages = await allPages(q);
        expect(pages.flatMap((p) => p.requests.map((r) => r.id)), q).toEqual(names.map((n) => ids[n]));
        // Full pages and a last one holding the rest; no empty page after the last match.
        expect(pages.map((p) => p.requests.length), q).toEqual(names.length ? [...Array(Math.ceil(names.length / limit)).keys()].map((i) => Math.min(limit, names.length - i * limit)) : [0]);
        expect(pages.every((p) => p.scan_budget_spent === (SCANNED.includes(cls) ? false : undefined)), q).toBe(true);
      }
  });

  it('a page reads at most the scan budget of the list: short pages say so, and their cursor lists every match still', async () => {
    // The same database served with a budget of a few rows a page (the default is 2,000).
    for (const budget of [1, 2, 3, 5]) {
      const small = createTestApp({ databasePath: join(dir, 'db.sqlite'), config: { listScanBudget: budget } });
      const served = await listen(small.app);
      try {
        for (const [handle, cls, names] of CASES)
          for (const limit of [1, 2, 4]) {
            const q = `${query(handle(), cls)}&limit=${limit}`;
            const pages = await allPages(q, served.base);
            expect(pages.flatMap((p) => p.requests.map((r) => r.id)), `${q} budget ${budget}`).toEqual(names.map((n) => ids[n]));
            for (const p of pages.slice(0, -1)) if (p.requests.length < limit) expect(p.scan_budget_spent, `${q} budget ${budget}`).toBe(true);
            // No page reads past the budget; together they read the list once over (a row before a page's first match at
            // most twice). A rare class's pages read its index, whatever the budget: full pages, then the rest.
            if (SCANNED.includes(cls)) for (const p of pages) expect(p.scanned!, q).toBeLessThanOrEqual(budget);
            else expect(pages.map((p) => [p.requests.length, p.scanned]), q).toEqual(pages.map((_, i) => [Math.min(limit, names.length - i * limit), undefined]));
          }
        // The newest cold request is the third: a budget of 2 reads the first two rows, answers none, and goes on from there.
        if (budget === 2) {
          const first = await get('class=cold', served.base);
          expect([first.json.requests, first.json.scanned, first.json.scan_budget_spent]).toEqual([[], 2, true]);
          const second = await get(`class=cold&cursor=${first.json.next_cursor}`, served.base);
          expect([second.json.requests.map((r) => r.id), second.json.scanned, second.json.scan_budget_spent]).toEqual([[ids.haiku1], 2, true]);
          // The CLI says where a page stopped, and its next page keeps the filter.
          const run = await runNode([BIN, 'requests', '--class', 'cold'], { PH_URL: served.base, PH_API_KEY: key, PH_DATA_DIR: join(dir, 'none') });
          expect([run.code, run.out], run.err).toEqual([0, `no requests on this page with cold\n\nthis page read 2 requests of the list (the most one page reads) and stopped there\n\nmore: --cursor ${first.json.next_cursor} --class cold\n`]);
          // A rare class's page is exact, whatever the budget: the expired request, sixth in the list, on the first page,
          // and the CLI says nothing of a scan.
          const expired = await get('class=expired', served.base);
          expect([expired.json.requests.map((r) => r.id), expired.json.next_cursor, expired.json.scanned, expired.json.scan_budget_spent]).toEqual([[ids.late], null, undefined, undefined]);
          const quiet = await runNode([BIN, 'requests', '--class', 'expired'], { PH_URL: served.base, PH_API_KEY: key, PH_DATA_DIR: join(dir, 'none') });
          expect([quiet.code, quiet.out.includes(ids.late!), quiet.out.includes('stopped there')], quiet.err).toEqual([0, true, false]);
        }
      } finally {
        await served.close();
        small.close();
      }
    }
  });

  it('refuses an unknown class naming the classes it takes, and a handle of another tenant as the list does (404)', async () => {
    for (const bad of ['leak', 'Drift', '', 'referenced', 'opportunity']) {
      const res = await get(`class=${bad}`);
      expect([res.status, res.type, res.json.code, res.json.errors], bad).toEqual([
        422,
        'application/problem+json',
        'invalid_request',
        [{ pointer: 'query:class', detail: 'class must be one of captured, bonus, unconfirmed, unknown, cold, drift, expired, concurrent, below_minimum, no_breakpoint, lookback' }],
      ]);
    }
    expect((await get('model=')).json.errors).toEqual([{ pointer: 'query:model', detail: expect.any(String) }]);
    const other = t.tenant();
    for (const q of [`class=drift&handle=${sys.id}`, `handle=${sys.id}`]) {
      const res = await get(q, server.base, other.key);
      expect([res.status, res.type, res.json.code], q).toEqual([404, 'application/problem+json', 'not_found']);
    }
    // Its own list: none of this tenant's requests.
    expect((await get('class=drift', server.base, other.key)).json.requests).toEqual([]);
  });
});
