import type Database from 'better-sqlite3';

/**
 * A database as migration 0019 (request_index) found it: without the index of rare classes, nor request_starts'
 * no_handle (nor its index), the migration not applied. Tests of an earlier migration undo this one first.
 */
export function asBefore0019(raw: Database.Database): void {
  raw.prepare('drop index request_starts_no_handle').run();
  raw.prepare('drop table request_classes').run();
  raw.prepare('alter table request_starts drop column no_handle').run();
  raw.prepare('delete from __drizzle_migrations where created_at = (select max(created_at) from __drizzle_migrations)').run();
}
