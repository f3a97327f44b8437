// `prefix-handles tenants rename` and `tenants delete` as operators run them: the CLI as a child process, against the
// service run as a child process on a real data directory, and with --offline on its database file.
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runNode, startService } from '../helpers/processes';
import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { ADMIN_KEY as APP_ADMIN_KEY, createTestApp } from '../helpers/app';

const ADMIN_KEY = 'an-operator-admin-key-8901';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ph-tenant-delete-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Rows naming the tenant, in every table of the file. */
function rowsOf(file: string, tenant: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    const tables = db.prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'").pluck().all() as string[];
    return tables.flatMap((t) => (db.prepare(`select * from ${t}`).all() as unknown[]).map((r) => `${t}: ${JSON.stringify(r)}`).filter((r) => r.includes(tenant)));
  } finally {
    db.close();
  }
}

async function mint(url: string, key: string, content: string): Promise<number> {
  const res = await fetch(`${url}/v1/artifacts`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'document', content }) });
  return res.status;
}

// Each test has a data directory and a service of its own: they run side by side (a dozen CLI runs one after another
// in each), with the time of a loaded machine to do it.
describe.concurrent('tenants rename and delete', { timeout: 90_000 }, () => {
  it('through the admin API: rename prints the new name; delete asks for the name, then deletes every row and the key stops working', async ({ expect }) => {
    const data = join(dir, 'online');
    const service = await startService(data, { PH_LOG: 'off', PH_ADMIN_KEY: ADMIN_KEY });
    const cli = (...args: string[]) => runNode([BIN, 'tenants', ...args], { PH_URL: service.url, PH_ADMIN_KEY: ADMIN_KEY });
    let created = { tenant: '', api_key: '' };
    try {
      created = JSON.parse((await cli('create', 'Acme Corp', '--json')).out) as { tenant: string; api_key: string };
      const other = JSON.parse((await cli('create', 'Globex', '--json')).out) as { tenant: string; api_key: string };
      expect(await mint(service.url, created.api_key, 'Acme\'s confidential handbook.')).toBe(201);

      const renamed = await cli('rename', created.tenant, 'Acme Industries');
      expect([renamed.code, renamed.out, renamed.err]).toEqual([0, `renamed ${created.tenant}: Acme Industries\n`, '']);
      const taken = await cli('rename', created.tenant, 'globex');
      expect([taken.code, taken.err]).toEqual([1, `tenant_name_taken: tenant ${other.tenant} is already named "Globex" (names are compared ignoring case and extra whitespace): choose another name\n`]);

      // No --confirm: a usage error before any call; another name: the service's 422, exit 1; nothing deleted.
      const unconfirmed = await cli('delete', created.tenant);
      expect([unconfirmed.code, unconfirmed.err.split('\n')[0]]).toEqual([2, `prefix-handles: tenants delete deletes ${created.tenant} and all its data for good: give its name, --confirm <name> (as 'prefix-handles tenants' lists it)`]);
      const wrong = await cli('delete', created.tenant, '--confirm', 'Globex');
      expect([wrong.code, wrong.err.split(' (')[0]]).toEqual([1, `invalid_request: confirm "Globex" is not the name of tenant ${created.tenant}: to delete it and all its data, give its name as it is listed`]);
      expect(await mint(service.url, created.api_key, 'still here')).toBe(201);

      const deleted = await cli('delete', created.tenant, '--confirm', 'acme industries');
      expect(deleted.code, deleted.err).toBe(0);
      expect(deleted.out).toMatch(new RegExp(`^deleted ${created.tenant} \\(Acme Industries\\): \\d+ rows, in \\d+ transactions\\n$`));
      expect(await mint(service.url, created.api_key, 'gone')).toBe(401);
      expect(await mint(service.url, other.api_key, 'Globex works on')).toBe(201);
      // A tenant with nothing but its key went in one transaction, printed as "2 rows, in 1 transactions".
      const spare = JSON.parse((await cli('create', 'Spare', '--json')).out) as { tenant: string };
      expect((await cli('delete', spare.tenant, '--confirm', 'spare')).out).toBe(`deleted ${spare.tenant} (Spare): 2 rows, in 1 transaction\n`);
      const listed = JSON.parse((await cli('list', '--json')).out) as { tenants: Array<{ id: string }> };
      expect(listed.tenants.map((t) => t.id)).toEqual([other.tenant]);
    } finally {
      expect(await service.stop()).toBe(0);
    }
    expect(created.tenant).toMatch(/^ten_/);
    expect(rowsOf(join(data, 'prefix-handles.db'), created.tenant)).toEqual([]);
  });

  it('--offline on the database file, the service stopped: the same rename and delete, no row of the tenant left', async ({ expect }) => {
    const data = join(dir, 'offline');
    const service = await startService(data, { PH_LOG: 'off' });
    // Refused while the service runs.
    expect((await runNode([BIN, 'tenants', 'delete', 'ten_x', '--confirm', 'x', '--offline'], { PH_DATA_DIR: data })).code).toBe(1);
    const defaultKey = readFileSync(join(data, 'api-key'), 'utf8').trim();
    expect(await mint(service.url, defaultKey, 'The default tenant\'s prompt.')).toBe(201);
    expect(await service.stop()).toBe(0);

    const cli = (...args: string[]) => runNode([BIN, 'tenants', ...args, '--offline'], { PH_DATA_DIR: data });
    const [dflt] = (JSON.parse((await cli('--json')).out) as { tenants: Array<{ id: string; name: string }> }).tenants;
    expect((await cli('rename', dflt!.id, 'Team Blue')).out).toBe(`renamed ${dflt!.id}: Team Blue\n`);
    const wrong = await cli('delete', dflt!.id, '--confirm', 'default');
    expect(wrong.code).toBe(1);
    expect(rowsOf(join(data, 'prefix-handles.db'), dflt!.id).length).toBeGreaterThan(2);
    const deleted = await cli('delete', dflt!.id, '--confirm', 'team blue', '--json');
    expect(deleted.code, deleted.err).toBe(0);
    expect(JSON.parse(deleted.out)).toEqual({ id: dflt!.id, name: 'Team Blue', rows: expect.any(Number), batches: expect.any(Number) });
    expect(rowsOf(join(data, 'prefix-handles.db'), dflt!.id)).toEqual([]);
    expect((await cli()).out).toBe('no tenants\n');
  });

  it('lists a deletion a stop cut short with what is left of it, and delete takes it up whatever --confirm says', async ({ expect }) => {
    const data = join(dir, 'cut-short');
    const service = await startService(data, { PH_LOG: 'off' });
    const defaultKey = readFileSync(join(data, 'api-key'), 'utf8').trim();
    expect(await mint(service.url, defaultKey, 'A prompt of a team that leaves.')).toBe(201);
    expect(await service.stop()).toBe(0);
    // As a service stopped after the mark leaves the file: the name the empty string, the keys gone, the data there.
    const file = join(data, 'prefix-handles.db');
    const db = new Database(file);
    const id = db.prepare('select id from tenants').pluck().get() as string;
    db.prepare("update tenants set name = '' where id = ?").run(id);
    db.prepare('delete from api_keys where tenant_id = ?').run(id);
    db.close();

    const cli = (...args: string[]) => runNode([BIN, 'tenants', ...args, '--offline'], { PH_DATA_DIR: data });
    const listed = await cli();
    expect([listed.code, listed.out], listed.err).toEqual([0, `no tenants\ndeletion cut short: ${id}, 0 requests and 1 handle left; the service takes it up at its next start (or: prefix-handles tenants delete ${id} --confirm - --offline)\n`]);
    expect(JSON.parse((await cli('--json')).out)).toEqual({ tenants: [], deleting: [{ id, name: null, running: false, rows: 0, batches: 0, requests_left: 0, handles_left: 1 }] });
    const resumed = await cli('delete', id, '--confirm', '-');
    expect(resumed.code, resumed.err).toBe(0);
    expect(rowsOf(file, id)).toEqual([]);
    expect((await cli()).out).toBe('no tenants\n');
  });
});


describe('tenants lists through the admin API in one call', () => {
  it('GET /v1/tenants is asked once for the table and the deletions under it', async () => {
    const t = createTestApp();
    const calls: string[] = [];
    const server = await new Promise<ServerType>((ok) => {
      const s = serve(
        {
          fetch: (req: Request) => {
            calls.push(`${req.method} ${new URL(req.url).pathname}`);
            return t.app.fetch(req);
          },
          port: 0,
          hostname: '127.0.0.1',
        },
        () => ok(s),
      );
    });
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const run = await runNode([BIN, 'tenants', '--json'], { PH_URL: url, PH_ADMIN_KEY: APP_ADMIN_KEY });
      expect(run.code, run.err).toBe(0);
      calls.push('(the test)');
      const api = await (await t.app.request('/v1/tenants', { headers: { authorization: `Bearer ${APP_ADMIN_KEY}` } })).json();
      expect(JSON.parse(run.out)).toEqual(api);
      expect(calls).toEqual(['GET /v1/tenants', '(the test)']);
    } finally {
      await new Promise((ok) => server.close(ok));
      t.close();
    }
  });
});
