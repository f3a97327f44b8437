// The caller's own prompt content an artifact can stand for: where an artifact's content appears in a request body of
// each format, as the content a mint of it would store. Render's match_handles finds handles by it; the CLI's
// `suggest` lists what a log repeats by it, so what it suggests minting is what an import then matches.

import { unitKey } from '../simulator/semantic';
import type { ToolDefinition } from '../content';
import { newRenderContext, segmentItems } from './formats';
import type { Section } from './prompt';
import type { RequestFormat } from './request';
import { isRecord } from '../records';

type Json = Record<string, unknown>;

/** A caller's tool as a tools artifact stores it (its definition; the cache mark apart), or null when it is not one. */
export function storedTool(format: RequestFormat, v: unknown): unknown {
  if (!isRecord(v) || v.type === 'handle') return null;
  if (format === 'anthropic') return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'cache_control'));
  const f = format === 'openai-chat' ? v.function : v;
  if (v.type !== 'function' || !isRecord(f)) return null;
  return { name: f.name, ...(f.description === undefined ? {} : { description: f.description }), input_schema: f.parameters };
}

/** The text of an Anthropic system block (or its string) or a Gemini system part, else null. */
export function systemBlockText(format: RequestFormat, v: unknown): string | null {
  if (typeof v === 'string') return format === 'anthropic' ? v : null;
  return isRecord(v) && typeof v.text === 'string' && (format === 'gemini' || v.type === 'text') ? v.text : null;
}

/** The text of an OpenAI system message (a string, or one text part), else null. */
export function systemMessageText(format: RequestFormat, v: unknown): string | null {
  if (!isRecord(v) || v.role !== 'system' || (v.type !== undefined && v.type !== 'message')) return null;
  if (typeof v.content === 'string') return v.content;
  const parts = Array.isArray(v.content) ? v.content : [];
  const part: unknown = parts.length === 1 ? parts[0] : undefined;
  return isRecord(part) && part.type === (format === 'openai-chat' ? 'text' : 'input_text') && typeof part.text === 'string' ? part.text : null;
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
  if (format !== 'gemini' && Array.isArray(tools) && tools.length) {
    const stored = tools.map((t) => storedTool(format, t));
    if (stored.every((t) => t !== null)) out.push({ kind: 'tools', content: stored, pointer: '/tools', section: 'tools', values: tools });
  }
  const system = (key: string, v: unknown, section: Section, text: string | null) => {
    if (text !== null) out.push({ kind: 'system', content: text, pointer: key, section, values: [v] });
  };
  if (format === 'anthropic') {
    if (typeof body.system === 'string') system('/system', body.system, 'system', body.system);
    else if (Array.isArray(body.system)) body.system.forEach((b, i) => system(`/system/${i}`, b, 'system', systemBlockText(format, b)));
  } else if (format === 'gemini') {
    const key = body.systemInstruction === undefined && body.system_instruction !== undefined ? 'system_instruction' : 'systemInstruction';
    const parts = isRecord(body[key]) ? (body[key] as Json).parts : undefined;
    if (Array.isArray(parts)) parts.forEach((p, i) => system(`/${key}/parts/${i}`, p, 'system', systemBlockText(format, p)));
  } else {
    const key = format === 'openai-chat' ? 'messages' : 'input';
    const list = Array.isArray(body[key]) ? (body[key] as unknown[]) : [];
    for (let i = 0; i < list.length; i++) {
      const text = systemMessageText(format, list[i]);
      if (text === null) break;
      system(`/${key}/${i}`, list[i], 'messages', text);
    }
  }
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
