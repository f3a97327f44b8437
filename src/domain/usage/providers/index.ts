import type { UsageProvider } from '../types';
import { anthropic } from './anthropic';
import { gemini } from './gemini';
import { openaiChat } from './openai-chat';
import { openaiResponses } from './openai-responses';
import type { UsageRules } from './types';
import { vllm } from './vllm';

export type { UsageRules } from './types';

/**
 * How each provider reports usage: a provider is one module and one line here (and its place in the orders below when
 * its shapes can be told from the others' without a hint). Diagnostics are looked for in this order.
 */
export const USAGE_PROVIDERS: Record<UsageProvider, UsageRules> = {
  anthropic,
  'openai-chat': openaiChat,
  'openai-responses': openaiResponses,
  gemini,
  vllm,
};

/** Response bodies are told apart in this order: an `object` field says the most, then Anthropic's `type`, then Gemini's fields. */
export const BODY_ORDER: readonly UsageRules[] = [openaiChat, vllm, openaiResponses, anthropic, gemini];

/**
 * Bare usage objects, by their keys: every provider that claims one is named, in this order, when several do. A
 * stream listed without a hint is the first of these to claim one of its items.
 */
export const CLAIM_ORDER: readonly UsageRules[] = [gemini, openaiChat, anthropic, openaiResponses];
