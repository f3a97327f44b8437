// The compact form of a request's segments and of its outcome (src/store/compact.ts) reads back as the exact JSON of
// what it replaced, whatever the segments, the batches stored before and the prices.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/domain/digest';
import { BATCH_FORMS, compactOutcome, compactSegments, expandOutcome, expandSegments, type CompactOutcomes, type CompactSegments, type ReadBatches } from '../../src/store/compact';

/** Session batches as a table holds them: key `session\nvariant\nversion`. */
function memoryBatches(initial: Map<string, string> = new Map()) {
  const rows = new Map(initial);
  const read: ReadBatches = (session, variant, from, to) => {
    const out = new Map<number, string>();
    for (let v = from; v <= to; v++) {
      const e = rows.get(`${session}\n${variant}\n${v}`);
      if (e !== undefined) out.set(v, e);
    }
    return out;
  };
  const written: string[] = [];
  const write = (session: string, variant: string, version: number, entry: string) => {
    const key = `${session}\n${variant}\n${version}`;
    written.push(key);
    rows.set(key, entry);
  };
  return { rows, read, write, written };
}

type Unit = [string, number, number] | [string, number, number, string];
interface Piece {
  source: string;
  path: string[];
  section: string;
  bytes: number;
  units: Unit[];
  estimated: boolean;
  /** A field the renderer would not write as derived (a gap in the bytes, a chain of other segments). */
  odd: 'none' | 'gap' | 'chain' | 'tokens';
}

const unit = fc.tuple(fc.stringMatching(/^[0-9a-f]{16}$/), fc.nat(5000), fc.integer({ min: 1, max: 4 }), fc.option(fc.stringMatching(/^[0-9a-f]{16}$/), { nil: undefined })).map(([k, t, b, base]): Unit => (base ? [k, t, b, base] : [k, t, b]));
const odd = fc.constantFrom<Piece['odd']>('none', 'none', 'none', 'none', 'gap', 'chain', 'tokens');
const section = fc.constantFrom('tools', 'system', 'messages');

/** A request's pieces: artifacts, inline content, and runs of a session's batches (from a version, some skipped). */
const pieces = fc
  .array(
    fc.oneof(
      fc.record({ kind: fc.constant('art' as const), section, odd }),
      fc.record({ kind: fc.constant('inline' as const), section: fc.constant('messages'), odd }),
      fc.record({ kind: fc.constant('run' as const), session: fc.constantFrom('ses_a', 'ses_b'), from: fc.integer({ min: 1, max: 6 }), count: fc.integer({ min: 1, max: 8 }), skip: fc.option(fc.nat(8), { nil: undefined }), section: fc.constantFrom('messages', 'messages', 'system'), odd }),
    ),
    { maxLength: 8 },
  )
  .chain((parts) =>
    fc.tuple(
      fc.constant(parts),
      fc.array(fc.tuple(fc.nat(20000), fc.array(unit, { minLength: 0, maxLength: 3 }), fc.boolean()), { minLength: 64, maxLength: 64 }),
    ),
  )
  .map(([parts, fill]) => {
    const out: Piece[] = [];
    let f = 0;
    const next = () => fill[f++ % fill.length]!;
    for (const p of parts) {
      if (p.kind === 'run') {
        for (let k = 0; k < p.count; k++) {
          if (p.skip === k) continue;
          const [bytes, units, estimated] = next();
          const source = `${p.session}@${p.from + k}`;
          out.push({ source, path: [source], section: p.section, bytes, units, estimated, odd: k === 0 ? p.odd : 'none' });
        }
      } else {
        const [bytes, units, estimated] = next();
        const source = p.kind === 'art' ? `art_x${out.length}@1` : 'inline';
        out.push({ source, path: p.kind === 'art' ? ['bnd_b@1', source] : [], section: p.section, bytes, units, estimated, odd: p.odd });
      }
    }
    return out;
  });

/** The segments the renderer would write for the pieces (segments.ts), each odd one made so. */
function render(list: Piece[]) {
  let bytes = 0;
  let tokens = 0;
  let chain = '';
  return list.map((p) => {
    const digest = sha256Hex(`${p.source}:${p.bytes}`);
    chain = sha256Hex(chain + digest);
    const count = p.units.reduce((n, u) => n + u[1], 0) + (p.odd === 'tokens' ? 1 : 0);
    if (p.odd === 'gap') bytes += 3;
    const seg = {
      source: p.source,
      path: p.path,
      section: p.section,
      byte_start: bytes,
      byte_end: bytes + p.bytes,
      token_start: tokens,
      token_end: tokens + count,
      tokens_estimated: p.estimated,
      blocks: p.units.reduce((n, u) => n + u[2], 0),
      digest,
      chain: p.odd === 'chain' ? sha256Hex(`other${chain}`) : chain,
      units: p.units,
    };
    bytes += p.bytes;
    tokens += count;
    return seg;
  });
}

