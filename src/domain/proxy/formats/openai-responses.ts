// OpenAI Responses: a turn's input items and the reply's output items, and a streamed reply read from its terminal event.

import { BLANK_TEXT, isBlank, type ContentBlock, type ImageBlock, type Message, type ReasoningItemBlock, type TextBlock } from '../../content';
import { invalid } from '../../errors';
import { pushAll } from '../../arrays';
import { imageFromUrl, isRecord, keepsNoDetail, keepsOnly, list, parseArguments, readFrom, str, unsupported, type Json } from './shared';
import type { ProxyFormatRules, StreamReply } from './types';

const KNOWN = {
  responsesItem: new Set(['type', 'role', 'content', 'id', 'status', 'call_id', 'name', 'arguments', 'output']),
  responsesReasoning: new Set(['type', 'id', 'summary', 'encrypted_content', 'status']),
  responsesSummary: new Set(['type', 'text']),
  responsesPart: new Set(['type', 'text', 'refusal', 'image_url', 'detail', 'annotations']),
};

function responsesInput(raw: unknown, at: string): Message[] {
  if (typeof raw === 'string') {
    // One user message: its blank text is the input itself.
    if (isBlank(raw)) throw invalid(at, BLANK_TEXT);
    return [readFrom<Message>({ role: 'user', content: raw }, at)];
  }
  const out: Message[] = [];
  // Function calls join the assistant message before them, outputs the user message of results before them (a message
  // noted as read from its first item's place: `iAt`).
  const push = (role: 'user' | 'assistant', blocks: ContentBlock[], join: (b: ContentBlock) => boolean, iAt: string) => {
    const last = out[out.length - 1];
    if (last?.role === role && Array.isArray(last.content) && last.content.every(join)) pushAll(last.content, blocks);
    else out.push(readFrom({ role, content: blocks }, iAt));
  };
  list(raw, at).forEach((item, i) => {
    const iAt = `${at}/${i}`;
    if (!isRecord(item) || item.type === 'handle') unsupported(iAt, 'a handle item');
    const type = item.type ?? 'message';
    if (type !== 'reasoning' && item.role !== 'system' && item.role !== 'developer') keepsOnly(item, KNOWN.responsesItem, iAt);
    if (type === 'message') {
      if (item.role === 'system' || item.role === 'developer') return;
      if (item.role !== 'user' && item.role !== 'assistant') throw invalid(`${iAt}/role`, 'role must be user, assistant, system or developer');
      if (typeof item.content === 'string') {
        out.push(readFrom<Message>({ role: item.role, content: item.content }, iAt));
        return;
      }
      const blocks = list(item.content, `${iAt}/content`).map((p, j) => readFrom(responsesPart(p, `${iAt}/content/${j}`), `${iAt}/content/${j}`));
      if (item.role === 'assistant') push('assistant', blocks, () => true, iAt);
      else out.push(readFrom<Message>({ role: 'user', content: blocks }, iAt));
    } else if (type === 'function_call') {
      push('assistant', [readFrom<ContentBlock>({ type: 'tool_use', id: str(item.call_id, `${iAt}/call_id`), name: str(item.name, `${iAt}/name`), input: parseArguments(item.arguments, `${iAt}/arguments`) }, iAt)], () => true, iAt);
    } else if (type === 'function_call_output') {
      const output = typeof item.output === 'string' ? item.output : list(item.output, `${iAt}/output`).map((p, j) => readFrom(responsesPart(p, `${iAt}/output/${j}`), `${iAt}/output/${j}`));
      // Rendered for the Responses API, a kept tool output is its text (render/formats/openai-responses.ts): an image in it would be gone from
      // every later turn, silently (the Vercel AI SDK sends a tool's toModelOutput image so).
      if (Array.isArray(output)) output.forEach((b, j) => b.type !== 'text' && unsupported(`${iAt}/output/${j}`, 'an image in a function call output (a session renders a Responses tool output as its text)'));
      push('user', [readFrom<ContentBlock>({ type: 'tool_result', tool_use_id: str(item.call_id, `${iAt}/call_id`), content: output }, iAt)], (b) => b.type === 'tool_result', iAt);
    } else if (type === 'reasoning') {
      // The model's reasoning, read back from its encrypted_content: it joins the assistant's output it preceded.
      // An item with an id alone (store: true) is not kept, as from a reply (content.ts).
      const block = responsesReasoning(item, iAt, true);
      if (block) push('assistant', [readFrom(block, iAt)], () => true, iAt);
    } else unsupported(iAt, `a "${String(type)}" item`);
  });
  return out;
}

