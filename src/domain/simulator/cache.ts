// A deterministic simulation of a provider prompt cache inside one cache scope.
// It predicts what a cache following the documented rules would have read for a
// request, explains every other token with the first waterfall gate it fails
// (DESIGN.md "Waterfall per segment"), and records the request's writes.
//
// Two stores are kept:
//  - `entries`: what the provider actually holds (only eligible, marked prefixes);
//  - `seen`: every prefix ever sent in the scope, updated as if every block
//    boundary were cached. It answers the gates before "eligible" (was the
//    prefix seen, is it fresh, was it settled) independently of breakpoints and
//    minimums, so a missing breakpoint is reported as `no_breakpoint`, not as
//    `expired`.

import type { CacheRules, CacheTtl } from '../catalog/types';

export interface SimBlock {
  /** Chained prefix hash through this block: equal key = equal bytes from the first token through this block. */
  key: string;
  /** Cumulative prompt tokens at the end of this block (strictly increasing). */
  endToken: number;
  /** TTL name when the request marks a cache breakpoint at the end of this block (explicit mode). */
  breakpoint?: string | null;
}

export interface SimRequest {
  id: string;
  /** ms */
  startedAt: number;
  /**
   * ms, when it started answering as its client saw it: the latest the provider can have. Its writes are
   * readable from startedAt or from here, as each later request's `unknownFirstBytes` says. null = unknown.
   */
  firstByteAt: number | null;
  /** ms, with an unknown first byte: the latest it can have come (the call's end), in its place. */
  finishedAt?: number | null;
  /**
   * How this request sees writes whose writer's first byte is uncertain: readable from that writer's start
   * (`early`) or only from its first byte, or its end when that is unknown (`late`, the default). A reconciler
   * picks by the provider's receipt; a provider (src/simulator) knows its first bytes and never asks `early`.
   */
  unknownFirstBytes?: 'early' | 'late';
  /** The lifetime this request's writes get where no breakpoint says (OpenAI `prompt_cache_retention`); else the default. */
  ttl?: string | null;
  blocks: SimBlock[];
  /**
   * The prompt's whole length where tokens follow the last block (a chat template's reply header): the length a
   * `lastTokenComputed` cache caps its read by. Absent: the last block's end.
   */
  promptTokens?: number;
}

export type MissReason =
  | 'not_seen'
  | 'expired'
  | 'concurrent'
  | 'below_minimum'
  | 'granularity'
  | 'no_breakpoint'
  | 'lookback';

export interface SimOutcome {
  /** Predicted cached tokens read. */
  readTokens: number;
  /** Tokens written to cache by this request. */
  writeTokens: number;
  writeByTtl: Record<string, number>;
  /** Index of the block whose entry was read; null when nothing was read. */
  hitBlock: number | null;
  /** Per block: tokens predicted as read, and for the rest of the block the first gate it fails. */
  blocks: Array<{ read: number; reason: MissReason | null }>;
  /** When blocks expired: the latest use (start of the last request that wrote or read them) and its TTL. */
  expired?: { lastUsedAt: number; ttl: string };
  /** When blocks were `concurrent`: the request whose write of them was not readable yet, its start, and when it became readable. */
  concurrent?: { writtenBy: string; writerStartedAt: number; readableAt: number };
}

export type SimulationErrorCode = 'out_of_order' | 'invalid_request' | 'invalid_rules' | 'invalid_snapshot';

