// Shared helpers for benchmarks: child servers, wrk, tables, results.
// Benchmarks measure a baseline in the same run and print ratios, so numbers
// from different machines (or a busy CI box) stay comparable.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Benchmark {
  name: string;
  run(): Promise<void>;
}

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

// ---- cleanup: every child and temp dir goes away on exit, error or Ctrl-C ----

/** The Node flags `npm start` gives the service (package.json), so every server here runs as users run it. */
const SERVICE_NODE_FLAGS = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start
  .split(' ')
  .filter((arg) => /^--(?!import)/.test(arg));

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

export function cleanup(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    cleanup();
    process.exit(130);
  });
}

export function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `ph-bench-${label}-`));
  tempDirs.add(dir);
  return dir;
}

// ---- child servers ----

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface ChildServer {
  url: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Runs a TypeScript entry point as its own Node process (one process per
 * server, so service and baseline get the same process model) and waits
 * until `healthPath` answers 200.
 */
export async function startTsServer(opts: { entry: string; env: Record<string, string>; healthPath: string; label: string }): Promise<ChildServer> {
  const port = await freePort();
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, '--import', 'tsx', opts.entry], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env, PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${opts.label} exited with code ${child.exitCode} before it was healthy:\n${output}`);
    try {
      const res = await fetch(url + opts.healthPath);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${opts.label} was not healthy at ${url}${opts.healthPath} after 30 s:\n${output}`);
    await sleep(100);
  }
  return {
    url,
    process: child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(3000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      children.delete(child);
    },
  };
}

export interface Service extends ChildServer {
  apiKey: string;
  dataDir: string;
}

/** The real service (src/main.ts) on a fresh data dir; first start leaves a tenant key in <data>/api-key. */
export async function startService(extraEnv: Record<string, string> = {}): Promise<Service> {
  const dataDir = tempDir('data');
  const server = await startTsServer({
    entry: 'src/main.ts',
    env: { PH_DATA_DIR: dataDir, PH_LOG: 'off', ...extraEnv },
    healthPath: '/healthz',
    label: 'prefix-handles',
  });
  const apiKey = readFileSync(join(dataDir, 'api-key'), 'utf8').trim();
  return { ...server, apiKey, dataDir };
}

/** bench/bare-server.ts: a bare Hono app serving `routes` (path → bytes) from memory. */
export async function startBare(routes: Record<string, Buffer>): Promise<ChildServer> {
  const dir = tempDir('bare');
  const manifest: Record<string, string> = {};
  for (const [path, bytes] of Object.entries(routes)) {
    const file = join(dir, `${Object.keys(manifest).length}.bin`);
    writeFileSync(file, bytes);
    manifest[path] = file;
  }
  const manifestFile = join(dir, 'routes.json');
  writeFileSync(manifestFile, JSON.stringify(manifest));
  return startTsServer({ entry: 'bench/bare-server.ts', env: { BARE_ROUTES: manifestFile }, healthPath: '/healthz', label: 'bare server' });
}

/** bench/echo-server.ts: a bare Hono app that answers any POST with JSON.stringify(JSON.parse(body)). */
export async function startEcho(): Promise<ChildServer> {
  return startTsServer({ entry: 'bench/echo-server.ts', env: {}, healthPath: '/healthz', label: 'echo server' });
}

// ---- wrk ----

export function requireWrk(): void {
  const probe = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
  if ((probe.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new BenchSetupError('wrk is not installed; the benchmarks need it as the load generator.\n  Debian/Ubuntu: apt-get install wrk    macOS: brew install wrk');
  }
}

/** A setup problem the user can fix: printed without a stack trace. */
export class BenchSetupError extends Error {}

export interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Bytes read per second, as wrk reports them. */
  transferPerSec: string;
}

export interface WrkOptions {
  url: string;
  headers?: Record<string, string>;
  connections?: number;
  seconds?: number;
  threads?: number;
  /** A wrk Lua script (`-s`), e.g. for POST bodies or a request per id. */
  script?: string;
  /** Arguments after `--`, passed to the script's `init(args)`. */
  scriptArgs?: string[];
  /** wrk's per-request timeout in seconds (wrk's default is 2): a slow-but-answering server is measured, not failed. */
  timeoutSeconds?: number;
}

// wrk -t1: the machine the issue targets has 2 cores, one for wrk and one for the server.
export const WRK_DEFAULTS = { connections: 32, seconds: 4, threads: 1 };

export async function runWrk(opts: WrkOptions): Promise<WrkResult> {
  return (await runWrkWithOutput(opts)).result;
}

