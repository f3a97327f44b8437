import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app';
import { SqliteStore } from '../../src/store/sqlite-store';
import { mintBundle, mintSystem, startSession, userMessage } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';
import { requestWhys, type WhyInput } from '../../src/domain/reconcile/explain';
import { anotherTurn, DOC_TEXT, expectedMetrics, HOSTILE, metricsOf, MIN, seed, waterfallOf } from './seed';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const DAY = 86_400_000;
const cookie = (key: string) => ({ cookie: `ph_ui_key=${key}` });
/** The API takes times in a query as RFC 3339. */
const since = (ms: number) => `from=${new Date(ms).toISOString()}`;

async function get(path: string, key?: string) {
  const res = await t.app.request(path, { headers: key ? cookie(key) : {} });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

function signInForm(body: Record<string, string>, url = 'http://localhost/ui/sign-in') {
  return t.app.request(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString() });
}

describe('sign-in', () => {
  it('redirects every page to sign-in, keeping where the user was going', async () => {
    for (const path of ['/ui', '/ui?period=30d', '/ui/handles/art_000000000000000000000', '/ui/requests/req_000000000000000000000']) {
      const res = await get(path);
      expect(res.status, path).toBe(303);
      expect(res.headers.get('location')).toBe(`/ui/sign-in?next=${encodeURIComponent(path)}`);
    }
    // Script-fetched parts answer 401 instead of a redirect.
    expect((await get('/ui/fragments/overview')).status).toBe(401);
    expect((await get('/ui/events')).status).toBe(401);
  });

  it('shows the form, refuses a wrong or empty key with the form again, and sets a strict http-only cookie', async () => {
    const { key } = t.tenant();
    const form = await get('/ui/sign-in?next=%2Fui%3Fperiod%3D30d');
    expect(form.status).toBe(200);
    expect(form.text).toContain('name="key"');
    expect(form.text).toContain('value="/ui?period=30d"');

    const wrong = await signInForm({ key: 'phk_not-a-key', next: '/ui' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    expect(await wrong.text()).toContain('That API key is not valid');
    const empty = await signInForm({ key: '  ' });
    expect(empty.status).toBe(400);
    expect(await empty.text()).toContain('Enter an API key');

    const ok = await signInForm({ key, next: '/ui?period=30d' });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/ui?period=30d');
    const set = ok.headers.get('set-cookie')!;
    expect(set).toMatch(/^ph_ui_key=/);
    expect(set).toContain('HttpOnly');
    expect(set).toContain('SameSite=Strict');
    expect(set).toContain('Path=/ui');
    expect(set).not.toContain('Secure');
    const overview = await get('/ui', key);
    expect(overview.status).toBe(200);
    // A tenant with nothing reconciled yet is told the two ways to get there, the proxy first.
    expect(overview.text).toContain('Call your model through the proxy with a handle (<code>x-ph-prefix</code>');

    const https = await signInForm({ key }, 'https://dash.example/ui/sign-in');
    expect(https.headers.get('set-cookie')).toContain('Secure');
  });

  it('never redirects off the dashboard after sign-in', async () => {
    const { key } = t.tenant();
    for (const next of ['//evil.example/', 'https://evil.example/ui', '/v1/reports', '/ui\\@evil', 'javascript:alert(1)'])
      expect((await signInForm({ key, next })).headers.get('location'), next).toBe('/ui');
  });

  it('refuses sign-in and sign-out posted from another site', async () => {
    const { key } = t.tenant();
    const post = (path: string, headers: Record<string, string>) =>
      t.app.request(path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...cookie(key), ...headers }, body: new URLSearchParams({ key }).toString() });
    for (const path of ['/ui/sign-in', '/ui/sign-out']) {
      expect((await post(path, { origin: 'https://evil.example' })).status, path).toBe(403);
      expect((await post(path, { 'sec-fetch-site': 'cross-site' })).status, path).toBe(403);
      expect((await post(path, { origin: 'http://localhost', 'sec-fetch-site': 'same-origin' })).status, path).toBe(303);
    }
  });

  it('signs out, and a revoked key is signed out on its next request', async () => {
    const { key } = t.tenant();
    const out = await t.app.request('/ui/sign-out', { method: 'POST', headers: cookie(key) });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/ui/sign-in');
    expect(out.headers.get('set-cookie')).toMatch(/ph_ui_key=;.*Max-Age=0/);

    const keyId = t.services.tenants.authenticate(key).keyId;
    t.services.tenants.revokeKey(keyId);
    const res = await get('/ui', key);
    expect(res.status).toBe(303);
    expect(res.headers.get('set-cookie')).toMatch(/ph_ui_key=;/);
  });
});

