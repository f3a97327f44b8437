// What the API description says of Gemini's tool-use prompt cost (outcome.tool_use_prompt) is what the tenant report
// does: the cost is the request's, not in the tenant's totals (df36985). The description said it was counted there.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clientFor, createTestApp, type TestApp, listen } from '../helpers/app';
import { mintSystem } from '../helpers/factories';
import { LONG_SYSTEM } from '../helpers/scenario';

let t: TestApp;
let server: { close: () => Promise<void> };
let base: string;
beforeEach(async () => {
  t = createTestApp();
  const served = await listen(t.app);
  server = served;
  base = served.base;
});
afterEach(async () => {
  await server.close();
  t.close();
});

describe('Gemini tool-use prompt cost (real HTTP)', () => {
  it('is on the request, not in the tenant report, as the API description says', async () => {
    const { key } = t.tenant();
    const client = clientFor({ request: (path, init) => fetch(`${base}${path}`, init) }, key);
    const sys = await mintSystem(client, LONG_SYSTEM);
    const rendered = await client.post('/v1/render', { format: 'gemini', request: { model: 'gemini-2.5-flash', prefix: [sys.id], contents: [{ role: 'user', parts: [{ text: 'hi' }] }] } });
    expect(rendered.status, rendered.text).toBe(200);
    const total = (rendered.json.segments as Array<{ token_end: number }>).at(-1)!.token_end;
    const used = await client.post('/v1/usage', { request_id: rendered.json.request_id, usage: { usageMetadata: { promptTokenCount: total, candidatesTokenCount: 5, toolUsePromptTokenCount: 100_000 } } });
    expect(used.status, used.text).toBe(201);
    const toolUse = used.json.outcome.tool_use_prompt as { tokens: number; cost: number };
    expect(toolUse.tokens).toBe(100_000);
    expect(toolUse.cost).toBeGreaterThan(0);
    const report = (await client.get('/v1/reports')).json;
    const segmentsCost = (used.json.outcome.segments as Array<{ cost: { actual: number } }>).filter((s) => s.cost).reduce((a, s) => a + s.cost.actual, 0);
    // The tenant's money is the handle content's: the tool-use cost (far larger here) is not in it.
    expect(report.money.actual_input_cost).toBeLessThanOrEqual(segmentsCost + 1e-6);

    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as unknown;
    const descriptions: string[] = [];
    const walk = (v: unknown, key?: string) => {
      if (Array.isArray(v)) v.forEach((x) => walk(x));
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
      else if (key === 'description' && typeof v === 'string' && v.includes('toolUsePromptTokenCount')) descriptions.push(v);
    };
    walk(doc);
    expect(descriptions.length).toBeGreaterThan(0);
    for (const d of descriptions) expect(d).not.toMatch(/Counted in the tenant report's money/);
  });
});
