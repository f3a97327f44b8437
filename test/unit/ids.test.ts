import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newRequestId } from '../../src/domain/ids';

describe('request ids', () => {
  it('have the documented shape and sort by render time', () => {
    const max = 62 ** 8 - 1;
    fc.assert(
      fc.property(fc.integer({ min: 0, max }), fc.integer({ min: 0, max }), (a, b) => {
        const [x, y] = [newRequestId(a), newRequestId(b)];
        expect(x).toMatch(/^req_[0-9A-Za-z]{21}$/);
        // The time digits order the ids; equal times differ in their random tail.
        if (a !== b) expect(x < y).toBe(a < b);
        else expect(x).not.toBe(y);
      }),
    );
  });

  it('encode the time in their first 8 digits', () => {
    expect(newRequestId(0).slice(4, 12)).toBe('00000000');
    expect(newRequestId(61).slice(4, 12)).toBe('0000000z');
    expect(newRequestId(62).slice(4, 12)).toBe('00000010');
    expect(newRequestId(Date.UTC(2026, 10, 22)).slice(4, 12) < newRequestId(Date.UTC(2026, 10, 23)).slice(4, 12)).toBe(true);
  });
});
