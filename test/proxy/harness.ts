// The proxy over real loopback HTTP: the app on one port, the provider
// simulator on another behind a recording tap, the official SDKs as clients,
// one fake clock for both. Each test builds its own.

import type { WriteQueue } from '../../src/domain/write-queue';
import Anthropic from '@anthropic-ai/sdk';
import { serve, type ServerType } from '@hono/node-server';
import { createServer, Server as HttpServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { GoogleGenAI } from '@google/genai';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import { createSimulatorApp, type SimulatorOptions } from '../../src/simulator/server';
import { clientFor, createTestApp, type TestApp } from '../helpers/app';
import type { Config } from '../../src/config';
import { FakeClock } from '../helpers/clock';

const catalog = new ModelCatalog(loadCatalog());

/** What the upstream saw: one entry per call, in arrival order. */
export interface TapEntry {
  method: string;
  path: string;
  headers: Headers;
  body: string;
  /** The response body as the simulator produced it (filled once it has been read through). */
  response: string;
  /** Filled in as the simulator's response body is produced, delivered and closed. */
  events: string[];
}

export interface Harness {
  t: TestApp;
  clock: FakeClock;
  url: string;
  key: string;
  tenant: ReturnType<TestApp['tenant']>;
  upstreamUrl: string;
  tap: TapEntry[];
  /** Shared, ordered log of what happened where ("client: …", "upstream: …"). */
  timeline: string[];
  anthropic(extra?: { headers?: Record<string, string>; apiKey?: string; fetch?: typeof fetch }): Anthropic;
  openai(extra?: { headers?: Record<string, string>; apiKey?: string; fetch?: typeof fetch }): OpenAI;
  /** The official @google/genai client (no retries: its default), its base URL the proxy's /proxy/gemini. */
  gemini(extra?: { headers?: Record<string, string>; apiKey?: string; apiVersion?: string }): GoogleGenAI;
  close(): Promise<void>;
}

export interface HarnessOptions extends Partial<Pick<SimulatorOptions, 'chunkDelayMs' | 'firstByteDelayMs'>> {
  /** Rewrites the simulator's response before the proxy sees it (e.g. adds a field the proxy does not know). */
  rewrite?: (body: string, contentType: string) => string;
  /** PH_MAX_BODY_BYTES for the proxy. */
  maxBodyBytes?: number;
  /** PH_PROXY_ORDER_WAIT_MS for the proxy. */
  proxyOrderWaitMs?: number;
  /** PH_LOG=json for the proxy (its lines go to process.stdout). */
  log?: boolean;
  /** Holds back a chunk of the `call`-th upstream answer (0-based) until the promise it returns resolves. */
  hold?: (call: number, chunk: string) => Promise<void> | undefined;
  /** More of the proxy's configuration (the trace export's `otlp`). */
  config?: Partial<Config>;
  /** The database file (in memory when absent). */
  databasePath?: string;
  /** A tenant the file already holds, instead of a new one. */
  tenant?: { id: string; key: string };
  /** PH_SCOPE_SNAPSHOT_EVERY for the proxy. */
  scopeSnapshotEvery?: number;
}

async function listen(fetch: Parameters<typeof serve>[0]['fetch']): Promise<{ server: ServerType; url: string }> {
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function close(server: ServerType | HttpServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    if (server instanceof HttpServer) server.closeAllConnections();
  });
}

/** Copies a response body through, recording its bytes and when it is done. */
function recorded(body: ReadableStream<Uint8Array>, entry: TapEntry, timeline: string[], opts: HarnessOptions & { call: number }, contentType: string): ReadableStream<Uint8Array> {
  const { rewrite, hold, call } = opts;
  const reader = body.getReader();
  const decoder = new TextDecoder();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          timeline.push('upstream: end');
          entry.events.push('end');
          controller.close();
          return;
        }
        const text = decoder.decode(value, { stream: true });
        await hold?.(call, text);
        entry.response += text;
        controller.enqueue(rewrite ? new TextEncoder().encode(rewrite(text, contentType)) : value);
      } catch (err) {
        entry.events.push('error');
        controller.error(err);
      }
    },
    cancel(reason) {
      timeline.push('upstream: cancelled');
      entry.events.push('cancelled');
      return reader.cancel(reason);
    },
  });
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const clock = new FakeClock();
  const sim = createSimulatorApp({ catalog, clock, chunkDelayMs: opts.chunkDelayMs, firstByteDelayMs: opts.firstByteDelayMs });
  const tap: TapEntry[] = [];
  const timeline: string[] = [];

  const upstream = await listen(async (req, env) => {
    const body = req.method === 'GET' ? '' : await req.text();
    const entry: TapEntry = { method: req.method, path: new URL(req.url).pathname + new URL(req.url).search, headers: new Headers(req.headers), body, response: '', events: [] };
    const call = tap.push(entry) - 1;
    const res = await sim.fetch(new Request(req.url, { method: req.method, headers: req.headers, body: req.method === 'GET' ? undefined : body }), env);
    if (!res.body) return res;
    const contentType = res.headers.get('content-type') ?? '';
    const headers = new Headers(res.headers);
    if (opts.rewrite) headers.delete('content-length');
    return new Response(recorded(res.body, entry, timeline, { ...opts, call }, contentType), { status: res.status, headers });
  });

  const t = createTestApp({ clock, databasePath: opts.databasePath, config: { anthropicBaseUrl: upstream.url, openaiBaseUrl: upstream.url, geminiBaseUrl: upstream.url, ...(opts.maxBodyBytes ? { maxBodyBytes: opts.maxBodyBytes } : {}), ...(opts.proxyOrderWaitMs ? { proxyOrderWaitMs: opts.proxyOrderWaitMs } : {}), ...(opts.log ? { log: 'json' as const } : {}), ...(opts.scopeSnapshotEvery ? { scopeSnapshotEvery: opts.scopeSnapshotEvery } : {}), ...opts.config } });
  const proxy = await listen(t.app.fetch);
  const tenant = opts.tenant ? { ...opts.tenant, client: clientFor(t.app, opts.tenant.key) } : t.tenant();

  return {
    t,
    clock,
    url: proxy.url,
    key: tenant.key,
    tenant,
    upstreamUrl: upstream.url,
    tap,
    timeline,
    anthropic: (extra = {}) =>
      new Anthropic({
        apiKey: extra.apiKey ?? 'sk-ant-test',
        baseURL: `${proxy.url}/proxy/anthropic`,
        maxRetries: 0,
        defaultHeaders: { 'x-ph-key': tenant.key, ...extra.headers },
        ...(extra.fetch ? { fetch: extra.fetch } : {}),
      }),
    openai: (extra = {}) =>
      new OpenAI({
        apiKey: extra.apiKey ?? 'sk-openai-test',
        baseURL: `${proxy.url}/proxy/openai/v1`,
        maxRetries: 0,
        defaultHeaders: { 'x-ph-key': tenant.key, ...extra.headers },
        ...(extra.fetch ? { fetch: extra.fetch } : {}),
      }),
    gemini: (extra = {}) =>
      new GoogleGenAI({
        apiKey: extra.apiKey ?? 'gemini-test-key',
        httpOptions: { baseUrl: `${proxy.url}/proxy/gemini`, headers: { 'x-ph-key': tenant.key, ...extra.headers }, ...(extra.apiVersion ? { apiVersion: extra.apiVersion } : {}) },
      }),
    async close() {
      await close(proxy.server);
      await close(upstream.server);
      t.close();
    },
  };
}

