import { closeSync, fchmodSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { TenantService } from './domain/tenants';

/**
 * First start with no keys and no PH_ADMIN_KEY: create a default tenant (its days in PH_TIME_ZONE's zone) and
 * leave its key in <data dir>/api-key (0600), so a new user can call the API at once.
 */
export function bootstrapDefaultKey(tenants: TenantService, keyFile: string, adminKey: string | undefined, timeZone?: string): { file: string; tenant: string; key: string } | null {
  if (adminKey || tenants.hasAnyKey()) return null;
  // The file is opened before the tenant is made: a key that cannot be written down must not exist (the next
  // start would find a key, make none, and nobody would hold it).
  mkdirSync(dirname(keyFile), { recursive: true });
  const fd = openSync(keyFile, 'w', 0o600);
  try {
    fchmodSync(fd, 0o600);
    const issued = tenants.createTenant('default', timeZone);
    writeSync(fd, `${issued.api_key}\n`);
    return { file: keyFile, tenant: issued.tenant, key: issued.id };
  } finally {
    closeSync(fd);
  }
}
