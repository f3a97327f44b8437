import fc from 'fast-check';
import { isUtf8 } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { firstInvalidUtf8 } from '../../src/http/body';

const fatal = new TextDecoder('utf-8', { fatal: true });
const decodes = (b: Uint8Array) => {
  try {
    fatal.decode(b);
    return true;
  } catch {
    return false;
  }
};

describe('firstInvalidUtf8', () => {
  it('finds nothing in valid UTF-8 and, in invalid bytes, the start of the first bad sequence', () => {
    // Bytes biased towards multi-byte lead and continuation bytes, where the edge cases are.
    const byte = fc.oneof(fc.integer({ min: 0, max: 0x7f }), fc.integer({ min: 0x80, max: 0xbf }), fc.integer({ min: 0xc0, max: 0xff }));
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 24 }), fc.string({ unit: 'grapheme', maxLength: 8 }), (bytes, text) => {
        const b = Uint8Array.from([...Buffer.from(text), ...bytes]);
        const at = firstInvalidUtf8(b);
        expect(at === -1).toBe(isUtf8(b));
        if (at >= 0) {
          // Everything before it decodes; the sequence that starts there does not, whatever follows.
          expect(decodes(b.subarray(0, at))).toBe(true);
          for (let end = at + 1; end <= b.length; end++) expect(decodes(b.subarray(0, end))).toBe(false);
          expect(at).toBeGreaterThanOrEqual(Buffer.byteLength(text));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('names the lead byte of overlong forms, surrogates and code points past U+10FFFF', () => {
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xc0, 0xaf]))).toBe(1);
    expect(firstInvalidUtf8(Buffer.from([0xe0, 0x80, 0xaf]))).toBe(0);
    expect(firstInvalidUtf8(Buffer.from([0x61, 0x62, 0xed, 0xa0, 0x80]))).toBe(2);
    expect(firstInvalidUtf8(Buffer.from([0xf4, 0x90, 0x80, 0x80]))).toBe(0);
    expect(firstInvalidUtf8(Buffer.from([0xf0, 0x9d, 0x84]))).toBe(0);
    expect(firstInvalidUtf8(Buffer.from('𝄞é€'))).toBe(-1);
  });
});
