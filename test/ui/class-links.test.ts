// A handle page's leak figures lead to the requests behind them: "drift: 40,000 tokens in 12 requests" could not be
// listed from the page in a team lead's trial. Each figure links to the handle's requests with that class, the
// list GET /v1/requests?handle=&class= gives.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app';
import { mintSystem, userMessage } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report, type Rendered } from '../helpers/scenario';
import { MIN, signedInPage } from './seed';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const get = (path: string, key: string) => signedInPage(t, path, key);

/** One system prompt: cold, read, drift twice (a time inline before it), then expired after ten minutes unused. */
async function history(app: TestApp = t) {
  const { client, key } = app.tenant();
  const sys = await mintSystem(client, LONG_SYSTEM);
  const ids: Record<string, string> = {};
  const call = async (name: string, system: unknown[], read: boolean) => {
    const r: Rendered = await renderAnthropic(client, { system, messages: [userMessage(name)] });
    const cached = r.breakpoints.at(-1)!.token_end;
    await report(client, app, r, anthropicUsage(promptTokens(r), read ? cached : 0, read ? 0 : cached));
    ids[name] = r.request_id;
    app.clock.advance(MIN);
  };
  const h = { type: 'handle', ref: sys.id };
  await call('first', [h], false);
  await call('read', [h], true);
  await call('stamp1', [{ type: 'text', text: 'Now: 10:00' }, h], false);
  await call('stamp2', [{ type: 'text', text: 'Now: 10:01' }, h], false);
  app.clock.advance(10 * MIN);
  await call('late', [h], false);
  await app.services.writes.idle();
  return { client, key, sys, ids };
}

const rowsOf = (page: string) => [...page.matchAll(/<tr data-request="(req_[^"]+)">/g)].map((m) => m[1]);

describe("a handle page's leak figures", () => {
  it('each links to the requests with that leak, the list the API gives for the handle and class', async () => {
    const { client, key, sys, ids } = await history();
    const api = (await client.get(`/v1/reports/handles/${sys.id}?from=${new Date(t.clock.now() - 6 * 86_400_000).toISOString().slice(0, 10)}`)).json;
    const page = await get(`/ui/handles/${sys.id}?period=7d`, key);
    const links = [...page.text.matchAll(/<a href="([^"]+)" data-class-link="([a-z_]+)" data-requests="(\d+)">([^<]*)<\/a>/g)].map((m) => ({ href: m[1]!.replaceAll('&amp;', '&'), cls: m[2]!, requests: Number(m[3]), text: m[4] }));
    // The leaks the history has, in the waterfall's order, each with the report's tokens and requests.
    expect(links.map((l) => [l.cls, l.requests])).toEqual([['cold', 1], ['drift', 2], ['expired', 1]]);
    for (const l of links) {
      expect(l.requests).toBe(api.requests_with[l.cls]);
      expect(l.text).toBe(`${l.cls}: ${api.tokens[l.cls].toLocaleString('en-US')} tok in ${l.requests} request${l.requests === 1 ? '' : 's'}`);
      expect(l.href).toBe(`/ui/handles/${sys.id}?period=7d&class=${l.cls}#recent-requests`);
    }
    const expected: Record<string, string[]> = { cold: [ids.first!], drift: [ids.stamp2!, ids.stamp1!], expired: [ids.late!] };
    const from = api.range.from.slice(0, 10);
    for (const l of links) {
      const listed = await get(l.href.replace(/#.*/, ''), key);
      expect(listed.status).toBe(200);
      // As many requests as the figure says, the API's for the handle and class.
      expect(rowsOf(listed.text), l.cls).toEqual(expected[l.cls]);
      const viaApi = (await client.get(`/v1/requests?handle=${sys.id}&class=${l.cls}&from=${from}`)).json.requests.map((r: { id: string }) => r.id);
      expect(viaApi).toEqual(expected[l.cls]);
      expect(listed.text).toContain(`<h2 id="recent-requests">Requests with ${l.cls} on this handle <small class="muted">(started since ${from}, as of this page load; all of them: <code>GET /v1/requests?handle=${sys.id}&amp;class=${l.cls}&amp;from=${from}</code>)</small></h2>`);
      expect(listed.text).toContain(`data-class-link="${l.cls}" data-requests="${l.requests}" aria-current="true"`);
    }
    // Unfiltered, the recent requests are every request, and "all" is the current choice.
    expect(rowsOf(page.text)).toEqual([ids.late, ids.stamp2, ids.stamp1, ids.read, ids.first]);
    expect(page.text).toContain(`<a href="/ui/handles/${sys.id}?period=7d#recent-requests" aria-current="true">all recent requests</a>`);
  });

  it('a class with none says so; an unknown class is refused, not read as no filter; /ui/requests?handle=&class= leads there', async () => {
    const { key, sys } = await history();
    const none = await get(`/ui/handles/${sys.id}?period=7d&class=lookback`, key);
    expect(rowsOf(none.text)).toEqual([]);
    expect(none.text).toContain('No recorded request with lookback on this handle in this period.');
    const bad = await get(`/ui/handles/${sys.id}?class=leak`, key);
    expect(bad.status).toBe(400);
    // Its tab is titled as its heading says (it was "Not found", for a handle that exists).
    expect(bad.text).toMatch(/<title>Cannot show this · prefix-handles<\/title>[\s\S]*<h1>Cannot show this<\/h1>/);
    expect(bad.text).toContain('class must be one of captured, bonus, unconfirmed, unknown, cold, drift, expired, concurrent, below_minimum, no_breakpoint, lookback');
    const redirect = await get(`/ui/requests?handle=${sys.id}&class=drift`, key);
    expect([redirect.status, redirect.headers.get('location')]).toEqual([303, `/ui/handles/${sys.id}?class=drift#recent-requests`]);
    // A page reads at most the scan budget of the list (2,000; 2 here): it says when it stopped there, and where the rest is.
    const small = createTestApp({ config: { listScanBudget: 2 } });
    try {
      const { key: k2, sys: s2, ids } = await history(small);
      const cut = await (await small.app.request(`/ui/handles/${s2.id}?period=7d&class=cold`, { headers: { cookie: `ph_ui_key=${k2}` } })).text();
      expect(rowsOf(cut)).toEqual([]);
      expect(cut).toContain("<p class=\"muted\" data-class-more>The page read the latest 2 requests of this handle (the most one page reads) and lists 0 with cold; older ones: the API's <code>next_cursor</code>.</p>");
      expect(cut).not.toContain('No recorded request');
      // A rare class is read from its index, whatever the budget: every drift on the page, and nothing said of a scan.
      const drift = await (await small.app.request(`/ui/handles/${s2.id}?period=7d&class=drift`, { headers: { cookie: `ph_ui_key=${k2}` } })).text();
      expect(rowsOf(drift)).toEqual([ids.stamp2, ids.stamp1]);
      expect(drift).not.toContain('data-class-more');
    } finally {
      small.close();
    }
    // Another tenant's handle: the same 404 as without a class.
    const other = t.tenant();
    expect((await get(`/ui/handles/${sys.id}?class=drift`, other.key)).status).toBe(404);
  });
});
