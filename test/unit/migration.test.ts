// Migration 0001 moves reconciled requests' results to `reconciliations`: a
// database written by the previous schema must read the same after it.
import Database from 'better-sqlite3';
import { drizzle } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDb } from '../../src/store/db';
import { systemClock } from '../../src/domain/clock';
import { SqliteStore } from '../../src/store/sqlite-store';
import { summarizeOutcome } from '../../src/domain/reconcile/request-summary';
import { requestSummaryView } from '../../src/http/views';

const MIGRATIONS = join(__dirname, '../../migrations');
let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const JOURNAL = JSON.parse(readFileSync(join(MIGRATIONS, 'meta/_journal.json'), 'utf8')) as { entries: Array<{ tag: string; when: number }> };

/** A database migrated by the first `count` migrations, dated as `when` says (as an older journal dated them). */
function atMigration(file: string, count: number, when: Record<string, number> = {}): Database.Database {
  const folder = join(dir, `migrations-${count}`);
  mkdirSync(join(folder, 'meta'), { recursive: true });
  const entries = JOURNAL.entries.slice(0, count).map((e) => ({ ...e, when: when[e.tag] ?? e.when }));
  for (const e of entries) copyFileSync(join(MIGRATIONS, `${e.tag}.sql`), join(folder, `${e.tag}.sql`));
  writeFileSync(join(folder, 'meta/_journal.json'), JSON.stringify({ ...JOURNAL, entries }));
  const sqlite = new Database(file);
  migrate(drizzle(sqlite), { migrationsFolder: folder });
  return sqlite;
}

/** A database at migration 0000 only. */
function atFirstMigration(file: string): Database.Database {
  return atMigration(file, 1);
}

describe('migrations 0001 (reconciliations) and 0002 (drift dated by start)', () => {
  it('carries reconciled requests over with their results and replay order; failed and rendered ones stay as they were', () => {
    dir = mkdtempSync(join(tmpdir(), 'ph-migrate-'));
    const file = join(dir, 'db.sqlite');
    const old = atFirstMigration(file);
    old.prepare("insert into tenants (id, name, created_at) values ('ten_1', 't', 0)").run();
    const insert = old.prepare(
      `insert into requests (id, tenant_id, scope, format, model, catalog_entry, catalog_fallback, rendered_at, segments, breakpoints, status, reconciled_seq,
        started_at, first_byte_at, finished_at, report_hash, usage_raw, usage, diagnostics, outcome, write_premium, write_read)
       values (@id, 'ten_1', 'scope-a', 'anthropic', 'claude-sonnet-4-5', 'claude-sonnet-4-5', 0, 1000, '[]', '[]', @status, @seq,
        @started, @firstByte, @finished, @hash, @raw, @usage, @diagnostics, @outcome, @premium, @read)`,
    );
    const none = { seq: null, started: null, firstByte: null, finished: null, hash: null, raw: null, usage: null, diagnostics: null, outcome: null, premium: null, read: null };
    const reconciled = (id: string, seq: number) => ({
      id, status: 'reconciled', seq, started: 1000 + seq, firstByte: 1500 + seq, finished: 2000 + seq, hash: `h${seq}`, raw: `{"input_tokens":${seq}}`,
      usage: '{"total_prompt_tokens":9}', diagnostics: null, outcome: `{"lengths":[${seq}],"sim":{"startedAt":${1000 + seq},"firstByteAt":null}}`, premium: '{"*@0":0.5}', read: seq === 3 ? 1 : 0,
    });
    insert.run(reconciled('req_b', 3));
    insert.run(reconciled('req_a', 2));
    // A row without a sequence number (none should exist) is placed after the others, not lost.
    insert.run({ ...reconciled('req_c', 9), seq: null });
    insert.run({ ...none, id: 'req_f', status: 'failed', started: 10, finished: 20, raw: '{"error":"overloaded"}' });
    insert.run({ ...none, id: 'req_r', status: 'rendered' });
    // Drift findings dated by when their usage arrived (migration 0002 dates them by the request's start).
    const drift = old.prepare(`insert into drift_findings (tenant_id, handle_id, request_id, previous_request_id, at, finding) values ('ten_1', 'art_x', ?, 'req_a', 99999, '{}')`);
    drift.run('req_b');
    drift.run('req_gone');
    old.close();

    const opened = openDb(file);
    const store = new SqliteStore(opened.db, opened.walSync, systemClock);
    try {
      const b = store.getRequest('req_b')!;
      expect(b).toMatchObject({ status: 'reconciled', startedAt: 1003, firstByteAt: 1503, finishedAt: 2003, reportHash: 'h3', usageRaw: { input_tokens: 3 }, writeRead: true });
      expect(b.outcome).toEqual({ lengths: [3], sim: { startedAt: 1003, firstByteAt: null } });
      expect(b.writePremium).toEqual({ '*@0': 0.5 });
      expect(store.getRequest('req_a')!.writeRead).toBe(false);
      expect([...store.reconciledInScope('scope-a')].map((r) => r.id)).toEqual(['req_a', 'req_b', 'req_c']);
      expect(store.getRequest('req_c')).toMatchObject({ status: 'reconciled', reportHash: 'h9', startedAt: 1009 });
      expect(store.getRequest('req_f')).toMatchObject({ status: 'failed', startedAt: 10, finishedAt: 20, usageRaw: { error: 'overloaded' }, reportHash: null, outcome: null });
      expect(store.getRequest('req_r')).toMatchObject({ status: 'rendered', startedAt: null, reportHash: null, outcome: null });
      // Redated by the request's start; a finding whose request is not there keeps its date.
      expect(opened.sqlite.prepare('select request_id, at from drift_findings order by request_id').all()).toEqual([
        { request_id: 'req_b', at: 1003 },
        { request_id: 'req_gone', at: 99999 },
      ]);
    } finally {
      opened.close();
    }
  });
});

