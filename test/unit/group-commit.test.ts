// The group commit on a real database file: a batch is visible once committed,
// acknowledged only once its WAL sync is done, and the next batch waits for
// that sync (one commit per fsync). Durability is delegated to WalSync, so the
// store's sync is gated here to watch the order of events.
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WriteQueue } from '../../src/domain/write-queue';
import { openDb, WalSync, type OpenedDb } from '../../src/store/db';
import { systemClock } from '../../src/domain/clock';
import { SqliteStore } from '../../src/store/sqlite-store';
import type { RequestRow, WriteOp } from '../../src/store/store';

/** A real store whose syncs wait for the test to release them. */
class GatedStore extends SqliteStore {
  syncs: Array<{ release: () => void; fail: (e: Error) => void }> = [];
  batches: number[] = [];

  override writeBatch(ops: WriteOp[]): void {
    super.writeBatch(ops);
    this.batches.push(ops.length);
  }

  override durable(): Promise<void> {
    return new Promise<void>((release, fail) => this.syncs.push({ release, fail })).then(() => super.durable());
  }
}

let dir: string;
let opened: OpenedDb;
let store: GatedStore;
let queue: WriteQueue;
let n = 0;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ph-group-commit-'));
  opened = openDb(join(dir, 'db.sqlite'));
  store = new GatedStore(opened.db, opened.walSync, systemClock);
  queue = new WriteQueue(store);
  opened.sqlite.prepare(`insert into tenants (id, name, created_at) values ('ten_1', 't', 0)`).run();
});

afterEach(() => {
  opened.close();
  rmSync(dir, { recursive: true, force: true });
});

function requestOp(): { op: WriteOp; id: string } {
  const id = `req_test${++n}`;
  const row: RequestRow = {
    id,
    tenantId: 'ten_1',
    scope: 'ten_1|anthropic|m|-',
    format: 'anthropic',
    model: 'm',
    catalogEntry: 'm',
    catalogFallback: false,
    renderedAt: 1,
    segments: [],
    breakpoints: [],
    promptCacheKey: null,
    prediction: null,
  } as unknown as RequestRow;
  return { op: { kind: 'request', row, inline: [] }, id };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));
const settled = <T>(p: Promise<T>) => {
  const state = { done: false, error: undefined as unknown };
  p.then(
    () => (state.done = true),
    (e: unknown) => (state.error = e),
  );
  return state;
};

