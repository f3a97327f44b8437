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
    expect(op).toMatchObject({ kind: 'snapshot', snapshot: { row: { scope: SCOPE, rows: 1 }, whole: true } });
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
