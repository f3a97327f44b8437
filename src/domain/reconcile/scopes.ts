import type { RequestRow, Store, WriteOp } from '../../store/store';
import type { CommitListener } from '../write-queue';
import type { ModelCatalog } from '../catalog/catalog';
import type { CacheRules, ModelEntry } from '../catalog/types';
import { Lru } from '../lru';
import type { Breakpoint, RenderedSegment } from '../render/request';
import { OVERFLOW_WINDOW_MS, routeKey, StartWindow } from '../simulator/overflow';
import { CacheSimulator, type SimBlock, type SimOutcome, type SimPlan, type SimRequest } from '../simulator/cache';
import { scaleLengths, splitEvenly, type Pin } from './attribution';
import { sha256Hex } from '../digest';
import { pushAll } from '../arrays';
import { RecentMap } from '../recent-map';
import { ChainWriter, changesOf, restoreInto, rulesHash, sizeOf, SNAPSHOT_VERSION, stateOf, type Changes, type StoredScope } from './scope-snapshot';

/** What one cache scope has seen: its simulated provider cache and which content recurred. */
export interface ScopeState {
  sim: CacheSimulator;
  /** Segment sources (artifact versions, session batches) referenced earlier in the scope. */
  seenSources: Set<string>;
  /** The last request that had each source, to locate a drift against. */
  lastRequestBySource: Map<string, string>;
  firstStart: number;
  lastStart: number;
  /**
   * Prefixes whose length the provider showed exactly (its read or write ended at their last segment), by format
   * and chain: later requests with the same prefix put its end there, so the tokens of a segment do not move to
   * its neighbour as the estimate's scaling shifts from one request to the next. Oldest first, bounded.
   */
  exactEnds: RecentMap<string, number>;
  /**
   * Block keys of the requests applied (the prefix through each block, see blocksFor), oldest first, bounded, with the
   * last request that referenced each: content referenced earlier as the same prefix is an opportunity however it
   * came (inline, then from a session batch), and a drift is compared with the request that last had it.
   */
  seenKeys: RecentMap<string, string>;
  /**
   * Prefixes the provider wrote again while the simulation held them (an eviction it did not see: those tokens are
   * `unconfirmed`), by block key, with the request that wrote them: the provider's cache now holds that request's write,
   * so a later read of the prefix read its premium, not the one of the write the simulation's entry names (that one was
   * read already). '' once the simulation writes the prefix itself. Oldest first, bounded.
   */
  rewrittenBy: RecentMap<string, string>;
  /**
   * Starts of the scope's calls by OpenAI route (prompt_cache_key and leading prefix, overflow.ts) in the last minute or
   * two: past ~15 a minute OpenAI sends some to other machines. Kept from reports as they come, in snapshots, and
   * counted again by a replay (noteStart): a restart or an eviction of the scope keeps the minute before it.
   */
  routeStarts: StartWindow;
}

const SEEN_KEYS_MAX = 8192;

const ROUTES_MAX = 1024;

const EXACT_ENDS_MAX = 4096;

/** Whether a model's reads and writes end exactly at breakpoints, so that their ends measure prefixes. */
export function measuresPrefixes(model: ModelEntry): boolean {
  return model.cache.mode === 'explicit' && model.cache.granularity === null;
}

/**
 * Learns, from a reconciled request, the prefixes whose end the provider's read or write marked exactly: a
 * breakpoint segment (not the last: its end is only the total) whose end is where the read or the write ended.
 * Only on a model whose reads and writes end at breakpoints, and from a total the provider gave; a request whose
 * total is far from its estimate (another prompt than the one rendered) teaches nothing.
 */
