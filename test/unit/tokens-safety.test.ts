import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { encode } from 'gpt-tokenizer/encoding/o200k_base';
import { bpeSafePieces, countTokens } from '../../src/domain/tokens';

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
