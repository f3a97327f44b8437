// `prefix-handles tenants` and `keys` as operators run them: the CLI entry as a child process, against the service
// run as a child process (src/main.ts) on a real data directory, and with --offline on its database file.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runNode, startService, type ServiceProcess } from '../helpers/processes';
import { createTestApp } from '../helpers/app';

const ADMIN_KEY = 'an-operator-admin-key-4567';

/** Starts the service on `data`, its log off; resolves once it listens. */
const start = (data: string, env: Record<string, string> = {}) => startService(data, { PH_LOG: 'off', ...env });
const run = runNode;

const status = async (url: string, key: string) => (await fetch(`${url}/v1/handles`, { headers: { authorization: `Bearer ${key}` } })).status;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ph-admin-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('tenants and keys through the admin API', () => {
  let service: ServiceProcess;
  const cli = (args: string[], env: Record<string, string> = {}) => run([BIN, ...args], { PH_URL: service.url, PH_ADMIN_KEY: ADMIN_KEY, ...env });
  beforeAll(async () => {
    service = await start(join(dir, 'online'), { PH_ADMIN_KEY: ADMIN_KEY });
  });
  afterAll(async () => {
    await service.stop();
  });

  it('create, issue, rotate, revoke and list: each new secret printed once, each key working or refused as said, no secret in a listing', async () => {
    const created = await cli(['tenants', 'create', 'acme corp']);
    expect(created.code, created.err).toBe(0);
    const [, tenant, key1, secret1] = /^tenant {3}(ten_\w+)\nname {5}acme corp\nkey {6}(key_\w+)\ncreated {2}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\napi key {2}(phk_\S+)\n$/.exec(created.out) ?? [];
    expect(tenant, created.out).toBeDefined();
    expect(created.err).toBe(`the API key ${key1} is shown this once: the service keeps only its hash; store it now\n`);
    expect(await status(service.url, secret1!)).toBe(200);

    // One after the other: the listing below is in the order the keys were made.
    const issued = await cli(['keys', 'issue', tenant!, '--json']);
    const rotated = await cli(['keys', 'rotate', key1!]);
    expect(issued.code, issued.err).toBe(0);
    const second = JSON.parse(issued.out) as { id: string; tenant: string; api_key: string; created_at: string };
    expect(second).toEqual({ id: expect.stringMatching(/^key_/), tenant, api_key: expect.stringMatching(/^phk_/), created_at: expect.any(String) });
    expect(rotated.code, rotated.err).toBe(0);
    const [, key3, secret3] = new RegExp(`^tenant {3}${tenant}\\nkey {6}(key_\\w+)\\nreplaces ${key1} \\(revoked\\)\\ncreated {2}\\S+\\napi key {2}(phk_\\S+)\\n$`).exec(rotated.out) ?? [];
    expect(key3, rotated.out).toBeDefined();
    expect(await Promise.all([status(service.url, secret1!), status(service.url, second.api_key), status(service.url, secret3!)])).toEqual([401, 200, 200]);

    const revoked = await cli(['keys', 'revoke', second.id]);
    expect(revoked.code, revoked.err).toBe(0);
    expect(revoked.out).toMatch(new RegExp(`^revoked ${second.id} \\(tenant ${tenant}, hint ${second.api_key.slice(0, 12)}\\) on \\S+Z\\n$`));
    expect(await status(service.url, second.api_key)).toBe(401);
    // Revoking it again changes nothing, and says when it was revoked.
    const again = await cli(['keys', 'revoke', second.id, '--json']);
    expect(again.code, again.err).toBe(0);
    expect(JSON.parse(again.out)).toEqual({ tenant, id: second.id, hint: second.api_key.slice(0, 12), created_at: second.created_at, revoked_at: expect.any(String) });

    const [text, json] = await Promise.all([cli(['tenants']), cli(['tenants', 'list', '--json'])]);
    expect(text.code, text.err).toBe(0);
    const listed = (JSON.parse(json.out) as { tenants: Array<{ id: string; name: string; keys: Array<{ id: string; hint: string; revoked_at: string | null }> }> }).tenants;
    const acme = listed.find((x) => x.id === tenant)!;
    expect(acme.keys.map((k) => [k.id, k.revoked_at === null])).toEqual([[key1, false], [second.id, false], [key3, true]]);
    // The text: a row per key, the tenant on each, in the order the API lists them.
    const rows = text.out.split('\n').filter((l) => l.startsWith(tenant!));
    expect(rows.map((r) => r.split(/\s{2,}/))).toEqual([
      [tenant, 'acme corp', 'UTC', key1, secret1!.slice(0, 12), expect.stringMatching(/Z$/), expect.stringMatching(/^revoked \S+Z$/)],
      [tenant, 'acme corp', 'UTC', second.id, second.api_key.slice(0, 12), expect.stringMatching(/Z$/), expect.stringMatching(/^revoked \S+Z$/)],
      [tenant, 'acme corp', 'UTC', key3, secret3!.slice(0, 12), expect.stringMatching(/Z$/), 'active'],
    ]);
    expect(text.out).toMatch(/^tenant +name +time zone +key +hint +created +status\n/);
    const keys = listed.flatMap((x) => x.keys);
    const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
    expect(text.out.endsWith(`\n\n${count(listed.length, 'tenant')}, ${count(keys.length, 'key')} (${keys.filter((k) => k.revoked_at).length} revoked)\n`)).toBe(true);
    for (const secret of [secret1!, second.api_key, secret3!]) {
      expect(text.out).not.toContain(secret);
      expect(json.out).not.toContain(secret);
    }
  });

  it('errors: the service\'s code and detail with exit 1; a missing or wrong admin key says what these commands take; usage errors exit 2 before any call', async () => {
    const made = JSON.parse((await cli(['tenants', 'create', 'errors', '--json'])).out) as { id: string; tenant: string; api_key: string };
    await cli(['keys', 'revoke', made.id]);
    const [missingKey, missingTenant, revokedRotation, noKey, tenantKey, wrongKey] = await Promise.all([
      cli(['keys', 'revoke', 'key_AAAAAAAAAAAAAAAAAAAAA']),
      cli(['keys', 'issue', 'ten_AAAAAAAAAAAAAAAAAAAAA']),
      cli(['keys', 'rotate', made.id]),
      cli(['tenants'], { PH_ADMIN_KEY: '' }),
      // A tenant's key, where the other commands find one: not an admin key.
      cli(['tenants'], { PH_ADMIN_KEY: '', PH_API_KEY: made.api_key }),
      cli(['tenants', '--key', 'not-the-admin-key-0000']),
    ]);
    expect([missingKey.code, missingKey.out, missingKey.err]).toEqual([1, '', 'not_found: key key_AAAAAAAAAAAAAAAAAAAAA does not exist (path:id)\n']);
    expect([missingTenant.code, missingTenant.err]).toEqual([1, 'not_found: tenant ten_AAAAAAAAAAAAAAAAAAAAA does not exist (path:id)\n']);
    expect(revokedRotation.code).toBe(1);
    expect(revokedRotation.err).toMatch(new RegExp(`^conflict: key ${made.id} was revoked: it cannot be rotated`));
    expect(await status(service.url, made.api_key)).toBe(401);
    for (const r of [noKey, tenantKey]) expect([r.code, r.err]).toEqual([1, "no admin key: pass --key or set PH_ADMIN_KEY to the service's own (with the service stopped, --offline works on its database instead)\n"]);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.err).toBe(
      'unauthorized: admin routes need "Authorization: Bearer <PH_ADMIN_KEY>"\n' +
        "(these commands take the service's PH_ADMIN_KEY, by --key or env PH_ADMIN_KEY; a service started without one has no admin routes: restart it with one, or stop it and use --offline)\n",
    );

    const usage = await Promise.all([
      cli(['keys']),
      cli(['keys', 'rotate']),
      cli(['keys', 'renew', 'key_x']),
      cli(['tenants', 'create']),
      cli(['tenants', 'remove', 'x']),
      cli(['tenants', '--data-dir', dir]),
      cli(['tenants', '--offline', '--url', service.url]),
      cli(['tenants', 'create', 'x'.repeat(201)]),
    ]);
    expect(usage.map((r) => [r.code, r.err.split('\n')[0]])).toEqual([
      [2, 'prefix-handles: missing argument: prefix-handles keys issue|rotate|revoke <id>'],
      [2, 'prefix-handles: missing argument: prefix-handles keys rotate <key-id>'],
      [2, "prefix-handles: unknown action 'renew' (issue, rotate, revoke)"],
      [2, 'prefix-handles: missing argument: prefix-handles tenants create <name>'],
      [2, "prefix-handles: unknown action 'remove' (list, create, rename, delete)"],
      [2, 'prefix-handles: --data-dir is for --offline; without it the command goes through the service (--url)'],
      [2, 'prefix-handles: --url is for the API; --offline works on the database file (see --data-dir)'],
      [2, "prefix-handles: a tenant's name is 1 to 200 characters (got 201)"],
    ]);
    // Nothing was made by any of them.
    const names = (JSON.parse((await cli(['tenants', '--json'])).out) as { tenants: Array<{ name: string }> }).tenants.map((x) => x.name);
    expect(names.filter((n) => n === 'x' || n.startsWith('xx'))).toEqual([]);
  });
});

