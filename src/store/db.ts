import Database from 'better-sqlite3';
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3';
import { migrate } from 'drizzle-orm/better-sqlite3/migrator';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { close, closeSync, existsSync, fdatasync, open, openSync, realpathSync, rmSync, statSync } from 'node:fs';
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

/**
 * Opens (creating if needed) and migrates a database file or ':memory:'; or, given a database image (the bytes
 * `serialize()` returns), an in-memory copy of it. Tests open each app's database from one migrated image: a
 * millisecond, where running the migrations takes a dozen.
 */
export function openDb(path: string | Buffer): OpenedDb {
  // Prompts are in it: a new file is readable by its owner only (SQLite gives its -wal and -shm the same mode).
  if (typeof path === 'string' && path !== ':memory:' && !existsSync(path)) closeSync(openSync(path, 'a', 0o600));
  const sqlite = new Database(path);
  sqlite.pragma('journal_mode = WAL');
  // FULL: a commit is on disk before it returns. Group commits lower this to
  // NORMAL for their own transaction and wait for a WalSync instead (see below).
  sqlite.pragma('synchronous = FULL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  const db = drizzle(sqlite, { schema });
  try {
    refuseNewerSchema(sqlite);
  } catch (e) {
    sqlite.close();
    throw e;
  }
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

/** Another service process holds the database (see lockDatabase). */
export class DatabaseInUseError extends Error {}

/**
 * Holds the database file for this process: a second service process on the same file is refused before it
 * migrates anything. Each process keeps its scopes' simulated caches, pending write premiums and rendered
 * requests in memory, so two would each miss the other's calls (a read of the other's write counted as `bonus`).
 * The lock is SQLite's own (a POSIX lock on `<database>-lock`, held in an open exclusive transaction): the
 * kernel releases it when the process ends, however it ends, so a crash leaves nothing to clean up.
 * Readers of the database itself (a backup) are not held up.
 */
export function lockDatabase(path: string): { release(): void } {
  if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
  // The file's own name, so two spellings of its path (a symlink) are one lock.
  const lockPath = `${realpathSync(path)}-lock`;
  if (!existsSync(lockPath)) closeSync(openSync(lockPath, 'a', 0o600));
  const lock = new Database(lockPath, { timeout: 0 });
  try {
    lock.exec('BEGIN EXCLUSIVE');
  } catch (e) {
    lock.close();
    if ((e as { code?: string }).code === 'SQLITE_BUSY')
      throw new DatabaseInUseError(
        `another prefix-handles process is serving the database ${path} (it holds ${lockPath}): one process per database, ` +
          `since each keeps its cache simulation in memory and two would misreport each other's calls; stop that one, or give this one its own PH_DATA_DIR`,
      );
    throw e;
  }
  return { release: () => lock.close() };
}

/** The database opened and migrated under this process's lock (taken first: nothing is migrated under another process); closing releases it. */
export function openLocked(path: string): OpenedDb {
  const lock = lockDatabase(path);
  try {
    const opened = openDb(path);
    return { ...opened, close: () => (opened.close(), lock.release()) };
  } catch (err) {
    lock.release();
    throw err;
  }
}

/** A backup that could not be made (no such database, a destination that exists, a failed check). */
export class BackupError extends Error {}

/**
 * A consistent copy of a database, safe while the service writes to it: SQLite's `VACUUM INTO` reads one snapshot
 * (a read transaction: in WAL mode the service's commits go on meanwhile) and writes it to `dest` as one compact
 * file, which is then checked. Copying the files instead is not safe: the database file alone lacks the commits
 * still in its `-wal`, and the two copied one after the other need not be of one moment.
 */
export function backupDatabase(source: string, dest: string): { bytes: number; check: string } {
  if (!existsSync(source)) throw new BackupError(`no database at ${source}`);
  // Made here, empty, as the database is: readable by its owner only (SQLite would create it world-readable).
  // VACUUM INTO writes into an empty file; 'wx' never takes one that exists.
  try {
    closeSync(openSync(dest, 'wx', 0o600));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new BackupError(`${dest} exists: a backup never overwrites a file`);
    throw e;
  }
  // Read-only: a backup never writes the live database (nor migrates, nor checkpoints it).
  try {
    const sqlite = new Database(source, { readonly: true, fileMustExist: true });
    try {
      sqlite.pragma('busy_timeout = 5000');
      sqlite.prepare('vacuum into ?').run(dest);
    } finally {
      sqlite.close();
    }
  } catch (e) {
    rmSync(dest, { force: true });
    throw e;
  }
  const copy = new Database(dest, { readonly: true, fileMustExist: true });
  try {
    const check = (copy.pragma('quick_check') as Array<{ quick_check: string }>).map((r) => r.quick_check).join('; ');
    if (check !== 'ok') throw new BackupError(`the copy at ${dest} failed its check: ${check}`);
    return { bytes: statSync(dest).size, check };
  } finally {
    copy.close();
  }
}

/** A database a newer version of the service migrated: this version would misread what that one wrote. */
export class NewerSchemaError extends Error {}

/**
 * Refuses a database that has a migration this version does not know. Drizzle's migrator applies only
 * migrations newer than the database's last and says nothing of newer ones, so an older version of the code
 * would run on a newer schema: reads that seem right, writes the newer version then misreads (an older
 * version fails on every report that reads a newer write premium, and its requests are never indexed by handle).
 */
function refuseNewerSchema(sqlite: Database.Database): void {
  const table = sqlite.prepare("select 1 from sqlite_master where type = 'table' and name = '__drizzle_migrations'").get();
  if (!table) return;
  const known = readMigrationFiles({ migrationsFolder: MIGRATIONS });
  const last = Math.max(0, ...known.map((m) => m.folderMillis));
  const newest = sqlite.prepare('select max(created_at) from __drizzle_migrations').pluck().get() as number | string | null;
  if (newest !== null && Number(newest) > last)
    throw new NewerSchemaError(
      `the database was migrated by a newer version of prefix-handles (a migration of ${new Date(Number(newest)).toISOString()}; ` +
        `this version's last is of ${new Date(last).toISOString()}): start that version, or a backup taken before it ran`,
    );
}

/**
 * Makes committed WAL frames durable without blocking the event loop: an
 * fdatasync of the -wal file on libuv's thread pool. A transaction committed
 * under synchronous=NORMAL is in the WAL but maybe only in the page cache;
 * once a sync that began after its commit has finished, it is on disk exactly
 * as synchronous=FULL would have left it. Syncs are coalesced: while one runs,
 * every caller shares the single next one.
 *
 * A failed sync is final: the kernel may have dropped the unsynced pages and
 * reports that only once, and WAL recovery stops at the first missing frame,
 * so nothing committed after it could be promised either (PostgreSQL stops
 * for the same reason). Every later sync fails with the first error.
 */
export class WalSync {
  /** The WAL file synced, or null when there is nothing to sync. */
  readonly path: string | null;
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  /** Opened once: SQLite never removes the WAL while this connection is open. */
  private fd: number | null = null;
  private failure: Error | null = null;
  private closed = false;

  constructor(sqlite: Database.Database) {
    // The file SQLite writes (symlinks resolved, absolute); '' for in-memory and temporary databases.
    const main = (sqlite.pragma('database_list') as Array<{ name: string; file: string }>).find((d) => d.name === 'main');
    this.path = main?.file ? `${main.file}-wal` : null;
  }

  /** The failure that ended durable writes (see the class comment), or null. */
  get failed(): Error | null {
    return this.failure;
  }

  /** Resolves once everything committed before the call is on disk. */
  sync(): Promise<void> {
    const path = this.path;
    if (path === null) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    if (this.next) return this.next;
    if (!this.running) return this.start(path);
    // The running sync may have begun before the caller's commit: one more follows it.
    this.next = this.running.catch(() => undefined).then(() => {
      this.next = null;
      return this.failure ? Promise.reject(this.failure) : this.start(path);
    });
    return this.next;
  }

  private start(path: string): Promise<void> {
    const run: Promise<void> = this.syncFile(path)
      .catch((e: unknown) => {
        this.failure ??= new Error(`the database's WAL could not be synced to disk; writes are refused from now on (${e instanceof Error ? e.message : String(e)})`);
        throw this.failure;
      })
      .finally(() => {
        if (this.running === run) this.running = null;
      });
    this.running = run;
    return run;
  }

  private async syncFile(path: string): Promise<void> {
    if (this.closed) throw new Error('the database is closed');
    // Called only after a commit, so the WAL exists: a missing file is an error, never "nothing to sync".
    this.fd ??= await openFile(path, 'r');
    await syncData(this.fd);
  }

  /** With the connection: a sync still running finishes on its descriptor first; none starts after. */
  close(): void {
    this.closed = true;
    const fd = this.fd;
    this.fd = null;
    if (fd !== null) void (this.running ?? Promise.resolve()).catch(() => undefined).finally(() => close(fd, () => undefined));
  }
}

const openFile = promisify(open);
const syncData = promisify(fdatasync);
