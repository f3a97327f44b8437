// Gemini generateContent: promptTokenCount includes the cached tokens (cachedContentTokenCount); the body keeps its
// usage in usageMetadata, the model in modelVersion.

import { isRecord, type Json } from '../../records';
import { MAX_TOKEN_COUNT, pointer, readCount, UsageShapeError } from '../counts';
import { incomplete, parseData } from '../events';
import type { NormalizedUsage, ProviderDiagnostics, StreamUsageAccumulator } from '../types';
import type { DiagnosticsReader, UsageRules } from './types';

// Keys that only Gemini's bare usage object carries.
const GEMINI_KEYS = ['promptTokenCount', 'candidatesTokenCount', 'totalTokenCount', 'cachedContentTokenCount', 'toolUsePromptTokenCount'];

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

// Gemini (streamGenerateContent?alt=sse): each chunk is a GenerateContentResponse; usageMetadata, when a chunk
// carries it, is the request's so far (candidatesTokenCount grows), the one with the finishReason (or after it) final.
function geminiAccumulator(extractDiagnostics: DiagnosticsReader): StreamUsageAccumulator {
  let model: string | null = null;
  let latest: NormalizedUsage | null = null;
  let finished = false;
  let diagnostics: ProviderDiagnostics | null = null;
  let raw: Record<string, unknown> | null = null;

  return {
    push(event) {
      const data = parseData(event.data);
      if (data === null) return;
      if (typeof data.modelVersion === 'string') model = data.modelVersion;
      diagnostics = extractDiagnostics(data) ?? diagnostics;
      const candidate = Array.isArray(data.candidates) ? data.candidates[0] : undefined;
      if (isRecord(candidate) && typeof candidate.finishReason === 'string') finished = true;
      if (!isRecord(data.usageMetadata)) return;
      raw = data.usageMetadata;
      latest = geminiUsage(data.usageMetadata, pointer('', 'usageMetadata'), model);
    },
    result: () => (!finished || latest === null ? incomplete('gemini', model, null) : { ...latest, model }),
    diagnostics: () => diagnostics,
    raw: () => raw,
  };
}

export const gemini: UsageRules = {
  provider: 'gemini',
  rendered: true,
  countKey: 'promptTokenCount',
  normalize: geminiUsage,
  body: { matches: (input) => 'usageMetadata' in input || ('candidates' in input && Array.isArray(input.candidates)), usageKey: 'usageMetadata', modelKey: 'modelVersion' },
  claimsUsage: (usage) => GEMINI_KEYS.some((k) => k in usage),
  respelling: {
    toRest: geminiCamelCase,
    errorAsSent: inSnakeCase,
    // As received: a snake_case body keeps its own spelling.
    usageAsSent: (input) => (isRecord(input.usage_metadata) && !('usageMetadata' in input) ? input.usage_metadata : undefined),
  },
  stream: geminiAccumulator,
  whereUsage: 'no chunk carries usageMetadata (Gemini puts it on its chunks, the whole count on the last one): send the chunks as received, the last one included',
  claimsEvent: (item) => 'usageMetadata' in item || 'usage_metadata' in item || Array.isArray(item.candidates),
  chunkUsage: (chunk) => chunk.usageMetadata ?? chunk.usage_metadata,
};
