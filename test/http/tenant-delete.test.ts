// An operator renames and deletes tenants, over real HTTP with the admin key on a real database file. A deletion
// leaves no row of the tenant in any table of the schema (a table added later without being handled fails the
// enumeration here), leaves another tenant's rows as they were, survives a restart between its batches, and a call of
// the tenant still under way when it is deleted writes nothing back.
import { getTableName, is } from 'drizzle-orm';
import { SQLiteTable } from 'drizzle-orm/sqlite-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TenantDeletion } from '../../src/domain/tenant-deletion';
import * as schema from '../../src/store/schema';
import { ADMIN_KEY, clientFor, createTestApp, listen, type Client, type TestApp } from '../helpers/app';
import { mintArtifact, mintBundle, mintDocument, mintTools, startSession } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';
import { committed, eventually, startHarness, type Harness } from '../proxy/harness';

const MIN = 60_000;
const DAY = 86_400_000;

/** Tables of no tenant: one row for the whole database, the time before which requests may have been pruned. */
const GLOBAL_TABLES = ['request_retention'];

let dir: string;
let t: TestApp;
let server: { base: string; close: () => Promise<void> };

function open(): void {
  t = createTestApp({ databasePath: join(dir, 'prefix-handles.db'), clock: t?.clock, config: { scopeSnapshotEvery: 1, inlineRetentionMs: 60 * DAY } });
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ph-tenant-delete-'));
  t = undefined as unknown as TestApp;
  open();
  server = await listen(t.app);
});
afterEach(async () => {
  await server.close();
  t.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A client of the service over loopback HTTP. */
const over = (key: string): Client => clientFor({ request: (path, init) => fetch(`${server.base}${path}`, init) }, key);
const admin = () => over(ADMIN_KEY);

async function tenant(name: string): Promise<{ id: string; key: string; client: Client }> {
  const res = await admin().post('/v1/tenants', { name });
  expect(res.status, res.text).toBe(201);
  return { id: res.json.tenant, key: res.json.api_key, client: over(res.json.api_key) };
}

/** Every table the schema declares, which must be every table the migrations made. */
function tables(): string[] {
  const declared = Object.values(schema)
    .filter((v) => is(v, SQLiteTable))
    .map((v) => getTableName(v as SQLiteTable))
    .sort();
  const made = (t.sqlite.prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name != '__drizzle_migrations' order by name").pluck().all() as string[]).sort();
  expect(made).toEqual(declared);
  return declared;
}

/** Every row of every table, as text (bytes in hex), sorted. */
function dump(): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const table of tables()) {
    out[table] = (t.sqlite.prepare(`select * from ${table}`).all() as Array<Record<string, unknown>>)
      .map((row) => JSON.stringify(row, (_, v) => (v && typeof v === 'object' && v.type === 'Buffer' ? Buffer.from(v.data).toString('hex') : v)))
      .sort();
  }
  return out;
}

const minus = (a: string[], b: string[]) => a.filter((row) => !b.includes(row));

/** A render of a system prompt with a timestamp before a handle, reported: drift on the second of two. */
async function call(client: Client, stamp: string, refs: { sys: string; bundle: string }) {
  const r = await renderAnthropic(client, {
    prefix: [refs.bundle],
    system: [{ type: 'text', text: `Current time: ${stamp}` }, { type: 'handle', ref: refs.sys }],
    messages: [{ role: 'user', content: 'hello' }],
  });
  await report(client, t, r, anthropicUsage(promptTokens(r), 0, r.breakpoints.at(-1)?.token_end ?? 0));
  return r;
}

describe('DELETE /v1/tenants/{id}', () => {
  it('deletes every row of the tenant in every table of the schema; another tenant\'s rows stay as they were', async () => {
    // The other tenant first: its rows, then, are all there is.
    const b = await tenant('Umbrella');
    const bSys = await mintArtifact(b.client, 'system', LONG_SYSTEM);
    const bDoc = await mintDocument(b.client);
    const bBundle = await mintBundle(b.client, [bDoc.id]);
    await call(b.client, '2026-01-01T12:00:00Z', { sys: bSys.id, bundle: bBundle.id });
    t.clock.advance(MIN);
    await call(b.client, '2026-01-01T12:01:00Z', { sys: bSys.id, bundle: bBundle.id });
    await t.services.writes.idle();
    const onlyB = dump();

    // The tenant to delete, with rows in every table: keys (one revoked), the same system prompt as B's (one blob for
    // both), a bundle and a session (pins), requests reported (drift, calibration, snapshots), pruned ones (their
    // scope's pruned count), one not reported, and an all-time report (spans).
    t.clock.advance(10 * MIN);
    const a = await tenant('Acme Corp');
    const extra = await admin().post(`/v1/tenants/${a.id}/keys`);
    expect((await admin().delete(`/v1/keys/${extra.json.id}`)).status).toBe(204);
    const sys = await mintArtifact(a.client, 'system', LONG_SYSTEM);
    const tools = await mintTools(a.client);
    const doc = await mintDocument(a.client);
    const bundle = await mintBundle(a.client, [tools.id, doc.id]);
    const session = await startSession(a.client, { base: bundle.id });
    expect((await a.client.post(`/v1/sessions/${session.id}/messages`, { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] })).status).toBe(201);
    await call(a.client, '2026-01-01T12:11:00Z', { sys: sys.id, bundle: bundle.id });
    t.clock.advance(MIN);
    await call(a.client, '2026-01-01T12:12:00Z', { sys: sys.id, bundle: bundle.id });
    t.clock.advance(3 * DAY);
    await call(a.client, '2026-01-04T12:13:00Z', { sys: sys.id, bundle: session.id });
    await renderAnthropic(a.client, { prefix: [session.id], messages: [{ role: 'user', content: 'never reported' }] });
    const pruned = await admin().post('/v1/prune', { older_than_days: 1 });
    expect(pruned.json.pruned, pruned.text).toBeGreaterThan(0);
    expect((await a.client.get('/v1/reports?from=2025-12-01')).status).toBe(200);
    await t.services.writes.idle();
    const both = dump();

    // B's rows are as they were (the test's own check: A's calls changed none of them), and A has rows in every table.
    for (const table of tables()) {
      if (GLOBAL_TABLES.includes(table)) continue;
      expect(minus(onlyB[table]!, both[table]!), `${table}: B's rows changed by A's calls`).toEqual([]);
      expect(minus(both[table]!, onlyB[table]!).length, `${table}: the deleted tenant has no row here, so its deletion is not tested`).toBeGreaterThan(0);
    }

    const bReport = (await b.client.get(`/v1/reports/handles/${bSys.id}`)).json;
    const res = await admin().delete(`/v1/tenants/${a.id}?confirm=${encodeURIComponent('  acme CORP ')}`);
    expect(res.status, res.text).toBe(200);
    const rows = Object.entries(both).reduce((n, [table, r]) => n + (GLOBAL_TABLES.includes(table) ? 0 : r.length - onlyB[table]!.length), 0);
    expect(res.json).toEqual({ id: a.id, name: 'Acme Corp', rows, batches: expect.any(Number) });

    const after = dump();
    for (const table of tables()) if (!GLOBAL_TABLES.includes(table)) expect(after[table], table).toEqual(onlyB[table]);
    // The shared system prompt's bytes stay: B's version holds them.
    expect(t.sqlite.prepare('select count(*) from blobs where digest = ?').pluck().get(sys.digest)).toBe(1);

    // A is gone for every route; B works on as before.
    expect((await a.client.get('/v1/handles')).status).toBe(401);
    expect((await admin().get('/v1/tenants')).json.tenants.map((x: { id: string }) => x.id)).toEqual([b.id]);
    expect((await admin().post(`/v1/tenants/${a.id}/keys`)).json).toMatchObject({ status: 404, code: 'not_found' });
    expect((await admin().delete(`/v1/tenants/${a.id}?confirm=Acme%20Corp`)).json).toMatchObject({ status: 404, code: 'not_found' });
    expect((await b.client.get(`/v1/reports/handles/${bSys.id}`)).json).toEqual(bReport);
    expect((await b.client.get(`/v1/handles/${bSys.id}/expand?format=anthropic`)).status).toBe(200);
    // Its handle ids are another tenant's 404, as any missing one.
    expect((await b.client.get(`/v1/handles/${sys.id}`)).json).toMatchObject({ status: 404, code: 'not_found' });
    // Its name is free again.
    expect((await admin().post('/v1/tenants', { name: 'acme corp' })).status).toBe(201);
  });

  it('asks for the tenant\'s name: missing or another one is a 422 at query:confirm, and nothing is deleted', async () => {
    const a = await tenant('Initech');
    await mintDocument(a.client);
    const before = dump();
    for (const query of ['', '?confirm=', '?confirm=Initrode', `?confirm=${a.id}`]) {
      const res = await admin().delete(`/v1/tenants/${a.id}${query}`);
      expect(res.status, query).toBe(422);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(res.json, query).toMatchObject({ code: 'invalid_request', errors: [{ pointer: 'query:confirm' }] });
      // Each says what was wrong: zod's "Invalid input: expected string, received undefined" for none, and a detail that
      // began "is not the name of tenant …" for another name, the name it had been given left out.
      const detail = (res.json as { errors: Array<{ detail: string }> }).errors[0]!.detail;
      if (query === '' || query === '?confirm=') expect(detail, query).toMatch(/^confirm is required: the tenant's name, as GET \/v1\/tenants lists it/);
      else expect(detail, query).toBe(`confirm ${JSON.stringify(decodeURIComponent(query.slice('?confirm='.length)))} is not the name of tenant ${a.id}: to delete it and all its data, give its name as it is listed (GET /v1/tenants), compared ignoring case and extra whitespace`);
    }
    expect(dump()).toEqual(before);
    expect((await a.client.get('/v1/handles')).status).toBe(200);
    // Unknown: 404; a tenant's key is not the admin key: 401.
    expect((await admin().delete('/v1/tenants/ten_nobodyAAAAAAAAAAAAAAA?confirm=x')).json).toMatchObject({ status: 404, code: 'not_found' });
    expect((await a.client.delete(`/v1/tenants/${a.id}?confirm=Initech`)).status).toBe(401);
    expect(dump()).toEqual(before);
  });

  it('a restart between its batches: the tenant is gone from the first one on, and the next start deletes the rest', async () => {
    const a = await tenant('Globex');
    const b = await tenant('Hooli');
    const sys = await mintArtifact(a.client, 'system', LONG_SYSTEM);
    const bundle = await mintBundle(a.client, [(await mintDocument(a.client)).id]);
    for (let i = 0; i < 40; i++) {
      await call(a.client, `2026-01-01T12:${String(i).padStart(2, '0')}:00Z`, { sys: sys.id, bundle: bundle.id });
      t.clock.advance(MIN);
    }
    await mintDocument(b.client);
    await t.services.writes.idle();
    const ofA = () => Number(t.sqlite.prepare('select (select count(*) from requests where tenant_id = @t) + (select count(*) from handles where tenant_id = @t) + (select count(*) from rollups where tenant_id = @t) + (select count(*) from tenants where id = @t)').pluck().get({ t: a.id }));
    const start = ofA();
    // As a process killed after its first batches leaves the file: marked, keys gone, some rows deleted.
    expect(t.store.markTenantDeleting(a.id, () => true)).toMatchObject({ marked: true });
    for (let i = 0; i < 3; i++) expect(t.store.deleteTenantBatch(a.id, 50).done).toBe(false);
    expect(ofA()).toBeLessThan(start);
    expect(ofA()).toBeGreaterThan(1);

    await server.close();
    t.close();
    open();
    server = await listen(t.app);
    // Before anything resumes: no key of it works, no route names it, nothing of it is written.
    expect((await a.client.get('/v1/handles')).status).toBe(401);
    expect((await admin().get('/v1/tenants')).json.tenants.map((x: { id: string }) => x.id)).toEqual([b.id]);
    expect(t.services.deletion.isDeleted(a.id)).toBe(true);
    expect(() => t.services.handles.mintArtifact(a.id, { kind: 'document', content: 'late' })).toThrow(/its tenant was deleted/);
    // A report of a request of it still stored, from a call authenticated before: not found, nothing written.
    const left = t.sqlite.prepare('select id from requests where tenant_id = ? limit 1').pluck().get(a.id) as string;
    expect(left).toMatch(/^req_/);
    expect(() => t.services.reconciler.ingest(a.id, { request_id: left, usage: anthropicUsage(1000, 0, 0) })).toThrow(`request ${left} does not exist`);
    expect((await admin().call('PATCH', `/v1/tenants/${a.id}`, { name: 'Globex 2' })).status).toBe(404);

    // The operator sees it cut short, and what is left of it.
    const leftOf = (table: string) => t.sqlite.prepare(`select count(*) from ${table} where tenant_id = ?`).pluck().get(a.id) as number;
    expect((await admin().get('/v1/tenants')).json.deleting).toEqual([{ id: a.id, name: null, running: false, rows: 0, batches: 0, requests_left: leftOf('requests'), handles_left: leftOf('handles') }]);
    expect(leftOf('handles')).toBeGreaterThan(0);

    const [resumed] = await t.services.deletion.resume();
    expect(resumed).toMatchObject({ id: a.id, name: null });
    expect(ofA()).toBe(0);
    for (const table of tables()) {
      const rows = (t.sqlite.prepare(`select * from ${table}`).all() as unknown[]).map((r) => JSON.stringify(r));
      expect(rows.filter((r) => r.includes(a.id)), table).toEqual([]);
    }
    expect((await b.client.get('/v1/handles')).json.handles).toHaveLength(1);
    // A DELETE of a tenant whose deletion is done: 404.
    expect((await admin().delete(`/v1/tenants/${a.id}?confirm=Globex`)).status).toBe(404);
    expect((await admin().get('/v1/tenants')).json.deleting).toEqual([]);
  });

  it('GET /v1/tenants lists a deletion under way with what it has deleted and what is left, each batch', async () => {
    const a = await tenant('Soylent');
    const sys = await mintArtifact(a.client, 'system', LONG_SYSTEM);
    const bundle = await mintBundle(a.client, [(await mintDocument(a.client)).id]);
    for (let i = 0; i < 12; i++) await call(a.client, `2026-01-01T12:${String(i).padStart(2, '0')}:00Z`, { sys: sys.id, bundle: bundle.id });
    await t.services.writes.idle();
    expect((await admin().get('/v1/tenants')).json.deleting).toEqual([]);
    // A deletion of batches of 30 rows, stepped a batch at a time (each ends on setImmediate), as the service's own runs.
    const deletion = new TenantDeletion({ store: t.store, forget: () => {}, batchRows: 30 });
    const done = deletion.delete(a.id, 'soylent');
    const seen: Array<{ rows: number; batches: number; requests_left: number }> = [];
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      const [p] = deletion.progress();
      expect(p).toMatchObject({ id: a.id, name: 'Soylent', running: true, handles_left: 3 });
      seen.push({ rows: p!.rows, batches: p!.batches, requests_left: p!.requests_left });
    }
    // Each batch deleted rows, a request's eight at a time: fewer requests left after each.
    expect(seen.map((s) => s.batches)).toEqual([1, 2, 3]);
    for (let i = 1; i < 3; i++) {
      expect(seen[i]!.rows).toBeGreaterThan(seen[i - 1]!.rows);
      expect(seen[i]!.requests_left).toBeLessThan(seen[i - 1]!.requests_left);
    }
    // The service's own listing reads the same marked tenant (its process did not start it: not running there; the
    // deletion goes on while the call is answered).
    expect((await admin().get('/v1/tenants')).json.deleting).toEqual([{ id: a.id, name: null, running: false, rows: 0, batches: 0, requests_left: expect.any(Number), handles_left: expect.any(Number) }]);
    const result = await done;
    expect(result.rows).toBeGreaterThan(seen[2]!.rows);
    expect(deletion.progress()).toEqual([]);
    expect((await admin().get('/v1/tenants')).json.deleting).toEqual([]);
  });
});

