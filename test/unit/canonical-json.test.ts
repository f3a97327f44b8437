import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import canonicalize from 'canonicalize';
import { canonicalJson, emitJson, Canonical, findLoneSurrogate } from '../../src/domain/canonical-json';

// RFC 8785 appendix / cyberphone test vectors.
const VECTORS: Array<[unknown, string]> = [
  [{ numbers: [333333333.33333329, 1e30, 4.5, 2e-3, 0.000000000000000000000000001] }, '{"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27]}'],
  [{ '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '1': 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' },
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'],
  [{ literals: [null, true, false] }, '{"literals":[null,true,false]}'],
  [{ b: 1, a: { d: 2, c: 3 } }, '{"a":{"c":3,"d":2},"b":1}'],
];

const wellFormed = fc.string({ unit: 'grapheme' });
const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), wellFormed,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(wellFormed, tie('value'), { maxKeys: 5 }),
  ),
})).value;

function shuffleKeys(v: unknown, seed: number): unknown {
  if (Array.isArray(v)) return v.map((x) => shuffleKeys(x, seed));
  if (v && typeof v === 'object') {
    const entries = Object.entries(v);
    entries.sort((a, b) => ((a[0].length * 31 + seed) % 7) - ((b[0].length * 31 + seed) % 7) || (seed % 2 ? 1 : -1));
    return Object.fromEntries(entries.map(([k, x]) => [k, shuffleKeys(x, seed + 1)]));
  }
  return v;
}

describe('canonical JSON (RFC 8785)', () => {
  it.each(VECTORS)('matches the RFC vector %#', (input, expected) => {
    expect(canonicalJson(input)).toBe(expected);
  });

  it('equals the reference canonicaliser on random JSON, and is a fixed point', () => {
    fc.assert(
      fc.property(json, (v) => {
        const text = canonicalJson(v);
        expect(text).toBe(canonicalize(v));
        expect(canonicalJson(JSON.parse(text))).toBe(text);
      }),
      { numRuns: 500 },
    );
  });

  it('does not depend on key order', () => {
    fc.assert(fc.property(json, fc.nat(1000), (v, seed) => canonicalJson(shuffleKeys(v, seed)) === canonicalJson(v)), { numRuns: 300 });
  });

  it('rejects lone surrogates with the pointer of the bad string', () => {
    expect(() => canonicalJson({ a: ['ok', 'bad\ud800'] })).toThrow(/surrogate/);
    expect(findLoneSurrogate({ a: ['ok', 'bad\ud800'] })).toBe('/a/1');
    // A key with one is named with U+FFFD in its place (a pointer must be text a client can decode).
    expect(findLoneSurrogate({ 'x/y': { '\udfff': 1 } })).toBe('/x~1y/\ufffd');
    expect(findLoneSurrogate({ ok: '\ud83d\ude00' })).toBeNull();
  });

  it('emits structure in build order and embedded values canonically', () => {
    expect(emitJson({ z: 1, a: new Canonical(canonicalJson({ y: 1, x: 2 })), m: undefined })).toBe('{"z":1,"a":{"x":2,"y":1}}');
  });
});
