// Issue 4: usage ingestion and per-handle reports.
//
// (a) POST /v1/usage (one report per request) and /v1/usage/batch (100 records)
//     over HTTP with wrk, against raw better-sqlite3 inserts of the same report
//     rows with the service's own database settings (src/store/db.ts openDb:
//     WAL, synchronous=FULL; the service's group commits instead commit under
//     NORMAL and answer after an fdatasync of the WAL off the event loop, the
//     same durability), alternated in the same run. Every report names a
//     request id rendered beforehand and never reported before (a repeated
//     report is an idempotent 200, cheaper than a reconciliation): a Lua script
//     walks a file of fresh ids. After the runs the service is SIGKILLed and the
//     database is checked: every acknowledged report must be reconciled.
//     Target: ≥ 10,000 single reports/s including attribution and rollups.
// (b) GET /v1/reports/handles/{id} over a history of 1,000,000 reconciled
//     requests: in-process and over HTTP (wrk -c1) vs a bare Hono handler
//     serving the same report bytes. Target: under 50 ms. The history is built
//     in-process through the domain (render + ingestMany); when 1M that way
//     would take over 3 minutes, the rest is inserted as rollup rows of the same
//     shape, and the output says so.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../src/domain/clock';
import { openDb } from '../src/store/db';
import { ROLLUP_CLASSES, ROLLUP_MONEY } from '../src/store/schema';
import {
  type Benchmark,
  type ChildServer,
  type Samples,
  type WrkResult,
  BenchSetupError,
  fetchOk,
  fmt,
  median,
  printTable,
  requireWrk,
  runWrk,
  runWrkWithOutput,
  sleep,
  startBare,
  startEcho,
  startTsServer,
  tempDir,
  summarize,
  writeResults,
} from './lib';
import { inProcess, prose } from './render';

const SECONDS = 4;
const WARMUP_SECONDS = 2;
const ROUNDS = 3;
const CONNECTIONS = 32;
const BATCH = 100;
/** Concurrent batches: 4 × 100 reports in flight (32 would queue 3,200 reports and time out wrk's 2 s). */
const BATCH_CONNECTIONS = 4;
/** wrk --timeout: a slow service is measured (its p99 shows it), not failed. */
const TIMEOUT_SECONDS = 30;
const MODEL = 'claude-sonnet-4-5';
const HISTORY = 1_000_000;
const DOMAIN_BUDGET_S = 180;
const REPORT_SAMPLES = 300;

// ---------- (a) ingestion ----------

/** The Lua script: walks a file of request ids, one fresh id per report (or 100 per batch). */
const USAGE_LUA = String.raw`
-- args: ids file, "single" | "batch", batch size, "soft" | "wrap", usage JSON
--   soft: out of fresh ids, send GET /healthz instead (counted in "extra"; the bench discards such a run);
--   wrap: reuse ids (only for the bare baseline, which stores nothing).
ids = {}
n = 0
i = 0
extra = 0
local mode, size, onEmpty, usage
function init(args)
  for line in io.lines(args[1]) do n = n + 1; ids[n] = line end
  mode = args[2]; size = tonumber(args[3]); onEmpty = args[4]; usage = args[5]
  wrk.method = "POST"
end
local function nextId()
  i = i + 1
  if i > n then
    if onEmpty ~= "wrap" then return nil end
    return ids[(i - 1) % n + 1]
  end
  return ids[i]
end
local function empty()
  extra = extra + 1
  return wrk.format("GET", "/healthz")
end
local function record(id) return '{"request_id":"' .. id .. '","usage":' .. usage .. '}' end
function request()
  if mode == "single" then
    local id = nextId()
    if not id then return empty() end
    return wrk.format(nil, nil, nil, record(id))
  end
  local recs = {}
  for k = 1, size do
    local id = nextId()
    if not id then return empty() end
    recs[k] = record(id)
  end
  return wrk.format(nil, nil, nil, '{"records":[' .. table.concat(recs, ",") .. ']}')
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done()
  for _, t in ipairs(threads) do
    io.write("ph-ids-used " .. tostring(math.min(t:get("i"), t:get("n"))) .. " ph-ids-had " .. tostring(t:get("n")) .. " ph-extra " .. tostring(t:get("extra")) .. "\n")
  end
end
`;

interface IngestRow {
  mode: string;
  baseline: string;
  baselineRowsPerSec: number;
  serviceReportsPerSec: number;
  ratio: number;
  servicePerRequest: WrkResult;
  echoReqPerSec?: number;
  rounds: { baseline: number; service: number; requestsTableRows: number; echo?: number }[];
  target: string;
  pass: boolean | undefined;
}

