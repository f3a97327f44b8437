// The calls through no handle (the tenant report's `no_handle`, the overview's "Calls through no handle"), over a
// history of NOHANDLE_REQUESTS (100,000) requests rendered and reconciled through the domain, half of them with their
// system prompt inline:
//  (a) the tenant report as the dashboard asks for it, and its no_handle read alone (the NO_HANDLE rollup rows by the
//      primary key) against the same read of the '*' totals beside it;
//  (b) migration 0017 on that database (its rows deleted and the migration unapplied first): the time openDb takes to
//      apply it, against an open with nothing to apply, and that it writes the rows reconciliation wrote.
import Database from 'better-sqlite3';
import { join } from 'node:path';
import type { Clock } from '../src/domain/clock';
import { NO_HANDLE } from '../src/domain/reconcile/waterfall';
import { openDb } from '../src/store/db';
import { SqliteStore } from '../src/store/sqlite-store';
import { fmt, median, printTable, tempDir, writeResults, type Benchmark } from './lib';
import { inProcess, prose } from './render';

const REQUESTS = Number(process.env.NOHANDLE_REQUESTS ?? 100_000);
const DAYS = 30;
const DAY = 86_400_000;
const CHUNK = 1000;
const SAMPLES = 200;
const MODELS = [
  { format: 'anthropic', model: 'claude-sonnet-4-5' },
  { format: 'openai-chat', model: 'gpt-4.1' },
] as const;

