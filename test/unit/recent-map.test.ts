import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { RecentMap } from '../../src/domain/recent-map';

describe('RecentMap', () => {
  it('holds what a Map does whose keys are deleted and set again, oldest evicted past max', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(fc.tuple(fc.constantFrom('set', 'get', 'trim'), fc.nat(30), fc.nat()), { maxLength: 3000 }), (max, ops) => {
        const map = new Map<number, number>();
        const recent = new RecentMap<number, number>(max);
        for (const [op, key, value] of ops) {
          if (op === 'get') expect(recent.get(key)).toBe(map.get(key));
          else if (op === 'set') {
            map.delete(key);
            map.set(key, value);
            recent.set(key, value);
          } else {
            while (map.size > max) map.delete(map.keys().next().value!);
            recent.trim();
          }
          expect(recent.size).toBe(map.size);
        }
        for (const [key, value] of map) expect(recent.get(key)).toBe(value);
      }),
    );
  });
});

describe('RecentMap entries', () => {
  it('set again in order into a new map, go on exactly as the original', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(fc.tuple(fc.constantFrom('set', 'trim'), fc.nat(30), fc.nat()), { maxLength: 400 }), fc.nat(400), (max, ops, cut) => {
        const apply = (m: RecentMap<number, number>, [op, key, value]: (typeof ops)[number]) => (op === 'set' ? m.set(key, value) : m.trim());
        const original = new RecentMap<number, number>(max);
        const at = Math.min(cut, ops.length);
        ops.slice(0, at).forEach((o) => apply(original, o));
        const copy = new RecentMap<number, number>(max);
        for (const [k, v] of original.entries()) copy.set(k, v);
        expect(copy.entries()).toEqual(original.entries());
        for (const o of ops.slice(at)) {
          apply(original, o);
          apply(copy, o);
          expect(copy.entries()).toEqual(original.entries());
        }
      }),
    );
  });
});

describe('RecentMap changes', () => {
  it('each set in order into a new map, then trimmed, hold what the trimmed original does', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(fc.tuple(fc.constantFrom('set', 'set', 'set', 'trim', 'take'), fc.nat(30), fc.nat()), { maxLength: 400 }), (max, ops) => {
        const original = new RecentMap<number, number>(max);
        const taken: Array<Array<[number, number]>> = [];
        for (const [op, key, value] of ops) {
          if (op === 'set') original.set(key, value);
          else if (op === 'trim') original.trim();
          else {
            // A snapshot is taken between requests, each of which trims after its sets.
            original.trim();
            taken.push(original.changes());
            const copy = new RecentMap<number, number>(max);
            for (const changes of taken) for (const [k, v] of changes) copy.set(k, v);
            copy.trim();
            expect(copy.entries()).toEqual(original.entries());
          }
        }
        // Each call gives no more than the live entries set since the last.
        original.trim();
        expect(original.changes().length).toBeLessThanOrEqual(Math.min(max, ops.filter(([op], i) => op === 'set' && !ops.slice(i + 1).some(([o]) => o === 'take')).length));
      }),
    );
  });
});
