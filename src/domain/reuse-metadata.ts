// Reuse metadata, computed once per handle version at mint: size, tokens
// per tokenizer family, volatile values, and — for a new version — where it
// first differs from the previous one and how many cached tokens that costs.
// Keys are snake_case because this object is served by the API as-is.

import { tokenCounts, tokenCountsAt, type PerFamily, type TokenCounts } from './tokens';
import { findVolatility, type VolatilityFinding } from './volatility';

/**
 * At most this many findings are stored per version (the earliest ones:
 * the first volatile byte is what breaks a prefix). `count` is always the
 * full number, so `findings.length < count` means the list was cut.
 */
export const MAX_STORED_FINDINGS = 1000;

export interface ReuseChange {
  /** First UTF-8 byte offset where the new text differs from the previous version's; null when identical. */
  first_diff_byte: number | null;
  /** Tokens of the new text wholly before that byte, per family (the whole text when identical). */
  first_diff_token: PerFamily<number>;
  /** Tokens of the new text from that byte to the end: the cached prefix this change invalidates. */
  invalidated_tokens: PerFamily<number>;
}

export interface ReuseMetadata {
  bytes: number;
  tokens: TokenCounts;
  volatility: { count: number; findings: VolatilityFinding[] };
  change?: ReuseChange;
}

export interface ReuseMetadataInput {
  /** The bytes the artifact renders from (canonical JSON text for JSON kinds). */
  text: string;
  previous?: { text: string };
  /** Whether base64 images and PDFs in the (JSON) text count as media, as providers bill them (default: yes). */
  media?: boolean;
}

export function computeReuseMetadata(input: ReuseMetadataInput): ReuseMetadata {
  const bytes = Buffer.from(input.text);
  const findings = findVolatility(input.text);
  const volatility = { count: findings.length, findings: findings.slice(0, MAX_STORED_FINDINGS) };

  const media = input.media ?? true;
  if (!input.previous) return { bytes: bytes.length, tokens: tokenCounts(input.text, media), volatility };

  const firstDiff = firstDifferingByte(bytes, Buffer.from(input.previous.text));
  // One encode per exact family yields both the totals and the offset.
  const { total, before } =
    firstDiff === null
      ? { total: tokenCounts(input.text, media), before: null }
      : tokenCountsAt(input.text, firstDiff, media);
  const firstDiffToken = before ?? pickFamilies(total);
  const change: ReuseChange = {
    first_diff_byte: firstDiff,
    first_diff_token: firstDiffToken,
    invalidated_tokens: {
      o200k_base: total.o200k_base - firstDiffToken.o200k_base,
      cl100k_base: total.cl100k_base - firstDiffToken.cl100k_base,
      anthropic: total.anthropic - firstDiffToken.anthropic,
      gemini: total.gemini - firstDiffToken.gemini,
    },
  };
  return { bytes: bytes.length, tokens: total, volatility, change };
}

/**
 * Index of the first byte where `a` and `b` differ, or null when equal.
 * When one is a prefix of the other, the shorter one's length.
 */
export function firstDifferingByte(a: Uint8Array, b: Uint8Array): number | null {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  if (i < n) return i;
  return a.length === b.length ? null : n;
}

function pickFamilies(counts: TokenCounts): PerFamily<number> {
  return {
    o200k_base: counts.o200k_base,
    cl100k_base: counts.cl100k_base,
    anthropic: counts.anthropic,
    gemini: counts.gemini,
  };
}