describe('GET /v1/tenants while a DELETE over HTTP is under way', () => {
  it("lists it running, with its name and more rows deleted batch by batch, then nothing once the DELETE answers", async () => {
    const a = await tenant('Initech');
    const sys = await mintArtifact(a.client, 'system', LONG_SYSTEM);
    const bundle = await mintBundle(a.client, [(await mintDocument(a.client)).id]);
    for (let i = 0; i < 8; i++) await call(a.client, `2026-01-01T12:${String(i).padStart(2, '0')}:00Z`, { sys: sys.id, bundle: bundle.id });
    await t.services.writes.idle();
    const requests = (await a.client.get('/v1/requests?limit=200')).json.requests.length;
    expect(requests).toBe(8);
    // The service's own deletion, in batches of 30 rows, one batch each time the test allows one: between them it
    // deletes nothing and yields (as between its batches), so what the listing shows is decided here, not by timing.
    const store = t.store as { deleteTenantBatch(id: string, limit: number): { rows: number; done: boolean } };
    const batch = store.deleteTenantBatch.bind(store);
    let allowed = 0;
    store.deleteTenantBatch = (id, _limit) => (allowed > 0 ? (allowed--, batch(id, 30)) : { rows: 0, done: false });
    const listing = async () => {
      const res = await admin().get('/v1/tenants');
      expect(res.status, res.text).toBe(200);
      expect(res.json.tenants.map((x: { id: string }) => x.id)).not.toContain(a.id);
      return res.json.deleting as Array<{ id: string; name: string | null; running: boolean; rows: number; requests_left: number; handles_left: number }>;
    };
    /** Asks the list until `done` says the allowed batch was deleted. */
    const until = async (done: (d: Awaited<ReturnType<typeof listing>>[number]) => boolean) => {
      for (;;) {
        const [d] = await listing();
        expect(d).toMatchObject({ id: a.id, name: 'Initech', running: true });
        if (done(d!)) return d!;
      }
    };
    allowed = 1;
    const deleted = admin().delete(`/v1/tenants/${a.id}?confirm=initech`);
    const first = await until((d) => allowed === 0 && d.requests_left < requests);
    allowed = 1;
    const second = await until((d) => allowed === 0 && d.rows > first.rows);
    expect(second.requests_left).toBeLessThanOrEqual(first.requests_left);
    expect(second.handles_left).toBeGreaterThan(0);
    // Let it run to its end: the DELETE answers with every row, and nothing is listed.
    allowed = Number.POSITIVE_INFINITY;
    const res = await deleted;
    expect(res.status, res.text).toBe(200);
    expect(res.json.rows).toBeGreaterThan(second.rows);
    expect(await listing()).toEqual([]);
  });
});

