// anthropic: the Messages API.
import { emitJson } from '../../canonical-json';
import type { ContentBlock, ReasoningItemBlock } from '../../content';
import { prependProperty, prependToArray, textOf } from '../json-text';
import { isRecord } from '../../records';
import { neutral } from './neutral';
import { blocksOf, canon, toolNeutral } from './shared';
import type { InlineSystem, RequestFormatRules } from './types';

export const anthropic: RequestFormatRules = {
  definedTools: true,
  messagesKey: 'messages',
  contentKey: 'content',
  textBlock: (t) => `{"type":"text","text":${JSON.stringify(t)}}`,
  toolEntries: (texts) => texts,
  reusesItems: () => true,
  systemField: {
    key: () => 'system',
    // A string or blocks.
    blocks: (field, at) => ({ node: field, at }),
    prepend(texts, root, key, field, _blocks, bodyText) {
      if (!field) return prependProperty(root, key, `[${texts.join(',')}]`);
      // A plain-string system prompt becomes a list: our blocks first, then the caller's text, unchanged.
      if (field.type === 'string')
        return { offset: field.offset, length: field.length, pieces: [`[${texts.join(',')},{"type":"text","text":${textOf(bodyText, field)}}]`] };
      return prependToArray(field, texts);
    },
  },
  items(seg) {
    if (seg.section === 'tools') return seg.tools.map((t) => emitJson(toolNeutral(t)));
    if (seg.section === 'system') return [emitJson({ type: 'text', text: seg.text })];
    // An OpenAI reasoning item is OpenAI's alone: left out, the message's bytes are those of the message without it.
    return seg.messages.map((m) => emitJson({ role: m.role, content: blocksOf(m).flatMap((b) => (b.type === 'reasoning' ? [] : [anthropicBlock(b)])) }));
  },
  wrap: neutral.wrap,
  toolNames: (tool) => [tool.name],
  inline: {
    storedTool: (tool) => Object.fromEntries(Object.entries(tool).filter(([k]) => k !== 'cache_control')),
    systemText,
    // Each system block, or the system string.
    systemUnits(body) {
      const unit = (pointer: string, value: unknown): InlineSystem[] => {
        const text = systemText(value);
        return text === null ? [] : [{ pointer, value, text, section: 'system' }];
      };
      if (typeof body.system === 'string') return unit('/system', body.system);
      return Array.isArray(body.system) ? body.system.flatMap((b, i) => unit(`/system/${i}`, b)) : [];
    },
  },
};

/** The text of a system block, or of the system string. */
function systemText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  return isRecord(v) && typeof v.text === 'string' && v.type === 'text' ? v.text : null;
}

// Thinking blocks render as Anthropic returned them (type, thinking, signature; type, data), the fields in its order.
function anthropicBlock(b: Exclude<ContentBlock, ReasoningItemBlock>): unknown {
  switch (b.type) {
    case 'thinking':
      return { type: 'thinking', thinking: b.thinking, signature: b.signature };
    case 'redacted_thinking':
      return { type: 'redacted_thinking', data: b.data };
    case 'text':
      return { type: 'text', text: b.text };
    case 'image':
      return { type: 'image', source: canon(b.source) };
    case 'tool_use':
      return { type: 'tool_use', id: b.id, name: b.name, input: canon(b.input) };
    case 'tool_result':
      return {
        type: 'tool_result',
        tool_use_id: b.tool_use_id,
        content: typeof b.content === 'string' || b.content === undefined ? b.content : b.content.map(anthropicBlock),
        is_error: b.is_error,
      };
  }
}
