import { Canonical, emitJson } from '../canonical-json';
import canonicalize from 'canonicalize';
import { isDefinedTool, isThinking, type ContentBlock, type CustomTool, type ImageBlock, type Message, type ReasoningItemBlock, type ThinkingBlock, type ToolDefinition } from '../content';
import { invalid } from '../errors';
import type { ExpansionFormat, PromptSegment } from './prompt';
import { pushAll } from '../arrays';

/**
 * Provider serialisations of a prompt. Each segment becomes a list of items
 * (JSON texts); an expansion wraps the items of every section in the
 * provider's request shape. Changing any byte here resets users' caches:
 * bump RENDERER_VERSION and the golden digests together.
 */
export const RENDERER_VERSION = 1;

export interface RenderContext {
  /** tool_use id → tool name, for providers that answer tool results by name (Gemini). */
  toolNames: Map<string, string>;
}

export interface SegmentItems {
  section: PromptSegment['section'];
  items: string[];
}

type Items = (segment: PromptSegment, ctx: RenderContext) => string[];

const canon = (v: unknown) => new Canonical(canonicalize(v) ?? 'null');

function blocksOf(m: Message): ContentBlock[] {
  return typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
}

function dataUrl(image: ImageBlock): string {
  return image.source.type === 'base64' ? `data:${image.source.media_type};base64,${image.source.data}` : image.source.url;
}

function textOf(content: string | Array<{ type: string; text?: string }> | undefined): string {
  if (content === undefined) return '';
  if (typeof content === 'string') return content;
  return content.map((b) => (b.type === 'text' ? (b.text ?? '') : '')).join('\n');
}

// ---- neutral: our stored shapes, as stored ----
const neutral: Items = (seg) => {
  if (seg.section === 'tools') return seg.tools.map((t) => emitJson(toolNeutral(t)));
  if (seg.section === 'system') return [JSON.stringify(seg.text)];
  return seg.messages.map((m) => emitJson({ role: m.role, content: canon(m.content) }));
};

function toolNeutral(t: ToolDefinition) {
  // An Anthropic-defined tool as stored (canonical): it has no schema to write in another shape.
  if (isDefinedTool(t)) return canon(t);
  // A custom tool given its explicit `"type": "custom"` keeps it, first as Anthropic writes it (absent: no key, no byte).
  return { type: t.type, name: t.name, description: t.description, input_schema: canon(t.input_schema) };
}

/** The custom tools of a segment, for APIs other than Anthropic's (segmentItems refuses the others first). */
const customTools = (seg: { tools: ToolDefinition[] }) => seg.tools.filter((t): t is CustomTool => !isDefinedTool(t));

// ---- anthropic: Messages API ----
const anthropic: Items = (seg) => {
  if (seg.section === 'tools') return seg.tools.map((t) => emitJson(toolNeutral(t)));
  if (seg.section === 'system') return [emitJson({ type: 'text', text: seg.text })];
  // An OpenAI reasoning item is OpenAI's alone: left out, the message's bytes are those of the message without it.
  return seg.messages.map((m) => emitJson({ role: m.role, content: blocksOf(m).flatMap((b) => (b.type === 'reasoning' ? [] : [anthropicBlock(b)])) }));
};

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