describe('group commit', () => {
  it('commits at once, acknowledges only after the WAL sync, and batches what arrives during the sync', async () => {
    const a = requestOp();
    const pA = queue.enqueue(a.op);
    const ackA = settled(pA);
    await turn();
    // Committed and readable, not yet acknowledged.
    expect(store.getRequest(a.id)?.id).toBe(a.id);
    expect(ackA.done).toBe(false);
    expect(store.syncs).toHaveLength(1);

    // Two writes while the first sync runs: they wait for it and share one commit.
    const b = requestOp();
    const c = requestOp();
    const pB = queue.enqueue(b.op);
    const pC = queue.enqueue(c.op);
    const ackB = settled(pB);
    const ackC = settled(pC);
    await turn();
    expect(store.getRequest(b.id)).toBeUndefined();
    expect(store.batches).toEqual([1]);

    store.syncs[0]!.release();
    await pA;
    await turn();
    expect(store.batches).toEqual([1, 2]);
    expect(store.getRequest(c.id)?.id).toBe(c.id);
    expect(ackB.done || ackC.done).toBe(false);

    store.syncs[1]!.release();
    await Promise.all([pB, pC]);
  });

  it('a write waiting for a sync still answers for its inline text (a report may arrive first and locate its drift)', async () => {
    const first = requestOp();
    void queue.enqueue(first.op);
    await turn();
    // A second render while the first batch syncs: it waits, uncommitted.
    const waiting = requestOp();
    const inline = [{ requestId: waiting.id, segment: 0, text: 'Current time: 10:01', truncated: false, expiresAt: 1_000 }];
    const p = queue.enqueue({ ...waiting.op, inline } as WriteOp);
    await turn();
    expect(store.getInline(waiting.id, 0, 0)).toBeUndefined();
    expect(queue.inline(waiting.id, 0, 0)?.text).toBe('Current time: 10:01');
    // Past its retention it is gone, pending or not; a segment it does not have is nothing.
    expect(queue.inline(waiting.id, 0, 1_000)).toBeUndefined();
    expect(queue.inline(waiting.id, 1, 0)).toBeUndefined();
    store.syncs[0]!.release();
    // Once the first sync is done, the waiting write commits (and its own sync starts).
    while (store.syncs.length < 2) await turn();
    // Committed now: the same text from the database.
    expect(store.getInline(waiting.id, 0, 0)?.text).toBe('Current time: 10:01');
    expect(queue.inline(waiting.id, 0, 0)?.text).toBe('Current time: 10:01');
    store.syncs[1]!.release();
    await p;
  });

  it('refuses the batch whose sync failed, and every batch after it: their frames may be gone', async () => {
    // A real failure: a database without a WAL has no -wal file to sync.
    const noWal = openDb(join(dir, 'no-wal.sqlite'));
    noWal.sqlite.pragma('journal_mode = DELETE');
    const broken = new WriteQueue(new SqliteStore(opened.db, new WalSync(noWal.sqlite), systemClock));
    const a = requestOp();
    await expect(broken.enqueue(a.op)).rejects.toThrow(/could not be synced to disk/);
    const b = requestOp();
    await expect(broken.enqueue(b.op)).rejects.toThrow(/could not be synced to disk/);
    // Committed (and visible), but never acknowledged.
    expect(store.getRequest(b.id)?.id).toBe(b.id);
    noWal.close();
  });

  it('flushNow during a sync commits at once, and everything is acknowledged once synced', async () => {
    const a = requestOp();
    const pA = queue.enqueue(a.op);
    await turn();
    const b = requestOp();
    const pB = queue.enqueue(b.op);
    queue.flushNow();
    expect(store.getRequest(b.id)?.id).toBe(b.id);
    expect(store.batches).toEqual([1, 1]);
    for (const s of store.syncs) s.release();
    await Promise.all([pA, pB]);
    await queue.idle();
  });

  it("commits a listener's writes with the batch; a failed batch's fail with it and are left out of its writes' retries", async () => {
    const snapshot = (scope: string): WriteOp => ({ kind: 'snapshot', snapshot: { scope, row: { rows: 0, version: 1, rules: 'r', chain: 'snp_1', parts: 1, state: {} }, part: { chain: 'snp_1', index: 0, changes: {} }, replaces: true } });
    const heard: string[] = [];
    let failOnce = false;
    queue.listen({
      alongside: (ops) => [snapshot(`after ${ops.length}`)],
      settled: (op, error) => void heard.push(`${op.kind === 'snapshot' ? op.snapshot.scope : op.kind} ${error ? 'failed' : 'committed'}`),
    });
    const write = store.writeBatch.bind(store);
    store.writeBatch = (ops) => {
      if (failOnce && ops.length > 1) {
        failOnce = false;
        throw new Error('injected');
      }
      write(ops);
    };
    const a = queue.enqueue(requestOp().op);
    await turn();
    expect(opened.sqlite.prepare('select scope from scope_snapshots').pluck().all()).toEqual(['after 1']);
    store.syncs[0]!.release();
    await a;

    failOnce = true;
    const b = queue.enqueue(requestOp().op);
    await turn();
    // Retried on its own, the request committed; the snapshot was not written.
    expect(opened.sqlite.prepare('select scope from scope_snapshots').pluck().all()).toEqual(['after 1']);
    expect(heard).toEqual(['request committed', 'after 1 committed', 'after 1 failed', 'request committed']);
    store.syncs[1]!.release();
    await b;
  });

  it('lowers synchronous only for its own transaction: every other write stays FULL', async () => {
    const ack = queue.enqueue(requestOp().op);
    await turn();
    store.syncs[0]!.release();
    await ack;
    expect(opened.sqlite.pragma('synchronous', { simple: true })).toBe(2);
    expect(opened.sqlite.pragma('journal_mode', { simple: true })).toBe('wal');
  });
});

describe('WalSync', () => {
  it('has nothing to sync for an in-memory database', async () => {
    const mem = openDb(':memory:');
    await expect(mem.walSync.sync()).resolves.toBeUndefined();
    mem.close();
  });

  it('syncs the WAL SQLite writes, also when the database was opened through a symlink', async () => {
    mkdirSync(join(dir, 'real'));
    const real = join(dir, 'real', 'db.sqlite');
    const link = join(dir, 'link.sqlite');
    openDb(real).close();
    symlinkSync(real, link);
    const viaLink = openDb(link);
    expect(viaLink.walSync.path).toBe(`${realpathSync(real)}-wal`);
    viaLink.sqlite.prepare(`insert into tenants (id, name, created_at) values ('ten_3', 't', 0)`).run();
    expect(existsSync(viaLink.walSync.path!)).toBe(true);
    await expect(viaLink.walSync.sync()).resolves.toBeUndefined();
    viaLink.close();
  });

  it('syncs the -wal file, and callers during a running sync share the single next one', async () => {
    opened.sqlite.prepare(`insert into tenants (id, name, created_at) values ('ten_2', 't', 0)`).run();
    expect(existsSync(join(dir, 'db.sqlite-wal'))).toBe(true);
    const sync = new WalSync(opened.sqlite);
    const first = sync.sync();
    const second = sync.sync();
    const third = sync.sync();
    expect(second).not.toBe(first);
    expect(third).toBe(second);
    await Promise.all([first, second, third]);
    // Idle again: a new call starts a new sync.
    const fourth = sync.sync();
    expect(fourth).not.toBe(second);
    await fourth;
    sync.close();
  });
});