async function build(file: string) {
  const start = Date.now() - DAYS * DAY;
  let now = start;
  const clock: Clock = { now: () => now };
  const app = inProcess(file, { clock });
  const tid = app.tenantId;
  const system = prose(7, 8 * 1024);
  const sys = app.services.handles.mintArtifact(tid, { kind: 'system', name: 'support', content: system }).handle.id;
  let done = 0;
  const t0 = performance.now();
  while (done < REQUESTS) {
    const chunk: Array<{ id: string; format: string; at: number; read: number; write: number; total: number }> = [];
    app.sqlite.transaction(() => {
      for (let j = 0; j < CHUNK && done < REQUESTS; j++, done++) {
        const m = MODELS[Math.floor(done / 25) % MODELS.length]!;
        now = start + Math.floor((done * (DAYS * DAY)) / REQUESTS);
        const question = `{"role":"user","content":"Call ${done}: where is my order?"}`;
        // Every other loop of 25 calls sends the same system prompt inline: through no handle.
        const inline = Math.floor(done / 50) % 2 === 1;
        const head = m.format === 'anthropic' ? `"model":"${m.model}","max_tokens":256` : `"model":"${m.model}"`;
        const body = inline
          ? m.format === 'anthropic'
            ? `{${head},"system":${JSON.stringify(system)},"messages":[${question}]}`
            : `{${head},"messages":[{"role":"system","content":${JSON.stringify(system)}},${question}]}`
          : `{${head},"prefix":["${sys}"],"messages":[${question}]}`;
        const r = app.services.requests.render({ tenantId: tid, format: m.format, bodyText: body, pointer: '/request' });
        const p = (r.prediction ?? { read_tokens: 0, write_tokens: 0 }) as { read_tokens: number; write_tokens: number };
        chunk.push({ id: r.requestId, format: m.format, at: now, read: p.read_tokens, write: p.write_tokens, total: r.segments.at(-1)!.token_end });
      }
    })();
    const results = await app.services.reconciler.ingestMany(
      tid,
      chunk.map((c) => ({
        request_id: c.id,
        usage:
          c.format === 'anthropic'
            ? { input_tokens: c.total - c.read - c.write, cache_creation_input_tokens: c.write, cache_read_input_tokens: c.read, output_tokens: 50 }
            : { prompt_tokens: c.total, completion_tokens: 50, prompt_tokens_details: { cached_tokens: c.read } },
        started_at: c.at,
        first_byte_at: c.at + 500,
        finished_at: c.at + 1500,
      })),
    );
    const bad = results.find((x) => !x.ok);
    if (bad) throw new Error(`a usage report was refused: ${JSON.stringify(bad)}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  now = Date.now();
  return { app, tid, seconds, now };
}

function timed(f: () => unknown): number {
  const a = performance.now();
  f();
  return performance.now() - a;
}

async function run(): Promise<void> {
  const dir = tempDir('no-handle');
  const file = join(dir, 'prefix-handles.db');
  console.log(`  building ${fmt.rps(REQUESTS)} requests through the domain (render + ingestMany), half with the system prompt inline…`);
  const { app, tid, seconds, now } = await build(file);
  const second = openDb(file);
  const store = new SqliteStore(second.db, second.walSync, { now: () => now });
  const report = app.services.reports.tenant(tid, {}, now, 200);
  const span = { tenantId: tid, fromDay: 0, toDay: Math.floor(now / DAY) };
  const sample = (f: () => unknown) => {
    for (let w = 0; w < 20; w++) f();
    return median(Array.from({ length: SAMPLES }, () => timed(f)));
  };
  const tenant30d = sample(() => app.services.reports.tenant(tid, { from: now - 29 * DAY }, now, 200));
  const tenantAll = sample(() => app.services.reports.tenant(tid, {}, now, 200));
  const noHandle = sample(() => store.sumRollups({ ...span, handleId: NO_HANDLE }));
  const totals = sample(() => store.sumRollups({ ...span, handleId: '*' }));
  second.close();
  const written = app.sqlite.prepare(`select * from rollups where handle_id = ? order by tenant_id, day, model`).all(NO_HANDLE) as Array<Record<string, unknown>>;
  const requestRows = app.sqlite.prepare('select count(*) from requests').pluck().get() as number;
  app.sqlite.pragma('wal_checkpoint(TRUNCATE)');
  app.close();

  // As a database before 0017: no NO_HANDLE rows, the migration not applied.
  const raw = new Database(file);
  raw.prepare('delete from rollups where handle_id = ?').run(NO_HANDLE);
  raw.prepare('delete from __drizzle_migrations where created_at = (select max(created_at) from __drizzle_migrations)').run();
  raw.pragma('wal_checkpoint(TRUNCATE)');
  raw.close();
  const a = performance.now();
  const migrated = openDb(file);
  const migrateMs = performance.now() - a;
  const rows = migrated.sqlite.prepare(`select * from rollups where handle_id = ? order by tenant_id, day, model`).all(NO_HANDLE) as Array<Record<string, unknown>>;
  migrated.close();
  const b = performance.now();
  openDb(file).close();
  const plainOpenMs = performance.now() - b;
  // Money summed in another order: equal to float noise.
  const differs = (a: unknown, b: unknown) => (typeof b === 'number' && !Number.isInteger(b) ? Math.abs((a as number) - b) >= 1e-9 : a !== b);
  const diffs = rows.length !== written.length ? [`${rows.length} rows, not ${written.length}`] : rows.flatMap((r, i) => Object.entries(written[i]!).filter(([k, v]) => differs(r[k], v)).map(([k, v]) => `row ${i} ${k}: ${r[k]} vs ${v}`));
  if (diffs.length) throw new Error(`migration 0017 wrote other rows than reconciliation did: ${diffs.slice(0, 10).join('; ')}`);

  console.log(`\nhistory: ${fmt.rps(requestRows)} requests in ${seconds.toFixed(0)} s; no_handle over all time: ${fmt.rps(report.no_handle.requests)} calls, ${fmt.rps(report.no_handle.tokens.prompt)} prompt tokens (${written.length} rollup rows)`);
  printTable(
    ['read', 'median ms'],
    [
      ['tenant report, 30d (limit 200)', tenant30d.toFixed(3)],
      ['tenant report, all time (limit 200)', tenantAll.toFixed(3)],
      ['  its no_handle read alone', noHandle.toFixed(3)],
      ["  the '*' totals' read beside it", totals.toFixed(3)],
      ['open applying migration 0017', migrateMs.toFixed(1)],
      ['open with nothing to apply', plainOpenMs.toFixed(1)],
    ],
  );
  console.log(`migration 0017 wrote the ${rows.length} rows reconciliation wrote`);
  writeResults('no-handle', { requests: requestRows, buildSeconds: seconds, noHandle: report.no_handle, rows: rows.length, ms: { tenant30d, tenantAll, noHandle, totals, migrate: migrateMs, plainOpen: plainOpenMs } });
}

export const noHandleBenchmarks: Benchmark[] = [{ name: 'no-handle', run }];
