import type Database from 'better-sqlite3';

/**
 * A database as migration 0019 (request_index) found it: without the index of rare classes, nor request_starts' model
 * and no_handle (nor their indexes), the migration not applied. Tests of an earlier migration undo this one first.
 */
export function asBefore0019(raw: Database.Database): void {
  for (const index of ['request_starts_model', 'request_starts_no_handle', 'request_starts_no_handle_model']) raw.prepare(`drop index ${index}`).run();
  raw.prepare('drop table request_classes').run();
  for (const c of ['model', 'no_handle']) raw.prepare(`alter table request_starts drop column ${c}`).run();
  raw.prepare('delete from __drizzle_migrations where created_at = (select max(created_at) from __drizzle_migrations)').run();
}
