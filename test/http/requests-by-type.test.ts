// GET /v1/requests?type=&class= and ?no_handle=true: the requests behind the overview's last two figures without a list
// — the sessions row's leaks (tokens of a class on any session's segments) and the calls through no handle (per model)
// — over real HTTP on a database file, its CSV export, and the CLI's `requests --type … --class …` / `--no-handle`.
// What each list should hold is worked out from each request's own outcome (GET /v1/requests/{id}), and its count and
// tokens are the report's (`by_type.session`, `no_handle`).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { clientFor, createTestApp, listen, type Client, type TestApp } from '../helpers/app';
import { BIN, runNode } from '../helpers/processes';
import { allRequestPages, getRequests, type RequestPage } from '../helpers/request-pages';
import { sessionsAndInline, type SessionsAndInline } from '../ui/seed';

const DAY = 86_400_000;
const CLASSES = ['captured', 'bonus', 'unconfirmed', 'unknown', 'cold', 'drift', 'expired', 'concurrent', 'below_minimum', 'no_breakpoint', 'lookback'];
let dir: string;
let t: TestApp;
let server: Awaited<ReturnType<typeof listen>>;
let client: Client;
let key: string;
let h: SessionsAndInline;
/** Every recorded request in the list's order, with its outcome's segments (null: not reconciled). */
let all: Array<{ id: string; model: string; started: string; segments: Array<{ source: string; path: string[]; classes: Record<string, number> }> | null }>;
let week: string;

