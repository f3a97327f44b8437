// Issue 5: the proxy's overhead. A 20 KB Anthropic request referencing a 64 KB
// bundle, against a fast stand-in upstream (node:http answering a fixed
// Anthropic-shaped message), measured three ways in the same run:
//   direct       wrk → upstream
//   pass-through wrk → minimal node:http proxy (pipes the body, keep-alive agent) → upstream
//   proxy        wrk → prefix-handles /proxy/anthropic (auth, render, record, call, reconcile) → upstream
//   proxy (:memory:) the same service on an in-memory database: what is left without the fsyncs
//   floor        wrk → node:http doing only what no proxy of handles can skip (parse and check the body's JSON,
//                digest the caller's messages, splice in the bundle's bytes kept ready, send the 85 KB, read the
//                answer's usage) and nothing else: no key checked, no database, no render, no record, no
//                reconciliation. The bytes it sends are our proxy's own (taken from what it sent the upstream in
//                the setup, and checked: the same bytes). Its throughput is a ceiling of what an
//                implementation of the target could reach on this machine, not a figure it would reach.
// req/s at 32 connections and added p50/p99 at 1 connection.
// Targets: proxy ≥ 0.75× the pass-through's req/s; proxy adds < 0.3 ms p50 over direct.
//
// This file is also the entry of the child servers (PH_BENCH_PROXY_ROLE: the upstream, the pass-through and the two
// floors), so each runs in its own process like the service does.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  type Benchmark,
  type ChildServer,
  fetchOk,
  type WrkOptions,
  type WrkResult,
  fmt,
  postJson,
  printTable,
  requireWrk,
  runWrk,
  startService,
  startTsServer,
  tempDir,
  writeResults,
} from './lib';
import { luaPost, prose } from './render';

const BUNDLE_BYTES = 64 * 1024;
const REQUEST_BYTES = 20 * 1024;
const MODEL = 'claude-sonnet-4-6';
const SECONDS = 4;
const ROUNDS = 3;
const WARMUP_SECONDS = 2;
const TARGET_RATIO = 0.75;
const TARGET_ADDED_P50_MS = 0.3;

// ---------- child servers ----------

/** A fixed Anthropic Messages answer, with the usage the proxy reconciles. */
const ANSWER = JSON.stringify({
  id: 'msg_bench',
  type: 'message',
  role: 'assistant',
  model: MODEL,
  content: [{ type: 'text', text: 'The retry policy is covered by notes 12 and 40.' }],
  stop_reason: 'end_turn',
  stop_sequence: null,
  usage: { input_tokens: 5200, cache_creation_input_tokens: 0, cache_read_input_tokens: 16800, cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 }, output_tokens: 14 },
});

function serveUpstream(port: number): void {
  const body = Buffer.from(ANSWER);
  // The body of the last call to `…?capture` (the setup's, not wrk's): what each proxy sent, compared before timing.
  let captured = Buffer.alloc(0);
  createServer((req, res) => {
    if (req.url === '/healthz') return void res.end('ok');
    if (req.url === '/captured') return void res.end(captured);
    // Read the whole request as a provider would, then answer.
    const kept = req.url?.endsWith('?capture') ? ([] as Buffer[]) : undefined;
    req.on('data', (c: Buffer) => kept?.push(c));
    req.on('end', () => {
      if (kept) captured = Buffer.concat(kept);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length, 'request-id': 'req_bench' });
      res.end(body);
    });
  }).listen(port, '127.0.0.1');
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host', 'te', 'trailer', 'proxy-connection']);

/** The floor for one extra hop: node:http piping the body both ways over a keep-alive agent. */
function servePassThrough(port: number, upstream: URL): void {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  createServer((req, res) => {
    if (req.url === '/healthz') return void res.end('ok');
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
    const out = httpRequest({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers, agent }, (up) => {
      const back: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) back[k] = v;
      res.writeHead(up.statusCode ?? 502, back);
      up.pipe(res);
    });
    out.on('error', () => {
      res.statusCode = 502;
      res.end();
    });
    req.pipe(out);
  }).listen(port, '127.0.0.1');
}

