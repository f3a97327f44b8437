import type { InlineRow, RequestRow, Store, WriteOp } from '../store/store';
import { Lru } from './lru';

/**
 * Told of each batch as it commits: adds writes that depend on what the batch holds (a cache scope's snapshot, see
 * ScopeStates), and hears how each write ended.
 */
export interface CommitListener {
  /** Writes to commit with a batch, after its own (not when its writes are retried one by one after it failed). */
  alongside(ops: WriteOp[]): WriteOp[];
  /** A write committed, or failed (`error`); those a failed batch brought along fail with it. */
  settled(op: WriteOp, error?: unknown): void;
}

interface Queued {
  op: WriteOp;
  done: () => void;
  fail: (e: unknown) => void;
}

/**
 * Group commit: writes enqueued while the current turn of the event loop runs
 * share one transaction. A write's promise resolves only once its transaction
 * is on disk (the store's `durable()`, an fsync that runs off the event loop
 * while the next requests are served), so nothing is acknowledged early. One
 * queue for rendered requests and reconciliations keeps their order: a
 * request's row is always written before its usage.
 */
export class WriteQueue {
  private pending: Queued[] = [];
  private readonly pendingRequests = new Map<string, { row: RequestRow; inline: InlineRow[] }>();
  /**
   * Rendered requests still waiting for their usage, after their commit: a
   * report usually follows its render within seconds, and reading the row
   * back from the database would cost more than the rest of the report.
   */
  private readonly awaitingUsage: Lru<string, RequestRow>;
  private scheduled = false;
  /** A committed batch is being made durable. */
  private syncing = false;
  private listener: CommitListener | null = null;

  constructor(
    private readonly store: Store,
    awaitingUsageMax = 20_000,
  ) {
    this.awaitingUsage = new Lru(awaitingUsageMax);
  }

  enqueue(op: WriteOp): Promise<void> {
    if (op.kind === 'request') this.pendingRequests.set(op.row.id, { row: op.row, inline: op.inline });
    return new Promise((done, fail) => {
      this.pending.push({ op, done, fail });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  listen(listener: CommitListener): void {
    this.listener = listener;
  }

  /** Pruned requests: a report for one is a 404, not a reconciliation of a row that is gone. */
  forget(ids: string[]): void {
    for (const id of ids) this.awaitingUsage.delete(id);
  }

  /** A tenant deleted: its rendered requests are not kept here (their rows are being deleted). */
  forgetTenant(tenantId: string): void {
    this.awaitingUsage.deleteWhere((_, row) => row.tenantId === tenantId);
  }

  /** Whether a reconciliation of the tenant is queued, not committed yet (its rollup rows are not in the database). */
  reconciling(tenantId: string): boolean {
    return this.pending.some(({ op }) => op.kind === 'ingest' && op.write.request.tenantId === tenantId);
  }

  /** A rendered request this process wrote that has no usage yet (committed or not): the database need not be read. */
  pendingRequest(id: string): RequestRow | undefined {
    return this.pendingRequests.get(id)?.row ?? this.awaitingUsage.get(id);
  }

  /**
   * A request's inline segment text: from its write while that waits for a sync (a report can arrive
   * first, and its drift be located with it), else from the database.
   */
  inline(requestId: string, segment: number, now: number): InlineRow | undefined {
    const pending = this.pendingRequests.get(requestId)?.inline.find((r) => r.segment === segment);
    return pending ? (pending.expiresAt > now ? pending : undefined) : this.store.getInline(requestId, segment, now);
  }

  /** Resolves once nothing is queued, committing or being synced (tests wait on it; it polls by turns). */
  async idle(): Promise<void> {
    while (this.scheduled || this.syncing || this.pending.length > 0) await new Promise((resolve) => setImmediate(resolve));
  }

  /** Commits what is queued now (shutdown, or a caller that must see its writes in the database). */
  flushNow(): void {
    this.commit();
  }

  /**
   * One commit per fsync: while the last batch is being synced, new writes
   * wait and join the next batch, which commits as soon as that sync is done.
   */
  private flush(): void {
    this.scheduled = false;
    if (!this.syncing) this.commit();
  }

  private commit(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    let committed: Queued[] = batch;
    const ops = batch.map((p) => p.op);
    const alongside = this.listener?.alongside(ops) ?? [];
    try {
      this.store.writeBatch(alongside.length ? [...ops, ...alongside] : ops);
      this.settle(batch);
      for (const op of alongside) this.listener?.settled(op);
    } catch (e) {
      for (const op of alongside) this.listener?.settled(op, e);
      // One bad write must not sink the others: retry each on its own.
      committed = [];
      for (const p of batch) {
        try {
          this.store.writeBatch([p.op]);
          this.settle([p]);
          committed.push(p);
        } catch (e) {
          this.settle([p], e);
          p.fail(e);
        }
      }
    }
    if (committed.length === 0) return;
    this.syncing = true;
    this.store
      .durable()
      .then(
        () => committed.forEach((p) => p.done()),
        (e: unknown) => committed.forEach((p) => p.fail(e)),
      )
      .finally(() => {
        this.syncing = false;
        this.commit();
      });
  }

  /** The in-memory rows follow the database as soon as a write committed (or failed). */
  private settle(items: Queued[], error?: unknown): void {
    for (const { op } of items) {
      this.listener?.settled(op, error);
      if (op.kind === 'request') {
        this.pendingRequests.delete(op.row.id);
        if (error === undefined) this.awaitingUsage.set(op.row.id, op.row);
      } else if (op.kind !== 'snapshot') {
        // Reconciled or failed: the row in memory is out of date now. A write that failed may have met a
        // row another process changed: the next report for it reads the database.
        this.awaitingUsage.delete(op.kind === 'ingest' ? op.write.request.id : op.requestId);
      }
    }
  }
}
