// vLLM's OpenAI-compatible server: the chat completion shape, no cache writes, and the cache read only when started
// with --enable-prompt-tokens-details.

import type { Json } from '../../records';
import { CHAT_KEYS, chatAccumulator, inclusiveUsage, isChatObject } from './openai';
import type { UsageRules } from './types';

// vLLM adds fields OpenAI never sends (prompt_logprobs is serialised even when null; kv_transfer_params with
// disaggregated prefill).
export function looksLikeVllm(body: Json): boolean {
  return 'prompt_logprobs' in body || 'kv_transfer_params' in body;
}

export const vllm: UsageRules = {
  provider: 'vllm',
  // Sent OpenAI chat requests, answering in the same shape: only the caller can always tell them apart.
  rendered: false,
  speaks: 'openai-chat',
  countKey: 'prompt_tokens',
  normalize: (usage, path, model) => inclusiveUsage('vllm', usage, path, model, CHAT_KEYS),
  body: { matches: (input) => isChatObject(input) && looksLikeVllm(input), usageKey: 'usage', modelKey: 'model' },
  stream: (diagnostics) => chatAccumulator('vllm', diagnostics),
  whereUsage: 'no chunk carries usage: vLLM sends it in a last chunk only when the request sets stream_options.include_usage',
};
