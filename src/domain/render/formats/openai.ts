// Rules the two OpenAI request formats (Chat Completions, Responses) share.
import { property, valueOf, type JsonNode } from '../json-text';
import { isRecord, type Json } from '../../records';
import type { InlineRules } from './types';

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