describe('pages show the API report figures', () => {
  it('overview of a tenant with no traffic yet: the waterfall axis says so, not "1 tok"', async () => {
    const { key } = t.tenant();
    const page = await get('/ui', key);
    expect(page.status).toBe(200);
    const waterfall = /<svg[^>]*data-chart="waterfall"[\s\S]*?<\/svg>/.exec(page.text)![0];
    expect(waterfall).toContain('no tokens yet');
    expect(waterfall).not.toMatch(/>1 tok</);
  });

  it('overview: realised savings below zero (write premiums never read back) are not drawn as a gain', async () => {
    const { key, client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    // A timestamp before the system prompt: every call writes it again, none reads it.
    for (const stamp of ['09:00:00', '09:01:00', '09:02:00']) {
      const r = await renderAnthropic(client, { system: [{ type: 'text', text: `Current time: 2026-12-01T${stamp}Z` }, { type: 'handle', ref: sys.id }], messages: [userMessage('hi')] });
      await report(client, t, r, anthropicUsage(promptTokens(r), 0, r.breakpoints[0]!.token_end));
      t.clock.advance(MIN);
    }
    const realised = (await client.get('/v1/reports')).json.money.realised_savings as number;
    expect(realised).toBeLessThan(0);
    const page = await get('/ui', key);
    // It was class "metric good": a loss in the colour of a saving.
    expect(page.text).toContain(`<div class="metric bad" data-metric="money.realised_savings" data-value="${realised}">`);
    expect(page.text).toContain('vs. no caching: the write premiums cost more than the reads saved');
  });

  it('overview: totals, money, waterfall and the handle ranking equal GET /v1/reports for each period', async () => {
    const s = await seed(t);
    // An older request: inside 7 days, outside 24 hours.
    t.clock.advance(-3 * DAY);
    await anotherTurn(t, s, 0);
    t.clock.advance(3 * DAY);

    for (const [period, from] of [['24h', t.clock.now() - DAY], ['7d', t.clock.now() - 6 * DAY], ['30d', t.clock.now() - 29 * DAY], ['all', undefined]] as const) {
      const page = await get(`/ui?period=${period}`, s.key);
      expect(page.status).toBe(200);
      const api = (await s.client.get(`/v1/reports${from === undefined ? '' : `?${since(from)}`}`)).json;
      expect(metricsOf(page.text), period).toEqual(expectedMetrics(api));
      // The capture rate names its denominator when requests without a cache report make it differ.
      const differs = api.tokens.reported_opportunity !== api.tokens.opportunity;
      expect(page.text, period).toContain(differs ? 'of opportunity with a cache report' : 'captured ÷ opportunity');
      // The words a team lead needed the README for are said beside their figures.
      for (const [key, note] of [['tokens.referenced', 'sent from handles'], ['tokens.opportunity', 'sent before in the same cache scope: could be read from cache (the rest is cold, a first send)'], ['tokens.captured', 'read from cache, as the provider confirmed']] as const)
        expect(new RegExp(`data-metric="${key.replace('.', '\\.')}"[^>]*><dt>[^<]*</dt><dd>[^<]*<small>([^<]*)</small>`).exec(page.text)?.[1], `${period} ${key}`).toBe(note);
      const drawn = waterfallOf(page.text);
      for (const cls of ['referenced', 'cold', 'opportunity', 'drift', 'unknown', 'captured', 'bonus', 'expired']) expect(drawn[cls], `${period} ${cls}`).toBe(api.tokens[cls]);
      // The waterfall's captured share is the capture rate beside it, of the same denominator.
      const capturedShare = /<g data-class="captured"[\s\S]*?class="pct">([^<]*)<\/text>/.exec(page.text)?.[1];
      expect(capturedShare, period).toBe(`${(api.capture_rate * 100).toFixed(1)}% of ${differs ? 'opp. reported' : 'opp.'}`);
      // Handles ranked by leaked money, in the API's order.
      const ranked = [...page.text.matchAll(/<tr data-handle="([^"]+)">/g)].map((m) => m[1]);
      expect(ranked).toEqual(api.handles.map((h: { id: string }) => h.id));
    }
    const week = await get('/ui?period=7d', s.key);
    const day = await get('/ui?period=24h', s.key);
    expect(metricsOf(week.text).requests).toBe(metricsOf(day.text).requests! + 1);
    expect(week.text).toContain('aria-current="page" title="Last 7 days">7d');
  });

  it('handle page: its waterfall, per-day capture, versions and drift equal the handle report', async () => {
    const s = await seed(t);
    const page = await get(`/ui/handles/${s.sys.id}?period=7d`, s.key);
    expect(page.status).toBe(200);
    // Seven whole UTC days, today included.
    const api = (await s.client.get(`/v1/reports/handles/${s.sys.id}?${since(t.clock.now() - 6 * DAY)}`)).json;
    expect(metricsOf(page.text)).toEqual(expectedMetrics(api));
    const drawn = waterfallOf(page.text);
    for (const [cls, n] of Object.entries(api.tokens)) if (cls in drawn) expect(drawn[cls], cls).toBe(n);

    // Today's bar is the API's report for today alone.
    const today = new Date(t.clock.now()).toISOString().slice(0, 10);
    const todayApi = (await s.client.get(`/v1/reports/handles/${s.sys.id}?from=${today}T00:00:00Z&to=${today}T00:00:00Z`)).json;
    expect(page.text).toContain(`data-day="${today}" data-rate="${todayApi.capture_rate}"`);
    expect((page.text.match(/data-day="/g) ?? []).length).toBe(7);

    // Version 2 changed the text: the table says where and how much that invalidated.
    const described = (await s.client.get(`/v1/handles/${s.sys.id}`)).json;
    const change = described.versions[1].meta.change;
    expect(page.text).toContain(`data-invalidated="${change.invalidated_tokens.anthropic}"`);
    expect(page.text).toContain(`first differing byte <b>${change.first_diff_byte}</b>`);

    // Drift: both sides of the first differing bytes, side by side.
    const finding = api.drift[0];
    expect(page.text).toContain(`data-drift="${finding.request_id}"`);
    expect(page.text).toMatch(/data-side="before"><span class="same">[^<]*Current time: 2026-01-01T12:0<\/span><mark class="diff">5<\/mark>/);
    expect(page.text).toMatch(/data-side="now"><span class="same">[^<]*Current time: 2026-01-01T12:0<\/span><mark class="diff">6<\/mark>/);

    // Its latest requests, newest first, as GET /v1/requests?handle= lists them, each linked; the drifted one flagged.
    const listed = (await s.client.get(`/v1/requests?handle=${s.sys.id}&limit=10`)).json.requests as Array<{ id: string; drift: boolean }>;
    const rows = [...page.text.matchAll(/<tr data-request="(req_[^"]+)">([\s\S]*?)<\/tr>/g)];
    expect(rows.map((m) => m[1])).toEqual(listed.map((r) => r.id));
    expect(rows.every((m) => m[2]!.includes(`href="/ui/requests/${m[1]}"`))).toBe(true);
    expect(rows.filter((m) => m[2]!.includes('data-drift-flag')).map((m) => m[1])).toEqual(listed.filter((r) => r.drift).map((r) => r.id));
    expect(listed.some((r) => r.drift)).toBe(true);
    // The API's filter as a dashboard address leads to that list.
    const byHandle = await get(`/ui/requests?handle=${s.sys.id}`, s.key);
    expect(byHandle.status).toBe(303);
    expect(byHandle.headers.get('location')).toBe(`/ui/handles/${s.sys.id}#recent-requests`);
    expect(page.text).toContain('id="recent-requests"');
    // A ref as the API prints it leads to its handle's page (which breaks the figures down by version).
    const byRef = await get(`/ui/handles/${s.sys.id}@1?period=7d`, s.key);
    expect(byRef.status).toBe(303);
    expect(byRef.headers.get('location')).toBe(`/ui/handles/${s.sys.id}?period=7d`);
  });

  it('handle page: its recent requests are those rendered in the chosen period, as GET /v1/requests lists them with its from', async () => {
    const { client, key } = t.tenant();
    const sys = await mintSystem(client, 'Listed by period.');
    const ask = async (q: string) => (await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 5, prefix: [sys.id], messages: [userMessage(q)] } })).json.request_id as string;
    const old = await ask('ten days ago');
    t.clock.advance(10 * DAY);
    const recent = await ask('today');
    await t.services.writes.idle();
    const rowsOf = (page: string) => [...page.matchAll(/<tr data-request="(req_[^"]+)">/g)].map((m) => m[1]);
    const week = await get(`/ui/handles/${sys.id}?period=7d`, key);
    const from = new Date(t.clock.now() - 6 * DAY).toISOString().slice(0, 10);
    expect(rowsOf(week.text)).toEqual([recent]);
    // The heading says which requests these are, and the API call that lists all of them.
    expect(week.text).toContain(`(started since ${from}, as of this page load; all of them: <code>GET /v1/requests?handle=${sys.id}&amp;from=${from}</code>)`);
    expect((await client.get(`/v1/requests?handle=${sys.id}&from=${from}`)).json.requests.map((r: { id: string }) => r.id)).toEqual([recent]);
    const all = await get(`/ui/handles/${sys.id}?period=all`, key);
    expect(rowsOf(all.text)).toEqual([recent, old]);
    expect(all.text).toContain(`(started at any time, as of this page load; all of them: <code>GET /v1/requests?handle=${sys.id}</code>)`);
    // A period with none: said so.
    t.clock.advance(3 * DAY);
    expect((await get(`/ui/handles/${sys.id}?period=24h`, key)).text).toContain('No recorded request referenced this handle in this period.');
  });

  it("handle page, period all: when the chart's days hold none of the figures (history older than it), it says so", async () => {
    const s = await seed(t);
    const recent = await get(`/ui/handles/${s.sys.id}?period=all`, s.key);
    expect(recent.text).not.toContain('data-notice="no-days"');
    t.clock.advance(200 * DAY);
    const later = await get(`/ui/handles/${s.sys.id}?period=all`, s.key);
    expect(later.status).toBe(200);
    expect(later.text).toContain('data-notice="no-days"');
  });

  it('handle page: volatile values are marked at their byte offsets, in multi-byte content', async () => {
    const s = await seed(t);
    const page = await get(`/ui/handles/${s.doc.id}`, s.key);
    const meta = (await s.client.get(`/v1/handles/${s.doc.id}`)).json.version.meta;
    expect(meta.volatility.count).toBeGreaterThanOrEqual(2);
    for (const f of meta.volatility.findings) {
      // The API's offset is in UTF-8 bytes: the mark must wrap exactly those bytes.
      expect(Buffer.from(DOC_TEXT).subarray(f.offset, f.offset + Buffer.byteLength(f.text)).toString()).toBe(f.text);
      expect(page.text).toContain(`data-kind="${f.kind}" data-offset="${f.offset}">${f.text}</mark>`);
    }
    // The bundle page lists its sources and shows the volatile one.
    const bundlePage = await get(`/ui/handles/${s.bundle.id}`, s.key);
    expect(bundlePage.text).toContain(`data-content="${s.doc.id}@1"`);
    expect(bundlePage.text).not.toContain(`data-content="${s.sys.id}@1"`);
  });

  it('a deleted handle keeps its report page, without its content', async () => {
    const { client, key } = t.tenant();
    const sys = await mintSystem(client, 'short-lived prompt');
    const r = (await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 5, system: [{ type: 'handle', ref: sys.id }], messages: [{ role: 'user', content: 'x' }] } })).json;
    await client.post('/v1/usage', { request_id: r.request_id, usage: { input_tokens: 30, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, output_tokens: 1 } });
    expect((await client.delete(`/v1/handles/${sys.id}`)).status).toBe(204);
    const page = await get(`/ui/handles/${sys.id}`, key);
    expect(page.status).toBe(200);
    expect(page.text).toContain('deleted: its reports remain');
    expect(page.text).not.toContain('short-lived prompt');
    expect(metricsOf(page.text).requests).toBe(1);
    // The overview's row for it says so, as the tenant report does.
    expect((await client.get('/v1/reports')).json.handles).toMatchObject([{ id: sys.id, deleted: true }]);
    const overview = (await get('/ui', key)).text;
    // Unnamed: its id once, as the link, then its kind (a name, when there is one, is the link and the id goes below it).
    expect(overview).toContain(`class="mono">${sys.id}</a><br><small class="muted">system · <span class="notice" data-deleted>deleted</span>`);
    const row = new RegExp(`<tr data-handle="${sys.id}">[\\s\\S]*?</tr>`).exec(overview)![0];
    expect(row.replace(/<[^>]*>/g, '').split(sys.id).length - 1).toBe(1);
  });

  it('a name with a right-to-left override is isolated: the id beside it reads as it is', async () => {
    const { client, key } = t.tenant();
    const sys = (await client.post('/v1/artifacts', { kind: 'system', content: 'prompt', name: 'evil\u202eeman' })).json;
    const r = (await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 5, system: [{ type: 'handle', ref: sys.id }], messages: [{ role: 'user', content: 'x' }] } })).json;
    await client.post('/v1/usage', { request_id: r.request_id, usage: { input_tokens: 30, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, output_tokens: 1 } });
    expect((await get(`/ui/handles/${sys.id}`, key)).text).toContain(`<h1><bdi>evil\u202eeman</bdi> <code>${sys.id}</code></h1>`);
    expect((await get('/ui', key)).text).toContain(`<bdi>evil\u202eeman</bdi></a>`);
  });

  it('handle page of a session: an append invalidates nothing, and volatile values in a batch are marked', async () => {
    const { client, key } = t.tenant();
    const sys = await mintSystem(client);
    const b = await mintBundle(client, [sys.id]);
    const ses = await startSession(client, { base: b.id, messages: [userMessage('hello')] });
    await client.post(`/v1/sessions/${ses.id}/messages`, { messages: [userMessage('It is 2026-03-04T05:06:07Z now')] });
    const page = await get(`/ui/handles/${ses.id}`, key);
    expect(page.status).toBe(200);
    expect(page.text).toContain(`data-content="${ses.id}@2"`);
    expect(page.text).toMatch(/<mark [^>]*>2026-03-04T05:06:07Z<\/mark>/);
    // Marked, and said to be harmless there: a batch is sent again as it was appended.
    expect(page.text).toContain('data-note="session-volatility"');
    expect((await get(`/ui/handles/${b.id}`, key)).text).not.toContain('data-note="session-volatility"');
    expect(page.text).toContain('a pure append: <b>nothing invalidated</b>');
    expect(page.text).toContain('No reconciled request used this handle in this period.');
    expect(page.text).toContain('and the base bundle is @1');
    // A session without a base (its prefix sent in x-ph-prefix) has no base bundle to speak of.
    const bare = await startSession(client, { messages: [userMessage('hello')] });
    const barePage = await get(`/ui/handles/${bare.id}`, key);
    expect(barePage.status).toBe(200);
    expect(barePage.text).toContain('the messages a version appended are sent again by every later turn.');
    expect(barePage.text).not.toContain('base bundle');
  });

  it('handle page of a long session: the newest 50 versions, how many in all, and only those 50 read', async () => {
    const { client, key } = t.tenant();
    const ses = await startSession(client, { messages: [userMessage('turn 0')] });
    for (let k = 1; k < 120; k++) expect((await client.post(`/v1/sessions/${ses.id}/messages`, { messages: [userMessage(`turn ${k}`)] })).status).toBe(201);
    const listed = vi.spyOn(SqliteStore.prototype, 'listVersions');
    try {
      const page = await get(`/ui/handles/${ses.id}`, key);
      expect(page.status).toBe(200);
      const table = /<table data-table="versions"[^>]*>[\s\S]*?<\/table>/.exec(page.text)![0];
      const shown = [...table.matchAll(/<tr data-version="(\d+)">/g)].map((m) => Number(m[1]));
      expect(shown).toEqual(Array.from({ length: 50 }, (_, i) => 120 - i));
      expect(page.text).toContain('session · 120 versions');
      expect(page.text).toContain('data-versions-shown="50" data-versions="120">The latest 50 of 120 versions');
      // Read as GET /v1/handles/{ref}?versions=50 reads them: the newest 50 by the key, not all 120 then cut.
      expect(listed.mock.calls).toEqual([[ses.id, 50]]);
      expect(listed.mock.results.map((r) => (r.value as unknown[]).length)).toEqual([50]);
      listed.mockClear();
      const api = await client.get(`/v1/handles/${ses.id}?versions=50`);
      expect(api.json.versions.map((v: { version: number }) => v.version)).toEqual([...shown].reverse());
      expect(listed.mock.calls).toEqual([[ses.id, 50]]);
    } finally {
      listed.mockRestore();
    }
  });

  it('request page: segment outcomes, usage and diagnostics equal GET /v1/requests/:id', async () => {
    const s = await seed(t);
    for (const r of [s.requests[1]!, s.requests[3]!, s.driftRequest]) {
      const page = await get(`/ui/requests/${r.request_id}`, s.key);
      expect(page.status).toBe(200);
      const api = (await s.client.get(`/v1/requests/${r.request_id}`)).json;
      const table = /<table data-table="segments"[^>]*>[\s\S]*?<\/table>/.exec(page.text)![0];
      api.outcome.segments.forEach((seg: { classes: Record<string, number> }, i: number) => {
        const row = new RegExp(`<tr data-segment="${i}">[\\s\\S]*?</tr>`).exec(table)![0];
        const shown = Object.fromEntries([...row.matchAll(/data-class="([a-z_]+)" data-tokens="(\d+)"/g)].map((m) => [m[1], Number(m[2])]));
        expect(shown).toEqual(Object.fromEntries(Object.entries(seg.classes).filter(([, n]) => n > 0)));
      });
      const m = metricsOf(page.text);
      expect(m['provider.read']).toBe(api.outcome.provider.read);
      expect(m['total_prompt_tokens']).toBe(api.outcome.total_prompt_tokens);
      expect(m['predicted.read']).toBe(api.outcome.predicted.read);
    }
    // The drift says what to change, as 'prefix-handles request' does: the timestamp before the handle goes after it.
    const drift = await get(`/ui/requests/${s.driftRequest.request_id}`, s.key);
    expect(drift.text).toContain('<p data-drift-advice>To be read: keep what changes from call to call (a timestamp, a request id, the date) out of the bytes before the handles: put it after them, in the newest message, and everything before it is read.</p>');
    const unknown = await get(`/ui/requests/${s.requests[3]!.request_id}`, s.key);
    expect(unknown.text).toContain('its capture is <b>unknown</b>, not 0%');
    expect(metricsOf(unknown.text)['provider.read']).toBeNull();
    // Without the provider's cache fields nothing is known to have leaked: no leak figure.
    expect(metricsOf(unknown.text)).not.toHaveProperty('cost.leaked');
  });

  it("request page: each class's explanation with the request's own figures, the lines 'prefix-handles request' prints", async () => {
    const { client, key } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const call = (text: string) => renderAnthropic(client, { system: [{ type: 'handle', ref: sys.id }], messages: [userMessage(text)] });
    const first = await call('first');
    const cached = first.breakpoints[0]!.token_end;
    await report(client, t, first, anthropicUsage(promptTokens(first), 0, cached));
    // Six minutes later the 5m prefix has expired; a minute after that, the provider reads nothing of a prefix just written.
    t.clock.advance(6 * MIN);
    const expired = await call('second');
    const o2 = (await report(client, t, expired, anthropicUsage(promptTokens(expired), 0, cached))).outcome;
    expect(o2.expired!.gap_ms).toBe(6 * MIN);
    t.clock.advance(MIN);
    const unconfirmed = await call('third');
    const o3 = (await report(client, t, unconfirmed, anthropicUsage(promptTokens(unconfirmed), 0, cached))).outcome;
    expect(o3.predicted.read).toBe(cached);
    const models = (await client.get('/v1/models')).json.models as Array<NonNullable<WhyInput['entry']>>;
    const whysOf = (page: string) =>
      [...page.matchAll(/<li data-why="([a-z_]+)" data-tokens="(\d+)">[\s\S]*?<b>[^<]*<\/b> ([^<]*?): <span data-why-text>([^<]*)<\/span><\/li>/g)].map((m) => `${m[1]} ${m[3]}: ${m[4]}`.replaceAll('&#39;', "'"));
    for (const r of [first, expired, unconfirmed]) {
      const api = (await client.get(`/v1/requests/${r.request_id}`)).json;
      const o = api.outcome;
      // The CLI's lines, built from the API's JSON as the CLI builds them.
      const lines = requestWhys({ entry: models.find((m) => m.id === api.catalog_entry), segments: o.segments.map((x: object, i: number) => ({ ...x, section: api.segments[i].section })), breakpoints: api.breakpoints, predicted_read: o.predicted.read, predicted_write: o.predicted.write, provider_read: o.capture === 'unknown' ? null : o.provider.read, provider_write: o.provider.write, complete: api.usage.complete, first_in_scope: o.first_in_scope });
      const page = (await get(`/ui/requests/${r.request_id}`, key)).text;
      expect(whysOf(page), r.request_id).toEqual(lines);
      expect(lines.length).toBeGreaterThan(0);
    }
    const page = (await get(`/ui/requests/${unconfirmed.request_id}`, key)).text;
    // Its own figures: the predicted read against the provider's.
    expect(page).toContain(`predicted, but the provider did not report it as read: predicted read ${cached.toLocaleString('en-US')}, the provider read 0 (eviction, another account, or a concurrent first write)`);
    // The caller's message is cold each time: new as a call's question is, with no volatile value to hunt for.
    expect(page).toMatch(/<li data-why="cold" data-tokens="\d+">[\s\S]*?the caller&#39;s messages of this call, new as a call&#39;s question or tool result is</);
    expect(page).not.toContain('whose bytes were not sent before');
    // The legend keys the colours; the words for an explained class are below, with the figures.
    const legendOf = (p: string) => /<ul class="legend">[\s\S]*?<\/ul>/.exec(p)![0];
    expect(legendOf(page)).not.toContain('data-help="unconfirmed"');
    expect(legendOf(page)).not.toContain('data-help="cold"');
    expect(legendOf(page)).toContain('<b>unconfirmed</b>');
    // Expired is said by its own block, with this request's gap and lifetime; captured (nothing to explain) keeps its legend words.
    const expiredPage = (await get(`/ui/requests/${expired.request_id}`, key)).text;
    expect(expiredPage).toMatch(/<b data-gap="360000">6 min<\/b> before this one, longer than its cache lifetime of <b>5m<\/b>/);
    expect(legendOf(expiredPage)).not.toContain('data-help="expired"');
    const firstPage = (await get(`/ui/requests/${first.request_id}`, key)).text;
    // The handle is written up to its breakpoint; the question after it is sent, never written. The scope's first call:
    // all of it new, so no word on which part is the caller's.
    expect(whysOf(firstPage)[0]).toMatch(/^cold [\d,]+ tokens in #1–#2: first sent in this cache scope, on the scope's first call: nothing earlier to read; the provider wrote [\d,]+ of them to the cache \(#1\); [\d,]+ in #2 were sent, not written$/);
  });

  it('request page shows the provider diagnostics as sent, escaped', async () => {
    const { client, key } = t.tenant();
    const sys = await mintSystem(client);
    const r = (await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 10, system: [{ type: 'handle', ref: sys.id }], messages: [{ role: 'user', content: 'hi' }] } })).json;
    const diagnostics = { cache_miss_reason: 'prefix changed </pre><b>x</b>' };
    expect((await client.post('/v1/usage', { request_id: r.request_id, usage: { input_tokens: 50, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, output_tokens: 1 }, diagnostics })).status).toBe(201);
    const page = await get(`/ui/requests/${r.request_id}`, key);
    expect(page.text).toContain('data-raw="diagnostics"');
    expect(page.text).toContain('prefix changed &lt;/pre&gt;&lt;b&gt;x&lt;/b&gt;');
    expect(page.text).not.toContain('<b>x</b>');
  });
});

