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

describe('StartWindow.record', () => {
  it("a route's calls sent before this one, forgotten with the route once maxRoutes later ones are kept: bounded memory", () => {
    const w = new StartWindow(MINUTE, 2);
    expect(['a', 'a', 'b', 'a'].map((r) => w.record(r, 0).sent)).toEqual([0, 1, 0, 2]);
    w.record('c', 0);
    w.record('d', 0);
    // 'a' was dropped for 'c' and 'd' (the least recent first): its count and its starts start again.
    expect(w.record('a', 1)).toEqual({ starts: 1, sent: 0 });
    expect(w.record('d', 2)).toEqual({ starts: 2, sent: 1 });
  });
});

describe('StartWindow.entries and load (a scope snapshot)', () => {
  it('a window loaded from another\'s entries counts, sends and drops routes as that one would (property)', () => {
    const call = fc.tuple(fc.constantFrom('a', 'b', 'c', 'd'), fc.integer({ min: 0, max: 5 * MINUTE }));
    fc.assert(
      fc.property(fc.array(call, { maxLength: 40 }), fc.array(call, { minLength: 1, maxLength: 40 }), (before, after) => {
        const original = new StartWindow(MINUTE, 3);
        for (const [r, t] of before) original.record(r, t);
        const loaded = new StartWindow(MINUTE, 3);
        loaded.load(JSON.parse(JSON.stringify(original.entries())));
        expect(loaded.entries()).toEqual(original.entries());
        for (const [r, t] of after) expect(loaded.record(r, t)).toEqual(original.record(r, t));
      }),
      { numRuns: 200 },
    );
  });
});