/** runWrk, plus wrk's whole output (for what a script's `done()` prints). */
export async function runWrkWithOutput(opts: WrkOptions): Promise<{ result: WrkResult; output: string }> {
  const { connections, seconds, threads } = { ...WRK_DEFAULTS, ...opts };
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--latency'];
  if (opts.timeoutSeconds) args.push('--timeout', `${opts.timeoutSeconds}s`);
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  if (opts.script) args.push('-s', opts.script);
  args.push(opts.url);
  if (opts.scriptArgs?.length) args.push('--', ...opts.scriptArgs);
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      children.delete(child);
      code === 0 ? resolve(text) : reject(new Error(`wrk exited with ${code}:\n${text}`));
    });
  });
  return { result: parseWrk(out, opts.url), output: out };
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function latencyMs(text: string, pct: string): number {
  const m = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(text);
  if (!m) throw new Error(`no ${pct}% latency in wrk output:\n${text}`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

export function parseWrk(text: string, url: string): WrkResult {
  // Error responses are usually faster than real ones: a run with any would flatter the server.
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text);
  if (non2xx) throw new Error(`${non2xx[1]} non-2xx responses from ${url}:\n${text}`);
  // wrk prints this line only when some count is non-zero; timeouts would also make p99 meaningless.
  const sockErr = /Socket errors: (.*)/.exec(text);
  if (sockErr) throw new Error(`socket errors from ${url}: ${sockErr[1]}`);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  const total = /(\d+) requests in/.exec(text);
  const transfer = /Transfer\/sec:\s+(\S+)/.exec(text);
  if (!rps || !total) throw new Error(`could not parse wrk output:\n${text}`);
  return {
    rps: Number(rps[1]),
    p50Ms: latencyMs(text, '50'),
    p99Ms: latencyMs(text, '99'),
    requests: Number(total[1]),
    transferPerSec: transfer?.[1] ?? '?',
  };
}

export interface Comparison {
  baseline: WrkResult;
  subject: WrkResult;
  /** subject req/s ÷ baseline req/s, from the median run of each. */
  ratio: number;
  rounds: { baseline: number; subject: number }[];
}

/**
 * Warms both up, then runs baseline and subject alternately `rounds` times and
 * keeps each side's median run: alternation spreads background load over both,
 * the median drops the odd run another process disturbed.
 */
export async function compareAlternating(baseline: WrkOptions, subject: WrkOptions, opts: { rounds?: number; warmupSeconds?: number } = {}): Promise<Comparison> {
  const { rounds = 3, warmupSeconds = 2 } = opts;
  await runWrk({ ...baseline, seconds: warmupSeconds });
  await runWrk({ ...subject, seconds: warmupSeconds });
  const b: WrkResult[] = [];
  const s: WrkResult[] = [];
  for (let i = 0; i < rounds; i++) {
    b.push(await runWrk(baseline));
    s.push(await runWrk(subject));
  }
  const median = (runs: WrkResult[]) => [...runs].sort((x, y) => x.rps - y.rps)[Math.floor(runs.length / 2)]!;
  const mb = median(b);
  const ms = median(s);
  return { baseline: mb, subject: ms, ratio: ms.rps / mb.rps, rounds: b.map((r, i) => ({ baseline: r.rps, subject: s[i]!.rps })) };
}

/** Other processes on the box skew every number; say so up front rather than let a ratio mislead. */
export function warnIfBusy(): void {
  const load = loadavg()[0]!;
  const cores = cpus().length;
  if (load > cores / 2)
    console.log(`note: load average ${load.toFixed(1)} on ${cores} cores — other processes compete for CPU, expect noisy numbers.`);
}

// ---- HTTP helpers for setting up fixtures ----

export async function fetchOk(url: string, init?: RequestInit): Promise<Response> {
  const res = await fetch(url, init);
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${url} → ${res.status}: ${await res.text()}`);
  return res;
}

export async function postJson<T>(url: string, apiKey: string, body: unknown): Promise<T> {
  const res = await fetchOk(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return (await res.json()) as T;
}

// ---- output ----

export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

export function writeResults(name: string, data: unknown): string {
  const file = join(ROOT, 'bench', 'results', `${name}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}

export const fmt = {
  rps: (n: number) => Math.round(n).toLocaleString('en-US'),
  ms: (n: number) => `${n.toFixed(2)}ms`,
  ratio: (n: number) => `${n.toFixed(2)}×`,
  bytes: (n: number) => (n >= 1024 ? `${(n / 1024).toFixed(n >= 10 * 1024 ? 0 : 1)} KB` : `${n} B`),
};

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---- in-process timing ----

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

export interface Samples {
  p50Ms: number;
  p99Ms: number;
  n: number;
}

export function summarize(ms: number[]): Samples {
  const sorted = [...ms].sort((a, b) => a - b);
  return { p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), n: sorted.length };
}

/**
 * Times `baseline(i)` and `subject(i)` call by call, alternating blocks of
 * `block` calls (after `warmup` calls of each), so background load falls on
 * both sides alike. `i` counts calls per side, so each call can use fresh input.
 */
export async function timeAlternating(
  baseline: (i: number) => unknown,
  subject: (i: number) => unknown,
  opts: { samples: number; block?: number; warmup?: number },
): Promise<{ baseline: Samples; subject: Samples }> {
  const { samples, block = 10, warmup = 3 } = opts;
  const b: number[] = [];
  const s: number[] = [];
  let i = 0;
  for (let w = 0; w < warmup; w++, i++) {
    await baseline(i);
    await subject(i);
  }
  while (b.length < samples) {
    for (let k = 0; k < block && b.length < samples; k++) {
      const t0 = performance.now();
      await baseline(i + k);
      b.push(performance.now() - t0);
    }
    for (let k = 0; k < block && s.length < samples; k++) {
      const t0 = performance.now();
      await subject(i + k);
      s.push(performance.now() - t0);
    }
    i += block;
  }
  return { baseline: summarize(b), subject: summarize(s) };
}
