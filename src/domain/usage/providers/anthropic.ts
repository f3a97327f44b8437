// Anthropic Messages: input_tokens excludes cache reads and writes; writes may be split by TTL (cache_creation).

import { isRecord, type Json } from '../../records';
import { MAX_TOKEN_COUNT, pointer, readCount, requireCount, UsageShapeError, withReason } from '../counts';
import type { NormalizedUsage } from '../types';
import { RESPONSES_USAGE_KEYS } from './openai-responses';
import type { UsageRules } from './types';

// Keys that only Anthropic's bare usage object carries.
const ANTHROPIC_KEYS = ['cache_creation_input_tokens', 'cache_read_input_tokens', 'cache_creation'];

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

function sum(split: Record<string, number>): number {
  return Object.values(split).reduce((a, b) => a + b, 0);
}

export const anthropic: UsageRules = {
  provider: 'anthropic',
  rendered: true,
  countKey: 'input_tokens',
  normalize: anthropicUsage,
  // A message: `type` says so (a trimmed log line may have lost `role` and `content`).
  body: { matches: (input) => input.type === 'message' && 'usage' in input, usageKey: 'usage', modelKey: 'model' },
  // input_tokens without the keys only OpenAI Responses' usage has (Anthropic's never carries a total); with both
  // families' keys the object is neither.
  claimsUsage(usage, path) {
    if (!('input_tokens' in usage)) return false;
    const responses = RESPONSES_USAGE_KEYS.some((k) => k in usage);
    if (responses && ANTHROPIC_KEYS.some((k) => k in usage)) {
      throw new UsageShapeError(path, 'usage mixes Anthropic and OpenAI Responses fields; pass a provider hint');
    }
    return !responses;
  },
  diagnostics(response) {
    if (!isRecord(response.diagnostics)) return null;
    const reason = response.diagnostics.cache_miss_reason;
    // cache_miss_reason is null while Anthropic's comparison is still running.
    const type = isRecord(reason) && typeof reason.type === 'string' ? reason.type : undefined;
    return withReason({ provider: 'anthropic', raw: response.diagnostics }, type);
  },
  // A stream carries the message (with its diagnostics) in message_start.
  eventResponse: (event) => (event.type === 'message_start' && isRecord(event.message) ? event.message : undefined),
};
