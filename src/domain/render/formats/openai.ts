// Rules the two OpenAI request formats (Chat Completions, Responses) share.
import { prependProperty, property, valueOf, type Edit, type JsonNode } from '../json-text';
import { isRecord, type Json } from '../../records';
import type { ModelEntry } from '../../catalog/types';
import { chooseBreakpoints, maxBreakpoints } from '../breakpoints';
import type { Breakpoint, RenderedSegment } from '../request';
import type { BreakpointRules, InlineRules, MarkableUnit } from './types';

/** A system or developer message (a chat message, or a Responses input item of type message): its role, else null. */
export function instructionRole(node: JsonNode): string | null {
  if (node.type !== 'object') return null;
  const type = property(node, 'type');
  if (type && valueOf(type) !== 'message') return null;
  const role = property(node, 'role');
  const value = role ? valueOf(role) : null;
  return value === 'system' || value === 'developer' ? value : null;
}

/**
 * The caller's content an artifact can stand for: its tools (each of the `function` type), and the system messages at
 * the head of the messages (`messagesKey`) whose content is a string or one text part (`textPart`: that part's type).
 */
export function openaiInline(messagesKey: string, textPart: string, toolFunction: (tool: Json) => unknown): InlineRules {
  const systemText = (v: unknown): string | null => {
    if (!isRecord(v) || v.role !== 'system' || (v.type !== undefined && v.type !== 'message')) return null;
    if (typeof v.content === 'string') return v.content;
    const parts = Array.isArray(v.content) ? v.content : [];
    const part: unknown = parts.length === 1 ? parts[0] : undefined;
    return isRecord(part) && part.type === textPart && typeof part.text === 'string' ? part.text : null;
  };
  return {
    storedTool(tool) {
      const f = toolFunction(tool);
      if (tool.type !== 'function' || !isRecord(f)) return null;
      return { name: f.name, ...(f.description === undefined ? {} : { description: f.description }), input_schema: f.parameters };
    },
    systemText,
    systemUnits(body) {
      const list = Array.isArray(body[messagesKey]) ? (body[messagesKey] as unknown[]) : [];
      const out = [];
      for (let i = 0; i < list.length; i++) {
        const text = systemText(list[i]);
        if (text === null) break;
        out.push({ pointer: `/${messagesKey}/${i}`, value: list[i], text, section: 'messages' as const });
      }
      return out;
    },
  };
}

/** GPT-5.6 and later take explicit breakpoints on content blocks (`prompt_cache_breakpoint`); other models none. */
export const openaiBreakpoints: BreakpointRules = {
  place({ root, model, segments, lastUnit, callerMarked, callerBreakpoints }) {
    const breakpoints: Breakpoint[] = [];
    if (model.provider !== 'openai' || !model.cache.acceptsBreakpoints) return breakpoints;
    // In implicit mode OpenAI spends one write itself.
    const slots = maxBreakpoints(model) - (model.cache.implicitBreakpoint ? 1 : 0) - callerBreakpoints;
    // Every mark without a TTL of its own lives for the request's prompt_cache_options.ttl (a TTL the model has).
    const options = property(root, 'prompt_cache_options');
    const ttl = ttlOf(model, options && property(options, 'ttl')) ?? model.cache.defaultTtl;
    const markable = (i: number) => !!lastUnit[i]!.item && openaiBreakpoint(lastUnit[i]!.item!.text) !== null;
    for (const b of chooseBreakpoints(segments, slots, model, markable)) {
      const item = lastUnit[b]!.item!;
      item.text = openaiBreakpoint(item.text)!;
      breakpoints.push({ segment: b, source: segments[b]!.source, token_end: segments[b]!.token_end, ttl, set_by: 'service' });
    }
    // Recorded, not rendered: the caller's own marks, and OpenAI's implicit one at the end of the newest message it
    // can go on (not assistant output), so reconciliation simulates every prefix the provider writes and reads.
    const mark = (i: number, set_by: Breakpoint['set_by']) => {
      const s = segments[i]!;
      if (!breakpoints.some((b) => b.segment === i)) breakpoints.push({ segment: i, source: s.source, token_end: s.token_end, ttl, set_by });
    };
    for (const i of callerMarked.keys()) mark(i, 'caller');
    const mode = options ? property(options, 'mode') : undefined;
    const newest = segments.findLastIndex((_, i) => !isAssistantOutput(lastUnit[i]!));
    if (model.cache.implicitBreakpoint && !(mode && valueOf(mode) === 'explicit') && newest >= 0) mark(newest, 'provider');
    return breakpoints.sort((a, b) => a.segment - b.segment);
  },
};