describe('tenants and keys --offline, on the database file', () => {
  it('refused while the service runs (nothing written); with it stopped, the file is changed, and the service started again honours it', async () => {
    const data = join(dir, 'offline');
    // The default start: no PH_ADMIN_KEY, so no admin routes, a default tenant and its key in the api-key file.
    const first = await start(data);
    const defaultKey = readFileSync(join(data, 'api-key'), 'utf8').trim();
    const cli = (args: string[], env: Record<string, string> = {}) => run([BIN, ...args], { PH_DATA_DIR: data, ...env });
    const [locked, online] = await Promise.all([cli(['tenants', 'create', 'locked-out', '--offline']), cli(['tenants', '--key', ADMIN_KEY, '--url', first.url])]);
    expect([locked.code, locked.out, locked.err]).toEqual([1, '', `--offline: the service is running on ${data}/prefix-handles.db: go through it (without --offline, with its PH_ADMIN_KEY), or stop it first\n`]);
    expect([online.code, online.err.split('\n')[0]]).toEqual([1, 'unauthorized: admin routes are disabled: PH_ADMIN_KEY is not set']);
    expect(await first.stop()).toBe(0);

    const listed = await cli(['tenants', '--offline', '--json']);
    expect(listed.code, listed.err).toBe(0);
    const [dflt] = (JSON.parse(listed.out) as { tenants: Array<{ id: string; name: string; keys: Array<{ id: string; hint: string }> }> }).tenants;
    expect([dflt!.name, dflt!.keys.map((k) => k.hint)]).toEqual(['default', [defaultKey.slice(0, 12)]]);
    // Also by --data-dir, from elsewhere: the lost-key recovery: rotate the default key, make a tenant.
    const [rotated, created] = [
      await run([BIN, 'keys', 'rotate', dflt!.keys[0]!.id, '--offline', '--data-dir', data, '--json'], {}),
      await cli(['tenants', 'create', 'offline tenant', '--offline', '--json']),
    ];
    expect(rotated.code, rotated.err).toBe(0);
    expect(created.code, created.err).toBe(0);
    const fresh = JSON.parse(rotated.out) as { id: string; api_key: string; tenant: string };
    expect(fresh.tenant).toBe(dflt!.id);
    // The api-key file held the rotated key: it holds the new one, so the commands that read it go on working.
    expect(rotated.err).toContain(`${join(data, 'api-key')} held the rotated key: it holds the new one now`);
    expect(readFileSync(join(data, 'api-key'), 'utf8')).toBe(`${fresh.api_key}\n`);
    const made = JSON.parse(created.out) as { id: string; api_key: string };
    // The domain's errors, as the API words them.
    const [missing, nowhere] = await Promise.all([cli(['keys', 'revoke', 'key_AAAAAAAAAAAAAAAAAAAAA', '--offline']), cli(['tenants', '--offline', '--data-dir', join(dir, 'none')])]);
    expect([missing.code, missing.err]).toEqual([1, 'not_found: key key_AAAAAAAAAAAAAAAAAAAAA does not exist\n']);
    expect([nowhere.code, nowhere.err]).toEqual([1, `--offline: no database at ${dir}/none/prefix-handles.db (the service makes it on its first start; see --data-dir)\n`]);

    const second = await start(data);
    try {
      expect(await Promise.all([status(second.url, defaultKey), status(second.url, fresh.api_key), status(second.url, made.api_key)])).toEqual([401, 200, 200]);
      // The service does not write the key file again (keys existed): it holds what the rotation put there.
      expect(readFileSync(join(data, 'api-key'), 'utf8').trim()).toBe(fresh.api_key);
    } finally {
      expect(await second.stop()).toBe(0);
    }
    // Revoking the key the file holds says so, and leaves the file as it is; another key's revocation says nothing.
    const [revokedHeld, revokedOther] = [await cli(['keys', 'revoke', fresh.id, '--offline']), await cli(['keys', 'revoke', made.id, '--offline'])];
    expect(revokedHeld.code, revokedHeld.err).toBe(0);
    expect(revokedHeld.err).toContain(`${join(data, 'api-key')} holds the key just revoked: commands that read it get 401`);
    expect(readFileSync(join(data, 'api-key'), 'utf8').trim()).toBe(fresh.api_key);
    expect([revokedOther.code, revokedOther.err]).toEqual([0, '']);
  });
});

