// Rules the two OpenAI request formats (Chat Completions, Responses) share.
import { property, valueOf, type JsonNode } from '../json-text';

/** A system or developer message (a chat message, or a Responses input item of type message): its role, else null. */
export function instructionRole(node: JsonNode): string | null {
  if (node.type !== 'object') return null;
  const type = property(node, 'type');
  if (type && valueOf(type) !== 'message') return null;
  const role = property(node, 'role');
  const value = role ? valueOf(role) : null;
  return value === 'system' || value === 'developer' ? value : null;
}
