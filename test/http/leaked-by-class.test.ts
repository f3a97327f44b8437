// Migration 0018 (leaked_by_class): rollup rows written before it get their leaked money divided among their miss
// classes by tokens, and the spans summed from them are made again, so a report after the upgrade divides the
// leaked savings as reconciliation itself would have.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clientFor, createTestApp, type TestApp } from '../helpers/app';
import { asBefore0019 } from '../helpers/migrations';
import { FakeClock } from '../helpers/clock';
import { mintBundle, mintSystem, mintTools, startSession, userMessage } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report, type Rendered } from '../helpers/scenario';

const MIN = 60_000;
const DAY = 86_400_000;
const LEAKED = ['leaked_drift', 'leaked_expired', 'leaked_concurrent', 'leaked_below_minimum', 'leaked_no_breakpoint', 'leaked_lookback', 'leaked_unconfirmed'];

let dir: string;
let file: string;
let t: TestApp;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ph-leaked-'));
  file = join(dir, 'db.sqlite');
});
afterEach(() => {
  t?.close();
  rmSync(dir, { recursive: true, force: true });
});

type Row = Record<string, number | string>;
const rows = (db: Database.Database) => db.prepare('select * from rollups order by tenant_id, handle_id, version, day, model').all() as Row[];

/** Each migrated row's leaked money by class as reconciliation wrote it, row for row. */
function expectAsWritten(migrated: Row[], written: Row[]): void {
  expect(migrated).toHaveLength(written.length);
  migrated.forEach((m, i) => {
    for (const c of LEAKED) expect(Math.abs((m[c] as number) - (written[i]![c] as number)), `${c} of ${m.handle_id}@${m.version} day ${m.day}`).toBeLessThan(1e-12);
  });
}

/** A database as 0018 found it: without its columns (nor the spans'), the migration not applied. */
function asBefore0018(raw: Database.Database): void {
  asBefore0019(raw);
  for (const table of ['rollups', 'rollups_span']) for (const c of LEAKED) raw.prepare(`alter table ${table} drop column ${c}`).run();
  raw.prepare('delete from __drizzle_migrations where created_at = (select max(created_at) from __drizzle_migrations)').run();
}

/** An agent on one model: written, read, expired and written again, then a write the provider did not read. */
async function history(clock: FakeClock) {
  t = createTestApp({ databasePath: file, clock });
  const { client, key } = t.tenant();
  const bundle = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, LONG_SYSTEM)).id]);
  const turn = (text: string) => renderAnthropic(client, { prefix: [bundle.id], messages: [{ role: 'user', content: text }] });
  for (let day = 0; day < 3; day++) {
    const r1 = await turn(`a${day}`);
    const C = r1.segments[1]!.token_end;
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, C));
    clock.advance(MIN);
    const r2 = await turn(`b${day}`);
    await report(client, t, r2, anthropicUsage(promptTokens(r2), C, 0));
    clock.advance(10 * MIN);
    const r3 = await turn(`c${day}`);
    await report(client, t, r3, anthropicUsage(promptTokens(r3), 0, C));
    clock.advance(MIN);
    // Evicted early: the provider wrote again what a cache would still hold.
    const r4 = await turn(`d${day}`);
    await report(client, t, r4, anthropicUsage(promptTokens(r4), 0, C));
    clock.advance(DAY);
  }
  return { bundle, key };
}

