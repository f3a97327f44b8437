import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { fileURLToPath } from 'node:url';
import * as schema from './schema';

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database };

// Resolved from this file, not the working directory, so any cwd works.
const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));

export interface OpenedDb {
  sqlite: Database.Database;
  db: Db;
  close(): void;
}

/** Opens (creating if needed) and migrates a database file, or ':memory:'. */
/** Every connection's settings: the service's own and the writer thread's (sql-thread.mjs). */
export const CONNECTION_PRAGMAS = [
  'journal_mode = WAL',
  // FULL: a commit is on disk before we acknowledge it (nothing acknowledged is lost on power loss).
  'synchronous = FULL',
  'foreign_keys = ON',
  // The writer thread and the service's connection take turns at the write lock.
  'busy_timeout = 5000',
  // 64 MiB of page cache: recent requests are read back when their usage arrives.
  'cache_size = -65536',
  'mmap_size = 268435456',
];

export function openDb(path: string): OpenedDb {
  const sqlite = new Database(path);
  for (const pragma of CONNECTION_PRAGMAS) sqlite.pragma(pragma);
  const db = drizzle(sqlite, { schema });
  migrate(db, { migrationsFolder: MIGRATIONS });
  return { sqlite, db, close: () => sqlite.close() };
}