describe('a deleted tenant\'s calls under way', () => {
  let h: Harness;
  afterEach(async () => h?.close());

  it('a proxied call answered after the deletion reaches its client whole and writes nothing: no row, no session turn, no report', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let held = false;
    h = await startHarness({ hold: (_call, chunk) => (chunk.includes('message_delta') ? ((held = true), gate) : undefined) });
    const tenantId = h.tenant.id;
    const session = await startSession(h.tenant.client);
    const adminAt = clientFor({ request: (path, init) => fetch(`${h.url}${path}`, init) }, ADMIN_KEY);
    const name = (await adminAt.get('/v1/tenants')).json.tenants.find((x: { id: string }) => x.id === tenantId).name;

    const stream = h.anthropic({ headers: { 'x-ph-session': session.id } }).messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hello' }] });
    await eventually(() => held, 'the answer held upstream');
    const deleted = await adminAt.delete(`/v1/tenants/${tenantId}?confirm=${encodeURIComponent(name)}`);
    expect(deleted.status, deleted.text).toBe(200);
    release();
    const message = await stream.finalMessage();
    expect(message.content[0]).toMatchObject({ type: 'text' });
    await committed(h);
    while (h.t.services.proxyOrder.pending > 0) await new Promise((r) => setTimeout(r, 5));
    await committed(h);

    const left = (h.t.sqlite.prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'").pluck().all() as string[]).flatMap((table) =>
      (h.t.sqlite.prepare(`select * from ${table}`).all() as unknown[]).map((r) => JSON.stringify(r)).filter((r) => r.includes(tenantId) || r.includes(session.id)).map((r) => `${table}: ${r}`),
    );
    expect(left).toEqual([]);
    // Its next call, and a report with its key: 401; the admin list has no trace of it.
    const again = await h.anthropic().messages.create({ model: 'claude-sonnet-4-5', max_tokens: 16, messages: [{ role: 'user', content: 'again' }] }).catch((e: { status: number }) => e);
    expect((again as { status: number }).status).toBe(401);
    expect((await h.tenant.client.post('/v1/usage', { request_id: 'req_00000000AAAAAAAAAAAAA', usage: {} })).status).toBe(401);
    expect((await adminAt.get('/v1/tenants')).json.tenants).toEqual([]);
  });

  it('a report of a deleted tenant\'s request, sent by another tenant, is the 404 of any request it does not have', async () => {
    const a = await tenant('Stark');
    const b = await tenant('Wayne');
    const sys = await mintArtifact(a.client, 'system', LONG_SYSTEM);
    const r = await renderAnthropic(a.client, { system: [{ type: 'handle', ref: sys.id }], messages: [{ role: 'user', content: 'hi' }] });
    expect((await admin().delete(`/v1/tenants/${a.id}?confirm=Stark`)).status).toBe(200);
    const res = await b.client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(promptTokens(r), 0, 0) });
    expect(res.json).toMatchObject({ status: 404, code: 'not_found' });
    // In memory too: the service refuses the tenant's own report, were a call of it authenticated before.
    expect(() => t.services.reconciler.ingest(a.id, { request_id: r.request_id, usage: anthropicUsage(promptTokens(r), 0, 0) })).toThrow(`request ${r.request_id} does not exist`);
    expect(() => t.services.requests.render({ tenantId: a.id, format: 'anthropic', bodyText: '{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"x"}]}', pointer: '' })).toThrow(/its tenant was deleted/);
    expect(t.sqlite.prepare('select count(*) from requests').pluck().get()).toBe(0);
  });
});

