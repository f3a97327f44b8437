// A cache scope's two states as stored between starts (scope_snapshots; their simulators' entries in
// scope_snapshot_changes, appended as they change): ScopeStates restores the latest and replays only the requests
// reconciled after it.
import type { CacheRules } from '../catalog/types';
import { canonicalJson } from '../canonical-json';
import { sha256Hex } from '../digest';
import { CacheSimulator, type SimEntry, type SimSnapshot } from '../simulator/cache';
import type { ScopeState } from './scopes';

/**
 * The format written; a snapshot of another is not read (the scope is replayed from its first request). Bump it when
 * the stored state changes shape, or when a migration rewrites what a replay reads: a snapshot holds what the rows
 * gave before.
 */
export const SNAPSHOT_VERSION = 1;

/** One state as stored, besides its simulator's entries. */
interface StoredState {
  sim: Pick<SimSnapshot, 'lastStartedAt' | 'uncertain'>;
  seenSources: string[];
  lastRequestBySource: Array<[string, string]>;
  /** null: no request yet (±Infinity is not JSON). */
  firstStart: number | null;
  lastStart: number | null;
  /** Oldest first: restored in this order, they are evicted in the same order. */
  exactEnds: Array<[string, number]>;
  seenKeys: Array<[string, string]>;
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
 * One snapshot's entries: per part (a state's `entries` or `seen`), each as a tuple, in the order they changed (a key
 * alone: gone). Tuples, not objects: a long history's whole snapshot is read back at every start.
 */
type Changes = Record<string, Array<[string] | EntryTuple>>;
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

/**
 * The states as stored, and their simulators' entries to append (`count` of them): those changed since the last
 * snapshot, or every one (`whole`) when nothing is stored (`stored` null) or the entries stored would then be more than
 * twice those held (loading them back would take twice as long as loading one whole snapshot).
 */
export function snapshotOf(states: States, catalog: string[], stored: number | null): { state: StoredScope; changes: Changes; count: number; whole: boolean } {
  const changed = NAMES.map((name) => states[name].sim.changes());
  const delta = changed.reduce((n, c) => n + c.entries.length + c.seen.length, 0);
  const size = NAMES.reduce((n, name) => n + states[name].sim.size, 0);
  const whole = stored === null || stored + delta > 2 * size;
  const parts = whole ? NAMES.map((name) => states[name].sim.changes(true)) : changed;
  const changes: Changes = {};
  const stateOf = (name: (typeof NAMES)[number], i: number): StoredState => {
    const s = states[name];
    const { lastStartedAt, uncertain, entries: held, seen } = parts[i]!;
    changes[`${name}.entries`] = held.map(([key, e]) => encode(key, e));
    changes[`${name}.seen`] = seen.map(([key, e]) => encode(key, e));
    return {
      sim: { lastStartedAt, uncertain },
      seenSources: [...s.seenSources],
      lastRequestBySource: [...s.lastRequestBySource],
      firstStart: Number.isFinite(s.firstStart) ? s.firstStart : null,
      lastStart: Number.isFinite(s.lastStart) ? s.lastStart : null,
      exactEnds: s.exactEnds.entries(),
      seenKeys: s.seenKeys.entries(),
    };
  };
  return { state: { live: stateOf('live', 0), history: stateOf('history', 1), catalog }, changes, count: whole ? size : delta, whole };
}

/**
 * Restores stored states into fresh ones (their simulators made anew by `rules`, tracking their changes), the entries
 * applied in the order written; returns how many parts and entries were read. Throws on a snapshot it cannot read.
 */
export function restoreInto(states: States, stored: StoredScope, changes: Iterable<unknown>, rules: CacheRules): { parts: number; entries: number } {
  const maps = new Map(NAMES.flatMap((name) => [[`${name}.entries`, new Map<string, SimEntry>()], [`${name}.seen`, new Map<string, SimEntry>()]]));
  let read = 0;
  let parts = 0;
  for (const snapshot of changes as Iterable<Changes>) {
    parts++;
    for (const [part, list] of Object.entries(snapshot)) {
      const map = maps.get(part);
      if (!map) throw new Error(`scope snapshot: unknown part ${part}`);
      for (const t of list) {
        const e = decode(t);
        if (e === null) map.delete(t[0]);
        else map.set(t[0], e);
      }
      read += list.length;
    }
  }
  for (const name of NAMES) {
    const s = states[name];
    const from = stored[name];
    s.sim = CacheSimulator.restore(rules, { version: 2, ...from.sim, entries: [...maps.get(`${name}.entries`)!], seen: [...maps.get(`${name}.seen`)!] });
    // What is stored is what it was restored from: its changes count from now (the requests replayed after it too).
    s.sim.trackChanges();
    for (const source of from.seenSources) s.seenSources.add(source);
    for (const [source, id] of from.lastRequestBySource) s.lastRequestBySource.set(source, id);
    s.firstStart = from.firstStart ?? Infinity;
    s.lastStart = from.lastStart ?? -Infinity;
    for (const [key, end] of from.exactEnds) s.exactEnds.set(key, end);
    for (const [key, id] of from.seenKeys) s.seenKeys.set(key, id);
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
