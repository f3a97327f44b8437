// OpenAI Responses: input_tokens includes the cached tokens (input_tokens_details.cached_tokens).

import { isRecord } from '../../records';
import { inclusiveUsage, isChatObject, openaiDiagnostics, type InclusiveKeys } from './openai';
import type { UsageRules } from './types';

/** Responses usage always has the details objects (and a total); Anthropic's, which also has input_tokens, never. */
export const RESPONSES_USAGE_KEYS = ['input_tokens_details', 'output_tokens_details', 'total_tokens'];

const KEYS: InclusiveKeys = { total: 'input_tokens', details: 'input_tokens_details', output: 'output_tokens' };

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
};
