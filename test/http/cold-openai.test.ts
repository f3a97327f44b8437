// A cold token on OpenAI is written only up to the last whole cache step. The provider reports no write, so the line
// says the simulation's; OpenAI's simulated write counts the whole prompt after the read (as the figures do), but a
// tail past the last 128-token step is never readable, so the caller's question there was sent, not written. A call
// reconciled through /v1/render and /v1/usage, its line as the CLI builds it and as the request page shows it.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app';
import { mintSystem } from '../helpers/factories';
import { LONG_SYSTEM, promptTokens, report, type Rendered } from '../helpers/scenario';
import { requestWhys, type WhyInput } from '../../src/domain/reconcile/explain';
import { stepFloor } from '../../src/domain/simulator/cache';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const chatUsage = (total: number, cached: number) => ({ prompt_tokens: total, completion_tokens: 5, total_tokens: total + 5, prompt_tokens_details: { cached_tokens: cached } });

describe('cold tokens on a model that caches in steps', () => {
  it("the caller's question past the last whole step is sent, not written, by the simulation's write (gpt-4.1 reconciled)", async () => {
    const { client, key } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM.slice(0, 8000));
    const call = async (question: string, cached: (r: Rendered) => number) => {
      const res = await client.post('/v1/render', { format: 'openai-chat', request: { model: 'gpt-4.1', prefix: [sys.id], messages: [{ role: 'user', content: question }] } });
      expect(res.status, res.text).toBe(200);
      const r: Rendered = res.json;
      await report(client, t, r, chatUsage(promptTokens(r), cached(r)));
      t.clock.advance(60_000);
      return r;
    };
    await call('What is the refund policy?', () => 0);
    const second = await call('How long does a refund take to arrive?', (r) => (r as unknown as { prediction: { read_tokens: number } }).prediction.read_tokens);
    await t.services.writes.idle();
    const api = (await client.get(`/v1/requests/${second.request_id}`)).json;
    const o = api.outcome;
    const total = o.segments.at(-1).end;
    const question = o.segments.at(-1);
    const floor = stepFloor({ first: 1024, step: 128 }, total);
    // The case of the finding: a read of whole steps, a question wholly past the prompt's last whole step.
    expect(o.provider.read).toBeGreaterThanOrEqual(1024);
    expect(question.classes.cold).toBe(question.end - question.start);
    expect(question.start).toBeGreaterThanOrEqual(floor);
    expect(total).toBeGreaterThan(floor);
    // The figures keep the simulation's write as it was: the whole prompt after the read.
    expect(o.predicted.read + o.predicted.write).toBe(total);
    const models = (await client.get('/v1/models')).json.models as Array<NonNullable<WhyInput['entry']>>;
    const lines = requestWhys({ entry: models.find((m) => m.id === api.catalog_entry), segments: o.segments.map((x: object, i: number) => ({ ...x, section: api.segments[i].section })), breakpoints: api.breakpoints, predicted_read: o.predicted.read, predicted_write: o.predicted.write, provider_read: o.capture === 'unknown' ? null : o.provider.read, provider_write: o.provider.write, complete: api.usage.complete, first_in_scope: o.first_in_scope });
    const cold = lines.find((l) => l.startsWith('cold '))!;
    expect(cold).toBe(
      `cold ${question.classes.cold} tokens in #${o.segments.length}: first sent in this cache scope: nothing earlier to read; the simulation wrote none of them to the cache (the provider reports no writes); #${o.segments.length} is the caller's messages of this call, new as a call's question or tool result is`,
    );
    const page = await t.app.request(`/ui/requests/${second.request_id}`, { headers: { cookie: `ph_ui_key=${key}` } });
    expect((await page.text()).replaceAll('&#39;', "'")).toContain(cold.slice(cold.indexOf(': ') + 2));
  });
});
