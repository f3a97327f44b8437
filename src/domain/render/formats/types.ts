import type { PromptSegment } from '../prompt';

export interface RenderContext {
  /** tool_use id → tool name, for providers that answer tool results by name (Gemini). */
  toolNames: Map<string, string>;
}

/**
 * How one format writes a prompt: each segment becomes a list of items (JSON texts); an expansion wraps the items of
 * every section in the format's request shape. Changing any byte here resets users' caches: bump RENDERER_VERSION
 * (index.ts) and the golden digests together.
 */
export interface Serialisation {
  /** Items of one segment (segmentItems has refused what the format cannot take, and learnt its tool names). */
  items(seg: PromptSegment, ctx: RenderContext): string[];
  /** Section items in the format's request shape; empty sections are left out. */
  wrap(tools: string[], system: string[], messages: string[]): string;
  /** Whether the format takes Anthropic-defined tools (another refuses a segment holding one). */
  definedTools: boolean;
}
