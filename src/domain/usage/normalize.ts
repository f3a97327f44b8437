// Provider usage shapes → NormalizedUsage (the table in DESIGN.md, "Usage
// shapes differ"). Rules that matter for money:
//  - a field that is absent or null is unknown (null), never 0;
//  - Anthropic's input_tokens excludes cache reads and writes, while OpenAI's
//    prompt_tokens / input_tokens and Gemini's promptTokenCount include them.
// Paths in errors are JSON Pointers (RFC 6901) into the value that was passed in.

import type { NormalizedUsage, ProviderDiagnostics, UsageProvider } from './types';
import { isRecord } from '../records';

export class UsageShapeError extends Error {
  readonly code = 'usage_shape';

  constructor(
    /** JSON Pointer to the offending value; "" is the input itself. */
    readonly path: string,
    /** What is wrong, without the place (an API error gives the place as its pointer). */
    readonly detail: string,
  ) {
    super(`${detail} (at ${path === '' ? 'the root' : path})`);
    this.name = 'UsageShapeError';
  }
}

type Json = Record<string, unknown>;

interface Located {
  provider: UsageProvider;
  usage: Json;
  path: string;
  model: string | null;
}

const CHAT_OBJECTS = new Set(['chat.completion', 'chat.completion.chunk', 'text_completion']);

// Keys that only one family's bare usage object carries.
const GEMINI_KEYS = ['promptTokenCount', 'candidatesTokenCount', 'totalTokenCount', 'cachedContentTokenCount', 'toolUsePromptTokenCount'];
const ANTHROPIC_KEYS = ['cache_creation_input_tokens', 'cache_read_input_tokens', 'cache_creation'];
// Anthropic usage never carries a total; Responses usage always has the details objects.
const RESPONSES_KEYS = ['input_tokens_details', 'output_tokens_details', 'total_tokens'];

/**
 * Normalises either a bare usage object or a whole non-streaming response body
 * (Anthropic message, OpenAI chat completion, OpenAI response, Gemini
 * generateContent response, vLLM completion). `hint` skips detection but the
 * shape must still fit the hinted provider.
 */
/** The usage shape a rendered request's format answers with (undefined for a format we do not know). */
export function usageProviderOf(format: string): UsageProvider | undefined {
  return format === 'anthropic' || format === 'openai-chat' || format === 'openai-responses' || format === 'gemini' ? format : undefined;
}

export function normalizeUsage(input: unknown, hint?: UsageProvider): NormalizedUsage {
  const camel = geminiCamelCase(input);
  try {
    const located = locateUsage(camel, hint);
    return normalizeUsageAs(located.provider, located.usage, { path: located.path, model: located.model });
  } catch (e) {
    if (camel !== input && e instanceof UsageShapeError) throw inSnakeCase(e, input);
    throw e;
  }
}

/** Normalises a usage object already known to come from `provider` (used by the stream accumulators). */
export function normalizeUsageAs(
  provider: UsageProvider,
  usage: unknown,
  options: { path?: string; model?: string | null } = {},
): NormalizedUsage {
  const path = options.path ?? '';
  const model = options.model ?? null;
  if (!isRecord(usage)) throw new UsageShapeError(path, 'usage is not an object');
  switch (provider) {
    case 'anthropic':
      return anthropicUsage(usage, path, model);
    case 'openai-chat':
    case 'vllm':
      return inclusiveUsage(provider, usage, path, model, {
        total: 'prompt_tokens',
        details: 'prompt_tokens_details',
        output: 'completion_tokens',
      });
    case 'openai-responses':
      return inclusiveUsage(provider, usage, path, model, {
        total: 'input_tokens',
        details: 'input_tokens_details',
        output: 'output_tokens',
      });
    case 'gemini':
      return geminiUsage(usage, path, model);
  }
}

