// When a cache scope's states may be snapshot: only while memory is exactly the replay of the committed rows.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import { ScopeStates } from '../../src/domain/reconcile/scopes';
import { openDb, type OpenedDb } from '../../src/store/db';
import { SqliteStore } from '../../src/store/sqlite-store';
import { systemClock } from '../../src/domain/clock';
import type { WriteOp } from '../../src/store/store';

const catalog = new ModelCatalog(loadCatalog());
const model = catalog.byId('claude-sonnet-4-5')!;
const SCOPE = 'ten_1|anthropic|claude-sonnet-4-5|-';

let opened: OpenedDb;
let scopes: ScopeStates;
beforeEach(() => {
  opened = openDb(':memory:');
  scopes = new ScopeStates(new SqliteStore(opened.db, opened.walSync, systemClock), catalog, 1);
});
afterEach(() => opened.close());

/** A reconciliation of request `id` as the write queue sees it (its other fields play no part here). */
const ingest = (id: string) => ({ kind: 'ingest', write: { request: { id } } }) as unknown as WriteOp;
/** Request `id` applied to the scope's state, as the reconciler does after simulating it. */
const apply = (id: string) => {
  scopes.get(SCOPE, model);
  scopes.applied({ id, scope: SCOPE, catalogEntry: model.id, model: 'claude-sonnet-4-5' });
};

describe('a scope snapshot goes with a batch', () => {
  it('that brings the scope to `snapshotEvery` requests, all of them in it', () => {
    apply('a');
    const [op] = scopes.alongside([ingest('a')]);
    // Its first, a new chain: of no entries here (nothing was simulated), so complete at once.
    expect(op).toMatchObject({ kind: 'snapshot', snapshot: { scope: SCOPE, row: { rows: 1, parts: 0 }, replaces: true } });
  });

  it('not while a request applied to the scope is not in it (still queued, or its write failed)', () => {
    apply('a');
    apply('b');
    expect(scopes.alongside([ingest('a')])).toEqual([]);
    scopes.settled(ingest('a'));
    scopes.settled(ingest('b'), new Error('constraint'));
    apply('c');
    expect(scopes.alongside([ingest('c')])).toEqual([]);
  });

  it("not once a request applied to an earlier load of the scope (dropped by a reset or an eviction) lands: the new load lacks it", () => {
    apply('a');
    scopes.reset();
    apply('b');
    expect(scopes.alongside([ingest('a'), ingest('b')])).toEqual([]);
    // Landed on its own (a batch retried one by one), it is found as it settles.
    apply('c');
    scopes.reset();
    apply('d');
    scopes.settled(ingest('c'));
    expect(scopes.alongside([ingest('d')])).toEqual([]);
  });

  it('not when snapshots are off', () => {
    scopes = new ScopeStates(new SqliteStore(opened.db, opened.walSync, systemClock), catalog, 0);
    apply('a');
    expect(scopes.alongside([ingest('a')])).toEqual([]);
  });
});

describe("a scope snapshot's new chain", () => {
  /** A scope whose simulator has seen five prefixes (five entries to write), its snapshots every request, `part` entries a commit. */
  const withEntries = (part: number) => {
    scopes = new ScopeStates(new SqliteStore(opened.db, opened.walSync, systemClock), catalog, 1, part);
    const blocks = [1, 2, 3, 4, 5].map((i) => ({ key: `k${i}`, endToken: i * 100 }));
    scopes.get(SCOPE, model).sim.apply({ id: 'x', startedAt: 0, firstByteAt: 0, blocks });
  };
  /** A batch committed: the snapshot writes that go with it, each settled as the batch was. */
  const commit = (ops: WriteOp[], error?: Error) => {
    const out = scopes.alongside(ops);
    for (const op of [...ops, ...out]) scopes.settled(op, error);
    return out.map((op) => (op.kind === 'snapshot' ? { part: op.snapshot.part?.index, chain: op.snapshot.part?.chain, row: op.snapshot.row?.parts } : op.kind));
  };

  it('is written a part at a time, one per commit, and completes a snapshot once every entry is written and no request of the scope is in flight', () => {
    withEntries(2);
    apply('a');
    const first = commit([ingest('a')]);
    expect(first).toMatchObject([{ part: 0, row: undefined }]);
    // Request b applied, its write still queued: the parts go on, the snapshot waits for it.
    apply('b');
    expect(commit([])).toMatchObject([{ part: 1 }]);
    expect(commit([])).toMatchObject([{ part: 2 }]);
    expect(commit([])).toEqual([]);
    // With b's write: the changes since the chain began (b's, none here) and the snapshot, of its 3 parts.
    expect(commit([ingest('b')])).toEqual([{ part: undefined, chain: undefined, row: 3 }]);
  });

  it('a part not written gives the chain up: none of it is read, and another begins as many requests later', () => {
    withEntries(2);
    apply('a');
    const { chain } = (commit([ingest('a')]) as Array<{ chain: string }>)[0]!;
    expect(commit([], new Error('injected'))).toMatchObject([{ part: 1, chain }]);
    expect(commit([])).toEqual([]);
    apply('b');
    const [next] = commit([ingest('b')]) as Array<{ chain: string; part: number }>;
    expect(next).toMatchObject({ part: 0 });
    expect(next!.chain).not.toBe(chain);
  });

  it('of a load dropped (a failed commit resets the scopes) is given up', () => {
    withEntries(2);
    apply('a');
    commit([ingest('a')]);
    scopes.reset();
    expect(commit([])).toEqual([]);
  });
});
