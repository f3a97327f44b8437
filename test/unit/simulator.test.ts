import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { CacheRules } from '../../src/domain/catalog/types';
import {
  CacheSimulator,
  SimulationError,
  type SimChanges,
  type SimEntry,
  type SimSnapshot,
  type SimBlock,
  type SimOutcome,
  type SimRequest,
  stepFloor,
} from '../../src/domain/simulator/cache';

const SEC = 1000;
const MIN = 60 * SEC;

function anthropicRules(overrides: Partial<CacheRules> = {}): CacheRules {
  return {
    mode: 'explicit',
    minTokens: 1024,
    ttls: [
      { name: '5m', seconds: 300, writeMultiplier: 1.25 },
      { name: '1h', seconds: 3600, writeMultiplier: 2 },
    ],
    defaultTtl: '5m',
    refreshOnHit: true,
    readMultiplier: 0.1,
    maxBreakpoints: 4,
    lookbackBlocks: 20,
    granularity: null,
    writesBilled: true,
    acceptsBreakpoints: true,
    ...overrides,
  };
}

function openaiRules(overrides: Partial<CacheRules> = {}): CacheRules {
  return {
    mode: 'automatic',
    minTokens: 1024,
    ttls: [{ name: '5m', seconds: 300, writeMultiplier: 1 }],
    defaultTtl: '5m',
    refreshOnHit: true,
    readMultiplier: 0.1,
    maxBreakpoints: null,
    lookbackBlocks: null,
    granularity: { first: 1024, step: 128 },
    writesBilled: false,
    acceptsBreakpoints: false,
    ...overrides,
  };
}

/** [name, tokens, breakpoint TTL?]; keys chain the names, so equal names up to k = equal prefix. */
type Spec = Array<[string, number, string?]>;

function blocks(spec: Spec): SimBlock[] {
  let end = 0;
  return spec.map(([, tokens, bp], i) => {
    end += tokens;
    const key = spec.slice(0, i + 1).map(([name]) => name).join('/');
    return bp === undefined ? { key, endToken: end } : { key, endToken: end, breakpoint: bp };
  });
}

let seq = 0;
function req(startedAt: number, spec: Spec, firstByteAt: number | null = startedAt + 2 * SEC): SimRequest {
  seq += 1;
  return { id: `req_${seq}`, startedAt, firstByteAt, blocks: blocks(spec) };
}

/** n blocks of `tokens` each, named prefix0…, with breakpoints at the given indexes. */
function uniform(prefix: string, n: number, tokens: number, bps: Record<number, string> = {}): Spec {
  return Array.from({ length: n }, (_, i): [string, number, string?] =>
    bps[i] === undefined ? [`${prefix}${i}`, tokens] : [`${prefix}${i}`, tokens, bps[i]],
  );
}

const reasons = (o: SimOutcome) => o.blocks.map((b) => b.reason);
const reads = (o: SimOutcome) => o.blocks.map((b) => b.read);

