// Rules the OpenAI-shaped usages share (Chat Completions, Responses, vLLM's chat completions).

import { isRecord, type Json } from '../../records';
import { pointer, readCount, requireCount, UsageShapeError, withReason } from '../counts';
import { incomplete, parseData } from '../events';
import type { NormalizedUsage, ProviderDiagnostics, StreamUsageAccumulator, UsageProvider } from '../types';
import type { DiagnosticsReader } from './types';

/** The `object` of a chat completion body (and its stream's chunks). */
const CHAT_OBJECTS = new Set(['chat.completion', 'chat.completion.chunk', 'text_completion']);

export const isChatObject = (body: Json): boolean => typeof body.object === 'string' && CHAT_OBJECTS.has(body.object);

export interface InclusiveKeys {
  total: string;
  details: string;
  output: string;
}

export const CHAT_KEYS: InclusiveKeys = { total: 'prompt_tokens', details: 'prompt_tokens_details', output: 'completion_tokens' };

// OpenAI chat, OpenAI Responses and vLLM: the total includes cached tokens, and
// the cache counts live in a details object that vLLM leaves out (or null)
// unless started with --enable-prompt-tokens-details.
export function inclusiveUsage(
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

/** OpenAI's prompt_cache_diagnostics on a body, as `provider`'s; null when the body carries none. */
export function openaiDiagnostics(response: Json, provider: UsageProvider): ProviderDiagnostics | null {
  if (!isRecord(response.prompt_cache_diagnostics)) return null;
  const raw = response.prompt_cache_diagnostics;
  let reason: string | undefined;
  if (raw.type === 'cache_miss') reason = typeof raw.reason === 'string' ? raw.reason : 'cache_miss';
  // "unavailable" and "comparison_response_not_found" explain why there is no verdict.
  else if (typeof raw.type === 'string' && raw.type !== 'cache_hit') reason = raw.type;
  return withReason({ provider, raw }, reason);
}

// OpenAI chat (and vLLM): with stream_options.include_usage, one extra chunk
// before [DONE] has empty choices and the whole request's usage; every other
// chunk has usage null. vLLM's continuous_usage_stats puts running usage on
// content chunks too; those update the figures but do not end the stream.
export function chatAccumulator(provider: 'openai-chat' | 'vllm', extractDiagnostics: DiagnosticsReader): StreamUsageAccumulator {
  let model: string | null = null;
  let latest: NormalizedUsage | null = null;
  let final = false;
  let diagnostics: ProviderDiagnostics | null = null;
  let raw: Record<string, unknown> | null = null;

  return {
    push(event) {
      const data = parseData(event.data);
      if (data === null) return;
      if (typeof data.model === 'string') model = data.model;
      diagnostics = extractDiagnostics(data) ?? diagnostics;
      if (!isRecord(data.usage)) return;
      // As received, also when it cannot be read.
      raw = data.usage;
      latest = inclusiveUsage(provider, data.usage, pointer('', 'usage'), model, CHAT_KEYS);
      if (!Array.isArray(data.choices) || data.choices.length === 0) final = true;
    },
    result() {
      if (!final || latest === null) return incomplete(provider, model, null);
      return { ...latest, model };
    },
    diagnostics: () => diagnostics,
    raw: () => raw,
  };
}
