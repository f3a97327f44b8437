import type { Message, ToolDefinition } from '../content';

export const expansionFormats = ['neutral', 'anthropic', 'openai-chat', 'openai-responses', 'gemini'] as const;
export type ExpansionFormat = (typeof expansionFormats)[number];

/** The provider request bodies render takes (each a module in formats/). */
export const requestFormats = ['anthropic', 'openai-chat', 'openai-responses', 'gemini'] as const;
export type RequestFormat = (typeof requestFormats)[number];

export type Section = 'tools' | 'system' | 'messages';

/**
 * One contiguous piece of a prompt that came from one place: an artifact
 * version, or one appended batch of a session's messages.
 */
export type PromptSegment = SegmentBase &
  (
    | { section: 'tools'; tools: ToolDefinition[] }
    | { section: 'system'; text: string }
    | { section: 'messages'; messages: Message[] }
  );

interface SegmentBase {
  /** `art_x@2`, or `ses_x@3` for the batch session version 3 appended. */
  source: string;
  /** Refs from the expanded root down to the source. */
  path: string[];
  /** Tokens per tokenizer family, measured at mint (absent when metadata is off). */
  tokens?: Record<'o200k_base' | 'cl100k_base' | 'anthropic' | 'gemini', number>;
  /** Whether `tokens` are on the text basis (handle-meta.ts TOKENS_BASIS): else counted on the stored JSON. */
  textTokens?: boolean;
  /** Volatile values found in this segment's content at mint. */
  volatility?: number;
}

/** Render order is fixed: tools, then system, then messages; members keep bundle order inside each section. */
export const SECTION_ORDER: Section[] = ['tools', 'system', 'messages'];

export function orderSegments(segments: PromptSegment[]): PromptSegment[] {
  return SECTION_ORDER.flatMap((s) => segments.filter((seg) => seg.section === s));
}