/** Request ids rendered in-process into the service's database, handed out once each. */
class IdPool {
  private ids: string[] = [];
  private next = 0;
  rendered = 0;
  renderSeconds = 0;

  constructor(private readonly render: (n: number) => string[]) {}

  take(n: number): string[] {
    if (this.ids.length - this.next < n) {
      const t0 = performance.now();
      const more = this.render(n - (this.ids.length - this.next));
      this.renderSeconds += (performance.now() - t0) / 1000;
      this.rendered += more.length;
      this.ids.push(...more);
    }
    return this.ids.slice(this.next, this.next + n);
  }

  /** Marks ids as used: every id wrk sent, acknowledged or not, is never sent again. */
  consume(n: number): void {
    this.next += n;
  }
}

async function ingestion(dir: string, details: Record<string, unknown>): Promise<IngestRow[]> {
  const dataDir = join(dir, 'service');
  const dbPath = join(dataDir, 'prefix-handles.db');
  // The service's database, prepared in this process through the domain: a tenant, a system prompt, rendered requests.
  mkdirSync(dataDir, { recursive: true });
  const app = inProcess(dbPath);
  const sys = app.services.handles.mintArtifact(app.tenantId, { kind: 'system', name: 'bench system', content: prose(21, 12 * 1024) });
  let first: { prefixTokens: number; totalTokens: number } | undefined;
  let k = 0;
  const renderMany = app.sqlite.transaction((n: number) => {
    const out: string[] = [];
    for (let j = 0; j < n; j++, k++) {
      const r = app.services.requests.render({
        tenantId: app.tenantId,
        format: 'anthropic',
        bodyText: `{"model":"${MODEL}","max_tokens":256,"prefix":["${sys.handle.id}"],"messages":[{"role":"user","content":"Question ${k}: which notes cover the retry policy?"}]}`,
        pointer: '/request',
      });
      first ??= { prefixTokens: r.segments[0]!.token_end, totalTokens: r.segments[r.segments.length - 1]!.token_end };
      out.push(r.requestId);
    }
    return out;
  });
  // One transaction per 5,000 renders (savepoints inside): setup only, so it need not pay an fsync per request.
  const pool = new IdPool((n) => {
    const out: string[] = [];
    while (out.length < n) {
      out.push(...renderMany(Math.min(5000, n - out.length)));
      // Renders are group-committed after the call; commit them now, before the service is sent their usage.
      app.services.writes.flushNow();
    }
    // Fold the renders into the database now, or the service's first commit pays for checkpointing them.
    app.sqlite.pragma('wal_checkpoint(TRUNCATE)');
    return out;
  });
  pool.take(1);
  const usage = JSON.stringify({
    input_tokens: first!.totalTokens - first!.prefixTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: first!.prefixTokens,
    output_tokens: 120,
  });

  // The raw baseline: the same report rows, inserted with better-sqlite3 under the service's own openDb settings.
  const raw = openDb(join(dir, 'raw.db'));
  const pragma = (o: { sqlite: typeof raw.sqlite }) => ({
    journal_mode: String(o.sqlite.pragma('journal_mode', { simple: true })),
    synchronous: ['OFF', 'NORMAL', 'FULL', 'EXTRA'][Number(o.sqlite.pragma('synchronous', { simple: true }))]!,
  });
  const settings = pragma(raw);
  details.sqlite = { ...settings, source: 'src/store/db.ts openDb (service and raw baseline alike)' };
  raw.sqlite.exec('create table raw_usage (request_id text primary key, report text not null)');
  const insert = raw.sqlite.prepare('insert into raw_usage (request_id, report) values (?, ?)');
  let rawSeq = 0;
  const rawId = () => `req_${String(rawSeq++).padStart(21, '0')}`;
  const record = (id: string) => `{"request_id":"${id}","usage":${usage}}`;
  const insertBatch = raw.sqlite.transaction((n: number) => {
    for (let j = 0; j < n; j++) {
      const id = rawId();
      insert.run(id, record(id));
    }
  });
  /** Rows per second for `seconds` of single-row commits (batch = 1) or `batch`-row transactions. */
  const rawRun = (batch: number, seconds: number) => {
    const t0 = performance.now();
    let rows = 0;
    while (performance.now() - t0 < seconds * 1000) {
      if (batch === 1) {
        const id = rawId();
        insert.run(id, record(id));
      } else insertBatch(batch);
      rows += batch;
    }
    return rows / ((performance.now() - t0) / 1000);
  };

  const service = await startTsServer({ entry: 'src/main.ts', env: { PH_DATA_DIR: dataDir, PH_LOG: 'off' }, healthPath: '/healthz', label: 'prefix-handles' });
  const echo = await startEcho();
  const luaFile = join(dir, 'usage.lua');
  writeFileSync(luaFile, USAGE_LUA);
  const headers = { Authorization: `Bearer ${app.apiKey}`, 'content-type': 'application/json' };
  let acknowledged = 0;
  let sent = 0;
  const countReconciled = app.sqlite.prepare(`select count(*) from requests where status = 'reconciled'`).pluck();
  const countRequests = app.sqlite.prepare('select count(*) from requests').pluck();
  /** Waits until the service has worked off what wrk left in flight (the reconciled count stops moving). */
  const settle = async () => {
    for (let last = -1; ; ) {
      const now = countReconciled.get() as number;
      if (now === last) return;
      last = now;
      await sleep(400);
    }
  };

  /**
   * One wrk run against the service with `need` fresh ids; every id the script used is consumed.
   * Out of ids, the script sends GET /healthz instead: such a run is `exhausted`, and callers discard it.
   */
  const serviceRun = async (mode: 'single' | 'batch', seconds: number, need: number) => {
    const ids = pool.take(need);
    const idsFile = join(dir, 'ids.txt');
    writeFileSync(idsFile, ids.join('\n'));
    const per = mode === 'single' ? 1 : BATCH;
    const path = mode === 'single' ? '/v1/usage' : '/v1/usage/batch';
    let out: { result: WrkResult; output: string };
    try {
      out = await runWrkWithOutput({
        url: service.url + path,
        headers,
        seconds,
        connections: mode === 'single' ? CONNECTIONS : BATCH_CONNECTIONS,
        threads: 1,
        timeoutSeconds: TIMEOUT_SECONDS,
        script: luaFile,
        scriptArgs: [idsFile, mode, String(BATCH), 'soft', usage],
      });
    } catch (e) {
      if (/non-2xx/.test(String(e))) throw new Error(`${mode}: the service refused reports:\n${String(e)}`);
      throw e;
    }
    const m = /ph-ids-used (\d+) ph-ids-had (\d+) ph-extra (\d+)/.exec(out.output);
    if (!m) throw new Error(`the wrk script did not report how many ids it used:\n${out.output}`);
    const [used, had, extra] = [Number(m[1]), Number(m[2]), Number(m[3])];
    pool.consume(used);
    sent += used;
    acknowledged += Math.max(0, out.result.requests - extra) * per;
    await settle();
    return { result: out.result, used, exhausted: used >= had, reportsPerSec: Math.max(0, out.result.requests - extra) * per / seconds };
  };
  const echoRun = async (seconds: number) => {
    const idsFile = join(dir, 'echo-ids.txt');
    writeFileSync(idsFile, pool.take(1000).join('\n'));
    return runWrk({ url: `${echo.url}/v1/usage`, headers: { 'content-type': 'application/json' }, seconds, connections: CONNECTIONS, threads: 1, script: luaFile, scriptArgs: [idsFile, 'single', '1', 'wrap', usage] });
  };

  const rows: IngestRow[] = [];
  try {
    for (const mode of ['single', 'batch'] as const) {
      const per = mode === 'single' ? 1 : BATCH;
      const connections = mode === 'single' ? CONNECTIONS : BATCH_CONNECTIONS;
      console.log(`  ${mode}: warm-up, then ${ROUNDS} rounds…`);
      // Warm-up, soft: learns the rate (ids used per second), tripling the ids offered until some are left over.
      let rate = 0;
      for (let guess = 3000; ; guess *= 3) {
        const w = await serviceRun(mode, WARMUP_SECONDS, Math.ceil(guess * WARMUP_SECONDS) + connections * per);
        if (!w.exhausted) {
          rate = w.used / WARMUP_SECONDS;
          break;
        }
      }
      const need = () => Math.ceil(rate * SECONDS * 2) + connections * per * 2;
      rawRun(per, 1);
      if (mode === 'single') await echoRun(WARMUP_SECONDS);
      const rounds: IngestRow['rounds'] = [];
      const results: WrkResult[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        const baseline = rawRun(per, SECONDS);
        const echoRps = mode === 'single' ? (await echoRun(SECONDS)).rps : undefined;
        const tableRows = countRequests.get() as number;
        let res = await serviceRun(mode, SECONDS, need());
        // Ran out of fresh ids (the rate varies between runs on a busy box): the run does not count; again with more.
        while (res.exhausted) {
          rate *= 3;
          console.log(`    round ${r + 1}: ran out of fresh request ids; repeating with ${fmt.rps(need())}`);
          res = await serviceRun(mode, SECONDS, need());
        }
        rate = Math.max(rate, res.reportsPerSec);
        results.push(res.result);
        rounds.push({ baseline, service: res.result.rps * per, requestsTableRows: tableRows, ...(echoRps === undefined ? {} : { echo: echoRps }) });
        console.log(
          `    round ${r + 1}: raw ${fmt.rps(baseline)} rows/s; service ${fmt.rps(res.result.rps * per)} reports/s, ` +
            `${res.result.requests === 0 ? `no ${mode === 'batch' ? 'batch' : 'report'} answered within the run` : `p50 ${fmt.ms(res.result.p50Ms)}`} (requests table: ${fmt.rps(tableRows)} rows)` +
            (echoRps === undefined ? '' : `; bare Hono ${fmt.rps(echoRps)} req/s`),
        );
      }
      const mid = [...results].sort((a, b) => a.rps - b.rps)[Math.floor(ROUNDS / 2)]!;
      const baseline = median(rounds.map((r) => r.baseline));
      const serviceRate = mid.rps * per;
      rows.push({
        mode: mode === 'single' ? 'POST /v1/usage (1 report)' : `POST /v1/usage/batch (${BATCH})`,
        baseline: mode === 'single' ? 'raw insert, 1 row/commit' : `raw insert, ${BATCH} rows/commit`,
        baselineRowsPerSec: baseline,
        serviceReportsPerSec: serviceRate,
        ratio: serviceRate / baseline,
        servicePerRequest: mid,
        ...(mode === 'single' ? { echoReqPerSec: median(rounds.map((r) => r.echo!)) } : {}),
        rounds,
        target: mode === 'single' ? '≥ 10,000/s' : '—',
        pass: mode === 'single' ? serviceRate >= 10_000 : undefined,
      });
    }
  } finally {
    await echo.stop();
    // A crash, not a shutdown: whatever was acknowledged must already be on disk.
    service.process.kill('SIGKILL');
    await new Promise((r) => (service.process.exitCode !== null || service.process.signalCode !== null ? r(null) : service.process.once('exit', r)));
  }
  const reconciled = countReconciled.get() as number;
  app.close();
  raw.close();
  details.durability = {
    check: 'service SIGKILLed after the runs; reconciled rows counted in its database',
    acknowledged,
    sentIds: sent,
    reconciledAfterKill: reconciled,
    lost: Math.max(0, acknowledged - reconciled),
    serviceSettings: 'src/store/db.ts openDb: WAL, synchronous=FULL; group commits: NORMAL + fdatasync of the WAL off the event loop before the answer',
  };
  details.idPool = { rendered: pool.rendered, renderSeconds: Math.round(pool.renderSeconds * 10) / 10, how: 'rendered in-process through RequestService.render before each run' };
  details.usageBody = record('req_…');
  return rows;
}