/** The provider's own cache-miss explanation on a response body, or null when it carries none. */
export function extractDiagnostics(response: unknown): ProviderDiagnostics | null {
  if (!isRecord(response)) return null;
  // Streams carry the same objects one level down.
  if (response.type === 'message_start' && isRecord(response.message)) return extractDiagnostics(response.message);
  if (typeof response.type === 'string' && response.type.startsWith('response.') && isRecord(response.response)) {
    return extractDiagnostics(response.response);
  }

  if (isRecord(response.diagnostics)) {
    const reason = response.diagnostics.cache_miss_reason;
    // cache_miss_reason is null while Anthropic's comparison is still running.
    const type = isRecord(reason) && typeof reason.type === 'string' ? reason.type : undefined;
    return withReason({ provider: 'anthropic', raw: response.diagnostics }, type);
  }

  if (isRecord(response.prompt_cache_diagnostics)) {
    const raw = response.prompt_cache_diagnostics;
    const provider: UsageProvider =
      typeof response.object === 'string' && CHAT_OBJECTS.has(response.object) ? 'openai-chat' : 'openai-responses';
    let reason: string | undefined;
    if (raw.type === 'cache_miss') reason = typeof raw.reason === 'string' ? raw.reason : 'cache_miss';
    // "unavailable" and "comparison_response_not_found" explain why there is no verdict.
    else if (typeof raw.type === 'string' && raw.type !== 'cache_hit') reason = raw.type;
    return withReason({ provider, raw }, reason);
  }

  return null;
}

function withReason(diagnostics: ProviderDiagnostics, reason: string | undefined): ProviderDiagnostics {
  return reason === undefined ? diagnostics : { ...diagnostics, cache_miss_reason: reason };
}

// ── locating the usage object ───────────────────────────────────────────────

/** The usage object in a response body (or the object itself, when it is one), as normalizeUsage finds it. */
export function usageObjectOf(input: unknown, hint?: UsageProvider): Record<string, unknown> {
  // As received: a snake_case Gemini body keeps its own spelling.
  if (isRecord(input) && isRecord(input.usage_metadata) && !('usageMetadata' in input)) return input.usage_metadata;
  return locateUsage(geminiCamelCase(input), hint).usage;
}

/** A list is a streamed answer's chunks or events (Gemini's streamGenerateContent array): read where a response is. */
export const STREAMED_LIST = 'a list (a streamed answer\'s chunks or events, as Gemini\'s streamGenerateContent returns them) is read as "response", not as a usage object';

function locateUsage(input: unknown, hint: UsageProvider | undefined): Located {
  if (!isRecord(input))
    throw new UsageShapeError(
      '',
      Array.isArray(input) ? STREAMED_LIST : 'expected a usage object or a response body',
    );

  const body = bodyKind(input);
  if (body !== null) {
    const provider = reconcileHint(body.provider, hint);
    const usage = input[body.key];
    if (!isRecord(usage)) {
      throw new UsageShapeError(pointer('', body.key), `${body.provider} response carries no usage`);
    }
    const model = input[body.modelKey];
    return { provider, usage, path: pointer('', body.key), model: typeof model === 'string' ? model : null };
  }

  // A response trimmed to its usage (`{"usage": {…}}`, no envelope fields): the usage is inside it.
  const inner = isRecord(input.usage) && !hasCounts(input) ? 'usage' : isRecord(input.usageMetadata) ? 'usageMetadata' : null;
  if (inner !== null) {
    const usage = input[inner] as Json;
    const model = input.model ?? input.modelVersion;
    return { provider: inner === 'usageMetadata' ? reconcileHint('gemini', hint) : (hint ?? classifyBareUsage(usage, `/${inner}`)), usage, path: `/${inner}`, model: typeof model === 'string' ? model : null };
  }
  const provider = hint ?? classifyBareUsage(input);
  return { provider, usage: input, path: '', model: null };
}

/** Whether an object holds token counts itself (a bare usage object), rather than a usage member. */
function hasCounts(input: Json): boolean {
  return ['input_tokens', 'prompt_tokens', 'promptTokenCount'].some((k) => k in input);
}

interface BodyKind {
  provider: UsageProvider;
  key: 'usage' | 'usageMetadata';
  modelKey: 'model' | 'modelVersion';
}

function bodyKind(input: Json): BodyKind | null {
  if (typeof input.object === 'string') {
    if (CHAT_OBJECTS.has(input.object)) {
      return { provider: looksLikeVllm(input) ? 'vllm' : 'openai-chat', key: 'usage', modelKey: 'model' };
    }
    if (input.object === 'response') return { provider: 'openai-responses', key: 'usage', modelKey: 'model' };
  }
  // An Anthropic message: `type` says so (a trimmed log line may have lost `role` and `content`).
  if (input.type === 'message' && 'usage' in input) {
    return { provider: 'anthropic', key: 'usage', modelKey: 'model' };
  }
  if ('usageMetadata' in input || ('candidates' in input && Array.isArray(input.candidates))) {
    return { provider: 'gemini', key: 'usageMetadata', modelKey: 'modelVersion' };
  }
  return null;
}

