// What a provider caches is the prompt it builds from a request, not the
// request's JSON: `"content": "hi"` and `"content": [{"type": "text", "text": "hi"}]`
// are one prompt, and so are a message with or without `refusal: null`, the
// empty `annotations` an SDK copies back from a reply, a Responses message's or
// call's `id` and `status`, and the cache markers themselves. Both cache
// simulations key blocks on this form: the provider simulator (blocks.ts) and
// reconciliation (the renderer's unit keys), so a turn's messages sent inline,
// then again from a session rendered by the service, are one cached prefix, as
// they are for the provider.
//
// Only the structure is normalised (messages, items, content parts, tool calls
// and definitions, at their own level). Free-form JSON — a tool call's input, a
// tool's schema — is kept exactly, nulls and key order included: the provider
// writes it into the prompt as it is.

import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { isRecord } from '../records';

export type PromptFormat = 'anthropic' | 'openai-chat' | 'openai-responses' | 'gemini';

type Json = Record<string, unknown>;

const MARKERS = new Set(['cache_control', 'prompt_cache_breakpoint']);
/** Reply fields SDKs send back that the provider does not put in the prompt (when empty). */
const REPLY_ONLY = new Set(['annotations', 'logprobs']);
/** Structure inside a message, item or tool: normalised at its own level too. */
const NESTED = new Set(['content', 'tool_calls', 'function', 'source', 'output', 'image_url', 'parts', 'functionCall', 'functionResponse', 'functionDeclarations']);
/** Free-form JSON the provider writes into the prompt as sent: kept verbatim, key order and nulls included. */
const VERBATIM = new Set(['input', 'parameters', 'input_schema', 'arguments', 'args', 'parametersJsonSchema']);

/** Anthropic caches the messages under these request settings: a change of either invalidates them (tools and system stay). */
export const MESSAGE_CACHE_SETTINGS = ['tool_choice', 'thinking'] as const;


/** The prompt a value stands for, in one spelling (see the file comment). */
export function semanticForm(format: PromptFormat, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => semanticForm(format, v));
  if (!isRecord(value)) return value;
  // A Responses message or function call's own id and status (not a reasoning item's: the provider reads its content by id).
  const responsesItem = format === 'openai-responses' && (value.type === 'message' || value.type === 'function_call' || (value.type === undefined && typeof value.role === 'string'));
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === null || v === undefined || MARKERS.has(k)) continue;
    if (REPLY_ONLY.has(k) && Array.isArray(v) && v.length === 0) continue;
    if (responsesItem && (k === 'id' || k === 'status')) continue;
    const kept = VERBATIM.has(k) ? { verbatim: JSON.stringify(v) } : NESTED.has(k) ? semanticForm(format, v) : v;
    // defineProperty: a "__proto__" key stays a key.
    Object.defineProperty(out, k, { value: kept, enumerable: true, writable: true, configurable: true });
  }
  if (typeof out.role === 'string') {
    if (typeof out.content === 'string') out.content = [{ type: textType(format, out.role), text: out.content }];
    if (format === 'openai-responses') out.type ??= 'message';
  }
  return out;
}

/** A short digest of a value's semantic form, with the format (another API is another prompt) and where it stands. */
export function semanticKey(format: PromptFormat, value: unknown, section = ''): string {
  return createHash('sha256')
    .update(`${format}\n${section}\n${canonicalize(semanticForm(format, value)) ?? 'null'}`, 'utf8')
    .digest('hex')
    .slice(0, 16);
}

/**
 * The key of one rendered unit: what a string stands for where it stands (an Anthropic system string is a text
 * block; a Responses string input is the user's message), and the section, since the same text as instructions
 * and as a message is another prompt.
 */
export function unitKey(format: PromptFormat, section: string, value: unknown): string {
  let v = value;
  if (typeof v === 'string' && section === 'system' && format === 'anthropic') v = { type: 'text', text: v };
  else if (typeof v === 'string' && section === 'messages' && format === 'openai-responses') v = { role: 'user', content: v };
  return semanticKey(format, v, placeOf(format, section, value));
}

/**
 * Where a unit sits in the prompt the provider builds: OpenAI keeps system messages among the messages (a system
 * handle renders as one), and only Responses `instructions` (a string) apart.
 */
function placeOf(format: PromptFormat, section: string, value: unknown): string {
  if (format !== 'openai-chat' && format !== 'openai-responses') return section;
  if (section === 'tools') return section;
  return section === 'system' && typeof value === 'string' ? 'instructions' : 'messages';
}

function textType(format: PromptFormat, role: string): string {
  if (format === 'openai-responses') return role === 'assistant' ? 'output_text' : 'input_text';
  return 'text';
}