describe('migration 0005 (request_handles)', () => {
  it('indexes the requests already recorded by every handle on their paths, newest first', () => {
    dir = mkdtempSync(join(tmpdir(), 'ph-migrate-'));
    const file = join(dir, 'db.sqlite');
    const old = atFirstMigration(file);
    old.prepare("insert into tenants (id, name, created_at) values ('ten_1', 't', 0)").run();
    const insert = old.prepare(
      `insert into requests (id, tenant_id, scope, format, model, catalog_entry, catalog_fallback, rendered_at, segments, breakpoints, status)
       values (?, 'ten_1', 's', 'anthropic', 'claude-sonnet-4-5', 'claude-sonnet-4-5', 0, ?, ?, '[]', 'rendered')`,
    );
    const seg = (source: string, path: string[]) => ({ source, path, section: 'system' });
    insert.run('req_1', 1000, JSON.stringify([seg('art_x@1', ['bnd_y@2', 'art_x@1']), seg('inline', [])]));
    insert.run('req_2', 2000, JSON.stringify([seg('art_x@2', ['art_x@2']), seg('art_x@2', ['art_x@2'])]));
    insert.run('req_3', 3000, JSON.stringify([seg('inline', [])]));
    old.close();

    const opened = openDb(file);
    const store = new SqliteStore(opened.db, opened.walSync, systemClock);
    try {
      const ids = (handleId: string, limit = 10) => store.listRequests({ tenantId: 'ten_1', handleId, limit }).rows.map((r) => r.id);
      expect(ids('art_x')).toEqual(['req_2', 'req_1']);
      expect(ids('bnd_y')).toEqual(['req_1']);
      expect(ids('art_z')).toEqual([]);
      const first = store.listRequests({ tenantId: 'ten_1', handleId: 'art_x', limit: 1 });
      expect(first.rows.map((r) => r.id)).toEqual(['req_2']);
      expect(store.listRequests({ tenantId: 'ten_1', handleId: 'art_x', limit: 1, before: first.next! }).rows.map((r) => r.id)).toEqual(['req_1']);
      expect(store.listRequests({ tenantId: 'ten_1', limit: 10 }).rows.map((r) => r.id)).toEqual(['req_3', 'req_2', 'req_1']);
    } finally {
      opened.close();
    }
  });
});

