import { randomBytes } from 'node:crypto';
import { DELETING_NAME, type ApiKeyRow, type Store, type TenantRow } from '../store/store';
import type { Clock } from './clock';
import { sha256Hex } from './digest';
import { DomainError, invalid, notFound } from './errors';
import { newId } from './ids';
import { Lru } from './lru';
import { canonicalZone, UTC, zoneRefusal } from './time-zone';

export interface IssuedKey {
  id: string;
  tenant: string;
  /** The secret, shown once. */
  api_key: string;
  created_at: string;
}

/** A tenant and its keys as the operator sees them: never a secret, only its first characters. */
export interface TenantListing {
  id: string;
  name: string;
  /** Other tenants with the same name (made before names were unique), oldest first; empty when it is unique. */
  same_name_as: string[];
  /** The IANA time zone its days are counted in. */
  time_zone: string;
  created_at: string;
  keys: Array<{ id: string; hint: string; created_at: string; revoked_at: string | null }>;
}

export interface AuthContext {
  tenantId: string;
  keyId: string;
}

/**
 * A tenant's name as an operator reads it, for comparison: `Acme`, `acme` and ` acme ` are one name. Unicode NFC,
 * characters that draw nothing dropped (a zero-width space, a soft hyphen, a BOM: `Acme` and `Acme\u200b` look alike),
 * lower case, surrounding whitespace dropped and each run of whitespace inside read as one space. The name is stored
 * as given.
 */
export function tenantNameKey(name: string): string {
  return name.normalize('NFC').replace(/\p{Default_Ignorable_Code_Point}/gu, '').trim().replace(/\s+/g, ' ').toLowerCase();
}

/** A name's comparison key, refused when blank: it could not be told from another blank name, and every later blank one would be "taken". */
function nameKeyOf(name: string): string {
  const key = tenantNameKey(name);
  if (key === '') throw invalid('/name', "a tenant's name is blank: give it one that people can tell apart");
  return key;
}

function nameTaken(taken: TenantRow, then: string): DomainError {
  return new DomainError(
    'tenant_name_taken',
    `tenant ${taken.id} is already named ${JSON.stringify(taken.name)} (names are compared ignoring case and extra whitespace): ${then}`,
    { tenant: taken.id },
  );
}

/** A zone as stored (see canonicalZone), refused at `path` when Intl knows no such zone. */
export function zoneOrRefuse(zone: string, path: string): string {
  const known = canonicalZone(zone);
  if (known === undefined) throw invalid(path, `${JSON.stringify(zone)} ${zoneRefusal(zone)}`);
  return known;
}

/** The zone a tenant asked to leave (`has`, with its reconciled requests' days) for `wanted`: both named. */
function zoneFixed(tenant: TenantRow, wanted: string): DomainError {
  return new DomainError(
    'time_zone_fixed',
    `tenant ${tenant.id} has reconciled requests, counted in the days of ${tenant.timeZone}, its time zone: days of ${wanted} would be mixed with them in every report, so its zone stays ${tenant.timeZone}. To count days in ${wanted}, create a new tenant with it (POST /v1/tenants with time_zone, or prefix-handles tenants create <name> --time-zone ${wanted})`,
    { tenant: tenant.id },
  );
}

/** The tenant, unless there is none or it is being deleted (see DELETING_NAME). */
function live(tenant: TenantRow | undefined): TenantRow | undefined {
  return tenant && tenant.name !== DELETING_NAME ? tenant : undefined;
}

export function hashApiKey(secret: string): string {
  return sha256Hex(secret);
}

function newSecret(): string {
  return `phk_${randomBytes(24).toString('base64url')}`;
}

