// Anthropic Messages: a turn's messages and the reply's content blocks, and a streamed reply rebuilt as a message.

import type { ContentBlock, Message } from '../../content';
import { invalid } from '../../errors';
import { isRecord, keepsOnly, list, str, UNKEEPABLE, unsupported, follows, type Json } from './shared';
import type { ProxyFormatRules, StreamReply } from './types';

const KNOWN = {
  anthropicMessage: new Set(['role', 'content']),
  anthropicBlock: {
    text: new Set(['type', 'text', 'cache_control']),
    image: new Set(['type', 'source', 'cache_control']),
    tool_use: new Set(['type', 'id', 'name', 'input', 'cache_control']),
    tool_result: new Set(['type', 'tool_use_id', 'content', 'is_error', 'cache_control']),
    thinking: new Set(['type', 'thinking', 'signature']),
    redacted_thinking: new Set(['type', 'data']),
  } as Record<string, ReadonlySet<string>>,
};

function anthropicMessages(raw: unknown, at: string): Message[] {
  return list(raw, at).map((m, i) => {
    const mAt = `${at}/${i}`;
    if (!isRecord(m) || m.type === 'handle') unsupported(mAt, 'a handle message');
    if (m.role !== 'user' && m.role !== 'assistant') throw invalid(`${mAt}/role`, 'role must be user or assistant');
    keepsOnly(m, KNOWN.anthropicMessage, mAt);
    const content = typeof m.content === 'string' ? m.content : list(m.content, `${mAt}/content`).map((b, j) => anthropicBlock(b, `${mAt}/content/${j}`));
    return { role: m.role, content };
  });
}

// Only the fields a block means are kept: cache_control is a caching directive, not content.
function anthropicBlock(b: unknown, at: string): ContentBlock {
  if (!isRecord(b)) throw invalid(at, 'must be a content block');
  const known = typeof b.type === 'string' && Object.hasOwn(KNOWN.anthropicBlock, b.type) ? KNOWN.anthropicBlock[b.type] : undefined;
  // Anthropic's own rule, not a field the session lacks (Prompt caching, 'Caching with thinking blocks').
  if ((b.type === 'thinking' || b.type === 'redacted_thinking') && b.cache_control !== undefined && b.cache_control !== null)
    throw invalid(`${at}/cache_control`, `Anthropic refuses cache_control on a ${b.type} block; mark the text or tool_use after it (the service marks a message's last block itself)`);
  if (known) keepsOnly(b, known, at);
  switch (b.type) {
    case 'text':
      return { type: 'text', text: str(b.text, `${at}/text`) };
    case 'image': {
      const s = isRecord(b.source) ? b.source : {};
      if (s.type === 'url') return { type: 'image', source: { type: 'url', url: str(s.url, `${at}/source/url`) } };
      if (s.type === 'base64') return { type: 'image', source: { type: 'base64', media_type: s.media_type as 'image/png', data: str(s.data, `${at}/source/data`) } };
      return unsupported(`${at}/source`, `an image source of type "${String(s.type)}"`);
    }
    case 'tool_use':
      // The session keeps the call as it was made: an input that is not an object is refused, not replaced by {}.
      if (b.input !== undefined && !isRecord(b.input)) throw invalid(`${at}/input`, 'tool_use input must be a JSON object');
      return { type: 'tool_use', id: str(b.id, `${at}/id`), name: str(b.name, `${at}/name`), input: isRecord(b.input) ? b.input : {} };
    case 'tool_result': {
      const content =
        b.content === undefined || typeof b.content === 'string'
          ? b.content
          : list(b.content, `${at}/content`).map((c, k) => {
              const block = anthropicBlock(c, `${at}/content/${k}`);
              if (block.type !== 'text' && block.type !== 'image') unsupported(`${at}/content/${k}`, `a ${block.type} block inside a tool_result`);
              return block;
            });
      return {
        type: 'tool_result',
        tool_use_id: str(b.tool_use_id, `${at}/tool_use_id`),
        ...(content === undefined ? {} : { content }),
        ...(typeof b.is_error === 'boolean' ? { is_error: b.is_error } : {}),
      };
    }
    case 'thinking':
    case 'redacted_thinking': {
      const block = thinkingBlock(b);
      if (!block) throw invalid(at, b.type === 'thinking' ? 'a thinking block needs its thinking text and signature' : 'a redacted_thinking block needs its data');
      return block;
    }
    default:
      if (b.type === undefined) throw invalid(`${at}/type`, 'a content block needs a type');
      return unsupported(at, `a "${String(b.type)}" block`);
  }
}

/** A thinking or redacted_thinking block as Anthropic sent it (with the model that produced it, when known); null without its signature (or data), which the API would refuse back. */
function thinkingBlock(b: Json, model?: string): ContentBlock | null {
  const by = model === undefined ? {} : { model };
  if (b.type === 'thinking' && typeof b.thinking === 'string' && typeof b.signature === 'string' && b.signature !== '')
    return { type: 'thinking', provider: 'anthropic', thinking: b.thinking, signature: b.signature, ...by };
  if (b.type === 'redacted_thinking' && typeof b.data === 'string' && b.data !== '') return { type: 'redacted_thinking', provider: 'anthropic', data: b.data, ...by };
  return null;
}

function anthropicReplyBlock(b: unknown, model: string | undefined): ContentBlock[] {
  if (!isRecord(b)) return [];
  if (b.type === 'thinking' || b.type === 'redacted_thinking') {
    const block = thinkingBlock(b, model);
    return block ? [block] : [];
  }
  if (b.type === 'text' && typeof b.text === 'string') return [{ type: 'text', text: b.text }];
  if (b.type === 'tool_use' && typeof b.id === 'string' && typeof b.name === 'string') {
    // As in a body: an input that is not an object (a call cut off mid-JSON arrives as its text) is refused, not kept as {}.
    if (b.input !== undefined && !isRecord(b.input)) throw invalid('', 'tool_use input must be a JSON object');
    return [{ type: 'tool_use', id: b.id, name: b.name, input: isRecord(b.input) ? b.input : {} }];
  }
  return [];
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

export const anthropic: ProxyFormatRules = {
  messagesKey: 'messages',
  turnMessages: anthropicMessages,
  replyBlocks(response) {
    // Its thinking is tied to the model that answered (preserved thinking): kept with its name.
    const model = typeof response.model === 'string' && response.model !== '' && response.model.length <= 256 ? response.model : undefined;
    return Array.isArray(response.content) ? response.content.flatMap((b) => anthropicReplyBlock(b, model)) : [];
  },
  streamReply: anthropicReply,
};
