// The caller's own prompt content an artifact can stand for: where an artifact's content appears in a request body of
// each format (each format's rules: its module's `inline`), as the content a mint of it would store. Render's match_handles finds handles by it; the CLI's
// `suggest` lists what a log repeats by it, so what it suggests minting is what an import then matches.

import { unitKey } from '../simulator/semantic';
import type { ToolDefinition } from '../content';
import { newRenderContext, REQUEST_FORMATS, segmentItems } from './formats';
import type { RequestFormat, Section } from './prompt';
import { isRecord, type Json } from '../records';

/** A caller's tool as a tools artifact stores it (its definition; the cache mark apart), or null when it is not one. */
export function storedTool(format: RequestFormat, v: unknown): unknown {
  if (!isRecord(v) || v.type === 'handle') return null;
  return REQUEST_FORMATS[format].inline.storedTool?.(v) ?? null;
}

/** Content of a request body an artifact could stand for, where render's match_handles looks. */
export interface InlineContent {
  kind: 'tools' | 'system';
  /** As a mint of the kind takes it: the text, or the tools in the artifact's shape. */
  content: unknown;
  /** JSON pointer in the body. */
  pointer: string;
  /** The section the caller's units are in (an OpenAI system message is among the messages). */
  section: Section;
  /** The caller's units, as parsed. */
  values: unknown[];
}

/**
 * The whole tools list (not Gemini's: see README), each Anthropic system block or its string, each Gemini system part,
 * and OpenAI's system messages at the head of the messages (or Responses input), in prompt order.
 */
export function inlineContent(format: RequestFormat, body: Json): InlineContent[] {
  const out: InlineContent[] = [];
  const tools = body.tools;
  if (REQUEST_FORMATS[format].inline.storedTool && Array.isArray(tools) && tools.length) {
    const stored = tools.map((t) => storedTool(format, t));
    if (stored.every((t) => t !== null)) out.push({ kind: 'tools', content: stored, pointer: '/tools', section: 'tools', values: tools });
  }
  for (const u of REQUEST_FORMATS[format].inline.systemUnits(body)) out.push({ kind: 'system', content: u.text, pointer: u.pointer, section: u.section, values: [u.value] });
  return out;
}

/**
 * Whether an artifact holding `c.content` (as stored: `tools` canonical), rendered in the format, is the prompt the
 * caller's units are, unit for unit: the rule of match_handles (equal semantic keys).
 */
export function renderedAlike(format: RequestFormat, c: InlineContent, stored: unknown): boolean {
  const seg = c.kind === 'tools' ? { section: 'tools' as const, tools: stored as ToolDefinition[] } : { section: 'system' as const, text: stored as string };
  let items: string[];
  try {
    items = segmentItems(format, { ...seg, source: 'inline', path: [] }, newRenderContext());
  } catch {
    return false; // an Anthropic-defined tool, which this format cannot send
  }
  return items.length === c.values.length && items.every((it, i) => unitKey(format, c.section, JSON.parse(it)) === unitKey(format, c.section, c.values[i]));
}
