// Tenant reports over long ranges read spans (a month's rollups, or every day's, summed once) made by the first
// report that needs them. Over real HTTP: a history of three months, a late import into a month already summed
// (POST /v1/usage/batch, dated by its start in January), and reports that must agree with each handle's own report
// (which sums that handle's day rows) before and after it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/domain/clock';
import { clientFor, createTestApp, type Client, type TestApp, listen } from '../helpers/app';
import { FakeClock } from '../helpers/clock';
import { mintBundle, mintDocument, mintSystem } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, type Rendered } from '../helpers/scenario';

let dir: string;
let t: TestApp;
let server: { close: () => Promise<void> };
let base: string;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ph-report-spans-'));
  t = createTestApp({ databasePath: join(dir, 'db.sqlite'), clock: new FakeClock(Date.parse('2026-01-05T12:00:00Z')) });
  const served = await listen(t.app);
  server = served;
  base = served.base;
});
afterEach(async () => {
  await server.close();
  t.close();
  rmSync(dir, { recursive: true, force: true });
});

const MONEY = ['actual_input_cost', 'cost_without_caching', 'cost_at_perfect_capture', 'realised_savings', 'leaked_savings', 'write_premiums_paid', 'write_premiums_unread', 'write_premiums_pending', 'unknown_capture_input_cost'];
/** A handle's figures in the tenant report against its own report over the same range: counts exactly, money to the micro-dollar. */
function sameFigures(row: any, own: any, what: string) {
  expect({ requests: row.requests, tokens: row.tokens, requests_with: row.requests_with, capture_rate: row.capture_rate }, what).toEqual({
    requests: own.requests,
    tokens: own.tokens,
    requests_with: own.requests_with,
    capture_rate: own.capture_rate,
  });
  for (const k of MONEY) expect(Math.abs(row.money[k] - own.money[k]), `${what} ${k}`).toBeLessThanOrEqual(1.0001e-6);
}

describe('tenant reports over months (real HTTP)', () => {
  it('agree with every handle\'s own report, all time and from a month\'s first day, before and after a late import into a summed month', async () => {
    const { key } = t.tenant();
    const client: Client = clientFor({ request: (path, init) => fetch(`${base}${path}`, init) }, key);
    const sys = await mintSystem(client, LONG_SYSTEM);
    const doc = await mintDocument(client);
    const bundle = await mintBundle(client, [sys.id, doc.id]);
    const render = (q: string) => renderAnthropic(client, { prefix: [bundle.id], messages: [{ role: 'user', content: q }] });
    const record = (r: Rendered, read: number) => {
      const started = t.clock.now();
      return { request_id: r.request_id, usage: anthropicUsage(promptTokens(r), read, read ? 0 : promptTokens(r) - 10), started_at: started, first_byte_at: started + 400, finished_at: started + 900 };
    };
    const send = async (body: object) => expect((await client.post('/v1/usage', body)).status).toBe(201);

    await send(record(await render('January'), 0));
    t.clock.set(Date.parse('2026-01-20T09:00:00Z'));
    // Rendered and answered in January; its report is imported in March.
    const late = record(await render('January, reported late'), 0);
    t.clock.set(Date.parse('2026-02-10T09:00:00Z'));
    await send(record(await render('February'), 0));
    t.clock.advance(60_000);
    const warm = await render('February, again');
    await send(record(warm, warm.prediction.read_tokens));
    t.clock.set(Date.parse('2026-03-03T09:00:00Z'));
    await send(record(await render('March'), 0));
    t.clock.set(Date.parse('2026-03-10T12:00:00Z'));

    const ranges = ['', 'from=2026-02-01', 'from=2026-01-01&to=2026-02-28', 'from=2026-01-10', 'model=claude-sonnet-4-5'];
    const check = async (requests: number) => {
      for (const q of ranges) {
        const tenant = (await client.get(`/v1/reports?${q}`)).json;
        expect(tenant.handles.length, q).toBeGreaterThan(0);
        for (const row of tenant.handles) sameFigures(row, (await client.get(`/v1/reports/handles/${row.id}?${q}`)).json, `${row.id} ?${q}`);
        // With a limit (ranked on leaked money alone, then the handles shown summed whole): the same first handles.
        const first = (await client.get(`/v1/reports?${q}&limit=2`)).json;
        expect(first.handles_total).toBe(tenant.handles.length);
        expect(first.handles).toEqual(tenant.handles.slice(0, 2));
      }
      const all = (await client.get('/v1/reports')).json;
      expect(all.requests).toBe(requests);
      expect(all.handles.find((h: { id: string }) => h.id === bundle.id).requests).toBe(requests);
    };
    const spans = () => (t.sqlite.prepare('select span from rollups_span_through order by span').pluck().all() as number[]).map((s) => (s < 0 ? 'all' : new Date(s * DAY_MS).toISOString().slice(0, 7)));

    await check(4);
    expect(spans()).toEqual(['all', '2026-01', '2026-02', '2026-03']);

    const imported = await client.post('/v1/usage/batch', { records: [late] });
    expect(imported.json.results[0].status, imported.text).toBe(201);
    // January's span and every day's are undone by the import; February's and March's stand.
    expect(spans()).toEqual(['2026-02', '2026-03']);
    await check(5);
    expect(spans()).toEqual(['all', '2026-01', '2026-02', '2026-03']);
    expect((await client.get('/v1/reports?from=2026-01-01&to=2026-01-31')).json.requests).toBe(2);
  });
});
