// Rebuilds a streamed answer into the provider's non-streaming response shape,
// so `replyMessage` converts both the same way, and says when the stream has
// delivered its last meaningful event.

import { asGeminiText, UNKEEPABLE, type ProxyFormat } from './to-neutral';

type Json = Record<string, unknown>;

const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

// Blocks and tool calls are numbered 0, 1, 2… as they come; a gateway may leave a few out. An index further on is
// no place in the answer (and an array filled up to it would take time in proportion to it): not kept.
const MAX_INDEX_GAP = 16;
const follows = (index: unknown, count: number): index is number => typeof index === 'number' && Number.isInteger(index) && index >= 0 && index <= count + MAX_INDEX_GAP;

export interface StreamReply {
  /** Feeds one parsed event (`data` already JSON-parsed, or the raw string for sentinels like "[DONE]"). */
  push(data: unknown, event?: string): void;
  /** The provider's terminal event arrived: usage is final and the answer complete or failed. */
  readonly ended: boolean;
  /** The answer finished (Anthropic message_stop, a chat finish_reason, Responses response.completed or response.incomplete). */
  readonly succeeded: boolean;
  /** The answer so far, in the non-streaming response shape; UNKEEPABLE when an event's index could not be followed. */
  response(): unknown;
}

export function createStreamReply(format: ProxyFormat): StreamReply {
  if (format === 'anthropic') return anthropicReply();
  if (format === 'openai-chat') return chatReply();
  if (format === 'gemini') return geminiReply();
  return responsesReply();
}

// message_start, then per block content_block_start / _delta… / _stop; tool input arrives as JSON text pieces.
function anthropicReply(): StreamReply {
  const blocks: Json[] = [];
  // A block's input JSON text so far, read once the answer is whole (its content_block_stop may not come).
  const json = new Map<Json, string>();
  let ended = false;
  let lost = false;
  // The model that answered (message_start's message): its thinking blocks are tied to it.
  let model: unknown;
  return {
    push(data) {
      if (!isRecord(data)) return;
      if (data.type === 'message_start' && isRecord(data.message)) model = data.message.model;
      else if (data.type === 'content_block_start' && isRecord(data.content_block)) {
        if (!follows(data.index, blocks.length)) {
          lost = true;
          return;
        }
        const block = (blocks[data.index] = { ...data.content_block });
        if (block.type === 'tool_use') json.set(block, '');
      } else if (data.type === 'content_block_delta' && isRecord(data.delta)) {
        // A delta for no block begun: content the answer has no place for.
        const block = typeof data.index === 'number' ? blocks[data.index] : undefined;
        if (!block) {
          lost = true;
          return;
        }
        const d = data.delta;
        if (d.type === 'text_delta' && typeof d.text === 'string') block.text = String(block.text ?? '') + d.text;
        // A thinking block's text, then its signature, each in pieces: kept whole, as the API requires it back.
        else if (d.type === 'thinking_delta' && typeof d.thinking === 'string') block.thinking = String(block.thinking ?? '') + d.thinking;
        else if (d.type === 'signature_delta' && typeof d.signature === 'string') block.signature = String(block.signature ?? '') + d.signature;
        else if (d.type === 'input_json_delta' && typeof d.partial_json === 'string') json.set(block, (json.get(block) ?? '') + d.partial_json);
      } else if (data.type === 'message_stop') ended = true;
    },
    get ended() {
      return ended;
    },
    get succeeded() {
      return ended;
    },
    response: () =>
      lost ? UNKEEPABLE : { type: 'message', role: 'assistant', model, content: blocks.filter(Boolean).map((b) => (json.has(b) ? { ...b, input: inputOf(json.get(b)!) } : b)) },
  };
}