export function learnExactEnds(
  state: ScopeState,
  model: ModelEntry,
  request: Pick<RequestRow, 'format' | 'segments' | 'breakpoints'>,
  outcome: Pick<RecordedOutcome, 'lengths' | 'unit_lengths'> & { provider?: { read: number | null; write: number | null }; total_prompt_tokens?: number | null; total_mismatch?: unknown; provider_history?: unknown },
): void {
  const { read = null, write = null } = outcome.provider ?? {};
  if (!measuresPrefixes(model) || outcome.total_prompt_tokens == null || read === null || outcome.total_mismatch || outcome.provider_history) return;
  const marks = new Set([read, read + (write ?? 0)]);
  const marked = new Set((request.breakpoints as Breakpoint[]).map((b) => b.segment));
  const segments = request.segments as RenderedSegment[];
  let end = 0;
  segments.forEach((s, i) => {
    end += outcome.lengths[i] ?? 0;
    if (end === 0 || i === segments.length - 1 || !marked.has(i) || !marks.has(end)) return;
    remember(state, `${request.format}:${s.chain}`, end);
  });
  // By the units' chain too: the same messages are the same prefix wherever later requests' segments split them
  // (a turn's marked question, sent inline, is inside the session batch on the next turn).
  if (!hasUnits(segments)) return;
  const markedUnits = new Set(lastUnits(segments).filter((_, i) => marked.has(i)));
  const keys = unitChainKeys(segments);
  end = 0;
  (outcome.unit_lengths ?? unitLengths(segments, outcome.lengths)).forEach((len, u) => {
    end += len;
    if (end > 0 && markedUnits.has(u) && marks.has(end)) remember(state, `${request.format}:u:${keys[u]}`, end);
  });
}

function remember(state: ScopeState, key: string, end: number): void {
  state.exactEnds.set(key, end);
  state.exactEnds.trim();
}

/** The ends this scope knows for a request's prefixes: by segment, and with units also by unit (as unit pins). */
export function knownEnds(state: ScopeState, format: string, segments: RenderedSegment[]): { segments: Pin[]; units: Pin[] } {
  const pins: Pin[] = [];
  segments.forEach((s, i) => {
    const at = state.exactEnds.get(`${format}:${s.chain}`);
    if (at !== undefined) pins.push({ segment: i, at });
  });
  const units: Pin[] = [];
  if (hasUnits(segments))
    unitChainKeys(segments).forEach((key, u) => {
      const at = state.exactEnds.get(`${format}:u:${key}`);
      if (at !== undefined) units.push({ segment: u, at });
    });
  return { segments: pins, units };
}

/** Simulation blocks of a request: each segment split into its provider blocks over its token length. */
export interface RequestBlocks {
  blocks: SimBlock[];
  /** Segment index of each block. */
  segmentOf: number[];
  /** With units: the unit whose end each block is (-1 for a unit's inner blocks). */
  unitOf?: number[];
  /** With units: each block's prefix as the scope remembers it referenced (its key without message settings). */
  seenKeys?: string[];
}

export function blocksFor(segments: RenderedSegment[], lengths: number[], breakpoints: Breakpoint[], model: ModelEntry, unitLens?: number[]): RequestBlocks {
  const marked = new Map<number, string>();
  for (const b of breakpoints) marked.set(b.segment, model.cache.ttls.some((t) => t.name === b.ttl) ? b.ttl : model.cache.defaultTtl);
  if (hasUnits(segments)) return unitBlocks(segments, unitLens ?? unitLengths(segments, lengths), marked);
  const blocks: SimBlock[] = [];
  const segmentOf: number[] = [];
  let end = 0;
  segments.forEach((seg, i) => {
    const parts = splitEvenly(lengths[i] ?? 0, seg.blocks);
    parts.forEach((tokens, b) => {
      if (tokens === 0) return;
      end += tokens;
      const last = b === parts.length - 1;
      // Only a segment's end has a chain value; inner blocks derive from it (conservative: any change in the segment
      // changes them all). The key only names the block in memory: the chain and the block's index are enough.
      blocks.push({ key: last ? seg.chain : `${seg.chain}#${b}`, endToken: end, breakpoint: last ? (marked.get(i) ?? null) : null });
      segmentOf.push(i);
    });
  });
  return { blocks, segmentOf };
}

