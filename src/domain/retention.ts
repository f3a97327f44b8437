// Retention of request detail: requests older than a horizon are deleted with their rows, a batch at a time, off the
// request path. Reports read rollups and drift findings, which stay: their figures do not change.
import type { Clock } from './clock';
import { DAY_MS } from './clock';
import type { ModelCatalog } from './catalog/catalog';
import { DomainError, notFound } from './errors';
import { SNAPSHOT_VERSION } from './reconcile/scope-snapshot';
import type { PruneCandidate, RequestCursor, SnapshotCoverage, Store } from '../store/store';

/** Rows read per batch: each batch is one short transaction, and the event loop runs between batches. */
export const PRUNE_BATCH = 1_000;
/** The shortest age pruned (`--older-than`, PH_REQUEST_RETENTION_DAYS): a day. */
export const MIN_PRUNE_AGE_MS = DAY_MS;
/** How often the timer prunes. */
export const PRUNE_EVERY_MS = 3_600_000;

export interface PruneResult {
  /** Requests rendered before this (ms) were considered: the age asked for, or the floor when that is later. */
  before: number;
  /**
   * Nothing rendered within this long of now is pruned, whatever the age asked for: twice the catalog's longest cache
   * TTL (24 h of OpenAI's extended retention: 48 h), so a write whose premium may still be read, or a late report, finds its request.
   */
  floorMs: number;
  pruned: number;
  /** Old enough, but kept: the sum of the three below. */
  kept: number;
  /** Reconciled after their scope's latest snapshot (or with no snapshot): a start replays them. */
  keptForReplay: number;
  /** Started within the longest TTL of their scope's latest call: a drift is located against them. */
  keptForDrift: number;
  /** Rendered before the horizon but started after it (or never started). */
  keptStartedLate: number;
  batches: number;
}

/** A prune as the admin API answers it (and `prefix-handles prune --offline` prints it). */
export interface PruneAnswer {
  before: string;
  pruned: number;
  kept: number;
  kept_for_replay: number;
  kept_for_drift: number;
  kept_started_late: number;
  floor_hours: number;
  batches: number;
}

export function pruneAnswer(r: PruneResult): PruneAnswer {
  return {
    before: new Date(r.before).toISOString(),
    pruned: r.pruned,
    kept: r.kept,
    kept_for_replay: r.keptForReplay,
    kept_for_drift: r.keptForDrift,
    kept_started_late: r.keptStartedLate,
    floor_hours: r.floorMs / 3_600_000,
    batches: r.batches,
  };
}

export interface RetentionDeps {
  store: Store;
  clock: Clock;
  catalog: ModelCatalog;
  /** 0: keep every request (the timer never prunes; a prune asked for still runs). */
  retentionDays: number;
  /** Pruned request ids, to drop from memory (a rendered request awaiting its usage). */
  forget?: (ids: string[]) => void;
  /** After each run. */
  onPruned?: (result: PruneResult) => void;
}

/** Request ids lead with 8 base-62 digits of their render time (see newRequestId). */
const ID_TIME = /^req_([0-9A-Za-z]{8})[0-9A-Za-z]{13}$/;
const DIGITS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** The render time a request id carries, or null when it is not one. */
export function renderTimeOf(id: string): number | null {
  const m = ID_TIME.exec(id);
  if (!m) return null;
  let t = 0;
  for (const ch of m[1]!) t = t * 62 + DIGITS.indexOf(ch);
  return t;
}

export class RequestRetention {
  private running: Promise<PruneResult> | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Stopping: a run ends after its current batch (the database is about to close). */
  private stopped = false;
  /** The latest prune horizon (persisted; read once). */
  private before: number | null | undefined;

  constructor(private readonly deps: RetentionDeps) {}

  /**
   * The longest cache lifetime any model of the catalog has (OpenAI's 24h retention): nothing started within twice
   * it is pruned, so a write whose premium may still be read, or a report arriving late, always finds its request.
   */
  longestTtlMs(): number {
    const seconds = this.deps.catalog.entries().flatMap((e) => (e.cache.supported === false ? [] : e.cache.ttls.map((t) => t.seconds)));
    return Math.max(300, ...seconds) * 1000;
  }

  /**
   * Deletes the requests rendered more than `olderThanMs` ago, and all their detail, except what is still needed: a
   * reconciled request its scope's snapshot does not cover (a restart replays it), or one started within the longest
   * TTL of its scope's latest call (a drift is located against it). One run at a time: a second call joins the first.
   */
  prune(olderThanMs: number): Promise<PruneResult> {
    if (!(olderThanMs >= MIN_PRUNE_AGE_MS)) throw new DomainError('invalid_request', `requests are pruned one day old at the earliest (got ${olderThanMs} ms)`);
    this.running ??= this.run(olderThanMs).finally(() => (this.running = null));
    return this.running;
  }

