import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app';
import { mintBundle, mintSystem, mintTools } from '../helpers/factories';
import { anthropicUsage, classesOf, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const MIN = 60_000;

async function agentSetup() {
  const { client } = t.tenant();
  const tools = await mintTools(client);
  const sys = await mintSystem(client, LONG_SYSTEM);
  const bundle = await mintBundle(client, [tools.id, sys.id]);
  return { client, tools, sys, bundle };
}

describe('reconciliation scenarios', () => {
  it('warm agent loop: cold first, then captured', async () => {
    const { client, sys, tools, bundle } = await agentSetup();
    const r1 = await renderAnthropic(client, { prefix: [bundle.id], messages: [{ role: 'user', content: 'turn one' }] });
    const cached = r1.breakpoints[0]!.token_end;
    expect(r1.prediction.read_tokens).toBe(0);
    const o1 = (await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, cached))).outcome;
    expect(classesOf(o1, `${sys.id}@1`)).toEqual({ cold: r1.segments[1]!.token_end - r1.segments[1]!.token_start });
    expect(classesOf(o1, `${tools.id}@1`)).toEqual({ cold: r1.segments[0]!.token_end });

    t.clock.advance(MIN);
    const r2 = await renderAnthropic(client, { prefix: [bundle.id], messages: [{ role: 'user', content: 'turn two' }] });
    expect(r2.prediction.read_tokens).toBe(cached);
    const o2 = (await report(client, t, r2, anthropicUsage(promptTokens(r2), cached, 0))).outcome;
    expect(classesOf(o2, `${sys.id}@1`)).toEqual({ captured: r2.segments[1]!.token_end - r2.segments[1]!.token_start });
    expect(classesOf(o2, `${tools.id}@1`)).toEqual({ captured: r2.segments[0]!.token_end });

    const rep = (await client.get(`/v1/reports/handles/${bundle.id}`)).json;
    expect(rep.requests).toBe(2);
    expect(rep.tokens.referenced).toBe(2 * cached);
    expect(rep.tokens.cold).toBe(cached);
    expect(rep.tokens.opportunity).toBe(cached);
    expect(rep.tokens.captured).toBe(cached);
    expect(rep.capture_rate).toBe(1);
    expect(rep.requests_with.cold).toBe(1);
    expect(rep.money.realised_savings).toBeGreaterThan(0);
  });
});
