// Tenant names are unique, compared as an operator reads them (case and extra whitespace aside), over real HTTP with
// the admin key on a real database file; tenants that earlier versions let share a name keep working and are marked.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashApiKey } from '../../src/domain/tenants';
import { ADMIN_KEY, createTestApp, listen, type TestApp } from '../helpers/app';

let dir: string;
let t: TestApp;
let server: { base: string; close: () => Promise<void> };
let url: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ph-tenant-names-'));
  t = createTestApp({ databasePath: join(dir, 'prefix-handles.db') });
  server = await listen(t.app);
  url = server.base;
});
afterEach(async () => {
  await server.close();
  t.close();
  rmSync(dir, { recursive: true, force: true });
});

async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; type: string; json: any }> {
  const res = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, type: res.headers.get('content-type') ?? '', json: await res.json() };
}
const create = (name: string) => admin('POST', '/v1/tenants', { name });
const rows = () => t.sqlite.prepare('select (select count(*) from tenants) as tenants, (select count(*) from api_keys) as keys').get();

describe('POST /v1/tenants with a name another tenant has', () => {
  it('is refused 409 tenant_name_taken naming that tenant, compared ignoring case and extra whitespace, and writes nothing', async () => {
    const acme = await create('Acme Corp');
    expect(acme.status).toBe(201);
    const before = rows();
    for (const same of ['Acme Corp', 'acme corp', '  ACME   corp ', 'Acme\tCorp']) {
      const res = await create(same);
      expect(res.status, same).toBe(409);
      expect(res.type).toBe('application/problem+json');
      expect(res.json).toMatchObject({
        code: 'tenant_name_taken',
        status: 409,
        tenant: acme.json.tenant,
        detail: `tenant ${acme.json.tenant} is already named "Acme Corp" (names are compared ignoring case and extra whitespace): to give it another key, POST /v1/tenants/${acme.json.tenant}/keys; else choose another name`,
      });
    }
    expect(rows()).toEqual(before);
    // Another name is another tenant: a suffix, a letter inside.
    expect((await create('Acme Corp 2')).status).toBe(201);
    expect((await create('AcmeCorp')).status).toBe(201);
  });

  it('refuses a blank name 422 invalid_request at /name, writing nothing: it could not be told from another blank one', async () => {
    const before = rows();
    for (const blank of [' ', '   ', '\t\n']) {
      const res = await create(blank);
      expect(res.status, JSON.stringify(blank)).toBe(422);
      expect(res.type).toBe('application/problem+json');
      expect(res.json).toMatchObject({ code: 'invalid_request', errors: [{ pointer: '/name' }] });
    }
    expect(rows()).toEqual(before);
  });

  it('compares names without the characters that draw nothing (zero-width space, soft hyphen, BOM): a look-alike is taken, an invisible name blank', async () => {
    const acme = await create('Acme');
    expect(acme.status).toBe(201);
    const before = rows();
    for (const lookalike of ['Acme\u200b', '\ufeffAcme', 'Ac\u00adme', 'A\u200dcme']) {
      const res = await create(lookalike);
      expect([res.status, res.json.code, res.json.tenant], JSON.stringify(lookalike)).toEqual([409, 'tenant_name_taken', acme.json.tenant]);
    }
    for (const invisible of ['\u200b', ' \u200b\u200c ', '\u00ad']) {
      const res = await create(invisible);
      expect([res.status, res.json.errors?.[0]?.pointer], JSON.stringify(invisible)).toEqual([422, '/name']);
    }
    expect(rows()).toEqual(before);
  });

  it('compares composed and decomposed accents as one name (Unicode NFC), and keeps the name as it was given', async () => {
    const composed = await create('Caf\u00e9');
    expect(composed.status).toBe(201);
    const decomposed = await create('cafe\u0301');
    expect([decomposed.status, decomposed.json.tenant]).toEqual([409, composed.json.tenant]);
    const listed = (await admin('GET', '/v1/tenants')).json.tenants;
    expect(listed.map((x: { name: string }) => x.name)).toEqual(['Caf\u00e9']);
  });

  it('concurrent creations of one name: exactly one is made, every other is refused naming it', async () => {
    const answers = await Promise.all(['Globex', 'globex', 'GLOBEX ', ' Globex', 'globeX', 'Globex', 'gLoBeX', 'globex  '].map(create));
    const made = answers.filter((a) => a.status === 201);
    expect(made).toHaveLength(1);
    const refused = answers.filter((a) => a.status === 409);
    expect(refused).toHaveLength(answers.length - 1);
    for (const r of refused) expect([r.json.code, r.json.tenant]).toEqual(['tenant_name_taken', made[0]!.json.tenant]);
    expect(rows()).toEqual({ tenants: 1, keys: 1 });
  });
});

