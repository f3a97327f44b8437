// Deleting a tenant and every row of its data. First, in one transaction, its keys go and it is marked (see
// DELETING_NAME): from then on it is gone for every route, and none of its writes is taken. Then its rows are deleted a
// short transaction at a time, the event loop running between them; a restart resumes where it stopped.
import { DELETING_NAME, type Store } from '../store/store';
import { DomainError, invalid, notFound } from './errors';
import { tenantNameKey } from './tenants';

/** Rows deleted per transaction (a request counts its own eight): each a few milliseconds on a busy machine. */
export const DELETE_BATCH_ROWS = 2_000;

export interface TenantDeletionResult {
  id: string;
  /** Its name when the deletion began here (null: resumed, the name was already gone). */
  name: string | null;
  /** Rows deleted, in every table. */
  rows: number;
  /** Transactions they took. */
  batches: number;
}

/** A deletion not finished, as the operator sees it (GET /v1/tenants, prefix-handles tenants). */
export interface TenantDeletionProgress extends TenantDeletionResult {
  /** Under way in this process; false: cut short by a stop, taken up again at the next start (or by DELETE). */
  running: boolean;
  /** Its requests and handles still stored (each with its rows). */
  requests_left: number;
  handles_left: number;
}

export interface TenantDeletionDeps {
  store: Store;
  /** Drops what memory holds of the tenant (authentication, cache scopes, pending premiums, caches): called once it is marked. */
  forget: (tenantId: string) => void;
  /** Resolves once the writes already queued are committed: a report accepted before the mark lands before its rows are deleted. */
  settle?: () => Promise<void>;
  onDeleted?: (result: TenantDeletionResult) => void;
  batchRows?: number;
}

export class TenantDeletion {
  /** Tenants marked for deletion: their writes are refused (a call authenticated before the mark, still under way). */
  private readonly deleting = new Set<string>();
  private readonly running = new Map<string, Promise<TenantDeletionResult>>();
  /** What each deletion under way has deleted so far (the result it will resolve with, counted on). */
  private readonly done = new Map<string, TenantDeletionResult>();
  private stopped = false;

  constructor(private readonly deps: TenantDeletionDeps) {
    for (const id of deps.store.deletingTenants()) this.deleting.add(id);
  }

  /** Whether the tenant is being deleted (or was, by this process): nothing of it may be written. */
  isDeleted(tenantId: string): boolean {
    return this.deleting.has(tenantId);
  }

  /**
   * Deletes a tenant and all its data. `confirm` must be its name (compared as names are): an id copied from the
   * wrong line must not delete a team's history. A tenant whose deletion is under way (or was cut by a restart) is
   * deleted on, whatever `confirm` says: its name is gone already. Resolves once no row of it is left.
   */
  delete(id: string, confirm: string): Promise<TenantDeletionResult> {
    const under = this.running.get(id);
    if (under) return under;
    const marked = this.deps.store.markTenantDeleting(id, (t) => tenantNameKey(t.name) === tenantNameKey(confirm));
    if (!marked) throw notFound(`tenant ${id}`);
    if (!marked.marked)
      throw invalid('query:confirm', `confirm ${JSON.stringify(confirm)} is not the name of tenant ${id}: to delete it and all its data, give its name as it is listed (GET /v1/tenants), compared ignoring case and extra whitespace`);
    return this.run(id, marked.tenant.name === DELETING_NAME ? null : marked.tenant.name, marked.keys);
  }

  /** Every tenant marked for deletion and not gone yet: what this process has deleted of it, and what is left. */
  progress(): TenantDeletionProgress[] {
    return this.deps.store.deletingTenants().map((id) => {
      const left = this.deps.store.tenantLeft(id);
      return { ...(this.done.get(id) ?? { id, name: null, rows: 0, batches: 0 }), running: this.running.has(id), requests_left: left.requests, handles_left: left.handles };
    });
  }

  /** Deletions a stop cut short, taken up again (at start). */
  resume(): Promise<TenantDeletionResult[]> {
    return Promise.all(this.deps.store.deletingTenants().map((id) => this.running.get(id) ?? this.run(id, null, 0)));
  }

  /** Stopping: a deletion ends after its current batch (the database is about to close); the next start resumes it. */
  stop(): void {
    this.stopped = true;
  }

  /** `keys`: deleted with the mark. */
  private run(id: string, name: string | null, keys: number): Promise<TenantDeletionResult> {
    this.deleting.add(id);
    this.deps.forget(id);
    const running = this.batches(id, name, keys).finally(() => {
      this.running.delete(id);
      this.done.delete(id);
    });
    this.running.set(id, running);
    return running;
  }

  private async batches(id: string, name: string | null, keys: number): Promise<TenantDeletionResult> {
    const result: TenantDeletionResult = { id, name, rows: keys, batches: 0 };
    this.done.set(id, result);
    await this.deps.settle?.();
    for (;;) {
      if (this.stopped) throw new DomainError('conflict', `the service is stopping: tenant ${id} is deleted on at its next start`);
      const batch = this.deps.store.deleteTenantBatch(id, this.deps.batchRows ?? DELETE_BATCH_ROWS);
      result.rows += batch.rows;
      result.batches++;
      if (batch.done) break;
      // Between batches the service answers: each holds the write lock for one short transaction only.
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.deps.onDeleted?.(result);
    return result;
  }
}