  private async run(olderThanMs: number): Promise<PruneResult> {
    const now = this.deps.clock.now();
    const ttl = this.longestTtlMs();
    const before = Math.min(now - olderThanMs, now - 2 * ttl);
    const covered = new Map<string, SnapshotCoverage>();
    for (const s of this.deps.store.snapshotCoverage()) if (s.version === SNAPSHOT_VERSION) covered.set(s.scope, s);
    /** Why a request old enough is kept, or null: it goes. */
    const keptFor = (c: PruneCandidate): 'replay' | 'startedLate' | 'drift' | null => {
      if (c.seq === null) return null;
      const snap = covered.get(c.scope);
      if (!snap || c.seq > snap.seq) return 'replay';
      if (c.startedAt === null || c.startedAt >= before) return 'startedLate';
      // The live state's latest call (after the snapshot too), and the history's.
      const live = Math.max(snap.liveLastStart ?? -Infinity, snap.latestStart ?? -Infinity);
      for (const last of [live, snap.historyLastStart ?? -Infinity]) if (Number.isFinite(last) && c.startedAt >= last - ttl) return 'drift';
      return null;
    };
    const result: PruneResult = { before, floorMs: 2 * ttl, pruned: 0, kept: 0, keptForReplay: 0, keptForDrift: 0, keptStartedLate: 0, batches: 0 };
    // Counted per batch, and added once it is committed (a batch that fails is rolled back whole).
    let why = { replay: 0, drift: 0, startedLate: 0 };
    const prunable = (c: PruneCandidate): boolean => {
      const reason = keptFor(c);
      if (reason) why[reason]++;
      return reason === null;
    };
    for (const tenantId of this.deps.store.tenantIds()) {
      let after: RequestCursor | null = null;
      do {
        why = { replay: 0, drift: 0, startedLate: 0 };
        const batch = this.deps.store.pruneBatch({ tenantId, before, after, limit: PRUNE_BATCH }, prunable);
        result.batches++;
        result.keptForReplay += why.replay;
        result.keptForDrift += why.drift;
        result.keptStartedLate += why.startedLate;
        result.pruned += batch.pruned.length;
        result.kept += batch.read - batch.pruned.length;
        if (batch.pruned.length) this.deps.forget?.(batch.pruned);
        after = batch.next;
        // Between batches the service answers: a batch holds the write lock for one short transaction only.
        await new Promise((resolve) => setImmediate(resolve));
      } while (after && !this.stopped);
    }
    this.before = Math.max(this.before ?? -Infinity, before);
    this.deps.onPruned?.(result);
    return result;
  }

  /** Prunes every hour past PH_REQUEST_RETENTION_DAYS (none when 0), starting a minute after the start. */
  start(): void {
    if (this.deps.retentionDays === 0 || this.timer) return;
    const tick = () => {
      this.prune(this.deps.retentionDays * DAY_MS).catch((err: unknown) =>
        console.error(JSON.stringify({ level: 'error', time: new Date().toISOString(), msg: 'request pruning failed', error: (err instanceof Error ? err.stack : undefined) ?? String(err) })),
      );
    };
    const again = () => {
      tick();
      this.timer = setTimeout(again, PRUNE_EVERY_MS).unref();
    };
    this.timer = setTimeout(again, 60_000).unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** A request id not found: `request_pruned` when it was rendered before requests were pruned, else not_found. */
  missing(id: string): DomainError {
    this.before ??= this.deps.store.prunedBefore();
    const at = renderTimeOf(id);
    if (this.before === null || at === null || at >= this.before) return notFound(`request ${id}`);
    return new DomainError('request_pruned', `request ${id} was rendered on ${new Date(at).toISOString()}, before ${new Date(this.before).toISOString()}: its detail was pruned (PH_REQUEST_RETENTION_DAYS); its figures stay in the reports`, { pruned_before: new Date(this.before).toISOString() });
  }

  /** Whether a request was pruned: rendered before the prune horizon, and gone (a link to it leads to no detail). */
  isPruned(id: string): boolean {
    this.before ??= this.deps.store.prunedBefore();
    const at = renderTimeOf(id);
    return this.before !== null && at !== null && at < this.before && !this.deps.store.requestExists(id);
  }
}