describe('migration 0013 (rollups.requests_including)', () => {
  it("counts on each stored row the requests that had its version's content, and drops the spans to be made again", () => {
    dir = mkdtempSync(join(tmpdir(), 'ph-migrate-'));
    const file = join(dir, 'db.sqlite');
    const old = atMigration(file, JOURNAL.entries.findIndex((e) => e.tag === '0013_rollups_requests_including'));
    old.prepare("insert into tenants (id, name, created_at) values ('ten_1', 't', 0)").run();
    const handle = old.prepare("insert into handles (id, tenant_id, type, latest_version, created_at) values (?, 'ten_1', ?, ?, 0)");
    const version = old.prepare("insert into handle_versions (handle_id, version, created_at, digest, size, message_count) values (?, ?, 0, 'd', 1, ?)");
    // ses_a started with messages; ses_b without (its version 1 appended no batch: its row is the base's, of its own requests).
    for (const [id, type, versions, firstCount] of [['ses_a', 'session', 4, 1], ['ses_b', 'session', 3, 0], ['art_c', 'artifact', 2, null]] as const) {
      handle.run(id, type, versions);
      for (let v = 1; v <= versions; v++) version.run(id, v, v === 1 ? firstCount : v);
    }
    const rollup = old.prepare("insert into rollups (tenant_id, handle_id, version, day, model, requests, referenced) values ('ten_1', ?, ?, ?, ?, ?, 100)");
    // [handle, version, day, model, requests]: a request counts on its newest version's row.
    const rows = [
      ['ses_a', 1, 10, 'm', 2], ['ses_a', 2, 10, 'm', 0], ['ses_a', 3, 10, 'm', 1], ['ses_a', 4, 10, 'm', 3],
      // Another day and another model are counted apart.
      ['ses_a', 1, 11, 'm', 0], ['ses_a', 2, 11, 'm', 4], ['ses_a', 1, 10, 'n', 5],
      ['ses_b', 1, 10, 'm', 2], ['ses_b', 2, 10, 'm', 1], ['ses_b', 3, 10, 'm', 6],
      ['art_c', 1, 10, 'm', 7], ['art_c', 2, 10, 'm', 1], ['*', 0, 10, 'm', 9],
    ] as const;
    for (const r of rows) rollup.run(...r);
    old.prepare("insert into rollups_span (tenant_id, handle_id, model, span, requests) values ('ten_1', 'ses_a', 'm', -1, 10)").run();
    old.prepare("insert into rollups_span_through (tenant_id, span, through) values ('ten_1', -1, 11)").run();
    old.close();

    const opened = openDb(file);
    try {
      const got = opened.sqlite.prepare('select handle_id, version, day, model, requests, requests_including from rollups order by handle_id, model, day, version').all();
      const expected = [
        // Version k of ses_a: the requests of versions k and after, that day, on that model.
        ['ses_a', 1, 10, 'm', 2, 6], ['ses_a', 2, 10, 'm', 0, 4], ['ses_a', 3, 10, 'm', 1, 4], ['ses_a', 4, 10, 'm', 3, 3],
        ['ses_a', 1, 11, 'm', 0, 4], ['ses_a', 2, 11, 'm', 4, 4], ['ses_a', 1, 10, 'n', 5, 5],
        ['ses_b', 1, 10, 'm', 2, 2], ['ses_b', 2, 10, 'm', 1, 7], ['ses_b', 3, 10, 'm', 6, 6],
        ['art_c', 1, 10, 'm', 7, 7], ['art_c', 2, 10, 'm', 1, 1], ['*', 0, 10, 'm', 9, 9],
      ].map(([handle_id, version, day, model, requests, requests_including]) => ({ handle_id, version, day, model, requests, requests_including }));
      expect(got).toEqual(expect.arrayContaining(expected));
      expect(got).toHaveLength(expected.length);
      expect(opened.sqlite.prepare('select count(*) from rollups_span').pluck().get()).toBe(0);
      expect(opened.sqlite.prepare('select count(*) from rollups_span_through').pluck().get()).toBe(0);
    } finally {
      opened.close();
    }
  });
});

