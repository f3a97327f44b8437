// A cache scope's two states as stored between starts (scope_snapshots; their simulators' entries and recent keys in
// scope_snapshot_changes: a chain of parts, every entry a part at a time, then those changed since appended):
// ScopeStates restores the latest and replays only the requests reconciled after it.
import type { CacheRules } from '../catalog/types';
import { canonicalJson } from '../canonical-json';
import { sha256Hex } from '../digest';
import { CacheSimulator, type SimEntry, type SimSnapshot } from '../simulator/cache';
import { newId } from '../ids';
import type { RecentMap } from '../recent-map';
import type { ScopeState } from './scopes';

/**
 * The format written; a snapshot of another is not read (the scope is replayed from its first request). Bump it when
 * the stored state changes shape, or when a migration rewrites what a replay reads: a snapshot holds what the rows
 * gave before. 3: the recent map rewrittenBy (a snapshot of 2 has none, where a replay rebuilds it).
 */
export const SNAPSHOT_VERSION = 3;

/** One state as stored, besides its simulator's entries and its recent keys (in the chain). */
interface StoredState {
  sim: Pick<SimSnapshot, 'lastStartedAt' | 'uncertain'>;
  seenSources: string[];
  lastRequestBySource: Array<[string, string]>;
  /** null: no request yet (±Infinity is not JSON). */
  firstStart: number | null;
  lastStart: number | null;
  /**
   * Its OpenAI route starts (StartWindow.entries). Absent from a snapshot written before they were kept: restored
   * empty, as a start forgot them then (additive, so the format stays 3 and such a snapshot is still read: a replay
   * from the first request cannot bring back rows pruned past it).
   */
  routeStarts?: Array<[string, number[], number]>;
}

export interface StoredScope {
  live: StoredState;
  history: StoredState;
  /** The catalog entries the scope's requests were reconciled by (ScopeStates' catalog keys). */
  catalog: string[];
}

type States = { live: ScopeState; history: ScopeState };

const NAMES = ['live', 'history'] as const;

/**
 * One part of a chain, per state's map: its simulator's `entries` and `seen` as tuples, in the order they changed (a
 * key alone: gone), and its recent maps' (`exactEnds`, `seenKeys`, `rewrittenBy`) entries set since, oldest first (restored in that
 * order, then trimmed, they evict as the original: see RecentMap.changes). Tuples, not objects: a long history's whole
 * snapshot is read back at every start.
 */
export type Changes = Record<string, Array<[string] | EntryTuple | RecentTuple>>;
type RecentTuple = [key: string, value: number | string];

/** A state's recent maps, as their parts are named. */
const RECENT = ['exactEnds', 'seenKeys', 'rewrittenBy'] as const;
type EntryTuple = [key: string, endToken: number, ttl: string, expiresAt: number, readableAt: number, writtenBy: string, lateReadableAt?: number];

function encode(key: string, e: SimEntry | null): [string] | EntryTuple {
  if (e === null) return [key];
  const t: EntryTuple = [key, e.endToken, e.ttl, e.expiresAt, e.readableAt, e.writtenBy];
  if (e.lateReadableAt !== undefined) t.push(e.lateReadableAt);
  return t;
}

function decode(t: [string] | EntryTuple): SimEntry | null {
  if (t.length === 1) return null;
  const [, endToken, ttl, expiresAt, readableAt, writtenBy, lateReadableAt] = t as EntryTuple;
  return { endToken, ttl, expiresAt, readableAt, writtenBy, ...(lateReadableAt === undefined ? {} : { lateReadableAt }) };
}

/** The states as stored, besides their simulators' entries and recent keys. */
export function stateOf(states: States, catalog: string[]): StoredScope {
  const stored = (s: ScopeState): StoredState => ({
    sim: s.sim.head(),
    seenSources: [...s.seenSources],
    lastRequestBySource: [...s.lastRequestBySource],
    firstStart: Number.isFinite(s.firstStart) ? s.firstStart : null,
    lastStart: Number.isFinite(s.lastStart) ? s.lastStart : null,
    routeStarts: s.routeStarts.entries(),
  });
  return { live: stored(states.live), history: stored(states.history), catalog };
}

/** The entries changed since the last call (or since a ChainWriter began), and how many. */
export function changesOf(states: States): { changes: Changes; count: number } {
  const changes: Changes = {};
  for (const name of NAMES) {
    const s = states[name];
    const { entries, seen } = s.sim.changes();
    changes[`${name}.entries`] = entries.map(([key, e]) => encode(key, e));
    changes[`${name}.seen`] = seen.map(([key, e]) => encode(key, e));
    for (const map of RECENT) changes[`${name}.${map}`] = s[map].changes();
  }
  return { changes, count: Object.values(changes).reduce((n, list) => n + list.length, 0) };
}