// vLLM's OpenAI-compatible server adds fields OpenAI never sends (prompt_logprobs
// is serialised even when null; kv_transfer_params with disaggregated prefill).
function looksLikeVllm(body: Json): boolean {
  return 'prompt_logprobs' in body || 'kv_transfer_params' in body;
}

function reconcileHint(detected: UsageProvider, hint: UsageProvider | undefined): UsageProvider {
  if (hint === undefined || hint === detected) return detected;
  // vLLM speaks the chat completion shape; only the caller can always tell them apart.
  const chatLike = (p: UsageProvider) => p === 'openai-chat' || p === 'vllm';
  if (chatLike(hint) && chatLike(detected)) return hint;
  throw new UsageShapeError('', `response body looks like ${detected}, not ${hint}`);
}

function classifyBareUsage(usage: Json, path = ''): UsageProvider {
  const has = (keys: string[]) => keys.some((k) => k in usage);
  const families: UsageProvider[] = [];
  if (has(GEMINI_KEYS)) families.push('gemini');
  if ('prompt_tokens' in usage) families.push('openai-chat');
  if ('input_tokens' in usage) {
    const anthropic = has(ANTHROPIC_KEYS);
    const responses = has(RESPONSES_KEYS);
    if (anthropic && responses) {
      throw new UsageShapeError(path, 'usage mixes Anthropic and OpenAI Responses fields; pass a provider hint');
    }
    families.push(responses ? 'openai-responses' : 'anthropic');
  }
  const [only, ...rest] = families;
  if (only === undefined) {
    throw new UsageShapeError(
      path,
      'not a recognisable usage: expected input_tokens (Anthropic, OpenAI Responses), prompt_tokens (OpenAI chat, vLLM) or promptTokenCount (Gemini)',
    );
  }
  if (rest.length > 0) {
    throw new UsageShapeError(path, `usage matches several providers (${families.join(', ')}); pass a provider hint`);
  }
  return only;
}

// ── per-provider rules ──────────────────────────────────────────────────────

function anthropicUsage(usage: Json, path: string, model: string | null): NormalizedUsage {
  const input = requireCount(usage, 'input_tokens', path);
  const read = readCount(usage, 'cache_read_input_tokens', path);
  const byTtl = anthropicTtlSplit(usage.cache_creation, pointer(path, 'cache_creation'));
  // An old proxy may forward the split without the sum; the split then is the sum.
  const write = readCount(usage, 'cache_creation_input_tokens', path) ?? (byTtl === null ? null : sum(byTtl));
  // The split is how the write divides by TTL: another sum would price writes that did not happen.
  const writeCount = readCount(usage, 'cache_creation_input_tokens', path);
  if (byTtl !== null && writeCount !== null && sum(byTtl) !== writeCount)
    throw new UsageShapeError(pointer(path, 'cache_creation'), `its TTLs sum to ${sum(byTtl)}, not cache_creation_input_tokens (${writeCount})`);
  // Each count is bounded; so is their sum, the prompt's total (one per count would allow three times the cap),
  // also when a count is missing and the total stays unknown.
  const total = read !== null && write !== null ? input + read + write : null;
  const atLeast = input + (read ?? 0) + (write ?? 0);
  if (atLeast > MAX_TOKEN_COUNT) throw new UsageShapeError(path, `the prompt total is ${total === null ? 'at least ' : ''}${atLeast} tokens: more than any model's context holds (at most ${MAX_TOKEN_COUNT})`);
  return {
    provider: 'anthropic',
    model,
    total_prompt_tokens: total,
    cache_read_tokens: read,
    cache_write_tokens: write,
    cache_write_by_ttl: byTtl,
    uncached_tokens: input,
    output_tokens: readCount(usage, 'output_tokens', path),
    cache_fields_reported: read !== null,
    complete: true,
  };
}

// cache_creation: { ephemeral_5m_input_tokens, ephemeral_1h_input_tokens }; any
// further ephemeral_<ttl>_input_tokens key is kept under its own label.
function anthropicTtlSplit(value: unknown, path: string): Record<string, number> | null {
  if (value === undefined || value === null) return null;
  if (!isRecord(value)) throw new UsageShapeError(path, 'cache_creation is not an object');
  const split: Record<string, number> = {};
  for (const key of Object.keys(value)) {
    const match = /^ephemeral_(.+)_input_tokens$/.exec(key);
    const count = readCount(value, key, path);
    if (match?.[1] !== undefined && count !== null) split[match[1]] = count;
  }
  return Object.keys(split).length > 0 ? split : null;
}

