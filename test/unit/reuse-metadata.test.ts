import fc from 'fast-check';
import { encode as encodeCl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { encode as encodeO200k } from 'gpt-tokenizer/encoding/o200k_base';
import { describe, expect, it } from 'vitest';
import { computeReuseMetadata, firstDifferingByte, MAX_STORED_FINDINGS } from '../../src/domain/reuse-metadata';
import {
  countTokens,
  ESTIMATE_FACTORS,
  tokenCounts,
  tokenOffsetOfByte,
  TOKENIZER_FAMILIES,
} from '../../src/domain/tokens';

const ORDINARY = { disallowedSpecial: new Set<string>() };

function bruteFirstDiff(a: string, b: string): number | null {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if (x[i] !== y[i]) return i;
  return null;
}

describe('token counts', () => {
  it('counts o200k_base exactly, as gpt-tokenizer does', () => {
    expect(countTokens('Hello, world!', 'o200k_base')).toBe(4);
    expect(encodeO200k('Hello, world!')).toEqual([13225, 11, 2375, 0]);
    const text = 'The quick brown fox jumps over the lazy dog.';
    expect(countTokens(text, 'o200k_base')).toBe(encodeO200k(text).length);
    expect(countTokens(text, 'cl100k_base')).toBe(encodeCl100k(text).length);
  });

  it('flags anthropic and gemini as estimates derived from o200k', () => {
    const counts = tokenCounts('The quick brown fox jumps over the lazy dog.');
    expect(counts).toEqual({
      o200k_base: 10,
      cl100k_base: 10,
      anthropic: Math.round(10 * ESTIMATE_FACTORS.anthropic),
      gemini: Math.round(10 * ESTIMATE_FACTORS.gemini),
      estimated: ['anthropic', 'gemini'],
    });
    expect(tokenCounts('')).toMatchObject({ o200k_base: 0, cl100k_base: 0, anthropic: 0, gemini: 0 });
  });

  it('counts special-token text as ordinary text instead of throwing', () => {
    const text = '<|endoftext|> is text';
    expect(countTokens(text, 'o200k_base')).toBe(encodeO200k(text, ORDINARY).length);
    expect(countTokens(text, 'cl100k_base')).toBe(encodeCl100k(text, ORDINARY).length);
    expect(countTokens(text, 'o200k_base')).toBeGreaterThan(1);
  });

  it('counts tokens wholly before a byte, even when a token ends mid-character', () => {
    // cl100k: h|él|lo| w|ör|ld|<20 e6 9d>|<b1>|京 — 東 (e6 9d b1) is split across two tokens.
    // o200k:  hé|llo| w|ör|ld| 東京
    const text = 'héllo wörld 東京';
    expect(Buffer.byteLength(text)).toBe(20);
    expect(tokenOffsetOfByte(text, 0, 'cl100k_base')).toBe(0);
    expect(tokenOffsetOfByte(text, 15, 'cl100k_base')).toBe(6);
    expect(tokenOffsetOfByte(text, 16, 'cl100k_base')).toBe(7);
    expect(tokenOffsetOfByte(text, 17, 'cl100k_base')).toBe(8);
    expect(tokenOffsetOfByte(text, 20, 'cl100k_base')).toBe(9);
    expect(tokenOffsetOfByte(text, 3, 'o200k_base')).toBe(1);
    expect(tokenOffsetOfByte(text, 16, 'o200k_base')).toBe(5);
    expect(tokenOffsetOfByte(text, 20, 'o200k_base')).toBe(6);
    expect(() => tokenOffsetOfByte(text, 21, 'o200k_base')).toThrow(RangeError);
    expect(() => tokenOffsetOfByte(text, -1, 'o200k_base')).toThrow(RangeError);
  });

  it('ends every family at its total and never decreases (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), fc.nat(), (text, seed) => {
        const bytes = Buffer.byteLength(text);
        const cut = bytes === 0 ? 0 : seed % (bytes + 1);
        for (const family of TOKENIZER_FAMILIES) {
          const total = countTokens(text, family);
          expect(tokenOffsetOfByte(text, bytes, family)).toBe(total);
          const before = tokenOffsetOfByte(text, cut, family);
          expect(before).toBeGreaterThanOrEqual(0);
          expect(before).toBeLessThanOrEqual(total);
          if (cut > 0) expect(tokenOffsetOfByte(text, cut - 1, family)).toBeLessThanOrEqual(before);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('computeReuseMetadata', () => {
  it('reports size, tokens and volatility for a first version', () => {
    const text = 'Größe: today is 2026-11-21T10:00:00Z.'; // "Größe: today is " is 16 chars, 18 bytes
    const meta = computeReuseMetadata({ text });
    expect(meta.bytes).toBe(Buffer.byteLength(text));
    expect(meta.tokens).toEqual(tokenCounts(text));
    expect(meta.volatility).toEqual({
      count: 1,
      findings: [{ kind: 'iso_timestamp', offset: 18, text: '2026-11-21T10:00:00Z' }],
    });
    expect(meta.change).toBeUndefined();
  });

  it.each([
    ['ascii', 'abd', 'abc', 2],
    ['multi-byte vs ascii', 'hello', 'héllo', 1],
    ['inside a multi-byte character', 'è', 'é', 1],
    ['CJK', '東西', '東京', 3],
    ['emoji', 'a🦊b', 'a🐱b', 3],
    ['appended', 'Hello world', 'Hello', 5],
    ['truncated', 'Hello', 'Hello world', 5],
    ['from the start', 'xyz', 'abc', 0],
  ] as const)('finds the first differing byte: %s', (_, text, previous, expected) => {
    const meta = computeReuseMetadata({ text, previous: { text: previous } });
    expect(meta.change?.first_diff_byte).toBe(expected);
    expect(bruteFirstDiff(text, previous)).toBe(expected);
  });

  it('gives token offsets of the first differing byte and the tokens it invalidates', () => {
    const previous = 'You are a helpful assistant. Today is 2026-11-20.';
    const text = 'You are a helpful assistant. Today is 2026-11-21.';
    const meta = computeReuseMetadata({ text, previous: { text: previous } });
    const change = meta.change!;
    expect(change.first_diff_byte).toBe(47);
    for (const family of TOKENIZER_FAMILIES) {
      expect(change.first_diff_token[family]).toBe(tokenOffsetOfByte(text, 47, family));
      expect(change.first_diff_token[family] + change.invalidated_tokens[family]).toBe(meta.tokens[family]);
    }
    expect(change.invalidated_tokens.o200k_base).toBeGreaterThan(0);
    expect(change.invalidated_tokens.o200k_base).toBeLessThan(meta.tokens.o200k_base);
  });

  it('invalidates nothing when the new version is a prefix of the old one', () => {
    const meta = computeReuseMetadata({ text: 'Hello', previous: { text: 'Hello world' } });
    expect(meta.change?.invalidated_tokens).toEqual({ o200k_base: 0, cl100k_base: 0, anthropic: 0, gemini: 0 });
  });

  it('reports identical versions as null with nothing invalidated', () => {
    const text = 'same bytes, Größe 東京 🦊';
    const meta = computeReuseMetadata({ text, previous: { text } });
    expect(meta.change).toEqual({
      first_diff_byte: null,
      first_diff_token: {
        o200k_base: meta.tokens.o200k_base,
        cl100k_base: meta.tokens.cl100k_base,
        anthropic: meta.tokens.anthropic,
        gemini: meta.tokens.gemini,
      },
      invalidated_tokens: { o200k_base: 0, cl100k_base: 0, anthropic: 0, gemini: 0 },
    });
  });

  it('keeps the earliest findings and the full count when there are very many', () => {
    const text = Array.from({ length: MAX_STORED_FINDINGS + 5 }, (_, i) => `t${i} 1732183200`).join('\n');
    const meta = computeReuseMetadata({ text });
    expect(meta.volatility.count).toBe(MAX_STORED_FINDINGS + 5);
    expect(meta.volatility.findings).toHaveLength(MAX_STORED_FINDINGS);
    expect(meta.volatility.findings[0]?.offset).toBe(3);
  });

  it('first_diff_byte is the real first differing byte (property)', () => {
    const piece = fc.string({ unit: 'binary', maxLength: 12 });
    fc.assert(
      fc.property(piece, piece, piece, (shared, a, b) => {
        const text = shared + a;
        const previous = shared + b;
        const meta = computeReuseMetadata({ text, previous: { text: previous } });
        const diff = meta.change!.first_diff_byte;
        expect(diff).toBe(bruteFirstDiff(text, previous));
        expect(firstDifferingByte(Buffer.from(text), Buffer.from(previous))).toBe(diff);
        if (diff !== null) {
          const x = Buffer.from(text);
          const y = Buffer.from(previous);
          expect(x.subarray(0, diff).equals(y.subarray(0, diff))).toBe(true);
          expect(x[diff]).not.toBe(y[diff]);
        }
      }),
      { numRuns: 300 },
    );
  });
});
