// The overview's last two figures without a way to their requests: the sessions row's biggest leak links to the
// requests with that class on any session's segments (/ui/requests?type=session&class=&period=), and each count of
// calls through no handle (the total and each model's row) to those calls (/ui/requests?no_handle=true&model=&period=).
// Served over real HTTP on a database file; followed, each link lists exactly the requests the API's list gives, as
// many as the report counts.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientFor, createTestApp, listen, type Client, type TestApp } from '../helpers/app';
import { sessionsAndInline, type SessionsAndInline } from './seed';

const DAY = 86_400_000;
let dir: string;
let t: TestApp;
let server: Awaited<ReturnType<typeof listen>>;
let client: Client;
let key: string;
let h: SessionsAndInline;
let week: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ph-session-links-'));
  t = createTestApp({ databasePath: join(dir, 'db.sqlite') });
  server = await listen(t.app);
  key = t.tenant().key;
  client = clientFor({ request: (path: string, init?: RequestInit) => fetch(`${server.base}${path}`, init) }, key);
  h = await sessionsAndInline(t, client);
  week = new Date(t.clock.now() - 6 * DAY).toISOString().slice(0, 10);
});
afterAll(async () => {
  await server.close();
  t.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A dashboard page over HTTP as a signed-in user gets it, not following a redirect. */
async function page(path: string, as = key) {
  const res = await fetch(`${server.base}${path}`, { headers: { cookie: `ph_ui_key=${as}` }, redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location'), text: await res.text() };
}

const unescape = (s: string) => s.replaceAll('&quot;', '"').replaceAll('&#39;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
const rowsOf = (html: string) => [...html.matchAll(/<tr data-request="(req_[^"]+)">/g)].map((m) => m[1]);
const ids = (query: string) => client.get(`/v1/requests?${query}&limit=500`).then((r) => (r.json.requests as Array<{ id: string }>).map((x) => x.id));

describe("the overview's sessions row and calls through no handle lead to their requests", () => {
  it("the sessions row's biggest leak links to the requests with it on any session's segments; followed, as many as by_type's requests_with", async () => {
    for (const [period, from] of [['7d', week], ['all', undefined]] as const) {
      const overview = await page(`/ui?period=${period}`);
      const row = /<tr data-group="session"[\s\S]*?<\/tr>/.exec(overview.text)![0];
      const cls = /data-biggest-leak="([a-z_]+)"/.exec(row)![1]!;
      const links = [...row.matchAll(/<a href="([^"]+)" data-requests-link="([a-z_]+)"/g)].map((m) => ({ href: unescape(m[1]!), cls: m[2] }));
      expect(links, period).toEqual([{ href: `/ui/requests?type=session&class=${cls}&period=${period}`, cls }]);
      const bySession = (await client.get(`/v1/reports?by_type=true${from ? `&from=${from}` : ''}`)).json.by_type.session;
      const listed = await page(links[0]!.href);
      expect(listed.status, period).toBe(200);
      const api = await ids(`type=session&class=${cls}${from ? `&from=${from}` : ''}`);
      expect(rowsOf(listed.text), period).toEqual(api);
      expect(api.length, period).toBe(bySession.requests_with[cls]);
      expect(api.length, period).toBeGreaterThan(0);
      expect(listed.text).toContain(`<h1>Requests with ${cls} on sessions</h1>`);
      expect(listed.text).toContain(`<code>GET /v1/requests?type=session&amp;class=${cls}${from ? `&amp;from=${from}` : ''}</code>`);
      expect(listed.text).toContain('Tokens by class (sessions&#39;)');
      // Its period chooser keeps the type and class.
      expect(listed.text).toContain(`<a href="/ui/requests?period=30d&amp;type=session&amp;class=${cls}"`);
    }
    // Every class with session tokens, not only the biggest: the API's list, the classifier's drift not among them.
    for (const cls of ['cold', 'captured', 'drift', 'expired', 'unconfirmed', 'unknown']) {
      const listed = await page(`/ui/requests?type=session&class=${cls}&period=7d`);
      expect(rowsOf(listed.text), cls).toEqual(await ids(`type=session&class=${cls}&from=${week}`));
    }
    expect(rowsOf((await page('/ui/requests?type=session&class=drift&period=7d')).text)).toEqual([h.ids['c3.2']]);
    // The live fragment carries the same link.
    const live = await page('/ui/fragments/overview?period=7d');
    expect(/<tr data-group="session"[\s\S]*?<\/tr>/.exec(live.text)![0]).toMatch(/<a href="\/ui\/requests\?type=session&amp;class=[a-z_]+&amp;period=7d" data-requests-link=/);
  });

  it('each count of calls through no handle (the total, each model) links to those calls; followed, as many as no_handle counts, each of its model', async () => {
    const overview = await page('/ui?period=7d');
    const report = (await client.get(`/v1/reports?from=${week}`)).json;
    const total = /<div class="metric" data-no-handle="requests"[\s\S]*?<\/div>/.exec(overview.text)![0];
    expect(unescape(/<a href="([^"]+)" data-no-handle-link>(\d+)<\/a>/.exec(total)![1]!)).toBe('/ui/requests?no_handle=true&period=7d');
    const all = await page('/ui/requests?no_handle=true&period=7d');
    expect(rowsOf(all.text)).toEqual(await ids(`no_handle=true&from=${week}`));
    expect(rowsOf(all.text).length).toBe(report.no_handle.requests);
    expect(all.text).toContain('<h1>Requests through no handle</h1>');
    expect(all.text).toContain('<th class="num">Prompt tokens</th>');
    expect(all.text).not.toContain(h.ids.unreported);
    expect(all.text).not.toContain(h.ids['empty-session']);

    const rows = [...overview.text.matchAll(/<tr data-no-handle-model="([^"]+)">([\s\S]*?)<\/tr>/g)].map((m) => ({ model: unescape(m[1]!), html: m[2]! }));
    expect(rows.map((r) => r.model).sort()).toEqual(['claude-haiku-4-5', 'claude-sonnet-4-5']);
    for (const r of rows) {
      const [, href, shown] = /<a href="([^"]+)" data-no-handle-link>(\d+)<\/a>/.exec(r.html)!;
      expect(unescape(href!), r.model).toBe(`/ui/requests?no_handle=true&period=7d&model=${r.model}`);
      const listed = await page(unescape(href!));
      expect(listed.status, r.model).toBe(200);
      expect(rowsOf(listed.text), r.model).toEqual(await ids(`no_handle=true&model=${r.model}&from=${week}`));
      expect(rowsOf(listed.text).length, r.model).toBe(Number(shown));
      expect(Number(shown), r.model).toBe((await client.get(`/v1/reports?model=${r.model}&from=${week}`)).json.no_handle.requests);
      expect(listed.text).toContain(`<h1>Requests through no handle sent to <bdi data-filter-model>${r.model}</bdi></h1>`);
      expect(listed.text).toContain(`<a href="/ui/requests?period=all&amp;no_handle=true&amp;model=${r.model}"`);
    }
    // Over all time, the ten-day-old inline call too.
    expect(rowsOf((await page('/ui/requests?no_handle=true&period=all')).text)).toContain(h.ids['old-inline']);
  });

  it('a bad type or no_handle, a type without a class, or either with a handle is the 400 page; another tenant lists none of these', async () => {
    for (const [query, says] of [
      ['type=sessions&class=cold', 'type must be artifact, bundle or session'],
      ['type=session', 'type needs class'],
      ['no_handle=1', 'no_handle must be true'],
      ['no_handle=true&class=cold', 'so not with class'],
      [`handle=${h.sessions[0]}&type=session&class=cold`, 'type is for the tenant&#39;s requests, not with handle'],
      [`handle=${h.sessions[0]}&no_handle=true`, 'so not with handle'],
    ]) {
      const res = await page(`/ui/requests?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.text, query).toContain(says);
    }
    const other = t.tenant();
    for (const path of ['/ui/requests?type=session&class=cold&period=all', '/ui/requests?no_handle=true&period=all']) {
      const res = await page(path, other.key);
      expect([res.status, rowsOf(res.text)], path).toEqual([200, []]);
    }
    expect((await page('/ui/requests?no_handle=true&period=all', other.key)).text).toContain('No reconciled request through no handle yet.');
  });
});
