// Migration 0018 (leaked_by_class): rollup rows written before it get their leaked money divided among their miss
// classes by tokens, and the spans summed from them are made again, so a report after the upgrade divides the
// leaked savings as reconciliation itself would have.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clientFor, createTestApp, type TestApp } from '../helpers/app';
import { FakeClock } from '../helpers/clock';
import { mintBundle, mintSystem, mintTools } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';

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
    const rows = (db: Database.Database) => db.prepare('select * from rollups order by tenant_id, handle_id, version, day, model').all() as Array<Record<string, number | string>>;
    const written = rows(raw);
    expect(written.filter((r) => (r.leaked_expired as number) > 0 && (r.leaked_unconfirmed as number) > 0).length).toBeGreaterThan(0);
    for (const table of ['rollups', 'rollups_span']) for (const c of LEAKED) raw.prepare(`alter table ${table} drop column ${c}`).run();
    raw.prepare('delete from __drizzle_migrations where created_at = (select max(created_at) from __drizzle_migrations)').run();
    raw.close();

    t = createTestApp({ databasePath: file, clock });
    // Each row's leaked money divided by its classes' tokens: here every missed token of a row cost the same (one
    // model, 5-minute writes), so the division is reconciliation's own.
    const migrated = rows(t.sqlite);
    expect(migrated).toHaveLength(written.length);
    migrated.forEach((m, i) => {
      for (const c of LEAKED) expect(Math.abs((m[c] as number) - (written[i]![c] as number)), `${c} of ${m.handle_id} ${m.day}`).toBeLessThan(1e-12);
    });
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
    const raw = new Database(file);
    raw.prepare("update rollups set leaked_expired = leaked_expired * 1.5, leaked_unconfirmed = leaked_unconfirmed * 0.5, cost_actual = cost_perfect + leaked_expired * 1.5 + leaked_unconfirmed * 0.5 where handle_id = '*'").run();
    const written = raw.prepare("select * from rollups where handle_id = '*' order by day").all() as Array<Record<string, number>>;
    for (const c of LEAKED) raw.prepare(`alter table rollups drop column ${c}`).run();
    for (const c of LEAKED) raw.prepare(`alter table rollups_span drop column ${c}`).run();
    raw.prepare('delete from __drizzle_migrations where created_at = (select max(created_at) from __drizzle_migrations)').run();
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
});
