import type { RequestRow, Store, WriteOp } from '../store/store';
import { Lru } from './lru';

interface Queued {
  op: WriteOp;
  done: () => void;
  fail: (e: unknown) => void;
}

/**
 * Group commit: writes share one transaction, and a write's promise resolves
 * only after its transaction committed, so nothing is acknowledged early. One
 * batch is committed at a time; what arrives meanwhile waits and goes in the
 * next, so batches grow with the load. One queue for rendered requests and
 * reconciliations keeps their order: a request's row is always written before
 * its usage.
 */
export class WriteQueue {
  private pending: Queued[] = [];
  private readonly pendingRequests = new Map<string, RequestRow>();
  /**
   * Rendered requests still waiting for their usage, after their commit: a
   * report usually follows its render within seconds, and reading the row
   * back from the database would cost more than the rest of the report.
   */
  private readonly awaitingUsage: Lru<string, RequestRow>;
  private scheduled = false;
  /** The batch being committed, if any. */
  private writing: Promise<void> | null = null;

  constructor(
    private readonly store: Store,
    awaitingUsageMax = 20_000,
  ) {
    this.awaitingUsage = new Lru(awaitingUsageMax);
  }

  enqueue(op: WriteOp): Promise<void> {
    if (op.kind === 'request') this.pendingRequests.set(op.row.id, op.row);
    return new Promise((done, fail) => {
      this.pending.push({ op, done, fail });
      if (!this.scheduled && !this.writing) {
        this.scheduled = true;
        // Whatever else this turn of the event loop enqueues joins the batch.
        setImmediate(() => {
          this.scheduled = false;
          this.flush();
        });
      }
    });
  }

  /** A rendered request this process wrote that has no usage yet (committed or not): the database need not be read. */
  pendingRequest(id: string): RequestRow | undefined {
    return this.pendingRequests.get(id) ?? this.awaitingUsage.get(id);
  }

  /** Resolves once everything enqueued so far is committed (or failed). */
  async drain(): Promise<void> {
    while (this.writing || this.pending.length) {
      this.flush();
      await this.writing;
    }
  }

  /** Drains, then stops the store's writer (shutdown). */
  async close(): Promise<void> {
    await this.drain();
    await this.store.close();
  }

  private flush(): void {
    if (this.writing || this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.writing = this.commit(batch).finally(() => {
      this.writing = null;
      this.flush();
    });
  }

  private async commit(batch: Queued[]): Promise<void> {
    const settle = (items: Queued[], error?: unknown) => {
      for (const p of items) {
        const op = p.op;
        if (op.kind === 'request') {
          this.pendingRequests.delete(op.row.id);
          if (error === undefined) this.awaitingUsage.set(op.row.id, op.row);
        } else if (error === undefined) {
          // Reconciled or failed: the row in memory is out of date now.
          this.awaitingUsage.delete(op.kind === 'ingest' ? op.write.request.id : op.requestId);
        }
        if (error === undefined) p.done();
        else p.fail(error);
      }
    };
    try {
      await this.store.writeBatch(batch.map((p) => p.op));
      settle(batch);
    } catch {
      // One bad write must not sink the others: retry each on its own.
      for (const p of batch) {
        try {
          await this.store.writeBatch([p.op]);
          settle([p]);
        } catch (e) {
          settle([p], e);
        }
      }
    }
  }
}
