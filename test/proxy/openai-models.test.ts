// OpenAI models of their own catalog entries through the proxy — the o-series reasoning models (2026-12-05.1), GPT-5.4
// and GPT-5.5 (2026-12-05.2) — with the official `openai` SDK and the simulator as the provider: priced and cached by
// their own entries (before, the gpt-5 default at $1.25, flagged unknown_model), their reasoning tokens billed once,
// inside the output tokens the provider reports. GPT-5.5 keeps a prefix only with extended (24h) retention, so its
// turns half an hour apart still read the cache, and the reconciler predicts those reads; it refuses
// `prompt_cache_retention: "in_memory"`.
//
// Prices ($ per million tokens) as OpenAI's pages give them (checked 2026-12-05), written here rather than read from
// the catalog: o3 $2 input, $0.50 cached; o4-mini $1.10, $0.275; gpt-5.4 $2.50, $0.25; gpt-5.5 $5, $0.50. Money is
// input cost only.

import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mintBundle, mintSystem, mintTools } from '../helpers/factories';
import { LONG_SYSTEM } from '../helpers/scenario';
import { committed, startHarness, type Harness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const MINUTE = 60_000;
const TURNS = 3;
/** Nano-dollars per token: $1/MTok is 1,000 n$ a token. */
const PRICES = {
  o3: { input: 2000, cached: 500 },
  'o4-mini': { input: 1100, cached: 275 },
  'gpt-5.4': { input: 2500, cached: 250 },
  'gpt-5.5': { input: 5000, cached: 500 },
} as const;
type Model = keyof typeof PRICES;
/** Between turns: an in-memory prefix is kept minutes; gpt-5.5 keeps it a day, so half an hour is nothing. */
const GAP: Record<Model, number> = { o3: MINUTE, 'o4-mini': MINUTE, 'gpt-5.4': MINUTE, 'gpt-5.5': 30 * MINUTE };
/** Nano-dollars to dollars, to the micro-dollar, half away from zero (as the API prints). */
const usd = (nano: number) => Math.floor((nano + 500) / 1000) / 1e6;

interface Sent {
  requestId: string;
  warnings: string | null;
  text: string;
  /** The provider's usage as the SDK client received it. */
  usage: { prompt: number; cached: number; output: number; reasoning: number };
}

async function chat(sdk: OpenAI, model: Model, stream: boolean, question: string): Promise<Sent> {
  const messages = [{ role: 'user' as const, content: question }];
  if (!stream) {
    const { data, response } = await sdk.chat.completions.create({ model, messages, reasoning_effort: 'low' }).withResponse();
    const u = data.usage!;
    return { requestId: response.headers.get('x-ph-request-id')!, warnings: response.headers.get('x-ph-warnings'), text: data.choices[0]!.message.content ?? '', usage: { prompt: u.prompt_tokens, cached: u.prompt_tokens_details!.cached_tokens!, output: u.completion_tokens, reasoning: u.completion_tokens_details!.reasoning_tokens! } };
  }
  const { data, response } = await sdk.chat.completions.create({ model, messages, stream: true, stream_options: { include_usage: true } }).withResponse();
  let text = '';
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of data) {
    text += chunk.choices[0]?.delta.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  return { requestId: response.headers.get('x-ph-request-id')!, warnings: response.headers.get('x-ph-warnings'), text, usage: { prompt: usage!.prompt_tokens, cached: usage!.prompt_tokens_details!.cached_tokens!, output: usage!.completion_tokens, reasoning: usage!.completion_tokens_details!.reasoning_tokens! } };
}

async function responses(sdk: OpenAI, model: Model, stream: boolean, question: string): Promise<Sent> {
  // Stateless, as an agent that keeps its own history runs a reasoning model: the reasoning comes back encrypted.
  const params = { model, input: question, store: false, include: ['reasoning.encrypted_content' as const], reasoning: { effort: 'low' as const } };
  const { data: response, response: raw } = stream
    ? await (async () => {
        const { data, response } = await sdk.responses.create({ ...params, stream: true }).withResponse();
        let done: OpenAI.Responses.Response | undefined;
        for await (const event of data) if (event.type === 'response.completed') done = event.response;
        return { data: done!, response };
      })()
    : await sdk.responses.create(params).withResponse();
  expect(response.output.map((o) => o.type)).toEqual(['reasoning', 'message']);
  expect((response.output[0] as OpenAI.Responses.ResponseReasoningItem).encrypted_content).toEqual(expect.any(String));
  const u = response.usage!;
  // A streamed response.completed carries no output_text (the SDK adds it to a whole response only): read from its message.
  const message = response.output[1] as OpenAI.Responses.ResponseOutputMessage;
  const text = message.content.map((c) => (c.type === 'output_text' ? c.text : '')).join('');
  return { requestId: raw.headers.get('x-ph-request-id')!, warnings: raw.headers.get('x-ph-warnings'), text, usage: { prompt: u.input_tokens, cached: u.input_tokens_details.cached_tokens, output: u.output_tokens, reasoning: u.output_tokens_details.reasoning_tokens } };
}

const APIS = [
  { api: 'chat completions', send: chat },
  { api: 'responses', send: responses },
];

describe.each(['o3', 'o4-mini', 'gpt-5.4', 'gpt-5.5'] as const)('%s through the proxy', (model) => {
  describe.each(APIS)('$api', ({ send }) => {
    it.each([false, true])('stream=%s: its own entry, cold then captured, reasoning billed once inside output, money at its prices', async (stream) => {
      const client = h.tenant.client;
      const bundle = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, LONG_SYSTEM)).id]);
      const sdk = h.openai({ headers: { 'x-ph-prefix': bundle.id } });
      const sent: Sent[] = [];
      for (let i = 1; i <= TURNS; i++) {
        const reply = await send(sdk, model, stream, `Question ${i}: what does section ${i} say?`);
        expect(reply.text).toContain(`Question ${i}`);
        sent.push(reply);
        h.clock.advance(GAP[model]);
      }
      await committed(h);

      // The model reasoned on every call: its reasoning tokens are part of the output tokens, not beside them.
      for (const s of sent) {
        expect(s.warnings, 'no unknown_model').toBeNull();
        expect(s.usage.reasoning).toBeGreaterThan(0);
        expect(s.usage.reasoning).toBeLessThan(s.usage.output);
      }
      // A cold first turn, then reads of the bundle the provider confirmed (for gpt-5.5, half an hour apart).
      expect(sent[0]!.usage.cached).toBe(0);
      for (const s of sent.slice(1)) expect(s.usage.cached).toBeGreaterThan(1024);

      for (const s of sent) {
        const row = (await client.get(`/v1/requests/${s.requestId}`)).json;
        expect(row).toMatchObject({ model, catalog_entry: model, catalog_fallback: false, status: 'reconciled' });
        // Recorded as the provider reported: output_tokens is completion_tokens / output_tokens, reasoning included once.
        expect(row.usage).toMatchObject({ total_prompt_tokens: s.usage.prompt, cache_read_tokens: s.usage.cached, uncached_tokens: s.usage.prompt - s.usage.cached, output_tokens: s.usage.output, cache_fields_reported: true });
        // The request's input cost over its segments: uncached tokens at the input price, reads at the cached price.
        const actual = row.outcome.segments.reduce((sum: number, seg: { cost: { actual: number } }) => sum + seg.cost.actual, 0);
        const p = PRICES[model];
        expect(actual).toBeCloseTo(((s.usage.prompt - s.usage.cached) * p.input + s.usage.cached * p.cached) / 1e9, 12);
      }

      const rep = (await client.get(`/v1/reports/handles/${bundle.id}`)).json
      expect(rep.requests).toBe(TURNS);
      expect(rep.requests_with.cold).toBe(1);
      expect(rep.tokens.captured).toBeGreaterThan(rep.tokens.cold);
      // The reconciler predicted every read: for gpt-5.5 it keeps the prefix 24h too, so nothing is counted expired.
      expect(rep.tokens.captured).toBe(rep.tokens.predicted);
      expect(rep.tokens).toMatchObject({ unconfirmed: 0, unknown: 0, drift: 0, expired: 0, concurrent: 0 });
      // Every bundle token is uncached (the cold write, the tail past the last 128-token step) or a read.
      expect(rep.tokens.cold + rep.tokens.captured + rep.tokens.below_minimum).toBe(rep.tokens.referenced);
      const p = PRICES[model];
      expect(rep.money).toMatchObject({
        currency: 'USD',
        actual_input_cost: usd((rep.tokens.referenced - rep.tokens.captured) * p.input + rep.tokens.captured * p.cached),
        cost_without_caching: usd(rep.tokens.referenced * p.input),
        // Perfect capture reads every token but the cold write.
        cost_at_perfect_capture: usd(rep.tokens.cold * p.input + (rep.tokens.referenced - rep.tokens.cold) * p.cached),
        write_premiums_paid: 0,
      });
    });
  });
});