describe('the name check under another process', () => {
  // The creations above run in one process, whose synchronous check and insert no other request can come between:
  // they would pass with the check and the insert in a deferred transaction too. Another process on the file (the
  // offline CLI, a second service) can: the check must hold the write lock from its read on.
  it('holds the write lock from the check on: another connection cannot insert a tenant between the check and the insert', () => {
    t.tenant('Initech');
    const other = new Database(join(dir, 'prefix-handles.db'), { timeout: 0 });
    let tried = false;
    let refused: string | undefined;
    try {
      const made = t.store.createTenant(
        { id: 'ten_initechNewAAAAAAAAAA', name: 'Initrode', createdAt: 3_000 },
        { id: 'key_initechNewAAAAAAAAAA', tenantId: 'ten_initechNewAAAAAAAAAA', keyHash: hashApiKey('phk_initrode-secret-0000000000000'), hint: 'phk_initrode', createdAt: 3_000, revokedAt: null },
        (name) => {
          // Between the read of the names and the insert: another process makes a tenant of the name being checked.
          if (!tried) {
            tried = true;
            try {
              other.prepare('insert into tenants (id, name, created_at) values (?, ?, ?)').run('ten_initrodeOtherAAAAAAA', 'initrode', 2_500);
            } catch (e) {
              refused = (e as { code?: string }).code;
            }
          }
          return name.toLowerCase() === 'initrode';
        },
      );
      expect(made).toBeUndefined();
    } finally {
      other.close();
    }
    expect(tried).toBe(true);
    expect(refused).toBe('SQLITE_BUSY');
    expect(t.sqlite.prepare("select count(*) from tenants where lower(name) = 'initrode'").pluck().get()).toBe(1);
  });
});

describe('tenants that share a name, made before names were unique', () => {
  it('keep working on their own keys; GET /v1/tenants marks each with the others (same_name_as); a new one of that name is refused naming the oldest', async () => {
    // As an earlier version wrote them: two tenants named alike, each with a key.
    const insert = t.sqlite.transaction((rows: Array<[string, string, number, string]>) => {
      for (const [id, name, at, secret] of rows) {
        t.sqlite.prepare('insert into tenants (id, name, created_at) values (?, ?, ?)').run(id, name, at);
        t.sqlite.prepare('insert into api_keys (id, tenant_id, key_hash, hint, created_at) values (?, ?, ?, ?, ?)').run(`key_${id.slice(4)}`, id, hashApiKey(secret), secret.slice(0, 12), at);
      }
    });
    insert([
      ['ten_hooliOldAAAAAAAAAAAA', 'Hooli', 1_000, 'phk_hooli-old-secret-000000000000'],
      ['ten_hooliNewAAAAAAAAAAAA', 'hooli ', 2_000, 'phk_hooli-new-secret-000000000000'],
    ]);
    const unique = await create('Pied Piper');
    for (const secret of ['phk_hooli-old-secret-000000000000', 'phk_hooli-new-secret-000000000000']) {
      const res = await fetch(`${url}/v1/handles`, { headers: { authorization: `Bearer ${secret}` } });
      expect(res.status).toBe(200);
    }
    const listed = (await admin('GET', '/v1/tenants')).json.tenants as Array<{ id: string; same_name_as: string[] }>;
    expect(listed.map((x) => [x.id, x.same_name_as])).toEqual([
      ['ten_hooliOldAAAAAAAAAAAA', ['ten_hooliNewAAAAAAAAAAAA']],
      ['ten_hooliNewAAAAAAAAAAAA', ['ten_hooliOldAAAAAAAAAAAA']],
      [unique.json.tenant, []],
    ]);
    const again = await create('HOOLI');
    expect([again.status, again.json.code, again.json.tenant]).toEqual([409, 'tenant_name_taken', 'ten_hooliOldAAAAAAAAAAAA']);
    // A key for one of them is still issued.
    expect((await admin('POST', '/v1/tenants/ten_hooliNewAAAAAAAAAAAA/keys', {})).status).toBe(201);
  });
});