describe('migration 0014 (request_lines, request_summaries.version)', () => {
  it('lists the requests already recorded as before: their summaries read as of this shape, the others from their rows', () => {
    dir = mkdtempSync(join(tmpdir(), 'ph-migrate-'));
    const file = join(dir, 'db.sqlite');
    const old = atMigration(file, JOURNAL.entries.findIndex((e) => e.tag === '0014_request_lines'));
    old.prepare("insert into tenants (id, name, created_at) values ('ten_1', 't', 0)").run();
    const [art, bnd] = ['art_', 'bnd_'].map((p) => p + 'x'.repeat(21));
    const segments = JSON.stringify([{ source: `${art}@1`, path: [`${bnd}@2`, `${art}@1`] }, { source: 'inline', path: [] }]);
    const insert = old.prepare(
      `insert into requests (id, tenant_id, scope, format, model, catalog_entry, catalog_fallback, rendered_at, segments, breakpoints, status, started_at, finished_at, reconciled_seq)
       values (?, 'ten_1', 's', 'anthropic', 'claude-sonnet-4-5', 'claude-sonnet-4-5', 0, ?, ?, '[]', ?, ?, ?, ?)`,
    );
    insert.run('req_r', 1000, segments, 'rendered', null, null, null);
    insert.run('req_f', 2000, segments, 'failed', 2100, 2200, null);
    insert.run('req_c', 3000, segments, 'reconciled', null, null, 1);
    const outcome = { capture: 'reported', total_prompt_tokens: 9, drift: null, segments: JSON.parse(segments).map((s: object) => ({ ...s, classes: { cold: 4 } })) };
    old.prepare(`insert into reconciliations (seq, request_id, started_at, first_byte_at, finished_at, report_hash, usage_raw, usage, outcome, write_premium)
      values (1, 'req_c', 3100, 3200, 3300, 'h', '{}', '{"cache_read_tokens":0,"cache_write_tokens":4}', ?, '{}')`).run(JSON.stringify(outcome));
    old.prepare('insert into request_summaries (seq, summary) values (1, ?)').run(JSON.stringify(summarizeOutcome(outcome as never)));
    old.close();

    const opened = openDb(file);
    const store = new SqliteStore(opened.db, opened.walSync, systemClock);
    try {
      const rows = store.listRequests({ tenantId: 'ten_1', limit: 10 }).rows;
      expect(rows.map((r) => [r.id, r.status, r.startedAt, r.segments !== null, r.outcome !== null, r.summary !== null])).toEqual([
        ['req_c', 'reconciled', 3100, false, false, true],
        ['req_f', 'failed', 2100, true, false, false],
        ['req_r', 'rendered', null, true, false, false],
      ]);
      for (const r of rows) expect(requestSummaryView(r)).toEqual(requestSummaryView(store.getRequest(r.id)!));
      expect(requestSummaryView(rows[1]!).handles).toEqual([bnd, art]);
    } finally {
      opened.close();
    }
  });
});

