// The provider simulator over real HTTP on loopback, with plain fetch and a fake clock.
// Expected token counts come from the same block builder and tokenizer the simulator
// uses, so every cache figure below is exact; every response is also checked through
// the usage normaliser the proxy relies on.

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import { blocksFromRequest, type RequestFormat } from '../../src/domain/simulator/blocks';
import { toolCosts } from '../../src/domain/prompt-tokens';
import { countTokens } from '../../src/domain/tokens';
import { normalizeUsage } from '../../src/domain/usage/normalize';
import { createStreamUsageAccumulator, SseParser, type SseMessage, type StreamUsageProvider } from '../../src/domain/usage/stream';
import type { NormalizedUsage } from '../../src/domain/usage/types';
import { startSimulator, type RunningSimulator } from '../../src/simulator/server';

const catalog = new ModelCatalog(loadCatalog());
const clock = {
  t: Date.UTC(2026, 0, 1, 12, 0, 0),
  now() {
    return this.t;
  },
};
const MINUTE = 60_000;

let sim: RunningSimulator;
beforeAll(async () => {
  sim = await startSimulator({ catalog, clock });
});
afterAll(async () => {
  await sim.close();
});

// ── helpers ─────────────────────────────────────────────────────────────────

let keys = 0;
/** Every test gets its own API keys, so its own caches. */
const newKey = () => `sk-test-${++keys}-${Math.random().toString(36).slice(2)}`;

// ~2,100 words: above every 1024-token minimum in both tokenizer families.
const LONG_SYSTEM = Array.from(
  { length: 150 },
  (_, i) => `Guideline ${i + 1}: answer precisely, cite the relevant section, and keep a calm tone.`,
).join(' ');

