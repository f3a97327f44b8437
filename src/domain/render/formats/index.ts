import { isDefinedTool } from '../../content';
import { invalid } from '../../errors';
import type { ExpansionFormat, PromptSegment, RequestFormat } from '../prompt';
import { pushAll } from '../../arrays';
import { anthropic } from './anthropic';
import { gemini } from './gemini';
import { neutral } from './neutral';
import { openaiChat } from './openai-chat';
import { openaiResponses } from './openai-responses';
import type { RenderContext, RequestFormatRules, Serialisation } from './types';

export type { RenderContext, RequestFormatRules, Serialisation } from './types';

/**
 * Provider serialisations of a prompt, one module per format (types.ts says what each gives). Changing any byte of
 * them resets users' caches: bump RENDERER_VERSION and the golden digests together.
 */
export const RENDERER_VERSION = 1;

/** The provider request formats: a format is one module and one line here. */
export const REQUEST_FORMATS: Record<RequestFormat, RequestFormatRules> = {
  anthropic,
  'openai-chat': openaiChat,
  'openai-responses': openaiResponses,
  gemini,
};

/** Every format a prompt is written in: the providers', and our own stored shapes. */
const SERIALISATIONS: Record<ExpansionFormat, Serialisation> = { neutral, ...REQUEST_FORMATS };

export function newRenderContext(): RenderContext {
  return { toolNames: new Map() };
}

/**
 * Items of one segment; records in ctx what this and later segments may refer to. An Anthropic-defined tool exists in
 * Anthropic's API alone: another format is refused (422) rather than sent a tool its provider would refuse.
 */
export function segmentItems(format: ExpansionFormat, seg: PromptSegment, ctx: RenderContext): string[] {
  if (seg.section === 'tools' && !SERIALISATIONS[format].definedTools) {
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
  return SERIALISATIONS[format].items(seg, ctx);
}

/** Records the tool calls of a segment, for tool results that answer them later. */
export function learnToolNames(seg: PromptSegment, ctx: RenderContext): void {
  if (seg.section === 'messages')
    for (const m of seg.messages)
      if (typeof m.content !== 'string') for (const b of m.content) if (b.type === 'tool_use') ctx.toolNames.set(b.id, b.name);
}

/** Wraps section items in the provider's request shape; empty sections are left out. */
function wrapExpansion(format: ExpansionFormat, tools: string[], system: string[], messages: string[]): string {
  return SERIALISATIONS[format].wrap(tools, system, messages);
}

/** Full expansion text of ordered segments in a format. */
export function renderExpansion(format: ExpansionFormat, segments: PromptSegment[]): string {
  const ctx = newRenderContext();
  const out = { tools: [] as string[], system: [] as string[], messages: [] as string[] };
  for (const seg of segments) pushAll(out[seg.section], segmentItems(format, seg, ctx));
  return wrapExpansion(format, out.tools, out.system, out.messages);
}