/**
 * The prompt_cache_key given, else one the service adds: only for OpenAI's own models (a self-hosted server, the vLLM
 * entry, has no use for the key, and logs or refuses it).
 */
export function promptCacheKey(root: JsonNode, model: ModelEntry, segments: RenderedSegment[], lastUnit: MarkableUnit[]): { key: string | null; edit?: Edit } {
  const given = property(root, 'prompt_cache_key');
  if (given) {
    const value = valueOf(given);
    return { key: typeof value === 'string' ? value : null };
  }
  if (model.provider !== 'openai') return { key: null };
  const lead = segments.find((s, i) => s.source !== 'inline' && lastUnit[i]!.item !== null);
  if (!lead) return { key: null };
  // Route requests that start with the same handle to the same cache; the id, not the version, so a new version
  // stays on it. For a session, the session: OpenAI spreads one key over more machines past about 15 requests a
  // minute, and a conversation's growing history is its longest reusable prefix, kept on one machine this way.
  const key = `ph-${lead.path[0]!.split('@')[0]}`;
  return { key, edit: prependProperty(root, 'prompt_cache_key', JSON.stringify(key)) };
}

/** OpenAI's extended retention (`"24h"`; `"in_memory"` is the default): writes of such a request live that long. */
export const retention = (root: JsonNode, model: ModelEntry) => ttlOf(model, property(root, 'prompt_cache_retention'));

/**
 * An OpenAI item we rendered, with `prompt_cache_breakpoint` on its last content block
 * (a plain-string content becomes one text block); null where OpenAI takes none
 * (assistant output, tool calls and their outputs in the Responses API).
 */
function openaiBreakpoint(text: string): string | null {
  const item = JSON.parse(text) as { role?: string; type?: string; content?: unknown };
  if (!item.role || item.role === 'assistant' || item.content === undefined || item.content === null) return null;
  const marker = { mode: 'explicit' };
  const responses = item.type === 'message';
  if (typeof item.content === 'string')
    item.content = [{ type: responses ? 'input_text' : 'text', text: item.content, prompt_cache_breakpoint: marker }];
  else if (Array.isArray(item.content) && item.content.length) {
    const last = item.content[item.content.length - 1] as Record<string, unknown>;
    item.content[item.content.length - 1] = { ...last, prompt_cache_breakpoint: marker };
  } else return null;
  return JSON.stringify(item);
}

/** The TTL a body field names, when the model has it (else null: the model's default applies). */
function ttlOf(model: ModelEntry, node: JsonNode | undefined): string | null {
  const name = node ? valueOf(node) : undefined;
  return typeof name === 'string' && model.cache.ttls.some((t) => t.name === name) ? name : null;
}

/** Whether a unit is the model's own output (an assistant message, a Responses function call or reasoning item). */
function isAssistantOutput(unit: MarkableUnit): boolean {
  // A block of a message that mixes handles and the caller's blocks is hashed as `role:block`.
  const role = /^(\w+):[{"[]/.exec(unit.hashText)?.[1];
  if (role) return role === 'assistant' || role === 'model';
  let value: unknown;
  try {
    value = JSON.parse(unit.item ? unit.item.text : unit.hashText);
  } catch {
    return false;
  }
  if (typeof value !== 'object' || value === null) return false;
  const { role: r, type } = value as { role?: unknown; type?: unknown };
  return r === 'assistant' || type === 'function_call' || type === 'reasoning';
}