/**
 * The least a proxy of handles does per call, as cheaply as node:http allows: the caller's JSON parsed (it must be
 * checked), its messages digested (drift is told by digests), the bundle's rendered bytes (made once) spliced in
 * place of `prefix`, the 85 KB sent upstream, the answer read whole and its usage parsed, then sent back.
 */
function serveFloor(port: number, upstream: URL, bytesOnly: boolean, renderedFile: string): void {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  // The bundle's bytes as our proxy renders them, taken from the body it sent upstream: its tools and system
  // (`{"tools":…,"system":…,`) and its document's message (`{…},`), read once, written as they are (no copy per call).
  const ready = JSON.parse(readFileSync(renderedFile, 'utf8')) as { top: string; lead: string };
  const [top, lead] = [Buffer.from(ready.top), Buffer.from(ready.lead)];
  const [PREFIX, MESSAGES] = [Buffer.from('"prefix":'), Buffer.from('"messages":[')];
  createServer((req, res) => {
    if (req.url === '/healthz') return void res.end('ok');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const caller = Buffer.concat(chunks);
      if (!bytesOnly) {
        const parsed = JSON.parse(caller.toString('utf8')) as { messages: unknown[] };
        if (!Array.isArray(parsed.messages)) return void res.writeHead(422).end();
        createHash('sha256').update(caller.subarray(caller.indexOf('"messages":'))).digest();
      }
      // The caller's body without `"prefix":[…],`, the bundle's bytes around it (ours' order): views, one writev.
      const prefixAt = caller.indexOf(PREFIX);
      const head = caller.subarray(1, prefixAt);
      const tail = caller.subarray(caller.indexOf(MESSAGES, prefixAt) + MESSAGES.length);
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k) && k !== 'content-length') headers[k] = v;
      headers['content-length'] = String(top.length + head.length + MESSAGES.length + lead.length + tail.length);
      const out = httpRequest({ host: upstream.hostname, port: upstream.port, path: req.url, method: 'POST', headers, agent }, (up) => {
        const answer: Buffer[] = [];
        up.on('data', (c: Buffer) => answer.push(c));
        up.on('end', () => {
          const bytes = Buffer.concat(answer);
          if (!bytesOnly) (JSON.parse(bytes.toString('utf8')) as { usage?: unknown }).usage;
          res.writeHead(up.statusCode ?? 502, { 'content-type': 'application/json', 'content-length': bytes.length });
          res.end(bytes);
        });
      });
      out.on('error', () => {
        res.statusCode = 502;
        res.end();
      });
      out.cork();
      for (const b of [top, head, MESSAGES, lead]) out.write(b);
      out.end(tail);
    });
  }).listen(port, '127.0.0.1');
}

const role = process.env.PH_BENCH_PROXY_ROLE;
if (role === 'floor' || role === 'floor-bytes') serveFloor(Number(process.env.PORT), new URL(process.env.PH_BENCH_UPSTREAM!), role === 'floor-bytes', process.env.PH_BENCH_FLOOR_RENDERED!);
if (role === 'upstream') serveUpstream(Number(process.env.PORT));
if (role === 'passthrough') servePassThrough(Number(process.env.PORT), new URL(process.env.PH_BENCH_UPSTREAM!));

// ---------- fixtures ----------

const TOOLS = Array.from({ length: 12 }, (_, i) => ({
  name: `lookup_${i}`,
  description: `Looks up records of kind ${i} in the design-note corpus by owner, review date or linked ticket; returns at most 20 matches, newest first.`,
  input_schema: { type: 'object', properties: { query: { type: 'string' }, owner: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 20 } }, required: ['query'] },
}));