describe('CacheSimulator — explicit mode (Anthropic-like)', () => {
  it('warm loop: request 1 writes at its breakpoint, request 2 a minute later reads it via lookback', () => {
    const sim = new CacheSimulator(anthropicRules());
    const first = sim.apply(req(0, [['sys', 1200], ['u1', 100, '5m']]));
    expect(first).toEqual({
      readTokens: 0,
      writeTokens: 1300,
      writeByTtl: { '5m': 1300 },
      hitBlock: null,
      blocks: [
        { read: 0, reason: 'not_seen' },
        { read: 0, reason: 'not_seen' },
      ],
    });
    const second = sim.apply(req(1 * MIN, [['sys', 1200], ['u1', 100], ['a1', 50], ['u2', 80, '5m']]));
    expect(second).toEqual({
      readTokens: 1300,
      writeTokens: 130,
      writeByTtl: { '5m': 130 },
      hitBlock: 1,
      blocks: [
        { read: 1200, reason: null },
        { read: 100, reason: null },
        { read: 0, reason: 'not_seen' },
        { read: 0, reason: 'not_seen' },
      ],
    });
  });

  it('a 6-minute gap on a 5m TTL is expired and the prefix is written again', () => {
    const sim = new CacheSimulator(anthropicRules());
    sim.apply(req(0, [['sys', 2000, '5m']]));
    expect(sim.peek(req(4 * MIN, [['sys', 2000, '5m']])).readTokens).toBe(2000);
    const late = sim.apply(req(6 * MIN, [['sys', 2000, '5m']]));
    expect(late.readTokens).toBe(0);
    expect(late.writeTokens).toBe(2000);
    expect(reasons(late)).toEqual(['expired']);
  });

  it("an expired prefix's last use is the longest expired prefix's, not a shorter one's used since", () => {
    const sim = new CacheSimulator(anthropicRules());
    sim.apply(req(0, [['tools', 250], ['sys', 2000, '5m']]));
    // Another call shares the tools alone (too short to cache) a minute later.
    sim.apply(req(1 * MIN, [['tools', 250], ['other', 2000, '5m']]));
    const o = sim.apply(req(7 * MIN, [['tools', 250], ['sys', 2000, '5m']]));
    expect(reasons(o)).toEqual(['expired', 'expired']);
    expect(o.expired).toEqual({ lastUsedAt: 0, ttl: '5m' });
  });

  it("an expired gap is the nearest miss's: a shared prefix over the minimum used since by another conversation, not an old one's longer prefix", () => {
    const sim = new CacheSimulator(anthropicRules());
    // A conversation opens with a common question ("Hi") at 0; another runs on the same prompt at 10 min.
    sim.apply(req(0, [['tools', 250], ['sys', 2000, '5m'], ['hi', 20, '5m']]));
    sim.apply(req(10 * MIN, [['tools', 250], ['sys', 2000, '5m'], ['other', 30, '5m']]));
    const o = sim.apply(req(17 * MIN, [['tools', 250], ['sys', 2000, '5m'], ['hi', 20, '5m']]));
    expect(reasons(o)).toEqual(['expired', 'expired', 'expired']);
    // The system prompt was last used 7 min before (what a 1h lifetime would have read), not 17 min: that was the
    // last time the whole prompt, question included, was sent. The tools alone, under the minimum, say nothing.
    expect(o.expired).toEqual({ lastUsedAt: 10 * MIN, ttl: '5m' });
  });

  it('a write is readable from its first byte, or from its start for a request that asks early (a reported first byte is a bound)', () => {
    const sim = new CacheSimulator(anthropicRules());
    sim.apply(req(0, [['sys', 2000, '5m']], 500));
    const second = req(100, [['sys', 2000, '5m']], 600);
    expect(reasons(sim.peek(second))).toEqual(['concurrent']);
    expect(sim.peek({ ...second, unknownFirstBytes: 'early' }).readTokens).toBe(2000);
    // From the first byte on, alike either way.
    expect(sim.peek(req(500, [['sys', 2000, '5m']])).readTokens).toBe(2000);
  });

  it('a prefix written by two parallel calls is credited to the one whose write was surely readable first', () => {
    const sim = new CacheSimulator(anthropicRules());
    sim.apply({ id: 'A', startedAt: 0, firstByteAt: 400, blocks: blocks([['sys', 2000, '5m']]) });
    sim.apply({ id: 'B', startedAt: 100, firstByteAt: 200, blocks: blocks([['sys', 2000, '5m']]) });
    expect(sim.apply({ id: 'C', startedAt: 300, firstByteAt: 350, blocks: blocks([['sys', 2000, '5m']]) }).readTokens).toBe(2000);
    expect(sim.writerOf('sys')).toBe('B');
  });

  it('hits every 4 minutes keep a 5m entry alive well past 5 minutes (refresh on hit)', () => {
    const sim = new CacheSimulator(anthropicRules());
    sim.apply(req(0, [['sys', 2000, '5m']]));
    for (const minute of [4, 8, 12, 16]) {
      const o = sim.apply(req(minute * MIN, [['sys', 2000, '5m']]));
      expect(o.readTokens).toBe(2000);
      expect(o.writeTokens).toBe(0);
    }
  });

  it('without refresh on hit the same schedule expires at minute 8', () => {
    const sim = new CacheSimulator(anthropicRules({ refreshOnHit: false }));
    sim.apply(req(0, [['sys', 2000, '5m']]));
    expect(sim.apply(req(4 * MIN, [['sys', 2000, '5m']])).readTokens).toBe(2000);
    const o = sim.apply(req(8 * MIN, [['sys', 2000, '5m']]));
    expect(o.readTokens).toBe(0);
    expect(reasons(o)).toEqual(['expired']);
  });

  it('a prefix under the minimum is never written and is reported below_minimum', () => {
    const sim = new CacheSimulator(anthropicRules());
    const first = sim.apply(req(0, [['sys', 800, '5m']]));
    expect(first.writeTokens).toBe(0);
    expect(first.writeByTtl).toEqual({});
    const second = sim.apply(req(1 * MIN, [['sys', 800, '5m']]));
    expect(second).toEqual({
      readTokens: 0,
      writeTokens: 0,
      writeByTtl: {},
      hitBlock: null,
      blocks: [{ read: 0, reason: 'below_minimum' }],
    });
  });

  it('a short shared head followed by a new tail: head below_minimum, tail not_seen', () => {
    const sim = new CacheSimulator(anthropicRules());
    sim.apply(req(0, [['a', 800], ['b', 400, '5m']]));
    const o = sim.apply(req(1 * MIN, [['a', 800], ['c', 400, '5m']]));
    expect(o.readTokens).toBe(0);
    expect(o.writeTokens).toBe(1200);
    expect(reasons(o)).toEqual(['below_minimum', 'not_seen']);
  });

  it('two parallel identical requests: the second started before the first answered, so both write', () => {
    const sim = new CacheSimulator(anthropicRules());
    const a = sim.apply(req(0, [['sys', 3000, '5m']], 8 * SEC));
    const b = sim.apply(req(2 * SEC, [['sys', 3000, '5m']], 9 * SEC));
    expect(a.writeTokens).toBe(3000);
    expect(b).toEqual({
      readTokens: 0,
      writeTokens: 3000,
      writeByTtl: { '5m': 3000 },
      hitBlock: null,
      blocks: [{ read: 0, reason: 'concurrent' }],
      // The write it paid again: the first request's, readable from its first byte, 6 s after this one started.
      concurrent: { writtenBy: `req_${seq - 1}`, writerStartedAt: 0, readableAt: 8 * SEC },
    });
    // Once the first writer has answered, the entry is readable.
    expect(sim.apply(req(10 * SEC, [['sys', 3000, '5m']])).readTokens).toBe(3000);
  });

  it('unknown firstByteAt counts as answered at start', () => {
    const sim = new CacheSimulator(anthropicRules());
    sim.apply(req(0, [['sys', 3000, '5m']], null));
    expect(sim.apply(req(1, [['sys', 3000, '5m']])).readTokens).toBe(3000);
  });

  describe('lookback', () => {
    // 15 blocks of 100 tokens, breakpoint on block 14 (prefix end 1500)
    const history = () => {
      const sim = new CacheSimulator(anthropicRules());
      sim.apply(req(0, uniform('b', 15, 100, { 14: '5m' })));
      return sim;
    };

    it('breakpoint moved forward by 26 blocks (> 20): no hit, earlier blocks lookback', () => {
      const o = history().apply(req(1 * MIN, uniform('b', 41, 100, { 40: '5m' })));
      expect(o.readTokens).toBe(0);
      expect(o.writeTokens).toBe(4100);
      expect(o.hitBlock).toBeNull();
      expect(reasons(o)).toEqual([...Array(15).fill('lookback'), ...Array(26).fill('not_seen')]);
    });

    it('breakpoint moved forward by 21 blocks: one too many', () => {
      const o = history().apply(req(1 * MIN, uniform('b', 36, 100, { 35: '5m' })));
      expect(o.readTokens).toBe(0);
      expect(o.blocks[14]).toEqual({ read: 0, reason: 'lookback' });
    });

    it('breakpoint moved forward by exactly 20 blocks: hit', () => {
      const o = history().apply(req(1 * MIN, uniform('b', 41, 100, { 34: '5m' })));
      expect(o.readTokens).toBe(1500);
      expect(o.hitBlock).toBe(14);
      expect(o.writeTokens).toBe(2000); // 3500 (breakpoint) - 1500 (read)
      expect(o.writeByTtl).toEqual({ '5m': 2000 });
      expect(reads(o)).toEqual([...Array(15).fill(100), ...Array(26).fill(0)]);
      expect(reasons(o)).toEqual([...Array(15).fill(null), ...Array(26).fill('not_seen')]);
    });

    it('breakpoint moved forward by 5 blocks: hit', () => {
      const o = history().apply(req(1 * MIN, uniform('b', 20, 100, { 19: '5m' })));
      expect(o.readTokens).toBe(1500);
      expect(o.writeTokens).toBe(500);
    });
  });

  describe('no_breakpoint', () => {
    it('this request has no breakpoint: nothing read or written', () => {
      const sim = new CacheSimulator(anthropicRules());
      sim.apply(req(0, uniform('b', 15, 100, { 14: '5m' })));
      const o = sim.apply(req(1 * MIN, uniform('b', 15, 100)));
      expect(o).toEqual({
        readTokens: 0,
        writeTokens: 0,
        writeByTtl: {},
        hitBlock: null,
        blocks: Array(15).fill({ read: 0, reason: 'no_breakpoint' }),
      });
    });

    it('the earlier request had no breakpoint: nothing to read, this one writes', () => {
      const sim = new CacheSimulator(anthropicRules());
      const first = sim.apply(req(0, uniform('b', 15, 100)));
      expect(first.writeTokens).toBe(0);
      const o = sim.apply(req(1 * MIN, uniform('b', 15, 100, { 14: '5m' })));
      expect(o.readTokens).toBe(0);
      expect(o.writeTokens).toBe(1500);
      expect(reasons(o)).toEqual(Array(15).fill('no_breakpoint'));
    });

    it('an intermediate request without breakpoint does not refresh the held entry', () => {
      const sim = new CacheSimulator(anthropicRules());
      sim.apply(req(0, [['sys', 2000, '5m']]));
      sim.apply(req(4 * MIN, [['sys', 2000]]));
      const o = sim.apply(req(6 * MIN, [['sys', 2000, '5m']]));
      expect(o.readTokens).toBe(0);
      // A perfect cache would still hold it (seen at minute 4): the missing mark is the cause.
      expect(reasons(o)).toEqual(['no_breakpoint']);
    });
  });

  it('writes are split by the TTL of the breakpoint that covers them', () => {
    const sim = new CacheSimulator(anthropicRules());
    const first = sim.apply(req(0, [['tools', 1100, '1h'], ['sys', 500, '5m'], ['u1', 100]]));
    expect(first.writeTokens).toBe(1600);
    expect(first.writeByTtl).toEqual({ '1h': 1100, '5m': 500 });
    // 10 minutes later the 5m entry is gone, the 1h one is not.
    const o = sim.apply(req(10 * MIN, [['tools', 1100, '1h'], ['sys', 500, '5m'], ['u2', 100]]));
    expect(o.readTokens).toBe(1100);
    expect(o.hitBlock).toBe(0);
    expect(o.writeTokens).toBe(500);
    expect(o.writeByTtl).toEqual({ '5m': 500 });
    expect(reasons(o)).toEqual([null, 'expired', 'not_seen']);
  });

  it('a request writes at most maxBreakpoints breakpoints, the latest; a read looks up every one', () => {
    const sim = new CacheSimulator(anthropicRules());
    // Six marks on 400-token blocks: the first two (400, 800) are not written, the latest four (1200…2400) are.
    const six = { 0: '5m', 1: '5m', 2: '5m', 3: '5m', 4: '5m', 5: '5m' };
    const o = sim.apply(req(0, uniform('b', 6, 400, six)));
    expect(o.writeTokens).toBe(2400);
    // A request that shares only the first three blocks, with six marks again: its third mark (1200) is read.
    const later = sim.apply(req(MIN, [...uniform('b', 3, 400), ...uniform('c', 3, 400)].map(([n, t], i): [string, number, string] => [n, t, '5m'])));
    expect(later.readTokens).toBe(1200);
    // Writes past the read: the latest four marks (1200 is read already, so 1600…2400).
    expect(later.writeTokens).toBe(1200);
  });

  it('with more marks than maxBreakpoints, the earliest are not written (OpenAI writes the latest)', () => {
    const sim = new CacheSimulator(anthropicRules({ minTokens: 100 }));
    sim.apply(req(0, uniform('b', 5, 300, { 0: '5m', 1: '5m', 2: '5m', 3: '5m', 4: '5m' })));
    // The first mark (300) was not written: a request ending there reads nothing.
    expect(sim.apply(req(MIN, uniform('b', 1, 300, { 0: '5m' }))).readTokens).toBe(0);
    expect(sim.apply(req(2 * MIN, uniform('b', 2, 300, { 1: '5m' }))).readTokens).toBe(600);
  });

  it('an unknown TTL name falls back to the default TTL', () => {
    const sim = new CacheSimulator(anthropicRules());
    expect(sim.apply(req(0, [['sys', 2000, '7d']])).writeByTtl).toEqual({ '5m': 2000 });
  });
});

