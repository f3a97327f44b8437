// openai-chat: Chat Completions.
import canonicalize from 'canonicalize';
import { emitJson } from '../../canonical-json';
import type { ContentBlock, Message } from '../../content';
import { pushAll } from '../../arrays';
import { arr, canon, customTools, dataUrl, objectJson } from './shared';
import { instructionRole, openaiBreakpoints, openaiInline, promptCacheKey, retention } from './openai';
import type { RequestFormatRules } from './types';

export const openaiChat: RequestFormatRules = {
  definedTools: false,
  messagesKey: 'messages',
  contentKey: 'content',
  textBlock: (t) => `{"type":"text","text":${JSON.stringify(t)}}`,
  toolEntries: (texts) => texts,
  preservedThinking: false,
  reusesItems: () => true,
  systemField: null,
  instructionRole,
  items(seg) {
    if (seg.section === 'tools')
      return customTools(seg).map((t) =>
        emitJson({ type: 'function', function: { name: t.name, description: t.description, parameters: canon(t.input_schema) } }),
      );
    if (seg.section === 'system') return [emitJson({ role: 'system', content: seg.text })];
    return seg.messages.flatMap((m) => chatMessages(m).map(emitJson));
  },
  wrap: (tools, system, messages) => objectJson(tools.length > 0 && ['tools', arr(tools)], ['messages', arr([...system, ...messages])]),
  toolNames: (tool) => [(tool.function as { name?: unknown } | undefined)?.name ?? tool.name],
  // A tool's definition is inside its `function`.
  inline: openaiInline('messages', 'text', (tool) => tool.function),
  breakpoints: openaiBreakpoints,
  promptCacheKey,
  cacheTtl: retention,
};

function chatPart(b: ContentBlock): unknown {
  if (b.type === 'image') return { type: 'image_url', image_url: { url: dataUrl(b) } };
  return { type: 'text', text: b.type === 'text' ? b.text : '' };
}

function chatMessages(m: Message): unknown[] {
  if (typeof m.content === 'string') return [{ role: m.role, content: m.content }];
  if (m.role === 'assistant') {
    const texts = m.content.filter((b) => b.type === 'text');
    const calls = m.content.flatMap((b) =>
      b.type === 'tool_use' ? [{ id: b.id, type: 'function', function: { name: b.name, arguments: canonicalize(b.input) } }] : [],
    );
    return [{ role: 'assistant', content: texts.length ? texts.map(chatPart) : null, tool_calls: calls.length ? calls : undefined }];
  }
  // Tool results become tool messages, placed first: OpenAI wants them right after the assistant's tool_calls.
  // Tool messages take text only; images returned by a tool follow in the user message.
  const out: unknown[] = [];
  const toolImages: ContentBlock[] = [];
  for (const b of m.content) {
    if (b.type !== 'tool_result') continue;
    const content = typeof b.content === 'string' || b.content === undefined ? (b.content ?? '') : b.content.filter((x) => x.type === 'text').map(chatPart);
    if (Array.isArray(b.content)) pushAll(toolImages, b.content.filter((x) => x.type === 'image'));
    out.push({ role: 'tool', tool_call_id: b.tool_use_id, content });
  }
  const parts = [...toolImages, ...m.content.filter((b) => b.type === 'text' || b.type === 'image')];
  if (parts.length) out.push({ role: 'user', content: parts.map(chatPart) });
  return out;
}