/** Tenants and their API keys. Keys are stored hashed; the secret leaves exactly once. */
export class TenantService {
  // Authentication runs on every request: remember resolved keys by their hash (revocation clears
  // this), and recently seen secrets so the hot path skips even the hash. Keys found (valid or revoked) and
  // secrets that are no key are remembered apart, each bounded (second-chance eviction): a flood of random bad
  // keys evicts only other bad keys, never a valid one (one map for both was cleared whole at 10,000 entries).
  private readonly knownKeys = new Lru<string, AuthContext | { revokedAt: number }>(10_000);
  private readonly unknownKeys = new Lru<string, true>(10_000);
  private readonly recent = new Lru<string, AuthContext>(1_000);
  /**
   * Each tenant's time zone, read on every reconciliation and report: kept once it is fixed (the tenant has a rollup
   * row, so no process on the file can change it); until then read from the database each time, so a change another
   * service process on the same file made counts here at once. A deleted tenant's is forgotten.
   */
  private readonly zones = new Map<string, string>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    /** Whether a reconciled call of the tenant waits in the write queue (WriteQueue.reconciling): its rollup row is coming. */
    private readonly reconciling: (tenantId: string) => boolean = () => false,
  ) {}

  /** Refused when another tenant has the same name (see tenantNameKey): a retried creation must not make a second tenant. */
  createTenant(name: string, timeZone: string = UTC): IssuedKey {
    const tenantId = newId('tenant');
    const { row, issued } = this.newKey(tenantId);
    const wanted = nameKeyOf(name);
    const zone = zoneOrRefuse(timeZone, '/time_zone');
    const taken = this.store.createTenant({ id: tenantId, name, createdAt: row.createdAt, timeZone: zone }, row, (other) => tenantNameKey(other) === wanted);
    if (taken) throw nameTaken(taken, `to give it another key, POST /v1/tenants/${taken.id}/keys; else choose another name`);
    return issued;
  }

  /**
   * A new name, under creation's rules: refused when another tenant has it (its own name in another case or spacing
   * is not another's); and/or a new time zone, refused once the tenant has a reconciled request (its days are counted
   * in the zone it had: see zoneFixed). Checked and written in one transaction.
   */
  renameTenant(tenantId: string, change: { name?: string; time_zone?: string }): TenantListing {
    const wanted = change.name === undefined ? undefined : nameKeyOf(change.name);
    const timeZone = change.time_zone === undefined ? undefined : zoneOrRefuse(change.time_zone, '/time_zone');
    // A call reconciled in this process, its day taken in the zone it has, whose rollup row is not committed yet: the
    // zone is as fixed as by the row (checked in the same turn as the transaction below, so none is queued between).
    if (timeZone !== undefined && this.reconciling(tenantId)) {
      const tenant = this.store.getTenant(tenantId);
      if (tenant && timeZone !== tenant.timeZone) throw zoneFixed(tenant, timeZone);
    }
    const result = this.store.renameTenant(tenantId, { name: change.name, timeZone }, (tenant, others) =>
      // Tenants that earlier versions let share a name: keeping that name (in another case) makes no new pair.
      wanted === tenantNameKey(tenant.name) ? undefined : others.find((o) => tenantNameKey(o.name) === wanted),
    );
    if ('missing' in result) throw notFound(`tenant ${tenantId}`);
    if ('taken' in result) throw nameTaken(result.taken, 'choose another name');
    if ('zoneFixed' in result) throw zoneFixed(result.zoneFixed, timeZone!);
    this.zones.delete(tenantId);
    const listed = this.list().find((t) => t.id === tenantId);
    if (!listed) throw notFound(`tenant ${tenantId}`);
    return listed;
  }

  issueKey(tenantId: string): IssuedKey {
    if (!live(this.store.getTenant(tenantId))) throw notFound(`tenant ${tenantId}`);
    const { row, issued } = this.newKey(tenantId);
    this.store.insertApiKey(row);
    return issued;
  }

  revokeKey(keyId: string): void {
    const key = this.store.getApiKey(keyId);
    if (!key) throw notFound(`key ${keyId}`);
    this.store.revokeApiKey(keyId, this.clock.now());
    this.forgetKeys();
  }

  /** Rotation: a new key for the same tenant, and the old one revoked, in one transaction (both or neither). */
  rotateKey(keyId: string): IssuedKey {
    const key = this.store.getApiKey(keyId);
    if (!key) throw notFound(`key ${keyId}`);
    const { row, issued } = this.newKey(key.tenantId);
    // A revoked key exists (DELETE on it still answers 204), but has nothing left to hand over.
    if (key.revokedAt !== null || !this.store.rotateApiKey(keyId, row, row.createdAt))
      throw new DomainError('conflict', `key ${keyId} was revoked: it cannot be rotated; issue a new key for its tenant (POST /v1/tenants/${key.tenantId}/keys)`);
    this.forgetKeys();
    return issued;
  }

  private newKey(tenantId: string): { row: ApiKeyRow; issued: IssuedKey } {
    const now = this.clock.now();
    const secret = newSecret();
    const id = newId('key');
    return {
      row: { id, tenantId, keyHash: hashApiKey(secret), hint: secret.slice(0, 12), createdAt: now, revokedAt: null },
      issued: { id, tenant: tenantId, api_key: secret, created_at: new Date(now).toISOString() },
    };
  }

  /** After a revocation (or a tenant's keys deleted with it): authentication reads the key's row again. */
  forgetKeys(): void {
    this.knownKeys.clear();
    this.unknownKeys.clear();
    this.recent.clear();
  }

  /** Every tenant and its keys: the ids that rotate and revoke take (a key's secret is never kept, only its hint). */
  list(): TenantListing[] {
    const iso = (ms: number) => new Date(ms).toISOString();
    // A tenant being deleted is gone for every route already.
    const listed = this.store.listTenants().filter(({ tenant }) => live(tenant));
    // Tenants duplicated by versions before names were unique: each names the others, so the operator finds them.
    const byName = new Map<string, string[]>();
    for (const { tenant } of listed) byName.set(tenantNameKey(tenant.name), [...(byName.get(tenantNameKey(tenant.name)) ?? []), tenant.id]);
    return listed.map(({ tenant, keys }) => ({
      id: tenant.id,
      name: tenant.name,
      same_name_as: byName.get(tenantNameKey(tenant.name))!.filter((id) => id !== tenant.id),
      time_zone: tenant.timeZone,
      created_at: iso(tenant.createdAt),
      keys: keys.map((k) => ({ id: k.id, hint: k.hint, created_at: iso(k.createdAt), revoked_at: k.revokedAt === null ? null : iso(k.revokedAt) })),
    }));
  }

  /** The IANA zone a tenant's days are counted in ('UTC' for one not found: a report refuses it elsewhere). */
  zoneOf(tenantId: string): string {
    let zone = this.zones.get(tenantId);
    if (zone === undefined) {
      // Whether it is fixed first, then the zone: read the other way, a zone another process changed and fixed in
      // between would be kept as the one read before.
      const fixed = this.store.tenantHasRollups(tenantId);
      zone = this.store.getTenant(tenantId)?.timeZone ?? UTC;
      if (fixed) this.zones.set(tenantId, zone);
    }
    return zone;
  }

  /** A tenant deleted: its zone is not kept. */
  forgetTenant(tenantId: string): void {
    this.zones.delete(tenantId);
  }

  hasAnyKey(): boolean {
    return this.store.countApiKeys() > 0;
  }

  authenticate(secret: string): AuthContext {
    const seen = this.recent.get(secret);
    if (seen) return seen;
    const hash = hashApiKey(secret);
    let ctx = this.knownKeys.get(hash) ?? (this.unknownKeys.get(hash) ? null : undefined);
    if (ctx === undefined) {
      const row = this.store.findApiKeyByHash(hash);
      ctx = !row ? null : row.revokedAt === null ? { tenantId: row.tenantId, keyId: row.id } : { revokedAt: row.revokedAt };
      if (ctx) this.knownKeys.set(hash, ctx);
      else this.unknownKeys.set(hash, true);
    }
    if (!ctx) throw new DomainError('unauthorized', 'the API key is not valid');
    // Its holder had it: saying it was revoked (after a rotation, say) tells them what to do, and nobody else anything.
    if ('revokedAt' in ctx)
      throw new DomainError('unauthorized', `the API key was revoked on ${new Date(ctx.revokedAt).toISOString()}: use the key that replaced it, or ask the operator for a new one`);
    this.recent.set(secret, ctx);
    return ctx;
  }
}
