import type Database from 'better-sqlite3';
import { expandOutcome, expandSegments, type ReadBatches } from '../../src/store/compact';

/** A database as migration 0021 (tenants' time_zone) found it: without the column, the migration not applied. */
export function asBefore0021(raw: Database.Database): void {
  raw.prepare('alter table tenants drop column time_zone').run();
  raw.prepare('delete from __drizzle_migrations where created_at = (select max(created_at) from __drizzle_migrations)').run();
}

/**
 * A database as migration 0020 (session_batches) found it: every request's segments and outcome in the shape written
 * before it (arrays, a session batch one segment each, an outcome one per segment), no session_batches, the migration
 * not applied. Tests of an earlier migration undo this one first.
 */
export function asBefore0020(raw: Database.Database): void {
  asBefore0021(raw);
  const batches = raw.prepare('select version, entry from session_batches where tenant_id = ? and session_id = ? and variant = ? and version between ? and ?').raw();
  const read =
    (tenant: string): ReadBatches =>
    (session, variant, from, to) =>
      new Map(batches.all(tenant, session, variant, from, to) as Array<[number, string]>);
  const setSegments = raw.prepare('update requests set segments = ? where id = ?');
  for (const [id, tenant, segments] of raw.prepare('select id, tenant_id, segments from requests').raw().all() as Array<[string, string, string]>)
    setSegments.run(JSON.stringify(expandSegments(JSON.parse(segments), read(tenant))), id);
  const setOutcome = raw.prepare('update reconciliations set outcome = ? where seq = ?');
  for (const [seq, outcome] of raw.prepare('select seq, outcome from reconciliations').raw().all() as Array<[number, string]>) setOutcome.run(JSON.stringify(expandOutcome(JSON.parse(outcome))), seq);
  raw.prepare('drop table session_batches').run();
  raw.prepare('delete from __drizzle_migrations where created_at = (select max(created_at) from __drizzle_migrations)').run();
}

/**
 * A database as migration 0019 (request_index) found it: without the index of rare classes, nor request_starts'
 * no_handle (nor its index), the migration not applied. Tests of an earlier migration undo this one first.
 */
export function asBefore0019(raw: Database.Database): void {
  asBefore0020(raw);
  raw.prepare('drop index request_starts_no_handle').run();
  raw.prepare('drop table request_classes').run();
  raw.prepare('alter table request_starts drop column no_handle').run();
  raw.prepare('delete from __drizzle_migrations where created_at = (select max(created_at) from __drizzle_migrations)').run();
}
