// Each tenant counts its days in its own time zone: reports, days=true, the requests list, spans across a month end,
// and the zone's own rules (set at creation, changed only before a reconciled request).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { asBefore0021 } from '../helpers/migrations';
import { ADMIN_KEY, clientFor, createTestApp, type Client, type TestApp } from '../helpers/app';
import { mintSystem } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM } from '../helpers/scenario';

let t: TestApp;
let admin: Client;
beforeEach(() => {
  t = createTestApp();
  admin = clientFor(t.app, ADMIN_KEY);
});
afterEach(() => t.close());

const patch = (id: string, body: unknown) => admin.call('PATCH', `/v1/tenants/${id}`, body);

/** A tenant made through the admin API in a zone, with its client. */
async function tenantIn(zone: string | undefined, name = `tz ${zone} ${Math.random()}`) {
  const res = await admin.post('/v1/tenants', zone === undefined ? { name } : { name, time_zone: zone });
  expect(res.status, res.text).toBe(201);
  return { id: res.json.tenant as string, client: clientFor(t.app, res.json.api_key) };
}

/** A call started (and rendered) at `at`, reported and reconciled: its request id. */
async function callAt(client: Client, at: string | number, app: TestApp = t): Promise<string> {
  app.clock.set(typeof at === 'number' ? at : Date.parse(at));
  const sys = await mintSystem(client, LONG_SYSTEM);
  const r = await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', prefix: [sys.id], messages: [{ role: 'user', content: `hi ${at}` }] } });
  expect(r.status, r.text).toBe(200);
  const total = r.json.segments.at(-1).token_end as number;
  const u = await client.post('/v1/usage', { request_id: r.json.request_id, usage: anthropicUsage(total, 0, 100) });
  expect(u.status, u.text).toBe(201);
  return r.json.request_id;
}

const requestsOn = async (client: Client, q: string) => (await client.get(`/v1/reports?${q}`)).json.requests as number;

describe("a tenant's time zone: set, listed, fixed once it has a reconciled request", () => {
  it('is UTC unless given; a zone Intl does not know is a 422 at /time_zone naming an example; stored by its IANA name', async () => {
    const plain = await tenantIn(undefined);
    const la = await tenantIn('america/los_angeles');
    const listed = (await admin.get('/v1/tenants')).json.tenants as Array<{ id: string; time_zone: string }>;
    expect(listed.find((x) => x.id === plain.id)?.time_zone).toBe('UTC');
    expect(listed.find((x) => x.id === la.id)?.time_zone).toBe('America/Los_Angeles');
    for (const bad of ['Mars/Olympus', '', '+05:30']) {
      const res = await admin.post('/v1/tenants', { name: `bad ${bad}`, time_zone: bad });
      expect(res.status, bad).toBe(422);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.json.code).toBe('invalid_request');
      expect(res.json.errors).toEqual([{ pointer: '/time_zone', detail: expect.stringContaining('America/Los_Angeles') }]);
    }
    // Nothing written for the refused ones.
    expect((await admin.get('/v1/tenants')).json.tenants).toHaveLength(2);
    // An abbreviation (which Intl reads as some zone) and a misspelt name: refused, saying which zone is meant.
    const pst = await admin.post('/v1/tenants', { name: 'pst', time_zone: 'PST' });
    expect([pst.status, pst.json.errors?.[0]?.pointer]).toEqual([422, '/time_zone']);
    expect(pst.json.errors[0].detail).toMatch(/^"PST" is an abbreviation or an old alias, not a region's zone: Intl would read it as America\/Los_Angeles/);
    const typo = await patch(plain.id, { time_zone: 'America/Los_Angles' });
    expect([typo.status, typo.json.errors?.[0]?.detail]).toEqual([422, expect.stringMatching(/^"America\/Los_Angles" is not a time zone: .*\(did you mean America\/Los_Angeles\?\)$/)]);
    const patched = await patch(plain.id, { time_zone: 'Mars/Olympus' });
    expect([patched.status, patched.json.errors?.[0]?.pointer]).toEqual([422, '/time_zone']);
    const empty = await patch(plain.id, {});
    expect(empty.status).toBe(422);
  });

  it('PATCH sets the zone (and a name beside it) until a request is reconciled; afterwards 409 time_zone_fixed saying why and what to do', async () => {
    const a = await tenantIn(undefined);
    const set = await patch(a.id, { time_zone: 'Asia/Kolkata', name: 'Kolkata team' });
    expect(set.status, set.text).toBe(200);
    expect(set.json).toMatchObject({ id: a.id, name: 'Kolkata team', time_zone: 'Asia/Kolkata' });
    // Its reports count in the new zone at once.
    expect((await a.client.get('/v1/reports')).json.range.time_zone).toBe('Asia/Kolkata');
    await callAt(a.client, '2026-12-01T06:00:00Z');
    const refused = await patch(a.id, { time_zone: 'UTC' });
    expect(refused.status).toBe(409);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(refused.json).toMatchObject({ code: 'time_zone_fixed', tenant: a.id });
    expect(refused.json.detail).toMatch(/mixed/);
    // It names the zone the days are counted in and the one asked for.
    expect(refused.json.detail).toMatch(/counted in the days of Asia\/Kolkata, its time zone: days of UTC would be mixed with them in every report, so its zone stays Asia\/Kolkata\. To count days in UTC, create a new tenant with it .*--time-zone UTC\)$/);
    expect(refused.json.detail).toMatch(/new tenant/);
    // Its zone unchanged, its name still free to change, and the same zone again is no change.
    expect((await patch(a.id, { name: 'Kolkata' })).json.time_zone).toBe('Asia/Kolkata');
    expect((await patch(a.id, { time_zone: 'Asia/Kolkata' })).status).toBe(200);
  });
});

