// What every format's reading of a turn and a reply shares (formats/*.ts): the refusals of what a session cannot
// keep, and the small readers they use.

import { escapePointer } from '../../canonical-json';
import type { ImageBlock } from '../../content';
import { invalid } from '../../errors';
import { isRecord, type Json } from '../../records';
import { nestedTooDeep, tooDeep } from '../../validation';

export { isRecord, type Json };

/** A reply that holds something the session cannot keep as it is (a tool call whose arguments are not an object, nesting too deep, a streamed index no place in the answer). */
export const UNKEEPABLE = 'unkeepable';

export const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

// Blocks and tool calls are numbered 0, 1, 2… as they come; a gateway may leave a few out. An index further on is
// no place in the answer (and an array filled up to it would take time in proportion to it): not kept.
const MAX_INDEX_GAP = 16;
export const follows = (index: unknown, count: number): index is number => typeof index === 'number' && Number.isInteger(index) && index >= 0 && index <= count + MAX_INDEX_GAP;

// resent at another detail (and price), a participant's name lost. "auto" is the default: nothing is lost.
export function keepsNoDetail(detail: unknown, at: string): void {
  if (detail !== undefined && detail !== null && detail !== 'auto') unsupported(at, `an image detail ("${String(detail)}")`);
}

export function keepsNoName(m: Json, at: string): void {
  if (m.name !== undefined && m.name !== null) unsupported(`${at}/name`, 'a message name');
}

/**
 * The same for any other field: a turn is kept with the fields its neutral form has, so one with a field it has
 * no place for (citations, a chat message's audio, a new field of a newer API) is refused rather than kept without
 * it. `null` and an empty list say nothing and pass, as do `known` fields (read by the caller, or metadata that is
 * not prompt content: cache_control, a Responses item's id and status).
 */
export function keepsOnly(o: Json, known: ReadonlySet<string>, at: string): void {
  for (const key of Object.keys(o)) {
    const v = o[key];
    if (known.has(key) || v === null || v === undefined || (Array.isArray(v) && v.length === 0)) continue;
    unsupported(`${at}/${escapePointer(key)}`, `the field "${key}"`);
  }
}

const readAt = new WeakMap<object, string>();

/**
 * Notes where in the caller's body a neutral message or block was read from: a refusal found once the turn is
 * converted (an empty text, a lone surrogate) points there (to-neutral.ts), not at its index in the converted list,
 * which differs where a system message was left out, tool outputs joined into one message, or Gemini names its parts.
 */
export function readFrom<T extends object>(value: T, at: string): T {
  readAt.set(value, at);
  return value;
}

/** Where a neutral message or block was read from (readFrom); undefined when not noted. */
export const whereRead = (value: unknown): string | undefined => (typeof value === 'object' && value !== null ? readAt.get(value) : undefined);

export function unsupported(at: string, what: string): never {
  const hint = what.includes('handle') ? ' (reference handles with x-ph-prefix or "prefix" instead)' : '';
  throw invalid(at, `x-ph-session keeps turns as text, image, tool_use and tool_result content and the model's reasoning state (thinking blocks, thought signatures, reasoning items with encrypted_content); ${what} cannot be kept${hint}`);
}

export function list(v: unknown, at: string): unknown[] {
  if (!Array.isArray(v)) throw invalid(at, 'must be an array');
  return v;
}

export function str(v: unknown, at: string): string {
  if (typeof v !== 'string') throw invalid(at, 'must be a string');
  return v;
}

export function parseArguments(text: unknown, at: string): Record<string, unknown> {
  if (text === undefined || text === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(str(text, at));
  } catch {
    // not JSON: refused below
  }
  if (!isRecord(v)) throw invalid(at, 'tool call arguments must be a JSON object');
  // JSON inside a string is not seen by the body's depth check.
  if (nestedTooDeep(v)) throw tooDeep(at);
  return v;
}

/** data: URLs carry the image itself; anything else is a URL the provider fetches. */
export function imageFromUrl(url: string, at: string): ImageBlock {
  const m = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  if (!m) return { type: 'image', source: { type: 'url', url } };
  if (!IMAGE_TYPES.has(m[1]!)) throw invalid(at, `image type ${m[1]} cannot be kept`);
  return { type: 'image', source: { type: 'base64', media_type: m[1] as 'image/png', data: m[2]! } };
}
