// The dashboard of a tenant not in UTC: its days, "today", months and wording are of its zone; a UTC tenant's as they were.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN_KEY, clientFor, createTestApp, type Client, type TestApp } from '../helpers/app';
import { mintSystem } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM } from '../helpers/scenario';
import { signedInPage } from './seed';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

async function tenantIn(zone: string) {
  const res = await clientFor(t.app, ADMIN_KEY).post('/v1/tenants', { name: `ui ${zone}`, time_zone: zone });
  expect(res.status, res.text).toBe(201);
  return { key: res.json.api_key as string, client: clientFor(t.app, res.json.api_key) };
}

async function callAt(client: Client, at: string) {
  t.clock.set(Date.parse(at));
  const sys = await mintSystem(client, LONG_SYSTEM);
  const r = await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', prefix: [sys.id], messages: [{ role: 'user', content: at }] } });
  const u = await client.post('/v1/usage', { request_id: r.json.request_id, usage: anthropicUsage(r.json.segments.at(-1).token_end, 0, 100) });
  expect(u.status, u.text).toBe(201);
  return sys.id as string;
}

const spanLine = (html: string) => /<p class="muted" data-span>([^<]*)/.exec(html)?.[1];
const daysDrawn = (html: string) => [...(/<svg[^>]*data-chart="capture-trend"[\s\S]*?<\/svg>/.exec(html)?.[0] ?? '').matchAll(/data-day="([\d-]+)"/g)].map((m) => m[1]);

describe("the dashboard counts the tenant's days", () => {
  it('a Los Angeles tenant at 2026-12-01T06:00Z: today is 2026-11-30, the month November, the wording names the zone', async () => {
    const la = await tenantIn('America/Los_Angeles');
    const utc = await tenantIn('UTC');
    const sys = await callAt(la.client, '2026-12-01T06:00:00Z');
    await callAt(utc.client, '2026-12-01T06:00:00Z');

    const page = (await signedInPage(t, '/ui?period=24h', la.key)).text;
    expect(spanLine(page)).toBe('Today and yesterday (whole days in America/Los_Angeles from 2026-11-29 to 2026-11-30).');
    expect(page).toContain('max="2026-11-30"');
    expect(page).toContain('Days in America/Los_Angeles, both included');
    expect(page).toContain('per day in America/Los_Angeles');
    expect(page).not.toContain('UTC day');
    // "This month" is the tenant's November, so far; the call is in it, on its last day.
    expect(page).toContain('href="/ui?from=2026-11-01&amp;to=2026-11-30"');
    expect(daysDrawn(page).at(-1)).toBe('2026-11-30');
    const november = (await signedInPage(t, '/ui?from=2026-11-30&to=2026-11-30', la.key)).text;
    expect(november).toContain(`data-metric="requests" data-value="1"`);
    expect((await signedInPage(t, '/ui?from=2026-11-29&to=2026-11-29', la.key)).text).toContain(`data-metric="requests" data-value="0"`);
    const december = await signedInPage(t, '/ui?from=2026-12-01&to=2026-12-01', la.key);
    expect(december.status).toBe(400);
    expect(december.text).toContain('2026-12-01 is after today (2026-11-30, America/Los_Angeles)');
    const csv = await signedInPage(t, '/ui/reports.csv?from=2026-11-30&to=2026-11-30', la.key);
    expect(csv.headers.get('content-disposition')).toContain('report_2026-11-30_2026-11-30.csv');

    // A handle's page: its per-day chart and its requests' API line in the tenant's days.
    const handle = (await signedInPage(t, `/ui/handles/${sys}?period=24h`, la.key)).text;
    expect(handle).toContain('per day in America/Los_Angeles');
    expect(/\(started since 2026-11-29, as of this page load; all of them: <code>GET \/v1\/requests\?handle=(\w+)&amp;from=2026-11-29<\/code>/.exec(handle)?.[1]).toBe(sys);
    expect(daysDrawn(handle).at(-1)).toBe('2026-11-30');

    // The UTC tenant's page at the same instant: its today is 2026-12-01, its words as they always were.
    const plain = (await signedInPage(t, '/ui?period=24h', utc.key)).text;
    expect(spanLine(plain)).toBe('Today and yesterday (whole UTC days from 2026-11-30 to 2026-12-01).');
    expect(plain).toContain('UTC days, both included');
    expect(plain).toContain('per UTC day');
    expect(plain).toContain('href="/ui?from=2026-12-01&amp;to=2026-12-01"');
  });
});
