import { afterEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app';
import { mintBundle, mintSystem, mintTools } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';

let t: TestApp;
afterEach(() => t?.close());
const MIN = 60_000;

describe('expired gap of a call applied late', () => {
  it('measures the gap to the call, and never names a last use after the call started', async () => {
    t = createTestApp();
    const { client, key } = t.tenant();
    const b = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, LONG_SYSTEM)).id]);
    const other = await mintSystem(client, `Another agent. ${LONG_SYSTEM}`);
    const ask = (prefix: string) => renderAnthropic(client, { prefix: [prefix], messages: [{ role: 'user', content: 'hi' }] });
    const r0 = await ask(b.id);
    const cached = r0.breakpoints.at(-1)!.token_end;
    await report(client, t, r0, anthropicUsage(promptTokens(r0), 0, cached));
    t.clock.advance(1 * MIN);
    const x = await ask(b.id); // started at +1 min, reported last
    const xStart = t.clock.now();
    t.clock.advance(1 * MIN);
    const z = await ask(b.id); // +2 min: reads the bundle
    await report(client, t, z, anthropicUsage(promptTokens(z), cached, 0));
    t.clock.advance(7 * MIN);
    const y = await ask(other.id); // +9 min, another prefix of the scope
    await report(client, t, y, anthropicUsage(promptTokens(y), 0, y.breakpoints.at(-1)!.token_end));
    const res = await client.post('/v1/usage', { request_id: x.request_id, usage: anthropicUsage(promptTokens(x), 0, cached), started_at: xStart, first_byte_at: xStart + 500, finished_at: xStart + 1000 });
    expect(res.status, res.text).toBe(201);
    const o = res.json.outcome;
    expect(o.applied_late).toBeDefined();
    // Applied at the scope's latest start (+9 min), after a call that used the bundle at +2 min: the gap is to that
    // moment, and the page says so — not "before this one", which started at +1 min.
    expect(o.applied_late).toEqual({ started_at: xStart, applied_at: xStart + 8 * MIN });
    expect(o.expired).toEqual({ last_used_at: xStart + MIN, gap_ms: 7 * MIN, ttl: '5m' });
    const page = await (await t.app.request(`/ui/requests/${x.request_id}`, { headers: { cookie: `ph_ui_key=${key}` } })).text();
    expect(page).toContain('before this call was applied to its scope (it was reported after later calls)');
    // The page says the call was simulated late, and how to avoid it, whether or not it expired.
    expect(page).toContain('data-notice="applied-late"');
    expect(page).toContain('orders a batch by start');
    const onTime = await (await t.app.request(`/ui/requests/${z.request_id}`, { headers: { cookie: `ph_ui_key=${key}` } })).text();
    expect(onTime).not.toContain('data-notice="applied-late"');
  });
});
