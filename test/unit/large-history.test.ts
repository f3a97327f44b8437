// Reads that must not grow with a tenant's whole history: their query plans use an index (no
// full scan, no sort of every row), and what they hand to the domain is streamed or bounded.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import { HandleMeter } from '../../src/domain/handle-meta';
import { HandleService } from '../../src/domain/handles';
import { renderExpansion } from '../../src/domain/render/formats';
import { openDb, type OpenedDb } from '../../src/store/db';
import { systemClock } from '../../src/domain/clock';
import { SqliteStore } from '../../src/store/sqlite-store';
import { ROLLUP_VALUE_COLUMNS } from '../../src/domain/reconcile/waterfall';

let opened: OpenedDb;
let store: SqliteStore;
beforeEach(() => {
  opened = openDb(':memory:');
  store = new SqliteStore(opened.db, opened.walSync, systemClock);
});
afterEach(() => opened.close());

/** EXPLAIN QUERY PLAN's lines for a statement (every parameter bound to null). */
function plan(sql: string): string[] {
  const stmt = opened.sqlite.prepare(`explain query plan ${sql}`);
  const params = Object.fromEntries([...sql.matchAll(/@(\w+)/g)].map((m) => [m[1], null]));
  const positional = (sql.match(/\?/g) ?? []).map(() => null);
  const rows = (Object.keys(params).length ? stmt.all(params) : stmt.all(...positional)) as Array<{ detail: string }>;
  return rows.map((r) => r.detail);
}

function insertReconciled(id: string, scope: string, seq: number): void {
  opened.sqlite.prepare(`insert or ignore into tenants (id, name, created_at) values ('ten_1', 't', 0)`).run();
  opened.sqlite
    .prepare(
      `insert into requests (id, tenant_id, scope, format, model, catalog_entry, catalog_fallback, rendered_at, segments, breakpoints, status, reconciled_seq)
       values (?, 'ten_1', ?, 'anthropic', 'm', 'm', 0, ?, '[]', '[]', 'reconciled', ?)`,
    )
    .run(id, scope, seq, seq);
  opened.sqlite
    .prepare(
      `insert into reconciliations (seq, request_id, started_at, first_byte_at, finished_at, report_hash, usage_raw, usage, outcome, write_premium)
       values (?, ?, ?, ?, ?, 'h', '{"input_tokens":1}', '{}', '{"lengths":[]}', '{}')`,
    )
    .run(seq, id, seq, seq, seq);
}

describe("a cache scope's replay (the first use of a scope after a start)", () => {
  it('walks requests_scope_reconciled in replay order: no sort of the scope history, no scan of other scopes', () => {
    const lines = plan(store.reconciledInScopeSql);
    // From a snapshot, only the rows after it: a range of the index.
    expect(lines.join('\n')).toMatch(/requests_scope_reconciled \(scope=\? AND reconciled_seq>\?\)/);
    expect(lines.join('\n')).not.toMatch(/TEMP B-TREE|SCAN/);
  });

  it("reads its snapshot by key, counts the rows it covers from the index alone, and reads the snapshot's changes in order without a sort", () => {
    const [, count, snapshot, changes] = store.scopeLoadSql.map((sql) => plan(sql).join('\n'));
    expect(count).toMatch(/COVERING INDEX requests_scope_reconciled \(scope=\? AND reconciled_seq>\? AND reconciled_seq<\?\)/);
    expect(snapshot).toMatch(/sqlite_autoindex_scope_snapshots_1 \(scope=\?\)/);
    expect(changes).toMatch(/sqlite_autoindex_scope_snapshot_changes_1 \(scope=\? AND chain=\?\)/);
    for (const p of [count, snapshot, changes]) expect(p).not.toMatch(/TEMP B-TREE|SCAN/);
  });

  it('streams the rows (an iterator, not an array of the whole history), in reconciliation order, without the usage', () => {
    insertReconciled('req_b', 'scope-a', 2);
    insertReconciled('req_x', 'scope-b', 3);
    insertReconciled('req_a', 'scope-a', 1);
    const rows = store.reconciledInScope('scope-a');
    expect(Array.isArray(rows)).toBe(false);
    const all = [...rows];
    expect(all.map((r) => r.id)).toEqual(['req_a', 'req_b']);
    expect(all[0]).toMatchObject({ outcome: { lengths: [] }, startedAt: 1, usage: null, usageRaw: null });
    expect([...store.reconciledInScope('scope-a', 1)].map((r) => r.id)).toEqual(['req_b']);
    expect(store.countReconciledInScope('scope-a', 1)).toBe(1);
  });
});

