// Every leak figure the dashboard shows leads to the requests behind it: the waterfall's bars and the "Leaked savings
// by cause" rows of a handle's page (its requests with that class), of the overview (the tenant's), and the ranking's
// biggest leak, each for the period shown. Followed, a link lists exactly the requests holding that class, the list
// GET /v1/requests?class= gives.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app';
import type { TestApp } from '../helpers/app';
import { mintSystem, userMessage } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report, type Rendered } from '../helpers/scenario';
import { MIN, signedInPage } from './seed';

const DAY = 86_400_000;
let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const get = (path: string, key: string) => signedInPage(t, path, key);

/**
 * Two system prompts. A: cold, read, then twice after a time inline before it (drift). B: cold, drift once, then
 * expired after ten minutes unused. And a call with its whole prompt inline, on no handle.
 */
async function history() {
  const { client, key } = t.tenant();
  const a = await mintSystem(client, `${LONG_SYSTEM} A`);
  const b = await mintSystem(client, `${LONG_SYSTEM} B`);
  const ids: Record<string, string> = {};
  const call = async (name: string, system: unknown[], read: boolean) => {
    const r: Rendered = await renderAnthropic(client, { system, messages: [userMessage(name)] });
    const cached = r.breakpoints.at(-1)?.token_end ?? 0;
    await report(client, t, r, anthropicUsage(promptTokens(r), read ? cached : 0, read ? 0 : cached));
    ids[name] = r.request_id;
    t.clock.advance(MIN);
  };
  const ref = (h: { id: string }) => ({ type: 'handle', ref: h.id });
  await call('a1', [ref(a)], false);
  await call('a2', [ref(a)], true);
  await call('a3', [{ type: 'text', text: 'Now: 10:00' }, ref(a)], false);
  await call('a4', [{ type: 'text', text: 'Now: 10:01' }, ref(a)], false);
  await call('b1', [ref(b)], false);
  await call('b2', [{ type: 'text', text: 'Now: 10:02' }, ref(b)], false);
  await call('inline', [{ type: 'text', text: `${LONG_SYSTEM} inline` }], false);
  t.clock.advance(10 * MIN);
  await call('b3', [ref(b)], false);
  await t.services.writes.idle();
  return { client, key, a, b, ids };
}

/** The links a page holds to requests by class: each one's class and href (unescaped), in the page's order. */
const linksIn = (html: string) => [...html.matchAll(/<a href="([^"]+)" data-requests-link="([a-z_]+)"/g)].map((m) => ({ cls: m[2]!, href: m[1]!.replaceAll('&amp;', '&') }));
/** The part of a page between `start` and the end of the element it opens. */
const part = (html: string, re: RegExp) => re.exec(html)?.[0] ?? '';
const wide = (html: string) => part(html, /<svg[^>]*data-chart="waterfall"[\s\S]*?<\/svg>/);
const narrow = (html: string) => part(html, /<svg[^>]*data-chart="waterfall-narrow"[\s\S]*?<\/svg>/);
const byCause = (html: string) => part(html, /<table data-table="leaked-by-class"[^>]*>[\s\S]*?<\/table>/);
const rowsOf = (html: string) => [...html.matchAll(/<tr data-request="(req_[^"]+)">/g)].map((m) => m[1]);
/** The classes the list filters by, with tokens in a report (referenced and opportunity are totals, not classes). */
const linkable = (tokens: Record<string, number>) => ['cold', 'drift', 'expired', 'concurrent', 'below_minimum', 'no_breakpoint', 'lookback', 'unconfirmed', 'unknown', 'captured', 'bonus'].filter((c) => (tokens[c] ?? 0) > 0);

