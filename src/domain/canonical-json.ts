import canonicalize from 'canonicalize';
import { invalid } from './errors';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * RFC 8785 (JCS) canonical text of a JSON value, via the reference
 * implementation's npm package. Rejects lone surrogates instead of letting
 * them become U+FFFD: stored bytes are never repaired.
 */
export function canonicalJson(value: unknown, pointer = ''): string {
  const bad = findInvalidJson(value, pointer);
  if (bad !== null) throw invalid(bad.pointer, bad.detail);
  const text = canonicalize(value);
  if (text === undefined) throw invalid(pointer, 'value is not serialisable as JSON');
  return text;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

export function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

/** JSON pointer of the first string (key or value) holding a lone surrogate, or null. */
export function findLoneSurrogate(value: unknown, pointer = ''): string | null {
  if (typeof value === 'string') return hasLoneSurrogate(value) ? pointer : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const hit = findLoneSurrogate(value[i], `${pointer}/${i}`);
      if (hit !== null) return hit;
    }
    return null;
  }
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const child = `${pointer}/${escapePointer(k)}`;
      if (hasLoneSurrogate(k)) return child;
      const hit = findLoneSurrogate(v, child);
      if (hit !== null) return hit;
    }
  }
  return null;
}

/**
 * The first value JSON cannot carry faithfully: a lone surrogate (not Unicode)
 * or a number that parsed to ±Infinity (e.g. 1e400). Both are refused, never repaired.
 */
export function findInvalidJson(value: unknown, pointer = ''): { pointer: string; detail: string } | null {
  const surrogate = findLoneSurrogate(value, pointer);
  if (surrogate !== null) return { pointer: surrogate, detail: 'string contains a lone UTF-16 surrogate (not valid Unicode)' };
  const number = findNonFinite(value, pointer);
  if (number !== null) return { pointer: number, detail: 'number is out of range (it is not finite as a double)' };
  return null;
}

function findNonFinite(value: unknown, pointer: string): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : pointer;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const hit = findNonFinite(value[i], `${pointer}/${i}`);
      if (hit !== null) return hit;
    }
  } else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) {
      const hit = findNonFinite(v, `${pointer}/${escapePointer(k)}`);
      if (hit !== null) return hit;
    }
  return null;
}

export function escapePointer(segment: string): string {
  // A key with a lone surrogate is named with U+FFFD in its place: a pointer is text a client must be able to decode.
  return segment.replace(LONE_SURROGATES, '\uFFFD').replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Emits a JSON structure whose key order is the insertion order we built,
 * except for values wrapped in `Canonical`, which are emitted as their JCS
 * text. Rendered expansions use this: fixed structural order, canonical user JSON.
 */
export class Canonical {
  constructor(readonly text: string) {}
}

export function emitJson(value: unknown): string {
  if (value instanceof Canonical) return value.text;
  if (Array.isArray(value)) return `[${value.map(emitJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const parts: string[] = [];
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue;
      parts.push(`${JSON.stringify(k)}:${emitJson(v)}`);
    }
    return `{${parts.join(',')}}`;
  }
  return JSON.stringify(value);
}