describe('PATCH /v1/tenants/{id}', () => {
  const rename = (id: string, body: unknown) => admin().call('PATCH', `/v1/tenants/${id}`, body);

  it('renames, under creation\'s rules: another tenant\'s name (case and spacing aside) is a 409 naming it; its own in another case is allowed', async () => {
    const a = await tenant('Acme Corp');
    const b = await tenant('Globex');
    const renamed = await rename(a.id, { name: 'Acme Industries' });
    expect(renamed.status, renamed.text).toBe(200);
    expect(renamed.json).toMatchObject({ id: a.id, name: 'Acme Industries', same_name_as: [], keys: [{ revoked_at: null }] });
    const taken = await rename(a.id, { name: '  GLOBEX ' });
    expect(taken.status).toBe(409);
    expect(taken.headers.get('content-type')).toBe('application/problem+json');
    expect(taken.json).toMatchObject({ code: 'tenant_name_taken', tenant: b.id });
    expect((await rename(a.id, { name: 'acme  INDUSTRIES' })).json).toMatchObject({ id: a.id, name: 'acme  INDUSTRIES' });
    // The old name is free: a new tenant takes it; the key works on.
    expect((await admin().post('/v1/tenants', { name: 'Acme Corp' })).status).toBe(201);
    expect((await a.client.get('/v1/handles')).status).toBe(200);
    expect((await admin().get('/v1/tenants')).json.tenants.map((x: { name: string }) => x.name)).toEqual(['acme  INDUSTRIES', 'Globex', 'Acme Corp']);
  });

  it('refuses an unknown field, a blank or missing name (422), an unknown tenant (404), and writes nothing', async () => {
    const a = await tenant('Hooli');
    const names = () => t.sqlite.prepare('select id, name from tenants').all();
    const before = names();
    for (const [body, pointer] of [[{ name: 'X', extra: 1 }, ''], [{ name: '   ' }, '/name'], [{}, '/name'], [{ name: '' }, '/name'], [{ name: 'x'.repeat(201) }, '/name']] as const) {
      const res = await rename(a.id, body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.json.code).toBe('invalid_request');
      if (pointer) expect(res.json.errors.map((e: { pointer: string }) => e.pointer)).toContain(pointer);
    }
    expect((await rename('ten_nobodyAAAAAAAAAAAAAAA', { name: 'Nobody' })).json).toMatchObject({ status: 404, code: 'not_found' });
    expect((await admin().call('PATCH', `/v1/tenants/${a.id}`, 'not json')).status).toBe(400);
    expect((await a.client.call('PATCH', `/v1/tenants/${a.id}`, { name: 'Mine' })).status).toBe(401);
    expect(names()).toEqual(before);
  });
});
