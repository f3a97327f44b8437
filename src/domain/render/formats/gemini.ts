// gemini: generateContent.
import { emitJson } from '../../canonical-json';
import { isThinking, type ContentBlock, type ThinkingBlock } from '../../content';
import { arr, blocksOf, canon, customTools, objectJson, textOf } from './shared';
import { childPointer, expectType, prependProperty, prependToArray, property, valueOf } from '../json-text';
import { isRecord, type Json } from '../../records';
import type { PromptSegment } from '../prompt';
import type { InlineSystem, RenderContext, RequestFormatRules } from './types';

export const gemini: RequestFormatRules = {
  definedTools: false,
  messagesKey: 'contents',
  contentKey: 'parts',
  textBlock: (t) => `{"text":${JSON.stringify(t)}}`,
  toolEntries: (texts) => [`{"functionDeclarations":[${texts.join(',')}]}`],
  // Gemini names tool results by earlier calls, which may sit in other segments: those are rendered fresh.
  preservedThinking: false,
  reusesItems: (seg) => !hasToolResult(seg),
  systemField: {
    // Gemini's REST docs spell it system_instruction; either spelling is the system node.
    key: (root) => (!property(root, 'systemInstruction') && property(root, 'system_instruction') ? 'system_instruction' : 'systemInstruction'),
    // Gemini keeps system parts in systemInstruction.parts.
    blocks(field, at, key) {
      const parts = expectType(property(field, 'parts'), 'array', childPointer(at, 'parts'), 'systemInstruction.parts');
      if (field) expectType(field, 'object', at, key);
      return { node: parts, at: childPointer(at, 'parts') };
    },
    prepend(texts, root, key, field, parts) {
      if (parts) return prependToArray(parts, texts);
      if (field) return prependProperty(field, 'parts', `[${texts.join(',')}]`);
      return prependProperty(root, key, `{"parts":[${texts.join(',')}]}`);
    },
  },
  items(seg, ctx) {
    if (seg.section === 'tools')
      return customTools(seg).map((t) => emitJson({ name: t.name, description: t.description, parametersJsonSchema: canon(t.input_schema) }));
    if (seg.section === 'system') return [emitJson({ text: seg.text })];
    return seg.messages.map((m) =>
      emitJson({ role: m.role === 'assistant' ? 'model' : 'user', parts: blocksOf(m).flatMap((b) => (isThinking(b) ? [] : [geminiPart(b, ctx)])) }),
    );
  },
  wrap: (tools, system, messages) =>
    objectJson(tools.length > 0 && ['tools', `[{"functionDeclarations":${arr(tools)}}]`], system.length > 0 && ['systemInstruction', `{"parts":${arr(system)}}`], ['contents', arr(messages)]),
  // A tools entry declares several functions (a handle's tools are one entry, the caller's may be one each).
  toolNames: (tool) => (Array.isArray(tool.functionDeclarations) ? tool.functionDeclarations.map((d: { name?: unknown } | null) => d?.name) : [tool.name]),
  breakpoints: null,
  // Gemini's explicit cache (cachedContent: a prefix created ahead, never in this body) is counted in its
  // promptTokenCount and read as cachedContentTokenCount: prompt tokens the service never rendered, placed first.
  providerHistory(root) {
    const node = property(root, 'cachedContent');
    const value = node === undefined ? null : valueOf(node);
    return typeof value === 'string' && value !== '' ? 'cachedContent' : null;
  },
  inline: {
    storedTool: null,
    systemText,
    // Each part of the system instruction.
    systemUnits(body) {
      const key = body.systemInstruction === undefined && body.system_instruction !== undefined ? 'system_instruction' : 'systemInstruction';
      const parts = isRecord(body[key]) ? (body[key] as Json).parts : undefined;
      if (!Array.isArray(parts)) return [];
      return parts.flatMap((value, i): InlineSystem[] => {
        const text = systemText(value);
        return text === null ? [] : [{ pointer: `/${key}/parts/${i}`, value, text, section: 'system' }];
      });
    },
  },
};

/** The text of a system part. */
function systemText(v: unknown): string | null {
  return isRecord(v) && typeof v.text === 'string' ? v.text : null;
}

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

function hasToolResult(seg: PromptSegment): boolean {
  return seg.section === 'messages' && seg.messages.some((m) => typeof m.content !== 'string' && m.content.some((b) => b.type === 'tool_result'));
}
