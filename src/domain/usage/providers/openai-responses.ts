// OpenAI Responses: input_tokens includes the cached tokens (input_tokens_details.cached_tokens).

import { isRecord } from '../../records';
import { incomplete, parseData } from '../events';
import type { NormalizedUsage, ProviderDiagnostics, StreamUsageAccumulator } from '../types';
import { inclusiveUsage, isChatObject, openaiDiagnostics, type InclusiveKeys } from './openai';
import type { DiagnosticsReader, UsageRules } from './types';

/** Responses usage always has the details objects (and a total); Anthropic's, which also has input_tokens, never. */
export const RESPONSES_USAGE_KEYS = ['input_tokens_details', 'output_tokens_details', 'total_tokens'];

const KEYS: InclusiveKeys = { total: 'input_tokens', details: 'input_tokens_details', output: 'output_tokens' };

// Responses API: usage is null until the terminal event. response.incomplete
// (e.g. max_output_tokens) and response.failed still close the response and
// carry its final usage when there is one.
const RESPONSES_TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);

function responsesAccumulator(extractDiagnostics: DiagnosticsReader): StreamUsageAccumulator {
  let model: string | null = null;
  let final: NormalizedUsage | null = null;
  let diagnostics: ProviderDiagnostics | null = null;
  let raw: Record<string, unknown> | null = null;

  return {
    push(event) {
      const data = parseData(event.data);
      if (data === null || !isRecord(data.response)) return;
      const type = typeof data.type === 'string' ? data.type : event.event;
      const response = data.response;
      if (typeof response.model === 'string') model = response.model;
      if (type === undefined || !RESPONSES_TERMINAL.has(type)) return;
      diagnostics = extractDiagnostics(response) ?? diagnostics;
      if (isRecord(response.usage)) {
        raw = response.usage;
        final = inclusiveUsage('openai-responses', response.usage, '/response/usage', model, KEYS);
      }
    },
    result: () => (final === null ? incomplete('openai-responses', model, null) : { ...final, model }),
    diagnostics: () => diagnostics,
    raw: () => raw,
  };
}

export const openaiResponses: UsageRules = {
  provider: 'openai-responses',
  rendered: true,
  countKey: 'input_tokens',
  normalize: (usage, path, model) => inclusiveUsage('openai-responses', usage, path, model, KEYS),
  body: { matches: (input) => input.object === 'response', usageKey: 'usage', modelKey: 'model' },
  claimsUsage: (usage) => 'input_tokens' in usage && RESPONSES_USAGE_KEYS.some((k) => k in usage),
  // A body with prompt_cache_diagnostics that is not a chat completion.
  diagnostics: (response) => (isChatObject(response) ? null : openaiDiagnostics(response, 'openai-responses')),
  // A stream carries the response (with its diagnostics) in its response.* events.
  eventResponse: (event) => (typeof event.type === 'string' && event.type.startsWith('response.') && isRecord(event.response) ? event.response : undefined),
  stream: responsesAccumulator,
  whereUsage: 'no response.completed, response.incomplete or response.failed event carries the usage: send the events as received, the last one included',
  claimsEvent: (item) => typeof item.type === 'string' && item.type.startsWith('response.'),
};
