// The overview for a team with many sessions and a week of history, found in a team lead's trial: an agent with one
// session per conversation had hundreds of session rows pushing the artifacts and bundles (the state a team curates)
// off the handle ranking, and the overview had no per-day view. Every figure is checked against the HTTP reports.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app';
import { tok, tokens, usd } from '../../src/http/ui/format';
import { agentWeek, expectedMetrics, metricsOf } from './seed';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const DAY = 86_400_000;
const cookie = (key: string) => ({ cookie: `ph_ui_key=${key}` });
const MONEY = ['actual_input_cost', 'cost_without_caching', 'cost_at_perfect_capture', 'realised_savings', 'leaked_savings', 'write_premiums_paid', 'write_premiums_unread', 'write_premiums_pending', 'unknown_capture_input_cost'];

async function get(path: string, key: string) {
  const res = await t.app.request(path, { headers: cookie(key) });
  return { status: res.status, text: await res.text() };
}

type Report = { requests: number; tokens: Record<string, number>; requests_with: Record<string, number>; capture_rate: number | null; money: Record<string, number> };

/** Reports added up as a reader adds the rows of a ranking: counts exactly, money in whole micro-dollars. */
function addedUp(reports: Report[]) {
  const sumOf = (f: (r: Report) => number) => reports.reduce((a, r) => a + f(r), 0);
  const tokens = Object.fromEntries(Object.keys(reports[0]!.tokens).map((c) => [c, sumOf((r) => r.tokens[c]!)]));
  return {
    requests: sumOf((r) => r.requests),
    tokens,
    capture_rate: tokens.reported_opportunity ? tokens.captured! / tokens.reported_opportunity : null,
    money: Object.fromEntries(MONEY.map((k) => [k, sumOf((r) => Math.round(r.money[k]! * 1e6)) / 1e6])) as Record<string, number>,
  };
}

/** The ranking's rows as drawn: a handle's id, or "sessions" for the sessions' row, with its Leaked figure. */
const rankingOf = (page: string) =>
  [...page.matchAll(/<tr data-(handle|group)="([^"]+)"[^>]*><td class="num">(\d+)<\/td>[\s\S]*?data-value="([^"]*)"/g)].map((m) => ({ id: m[1] === 'group' ? 'sessions' : m[2]!, rank: Number(m[3]), leaked: Number(m[4]) }));

