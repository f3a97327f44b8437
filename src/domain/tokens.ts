// Token counts and token offsets per tokenizer family.
//
// OpenAI encodings are exact (gpt-tokenizer, a tiktoken port). Anthropic and
// Gemini do not publish their tokenizers, so their figures are estimates:
// the exact o200k_base count times a per-family factor. o200k is already
// computed at mint, so the estimate costs nothing extra, and unlike a
// bytes-per-token rule it follows the content type (code, JSON, CJK, prose
// all tokenize at very different densities, and o200k tracks that). The
// factors are priors only: reconciliation calibrates estimated spans against
// the provider-reported prompt totals (see DESIGN.md, "Attribution").

import * as cl100k from 'gpt-tokenizer/encoding/cl100k_base';
import * as o200k from 'gpt-tokenizer/encoding/o200k_base';
import cl100kRanks from 'gpt-tokenizer/bpeRanks/cl100k_base';
import o200kRanks from 'gpt-tokenizer/bpeRanks/o200k_base';
import type { TokenizerFamily } from './catalog/types';
import { mediaSpans, mediaTokens, type MediaSpan } from './media-tokens';
import { pushAll } from './arrays';
import { CL100K_TOKEN_SPLIT_REGEX as CL100K_SPLIT, O200K_TOKEN_SPLIT_REGEX as O200K_SPLIT } from 'gpt-tokenizer/esm/encodingParams/constants';

export type { TokenizerFamily };
export type ExactFamily = 'o200k_base' | 'cl100k_base';
export type EstimatedFamily = 'anthropic' | 'gemini';

export const TOKENIZER_FAMILIES: readonly TokenizerFamily[] = ['o200k_base', 'cl100k_base', 'anthropic', 'gemini'];
export const ESTIMATED_FAMILIES: readonly EstimatedFamily[] = ['anthropic', 'gemini'];

/**
 * Estimated tokens per o200k_base token.
 * - anthropic 1.20: Claude's tokenizer is consistently reported at 15–25% more
 *   tokens than tiktoken encodings on English prose and code.
 * - gemini 1.07: Gemini's SentencePiece vocabulary is reported at 5–10% more
 *   tokens than o200k on English (fewer on CJK; calibration corrects the mix).
 */
export const ESTIMATE_FACTORS: Readonly<Record<EstimatedFamily, number>> = { anthropic: 1.2, gemini: 1.07 };

export type PerFamily<T> = Record<TokenizerFamily, T>;

export interface TokenCounts extends PerFamily<number> {
  /** Families whose figure is an estimate rather than an exact count. */
  estimated: EstimatedFamily[];
}

interface ExactEncoding {
  encode: typeof o200k.encode;
  countTokens: typeof o200k.countTokens;
  clearMergeCache: typeof o200k.clearMergeCache;
  /** Characters encoded since the merge cache was last cleared (see `fed`). */
  sinceClear: number;
  ranks: readonly (string | readonly number[])[];
  /** UTF-8 byte length of every token id, built on first use. */
  byteLengths?: Uint16Array;
}

const ENCODINGS: Record<ExactFamily, ExactEncoding> = {
  o200k_base: { encode: o200k.encode, countTokens: o200k.countTokens, clearMergeCache: o200k.clearMergeCache, sinceClear: 0, ranks: o200kRanks },
  cl100k_base: { encode: cl100k.encode, countTokens: cl100k.countTokens, clearMergeCache: cl100k.clearMergeCache, sinceClear: 0, ranks: cl100kRanks },
};

// gpt-tokenizer keeps a merge cache of up to 100,000 pre-tokens and, once it is full, evicts
// its oldest entry on every miss with `map.keys().next()` after a `delete`: V8 leaves the
// deleted slots in the table, and each eviction walks over all of them. Text with many
// distinct pre-tokens (a base64 image or PDF: ~1 per 4 characters) so costs time quadratic in
// its length once the cache is full — 1 MB took ~5 s, 2 MB ~12 s, blocking the event loop.
// The cache is cleared before it can fill (a pre-token is at least one character), so it
// never evicts: common words stay cached within and across calls, and nothing is quadratic.
const CLEAR_EVERY_CHARS = 50_000;

