// --offline: the admin commands on the database file itself while the service is stopped (the same domain code the
// service runs), imported by openAdmin only then.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../config';
import { DAY_MS, systemClock } from '../domain/clock';
import { DomainError } from '../domain/errors';
import { TenantService } from '../domain/tenants';
import { TenantDeletion } from '../domain/tenant-deletion';
import { CatalogError, loadCatalog, ModelCatalog } from '../domain/catalog/catalog';
import { pruneAnswer, RequestRetention } from '../domain/retention';
import { DatabaseInUseError, NewerSchemaError, openLocked } from '../store/db';
import { SqliteStore } from '../store/sqlite-store';
import type { Admin } from './admin';
import { CliError, UsageError } from './command';

export function offline(dataDir: string | undefined): Admin {
  let databasePath: string;
  let serviceDir: string;
  try {
    // The file the service would open with the same settings.
    ({ databasePath, dataDir: serviceDir } = loadConfig({ PH_DATA_DIR: dataDir ?? process.env.PH_DATA_DIR, PH_DATABASE: process.env.PH_DATABASE }));
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message.replace(/\n\s*/g, ' '));
    throw err;
  }
  if (databasePath === ':memory:') throw new CliError('--offline: PH_DATABASE is :memory:, which has no file');
  // Never a new, empty database (a mistyped directory): the service makes it, with its default tenant.
  if (!existsSync(databasePath)) throw new CliError(`--offline: no database at ${databasePath} (the service makes it on its first start; see --data-dir)`);
  let opened: ReturnType<typeof openLocked>;
  try {
    // The service's own lock: it holds the authentication caches, so a key changed under it could stay valid there.
    opened = openLocked(databasePath);
  } catch (err) {
    if (err instanceof DatabaseInUseError)
      throw new CliError(`--offline: the service is running on ${databasePath}: go through it (without --offline, with its PH_ADMIN_KEY), or stop it first`);
    throw new CliError(err instanceof NewerSchemaError ? err.message : `--offline: cannot open the database ${databasePath}: ${(err as Error).message}`);
  }
  const store = new SqliteStore(opened.db, opened.walSync, systemClock);
  const tenants = new TenantService(store, systemClock);
  // Pruning keeps what a cache TTL still needs: the TTLs of the catalog the service reads.
  const retention = () => {
    try {
      return new RequestRetention({ store, clock: systemClock, catalog: new ModelCatalog(loadCatalog(process.env.PH_CATALOG_FILE)), retentionDays: 0 });
    } catch (err) {
      if (err instanceof CatalogError) throw new CliError(err.message);
      throw err;
    }
  };
  // Said as the API says it (`not_found: key … does not exist`).
  const said = (err: unknown) => Promise.reject(err instanceof DomainError ? new CliError(`${err.code}: ${err.message}`) : err);
  const act = <T>(f: () => T | Promise<T>): Promise<T> => {
    try {
      return Promise.resolve(f()).catch(said);
    } catch (err) {
      return said(err);
    }
  };
  return {
    list: () => act(() => tenants.list()),
    listWithDeletions: () => act(() => ({ tenants: tenants.list(), deleting: new TenantDeletion({ store, forget: () => {} }).progress() })),
    offline: true,
    createTenant: (name, timeZone) => act(() => tenants.createTenant(name, timeZone)),
    renameTenant: (tenantId, change) => act(() => tenants.renameTenant(tenantId, change)),
    // Nothing else runs on the file: only the authentication cache of this process to drop.
    deleteTenant: (tenantId, confirm) => act(() => new TenantDeletion({ store, forget: () => tenants.forgetKeys() }).delete(tenantId, confirm)),
    issueKey: (tenantId) => act(() => tenants.issueKey(tenantId)),
    rotateKey: (keyId) => act(() => tenants.rotateKey(keyId)),
    revokeKey: (keyId) => act(() => tenants.revokeKey(keyId)),
    prune: async (days) => {
      return pruneAnswer(await retention().prune(days * DAY_MS));
    },
    keyFile: join(serviceDir, 'api-key'),
    // Every write is committed at synchronous=FULL; closing checkpoints the WAL, then the service may start.
    close: () => opened.close(),
  };
}