describe('segments', () => {
  it('expand(compact(segments)) is the exact JSON of the segments, whatever the table held before (property)', () => {
    fc.assert(
      fc.property(pieces, pieces, fc.boolean(), (earlier, list, sameBefore) => {
        const t = memoryBatches();
        // An earlier request's batches stored first: rendered the same way, or another way (its entries differ).
        const before = render(sameBefore ? list.slice(0, Math.floor(list.length / 2)) : earlier);
        compactSegments(before, 'V', t.read, t.write);
        const segments = render(list);
        const stored = JSON.parse(JSON.stringify(compactSegments(segments, 'V', t.read, t.write)));
        expect(JSON.stringify(expandSegments(stored, t.read))).toBe(JSON.stringify(segments));
        // Each batch stored once.
        expect(new Set(t.written).size).toBe(t.written.length);
      }),
      { numRuns: 300 },
    );
  });

  it("a session's run of batches is one reference; a batch stored otherwise under the variant is kept whole", () => {
    const t = memoryBatches();
    const list: Piece[] = Array.from({ length: 50 }, (_, k) => ({ source: `ses_a@${k + 2}`, path: [`ses_a@${k + 2}`], section: 'messages', bytes: 400 + k, units: [[`u${k}`.padEnd(16, '0'), 50 + k, 2]], estimated: true, odd: 'none' }));
    const art: Piece = { source: 'art_s@1', path: ['bnd_b@1', 'art_s@1'], section: 'system', bytes: 9000, units: [['f'.repeat(16), 2500, 1]], estimated: true, odd: 'none' };
    const segments = render([art, ...list]);
    const stored = compactSegments(segments, 'V', t.read, t.write) as CompactSegments;
    expect(stored.s).toEqual([segments[0], ['ses_a', 2, 51]]);
    expect(t.written).toHaveLength(50);
    // The next call: one batch more, one written.
    const more = render([art, ...list, { ...list[0]!, source: 'ses_a@52', path: ['ses_a@52'] }]);
    const again = compactSegments(more, 'V', t.read, t.write) as CompactSegments;
    expect(again.s).toEqual([more[0], ['ses_a', 2, 52]]);
    expect(t.written).toHaveLength(51);
    expect(expandSegments(again, t.read)).toEqual(more);
    // Version 30 rendered otherwise under the same variant (a stripping model's thinking left out once a new question
    // follows it): stored again as a second form, referenced as such; the later versions still one run.
    const otherwise = (n: number) => render([art, ...list.map((p, k) => (k === 28 ? { ...p, units: [[`e${n}`.padEnd(16, '0'), 7, 2]] as Unit[] } : p))]);
    const other = otherwise(1);
    const split = compactSegments(other, 'V', t.read, t.write) as CompactSegments;
    expect(split.s).toEqual([other[0], ['ses_a', 2, 29], ['ses_a', 30, 30, 1], ['ses_a', 31, 51]]);
    expect(t.written.at(-1)).toBe('ses_a\nV.1\n30');
    expect(JSON.stringify(expandSegments(split, t.read))).toBe(JSON.stringify(other));
    // Each form read back as it was stored: the first request's, the second's.
    expect(JSON.stringify(expandSegments(again, t.read))).toBe(JSON.stringify(more));
    expect((compactSegments(other, 'V', t.read, t.write) as CompactSegments).s).toEqual(split.s);
    // Past BATCH_FORMS forms, kept whole.
    for (let n = 2; n < BATCH_FORMS; n++) expect((compactSegments(otherwise(n), 'V', t.read, t.write) as CompactSegments).s[2]).toEqual(['ses_a', 30, 30, n]);
    const written = t.written.length;
    const past = otherwise(BATCH_FORMS);
    const whole = compactSegments(past, 'V', t.read, t.write) as CompactSegments;
    expect(whole.s).toEqual([past[0], ['ses_a', 2, 29], past[29], ['ses_a', 31, 51]]);
    expect(t.written).toHaveLength(written);
    expect(JSON.stringify(expandSegments(whole, t.read))).toBe(JSON.stringify(past));
  });

  it('an old row (an array) reads as it is; a reference to a batch no longer stored is an error, not other segments', () => {
    const t = memoryBatches();
    const segments = render([{ source: 'ses_a@1', path: ['ses_a@1'], section: 'messages', bytes: 10, units: [['a'.repeat(16), 3, 1]], estimated: true, odd: 'none' }]);
    expect(expandSegments(segments, t.read)).toBe(segments);
    const stored = compactSegments(segments, 'V', t.read, t.write);
    expect(() => expandSegments(stored, memoryBatches().read)).toThrow(/ses_a@1/);
  });
});