export class SimulationError extends Error {
  override readonly name = 'SimulationError';
  constructor(
    readonly code: SimulationErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface SimEntry {
  endToken: number;
  /** TTL name the entry was written (or last refreshed) with. */
  ttl: string;
  expiresAt: number;
  /** The earliest the entry can have become readable: its writer's start (a later `early` request reads it from then). */
  readableAt: number;
  /** The latest: the writer's first byte as reported, or its end when that is unknown (absent when no later than readableAt). */
  lateReadableAt?: number;
  writtenBy: string;
}

type Entry = SimEntry;

/** Everything a simulator holds: restored, it goes on exactly as the original would. */
export interface SimSnapshot {
  version: 2;
  lastStartedAt: number | null;
  /** The latest `lateReadableAt` ever set (null: none); entries no longer show it once settled or pruned. */
  uncertain: number | null;
  entries: Array<[string, Entry]>;
  seen: Array<[string, Entry]>;
}

/** The entries changed since the last `changes()` (see trackChanges; null: deleted), and the rest of the state. */
export type SimChanges = Omit<SimSnapshot, 'version' | 'entries'> & { entries: Array<[string, Entry | null]> };

// Gate depth a candidate prefix reaches; a larger rank passed more gates.
const RANK: Record<Exclude<MissReason, 'granularity'>, number> = {
  not_seen: 0,
  expired: 1,
  concurrent: 2,
  below_minimum: 3,
  no_breakpoint: 4,
  lookback: 5,
};

/** A request's outcome, and the step that records it (to commit the one chosen among several). */
export interface SimPlan {
  outcome: SimOutcome;
  commit: () => void;
}

export class CacheSimulator {
  private readonly ttlByName: Map<string, CacheTtl>;
  private readonly defaultTtl: CacheTtl;
  private entries = new Map<string, Entry>();
  private seen = new Map<string, Entry>();
  private lastStartedAt: number | null = null;
  /** The latest `lateReadableAt` ever set: a request starting at or after it sees every write alike either way. */
  private uncertain = Number.NEGATIVE_INFINITY;
  /** Keys whose entry changed since the last `changes()`, once trackChanges was called. */
  private changed: { entries: Set<string>; seen: Set<string> } | null = null;

  /** Whether `unknownFirstBytes` can change anything for a request starting at `t`. */
  hasUncertainWritesAt(t: number): boolean {
    return t < this.uncertain;
  }

  constructor(private readonly rules: CacheRules) {
    if (rules.ttls.length === 0) throw new SimulationError('invalid_rules', 'cache rules list no TTL');
    this.ttlByName = new Map(rules.ttls.map((t) => [t.name, t]));
    const fallback = this.ttlByName.get(rules.defaultTtl);
    if (!fallback) throw new SimulationError('invalid_rules', `default TTL "${rules.defaultTtl}" is not among the TTLs`);
    this.defaultTtl = fallback;
    if (rules.granularity && (rules.granularity.first <= 0 || rules.granularity.step <= 0)) {
      throw new SimulationError('invalid_rules', 'granularity first and step must be positive');
    }
  }

  /** Predicts the outcome of `req` and records its reads and writes. */
  apply(req: SimRequest): SimOutcome {
    const { outcome, commit } = this.evaluate(req);
    commit();
    return outcome;
  }

  /** Predicts the outcome of `req` without changing the cache. */
  /** The request that wrote the held entry for `key` (to tell which earlier write a hit read). */
  writerOf(key: string): string | undefined {
    return this.entries.get(key)?.writtenBy;
  }

  peek(req: SimRequest): SimOutcome {
    return this.evaluate(req).outcome;
  }

  /** The outcome of `req`, recorded only if `commit` is called (before any other request is applied). */
  plan(req: SimRequest): SimPlan {
    return this.evaluate(req);
  }

  snapshot(): SimSnapshot {
    const copy = (m: Map<string, Entry>) => [...m].map(([k, e]): [string, Entry] => [k, { ...e }]);
    return { version: 2, ...this.head(), entries: copy(this.entries), seen: copy(this.seen) };
  }

  static restore(rules: CacheRules, snapshot: unknown): CacheSimulator {
    const snap = parseSnapshot(snapshot);
    const sim = new CacheSimulator(rules);
    sim.lastStartedAt = snap.lastStartedAt;
    sim.uncertain = snap.uncertain ?? Number.NEGATIVE_INFINITY;
    // parseSnapshot made the entries anew: the caller's are not shared.
    sim.entries = new Map(snap.entries);
    sim.seen = new Map(snap.seen);
    return sim;
  }

  /** How many entries it holds (held and seen). */
  get size(): number {
    return this.entries.size + this.seen.size;
  }

  /**
   * Records which entries change from now on: a copy kept elsewhere is brought up to date by `changes()` alone (the
   * entries of a scope with a long history are far more than those one snapshot's requests touch).
   */
  trackChanges(): void {
    this.changed ??= { entries: new Set(), seen: new Set() };
  }

  /** The entries changed since the last call (uncopied: read them before the next request). */
  changes(): SimChanges {
    const changed = this.changed ?? { entries: new Set<string>(), seen: new Set<string>() };
    const out: SimChanges = {
      ...this.head(),
      entries: [...changed.entries].map((k) => [k, this.entries.get(k) ?? null]),
      // `seen` only grows.
      seen: [...changed.seen].map((k) => [k, this.seen.get(k)!]),
    };
    changed.entries.clear();
    changed.seen.clear();
    return out;
  }

  /**
   * Its held (`entries`) or seen entries, as each is when reached: a copy written a part at a time. The walk goes on
   * across requests (a Map's iterator does); an entry set or deleted meanwhile may be reached or not: changes() has it.
   */
  walk(store: 'entries' | 'seen'): IterableIterator<[string, Entry]> {
    return this[store].entries();
  }

  /** Everything but its entries. */
  head(): Pick<SimSnapshot, 'lastStartedAt' | 'uncertain'> {
    return { lastStartedAt: this.lastStartedAt, uncertain: Number.isFinite(this.uncertain) ? this.uncertain : null };
  }

  private mark(store: Map<string, Entry>, key: string): void {
    if (this.changed) (store === this.entries ? this.changed.entries : this.changed.seen).add(key);
  }

  private evaluate(req: SimRequest): SimPlan {
    validateRequest(req);
    if (this.lastStartedAt !== null && req.startedAt < this.lastStartedAt) {
      throw new SimulationError(
        'out_of_order',
        `request ${req.id} started at ${req.startedAt}, before an already applied request (${this.lastStartedAt})`,
      );
    }
    const t = req.startedAt;
    const late = req.unknownFirstBytes !== 'early';
    const blocks = req.blocks;
    const n = blocks.length;
    const total = n === 0 ? 0 : blocks[n - 1]!.endToken;
    const explicit = this.rules.mode === 'explicit';
    const min = this.rules.minTokens;
    // Block bounds by module functions, not closures made per call: tsx (esbuild keepNames) names each closure with
    // Object.defineProperty, ~0.4 µs apiece, and a report evaluates twice.

    const marks = explicit ? breakpointsOf(blocks) : [];
    const baseTtl = this.resolveTtl(req.ttl);
    // A request writes at most `maxBreakpoints` of them, the latest (OpenAI: the latest three explicit and its
    // implicit one; Anthropic refuses a request with more); every one is looked up for a read.
    const max = this.rules.maxBreakpoints;
    const writeMarks = max === null ? marks : marks.slice(-max);
    const markTtl = new Map(marks.map((b) => [b, this.resolveTtl(blocks[b]!.breakpoint)]));
    const lookback = this.rules.lookbackBlocks ?? Number.POSITIVE_INFINITY;

    // --- read: the longest readable matching prefix the provider would find
    let match: number | null = null;
    if (explicit) {
      // Each breakpoint checks its own prefix, then up to `lookbackBlocks` earlier boundaries.
      for (const b of marks) {
        for (let j = b; j >= 0 && b - j <= lookback; j--) {
          if (liveAt(this.entries.get(keyOf(blocks, j)), t, late)) {
            if (match === null || j > match) match = j;
            break;
          }
        }
      }
    } else {
      for (let j = n - 1; j >= 0; j--) {
        if (liveAt(this.entries.get(keyOf(blocks, j)), t, late)) {
          match = j;
          break;
        }
      }
    }
    const readTokens = match === null ? 0 : this.roundDown(Math.min(endOf(blocks, match), readCap(this.rules, req.promptTokens ?? total)));
    const hitBlock = readTokens > 0 ? match : null;

    // --- writes
    const writeByTtl: Record<string, number> = {};
    let writeTokens = 0;
    if (explicit) {
      // Tokens between two breakpoints are written with the later breakpoint's TTL.
      let covered = readTokens;
      for (const b of writeMarks) {
        if (endOf(blocks, b) < min || endOf(blocks, b) <= covered) continue;
        const ttl = markTtl.get(b)!;
        writeByTtl[ttl.name] = (writeByTtl[ttl.name] ?? 0) + (endOf(blocks, b) - covered);
        writeTokens += endOf(blocks, b) - covered;
        covered = endOf(blocks, b);
      }
    } else if (total >= min && total > readTokens) {
      writeTokens = total - readTokens;
      writeByTtl[baseTtl.name] = writeTokens;
    }

    // --- per-block classification of the tokens not read
    const reasons = this.classify(req, match, marks, lookback, late);
    const outcomeBlocks = blocks.map((_, i) => {
      const size = endOf(blocks, i) - startOf(blocks, i);
      const read = Math.min(size, Math.max(0, readTokens - startOf(blocks, i)));
      return { read, reason: read === size ? null : reasons[i]! };
    });

    const outcome: SimOutcome = { readTokens, writeTokens, writeByTtl, hitBlock, blocks: outcomeBlocks };
    if (outcomeBlocks.some((b) => b.reason === 'expired')) {
      // The nearest miss: the shortest prefix that expired itself and is at or over the minimum, last used most
      // recently — a shared system prompt another conversation used 7 minutes ago, not the 3 hours since the
      // whole prompt, a common first question included, was sent. One under the minimum, referenced since by
      // other calls but never cached, says nothing; without such a prefix, the longest expired one's.
      const nearest = outcomeBlocks.findIndex((b, i) => b.reason === 'expired' && endOf(blocks, i) >= this.rules.minTokens && this.isStale(keyOf(blocks, i), t));
      const expired = this.lastUse(keyOf(blocks, nearest >= 0 ? nearest : outcomeBlocks.findLastIndex((b) => b.reason === 'expired')));
      if (expired) outcome.expired = expired;
    }
    if (outcomeBlocks.some((b) => b.reason === 'concurrent')) {
      // The longest prefix written by a call still to answer: the write this one paid again.
      const j = outcomeBlocks.findLastIndex((b) => b.reason === 'concurrent');
      const pending = this.unreadableWrite(keyOf(blocks, j), t, late);
      if (pending) outcome.concurrent = pending;
    }

    const commit = () => {
      // A first byte is known only as a client saw it, after the provider sent it (and the next call's start before
      // the provider had it): the provider started answering somewhere from this call's start to then. Its writes
      // are readable from the first byte for a later request (`late`, the default), or from the start where that
      // request's provider receipt shows it read them (`early`). An unknown first byte is bounded by the call's end.
      const readable = { at: t, late: Math.max(t, req.firstByteAt ?? req.finishedAt ?? t), mode: late };
      this.lastStartedAt = t;
      this.pruneExpired(t);
      // The read prefix is used again: refresh every held entry along it.
      if (match !== null) {
        for (let j = 0; j <= match; j++) {
          const e = this.entries.get(keyOf(blocks, j));
          if (e && liveAt(e, t, late)) this.touch(this.entries, keyOf(blocks, j), endOf(blocks, j), this.resolveTtl(e.ttl), t, readable, req.id);
        }
      }
      if (explicit) {
        for (const b of writeMarks) {
          if (endOf(blocks, b) >= min) this.touch(this.entries, keyOf(blocks, b), endOf(blocks, b), markTtl.get(b)!, t, readable, req.id);
        }
      } else {
        for (let j = 0; j < n; j++) {
          if (endOf(blocks, j) >= min) this.touch(this.entries, keyOf(blocks, j), endOf(blocks, j), baseTtl, t, readable, req.id);
        }
      }
      // Read as `early`, the prefix read was readable by now: its writers' unknown first bytes are settled.
      if (!late && match !== null)
        for (let j = 0; j <= match; j++)
          for (const store of [this.entries, this.seen]) {
            const e = store.get(keyOf(blocks, j));
            if (e?.lateReadableAt === undefined || e.lateReadableAt <= t) continue;
            this.mark(store, keyOf(blocks, j));
            if (t > e.readableAt) e.lateReadableAt = t;
            else delete e.lateReadableAt;
          }
      const shadowTtl = this.coveringTtls(n, marks, markTtl, baseTtl);
      for (let j = 0; j < n; j++) this.touch(this.seen, keyOf(blocks, j), endOf(blocks, j), shadowTtl[j]!, t, readable, req.id);
    };

    return { outcome, commit };
  }

  /**
   * Reason for the unread part of each block: blocks inside the matched prefix lost
   * tokens only to rounding; later blocks take the deepest gate reached by any
   * prefix of this request at or after them (a later prefix covers the block too).
   */
  private classify(
    req: SimRequest,
    match: number | null,
    marks: number[],
    lookback: number,
    late: boolean,
  ): MissReason[] {
    const blocks = req.blocks;
    const n = blocks.length;
    const t = req.startedAt;
    const out: MissReason[] = new Array<MissReason>(n);
    // nextMark[j]: first honoured breakpoint at or after j
    const nextMark: Array<number | null> = new Array<number | null>(n).fill(null);
    let next: number | null = null;
    const markSet = new Set(marks);
    for (let j = n - 1; j >= 0; j--) {
      if (markSet.has(j)) next = j;
      nextMark[j] = next;
    }
    let best: Exclude<MissReason, 'granularity'> = 'not_seen';
    for (let j = n - 1; j >= 0; j--) {
      if (match !== null && j <= match) {
        // Matched but not read: the tail after the last increment boundary (or all of it when rounded to 0), and on a
        // `lastTokenComputed` cache (vLLM) the block holding the prompt's last token, cut off with it: both are
        // `granularity`, the tail no cache reads (the waterfall's below_minimum).
        out[j] = 'granularity';
        continue;
      }
      const r = this.candidateReason(blocks[j]!, t, nextMark[j] ?? null, j, lookback, late);
      if (RANK[r] > RANK[best]) best = r;
      out[j] = best;
    }
    return out;
  }

  /** The first gate the prefix through block j fails for a request at time t. */
  private candidateReason(
    block: SimBlock,
    t: number,
    nextMark: number | null,
    j: number,
    lookback: number,
    late: boolean,
  ): Exclude<MissReason, 'granularity'> {
    const shadow = this.seen.get(block.key);
    if (!shadow) return 'not_seen';
    const held = this.entries.get(block.key);
    const fresh = [shadow, held].filter((e): e is Entry => e !== undefined && t < e.expiresAt);
    if (fresh.length === 0) return 'expired';
    if (!fresh.some((e) => readableFrom(e, late) <= t)) return 'concurrent';
    if (block.endToken < this.rules.minTokens) return 'below_minimum';
    if (this.rules.mode === 'explicit') {
      if (!liveAt(held, t, late)) return 'no_breakpoint';
      return nextMark !== null && nextMark - j > lookback ? 'lookback' : 'no_breakpoint';
    }
    // Automatic mode writes every eligible prefix, so a live one is always the hit.
    // Reaching here needs the same key recorded with different token ends: the
    // earlier occurrence was too short to be written.
    return 'below_minimum';
  }

  /** Whether the prefix through `key` was sent before and neither its shadow nor a held entry is fresh at t. */
  private isStale(k: string, t: number): boolean {
    const shadow = this.seen.get(k);
    const held = this.entries.get(k);
    return shadow !== undefined && t >= shadow.expiresAt && (held === undefined || t >= held.expiresAt);
  }

  /** The fresh write of the prefix through `k` not readable at t (the one readable soonest), by whom and from when. */
  private unreadableWrite(k: string, t: number, late: boolean): SimOutcome['concurrent'] {
    let soonest: Entry | undefined;
    for (const e of [this.entries.get(k), this.seen.get(k)])
      if (e && t < e.expiresAt && readableFrom(e, late) > t && (!soonest || readableFrom(e, late) < readableFrom(soonest, late))) soonest = e;
    return soonest && { writtenBy: soonest.writtenBy, writerStartedAt: soonest.readableAt, readableAt: readableFrom(soonest, late) };
  }

  /** When the prefix through `key` was last referenced (its shadow's refresh), and the lifetime it had. */
  private lastUse(k: string): { lastUsedAt: number; ttl: string } | undefined {
    let latest: { lastUsedAt: number; ttl: string } | undefined;
    for (const e of [this.seen.get(k), this.entries.get(k)]) {
      const lastUsedAt = e ? e.expiresAt - this.resolveTtl(e.ttl).seconds * 1000 : -Infinity;
      if (e && (!latest || lastUsedAt > latest.lastUsedAt)) latest = { lastUsedAt, ttl: e.ttl };
    }
    return latest;
  }

  /** TTL each block would be cached with: the next breakpoint's, else the request's own. */
  private coveringTtls(n: number, marks: number[], markTtl: Map<number, CacheTtl>, base: CacheTtl): CacheTtl[] {
    const out: CacheTtl[] = new Array<CacheTtl>(n);
    let current = base;
    const markSet = new Set(marks);
    for (let j = n - 1; j >= 0; j--) {
      if (markSet.has(j)) current = markTtl.get(j)!;
      out[j] = current;
    }
    return out;
  }

  /** Unknown TTL names fall back to the default: the provider would apply its default. */
  private resolveTtl(name: string | null | undefined): CacheTtl {
    return (name ? this.ttlByName.get(name) : undefined) ?? this.defaultTtl;
  }

  private roundDown(tokens: number): number {
    return stepFloor(this.rules.granularity, tokens);
  }

  /**
   * One request using `key`: a live entry is a hit (refreshed when the rules say so);
   * an entry still being written by a parallel request is written again (both pay,
   * the first to answer makes it readable); anything else is a fresh write.
   */
  private touch(
    store: Map<string, Entry>,
    key: string,
    endToken: number,
    ttl: CacheTtl,
    t: number,
    readable: { at: number; late: number | undefined; mode: boolean },
    id: string,
  ): void {
    const expiresAt = t + ttl.seconds * 1000;
    const e = store.get(key);
    this.mark(store, key);
    if (e && liveAt(e, t, readable.mode)) {
      if (this.rules.refreshOnHit && expiresAt > e.expiresAt) {
        e.expiresAt = expiresAt;
        e.ttl = ttl.name;
      }
      return;
    }
    if (e && t < e.expiresAt) {
      // Credited to the writer whose write was surely readable first (the earliest latest bound).
      if ((readable.late ?? readable.at) < (e.lateReadableAt ?? e.readableAt)) e.writtenBy = id;
      if (readable.at < e.readableAt) e.readableAt = readable.at;
      // The earliest this entry surely became readable: the sooner of the two writers' latest.
      const lateAt = Math.min(readable.late ?? readable.at, e.lateReadableAt ?? e.readableAt);
      if (lateAt > e.readableAt) this.uncertain = Math.max(this.uncertain, (e.lateReadableAt = lateAt));
      else delete e.lateReadableAt;
      if (expiresAt > e.expiresAt) {
        e.expiresAt = expiresAt;
        e.ttl = ttl.name;
      }
      return;
    }
    const late = readable.late !== undefined && readable.late > readable.at;
    if (late) this.uncertain = Math.max(this.uncertain, readable.late!);
    store.set(key, { endToken, ttl: ttl.name, expiresAt, readableAt: readable.at, ...(late ? { lateReadableAt: readable.late } : {}), writtenBy: id });
  }

  /** Held entries past expiry can never be read again (time only moves forward). `seen` is kept forever. */
  private pruneExpired(t: number): void {
    for (const [k, e] of this.entries)
      if (e.expiresAt <= t) {
        this.entries.delete(k);
        this.mark(this.entries, k);
      }
  }
}

/** The longest prefix of `tokens` a cache read in steps can return (OpenAI: 1,024, then 128 at a time); all without steps. */
export function stepFloor(g: CacheRules['granularity'], tokens: number): number {
  if (!g) return tokens;
  return tokens < g.first ? 0 : g.first + Math.floor((tokens - g.first) / g.step) * g.step;
}

/**
 * The most a cache under `rules` reads of a prompt of `promptTokens` before the cut to whole steps: all of it, or with
 * `lastTokenComputed` (vLLM) all but its last token, which is computed for its logits (vllm/v1/core/kv_cache_manager.py
 * get_computed_blocks: `max_cache_hit_length = request.num_tokens - 1`).
 */
export function readCap(rules: Pick<CacheRules, 'lastTokenComputed'>, promptTokens: number): number {
  return rules.lastTokenComputed ? promptTokens - 1 : promptTokens;
}

/** When an entry can be read: its writer's first byte, or with an unknown one and `late`, the writer's end. */
function readableFrom(e: Entry, late: boolean): number {
  return late ? (e.lateReadableAt ?? e.readableAt) : e.readableAt;
}

function startOf(blocks: SimBlock[], i: number): number {
  return i === 0 ? 0 : blocks[i - 1]!.endToken;
}

function endOf(blocks: SimBlock[], i: number): number {
  return blocks[i]!.endToken;
}

function keyOf(blocks: SimBlock[], i: number): string {
  return blocks[i]!.key;
}

function liveAt(e: Entry | undefined, t: number, late = true): boolean {
  return e !== undefined && readableFrom(e, late) <= t && t < e.expiresAt;
}

function validateRequest(req: SimRequest): void {
  if (!Number.isFinite(req.startedAt)) throw new SimulationError('invalid_request', `request ${req.id}: startedAt is not a number`);
  if (req.firstByteAt !== null && !Number.isFinite(req.firstByteAt)) {
    throw new SimulationError('invalid_request', `request ${req.id}: firstByteAt is not a number`);
  }
  if (req.promptTokens !== undefined && !(Number.isFinite(req.promptTokens) && req.promptTokens >= (req.blocks.at(-1)?.endToken ?? 0)))
    throw new SimulationError('invalid_request', `request ${req.id}: promptTokens ${req.promptTokens} is under its blocks' end`);
  let prev = 0;
  req.blocks.forEach((b, i) => {
    if (!Number.isFinite(b.endToken) || b.endToken <= prev) {
      throw new SimulationError(
        'invalid_request',
        `request ${req.id}: block ${i} endToken ${b.endToken} must be greater than ${prev}`,
      );
    }
    prev = b.endToken;
  });
}

function parseSnapshot(value: unknown): SimSnapshot {
  const bad = (why: string) => new SimulationError('invalid_snapshot', `invalid simulator snapshot: ${why}`);
  if (typeof value !== 'object' || value === null) throw bad('not an object');
  const v = value as Record<string, unknown>;
  if (v.version !== 2) throw bad(`unknown version ${String(v.version)}`);
  if (v.lastStartedAt !== null && typeof v.lastStartedAt !== 'number') throw bad('lastStartedAt');
  if (v.uncertain !== null && typeof v.uncertain !== 'number') throw bad('uncertain');
  const list = (name: 'entries' | 'seen'): Array<[string, Entry]> => {
    const raw = v[name];
    if (!Array.isArray(raw)) throw bad(name);
    return raw.map((item: unknown) => {
      if (!Array.isArray(item) || item.length !== 2 || typeof item[0] !== 'string') throw bad(`${name} item`);
      const e = item[1] as Partial<Entry> | null;
      if (
        typeof e !== 'object' || e === null ||
        typeof e.endToken !== 'number' || typeof e.ttl !== 'string' || typeof e.expiresAt !== 'number' ||
        typeof e.readableAt !== 'number' || typeof e.writtenBy !== 'string'
      ) {
        throw bad(`${name} entry ${item[0]}`);
      }
      const late = typeof e.lateReadableAt === 'number' ? { lateReadableAt: e.lateReadableAt } : {};
      return [item[0], { endToken: e.endToken, ttl: e.ttl, expiresAt: e.expiresAt, readableAt: e.readableAt, ...late, writtenBy: e.writtenBy }];
    });
  };
  return { version: 2, lastStartedAt: v.lastStartedAt as number | null, uncertain: v.uncertain as number | null, entries: list('entries'), seen: list('seen') };
}

/** The blocks that carry a breakpoint, in order. */
function breakpointsOf(blocks: SimBlock[]): number[] {
  const marks: number[] = [];
  blocks.forEach((b, i) => {
    if (typeof b.breakpoint === 'string') marks.push(i);
  });
  return marks;
}
