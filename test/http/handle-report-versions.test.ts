import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTestApp, type Client, type TestApp } from '../helpers/app';
import { mintBundle, mintSystem, startSession, userMessage } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report, type VersionRow } from '../helpers/scenario';
import { SqliteStore } from '../../src/store/sqlite-store';

// A handle report lists the newest versions only (a session has one per turn: its report grew with every turn), says
// how many there are and which are listed, and pages back to the oldest; its totals are over every version.

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => {
  vi.restoreAllMocks();
  t.close();
});

const VERSIONS = 120;
/** The versions the session is sent at: each call's session has batches 1..v. */
const CALLS_AT = [2, 10, 60, 61, 120];


/** A session on a bundle with VERSIONS versions (version k appends batch k), sent and reported at CALLS_AT. */
async function longSession(client: Client) {
  const sys = await mintSystem(client, `${LONG_SYSTEM} versions`);
  const bundle = await mintBundle(client, [sys.id]);
  const ses = await startSession(client, { base: bundle.id, messages: [userMessage('turn 1')] });
  for (let v = 2; v <= VERSIONS; v++) {
    if (CALLS_AT.includes(v - 1)) await call(client, ses.id);
    const res = await client.post(`/v1/sessions/${ses.id}/messages`, { messages: [{ role: v % 2 ? 'user' : 'assistant', content: `turn ${v}: ${'words '.repeat(40)}` }] });
    expect(res.status, res.text).toBe(201);
  }
  await call(client, ses.id);
  return ses;
}

async function call(client: Client, session: string) {
  const r = await renderAnthropic(client, { prefix: [session], messages: [userMessage('go on')] });
  const read = r.prediction.read_tokens;
  await report(client, t, r, anthropicUsage(promptTokens(r), read, Math.max(0, (r.breakpoints.at(-1)?.token_end ?? 0) - read)));
  t.clock.advance(60_000);
}

const sumOf = (rows: VersionRow[], pick: (r: VersionRow) => number) => rows.reduce((n, r) => n + pick(r), 0);

describe('a handle report of a session with more versions than it lists', () => {
  it('lists the newest 50, says how many there are, pages back to the oldest, and keeps totals over every version', async () => {
    const { client } = t.tenant();
    const ses = await longSession(client);
    const sumVersionRollups = vi.spyOn(SqliteStore.prototype, 'sumVersionRollups');
    const sumRollups = vi.spyOn(SqliteStore.prototype, 'sumRollups');

    const newest = await client.get(`/v1/reports/handles/${ses.id}`);
    expect(newest.status, newest.text).toBe(200);
    expect(newest.json.versions_total).toBe(VERSIONS);
    expect(newest.json.versions_listed).toEqual({ from: 71, to: 120 });
    expect(newest.json.versions.map((v: VersionRow) => v.version)).toEqual(Array.from({ length: 50 }, (_, i) => 71 + i));
    // Only the listed versions' rows were read (in SQL, by the key's version range), never every version's.
    expect(sumVersionRollups.mock.calls.map(([q]) => q.versions)).toEqual([{ from: 71, to: 120 }]);
    expect(sumRollups).not.toHaveBeenCalled();

    // Paging back, 50 at a time, as versions_listed.from - 1 says, to the oldest.
    const pages = [newest.json];
    while (pages.at(-1)!.versions_listed.from > 1) {
      const res = await client.get(`/v1/reports/handles/${ses.id}?versions_through=${pages.at(-1)!.versions_listed.from - 1}`);
      expect(res.status, res.text).toBe(200);
      pages.push(res.json);
    }
    expect(pages.map((p) => p.versions_listed)).toEqual([{ from: 71, to: 120 }, { from: 21, to: 70 }, { from: 1, to: 20 }]);
    const paged: VersionRow[] = pages.flatMap((p) => p.versions).sort((a, b) => a.version - b.version);
    expect(paged.map((v) => v.version)).toEqual(Array.from({ length: VERSIONS }, (_, i) => i + 1));

    // Every page has the same totals and models, and they are the sums of every version's row.
    const all = (await client.get(`/v1/reports/handles/${ses.id}?versions=1000`)).json;
    expect(all.versions_listed).toEqual({ from: 1, to: VERSIONS });
    expect(all.versions).toEqual(paged);
    const { versions: _v, versions_listed: _l, ...totals } = all;
    for (const p of pages) {
      const { versions: _pv, versions_listed: _pl, ...pageTotals } = p;
      expect(pageTotals).toEqual(totals);
    }
    expect(totals.requests).toBe(CALLS_AT.length);
    expect(sumOf(paged, (v) => v.requests)).toBe(totals.requests);
    for (const c of Object.keys(totals.tokens)) {
      expect(sumOf(paged, (v) => v.tokens[c]!), c).toBe(totals.tokens[c]);
      expect(sumOf(paged, (v) => v.requests_with[c]!), c).toBe(totals.requests_with[c]);
    }
    expect(totals.tokens.captured).toBeGreaterThan(0);
    // Money is rounded per row: within a micro-dollar a row.
    for (const k of ['actual_input_cost', 'cost_without_caching', 'leaked_savings', 'write_premiums_paid'])
      expect(Math.abs(sumOf(paged, (v) => v.money[k]!) - totals.money[k]), k).toBeLessThanOrEqual(VERSIONS * 1e-6);
    expect(totals.models).toHaveLength(1);
  });

  it("counts beside each version's newest-version requests the requests that sent its content, which its tokens are summed over", async () => {
    const { client } = t.tenant();
    const ses = await longSession(client);
    const rows: VersionRow[] = (await client.get(`/v1/reports/handles/${ses.id}?versions=1000`)).json.versions;
    const at = (v: number) => rows.find((r) => r.version === v)!;
    // Version k's batch went out with every call at version k or later; a call counts in `requests` at its version only.
    for (const v of [1, 2, 3, 10, 11, 60, 61, 62, 120]) {
      const sentIn = CALLS_AT.filter((c) => c >= v).length;
      expect({ v, requests: at(v).requests, requests_including: at(v).requests_including }).toEqual({ v, requests: CALLS_AT.includes(v) ? 1 : 0, requests_including: sentIn });
    }
    // Version 2: one request at it, its batch in five; every version's referenced tokens come from requests_including requests.
    expect(at(2).requests).toBe(1);
    expect(at(2).requests_including).toBe(5);
    expect(at(50).requests_with.referenced).toBe(0);
    expect(at(50).tokens.referenced).toBeGreaterThan(0);
  });

  it('lists a window through versions_through (past the latest: the latest)', async () => {
    const { client } = t.tenant();
    const ses = await longSession(client);
    const window = (await client.get(`/v1/reports/handles/${ses.id}?versions=5&versions_through=62`)).json;
    expect(window.versions_listed).toEqual({ from: 58, to: 62 });
    expect(window.versions.map((v: VersionRow) => v.version)).toEqual([58, 59, 60, 61, 62]);
    const past = (await client.get(`/v1/reports/handles/${ses.id}?versions=3&versions_through=5000`)).json;
    expect(past.versions_listed).toEqual({ from: 118, to: 120 });
    const one = (await client.get(`/v1/reports/handles/${ses.id}?versions=1&versions_through=1`)).json;
    expect(one.versions_listed).toEqual({ from: 1, to: 1 });
    expect(one.versions.map((v: VersionRow) => v.version)).toEqual([1]);
  });
});

