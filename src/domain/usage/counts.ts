// What every provider's usage rules read counts with (providers/*.ts) and the shared flow refuses with.

import type { Json } from '../records';
import type { NormalizedUsage, ProviderDiagnostics, UsageProvider } from './types';

export class UsageShapeError extends Error {
  readonly code = 'usage_shape';

  constructor(
    /** JSON Pointer to the offending value; "" is the input itself. */
    readonly path: string,
    /** What is wrong, without the place (an API error gives the place as its pointer). */
    readonly detail: string,
  ) {
    super(`${detail} (at ${path === '' ? 'the root' : path})`);
    this.name = 'UsageShapeError';
  }
}

/** More tokens than any model's context holds: a count past it is a broken report, not a prompt. */
export const MAX_TOKEN_COUNT = 100_000_000;

/** A token count: absent or null → null; anything but a non-negative integer (up to MAX_TOKEN_COUNT) is a shape error. */
export function readCount(obj: Json, key: string, path: string): number | null {
  const value = obj[key];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new UsageShapeError(pointer(path, key), `${key} is not a non-negative integer`);
  }
  // One such report would stay in the reports for good (a read of 1e15 tokens is billions of dollars "saved").
  if (value > MAX_TOKEN_COUNT) throw new UsageShapeError(pointer(path, key), `${key} is ${value}: more tokens than any model's context holds (at most ${MAX_TOKEN_COUNT})`);
  return value;
}

export function requireCount(obj: Json, key: string, path: string): number {
  const value = readCount(obj, key, path);
  if (value === null) throw new UsageShapeError(pointer(path, key), `${key} is missing`);
  return value;
}

/** Usage that says nothing: capture unknown. `complete` is false for a stream cut off before its final usage. */
export function unreportedUsage(provider: UsageProvider, model: string | null, totalPromptTokens: number | null, complete: boolean): NormalizedUsage {
  return {
    provider,
    model,
    total_prompt_tokens: totalPromptTokens,
    cache_read_tokens: null,
    cache_write_tokens: null,
    cache_write_by_ttl: null,
    uncached_tokens: null,
    output_tokens: null,
    cache_fields_reported: false,
    complete,
  };
}

/** Appends one reference token to a JSON Pointer (RFC 6901 escaping). */
export function pointer(base: string, key: string): string {
  return `${base}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
}

/** A provider's diagnostics with the reason it gives for a miss, when it gives one. */
export function withReason(diagnostics: ProviderDiagnostics, reason: string | undefined): ProviderDiagnostics {
  return reason === undefined ? diagnostics : { ...diagnostics, cache_miss_reason: reason };
}