interface InclusiveKeys {
  total: string;
  details: string;
  output: string;
}

// OpenAI chat, OpenAI Responses and vLLM: the total includes cached tokens, and
// the cache counts live in a details object that vLLM leaves out (or null)
// unless started with --enable-prompt-tokens-details.
function inclusiveUsage(
  provider: UsageProvider,
  usage: Json,
  path: string,
  model: string | null,
  keys: InclusiveKeys,
): NormalizedUsage {
  const total = requireCount(usage, keys.total, path);
  const detailsPath = pointer(path, keys.details);
  const details = usage[keys.details];
  if (details !== undefined && details !== null && !isRecord(details)) {
    throw new UsageShapeError(detailsPath, `${keys.details} is not an object`);
  }
  const read = isRecord(details) ? readCount(details, 'cached_tokens', detailsPath) : null;
  // vLLM reports no writes; OpenAI only on models that bill them.
  const write = isRecord(details) && provider !== 'vllm' ? readCount(details, 'cache_write_tokens', detailsPath) : null;
  if ((read ?? 0) + (write ?? 0) > total) {
    throw new UsageShapeError(detailsPath, `cached and written tokens exceed ${keys.total} (${total})`);
  }
  return {
    provider,
    model,
    total_prompt_tokens: total,
    cache_read_tokens: read,
    cache_write_tokens: write,
    cache_write_by_ttl: null,
    // Without a write count, writes are billed as plain input: the rest is prompt − read.
    uncached_tokens: read === null ? null : total - read - (write ?? 0),
    output_tokens: readCount(usage, keys.output, path),
    cache_fields_reported: read !== null,
    complete: true,
  };
}

// Gemini serialises proto3 JSON, which drops zero-valued counts: beside a
// promptTokenCount, a missing cachedContentTokenCount is a read of 0 (every miss
// arrives so; read as unknown, misses would vanish and capture look perfect).
const OTHER_COUNTS = ['prompt_tokens', 'input_tokens', 'completion_tokens', 'output_tokens'];

// The google-genai Python SDK's model_dump() spells the REST fields in snake_case: the same counts.
const GEMINI_SNAKE: Record<string, string> = {
  usage_metadata: 'usageMetadata',
  model_version: 'modelVersion',
  prompt_token_count: 'promptTokenCount',
  cached_content_token_count: 'cachedContentTokenCount',
  candidates_token_count: 'candidatesTokenCount',
  thoughts_token_count: 'thoughtsTokenCount',
  tool_use_prompt_token_count: 'toolUsePromptTokenCount',
  total_token_count: 'totalTokenCount',
};

/** A Gemini response or usage object in snake_case, in the REST API's camelCase (anything else as it is). */
function geminiCamelCase(input: unknown): unknown {
  if (!isRecord(input) || !Object.keys(input).some((k) => k in GEMINI_SNAKE && !(GEMINI_SNAKE[k]! in input))) return input;
  const out: Json = {};
  for (const [k, v] of Object.entries(input)) out[k in GEMINI_SNAKE && !(GEMINI_SNAKE[k]! in input) ? GEMINI_SNAKE[k]! : k] = k === 'usage_metadata' ? geminiCamelCase(v) : v;
  return out;
}

/** An error about a snake_case Gemini body, with its pointer and the fields it names as the body spells them. */
function inSnakeCase(e: UsageShapeError, input: unknown): UsageShapeError {
  const camelToSnake = new Map(Object.entries(GEMINI_SNAKE).map(([snake, camel]) => [camel, snake]));
  let at: unknown = input;
  const used = new Set<string>();
  const path = e.path
    .split('/')
    .slice(1)
    .map((token) => {
      const snake = camelToSnake.get(token);
      const key = isRecord(at) && !(token in at) && snake !== undefined && snake in at ? snake : token;
      if (key !== token) used.add(token);
      at = isRecord(at) ? at[key] : undefined;
      return `/${key}`;
    })
    .join('');
  // The other fields it names were read from the same object: spelled as sent when they were sent so.
  const usage = isRecord(input) && isRecord(input.usage_metadata) ? input.usage_metadata : input;
  if (isRecord(usage)) for (const [snake, camel] of Object.entries(GEMINI_SNAKE)) if (snake in usage && !(camel in usage)) used.add(camel);
  const detail = e.detail.replace(/\b[a-z]+(?:[A-Z][a-z]*)+\b/g, (word) => (used.has(word) ? camelToSnake.get(word)! : word));
  return new UsageShapeError(path, detail);
}

