import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import cl100kApi from 'gpt-tokenizer/encoding/cl100k_base';
import o200kApi, { encode } from 'gpt-tokenizer/encoding/o200k_base';
import { bpeSafePieces, countTokens, tokenCounts, tokenCountsAt } from '../../src/domain/tokens';

describe('tokenising untrusted text', () => {
  it('cuts only long runs without whitespace, never a surrogate pair, and the pieces join back to the text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 2000 }), fc.nat(600), (text, run) => {
        const input = text + '\u{1F600}'.repeat(run) + text;
        const pieces = bpeSafePieces(input);
        expect(pieces.join('')).toBe(input);
        for (const p of pieces) expect(/^[\uDC00-\uDFFF]/.test(p)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('stays exact on ordinary text and finite on a 1 MB run without whitespace', () => {
    const prose = 'Prompt caches match a byte-identical prefix, from the first token. '.repeat(500);
    expect(countTokens(prose, 'o200k_base')).toBe(encode(prose).length);
    // This would take minutes as one BPE pre-token; as pieces it is counted in well under a second.
    expect(countTokens('Q'.repeat(1_000_000), 'o200k_base')).toBeGreaterThan(0);
  });
});

describe('tokenising many distinct pre-tokens (a base64 image or PDF)', () => {
  // gpt-tokenizer evicts from its 100,000-entry merge cache with `keys().next()` after deletes, which
  // walks every deleted slot: once the cache is full each miss costs more, and 1 MB of base64 took ~5 s
  // (2 MB ~12 s) on the event loop. The cache must never reach its limit, so it never evicts.
  const caches = [o200kApi, cl100kApi].map((api) => (api as unknown as { bytePairEncodingCoreProcessor: { mergeCache?: Map<string, unknown>; mergeCacheSize: number } }).bytePairEncodingCoreProcessor);

  it('never fills the merge cache, and counts as without it', () => {
    const b64 = randomBytes(1024 * 1024).toString('base64');
    const counts = tokenCounts(b64);
    for (const core of caches) expect(core.mergeCache!.size).toBeLessThan(core.mergeCacheSize);
    const { total } = tokenCountsAt(b64, 1000);
    for (const core of caches) expect(core.mergeCache!.size).toBeLessThan(core.mergeCacheSize);
    expect(total.o200k_base).toBe(counts.o200k_base);
    // The same count as the library's own, piece by piece with no cache at all.
    const sample = b64.slice(0, 20_000);
    expect(countTokens(sample, 'o200k_base')).toBe(bpeSafePieces(sample).reduce((n, p) => n + encode(p).length, 0));
  }, 60_000);

  it('base64 in 76-character lines (MIME, PEM: no long run) never fills it either, and ordinary long text counts exactly', () => {
    const mime = randomBytes(1024 * 1024).toString('base64').replace(/.{76}/g, '$&\n');
    tokenCounts(mime);
    for (const core of caches) expect(core.mergeCache!.size).toBeLessThan(core.mergeCacheSize);
    // Cut only between two words: a long text's count is the library's count of it whole.
    const words = fc.sample(fc.array(fc.oneof(fc.constantFrom('cache', 'prefix', '42', 'é', '日本'), fc.string({ maxLength: 12 })), { minLength: 20_000, maxLength: 20_000 }), 1)[0]!;
    const text = words.join(' ') + '\n' + words.join('\n');
    expect(text.length).toBeGreaterThan(64 * 1024);
    expect(bpeSafePieces(text).length).toBeGreaterThan(2);
    expect(bpeSafePieces(text).join('')).toBe(text);
    expect(countTokens(text, 'o200k_base')).toBe(encode(text).length);
  }, 60_000);

  it('text with no space or line break after a word for half a piece (pretty-printed numbers, lines ending in punctuation) still counts exactly in both encodings', () => {
    const O = { disallowedSpecial: new Set<string>() };
    const json = '{\n  "a": 1,\n  "b": [2, 3]\n},\n'.repeat(1400);
    const frag = fc.constantFrom('{', '}', '],', '  "a": 1,', '    "id": [1234],', '12,34;', '这是一个句子。', '});', '😀!', '3.5,', '--');
    const sep = fc.constantFrom('\n', '\r\n', '\n  ', '\n\t', ' ');
    const generated = fc.sample(fc.array(fc.tuple(frag, sep), { minLength: 6000, maxLength: 6000 }), 3).map((a) => a.map(([f, s]) => f + s).join(''));
    for (const text of ['a' + '!\n'.repeat(16_384), json, ...generated]) {
      expect(text.length).toBeGreaterThan(32 * 1024);
      expect(bpeSafePieces(text).join('')).toBe(text);
      expect(countTokens(text, 'o200k_base')).toBe(o200kApi.encode(text, O).length);
      expect(countTokens(text, 'cl100k_base')).toBe(cl100kApi.encode(text, O).length);
    }
  }, 60_000);
});
