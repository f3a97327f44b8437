// Issue 3: reuse metadata at mint and rendering requests that reference handles.
//
// (a) metadata for a 400 KB artifact (tokenising included) vs tokenising alone,
//     in-process on fresh texts; and the mint over HTTP (POST /v1/artifacts)
//     vs a bare Hono handler parsing + re-serialising the same body.
//     Target: minting a 400 KB artifact under 150 ms (p50).
// (b) render of a 20 KB Anthropic request referencing a 64 KB bundle vs
//     JSON.parse + JSON.stringify of the same body: in-process (the service's
//     database settings, and :memory: to show the durable insert's share), and
//     over HTTP with wrk -c1 against the same parse + stringify in a bare Hono handler.
//     Target: render adds under 1 ms at p50.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServices } from '../src/app';
import { testConfig, type Config } from '../src/config';
import { loadCatalog, ModelCatalog } from '../src/domain/catalog/catalog';
import { systemClock, type Clock } from '../src/domain/clock';
import { HandleMeter } from '../src/domain/handle-meta';
import { tokenCounts } from '../src/domain/tokens';
import { openDb } from '../src/store/db';
import { SqliteStore } from '../src/store/sqlite-store';
import {
  type Benchmark,
  type Samples,
  type WrkResult,
  fmt,
  postJson,
  printTable,
  requireWrk,
  runWrk,
  startEcho,
  startService,
  tempDir,
  timeAlternating,
  writeResults,
} from './lib';

// ---------- shared with bench/usage.ts ----------

/** The service's domain in this process, over a real database file (or ':memory:'); same wiring as src/main.ts. */
export function inProcess(databasePath: string, opts: { clock?: Clock; config?: Partial<Config> } = {}) {
  const config = testConfig({ databasePath, ...opts.config });
  const opened = openDb(databasePath);
  const catalog = new ModelCatalog(loadCatalog());
  const clock = opts.clock ?? systemClock;
  const services = createServices({ config, store: new SqliteStore(opened.db, opened.walSync, clock), clock, catalog });
  const tenant = services.tenants.createTenant('bench');
  return { services, catalog, sqlite: opened.sqlite, tenantId: tenant.tenant, apiKey: tenant.api_key, close: () => opened.close() };
}

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const COMMON = (
  'the of and to in a is that for it as with was on be by this are or from at which an not have has but all were they their one can more ' +
  'other been its we if when there so also only new into some than these would may such how time about between after first used two many most ' +
  'over then where each should through any both those service request cache prompt token model handle version bundle session report policy ' +
  'note owner review ticket corpus query answer design system user assistant document section value change reuse prefix provider latency ' +
  'budget window context limit error retry queue batch commit index table column record field schema format output input stable order'
).split(' ');
const SYLLABLES = 'ka ri lo men tor vel quin sa dre ol ph ix an be cu da fe go hu ja ke lu mo nu pa qu ro su ta vi wo xe yu za str ght ion ent'.split(' ');

/**
 * ASCII prose of exactly `size` bytes: common words plus ~15% words made up
 * from `seed`, so each text is fresh to the tokenizer's merge cache the way a
 * new document is (real text mixes frequent words with rare ones).
 */
export function prose(seed: number, size: number): string {
  const r = rng(seed);
  const invented = Array.from({ length: 3000 }, () => {
    let w = '';
    for (let k = 1 + Math.floor(r() * 3); k >= 0; k--) w += SYLLABLES[Math.floor(r() * SYLLABLES.length)];
    return w;
  });
  const parts: string[] = [];
  let len = 0;
  let sentence = 0;
  while (len < size) {
    const words = 8 + Math.floor(r() * 14);
    let s = '';
    for (let w = 0; w < words; w++) {
      const x = r();
      let word = x < 0.15 ? invented[Math.floor(r() * invented.length)]! : x < 0.17 ? String(Math.floor(r() * 9000) + 10) : COMMON[Math.floor(r() * r() * COMMON.length)]!;
      if (w === 0) word = word[0]!.toUpperCase() + word.slice(1);
      s += (w === 0 ? '' : r() < 0.08 ? ', ' : ' ') + word;
    }
    s += ++sentence % 6 === 0 ? '.\n\n' : '. ';
    parts.push(s);
    len += s.length;
  }
  return parts.join('').slice(0, size);
}

