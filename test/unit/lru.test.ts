import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Lru } from '../../src/domain/lru';

describe('Lru (second chance)', () => {
  it('never holds more than its budget, and keeps a just-set entry', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(20), fc.nat(9), fc.boolean()), { maxLength: 200 }), (ops) => {
        const lru = new Lru<number, number>(25, (v) => v + 1);
        const live = new Map<number, number>();
        for (const [k, v, read] of ops) {
          if (read) lru.get(k);
          else {
            lru.set(k, v);
            live.set(k, v);
            expect(lru.get(k)).toBe(v);
          }
        }
        let weight = 0;
        for (const k of live.keys()) {
          const v = lru.get(k);
          if (v !== undefined) weight += v + 1;
        }
        expect(weight).toBeLessThanOrEqual(25);
      }),
    );
  });

  it('evicts an entry that was not used before one that was', () => {
    const lru = new Lru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    lru.get('a');
    lru.set('c', 3);
    expect(lru.get('a')).toBe(1);
    expect(lru.get('b')).toBeUndefined();
    expect(lru.get('c')).toBe(3);
  });
});
