// Shapes both OpenAI APIs share: the error body and the model list.

import type { ModelEntry } from '../domain/catalog/types';
import type { SimUsage } from './turn';

export interface OpenAIErrorOptions {
  type?: string;
  param?: string | null;
  code?: string | null;
}

/** `{ error: { message, type, param, code } }`; type and code default by status. */
export function openaiError(status: number, message: string, options: OpenAIErrorOptions = {}) {
  const defaults: OpenAIErrorOptions =
    status === 401
      ? { type: 'invalid_request_error', code: 'invalid_api_key' }
      : status === 429
        ? { type: 'requests', code: 'rate_limit_exceeded' }
        : status >= 500
          ? { type: 'server_error', code: null }
          : { type: 'invalid_request_error', code: null };
  return {
    error: {
      message,
      type: options.type ?? defaults.type,
      param: options.param ?? null,
      code: options.code === undefined ? (defaults.code ?? null) : options.code,
    },
  };
}

export function openaiModelList(entries: ModelEntry[]) {
  return {
    object: 'list',
    data: entries
      .filter((e) => e.provider === 'openai')
      .map((e) => ({
        id: e.id,
        object: 'model',
        created: Math.floor(Date.parse(e.checked) / 1000),
        owned_by: 'openai',
      })),
  };
}

/** `*_tokens_details` of the prompt: cache_write_tokens only on models that bill writes. */
export function promptDetails(u: SimUsage): Record<string, number> {
  return u.writesBilled
    ? { cached_tokens: u.readTokens, cache_write_tokens: u.writeTokens }
    : { cached_tokens: u.readTokens };
}
