// Deleting a large tenant (DELETE /v1/tenants/{id}): DELETE_REQUESTS (50,000) requests rendered and reconciled through
// the domain for one tenant (a system artifact and 250 sessions of 200 calls, each growing by a turn every 20), beside
// a small one.
//  (a) as the service deletes it: its batches of DELETE_BATCH_ROWS rows, each one transaction holding the write lock,
//      timed one by one (the longest is the longest the database, and the event loop, is held), and in all;
//  (b) on a copy of the same file, the same rows deleted without batches (every request and row of it in one
//      transaction, then its handles): how long one transaction would hold the database.
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../src/domain/clock';
import { DELETE_BATCH_ROWS } from '../src/domain/tenant-deletion';
import { openDb } from '../src/store/db';
import { SqliteStore } from '../src/store/sqlite-store';
import { fmt, median, percentile, printTable, tempDir, writeResults, type Benchmark } from './lib';
import { inProcess, prose } from './render';

const REQUESTS = Number(process.env.DELETE_REQUESTS ?? 50_000);
const CHUNK = 1000;
const DAY = 86_400_000;

async function build(file: string) {
  const start = Date.now() - 20 * DAY;
  let now = start;
  const clock: Clock = { now: () => now };
  const app = inProcess(file, { clock });
  const other = app.services.tenants.createTenant('small');
  app.services.handles.mintArtifact(other.tenant, { kind: 'document', content: prose(3, 2048) });
  const tid = app.tenantId;
  const sys = app.services.handles.mintArtifact(tid, { kind: 'system', name: 'support', content: prose(7, 8 * 1024) }).handle.id;
  let ses = '';
  let done = 0;
  while (done < REQUESTS) {
    const chunk: Array<{ id: string; at: number; total: number; read: number; write: number }> = [];
    app.sqlite.transaction(() => {
      for (let j = 0; j < CHUNK && done < REQUESTS; j++, done++) {
        now = start + Math.floor((done * 19 * DAY) / REQUESTS);
        if (done % 200 === 0) ses = app.services.handles.createSession(tid, {}).handle.id;
        if (done % 20 === 0) app.services.handles.appendMessages(tid, ses, [{ role: 'user', content: `Turn ${done}: ${prose(done, 400)}` }, { role: 'assistant', content: `Answer ${done}.` }]);
        const body = `{"model":"claude-sonnet-4-5","max_tokens":256,"prefix":["${sys}","${ses}"],"messages":[{"role":"user","content":"Call ${done}: where is my order?"}]}`;
        const r = app.services.requests.render({ tenantId: tid, format: 'anthropic', bodyText: body, pointer: '/request' });
        const p = (r.prediction ?? { read_tokens: 0, write_tokens: 0 }) as { read_tokens: number; write_tokens: number };
        chunk.push({ id: r.requestId, at: now, total: r.segments.at(-1)!.token_end, read: p.read_tokens, write: p.write_tokens });
      }
    })();
    const results = await app.services.reconciler.ingestMany(
      tid,
      chunk.map((c) => ({
        request_id: c.id,
        usage: { input_tokens: c.total - c.read - c.write, cache_creation_input_tokens: c.write, cache_read_input_tokens: c.read, output_tokens: 50 },
        started_at: c.at,
        first_byte_at: c.at + 500,
        finished_at: c.at + 1500,
      })),
    );
    const bad = results.find((x) => !x.ok);
    if (bad) throw new Error(`a usage report was refused: ${JSON.stringify(bad)}`);
  }
  await app.services.writes.idle();
  return { app, tid };
}

/** Rows in every table. */
function count(sqlite: ReturnType<typeof openDb>['sqlite']): number {
  const tables = sqlite.prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'").pluck().all() as string[];
  return tables.reduce((n, t) => n + Number(sqlite.prepare(`select count(*) from ${t}`).pluck().get()), 0);
}

async function run(): Promise<void> {
  const dir = tempDir('tenant-delete');
  const file = join(dir, 'prefix-handles.db');
  console.log(`  building ${fmt.rps(REQUESTS)} requests of one tenant through the domain (render + ingestMany)…`);
  const { app, tid } = await build(file);
  const before = count(app.sqlite);
  app.sqlite.pragma('wal_checkpoint(TRUNCATE)');
  copyFileSync(file, join(dir, 'copy.db'));

  // (a) As the service deletes it, each batch timed.
  const batch = SqliteStore.prototype.deleteTenantBatch;
  const times: number[] = [];
  SqliteStore.prototype.deleteTenantBatch = function timedBatch(this: SqliteStore, id: string, limit: number) {
    const a = performance.now();
    const r = batch.call(this, id, limit);
    times.push(performance.now() - a);
    return r;
  };
  const a = performance.now();
  const result = await app.services.deletion.delete(tid, 'bench').finally(() => (SqliteStore.prototype.deleteTenantBatch = batch));
  const totalMs = performance.now() - a;
  const after = count(app.sqlite);
  app.close();

  // (b) The same rows in one transaction (and its handles in one more).
  const copy = openDb(join(dir, 'copy.db'));
  const plain = new SqliteStore(copy.db, copy.walSync, { now: () => Date.now() });
  plain.markTenantDeleting(tid, () => true);
  const b = performance.now();
  const whole = plain.deleteTenantBatch(tid, 1e9);
  const wholeMs = performance.now() - b;
  if (!whole.done) plain.deleteTenantBatch(tid, 1e9);
  copy.close();

  const sorted = [...times].sort((x, y) => x - y);
  console.log(`\n${fmt.rps(before)} rows before, ${fmt.rps(result.rows)} deleted (${fmt.rps(after)} left: the other tenant's and the global ones)`);
  printTable(
    ['deletion', 'ms'],
    [
      [`batches of ${fmt.rps(DELETE_BATCH_ROWS)} rows: ${result.batches}, longest`, sorted.at(-1)!.toFixed(1)],
      ['  median batch', median(times).toFixed(1)],
      ['  p99 batch', percentile(sorted, 99).toFixed(1)],
      ['  all of it (DELETE answered)', totalMs.toFixed(0)],
      ['one transaction for its requests and rows', wholeMs.toFixed(0)],
    ],
  );
  writeResults('tenant-delete', { requests: REQUESTS, rowsBefore: before, rowsDeleted: result.rows, batches: result.batches, batchRows: DELETE_BATCH_ROWS, ms: { longest: sorted.at(-1), median: median(times), p99: percentile(sorted, 99), total: totalMs, oneTransaction: wholeMs } });
}

export const tenantDeleteBenchmarks: Benchmark[] = [{ name: 'tenant-delete', run }];