/**
 * The chains after each unit of a segment, from the chains before it: one keyed as the provider caches (with the
 * request's message settings), one without them (what the scope has referenced, whatever the settings). Every
 * report and prediction walks a request's whole prefix, and an agent's requests share most of it: a segment's
 * links are hashed once and remembered (bounded). The segment's byte chain and its keys name its units: the same bytes
 * can be other units to the model (a Claude model that strips an earlier turn's thinking reads that turn without it).
 */
const segmentChains = new Lru<string, { cached: string[]; seen: string[] }>(100_000);

function unitChains(previous: { cached: string; seen: string }, seg: RenderedSegment): { cached: string[]; seen: string[] } {
  const units = seg.units!;
  const memo = `${previous.cached}|${previous.seen}|${seg.chain}|${units.length === 1 ? units[0]![0] : units.map((u) => u[0]).join('|')}`;
  let out = segmentChains.get(memo);
  if (!out) {
    out = { cached: [], seen: [] };
    let [cached, seen] = [previous.cached, previous.seen];
    // Until a unit carries settings, the two chains are one.
    let same = seen === cached;
    for (const [key, , , base] of units) {
      out.cached.push((cached = sha256Hex(`${cached}\n${key}`)));
      same &&= base === undefined;
      out.seen.push((seen = same ? cached : sha256Hex(`${seen}\n${base ?? key}`)));
    }
    segmentChains.set(memo, out);
  }
  return out;
}

/**
 * Each segment's unit chains (see unitChains), computed once per segments array: a report walks them for its known
 * ends, twice for its blocks, and for the ends it teaches (each walk built and looked up a long memo key per segment).
 */
const chainsOf = new WeakMap<RenderedSegment[], Array<{ cached: string[]; seen: string[] }>>();

function chainsOfSegments(segments: RenderedSegment[]): Array<{ cached: string[]; seen: string[] }> {
  let out = chainsOf.get(segments);
  if (!out) {
    out = [];
    let chain = { cached: '', seen: '' };
    for (const seg of segments) {
      const links = unitChains(chain, seg);
      out.push(links);
      chain = { cached: links.cached.at(-1)!, seen: links.seen.at(-1)! };
    }
    chainsOf.set(segments, out);
  }
  return out;
}

/** A request's unit chain keys, computed once per segments array (its known ends are read, then learnt). */
const chainKeysOf = new WeakMap<RenderedSegment[], string[]>();

/** The chain after each unit, as the provider caches it (see unitChains), flattened in prompt order. */
export function unitChainKeys(segments: RenderedSegment[]): string[] {
  const known = chainKeysOf.get(segments);
  if (known) return known;
  const out: string[] = [];
  for (const links of chainsOfSegments(segments)) pushAll(out, links.cached);
  chainKeysOf.set(segments, out);
  return out;
}

/** Whether a request's segments carry their units (rendered since units were recorded). */
export function hasUnits(segments: RenderedSegment[]): boolean {
  return segments.length > 0 && segments.every((s) => s.units && s.units.length > 0);
}

/** Each segment's length shared among its units by their estimates, flattened in prompt order. */
export function unitLengths(segments: RenderedSegment[], lengths: number[]): number[] {
  return segments.flatMap((seg, i) => scaleLengths(seg.units!.map((u) => u[1]), lengths[i] ?? 0));
}

/** Each segment's length: the sum of its units' (the inverse of unitLengths). */
export function segmentLengths(segments: RenderedSegment[], unitLens: number[]): number[] {
  let u = 0;
  return segments.map((seg) => unitLens.slice(u, (u += seg.units!.length)).reduce((a, b) => a + b, 0));
}

/** The index (in the flattened units) of each segment's last unit. */
export function lastUnits(segments: RenderedSegment[]): number[] {
  let n = 0;
  return segments.map((s) => (n += s.units!.length) - 1);
}

/**
 * Blocks keyed by the chain of the units' semantic keys (requests rendered since units were recorded): the
 * same messages are the same prefix wherever the segments split them — a turn sent inline, then again as a
 * session batch, or an inline history that grows by a turn. Each unit's length is shared among its provider
 * blocks; a segment's breakpoint is on its last block.
 */
