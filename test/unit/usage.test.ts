import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { costOf, loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import { extractDiagnostics, normalizeUsage, UsageShapeError } from '../../src/domain/usage/normalize';
import {
  createStreamUsageAccumulator,
  SseParser,
  type SseMessage,
  type StreamUsageProvider,
} from '../../src/domain/usage/stream';
import type { NormalizedUsage } from '../../src/domain/usage/types';

// Fixtures follow the bodies the APIs return (field sets from the official SDK
// types: anthropic-sdk-typescript Message/Usage/MessageDeltaUsage, openai-node
// CompletionUsage, Responses objects as captured from api.openai.com, Gemini
// GenerateContentResponse, vLLM protocol.py UsageInfo).

// ── fixtures: whole non-streaming responses ─────────────────────────────────

const anthropicMessage = {
  id: 'msg_01XFDUDYJgAACzvnptvVoYEL',
  type: 'message',
  role: 'assistant',
  model: 'claude-sonnet-4-5-20250929',
  content: [{ type: 'text', text: 'Done: the branch now builds.', citations: null }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  stop_details: null,
  container: null,
  usage: {
    input_tokens: 6,
    cache_creation_input_tokens: 6807,
    cache_read_input_tokens: 23537,
    cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 6807 },
    output_tokens: 39,
    server_tool_use: null,
    service_tier: 'standard',
    inference_geo: null,
  },
  diagnostics: { cache_miss_reason: { type: 'messages_changed', cache_missed_input_tokens: 6455 } },
};

const openaiChatCompletion = {
  id: 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT',
  object: 'chat.completion',
  created: 1741569952,
  model: 'gpt-4o-2024-08-06',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: 'Hello! How can I assist you today?', refusal: null, annotations: [] },
      logprobs: null,
      finish_reason: 'stop',
    },
  ],
  usage: {
    prompt_tokens: 2006,
    completion_tokens: 300,
    total_tokens: 2306,
    prompt_tokens_details: { cached_tokens: 1920, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  },
  service_tier: 'default',
  system_fingerprint: 'fp_fc9f1d7035',
};

const openaiResponse = {
  id: 'resp_0cd5d6b8310055d600696a1776b42c81a199fbb02248a8bfa0',
  object: 'response',
  created_at: 1768560502,
  status: 'completed',
  background: false,
  billing: { payer: 'developer' },
  completed_at: 1768560504,
  error: null,
  incomplete_details: null,
  instructions: null,
  max_output_tokens: null,
  max_tool_calls: null,
  model: 'gpt-4.1-2025-04-14',
  output: [
    {
      id: 'msg_0cd5d6b8310055d600696a177708b881a1bb53034def764104',
      type: 'message',
      status: 'completed',
      content: [{ type: 'output_text', annotations: [], logprobs: [], text: '- I provide clear answers.' }],
      role: 'assistant',
    },
  ],
  parallel_tool_calls: true,
  previous_response_id: null,
  prompt_cache_key: 'key-123',
  prompt_cache_retention: '24h',
  reasoning: { effort: null, summary: null },
  service_tier: 'default',
  store: true,
  temperature: 1.0,
  text: { format: { type: 'text' }, verbosity: 'medium' },
  tool_choice: 'auto',
  tools: [],
  top_p: 1.0,
  truncation: 'disabled',
  usage: {
    input_tokens: 12033,
    input_tokens_details: { cached_tokens: 11904 },
    output_tokens: 44,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: 12077,
  },
  user: null,
  metadata: {},
};

const geminiResponse = {
  candidates: [
    {
      content: { parts: [{ text: 'The document describes three deployment stages.' }], role: 'model' },
      finishReason: 'STOP',
      index: 0,
    },
  ],
  usageMetadata: {
    promptTokenCount: 18625,
    candidatesTokenCount: 188,
    totalTokenCount: 18913,
    cachedContentTokenCount: 18010,
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: 18625 }],
    cacheTokensDetails: [{ modality: 'TEXT', tokenCount: 18010 }],
    thoughtsTokenCount: 100,
  },
  modelVersion: 'gemini-2.5-flash',
  responseId: 'mKZaaOjRJ9a2nvgP2bqiqQ4',
};

// Proto3 JSON drops zero counts: a request with no cache hit has no cachedContentTokenCount.
const geminiResponseWithoutCache = {
  candidates: [{ content: { parts: [{ text: 'Hi there.' }], role: 'model' }, finishReason: 'STOP', index: 0 }],
  usageMetadata: {
    promptTokenCount: 8,
    candidatesTokenCount: 3,
    totalTokenCount: 11,
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: 8 }],
  },
  modelVersion: 'gemini-2.5-flash',
  responseId: 'nKZaaOjRJ9a2nvgP2bqiqQ5',
};

// vLLM without --enable-prompt-tokens-details serialises prompt_tokens_details as null.
const vllmCompletion = {
  id: 'chatcmpl-906b7ce557684f5a8b61295ad6f2d872',
  object: 'chat.completion',
  created: 1747236359,
  model: 'Qwen/Qwen3-8B',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', reasoning_content: null, content: 'Hello, World!', tool_calls: [] },
      logprobs: null,
      finish_reason: 'stop',
      stop_reason: null,
    },
  ],
  usage: { prompt_tokens: 25, total_tokens: 1049, completion_tokens: 1024, prompt_tokens_details: null },
  prompt_logprobs: null,
  kv_transfer_params: null,
};

const vllmCompletionWithDetails = {
  ...vllmCompletion,
  usage: { prompt_tokens: 24, total_tokens: 97, completion_tokens: 73, prompt_tokens_details: { cached_tokens: 16 } },
};

// ── helpers ─────────────────────────────────────────────────────────────────

function shapeError(fn: () => unknown): UsageShapeError {
  try {
    fn();
  } catch (error) {
    if (error instanceof UsageShapeError) return error;
    throw error;
  }
  throw new Error('expected a UsageShapeError');
}

