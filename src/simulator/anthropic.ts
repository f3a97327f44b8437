// Anthropic Messages API wire shapes, after the official TypeScript SDK types
// (anthropics/anthropic-sdk-typescript src/resources/messages/messages.ts: Message,
// Usage, RawMessageStreamEvent) and the streaming guide's event order.

import type { ModelEntry } from '../domain/catalog/types';
import { anthropicSignature } from './reasoning';
import { splitDeltas, sseFrame, type Turn } from './turn';

export function anthropicUsage(turn: Turn, outputTokens: number) {
  const u = turn.usage;
  return {
    // Anthropic's input_tokens excludes cache reads and writes.
    input_tokens: u.promptTokens - u.readTokens - u.writeTokens,
    cache_creation_input_tokens: u.writeTokens,
    cache_read_input_tokens: u.readTokens,
    cache_creation: {
      ephemeral_5m_input_tokens: u.writeByTtl['5m'] ?? 0,
      ephemeral_1h_input_tokens: u.writeByTtl['1h'] ?? 0,
    },
    output_tokens: outputTokens,
    service_tier: 'standard',
  };
}

/** A text answer, a tool call (`stop_reason: "tool_use"`), or text stopped at `max_tokens`. */
const stopReason = (turn: Turn) => (turn.toolCall ? 'tool_use' : turn.truncated ? 'max_tokens' : 'end_turn');

/** With thinking on, the answer opens with a thinking block: its text, then its signature. */
const thinkingBlocks = (turn: Turn) => (turn.thinking === null ? [] : [{ type: 'thinking', thinking: turn.thinking, signature: anthropicSignature(turn.thinking, turn.thinkingBinding) }]);

export function anthropicMessage(turn: Turn, id: string) {
  const call = turn.toolCall;
  return {
    id,
    type: 'message',
    role: 'assistant',
    model: turn.model,
    content: [...thinkingBlocks(turn), ...(call ? [{ type: 'tool_use', id: call.id, name: call.name, input: JSON.parse(call.arguments) as unknown }] : [{ type: 'text', text: turn.text }])],
    stop_reason: stopReason(turn),
    stop_sequence: null,
    usage: anthropicUsage(turn, turn.usage.outputTokens),
    // Final in message_start when streamed (the start is this message's head).
    ...(turn.inputTransformations ? { input_transformations: turn.inputTransformations } : {}),
  };
}

/**
 * message_start (usage with the prompt counts, output_tokens 1), then per block content_block_start (a ping after
 * the first), its content_block_deltas (thinking as `thinking_delta` pieces then one `signature_delta`; a tool call's
 * input as `input_json_delta` pieces; text as `text_delta`), content_block_stop; message_delta (cumulative usage),
 * message_stop.
 */
export function anthropicStreamFrames(turn: Turn, id: string): string[] {
  const start = { ...anthropicMessage(turn, id), content: [], stop_reason: null, usage: anthropicUsage(turn, 1) };
  const u = turn.usage;
  const call = turn.toolCall;
  const thinking = turn.thinking;
  const index = thinking === null ? 0 : 1;
  const answer = call
    ? [
        { type: 'content_block_start', index, content_block: { type: 'tool_use', id: call.id, name: call.name, input: {} } },
        ...call.argumentChunks.map((partial_json) => ({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json } })),
      ]
    : [
        { type: 'content_block_start', index, content_block: { type: 'text', text: '' } },
        ...turn.chunks.map((text) => ({ type: 'content_block_delta', index, delta: { type: 'text_delta', text } })),
      ];
  const blocks: Array<Array<{ type: string } & Record<string, unknown>>> = [
    ...(thinking === null
      ? []
      : [
          [
            { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } },
            ...splitDeltas(thinking).map((t) => ({ type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: t } })),
            { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: anthropicSignature(thinking, turn.thinkingBinding) } },
          ],
        ]),
    answer,
  ];
  const events: Array<{ type: string } & Record<string, unknown>> = [
    { type: 'message_start', message: start },
    ...blocks.flatMap((b, i) => [b[0]!, ...(i === 0 ? [{ type: 'ping' }] : []), ...b.slice(1), { type: 'content_block_stop', index: i }]),
    {
      type: 'message_delta',
      delta: { stop_reason: stopReason(turn), stop_sequence: null },
      usage: {
        input_tokens: u.promptTokens - u.readTokens - u.writeTokens,
        cache_creation_input_tokens: u.writeTokens,
        cache_read_input_tokens: u.readTokens,
        output_tokens: u.outputTokens,
      },
    },
    { type: 'message_stop' },
  ];
  return events.map((e) => sseFrame(e, e.type));
}

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

export function anthropicError(status: number, message: string, requestId: string) {
  const type = ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
  return { type: 'error', error: { type, message }, request_id: requestId };
}

/** The catalog's Claude models, as the Models API describes each. */
export function anthropicModels(entries: ModelEntry[]) {
  return entries
    .filter((e) => e.provider === 'anthropic')
    .map((e) => ({ type: 'model', id: e.id, display_name: displayName(e.id), created_at: `${e.checked}T00:00:00Z` }));
}

/** The list's query: `limit`, `after_id`, `before_id` as sent (absent: undefined). */
export interface ModelListQuery {
  limit?: string;
  after_id?: string;
  before_id?: string;
}

/**
 * One page of the Models API's list (GET /v1/models): `limit` models (1 to 1000, 20 by default) from the start, just
 * after `after_id` or just before `before_id`; `has_more` says whether there are more in that direction, and
 * `first_id`/`last_id` are the cursors to the pages before and after. A query it cannot answer is a string, the 400's
 * message.
 */
export function anthropicModelList(entries: ModelEntry[], query: ModelListQuery = {}) {
  const all = anthropicModels(entries);
  const limit = query.limit === undefined ? 20 : /^\d{1,4}$/.test(query.limit) ? Number(query.limit) : NaN;
  if (!(limit >= 1 && limit <= 1000)) return `limit: Input should be a whole number from 1 to 1000`;
  if (query.after_id !== undefined && query.before_id !== undefined) return 'after_id, before_id: give one of them, not both';
  const at = (param: 'after_id' | 'before_id') => {
    const i = all.findIndex((m) => m.id === query[param]);
    return i < 0 ? `${param}: no model ${query[param]}` : i;
  };
  let from = 0;
  let to = Math.min(all.length, limit);
  if (query.after_id !== undefined) {
    const i = at('after_id');
    if (typeof i === 'string') return i;
    [from, to] = [i + 1, Math.min(all.length, i + 1 + limit)];
  } else if (query.before_id !== undefined) {
    const i = at('before_id');
    if (typeof i === 'string') return i;
    [from, to] = [Math.max(0, i - limit), i];
  }
  const data = all.slice(from, to);
  const hasMore = query.before_id !== undefined ? from > 0 : to < all.length;
  return { data, has_more: hasMore, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}

/** "claude-sonnet-4-5" -> "Claude Sonnet 4.5", "claude-3-5-haiku" -> "Claude 3.5 Haiku". */
function displayName(id: string): string {
  const words: string[] = [];
  for (const part of id.split('-')) {
    const prev = words.at(-1);
    if (/^\d+$/.test(part) && prev !== undefined && /^\d+(\.\d+)*$/.test(prev)) words[words.length - 1] = `${prev}.${part}`;
    else words.push(part.charAt(0).toUpperCase() + part.slice(1));
  }
  return words.join(' ');
}