interface Line {
  id: string;
  model: string;
  status: string;
  handles: string[];
  classes: Record<string, number>;
  prompt_tokens: number | null;
  class_tokens?: number;
}
type Page = RequestPage<Line>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ph-by-type-'));
  t = createTestApp({ databasePath: join(dir, 'db.sqlite') });
  server = await listen(t.app);
  key = t.tenant().key;
  client = clientFor({ request: (path: string, init?: RequestInit) => fetch(`${server.base}${path}`, init) }, key);
  h = await sessionsAndInline(t, client);
  week = new Date(t.clock.now() - 6 * DAY).toISOString().slice(0, 10);
  const listed = (await client.get('/v1/requests?limit=500')).json as Page;
  all = [];
  for (const r of listed.requests) {
    const full = (await client.get(`/v1/requests/${r.id}`)).json;
    all.push({ id: r.id, model: r.model, started: full.started_at ?? full.rendered_at, segments: full.outcome?.segments ?? null });
  }
});
afterAll(async () => {
  await server.close();
  t.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = (query: string, base = server.base) => getRequests<Page>(base, key, query);

/** Every page of a query, following next_cursor. */
const allPages = (query: string, base = server.base) => allRequestPages<Page>(base, key, query);

const inRange = (r: { started: string }, from?: string) => from === undefined || r.started.slice(0, 10) >= from;
/** A request's tokens of `cls` on segments with a session on their path, from its own outcome. */
const sessionTokens = (r: (typeof all)[number], cls: string) => (r.segments ?? []).filter((s) => s.path.some((p) => p.startsWith('ses_'))).reduce((n, s) => n + (s.classes[cls] ?? 0), 0);

describe('GET /v1/requests?type=session&class=', () => {
  it("lists exactly the requests with tokens of the class on a session's segments: as many as by_type's requests_with, their class_tokens summing to its tokens", async () => {
    const seen = new Set<string>();
    for (const from of [week, undefined]) {
      const bySession = (await client.get(`/v1/reports?by_type=true${from ? `&from=${from}` : ''}`)).json.by_type.session;
      for (const cls of CLASSES) {
        const q = `type=session&class=${cls}&limit=500${from ? `&from=${from}` : ''}`;
        const res = await get(q);
        expect(res.status, q).toBe(200);
        const expected = all.filter((r) => inRange(r, from) && sessionTokens(r, cls) > 0);
        expect(res.json.requests.map((r) => r.id), q).toEqual(expected.map((r) => r.id));
        expect(res.json.requests.map((r) => r.class_tokens), q).toEqual(expected.map((r) => sessionTokens(r, cls)));
        // A line's classes are the sessions' tokens, the filtered class among them with the same figure.
        for (const r of res.json.requests) expect(r.classes[cls], q).toBe(r.class_tokens);
        expect(res.json.requests.length, q).toBe(bySession.requests_with[cls]);
        expect(res.json.requests.reduce((n, r) => n + r.class_tokens!, 0), q).toBe(bySession.tokens[cls]);
        // A rare class's page is read from its index (no scan to speak of); captured and cold from the list.
        expect([res.json.next_cursor, res.json.scan_budget_spent], q).toEqual([null, cls === 'captured' || cls === 'cold' ? false : undefined]);
        if (res.json.requests.length) seen.add(cls);
      }
    }
    // The history holds the sessions' leaks and more, so the lists above are not all empty.
    expect([...seen].sort()).toEqual(['captured', 'cold', 'drift', 'expired', 'unconfirmed', 'unknown']);
    // The classifier's drift is no session's: the tenant-wide list has it, the sessions' does not.
    const drift = (await get('class=drift')).json.requests.map((r) => r.id);
    expect(drift).toContain(h.ids.k2);
    expect((await get('type=session&class=drift')).json.requests.map((r) => r.id)).toEqual([h.ids['c3.2']]);
    // The ten-day-old conversation is listed for all time and not for the week.
    expect((await get('type=session&class=cold')).json.requests.map((r) => r.id)).toContain(h.ids['old-c.1']);
    expect((await get(`type=session&class=cold&from=${week}`)).json.requests.map((r) => r.id)).not.toContain(h.ids['old-c.1']);
  });

  it("the other types' class tokens add up to by_type's: each request's tokens on that type's handles", async () => {
    const byType = (await client.get('/v1/reports?by_type=true')).json.by_type;
    for (const type of ['artifact', 'bundle'])
      for (const cls of ['cold', 'drift', 'captured', 'unconfirmed']) {
        const lines = (await get(`type=${type}&class=${cls}&limit=500`)).json.requests;
        expect(lines.reduce((n, r) => n + r.class_tokens!, 0), `${type} ${cls}`).toBe(byType[type].tokens[cls]);
        expect(lines.length, `${type} ${cls}`).toBeLessThanOrEqual(byType[type].requests_with[cls]);
        if (byType[type].tokens[cls]) expect(lines.length, `${type} ${cls}`).toBeGreaterThan(0);
      }
  });

  it('pages across the scan budget: every match once, in order; no page reads past the budget', async () => {
    const expected = (cls: string) => all.filter((r) => sessionTokens(r, cls) > 0).map((r) => r.id);
    for (const budget of [1, 3, 7]) {
      const small = createTestApp({ databasePath: join(dir, 'db.sqlite'), config: { listScanBudget: budget } });
      const served = await listen(small.app);
      try {
        for (const cls of ['unconfirmed', 'cold', 'expired'])
          for (const limit of [1, 2]) {
            const q = `type=session&class=${cls}&limit=${limit}`;
            const pages = await allPages(q, served.base);
            expect(pages.flatMap((p) => p.requests.map((r) => r.id)), `${q} budget ${budget}`).toEqual(expected(cls));
            for (const p of pages.slice(0, -1)) if (p.requests.length < limit) expect(p.scan_budget_spent, `${q} budget ${budget}`).toBe(true);
            // Cold is read from the list, within the budget; unconfirmed and expired from their index: full pages, unscanned.
            if (cls === 'cold') for (const p of pages) expect(p.scanned!, q).toBeLessThanOrEqual(budget);
            else expect(pages.map((p) => [p.requests.length, p.scanned]), q).toEqual(pages.map((_, i) => [Math.min(limit, expected(cls).length - i * limit), undefined]));
          }
        // The calls through no handle are an index too: whatever the budget, full pages and no empty one.
        const pages = await allPages('no_handle=true&limit=2', served.base);
        const all = (await get('no_handle=true&limit=500')).json.requests.map((r) => r.id);
        expect(pages.flatMap((p) => p.requests.map((r) => r.id)), `no_handle budget ${budget}`).toEqual(all);
        expect(pages.map((p) => [p.requests.length, p.scan_budget_spent]), `no_handle budget ${budget}`).toEqual(pages.map((_, i) => [Math.min(2, all.length - i * 2), undefined]));
      } finally {
        await served.close();
        small.close();
      }
    }
  });
});

describe('GET /v1/requests?no_handle=true', () => {
  it("lists exactly the calls the report's no_handle counts, per model as its rows: not the unreported one, nor one that named an empty session", async () => {
    for (const from of [week, undefined]) {
      const range = from ? `&from=${from}` : '';
      const report = (await client.get(`/v1/reports?${range.slice(1)}`)).json;
      const res = await get(`no_handle=true&limit=500${range}`);
      expect(res.status).toBe(200);
      const expected = Object.values(h.inline)
        .flat()
        .filter((id) => inRange(all.find((r) => r.id === id)!, from));
      expect(res.json.requests.map((r) => r.id).sort(), from).toEqual(expected.sort());
      // In the list's order, each a reconciled call of whole inline prompt.
      expect(res.json.requests.map((r) => r.id), from).toEqual(all.filter((r) => expected.includes(r.id)).map((r) => r.id));
      for (const r of res.json.requests) expect([r.status, r.handles, r.classes, r.class_tokens], r.id).toEqual(['reconciled', [], {}, undefined]);
      expect(res.json.requests.length, from).toBe(report.no_handle.requests);
      for (const model of ['claude-sonnet-4-5', 'claude-haiku-4-5']) {
        const ofModel = (await get(`no_handle=true&model=${model}&limit=500${range}`)).json.requests;
        expect(ofModel.map((r) => r.id), `${model} ${from}`).toEqual(res.json.requests.filter((r) => r.model === model).map((r) => r.id));
        expect(ofModel.length, `${model} ${from}`).toBe((await client.get(`/v1/reports?model=${model}${range}`)).json.no_handle.requests);
      }
    }
    const ids = (await get('no_handle=true')).json.requests.map((r) => r.id);
    expect(ids).not.toContain(h.ids.unreported);
    expect(ids).not.toContain(h.ids['empty-session']);
    expect(ids).toContain(h.ids['old-inline']);
    expect(ids).not.toContain(h.ids.k1);
  });
});

describe('refused combinations', () => {
  it('an unknown type, a type without a class or with a handle, and no_handle other than true or beside a handle, type or class: 422 naming the parameter', async () => {
    const cases: Array<[string, string, string]> = [
      ['type=sessions&class=drift', 'query:type', 'type must be artifact, bundle or session'],
      ['type=session', 'query:type', 'type needs class: it lists the requests with tokens of that class on handles of this type'],
      [`type=session&class=drift&handle=${h.sessions[0]}`, 'query:type', "type is for the tenant's requests, not with handle (a handle is of one type already)"],
      ['no_handle=1', 'query:no_handle', 'no_handle must be true or false'],
      ['no_handle=TRUE', 'query:no_handle', 'no_handle must be true or false'],
      [`no_handle=true&handle=${h.sessions[0]}`, 'query:no_handle', 'no_handle lists the calls that named no handle, so not with handle'],
      ['no_handle=true&type=session&class=cold', 'query:no_handle', 'no_handle lists the calls that named no handle, so not with type'],
      ['no_handle=true&class=cold', 'query:no_handle', "no_handle lists the calls that named no handle, so not with class (their whole prompt is inline: no handle's tokens of any class)"],
    ];
    for (const [q, pointer, detail] of cases) {
      const res = await get(q);
      expect([res.status, res.type, res.json.code], q).toEqual([422, 'application/problem+json', 'invalid_request']);
      expect(res.json.errors!.map((e) => e.pointer), q).toEqual([pointer]);
      expect(res.json.errors![0]!.detail, q).toBe(detail);
    }
    // The same as CSV: a problem, not a CSV.
    const csv = await fetch(`${server.base}/v1/requests?type=session&format=csv`, { headers: { authorization: `Bearer ${key}` } });
    expect([csv.status, csv.headers.get('content-type')]).toEqual([422, 'application/problem+json']);
  });
});

describe('no_handle=false', () => {
  it('is a boolean as the document says, as days, by_type and bom are: false lists what the query lists without it', async () => {
    const doc = (await (await fetch(`${server.base}/openapi.json`)).json()) as { paths: Record<string, { get: { parameters: Array<{ name: string; schema: { type: string } }> } }> };
    expect(doc.paths['/v1/requests']!.get.parameters.find((p) => p.name === 'no_handle')!.schema.type).toBe('boolean');
    for (const q of ['limit=500', 'class=cold&limit=500', `type=session&class=cold&limit=500&from=${week}`, `handle=${h.sessions[0]}&limit=500`]) {
      const without = await get(q);
      const off = await get(`${q}&no_handle=false`);
      expect([off.status, off.json.requests.map((r) => r.id)], q).toEqual([200, without.json.requests.map((r) => r.id)]);
      expect(off.json.requests.length, q).toBeGreaterThan(0);
    }
    // The dashboard reads it as the API does: no filter (here none at all, so the overview).
    const res = await fetch(`${server.base}/ui/requests?no_handle=false&class=cold&period=all`, { headers: { cookie: `ph_ui_key=${key}` } });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<h1>Requests with cold</h1>');
  });
});

describe('CSV export and CLI', () => {
  const rowsOf = (text: string) => parse(text, { columns: true, record_delimiter: ['\r\n', '\n', '\r'] }) as Array<Record<string, string>>;

  it('the CSV of a type and class, and of no_handle, holds the JSON page row for row, with its scan headers when it scanned', async () => {
    for (const q of ['type=session&class=unconfirmed', 'type=session&class=cold&limit=3', 'no_handle=true', 'no_handle=true&model=claude-haiku-4-5']) {
      const json = (await get(q)).json;
      const res = await fetch(`${server.base}/v1/requests?${q}&format=csv`, { headers: { authorization: `Bearer ${key}` } });
      expect([res.status, res.headers.get('content-type')], q).toEqual([200, 'text/csv; charset=utf-8']);
      // Only a page that read the list in its order (cold; a model, on the calls through no handle) says what it read;
      // one read from an index, nothing.
      const scans = q.includes('cold') || q.includes('model');
      expect([res.headers.get('x-ph-scanned'), res.headers.get('x-ph-scan-budget-spent')], q).toEqual(scans ? [String(json.scanned), String(json.scan_budget_spent)] : [null, null]);
      expect(json.scanned === undefined, q).toBe(!scans);
      const rows = rowsOf(await res.text());
      expect(rows.map((r) => r.id), q).toEqual(json.requests.map((r) => r.id));
      if (q.includes('class=')) expect(rows.map((r) => Number(r.class_tokens)), q).toEqual(json.requests.map((r) => r.class_tokens));
      else expect(rows.map((r) => r.handles), q).toEqual(json.requests.map(() => ''));
      // A next page is linked with the same filter.
      if (json.next_cursor) expect(res.headers.get('link'), q).toBe(`</v1/requests?${q}&format=csv&cursor=${json.next_cursor}>; rel="next"`);
    }
  });

  it("requests --type session --class: the sessions' list, its more: line going on with the same filter; --no-handle with --model; bad combinations exit 2", async () => {
    const env = { PH_URL: server.base, PH_API_KEY: key, PH_DATA_DIR: join(dir, 'none') };
    const unconfirmed = (await get('type=session&class=unconfirmed&limit=500')).json.requests.map((r) => r.id);
    expect(unconfirmed.length).toBe(2);
    const first = await runNode([BIN, 'requests', '--type', 'session', '--class', 'unconfirmed', '--limit', '1'], env);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toContain("the sessions' tokens by class");
    const listedIds = (out: string) => [...out.matchAll(/req_[0-9A-Za-z]{21}/g)].map((m) => m[0]);
    const more = /^more: (.*)$/m.exec(first.out)![1]!;
    expect(more).toMatch(/^--cursor \S+ --type session --class unconfirmed --limit 1$/);
    expect(listedIds(first.out.slice(0, first.out.indexOf('more:')))).toEqual(unconfirmed.slice(0, 1));
    const second = await runNode([BIN, 'requests', ...more.split(' ')], env);
    expect([second.code, listedIds(second.out)], second.err).toEqual([0, unconfirmed.slice(1)]);
    expect(second.out).not.toContain('more:');

    const haiku = await runNode([BIN, 'requests', '--no-handle', '--model', 'claude-haiku-4-5'], env);
    expect(haiku.code, haiku.err).toBe(0);
    expect(listedIds(haiku.out)).toEqual((await get('no_handle=true&model=claude-haiku-4-5')).json.requests.map((r) => r.id));
    expect(haiku.out).toContain('prompt tokens');
    const paged = await runNode([BIN, 'requests', '--no-handle', '--limit', '1'], env);
    expect(/^more: --cursor \S+ --no-handle --limit 1$/m.test(paged.out), paged.out).toBe(true);

    for (const [args, message] of [
      [['--type', 'session'], '--type needs --class'],
      [['--type', 'sessions', '--class', 'cold'], "--type: one of artifact, bundle, session is expected, not 'sessions'"],
      [['--type', 'session', '--class', 'cold', '--handle', h.sessions[0]!], '--type or --handle'],
      [['--no-handle', '--class', 'cold'], '--no-handle lists the calls that named no handle, so not with --class'],
    ] as const) {
      const run = await runNode([BIN, 'requests', ...args], env);
      expect([run.code, run.out], args.join(' ')).toEqual([2, '']);
      expect(run.err, args.join(' ')).toContain(message);
    }
  });
});