describe('safety', () => {
  it('escapes handle names and content everywhere, and runs only the one known script', async () => {
    const s = await seed(t);
    for (const path of ['/ui?period=all', `/ui/handles/${s.doc.id}`, `/ui/handles/${s.bundle.id}`]) {
      const page = await get(path, s.key);
      expect(page.text, path).not.toContain(HOSTILE);
      expect(page.text, path).not.toContain('<img src=x');
      expect(page.text, path).toContain('&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;');
      expect((page.text.match(/<script/g) ?? []).length, path).toBe(1);
      expect(page.headers.get('content-security-policy')).toMatch(/script-src 'sha256-[^']+'; connect-src 'self'/);
      expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    }
  });

  it("another tenant's handle or request is the same 404 page as a missing one", async () => {
    const s = await seed(t);
    const other = t.tenant('other');
    for (const path of [`/ui/handles/${s.sys.id}`, `/ui/requests/${s.requests[0]!.request_id}`, `/ui/fragments/handles/${s.sys.id}`]) {
      const foreign = await get(path, other.key);
      expect(foreign.status, path).toBe(404);
      expect(foreign.text).not.toContain(s.sys.id.slice(4, 12) + '"');
    }
    expect((await get('/ui/handles/art_000000000000000000000', other.key)).status).toBe(404);
    expect((await get('/ui/nothing-here', other.key)).status).toBe(404);
  });
});

