// Every handle's sums over a range come from spans (a month's rollups, or every day's, summed once; see
// SqliteStore.sumHandles) and the days around them. They must equal the sum of the day rows themselves over any
// range, whichever writes came since a span was made: late ones into a month already summed, from this store or
// another one on the same file (a second service process).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/domain/clock';
import { ID_PREFIX } from '../../src/domain/ids';
import { ROLLUP_MONEY, ROLLUP_VALUE_COLUMNS } from '../../src/domain/reconcile/waterfall';
import { openDb, type OpenedDb } from '../../src/store/db';
import { SqliteStore } from '../../src/store/sqlite-store';
import type { HandleSums, RequestRow, RollupDelta, WriteOp } from '../../src/store/store';
import { FakeClock } from '../helpers/clock';

const MONEY = new Set<string>(ROLLUP_MONEY);
const HANDLES = ['art_a', 'art_b', 'bnd_c', 'ses_d'];

let dir: string;
let files: OpenedDb[];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ph-spans-'));
  files = [];
});
afterEach(() => {
  for (const f of files) f.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Two stores on one file, each with its own connection (as two service processes), on one clock. */
function open(clock: FakeClock): { stores: SqliteStore[]; sqlite: OpenedDb['sqlite'] } {
  const path = join(dir, 'db.sqlite');
  const stores = [0, 1].map(() => {
    const opened = openDb(path);
    files.push(opened);
    return new SqliteStore(opened.db, opened.walSync, clock);
  });
  files[0]!.sqlite.prepare(`insert or ignore into tenants (id, name, created_at) values ('ten_1', 't', 0)`).run();
  return { stores, sqlite: files[0]!.sqlite };
}

let n = 0;
/** A usage report's batch whose rollups are these: counts of `x`, money of x/64 (sums of these are exact in any order). */
function reportOps(deltas: Array<{ handle: string; version: number; day: number; model: string; x: number }>): WriteOp[] {
  const id = `req_span${++n}`;
  const row = { id, tenantId: 'ten_1', scope: 's', format: 'anthropic', model: 'm', catalogEntry: 'm', catalogFallback: false, renderedAt: 1, segments: [], breakpoints: [], promptCacheKey: null, prediction: null } as unknown as RequestRow;
  const rollups: RollupDelta[] = deltas.flatMap((d) => {
    const values = Object.fromEntries(ROLLUP_VALUE_COLUMNS.map((c) => [c, MONEY.has(c) ? d.x / 64 : d.x]));
    // The tenant's totals row too: never among every handle's sums.
    return [d.handle, '*'].map((handleId) => ({ tenantId: 'ten_1', handleId, version: handleId === '*' ? 0 : d.version, day: d.day, model: d.model, values }));
  });
  const request = { id, status: 'reconciled', startedAt: 1, firstByteAt: 1, finishedAt: 1, reportHash: id, usageRaw: {}, usage: {}, diagnostics: null, outcome: {}, writePremium: {} } as never;
  return [
    { kind: 'request', row, inline: [] },
    { kind: 'ingest', write: { request, rollups, drift: [], calibration: null, markWriteRead: null } },
  ];
}

/** The day rows' own sums per handle, by a plain query over them. */
function daySums(sqlite: OpenedDb['sqlite'], fromDay: number, toDay: number, model?: string): HandleSums[] {
  return sqlite
    .prepare(
      `select handle_id, ${ROLLUP_VALUE_COLUMNS.map((c) => `sum(${c}) as ${c}`).join(', ')} from rollups
       where tenant_id = 'ten_1' and day between ? and ? and handle_id != '*' ${model ? 'and model = ?' : ''} group by handle_id`,
    )
    .all(...[fromDay, toDay, ...(model ? [model] : [])]) as HandleSums[];
}

const byHandle = (rows: HandleSums[]) => [...rows].sort((a, b) => a.handle_id.localeCompare(b.handle_id));
const spansHeld = (sqlite: OpenedDb['sqlite']) => sqlite.prepare(`select span, through from rollups_span_through order by span`).all() as Array<{ span: number; through: number }>;
const dayOf = (iso: string) => Date.parse(iso) / DAY_MS;
const ALL_DAYS = -1e9;

const deltaArb = fc.record({
  handle: fc.constantFrom(...HANDLES),
  version: fc.constantFrom(1, 2),
  model: fc.constantFrom('m1', 'm2'),
  // Days before today: today's report, yesterday's (after midnight), or a late import of up to four months ago.
  back: fc.oneof(fc.constant(0), fc.constantFrom(1, 2, 2, 3), fc.nat(125)),
  x: fc.integer({ min: 1, max: 9 }),
});
const opArb = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant('write' as const), by: fc.nat(1), deltas: fc.array(deltaArb, { minLength: 1, maxLength: 4 }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('advance' as const), days: fc.constantFrom(0.4, 1, 1, 2, 9, 31) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant('read' as const),
      by: fc.nat(1),
      // Days before today (null: from the start, to today); `month`: moved to its month's first day.
      from: fc.option(fc.nat(130)),
      to: fc.option(fc.nat(130)),
      month: fc.boolean(),
      model: fc.option(fc.constantFrom('m1', 'm2')),
      // Also read for some handles only, and two columns only (as a report with a limit ranks and then sums).
      some: fc.subarray(HANDLES),
      // And for handles of some types only (a ranking of sessions, or of artifacts and bundles).
      types: fc.subarray(['artifact', 'bundle', 'session'] as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('restart' as const), by: fc.nat(1) }) },
);