function sse(events: Array<{ event?: string; data: unknown }>): string {
  return events
    .map((e) => `${e.event === undefined ? '' : `event: ${e.event}\n`}data: ${typeof e.data === 'string' ? e.data : JSON.stringify(e.data)}\n\n`)
    .join('');
}

/** Runs SSE text through the parser in the given chunks and into an accumulator. */
function accumulate(provider: StreamUsageProvider, chunks: string[]) {
  const parser = new SseParser();
  const acc = createStreamUsageAccumulator(provider);
  for (const chunk of chunks) for (const message of parser.feed(chunk)) acc.push(message);
  return { parser, acc, usage: acc.result() };
}

function chunksOf(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

const unknownCapture = {
  cache_read_tokens: null,
  cache_write_tokens: null,
  cache_write_by_ttl: null,
  uncached_tokens: null,
  cache_fields_reported: false,
} satisfies Partial<NormalizedUsage>;

// ── normalizeUsage: whole responses ─────────────────────────────────────────

describe('normalizeUsage on whole responses', () => {
  it('Anthropic: total = input + cache writes + cache reads, with the 5m/1h split', () => {
    expect(normalizeUsage(anthropicMessage)).toEqual({
      provider: 'anthropic',
      model: 'claude-sonnet-4-5-20250929',
      total_prompt_tokens: 6 + 6807 + 23537,
      cache_read_tokens: 23537,
      cache_write_tokens: 6807,
      cache_write_by_ttl: { '5m': 0, '1h': 6807 },
      uncached_tokens: 6,
      output_tokens: 39,
      cache_fields_reported: true,
      complete: true,
    });
  });

  it('OpenAI chat completion: prompt_tokens is inclusive, the rest is uncached', () => {
    expect(normalizeUsage(openaiChatCompletion)).toEqual({
      provider: 'openai-chat',
      model: 'gpt-4o-2024-08-06',
      total_prompt_tokens: 2006,
      cache_read_tokens: 1920,
      cache_write_tokens: null,
      cache_write_by_ttl: null,
      uncached_tokens: 86,
      output_tokens: 300,
      cache_fields_reported: true,
      complete: true,
    });
  });

  it('OpenAI Responses: input_tokens is inclusive', () => {
    expect(normalizeUsage(openaiResponse)).toEqual({
      provider: 'openai-responses',
      model: 'gpt-4.1-2025-04-14',
      total_prompt_tokens: 12033,
      cache_read_tokens: 11904,
      cache_write_tokens: null,
      cache_write_by_ttl: null,
      uncached_tokens: 129,
      output_tokens: 44,
      cache_fields_reported: true,
      complete: true,
    });
  });

  it('OpenAI reasoning models: reasoning tokens are inside completion_tokens / output_tokens, counted once, and billed at the output price', () => {
    // o3 as OpenAI answers: completion_tokens 1,500 of which 1,200 reasoning (chat); the same on the Responses API.
    const chat = { ...openaiChatCompletion, model: 'o3-2025-04-16', usage: { ...openaiChatCompletion.usage, completion_tokens: 1500, total_tokens: 3506, completion_tokens_details: { ...openaiChatCompletion.usage.completion_tokens_details, reasoning_tokens: 1200 } } };
    const responses = { ...openaiResponse, model: 'o3-2025-04-16', usage: { ...openaiResponse.usage, output_tokens: 1500, output_tokens_details: { reasoning_tokens: 1200 }, total_tokens: 13533 } };
    const o3 = new ModelCatalog(loadCatalog()).lookup('o3-2025-04-16').entry;
    for (const body of [chat, responses]) {
      const u = normalizeUsage(body);
      expect(u.output_tokens).toBe(1500);
      // $2 input, $0.50 cached, $8 output (developers.openai.com/api/docs/pricing): 1,500 output tokens are $0.012.
      const cost = costOf(o3, { uncached: u.uncached_tokens!, cacheRead: u.cache_read_tokens!, cacheWrite: {}, output: u.output_tokens! });
      expect(cost).toBeCloseTo((u.uncached_tokens! * 2 + u.cache_read_tokens! * 0.5 + 1500 * 8) / 1e6, 12);
    }
  });

  it('OpenAI Responses: cache_write_tokens, where the model reports it, is a write and not uncached', () => {
    const body = {
      ...openaiResponse,
      usage: { ...openaiResponse.usage, input_tokens_details: { cached_tokens: 11000, cache_write_tokens: 1024 } },
    };
    expect(normalizeUsage(body)).toMatchObject({
      cache_read_tokens: 11000,
      cache_write_tokens: 1024,
      uncached_tokens: 12033 - 11000 - 1024,
    });
  });

  it('Gemini: promptTokenCount is inclusive, thoughts count as output, no writes', () => {
    expect(normalizeUsage(geminiResponse)).toEqual({
      provider: 'gemini',
      model: 'gemini-2.5-flash',
      total_prompt_tokens: 18625,
      cache_read_tokens: 18010,
      cache_write_tokens: null,
      cache_write_by_ttl: null,
      uncached_tokens: 615,
      output_tokens: 288,
      tool_use_prompt_tokens: 0,
      cache_fields_reported: true,
      complete: true,
    });
  });

  it("Gemini toolUsePromptTokenCount: input of its tools' prompts, outside promptTokenCount (totalTokenCount adds it beside), kept apart", () => {
    const usage = { promptTokenCount: 1200, cachedContentTokenCount: 1000, candidatesTokenCount: 40, toolUsePromptTokenCount: 5300, thoughtsTokenCount: 10, totalTokenCount: 1200 + 40 + 5300 + 10 };
    expect(normalizeUsage({ usageMetadata: usage })).toMatchObject({
      total_prompt_tokens: 1200,
      cache_read_tokens: 1000,
      uncached_tokens: 200,
      output_tokens: 50,
      tool_use_prompt_tokens: 5300,
    });
    expect(normalizeUsage({ prompt_token_count: 1200, cached_content_token_count: 1000, tool_use_prompt_token_count: 5300 }, 'gemini')).toMatchObject({ tool_use_prompt_tokens: 5300 });
    // Proto3 leaves a zero out: none beside a promptTokenCount; unknown without one (unknown is not 0).
    expect(normalizeUsage({ promptTokenCount: 8 }, 'gemini').tool_use_prompt_tokens).toBe(0);
    expect(normalizeUsage({ candidatesTokenCount: 3 }, 'gemini').tool_use_prompt_tokens).toBeNull();
    expect(normalizeUsage({ toolUsePromptTokenCount: 70 }, 'gemini')).toMatchObject({ total_prompt_tokens: null, tool_use_prompt_tokens: 70, cache_fields_reported: false });
    // Only Gemini has it.
    expect(normalizeUsage(anthropicMessage)).not.toHaveProperty('tool_use_prompt_tokens');
    for (const bad of [-1, 1.5, '12', 1e9]) expect(shapeError(() => normalizeUsage({ promptTokenCount: 8, toolUsePromptTokenCount: bad }, 'gemini')).path).toBe('/toolUsePromptTokenCount');
    // Bounded with the prompt, as a sum.
    expect(shapeError(() => normalizeUsage({ promptTokenCount: 60_000_000, toolUsePromptTokenCount: 60_000_000 }, 'gemini')).path).toBe('/toolUsePromptTokenCount');
  });

  it('Gemini without cachedContentTokenCount beside promptTokenCount: a read of 0 (proto3 drops zeros)', () => {
    expect(normalizeUsage(geminiResponseWithoutCache)).toMatchObject({
      provider: 'gemini',
      total_prompt_tokens: 8,
      cache_read_tokens: 0,
      uncached_tokens: 8,
      output_tokens: 3,
      cache_fields_reported: true,
    });
  });

  it('Gemini usageMetadata without promptTokenCount either: capture unknown, not 0', () => {
    expect(normalizeUsage({ usageMetadata: { candidatesTokenCount: 3 } }, 'gemini')).toMatchObject({ provider: 'gemini', total_prompt_tokens: null, ...unknownCapture });
  });

  it("Gemini in snake_case (the google-genai Python SDK's model_dump()): the same counts, bare or in a response", () => {
    const camel = normalizeUsage({ promptTokenCount: 6400, cachedContentTokenCount: 6288, candidatesTokenCount: 12 }, 'gemini');
    expect(camel).toMatchObject({ total_prompt_tokens: 6400, cache_read_tokens: 6288, cache_fields_reported: true });
    expect(normalizeUsage({ prompt_token_count: 6400, cached_content_token_count: 6288, candidates_token_count: 12 }, 'gemini')).toEqual(camel);
    expect(normalizeUsage({ candidates: [], usage_metadata: { prompt_token_count: 6400, cached_content_token_count: 6288, candidates_token_count: 12 }, model_version: 'gemini-2.5-pro' }, 'gemini')).toEqual({ ...camel, model: 'gemini-2.5-pro' });
  });

  it('Gemini in snake_case, refused: the pointer and the fields named as the body spells them, not as the REST API does', () => {
    const refused = (input: unknown) => {
      const e = shapeError(() => normalizeUsage(input, 'gemini'));
      return [e.path, e.detail];
    };
    expect(refused({ usage_metadata: { prompt_token_count: 'x' } })).toEqual(['/usage_metadata/prompt_token_count', 'prompt_token_count is not a non-negative integer']);
    expect(refused({ prompt_token_count: 5, cached_content_token_count: 9 })).toEqual(['/cached_content_token_count', 'exceeds prompt_token_count (5)']);
    expect(refused({ candidates: [], usage_metadata: { prompt_token_count: 5, tool_use_prompt_token_count: -1 } })).toEqual(['/usage_metadata/tool_use_prompt_token_count', 'tool_use_prompt_token_count is not a non-negative integer']);
    expect(refused({ candidates: [], usage_metadata: null })[0]).toBe('/usage_metadata');
    // camelCase as it was.
    expect(refused({ usageMetadata: { promptTokenCount: 5, cachedContentTokenCount: 9 } })).toEqual(['/usageMetadata/cachedContentTokenCount', 'exceeds promptTokenCount (5)']);
  });

  it("another provider's counts on a Gemini request are refused, naming what is missing, not kept as unknown for good", () => {
    for (const usage of [{ prompt_tokens: 6400, completion_tokens: 3 }, { input_tokens: 6400, output_tokens: 3 }]) {
      const e = (() => {
        try {
          normalizeUsage(usage, 'gemini');
        } catch (err) {
          return err as UsageShapeError;
        }
        throw new Error('expected a refusal');
      })();
      expect(e).toBeInstanceOf(UsageShapeError);
      expect([e.path, e.detail]).toEqual(['/promptTokenCount', expect.stringContaining('is missing: a Gemini usageMetadata has promptTokenCount')]);
    }
    // An empty usage object, or Gemini's own fields without counts, say nothing: unknown, as before.
    expect(normalizeUsage({}, 'gemini')).toMatchObject({ cache_fields_reported: false });
    expect(normalizeUsage({ candidates: [], usageMetadata: { trafficType: 'ON_DEMAND' } }, 'gemini')).toMatchObject({ cache_fields_reported: false, total_prompt_tokens: null });
  });

  it('vLLM without prompt_tokens_details: detected by its extra fields, capture unknown', () => {
    expect(normalizeUsage(vllmCompletion)).toEqual({
      provider: 'vllm',
      model: 'Qwen/Qwen3-8B',
      total_prompt_tokens: 25,
      output_tokens: 1024,
      complete: true,
      ...unknownCapture,
    });
  });

  it('vLLM with prompt_tokens_details: cached_tokens is a prefix-cache hit', () => {
    expect(normalizeUsage(vllmCompletionWithDetails)).toMatchObject({
      provider: 'vllm',
      total_prompt_tokens: 24,
      cache_read_tokens: 16,
      cache_write_tokens: null,
      uncached_tokens: 8,
      cache_fields_reported: true,
    });
  });

  it('a chat-shaped body takes the vllm/openai-chat label from the hint', () => {
    expect(normalizeUsage(openaiChatCompletion, 'vllm').provider).toBe('vllm');
    expect(normalizeUsage(vllmCompletion, 'openai-chat').provider).toBe('openai-chat');
  });

  it('Anthropic: a message trimmed to id, type and usage (a log line, as in the README) is still a message', () => {
    const trimmed = { id: 'msg_1', type: 'message', usage: { input_tokens: 12, cache_read_input_tokens: 2048, cache_creation_input_tokens: 0, output_tokens: 40 } };
    expect(normalizeUsage(trimmed)).toMatchObject({ provider: 'anthropic', total_prompt_tokens: 12 + 2048, cache_read_tokens: 2048, output_tokens: 40 });
  });

  it("a streamed answer's chunks (a list) are not a usage object: read as a response (listedStreamUsage)", () => {
    expect(() => normalizeUsage([{ usageMetadata: { promptTokenCount: 5 } }])).toThrow(/^a list \(a streamed answer's chunks or events.*is read as "response"/);
  });

  it('a response body without usage is an error at /usage', () => {
    const inProgress = { ...openaiResponse, status: 'in_progress', usage: null };
    expect(shapeError(() => normalizeUsage(inProgress)).path).toBe('/usage');
  });
});

// ── normalizeUsage: bare usage objects, null vs 0 ───────────────────────────

describe('normalizeUsage on bare usage objects', () => {
  it('detects each provider from its own keys', () => {
    expect(normalizeUsage(anthropicMessage.usage).provider).toBe('anthropic');
    expect(normalizeUsage(openaiChatCompletion.usage).provider).toBe('openai-chat');
    expect(normalizeUsage(openaiResponse.usage).provider).toBe('openai-responses');
    expect(normalizeUsage(geminiResponse.usageMetadata).provider).toBe('gemini');
    expect(normalizeUsage({ input_tokens: 12, output_tokens: 7 }).provider).toBe('anthropic');
  });

  it('a bare usage has no model', () => {
    expect(normalizeUsage(openaiChatCompletion.usage).model).toBeNull();
  });

  it('cached_tokens: 0 present is a reported zero', () => {
    const usage = { prompt_tokens: 1200, completion_tokens: 5, total_tokens: 1205, prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 } };
    expect(normalizeUsage(usage)).toMatchObject({
      cache_read_tokens: 0,
      uncached_tokens: 1200,
      cache_fields_reported: true,
    });
  });

  it('chat usage without prompt_tokens_details (typical vLLM) is unknown, not zero', () => {
    const usage = { prompt_tokens: 1200, completion_tokens: 5, total_tokens: 1205 };
    expect(normalizeUsage(usage)).toMatchObject({ total_prompt_tokens: 1200, ...unknownCapture });
    expect(normalizeUsage(usage, 'vllm')).toMatchObject({ provider: 'vllm', ...unknownCapture });
  });

  it('prompt_tokens_details without cached_tokens is still unknown', () => {
    const usage = { prompt_tokens: 50, completion_tokens: 5, total_tokens: 55, prompt_tokens_details: { audio_tokens: 0 } };
    expect(normalizeUsage(usage)).toMatchObject(unknownCapture);
  });

  it('Anthropic without cache fields: capture and total unknown, uncached known', () => {
    expect(normalizeUsage({ input_tokens: 25, output_tokens: 15 })).toEqual({
      provider: 'anthropic',
      model: null,
      total_prompt_tokens: null,
      cache_read_tokens: null,
      cache_write_tokens: null,
      cache_write_by_ttl: null,
      uncached_tokens: 25,
      output_tokens: 15,
      cache_fields_reported: false,
      complete: true,
    });
  });

  it('Anthropic cache fields sent as null are unknown; sent as 0 they are zero', () => {
    const nulls = { input_tokens: 25, output_tokens: 1, cache_creation_input_tokens: null, cache_read_input_tokens: null, cache_creation: null };
    expect(normalizeUsage(nulls)).toMatchObject({ cache_read_tokens: null, cache_fields_reported: false, total_prompt_tokens: null });
    const zeros = { input_tokens: 25, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
    expect(normalizeUsage(zeros)).toMatchObject({
      cache_read_tokens: 0,
      cache_write_tokens: 0,
      cache_write_by_ttl: null,
      total_prompt_tokens: 25,
      cache_fields_reported: true,
    });
  });

  it('Anthropic 5m and 1h writes in one request', () => {
    const usage = {
      input_tokens: 2048,
      cache_read_input_tokens: 1800,
      cache_creation_input_tokens: 556,
      cache_creation: { ephemeral_5m_input_tokens: 456, ephemeral_1h_input_tokens: 100 },
      output_tokens: 503,
    };
    expect(normalizeUsage(usage)).toMatchObject({
      total_prompt_tokens: 2048 + 1800 + 556,
      cache_write_tokens: 556,
      cache_write_by_ttl: { '5m': 456, '1h': 100 },
    });
  });

  it('Anthropic split without the sum: the split is the write count', () => {
    const usage = { input_tokens: 10, output_tokens: 2, cache_read_input_tokens: 0, cache_creation: { ephemeral_5m_input_tokens: 300, ephemeral_1h_input_tokens: 200 } };
    expect(normalizeUsage(usage)).toMatchObject({ cache_write_tokens: 500, total_prompt_tokens: 510 });
  });

  it('Gemini cachedContentTokenCount: 0 present is a reported zero', () => {
    expect(normalizeUsage({ promptTokenCount: 40, candidatesTokenCount: 2, totalTokenCount: 42, cachedContentTokenCount: 0 })).toMatchObject({
      cache_read_tokens: 0,
      uncached_tokens: 40,
      cache_fields_reported: true,
    });
  });
});

// ── normalizeUsage: shape errors ────────────────────────────────────────────

describe('normalizeUsage shape errors', () => {
  it('an unrecognisable object throws at the root', () => {
    const error = shapeError(() => normalizeUsage({ tokens: 12, cached: 3 }));
    expect(error).toBeInstanceOf(UsageShapeError);
    expect(error.path).toBe('');
    expect(error.message).toMatch(/not a recognisable usage/);
  });

  it('non-objects throw', () => {
    for (const input of [null, 42, 'usage', [1, 2]]) expect(shapeError(() => normalizeUsage(input)).path).toBe('');
  });

  it('a malformed count names its path inside the body', () => {
    const body = {
      ...openaiChatCompletion,
      usage: { ...openaiChatCompletion.usage, prompt_tokens_details: { cached_tokens: '1920' } },
    };
    expect(shapeError(() => normalizeUsage(body)).path).toBe('/usage/prompt_tokens_details/cached_tokens');
    expect(shapeError(() => normalizeUsage({ input_tokens: -1, output_tokens: 2 })).path).toBe('/input_tokens');
    expect(shapeError(() => normalizeUsage({ prompt_tokens: 1.5 })).path).toBe('/prompt_tokens');
    expect(shapeError(() => normalizeUsage({ prompt_tokens: 9, prompt_tokens_details: [] })).path).toBe('/prompt_tokens_details');
  });

  it('a response trimmed to its usage member is read inside it, and errors point there', () => {
    expect(normalizeUsage({ usage: { input_tokens: 5, cache_read_input_tokens: 0, cache_creation_input_tokens: 2, output_tokens: 1 }, model: 'claude-x' })).toMatchObject({ provider: 'anthropic', model: 'claude-x', total_prompt_tokens: 7 });
    expect(normalizeUsage({ usage: { prompt_tokens: 7, completion_tokens: 1 } }, 'openai-chat')).toMatchObject({ provider: 'openai-chat', total_prompt_tokens: 7 });
    const negative = shapeError(() => normalizeUsage({ usage: { prompt_tokens: -3, completion_tokens: 1 } }, 'openai-chat'));
    expect([negative.path, negative.detail]).toEqual(['/usage/prompt_tokens', 'prompt_tokens is not a non-negative integer']);
    expect(shapeError(() => normalizeUsage({ usage: { tokens: 1 } })).path).toBe('/usage');
  });

  it('a count past any model context (100M tokens) is a broken report, refused with its path', () => {
    const absurd = shapeError(() => normalizeUsage({ input_tokens: 3, cache_creation_input_tokens: 0, cache_read_input_tokens: 1e15, output_tokens: 1 }));
    expect(absurd.path).toBe('/cache_read_input_tokens');
    expect(absurd.message).toMatch(/more tokens than any model's context holds/);
    expect(normalizeUsage({ prompt_tokens: 100_000_000, completion_tokens: 1 }).total_prompt_tokens).toBe(100_000_000);
    expect(shapeError(() => normalizeUsage({ prompt_tokens: 100_000_001, completion_tokens: 1 })).path).toBe('/prompt_tokens');
    // Anthropic's total is a sum: each part under the cap, the total over it, is refused too.
    const summed = shapeError(() => normalizeUsage({ input_tokens: 99_000_000, cache_read_input_tokens: 99_000_000, cache_creation_input_tokens: 99_000_000, output_tokens: 1 }));
    expect([summed.path, summed.detail]).toEqual(['', "the prompt total is 297000000 tokens: more than any model's context holds (at most 100000000)"]);
    // A missing count leaves the total unknown, not the bound unchecked.
    const partial = shapeError(() => normalizeUsage({ input_tokens: 60_000_000, cache_read_input_tokens: 60_000_000, output_tokens: 1 }));
    expect(partial.detail).toBe("the prompt total is at least 120000000 tokens: more than any model's context holds (at most 100000000)");
  });

  it('an Anthropic TTL split that does not sum to cache_creation_input_tokens is refused', () => {
    const split = shapeError(() =>
      normalizeUsage({ input_tokens: 3, cache_read_input_tokens: 0, cache_creation_input_tokens: 50, cache_creation: { ephemeral_5m_input_tokens: 30, ephemeral_1h_input_tokens: 30 }, output_tokens: 1 }),
    );
    expect([split.path, split.detail]).toEqual(['/cache_creation', 'its TTLs sum to 60, not cache_creation_input_tokens (50)']);
    expect(normalizeUsage({ input_tokens: 3, cache_read_input_tokens: 0, cache_creation_input_tokens: 60, cache_creation: { ephemeral_5m_input_tokens: 30, ephemeral_1h_input_tokens: 30 } }).cache_write_by_ttl).toEqual({ '5m': 30, '1h': 30 });
  });

  it('more cached tokens than prompt tokens is incoherent', () => {
    const error = shapeError(() => normalizeUsage({ prompt_tokens: 10, prompt_tokens_details: { cached_tokens: 11 } }));
    expect(error.path).toBe('/prompt_tokens_details');
  });

  it('Anthropic and Responses markers together are ambiguous without a hint', () => {
    const mixed = { input_tokens: 10, output_tokens: 2, cache_read_input_tokens: 0, total_tokens: 12 };
    expect(shapeError(() => normalizeUsage(mixed)).message).toMatch(/hint/);
    expect(normalizeUsage(mixed, 'anthropic').cache_read_tokens).toBe(0);
  });

  it('keys of two families are ambiguous', () => {
    expect(shapeError(() => normalizeUsage({ prompt_tokens: 10, promptTokenCount: 10 })).message).toMatch(/several providers/);
  });

  it('a hint that does not fit the shape throws at the missing field', () => {
    expect(shapeError(() => normalizeUsage(openaiChatCompletion.usage, 'anthropic')).path).toBe('/input_tokens');
    expect(shapeError(() => normalizeUsage(anthropicMessage, 'openai-responses')).path).toBe('');
  });
});

// ── extractDiagnostics ──────────────────────────────────────────────────────

describe('extractDiagnostics', () => {
  it('Anthropic diagnostics.cache_miss_reason', () => {
    expect(extractDiagnostics(anthropicMessage)).toEqual({
      provider: 'anthropic',
      raw: { cache_miss_reason: { type: 'messages_changed', cache_missed_input_tokens: 6455 } },
      cache_miss_reason: 'messages_changed',
    });
  });

  it('Anthropic comparison still pending: diagnostics without a reason', () => {
    const diagnostics = extractDiagnostics({ ...anthropicMessage, diagnostics: { cache_miss_reason: null } });
    expect(diagnostics).toEqual({ provider: 'anthropic', raw: { cache_miss_reason: null } });
  });

  it('OpenAI prompt_cache_diagnostics: a miss carries its reason, a hit none', () => {
    const miss = { type: 'cache_miss', reason: 'tools_changed', cache_missed_tokens: 5629, comparison_reusable_tokens: 5629 };
    expect(extractDiagnostics({ ...openaiResponse, prompt_cache_diagnostics: miss })).toEqual({
      provider: 'openai-responses',
      raw: miss,
      cache_miss_reason: 'tools_changed',
    });
    expect(extractDiagnostics({ ...openaiResponse, prompt_cache_diagnostics: { type: 'cache_hit' } })).toEqual({
      provider: 'openai-responses',
      raw: { type: 'cache_hit' },
    });
    expect(extractDiagnostics({ ...openaiResponse, prompt_cache_diagnostics: { type: 'comparison_response_not_found' } })?.cache_miss_reason).toBe(
      'comparison_response_not_found',
    );
  });

  it('null when the response carries none', () => {
    expect(extractDiagnostics(openaiChatCompletion)).toBeNull();
    expect(extractDiagnostics({ ...anthropicMessage, diagnostics: null })).toBeNull();
    expect(extractDiagnostics('not a body')).toBeNull();
  });
});

// ── streams ─────────────────────────────────────────────────────────────────

const anthropicStart = {
  type: 'message_start',
  message: {
    id: 'msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY',
    type: 'message',
    role: 'assistant',
    content: [],
    model: 'claude-sonnet-4-5-20250929',
    stop_reason: null,
    stop_sequence: null,
    usage: {
      input_tokens: 25,
      cache_creation_input_tokens: 1200,
      cache_read_input_tokens: 30000,
      cache_creation: { ephemeral_5m_input_tokens: 1200, ephemeral_1h_input_tokens: 0 },
      output_tokens: 1,
      service_tier: 'standard',
    },
    diagnostics: { cache_miss_reason: { type: 'tools_changed', cache_missed_input_tokens: 321 } },
  },
};

const anthropicBody = [
  { event: 'content_block_start', data: { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } } },
  { event: 'ping', data: { type: 'ping' } },
  { event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello' } } },
  { event: 'content_block_delta', data: { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: '!' } } },
  { event: 'content_block_stop', data: { type: 'content_block_stop', index: 0 } },
];

const anthropicDelta = (usage: Record<string, unknown>) => ({
  event: 'message_delta',
  data: { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage },
});

describe('Anthropic stream', () => {
  it('takes usage from message_start and the final output count from message_delta', () => {
    const text = sse([
      { event: 'message_start', data: anthropicStart },
      ...anthropicBody,
      anthropicDelta({ output_tokens: 15 }),
      { event: 'message_stop', data: { type: 'message_stop' } },
    ]);
    const { acc, usage } = accumulate('anthropic', chunksOf(text, 7));
    expect(usage).toEqual({
      provider: 'anthropic',
      model: 'claude-sonnet-4-5-20250929',
      total_prompt_tokens: 25 + 1200 + 30000,
      cache_read_tokens: 30000,
      cache_write_tokens: 1200,
      cache_write_by_ttl: { '5m': 1200, '1h': 0 },
      uncached_tokens: 25,
      output_tokens: 15,
      cache_fields_reported: true,
      complete: true,
    });
    expect(acc.diagnostics()?.cache_miss_reason).toBe('tools_changed');
  });

  it('message_delta counts are cumulative: each one overwrites, never adds', () => {
    const acc = createStreamUsageAccumulator('anthropic');
    acc.push({ event: 'message_start', data: anthropicStart });
    // Current API: deltas repeat the input side with cumulative counts, possibly revised.
    acc.push(anthropicDelta({ input_tokens: 25, cache_creation_input_tokens: 1200, cache_read_input_tokens: 30000, output_tokens: 15 }));
    acc.push(anthropicDelta({ input_tokens: 25, cache_creation_input_tokens: 1250, cache_read_input_tokens: 30000, output_tokens: 40 }));
    // A null means "not carried here" and keeps the earlier figure.
    acc.push(anthropicDelta({ input_tokens: null, cache_creation_input_tokens: null, cache_read_input_tokens: null, output_tokens: 42 }));
    expect(acc.result()).toMatchObject({
      total_prompt_tokens: 25 + 1250 + 30000,
      cache_read_tokens: 30000,
      cache_write_tokens: 1250,
      // message_start's split summed to 1,200: it no longer describes the write.
      cache_write_by_ttl: null,
      output_tokens: 42,
      complete: true,
    });
  });

  it('accepts raw data strings straight from the parser', () => {
    const acc = createStreamUsageAccumulator('anthropic');
    acc.push({ event: 'message_start', data: JSON.stringify(anthropicStart) });
    acc.push({ event: 'message_delta', data: JSON.stringify(anthropicDelta({ output_tokens: 3 }).data) });
    expect(acc.result()).toMatchObject({ output_tokens: 3, complete: true });
  });

  it('an interrupted stream (no message_delta) leaves capture unknown', () => {
    const text = sse([{ event: 'message_start', data: anthropicStart }, ...anthropicBody.slice(0, 3)]);
    const { usage } = accumulate('anthropic', [text]);
    expect(usage).toEqual({
      provider: 'anthropic',
      model: 'claude-sonnet-4-5-20250929',
      total_prompt_tokens: 25 + 1200 + 30000,
      output_tokens: null,
      complete: false,
      ...unknownCapture,
    });
  });

  it('an error event mid-stream leaves the request incomplete', () => {
    const acc = createStreamUsageAccumulator('anthropic');
    acc.push({ event: 'message_start', data: anthropicStart });
    acc.push({ event: 'error', data: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } });
    expect(acc.result()).toMatchObject({ complete: false, cache_fields_reported: false });
  });

  it('a malformed final count is a shape error with its path in the event', () => {
    const acc = createStreamUsageAccumulator('anthropic');
    acc.push({ event: 'message_start', data: anthropicStart });
    expect(shapeError(() => acc.push(anthropicDelta({ output_tokens: 'many' }))).path).toBe('/usage/output_tokens');
  });

  it('an update that cannot be read is refused whole, and leaves the usage unknown, not the update before it', () => {
    const acc = createStreamUsageAccumulator('anthropic');
    acc.push({ event: 'message_start', data: anthropicStart });
    acc.push(anthropicDelta({ input_tokens: 25, cache_creation_input_tokens: 1200, cache_read_input_tokens: 30000, output_tokens: 15 }));
    expect(acc.result()).toMatchObject({ total_prompt_tokens: 31225, complete: true });
    expect(shapeError(() => acc.push(anthropicDelta({ input_tokens: 5000, cache_read_input_tokens: 4000, output_tokens: -1 }))).path).toBe('/usage/output_tokens');
    expect(acc.result()).toEqual({ provider: 'anthropic', model: 'claude-sonnet-4-5-20250929', total_prompt_tokens: null, output_tokens: null, complete: true, ...unknownCapture });
    // The raw report is the usage as received, the refused update included.
    expect(acc.raw()).toMatchObject({ input_tokens: 5000, cache_read_input_tokens: 4000, output_tokens: -1 });

    // Counts each within bounds whose sum is past any context are refused when they arrive, not when the usage is read.
    const big = createStreamUsageAccumulator('anthropic');
    big.push({ event: 'message_start', data: anthropicStart });
    expect(shapeError(() => big.push(anthropicDelta({ input_tokens: 60_000_000, cache_read_input_tokens: 60_000_000, output_tokens: 1 }))).path).toBe('/usage');
    expect(big.result()).toMatchObject({ complete: true, total_prompt_tokens: null, cache_fields_reported: false });
  });
});

const chatChunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
  id: 'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG',
  object: 'chat.completion.chunk',
  created: 1741570283,
  model: 'gpt-4o-2024-08-06',
  service_tier: 'default',
  system_fingerprint: 'fp_eb9dce56a8',
  choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  usage: null,
});

