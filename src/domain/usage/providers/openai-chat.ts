// OpenAI Chat Completions: prompt_tokens includes the cached tokens (prompt_tokens_details.cached_tokens).

import { CHAT_KEYS, chatAccumulator, inclusiveUsage, isChatObject, openaiDiagnostics } from './openai';
import { looksLikeVllm } from './vllm';
import type { UsageRules } from './types';

export const openaiChat: UsageRules = {
  provider: 'openai-chat',
  rendered: true,
  countKey: 'prompt_tokens',
  normalize: (usage, path, model) => inclusiveUsage('openai-chat', usage, path, model, CHAT_KEYS),
  body: { matches: (input) => isChatObject(input) && !looksLikeVllm(input), usageKey: 'usage', modelKey: 'model' },
  claimsUsage: (usage) => 'prompt_tokens' in usage,
  diagnostics: (response) => (isChatObject(response) ? openaiDiagnostics(response, 'openai-chat') : null),
  stream: (diagnostics) => chatAccumulator('openai-chat', diagnostics),
  whereUsage: 'no chunk carries usage: OpenAI sends it in a last chunk only when the request sets stream_options.include_usage (the proxy sets it)',
  claimsEvent: (item) => item.object === 'chat.completion.chunk',
};