describe('every handle\'s sums from spans', () => {
  it('equal the day rows\' sums over any range: all time, months, partial months, after late writes from either store', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 5, maxLength: 40 }), (ops) => {
        const clock = new FakeClock(Date.UTC(2026, 4, 20, 12));
        const { stores, sqlite } = open(clock);
        const today = () => Math.floor(clock.now() / DAY_MS);
        for (const op of ops) {
          if (op.k === 'write') stores[op.by]!.writeBatch(reportOps(op.deltas.map((d) => ({ ...d, day: today() - d.back }))));
          else if (op.k === 'advance') clock.advance(op.days * DAY_MS);
          else if (op.k === 'restart') {
            const opened = files[op.by]!;
            stores[op.by] = new SqliteStore(opened.db, opened.walSync, clock);
          } else {
            let fromDay = op.from === null ? 0 : today() - op.from;
            if (op.month && op.from !== null) fromDay = Date.UTC(new Date(fromDay * DAY_MS).getUTCFullYear(), new Date(fromDay * DAY_MS).getUTCMonth(), 1) / DAY_MS;
            const toDay = op.to === null ? today() : today() - op.to;
            const q = { tenantId: 'ten_1', fromDay, toDay, ...(op.model ? { model: op.model } : {}) };
            const expected = byHandle(daySums(sqlite, fromDay, toDay, op.model ?? undefined));
            expect(byHandle(stores[op.by]!.sumHandles(q)), JSON.stringify(q)).toEqual(expected);
            const some = expected.filter((r) => op.some.includes(r.handle_id));
            expect(byHandle(stores[op.by]!.sumHandles({ ...q, handles: op.some })), `${JSON.stringify(q)} ${op.some}`).toEqual(some);
            const two = expected.map((r) => ({ handle_id: r.handle_id, cost_actual: r.cost_actual, cost_perfect: r.cost_perfect }));
            expect(byHandle(stores[op.by]!.sumHandles(q, ['cost_actual', 'cost_perfect'])), `${JSON.stringify(q)} two columns`).toEqual(two);
            const typed = expected.filter((r) => op.types.some((type) => r.handle_id.startsWith(`${ID_PREFIX[type]}_`)));
            expect(byHandle(stores[op.by]!.sumHandles({ ...q, types: op.types })), `${JSON.stringify(q)} ${op.types}`).toEqual(typed);
            // Together: those handles' rows as one (none when there are none).
            const together = typed.length ? [Object.fromEntries([['handle_id', '*'], ...ROLLUP_VALUE_COLUMNS.map((c) => [c, typed.reduce((a, r) => a + r[c]!, 0)])])] : [];
            expect(stores[op.by]!.sumHandles({ ...q, types: op.types, together: true }), `${JSON.stringify(q)} ${op.types} together`).toEqual(together);
          }
        }
        for (const f of files.splice(0)) f.close();
        rmSync(join(dir, 'db.sqlite'), { force: true });
        rmSync(join(dir, 'db.sqlite-wal'), { force: true });
        rmSync(join(dir, 'db.sqlite-shm'), { force: true });
      }),
      { numRuns: Number(process.env.SPAN_RUNS ?? 100) },
    );
  });

  it('all time: every day\'s span through two days ago, then the last two days\' rows; a late write undoes its month\'s span and every day\'s, nothing else', () => {
    const clock = new FakeClock(Date.parse('2026-05-20T12:00:00Z'));
    const { stores, sqlite } = open(clock);
    const [a, b] = stores as [SqliteStore, SqliteStore];
    for (const day of ['2026-03-05', '2026-04-10', '2026-05-01', '2026-05-18', '2026-05-19', '2026-05-20'])
      a.writeBatch(reportOps([{ handle: 'art_a', version: 1, day: dayOf(day), model: 'm1', x: 1 }]));
    const all = { tenantId: 'ten_1', fromDay: 0, toDay: dayOf('2026-05-20') };
    expect(a.sumHandles(all)[0]!.requests).toBe(6);
    // Each month through its end (May: through the 18th), and every day's span made from them.
    expect(spansHeld(sqlite)).toEqual([
      { span: ALL_DAYS, through: dayOf('2026-05-18') },
      { span: dayOf('2026-03-01'), through: dayOf('2026-03-31') },
      { span: dayOf('2026-04-01'), through: dayOf('2026-04-30') },
      { span: dayOf('2026-05-01'), through: dayOf('2026-05-18') },
    ]);
    const spanRows = sqlite.prepare(`select count(*) from rollups_span where span = ?`).pluck();
    expect(spanRows.get(ALL_DAYS)).toBe(1);

    // Today's reports and yesterday's (late, after midnight) leave every span as it was.
    b.writeBatch(reportOps([{ handle: 'art_b', version: 1, day: dayOf('2026-05-20'), model: 'm1', x: 1 }, { handle: 'art_a', version: 1, day: dayOf('2026-05-19'), model: 'm2', x: 1 }]));
    expect(spansHeld(sqlite)).toHaveLength(4);
    // Two days ago, the last day the spans hold: May's and every day's are undone.
    b.writeBatch(reportOps([{ handle: 'art_b', version: 1, day: dayOf('2026-05-18'), model: 'm1', x: 1 }]));
    expect(spansHeld(sqlite).map((s) => s.span)).toEqual([dayOf('2026-03-01'), dayOf('2026-04-01')]);
    expect(byHandle(a.sumHandles(all))).toEqual(byHandle(daySums(sqlite, all.fromDay, all.toDay)));
    // A late import into April, by the other store: April's span and every day's are undone; March and May stand.
    b.writeBatch(reportOps([{ handle: 'art_a', version: 2, day: dayOf('2026-04-02'), model: 'm1', x: 5 }]));
    expect(spansHeld(sqlite).map((s) => s.span)).toEqual([dayOf('2026-03-01'), dayOf('2026-05-01')]);
    expect(byHandle(a.sumHandles(all))).toEqual(byHandle(daySums(sqlite, all.fromDay, all.toDay)));
    expect(a.sumHandles(all).find((r) => r.handle_id === 'art_a')!.requests).toBe(12);
    expect(spansHeld(sqlite)).toHaveLength(4);

    // A day on, every day's span and May's gain the one day (caught up, not made again).
    clock.advance(DAY_MS);
    const before = sqlite.prepare(`select rowid from rollups_span where span = ?`).pluck().all(dayOf('2026-03-01'));
    expect(byHandle(a.sumHandles({ ...all, toDay: all.toDay + 1 }))).toEqual(byHandle(daySums(sqlite, 0, all.toDay + 1)));
    expect(spansHeld(sqlite).find((s) => s.span === ALL_DAYS)?.through).toBe(dayOf('2026-05-19'));
    expect(sqlite.prepare(`select rowid from rollups_span where span = ?`).pluck().all(dayOf('2026-03-01'))).toEqual(before);
  });

  it('a range from a month\'s first day reads that month\'s span and the days after; a range within a month reads only days', () => {
    const clock = new FakeClock(Date.parse('2026-05-20T12:00:00Z'));
    const { stores, sqlite } = open(clock);
    for (const day of ['2026-02-27', '2026-03-05', '2026-04-10', '2026-05-02'])
      stores[0]!.writeBatch(reportOps([{ handle: 'ses_d', version: 3, day: dayOf(day), model: 'm1', x: 2 }]));
    const q = { tenantId: 'ten_1', fromDay: dayOf('2026-03-01'), toDay: dayOf('2026-05-20') };
    expect(byHandle(stores[0]!.sumHandles(q))).toEqual(byHandle(daySums(sqlite, q.fromDay, q.toDay)));
    expect(spansHeld(sqlite).map((s) => s.span)).toEqual([dayOf('2026-03-01'), dayOf('2026-04-01'), dayOf('2026-05-01')]);
    sqlite.prepare('delete from rollups_span_through').run();
    expect(stores[0]!.sumHandles({ tenantId: 'ten_1', fromDay: dayOf('2026-03-02'), toDay: dayOf('2026-03-30') })[0]!.requests).toBe(2);
    expect(spansHeld(sqlite)).toEqual([]);
  });
});