function geminiUsage(raw: Json, path: string, model: string | null): NormalizedUsage {
  const usage = geminiCamelCase(raw) as Json;
  // Another provider's counts would leave the report unknown for good: said instead (Gemini's own fields without
  // counts, trafficType alone say, stay unknown).
  if (!GEMINI_KEYS.some((k) => k in usage) && OTHER_COUNTS.some((k) => k in usage))
    throw new UsageShapeError(pointer(path, 'promptTokenCount'), `is missing: a Gemini usageMetadata has promptTokenCount (and cachedContentTokenCount on a hit); got ${Object.keys(usage).slice(0, 4).join(', ')}`);
  const total = readCount(usage, 'promptTokenCount', path);
  const read = readCount(usage, 'cachedContentTokenCount', path) ?? (total === null ? null : 0);
  if (total !== null && read !== null && read > total) {
    throw new UsageShapeError(pointer(path, 'cachedContentTokenCount'), `exceeds promptTokenCount (${total})`);
  }
  const candidates = readCount(usage, 'candidatesTokenCount', path);
  // Thinking tokens are billed as output.
  const thoughts = readCount(usage, 'thoughtsTokenCount', path);
  // The prompts Gemini's own tools ran (Search grounding, code execution) are billed as input but are not in
  // promptTokenCount (totalTokenCount adds them beside it): kept apart, never scaled onto the rendered segments.
  // Proto3 drops the zero: beside a promptTokenCount, absent is none.
  const toolUse = readCount(usage, 'toolUsePromptTokenCount', path) ?? (total === null ? null : 0);
  if ((total ?? 0) + (toolUse ?? 0) > MAX_TOKEN_COUNT)
    throw new UsageShapeError(pointer(path, 'toolUsePromptTokenCount'), `with promptTokenCount, ${(total ?? 0) + (toolUse ?? 0)} input tokens: more than any model's context holds (at most ${MAX_TOKEN_COUNT})`);
  return {
    provider: 'gemini',
    model,
    total_prompt_tokens: total,
    cache_read_tokens: read,
    // Explicit cache creation is a separate call (cachedContents.create); generateContent never writes.
    cache_write_tokens: null,
    cache_write_by_ttl: null,
    uncached_tokens: total !== null && read !== null ? total - read : null,
    output_tokens: candidates === null && thoughts === null ? null : (candidates ?? 0) + (thoughts ?? 0),
    tool_use_prompt_tokens: toolUse,
    cache_fields_reported: read !== null,
    complete: true,
  };
}

// ── small helpers ───────────────────────────────────────────────────────────

/** More tokens than any model's context holds: a count past it is a broken report, not a prompt. */
export const MAX_TOKEN_COUNT = 100_000_000;

/** A token count: absent or null → null; anything but a non-negative integer (up to MAX_TOKEN_COUNT) is a shape error. */
export function readCount(obj: Json, key: string, path: string): number | null {
  const value = obj[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new UsageShapeError(pointer(path, key), `${key} is not a non-negative integer`);
  }
  // One such report would stay in the reports for good (a read of 1e15 tokens is billions of dollars "saved").
  if (value > MAX_TOKEN_COUNT) throw new UsageShapeError(pointer(path, key), `${key} is ${value}: more tokens than any model's context holds (at most ${MAX_TOKEN_COUNT})`);
  return value;
}

/** Usage that says nothing: capture unknown. `complete` is false for a stream cut off before its final usage. */
export function unreportedUsage(provider: UsageProvider, model: string | null, totalPromptTokens: number | null, complete: boolean): NormalizedUsage {
  return {
    provider,
    model,
    total_prompt_tokens: totalPromptTokens,
    cache_read_tokens: null,
    cache_write_tokens: null,
    cache_write_by_ttl: null,
    uncached_tokens: null,
    output_tokens: null,
    cache_fields_reported: false,
    complete,
  };
}

function requireCount(obj: Json, key: string, path: string): number {
  const value = readCount(obj, key, path);
  if (value === null) throw new UsageShapeError(pointer(path, key), `${key} is missing`);
  return value;
}

/** Appends one reference token to a JSON Pointer (RFC 6901 escaping). */
export function pointer(base: string, key: string): string {
  return `${base}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
}

function sum(split: Record<string, number>): number {
  return Object.values(split).reduce((a, b) => a + b, 0);
}