// ---- openai-chat: Chat Completions ----
const openaiChat: Items = (seg) => {
  if (seg.section === 'tools')
    return customTools(seg).map((t) =>
      emitJson({ type: 'function', function: { name: t.name, description: t.description, parameters: canon(t.input_schema) } }),
    );
  if (seg.section === 'system') return [emitJson({ role: 'system', content: seg.text })];
  return seg.messages.flatMap((m) => chatMessages(m).map(emitJson));
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

// ---- openai-responses: Responses API input items ----
const openaiResponses: Items = (seg) => {
  if (seg.section === 'tools')
    return seg.tools.map((t) =>
      // strict: false keeps the schema as written; the Responses API defaults to strict mode, which makes optional fields required.
      emitJson({ type: 'function', name: t.name, description: t.description, parameters: canon(t.input_schema), strict: false }),
    );
  if (seg.section === 'system')
    return [emitJson({ type: 'message', role: 'system', content: [{ type: 'input_text', text: seg.text }] })];
  return seg.messages.flatMap((m) => responsesItems(m).map(emitJson));
};

function responsesItems(m: Message): unknown[] {
  const out: unknown[] = [];
  let parts: unknown[] = [];
  const flush = () => {
    if (parts.length) out.push({ type: 'message', role: m.role, content: parts });
    parts = [];
  };
  for (const b of blocksOf(m)) {
    if (b.type === 'text') parts.push({ type: m.role === 'assistant' ? 'output_text' : 'input_text', text: b.text });
    else if (b.type === 'image') parts.push({ type: 'input_image', image_url: dataUrl(b) });
    else if (b.type === 'reasoning') {
      // An OpenAI reasoning item goes back before the items it preceded, its fields as the API returns them.
      flush();
      out.push({ id: b.id, type: 'reasoning', summary: b.summary.map((x) => ({ type: x.type, text: x.text })), encrypted_content: b.encrypted_content });
    } else if (isThinking(b)) continue;
    else if (b.type === 'tool_use') {
      flush();
      out.push({ type: 'function_call', call_id: b.id, name: b.name, arguments: canonicalize(b.input) });
    } else {
      flush();
      out.push({ type: 'function_call_output', call_id: b.tool_use_id, output: textOf(b.content) });
    }
  }
  flush();
  return out;
}

// ---- gemini: generateContent ----
const gemini: Items = (seg, ctx) => {
  if (seg.section === 'tools')
    return customTools(seg).map((t) =>
      emitJson({ name: t.name, description: t.description, parametersJsonSchema: canon(t.input_schema) }),
    );
  if (seg.section === 'system') return [emitJson({ text: seg.text })];
  return seg.messages.map((m) =>
    emitJson({ role: m.role === 'assistant' ? 'model' : 'user', parts: blocksOf(m).flatMap((b) => (isThinking(b) ? [] : [geminiPart(b, ctx)])) }),
  );
};

// A part Gemini signed carries its thoughtSignature back after the part's own field, as Gemini returns it.
const signed = (part: object, b: { thought_signature?: { signature: string } }) => (b.thought_signature ? { ...part, thoughtSignature: b.thought_signature.signature } : part);

function geminiPart(b: Exclude<ContentBlock, ThinkingBlock>, ctx: RenderContext): unknown {
  switch (b.type) {
    case 'text':
      return signed({ text: b.text }, b);
    case 'image':
      return b.source.type === 'base64'
        ? { inlineData: { mimeType: b.source.media_type, data: b.source.data } }
        : { fileData: { fileUri: b.source.url } };
    case 'tool_use':
      return signed({ functionCall: { name: b.name, args: canon(b.input) } }, b);
    case 'tool_result':
      // Gemini answers a call by function name; an unknown id keeps the id so the bytes stay stable.
      return {
        functionResponse: { name: ctx.toolNames.get(b.tool_use_id) ?? b.tool_use_id, response: { content: textOf(b.content) } },
      };
  }
}

const ITEMS: Record<ExpansionFormat, Items> = {
  neutral,
  anthropic,
  'openai-chat': openaiChat,
  'openai-responses': openaiResponses,
  gemini,
};

export function newRenderContext(): RenderContext {
  return { toolNames: new Map() };
}

/**
 * Items of one segment; records in ctx what this and later segments may refer to. An Anthropic-defined tool exists in
 * Anthropic's API alone: another format is refused (422) rather than sent a tool its provider would refuse.
 */
export function segmentItems(format: ExpansionFormat, seg: PromptSegment, ctx: RenderContext): string[] {
  if (seg.section === 'tools' && format !== 'neutral' && format !== 'anthropic') {
    const defined = seg.tools.find(isDefinedTool);
    if (defined)
      throw invalid(
        'format',
        `${seg.source} holds the Anthropic-defined tool "${defined.name}" (${defined.type}), which only Anthropic's API takes: it cannot be rendered as ${format}`,
      );
  }
  return countedSegmentItems(format, seg, ctx);
}

/**
 * The same without the refusal, for token counts in every family (handle-meta.ts): a format with no place for an
 * Anthropic-defined tool leaves it out, so its OpenAI and Gemini counts are those of the custom tools.
 */
export function countedSegmentItems(format: ExpansionFormat, seg: PromptSegment, ctx: RenderContext): string[] {
  // A tool result answers an earlier call, possibly in this same segment: learn the names first.
  learnToolNames(seg, ctx);
  return ITEMS[format](seg, ctx);
}

/** Records the tool calls of a segment, for tool results that answer them later. */
export function learnToolNames(seg: PromptSegment, ctx: RenderContext): void {
  if (seg.section === 'messages')
    for (const m of seg.messages)
      if (typeof m.content !== 'string') for (const b of m.content) if (b.type === 'tool_use') ctx.toolNames.set(b.id, b.name);
}

const arr = (items: string[]) => `[${items.join(',')}]`;

/** Wraps section items in the provider's request shape; empty sections are left out. */
export function wrapExpansion(format: ExpansionFormat, tools: string[], system: string[], messages: string[]): string {
  const fields: string[] = [];
  const add = (key: string, json: string) => fields.push(`${JSON.stringify(key)}:${json}`);
  switch (format) {
    case 'neutral':
    case 'anthropic':
      if (tools.length) add('tools', arr(tools));
      if (system.length) add('system', arr(system));
      add('messages', arr(messages));
      break;
    case 'openai-chat':
      if (tools.length) add('tools', arr(tools));
      add('messages', arr([...system, ...messages]));
      break;
    case 'openai-responses':
      if (tools.length) add('tools', arr(tools));
      add('input', arr([...system, ...messages]));
      break;
    case 'gemini':
      if (tools.length) add('tools', `[{"functionDeclarations":${arr(tools)}}]`);
      if (system.length) add('systemInstruction', `{"parts":${arr(system)}}`);
      add('contents', arr(messages));
      break;
  }
  return `{${fields.join(',')}}`;
}

/** Full expansion text of ordered segments in a format. */
export function renderExpansion(format: ExpansionFormat, segments: PromptSegment[]): string {
  const ctx = newRenderContext();
  const out = { tools: [] as string[], system: [] as string[], messages: [] as string[] };
  for (const seg of segments) pushAll(out[seg.section], segmentItems(format, seg, ctx));
  return wrapExpansion(format, out.tools, out.system, out.messages);
}