describe('a zone change racing a reconciliation', () => {
  it('a PATCH of the zone while a reconciled call of the tenant waits in the write queue is a 409: its rollup row is written by the zone it was reconciled in', async () => {
    const a = await tenantIn(undefined);
    t.clock.set(Date.parse('2026-12-01T06:00:00Z'));
    const sys = await mintSystem(a.client, LONG_SYSTEM);
    const r = await a.client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', prefix: [sys.id], messages: [{ role: 'user', content: 'hi' }] } });
    const total = r.json.segments.at(-1).token_end as number;
    // Both in one turn: the usage report is reconciled (its day taken in UTC) and queued, the PATCH comes before the commit.
    const [u, changed] = await Promise.all([a.client.post('/v1/usage', { request_id: r.json.request_id, usage: anthropicUsage(total, 0, 100) }), patch(a.id, { time_zone: 'America/Los_Angeles', name: 'racing' })]);
    expect(u.status, u.text).toBe(201);
    expect([changed.status, changed.json.code]).toEqual([409, 'time_zone_fixed']);
    // Nothing of the refused PATCH written (nor its name); the call is on its UTC day, as the zone still says.
    const listed = (await admin.get('/v1/tenants')).json.tenants.find((x: { id: string }) => x.id === a.id);
    expect([listed.name, listed.time_zone]).not.toContain('racing');
    expect(listed.time_zone).toBe('UTC');
    expect(t.sqlite.prepare("select day from rollups where tenant_id = ? and handle_id = '*'").pluck().all(a.id)).toEqual([Date.parse('2026-12-01') / 86_400_000]);
    expect(await requestsOn(a.client, 'from=2026-12-01&to=2026-12-01')).toBe(1);
  });
});

describe('a PATCH of name and zone together, one part refused', () => {
  it('writes neither: a taken name leaves the zone as it was, a fixed zone leaves the name', async () => {
    const other = await tenantIn(undefined, 'taken name');
    const a = await tenantIn(undefined, 'first name');
    const taken = await patch(a.id, { name: 'Taken  Name', time_zone: 'Asia/Kolkata' });
    expect([taken.status, taken.json.code, taken.json.tenant]).toEqual([409, 'tenant_name_taken', other.id]);
    const b = await tenantIn(undefined, 'second name');
    await callAt(b.client, '2026-12-01T06:00:00Z');
    const fixed = await patch(b.id, { name: 'a new name', time_zone: 'Asia/Kolkata' });
    expect([fixed.status, fixed.json.code]).toEqual([409, 'time_zone_fixed']);
    const listed = (await admin.get('/v1/tenants')).json.tenants as Array<{ id: string; name: string; time_zone: string }>;
    expect(listed.filter((x) => x.id !== other.id).map((x) => [x.name, x.time_zone])).toEqual([
      ['first name', 'UTC'],
      ['second name', 'UTC'],
    ]);
  });
});