describe('the o-series in the model lists', () => {
  it("GET /v1/models serves their entries; the simulator's OpenAI model list (through the proxy) names them", async () => {
    const { json } = await h.tenant.client.get('/v1/models');
    expect(json.version).toBe('2026-12-06.2');
    const byId = new Map((json.models as Array<{ id: string }>).map((m) => [m.id, m]));
    expect(byId.get('o3')).toMatchObject({ provider: 'openai', match: ['o3', 'o3-2025-04-16'], tokenizer: 'o200k_base', price: { inputPerMTok: 2, outputPerMTok: 8 }, cache: { readMultiplier: 0.25, minTokens: 1024 } });
    expect(byId.get('o4-mini')).toMatchObject({ provider: 'openai', match: ['o4-mini*'], price: { inputPerMTok: 1.1, outputPerMTok: 4.4 }, cache: { readMultiplier: 0.25 } });
    const listed = (await h.openai().models.list()).data.map((m) => m.id);
    expect(listed).toEqual(expect.arrayContaining(['o1', 'o1-mini', 'o1-pro', 'o3', 'o3-mini', 'o3-pro', 'o4-mini', 'o3-deep-research', 'o4-mini-deep-research']));
    expect(await h.openai().models.retrieve('o3')).toMatchObject({ object: 'model', id: 'o3', owned_by: 'openai' });
  });

  it('a dated snapshot is its model; an o-name the catalog does not know is still answered, flagged unknown_model', async () => {
    const sdk = h.openai();
    const snapshot = await sdk.chat.completions.create({ model: 'o4-mini-2025-04-16', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    expect(snapshot.response.headers.get('x-ph-warnings')).toBeNull();
    expect(snapshot.data.usage!.completion_tokens_details!.reasoning_tokens).toBeGreaterThan(0);
    expect((await h.tenant.client.get(`/v1/requests/${snapshot.response.headers.get('x-ph-request-id')}`)).json).toMatchObject({ model: 'o4-mini-2025-04-16', catalog_entry: 'o4-mini', catalog_fallback: false });
    // A model that does not reason reports none, and bills only its answer.
    for (const plain of ['gpt-4.1', 'gpt-5-chat-latest']) {
      const usage = (await sdk.chat.completions.create({ model: plain, messages: [{ role: 'user', content: 'hi' }] })).usage!;
      expect(usage.completion_tokens_details!.reasoning_tokens, plain).toBe(0);
      expect(usage.completion_tokens, plain).toBe(snapshot.data.usage!.completion_tokens - snapshot.data.usage!.completion_tokens_details!.reasoning_tokens!);
    }
    const unknown = await sdk.chat.completions.create({ model: 'o9-preview', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    expect(unknown.response.headers.get('x-ph-warnings')).toBe('unknown_model');
    expect((await h.tenant.client.get(`/v1/requests/${unknown.response.headers.get('x-ph-request-id')}`)).json).toMatchObject({ catalog_entry: 'gpt-5', catalog_fallback: true });
  });
});

describe('retention: gpt-5.4 in memory, gpt-5.5 a day', () => {
  it('half an hour apart, gpt-5.4 has lost the prefix (counted expired, as predicted) where gpt-5.5 reads it', async () => {
    const client = h.tenant.client;
    const seen: Record<string, unknown> = {};
    for (const model of ['gpt-5.4', 'gpt-5.5'] as const) {
      const bundle = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, LONG_SYSTEM)).id]);
      const sdk = h.openai({ headers: { 'x-ph-prefix': bundle.id } });
      const cached: number[] = [];
      for (let i = 1; i <= 2; i++) {
        cached.push((await chat(sdk, model, false, `Question ${i} for ${model}`)).usage.cached);
        h.clock.advance(30 * MINUTE);
      }
      await committed(h);
      const rep = (await client.get(`/v1/reports/handles/${bundle.id}`)).json;
      // Whatever the model, the reconciler predicted what the provider did.
      expect(rep.tokens.captured, model).toBe(rep.tokens.predicted);
      seen[model] = { second: cached[1]! > 1024 ? 'read' : cached[1], cold: rep.requests_with.cold, expired: rep.requests_with.expired, captured: rep.tokens.captured > 0 };
    }
    expect(seen).toEqual({
      // In memory (its default): the first turn's prefix is gone, and the second turn's tokens are counted expired.
      'gpt-5.4': { second: 0, cold: 1, expired: 1, captured: false },
      // A day: read half an hour on, nothing expired.
      'gpt-5.5': { second: 'read', cold: 1, expired: 0, captured: true },
    });
  });

  it("gpt-5.5 answers prompt_cache_retention 'in_memory' with OpenAI's 400, passed through to the SDK; '24h' is accepted", async () => {
    const sdk = h.openai();
    const messages = [{ role: 'user' as const, content: 'hi' }];
    const err = await sdk.chat.completions.create({ model: 'gpt-5.5', messages, prompt_cache_retention: 'in_memory' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ status: 400, code: 'invalid_parameter', param: 'prompt_cache_retention', message: expect.stringContaining('compatible only with 24h extended prompt caching') });
    const ok = await sdk.chat.completions.create({ model: 'gpt-5.5', messages, prompt_cache_retention: '24h' }).withResponse();
    expect(ok.response.headers.get('x-ph-warnings')).toBeNull();
    // gpt-5.4 takes 'in_memory'.
    expect((await sdk.chat.completions.create({ model: 'gpt-5.4', messages, prompt_cache_retention: 'in_memory' })).choices).toHaveLength(1);
  });

  it('GET /v1/models serves the new entries; the simulator lists them', async () => {
    const { json } = await h.tenant.client.get('/v1/models');
    expect(json.version).toBe('2026-12-06.2');
    const byId = new Map((json.models as Array<{ id: string }>).map((m) => [m.id, m]));
    expect(byId.get('gpt-5.5')).toMatchObject({ provider: 'openai', match: ['gpt-5.5', 'gpt-5.5-2026*'], price: { inputPerMTok: 5, outputPerMTok: 30 }, cache: { ttls: [{ name: '24h' }], defaultTtl: '24h', readMultiplier: 0.1 } });
    expect(byId.get('gpt-5.4-mini')).toMatchObject({ match: ['gpt-5.4-mini*'], price: { inputPerMTok: 0.75, outputPerMTok: 4.5 } });
    const listed = (await h.openai().models.list()).data.map((m) => m.id);
    expect(listed).toEqual(expect.arrayContaining(['gpt-5-pro', 'gpt-5.1', 'gpt-5.2', 'gpt-5.3-codex', 'gpt-5.4', 'gpt-5.4-mini', 'gpt-5.4-nano', 'gpt-5.4-pro', 'gpt-5.5', 'gpt-5.5-pro']));
  });
});