/** The reconciler's segment outcome (reconciler.ts, segOutcomes) for given read, write and class figures. */
function outcomeOf(source: string, path: string[], section: string, start: number, len: number, o: { segRead: number; segWrite: number; writeUnits: number; cold: number; predicted: number; captured: number }, money: { read: number; input: number }, reported: boolean) {
  const end = start + len;
  const unread = len - o.segRead;
  const unreadCost = o.writeUnits + (unread - o.segWrite);
  const coldPaid = Math.min(o.cold, unread);
  const coldCost = unread > 0 ? (coldPaid * unreadCost) / unread : 0;
  return {
    source,
    path,
    section,
    start,
    end,
    read: o.segRead,
    write: o.segWrite,
    predicted: o.predicted,
    opportunity: len - o.cold,
    classes: { captured: o.captured, bonus: 0, unconfirmed: 0, unknown: 0, cold: o.cold, drift: 0, expired: 0, concurrent: 0, below_minimum: 0, no_breakpoint: 0, lookback: len - o.captured - o.cold },
    cost: {
      actual: !reported ? len * money.input : (o.segRead * money.read + o.writeUnits + (len - o.segRead - o.segWrite)) * money.input,
      no_cache: len * money.input,
      perfect: ((len - coldPaid) * money.read + coldCost) * money.input,
      write_premium: (o.writeUnits - o.segWrite) * money.input,
    },
  };
}

const prices = fc.record({
  read: fc.constantFrom(0.1, 0.25, 0.5, 0.125),
  // Per token: a catalog's per-MTok price over a million, as the reconciler computes it.
  input: fc.oneof(fc.constantFrom(3, 15, 0.8, 1.25, 2.5, 0.075, 1.1).map((p) => p / 1_000_000), fc.double({ min: 1e-9, max: 1e-4, noNaN: true })),
});