function unitBlocks(segments: RenderedSegment[], unitLens: number[], marked: Map<number, string>): RequestBlocks {
  const blocks: SimBlock[] = [];
  const segmentOf: number[] = [];
  const unitOf: number[] = [];
  const seenKeys: string[] = [];
  let end = 0;
  let chain = { cached: '', seen: '' };
  let n = 0;
  const chains = chainsOfSegments(segments);
  segments.forEach((seg, i) => {
    const first = blocks.length;
    const links = chains[i]!;
    seg.units!.forEach(([, , count], k) => {
      const u = n++;
      const len = unitLens[u] ?? 0;
      chain = { cached: links.cached[k]!, seen: links.seen[k]! };
      // No more blocks than tokens: a unit's last block (the one its key names) is never an empty one.
      const parts = count === 1 || len <= 1 ? [len] : splitEvenly(len, Math.min(count, len));
      parts.forEach((tokens, b) => {
        if (tokens === 0) return;
        end += tokens;
        const last = b === parts.length - 1;
        blocks.push({ key: last ? chain.cached : `${chain.cached}#${b}`, endToken: end, breakpoint: null });
        seenKeys.push(last ? chain.seen : `${chain.seen}#${b}`);
        segmentOf.push(i);
        unitOf.push(last ? u : -1);
      });
    });
    const ttl = marked.get(i);
    if (ttl !== undefined && blocks.length > first) blocks[blocks.length - 1]!.breakpoint = ttl;
  });
  return { blocks, segmentOf, unitOf, seenKeys };
}

/** The times a request was simulated at (kept with its outcome, so a replay takes the same steps). */
export type SimTimes = Pick<SimRequest, 'startedAt' | 'firstByteAt' | 'finishedAt' | 'unknownFirstBytes'> & {
  /** Applied to the scope's history (see ScopeStates.forStart), not its live state. */
  history?: true;
};

export interface RecordedOutcome {
  /** Token length of each segment after scaling to the provider's total. */
  lengths: number[];
  /** The same per unit, where the provider's read placed a unit end inside a segment (see Reconciler.prepare). */
  unit_lengths?: number[];
  sim: SimTimes;
  /** The provider's read and write on each segment (rewrittenBy). */
  segments: Array<{ read: number | null; write: number | null }>;
}

/**
 * Cache-scope states, rebuilt on first use by replaying the scope's reconciled
 * requests in the order they were applied — the same steps ingestion takes, so
 * a replay gives the same answers.
 *
 * A scope has two: its live state, and its history, for reports of calls that
 * started before every call the live state has seen, and more than the model's
 * longest TTL before its latest start (an import of last week's logs after
 * today's traffic). Nothing live was written before such a call, and none of
 * its entries can still be live at that latest start, so the two cannot meet;
 * applied to the live state, the call would be placed at its latest start and
 * read today's entries (`unconfirmed` where the provider wrote). The history
 * takes them in their own start order. A late call with live traffic before it
 * stays live (placed at the latest start): that traffic's entries were there.
 *
 * Every `snapshotEvery` requests applied to a scope, its states are written with the group commit of those requests
 * (see scope-snapshot.ts): after a start the scope is restored from its latest snapshot and replays only the requests
 * reconciled after it. A snapshot is written only while memory is exactly the replay of the committed rows: none of
 * the scope's requests is still uncommitted or failed, and none applied to an earlier load of it landed since.
 *
 * Its simulators' entries are a chain of parts: each snapshot appends those changed since the last. A new chain (none
 * is stored, or the parts would read more than twice the entries held) is written `partSize` entries per group commit
 * (a long history's 170,000 entries at once held the event loop for over half a second), while the snapshot stored
 * goes on reading the old one; once every entry is written and memory is the rows, a snapshot appends the entries
 * changed since the new chain began and replaces the old.
 */
export class ScopeStates implements CommitListener {
  private readonly states = new Lru<string, Loaded>(5_000);
  /** The load each request in flight was applied to (until its write settles). */
  private readonly owners = new Map<string, Loaded>();
  /** The load each snapshot write in flight was taken of, and what it leaves stored (or the new chain it is a part of). */
  private readonly snapshots = new WeakMap<WriteOp, { loaded: Loaded; stored: Stored } | { loaded: Loaded; writer: ChainWriter }>();
  /** Loads whose new chain is being written, oldest first. */
  private readonly writing = new Set<Loaded>();

