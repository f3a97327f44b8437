import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { clientFor, createTestApp, type TestApp } from '../helpers/app';
import { FakeClock } from '../helpers/clock';
import { mintBundle, mintSystem, startSession, userMessage } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';
import { SqliteStore } from '../../src/store/sqlite-store';
import { expectedMetrics, metricsOf } from './seed';

// A long-running agent's session: one batch per turn, hundreds of turns. Its pages list a bounded part of it and
// read only that part, also after a restart (nothing in memory yet).

const DAY = 86_400_000;
const TURNS = 300;
const cookie = (key: string) => ({ cookie: `ph_ui_key=${key}` });

let dir: string;
let t: TestApp;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ph-long-session-'));
  t = createTestApp({ databasePath: join(dir, 'db.sqlite') });
});
afterEach(() => {
  t.close();
  rmSync(dir, { recursive: true, force: true });
});

async function get(path: string, key: string) {
  const res = await t.app.request(path, { headers: cookie(key) });
  return { status: res.status, text: await res.text() };
}

/** Every 10th turn says when it ran: a volatile value in that batch. */
const turnText = (k: number) => (k % 10 === 0 ? `tests ran at 2026-03-04T05:06:${String(k % 60).padStart(2, '0')}Z` : `turn ${k}`);

/**
 * A session on a bundle, with TURNS batches (version k is batch k), rendered and reported now and then over two days
 * (so its figures span hundreds of versions), then the service restarted: nothing of it is in memory.
 */
async function longSession() {
  const { client, key } = t.tenant();
  const sys = await mintSystem(client, `${LONG_SYSTEM} Started 2026-03-01T00:00:00Z.`);
  const bundle = await mintBundle(client, [sys.id]);
  const ses = await startSession(client, { base: bundle.id, messages: [userMessage(turnText(0))] });
  const requests: string[] = [];
  const call = async () => {
    const r = await renderAnthropic(client, { prefix: [ses.id], messages: [userMessage('go on')] });
    // The provider reads what the simulation predicts, and writes the rest up to the last breakpoint.
    const read = r.prediction.read_tokens;
    await report(client, t, r, anthropicUsage(promptTokens(r), read, Math.max(0, (r.breakpoints.at(-1)?.token_end ?? 0) - read)));
    requests.push(r.request_id);
    t.clock.advance(60_000);
  };
  for (let k = 1; k < TURNS; k++) {
    const res = await client.post(`/v1/sessions/${ses.id}/messages`, { messages: [{ role: k % 2 ? 'assistant' : 'user', content: turnText(k) }] });
    expect(res.status, res.text).toBe(201);
    if (k % 50 === 0) await call();
    if (k === 150) t.clock.advance(DAY);
  }
  await call();
  t.clock.advance(60_000);
  const clock = new FakeClock(t.clock.now());
  t.close();
  t = createTestApp({ databasePath: join(dir, 'db.sqlite'), clock });
  return { client: clientFor(t.app, key), key, sys, bundle, ses, requests };
}

/** The content table's rows: [#, source] for each listed source, and the gap rows by side. */
function composition(page: string) {
  const table = /<table data-table="composition"[^>]*>[\s\S]*?<\/table>/.exec(page)![0];
  return {
    rows: [...table.matchAll(/<tr><td class="num">(\d+)<\/td><td><a [^>]*>([^<]+)<\/a>/g)].map((m) => [Number(m[1]), m[2]!] as const),
    gaps: Object.fromEntries([...table.matchAll(/<tr data-batches-gap="(before|after)"><td class="num">…<\/td><td colspan="3" class="muted">([\d,]+) /g)].map((m) => [m[1]!, Number(m[2]!.replace(/,/g, ''))])),
  };
}

const link = (page: string, which: 'older' | 'newer' | 'newest') => new RegExp(`<a href="([^"]+)" data-batches-link="${which}">`).exec(page)?.[1]?.replace(/&amp;/g, '&');
const batches = (ses: string, from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => [1 + from + i, `${ses}@${from + i}`] as const);

