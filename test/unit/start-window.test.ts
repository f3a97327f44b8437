// The starts a route of OpenAI's cache routing had in the minute through a call (overflow.ts), as the simulator and the
// reconciler count them: whatever order the starts are recorded in.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StartWindow } from '../../src/domain/simulator/overflow';

const MINUTE = 60_000;

describe('StartWindow', () => {
  it('counts a start recorded more than two windows late: itself at least', () => {
    const w = new StartWindow(MINUTE);
    expect(w.add('r', 200_000)).toBe(1);
    expect(w.add('r', 10_000)).toBe(1);
  });

  it('is the count of the starts in (t − window, t] whenever t is no more than a window before the latest start; never under 1 (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 10 * MINUTE }), { minLength: 1, maxLength: 60 }), (times) => {
        const w = new StartWindow(MINUTE);
        const seen: number[] = [];
        for (const t of times) {
          seen.push(t);
          const counted = w.add('r', t);
          const exact = seen.filter((s) => s > t - MINUTE && s <= t).length;
          expect(counted).toBeGreaterThanOrEqual(1);
          expect(counted).toBeLessThanOrEqual(exact);
          if (t >= Math.max(...seen) - MINUTE) expect(counted).toBe(exact);
        }
      }),
      { numRuns: 300 },
    );
  });
});