describe('CacheSimulator — automatic mode (OpenAI-like)', () => {
  it('warm loop with 128-token rounding', () => {
    const sim = new CacheSimulator(openaiRules());
    const first = sim.apply(req(0, [['sys', 1500], ['u1', 100]]));
    expect(first).toMatchObject({ readTokens: 0, writeTokens: 1600, writeByTtl: { '5m': 1600 }, hitBlock: null });
    const second = sim.apply(req(1 * MIN, [['sys', 1500], ['u1', 100], ['a1', 50], ['u2', 80]]));
    expect(second).toEqual({
      readTokens: 1536, // 1600 matched → 1024 + 4 × 128
      writeTokens: 194,
      writeByTtl: { '5m': 194 },
      hitBlock: 1,
      blocks: [
        { read: 1500, reason: null },
        { read: 36, reason: 'granularity' },
        { read: 0, reason: 'not_seen' },
        { read: 0, reason: 'not_seen' },
      ],
    });
  });

  it('1500 matching tokens are read as 1408; the rest of the block is granularity', () => {
    const sim = new CacheSimulator(openaiRules());
    sim.apply(req(0, [['sys', 1500]]));
    const o = sim.apply(req(1 * MIN, [['sys', 1500], ['u', 200]]));
    expect(o.readTokens).toBe(1408);
    expect(o.hitBlock).toBe(0);
    expect(o.writeTokens).toBe(292);
    expect(o.blocks).toEqual([
      { read: 1408, reason: 'granularity' },
      { read: 0, reason: 'not_seen' },
    ]);
  });

  it('without granularity (vLLM-like full blocks) the whole matched prefix is read', () => {
    const sim = new CacheSimulator(openaiRules({ granularity: null }));
    sim.apply(req(0, [['sys', 1500]]));
    expect(sim.apply(req(1 * MIN, [['sys', 1500], ['u', 200]])).readTokens).toBe(1500);
  });

  it('drift: a change in block 3 leaves blocks 0–2 read and blocks 3+ not_seen', () => {
    const sim = new CacheSimulator(openaiRules());
    sim.apply(req(0, uniform('b', 6, 512)));
    const changed: Spec = [...uniform('b', 3, 512), ['x3', 512], ['x4', 512], ['x5', 512]];
    const o = sim.apply(req(1 * MIN, changed));
    expect(o.readTokens).toBe(1536);
    expect(o.hitBlock).toBe(2);
    expect(o.writeTokens).toBe(1536);
    expect(o.blocks).toEqual([
      { read: 512, reason: null },
      { read: 512, reason: null },
      { read: 512, reason: null },
      { read: 0, reason: 'not_seen' },
      { read: 0, reason: 'not_seen' },
      { read: 0, reason: 'not_seen' },
    ]);
  });

  it('parallel requests are concurrent and both write', () => {
    const sim = new CacheSimulator(openaiRules());
    sim.apply(req(0, [['sys', 2000], ['u', 100]], 8 * SEC));
    const b = sim.apply(req(2 * SEC, [['sys', 2000], ['u', 100]], 9 * SEC));
    expect(b.readTokens).toBe(0);
    expect(b.writeTokens).toBe(2100);
    expect(reasons(b)).toEqual(['concurrent', 'concurrent']);
    expect(sim.apply(req(10 * SEC, [['sys', 2000], ['u', 100]])).readTokens).toBe(2048);
  });

  it('a prompt under the minimum is neither read nor written', () => {
    const sim = new CacheSimulator(openaiRules());
    sim.apply(req(0, [['sys', 900]]));
    const o = sim.apply(req(1 * MIN, [['sys', 900]]));
    expect(o).toMatchObject({ readTokens: 0, writeTokens: 0, blocks: [{ read: 0, reason: 'below_minimum' }] });
  });

  it('expires after the TTL without hits', () => {
    const sim = new CacheSimulator(openaiRules());
    sim.apply(req(0, [['sys', 2000]]));
    const o = sim.apply(req(6 * MIN, [['sys', 2000]]));
    expect(o.readTokens).toBe(0);
    expect(reasons(o)).toEqual(['expired']);
  });
});

