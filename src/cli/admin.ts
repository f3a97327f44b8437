// What the tenants and keys commands act through: the service's admin API (PH_ADMIN_KEY), or, with --offline,
// the database file itself while the service is stopped (the same domain code the service runs).
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { IssuedKey, TenantListing } from '../domain/tenants';
import type { TenantDeletionProgress, TenantDeletionResult } from '../domain/tenant-deletion';
import type { PruneAnswer } from '../domain/retention';
import { ApiError, createApi, seg } from './api';
import { baseUrl, CliError, UsageError, type Options, type Values } from './command';
import { printable, when } from './table';

export interface Admin {
  list(): Promise<TenantListing[]>;
  /** The tenants and the deletions not finished, what is left of each: GET /v1/tenants' `tenants` and `deleting`, one call. */
  listWithDeletions(): Promise<{ tenants: TenantListing[]; deleting: TenantDeletionProgress[] }>;
  /** Works on the database file (--offline), not through the service. */
  offline: boolean;
  createTenant(name: string, timeZone?: string): Promise<IssuedKey>;
  /** A new name, a new time zone (until the tenant has a reconciled request) or both. */
  renameTenant(tenantId: string, change: { name?: string; time_zone?: string }): Promise<TenantListing>;
  /** Deletes the tenant and all its data; `confirm`: its name. */
  deleteTenant(tenantId: string, confirm: string): Promise<TenantDeletionResult>;
  issueKey(tenantId: string): Promise<IssuedKey>;
  rotateKey(keyId: string): Promise<IssuedKey>;
  revokeKey(keyId: string): Promise<void>;
  /** Deletes requests rendered more than `days` days ago with their detail (POST /v1/prune). */
  prune(days: number): Promise<PruneAnswer>;
  /** The api-key file the service writes on its first start, where the other commands find a key. */
  keyFile: string;
  close(): void;
}


export const ADMIN_OPTIONS = {
  url: { type: 'string' },
  key: { type: 'string' },
  offline: { type: 'boolean' },
  'data-dir': { type: 'string' },
  json: { type: 'boolean' },
} satisfies Options;

export const ADMIN_HELP = `Options:
  --json            the API's JSON instead of text
  --url URL         service base URL (env PH_URL; default http://HOST:PORT when those are set, as for the service, else http://127.0.0.1:8787)
  --key KEY         the service's admin key (env PH_ADMIN_KEY, as the service reads it;
                    a tenant's key, PH_API_KEY or the api-key file, is not one)
  --offline         work on the database file instead, with the service stopped (refused
                    while it runs): for when no admin key is at hand, or the service is down
  --data-dir DIR    with --offline: the service's data directory (env PH_DATA_DIR; default
                    ./data); PH_DATABASE names the file itself, as for the service`;

/**
 * The admin API, or with --offline the database; both answer the same and fail with the same `code: detail`. The
 * database's code (SQLite, the domain, the catalog: about half a second of start-up) is imported for --offline only.
 */
export async function openAdmin(values: Values): Promise<Admin> {
  if (values.offline) {
    for (const flag of ['url', 'key'])
      if (values[flag] !== undefined) throw new UsageError(`--${flag} is for the API; --offline works on the database file (see --data-dir)`);
    const { offline } = await import('./offline');
    return offline(values['data-dir'] as string | undefined);
  }
  if (values['data-dir'] !== undefined) throw new UsageError('--data-dir is for --offline; without it the command goes through the service (--url)');
  return online(baseUrl(values.url as string | undefined), values.key as string | undefined);
}

function online(url: string, flag: string | undefined): Admin {
  const key = flag ?? process.env.PH_ADMIN_KEY;
  if (!key) throw new CliError(`no admin key: pass --key or set PH_ADMIN_KEY to the service's own (with the service stopped, --offline works on its database instead)`);
  const api = createApi(url, key);
  // A refused key says what these commands take, and the way round it.
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    try {
      return await api.json<T>(method, path, body);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401)
        throw new CliError(
          `${err.message}\n(these commands take the service's PH_ADMIN_KEY, by --key or env PH_ADMIN_KEY; a service started without one has no admin routes: restart it with one, or stop it and use --offline)`,
        );
      throw err;
    }
  };
  return {
    list: async () => (await call<{ tenants: TenantListing[] }>('GET', '/v1/tenants')).tenants,
    listWithDeletions: async () => {
      const body = await call<{ tenants: TenantListing[]; deleting?: TenantDeletionProgress[] }>('GET', '/v1/tenants');
      // A service from before deletions were listed has none to list.
      return { tenants: body.tenants, deleting: body.deleting ?? [] };
    },
    offline: false,
    createTenant: (name, timeZone) => call<IssuedKey>('POST', '/v1/tenants', timeZone === undefined ? { name } : { name, time_zone: timeZone }),
    renameTenant: (tenantId, change) => call<TenantListing>('PATCH', `/v1/tenants/${seg(tenantId)}`, change),
    deleteTenant: (tenantId, confirm) => call<TenantDeletionResult>('DELETE', `/v1/tenants/${seg(tenantId)}?confirm=${encodeURIComponent(confirm)}`),
    issueKey: (tenantId) => call('POST', `/v1/tenants/${seg(tenantId)}/keys`),
    rotateKey: (keyId) => call('POST', `/v1/keys/${seg(keyId)}/rotate`),
    revokeKey: async (keyId) => void (await call('DELETE', `/v1/keys/${seg(keyId)}`)),
    prune: (days) => call<PruneAnswer>('POST', '/v1/prune', { older_than_days: days }),
    // Where the other commands look for a key (PH_DATA_DIR, else ./data), as they do.
    keyFile: join(resolve(process.env.PH_DATA_DIR ?? './data'), 'api-key'),
    close: () => undefined,
  };
}

/**
 * The api-key file after `old` was rotated (`next`) or revoked: a file still holding the old key would make every
 * command that reads it a 401. A rotation puts the new key of the same tenant in its place; a revocation says so.
 * The file is recognised by the old key's hint (its first characters; the secret itself is never kept).
 */
export function followKeyFile(file: string, oldHint: string, next?: IssuedKey): void {
  let held: string;
  try {
    held = readFileSync(file, 'utf8').trim();
  } catch {
    return;
  }
  if (!held.startsWith(oldHint)) return;
  if (next) {
    writeFileSync(file, `${next.api_key}\n`);
    process.stderr.write(`${file} held the rotated key: it holds the new one now\n`);
  } else {
    process.stderr.write(`${file} holds the key just revoked: commands that read it get 401 until it holds another key of the tenant, or is removed\n`);
  }
}


/** A new key: the whole answer with --json, else a line per field; either way the secret is shown this once. */
export function printIssued(values: Values, issued: IssuedKey, about: { name?: string; time_zone?: string; replaces?: string } = {}): void {
  if (values.json) {
    process.stdout.write(`${JSON.stringify(issued, null, 2)}\n`);
  } else {
    const lines: Array<[string, string | undefined]> = [
      ['tenant', issued.tenant],
      ['name', about.name],
      ['zone', about.time_zone],
      ['key', issued.id],
      ['replaces', about.replaces && `${about.replaces} (revoked)`],
      ['created', when(issued.created_at)],
      ['api key', issued.api_key],
    ];
    process.stdout.write(lines.map(([k, v]) => (v === undefined ? '' : `${k.padEnd(9)}${printable(v)}\n`)).join(''));
  }
  process.stderr.write(`the API key ${issued.id} is shown this once: the service keeps only its hash; store it now\n`);
}