function post(path: string, body: unknown, headers: Record<string, string>): Promise<Response> {
  return fetch(`${sim.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const anthropicHeaders = (key: string) => ({ 'x-api-key': key, 'anthropic-version': '2023-06-01' });
const openaiHeaders = (key: string) => ({ authorization: `Bearer ${key}` });

function anthropicBody(question: string, ttl?: '1h') {
  return {
    model: 'claude-sonnet-4-5',
    max_tokens: 256,
    system: [{ type: 'text', text: LONG_SYSTEM, cache_control: ttl ? { type: 'ephemeral', ttl } : { type: 'ephemeral' } }],
    messages: [{ role: 'user', content: question }],
  };
}

function chatBody(model: string, question: string, system = LONG_SYSTEM) {
  return {
    model,
    messages: [
      { role: 'system', content: system },
      { role: 'user', content: question },
    ],
  };
}

function responsesBody(question: string) {
  return { model: 'gpt-4.1', instructions: LONG_SYSTEM, input: [{ role: 'user', content: question }] };
}

/** Prompt blocks exactly as the simulator sees them. */
function blocksOf(format: RequestFormat, body: { model: string }) {
  const { entry } = catalog.lookup(body.model);
  return blocksFromRequest(format, body, (text) => countTokens(text, entry.tokenizer), toolCosts(format, entry.tokenizer, entry));
}

/** OpenAI hits come in 1024 + n*128 token steps. */
const openaiCached = (prefixTokens: number) => (prefixTokens < 1024 ? 0 : 1024 + Math.floor((prefixTokens - 1024) / 128) * 128);

async function json(res: Response): Promise<Record<string, any>> {
  expect(res.headers.get('content-type')).toContain('application/json');
  return (await res.json()) as Record<string, any>;
}

async function sse(res: Response): Promise<SseMessage[]> {
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  return new SseParser().feed(await res.text());
}

/** Reads a stream until it ends or the connection drops; says which. */
async function sseUntilDropped(res: Response): Promise<{ events: SseMessage[]; dropped: boolean }> {
  const parser = new SseParser();
  const decoder = new TextDecoder();
  const reader = res.body!.getReader();
  const events: SseMessage[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { events, dropped: false };
      events.push(...parser.feed(decoder.decode(value, { stream: true })));
    }
  } catch {
    return { events, dropped: true };
  }
}

function accumulate(provider: StreamUsageProvider, events: SseMessage[]): NormalizedUsage {
  const acc = createStreamUsageAccumulator(provider);
  for (const e of events) acc.push(e);
  return acc.result();
}

const parsed = (events: SseMessage[]) => events.filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data) as Record<string, any>);

/** The normalised figures that matter for money, without provider/model labels. */
function figures(u: NormalizedUsage) {
  const { provider: _p, model: _m, ...rest } = u;
  return rest;
}

// ── Anthropic Messages ──────────────────────────────────────────────────────

describe('Anthropic /v1/messages', () => {
  const prefix = blocksOf('anthropic', anthropicBody('x')).blocks[0]!.endToken;

  it('writes the prefix up to the breakpoint, then reads it within the TTL', async () => {
    const key = newKey();
    const first = anthropicBody('What is guideline 3 about?');
    const total1 = blocksOf('anthropic', first).totalTokens;
    expect(prefix).toBeGreaterThan(1024);

    const r1 = await post('/v1/messages', first, anthropicHeaders(key));
    expect(r1.status).toBe(200);
    expect(r1.headers.get('request-id')).toMatch(/^req_/);
    const m1 = await json(r1);
    expect(m1).toEqual({
      id: expect.stringMatching(/^msg_/),
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-5',
      content: [{ type: 'text', text: expect.stringContaining('Simulated reply #') }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: {
        input_tokens: total1 - prefix,
        cache_creation_input_tokens: prefix,
        cache_read_input_tokens: 0,
        cache_creation: { ephemeral_5m_input_tokens: prefix, ephemeral_1h_input_tokens: 0 },
        output_tokens: countTokens(m1.content[0].text, 'anthropic'),
        service_tier: 'standard',
      },
    });
    expect(m1.content[0].text).toContain('to: What is guideline 3 about?');
    expect(normalizeUsage(m1)).toEqual({
      provider: 'anthropic',
      model: 'claude-sonnet-4-5',
      total_prompt_tokens: total1,
      cache_read_tokens: 0,
      cache_write_tokens: prefix,
      cache_write_by_ttl: { '5m': prefix, '1h': 0 },
      uncached_tokens: total1 - prefix,
      output_tokens: m1.usage.output_tokens,
      cache_fields_reported: true,
      complete: true,
    });

    clock.t += 4 * MINUTE;
    const second = anthropicBody('And guideline 7?');
    const total2 = blocksOf('anthropic', second).totalTokens;
    const m2 = await json(await post('/v1/messages', second, anthropicHeaders(key)));
    expect(m2.usage).toMatchObject({
      input_tokens: total2 - prefix,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: prefix,
      cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
    });
    expect(normalizeUsage(m2)).toMatchObject({ total_prompt_tokens: total2, cache_read_tokens: prefix, cache_write_tokens: 0 });

    // The hit refreshed the 5m TTL: another 4 minutes later it is still warm.
    clock.t += 4 * MINUTE;
    const m3 = await json(await post('/v1/messages', second, anthropicHeaders(key)));
    expect(m3.usage.cache_read_input_tokens).toBe(prefix);
  });

  it('writes again after a 6-minute gap on the 5m TTL', async () => {
    const key = newKey();
    const body = anthropicBody('Summarise the guidelines.');
    const m1 = await json(await post('/v1/messages', body, anthropicHeaders(key)));
    expect(m1.usage.cache_creation_input_tokens).toBe(prefix);

    clock.t += 6 * MINUTE;
    const m2 = await json(await post('/v1/messages', body, anthropicHeaders(key)));
    expect(m2.usage).toMatchObject({ cache_creation_input_tokens: prefix, cache_read_input_tokens: 0 });
  });

  it('keeps a 1h breakpoint warm across the same gap and reports it under ephemeral_1h', async () => {
    const key = newKey();
    const body = anthropicBody('Long-lived question', '1h');
    const m1 = await json(await post('/v1/messages', body, anthropicHeaders(key)));
    expect(m1.usage.cache_creation).toEqual({ ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: prefix });
    expect(normalizeUsage(m1).cache_write_by_ttl).toEqual({ '5m': 0, '1h': prefix });

    clock.t += 6 * MINUTE;
    const m2 = await json(await post('/v1/messages', body, anthropicHeaders(key)));
    expect(m2.usage.cache_read_input_tokens).toBe(prefix);
  });

  it('gives every API key its own cache', async () => {
    const [a, b] = [newKey(), newKey()];
    const body = anthropicBody('Per-account caches?');
    expect((await json(await post('/v1/messages', body, anthropicHeaders(a)))).usage.cache_creation_input_tokens).toBe(prefix);
    const other = await json(await post('/v1/messages', body, anthropicHeaders(b)));
    expect(other.usage).toMatchObject({ cache_creation_input_tokens: prefix, cache_read_input_tokens: 0 });
    expect((await json(await post('/v1/messages', body, anthropicHeaders(a)))).usage.cache_read_input_tokens).toBe(prefix);
  });

  it('caches nothing without a breakpoint', async () => {
    const key = newKey();
    const body = { ...anthropicBody('No marker'), system: LONG_SYSTEM };
    const total = blocksOf('anthropic', body).totalTokens;
    for (let i = 0; i < 2; i++) {
      const m = await json(await post('/v1/messages', body, anthropicHeaders(key)));
      expect(m.usage).toMatchObject({ input_tokens: total, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
    }
  });

  it('refuses a body holding a lone surrogate as a provider does: 400 invalid_request_error, not a 500', async () => {
    const res = await post('/v1/messages', '{"model":"claude-sonnet-4-6","max_tokens":5,"messages":[{"role":"user","content":"a\\ud800"}]}', anthropicHeaders(newKey()));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: unknown }).error).toEqual({ type: 'invalid_request_error', message: expect.stringContaining('not valid Unicode') });
  });

  it('treats a clock that steps back as standing still instead of failing', async () => {
    const key = newKey();
    const body = anthropicBody('Clock skew');
    await post('/v1/messages', body, anthropicHeaders(key));
    clock.t -= 10 * MINUTE;
    const res = await post('/v1/messages', body, anthropicHeaders(key));
    clock.t += 10 * MINUTE;
    expect(res.status).toBe(200);
    expect((await json(res)).usage.cache_read_input_tokens).toBe(prefix);
  });

  it('streams message_start … message_stop, normalising to the non-streaming figures', async () => {
    const [plain, streamed] = [newKey(), newKey()];
    const body = anthropicBody('Stream me an answer please, with several words');
    const expected: NormalizedUsage[] = [];
    const got: NormalizedUsage[] = [];
    for (let turn = 0; turn < 2; turn++) {
      expected.push(normalizeUsage(await json(await post('/v1/messages', body, anthropicHeaders(plain)))));
      const events = await sse(await post('/v1/messages', { ...body, stream: true }, anthropicHeaders(streamed)));
      got.push(accumulate('anthropic', events));

      const types = events.map((e) => e.event);
      expect(types.slice(0, 3)).toEqual(['message_start', 'content_block_start', 'ping']);
      expect(types.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
      const deltas = types.filter((t) => t === 'content_block_delta');
      expect(deltas.length).toBeGreaterThan(1);
      const data = parsed(events);
      data.forEach((d, i) => expect(d.type).toBe(types[i]));
      const start = data[0]!.message;
      expect(start).toMatchObject({ type: 'message', role: 'assistant', content: [], stop_reason: null, stop_sequence: null });
      expect(start.usage).toMatchObject({ output_tokens: 1, service_tier: 'standard' });
      expect(start.usage.cache_creation).toBeDefined();
      const delta = data.at(-2)!;
      expect(delta.delta).toEqual({ stop_reason: 'end_turn', stop_sequence: null });
      const text = data.filter((d) => d.type === 'content_block_delta').map((d) => d.delta.text).join('');
      expect(delta.usage.output_tokens).toBe(countTokens(text, 'anthropic'));
      clock.t += MINUTE;
    }
    expect(got.map(figures)).toEqual(expected.map(figures));
    expect(got[0]).toMatchObject({ cache_write_tokens: prefix, cache_read_tokens: 0, complete: true });
    expect(got[1]).toMatchObject({ cache_write_tokens: 0, cache_read_tokens: prefix, complete: true });
  });

  it('counts tokens like the messages endpoint does', async () => {
    const key = newKey();
    const body = anthropicBody('How many tokens?');
    const res = await post('/v1/messages/count_tokens', body, anthropicHeaders(key));
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ input_tokens: blocksOf('anthropic', body).totalTokens });
    const m = normalizeUsage(await json(await post('/v1/messages', body, anthropicHeaders(key))));
    expect(m.total_prompt_tokens).toBe(blocksOf('anthropic', body).totalTokens);
  });

  it("adds the model's tool-use system prompt to a request with tools, by tool_choice ('Tool use with Claude', Pricing)", async () => {
    const key = newKey();
    const count = async (body: object) => (await json(await post('/v1/messages/count_tokens', body, anthropicHeaders(key)))).input_tokens as number;
    const tool = { name: 'get_weather', description: 'Get the weather.', input_schema: { type: 'object', properties: { city: { type: 'string' } } } };
    // The tool's own tokens: its name, description and schema, and 3 of framing (as any block).
    const own = countTokens(`get_weather\nGet the weather.\n${JSON.stringify(tool.input_schema)}`, 'anthropic') + 3;
    for (const [model, auto, any] of [
      ['claude-sonnet-4-6', 497, 589],
      ['claude-opus-4-8', 290, 410],
      ['claude-opus-5', 286, 406],
      ['claude-fable-5', 0, 0],
    ] as const) {
      const plain = { model, max_tokens: 64, messages: [{ role: 'user', content: 'Weather in Oslo?' }] };
      const none = await count(plain);
      expect(await count({ ...plain, tools: [tool] }), model).toBe(none + own + auto);
      expect(await count({ ...plain, tools: [tool], tool_choice: { type: 'none' } }), model).toBe(none + own + auto);
      expect(await count({ ...plain, tools: [tool], tool_choice: { type: 'any' } }), model).toBe(none + own + any);
      expect(await count({ ...plain, tools: [tool], tool_choice: { type: 'tool', name: 'get_weather' } }), model).toBe(none + own + any);
      // No tools, no tool-use prompt, whatever tool_choice says.
      expect(await count({ ...plain, tool_choice: { type: 'none' } }), model).toBe(none);
    }
  });

  it("counts an Anthropic-defined tool as the model's documented figure, a version without one as its JSON", async () => {
    const key = newKey();
    const count = async (body: object) => (await json(await post('/v1/messages/count_tokens', body, anthropicHeaders(key)))).input_tokens as number;
    const bash = { type: 'bash_20250124', name: 'bash' };
    const editor = { type: 'text_editor_20250429', name: 'str_replace_based_edit_tool' };
    const later = { type: 'text_editor_20250728', name: 'str_replace_based_edit_tool' };
    const computer = { type: 'computer_20251124', name: 'computer', display_width_px: 1280, display_height_px: 800 };
    const asJson = (tool: object) => countTokens(JSON.stringify(tool), 'anthropic') + 3;
    for (const [model, tools, added] of [
      ['claude-sonnet-4-6', [bash], 244 + 497],
      ['claude-opus-4-7', [bash], 325 + 675],
      ['claude-sonnet-4-6', [bash, editor, computer], 244 + 700 + 735 + 466 + 497],
      ['claude-sonnet-4-6', [later], asJson(later) + 497],
      ['claude-fable-5', [bash], asJson(bash)],
    ] as const) {
      const plain = { model, max_tokens: 64, messages: [{ role: 'user', content: 'List the files.' }] };
      expect(await count({ ...plain, tools }), `${model} ${tools.map((t) => t.type).join(',')}`).toBe((await count(plain)) + added);
    }
  });
});

// ── OpenAI Chat Completions ─────────────────────────────────────────────────

describe('OpenAI /v1/chat/completions', () => {
  it('serves a repeated ≥1024-token prefix from cache in 128-token steps', async () => {
    const key = newKey();
    const first = chatBody('gpt-4o', 'What is guideline 3 about?');
    const system = blocksOf('openai-chat', first).blocks[0]!.endToken;
    expect(system).toBeGreaterThanOrEqual(1024);

    const r1 = await post('/v1/chat/completions', first, openaiHeaders(key));
    expect(r1.headers.get('x-request-id')).toMatch(/^req_/);
    const c1 = await json(r1);
    const total1 = blocksOf('openai-chat', first).totalTokens;
    const text = c1.choices[0].message.content as string;
    expect(c1).toEqual({
      id: expect.stringMatching(/^chatcmpl-/),
      object: 'chat.completion',
      created: Math.floor(clock.t / 1000),
      model: 'gpt-4o',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: expect.stringContaining('to: What is guideline 3 about?'), refusal: null, annotations: [] },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage: {
        prompt_tokens: total1,
        completion_tokens: countTokens(text, 'o200k_base'),
        total_tokens: total1 + countTokens(text, 'o200k_base'),
        prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
      },
      service_tier: 'default',
      system_fingerprint: expect.any(String),
    });

    clock.t += MINUTE;
    const second = chatBody('gpt-4o', 'And guideline 7?');
    const total2 = blocksOf('openai-chat', second).totalTokens;
    const c2 = await json(await post('/v1/chat/completions', second, openaiHeaders(key)));
    const cached = c2.usage.prompt_tokens_details.cached_tokens as number;
    expect(cached).toBe(openaiCached(system));
    expect(cached % 128).toBe(0);
    expect(cached).toBeGreaterThanOrEqual(1024);
    // Writes are not billed on gpt-4o, so the field is absent, as the API sends it.
    expect(c2.usage.prompt_tokens_details).not.toHaveProperty('cache_write_tokens');
    expect(normalizeUsage(c2)).toEqual({
      provider: 'openai-chat',
      model: 'gpt-4o',
      total_prompt_tokens: total2,
      cache_read_tokens: cached,
      cache_write_tokens: null,
      cache_write_by_ttl: null,
      uncached_tokens: total2 - cached,
      output_tokens: c2.usage.completion_tokens,
      cache_fields_reported: true,
      complete: true,
    });

    // The identical prompt again matches through its last block.
    const c3 = await json(await post('/v1/chat/completions', second, openaiHeaders(key)));
    expect(c3.usage.prompt_tokens_details.cached_tokens).toBe(openaiCached(total2));
  });

  it('caches nothing below 1024 tokens', async () => {
    const key = newKey();
    const body = chatBody('gpt-4o', 'Short?', 'You are terse.');
    expect(blocksOf('openai-chat', body).totalTokens).toBeLessThan(1024);
    for (let i = 0; i < 2; i++) {
      const c = await json(await post('/v1/chat/completions', body, openaiHeaders(key)));
      expect(c.usage.prompt_tokens_details.cached_tokens).toBe(0);
      expect(normalizeUsage(c)).toMatchObject({ cache_read_tokens: 0, cache_fields_reported: true });
    }
  });

  it('reports cache_write_tokens on a model that bills writes (GPT-5.6, implicit breakpoint)', async () => {
    const key = newKey();
    const first = chatBody('gpt-5.6', 'Start a conversation');
    // The cache holds the prompt through its last block: the 3 tokens priming the reply are counted, never cached.
    const end = (b: { blocks: Array<{ endToken: number }> }) => b.blocks[b.blocks.length - 1]!.endToken;
    const total1 = end(blocksOf('openai-chat', first));
    const c1 = await json(await post('/v1/chat/completions', first, openaiHeaders(key)));
    expect(c1.usage.prompt_tokens).toBe(total1 + 3);
    expect(c1.usage.prompt_tokens_details).toEqual({ cached_tokens: 0, cache_write_tokens: total1, audio_tokens: 0 });

    const next = {
      ...first,
      messages: [...first.messages, { role: 'assistant', content: c1.choices[0].message.content }, { role: 'user', content: 'Go on' }],
    };
    const total2 = end(blocksOf('openai-chat', next));
    const c2 = await json(await post('/v1/chat/completions', next, openaiHeaders(key)));
    expect(c2.usage.prompt_tokens_details).toEqual({ cached_tokens: total1, cache_write_tokens: total2 - total1, audio_tokens: 0 });
    expect(normalizeUsage(c2)).toMatchObject({
      total_prompt_tokens: total2 + 3,
      cache_read_tokens: total1,
      cache_write_tokens: total2 - total1,
      uncached_tokens: 3,
    });
  });

  it('GPT-5.6 with four explicit breakpoints writes the latest three and its implicit one at the newest message', async () => {
    const key = newKey();
    const part = (i: number) => ({ type: 'text', text: `${LONG_SYSTEM} Section ${i}.`, prompt_cache_breakpoint: { mode: 'explicit' } });
    const body = {
      model: 'gpt-5.6',
      messages: [
        { role: 'system', content: [part(1), part(2), part(3), part(4)] },
        { role: 'user', content: 'Start a conversation' },
      ],
    };
    const { blocks } = blocksOf('openai-chat', body);
    // Through the last block: the reply's priming is not cached.
    const totalTokens = blocks[blocks.length - 1]!.endToken;
    const first = await json(await post('/v1/chat/completions', body, openaiHeaders(key)));
    // The first explicit mark is not written: the writes run from nothing to the end, the tokens up to mark 1 included.
    expect(first.usage.prompt_tokens_details.cache_write_tokens).toBe(totalTokens);
    const next = { ...body, messages: [...body.messages, { role: 'assistant', content: 'ok' }, { role: 'user', content: 'Go on' }] };
    const second = await json(await post('/v1/chat/completions', next, openaiHeaders(key)));
    // The implicit breakpoint of the first call (its newest message) is read whole.
    expect(second.usage.prompt_tokens_details.cached_tokens).toBe(totalTokens);
    // A call ending at the first explicit mark finds nothing written there.
    const onlyFirst = { model: 'gpt-5.6', prompt_cache_options: { mode: 'explicit' }, messages: [{ role: 'system', content: [part(1)] }] };
    expect(blocks[0]!.breakpoint).toBeTypeOf('string');
    const third = await json(await post('/v1/chat/completions', onlyFirst, openaiHeaders(key)));
    expect(third.usage.prompt_tokens_details.cached_tokens).toBe(0);
  });

  it("keeps a prompt_cache_retention '24h' prefix for a later call half an hour on, where the default has expired", async () => {
    for (const retention of ['24h', undefined]) {
      const key = newKey();
      const body = { ...chatBody('gpt-5', 'Retained?'), ...(retention ? { prompt_cache_retention: retention } : {}) };
      const prefix = blocksOf('openai-chat', body).totalTokens;
      await json(await post('/v1/chat/completions', body, openaiHeaders(key)));
      clock.t += 30 * MINUTE;
      const later = await json(await post('/v1/chat/completions', body, openaiHeaders(key)));
      expect(later.usage.prompt_tokens_details.cached_tokens, String(retention)).toBe(retention ? openaiCached(prefix) : 0);
    }
  });

  it("refuses reasoning.context on a model that does not take it, as OpenAI answers an unsupported parameter; GPT-5.6 takes it (the official SDK)", async () => {
    const client = new OpenAI({ apiKey: newKey(), baseURL: `${sim.url}/v1`, maxRetries: 0 });
    const ask = (model: string, context: 'all_turns' | 'current_turn') => client.responses.create({ model, input: 'Which turns?', reasoning: { effort: 'low', context } });
    for (const model of ['gpt-5', 'o3', 'gpt-4.1']) {
      const err = await ask(model, 'all_turns').then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, model).toBeInstanceOf(OpenAI.BadRequestError);
      const bad = err as InstanceType<typeof OpenAI.BadRequestError>;
      expect([bad.status, bad.type, bad.param, bad.code, bad.message]).toEqual([400, 'invalid_request_error', 'reasoning.context', 'unsupported_parameter', "400 Unsupported parameter: 'reasoning.context' is not supported with this model."]);
    }
    // Chat Completions alike; a reasoning without context is taken.
    const chat = await client.chat.completions.create({ model: 'gpt-5', messages: [{ role: 'user', content: 'Which turns?' }], reasoning: { context: 'current_turn' } } as never).then(() => null, (e: unknown) => e);
    expect((chat as { param?: string }).param).toBe('reasoning.context');
    expect((await client.responses.create({ model: 'gpt-5', input: 'Which turns?', reasoning: { effort: 'low' } })).status).toBe('completed');
    for (const context of ['all_turns', 'current_turn'] as const) expect((await ask('gpt-5.6', context)).status).toBe('completed');
  });

  it("gpt-5.5 keeps a prefix a day by default and refuses prompt_cache_retention 'in_memory'; gpt-5.4 takes both", async () => {
    // gpt-5.5's only retention is the extended one: with '24h' or none, a call half an hour on still reads.
    for (const retention of ['24h', undefined]) {
      const key = newKey();
      const body = { ...chatBody('gpt-5.5', 'Retained a day?'), ...(retention ? { prompt_cache_retention: retention } : {}) };
      const prefix = blocksOf('openai-chat', body).totalTokens;
      await json(await post('/v1/chat/completions', body, openaiHeaders(key)));
      clock.t += 30 * MINUTE;
      const later = await json(await post('/v1/chat/completions', body, openaiHeaders(key)));
      expect(later.usage.prompt_tokens_details.cached_tokens, String(retention)).toBe(openaiCached(prefix));
    }
    const refused = await post('/v1/chat/completions', { ...chatBody('gpt-5.5', 'In memory?'), prompt_cache_retention: 'in_memory' }, openaiHeaders(newKey()));
    expect(refused.status).toBe(400);
    expect(await refused.json()).toEqual({
      error: { message: 'This model is compatible only with 24h extended prompt caching', type: 'invalid_request_error', param: 'prompt_cache_retention', code: 'invalid_parameter' },
    });
    // gpt-5.4 (and older) takes 'in_memory', its default: the prefix is gone half an hour on.
    const key = newKey();
    const body = { ...chatBody('gpt-5.4', 'In memory.'), prompt_cache_retention: 'in_memory' };
    await json(await post('/v1/chat/completions', body, openaiHeaders(key)));
    clock.t += 30 * MINUTE;
    expect((await json(await post('/v1/chat/completions', body, openaiHeaders(key)))).usage.prompt_tokens_details.cached_tokens).toBe(0);
  });

  it('streams chunks with usage null, a final usage chunk and [DONE] when include_usage is set', async () => {
    const [plain, streamed] = [newKey(), newKey()];
    const body = chatBody('gpt-4o', 'Stream me an answer please, with several words');
    const expected: NormalizedUsage[] = [];
    const got: NormalizedUsage[] = [];
    for (let turn = 0; turn < 2; turn++) {
      expected.push(normalizeUsage(await json(await post('/v1/chat/completions', body, openaiHeaders(plain)))));
      const events = await sse(
        await post('/v1/chat/completions', { ...body, stream: true, stream_options: { include_usage: true } }, openaiHeaders(streamed)),
      );
      got.push(accumulate('openai-chat', events));

      expect(events.every((e) => e.event === undefined)).toBe(true);
      expect(events.at(-1)!.data).toBe('[DONE]');
      const chunks = parsed(events);
      expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'gpt-4o')).toBe(true);
      expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
      const last = chunks.at(-1)!;
      expect(last.choices).toEqual([]);
      expect(last.usage.prompt_tokens).toBe(blocksOf('openai-chat', body).totalTokens);
      const content = chunks.slice(0, -1);
      expect(content.every((c) => c.usage === null && c.choices.length === 1)).toBe(true);
      expect(content[0]!.choices[0].delta).toMatchObject({ role: 'assistant', content: '' });
      expect(content.at(-1)!.choices[0]).toMatchObject({ delta: {}, finish_reason: 'stop' });
      expect(content.slice(1, -1).length).toBeGreaterThan(1);
      clock.t += MINUTE;
    }
    expect(got.map(figures)).toEqual(expected.map(figures));
    expect(got[1]!.cache_read_tokens).toBeGreaterThanOrEqual(1024);
  });

  it('sends no usage chunk when include_usage is not set', async () => {
    const events = await sse(
      await post('/v1/chat/completions', { ...chatBody('gpt-4o', 'No usage please'), stream: true }, openaiHeaders(newKey())),
    );
    expect(events.at(-1)!.data).toBe('[DONE]');
    const chunks = parsed(events);
    expect(chunks.every((c) => !('usage' in c) && c.choices.length === 1)).toBe(true);
    expect(accumulate('openai-chat', events)).toMatchObject({ complete: false, cache_fields_reported: false });
  });
});

// ── OpenAI Responses ────────────────────────────────────────────────────────

describe('OpenAI /v1/responses', () => {
  it('answers in the Response shape, cached on the second call', async () => {
    const key = newKey();
    const body = responsesBody('What is guideline 3 about?');
    const { blocks, totalTokens } = blocksOf('openai-responses', body);
    const r1 = await json(await post('/v1/responses', body, openaiHeaders(key)));
    const text = r1.output[0].content[0].text as string;
    const out = countTokens(text, 'o200k_base');
    expect(r1).toMatchObject({
      id: expect.stringMatching(/^resp_/),
      object: 'response',
      created_at: Math.floor(clock.t / 1000),
      status: 'completed',
      model: 'gpt-4.1',
      instructions: LONG_SYSTEM,
      output: [
        {
          type: 'message',
          id: expect.stringMatching(/^msg_/),
          status: 'completed',
          role: 'assistant',
          content: [{ type: 'output_text', text: expect.stringContaining('to: What is guideline 3 about?'), annotations: [] }],
        },
      ],
      usage: {
        input_tokens: totalTokens,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: out,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: totalTokens + out,
      },
    });
    expect(r1.usage.input_tokens_details).not.toHaveProperty('cache_write_tokens');

    clock.t += MINUTE;
    const body2 = responsesBody('And guideline 7?');
    const r2 = await json(await post('/v1/responses', body2, openaiHeaders(key)));
    const cached = openaiCached(blocks[0]!.endToken);
    expect(r2.usage.input_tokens_details.cached_tokens).toBe(cached);
    expect(normalizeUsage(r2)).toMatchObject({
      provider: 'openai-responses',
      total_prompt_tokens: blocksOf('openai-responses', body2).totalTokens,
      cache_read_tokens: cached,
      cache_write_tokens: null,
      uncached_tokens: blocksOf('openai-responses', body2).totalTokens - cached,
      complete: true,
    });
  });

  it('accepts a plain string input', async () => {
    const res = await post('/v1/responses', { model: 'gpt-4.1', input: 'Hello there' }, openaiHeaders(newKey()));
    expect(res.status).toBe(200);
    expect((await json(res)).output[0].content[0].text).toContain('to: Hello there');
  });

  it('streams numbered events ending in response.completed with the usage', async () => {
    const [plain, streamed] = [newKey(), newKey()];
    const body = responsesBody('Stream me an answer please, with several words');
    const expected: NormalizedUsage[] = [];
    const got: NormalizedUsage[] = [];
    for (let turn = 0; turn < 2; turn++) {
      expected.push(normalizeUsage(await json(await post('/v1/responses', body, openaiHeaders(plain)))));
      const events = await sse(await post('/v1/responses', { ...body, stream: true }, openaiHeaders(streamed)));
      got.push(accumulate('openai-responses', events));

      const data = parsed(events);
      data.forEach((d, i) => {
        expect(d.type).toBe(events[i]!.event);
        expect(d.sequence_number).toBe(i);
      });
      const types = events.map((e) => e.event);
      expect(types[0]).toBe('response.created');
      expect(types.at(-1)).toBe('response.completed');
      expect(types.filter((t) => t === 'response.output_text.delta').length).toBeGreaterThan(1);
      expect(data[0]!.response).toMatchObject({ status: 'in_progress', usage: null, output: [] });
      const completed = data.at(-1)!.response;
      const deltas = data.filter((d) => d.type === 'response.output_text.delta').map((d) => d.delta).join('');
      expect(completed.output[0].content[0].text).toBe(deltas);
      expect(completed.status).toBe('completed');
      clock.t += MINUTE;
    }
    expect(got.map(figures)).toEqual(expected.map(figures));
    expect(got[1]!.cache_read_tokens).toBeGreaterThanOrEqual(1024);
  });
});

// ── faults, validation, auth ────────────────────────────────────────────────

describe('fault injection', () => {
  it.each([
    [529, 'overloaded_error'],
    [429, 'rate_limit_error'],
    [500, 'api_error'],
  ])('Anthropic %i → %s, leaving the cache untouched', async (status, type) => {
    const key = newKey();
    const body = anthropicBody('Faulty');
    const res = await post('/v1/messages', body, { ...anthropicHeaders(key), 'x-simulator-status': String(status) });
    expect(res.status).toBe(status);
    expect(await json(res)).toEqual({ type: 'error', error: { type, message: expect.any(String) }, request_id: expect.stringMatching(/^req_/) });
    // Nothing was written by the failed call: the next one pays the write.
    const ok = await json(await post('/v1/messages', body, anthropicHeaders(key)));
    expect(ok.usage).toMatchObject({ cache_read_input_tokens: 0, cache_creation_input_tokens: expect.any(Number) });
    expect(ok.usage.cache_creation_input_tokens).toBeGreaterThan(0);
  });

  it.each([
    [429, 'requests', 'rate_limit_exceeded'],
    [500, 'server_error', null],
  ])('OpenAI %i → type %s, code %s', async (status, type, code) => {
    const key = newKey();
    const body = chatBody('gpt-4o', 'Faulty');
    for (const path of ['/v1/chat/completions', '/v1/responses']) {
      const req = path === '/v1/responses' ? responsesBody('Faulty') : body;
      const res = await post(path, req, { ...openaiHeaders(key), 'x-simulator-status': String(status) });
      expect(res.status).toBe(status);
      expect(await json(res)).toEqual({ error: { message: expect.any(String), type, param: null, code } });
    }
    const ok = await json(await post('/v1/chat/completions', body, openaiHeaders(key)));
    expect(ok.usage.prompt_tokens_details.cached_tokens).toBe(0);
  });

  it('abort-after drops an Anthropic stream before the final usage', async () => {
    const res = await post('/v1/messages', { ...anthropicBody('Drop me'), stream: true }, {
      ...anthropicHeaders(newKey()),
      'x-simulator-abort-after': '4',
    });
    expect(res.status).toBe(200);
    const { events, dropped } = await sseUntilDropped(res);
    expect(dropped).toBe(true);
    expect(events.map((e) => e.event)).toEqual(['message_start', 'content_block_start', 'ping', 'content_block_delta']);
    const usage = accumulate('anthropic', events);
    expect(usage).toMatchObject({ complete: false, cache_fields_reported: false, cache_read_tokens: null });
    // message_start already told the prompt size.
    expect(usage.total_prompt_tokens).toBe(blocksOf('anthropic', anthropicBody('Drop me')).totalTokens);
  });

  it('abort-after drops OpenAI streams before the usage chunk and response.completed', async () => {
    const chat = await post(
      '/v1/chat/completions',
      { ...chatBody('gpt-4o', 'Drop me'), stream: true, stream_options: { include_usage: true } },
      { ...openaiHeaders(newKey()), 'x-simulator-abort-after': '2' },
    );
    const c = await sseUntilDropped(chat);
    expect(c.dropped).toBe(true);
    expect(c.events).toHaveLength(2);
    expect(accumulate('openai-chat', c.events)).toMatchObject({ complete: false, cache_read_tokens: null });

    const resp = await post('/v1/responses', { ...responsesBody('Drop me'), stream: true }, {
      ...openaiHeaders(newKey()),
      'x-simulator-abort-after': '5',
    });
    const r = await sseUntilDropped(resp);
    expect(r.dropped).toBe(true);
    expect(r.events).toHaveLength(5);
    expect(r.events.map((e) => e.event)).not.toContain('response.completed');
    expect(accumulate('openai-responses', r.events)).toMatchObject({ complete: false, cache_read_tokens: null });
  });
});

describe('validation and auth', () => {
  it('rejects requests without a key in each provider’s shape', async () => {
    const a = await post('/v1/messages', anthropicBody('no key'), {});
    expect(a.status).toBe(401);
    expect(await json(a)).toEqual({
      type: 'error',
      error: { type: 'authentication_error', message: expect.any(String) },
      request_id: expect.any(String),
    });
    for (const [path, body] of [
      ['/v1/chat/completions', chatBody('gpt-4o', 'no key')],
      ['/v1/responses', responsesBody('no key')],
    ] as const) {
      const o = await post(path, body, {});
      expect(o.status).toBe(401);
      expect(await json(o)).toEqual({
        error: { message: expect.any(String), type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
      });
    }
  });

  it.each([
    ['malformed JSON', '{"model": "claude-sonnet-4-5",'],
    ['a missing model', { max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }],
    ['missing messages', { model: 'claude-sonnet-4-5', max_tokens: 10 }],
    ['a missing max_tokens', { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'hi' }] }],
    [
      'five cache_control breakpoints',
      { model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: [1, 2, 3, 4, 5].map((i) => ({ type: 'text', text: `part ${i}`, cache_control: { type: 'ephemeral' } })) }] },
    ],
    [
      'a 1h breakpoint after a 5m one',
      {
        model: 'claude-sonnet-4-5',
        max_tokens: 10,
        system: [{ type: 'text', text: 'a', cache_control: { type: 'ephemeral' } }],
        messages: [{ role: 'user', content: [{ type: 'text', text: 'b', cache_control: { type: 'ephemeral', ttl: '1h' } }] }],
      },
    ],
  ])('Anthropic: 400 invalid_request_error for %s', async (_, body) => {
    const res = await post('/v1/messages', body, anthropicHeaders(newKey()));
    expect(res.status).toBe(400);
    expect((await json(res)).error).toEqual({ type: 'invalid_request_error', message: expect.any(String) });
  });

  it.each([
    ['/v1/chat/completions', 'malformed JSON', '{"model":'],
    ['/v1/chat/completions', 'a missing model', { messages: [{ role: 'user', content: 'hi' }] }],
    ['/v1/chat/completions', 'missing messages', { model: 'gpt-4o' }],
    ['/v1/responses', 'malformed JSON', 'nope'],
    ['/v1/responses', 'a missing model', { input: 'hi' }],
    ['/v1/responses', 'missing input', { model: 'gpt-4.1' }],
  ])('OpenAI %s: 400 invalid_request_error for %s', async (path, _, body) => {
    const res = await post(path, body, openaiHeaders(newKey()));
    expect(res.status).toBe(400);
    const err = (await json(res)).error;
    expect(err).toMatchObject({ type: 'invalid_request_error', message: expect.any(String) });
    expect(Object.keys(err).sort()).toEqual(['code', 'message', 'param', 'type']);
  });
});

describe("Anthropic's tool-use system prompt and tool_choice", () => {
  it('a change of tool_choice rebuilds the messages and keeps the tools cached: never a read of more than was written', async () => {
    const key = newKey();
    const tools = Array.from({ length: 12 }, (_, i) => ({ name: `tool_${i}`, description: `Does thing ${i} carefully and reports in detail. `.repeat(4), input_schema: { type: 'object', properties: { x: { type: 'string' } } } }));
    const marked = [...tools.slice(0, -1), { ...tools.at(-1)!, cache_control: { type: 'ephemeral' } }];
    const call = async (choice: string) => {
      const body = { model: 'claude-sonnet-4-5', max_tokens: 16, tools: marked, tool_choice: { type: choice }, messages: [{ role: 'user', content: 'hi' }] };
      return normalizeUsage(await json(await post('/v1/messages', body, anthropicHeaders(key))));
    };
    const auto = await call('auto');
    const any = await call('any');
    const again = await call('auto');
    // The tools' prefix with the 496 tokens tool_choice auto and any share (any: 588, the 92 more with the messages).
    expect(auto.cache_write_tokens).toBeGreaterThan(1024);
    expect([any.cache_read_tokens, again.cache_read_tokens]).toEqual([auto.cache_write_tokens, auto.cache_write_tokens]);
    expect(any.total_prompt_tokens! - auto.total_prompt_tokens!).toBe(92);
  });
});

describe('GET /v1/models', () => {
  it('lists Anthropic models when called with Anthropic headers', async () => {
    const res = await fetch(`${sim.url}/v1/models`, { headers: anthropicHeaders(newKey()) });
    const body = await json(res);
    const ids = catalog.entries().filter((e) => e.provider === 'anthropic').map((e) => e.id);
    expect(body).toEqual({
      data: ids.map((id) => ({ type: 'model', id, display_name: expect.any(String), created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) })),
      has_more: false,
      first_id: ids[0],
      last_id: ids.at(-1),
    });
    expect(body.data.find((m: { id: string }) => m.id === 'claude-sonnet-4-5').display_name).toBe('Claude Sonnet 4.5');
  });

  it('lists OpenAI models otherwise', async () => {
    const body = await json(await fetch(`${sim.url}/v1/models`, { headers: openaiHeaders(newKey()) }));
    const ids = catalog.entries().filter((e) => e.provider === 'openai').map((e) => e.id);
    expect(ids).toEqual(expect.arrayContaining(['gpt-4o', 'gpt-4.1']));
    expect(body).toEqual({
      object: 'list',
      data: ids.map((id) => ({ id, object: 'model', created: expect.any(Number), owned_by: expect.any(String) })),
    });
  });

  describe("paged as Anthropic's Models API pages (limit 1-1000, 20 by default; after_id, before_id), walked by the SDK", () => {
    // 27 Anthropic models: more than the default page of 20.
    const more = loadCatalog();
    const template = more.models.find((m) => m.id === 'claude-haiku-4-5')!;
    const listed = more.models.filter((m) => m.provider === 'anthropic').length;
    for (let i = 1; i <= 27 - listed; i++)
      more.models.push({ ...template, id: `claude-paged-${i}`, match: [`claude-paged-${i}`] });
    const ids = more.models.filter((m) => m.provider === 'anthropic').map((m) => m.id);
    let big: RunningSimulator;
    let paths: string[] = [];
    const sdk = () =>
      new Anthropic({
        apiKey: newKey(),
        baseURL: big.url,
        fetch: (url, init) => (paths.push(new URL(String(url)).search), fetch(url, init)),
      });
    beforeAll(async () => {
      big = await startSimulator({ catalog: new ModelCatalog(more), clock });
    });
    afterAll(async () => {
      await big.close();
    });

    it('a page of 20 by default, and auto-pagination walks every page in order, once each', async () => {
      expect(ids.length).toBe(27);
      paths = [];
      const first = await sdk().models.list();
      expect(first.data.map((m) => m.id)).toEqual(ids.slice(0, 20));
      expect([first.has_more, first.first_id, first.last_id]).toEqual([true, ids[0], ids[19]]);
      paths = [];
      const walked: string[] = [];
      for await (const m of sdk().models.list({ limit: 4 })) walked.push(m.id);
      expect(walked).toEqual(ids);
      expect(paths).toEqual(['?limit=4', ...[3, 7, 11, 15, 19, 23].map((i) => `?limit=4&after_id=${ids[i]}`)]);
    });

    it('after_id is the page just after that model, before_id the page just before it, has_more in that direction', async () => {
      const after = await sdk().models.list({ after_id: ids[20], limit: 10 });
      expect([after.data.map((m) => m.id), after.has_more, after.first_id, after.last_id]).toEqual([ids.slice(21), false, ids[21], ids[26]]);
      const before = await sdk().models.list({ before_id: ids[10], limit: 4 });
      expect([before.data.map((m) => m.id), before.has_more, before.first_id, before.last_id]).toEqual([ids.slice(6, 10), true, ids[6], ids[9]]);
      // The SDK walks back with before_id = first_id, to the first model.
      const back: string[] = [];
      for await (const m of sdk().models.list({ before_id: ids[10], limit: 4 })) back.push(m.id);
      expect(back).toEqual([...ids.slice(6, 10), ...ids.slice(2, 6), ...ids.slice(0, 2)]);
      const all = await sdk().models.list({ limit: 1000 });
      expect([all.data.length, all.has_more]).toEqual([27, false]);
      const past = await sdk().models.list({ after_id: ids[26] });
      expect([past.data, past.has_more, past.first_id, past.last_id]).toEqual([[], false, null, null]);
    });

    it('a limit out of 1-1000, both cursors, or a cursor naming no model: a 400 invalid_request_error', async () => {
      for (const query of ['limit=0', 'limit=1001', 'limit=2.5', 'limit=x', `after_id=${ids[1]}&before_id=${ids[5]}`, 'after_id=claude-nope', 'before_id=claude-nope']) {
        const res = await fetch(`${big.url}/v1/models?${query}`, { headers: anthropicHeaders(newKey()) });
        expect(res.status, query).toBe(400);
        expect((await json(res)).error.type, query).toBe('invalid_request_error');
      }
    });

    it("OpenAI's list is one page of every model, whatever the query, as OpenAI's is", async () => {
      const openaiIds = more.models.filter((m) => m.provider === 'openai').map((m) => m.id);
      const client = new OpenAI({ apiKey: newKey(), baseURL: `${big.url}/v1` });
      const walked: string[] = [];
      for await (const m of client.models.list()) walked.push(m.id);
      expect(walked).toEqual(openaiIds);
      const body = await json(await fetch(`${big.url}/v1/models?limit=2&after=gpt-4o`, { headers: openaiHeaders(newKey()) }));
      expect(body.data.map((m: { id: string }) => m.id)).toEqual(openaiIds);
      expect(Object.keys(body).sort()).toEqual(['data', 'object']);
    });
  });
});

describe('GET /v1/models/{id}', () => {
  it("answers one model as the list has it, and an id it does not know with the provider's 404", async () => {
    const [anthropic, openai, list] = await Promise.all([
      fetch(`${sim.url}/v1/models/claude-sonnet-4-5`, { headers: anthropicHeaders(newKey()) }).then(json),
      fetch(`${sim.url}/v1/models/gpt-4o`, { headers: openaiHeaders(newKey()) }).then(json),
      fetch(`${sim.url}/v1/models`, { headers: anthropicHeaders(newKey()) }).then(json),
    ]);
    expect(anthropic).toEqual(list.data.find((m: { id: string }) => m.id === 'claude-sonnet-4-5'));
    expect(openai).toMatchObject({ id: 'gpt-4o', object: 'model' });
    const [noClaude, noGpt] = await Promise.all([
      fetch(`${sim.url}/v1/models/claude-nope`, { headers: anthropicHeaders(newKey()) }),
      fetch(`${sim.url}/v1/models/gpt-4o`, { headers: anthropicHeaders(newKey()) }),
    ]);
    expect([noClaude.status, noGpt.status]).toEqual([404, 404]);
    expect((await json(noClaude)).error).toMatchObject({ type: 'not_found_error', message: 'model: claude-nope' });
  });
});

// ── real streaming ──────────────────────────────────────────────────────────

describe('streaming timing', () => {
  let slow: RunningSimulator;
  beforeAll(async () => {
    slow = await startSimulator({ catalog, clock, chunkDelayMs: 40 });
  });
  afterAll(async () => {
    await slow.close();
  });

  it('writes events as they are produced, not all at the end', async () => {
    const res = await fetch(`${slow.url}/v1/messages`, {
      method: 'POST',
      headers: anthropicHeaders(newKey()),
      body: JSON.stringify({ ...anthropicBody('one two three four five six seven eight nine'), stream: true }),
    });
    const reader = res.body!.getReader();
    const first = await reader.read();
    const firstAt = Date.now();
    expect(new TextDecoder().decode(first.value)).toContain('event: message_start');
    while (!(await reader.read()).done);
    // ≥ 9 more events follow the first, 40 ms apart.
    expect(Date.now() - firstAt).toBeGreaterThanOrEqual(250);
  });

  it('stops on a client abort and keeps serving', async () => {
    const controller = new AbortController();
    const res = await fetch(`${slow.url}/v1/chat/completions`, {
      method: 'POST',
      headers: openaiHeaders(newKey()),
      body: JSON.stringify({ ...chatBody('gpt-4o', 'abort me'), stream: true }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await expect(reader.read()).rejects.toThrow();
    const next = await fetch(`${slow.url}/v1/models`, { headers: openaiHeaders(newKey()) });
    expect(next.status).toBe(200);
  });
});

describe("Anthropic's input_transformations (thinking-binding-controls beta): the thinking blocks the API removed", () => {
  it('lists a block another model produced (model_binding_mismatch), in the message and in a stream\'s message_start; absent without the beta; what it removed not billed', async () => {
    const client = new Anthropic({ apiKey: newKey(), baseURL: sim.url, maxRetries: 0 });
    const BETA = ['thinking-binding-controls-2026-08-01'];
    const fable = await client.messages.create({ model: 'claude-fable-5-1', max_tokens: 1024, thinking: { type: 'adaptive' }, messages: [{ role: 'user', content: 'Hello?' }] });
    expect(fable.content[0]!.type).toBe('thinking');
    // Claude Opus 5.5 does not read Claude Fable 5.1's thinking: dropped without an error.
    const messages: Anthropic.Beta.BetaMessageParam[] = [{ role: 'user', content: 'Hello?' }, { role: 'assistant', content: fable.content as Anthropic.Beta.BetaContentBlockParam[] }, { role: 'user', content: 'And now?' }];
    const params = { model: 'claude-opus-5-5', max_tokens: 1024, thinking: { type: 'adaptive' as const }, messages };
    const removed = [{ type: 'thinking_dropped', path: 'messages.1.content.0', reason: 'model_binding_mismatch' }];
    const answered = await client.beta.messages.create({ ...params, betas: BETA });
    expect(answered.input_transformations).toEqual(removed);
    const streamed = await client.beta.messages.stream({ ...params, betas: BETA }).finalMessage();
    expect(streamed.input_transformations).toEqual(removed);
    expect('input_transformations' in (await client.messages.create(params as Anthropic.MessageCreateParamsNonStreaming))).toBe(false);
    // Nothing removed: an empty list.
    expect((await client.beta.messages.create({ ...params, messages: [messages[0]!], betas: BETA })).input_transformations).toEqual([]);
    // Its tokens are not billed: the count is the conversation's without the block.
    const without: Anthropic.Beta.BetaMessageParam[] = [messages[0]!, { role: 'assistant', content: (messages[1]!.content as Anthropic.Beta.BetaContentBlockParam[]).filter((b) => b.type !== 'thinking') }, messages[2]!];
    const counted = await client.beta.messages.countTokens({ model: 'claude-opus-5-5', thinking: { type: 'adaptive' }, messages: without });
    expect(answered.usage.input_tokens + (answered.usage.cache_read_input_tokens ?? 0) + (answered.usage.cache_creation_input_tokens ?? 0)).toBe(counted.input_tokens);
  });
});
