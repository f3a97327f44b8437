import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { TenantService } from './domain/tenants';

/**
 * First start with no keys and no PH_ADMIN_KEY: create a default tenant and
 * leave its key in <data dir>/api-key (0600), so a new user can call the API at once.
 */
export function bootstrapDefaultKey(tenants: TenantService, keyFile: string, adminKey: string | undefined): string | null {
  if (adminKey || tenants.hasAnyKey()) return null;
  const issued = tenants.createTenant('default');
  mkdirSync(dirname(keyFile), { recursive: true });
  writeFileSync(keyFile, `${issued.api_key}\n`, { mode: 0o600 });
  chmodSync(keyFile, 0o600);
  return keyFile;
}