describe('live view', () => {
  async function open(path: string, key: string) {
    const controller = new AbortController();
    const res = await t.app.request(path, { headers: cookie(key), signal: controller.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    return {
      /** The next event's name and data. */
      async next(): Promise<{ event: string; data: string }> {
        for (;;) {
          const end = buffer.indexOf('\n\n');
          if (end >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            if (block.startsWith(':')) continue;
            return { event: /^event: (.*)$/m.exec(block)?.[1] ?? 'message', data: /^data: (.*)$/m.exec(block)?.[1] ?? '' };
          }
          const { value, done } = await reader.read();
          if (done) throw new Error('stream ended');
          buffer += decoder.decode(value, { stream: true });
        }
      },
      close: () => reader.cancel(),
    };
  }

  it("streams the signed-in tenant's reconciled requests (and only the chosen handle's), and the fragment has the new figures", async () => {
    const s = await seed(t);
    const other = await seed(t);
    const all = await open('/ui/events', s.key);
    const doc = await open(`/ui/events?handle=${s.doc.id}`, s.key);
    const unrelated = await mintSystem(s.client, 'unrelated system prompt');
    expect((await all.next()).event).toBe('ready');
    expect((await doc.next()).event).toBe('ready');

    await anotherTurn(t, other, 1); // another tenant: never delivered
    const solo = await s.client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 5, system: [{ type: 'handle', ref: unrelated.id }], messages: [{ role: 'user', content: 'x' }] } });
    await s.client.post('/v1/usage', { request_id: solo.json.request_id, usage: { input_tokens: 40, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, output_tokens: 1 } });
    const mine = await anotherTurn(t, s, 1);

    expect(await all.next()).toEqual({ event: 'reconciled', data: JSON.stringify({ request_id: solo.json.request_id }) });
    expect(await all.next()).toEqual({ event: 'reconciled', data: JSON.stringify({ request_id: mine.request_id }) });
    // The handle's stream skips the request that did not use it.
    expect(await doc.next()).toEqual({ event: 'reconciled', data: JSON.stringify({ request_id: mine.request_id }) });
    await all.close();
    await doc.close();

    const frag = await get('/ui/fragments/overview?period=7d', s.key);
    expect(frag.text).not.toContain('<html');
    const api = (await s.client.get(`/v1/reports?${since(t.clock.now() - 6 * DAY)}`)).json;
    expect(metricsOf(frag.text)).toEqual(expectedMetrics(api));
    const hfrag = await get(`/ui/fragments/handles/${s.bundle.id}?period=7d`, s.key);
    const hapi = (await s.client.get(`/v1/reports/handles/${s.bundle.id}?${since(t.clock.now() - 6 * DAY)}`)).json;
    expect(metricsOf(hfrag.text)).toEqual(expectedMetrics(hapi));
    void MIN;
  });

  it('stops listening when the page goes away', async () => {
    const s = await seed(t);
    const listeners = () => (t.services.reconciler as unknown as { listeners: Set<unknown> }).listeners.size;
    const before = listeners();
    const stream = await open('/ui/events', s.key);
    expect((await stream.next()).event).toBe('ready');
    expect(listeners()).toBe(before + 1);
    await stream.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(listeners()).toBe(before);
  });
});
