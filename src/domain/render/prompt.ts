import type { Message, ToolDefinition } from '../content';

export const expansionFormats = ['neutral', 'anthropic', 'openai-chat', 'openai-responses', 'gemini'] as const;
export type ExpansionFormat = (typeof expansionFormats)[number];

export type Section = 'tools' | 'system' | 'messages';

/**
 * One contiguous piece of a prompt that came from one place: an artifact
 * version, or one appended batch of a session's messages.
 */
export type PromptSegment =
  | { section: 'tools'; source: string; path: string[]; tools: ToolDefinition[] }
  | { section: 'system'; source: string; path: string[]; text: string }
  | { section: 'messages'; source: string; path: string[]; messages: Message[] };

/** Render order is fixed: tools, then system, then messages; members keep bundle order inside each section. */
export const SECTION_ORDER: Section[] = ['tools', 'system', 'messages'];

export function orderSegments(segments: PromptSegment[]): PromptSegment[] {
  return SECTION_ORDER.flatMap((s) => segments.filter((seg) => seg.section === s));
}