describe('a long session', () => {
  const clock = { now: () => 1_800_000_000_000 };
  const meter = new HandleMeter(new ModelCatalog(loadCatalog()));
  const start = () => {
    opened.sqlite.prepare(`insert into tenants (id, name, created_at) values ('ten_1', 't', 0)`).run();
    const handles = new HandleService({ store, clock, meter });
    const sys = handles.mintArtifact('ten_1', { kind: 'system', content: 'You are terse.' }).handle.id;
    const bundle = handles.createBundle('ten_1', { members: [sys] }).handle.id;
    const id = handles.createSession('ten_1', { base: bundle, messages: [{ role: 'user', content: 'turn 0' }] }).handle.id;
    return { handles, id };
  };
  const say = (k: number) => [{ role: k % 2 ? 'assistant' : 'user', content: `turn ${k}` }];

  it('takes an append by reading its own batch, not every earlier one again', () => {
    const { handles, id } = start();
    for (let k = 1; k < 40; k++) handles.appendMessages('ten_1', id, say(k));
    let blobs = 0;
    let listed = 0;
    const getBlob = store.getBlob.bind(store);
    const listVersions = store.listVersions.bind(store);
    store.getBlob = (d) => (blobs++, getBlob(d));
    store.listVersions = (h) => (listed++, listVersions(h));
    handles.appendMessages('ten_1', id, say(40));
    handles.appendMessages('ten_1', id, say(41));
    expect(listed).toBe(0);
    expect(blobs).toBeLessThanOrEqual(2);
  });

  it('flattens every version as a fresh service reading the database does', () => {
    const { handles, id } = start();
    for (let k = 1; k < 12; k++) handles.appendMessages('ten_1', id, say(k));
    const fresh = new HandleService({ store, clock, meter });
    const handle = handles.getHandle('ten_1', id);
    for (let v = 1; v <= 12; v++) {
      expect(handles.segmentsOf(handle, v)).toEqual(fresh.segmentsOf(handle, v));
      expect(renderExpansion('anthropic', handles.segmentsOf(handle, v))).toBe(renderExpansion('anthropic', fresh.segmentsOf(handle, v)));
    }
    // Versions stored alike whichever way their segments were built.
    expect(handles.versions(id).map((r) => r.digest)).toEqual(fresh.versions(id).map((r) => r.digest));
  });
});

describe('rollup sums', () => {
  it("read one handle's rows (or the '*' totals) by the primary key, never by the day index", () => {
    for (const byModel of [false, true]) {
      const lines = plan(store.sumRollupsStatement(byModel).source).join('\n');
      expect(lines).toMatch(/sqlite_autoindex_rollups_1 \(tenant_id=\? AND handle_id=\?\)/);
      expect(lines).not.toMatch(/rollups_tenant_day/);
    }
  });

  it("read one handle's rows per model, per day or some versions' by the primary key (a handle report's totals, a page's days, the versions listed), never by the day index", () => {
    for (const by of ['models', 'days', 'versions'] as const)
      for (const byModel of [false, true]) {
        const lines = plan(store.handleRollupsStatement(by, byModel).source).join('\n');
        expect(lines, by).toMatch(by === 'versions' ? /sqlite_autoindex_rollups_1 \(tenant_id=\? AND handle_id=\? AND version>\? AND version<\?\)/ : /sqlite_autoindex_rollups_1 \(tenant_id=\? AND handle_id=\?\)/);
        expect(lines, by).not.toMatch(/rollups_tenant_day/);
      }
  });

  const shape = (byModel: boolean, some: boolean) => ({ byModel, some, columns: ROLLUP_VALUE_COLUMNS });

  it("read every handle's rows over days by rollups_tenant_day: those days only, not every day of the tenant's history", () => {
    for (const byModel of [false, true]) expect(plan(store.sumHandlesStatement('days', shape(byModel, false)).source).join('\n')).toMatch(/rollups_tenant_day \(tenant_id=\? AND day>\? AND day<\?\)/);
  });

  it("read every handle's spans in key order, grouped by handle without a sort", () => {
    for (const byModel of [false, true]) {
      const lines = plan(store.sumHandlesStatement('spans', shape(byModel, false)).source).join('\n');
      expect(lines).toMatch(/sqlite_autoindex_rollups_span_1 \(tenant_id=\?/);
      expect(lines).not.toMatch(/TEMP B-TREE/);
    }
  });

  it("read the handles of some types (a ranking of sessions alone) as every handle's: days by the day index, spans by a range of the key without a sort", () => {
    // Also summed together (the sessions as one row).
    const typed = (byModel: boolean, together: boolean) => ({ ...shape(byModel, false), typed: true, together });
    for (const byModel of [false, true])
      for (const together of [false, true]) {
        const days = plan(store.sumHandlesStatement('days', typed(byModel, together)).source).join('\n');
        expect(days).toMatch(/rollups_tenant_day \(tenant_id=\? AND day>\? AND day<\?\)/);
        if (together) expect(days).not.toMatch(/TEMP B-TREE/);
        const spans = plan(store.sumHandlesStatement('spans', typed(byModel, together)).source).join('\n');
        expect(spans).toMatch(/sqlite_autoindex_rollups_span_1 \(tenant_id=\? AND handle_id>\? AND handle_id<\?\)/);
        expect(spans).not.toMatch(/TEMP B-TREE/);
      }
  });

  it("read some handles' rows and spans by the primary key, handle by handle, without a sort", () => {
    for (const byModel of [false, true]) {
      const days = plan(store.sumHandlesStatement('days', shape(byModel, true)).source).join('\n');
      expect(days).toMatch(/sqlite_autoindex_rollups_1 \(tenant_id=\? AND handle_id=\?\)/);
      const spans = plan(store.sumHandlesStatement('spans', shape(byModel, true)).source).join('\n');
      expect(spans).toMatch(/sqlite_autoindex_rollups_span_1 \(tenant_id=\? AND handle_id=\?/);
      for (const lines of [days, spans]) expect(lines).not.toMatch(/TEMP B-TREE/);
    }
  });
});
