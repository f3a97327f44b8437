import type { RequestRow, Store, WriteOp } from '../store/store';

/**
 * Group commit: writes enqueued while the current tick runs share one
 * transaction (one fsync under synchronous=FULL). A write's promise resolves
 * only after its transaction committed, so nothing is acknowledged early.
 * One queue for rendered requests and reconciliations keeps their order: a
 * request's row is always written before its usage.
 */
export class WriteQueue {
  private pending: { op: WriteOp; done: () => void; fail: (e: unknown) => void }[] = [];
  private readonly pendingRequests = new Map<string, RequestRow>();
  private scheduled = false;

  constructor(private readonly store: Store) {}

  enqueue(op: WriteOp): Promise<void> {
    if (op.kind === 'request') this.pendingRequests.set(op.row.id, op.row);
    return new Promise((done, fail) => {
      this.pending.push({ op, done, fail });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** A rendered request not committed yet (its usage may arrive in the same tick). */
  pendingRequest(id: string): RequestRow | undefined {
    return this.pendingRequests.get(id);
  }

  /** Commits what is queued now (shutdown, or a caller that must see its writes in the database). */
  flushNow(): void {
    if (this.pending.length) this.flush();
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
    const settle = (items: typeof batch, error?: unknown) => {
      for (const p of items) {
        if (p.op.kind === 'request') this.pendingRequests.delete(p.op.row.id);
        if (error === undefined) p.done();
        else p.fail(error);
      }
    };
    try {
      this.store.writeBatch(batch.map((p) => p.op));
      settle(batch);
    } catch {
      // One bad write must not sink the others: retry each on its own.
      for (const p of batch) {
        try {
          this.store.writeBatch([p.op]);
          settle([p]);
        } catch (e) {
          settle([p], e);
        }
      }
    }
  }
}