describe("reports count whole days of the tenant's zone", () => {
  it('a call at 2026-12-01T06:00Z is on 2026-11-30 in Los Angeles and 2026-12-01 in UTC: reports, days=true, the range and the requests list agree', async () => {
    const la = await tenantIn('America/Los_Angeles');
    const utc = await tenantIn('UTC');
    const laId = await callAt(la.client, '2026-12-01T06:00:00Z');
    const utcId = await callAt(utc.client, '2026-12-01T06:00:00Z');
    t.clock.set(Date.parse('2026-12-03T12:00:00Z'));
    expect(await requestsOn(la.client, 'from=2026-11-30&to=2026-11-30')).toBe(1);
    expect(await requestsOn(la.client, 'from=2026-12-01&to=2026-12-01')).toBe(0);
    expect(await requestsOn(utc.client, 'from=2026-11-30&to=2026-11-30')).toBe(0);
    expect(await requestsOn(utc.client, 'from=2026-12-01&to=2026-12-01')).toBe(1);

    const report = (await la.client.get('/v1/reports?from=2026-11-30&to=2026-11-30&days=true')).json;
    expect(report.range).toEqual({ from: '2026-11-30T08:00:00.000Z', to: '2026-12-01T07:59:59.999Z', model: null, time_zone: 'America/Los_Angeles' });
    expect(report.days.map((d: { day: string; requests: number }) => [d.day, d.requests])).toEqual([['2026-11-30', 1]]);
    // A UTC tenant's range is as it always was: no zone named.
    expect((await utc.client.get('/v1/reports?from=2026-12-01&to=2026-12-01')).json.range).toEqual({ from: '2026-12-01T00:00:00.000Z', to: '2026-12-01T23:59:59.999Z', model: null });
    // An instant is where it is: 2026-12-01T06:00Z is in Los Angeles' 2026-11-30.
    expect(await requestsOn(la.client, 'from=2026-12-01T06:00:00Z&to=2026-12-01T06:00:00Z')).toBe(1);

    const listed = async (c: Client, q: string) => ((await c.get(`/v1/requests?${q}`)).json.requests as Array<{ id: string }>).map((r) => r.id);
    expect(await listed(la.client, 'from=2026-11-30&to=2026-11-30')).toEqual([laId]);
    expect(await listed(la.client, 'from=2026-12-01&to=2026-12-01')).toEqual([]);
    expect(await listed(utc.client, 'from=2026-12-01&to=2026-12-01')).toEqual([utcId]);
    // `from` after `to` is judged in the tenant's days.
    expect((await la.client.get('/v1/reports?from=2026-12-02&to=2026-12-01')).status).toBe(422);
    // The CSV is named by the tenant's days.
    const csv = await la.client.get('/v1/reports?from=2026-11-30&to=2026-11-30&format=csv');
    expect(csv.headers.get('content-disposition')).toContain('report_2026-11-30_2026-11-30.csv');
  });

  it('a 23-hour and a 25-hour day at the DST changes hold the calls of their local hours', async () => {
    const la = await tenantIn('America/Los_Angeles');
    // 2026-03-08 (23 h): 00:30 PST and 23:59 PDT; 2026-11-01 (25 h): 00:30 PDT and 23:30 PST.
    for (const at of ['2026-03-08T08:30:00Z', '2026-03-09T06:59:00Z', '2026-03-09T07:01:00Z', '2026-11-01T07:30:00Z', '2026-11-02T07:30:00Z', '2026-11-02T08:01:00Z']) await callAt(la.client, at);
    t.clock.set(Date.parse('2026-12-20T00:00:00Z'));
    const days = (await la.client.get('/v1/reports?from=2026-03-01&to=2026-11-30&days=true')).json.days as Array<{ day: string; requests: number }>;
    expect(days.map((d) => [d.day, d.requests])).toEqual([
      ['2026-03-08', 2],
      ['2026-03-09', 1],
      ['2026-11-01', 2],
      ['2026-11-02', 1],
    ]);
    expect((await la.client.get('/v1/reports?from=2026-03-08&to=2026-03-08')).json.range).toMatchObject({ from: '2026-03-08T08:00:00.000Z', to: '2026-03-09T06:59:59.999Z' });
    expect((await la.client.get('/v1/reports?from=2026-11-01&to=2026-11-01')).json.range).toMatchObject({ from: '2026-11-01T07:00:00.000Z', to: '2026-11-02T07:59:59.999Z' });
  });

  it("a day the zone skipped (Pacific/Apia's 2011-12-30) ends a range where the day before it ends, not the day after", async () => {
    const apia = await tenantIn('Pacific/Apia');
    // Noon on 2011-12-29 (-10) and on 2011-12-31 (+14): Apia crossed the date line between them.
    await callAt(apia.client, '2011-12-29T22:00:00Z');
    await callAt(apia.client, '2011-12-30T22:00:00Z');
    t.clock.set(Date.parse('2012-01-10T00:00:00Z'));
    const report = (await apia.client.get('/v1/reports?from=2011-12-29&to=2011-12-30&days=true')).json;
    expect(report.range).toMatchObject({ from: '2011-12-29T10:00:00.000Z', to: '2011-12-30T09:59:59.999Z' });
    expect(report.days.map((d: { day: string; requests: number }) => [d.day, d.requests])).toEqual([['2011-12-29', 1]]);
    expect((await apia.client.get('/v1/requests?from=2011-12-30&to=2011-12-30')).json.requests).toEqual([]);
    expect(await requestsOn(apia.client, 'from=2011-12-30&to=2011-12-31')).toBe(1);
  });

  for (const zone of ['Asia/Kolkata', 'Pacific/Kiritimati']) {
    it(`${zone}: across a month end, the month's, each day's and all time's totals agree, spans made and undone by later calls`, async () => {
      const tz = await tenantIn(zone);
      const utc = await tenantIn('UTC');
      // Each tenant's calls on both sides of its own and of UTC's month end (Kiritimati is UTC+14: its Dec 1 begins at
      // 10:00 UTC on Nov 30, and it writes rows for a day after UTC's today).
      const times = ['2026-11-29T12:00:00Z', '2026-11-30T09:00:00Z', '2026-11-30T11:00:00Z', '2026-11-30T19:00:00Z', '2026-12-01T01:00:00Z', '2026-12-02T12:00:00Z'];
      const check = async (c: Client) => {
        const all = (await c.get('/v1/reports?days=true')).json;
        const sum = (ds: Array<{ requests: number; cost_actual?: number }>) => ds.reduce((n, d) => n + d.requests, 0);
        expect(all.requests).toBe(sum(all.days));
        const nov = (await c.get('/v1/reports?from=2026-11-01&to=2026-11-30&days=true')).json;
        const dec = (await c.get('/v1/reports?from=2026-12-01&to=2026-12-31&days=true')).json;
        expect(nov.requests).toBe(sum(nov.days));
        expect(dec.requests).toBe(sum(dec.days));
        expect(nov.requests + dec.requests).toBe(all.requests);
        return { all: all.days, nov: nov.requests, dec: dec.requests };
      };
      for (const at of times) {
        await callAt(tz.client, at);
        await callAt(utc.client, at);
        // Reports between the calls make spans that the next call (on a day they may hold) must undo.
        await check(tz.client);
        await check(utc.client);
      }
      // Weeks later, every month a span: the same figures.
      t.clock.set(Date.parse('2027-01-20T00:00:00Z'));
      const late = await check(tz.client);
      const dayOf = (iso: string) => new Intl.DateTimeFormat('en-CA', { timeZone: zone }).format(new Date(iso));
      const expected = new Map<string, number>();
      for (const at of times) expected.set(dayOf(at), (expected.get(dayOf(at)) ?? 0) + 1);
      expect(late.all.map((d: { day: string; requests: number }) => [d.day, d.requests])).toEqual([...expected]);
      expect([late.nov, late.dec]).toEqual([times.filter((x) => dayOf(x) < '2026-12-01').length, times.filter((x) => dayOf(x) >= '2026-12-01').length]);
      expect((await check(utc.client)).nov).toBe(4);
      // A late call on Kiritimati's (or Kolkata's) Nov 30, after the spans of November were made.
      await callAt(tz.client, zone === 'Pacific/Kiritimati' ? '2026-11-29T11:00:00Z' : '2026-11-30T12:00:00Z');
      t.clock.set(Date.parse('2027-01-20T00:00:00Z'));
      expect((await check(tz.client)).nov).toBe(late.nov + 1);
    });
  }
});

