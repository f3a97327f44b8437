import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anchorLengths } from '../../src/domain/reconcile/attribution';

const ends = (lengths: number[]) => lengths.reduce<number[]>((acc, n) => [...acc, (acc.at(-1) ?? 0) + n], []);

describe('anchorLengths', () => {
  it('moves the segment end nearest a provider read onto it, and keeps the total', () => {
    // Estimate: the bundle ends at 5,095; the provider read 5,106 (its tokenizer, not ours).
    const out = anchorLengths([1000, 4095, 300], [5106]);
    expect(ends(out)).toEqual([1002, 5106, 5395]);
    // Too far from any segment end (over 10%, at least 16 tokens): left as estimated.
    expect(anchorLengths([1000, 4095, 300], [2500])).toEqual([1000, 4095, 300]);
    expect(anchorLengths([100, 50], [117])).toEqual([100, 50]);
    expect(ends(anchorLengths([100, 50], [115]))).toEqual([115, 150]);
    // A read and a write end, each on its own segment end.
    expect(ends(anchorLengths([1000, 2000, 3000, 500], [1010, 6020]))).toEqual([1010, 3014, 6020, 6500]);
    // Nothing read, or everything: nothing to move.
    expect(anchorLengths([10, 20], [0, 30])).toEqual([10, 20]);
  });

  it('keeps every length non-negative and the sum, puts each accepted end exactly on a segment end, and moves it once', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 3000 }), { minLength: 1, maxLength: 8 }), fc.array(fc.nat({ max: 30000 }), { maxLength: 2 }), (lengths, anchors) => {
        const out = anchorLengths(lengths, anchors);
        const total = lengths.reduce((a, b) => a + b, 0);
        expect(out).toHaveLength(lengths.length);
        expect(out.every((n) => Number.isInteger(n) && n >= 0)).toBe(true);
        expect(out.reduce((a, b) => a + b, 0)).toBe(total);
        const moved = ends(out);
        for (const a of anchors) {
          const before = ends(lengths).slice(0, -1);
          const near = before.some((e) => Math.abs(e - a) <= Math.max(16, 0.1 * e));
          // An end near a segment end lands on one (unless two anchors compete for the same end).
          if (near && a > 0 && a < total && anchors.length === 1) expect(moved).toContain(a);
        }
        // One end (a read with no write) moved once stays put.
        if (anchors.length === 1) expect(anchorLengths(out, anchors)).toEqual(out);
      }),
      { numRuns: 1000 },
    );
  });
});
