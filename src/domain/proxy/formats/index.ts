import { anthropic } from './anthropic';
import { gemini } from './gemini';
import { openaiChat } from './openai-chat';
import { openaiResponses } from './openai-responses';
import type { ProxyFormat, ProxyFormatRules } from './types';

export type { ProxyFormat, ProxyFormatRules, StreamReply } from './types';

/** How the proxy reads each format's turns and replies: a format is one module and one line here. */
export const PROXY_FORMATS: Record<ProxyFormat, ProxyFormatRules> = {
  anthropic,
  'openai-chat': openaiChat,
  'openai-responses': openaiResponses,
  gemini,
};