// ---------- (b) the per-handle report over 1,000,000 requests ----------

const DAY = 86_400_000;
const HISTORY_DAYS = 180;
const MODELS = [
  { model: 'claude-sonnet-4-5', format: 'anthropic' as const },
  { model: 'claude-opus-4-1', format: 'anthropic' as const },
  { model: 'gpt-4o', format: 'openai-chat' as const },
  { model: 'gpt-4.1', format: 'openai-chat' as const },
];
const VERSIONS = 5;
const DOCUMENTS = 40;
const BURST = 25;
const TURN_MS = 20_000;
const CHUNK = 1000;
/** Past this much wall-clock time building through the domain (when 1M would not fit DOMAIN_BUDGET_S), the rest is synthesised. */
const DOMAIN_CAP_S = 60;

/**
 * Request k of the 1M history: agent loops of BURST turns 20 s apart, loops
 * spread evenly over HISTORY_DAYS, models round-robin by loop, one of
 * DOCUMENTS per loop, and the system prompt's version advancing over the period.
 */
function slot(k: number, start: number) {
  const burst = Math.floor(k / BURST);
  const turn = k % BURST;
  const bursts = HISTORY / BURST;
  return {
    burst,
    turn,
    at: start + Math.floor((burst * (HISTORY_DAYS * DAY - BURST * TURN_MS)) / bursts) + turn * TURN_MS,
    model: MODELS[burst % MODELS.length]!,
    doc: Math.floor(burst / MODELS.length) % DOCUMENTS,
    version: Math.min(VERSIONS, 1 + Math.floor((k * VERSIONS) / HISTORY)),
  };
}

