// A parsed JSON value read as an object: request bodies, provider answers and usage objects are all read this way.

/** A JSON object as parsed: its members unknown until read. */
export type Json = Record<string, unknown>;

/** Whether a parsed JSON value is an object (not null, not an array). */
export function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