/** The entries the states hold: a chain whose parts hold more than twice as many is written anew (see ScopeStates). */
export function sizeOf(states: States): number {
  return NAMES.reduce((n, name) => n + states[name].sim.size + states[name].exactEnds.size + states[name].seenKeys.size + states[name].rewrittenBy.size, 0);
}

/**
 * A new chain of every entry, taken a part at a time (a part per group commit: no commit writes a long history's
 * every entry), each entry as it is when its part is taken. The entries changed since it began (changesOf, next
 * called once every part is taken) complete it: an entry changed after its part was taken is among them.
 */
export class ChainWriter {
  readonly chain = newId('snapshot');
  /** Parts taken, and the entries in them. */
  parts = 0;
  entries = 0;
  private readonly walks: Array<{ part: string; items: Iterator<[string, SimEntry | number | string]> }>;

  constructor(states: States) {
    this.walks = NAMES.flatMap((name) => {
      const s = states[name];
      // Changed before, an entry is in the parts as it is when taken: the changes that complete the chain count from
      // now. A recent map's entries are taken as they are now (in order); those set later complete it.
      s.sim.changes();
      const recent = RECENT.map((map) => {
        const entries = s[map].entries();
        s[map].changes();
        return { part: `${name}.${map}`, items: entries.values() };
      });
      return [...(['entries', 'seen'] as const).map((store) => ({ part: `${name}.${store}`, items: s.sim.walk(store) })), ...recent];
    });
  }

  /** Every entry is taken (next() has given null). */
  get done(): boolean {
    return this.walks.length === 0;
  }

  /** The next part: up to `max` entries not yet taken, as they are now; null once there are none. */
  next(max: number): Changes | null {
    const changes: Changes = {};
    let count = 0;
    while (count < max && this.walks.length > 0) {
      const walk = this.walks[0]!;
      const item = walk.items.next();
      if (item.done) this.walks.shift();
      else {
        const [key, value] = item.value;
        (changes[walk.part] ??= []).push(typeof value === 'object' ? encode(key, value) : [key, value]);
        count++;
      }
    }
    if (count === 0) return null;
    this.parts++;
    this.entries += count;
    return changes;
  }
}

/**
 * Restores stored states into fresh ones (their simulators made anew by `rules`, tracking their changes), the entries
 * applied in the order written; returns how many parts and entries were read. Throws on a snapshot it cannot read.
 */
export function restoreInto(states: States, stored: StoredScope, changes: Iterable<unknown>, rules: CacheRules): { parts: number; entries: number } {
  const maps = new Map(NAMES.flatMap((name) => [[`${name}.entries`, new Map<string, SimEntry>()], [`${name}.seen`, new Map<string, SimEntry>()]]));
  const recent = new Map<string, RecentMap<string, unknown>>(NAMES.flatMap((name) => RECENT.map((map) => [`${name}.${map}`, states[name][map] as RecentMap<string, unknown>])));
  let read = 0;
  let parts = 0;
  for (const snapshot of changes as Iterable<Changes>) {
    parts++;
    for (const [part, list] of Object.entries(snapshot)) {
      read += list.length;
      const keys = recent.get(part);
      if (keys) {
        for (const [key, value] of list as RecentTuple[]) keys.set(key, value);
        keys.trim();
        continue;
      }
      const map = maps.get(part);
      if (!map) throw new Error(`scope snapshot: unknown part ${part}`);
      for (const t of list as Array<[string] | EntryTuple>) {
        const e = decode(t);
        if (e === null) map.delete(t[0]);
        else map.set(t[0], e);
      }
    }
  }
  for (const name of NAMES) {
    const s = states[name];
    const from = stored[name];
    s.sim = CacheSimulator.restore(rules, { version: 2, ...from.sim, entries: [...maps.get(`${name}.entries`)!], seen: [...maps.get(`${name}.seen`)!] });
    // What is stored is what it was restored from: its changes count from now (the requests replayed after it too),
    // its recent maps' as well.
    s.sim.trackChanges();
    for (const map of RECENT) s[map].changes();
    for (const source of from.seenSources) s.seenSources.add(source);
    for (const [source, id] of from.lastRequestBySource) s.lastRequestBySource.set(source, id);
    s.firstStart = from.firstStart ?? Infinity;
    s.lastStart = from.lastStart ?? -Infinity;
    s.routeStarts.load(from.routeStarts ?? []);
  }
  return { parts, entries: read };
}

/**
 * The rules a snapshot was simulated by: its simulators' and those of the catalog entries its requests were
 * reconciled by (their TTL names and mode place the blocks and learnt ends). Changed by a catalog override, the
 * snapshot is not read.
 */
export function rulesHash(simRules: CacheRules, catalog: Array<[string, CacheRules]>): string {
  return sha256Hex(canonicalJson({ sim: simRules, catalog: [...catalog].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) }));
}