describe('migration 0015 (request retention)', () => {
  it("gives each stored drift finding its request's model, so a report by model still finds it once the request is pruned", () => {
    dir = mkdtempSync(join(tmpdir(), 'ph-migrate-'));
    const file = join(dir, 'db.sqlite');
    const old = atMigration(file, JOURNAL.entries.findIndex((e) => e.tag === '0015_request_retention'));
    old.prepare("insert into tenants (id, name, created_at) values ('ten_1', 't', 0)").run();
    old.prepare(`insert into requests (id, tenant_id, scope, format, model, catalog_entry, catalog_fallback, rendered_at, segments, breakpoints, status)
      values ('req_a', 'ten_1', 's', 'anthropic', 'claude-haiku-4-5', 'claude-haiku-4-5', 0, 1000, '[]', '[]', 'rendered')`).run();
    const drift = old.prepare(`insert into drift_findings (tenant_id, handle_id, request_id, previous_request_id, at, finding) values ('ten_1', 'art_x', ?, 'req_p', ?, '{}')`);
    drift.run('req_a', 1000);
    // Its request gone already (none should be): no model, and no error.
    drift.run('req_gone', 2000);
    old.close();

    const opened = openDb(file);
    const store = new SqliteStore(opened.db, opened.walSync, systemClock);
    try {
      expect(opened.sqlite.prepare('select request_id, model from drift_findings order by at').all()).toEqual([
        { request_id: 'req_a', model: 'claude-haiku-4-5' },
        { request_id: 'req_gone', model: null },
      ]);
      // As pruning deletes it: its list entry (0016) first.
      opened.sqlite.prepare("delete from request_starts where request_id = 'req_a'").run();
      opened.sqlite.prepare("delete from requests where id = 'req_a'").run();
      expect(store.driftFindings('ten_1', 'art_x', 10, { fromMs: 0, toMs: 5000, model: 'claude-haiku-4-5' }).map((d) => d.requestId)).toEqual(['req_a']);
    } finally {
      opened.close();
    }
  });
});

describe('migration 0016 (request_starts, request_handles.started_at)', () => {
  it('lists the requests already recorded by when their call started: a report\'s or failure\'s start, else the render time', () => {
    dir = mkdtempSync(join(tmpdir(), 'ph-migrate-'));
    const file = join(dir, 'db.sqlite');
    const old = atMigration(file, JOURNAL.entries.findIndex((e) => e.tag === '0016_request_starts'));
    old.prepare("insert into tenants (id, name, created_at) values ('ten_1', 't', 0)").run();
    const insert = old.prepare(
      `insert into requests (id, tenant_id, scope, format, model, catalog_entry, catalog_fallback, rendered_at, segments, breakpoints, status, started_at, reconciled_seq)
       values (?, 'ten_1', 's', 'anthropic', 'claude-sonnet-4-5', 'claude-sonnet-4-5', 0, ?, '[]', '[]', ?, ?, ?)`,
    );
    const handle = old.prepare("insert into request_handles (tenant_id, handle_id, rendered_at, request_id) values ('ten_1', 'art_x', ?, ?)");
    const line = old.prepare("insert into request_lines (request_id, handles, failed_started_at) values (?, '[\"art_x\"]', ?)");
    // Imported on day 10: a call of day 1 reported with its start, one of day 3 that failed, one of day 4 not reported.
    const day = 86_400_000;
    for (const [id, rendered, status, started, seq] of [['req_c', 10 * day, 'reconciled', null, 1], ['req_f', 10 * day + 1, 'failed', 3 * day, null], ['req_r', 4 * day, 'rendered', null, null]] as const) {
      insert.run(id, rendered, status, started, seq);
      handle.run(rendered, id);
      line.run(id, started);
    }
    old.prepare(`insert into reconciliations (seq, request_id, started_at, first_byte_at, finished_at, report_hash, usage_raw, usage, outcome, write_premium)
      values (1, 'req_c', ?, ?, ?, 'h', '{}', '{}', '{}', '{}')`).run(day, day + 1, day + 2);
    old.close();

    const opened = openDb(file);
    const store = new SqliteStore(opened.db, opened.walSync, systemClock);
    try {
      const ids = (q: { handleId?: string; startedFrom?: number; startedTo?: number }) => store.listRequests({ tenantId: 'ten_1', limit: 10, ...q }).rows.map((r) => r.id);
      for (const handleId of [undefined, 'art_x']) {
        expect(ids({ handleId })).toEqual(['req_r', 'req_f', 'req_c']);
        expect(ids({ handleId, startedFrom: 2 * day, startedTo: 4 * day - 1 })).toEqual(['req_f']);
        expect(ids({ handleId, startedTo: 2 * day })).toEqual(['req_c']);
      }
    } finally {
      opened.close();
    }
  });
});