  constructor(
    private readonly store: Store,
    private readonly catalog: ModelCatalog,
    /** 0: no snapshots, written or read. */
    private readonly snapshotEvery = 0,
    /** The most entries of new chains a group commit writes (over every scope). */
    private readonly partSize = 4_000,
  ) {}

  /** The live state of a scope. */
  get(scope: string, model: ModelEntry): ScopeState {
    return this.load(scope, model).live;
  }

  /** The state a call that started at `startedAt` is applied to, and whether it is the scope's history. */
  forStart(scope: string, model: ModelEntry, startedAt: number): { state: ScopeState; history: boolean } {
    const { live, history } = this.load(scope, model);
    // Most calls start after the first live one: the TTLs are looked at only for the others.
    if (startedAt >= live.firstStart) return { state: live, history: false };
    const longest = Math.max(0, ...reconcilingRules(model).ttls.map((t) => t.seconds)) * 1000;
    return startedAt + longest < live.lastStart ? { state: history, history: true } : { state: live, history: false };
  }

  /** A request was applied to its scope's state (after forStart): its write will say whether memory still matches the rows. */
  applied(request: Pick<RequestRow, 'id' | 'scope' | 'catalogEntry' | 'model'>): void {
    const loaded = this.states.peek(request.scope);
    if (!loaded) return;
    loaded.unsettled++;
    loaded.since++;
    loaded.catalog.add(catalogKey(request));
    this.owners.set(request.id, loaded);
  }

  /**
   * The snapshot writes to go with a batch: of each scope it brings to `snapshotEvery` requests, if it may, and the
   * next parts of the new chains being written.
   */
  alongside(ops: WriteOp[]): WriteOp[] {
    if (this.snapshotEvery === 0) return [];
    const inBatch = new Map<Loaded, number>();
    for (const op of ops) {
      const loaded = op.kind === 'ingest' ? this.owners.get(op.write.request.id) : undefined;
      if (!loaded) continue;
      inBatch.set(loaded, (inBatch.get(loaded) ?? 0) + 1);
      this.landing(loaded);
    }
    const out: WriteOp[] = [];
    for (const [loaded, n] of inBatch) {
      if (loaded.writing || loaded.since < this.snapshotEvery || !this.exact(loaded, n)) continue;
      try {
        const last = loaded.stored;
        if (last) {
          const { changes, count } = changesOf(loaded);
          const stored = { chain: last.chain, parts: last.parts + 1, entries: last.entries + count };
          out.push(this.snapshot(loaded, n, stored, changes));
          if (stored.entries <= 2 * sizeOf(loaded)) continue;
        }
        // None stored, or its chain reads more than twice the entries held: a new one, a part at a time (below).
        loaded.writing = new ChainWriter(loaded);
        this.writing.add(loaded);
      } catch {
        // Its changes may have been taken: the next snapshot writes a new chain. The batch commits as it would have.
        loaded.stored = null;
      }
    }
    let budget = this.partSize;
    for (const loaded of this.writing) {
      const writer = loaded.writing!;
      // Its load dropped (a reset, an eviction) or behind the rows, the chain is given up: the parts written are
      // deleted by the scope's next new chain.
      if (this.states.peek(loaded.scope) !== loaded || loaded.behind) {
        this.stop(loaded);
        continue;
      }
      try {
        while (budget > 0) {
          const taken = writer.entries;
          const part = writer.next(budget);
          if (!part) break;
          budget -= writer.entries - taken;
          const op: WriteOp = { kind: 'snapshot', snapshot: { scope: loaded.scope, part: { chain: writer.chain, index: writer.parts - 1, changes: part } } };
          this.snapshots.set(op, { loaded, writer });
          out.push(op);
        }
        const n = inBatch.get(loaded) ?? 0;
        if (!writer.done || !this.exact(loaded, n)) continue;
        this.stop(loaded);
        const { changes, count } = changesOf(loaded);
        out.push(this.snapshot(loaded, n, { chain: writer.chain, parts: writer.parts + (count > 0 ? 1 : 0), entries: writer.entries + count }, count > 0 ? changes : null, true));
      } catch {
        this.stop(loaded);
        loaded.stored = null;
      }
    }
    return out;
  }