describe('migration 0018 (leaked_by_class)', () => {
  it('divides the leaked money of rows written before it among their classes, as reconciliation does, and makes the spans again', async () => {
    const clock = new FakeClock();
    const { bundle, key } = await history(clock);
    clock.advance(3 * DAY);
    // All time: read from spans (every day's, made from the months'), which this report makes.
    const before = { tenant: (await clientFor(t.app, key).get('/v1/reports')).json, handle: (await clientFor(t.app, key).get(`/v1/reports/handles/${bundle.id}`)).json };
    expect(before.tenant.money.leaked_by_class.expired).toBeGreaterThan(0);
    expect(before.tenant.money.leaked_by_class.unconfirmed).toBeGreaterThan(0);
    expect(t.sqlite.prepare('select count(*) from rollups_span').pluck().get()).toBeGreaterThan(0);
    t.close();

    // As a database before 0018: no such columns, the migration not applied, spans made without them.
    const raw = new Database(file);
    const written = rows(raw);
    expect(written.filter((r) => (r.leaked_expired as number) > 0 && (r.leaked_unconfirmed as number) > 0).length).toBeGreaterThan(0);
    asBefore0018(raw);
    raw.close();

    t = createTestApp({ databasePath: file, clock });
    // Each row's leaked money divided as reconciliation divided it.
    expectAsWritten(rows(t.sqlite), written);
    expect(t.sqlite.prepare('select count(*) from rollups_span').pluck().get()).toBe(0);
    expect(t.sqlite.prepare('select count(*) from rollups_span_through').pluck().get()).toBe(0);
    // The reports read spans made again: the same figures as before the upgrade.
    expect((await clientFor(t.app, key).get('/v1/reports')).json.money).toEqual(before.tenant.money);
    expect((await clientFor(t.app, key).get(`/v1/reports/handles/${bundle.id}`)).json.money).toEqual(before.handle.money);
    expect(t.sqlite.prepare('select count(*) from rollups_span').pluck().get()).toBeGreaterThan(0);
  });

  it('a row whose misses cost different prices is divided by tokens, still adding up to its leaked money', async () => {
    const clock = new FakeClock();
    await history(clock);
    t.close();
    // A row of two prices, as rows of 5-minute and 1-hour writes on one day are: its classes made unequal per token.
    // Its calls pruned since (the stored ones are divided as reconciliation divides them: the next test).
    const raw = new Database(file);
    for (const table of ['request_summaries', 'reconciliations']) raw.prepare(`delete from ${table}`).run();
    raw.prepare("update rollups set leaked_expired = leaked_expired * 1.5, leaked_unconfirmed = leaked_unconfirmed * 0.5, cost_actual = cost_perfect + leaked_expired * 1.5 + leaked_unconfirmed * 0.5 where handle_id = '*'").run();
    const written = raw.prepare("select * from rollups where handle_id = '*' order by day").all() as Array<Record<string, number>>;
    asBefore0018(raw);
    raw.close();

    t = createTestApp({ databasePath: file, clock });
    const migrated = t.sqlite.prepare("select * from rollups where handle_id = '*' order by day").all() as Array<Record<string, number>>;
    migrated.forEach((m, i) => {
      const w = written[i]!;
      const leaked = m.cost_actual! - m.cost_perfect!;
      const missed = m.drift! + m.expired! + m.concurrent! + m.below_minimum! + m.no_breakpoint! + m.lookback! + m.unconfirmed!;
      expect(leaked).toBeGreaterThan(0);
      for (const c of LEAKED) expect(Math.abs(m[c]! - (leaked * m[c.slice('leaked_'.length)]!) / missed), c).toBeLessThan(1e-12);
      expect(Math.abs(LEAKED.reduce((n, c) => n + m[c]!, 0) - leaked)).toBeLessThan(1e-12);
      // Not the written division (the row's prices differed): the tokens decide.
      expect(Math.abs(m.leaked_expired! - w.leaked_expired!)).toBeGreaterThan(1e-9);
    });
  });

  it('the calls still stored are divided as reconciliation divided them: misses of calls without cache fields take none of the money, 5-minute and 1-hour writes each their own', async () => {
    const clock = new FakeClock();
    t = createTestApp({ databasePath: file, clock });
    const { client, key } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const bundle = await mintBundle(client, [(await mintTools(client)).id, sys.id]);
    const ses = await startSession(client, { base: bundle.id, messages: [userMessage('turn 1')] });
    expect((await client.post(`/v1/sessions/${ses.id}/messages`, { messages: [{ role: 'assistant', content: `turn 2: ${'words '.repeat(80)}` }] })).status).toBe(201);
    const unknown = (r: Rendered) => ({ input_tokens: promptTokens(r), output_tokens: 9 });
    for (const prefix of [[bundle.id], [`${ses.id}@1`], [`${ses.id}@2`]]) {
      const turn = (text: string, extra: object = {}) => renderAnthropic(client, { prefix, messages: [userMessage(text)], ...extra });
      const r1 = await turn('a');
      const C = r1.breakpoints.at(-1)!.token_end;
      await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, C));
      clock.advance(10 * MIN);
      // Expired, on a call without cache fields: its misses have no money.
      const r2 = await turn('b');
      await report(client, t, r2, unknown(r2));
      clock.advance(MIN);
      // Not read where the cache would have held it (unconfirmed), written again for an hour at 2x.
      const r3 = await turn('c');
      await report(client, t, r3, { ...anthropicUsage(promptTokens(r3), 0, C), cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: C } });
      clock.advance(10 * MIN);
      // Expired, written again at 1.25x.
      const r4 = await turn('d');
      await report(client, t, r4, anthropicUsage(promptTokens(r4), 0, C));
      clock.advance(MIN);
    }
    // Calls with their prompt inline: the '-' rows, one without cache fields.
    const inline = (text: string) => renderAnthropic(client, { system: [{ type: 'text', text: LONG_SYSTEM, cache_control: { type: 'ephemeral' } }], messages: [userMessage(text)] });
    const n1 = await inline('x');
    await report(client, t, n1, anthropicUsage(promptTokens(n1), 0, n1.breakpoints.at(-1)!.token_end));
    clock.advance(10 * MIN);
    const n2 = await inline('y');
    await report(client, t, n2, unknown(n2));
    clock.advance(MIN);
    const n3 = await inline('z');
    await report(client, t, n3, anthropicUsage(promptTokens(n3), 0, n3.breakpoints.at(-1)!.token_end));
    t.services.writes.flushNow();
    const written = rows(t.sqlite);
    // Rows whose misses are partly those of calls without cache fields, on every kind of row.
    const mixed = written.filter((r) => (r.req_unknown as number) > 0 || (r.cost_unknown as number) > 0);
    expect(new Set(mixed.map((r) => (r.handle_id as string).slice(0, 4)))).toEqual(new Set(['*', '-', 'art_', 'bnd_', 'ses_']));
    expect(new Set(written.filter((r) => (r.handle_id as string).startsWith('ses_')).map((r) => r.version))).toEqual(new Set([1, 2]));
    const before = (await clientFor(t.app, key).get(`/v1/reports/handles/${ses.id}`)).json;
    t.close();

    const raw = new Database(file);
    asBefore0018(raw);
    raw.close();
    t = createTestApp({ databasePath: file, clock });
    // Each row as reconciliation wrote it. Divided by tokens, the expired tokens of the calls without cache fields took
    // a share of the money the others leaked, and the 1-hour write's miss cost as much a token as a 5-minute one's.
    expectAsWritten(rows(t.sqlite), written);
    expect((await clientFor(t.app, key).get(`/v1/reports/handles/${ses.id}`)).json.money).toEqual(before.money);
    t.close();

    // Some calls pruned since: theirs divided by the tokens they missed, the stored ones' as written; each row's
    // classes still add up to its leaked money.
    const again = new Database(file);
    asBefore0018(again);
    const pruned = again.prepare("select c.request_id from reconciliations c where json_extract(c.outcome, '$.capture') = 'reported' order by c.seq limit 3").pluck().all() as string[];
    expect(pruned).toHaveLength(3);
    for (const id of pruned) {
      again.prepare('delete from request_summaries where seq in (select seq from reconciliations where request_id = ?)').run(id);
      again.prepare('delete from reconciliations where request_id = ?').run(id);
    }
    again.close();
    t = createTestApp({ databasePath: file, clock });
    for (const m of rows(t.sqlite)) {
      const leaked = (m.cost_actual as number) - (m.cost_perfect as number);
      const byClass = LEAKED.reduce((n, c) => n + (m[c] as number), 0);
      expect(Math.abs(byClass - Math.max(0, leaked)), `${m.handle_id}@${m.version}`).toBeLessThan(1e-12);
      for (const c of LEAKED) expect(m[c] as number, c).toBeGreaterThanOrEqual(0);
    }
  });
});
