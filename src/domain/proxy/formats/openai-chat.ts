// OpenAI Chat Completions: a turn's messages and the reply's choice 0, and a streamed reply rebuilt as a completion.

import type { ContentBlock, ImageBlock, Message, TextBlock } from '../../content';
import { invalid } from '../../errors';
import { follows, imageFromUrl, isRecord, keepsNoDetail, keepsNoName, keepsOnly, list, parseArguments, readFrom, str, UNKEEPABLE, unsupported, type Json } from './shared';
import type { ProxyFormatRules, StreamReply } from './types';

const KNOWN = {
  chatMessage: new Set(['role', 'content', 'name', 'tool_calls', 'tool_call_id', 'refusal']),
  chatPart: new Set(['type', 'text', 'image_url']),
  chatImageUrl: new Set(['url', 'detail']),
  chatToolCall: new Set(['id', 'type', 'function', 'index']),
  chatFunction: new Set(['name', 'arguments']),
};

function chatMessages(raw: unknown, at: string): Message[] {
  const out: Message[] = [];
  list(raw, at).forEach((m, i) => {
    const mAt = `${at}/${i}`;
    if (!isRecord(m) || m.type === 'handle') unsupported(mAt, 'a handle message');
    if (m.role !== 'system' && m.role !== 'developer') keepsOnly(m, KNOWN.chatMessage, mAt);
    switch (m.role) {
      // Instructions, not turns: the caller sends them again each turn.
      case 'system':
      case 'developer':
        return;
      case 'user':
        keepsNoName(m, mAt);
        out.push(readFrom({ role: 'user', content: typeof m.content === 'string' ? m.content : list(m.content, `${mAt}/content`).map((p, j) => chatPart(p, `${mAt}/content/${j}`)) }, mAt));
        return;
      case 'assistant': {
        keepsNoName(m, mAt);
        const blocks = chatAssistantBlocks(m, mAt, true);
        out.push(readFrom({ role: 'assistant', content: typeof m.content === 'string' && blocks.length === 1 && blocks[0]!.type === 'text' ? m.content : blocks }, mAt));
        return;
      }
      case 'tool': {
        const content = typeof m.content === 'string' ? m.content : list(m.content, `${mAt}/content`).map((p, j) => chatPart(p, `${mAt}/content/${j}`));
        const result: ContentBlock = readFrom({ type: 'tool_result', tool_use_id: str(m.tool_call_id, `${mAt}/tool_call_id`), content }, mAt);
        // Consecutive tool messages answer one assistant turn: one user message of results.
        const last = out[out.length - 1];
        if (last?.role === 'user' && Array.isArray(last.content) && last.content.every((b) => b.type === 'tool_result')) last.content.push(result);
        else out.push(readFrom({ role: 'user', content: [result] }, mAt));
        return;
      }
      default:
        if (m.role === undefined) throw invalid(`${mAt}/role`, 'a message needs a role');
        unsupported(`${mAt}/role`, `a "${String(m.role)}" message`);
    }
  });
  return out;
}

function chatPart(p: unknown, at: string): TextBlock | ImageBlock {
  if (!isRecord(p)) throw invalid(at, 'must be a content part');
  if (p.type === 'text' || p.type === 'image_url') keepsOnly(p, KNOWN.chatPart, at);
  if (p.type === 'image_url' && isRecord(p.image_url)) keepsOnly(p.image_url, KNOWN.chatImageUrl, `${at}/image_url`);
  if (p.type === 'text') return readFrom({ type: 'text', text: str(p.text, `${at}/text`) }, at);
  if (p.type === 'image_url' && isRecord(p.image_url)) {
    keepsNoDetail(p.image_url.detail, `${at}/image_url/detail`);
    return readFrom(imageFromUrl(str(p.image_url.url, `${at}/image_url/url`), at), at);
  }
  if (p.type === undefined) throw invalid(`${at}/type`, 'a content part needs a type');
  return unsupported(at, `a "${String(p.type)}" part`);
}

function chatAssistantBlocks(m: Json, at: string, strict: boolean): ContentBlock[] {
  const blocks: ContentBlock[] = [];
  if (typeof m.content === 'string' && m.content !== '') blocks.push(readFrom({ type: 'text', text: m.content }, `${at}/content`));
  else if (Array.isArray(m.content))
    m.content.forEach((p, j) => {
      if (isRecord(p) && (p.type === 'text' || p.type === 'refusal')) blocks.push(readFrom({ type: 'text', text: str(p.text ?? p.refusal, `${at}/content/${j}`) }, `${at}/content/${j}`));
      else if (strict) unsupported(`${at}/content/${j}`, 'this part');
    });
  if (blocks.length === 0 && typeof m.refusal === 'string') blocks.push({ type: 'text', text: m.refusal });
  const calls = Array.isArray(m.tool_calls) ? m.tool_calls : [];
  calls.forEach((c, k) => {
    const cAt = `${at}/tool_calls/${k}`;
    // In a reply too: a call the session cannot keep (a custom tool's, which has no `function`) is not dropped from
    // it, or the next turn's tool output would answer nothing: the reply is not kept.
    if (!isRecord(c) || !isRecord(c.function)) return unsupported(cAt, 'this tool call');
    if (strict) {
      keepsOnly(c, KNOWN.chatToolCall, cAt);
      keepsOnly(c.function, KNOWN.chatFunction, `${cAt}/function`);
    }
    blocks.push(readFrom({ type: 'tool_use', id: str(c.id, `${cAt}/id`), name: str(c.function.name, `${cAt}/function/name`), input: parseArguments(c.function.arguments, `${cAt}/function/arguments`) }, cAt));
  });
  if (blocks.length === 0 && strict) blocks.push({ type: 'text', text: '' });
  return blocks;
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

export const openaiChat: ProxyFormatRules = {
  messagesKey: 'messages',
  turnMessages: chatMessages,
  replyBlocks(response) {
    const choice = Array.isArray(response.choices) ? response.choices.find((c) => isRecord(c) && (c.index ?? 0) === 0) : undefined;
    return isRecord(choice) && isRecord(choice.message) ? chatAssistantBlocks(choice.message, '/choices/0/message', false) : [];
  },
  streamReply: chatReply,
};