async function mintBundle(url: string, apiKey: string): Promise<string> {
  const post = (path: string, body: unknown) => postJson<{ id: string }>(url + path, apiKey, body);
  const tools = await post('/v1/artifacts', { kind: 'tools', name: 'bench tools', content: TOOLS });
  const system = await post('/v1/artifacts', { kind: 'system', name: 'bench system', content: prose(7, 12 * 1024) });
  const doc = await post('/v1/artifacts', { kind: 'document', name: 'bench handbook', content: prose(8, BUNDLE_BYTES - JSON.stringify(TOOLS).length - 12 * 1024) });
  return (await post('/v1/bundles', { name: 'bench bundle', members: [tools.id, system.id, doc.id] })).id;
}

/** The 20 KB body the client sends: a conversation after the bundle prefix. */
function requestBody(bundleId: string): string {
  const head = `{"model":"${MODEL}","max_tokens":1024,"prefix":["${bundleId}"],"messages":[`;
  const turns: string[] = [];
  let len = head.length;
  for (let i = 0; len < REQUEST_BYTES - 200; i++) {
    const t = JSON.stringify({ role: i % 2 ? 'assistant' : 'user', content: prose(1000 + i, 1400) });
    turns.push(t);
    len += t.length + 1;
  }
  return `${head}${turns.join(',')},${JSON.stringify({ role: 'user', content: 'Which notes cover the retry policy?' })}]}`;
}

// ---------- the benchmark ----------

interface Side {
  name: string;
  wrk: WrkOptions;
}

/** Runs each side once per round, in turn, and keeps each side's median run (by `key`). */
async function alternate(sides: Side[], connections: number, key: (r: WrkResult) => number): Promise<WrkResult[]> {
  for (const s of sides) await runWrk({ ...s.wrk, connections, seconds: WARMUP_SECONDS, timeoutSeconds: 30 });
  const runs: WrkResult[][] = sides.map(() => []);
  for (let i = 0; i < ROUNDS; i++) for (const [k, s] of sides.entries()) runs[k]!.push(await runWrk({ ...s.wrk, connections, seconds: SECONDS, timeoutSeconds: 30 }));
  return runs.map((r) => [...r].sort((a, b) => key(a) - key(b))[Math.floor(r.length / 2)]!);
}