describe('outcomes', () => {
  it('expand(compact(outcome)) is the exact JSON of the outcome: costs to the bit, keys in their order (property)', () => {
    const seg = fc.record({
      kind: fc.constantFrom('batch', 'batch', 'batch', 'art', 'inline'),
      len: fc.nat(30000),
      how: fc.constantFrom('captured', 'captured', 'captured', 'cold', 'written', 'partial'),
      section: fc.constantFrom('messages', 'messages', 'system'),
      skip: fc.boolean(),
      session: fc.constantFrom('ses_a', 'ses_b'),
    });
    fc.assert(
      fc.property(fc.array(seg, { maxLength: 40 }), prices, fc.boolean(), (list, money, reported) => {
        let start = 0;
        let version = 1;
        const segments = list.map((s) => {
          version += s.skip ? 2 : 1;
          const source = s.kind === 'batch' ? `${s.session}@${version}` : s.kind === 'art' ? 'art_x@1' : 'inline';
          const path = s.kind === 'batch' ? [source] : s.kind === 'art' ? ['bnd_b@1', source] : [];
          const len = s.len;
          const half = Math.floor(len / 2);
          const o =
            s.how === 'captured'
              ? { segRead: len, segWrite: 0, writeUnits: 0, cold: 0, predicted: len, captured: len }
              : s.how === 'cold'
                ? { segRead: 0, segWrite: 0, writeUnits: 0, cold: len, predicted: 0, captured: 0 }
                : s.how === 'written'
                  ? { segRead: 0, segWrite: len, writeUnits: len * 1.25, cold: len, predicted: 0, captured: 0 }
                  : { segRead: half, segWrite: 0, writeUnits: 0, cold: 0, predicted: half, captured: half };
          const out = outcomeOf(source, path, s.section, start, len, o, money, reported);
          start += len;
          return out;
        });
        const outcome = { lengths: segments.map((s) => s.end - s.start), sim: { startedAt: 1 }, capture: reported ? 'reported' : 'unknown', segments, drift: null };
        const stored = JSON.parse(JSON.stringify(compactOutcome(outcome, money)));
        expect(JSON.stringify(expandOutcome(stored))).toBe(JSON.stringify(outcome));
      }),
      { numRuns: 500 },
    );
  });

  it("a session's batches read whole are one entry; the rest, and an outcome without prices, are kept whole", () => {
    const money = { read: 0.1, input: 3 / 1_000_000 };
    const captured = (v: number, start: number, len: number) => outcomeOf(`ses_a@${v}`, [`ses_a@${v}`], 'messages', start, len, { segRead: len, segWrite: 0, writeUnits: 0, cold: 0, predicted: len, captured: len }, money, true);
    const art = outcomeOf('art_s@1', ['bnd_b@1', 'art_s@1'], 'system', 0, 2596, { segRead: 2596, segWrite: 0, writeUnits: 0, cold: 0, predicted: 2596, captured: 2596 }, money, true);
    const batches = Array.from({ length: 300 }, (_, k) => captured(k + 2, 2596 + k * 54, 54));
    const inline = outcomeOf('inline', [], 'messages', 2596 + 300 * 54, 391, { segRead: 0, segWrite: 391, writeUnits: 391 * 2, cold: 391, predicted: 0, captured: 0 }, money, true);
    const segments = [art, ...batches, inline];
    const outcome = { lengths: segments.map((s) => s.end - s.start), capture: 'reported', segments, drift: null };
    const stored = compactOutcome(outcome, money) as { segments: CompactOutcomes };
    expect(Object.keys(stored)).toEqual(Object.keys(outcome));
    expect(stored.segments.s).toEqual([art, ['ses_a', 2, 300, 'messages'], inline]);
    expect(JSON.stringify(stored).length).toBeLessThan(JSON.stringify(outcome).length / 20);
    expect(JSON.stringify(expandOutcome(stored))).toBe(JSON.stringify(outcome));
    expect(compactOutcome(outcome, undefined)).toBe(outcome);
    // Priced otherwise than the entry says (another input price): kept whole.
    expect((compactOutcome(outcome, { read: 0.1, input: 3.0000001 / 1_000_000 }) as { segments: unknown }).segments).toBe(segments);
  });

  it('a batch read whole that differs from its captured form in any one figure, class, cost or key order is kept whole', () => {
    // The check computes the captured form's figures itself (not the object expansion builds): each must be compared.
    const money = { read: 0.1, input: 3 / 1_000_000 };
    const captured = (v: number, start: number) => outcomeOf(`ses_a@${v}`, [`ses_a@${v}`], 'messages', start, 54, { segRead: 54, segWrite: 0, writeUnits: 0, cold: 0, predicted: 54, captured: 54 }, money, true);
    type Seg = ReturnType<typeof captured>;
    const changes: Array<[string, (s: Seg) => void]> = [
      ...(['read', 'write', 'predicted', 'opportunity'] as const).map((k): [string, (s: Seg) => void] => [k, (s) => (s[k] += 1)]),
      ...Object.keys(captured(2, 0).classes).map((k): [string, (s: Seg) => void] => [`classes.${k}`, (s) => ((s.classes as Record<string, number>)[k]! += 1)]),
      ...Object.keys(captured(2, 0).cost).map((k): [string, (s: Seg) => void] => [`cost.${k}`, (s) => ((s.cost as Record<string, number>)[k]! += 1e-9)]),
      ['cost key order', (s) => (s.cost = { no_cache: s.cost.no_cache, actual: s.cost.actual, perfect: s.cost.perfect, write_premium: s.cost.write_premium })],
      [
        'classes key order',
        (s) => {
          const { bonus, ...rest } = s.classes;
          s.classes = { bonus, ...rest };
        },
      ],
    ];
    for (const [what, change] of changes) {
      const segments = [captured(2, 0), captured(3, 54), captured(4, 108), captured(5, 162)];
      change(segments[1]!);
      const outcome = { lengths: [54, 54, 54, 54], capture: 'reported', segments, drift: null };
      const stored = compactOutcome(outcome, money) as { segments: CompactOutcomes };
      expect(stored.segments.s, what).toEqual([['ses_a', 2, 1, 'messages'], segments[1], ['ses_a', 4, 2, 'messages']]);
      expect(JSON.stringify(expandOutcome(JSON.parse(JSON.stringify(stored)))), what).toBe(JSON.stringify(outcome));
    }
  });
});

describe('sources', () => {
  it('a batch source not spelled as the reference would write it (a leading zero, a version past 2^53) is kept whole, segments and outcomes alike', () => {
    const money = { read: 0.1, input: 3 / 1_000_000 };
    for (const source of ['ses_a@07', 'ses_a@+7', 'ses_a@9007199254740993']) {
      const t = memoryBatches();
      const segments = render([{ source, path: [source], section: 'messages', bytes: 40, units: [['a'.repeat(16), 9, 1]], estimated: true, odd: 'none' }]);
      const stored = JSON.parse(JSON.stringify(compactSegments(segments, 'V', t.read, t.write)));
      expect(JSON.stringify(expandSegments(stored, t.read))).toBe(JSON.stringify(segments));
      const seg = outcomeOf(source, [source], 'messages', 0, 40, { segRead: 40, segWrite: 0, writeUnits: 0, cold: 0, predicted: 40, captured: 40 }, money, true);
      const outcome = { lengths: [40], capture: 'reported', segments: [seg], drift: null };
      expect(JSON.stringify(expandOutcome(JSON.parse(JSON.stringify(compactOutcome(outcome, money)))))).toBe(JSON.stringify(outcome));
    }
  });
});