/** `enc` before encoding `piece`: its merge cache cleared when it could otherwise fill. */
function fed(enc: ExactEncoding, piece: string): ExactEncoding {
  enc.sinceClear += piece.length;
  if (enc.sinceClear > CLEAR_EVERY_CHARS) {
    enc.clearMergeCache();
    enc.sinceClear = piece.length;
  }
  return enc;
}

// Stored text is content, not control: a literal "<|endoftext|>" in a
// document must count as the ordinary text it is (tiktoken's
// encode_ordinary), not throw and not become one special token.
const ORDINARY = { disallowedSpecial: new Set<string>() };

export function isEstimated(family: TokenizerFamily): family is EstimatedFamily {
  return family === 'anthropic' || family === 'gemini';
}

/** Scales an exact o200k figure to an estimated family. Monotone, so offsets never exceed totals. */
export function estimateFromO200k(o200kTokens: number, family: EstimatedFamily): number {
  return Math.round(o200kTokens * ESTIMATE_FACTORS[family]);
}

/**
 * Tokens in `text` for one family: exact for OpenAI encodings, estimated otherwise. A base64 image or PDF in it
 * (a JSON text's) counts as the provider bills it, not as text (see media-tokens.ts).
 */
export function countTokens(text: string, family: TokenizerFamily, withMedia = true): number {
  return countAround(text, withMedia ? mediaSpans(text) : [], family);
}

/** Tokens in `text` whose media spans are already found (finding them decodes each image's head). */
function countAround(text: string, media: MediaSpan[], family: TokenizerFamily): number {
  if (media.length === 0) return countText(text, family);
  let n = 0;
  let at = 0;
  for (const m of media) {
    n += countText(text.slice(at, m.start), family) + mediaTokens(m.media, family);
    at = m.end;
  }
  return n + countText(text.slice(at), family);
}

function countText(text: string, family: TokenizerFamily): number {
  if (isEstimated(family)) return estimateFromO200k(countText(text, 'o200k_base'), family);
  if (text.length === 0) return 0;
  const enc = ENCODINGS[family];
  let n = 0;
  for (const piece of bpeSafePieces(text)) n += fed(enc, piece).countTokens(piece, ORDINARY);
  return n;
}

/** Token counts in every family (two exact encodes; the estimates derive from o200k, or with media, each its own). */
export function tokenCounts(text: string, withMedia = true): TokenCounts {
  const media = withMedia ? mediaSpans(text) : [];
  if (media.length > 0) return { ...perFamily((f) => countAround(text, media, f)), estimated: [...ESTIMATED_FAMILIES] };
  return withEstimates(countText(text, 'o200k_base'), countText(text, 'cl100k_base'));
}

const perFamily = (count: (f: TokenizerFamily) => number): PerFamily<number> => ({
  o200k_base: count('o200k_base'),
  cl100k_base: count('cl100k_base'),
  anthropic: count('anthropic'),
  gemini: count('gemini'),
});

/**
 * How many tokens of `text` lie wholly before `byteOffset` (a UTF-8 byte
 * offset, 0..byteLength). A token that straddles the offset is not counted:
 * it changes when the byte does. Exact for OpenAI encodings; for estimated
 * families the o200k figure scaled like the totals, so offset 0 gives 0 and
 * offset = byteLength gives `countTokens`.
 */
export function tokenOffsetOfByte(text: string, byteOffset: number, family: TokenizerFamily): number {
  checkByteOffset(text, byteOffset);
  if (isEstimated(family)) return estimateFromO200k(tokenOffsetOfByte(text, byteOffset, 'o200k_base'), family);
  return exactProfile(text, byteOffset, family).before;
}

/**
 * Counts and the token offset of one byte in a single encode per exact
 * family — what minting a new version needs, at half the cost of calling
 * `tokenCounts` and `tokenOffsetOfByte` separately.
 */
