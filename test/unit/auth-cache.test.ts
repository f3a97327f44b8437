// The authentication cache's policy: keys that exist stay cached under a flood of keys that do not (random bad keys
// flushed every valid one before: one map for both, cleared whole at 10,000 entries). Counted by the lookups the
// store is asked for, on a real database.
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/domain/clock';
import { DomainError } from '../../src/domain/errors';
import { TenantService } from '../../src/domain/tenants';
import { openDb, type OpenedDb } from '../../src/store/db';
import { SqliteStore } from '../../src/store/sqlite-store';

let opened: OpenedDb;
let store: SqliteStore;
let lookups: number;
beforeEach(() => {
  opened = openDb(':memory:');
  store = new SqliteStore(opened.db, opened.walSync, systemClock);
  lookups = 0;
  const find = store.findApiKeyByHash.bind(store);
  store.findApiKeyByHash = (hash) => (lookups++, find(hash));
});
afterEach(() => opened.close());

const refused = (tenants: TenantService, secret: string) => {
  try {
    tenants.authenticate(secret);
  } catch (err) {
    return err instanceof DomainError && err.code === 'unauthorized';
  }
  return false;
};

describe('the authentication cache', () => {
  it('keeps every valid key (more than the 1,000 recent secrets it remembers) through a flood of 12,000 bad keys', () => {
    const tenants = new TenantService(store, systemClock);
    const tenant = tenants.createTenant('acme');
    const keys = [tenant.api_key, ...Array.from({ length: 1_099 }, () => tenants.issueKey(tenant.tenant).api_key)];
    for (const key of keys) expect(tenants.authenticate(key).tenantId).toBe(tenant.tenant);
    expect(lookups).toBe(keys.length);

    for (let i = 0; i < 12_000; i++) expect(refused(tenants, `phk_${randomBytes(24).toString('base64url')}`)).toBe(true);
    lookups = 0;
    for (const key of keys) expect(tenants.authenticate(key).tenantId).toBe(tenant.tenant);
    expect(lookups).toBe(0);
  });

  it('remembers a bad key too (no lookup when it comes again), within its own bound', () => {
    const tenants = new TenantService(store, systemClock);
    const bad = 'phk_not-a-key-at-all';
    expect(refused(tenants, bad)).toBe(true);
    expect(refused(tenants, bad)).toBe(true);
    expect(lookups).toBe(1);
    // Past the bound, the oldest bad keys not seen again are let go (and looked up again), never kept without limit.
    const once = 'phk_seen-once';
    refused(tenants, once);
    for (let i = 0; i < 10_000; i++) refused(tenants, `phk_bad_${i}`);
    lookups = 0;
    expect(refused(tenants, once)).toBe(true);
    expect(lookups).toBe(1);
  });

  it('a revoked key is refused as revoked from the cache, after the revocation clears it', () => {
    const tenants = new TenantService(store, systemClock);
    const tenant = tenants.createTenant('acme');
    tenants.authenticate(tenant.api_key);
    tenants.revokeKey(tenant.id);
    expect(() => tenants.authenticate(tenant.api_key)).toThrow(/revoked/);
    lookups = 0;
    expect(() => tenants.authenticate(tenant.api_key)).toThrow(/revoked/);
    expect(lookups).toBe(0);
  });
});