describe('tenants that share a name', () => {
  it('the list names them after the table (made before names were unique); creating that name again is refused naming the oldest', async () => {
    const data = join(dir, 'shared-names');
    mkdirSync(data);
    const t = createTestApp({ databasePath: join(data, 'prefix-handles.db') });
    // As an earlier version let them be made.
    const old = t.tenant('Initech');
    t.sqlite.prepare("update tenants set name = 'initech ' where id = ?").run(t.tenant('Initrode').id);
    const other = t.tenant('Umbrella');
    const later = t.sqlite.prepare('select id from tenants where name = ?').pluck().get('initech ') as string;
    t.close();
    const cli = (args: string[]) => run([BIN, ...args, '--offline', '--data-dir', data]);
    const listed = await cli(['tenants']);
    expect(listed.code, listed.err).toBe(0);
    expect(listed.out.trimEnd().split('\n').at(-1)).toBe(`1 name shared by several tenants (made before tenant names were unique; each works on its own keys): Initech: ${old.id}, ${later}`);
    expect(listed.out).not.toContain(`Umbrella: ${other.id}`);
    const again = await cli(['tenants', 'create', 'INITECH']);
    expect([again.code, again.err]).toEqual([1, `tenant_name_taken: tenant ${old.id} is already named "Initech" (names are compared ignoring case and extra whitespace): to give it another key, POST /v1/tenants/${old.id}/keys; else choose another name\n`]);
  });
});