export function tokenCountsAt(text: string, byteOffset: number, withMedia = true): { total: TokenCounts; before: PerFamily<number> } {
  checkByteOffset(text, byteOffset);
  // With images or PDFs, the text before the byte is counted as the whole is (a cut character counts as one).
  const media = withMedia ? mediaSpans(text) : [];
  if (media.length > 0) {
    const total = { ...perFamily((f) => countAround(text, media, f)), estimated: [...ESTIMATED_FAMILIES] };
    const head = Buffer.from(text).subarray(0, byteOffset).toString('utf8');
    const headMedia = mediaSpans(head);
    return { total, before: perFamily((f) => Math.min(total[f], countAround(head, headMedia, f))) };
  }
  const o = exactProfile(text, byteOffset, 'o200k_base');
  const c = exactProfile(text, byteOffset, 'cl100k_base');
  const total = withEstimates(o.total, c.total);
  const before: PerFamily<number> = {
    o200k_base: o.before,
    cl100k_base: c.before,
    anthropic: estimateFromO200k(o.before, 'anthropic'),
    gemini: estimateFromO200k(o.before, 'gemini'),
  };
  return { total, before };
}

function withEstimates(o200kTokens: number, cl100kTokens: number): TokenCounts {
  return {
    o200k_base: o200kTokens,
    cl100k_base: cl100kTokens,
    anthropic: estimateFromO200k(o200kTokens, 'anthropic'),
    gemini: estimateFromO200k(o200kTokens, 'gemini'),
    estimated: [...ESTIMATED_FAMILIES],
  };
}

function checkByteOffset(text: string, byteOffset: number): void {
  if (!Number.isInteger(byteOffset) || byteOffset < 0 || byteOffset > Buffer.byteLength(text)) {
    throw new RangeError(`byte offset ${byteOffset} is outside 0..${Buffer.byteLength(text)}`);
  }
}

function exactProfile(text: string, byteOffset: number, family: ExactFamily): { total: number; before: number } {
  if (text.length === 0) return { total: 0, before: 0 };
  const enc = ENCODINGS[family];
  const tokens = bpeSafePieces(text).flatMap((piece) => fed(enc, piece).encode(piece, ORDINARY));
  const lengths = byteLengthsOf(enc);
  let end = 0;
  let before = 0;
  for (const token of tokens) {
    end += lengths[token] ?? 0;
    if (end > byteOffset) break;
    before++;
  }
  return { total: tokens.length, before };
}

// BPE merges within one pre-token cost time quadratic in its length: a 2 MB run
// without whitespace (base64, minified data) would block the process for
// minutes. Runs longer than this are cut into pieces tokenised on their own.
// Ordinary text has no such runs and is counted exactly; inside a cut run a
// token can no longer span the cut, which changes the count by at most one per cut.
const LONG_RUN = 256;
// Runs are read in matches of at most RUN_CHUNK code points and joined: one match over a run of millions
// (`\S{256,}` on a 4.5 MB image's base64) overflows V8's regex stack — "Maximum call stack size exceeded",
// a 500 for any request that carried one.
const RUN_CHUNK = 4096;
const RUN_CHUNK_PATTERN = new RegExp(`\\S{1,${RUN_CHUNK}}`, 'gu');
const HAS_LONG_RUN = new RegExp(`\\S{${LONG_RUN}}`, 'u');

/** [start, end) of each maximal run of non-whitespace in `text`, at least LONG_RUN code points long. */
function* longRuns(text: string): Generator<readonly [number, number]> {
  let start = -1;
  let end = -1;
  const long = () => end - start >= 2 * LONG_RUN || (end - start >= LONG_RUN && [...text.slice(start, end)].length >= LONG_RUN);
  for (const m of text.matchAll(RUN_CHUNK_PATTERN)) {
    if (m.index === end) {
      end += m[0].length;
      continue;
    }
    if (start >= 0 && long()) yield [start, end];
    start = m.index;
    end = m.index + m[0].length;
  }
  if (start >= 0 && long()) yield [start, end];
}

// The merge cache is cleared between pieces (see `fed`): a piece longer than this could fill it by itself (base64
// broken into 76-character lines has no long run, and took seconds per MB). Such a piece is cut before a space or
// a line break that follows a letter or digit and precedes a non-blank (`a b`, `a\nb`): no pre-token spans that
// place (one after punctuation can: `!\n` is one), so the count is the same as uncut.
const MAX_PIECE = 32 * 1024;
const WORD_END = /[\p{L}\p{N}]/u;