const chatUsageChunk = {
  id: 'chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG',
  object: 'chat.completion.chunk',
  created: 1741570283,
  model: 'gpt-4o-2024-08-06',
  service_tier: 'default',
  system_fingerprint: 'fp_eb9dce56a8',
  choices: [],
  usage: {
    prompt_tokens: 2006,
    completion_tokens: 3,
    total_tokens: 2009,
    prompt_tokens_details: { cached_tokens: 1920, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  },
};

const chatContent = [
  { data: chatChunk({ role: 'assistant', content: '', refusal: null }) },
  { data: chatChunk({ content: 'Hello' }) },
  { data: chatChunk({ content: '!' }) },
  { data: chatChunk({}, 'stop') },
];

describe('OpenAI chat stream', () => {
  it('takes usage from the final chunk with empty choices (stream_options.include_usage)', () => {
    const text = sse([...chatContent, { data: chatUsageChunk }, { data: '[DONE]' }]);
    const { parser, usage } = accumulate('openai-chat', chunksOf(text, 13));
    expect(usage).toEqual({
      provider: 'openai-chat',
      model: 'gpt-4o-2024-08-06',
      total_prompt_tokens: 2006,
      cache_read_tokens: 1920,
      cache_write_tokens: null,
      cache_write_by_ttl: null,
      uncached_tokens: 86,
      output_tokens: 3,
      cache_fields_reported: true,
      complete: true,
    });
    expect(parser.done).toBe(true);
  });

  it('a stream cut before the usage chunk is incomplete', () => {
    const { usage } = accumulate('openai-chat', [sse(chatContent.slice(0, 2))]);
    expect(usage).toEqual({
      provider: 'openai-chat',
      model: 'gpt-4o-2024-08-06',
      total_prompt_tokens: null,
      output_tokens: null,
      complete: false,
      ...unknownCapture,
    });
  });

  it('vLLM: final usage without prompt_tokens_details is complete but capture unknown', () => {
    const usageChunk = {
      id: 'chatcmpl-3c6d8f0e',
      object: 'chat.completion.chunk',
      created: 1747236359,
      model: 'Qwen/Qwen3-8B',
      choices: [],
      usage: { prompt_tokens: 25, total_tokens: 40, completion_tokens: 15 },
    };
    const { usage } = accumulate('vllm', [sse([{ data: usageChunk }, { data: '[DONE]' }])]);
    expect(usage).toMatchObject({ provider: 'vllm', complete: true, total_prompt_tokens: 25, ...unknownCapture });
  });

  it('vLLM continuous usage on content chunks does not complete the stream', () => {
    const running = {
      ...chatChunk({ content: 'Hi' }),
      model: 'Qwen/Qwen3-8B',
      usage: { prompt_tokens: 24, total_tokens: 25, completion_tokens: 1, prompt_tokens_details: { cached_tokens: 16 } },
    };
    const acc = createStreamUsageAccumulator('vllm');
    acc.push({ data: running });
    expect(acc.result()).toMatchObject({ complete: false, cache_fields_reported: false });
    acc.push({ data: { ...running, choices: [], usage: { ...running.usage, completion_tokens: 9, total_tokens: 33 } } });
    expect(acc.result()).toMatchObject({ complete: true, cache_read_tokens: 16, output_tokens: 9 });
  });
});

const responseShell = {
  id: 'resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654',
  object: 'response',
  created_at: 1741290958,
  status: 'in_progress',
  error: null,
  incomplete_details: null,
  instructions: 'You are a helpful assistant.',
  model: 'gpt-4.1-2025-04-14',
  output: [],
  previous_response_id: null,
  store: true,
  usage: null,
  metadata: {},
};

const responseEvents = [
  { event: 'response.created', data: { type: 'response.created', sequence_number: 0, response: responseShell } },
  { event: 'response.in_progress', data: { type: 'response.in_progress', sequence_number: 1, response: responseShell } },
  {
    event: 'response.output_text.delta',
    data: { type: 'response.output_text.delta', sequence_number: 4, item_id: 'msg_67c9fdcf37fc8190ba82116e33fb28c5', output_index: 0, content_index: 0, delta: 'Hi' },
  },
];

const responseCompleted = {
  event: 'response.completed',
  data: {
    type: 'response.completed',
    sequence_number: 9,
    response: {
      ...responseShell,
      status: 'completed',
      usage: {
        input_tokens: 37,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens: 11,
        output_tokens_details: { reasoning_tokens: 0 },
        total_tokens: 48,
      },
      prompt_cache_diagnostics: { type: 'cache_miss', reason: 'input_changed', comparison_reusable_tokens: 1000, cache_missed_tokens: 37 },
    },
  },
};

describe('OpenAI Responses stream', () => {
  it('takes usage from response.completed', () => {
    const { acc, usage } = accumulate('openai-responses', chunksOf(sse([...responseEvents, responseCompleted]), 5));
    expect(usage).toEqual({
      provider: 'openai-responses',
      model: 'gpt-4.1-2025-04-14',
      total_prompt_tokens: 37,
      cache_read_tokens: 0,
      cache_write_tokens: null,
      cache_write_by_ttl: null,
      uncached_tokens: 37,
      output_tokens: 11,
      cache_fields_reported: true,
      complete: true,
    });
    expect(acc.diagnostics()?.cache_miss_reason).toBe('input_changed');
  });

  it('a stream cut before response.completed is incomplete', () => {
    const { usage } = accumulate('openai-responses', [sse(responseEvents)]);
    expect(usage).toMatchObject({ complete: false, model: 'gpt-4.1-2025-04-14', total_prompt_tokens: null, ...unknownCapture });
  });
});

// ── SSE parser ──────────────────────────────────────────────────────────────

describe('SseParser', () => {
  it('joins events split across chunks', () => {
    const parser = new SseParser();
    expect(parser.feed('event: message_st')).toEqual([]);
    expect(parser.feed('art\ndata: {"a"')).toEqual([]);
    expect(parser.feed(':1}\n')).toEqual([]);
    expect(parser.feed('\n')).toEqual([{ event: 'message_start', data: '{"a":1}' }]);
  });

  it('handles CRLF, CR, and a CRLF split between two chunks', () => {
    const parser = new SseParser();
    expect(parser.feed('data: one\r\n\r')).toEqual([{ data: 'one' }]);
    expect(parser.feed('\ndata: two\r\rdata: three\r')).toEqual([{ data: 'two' }]);
    // This LF completes the CRLF above; read as a blank line it would split the event.
    expect(parser.feed('\ndata: four\r\n\r\n')).toEqual([{ data: 'three\nfour' }]);
  });

  it('joins multi-line data, skips comments, strips one leading space', () => {
    const text = ': keep-alive\n\ndata:first\ndata:  second\n: comment inside\ndata\nid: 7\nretry: 1000\n\n';
    expect(new SseParser().feed(text)).toEqual([{ data: 'first\n second\n' }]);
  });

  it('drops events without data and a leading BOM', () => {
    expect(new SseParser().feed('\uFEFFevent: ping\n\ndata: x\n\n')).toEqual([{ data: 'x' }]);
  });

  it('emits [DONE] and records it', () => {
    const parser = new SseParser();
    expect(parser.feed('data: {"x":1}\n\ndata: [DONE]\n\n')).toEqual([{ data: '{"x":1}' }, { data: '[DONE]' }]);
    expect(parser.done).toBe(true);
  });

  it('keeps an unterminated event until its blank line arrives', () => {
    const parser = new SseParser();
    expect(parser.feed('data: half')).toEqual([]);
    expect(parser.feed('')).toEqual([]);
    expect(parser.feed('\n\n')).toEqual([{ data: 'half' }]);
  });

  // Any split of a valid SSE text into chunks yields the same events as the whole text.
  it('property: chunking never changes the events', () => {
    const lineText = fc.string({ unit: 'binary', maxLength: 12 }).filter((s) => !/[\r\n]/.test(s));
    const eventName = fc.stringMatching(/^[a-z_.]{1,16}$/);
    const terminator = fc.constantFrom('\n', '\r\n', '\r');
    const message = fc.record({
      event: fc.option(eventName, { nil: undefined }),
      data: fc.array(lineText, { minLength: 1, maxLength: 4 }),
      comment: fc.option(lineText, { nil: undefined }),
    });

    fc.assert(
      fc.property(fc.array(message, { maxLength: 6 }), fc.infiniteStream(terminator), fc.array(fc.nat(), { maxLength: 10 }), (messages, ends, cuts) => {
        let text = '';
        let previous = '';
        const line = (content: string) => {
          let end = ends.next().value as string;
          // "\r" then an empty "\n"-terminated line reads as one CRLF: that is SSE, not a parser bug.
          if (previous === '\r' && content === '' && end === '\n') end = '\r\n';
          text += content + end;
          previous = end;
        };
        const expected: SseMessage[] = [];
        for (const m of messages) {
          if (m.comment !== undefined) line(`:${m.comment}`);
          if (m.event !== undefined) line(`event: ${m.event}`);
          for (const d of m.data) line(`data: ${d}`);
          line('');
          expected.push(m.event === undefined ? { data: m.data.join('\n') } : { event: m.event, data: m.data.join('\n') });
        }

        const whole = new SseParser().feed(text);
        expect(whole).toEqual(expected);

        const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const parser = new SseParser();
        const split: SseMessage[] = [];
        let from = 0;
        for (const p of [...points, text.length]) {
          split.push(...parser.feed(text.slice(from, p)));
          from = p;
        }
        expect(split).toEqual(expected);
      }),
      { numRuns: 500 },
    );
  });
});
