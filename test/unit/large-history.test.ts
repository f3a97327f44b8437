// Reads that must not grow with a tenant's whole history: their query plans use an index (no
// full scan, no sort of every row), and what they hand to the domain is streamed or bounded.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDb, type OpenedDb } from '../../src/store/db';
import { SqliteStore } from '../../src/store/sqlite-store';

let opened: OpenedDb;
let store: SqliteStore;
beforeEach(() => {
  opened = openDb(':memory:');
  store = new SqliteStore(opened.db, opened.walSync);
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
    expect(lines.join('\n')).toMatch(/requests_scope_reconciled \(scope=\?/);
    expect(lines.join('\n')).not.toMatch(/TEMP B-TREE|SCAN/);
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
  });
});