  settled(op: WriteOp, error?: unknown): void {
    if (op.kind === 'snapshot') {
      const taken = this.snapshots.get(op);
      if (!taken) return;
      if ('writer' in taken) {
        // A part not written: its chain is given up (the snapshot stored is as it was), begun again as many requests
        // later (a batch is not made to fail again and again by a write that cannot be made).
        if (error !== undefined && taken.loaded.writing === taken.writer) {
          this.stop(taken.loaded);
          taken.loaded.since = 0;
        }
        return;
      }
      // Not written, the changes it took are not in the database: the next snapshot writes a new chain (as many
      // requests later).
      taken.loaded.since = 0;
      taken.loaded.stored = error === undefined ? taken.stored : null;
    } else if (op.kind === 'ingest') {
      const loaded = this.owners.get(op.write.request.id);
      if (!loaded) return;
      this.owners.delete(op.write.request.id);
      // A failed one stays unsettled: that load is ahead of the database (and is dropped by reset()).
      if (error !== undefined) return;
      loaded.unsettled--;
      loaded.rows++;
      this.landing(loaded);
    }
  }

  /** Whether memory is exactly the replay of the rows once the batch (with `n` of the scope's requests) commits. */
  private exact(loaded: Loaded, n: number): boolean {
    return loaded.unsettled === n && !loaded.behind && this.states.peek(loaded.scope) === loaded;
  }

  /** A snapshot of a load as of the batch (`n` of its requests in it), its chain's last part `changes` (none: no part). */
  private snapshot(loaded: Loaded, n: number, stored: Stored, changes: Changes | null, replaces = false): WriteOp {
    const row = { rows: loaded.rows + n, version: SNAPSHOT_VERSION, rules: this.rulesOf(loaded.rules, loaded.catalog), chain: stored.chain, parts: stored.parts, state: stateOf(loaded, [...loaded.catalog]) };
    const part = changes && { chain: stored.chain, index: stored.parts - 1, changes };
    const op: WriteOp = { kind: 'snapshot', snapshot: { scope: loaded.scope, row, ...(part ? { part } : {}), replaces } };
    this.snapshots.set(op, { loaded, stored });
    return op;
  }

  private stop(loaded: Loaded): void {
    loaded.writing = null;
    this.writing.delete(loaded);
  }

  /** A request applied to `loaded` lands: a later load of its scope (after a reset or an eviction) does not have it. */
  private landing(loaded: Loaded): void {
    const current = this.states.peek(loaded.scope);
    if (current && current !== loaded) current.behind = true;
  }

  private load(scope: string, model: ModelEntry): Loaded {
    const hit = this.states.get(scope);
    if (hit) return hit;
    const rules = reconcilingRules(model);
    const restored = this.restore(scope, rules);
    const loaded = restored?.loaded ?? newLoad(scope, rules);
    // Replayed from its first request kept, it counts the pruned ones too: a snapshot's rows are all it ever had.
    if (!restored) loaded.rows = this.store.prunedInScope(scope);
    for (const row of this.store.reconciledInScope(scope, restored?.seq ?? 0)) {
      const outcome = row.outcome as RecordedOutcome;
      // The same entry ingestion used: a catalog entry gone since (an override removed) is looked up by model name.
      const entry = this.catalog.byId(row.catalogEntry) ?? this.catalog.lookup(row.model).entry;
      const { blocks, seenKeys } = blocksFor(row.segments as RenderedSegment[], outcome.lengths, row.breakpoints as Breakpoint[], entry, outcome.unit_lengths);
      const state = outcome.sim.history ? loaded.history : loaded.live;
      noteRewrites(state, row.id, blocks, advance(state, row, blocks, outcome.sim, undefined, seenKeys), outcome.segments);
      if (entry.provider === 'openai') noteStart(state, row.promptCacheKey, blocks, row.startedAt ?? row.renderedAt);
      learnExactEnds(state, entry, row, outcome);
      loaded.catalog.add(catalogKey(row));
      loaded.rows++;
      loaded.since++;
    }
    // Replayed from the start, its first snapshot writes every entry: the changes count from then on.
    if (this.snapshotEvery > 0) for (const s of [loaded.live, loaded.history]) s.sim.trackChanges();
    this.states.set(scope, loaded);
    return loaded;
  }