describe('CacheSimulator — contract', () => {
  it('rejects requests applied out of startedAt order (equal start times are fine)', () => {
    const sim = new CacheSimulator(openaiRules());
    sim.apply(req(10 * SEC, [['sys', 2000]]));
    sim.apply(req(10 * SEC, [['sys', 2000]]));
    expect(() => sim.apply(req(5 * SEC, [['sys', 2000]]))).toThrow(SimulationError);
    try {
      sim.peek(req(5 * SEC, [['sys', 2000]]));
      expect.unreachable();
    } catch (e) {
      expect((e as SimulationError).code).toBe('out_of_order');
    }
  });

  it('rejects blocks whose endToken does not increase', () => {
    const sim = new CacheSimulator(openaiRules());
    const bad: SimRequest = { id: 'r', startedAt: 0, firstByteAt: null, blocks: [{ key: 'a', endToken: 10 }, { key: 'b', endToken: 10 }] };
    expect(() => sim.apply(bad)).toThrow(/endToken/);
  });

  it('peek does not change state', () => {
    const sim = new CacheSimulator(anthropicRules());
    expect(sim.peek(req(0, [['sys', 2000, '5m']])).writeTokens).toBe(2000);
    expect(sim.apply(req(1 * MIN, [['sys', 2000, '5m']])).readTokens).toBe(0);
  });

  it('an empty request reads and writes nothing', () => {
    const sim = new CacheSimulator(openaiRules());
    expect(sim.apply(req(0, []))).toEqual({ readTokens: 0, writeTokens: 0, writeByTtl: {}, hitBlock: null, blocks: [] });
  });

  it('restore rejects a malformed snapshot', () => {
    expect(() => CacheSimulator.restore(openaiRules(), { version: 1 })).toThrow(SimulationError);
    expect(() => CacheSimulator.restore(openaiRules(), { version: 2, lastStartedAt: null, uncertain: null, entries: [['k', { ttl: '5m' }]], seen: [] })).toThrow(SimulationError);
    expect(() => CacheSimulator.restore(openaiRules(), null)).toThrow(SimulationError);
  });

  it('rejects rules whose default TTL is not listed', () => {
    expect(() => new CacheSimulator(openaiRules({ defaultTtl: '1h' }))).toThrow(SimulationError);
  });
});

