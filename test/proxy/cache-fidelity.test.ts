// Reconciliation of two documented cache behaviours, through the proxy with the official OpenAI SDK and the simulator
// as the provider: vLLM's last token (a prompt sent again whole is captured but for the block holding its last token,
// the tail no cache reads) and OpenAI's overflow past ~15 starts a minute of one prefix and prompt_cache_key (the
// calls sent to a machine that had not seen the prefix are `unconfirmed`, and their outcome says why).

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requestWhys } from '../../src/domain/reconcile/explain';
import { mintSystem } from '../helpers/factories';
import { LONG_SYSTEM } from '../helpers/scenario';
import { committed, startHarness, type Harness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

type Json = Record<string, any>;

async function call(model: string, headers: Record<string, string>, question: string): Promise<string> {
  const { response } = await h.openai({ headers }).chat.completions.create({ model, messages: [{ role: 'user', content: question }] }).withResponse();
  return response.headers.get('x-ph-request-id')!;
}

const sum = (segments: Json[], cls: string) => segments.reduce((a, s) => a + (s.classes[cls] ?? 0), 0);

describe('vLLM: a prompt sent again whole', () => {
  it('is captured up to its length − 1 in whole blocks; the last block is below_minimum, not unconfirmed', async () => {
    const client = h.tenant.client;
    const sys = await mintSystem(client, 'You are a support bot for the billing team. Answer briefly and politely.');
    const question = Array.from({ length: 11 }, (_, i) => `word${i}`).join(' ');
    const ids = [];
    for (let i = 0; i < 2; i++) {
      ids.push(await call('vllm/support-bot', { 'x-ph-prefix': sys.id }, question));
      h.clock.advance(1000);
    }
    await committed(h);
    const second = (await client.get(`/v1/requests/${ids[1]}`)).json;
    // 48 tokens as vLLM counts them (the reply header included): 47 can be read, 32 in whole 16-token blocks.
    expect(second.usage).toMatchObject({ provider: 'vllm', total_prompt_tokens: 48, cache_read_tokens: 32, uncached_tokens: 16 });
    expect(second.outcome.predicted.read).toBe(32);
    const segs = second.outcome.segments as Json[];
    expect(segs.map((s) => [s.start, s.end])).toEqual([[0, 20], [20, 48]]);
    expect(segs.map((s) => s.classes.captured)).toEqual([20, 12]);
    expect(sum(segs, 'below_minimum')).toBe(16);
    for (const cls of ['unconfirmed', 'bonus', 'cold', 'drift', 'expired', 'concurrent', 'no_breakpoint', 'lookback', 'unknown']) expect(sum(segs, cls)).toBe(0);
    expect(second.outcome.overflow).toBeUndefined();
    // The request's explanation says why those 16 were never readable: vLLM's blocks, with the last token computed.
    const whys = requestWhys({ entry: { id: 'vllm', provider: 'vllm', cache: (await client.get('/v1/models')).json.models.find((m: Json) => m.id === 'vllm').cache }, segments: segs as never, breakpoints: [], predicted_read: 32, predicted_write: second.outcome.predicted.write, provider_read: 32, provider_write: null, complete: true });
    expect(whys).toEqual([
      'below_minimum 16 tokens in #2: past its last whole cache step (vLLM caches in 16-token blocks: up to 15 tokens at a prompt\'s end are never read; it computes a prompt\'s last token for its logits, so a prompt cached whole reads up to its length − 1, in whole blocks): the prompt through #2 is 48 tokens, its last whole step ends at 32',
    ]);
  });
});

describe('OpenAI: 40 calls of one prefix and prompt_cache_key in a minute', () => {
  it('the calls a second and a third machine served first are unconfirmed, with the overflow hint; the rest captured', async () => {
    const client = h.tenant.client;
    const sys = await mintSystem(client, LONG_SYSTEM);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      ids.push(await call('gpt-4.1', { 'x-ph-prefix': sys.id }, 'Where is my invoice?'));
      h.clock.advance(1000);
    }
    await committed(h);
    const keys = new Set(h.tap.filter((e) => e.method === 'POST').map((e) => JSON.parse(e.body).prompt_cache_key));
    expect([...keys]).toEqual([`ph-${sys.id}`]);
    const rows = await Promise.all(ids.map(async (id) => (await client.get(`/v1/requests/${id}`)).json));
    // Per call: the provider's read, the predicted read, then captured, unconfirmed, cold, below_minimum tokens, and the
    // overflow's starts. 2,177 tokens: OpenAI reads 2,048 (its steps: 1,024 + 8 × 128); the last 129 are past a step.
    const figures = rows.map((r) => [r.usage.cache_read_tokens, r.outcome.predicted.read, ...['captured', 'unconfirmed', 'cold', 'below_minimum'].map((c) => sum(r.outcome.segments, c)), r.outcome.overflow?.starts ?? null]);
    const hit = [2048, 2048, 2048, 0, 0, 129, null];
    const expected = rows.map((_, i) => (i === 0 ? [0, 0, 0, 0, 2177, 0, null] : i === 15 ? [0, 2176, 0, 2176, 0, 1, 16] : i === 32 ? [0, 2176, 0, 2176, 0, 1, 33] : hit));
    expect(figures).toEqual(expected);
    for (const r of rows) expect(sum(r.outcome.segments, 'drift') + sum(r.outcome.segments, 'expired') + sum(r.outcome.segments, 'concurrent')).toBe(0);
    // The 16th call: past 15 starts a minute, on a second machine that had not seen the prefix.
    const r = rows[15];
    expect(r.outcome.overflow).toEqual({ prompt_cache_key: `ph-${sys.id}`, starts: 16 });
    const why = (row: Json) => requestWhys({ segments: row.outcome.segments, breakpoints: row.breakpoints, predicted_read: row.outcome.predicted.read, predicted_write: row.outcome.predicted.write, provider_read: row.outcome.provider.read, provider_write: row.outcome.provider.write, complete: true, overflow: row.outcome.overflow });
    expect(why(r)).toContain(
      `unconfirmed 2,176 tokens in #1–#2: predicted, but the provider did not report it as read: predicted read 2,176, the provider read 0 (eviction, another account, or a concurrent first write); 16 calls with prompt_cache_key ph-${sys.id} and this prefix started in the minute through this one, past the ~15 a minute OpenAI serves from one machine: it routes the rest to other machines, whose caches do not hold the prefix yet; keep each prefix and key under ~15 a minute — a prompt_cache_key per conversation (the service's is one when the prompt starts with a session: a session with the shared bundle as its base, sent with x-ph-session alone) or per shard of the traffic`,
    );
    // The CLI's `request` and the dashboard's request page say it from the same outcome field.
    const page = await h.t.app.request(`/ui/requests/${ids[15]}`, { headers: { cookie: `ph_ui_key=${h.key}` } });
    expect(await page.text()).toContain('16 calls with prompt_cache_key');
  });

  it('the same 40 calls over four minutes stay on one machine: nothing unconfirmed, no hint', async () => {
    const client = h.tenant.client;
    const sys = await mintSystem(client, LONG_SYSTEM);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      ids.push(await call('gpt-4.1', { 'x-ph-prefix': sys.id }, 'Where is my invoice?'));
      h.clock.advance(6000);
    }
    await committed(h);
    const rows = await Promise.all(ids.map(async (id) => (await client.get(`/v1/requests/${id}`)).json));
    expect(rows.map((r) => sum(r.outcome.segments, 'captured'))).toEqual([0, ...Array<number>(39).fill(2048)]);
    for (const r of rows) expect([sum(r.outcome.segments, 'unconfirmed'), r.outcome.overflow]).toEqual([0, undefined]);
  });
});