/** Two service processes' apps on one database file (each with its own caches, as two processes have), removed after. */
async function onOneFile(run: (a: ReturnType<typeof createTestApp>, b: ReturnType<typeof createTestApp>) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ph-tz-two-'));
  const file = join(dir, 'prefix-handles.db');
  const a = createTestApp({ databasePath: file });
  const b = createTestApp({ databasePath: file });
  try {
    await run(a, b);
  } finally {
    b.close();
    a.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('two service processes on one database file', () => {
  it("a zone set through one is the other's at once, until the tenant's first reconciled call fixes it", async () => {
    await onOneFile(async (a, b) => {
      const made = await clientFor(a.app, ADMIN_KEY).post('/v1/tenants', { name: 'shared file' });
      const onB = clientFor(b.app, made.json.api_key);
      // B reads the tenant's zone (UTC) for a report, before A changes it.
      expect((await onB.get('/v1/reports')).json.range.time_zone).toBeUndefined();
      expect((await clientFor(a.app, ADMIN_KEY).call('PATCH', `/v1/tenants/${made.json.tenant}`, { time_zone: 'America/Los_Angeles' })).status).toBe(200);
      await callAt(onB, '2026-12-01T06:00:00Z', b);
      const report = (await onB.get('/v1/reports?from=2026-11-30&to=2026-11-30&days=true')).json;
      expect([report.range.time_zone, report.requests, report.days[0]?.day]).toEqual(['America/Los_Angeles', 1, '2026-11-30']);
    });
  });
});

describe('two service processes on one database file: the zone kept', () => {
  it("one process reads a zone the other changes and fixes (its first reconciled call) at once: it keeps the new zone, not the one it read", async () => {
    await onOneFile(async (a, b) => {
      const made = await clientFor(a.app, ADMIN_KEY).post('/v1/tenants', { name: 'shared file' });
      const tenant = made.json.tenant as string;
      const onA = clientFor(a.app, made.json.api_key);
      a.clock.set(Date.parse('2026-12-01T06:00:00Z'));
      const sys = await mintSystem(onA, LONG_SYSTEM);
      const r = await onA.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', prefix: [sys.id], messages: [{ role: 'user', content: 'hi' }] } });
      await a.services.writes.idle();
      // Right after B reads the tenant's row (UTC), A sets Los Angeles and commits a reconciled call in it.
      const read = b.store.getTenant.bind(b.store);
      let committed: Promise<unknown> | undefined;
      b.store.getTenant = (id: string) => {
        const row = read(id);
        b.store.getTenant = read;
        a.services.tenants.renameTenant(tenant, { time_zone: 'America/Los_Angeles' });
        committed = a.services.reconciler.ingest(tenant, { request_id: r.json.request_id, usage: anthropicUsage(r.json.segments.at(-1).token_end, 0, 100) });
        a.services.writes.flushNow();
        return row;
      };
      expect(b.services.tenants.zoneOf(tenant)).toBe('UTC');
      await committed;
      expect(b.services.tenants.zoneOf(tenant)).toBe('America/Los_Angeles');
      b.clock.set(Date.parse('2026-12-02T00:00:00Z'));
      const report = (await clientFor(b.app, made.json.api_key).get('/v1/reports?from=2026-11-30&to=2026-11-30&days=true')).json;
      expect([report.range.time_zone, report.requests, report.days[0]?.day]).toEqual(['America/Los_Angeles', 1, '2026-11-30']);
    });
  });
});

describe('migration 0021', () => {
  it("gives every tenant a database already holds UTC: its reports' bytes and days as before", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ph-tz-0021-'));
    try {
      const file = join(dir, 'prefix-handles.db');
      const before = createTestApp({ databasePath: file });
      const { client, key } = before.tenant('before 0021');
      await callAt(client, '2026-12-01T06:00:00Z', before);
      const answer = (await client.get('/v1/reports?from=2026-12-01&to=2026-12-01&days=true')).text;
      before.close();
      const raw = new Database(file);
      asBefore0021(raw);
      expect((raw.prepare('select name from pragma_table_info(?)').pluck().all('tenants') as string[]).includes('time_zone')).toBe(false);
      raw.close();

      const after = createTestApp({ databasePath: file });
      after.clock.set(Date.parse('2026-12-01T06:00:00Z'));
      try {
        expect(after.sqlite.prepare('select time_zone from tenants').pluck().all()).toEqual(['UTC']);
        expect((await clientFor(after.app, key).get('/v1/reports?from=2026-12-01&to=2026-12-01&days=true')).text).toBe(answer);
      } finally {
        after.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
