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

/**
 * What a start says when PH_TIME_ZONE names a zone no tenant has and it made no tenant: the variable sets only the zone
 * of the default tenant a first start makes, so on an existing database (one made before zones, whose tenants are
 * UTC) or with PH_ADMIN_KEY it changes nothing, and without a word the operator would think its days were moved.
 */
export function timeZoneUnused(tenants: TenantService, zone: string, made: boolean): string | undefined {
  if (made) return undefined;
  const listed = tenants.list();
  if (listed.some((t) => t.time_zone === zone)) return undefined;
  const how = `a tenant's zone is set by \`prefix-handles tenants rename <tenant-id> --time-zone ${zone}\` (PATCH /v1/tenants/{id}, with PH_ADMIN_KEY) until it has a reconciled request, after which a new tenant in the zone (tenants create --time-zone) is the way: see Time zones in the README`;
  if (listed.length === 0) return `PH_TIME_ZONE=${zone} set no tenant's zone: it is the zone of the default tenant a first start makes, and none is made with PH_ADMIN_KEY set; ${how}`;
  const shown = listed.slice(0, 3).map((t) => `${t.id} (${t.name}) in ${t.time_zone}`).join(', ');
  return `PH_TIME_ZONE=${zone} set no tenant's zone: it is the zone of the default tenant a first start makes, and this database has its tenants already: ${shown}${listed.length > 3 ? `, and ${listed.length - 3} more` : ''}; ${how}`;
}