// Text that is not JSON (max_tokens cut the call) stays text, which replyMessage refuses as an input that is
// not an object: the session never keeps, as {}, a call that was not made.
function inputOf(text: string): unknown {
  if (text === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// Choice 0 only (the one a session continues); tool calls arrive by index, their arguments in pieces.
function chatReply(): StreamReply {
  let content: string | null = null;
  let refusal: string | null = null;
  let finished = false;
  let ended = false;
  let lost = false;
  const calls: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }> = [];
  return {
    push(data) {
      if (data === '[DONE]') ended = true;
      if (!isRecord(data) || !Array.isArray(data.choices)) return;
      const choice = data.choices.find((c) => isRecord(c) && (c.index ?? 0) === 0);
      if (!isRecord(choice)) return;
      if (typeof choice.finish_reason === 'string') finished = true;
      const delta = isRecord(choice.delta) ? choice.delta : {};
      if (typeof delta.content === 'string') content = (content ?? '') + delta.content;
      if (typeof delta.refusal === 'string') refusal = (refusal ?? '') + delta.refusal;
      for (const t of Array.isArray(delta.tool_calls) ? delta.tool_calls : []) {
        if (!isRecord(t)) continue;
        if (!follows(t.index, calls.length)) {
          lost = true;
          continue;
        }
        const call = (calls[t.index] ??= { id: '', type: 'function', function: { name: '', arguments: '' } });
        if (typeof t.id === 'string') call.id = t.id;
        const fn = isRecord(t.function) ? t.function : {};
        if (typeof fn.name === 'string') call.function.name += fn.name;
        if (typeof fn.arguments === 'string') call.function.arguments += fn.arguments;
      }
    },
    get ended() {
      return ended;
    },
    get succeeded() {
      return finished;
    },
    response: () =>
      lost
        ? UNKEEPABLE
        : {
            object: 'chat.completion',
            choices: [{ index: 0, message: { role: 'assistant', content, refusal, ...(calls.length ? { tool_calls: calls.filter(Boolean) } : {}) } }],
          },
  };
}

// Every chunk is a GenerateContentResponse whose candidate 0 holds the next parts (text in pieces, a function call
// whole); one carries its finishReason. No event ends the stream: it ends when the provider closes it, so `ended`
// stays false and the relay finishes on the close.
function geminiReply(): StreamReply {
  const parts: Json[] = [];
  let finished = false;
  return {
    push(data) {
      if (!isRecord(data) || !Array.isArray(data.candidates)) return;
      const candidate = data.candidates[0];
      if (!isRecord(candidate)) return;
      if (typeof candidate.finishReason === 'string') finished = true;
      const content = isRecord(candidate.content) ? candidate.content : {};
      for (const raw of Array.isArray(content.parts) ? content.parts : []) {
        if (!isRecord(raw)) continue;
        const p = asGeminiText(raw);
        const last = parts[parts.length - 1];
        // Text pieces join the text before them (a thought's with a thought's), and a signature that comes on a
        // later piece (Gemini may send it on an empty one, or on a part of its own) belongs to the part they make.
        if (typeof p.text === 'string' && last && typeof last.text === 'string' && last.thought === p.thought && last.thoughtSignature === undefined) {
          last.text += p.text;
          if (p.thoughtSignature !== undefined) last.thoughtSignature = p.thoughtSignature;
        } else parts.push({ ...p });
      }
    },
    get ended() {
      return false;
    },
    get succeeded() {
      return finished;
    },
    response: () => ({ candidates: [{ content: { role: 'model', parts } }] }),
  };
}

// The terminal event carries the whole response, output included.
const RESPONSES_TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);

function responsesReply(): StreamReply {
  let final: Json | null = null;
  let succeeded = false;
  return {
    push(data, event) {
      if (!isRecord(data)) return;
      const type = typeof data.type === 'string' ? data.type : event;
      if (type === undefined || !RESPONSES_TERMINAL.has(type) || !isRecord(data.response)) return;
      final = data.response;
      // An incomplete response (max_output_tokens, content_filter) is an answer, as a chat's finish_reason "length" or
      // Anthropic's stop_reason "max_tokens" are, and as the same response unstreamed is: kept in a session alike.
      succeeded = type !== 'response.failed';
    },
    get ended() {
      return final !== null;
    },
    get succeeded() {
      return succeeded;
    },
    response: () => final,
  };
}
