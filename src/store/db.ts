import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { close, fdatasync, open } from 'node:fs';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import * as schema from './schema';

export type Db = BetterSQLite3Database<typeof schema> & { $client: Database.Database };

// Resolved from this file, not the working directory, so any cwd works.
const MIGRATIONS = fileURLToPath(new URL('../../migrations', import.meta.url));

export interface OpenedDb {
  sqlite: Database.Database;
  db: Db;
  /** Makes group commits durable (see WalSync). */
  walSync: WalSync;
  close(): void;
}

/** Opens (creating if needed) and migrates a database file, or ':memory:'. */
export function openDb(path: string): OpenedDb {
  const sqlite = new Database(path);
  sqlite.pragma('journal_mode = WAL');
  // FULL: a commit is on disk before it returns. Group commits lower this to
  // NORMAL for their own transaction and wait for a WalSync instead (see below).
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const db = drizzle(sqlite, { schema });
  migrate(db, { migrationsFolder: MIGRATIONS });
  const walSync = new WalSync(sqlite);
  return {
    sqlite,
    db,
    walSync,
    close: () => {
      walSync.close();
      sqlite.close();
    },
  };
}

/**
 * Makes committed WAL frames durable without blocking the event loop: an
 * fdatasync of the -wal file on libuv's thread pool. A transaction committed
 * under synchronous=NORMAL is in the WAL but maybe only in the page cache;
 * once a sync that began after its commit has finished, it is on disk exactly
 * as synchronous=FULL would have left it. Syncs are coalesced: while one runs,
 * every caller shares the single next one.
 */
export class WalSync {
  private readonly walPath: string | null;
  private running: Promise<void> | null = null;
  /** Opened once: SQLite never removes the WAL while this connection is open. */
  private fd: number | null = null;
  private next: Promise<void> | null = null;

  constructor(sqlite: Database.Database) {
    this.walPath = sqlite.memory || sqlite.name === '' ? null : `${sqlite.name}-wal`;
  }

  /** Resolves once everything committed before the call is on disk. */
  sync(): Promise<void> {
    if (this.walPath === null) return Promise.resolve();
    if (this.next) return this.next;
    if (!this.running) return this.start(this.walPath);
    // The running sync may have begun before the caller's commit: one more follows it.
    const walPath = this.walPath;
    this.next = this.running.catch(() => undefined).then(() => {
      this.next = null;
      return this.start(walPath);
    });
    return this.next;
  }

  private start(walPath: string): Promise<void> {
    const run: Promise<void> = this.syncFile(walPath).finally(() => {
      if (this.running === run) this.running = null;
    });
    this.running = run;
    return run;
  }

  private async syncFile(path: string): Promise<void> {
    if (this.fd === null) {
      try {
        this.fd = await openFile(path, 'r');
      } catch (e) {
        // No WAL yet: nothing was committed through it.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw e;
      }
    }
    await syncData(this.fd);
  }

  /** With the connection: a sync still running finishes on its descriptor first. */
  close(): void {
    const fd = this.fd;
    this.fd = null;
    if (fd !== null) void (this.running ?? Promise.resolve()).catch(() => undefined).finally(() => close(fd, () => undefined));
  }
}

const openFile = promisify(open);
const syncData = promisify(fdatasync);
