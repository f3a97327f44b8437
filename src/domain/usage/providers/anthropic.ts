// Anthropic Messages: input_tokens excludes cache reads and writes; writes may be split by TTL (cache_creation).

import { isRecord, type Json } from '../../records';
import { MAX_TOKEN_COUNT, pointer, readCount, requireCount, UsageShapeError, withReason } from '../counts';
import { incomplete, parseData } from '../events';
import type { NormalizedUsage, ProviderDiagnostics, StreamUsageAccumulator } from '../types';
import { RESPONSES_USAGE_KEYS } from './openai-responses';
import type { DiagnosticsReader, UsageRules } from './types';

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

// Anthropic: message_start carries the full usage (output_tokens is a
// placeholder); every message_delta carries cumulative counts that replace the
// ones before. Adding them would double-count.
function anthropicAccumulator(extractDiagnostics: DiagnosticsReader): StreamUsageAccumulator {
  let counts: Record<string, unknown> = {};
  let model: string | null = null;
  let sawDelta = false;
  let diagnostics: ProviderDiagnostics | null = null;
  let raw: Record<string, unknown> | null = null;

  function overwrite(usage: Record<string, unknown>, path: string): void {
    // As received, every field kept: a later event's values over the earlier ones (its nulls say "not carried
    // here"), an update refused below included.
    raw = { ...raw, ...Object.fromEntries(Object.entries(usage).filter(([, v]) => v !== null)) };
    const next = { ...counts };
    for (const key of ['input_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens', 'output_tokens']) {
      // A null in a delta means "not carried here" (Anthropic SDK MessageStream does the same).
      const value = readCount(usage, key, path);
      if (value !== null) next[key] = value;
    }
    if (isRecord(usage.cache_creation)) next.cache_creation = usage.cache_creation;
    // A revised write count without its split leaves the earlier split describing another sum: it is dropped
    // (writes then priced at the default TTL) rather than refused, as a report that contradicts itself is.
    else if (isRecord(next.cache_creation) && readCount(usage, 'cache_creation_input_tokens', path) !== null) {
      const split = Object.values(next.cache_creation).reduce<number>((a, v) => a + (typeof v === 'number' ? v : 0), 0);
      if (split !== next.cache_creation_input_tokens) delete next.cache_creation;
    }
    // Checked whole before any of it is kept (a split that does not sum, a total past any context): all or nothing.
    if (next.input_tokens !== undefined) anthropicUsage(next, path, null);
    counts = next;
  }

  return {
    push(event) {
      const data = parseData(event.data);
      if (data === null) return;
      const type = typeof data.type === 'string' ? data.type : event.event;
      if (type === 'message_start' && isRecord(data.message)) {
        const message = data.message;
        if (typeof message.model === 'string') model = message.model;
        if (isRecord(message.usage)) overwrite(message.usage, '/message/usage');
        diagnostics = extractDiagnostics(message) ?? diagnostics;
      } else if (type === 'message_delta' && isRecord(data.usage)) {
        overwrite(data.usage, '/usage');
        sawDelta = true;
      }
    },
    result() {
      if (!sawDelta || counts.input_tokens === undefined) {
        const total =
          typeof counts.input_tokens === 'number' &&
          typeof counts.cache_creation_input_tokens === 'number' &&
          typeof counts.cache_read_input_tokens === 'number'
            ? counts.input_tokens + counts.cache_creation_input_tokens + counts.cache_read_input_tokens
            : null;
        return incomplete('anthropic', model, total);
      }
      return anthropicUsage(counts, '', model);
    },
    diagnostics: () => diagnostics,
    raw: () => raw,
  };
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
  stream: anthropicAccumulator,
  whereUsage: 'no message_start or message_delta event carries usage: send the events as received, from message_start on',
  claimsEvent: (item) => typeof item.type === 'string' && item.type.startsWith('message_'),
};
