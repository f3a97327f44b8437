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
export function openDb(path: string): OpenedDb {
  const sqlite = new Database(path);
  sqlite.pragma('journal_mode = WAL');
  // FULL: a commit is on disk before we acknowledge it (nothing acknowledged is lost on power loss).
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const db = drizzle(sqlite, { schema });
  migrate(db, { migrationsFolder: MIGRATIONS });
  return { sqlite, db, close: () => sqlite.close() };
}