/** `text` cut at most every MAX_PIECE characters, each cut where no pre-token spans (see MAX_PIECE). */
function boundedPieces(text: string): string[] {
  if (text.length <= MAX_PIECE) return [text];
  const pieces: string[] = [];
  let at = 0;
  const safe = (i: number) => {
    const c = text.charCodeAt(i);
    return (c === 32 || c === 10) && !isBlank(text.charCodeAt(i + 1)) && WORD_END.test(text[i - 1]!);
  };
  while (text.length - at > MAX_PIECE) {
    let cut = at + MAX_PIECE;
    while (cut > at + MAX_PIECE / 2 && !safe(cut)) cut--;
    // No such place in half a piece (pretty-printed JSON of numbers, CSV, lines that end in punctuation): the last
    // place both encodings start a pre-token; only where there is none, cut anyway (the count may then differ by one).
    if (cut === at + MAX_PIECE / 2) cut = commonPreTokenStart(text, at) ?? (/[\uDC00-\uDFFF]/.test(text[at + MAX_PIECE]!) ? at + MAX_PIECE + 1 : at + MAX_PIECE);
    pieces.push(text.slice(at, cut));
    at = cut;
  }
  pieces.push(text.slice(at));
  return pieces;
}

const isBlank = (c: number) => c === 32 || c === 10 || c === 13 || c === 9;

// The encodings' own pre-tokenizers (copies: the library's are global regexes whose lastIndex it uses).
const PRE_TOKENIZERS = [new RegExp(O200K_SPLIT.source, 'gu'), new RegExp(CL100K_SPLIT.source, 'gu')];

/**
 * The last index in (at + MAX_PIECE / 2, at + MAX_PIECE] where both encodings start a pre-token, scanning from `at`
 * (itself such a place), and end one that is not all whitespace (the patterns match whitespace at the end of their
 * input otherwise: cl100k's has `\s+$`).
 */
function commonPreTokenStart(text: string, at: number): number | undefined {
  const end = at + MAX_PIECE;
  const cuts = PRE_TOKENIZERS.map((re) => {
    const found = new Set<number>();
    re.lastIndex = at;
    for (let m = re.exec(text); m !== null && m.index <= end; m = re.exec(text)) if (/\S/.test(m[0])) found.add(m.index + m[0].length);
    return found;
  });
  for (let i = end; i > at + MAX_PIECE / 2; i--) if (cuts.every((s) => s.has(i))) return i;
  return undefined;
}

export function bpeSafePieces(text: string): string[] {
  if (text.length <= MAX_PIECE) return shortRunPieces(text);
  const pieces: string[] = [];
  for (const piece of shortRunPieces(text)) pushAll(pieces, boundedPieces(piece));
  return pieces;
}

function shortRunPieces(text: string): string[] {
  if (text.length < LONG_RUN || !HAS_LONG_RUN.test(text)) return [text];
  const pieces: string[] = [];
  let at = 0;
  for (const [start, stop] of longRuns(text)) {
    if (start > at) pieces.push(text.slice(at, start));
    const run = text.slice(start, stop);
    for (let i = 0; i < run.length; ) {
      let end = Math.min(run.length, i + LONG_RUN);
      // Never cut a surrogate pair in two.
      if (end < run.length && /[\uDC00-\uDFFF]/.test(run[end]!)) end++;
      pieces.push(run.slice(i, end));
      i = end;
    }
    at = stop;
  }
  if (at < text.length) pieces.push(text.slice(at));
  return pieces;
}

// Byte-level BPE tokens can end in the middle of a UTF-8 sequence, so token
// boundaries are measured in bytes from the vocabulary itself, never by
// decoding tokens one at a time (a partial sequence decodes to U+FFFD).
function byteLengthsOf(enc: ExactEncoding): Uint16Array {
  if (enc.byteLengths) return enc.byteLengths;
  const lengths = new Uint16Array(enc.ranks.length);
  enc.ranks.forEach((value, id) => {
    lengths[id] = typeof value === 'string' ? Buffer.byteLength(value) : value.length;
  });
  enc.byteLengths = lengths;
  return lengths;
}