/** A wrk Lua script that POSTs `body` (read from a file next to it). */
export function luaPost(dir: string, name: string, body: string): string {
  const bodyFile = join(dir, `${name}.json`);
  writeFileSync(bodyFile, body);
  const script = join(dir, `${name}.lua`);
  writeFileSync(script, `wrk.method = "POST"\nlocal f = assert(io.open(${JSON.stringify(bodyFile)}, "rb"))\nwrk.body = f:read("*a")\nf:close()\n`);
  return script;
}

// ---------- fixtures ----------

const ARTIFACT_BYTES = 400 * 1024;
const BUNDLE_BYTES = 64 * 1024;
const REQUEST_BYTES = 20 * 1024;
const MODEL = 'claude-sonnet-4-5';
const META_SAMPLES = 15;
const MINT_SAMPLES = 15;
const RENDER_SAMPLES = 1500;
const WRK_SECONDS = 4;
const WRK_ROUNDS = 3;

const TOOLS = Array.from({ length: 12 }, (_, i) => ({
  name: `lookup_${i}`,
  description: `Looks up records of kind ${i} in the design-note corpus by owner, review date or linked ticket; returns at most 20 matches, newest first.`,
  input_schema: {
    type: 'object',
    properties: {
      query: { type: 'string', description: 'Free text, matched against titles and bodies.' },
      owner: { type: 'string' },
      reviewed_after: { type: 'string', description: 'A date, YYYY-MM-DD.' },
      limit: { type: 'integer', minimum: 1, maximum: 20 },
    },
    required: ['query'],
  },
}));

/** The 20 KB caller body: a conversation after the bundle prefix; `n` makes the last question fresh. */
function requestBody(bundleId: string, n: number): string {
  const head = `{"model":"${MODEL}","max_tokens":1024,"prefix":["${bundleId}"],"metadata":{"user_id":"bench-user"},"messages":[`;
  const turns: string[] = [];
  let len = head.length;
  for (let i = 0; len < REQUEST_BYTES - 200; i++) {
    const t = JSON.stringify({ role: i % 2 ? 'assistant' : 'user', content: prose(1000 + i, 1400) });
    turns.push(t);
    len += t.length + 1;
  }
  const last = JSON.stringify({ role: 'user', content: `Question ${n}: which notes cover the retry policy?` });
  const body = `${head}${turns.join(',')},${last}]}`;
  return body;
}

async function mintFixtures(post: (path: string, body: unknown) => Promise<{ id: string }>) {
  const tools = await post('/v1/artifacts', { kind: 'tools', name: 'bench tools', content: TOOLS });
  const system = await post('/v1/artifacts', { kind: 'system', name: 'bench system', content: prose(7, 12 * 1024) });
  // The document makes up the rest of the 64 KB bundle (tools JSON + system text + document text).
  const toolsBytes = JSON.stringify(TOOLS).length;
  const doc = await post('/v1/artifacts', { kind: 'document', name: 'bench handbook', content: prose(8, BUNDLE_BYTES - toolsBytes - 12 * 1024) });
  const bundle = await post('/v1/bundles', { name: 'bench bundle', members: [tools.id, system.id, doc.id] });
  return bundle.id;
}

// ---------- the benchmark ----------

interface Row {
  what: string;
  baseline: string;
  baselineP50: number;
  subjectP50: number;
  baselineP99: number;
  subjectP99: number;
  added: number;
  target: string;
  pass: boolean | undefined;
}

function row(what: string, baseline: string, r: { baseline: Samples | WrkResult; subject: Samples | WrkResult }, target?: { label: string; ok: (added: number, subjectP50: number) => boolean }): Row {
  const added = r.subject.p50Ms - r.baseline.p50Ms;
  return {
    what,
    baseline,
    baselineP50: r.baseline.p50Ms,
    subjectP50: r.subject.p50Ms,
    baselineP99: r.baseline.p99Ms,
    subjectP99: r.subject.p99Ms,
    added,
    target: target?.label ?? '—',
    pass: target ? target.ok(added, r.subject.p50Ms) : undefined,
  };
}