describe('a handle report of an artifact', () => {
  it('lists every version of a short history, each request counted once on the version it sent', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, `${LONG_SYSTEM} artifact`);
    for (const text of ['v2', 'v3']) expect((await client.post(`/v1/artifacts/${sys.id}/versions`, { content: `${LONG_SYSTEM} ${text}` })).status).toBe(201);
    for (const ref of [`${sys.id}@1`, `${sys.id}@3`, `${sys.id}@3`]) await call(client, ref);
    const rep = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
    expect({ total: rep.versions_total, listed: rep.versions_listed }).toEqual({ total: 3, listed: { from: 1, to: 3 } });
    expect(rep.versions.map((v: VersionRow) => [v.version, v.requests, v.requests_including])).toEqual([
      [1, 1, 1],
      [3, 2, 2],
    ]);
  });
});

describe('bad paging parameters', () => {
  it('are refused with a 422 problem naming the parameter, for any handle', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client);
    for (const [query, pointer, detail] of [
      ['versions=0', 'query:versions', 'versions must be a whole number from 1 to 1,000'],
      ['versions=1001', 'query:versions', 'versions must be a whole number from 1 to 1,000'],
      ['versions=-1', 'query:versions', 'versions must be a whole number from 1 to 1,000'],
      ['versions=2.5', 'query:versions', 'versions must be a whole number from 1 to 1,000'],
      ['versions=ten', 'query:versions', 'versions must be a whole number from 1 to 1,000'],
      ['versions=', 'query:versions', 'versions must be a whole number from 1 to 1,000'],
      ['versions_through=0', 'query:versions_through', 'versions_through must be a whole number from 1 to 1,000,000'],
      ['versions_through=1e3', 'query:versions_through', 'versions_through must be a whole number from 1 to 1,000,000'],
      ['versions_through=99999999', 'query:versions_through', 'versions_through must be a whole number from 1 to 1,000,000'],
    ] as const) {
      const res = await client.get(`/v1/reports/handles/${sys.id}?${query}`);
      expect(res.status, query).toBe(422);
      expect(res.headers.get('content-type'), query).toMatch(/^application\/problem\+json/);
      expect(res.json.code, query).toBe('invalid_request');
      expect(res.json.errors, query).toEqual([{ pointer, detail }]);
    }
  });
});
