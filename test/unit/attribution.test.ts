import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anchorLengths, fitLengths, type Pin, withKnown } from '../../src/domain/reconcile/attribution';

const ends = (lengths: number[]) => lengths.reduce<number[]>((acc, n) => [...acc, (acc.at(-1) ?? 0) + n], []);
const within = (end: number, at: number) => Math.abs(end - at) <= Math.max(16, 0.1 * end);

describe('anchorLengths', () => {
  it('moves the breakpoint segment end nearest a provider read onto it, and keeps the total', () => {
    // Estimate: the bundle (segment 1, with the breakpoint) ends at 5,095; the provider read 5,106.
    expect(ends(anchorLengths([1000, 4095, 300], [1], [5106]))).toEqual([1002, 5106, 5395]);
    // Too far from the breakpoint (over 10%, at least 16 tokens): left as estimated.
    expect(anchorLengths([1000, 4095, 300], [1], [2500])).toEqual([1000, 4095, 300]);
    expect(anchorLengths([100, 50], [0], [117])).toEqual([100, 50]);
    expect(ends(anchorLengths([100, 50], [0], [115]))).toEqual([115, 150]);
    // A read and a write end, each on its own breakpoint.
    expect(ends(anchorLengths([1000, 2000, 3000, 500], [0, 2], [1010, 6020]))).toEqual([1010, 3014, 6020, 6500]);
    // Nothing read, or everything; or no breakpoint: nothing to move.
    expect(anchorLengths([10, 20], [0], [0, 30])).toEqual([10, 20]);
    expect(anchorLengths([1000, 4095, 300], [], [5106])).toEqual([1000, 4095, 300]);
  });

  it('only a segment that carries a breakpoint is moved, never a nearer one without', () => {
    // A long system prompt with the breakpoint, then small session batches without: the read ends at the prompt.
    const out = anchorLengths([5000, 20, 20, 20, 20, 300], [0], [5150]);
    expect(ends(out)[0]).toBe(5150);
    // Two breakpoints within tolerance: the nearer one is taken.
    expect(ends(anchorLengths([1000, 30, 1000], [0, 1], [1025]))).toEqual([995, 1025, 2030]);
    expect(ends(anchorLengths([1000, 30, 1000], [0, 1], [1010]))).toEqual([1010, 1040, 2030]);
  });

  it('a read exactly at a known end is that prefix, not the breakpoint nearby', () => {
    // Units: the bundle, a question (its end known from the turn that marked it: 1,040), the reply, the new question.
    // This request's breakpoint is after the reply, 8 tokens from the read: without the known end it would be taken.
    expect(ends(anchorLengths([1000, 22, 26, 30], [2], [1040], [{ segment: 1, at: 1040 }]))).toEqual([1018, 1040, 1058, 1078]);
    expect(ends(anchorLengths([1000, 22, 26, 30], [2], [1040]))).toEqual([992, 1014, 1040, 1078]);
  });

  it('exact counts keep their size when a pin moves the estimated spans around them', () => {
    // A system prompt counted exactly (3,551 o200k tokens), then estimated messages; the provider's read shows the
    // second message ends at 4,100: the estimated one takes the difference, the exact one stays.
    expect(anchorLengths([3551, 500, 60], [], [], [{ segment: 1, at: 4100 }], [true, false, false])).toEqual([3551, 549, 11]);
    // Without the mask, all scale together (the exact count moves).
    expect(anchorLengths([3551, 500, 60], [], [], [{ segment: 1, at: 4100 }])[0]).not.toBe(3551);
    // A stretch of exact counts alone cannot take a difference: it scales (the provider's count wins).
    expect(anchorLengths([3551, 500], [], [], [{ segment: 0, at: 3600 }], [true, false])).toEqual([3600, 451]);
  });

  it('the write end does not take the unit whose known end the read explains', () => {
    // Units: the bundle (marked), q1 (marked; its end known from the turn that wrote it: 1040), a1 (marked, estimated
    // 26, really 12), q2 (300). The provider read 1040 (q1's known end) and wrote 12 more: up to a1's end, 1052.
    const lengths = [1000, 22, 26, 300];
    // The read is explained by q1's known end, which then holds as a pin: the write's end must come after it (on a1),
    // not take q1 itself (12 tokens off, where a1 is 13), which would drop the known end and put q1 past the read.
    const out = ends(anchorLengths(lengths, [0, 1, 2], [1040, 1052], [{ segment: 1, at: 1040 }]));
    expect(out[1]).toBe(1040);
    expect(out[2]).toBe(1052);
  });

  it('keeps every length non-negative and the sum; each end near a breakpoint lands on one; once moved, stays', () => {
    const lengths = fc.array(fc.nat({ max: 3000 }), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(lengths, fc.array(fc.nat({ max: 7 }), { maxLength: 3 }), fc.array(fc.nat({ max: 30000 }), { minLength: 1, maxLength: 2 }), (lens, marks, anchors) => {
        const breakpoints = marks.filter((k) => k < lens.length);
        const out = anchorLengths(lens, breakpoints, anchors);
        const total = lens.reduce((a, b) => a + b, 0);
        expect(out).toHaveLength(lens.length);
        expect(out.every((n) => Number.isInteger(n) && n >= 0)).toBe(true);
        expect(out.reduce((a, b) => a + b, 0)).toBe(total);
        const before = ends(lens);
        const eligible = breakpoints.filter((k) => k < lens.length - 1);
        if (anchors.length === 1) {
          const at = anchors[0]!;
          const near = at > 0 && at < total && eligible.some((k) => within(before[k]!, at));
          // A single end near a breakpoint lands exactly on a breakpoint segment's end; one far from all moves nothing.
          if (near) expect(eligible.some((k) => ends(out)[k] === at)).toBe(true);
          else expect(out).toEqual(lens);
        }
        // A read and a write end already on two breakpoint ends: nothing moves.
        const [a, b] = [...anchors].sort((x, y) => x - y);
        if (anchors.length === 2 && a! > 0 && b! < total && a! < b!) {
          const ka = eligible.find((k) => before[k] === a);
          const kb = eligible.find((k) => before[k] === b);
          if (ka !== undefined && kb !== undefined && ka < kb) expect(out).toEqual(lens);
        }
        // A single end, once moved, is not moved again.
        if (anchors.length === 1) expect(anchorLengths(out, breakpoints, anchors)).toEqual(out);
      }),
      { numRuns: 3000 },
    );
  });

  it('known ends (prefixes an earlier report measured) hold; what this report shows wins over one that no longer fits', () => {
    // Segment 0 measured at 1050 before: it stays there; the read at 1180 pins segment 1 (a breakpoint).
    expect(ends(anchorLengths([1000, 100, 200], [1], [1180], [{ segment: 0, at: 1050 }]))).toEqual([1050, 1180, 1300]);
    // Without an anchor, a known end alone holds and the rest is scaled around it.
    expect(ends(anchorLengths([1000, 100, 200], [1], [], [{ segment: 0, at: 1100 }]))).toEqual([1100, 1167, 1300]);
    // A known end past this report's anchor on a later segment cannot hold: it is left out.
    expect(ends(anchorLengths([1000, 100, 200], [1], [1150], [{ segment: 0, at: 1200 }]))).toEqual([1119, 1150, 1300]);
    // Nor one on the last segment, or outside the prompt.
    expect(anchorLengths([1000, 100, 200], [], [], [{ segment: 2, at: 900 }, { segment: 0, at: 5000 }])).toEqual([1000, 100, 200]);
  });

  it('with known ends too: lengths non-negative, the sum kept, and every known end that fits lands exactly', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 3000 }), { minLength: 2, maxLength: 8 }),
        fc.array(fc.record({ segment: fc.nat({ max: 7 }), at: fc.nat({ max: 30000 }) }), { maxLength: 3 }),
        fc.array(fc.nat({ max: 30000 }), { maxLength: 2 }),
        (lens, known, anchors) => {
          const out = anchorLengths(lens, [0, 1, 2, 3, 4, 5, 6], anchors, known);
          const total = lens.reduce((a, b) => a + b, 0);
          expect(out.every((n) => Number.isInteger(n) && n >= 0)).toBe(true);
          expect(out.reduce((a, b) => a + b, 0)).toBe(total);
          // With no anchor, a single known end inside the prompt (not on the last segment) is where the segment ends.
          if (anchors.length === 0 && known.length === 1 && known[0]!.segment < lens.length - 1 && known[0]!.at > 0 && known[0]!.at < total)
            expect(ends(out)[known[0]!.segment]).toBe(known[0]!.at);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('keeps the known ends that fit as inserting each in turn among the report\'s pins did, for hundreds of them', () => {
    // The straightforward form withKnown replaced: each known end inserted in turn, the pins sorted again each time.
    const oneByOne = (own: Pin[], fixed: Pin[]): Pin[] => {
      const pins = [...own];
      for (const f of fixed) {
        if (pins.some((p) => p.segment === f.segment)) continue;
        const before = pins.filter((p) => p.segment < f.segment).at(-1);
        const after = pins.find((p) => p.segment > f.segment);
        if ((before && before.at >= f.at) || (after && after.at <= f.at)) continue;
        pins.push(f);
        pins.sort((a, b) => a.segment - b.segment);
      }
      return pins;
    };
    // Pins in segment order, one per segment (as anchorLengths has them); their positions anything.
    const pins = (maxSegment: number, maxLength: number) =>
      fc.uniqueArray(fc.record({ segment: fc.nat({ max: maxSegment }), at: fc.nat({ max: 5000 }) }), { selector: (p) => p.segment, maxLength }).map((ps) => ps.sort((a, b) => a.segment - b.segment));
    fc.assert(
      fc.property(pins(60, 4), pins(60, 60), fc.boolean(), (own, fixed, rising) => {
        // Known ends as orderedPins leaves them (positions rising too), or in any order of position.
        const known = rising ? fixed.map((p, i) => ({ segment: p.segment, at: p.segment * 80 + (p.at % 80) + i })) : fixed;
        expect(withKnown(own, known)).toEqual(oneByOne(own, known));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('fitLengths', () => {
  it('keeps exact counts and gives the estimated segments the rest; all scale together past 4× either way', () => {
    // A measured system prompt (2,063), an inline tool output estimated at 4,767 that the provider counted 7,656 with it.
    expect(fitLengths([2063, 4767], [true, false], 2063 + 7656)).toEqual([2063, 7656]);
    // Estimated segments share the rest in proportion; exact ones between them stay put.
    expect(fitLengths([100, 1000, 300, 1000], [false, true, false, true], 2600)).toEqual([150, 1000, 450, 1000]);
    // Nothing exact, or nothing estimated: proportional.
    expect(fitLengths([100, 300], [false, false], 800)).toEqual([200, 600]);
    expect(fitLengths([100, 300], [true, true], 800)).toEqual([200, 600]);
    // The rest 49× the estimate and thousands of tokens off (or below the exact counts): these counts are not this prompt's.
    expect(fitLengths([10000, 100], [true, false], 15000)).toEqual([14851, 149]);
    expect(fitLengths([1000, 100], [true, false], 900)).toEqual([818, 82]);
    // Five times a short estimate, a few hundred tokens: the provider's framing of small items; the count stays.
    expect(fitLengths([1000, 100], [true, false], 1500)).toEqual([1000, 500]);
  });

  it('always sums to the total with non-negative integers', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: 5000 }), fc.boolean()), { minLength: 1, maxLength: 8 }), fc.nat({ max: 40000 }), (segs, total) => {
        const out = fitLengths(segs.map((s) => s[0]), segs.map((s) => s[1]), total);
        expect(out).toHaveLength(segs.length);
        expect(out.every((n) => Number.isInteger(n) && n >= 0)).toBe(true);
        expect(out.reduce((a, b) => a + b, 0)).toBe(total);
      }),
    );
  });
});
