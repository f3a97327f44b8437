// What a provider caches is the prompt it builds from a request, not the
// request's JSON: `"content": "hi"` and `"content": [{"type": "text", "text": "hi"}]`
// are one prompt, and so are a message with or without `refusal: null`, the
// `annotations` an SDK copies back from a reply, a Responses item's `id`, and the
// cache markers themselves. Both cache simulations key blocks on this form:
// the provider simulator (blocks.ts) and reconciliation (the renderer's unit
// keys), so a turn's messages sent inline, then again from a session rendered
// by the service, are the same cached prefix, as they are for the provider.

import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

export type PromptFormat = 'anthropic' | 'openai-chat' | 'openai-responses' | 'gemini';

type Json = Record<string, unknown>;

const MARKERS = new Set(['cache_control', 'prompt_cache_breakpoint']);
/** Reply fields SDKs send back that the provider does not put in the prompt. */
const REPLY_ONLY = new Set(['annotations', 'logprobs']);
/** A Responses output item's own id and status (its call_id stays: the model sees that). */
const RESPONSES_ITEM_ONLY = new Set(['id', 'status']);

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The prompt a value stands for, in one spelling (see the file comment). */
export function semanticForm(format: PromptFormat, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => semanticForm(format, v));
  if (!isObject(value)) return value;
  const responsesItem = format === 'openai-responses' && (value.type === 'message' || value.type === 'function_call' || value.type === 'reasoning' || (value.type === undefined && 'role' in value));
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === null || v === undefined || MARKERS.has(k)) continue;
    if (REPLY_ONLY.has(k) && Array.isArray(v) && v.length === 0) continue;
    if (responsesItem && RESPONSES_ITEM_ONLY.has(k)) continue;
    out[k] = semanticForm(format, v);
  }
  if (typeof out.role === 'string') {
    if (typeof out.content === 'string') out.content = [{ type: textType(format, out.role), text: out.content }];
    if (format === 'openai-responses') out.type ??= 'message';
  }
  return out;
}

/** A short digest of a value's semantic form, with the format (another API is another prompt). */
export function semanticKey(format: PromptFormat, value: unknown): string {
  return createHash('sha256')
    .update(`${format}\n${canonicalize(semanticForm(format, value)) ?? 'null'}`, 'utf8')
    .digest('hex')
    .slice(0, 16);
}

function textType(format: PromptFormat, role: string): string {
  if (format === 'openai-responses') return role === 'assistant' ? 'output_text' : 'input_text';
  return 'text';
}