// ---------------------------------------------------------------- properties

interface Step {
  /** extend: the latest request plus new blocks (a conversation turn); branch: part of any earlier one; fresh: new prompt */
  kind: 'extend' | 'branch' | 'fresh';
  base: number;
  keep: number;
  keepMarks: boolean[];
  added: Array<{ tokens: number; bp: string | null }>;
  gap: number;
  answerAfter: number | null;
}

const stepArb: fc.Arbitrary<Step> = fc.record({
  kind: fc.constantFrom('extend', 'extend', 'extend', 'branch', 'fresh'),
  base: fc.nat(),
  keep: fc.nat(),
  keepMarks: fc.array(fc.constantFrom(false, false, false, false, false, true), { maxLength: 60 }),
  added: fc.array(
    fc.record({ tokens: fc.integer({ min: 1, max: 700 }), bp: fc.constantFrom(null, null, '5m', '1h', 'other') }),
    { maxLength: 12 },
  ),
  gap: fc.oneof(fc.integer({ min: 0, max: 20 * SEC }), fc.integer({ min: 0, max: 2 * MIN }), fc.integer({ min: 0, max: 8 * MIN })),
  answerAfter: fc.option(fc.integer({ min: 0, max: 30 * SEC }), { nil: null }),
});

/** Builds a history where requests extend, truncate and branch from earlier ones. */
function history(steps: Step[]): SimRequest[] {
  const out: SimRequest[] = [];
  let t = 0;
  let fresh = 0;
  steps.forEach((s, i) => {
    t += s.gap;
    const base = s.kind === 'fresh' || out.length === 0 ? [] : out[s.kind === 'extend' ? out.length - 1 : s.base % out.length]!.blocks;
    const keep = s.kind === 'extend' ? base.length : s.keep % (base.length + 1);
    const kept = base.slice(0, keep).map((b, k): SimBlock => {
      const mark = s.keepMarks[k] ?? false;
      return mark ? { key: b.key, endToken: b.endToken, breakpoint: b.breakpoint ?? '5m' } : { key: b.key, endToken: b.endToken };
    });
    let end = kept.length === 0 ? 0 : kept[kept.length - 1]!.endToken;
    let key = kept.length === 0 ? 'root' : kept[kept.length - 1]!.key;
    const added = s.added.map((a): SimBlock => {
      end += a.tokens;
      fresh += 1;
      key = `${key}/${fresh}`;
      return a.bp === null ? { key, endToken: end } : { key, endToken: end, breakpoint: a.bp };
    });
    out.push({ id: `r${i}`, startedAt: t, firstByteAt: s.answerAfter === null ? null : t + s.answerAfter, blocks: [...kept, ...added] });
  });
  return out;
}

