import type { ModelCatalog } from './catalog/catalog';
import { computeReuseMetadata, firstDifferingByte } from './reuse-metadata';
import { tokenCounts, TOKENIZER_FAMILIES, type PerFamily } from './tokens';
import { findVolatility } from './volatility';
import type { PromptSegment } from './render/prompt';

/**
 * Reuse metadata of a handle version, computed once at mint. Artifacts and
 * session batches are tokenised; bundles and sessions add up their segments,
 * so minting never re-tokenises content that was already measured.
 */
export interface CacheableMeta {
  /** catalog entry id → whether this prefix alone can be cached: the model caches prompts and the prefix reaches its minimum. */
  clears_minimum: Record<string, boolean>;
}

export type Tokens = PerFamily<number>;

const zero = (): Tokens => ({ o200k_base: 0, cl100k_base: 0, anthropic: 0, gemini: 0 });

export function addTokens(a: Tokens, b: Tokens): Tokens {
  const out = zero();
  for (const f of TOKENIZER_FAMILIES) out[f] = a[f] + b[f];
  return out;
}

/**
 * Volatile sources a bundle or session version lists by name (`volatility.by_source`), the first in prompt order:
 * the earliest break the cached prefix. The rest are counted (`count`, `sources`): every version of a session stores
 * its meta, and a list of every volatile batch would grow with the square of its turns.
 */
export const VOLATILE_SOURCES_LISTED = 50;

export class HandleMeter {
  constructor(private readonly catalog: ModelCatalog) {}

  /** Whether `tokens` clears each catalog model's minimum (in that model's tokenizer family). */
  cacheable(tokens: Tokens): CacheableMeta {
    const clears: Record<string, boolean> = {};
    // A model without prompt caching (gpt-4, gpt-3.5-turbo) has a minimum of 0 that nothing is cached above.
    for (const m of this.catalog.entries()) clears[m.id] = m.cache.supported !== false && tokens[m.tokenizer] >= m.cache.minTokens;
    return { clears_minimum: clears };
  }

  /** `json`: the text is JSON (tools, messages), whose base64 images and PDFs count as media; else plain text throughout. */
  artifact(text: string, previousText: string | undefined, json = true) {
    const meta = computeReuseMetadata({ text, previous: previousText === undefined ? undefined : { text: previousText }, media: json });
    return { ...meta, estimated: ['anthropic', 'gemini'], ...this.cacheable(meta.tokens) };
  }

  /** Tokens of a batch of session messages (their canonical JSON). */
  batch(text: string) {
    const findings = findVolatility(text);
    return { tokens: tokenCounts(text), volatility: { count: findings.length, findings: findings.slice(0, 100) } };
  }

  /**
   * A bundle or session version: totals over its segments, volatility by
   * source (the first VOLATILE_SOURCES_LISTED), and — against the previous version — the first segment that
   * changed and the cached tokens the change invalidates.
   */
  composite(segments: PromptSegment[], text: string, previous?: { segments: PromptSegment[]; text: string }) {
    let tokens = zero();
    const volatile = new Map<string, number>();
    for (const s of segments) {
      tokens = addTokens(tokens, s.tokens ?? zero());
      if (s.volatility) volatile.set(s.source, s.volatility);
    }
    let count = 0;
    for (const n of volatile.values()) count += n;
    const meta: Record<string, unknown> = {
      bytes: Buffer.byteLength(text),
      tokens,
      estimated: ['anthropic', 'gemini'],
      volatility: { count, sources: volatile.size, by_source: Object.fromEntries([...volatile].slice(0, VOLATILE_SOURCES_LISTED)) },
      ...this.cacheable(tokens),
    };
    if (previous) {
      let i = 0;
      while (i < segments.length && i < previous.segments.length && segments[i]!.source === previous.segments[i]!.source) i++;
      let invalidated = zero();
      // Segments before the first changed one keep their cache; a pure append invalidates nothing.
      if (i < previous.segments.length) for (const s of segments.slice(i)) invalidated = addTokens(invalidated, s.tokens ?? zero());
      meta.change = {
        first_diff_byte: firstDifferingByte(Buffer.from(text), Buffer.from(previous.text)),
        first_diff_segment: i < segments.length ? segments[i]!.source : null,
        invalidated_tokens: invalidated,
      };
    }
    return meta;
  }
}