  /**
   * A scope as its latest snapshot has it, and the seq that covers; null when there is none, or it is of another
   * format, was simulated by other rules, or does not cover the rows it says (another process reconciled in the
   * scope): the whole history is replayed then, and the next snapshot writes every entry.
   */
  private restore(scope: string, rules: CacheRules): { loaded: Loaded; seq: number } | null {
    if (this.snapshotEvery === 0) return null;
    try {
      const snap = this.store.scopeSnapshot(scope);
      if (!snap || snap.version !== SNAPSHOT_VERSION) return null;
      const stored = snap.state as StoredScope;
      if (this.rulesOf(rules, stored.catalog) !== snap.rules) return null;
      // Its rows still stored and those pruned (only ever rows a snapshot covered: see RequestRetention).
      if (this.store.countReconciledInScope(scope, snap.seq) + this.store.prunedInScope(scope) !== snap.rows) return null;
      const loaded = newLoad(scope, rules);
      const read = restoreInto(loaded, stored, this.store.scopeSnapshotChanges(scope, snap.chain), rules);
      // Parts another process appended to the chain (or deleted) make it another snapshot than this one.
      if (read.parts !== snap.parts) return null;
      loaded.stored = { chain: snap.chain, parts: snap.parts, entries: read.entries };
      loaded.catalog = new Set(stored.catalog);
      loaded.rows = snap.rows;
      return { loaded, seq: snap.seq };
    } catch {
      // One it cannot read is replayed past, as if there were none.
      return null;
    }
  }

  /** The rules hash of a load: its simulators' rules and, as the catalog has them now, those of the entries its requests used. */
  private rulesOf(rules: CacheRules, catalog: Iterable<string>): string {
    return rulesHash(rules, [...catalog].map((key) => [key, this.entryOf(key).cache]));
  }

  private entryOf(key: string): ModelEntry {
    const [id, model] = JSON.parse(key) as [string, string];
    return this.catalog.byId(id) ?? this.catalog.lookup(model).entry;
  }

  /**
   * Forget a deleted tenant's scopes (`<tenant>|…`). A load dropped is never snapshot (a snapshot is written only of the
   * load its scope has), and a new chain of one is given up at the next batch.
   */
  forgetTenant(tenantId: string): void {
    this.states.deleteWhere((scope) => scope.startsWith(`${tenantId}|`));
  }

  /** Forget every scope (after a failed commit, memory may be ahead of the database). */
  reset(): void {
    this.states.clear();
    this.writing.clear();
  }
}

/** A scope's states as loaded, and what says whether they may be snapshot. */
interface Loaded {
  scope: string;
  live: ScopeState;
  history: ScopeState;
  /** The rules its simulators were made with. */
  rules: CacheRules;
  /** The catalog entries of the requests it holds (see catalogKey). */
  catalog: Set<string>;
  /** Reconciled requests it holds (replayed, or applied and committed). */
  rows: number;
  /** Requests applied since its last snapshot (or replayed at its load). */
  since: number;
  /** Requests applied whose write has not committed (a failed one stays). */
  unsettled: number;
  /** What its scope's snapshots have stored; null: unknown, its next snapshot writes a new chain (it was replayed from the start, or a snapshot write failed). */
  stored: Stored | null;
  /** Its new chain being written (see ScopeStates). */
  writing: ChainWriter | null;
  /** A request applied to an earlier load of the scope landed after this one loaded: the rows have one it lacks. */
  behind: boolean;
}

/** A chain of snapshot parts: how many, and the entries in them (superseded ones too). */
interface Stored {
  chain: string;
  parts: number;
  entries: number;
}