/**
 * Whether a Responses body's input holds a reasoning item a session does not keep: one without encrypted_content
 * (store: true, read back by id). The proxy says so in x-ph-warnings (`reasoning_not_kept`).
 */
function reasoningNotKept(body: Json): boolean {
  return Array.isArray(body.input) && body.input.some((it) => isRecord(it) && it.type === 'reasoning' && (typeof it.encrypted_content !== 'string' || it.encrypted_content === ''));
}

/** A reasoning item with its encrypted_content, as the API returned it; null without encrypted_content. */
function responsesReasoning(item: Json, at: string, strict: boolean): ReasoningItemBlock | null {
  if (typeof item.encrypted_content !== 'string' || item.encrypted_content === '') return null;
  if (strict) keepsOnly(item, KNOWN.responsesReasoning, at);
  // From a reply, a summary not in the documented shape leaves the item out rather than the reply unkept.
  if (!strict && !(Array.isArray(item.summary) && item.summary.every((x) => isRecord(x) && x.type === 'summary_text' && typeof x.text === 'string') && typeof item.id === 'string')) return null;
  const summary = list(item.summary ?? [], `${at}/summary`).map((s, j) => {
    const sAt = `${at}/summary/${j}`;
    if (!isRecord(s) || s.type !== 'summary_text') throw invalid(sAt, 'a reasoning summary part is {type: "summary_text", text}');
    if (strict) keepsOnly(s, KNOWN.responsesSummary, sAt);
    return { type: 'summary_text' as const, text: str(s.text, `${sAt}/text`) };
  });
  return { type: 'reasoning', provider: 'openai', id: str(item.id, `${at}/id`), summary, encrypted_content: item.encrypted_content };
}

function responsesPart(p: unknown, at: string): TextBlock | ImageBlock {
  if (!isRecord(p)) throw invalid(at, 'must be a content part');
  keepsOnly(p, KNOWN.responsesPart, at);
  if (p.type === 'input_text' || p.type === 'output_text') return { type: 'text', text: str(p.text, `${at}/text`) };
  if (p.type === 'refusal') return { type: 'text', text: str(p.refusal, `${at}/refusal`) };
  if (p.type === 'input_image' && typeof p.image_url === 'string') {
    keepsNoDetail(p.detail, `${at}/detail`);
    return imageFromUrl(p.image_url, at);
  }
  if (p.type === undefined) throw invalid(`${at}/type`, 'a content part needs a type');
  return unsupported(at, `a "${String(p.type)}" part`);
}

// Calls the caller answers with an item of its own (`custom_tool_call_output`, `computer_call_output`, …), which a
// session cannot hold: dropped from a reply, they would leave that answer with no call before it.
const RESPONSES_CLIENT_CALLS = new Set(['custom_tool_call', 'computer_call', 'local_shell_call', 'shell_call', 'apply_patch_call', 'mcp_approval_request']);

function responsesReplyItem(item: unknown): ContentBlock[] {
  if (!isRecord(item)) return [];
  if (typeof item.type === 'string' && RESPONSES_CLIENT_CALLS.has(item.type)) unsupported('', `a "${item.type}" item`);
  if (item.type === 'message' && Array.isArray(item.content))
    return item.content.flatMap((p): ContentBlock[] => {
      if (!isRecord(p)) return [];
      if (p.type === 'output_text' && typeof p.text === 'string') return [{ type: 'text', text: p.text }];
      if (p.type === 'refusal' && typeof p.refusal === 'string') return [{ type: 'text', text: p.refusal }];
      return [];
    });
  if (item.type === 'reasoning') {
    const block = responsesReasoning(item, '', false);
    return block ? [block] : [];
  }
  // Arguments that are not a JSON object (or nest too deep) throw: the reply is not kept, as for chat, rather
  // than kept without a call its next tool output refers to.
  if (item.type === 'function_call' && typeof item.call_id === 'string' && typeof item.name === 'string')
    return [{ type: 'tool_use', id: item.call_id, name: item.name, input: parseArguments(item.arguments, '') }];
  return [];
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

export const openaiResponses: ProxyFormatRules = {
  messagesKey: 'input',
  turnMessages: responsesInput,
  replyBlocks: (response) => (Array.isArray(response.output) ? response.output.flatMap(responsesReplyItem) : []),
  reasoningNotKept,
  streamReply: responsesReply,
};
