import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { PendingPremiums, partsOf, premiumByKey, readUpTo, type PremiumPart } from '../../src/domain/reconcile/write-premiums';

const part = (keys: string[], from: number, to: number, premium: number): PremiumPart => ({ keys, from, to, premium });

describe('write premiums', () => {
  it('a read of [0, R) reads the parts inside it, a part cut by R in proportion, and leaves the rest', () => {
    const parts = [part(['bnd@1', 'art@1', '*@0'], 0, 100, 1), part(['art@2', '*@0'], 100, 300, 4)];
    const { read, left } = readUpTo(parts, 150);
    expect(Object.fromEntries(read)).toEqual({ 'bnd@1': 1, 'art@1': 1, '*@0': 2, 'art@2': 1 });
    expect(left).toEqual([part(['art@2', '*@0'], 150, 300, 3)]);
    expect(readUpTo(left, 150).read.size).toBe(0);
  });

  it('property: what is read and what is left add up to the premium, per key, for any sequence of reads', () => {
    const parts = fc.array(fc.record({ len: fc.integer({ min: 1, max: 500 }), premium: fc.double({ min: 0.001, max: 10, noNaN: true }), key: fc.constantFrom('a@1', 'b@1', 'c@2') }), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(parts, fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 4 }), (spec, reads) => {
        let at = 0;
        const list = spec.map((p) => part([p.key, '*@0'], at, (at += p.len), p.premium));
        const before = premiumByKey(list);
        const total = new Map<string, number>();
        let left = list;
        for (const r of reads) {
          const step = readUpTo(left, r);
          for (const [k, v] of step.read) total.set(k, (total.get(k) ?? 0) + v);
          left = step.left;
        }
        for (const [k, v] of premiumByKey(left)) total.set(k, (total.get(k) ?? 0) + v);
        for (const [k, v] of before) expect(total.get(k)).toBeCloseTo(v, 9);
      }),
    );
  });

  it('rows stored before parts were kept are read whole by any read', () => {
    const legacy = partsOf({ 'art_x@1': 0.5, '*@0': 0.5 });
    expect(Object.fromEntries(readUpTo(legacy, 1).read)).toEqual({ 'art_x@1': 0.5, '*@0': 0.5 });
    expect(readUpTo(legacy, 1).left).toEqual([]);
    expect(partsOf({})).toEqual([]);
  });

  it('pending writes are per tenant and leave once their TTL has passed', () => {
    const pending = new PendingPremiums();
    pending.set('req_1', { tenantId: 't1', model: 'm', day: 3, expiresAt: 1000, parts: [part(['art@1', '*@0'], 0, 10, 2)] }, 0);
    pending.set('req_2', { tenantId: 't2', model: 'm', day: 3, expiresAt: 1000, parts: [part(['art@1', '*@0'], 0, 10, 5)] }, 0);
    expect(pending.rows('t1', 999)).toEqual([
      { handle_id: 'art', version: 1, day: 3, model: 'm', write_premium_pending: 2 },
      { handle_id: '*', version: 0, day: 3, model: 'm', write_premium_pending: 2 },
    ]);
    expect(pending.rows('t1', 1000)).toEqual([]);
    expect(pending.get('req_1')).toBeUndefined();
  });
});
