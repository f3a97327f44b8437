import { createHash } from 'node:crypto';
import type { TestApp } from './app';

type Sqlite = TestApp['sqlite'];

/** The database's tables (SQLite's own left out), by name. */
export const tableNames = (sqlite: Sqlite): string[] =>
  sqlite.prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name").pluck().all() as string[];

/** A digest of every row of every table: what a refused call must leave as it was. */
export function fingerprint(sqlite: Sqlite, tables: readonly string[] = tableNames(sqlite)): string {
  const hash = createHash('sha256');
  for (const table of tables) {
    hash.update(`\u0000${table}`);
    for (const row of sqlite.prepare(`select * from "${table}"`).raw().iterate() as Iterable<unknown[]>)
      for (const cell of row) hash.update(Buffer.isBuffer(cell) ? `b${cell.toString('hex')}` : `${typeof cell}${String(cell)}\u0001`);
  }
  return hash.digest('hex');
}