async function run(): Promise<void> {
  requireWrk();
  const rows: Row[] = [];
  const details: Record<string, unknown> = {};

  // ---- (a) metadata in-process: HandleMeter.artifact (tokenising included) vs tokenCounts, fresh texts ----
  {
    const catalog = new ModelCatalog(loadCatalog());
    const meter = new HandleMeter(catalog);
    const total = 3 + META_SAMPLES + 10;
    const texts = Array.from({ length: 2 * total }, (_, i) => prose(100 + i, ARTIFACT_BYTES));
    const r = await timeAlternating(
      (i) => tokenCounts(texts[2 * i]!),
      (i) => meter.artifact('document', texts[2 * i + 1]!, undefined),
      { samples: META_SAMPLES, block: 1, warmup: 3 },
    );
    rows.push(row('metadata 400 KB, in-process', 'tokenCounts alone', r));
    details.metadata = { textBytes: ARTIFACT_BYTES, tokensO200k: tokenCounts(texts[0]!).o200k_base, ...r };
  }

  // ---- the service over HTTP, and the bare parse + stringify handler ----
  const service = await startService();
  const echo = await startEcho();
  const auth = { Authorization: `Bearer ${service.apiKey}`, 'content-type': 'application/json' };
  try {
    // ---- (a) mint over HTTP ----
    {
      const bodies = Array.from({ length: 3 + MINT_SAMPLES + 10 }, (_, i) => JSON.stringify({ kind: 'document', name: `mint ${i}`, content: prose(5000 + i, ARTIFACT_BYTES) }));
      const post = async (url: string, body: string, headers: Record<string, string>) => {
        const res = await fetch(url, { method: 'POST', headers, body });
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`POST ${url} → ${res.status}`);
      };
      const r = await timeAlternating(
        (i) => post(`${echo.url}/echo`, bodies[i]!, { 'content-type': 'application/json' }),
        (i) => post(`${service.url}/v1/artifacts`, bodies[i]!, auth),
        { samples: MINT_SAMPLES, block: 1, warmup: 3 },
      );
      rows.push(row('mint 400 KB document, HTTP', 'bare Hono parse+stringify', r, { label: 'p50 < 150 ms', ok: (_, p50) => p50 < 150 }));
      details.mint = { bodyBytes: bodies[0]!.length, ...r };
    }

    // ---- (b) render in-process, each call until its row is on disk: a database file with the service's settings, and :memory: ----
    let bundleBytes = 0;
    for (const where of ['file', 'memory'] as const) {
      const app = inProcess(where === 'file' ? join(tempDir('render'), 'render.db') : ':memory:');
      try {
        const h = app.services.handles;
        const bundleId = await mintFixtures(async (path, body) => {
          const b = body as { kind?: 'tools' | 'system' | 'document'; content?: unknown; name?: string; members?: string[] };
          const minted = path === '/v1/bundles' ? h.createBundle(app.tenantId, { members: b.members!, name: b.name }) : h.mintArtifact(app.tenantId, { kind: b.kind!, content: b.content, name: b.name });
          return { id: minted.handle.id };
        });
        const n = 50 + RENDER_SAMPLES + 40;
        const bodies = Array.from({ length: n }, (_, i) => requestBody(bundleId, i));
        const sample = app.services.requests.render({ tenantId: app.tenantId, format: 'anthropic', bodyText: bodies[0]!, pointer: '/request' });
        // The request row is group-committed after the call returns; wait for the last one before closing.
        let lastCommit = sample.committed;
        bundleBytes = Buffer.byteLength(sample.bodyText) - Buffer.byteLength(bodies[0]!);
        const r = await timeAlternating(
          (i) => JSON.stringify(JSON.parse(bodies[i]!)),
          (i) => (lastCommit = app.services.requests.render({ tenantId: app.tenantId, format: 'anthropic', bodyText: bodies[i]!, pointer: '/request' }).committed),
          { samples: RENDER_SAMPLES, block: 20, warmup: 50 },
        );
        await lastCommit;
        const label = where === 'file' ? 'render 20 KB + 64 KB bundle, in-process, row on disk' : 'render, in-process (:memory: db)';
        rows.push(row(label, 'JSON.parse+stringify', r, where === 'file' ? { label: 'adds < 1 ms', ok: (added) => added < 1 } : undefined));
        details[`render_inprocess_${where}`] = { requestBytes: bodies[0]!.length, renderedBytes: Buffer.byteLength(sample.bodyText), segments: sample.segments.length, ...r };
      } finally {
        app.close();
      }
    }

    // ---- (b) render over HTTP: wrk -c1 (latency, not throughput), alternated with the bare handler ----
    {
      const bundleId = await mintFixtures((path, body) => postJson<{ id: string }>(service.url + path, service.apiKey, body));
      const request = requestBody(bundleId, 0);
      const apiBody = `{"format":"anthropic","request":${request}}`;
      const dir = tempDir('render-lua');
      const renderScript = luaPost(dir, 'render', apiBody);
      const echoScript = luaPost(dir, 'echo', request);
      const base = { connections: 1, threads: 1, seconds: WRK_SECONDS };
      const subject = { ...base, url: `${service.url}/v1/render`, script: renderScript, headers: auth };
      const baseline = { ...base, url: `${echo.url}/echo`, script: echoScript, headers: { 'content-type': 'application/json' } };
      await runWrk({ ...baseline, seconds: 2 });
      await runWrk({ ...subject, seconds: 2 });
      const b: WrkResult[] = [];
      const s: WrkResult[] = [];
      for (let i = 0; i < WRK_ROUNDS; i++) {
        b.push(await runWrk(baseline));
        s.push(await runWrk(subject));
      }
      const pick = (runs: WrkResult[]) => [...runs].sort((x, y) => x.p50Ms - y.p50Ms)[Math.floor(runs.length / 2)]!;
      const r = { baseline: pick(b), subject: pick(s) };
      rows.push(row('render, HTTP wrk -c1', 'bare Hono parse+stringify', r, { label: 'adds < 1 ms', ok: (added) => added < 1 }));
      details.render_http = { apiBodyBytes: apiBody.length, requestBytes: request.length, rounds: b.map((x, i) => ({ baselineP50: x.p50Ms, subjectP50: s[i]!.p50Ms, baselineRps: x.rps, subjectRps: s[i]!.rps })), ...r };
    }

    console.log(
      `in-process: calls timed one by one, baseline and subject alternated in blocks, p50/p99 of all calls; ` +
        `HTTP mint: sequential fetch; HTTP render: wrk -t1 -c1 -d${WRK_SECONDS}s alternated ${WRK_ROUNDS}×, median-p50 run. ` +
        `Bundle expands to ${fmt.bytes(bundleBytes)} in the rendered body (${MODEL}).\n`,
    );
    printTable(
      ['what', 'baseline', 'baseline p50/p99', 'subject p50/p99', 'added p50', 'ratio p50', 'target'],
      rows.map((r) => [
        r.what,
        r.baseline,
        `${fmt.ms(r.baselineP50)} / ${fmt.ms(r.baselineP99)}`,
        `${fmt.ms(r.subjectP50)} / ${fmt.ms(r.subjectP99)}`,
        fmt.ms(r.added),
        fmt.ratio(r.subjectP50 / r.baselineP50),
        r.pass === undefined ? '—' : r.pass ? `PASS ${r.target}` : `MISS ${r.target}`,
      ]),
    );

    const file = writeResults('render', {
      benchmark: 'render',
      measuredAt: new Date().toISOString(),
      node: process.version,
      model: MODEL,
      sizes: { artifactBytes: ARTIFACT_BYTES, bundleBytes: BUNDLE_BYTES, requestBytes: REQUEST_BYTES, bundleBytesInBody: bundleBytes },
      results: rows,
      details,
    });
    console.log(`\nresults written to ${file}`);
  } finally {
    await Promise.all([service.stop(), echo.stop()]);
  }
}

export const renderBenchmarks: Benchmark[] = [{ name: 'render', run }];