interface ReportResult {
  history: Record<string, unknown>;
  inProcess: Samples;
  http: { bare: WrkResult; service: WrkResult; rounds: { bare: number; service: number }[] };
  reportBytes: number;
}

async function reportOverHistory(dir: string): Promise<ReportResult> {
  const dataDir = join(dir, 'history');
  mkdirSync(dataDir, { recursive: true });
  const start = Date.now() - HISTORY_DAYS * DAY;
  let now = start;
  const clock: Clock = { now: () => now };
  const app = inProcess(join(dataDir, 'prefix-handles.db'), { clock });
  const h = app.services.handles;
  const tid = app.tenantId;

  // The handle under report: a system prompt, revised over the period; beside it, documents.
  const systemText = (v: number) => `${prose(31, 8 * 1024)}${v > 1 ? `\n\nRevision ${v}: answer in the customer's language.` : ''}`;
  const sysId = h.mintArtifact(tid, { kind: 'system', name: 'support system prompt', content: systemText(1) }).handle.id;
  const docs = Array.from({ length: DOCUMENTS }, (_, i) => h.mintArtifact(tid, { kind: 'document', name: `doc ${i}`, content: prose(40 + i, 4 * 1024) }).handle.id);
  let version = 1;
  const reviseTo = (v: number) => {
    while (version < v) h.newArtifactVersion(tid, sysId, systemText(++version));
  };

  let done = 0;
  const renderChunk = app.sqlite.transaction((n: number) => {
    const out: { id: string; format: string; at: number; read: number; write: number; total: number }[] = [];
    for (let j = 0; j < n; j++, done++) {
      const s = slot(done, start);
      now = s.at;
      reviseTo(s.version);
      const msgs: string[] = [];
      for (let t = 0; t <= s.turn % 4; t++) msgs.push(`{"role":"user","content":"Loop ${s.burst} turn ${s.turn}.${t}: what does the handbook say about refunds?"}`);
      const head = s.model.format === 'anthropic' ? `"model":"${s.model.model}","max_tokens":512` : `"model":"${s.model.model}"`;
      // Every 8th Anthropic loop puts a session line before the system prompt: its prefix drifts (drift findings).
      const body =
        s.model.format === 'anthropic' && s.burst % 8 === 1
          ? `{${head},"system":[{"type":"text","text":"Session ${s.burst}.${s.turn}"},{"type":"handle","ref":"${sysId}"}],"prefix":["${docs[s.doc]}"],"messages":[${msgs.join(',')}]}`
          : `{${head},"prefix":["${sysId}","${docs[s.doc]}"],"messages":[${msgs.join(',')}]}`;
      const r = app.services.requests.render({ tenantId: tid, format: s.model.format, bodyText: body, pointer: '/request' });
      const p = (r.prediction ?? { read_tokens: 0, write_tokens: 0 }) as { read_tokens: number; write_tokens: number };
      out.push({ id: r.requestId, format: s.model.format, at: s.at, read: p.read_tokens, write: p.write_tokens, total: r.segments[r.segments.length - 1]!.token_end });
    }
    return out;
  });

  // Through the domain: render, then reconcile (provider confirms the prediction), CHUNK requests at a time.
  console.log(`  building the history through the domain (render + ingestMany, ${CHUNK} per chunk)…`);
  const t0 = performance.now();
  const chunkRates: number[] = [];
  let etaSeconds = 0;
  for (;;) {
    const c0 = performance.now();
    const chunk = renderChunk(Math.min(CHUNK, HISTORY - done));
    const outcomes = await app.services.reconciler.ingestMany(
      tid,
      chunk.map((c) => ({
        request_id: c.id,
        usage:
          c.format === 'anthropic'
            ? { input_tokens: c.total - c.read - c.write, cache_creation_input_tokens: c.write, cache_read_input_tokens: c.read, output_tokens: 150 }
            : { prompt_tokens: c.total, completion_tokens: 150, prompt_tokens_details: { cached_tokens: c.read } },
        started_at: c.at,
        first_byte_at: c.at + 600,
        finished_at: c.at + 2500,
      })),
    );
    const failed = outcomes.find((o) => !o.ok);
    if (failed && !failed.ok) throw new Error(`history: a usage report was refused: ${'error' in failed ? failed.error.message : String(failed.internal)}`);
    chunkRates.push(chunk.length / ((performance.now() - c0) / 1000));
    const elapsed = (performance.now() - t0) / 1000;
    // Projected from the latest chunk: per-request cost may grow with the tables.
    etaSeconds = elapsed + (HISTORY - done) / chunkRates[chunkRates.length - 1]!;
    if (done >= HISTORY) break;
    if (etaSeconds > DOMAIN_BUDGET_S && elapsed > DOMAIN_CAP_S) break;
  }
  const domainSeconds = (performance.now() - t0) / 1000;
  const domainDone = done;

  const cols = ['requests', ...ROLLUP_CLASSES.flatMap((c) => [c, `req_${c}`]), ...ROLLUP_MONEY];
  let method: string;
  if (domainDone >= HISTORY) {
    method = `all ${fmt.rps(HISTORY)} requests rendered and reconciled through the domain in ${domainSeconds.toFixed(0)} s`;
  } else {
    // The rest, synthesised: per (handle, version, day, model) cell of the same schedule, the number of
    // requests times the mean per-request rollup delta the domain produced for that kind of handle and model.
    reviseTo(VERSIONS);
    const kindOf = (handleId: string) => (handleId === sysId ? 'system' : handleId === '*' ? '*' : 'document');
    const mean = new Map<string, Record<string, number>>();
    const sums = app.sqlite
      .prepare(`select handle_id, model, ${cols.map((c) => `sum(${c}) as ${c}`).join(', ')} from rollups where tenant_id = ? group by handle_id, model`)
      .all(tid) as Array<Record<string, number | string>>;
    for (const r of sums) {
      const key = `${kindOf(String(r.handle_id))}|${r.model}`;
      const acc = mean.get(key) ?? Object.fromEntries(cols.map((c) => [c, 0]));
      for (const c of cols) acc[c]! += Number(r[c]);
      mean.set(key, acc);
    }
    const cells = new Map<string, { handleId: string; version: number; day: number; model: string; n: number }>();
    const count = (handleId: string, version: number, day: number, model: string) => {
      const key = `${handleId}|${version}|${day}|${model}`;
      const cell = cells.get(key);
      if (cell) cell.n++;
      else cells.set(key, { handleId, version, day, model, n: 1 });
    };
    for (let k = domainDone; k < HISTORY; k++) {
      const s = slot(k, start);
      const day = Math.floor(s.at / DAY);
      count(sysId, s.version, day, s.model.model);
      count(docs[s.doc]!, 1, day, s.model.model);
      count('*', 0, day, s.model.model);
    }
    const upsert = app.sqlite.prepare(
      `insert into rollups (tenant_id, handle_id, version, day, model, ${cols.join(', ')})
       values (@tenant_id, @handle_id, @version, @day, @model, ${cols.map((c) => `@${c}`).join(', ')})
       on conflict (tenant_id, handle_id, version, day, model) do update set ${cols.map((c) => `${c} = ${c} + excluded.${c}`).join(', ')}`,
    );
    const integer = new Set(['requests', ...ROLLUP_CLASSES.flatMap((c) => [c, `req_${c}`])]);
    app.sqlite.transaction(() => {
      for (const cell of cells.values()) {
        const m = mean.get(`${kindOf(cell.handleId)}|${cell.model}`);
        if (!m) throw new Error(`history: the domain part has no ${kindOf(cell.handleId)} rollups for ${cell.model}`);
        const row: Record<string, string | number> = { tenant_id: tid, handle_id: cell.handleId, version: cell.version, day: cell.day, model: cell.model };
        for (const c of cols) row[c] = c === 'requests' ? cell.n : integer.has(c) ? Math.round((m[c]! / m.requests!) * cell.n) : (m[c]! / m.requests!) * cell.n;
        upsert.run(row);
      }
      // Drift findings grow with requests: replicate the domain's to their 1M-request count.
      const base = app.sqlite.prepare('select max(id) from drift_findings').pluck().get() as number | null;
      const copy = app.sqlite.prepare(
        `insert into drift_findings (tenant_id, handle_id, request_id, previous_request_id, at, finding)
         select tenant_id, handle_id, request_id, previous_request_id, at, finding from drift_findings where id <= ?`,
      );
      if (base !== null) for (let f = 1; f < Math.round(HISTORY / domainDone); f++) copy.run(base);
    })();
    method =
      `${fmt.rps(domainDone)} requests rendered and reconciled through the domain (RequestService.render + Reconciler.ingestMany, ` +
      `${CHUNK} per chunk) in ${domainSeconds.toFixed(0)} s, ${fmt.rps(chunkRates[0]!)}/s in the first chunk and ${fmt.rps(chunkRates[chunkRates.length - 1]!)}/s in the last; ` +
      `1M that way was projected at ~${Math.round(etaSeconds)} s (> ${DOMAIN_BUDGET_S} s). The other ${fmt.rps(HISTORY - domainDone)} were inserted as rollup rows ` +
      `with the same shape: per (handle, version, UTC day, model) cell of the same schedule, its request count times the domain's mean per-request ` +
      `delta for that kind of handle and model; drift findings were replicated to scale. The requests table holds only the domain's requests (reports never read it).`;
  }

  const rollupRows = app.sqlite.prepare('select count(*) from rollups').pluck().get() as number;
  const handleRows = app.sqlite.prepare('select count(*) from rollups where tenant_id = ? and handle_id = ?').pluck().get(tid, sysId) as number;
  const driftRows = app.sqlite.prepare('select count(*) from drift_findings').pluck().get() as number;
  const requestRows = app.sqlite.prepare('select count(*) from requests').pluck().get() as number;
  app.sqlite.pragma('wal_checkpoint(TRUNCATE)');

  // In-process: the domain call the route makes.
  now = Date.now();
  const check = app.services.reports.handle(tid, sysId, {}, now) as { requests: number };
  if (check.requests !== HISTORY) throw new Error(`the report counts ${check.requests} requests, not ${HISTORY}`);
  for (let w = 0; w < 10; w++) app.services.reports.handle(tid, sysId, {}, now);
  const times: number[] = [];
  for (let r = 0; r < REPORT_SAMPLES; r++) {
    const a = performance.now();
    app.services.reports.handle(tid, sysId, {}, now);
    times.push(performance.now() - a);
  }
  const inProc = summarize(times);
  app.close();

  // Over HTTP: the service on that database, vs a bare handler serving the same bytes.
  const service = await startTsServer({ entry: 'src/main.ts', env: { PH_DATA_DIR: dataDir, PH_LOG: 'off' }, healthPath: '/healthz', label: 'prefix-handles' });
  let bare: ChildServer | undefined;
  try {
    const path = `/v1/reports/handles/${sysId}`;
    const auth = { Authorization: `Bearer ${app.apiKey}` };
    const bytes = Buffer.from(await (await fetchOk(service.url + path, { headers: auth })).arrayBuffer());
    bare = await startBare({ '/report': bytes });
    const base = { connections: 1, threads: 1, seconds: SECONDS, timeoutSeconds: TIMEOUT_SECONDS };
    await runWrk({ ...base, url: `${bare.url}/report`, seconds: WARMUP_SECONDS });
    await runWrk({ ...base, url: service.url + path, headers: auth, seconds: WARMUP_SECONDS });
    const b: WrkResult[] = [];
    const s: WrkResult[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      b.push(await runWrk({ ...base, url: `${bare.url}/report` }));
      s.push(await runWrk({ ...base, url: service.url + path, headers: auth }));
    }
    const pick = (runs: WrkResult[]) => [...runs].sort((x, y) => x.p50Ms - y.p50Ms)[Math.floor(runs.length / 2)]!;
    return {
      history: {
        requests: HISTORY,
        method,
        throughDomain: domainDone,
        domainSeconds: Math.round(domainSeconds * 10) / 10,
        domainChunkRates: { first: Math.round(chunkRates[0]!), last: Math.round(chunkRates[chunkRates.length - 1]!) },
        domainProjectedSecondsFor1M: Math.round(etaSeconds),
        days: HISTORY_DAYS,
        models: MODELS.map((m) => m.model),
        versions: VERSIONS,
        otherHandles: DOCUMENTS,
        rollupRows,
        rollupRowsForHandle: handleRows,
        driftFindings: driftRows,
        requestsTableRows: requestRows,
      },
      inProcess: inProc,
      http: { bare: pick(b), service: pick(s), rounds: b.map((x, i) => ({ bare: x.p50Ms, service: s[i]!.p50Ms })) },
      reportBytes: bytes.length,
    };
  } finally {
    await Promise.all([service.stop(), bare?.stop()]);
  }
}