const ruleSets: Array<[string, CacheRules]> = [
  ['explicit', anthropicRules()],
  ['explicit, short lookback, no refresh', anthropicRules({ lookbackBlocks: 2, refreshOnHit: false, minTokens: 500 })],
  ['automatic', openaiRules()],
  ['automatic, no granularity', openaiRules({ granularity: null, minTokens: 256 })],
];

const historyArb = fc.array(stepArb, { minLength: 1, maxLength: 25 }).map(history);

describe.each(ruleSets)('CacheSimulator properties — %s', (_name, rules) => {
  it('per block read + unread = block tokens, Σ read = readTokens, reads and writes fit in the prompt', () => {
    fc.assert(
      fc.property(historyArb, (requests) => {
        const sim = new CacheSimulator(rules);
        for (const r of requests) {
          const o = sim.apply(r);
          const total = r.blocks.length === 0 ? 0 : r.blocks[r.blocks.length - 1]!.endToken;
          let sum = 0;
          o.blocks.forEach((b, i) => {
            const size = r.blocks[i]!.endToken - (i === 0 ? 0 : r.blocks[i - 1]!.endToken);
            expect(b.read).toBeGreaterThanOrEqual(0);
            expect(b.read).toBeLessThanOrEqual(size);
            // unread tokens exist exactly when a reason is given
            expect(b.reason === null).toBe(b.read === size);
            sum += b.read;
          });
          expect(o.blocks).toHaveLength(r.blocks.length);
          expect(sum).toBe(o.readTokens);
          expect(o.readTokens).toBeLessThanOrEqual(total);
          expect(o.readTokens + o.writeTokens).toBeLessThanOrEqual(total);
          expect(Object.values(o.writeByTtl).reduce((a, b) => a + b, 0)).toBe(o.writeTokens);
          expect(o.hitBlock === null).toBe(o.readTokens === 0);
          if (rules.granularity && o.readTokens > 0) {
            expect((o.readTokens - rules.granularity.first) % rules.granularity.step).toBe(0);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('replaying the same history — fresh, or through a JSON snapshot midway — gives identical outcomes', () => {
    fc.assert(
      fc.property(historyArb, fc.nat(), (requests, cut) => {
        const a = new CacheSimulator(rules);
        const outcomes = requests.map((r) => a.apply(r));

        const b = new CacheSimulator(rules);
        expect(requests.map((r) => b.apply(r))).toEqual(outcomes);
        expect(b.snapshot()).toEqual(a.snapshot());

        const mid = cut % (requests.length + 1);
        const c1 = new CacheSimulator(rules);
        const before = requests.slice(0, mid).map((r) => c1.apply(r));
        const c2 = CacheSimulator.restore(rules, JSON.parse(JSON.stringify(c1.snapshot())));
        const after = requests.slice(mid).map((r) => c2.apply(r));
        expect([...before, ...after]).toEqual(outcomes);
      }),
      { numRuns: 150 },
    );
  });

  it('a copy kept up to date by changes() alone, restored, goes on exactly as the simulator', () => {
    const sorted = (snap: SimSnapshot) => ({ ...snap, entries: [...snap.entries].sort(), seen: [...snap.seen].sort() });
    fc.assert(
      fc.property(historyArb, fc.array(fc.boolean(), { maxLength: 25 }), fc.array(fc.boolean(), { maxLength: 25 }), (history, early, take) => {
        // Some requests read as their receipt shows (`early`): that settles their writers' uncertain first bytes.
        const requests = history.map((r, i): SimRequest => ({ ...r, unknownFirstBytes: early[i] ? 'early' : 'late' }));
        const sim = new CacheSimulator(rules);
        sim.trackChanges();
        const copy = { entries: new Map<string, SimEntry>(), seen: new Map<string, SimEntry>() };
        requests.forEach((r, i) => {
          sim.apply(r);
          if (!take[i] && i < requests.length - 1) return;
          const c = JSON.parse(JSON.stringify(sim.changes())) as SimChanges;
          for (const [k, e] of c.entries) e ? copy.entries.set(k, e) : copy.entries.delete(k);
          for (const [k, e] of c.seen) copy.seen.set(k, e);
          const snap: SimSnapshot = { version: 2, lastStartedAt: c.lastStartedAt, uncertain: c.uncertain, entries: [...copy.entries], seen: [...copy.seen] };
          expect(sorted(snap)).toEqual(sorted(sim.snapshot()));
          const restored = CacheSimulator.restore(rules, snap);
          const twin = CacheSimulator.restore(rules, sim.snapshot());
          for (const q of requests.slice(i + 1)) {
            expect(restored.hasUncertainWritesAt(q.startedAt)).toBe(twin.hasUncertainWritesAt(q.startedAt));
            expect(restored.apply(q)).toEqual(twin.apply(q));
          }
        });
      }),
      { numRuns: 150 },
    );
  });

  it('peek predicts exactly what apply then does, and changes nothing', () => {
    fc.assert(
      fc.property(historyArb, (requests) => {
        const sim = new CacheSimulator(rules);
        for (const r of requests) {
          const snap = JSON.stringify(sim.snapshot());
          const predicted = sim.peek(r);
          expect(JSON.stringify(sim.snapshot())).toBe(snap);
          expect(sim.apply(r)).toEqual(predicted);
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('CacheSimulator — minimums and steps at their edges', () => {
  it('explicit: a prefix ending exactly at the minimum is written and read; one token under, never', () => {
    const sim = new CacheSimulator(anthropicRules());
    expect(sim.apply(req(0, [['at', 1024, '5m']])).writeTokens).toBe(1024);
    expect(sim.apply(req(1 * MIN, [['at', 1024, '5m']])).readTokens).toBe(1024);
    expect(sim.apply(req(2 * MIN, [['under', 1023, '5m']])).writeTokens).toBe(0);
    expect(sim.apply(req(3 * MIN, [['under', 1023, '5m']]))).toMatchObject({ readTokens: 0, blocks: [{ read: 0, reason: 'below_minimum' }] });
  });

  it('automatic: reads from 1,024 tokens, then in whole 128-token steps (1,151 reads 1,024; 1,152 reads 1,152); 1,023 is never cached', () => {
    expect([1023, 1024, 1151, 1152, 1279, 1280].map((n) => stepFloor({ first: 1024, step: 128 }, n))).toEqual([0, 1024, 1024, 1152, 1152, 1280]);
    for (const [tokens, read] of [[1023, 0], [1024, 1024], [1151, 1024], [1152, 1152]] as const) {
      const sim = new CacheSimulator(openaiRules());
      expect(sim.apply(req(0, [[`p${tokens}`, tokens]])).writeTokens, `${tokens}`).toBe(tokens >= 1024 ? tokens : 0);
      const o = sim.apply(req(1 * MIN, [[`p${tokens}`, tokens], ['q', 50]]));
      expect(o.readTokens, `${tokens}`).toBe(read);
      expect(o.blocks[0], `${tokens}`).toEqual({ read, reason: read === tokens ? null : read === 0 ? 'below_minimum' : 'granularity' });
    }
  });
});