describe('leak figures lead to their requests', () => {
  it("a handle page's waterfall bars and causes link to its requests with that class, for the period; followed, they list exactly those", async () => {
    const { client, key, a, ids } = await history();
    const from = new Date(t.clock.now() - 6 * DAY).toISOString().slice(0, 10);
    const api = (await client.get(`/v1/reports/handles/${a.id}?from=${from}`)).json;
    const page = await get(`/ui/handles/${a.id}?period=7d`, key);
    const href = (cls: string) => `/ui/requests?handle=${a.id}&class=${cls}&period=7d`;
    // One link a class with tokens, in the waterfall's order, wide and narrow alike; none for referenced, opportunity or a class at 0.
    expect(linkable(api.tokens)).toEqual(['cold', 'drift', 'captured']);
    for (const svg of [wide(page.text), narrow(page.text)]) {
      expect(linksIn(svg)).toEqual(['cold', 'drift', 'captured'].map((cls) => ({ cls, href: href(cls) })));
      // The link is the row: its name, bar and figures.
      // Its name starts with what the row shows (a speech user says what they see), then the exact count.
      expect(svg).toMatch(new RegExp(`<a href="[^"]+" data-requests-link="drift" aria-label="− drift −[^"]+ · [0-9.]+% of opp\\.: ${api.tokens.drift.toLocaleString('en-US')} tokens, list the requests"><g data-(class|row)="drift"`));
      expect(svg).toMatch(/<g data-(class|row)="expired"[^>]*class="zero"/);
      expect(svg).not.toMatch(/data-requests-link="(referenced|opportunity|expired|concurrent|unknown|bonus)"/);
      // An image hides its links from assistive technology: a chart with links is a group.
      expect(svg).toMatch(/^<svg[^>]* role="group"/);
    }
    // The causes table: the misses it lists (drift only here), each linked the same way.
    expect(linksIn(byCause(page.text))).toEqual([{ cls: 'drift', href: href('drift') }]);

    const expected: Record<string, string[]> = { cold: [ids.a1!], drift: [ids.a4!, ids.a3!], captured: [ids.a2!] };
    for (const cls of Object.keys(expected)) {
      const hop = await get(href(cls), key);
      expect([hop.status, hop.location], cls).toEqual([303, `/ui/handles/${a.id}?period=7d&class=${cls}#recent-requests`]);
      const listed = await get(hop.location!.replace(/#.*/, ''), key);
      expect(rowsOf(listed.text), cls).toEqual(expected[cls]);
      // As many as the report counts, and the API's list for the handle and class.
      expect(rowsOf(listed.text).length).toBe(api.requests_with[cls]);
      const viaApi = (await client.get(`/v1/requests?handle=${a.id}&class=${cls}&from=${from}`)).json.requests.map((r: { id: string }) => r.id);
      expect(viaApi, cls).toEqual(expected[cls]);
    }

    // Another period's page links for that period, and its links land on it.
    const all = await get(`/ui/handles/${a.id}?period=all`, key);
    expect(linksIn(wide(all.text)).map((l) => l.href)).toEqual(['cold', 'drift', 'captured'].map((c) => `/ui/requests?handle=${a.id}&class=${c}&period=all`));
    expect((await get(`/ui/requests?handle=${a.id}&class=drift&period=all`, key)).location).toBe(`/ui/handles/${a.id}?period=all&class=drift#recent-requests`);
    // The live fragment carries the same links (it replaces the waterfall on each reconciliation).
    const live = await get(`/ui/fragments/handles/${a.id}?period=7d`, key);
    expect(linksIn(wide(live.text))).toEqual(linksIn(wide(page.text)));
  });

  it("the overview's bars and causes link to the tenant's requests with that class; each ranked handle's biggest leak to its own", async () => {
    const { client, key, a, b, ids } = await history();
    const from = new Date(t.clock.now() - 6 * DAY).toISOString().slice(0, 10);
    const api = (await client.get(`/v1/reports?from=${from}`)).json;
    const page = await get('/ui?period=7d', key);
    const href = (cls: string) => `/ui/requests?class=${cls}&period=7d`;
    expect(linkable(api.tokens)).toEqual(['cold', 'drift', 'expired', 'captured']);
    for (const svg of [wide(page.text), narrow(page.text)]) expect(linksIn(svg)).toEqual(['cold', 'drift', 'expired', 'captured'].map((cls) => ({ cls, href: href(cls) })));
    // The causes, the costliest first as the table orders them, each linked.
    const causes = [...byCause(page.text).matchAll(/<tr data-class="([a-z_]+)">/g)].map((m) => m[1]);
    expect(causes.sort()).toEqual(['drift', 'expired']);
    expect(linksIn(byCause(page.text)).map((l) => l.cls)).toEqual([...byCause(page.text).matchAll(/<tr data-class="([a-z_]+)">/g)].map((m) => m[1]));
    for (const l of linksIn(byCause(page.text))) expect(l.href).toBe(href(l.cls));

    // The requests holding each class on any handle's segments: the inline call is on none.
    const expected: Record<string, string[]> = { cold: [ids.b1!, ids.a1!], drift: [ids.b2!, ids.a4!, ids.a3!], expired: [ids.b3!], captured: [ids.a2!] };
    for (const cls of Object.keys(expected)) {
      const listed = await get(href(cls), key);
      expect(listed.status, cls).toBe(200);
      expect(rowsOf(listed.text), cls).toEqual(expected[cls]);
      expect(rowsOf(listed.text).length).toBe(api.requests_with[cls]);
      const viaApi = (await client.get(`/v1/requests?class=${cls}&from=${from}`)).json.requests.map((r: { id: string }) => r.id);
      expect(viaApi, cls).toEqual(expected[cls]);
      expect(listed.text).toContain(`<h1>Requests with ${cls}</h1>`);
      expect(listed.text).toContain(`<code>GET /v1/requests?class=${cls}&amp;from=${from}</code>`);
      // Its period chooser keeps the class.
      expect(listed.text).toContain(`<a href="/ui/requests?period=all&amp;class=${cls}"`);
    }
    // A class with none in the period says so; over all time the same requests.
    const none = await get('/ui/requests?class=lookback&period=7d', key);
    expect([none.status, rowsOf(none.text)]).toEqual([200, []]);
    expect(none.text).toContain('No reconciled request with lookback on a handle in this period.');
    expect(rowsOf((await get('/ui/requests?class=drift&period=all', key)).text)).toEqual(expected.drift);

    // The ranking: each handle's biggest leak leads to that handle's requests with it.
    const ranked = [...page.text.matchAll(/<tr data-handle="([^"]+)">([\s\S]*?)<\/tr>/g)].map((m) => ({ id: m[1]!, html: m[2]! }));
    expect(ranked.map((r) => r.id).sort()).toEqual([a.id, b.id].sort());
    for (const r of ranked) {
      const cls = /data-biggest-leak="([a-z_]+)"/.exec(r.html)![1]!;
      expect(linksIn(r.html), r.id).toEqual([{ cls, href: `/ui/requests?handle=${r.id}&class=${cls}&period=7d` }]);
    }
  });

  it('nothing to list, nothing linked; an unknown class is refused; another tenant lists none of them', async () => {
    const { key, ids } = await history();
    // A tenant with no request: no bar, no cause links to an empty list.
    const empty = t.tenant();
    const page = await get('/ui?period=7d', empty.key);
    expect(linksIn(page.text)).toEqual([]);
    expect(wide(page.text)).toMatch(/^<svg[^>]* role="img"/);
    const bad = await get('/ui/requests?class=leak', key);
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/<title>Cannot show this · prefix-handles<\/title>[\s\S]*class must be one of captured, bonus/);
    // Without a class or a handle, the overview as before.
    expect((await get('/ui/requests', key)).location).toBe('/ui');
    const other = await get('/ui/requests?class=drift&period=all', empty.key);
    expect([other.status, rowsOf(other.text)]).toEqual([200, []]);
    expect(other.text).not.toContain(ids.a3!);
    // The default period is the dashboard's (7d).
    expect((await get('/ui/requests?class=drift', key)).text).toContain('<a href="/ui/requests?period=7d&amp;class=drift" aria-current="page"');
  });
});