describe('a database a newer version migrated', () => {
  it('is refused at open, naming it, and left as it was (drizzle alone would run on it and write rows that version misreads)', () => {
    dir = mkdtempSync(join(tmpdir(), 'ph-migrate-newer-'));
    const file = join(dir, 'db.sqlite');
    openDb(file).close();
    // What a later version's next migration leaves behind.
    const raw = new Database(file);
    const last = raw.prepare('select max(created_at) from __drizzle_migrations').pluck().get() as number;
    raw.prepare('insert into __drizzle_migrations (hash, created_at) values (?, ?)').run('later', Number(last) + 60_000);
    const count = raw.prepare('select count(*) from __drizzle_migrations').pluck().get();
    raw.close();
    expect(() => openDb(file)).toThrow(/migrated by a newer version of prefix-handles/);
    const after = new Database(file);
    expect(after.prepare('select count(*) from __drizzle_migrations').pluck().get()).toBe(count);
    after.close();
    // The database this version migrated itself opens again.
    const again = new Database(file);
    again.prepare("delete from __drizzle_migrations where hash = 'later'").run();
    again.close();
    expect(() => openDb(file).close()).not.toThrow();
  });
});

describe('the journal', () => {
  // Drizzle applies only migrations dated after a database's newest: one dated earlier than another already
  // applied is skipped on that database, without a word.
  it('dates every migration after the one before it', () => {
    const when = JOURNAL.entries.map((e) => e.when);
    for (let i = 1; i < when.length; i++) expect(when[i], JOURNAL.entries[i]!.tag).toBeGreaterThan(when[i - 1]!);
  });

  // Until 2026-12-03 the journal dated 0007 after 0008 and 0009: a database migrated through 0007 then never got them.
  const OLD_DATES = { '0008_scope_replay_index': 1796291136093, '0009_rollups_tenant_day': 1796291199175 };
  const indexes = (file: string) => {
    const db = new Database(file);
    const names = db.prepare("select name from sqlite_master where type = 'index'").pluck().all();
    const tables = db.prepare("select name from sqlite_master where type = 'table'").pluck().all();
    db.close();
    return { names, tables };
  };

  it('brings a database migrated through 0007 under the old dates up to date (0008 and 0009 had been skipped)', () => {
    dir = mkdtempSync(join(tmpdir(), 'ph-migrate-0007-'));
    const file = join(dir, 'db.sqlite');
    atMigration(file, JOURNAL.entries.findIndex((e) => e.tag === '0007_request_provider_history') + 1).close();
    expect(indexes(file).names).not.toContain('requests_scope_reconciled');
    openDb(file).close();
    const { names, tables } = indexes(file);
    expect(names).toEqual(expect.arrayContaining(['requests_scope_reconciled', 'rollups_tenant_day']));
    expect(tables).toContain('rollups_span');
  });

  it('opens a database migrated through 0009 under the old dates (0008 and 0009 run again, as no-ops) and migrates it on', () => {
    dir = mkdtempSync(join(tmpdir(), 'ph-migrate-0009-'));
    const file = join(dir, 'db.sqlite');
    atMigration(file, JOURNAL.entries.findIndex((e) => e.tag === '0009_rollups_tenant_day') + 1, OLD_DATES).close();
    expect(indexes(file).names).toEqual(expect.arrayContaining(['requests_scope_reconciled', 'rollups_tenant_day']));
    expect(() => openDb(file).close()).not.toThrow();
    expect(indexes(file).tables).toContain('rollups_span');
    // And again: nothing left to apply.
    expect(() => openDb(file).close()).not.toThrow();
  });
});
