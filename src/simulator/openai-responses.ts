// OpenAI Responses API wire shapes, after the official SDK types
// (openai/openai-node src/resources/responses/responses.ts: Response, ResponseUsage,
// ResponseStreamEvent) and the API reference's streaming events.

import { promptDetails } from './openai';
import { simSignature } from './reasoning';
import { providerId, sseFrame, unixSeconds, type SimToolCall, type Turn } from './turn';

function responsesUsage(turn: Turn) {
  const u = turn.usage;
  return {
    input_tokens: u.promptTokens,
    input_tokens_details: promptDetails(u),
    output_tokens: u.outputTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens ?? 0 },
    total_tokens: u.promptTokens + u.outputTokens,
  };
}

interface ResponseParts {
  id: string;
  messageId: string;
  /** The reasoning item's id (`rs_…`), when the turn reasoned. */
  reasoningId: string;
  /** The output item id of a tool call (`fc_…`; its `call_id` is the turn's). */
  functionCallId: string;
  /** The request body: instructions, tools and a few settings are echoed back, as the API does. */
  request: Record<string, unknown>;
}

function outputText(text: string) {
  return { type: 'output_text', text, annotations: [], logprobs: [] };
}

function message(parts: ResponseParts, status: 'in_progress' | 'completed' | 'incomplete', content: unknown[]) {
  return { type: 'message', id: parts.messageId, status, role: 'assistant', content };
}

function functionCall(parts: ResponseParts, call: SimToolCall, status: 'in_progress' | 'completed') {
  return { type: 'function_call', id: parts.functionCallId, call_id: call.id, name: call.name, arguments: status === 'completed' ? call.arguments : '', status };
}

/**
 * A reasoning model's reasoning item, with `include: ["reasoning.encrypted_content"]` (the only case the simulator
 * reasons in): encrypted_content a digest of the reasoning, so deterministic; a summary when `reasoning.summary` asks
 * for one. Its fields in the order the API returns them.
 */
function reasoningItem(turn: Turn, parts: ResponseParts, done = true) {
  if (turn.thinking === null) return null;
  const r = parts.request.reasoning;
  const wantsSummary = typeof r === 'object' && r !== null && typeof (r as Record<string, unknown>).summary === 'string';
  const summary = wantsSummary && done ? [{ type: 'summary_text', text: `**Simulated summary**\n\n${turn.thinking}` }] : [];
  return { id: parts.reasoningId, type: 'reasoning', summary, ...(done ? { encrypted_content: simSignature('openai', turn.thinking) } : {}) };
}

/** The finished output: the reasoning item if any, then the message (`incomplete` when it stopped at max_output_tokens), or the tool call. */
function output(turn: Turn, parts: ResponseParts) {
  const reasoning = reasoningItem(turn, parts);
  return [
    ...(reasoning ? [reasoning] : []),
    turn.toolCall ? functionCall(parts, turn.toolCall, 'completed') : message(parts, finalStatus(turn), [outputText(turn.text)]),
  ];
}

/** `incomplete` (with `incomplete_details.reason: "max_output_tokens"`) when the text stopped at the limit. */
const finalStatus = (turn: Turn) => (turn.truncated ? 'incomplete' : 'completed');

function response(turn: Turn, parts: ResponseParts, completed: boolean) {
  const r = parts.request;
  return {
    id: parts.id,
    object: 'response',
    created_at: unixSeconds(turn.createdAt),
    status: completed ? finalStatus(turn) : 'in_progress',
    error: null,
    incomplete_details: completed && turn.truncated ? { reason: 'max_output_tokens' } : null,
    instructions: r.instructions ?? null,
    max_output_tokens: r.max_output_tokens ?? null,
    model: turn.model,
    output: completed ? output(turn, parts) : [],
    parallel_tool_calls: r.parallel_tool_calls ?? true,
    previous_response_id: r.previous_response_id ?? null,
    reasoning: { effort: null, summary: null },
    service_tier: 'default',
    store: r.store ?? true,
    temperature: r.temperature ?? 1,
    text: { format: { type: 'text' } },
    tool_choice: r.tool_choice ?? 'auto',
    tools: Array.isArray(r.tools) ? r.tools : [],
    top_p: r.top_p ?? 1,
    truncation: 'disabled',
    usage: completed ? responsesUsage(turn) : null,
    user: null,
    metadata: r.metadata ?? {},
  };
}

export function newResponseParts(request: Record<string, unknown>): ResponseParts {
  return { id: providerId('resp_'), messageId: providerId('msg_'), reasoningId: providerId('rs_'), functionCallId: providerId('fc_'), request };
}

export function responseBody(turn: Turn, parts: ResponseParts) {
  return response(turn, parts, true);
}

/**
 * response.created, response.in_progress, output_item.added, content_part.added,
 * output_text.delta per chunk, output_text.done, content_part.done, output_item.done,
 * response.completed (the full response with usage; response.incomplete when it stopped at max_output_tokens). A tool call instead: output_item.added,
 * function_call_arguments.delta per piece, function_call_arguments.done, output_item.done. A reasoning item, when
 * there is one, comes first: output_item.added (without its encrypted_content), output_item.done.
 * Every event carries sequence_number.
 */
export function responsesStreamFrames(turn: Turn, parts: ResponseParts): string[] {
  const reasoning = reasoningItem(turn, parts);
  // The reasoning item comes first (added bare, done whole), the answer after it.
  const output_index = reasoning ? 1 : 0;
  const at = { item_id: parts.messageId, output_index, content_index: 0 };
  const call = turn.toolCall;
  const thought = reasoning
    ? [
        { type: 'response.output_item.added', output_index: 0, item: reasoningItem(turn, parts, false) },
        { type: 'response.output_item.done', output_index: 0, item: reasoning },
      ]
    : [];
  const answer = call
    ? [
        { type: 'response.output_item.added', output_index, item: functionCall(parts, call, 'in_progress') },
        ...call.argumentChunks.map((delta) => ({ type: 'response.function_call_arguments.delta', item_id: parts.functionCallId, output_index, delta })),
        { type: 'response.function_call_arguments.done', item_id: parts.functionCallId, output_index, name: call.name, arguments: call.arguments },
        { type: 'response.output_item.done', output_index, item: functionCall(parts, call, 'completed') },
      ]
    : [
        { type: 'response.output_item.added', output_index, item: message(parts, 'in_progress', []) },
        { type: 'response.content_part.added', ...at, part: outputText('') },
        ...turn.chunks.map((delta) => ({ type: 'response.output_text.delta', ...at, delta, logprobs: [] })),
        { type: 'response.output_text.done', ...at, text: turn.text, logprobs: [] },
        { type: 'response.content_part.done', ...at, part: outputText(turn.text) },
        { type: 'response.output_item.done', output_index, item: message(parts, finalStatus(turn), [outputText(turn.text)]) },
      ];
  const item = [...thought, ...answer];
  const events: Array<{ type: string } & Record<string, unknown>> = [
    { type: 'response.created', response: response(turn, parts, false) },
    { type: 'response.in_progress', response: response(turn, parts, false) },
    ...item,
    // response.incomplete ends a response stopped at max_output_tokens.
    { type: `response.${finalStatus(turn)}`, response: response(turn, parts, true) },
  ];
  return events.map((e, sequence_number) => sseFrame({ ...e, sequence_number }, e.type));
}