function spyStore() {
  const spies = {
    listVersions: vi.spyOn(SqliteStore.prototype, 'listVersions'),
    getVersion: vi.spyOn(SqliteStore.prototype, 'getVersion'),
    getBlob: vi.spyOn(SqliteStore.prototype, 'getBlob'),
    sumRollups: vi.spyOn(SqliteStore.prototype, 'sumRollups'),
    sumVersionRollups: vi.spyOn(SqliteStore.prototype, 'sumVersionRollups'),
    sumDayRollups: vi.spyOn(SqliteStore.prototype, 'sumDayRollups'),
  };
  return { ...spies, clear: () => Object.values(spies).forEach((s) => s.mockClear()), restore: () => Object.values(spies).forEach((s) => s.mockRestore()) };
}

describe("a long session's handle page", () => {
  it('lists its base and its newest 50 batches, says how many in all, and pages to older ones, reading only what it lists', async () => {
    const { client, key, sys, ses } = await longSession();
    const spies = spyStore();
    try {
      const page = await get(`/ui/handles/${ses.id}`, key);
      expect(page.status).toBe(200);
      // The base's source first (#1), then the newest 50 batches in render order (batch k is #k+1), the rest counted.
      const newest = composition(page.text);
      expect(newest.rows).toEqual([[1, `${sys.id}@1`], ...batches(ses.id, 251, 300)]);
      expect(newest.gaps).toEqual({ before: 250 });
      expect(page.text).toContain(`data-batches-shown="50" data-batches="${TURNS}" data-batches-before="250">Listed: the session's base, then batches 251–300 of 300, the newest`);
      expect(link(page.text, 'newer')).toBeUndefined();
      // Content is shown for the volatile sources listed: the system prompt and batches 251, 261, … 291.
      expect([...page.text.matchAll(/data-content="([^"]+)"/g)].map((m) => m[1])).toEqual([`${sys.id}@1`, ...[251, 261, 271, 281, 291].map((v) => `${ses.id}@${v}`)]);
      expect(page.text).toMatch(/<mark [^>]*>2026-03-04T05:06:30Z<\/mark>/);

      // Read: the newest 50 versions once (for the versions table and the batches alike), a handful of single versions
      // and blobs (the base's, and the 5 volatile batches shown), the figures of those 50 versions and one row a day:
      // never every version, batch or rollup row of the 300.
      expect(spies.listVersions.mock.calls).toEqual([[ses.id, 50]]);
      expect(spies.getBlob.mock.calls.length).toBeLessThanOrEqual(10);
      expect(spies.getVersion.mock.calls.length).toBeLessThanOrEqual(10);
      expect(spies.sumRollups).not.toHaveBeenCalled();
      expect(spies.sumVersionRollups.mock.calls.map(([q]) => q.versions)).toEqual([{ from: 251, to: 300 }]);
      expect(spies.sumDayRollups.mock.results.map((r) => (r.value as unknown[]).length)).toEqual([2]);

      // The figures are still the API's: the summary, each shown version's row, and each day's capture.
      const from = `from=${new Date(t.clock.now() - 6 * DAY).toISOString()}`;
      const api = (await client.get(`/v1/reports/handles/${ses.id}?${from}`)).json;
      expect(metricsOf(page.text)).toEqual(expectedMetrics(api));
      // The API lists the same newest 50 (its figures span hundreds of versions: ?versions=1000 lists them).
      expect(api.versions_listed).toEqual({ from: 251, to: 300 });
      expect((await client.get(`/v1/reports/handles/${ses.id}?${from}&versions=1000`)).json.versions.length).toBeGreaterThan(250);
      // Each row's two request counts, as the API gives them: batch 260 went out only in the last call, at version 300,
      // whose row alone counts it as newest.
      for (const v of [260, 300]) {
        const rep = api.versions.find((r: { version: number }) => r.version === v);
        expect(page.text).toMatch(new RegExp(`<tr data-version="${v}">[\\s\\S]*?<td class="num" data-sent-in>${rep.requests_including}</td><td class="num" data-as-newest>${rep.requests}</td>`));
      }
      expect(api.versions.find((r: { version: number }) => r.version === 260).requests).toBe(0);
      expect(api.versions.find((r: { version: number }) => r.version === 260).requests_including).toBe(1);
      for (const d of [t.clock.now() - DAY, t.clock.now()]) {
        const day = new Date(d).toISOString().slice(0, 10);
        const one = (await client.get(`/v1/reports/handles/${ses.id}?from=${day}T00:00:00Z&to=${day}T00:00:00Z`)).json;
        expect(one.capture_rate).toBeGreaterThan(0);
        expect(page.text).toContain(`data-day="${day}" data-rate="${one.capture_rate}"`);
      }

      // Older: the 50 before, with how many come before and after them, and links both ways.
      spies.clear();
      const olderHref = link(page.text, 'older')!;
      expect(olderHref).toBe(`/ui/handles/${ses.id}?period=7d&batches=250#content`);
      const older = await get(olderHref.replace(/#.*/, ''), key);
      expect(composition(older.text).rows).toEqual([[1, `${sys.id}@1`], ...batches(ses.id, 201, 250)]);
      expect(composition(older.text).gaps).toEqual({ before: 200, after: 50 });
      expect(older.text).toContain('data-batches-shown="50" data-batches="300" data-batches-before="200">Listed: the session\'s base, then batches 201–250 of 300 (');
      expect(link(older.text, 'newer')).toBe(`/ui/handles/${ses.id}?period=7d#content`);
      expect(spies.listVersions.mock.calls).toEqual([[ses.id, 50], [ses.id, 50, 250]]);
      expect(spies.getBlob.mock.calls.length).toBeLessThanOrEqual(10);
      // Its versions table is the newest 50 still.
      expect([...older.text.matchAll(/<tr data-version="(\d+)">/g)].map((m) => Number(m[1]))).toEqual(Array.from({ length: 50 }, (_, i) => 300 - i));

      // Paging on to the first batches: no older link, and newer ones one page up.
      let at = older.text;
      for (let k = 0; k < 4; k++) at = (await get(link(at, 'older')!.replace(/#.*/, ''), key)).text;
      expect(composition(at).rows).toEqual([[1, `${sys.id}@1`], ...batches(ses.id, 1, 50)]);
      expect(composition(at).gaps).toEqual({ after: 250 });
      expect(link(at, 'older')).toBeUndefined();
      expect(link(at, 'newer')).toBe(`/ui/handles/${ses.id}?period=7d&batches=100#content`);
      expect(link(at, 'newest')).toBe(`/ui/handles/${ses.id}?period=7d#content`);

      // A page number past the latest is the newest page; anything else is ignored.
      for (const q of ['9999', 'x', '-1', '0'])
        expect(composition((await get(`/ui/handles/${ses.id}?batches=${q}`, key)).text).rows.at(-1), q).toEqual([301, `${ses.id}@300`]);
      // A chosen range's page pages its batches within it: each link carries the range.
      const today = new Date(t.clock.now()).toISOString().slice(0, 10);
      const ranged = (await get(`/ui/handles/${ses.id}?from=${today}&to=${today}&batches=250`, key)).text;
      expect([link(ranged, 'older'), link(ranged, 'newer')]).toEqual([`/ui/handles/${ses.id}?from=${today}&to=${today}&batches=200#content`, `/ui/handles/${ses.id}?from=${today}&to=${today}#content`]);
    } finally {
      spies.restore();
    }
  });

  it("a request of it sums the session's earlier batches in one row and one piece of the bar, the newest 50 each their own", async () => {
    const { client, key, sys, bundle, ses, requests } = await longSession();
    const id = requests.at(-1)!;
    const api = (await client.get(`/v1/requests/${id}`)).json;
    // The base's system prompt, batches 1–300, the turn's own message.
    expect(api.outcome.segments.length).toBe(TURNS + 2);
    const page = await get(`/ui/requests/${id}`, key);
    expect(page.status).toBe(200);
    const table = /<table data-table="segments"[^>]*>[\s\S]*?<\/table>/.exec(page.text)![0];
    const rows = [...table.matchAll(/<tr data-segments?="([\d-]+)">/g)].map((m) => m[1]);
    expect(rows).toEqual(['0', '1-250', ...Array.from({ length: 51 }, (_, i) => String(251 + i))]);
    const summed = /<tr data-segments="1-250">[\s\S]*?<\/tr>/.exec(table)![0];
    expect(summed).toContain(`<td class="num">2–251</td>`);
    expect(summed).toContain(`${ses.id}@1</a> … <a href="/ui/handles/${ses.id}" class="mono">${ses.id}@250</a> <small class="muted">(250 earlier batches of the session, summed)</small>`);
    // Its classes are the sums of those segments' in the API's outcome; the segments after it are shown as they are.
    const sum: Record<string, number> = {};
    for (const s of api.outcome.segments.slice(1, 251)) for (const [c, n] of Object.entries(s.classes as Record<string, number>)) if (n > 0) sum[c] = (sum[c] ?? 0) + n;
    const shown = (row: string) => Object.fromEntries([...row.matchAll(/data-class="([a-z_]+)" data-tokens="(\d+)"/g)].map((m) => [m[1], Number(m[2])]));
    expect(shown(summed)).toEqual(sum);
    const last = new RegExp(`<tr data-segment="${TURNS + 1}">[\\s\\S]*?</tr>`).exec(table)![0];
    expect(shown(last)).toEqual(Object.fromEntries(Object.entries(api.outcome.segments[TURNS + 1].classes as Record<string, number>).filter(([, n]) => n > 0)));
    expect(page.text).toContain(`data-segments-summed="250">A session's batches before its newest 50 are summed`);
    // The bar draws the same pieces: one for the 250, one for each other segment, the tokens unchanged.
    const bar = /<svg[^>]*data-chart="segments"[\s\S]*?<\/svg>/.exec(page.text)![0];
    expect([...bar.matchAll(/<g data-segments?="([\d-]+)"/g)].map((m) => m[1])).toEqual(rows);
    const piece = /<g data-segments="1-250"[\s\S]*?<\/g>/.exec(bar)![0];
    expect(shown(piece)).toEqual(sum);
    expect(bar).toContain(`${TURNS + 2} segments, `);

    // Listed (the handle page's recent requests, GET /v1/requests?handle=), it is summarised from its outcome: the
    // handles on its segments' paths, and the session's tokens by class.
    const listed = (await client.get(`/v1/requests?handle=${ses.id}&limit=1`)).json.requests[0];
    expect(listed.id).toBe(id);
    expect([...listed.handles].sort()).toEqual([sys.id, bundle.id, ses.id].sort());
    const all: Record<string, number> = {};
    for (const s of api.outcome.segments.filter((x: { source: string }) => x.source !== 'inline'))
      for (const [c, n] of Object.entries(s.classes as Record<string, number>)) if (n > 0) all[c] = (all[c] ?? 0) + n;
    expect(listed.classes).toEqual(all);
  });

  it('a short session lists every batch, as before: no pages', async () => {
    const { client, key } = t.tenant();
    const ses = await startSession(client, { messages: [userMessage('hello')] });
    for (let k = 1; k < 50; k++) await client.post(`/v1/sessions/${ses.id}/messages`, { messages: [{ role: k % 2 ? 'assistant' : 'user', content: `turn ${k}` }] });
    const page = await get(`/ui/handles/${ses.id}`, key);
    expect(composition(page.text).rows).toEqual(Array.from({ length: 50 }, (_, i) => [i + 1, `${ses.id}@${i + 1}`]));
    expect(page.text).not.toContain('data-batches-shown');
    expect(page.text).not.toContain('data-batches-gap');
    // A session started without messages: its first version appended no batch, so batch 1 is version 2.
    const empty = await startSession(client);
    for (let k = 0; k < 60; k++) await client.post(`/v1/sessions/${empty.id}/messages`, { messages: [{ role: k % 2 ? 'assistant' : 'user', content: `turn ${k}` }] });
    const long = await get(`/ui/handles/${empty.id}`, key);
    expect(composition(long.text).rows).toEqual(Array.from({ length: 50 }, (_, i) => [i + 11, `${empty.id}@${i + 12}`]));
    expect(long.text).toContain('data-batches-shown="50" data-batches="60" data-batches-before="10">Listed: batches 11–60 of 60, the newest');
    const first = await get(link(long.text, 'older')!.replace(/#.*/, ''), key);
    expect(composition(first.text).rows).toEqual(Array.from({ length: 10 }, (_, i) => [i + 1, `${empty.id}@${i + 2}`]));
    expect(link(first.text, 'older')).toBeUndefined();
    // `?batches=1` names its version 1, which appended no batch: the page through its first batch, not an empty
    // table without links.
    const one = await get(`/ui/handles/${empty.id}?batches=1`, key);
    expect(composition(one.text).rows).toEqual([[1, `${empty.id}@2`]]);
    expect(link(one.text, 'newer')).toBe(`/ui/handles/${empty.id}?period=7d&batches=52#content`);
  });
});
