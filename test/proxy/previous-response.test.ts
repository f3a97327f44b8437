// A Responses conversation OpenAI keeps (previous_response_id) through the proxy: the provider counts (and reads from
// its cache) the earlier turns the service never rendered. The report tells that history apart instead of scaling
// the rendered segments up to it.

import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { mintSystem } from '../helpers/factories';
import { LONG_SYSTEM } from '../helpers/scenario';
import { committed, startHarness, type Harness } from './harness';

let h: Harness;
afterEach(async () => h?.close());

async function outcomeOf(response: Response) {
  return (await h.tenant.client.get(`/v1/requests/${response.headers.get('x-ph-request-id')}`)).json;
}

describe('Responses previous_response_id through the proxy', () => {
  it("reports the provider-held history apart: the rendered segments keep their size, and only a read past the history is theirs", async () => {
    h = await startHarness();
    const sys = await mintSystem(h.tenant.client, LONG_SYSTEM);
    const sdk = h.openai({ headers: { 'x-ph-prefix': sys.id } });
    const instructions = 'Answer as the support desk.';
    const r1 = await sdk.responses.create({ model: 'gpt-4.1', instructions, input: 'Where is order 1003?' }).withResponse();
    const r2 = await sdk.responses.create({ model: 'gpt-4.1', instructions, input: 'And 1004?', previous_response_id: r1.data.id }).withResponse();
    await committed(h);
    const [o1, o2] = [await outcomeOf(r1.response), await outcomeOf(r2.response)];
    expect(o1.outcome.provider_history).toBeUndefined();
    // The second turn is told at once that its prefix stands after the history (README: prefer a session); the first is not.
    expect(r1.response.headers.get('x-ph-warnings')).toBeNull();
    expect(r2.response.headers.get('x-ph-warnings')).toBe('prefix_after_history');

    // The provider counted the first turn again (the prefix, the question and the answer) and read it from its cache.
    const usage = r2.data.usage!;
    expect(usage.input_tokens).toBeGreaterThan(2 * o1.outcome.total_prompt_tokens - 100);
    expect(usage.input_tokens_details.cached_tokens).toBeGreaterThan(2000);
    const o = o2.outcome;
    expect(o.total_prompt_tokens).toBe(usage.input_tokens);
    expect(o.provider).toEqual({ read: usage.input_tokens_details.cached_tokens, write: null });
    expect(o.provider_history).toEqual({ field: 'previous_response_id', tokens: usage.input_tokens - o.estimated_prompt_tokens, read: expect.any(Number) });
    // Not a mismatch, not a calibration sample: the difference is the history.
    expect(o.total_mismatch).toBeUndefined();
    // The segments: the instructions, the prefix handle and the question, at their rendered sizes (the handle's exact
    // count), not scaled up by the history; the instructions before the history are read, the input after it is not.
    const [ins, prefix, question] = o.segments;
    expect(o.segments.map((s: { source: string }) => s.source)).toEqual(['inline', `${sys.id}@1`, 'inline']);
    expect(prefix.end - prefix.start).toBe(o1.outcome.segments[1].end - o1.outcome.segments[1].start);
    expect(question.end - question.start).toBeLessThan(30);
    expect(ins.read).toBe(ins.end - ins.start);
    expect(prefix.read + question.read).toBe(0);
    // The prefix sent again stands after the history, where the provider cannot read it: what a prompt without the
    // history would have read is unconfirmed (README: prefer a session), the question is cold.
    expect(prefix.classes.unconfirmed).toBeGreaterThan(2000);
    expect(question.classes.cold).toBe(question.end - question.start);
    expect(o.provider_history.read + ins.read).toBe(usage.input_tokens_details.cached_tokens);
    expect(o.segments.reduce((n: number, s: { end: number; start: number }) => n + s.end - s.start, 0) + o.provider_history.tokens).toBe(usage.input_tokens);
    // The request's dashboard page says so.
    const page = async (r: Response) => (await h.t.app.request(`/ui/requests/${r.headers.get('x-ph-request-id')}`, { headers: { cookie: `ph_ui_key=${h.key}` } })).text();
    expect(await page(r2.response)).toContain('data-warning="provider_history"');
    expect(await page(r1.response)).not.toContain('data-warning="provider_history"');
    // Calibration learnt from the first turn only.
    expect(h.t.sqlite.prepare('select reports, provider_tokens from calibration').all()).toEqual([{ reports: 1, provider_tokens: o1.outcome.total_prompt_tokens }]);
  });

  it('an unknown previous_response_id is the provider’s 400, passed through', async () => {
    h = await startHarness();
    const err = await h.openai().responses.create({ model: 'gpt-4.1', input: 'And 1004?', previous_response_id: 'resp_123' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ code: 'previous_response_not_found', param: 'previous_response_id' });
  });
});