// ---------- run ----------

async function run(): Promise<void> {
  requireWrk();
  const dir = tempDir('usage');
  const details: Record<string, unknown> = {};

  const ingest = await ingestion(dir, details);
  const sqlite = details.sqlite as { journal_mode: string; synchronous: string };
  const durability = details.durability as { acknowledged: number; reconciledAfterKill: number; lost: number };
  console.log(
    `(a) ingestion — service and raw baseline both open SQLite through src/store/db.ts: journal_mode=${sqlite.journal_mode}, synchronous=${sqlite.synchronous}` +
      ` (the service's group commits: NORMAL, then an fdatasync of the WAL off the event loop before the answer — the same durability).\n` +
      `wrk -t1 -c${CONNECTIONS} (batch: -c${BATCH_CONNECTIONS}) -d${SECONDS}s (${WARMUP_SECONDS}s warm-up), Lua script walking fresh request ids (one report each); ` +
      `raw inserts in-process for ${SECONDS}s; alternated ${ROUNDS}×, median shown. Reports include attribution, the cache simulation and rollups.\n`,
  );
  printTable(
    ['ingest', 'baseline', 'baseline rows/s', 'service reports/s', 'ratio', 'service p50/p99 per HTTP request', 'target'],
    ingest.map((r) => [
      r.mode,
      r.baseline,
      fmt.rps(r.baselineRowsPerSec),
      r.servicePerRequest.requests === 0 ? `0 (none answered in ${SECONDS}s)` : fmt.rps(r.serviceReportsPerSec),
      fmt.ratio(r.ratio),
      r.servicePerRequest.requests === 0 ? '—' : `${fmt.ms(r.servicePerRequest.p50Ms)} / ${fmt.ms(r.servicePerRequest.p99Ms)}`,
      r.pass === undefined ? '—' : r.pass ? `PASS ${r.target}` : `MISS ${r.target}`,
    ]),
  );
  const single = ingest[0]!;
  console.log(
    `\nHTTP floor: a bare Hono handler parsing the same report POST (same Lua script) did ${fmt.rps(single.echoReqPerSec ?? NaN)} req/s ` +
      `(service single = ${fmt.ratio(single.serviceReportsPerSec / (single.echoReqPerSec ?? NaN))} of it).`,
  );
  console.log(
    `Durability: service SIGKILLed after the runs — ${fmt.rps(durability.acknowledged)} reports acknowledged, ` +
      `${fmt.rps(durability.reconciledAfterKill)} reconciled in its database, ${durability.lost} lost.` +
      (durability.lost > 0 ? '  ← ACKNOWLEDGED REPORTS LOST' : ''),
  );

  const report = await reportOverHistory(dir);
  const hist = report.history as { method: string; rollupRowsForHandle: number; rollupRows: number; driftFindings: number };
  console.log(`\n(b) per-handle report over ${fmt.rps(HISTORY)} reconciled requests.\nhistory: ${hist.method}`);
  console.log(`rollup rows: ${fmt.rps(hist.rollupRows)} in all, ${fmt.rps(hist.rollupRowsForHandle)} for the handle; drift findings: ${fmt.rps(hist.driftFindings)}; report ${fmt.bytes(report.reportBytes)}.\n`);
  const target = (p50: number) => (p50 < 50 ? 'PASS < 50 ms' : 'MISS < 50 ms');
  printTable(
    ['report', 'baseline', 'baseline p50/p99', 'report p50/p99', 'ratio p50', 'target'],
    [
      ['in-process Reports.handle', '—', '—', `${fmt.ms(report.inProcess.p50Ms)} / ${fmt.ms(report.inProcess.p99Ms)}`, '—', target(report.inProcess.p50Ms)],
      [
        'GET /v1/reports/handles/{id}, wrk -c1',
        'bare Hono, same bytes',
        `${fmt.ms(report.http.bare.p50Ms)} / ${fmt.ms(report.http.bare.p99Ms)}`,
        `${fmt.ms(report.http.service.p50Ms)} / ${fmt.ms(report.http.service.p99Ms)}`,
        fmt.ratio(report.http.service.p50Ms / report.http.bare.p50Ms),
        target(report.http.service.p50Ms),
      ],
    ],
  );

  const file = writeResults('usage', {
    benchmark: 'usage',
    measuredAt: new Date().toISOString(),
    node: process.version,
    wrk: { threads: 1, connections: CONNECTIONS, batchConnections: BATCH_CONNECTIONS, seconds: SECONDS, warmupSeconds: WARMUP_SECONDS, rounds: ROUNDS },
    ingestion: ingest,
    report,
    details,
  });
  console.log(`\nresults written to ${file}`);
}

export const usageBenchmarks: Benchmark[] = [{ name: 'usage', run }];