async function run(): Promise<void> {
  requireWrk();
  const upstream = await startTsServer({ entry: 'bench/proxy.ts', env: { PH_BENCH_PROXY_ROLE: 'upstream' }, healthPath: '/healthz', label: 'stand-in upstream' });
  const passThrough = await startTsServer({ entry: 'bench/proxy.ts', env: { PH_BENCH_PROXY_ROLE: 'passthrough', PH_BENCH_UPSTREAM: upstream.url }, healthPath: '/healthz', label: 'pass-through proxy' });
  const service = await startService({ PH_ANTHROPIC_BASE_URL: upstream.url });
  const memory = await startService({ PH_ANTHROPIC_BASE_URL: upstream.url, PH_DATABASE: ':memory:' });
  const floors: ChildServer[] = [];
  try {
    const bundleId = await mintBundle(service.url, service.apiKey);
    const body = requestBody(bundleId);
    // The same bundle content mints the same bytes, so both services expand the same prompt.
    const memoryBody = body.replace(bundleId, await mintBundle(memory.url, memory.apiKey));
    const script = luaPost(tempDir('proxy-lua'), 'messages', body);
    const provider = { 'content-type': 'application/json', 'x-api-key': 'sk-ant-bench', 'anthropic-version': '2023-06-01' };

    // What our proxy sends upstream for this call: the floors send the same bytes, the render's part kept ready.
    const sent = async (url: string, headers: Record<string, string>): Promise<Buffer> => {
      const res = await fetch(`${url}?capture`, { method: 'POST', headers, body });
      if (!res.ok) throw new Error(`${url} answered ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
      return Buffer.from(await (await fetchOk(`${upstream.url}/captured`)).arrayBuffer());
    };
    const proxied = await sent(`${service.url}/proxy/anthropic/v1/messages`, { ...provider, 'x-ph-key': service.apiKey });
    // Ours puts the bundle's tools and system before the caller's fields and its document as the first message: the
    // floors write those bytes, kept ready, around the caller's own (anything else it changed would be an error here).
    const { messages: callerMessages, prefix: _prefix, ...callerRest } = JSON.parse(body) as { messages: unknown[]; prefix: unknown };
    const expanded = JSON.parse(proxied.toString('utf8')) as { messages: unknown[] };
    const { messages, ...rest } = expanded;
    const lead = messages.slice(0, messages.length - callerMessages.length);
    if (!isDeepStrictEqual(messages.slice(lead.length), callerMessages) || Object.entries(callerRest).some(([k, v]) => !isDeepStrictEqual((rest as Record<string, unknown>)[k], v)))
      throw new Error("the proxy changed the caller's own fields or messages: the floors' splice no longer sends what it sends");
    const top = Object.fromEntries(Object.entries(rest).filter(([k]) => !(k in callerRest)));
    const renderedFile = join(tempDir('proxy-floor'), 'rendered.json');
    writeFileSync(renderedFile, JSON.stringify({ top: `${JSON.stringify(top).slice(0, -1)},`, lead: lead.map((m) => `${JSON.stringify(m)},`).join('') }));
    for (const role of ['floor', 'floor-bytes']) floors.push(await startTsServer({ entry: 'bench/proxy.ts', env: { PH_BENCH_PROXY_ROLE: role, PH_BENCH_UPSTREAM: upstream.url, PH_BENCH_FLOOR_RENDERED: renderedFile }, healthPath: '/healthz', label: `${role} proxy` }));
    const [floor, floorBytes] = floors as [ChildServer, ChildServer];
    for (const f of floors) {
      const bytes = await sent(`${f.url}/v1/messages`, provider);
      if (!bytes.equals(proxied)) throw new Error(`a floor proxy sent other bytes (${bytes.length}) than ours (${proxied.length}): ${bytes.subarray(0, 200).toString()}`);
    }
    const sides: Side[] = [
      { name: 'direct', wrk: { url: `${upstream.url}/v1/messages`, script, headers: provider } },
      { name: 'pass-through', wrk: { url: `${passThrough.url}/v1/messages`, script, headers: provider } },
      { name: 'proxy', wrk: { url: `${service.url}/proxy/anthropic/v1/messages`, script, headers: { ...provider, 'x-ph-key': service.apiKey } } },
      { name: 'proxy (:memory: db)', wrk: { url: `${memory.url}/proxy/anthropic/v1/messages`, script: luaPost(tempDir('proxy-lua'), 'memory', memoryBody), headers: { ...provider, 'x-ph-key': memory.apiKey } } },
      { name: 'floor (no db, no render)', wrk: { url: `${floor.url}/v1/messages`, script, headers: provider } },
      { name: 'floor (the bytes alone)', wrk: { url: `${floorBytes.url}/v1/messages`, script, headers: provider } },
    ];

    // One call first, so a setup mistake is an error message rather than a wrk failure.
    const probe = await fetch(sides[2]!.wrk.url, { method: 'POST', headers: sides[2]!.wrk.headers, body });
    if (!probe.ok) throw new Error(`the proxy answered ${probe.status}: ${await probe.text()}`);
    await probe.arrayBuffer();

    const throughput = await alternate(sides, 32, (r) => r.rps);
    const latency = await alternate(sides, 1, (r) => r.p50Ms);
    const [, pT, xT, , fT, bT] = throughput as [WrkResult, WrkResult, WrkResult, WrkResult, WrkResult, WrkResult];
    const [dL, pL, xL, , fL, bL] = latency as [WrkResult, WrkResult, WrkResult, WrkResult, WrkResult, WrkResult];
    const ratio = xT.rps / pT.rps;
    const added = xL.p50Ms - dL.p50Ms;
    const floorRatio = fT.rps / pT.rps;
    const floorAdded = fL.p50Ms - dL.p50Ms;
    const bytesRatio = bT.rps / pT.rps;
    const bytesAdded = bL.p50Ms - dL.p50Ms;

    console.log(
      `wrk -t1, ${SECONDS}s runs after ${WARMUP_SECONDS}s warm-up, the sides alternated ${ROUNDS}× per setting, median run shown. ` +
        `Client body ${fmt.bytes(body.length)}; the proxy expands the bundle (${fmt.bytes(BUNDLE_BYTES)}) into it and sends ${fmt.bytes(proxied.length)} upstream, as do the floors (checked: the same bytes); answer ${fmt.bytes(ANSWER.length)}.\n`,
    );
    printTable(
      ['path', 'req/s @32', 'vs pass-through', 'p50 / p99 @1', 'added p50 / p99 @1'],
      sides.map((s, i) => [
        s.name,
        fmt.rps(throughput[i]!.rps),
        fmt.ratio(throughput[i]!.rps / pT.rps),
        `${fmt.ms(latency[i]!.p50Ms)} / ${fmt.ms(latency[i]!.p99Ms)}`,
        i === 0 ? '—' : `${fmt.ms(latency[i]!.p50Ms - dL.p50Ms)} / ${fmt.ms(latency[i]!.p99Ms - dL.p99Ms)}`,
      ]),
    );
    console.log(
      `\nthroughput: proxy ${fmt.ratio(ratio)} of the pass-through — ${ratio >= TARGET_RATIO ? 'PASS' : 'MISS'} (target ≥ ${TARGET_RATIO}×)` +
        `\nlatency:    proxy adds ${fmt.ms(added)} p50 over direct — ${added < TARGET_ADDED_P50_MS ? 'PASS' : 'MISS'} (target < ${TARGET_ADDED_P50_MS} ms); the pass-through adds ${fmt.ms(pL.p50Ms - dL.p50Ms)}` +
        `\nfloor:      ${fmt.ratio(floorRatio)} of the pass-through, adding ${fmt.ms(floorAdded)} p50 — a ceiling here for a proxy that parses, digests and expands, before it checks a key or records anything` +
        `\n            ${fmt.ratio(bytesRatio)}, adding ${fmt.ms(bytesAdded)} p50, with the expanded bytes alone (no parse, no digest)`,
    );
    const file = writeResults('proxy', {
      benchmark: 'proxy',
      measuredAt: new Date().toISOString(),
      node: process.version,
      model: MODEL,
      wrk: { threads: 1, seconds: SECONDS, warmupSeconds: WARMUP_SECONDS, rounds: ROUNDS },
      sizes: { requestBytes: body.length, bundleBytes: BUNDLE_BYTES, upstreamBytes: proxied.length, answerBytes: ANSWER.length },
      throughput: Object.fromEntries(sides.map((s, i) => [s.name, throughput[i]])),
      latency: Object.fromEntries(sides.map((s, i) => [s.name, latency[i]])),
      ratio,
      addedP50Ms: added,
      passThroughAddedP50Ms: pL.p50Ms - dL.p50Ms,
      floor: { ratio: floorRatio, addedP50Ms: floorAdded, bytesOnly: { ratio: bytesRatio, addedP50Ms: bytesAdded } },
      pass: { throughput: ratio >= TARGET_RATIO, latency: added < TARGET_ADDED_P50_MS },
    });
    console.log(`results written to ${file}`);
  } finally {
    await Promise.all([service.stop(), memory.stop(), ...floors.map((f) => f.stop()), passThrough.stop(), upstream.stop()]);
  }
}

export const proxyBenchmarks: Benchmark[] = [{ name: 'proxy', run }];