describe('overview of an agent with a session per conversation', () => {
  it('ranks artifacts and bundles as the API does, and the sessions as one row: their own reports added up, to the micro-dollar', async () => {
    const s = await agentWeek(t, { perDay: 4, days: 4 });
    for (const [period, query] of [['7d', `from=${new Date(t.clock.now() - 6 * DAY).toISOString()}`], ['all', '']] as const) {
      const page = await get(`/ui?period=${period}`, s.key);
      expect(page.status).toBe(200);
      const api = (await s.client.get(`/v1/reports?${query}`)).json;
      const apiSessions = (await s.client.get(`/v1/reports?${query}&type=session`)).json;
      expect(apiSessions.handles_total, period).toBe(16);
      const own: Report[] = [];
      for (const id of s.sessions) own.push((await s.client.get(`/v1/reports/handles/${id}?${query}`)).json);
      const sessions = addedUp(own);
      // Some sessions leaked and some did not: the sum is of unequal figures, and of fractions of a micro-dollar.
      expect(new Set(own.map((r) => r.money.leaked_savings)).size, period).toBeGreaterThan(1);

      // Artifacts and bundles in the API's order, the sessions' row at the rank its summed leak takes, numbered in turn.
      const curated = api.handles.filter((h: { type: string }) => h.type !== 'session').map((h: { id: string; money: { leaked_savings: number } }) => ({ id: h.id, leaked: h.money.leaked_savings }));
      expect(curated.map((h: { id: string }) => h.id)).toEqual(expect.arrayContaining([s.bundle.id, s.classifier.id]));
      const at = curated.findIndex((h: { leaked: number }) => h.leaked < sessions.money.leaked_savings!);
      const expected = [...curated];
      expected.splice(at === -1 ? curated.length : at, 0, { id: 'sessions', leaked: sessions.money.leaked_savings! });
      expect(rankingOf(page.text), period).toEqual(expected.map((h, i) => ({ ...h, rank: i + 1 })));
      expect(page.text).not.toMatch(/<tr data-handle="ses_/);

      const row = /<tr data-group="session"[\s\S]*?<\/tr>/.exec(page.text)![0];
      expect(row).toContain('data-count="16"');
      expect(row).toContain(`<a href="/ui/sessions?period=${period}">16 sessions</a>`);
      expect(row).toContain(`data-value="${sessions.money.realised_savings}"`);
      const cells = [...row.matchAll(/<td class="num"[^>]*>([^<]*)<\/td>/g)].map((m) => m[1]);
      expect(cells.slice(1)).toEqual([usd(sessions.money.leaked_savings!), tokens(sessions.requests), tok(sessions.tokens.referenced!), tok(sessions.tokens.opportunity!), tok(sessions.tokens.captured!), usd(sessions.money.realised_savings!)]);
      // The capture rate of the summed tokens, not an average of rates.
      expect(row).toContain(`${(sessions.capture_rate! * 100).toFixed(1)}%`);
      // The API's sessions figure is the row's: the same sessions added up the same way.
      const byType = (await s.client.get(`/v1/reports?${query}&by_type=true`)).json.by_type.session;
      expect({ handles: byType.handles_total, requests: byType.requests, tokens: byType.tokens, money: Object.fromEntries(MONEY.map((k) => [k, byType.money[k]])) }, period).toEqual({ handles: 16, requests: sessions.requests, tokens: sessions.tokens, money: sessions.money });
      expect(row).toContain(`${(byType.capture_rate * 100).toFixed(1)}%`);
      // The totals above are the tenant's, as before.
      expect(metricsOf(page.text), period).toEqual(expectedMetrics(api));
    }
  });

  it("a sessions' page: their figures summed, and each session by leaked money as GET /v1/reports?type=session ranks them", async () => {
    const s = await agentWeek(t, { perDay: 3, days: 3 });
    const query = `from=${new Date(t.clock.now() - 6 * DAY).toISOString()}`;
    const page = await get('/ui/sessions?period=7d', s.key);
    expect(page.status).toBe(200);
    const api = (await s.client.get(`/v1/reports?${query}&type=session`)).json;
    const own: Report[] = [];
    for (const id of s.sessions) own.push((await s.client.get(`/v1/reports/handles/${id}?${query}`)).json);
    const sum = addedUp(own);
    const { capture_rate: shownRate, ...shown } = metricsOf(page.text);
    const { capture_rate: _rate, ...expected } = expectedMetrics({ ...sum, capture_rate: null });
    expect(shown).toEqual(expected);
    expect(Math.abs(shownRate! - sum.capture_rate!)).toBeLessThanOrEqual(5e-7);
    expect(page.text).toContain('data-sessions-count="9"');
    expect([...page.text.matchAll(/<tr data-handle="([^"]+)">/g)].map((m) => m[1])).toEqual(api.handles.map((h: { id: string }) => h.id));
    expect(api.handles.map((h: { id: string }) => h.id).sort()).toEqual([...s.sessions].sort());
    // Its period chooser stays on the sessions, and its live part is served on its own.
    expect(page.text).toContain('href="/ui/sessions?period=30d"');
    const fragment = await get('/ui/fragments/sessions?period=7d', s.key);
    expect(fragment.status).toBe(200);
    expect(fragment.text).toContain('data-sessions-count="9"');
    expect((await t.app.request('/ui/sessions')).status).toBe(303);
    expect((await t.app.request('/ui/fragments/sessions')).status).toBe(401);
  });

  it("draws the capture rate and leaked money per day, each day the API's report of that day alone and its days=true entry", async () => {
    const s = await agentWeek(t, { perDay: 2, days: 4 });
    const today = Math.floor(t.clock.now() / DAY);
    const page = (await get('/ui?period=7d', s.key)).text;
    const week = (await s.client.get(`/v1/reports?from=${new Date((today - 6) * DAY).toISOString()}&days=true`)).json;
    const listed = new Map<string, Report>(week.days.map((d: Report & { day: string }) => [d.day, d]));
    expect([...listed.keys()]).toEqual([0, 1, 2, 3].map((k) => new Date((today - 3 + k) * DAY).toISOString().slice(0, 10)));
    expect((page.match(/data-day="/g) ?? []).length).toBe(7);
    expect((page.match(/data-leaked-day="/g) ?? []).length).toBe(7);
    for (let d = today - 6; d <= today; d++) {
      const date = new Date(d * DAY).toISOString().slice(0, 10);
      const alone = (await s.client.get(`/v1/reports?from=${date}&to=${date}`)).json;
      expect(page, date).toContain(`data-day="${date}" data-rate="${alone.opportunity === 0 ? '' : (alone.capture_rate ?? '')}"`);
      expect(page, date).toContain(`data-leaked-day="${date}" data-value="${alone.money.leaked_savings}"`);
      const entry = listed.get(date);
      if (!alone.requests) expect(entry, date).toBeUndefined();
      else expect(entry, date).toEqual({ day: date, requests: alone.requests, tokens: alone.tokens, requests_with: alone.requests_with, capture_rate: alone.capture_rate, money: alone.money });
    }
    // The days the traffic ran leaked, the days before it did not.
    expect(page).toMatch(new RegExp(`data-leaked-day="${new Date(today * DAY).toISOString().slice(0, 10)}" data-value="0\\.\\d+"`));
    expect(page).toContain(`data-leaked-day="${new Date((today - 6) * DAY).toISOString().slice(0, 10)}" data-value="0"`);
    // All time: the last 90 days, as the handle page draws them.
    const all = (await get('/ui?period=all', s.key)).text;
    expect((all.match(/data-leaked-day="/g) ?? []).length).toBe(90);
  });
});
