// Anthropic Messages API wire shapes, after the official TypeScript SDK types
// (anthropics/anthropic-sdk-typescript src/resources/messages/messages.ts: Message,
// Usage, RawMessageStreamEvent) and the streaming guide's event order.

import type { ModelEntry } from '../domain/catalog/types';
import { sseFrame, type Turn } from './turn';

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

export function anthropicMessage(turn: Turn, id: string) {
  const call = turn.toolCall;
  return {
    id,
    type: 'message',
    role: 'assistant',
    model: turn.model,
    content: call ? [{ type: 'tool_use', id: call.id, name: call.name, input: JSON.parse(call.arguments) as unknown }] : [{ type: 'text', text: turn.text }],
    stop_reason: stopReason(turn),
    stop_sequence: null,
    usage: anthropicUsage(turn, turn.usage.outputTokens),
  };
}

/**
 * message_start (usage with the prompt counts, output_tokens 1), content_block_start, ping,
 * one content_block_delta per chunk (a tool call's input as `input_json_delta` pieces), content_block_stop,
 * message_delta (cumulative usage), message_stop.
 */
export function anthropicStreamFrames(turn: Turn, id: string): string[] {
  const start = { ...anthropicMessage(turn, id), content: [], stop_reason: null, usage: anthropicUsage(turn, 1) };
  const u = turn.usage;
  const call = turn.toolCall;
  const block = call
    ? [
        { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: call.id, name: call.name, input: {} } },
        { type: 'ping' },
        ...call.argumentChunks.map((partial_json) => ({ type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json } })),
      ]
    : [
        { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
        { type: 'ping' },
        ...turn.chunks.map((text) => ({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } })),
      ];
  const events: Array<{ type: string } & Record<string, unknown>> = [
    { type: 'message_start', message: start },
    ...block,
    { type: 'content_block_stop', index: 0 },
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

export function anthropicModelList(entries: ModelEntry[]) {
  const data = entries
    .filter((e) => e.provider === 'anthropic')
    .map((e) => ({ type: 'model', id: e.id, display_name: displayName(e.id), created_at: `${e.checked}T00:00:00Z` }));
  return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
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
