// Money from token counts, using one catalog entry's prices and cache multipliers.
import type { ModelEntry } from './types';

export interface TokenCounts {
  /** Prompt tokens neither read from nor written to the cache. */
  uncached: number;
  /** Prompt tokens read from the cache (billed at readMultiplier). */
  cacheRead: number;
  /** Prompt tokens written to the cache, per TTL name (e.g. { '5m': 1200, '1h': 0 }). */
  cacheWrite: Record<string, number>;
  output?: number;
}

/**
 * The input and output prices ($/MTok) of a request whose prompt has `promptTokens` tokens, cached ones included:
 * past the entry's long-context threshold the whole request is billed at the higher price; `null` (not known) at the base.
 */
export function pricesFor(entry: ModelEntry, promptTokens: number | null): { inputPerMTok: number; outputPerMTok: number } {
  const { price } = entry;
  const long = price.longContext;
  return long && promptTokens !== null && promptTokens > long.aboveTokens ? long : price;
}

/** USD cost of one request's tokens under `entry`'s price table. */
export function costOf(entry: ModelEntry, tokens: TokenCounts): number {
  const { cache } = entry;
  let inputEquivalent = count(entry, 'uncached', tokens.uncached) + count(entry, 'cacheRead', tokens.cacheRead) * cache.readMultiplier;

  for (const [ttlName, raw] of Object.entries(tokens.cacheWrite)) {
    const written = count(entry, `cacheWrite.${ttlName}`, raw);
    // Usage parsers may report every TTL bucket, including zeros for TTLs this model lacks.
    if (written === 0) continue;
    const ttl = cache.ttls.find((t) => t.name === ttlName);
    if (!ttl) {
      const known = cache.ttls.map((t) => t.name).join(', ');
      throw new Error(`costOf: model entry "${entry.id}" has no cache TTL "${ttlName}" (known: ${known})`);
    }
    // Providers that do not bill writes charge written tokens as plain input.
    inputEquivalent += written * (cache.writesBilled ? ttl.writeMultiplier : 1);
  }

  const output = tokens.output === undefined ? 0 : count(entry, 'output', tokens.output);
  const prompt = tokens.uncached + tokens.cacheRead + Object.values(tokens.cacheWrite).reduce((a, b) => a + b, 0);
  const price = pricesFor(entry, prompt);
  return (inputEquivalent * price.inputPerMTok + output * price.outputPerMTok) / 1_000_000;
}

function count(entry: ModelEntry, field: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new RangeError(`costOf: ${field} for "${entry.id}" must be a finite non-negative number, got ${value}`);
  }
  return value;
}