/** Lets the reconciliations of answers already received run (one turn) and their group commits land. */
export async function committed(h: { t: { services: { writes: WriteQueue } } }): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await h.t.services.writes.idle();
}

/** Waits until `check` holds; fails after `turns` tries and 10 s, whichever is later (a wait, never an assertion on time). */
export async function eventually<T>(check: () => T | undefined | null | false, what: string, turns = 500): Promise<T> {
  // At least `turns` looks and 10 s: on a loaded 2-core machine 500 turns of 2 ms (a second) can pass before a
  // reconciliation or a socket's close has had its turn.
  const until = Date.now() + 10_000;
  for (let i = 0; i < turns || Date.now() < until; i++) {
    const v = check();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`never happened: ${what}`);
}

/** The error an SDK call rejects with. */
export async function rejection(call: Promise<unknown>): Promise<any> {
  try {
    await call;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

/** One call as a node:http stand-in for the provider received it. */
export interface StandInCall {
  headers: IncomingHttpHeaders;
  body: string;
  /** The proxy let the call go before the stand-in had ended its answer. */
  aborted: boolean;
}

export interface StandIn {
  t: TestApp;
  url: string;
  tenant: ReturnType<TestApp['tenant']>;
  calls: StandInCall[];
  /** The stand-in's TCP connections: how many the proxy opened, and how many are still open. */
  connections: { opened: number; open: number };
  anthropic(extra?: { headers?: Record<string, string>; maxRetries?: number; fetch?: typeof fetch }): Anthropic;
  openai(extra?: { headers?: Record<string, string>; maxRetries?: number }): OpenAI;
  close(): Promise<void>;
}

/**
 * The proxy with a node:http stand-in for Anthropic and OpenAI that answers as `answer` says: for conditions the
 * simulator never produces (a compressed answer, odd chunking, a stream that ends early). `call` counts from 0.
 */
export async function startStandIn(answer: (req: IncomingMessage, res: ServerResponse, call: number) => void, opts: { log?: boolean; config?: Partial<Config> } = {}): Promise<StandIn> {
  const calls: StandInCall[] = [];
  const connections = { opened: 0, open: 0 };
  const upstream = createServer((req, res) => {
    const call: StandInCall = { headers: req.headers, body: '', aborted: false };
    const n = calls.push(call) - 1;
    res.on('close', () => (call.aborted = !res.writableFinished));
    req.setEncoding('utf8');
    req.on('data', (d: string) => (call.body += d));
    req.on('end', () => answer(req, res, n));
  });
  upstream.on('connection', (socket) => {
    connections.opened++;
    connections.open++;
    socket.on('close', () => connections.open--);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const t = createTestApp({ config: { anthropicBaseUrl: base, openaiBaseUrl: base, ...(opts.log ? { log: 'json' as const } : {}), ...opts.config } });
  const proxy = await listen(t.app.fetch);
  const tenant = t.tenant();
  return {
    t,
    url: proxy.url,
    tenant,
    calls,
    connections,
    anthropic: (extra = {}) =>
      new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${proxy.url}/proxy/anthropic`, maxRetries: extra.maxRetries ?? 0, defaultHeaders: { 'x-ph-key': tenant.key, ...extra.headers }, ...(extra.fetch ? { fetch: extra.fetch } : {}) }),
    openai: (extra = {}) => new OpenAI({ apiKey: 'sk-openai-test', baseURL: `${proxy.url}/proxy/openai/v1`, maxRetries: extra.maxRetries ?? 0, defaultHeaders: { 'x-ph-key': tenant.key, ...extra.headers } }),
    async close() {
      await close(proxy.server);
      await close(upstream);
      t.close();
    },
  };
}