function newLoad(scope: string, rules: CacheRules): Loaded {
  const fresh = (): ScopeState => ({ sim: new CacheSimulator(rules), seenSources: new Set(), lastRequestBySource: new Map(), firstStart: Infinity, lastStart: -Infinity, exactEnds: new RecentMap(EXACT_ENDS_MAX), seenKeys: new RecentMap(SEEN_KEYS_MAX), rewrittenBy: new RecentMap(SEEN_KEYS_MAX), routeStarts: new StartWindow(OVERFLOW_WINDOW_MS, ROUTES_MAX) });
  return { scope, rules, live: fresh(), history: fresh(), catalog: new Set(), rows: 0, since: 0, unsettled: 0, stored: null, writing: null, behind: false };
}

/** The catalog entry a request was reconciled by, as ingestion and a replay look it up (by id, else by model name). */
function catalogKey(row: Pick<RequestRow, 'catalogEntry' | 'model'>): string {
  return JSON.stringify([row.catalogEntry, row.model]);
}

/**
 * The rules a scope is reconciled by. A model without a prompt cache (`supported: false`) caches nothing, as
 * if no prompt reached its minimum: its repeats are `below_minimum` (the eligible gate), never `expired` — its
 * 0-second "TTL" would otherwise blame the time between calls.
 */
export function reconcilingRules(model: ModelEntry): CacheRules {
  if (model.cache.supported !== false) return model.cache;
  const forever = { name: 'none', seconds: 1e9, writeMultiplier: 1 };
  return { ...model.cache, minTokens: Number.MAX_SAFE_INTEGER, ttls: [forever], defaultTtl: forever.name };
}

/**
 * After a request is applied (`sim`, its simulated outcome; `segments`, the provider's read and write on its segments):
 * the prefixes the simulation read but the provider wrote again are now that request's write (see `rewrittenBy`); those
 * the simulation wrote are its own again.
 */
export function noteRewrites(state: ScopeState, id: string, blocks: SimBlock[], sim: SimOutcome, segments: Array<{ read: number | null; write: number | null }>): void {
  const read = segments.reduce((n, s) => n + (s.read ?? 0), 0);
  const written = segments.reduce((n, s) => n + (s.write ?? 0), 0);
  blocks.forEach((b, j) => {
    if (state.sim.writerOf(b.key) === id) {
      if (state.rewrittenBy.get(b.key)) state.rewrittenBy.set(b.key, '');
    } else if (written > 0 && sim.blocks[j]!.read > 0 && b.endToken > read && b.endToken <= read + written) state.rewrittenBy.set(b.key, id);
  });
  state.rewrittenBy.trim();
}

/** Counts an OpenAI call's start on its route (overflow.ts): how many of the route's started in the minute through it. */
export function noteStart(state: ScopeState, promptCacheKey: string | null, blocks: SimBlock[], startedAt: number): number {
  return state.routeStarts.add(routeKey(promptCacheKey, blocks), startedAt);
}

/** Applies one request to a scope: the simulated cache, and which sources it has now seen. */
export function advance(state: ScopeState, row: Pick<RequestRow, 'id' | 'segments' | 'cacheTtl'>, blocks: SimBlock[], at: SimTimes, planned?: SimPlan, seen: string[] = blocks.map((b) => b.key)): SimOutcome {
  // A plan the caller already evaluated for these times is recorded as it is, not evaluated again.
  const outcome = planned ? (planned.commit(), planned.outcome) : state.sim.apply({ id: row.id, ...at, blocks, ttl: row.cacheTtl });
  for (const s of row.segments as RenderedSegment[]) {
    if (s.source === 'inline') continue;
    state.seenSources.add(s.source);
    state.lastRequestBySource.set(s.source, row.id);
  }
  for (const key of seen) state.seenKeys.set(key, row.id);
  state.seenKeys.trim();
  state.firstStart = Math.min(state.firstStart, at.startedAt);
  state.lastStart = Math.max(state.lastStart, at.startedAt);
  return outcome;
}
