import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { serve, type ServerType } from '@hono/node-server';
import { mkdtempSync, rmSync } from 'node:fs';
import { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import type { UsageReport } from '../../src/domain/reconcile/reconciler';
import { createSimulatorApp } from '../../src/simulator/server';
import { clientFor, createTestApp, type Client, type TestApp } from '../helpers/app';
import { FakeClock } from '../helpers/clock';
import { LONG_SYSTEM } from '../helpers/scenario';

// Reports are served from rollups kept up to date at ingestion (and pending write premiums kept in memory). This
// property checks them against a recomputation from scratch out of each request's stored outcome (its segments'
// classes and money, and the parts of its write premium still unread), over random histories: several models and
// TTLs (Anthropic 5m and 1h, OpenAI chat and Responses, GPT-5.6's billed writes, Gemini), single, batch and
// concurrent reports (several reconciled before their group commit lands, a report read in between), reports out of
// start order and late (past the TTL: the scope's history), calls without times, failed calls, repeated reports
// (same: once; different: 409), calls through the proxy (streamed, refused, cut off), a new artifact version and
// session appends, write premiums read later (also after they counted as unread), report filters (from, to, model),
// and restarts on the same SQLite file; histories of several months, whose reports read spans (a month's rollups, or
// every day's, summed once) that late reports then undo. Set ROLLUP_STATS=1 to print what the runs covered.

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

type Model = 'sonnet' | 'sonnet1h' | 'haiku' | 'gpt41' | 'gpt5r' | 'terra' | 'gemini';
const MODELS: Record<Model, { format: string; model: string; extra?: Record<string, unknown> }> = {
  sonnet: { format: 'anthropic', model: 'claude-sonnet-4-5', extra: { max_tokens: 64 } },
  // Every mark 1h: writes of an hour, billed at 2×.
  sonnet1h: { format: 'anthropic', model: 'claude-sonnet-4-5', extra: { max_tokens: 64, cache_control: { type: 'ephemeral', ttl: '1h' } } },
  // A minimum of 4,096 tokens: below_minimum.
  haiku: { format: 'anthropic', model: 'claude-haiku-4-5', extra: { max_tokens: 64 } },
  gpt41: { format: 'openai-chat', model: 'gpt-4.1' },
  gpt5r: { format: 'openai-responses', model: 'gpt-5' },
  // Explicit breakpoints, writes billed (30m).
  terra: { format: 'openai-chat', model: 'gpt-5.6-terra' },
  gemini: { format: 'gemini', model: 'gemini-2.5-flash' },
};
const MODEL_NAMES = Object.keys(MODELS) as Model[];

/** How a call's usage is made up from its prediction: the provider read `read` of it, wrote `write` of the rest. */
const usageArb = fc.record({
  reported: fc.constantFrom(true, true, true, false),
  read: fc.constantFrom(0, 0.5, 1, 1, 1.3),
  write: fc.constantFrom(0, 0.5, 1, 1),
  skew: fc.constantFrom(1, 0.97, 1.04),
  // Anthropic's split of the write by TTL: as asked, the other, both, or not given (only the sum).
  split: fc.constantFrom('asked', 'asked', 'both', 'other', 'sum'),
});

const callArb = fc.record({
  k: fc.constant('call' as const),
  // Of the run's models and prefixes (a few of each, so calls recur in a scope).
  model: fc.nat(5),
  prefix: fc.nat(5),
  // An agent loop: the same call this many times, this far apart.
  repeat: fc.constantFrom(1, 1, 2, 3, 5),
  every: fc.constantFrom(3_000, 20_000, 90_000),
  stamped: fc.constantFrom(false, false, true),
  usage: usageArb,
  // now: reported at once; defer: held back, sent by a later flush; fail: the provider refused it.
  delivery: fc.constantFrom('now', 'now', 'now', 'now', 'defer', 'defer', 'fail'),
  // Times given, or none (started at the render, finished at receipt, first byte unknown), or no first byte.
  times: fc.constantFrom('given', 'given', 'none', 'nofirstbyte'),
  firstByteMs: fc.constantFrom(200, 2_000),
});

const opArb = fc.oneof(
  { weight: 10, arbitrary: callArb },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('advance' as const), ms: fc.constantFrom(2_000, 30_000, 4 * MIN, 6 * MIN, 40 * MIN, 70 * MIN, 5 * HOUR, 13 * HOUR, 2 * DAY, 25 * DAY) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('flush' as const), mode: fc.constantFrom('single', 'batch', 'parallel'), order: fc.constantFrom('fifo', 'lifo', 'mixed'), dupe: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('again' as const), pick: fc.nat(), same: fc.boolean(), batch: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('version' as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('append' as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('restart' as const) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('check' as const) }) },
  // A call through the proxy to the built-in simulator: reconciled by the proxy itself (streamed or not, refused, cut off).
  { weight: 3, arbitrary: fc.record({ k: fc.constant('proxy' as const), model: fc.nat(5), prefix: fc.nat(5), repeat: fc.constantFrom(1, 2, 3), stream: fc.boolean(), fault: fc.constantFrom('none', 'none', 'none', 'refused', 'cut') }) },
  // A write, and calls that read it whose reports arrive after the write's TTL: first unread, then read. With
  // `shorter`, one reader of the system prompt alone and one of the whole prefix: each reads its own part of the write.
  { weight: 2, arbitrary: fc.record({ k: fc.constant('lateReader' as const), model: fc.nat(5), prefix: fc.nat(5), shorter: fc.constantFrom(true, true, false), wait: fc.constantFrom(6 * MIN, 31 * MIN, 70 * MIN), times: fc.constantFrom('given', 'nofirstbyte'), mode: fc.constantFrom('single', 'batch', 'parallel', 'parallel') }) },
);
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;
type Call = Extract<Op, { k: 'call' }>;
const runArb = fc.record({ models: fc.shuffledSubarray(MODEL_NAMES, { minLength: 1, maxLength: 3 }), prefixes: fc.shuffledSubarray([0, 1, 2, 3, 4, 5, 6], { minLength: 1, maxLength: 3 }), ops: fc.array(opArb, { minLength: 4, maxLength: 24 }) });

/** With ROLLUP_STATS: what the runs covered (counts by kind), and each write's premium left unread at the last check. */
const coverage: Record<string, number> = {};
const premiumLeft = new Map<string, number>();

interface Sent {
  id: string;
  record: Record<string, unknown>;
}

function usageFor(c: Call & { name: Model }, r: any): Record<string, unknown> {
  const m = MODELS[c.name];
  const promptTokens = r.segments[r.segments.length - 1].token_end as number;
  const total = Math.max(1, Math.round(promptTokens * c.usage.skew));
  const read = Math.min(total, Math.round(r.prediction.read_tokens * c.usage.read * c.usage.skew));
  const written = Math.floor((total - read) * c.usage.write);
  if (m.format === 'anthropic') {
    if (!c.usage.reported) return { input_tokens: total, output_tokens: 3 };
    const asked = c.name === 'sonnet1h' ? '1h' : '5m';
    const other = asked === '1h' ? '5m' : '1h';
    const long = Math.floor(written / 2);
    const split =
      c.usage.split === 'sum'
        ? undefined
        : c.usage.split === 'both'
          ? { ephemeral_1h_input_tokens: long, ephemeral_5m_input_tokens: written - long }
          : { [`ephemeral_${c.usage.split === 'asked' ? asked : other}_input_tokens`]: written, [`ephemeral_${c.usage.split === 'asked' ? other : asked}_input_tokens`]: 0 };
    return { input_tokens: total - read - written, cache_creation_input_tokens: written, cache_read_input_tokens: read, ...(split ? { cache_creation: split } : {}), output_tokens: 3 };
  }
  if (m.format === 'openai-chat') {
    const details = c.name === 'terra' ? { cached_tokens: read, cache_write_tokens: written } : { cached_tokens: read };
    return { prompt_tokens: total, completion_tokens: 3, total_tokens: total + 3, ...(c.usage.reported ? { prompt_tokens_details: details } : {}) };
  }
  if (m.format === 'openai-responses') return { input_tokens: total, output_tokens: 3, total_tokens: total + 3, ...(c.usage.reported ? { input_tokens_details: { cached_tokens: read } } : {}) };
  // Gemini leaves zero counts out: a miss has no cachedContentTokenCount. Its tools' prompts (billed as input, outside
  // promptTokenCount, on no handle: the rollups must not move) stand where other providers' writes do.
  return { promptTokenCount: total, candidatesTokenCount: 3, ...(read > 0 ? { cachedContentTokenCount: read } : {}), ...(written > 0 ? { toolUsePromptTokenCount: written } : {}) };
}

// ---------- the recomputation, from each request's stored outcome ----------

const TOKEN_COLUMNS = ['referenced', 'opportunity', 'reported_opportunity', 'predicted', 'captured', 'bonus', 'unconfirmed', 'unknown', 'cold', 'drift', 'expired', 'concurrent', 'below_minimum', 'no_breakpoint', 'lookback'] as const;
/** The classes leaked money divides into: the unread tokens that were not cold (README: Money by leak class). */
const LEAKS = ['drift', 'expired', 'concurrent', 'below_minimum', 'no_breakpoint', 'lookback', 'unconfirmed'] as const;
const MONEY_COLUMNS = ['cost_actual', 'cost_no_cache', 'cost_perfect', 'cost_unknown', 'write_premium_paid', 'write_premium_read', 'write_premium_pending', ...LEAKS.map((c) => `leaked_${c}`)] as const;
type Row = { handle: string; version: number; day: number; model: string; v: Record<string, number> };

const zero = () => Object.fromEntries([...TOKEN_COLUMNS.flatMap((c) => [c, `req_${c}`]), 'requests', 'requests_including', ...MONEY_COLUMNS].map((c) => [c, 0])) as Record<string, number>;
const refOf = (ref: string) => {
  const at = ref.indexOf('@');
  return at < 0 ? { id: ref, version: 0 } : { id: ref.slice(0, at), version: Number(ref.slice(at + 1)) };
};

interface StoredRequest {
  id: string;
  status: string;
  model: string;
  startedAt: number | null;
  outcome: any;
  writePremium: any;
}

/** Rollup rows as they must be: from the stored outcomes alone, and the stored unread parts of each write. */
function expectedRows(requests: StoredRequest[], now: number, named: ReadonlySet<string>): Row[] {
  const rows = new Map<string, Row>();
  const row = (handle: string, version: number, day: number, model: string) => {
    const key = `${handle}\n${version}\n${day}\n${model}`;
    let r = rows.get(key);
    if (!r) rows.set(key, (r = { handle, version, day, model, v: zero() }));
    return r.v;
  };
  for (const req of requests) {
    if (req.status !== 'reconciled') continue;
    const o = req.outcome;
    const day = Math.floor(req.startedAt! / DAY);
    const reported = o.capture === 'reported';
    const paid = new Map<string, number>();
    // A call that named no handle: its segments on a row of their own ('-'), its write premiums followed there.
    const noHandle = !named.has(req.id) && o.segments.every((s: { source: string }) => s.source === 'inline');
    if (noHandle) {
      const mine = zero();
      for (const s of o.segments) addSegment(mine, s, reported);
      const v = row('-', 0, day, req.model);
      for (const k in mine) v[k]! += mine[k]!;
      v.requests! += 1;
      v.requests_including! += 1;
      for (const c of TOKEN_COLUMNS) v[`req_${c}`]! += mine[c]! > 0 ? 1 : 0;
      paid.set('-@0', mine.write_premium_paid!);
    }
    // Per handle: its tokens in this request, and the latest version it was used at.
    const perHandle = new Map<string, { version: number; v: Record<string, number> }>();
    // Every handle version it had content of: each of their rows counts it once.
    const including = new Map<string, [string, number]>();
    for (const s of o.segments) {
      if (s.source === 'inline' || noHandle) continue;
      const keys = new Map<string, number>();
      for (const ref of s.path as string[]) {
        const r = refOf(ref);
        // A session's base (on its path under the request's version) is version 1's content.
        const base = r.id.startsWith('ses_') && s.path.length > 1;
        if (!keys.has(r.id)) keys.set(r.id, base ? 1 : r.version);
      }
      keys.set('*', 0);
      for (const [handle, version] of keys) {
        const add = (v: Record<string, number>) => addSegment(v, s, reported);
        add(row(handle, version, day, req.model));
        including.set(`${handle}@${version}`, [handle, version]);
        let h = perHandle.get(handle);
        if (!h) perHandle.set(handle, (h = { version, v: zero() }));
        h.version = Math.max(h.version, version);
        add(h.v);
        paid.set(`${handle}@${version}`, (paid.get(`${handle}@${version}`) ?? 0) + s.cost.write_premium);
      }
    }
    for (const [handle, version] of including.values()) row(handle, version, day, req.model).requests_including! += 1;
    for (const [handle, h] of perHandle) {
      const v = row(handle, h.version, day, req.model);
      v.requests! += 1;
      for (const c of TOKEN_COLUMNS) v[`req_${c}`]! += h.v[c]! > 0 ? 1 : 0;
    }
    // The premium still unread is what the stored parts hold: the rest of what was paid was read.
    const stored = req.writePremium ?? {};
    const parts: Array<{ keys: string[]; premium: number; expires_at?: number }> = stored.v === 2 ? stored.parts : [];
    const left = new Map<string, number>();
    const pending = new Map<string, number>();
    for (const p of parts)
      for (const k of p.keys) {
        left.set(k, (left.get(k) ?? 0) + p.premium);
        if (stored.expires_at > now && (p.expires_at ?? stored.expires_at) > now) pending.set(k, (pending.get(k) ?? 0) + p.premium);
      }
    for (const [key, premium] of paid) {
      const at = key.lastIndexOf('@');
      const v = row(key.slice(0, at), Number(key.slice(at + 1)), day, req.model);
      v.write_premium_read! += premium - (left.get(key) ?? 0);
      v.write_premium_pending! += pending.get(key) ?? 0;
    }
  }
  return [...rows.values()];
}

/** A segment's tokens and money added to a row's values. */
function addSegment(v: Record<string, number>, s: any, reported: boolean): void {
  v.referenced! += s.end - s.start;
  v.opportunity! += s.opportunity;
  if (reported) v.reported_opportunity! += s.opportunity;
  v.predicted! += s.predicted;
  for (const c of TOKEN_COLUMNS.slice(4)) v[c]! += s.classes[c];
  if (reported) {
    v.cost_actual! += s.cost.actual;
    v.cost_no_cache! += s.cost.no_cache;
    v.cost_perfect! += s.cost.perfect;
  } else v.cost_unknown! += s.cost.no_cache;
  v.write_premium_paid! += s.cost.write_premium;
  // Its leaked money (actual − perfect) shared by its missed tokens: every unread one costs the segment's same price.
  const missed = LEAKS.reduce((n, c) => n + s.classes[c], 0);
  if (reported && missed > 0 && s.cost.actual > s.cost.perfect) for (const c of LEAKS) v[`leaked_${c}`]! += ((s.cost.actual - s.cost.perfect) * s.classes[c]) / missed;
}

const round = (x: number) => (Math.sign(x) * Math.floor((Math.round(Math.abs(x) * 1e9) + 500) / 1000)) / 1e6;

function totals(rows: Row[]) {
  const v = zero();
  for (const r of rows) for (const k in v) v[k]! += r.v[k]!;
  return {
    requests: v.requests,
    requests_including: v.requests_including,
    tokens: Object.fromEntries(TOKEN_COLUMNS.map((c) => [c, v[c]])),
    requests_with: Object.fromEntries(TOKEN_COLUMNS.map((c) => [c, v[`req_${c}`]])),
    capture_rate: v.reported_opportunity ? round(v.captured! / v.reported_opportunity) : null,
    money: {
      actual_input_cost: round(v.cost_actual!),
      cost_without_caching: round(v.cost_no_cache!),
      cost_at_perfect_capture: round(v.cost_perfect!),
      realised_savings: round(v.cost_no_cache! - v.cost_actual!),
      leaked_savings: round(v.cost_actual! - v.cost_perfect!),
      write_premiums_paid: round(v.write_premium_paid!),
      write_premiums_unread: Math.max(0, round(v.write_premium_paid! - v.write_premium_read! - v.write_premium_pending!)),
      write_premiums_pending: round(v.write_premium_pending!),
      unknown_capture_input_cost: round(v.cost_unknown!),
    },
    leaked_by_class: Object.fromEntries(LEAKS.map((c) => [c, round(v[`leaked_${c}`]!)])),
  };
}

/** A report's figures against the expected ones: counts exactly, money to the micro-dollar it is rounded to. */
function same(actual: any, expected: ReturnType<typeof totals>, what: string) {
  expect({ requests: actual.requests, tokens: pick(actual.tokens), requests_with: pick(actual.requests_with) }, what).toEqual({ requests: expected.requests, tokens: expected.tokens, requests_with: expected.requests_with });
  // Float sums in another order may round a half the other way: one micro-dollar at most.
  const near = (a: number | null, b: number | null, k: string) => {
    if (a === null || b === null) expect(a, `${what} ${k}`).toBe(b);
    else expect(Math.abs(a - b), `${what} ${k}: ${a} vs ${b}`).toBeLessThanOrEqual(1.0001e-6);
  };
  near(actual.capture_rate, expected.capture_rate, 'capture_rate');
  for (const k of Object.keys(expected.money) as (keyof typeof expected.money)[]) near(actual.money[k], expected.money[k], k);
  // Each class to the micro-dollar (its share of the rounding moved to make them add up: two at most), and together
  // the leaked savings exactly.
  for (const c of LEAKS) expect(Math.abs(actual.money.leaked_by_class[c] - expected.leaked_by_class[c]!), `${what} leaked_by_class.${c}`).toBeLessThanOrEqual(2.0001e-6);
  const micros = LEAKS.reduce((n, c) => n + Math.round(actual.money.leaked_by_class[c] * 1e6), 0);
  expect(micros, `${what}: leaked_by_class adds up`).toBe(Math.round(actual.money.leaked_savings * 1e6));
}
const pick = (o: Record<string, number>) => Object.fromEntries(TOKEN_COLUMNS.map((c) => [c, o[c]]));

// ---------- the provider simulator behind the proxy (one for the file; each run has its own API key, so its own caches) ----------

let simClock: FakeClock = new FakeClock();
let simServer: ServerType;
/** Any free port: a fixed one could be taken on the machine that runs the suite. */
let SIM_URL = '';
let runNo = 0;
beforeAll(async () => {
  const sim = createSimulatorApp({ catalog: new ModelCatalog(loadCatalog()), clock: { now: () => simClock.now() } });
  simServer = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: sim.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  SIM_URL = `http://127.0.0.1:${(simServer.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => {
    simServer.close(() => resolve());
    if (simServer instanceof HttpServer) simServer.closeAllConnections();
  });
});


// ---------- the run ----------

async function run({ models, prefixes: usedPrefixes, ops }: { models: Model[]; prefixes: number[]; ops: Op[] }, file: string) {
  const clock = new FakeClock();
  simClock = clock;
  const apiKey = `sk-run-${++runNo}`;
  const open = () => createTestApp({ databasePath: file, clock, config: { anthropicBaseUrl: SIM_URL, openaiBaseUrl: SIM_URL } });
  let t: TestApp = open();
  const tenant = t.tenant();
  let client: Client = tenant.client;
  const mint = async (path: string, body: object) => {
    const res = await client.post(path, body);
    expect(res.status, res.text).toBe(201);
    return res.json.id as string;
  };
  const sys = await mint('/v1/artifacts', { kind: 'system', content: LONG_SYSTEM });
  const doc = await mint('/v1/artifacts', { kind: 'document', content: 'Returns policy, section 4. Items may be returned within 30 days. '.repeat(60) });
  const bnd = await mint('/v1/bundles', { members: [sys, doc] });
  const ses = await mint('/v1/sessions', { base: bnd, messages: [{ role: 'user', content: 'Where is order 1?' }, { role: 'assistant', content: 'It left the warehouse.' }] });
  // A session no turn is ever appended to: a call naming it referenced a handle that rendered nothing.
  const empty = await mint('/v1/sessions', {});
  const handles = [sys, doc, bnd, ses];
  // A doc after the pinned bundle names the doc at its latest version too (two versions of it, once a new one is made).
  // No handle: the system prompt inline (the calls the tenant report counts apart, as no_handle).
  const prefixes = [[sys], [bnd], [sys, doc], [ses], [bnd, doc], [], [empty]];
  /** The calls that named a handle (all but those of the prefix []). */
  const named = new Set<string>();

  const ids: string[] = [];
  const deferred: Sent[] = [];
  const reported: Sent[] = [];
  let n = 0;

  const expectStatus = (status: number, text: string, allowed: number[]) => expect(allowed, text).toContain(status);

  async function send(records: Sent[], mode: 'single' | 'batch' | 'parallel') {
    if (records.length === 0) return;
    if (mode === 'batch') {
      const res = await client.post('/v1/usage/batch', { records: records.map((r) => r.record) });
      expect(res.status, res.text).toBe(200);
      res.json.results.forEach((r: { status: number }, i: number) => {
        expectStatus(r.status, JSON.stringify(r), [200, 201, 409]);
        if (r.status === 201) reported.push(records[i]!);
      });
    } else {
      const post = async (r: Sent) => {
        const res = await client.post('/v1/usage', r.record);
        expectStatus(res.status, res.text, [200, 201, 409]);
        if (res.status === 201) reported.push(r);
      };
      if (mode === 'single') for (const r of records) await post(r);
      else {
        // Reports arriving together, before their group commit lands, with reports read in between (the dashboard).
        const waits = records.map((r) => {
          try {
            const done = t.services.reconciler.ingest(tenant.id, r.record as unknown as UsageReport).then(
              (res) => void (res.duplicate || reported.push(r)),
              (e: { code?: string }) => expect(e.code).toBe('conflict'),
            );
            t.services.reports.tenant(tenant.id, {}, clock.now());
            return done;
          } catch (e) {
            expect((e as { code?: string }).code).toBe('conflict');
            return Promise.resolve();
          }
        });
        await Promise.all(waits);
      }
    }
  }

  async function call(op: Call & { name: Model }, prefix: string[]) {
    const m = MODELS[op.name];
    const question = { role: 'user', content: `Question ${n++}` };
    // A timestamp before the system prompt (Anthropic, OpenAI chat): what follows it drifts; elsewhere it follows the prefix.
    const before = op.stamped && prefix[0] === sys && (m.format === 'anthropic' || m.format === 'openai-chat');
    const rest = before ? prefix.slice(1) : prefix;
    const stampedSystem = [{ type: 'text', text: `now ${n}` }, { type: 'handle', ref: sys }];
    // Without a handle, the system prompt is sent inline: the same bytes call after call, a prefix the provider can cache.
    const inline = prefix.length === 0 ? LONG_SYSTEM : null;
    const request: Record<string, unknown> =
      m.format === 'gemini'
        ? { prefix, contents: [{ role: 'user', parts: [...(inline ? [{ text: inline }] : []), ...(op.stamped ? [{ text: `at ${n}` }] : []), { text: question.content }] }] }
        : m.format === 'openai-responses'
          ? { model: m.model, prefix, input: [...(inline ? [{ role: 'system', content: inline }] : []), ...(op.stamped ? [{ role: 'user', content: `at ${n}` }] : []), question] }
          : m.format === 'anthropic'
            ? { model: m.model, ...m.extra, ...(before ? { system: stampedSystem } : inline ? { system: inline } : {}), prefix: rest, messages: [question] }
            : { model: m.model, prefix: rest, messages: [...(inline ? [{ role: 'system', content: inline }] : []), ...(before ? [{ role: 'system', content: stampedSystem }] : op.stamped ? [{ role: 'user', content: `at ${n}` }] : []), question] };
    const res = await client.post('/v1/render', { format: m.format, ...(m.format === 'gemini' ? { model: m.model } : {}), request });
    expect(res.status, res.text).toBe(200);
    const r = res.json;
    ids.push(r.request_id);
    if (prefix.length) named.add(r.request_id);
    const started = clock.now();
    if (op.delivery === 'fail') {
      await t.services.requests.markFailed(r.request_id, { startedAt: started, finishedAt: started + 500, usageRaw: { status: 529, error: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } } });
      const late = await client.post('/v1/usage', { request_id: r.request_id, usage: usageFor(op, r), started_at: started });
      expect(late.status, late.text).toBe(409);
      return;
    }
    const times = op.times === 'none' ? {} : op.times === 'nofirstbyte' ? { started_at: started, finished_at: started + op.firstByteMs + 300 } : { started_at: started, first_byte_at: started + op.firstByteMs, finished_at: started + op.firstByteMs + 300 };
    const sent = { id: r.request_id, record: { request_id: r.request_id, usage: usageFor(op, r), ...times } };
    // A report without times is started at the render and finished at its receipt: held back, it would finish
    // after later calls started (still answering for them), as a queue worker's report does.
    if (op.delivery === 'defer') deferred.push(sent);
    else await send([sent], 'single');
  }

  for (const op of ops) {
    switch (op.k) {
      case 'call':
        for (let i = 0; i < op.repeat; i++) {
          if (i > 0) clock.advance(op.every);
          await call({ ...op, name: models[op.model % models.length]! }, prefixes[usedPrefixes[op.prefix % usedPrefixes.length]!]!);
        }
        break;
      case 'lateReader': {
        const name = models[op.model % models.length]!;
        const prefix = prefixes[usedPrefixes[op.prefix % usedPrefixes.length]!]!;
        const base = { k: 'call' as const, model: 0, prefix: 0, repeat: 1 as const, every: 3_000 as const, stamped: false, times: op.times, firstByteMs: 200 as const, name };
        await call({ ...base, usage: { reported: true, read: 1, write: 1, skew: 1, split: 'asked' }, delivery: 'now' }, prefix);
        clock.advance(30_000);
        // Every prefix but the session's starts with the system prompt (a bundle's first member is it).
        const readers = op.shorter && prefix[0] !== ses && prefix.length + (prefix[0] === sys ? 0 : 1) > 1 ? [[sys], prefix] : [prefix];
        for (const p of readers) {
          await call({ ...base, usage: { reported: true, read: 1, write: 0, skew: 1, split: 'asked' }, delivery: 'defer' }, p);
          clock.advance(10_000);
        }
        clock.advance(op.wait);
        await check();
        await send(deferred.splice(-readers.length), op.mode);
        break;
      }
      case 'proxy': {
        const name = models[op.model % models.length]!;
        const format = MODELS[name].format === 'gemini' ? 'anthropic' : MODELS[name].format;
        const model = MODELS[name].format === 'gemini' ? 'claude-sonnet-4-5' : MODELS[name].model;
        const prefix = prefixes[usedPrefixes[op.prefix % usedPrefixes.length]!]!;
        for (let i = 0; i < op.repeat; i++) {
          if (i > 0) clock.advance(20_000);
          const question = { role: 'user', content: `Proxied question ${n++}` };
          const stream = op.stream || op.fault === 'cut';
          const inline = prefix.length === 0 ? [{ role: 'system', content: LONG_SYSTEM }] : [];
          const [path, body, auth]: [string, object, Record<string, string>] =
            format === 'anthropic'
              ? ['/proxy/anthropic/v1/messages', { model, max_tokens: 32, ...(inline.length ? { system: LONG_SYSTEM } : {}), prefix, messages: [question], ...(stream ? { stream: true } : {}) }, { 'x-api-key': apiKey, 'anthropic-version': '2023-06-01' }]
              : format === 'openai-chat'
                ? ['/proxy/openai/v1/chat/completions', { model, prefix, messages: [...inline, question], ...(stream ? { stream: true } : {}) }, { authorization: `Bearer ${apiKey}` }]
                : ['/proxy/openai/v1/responses', { model, prefix, input: [...inline, question], ...(stream ? { stream: true } : {}) }, { authorization: `Bearer ${apiKey}` }];
          const fault: Record<string, string> = op.fault === 'refused' ? { 'x-simulator-status': '529' } : op.fault === 'cut' ? { 'x-simulator-abort-after': '1' } : {};
          const res = await t.app.request(path, { method: 'POST', headers: { 'content-type': 'application/json', 'x-ph-key': tenant.key, ...auth, ...fault }, body: JSON.stringify(body) });
          await res.text().catch(() => undefined);
          const id = res.headers.get('x-ph-request-id');
          expect(id, `${res.status} from the proxy`).toBeTruthy();
          ids.push(id!);
          if (prefix.length) named.add(id!);
          // The proxy reconciles after the answer has gone out.
          for (let turn = 0; turn < 1000 && (t.services.requests.get(tenant.id, id!) as StoredRequest).status === 'rendered'; turn++) await new Promise((r) => setTimeout(r, 1));
          await t.services.writes.idle();
          expect((t.services.requests.get(tenant.id, id!) as StoredRequest).status).toBe(op.fault === 'refused' ? 'failed' : 'reconciled');
        }
        break;
      }
      case 'advance':
        clock.advance(op.ms);
        break;
      case 'flush': {
        const batch = op.order === 'fifo' ? [...deferred] : op.order === 'lifo' ? [...deferred].reverse() : deferred.filter((_, i) => i % 2 === 1).concat(deferred.filter((_, i) => i % 2 === 0));
        deferred.length = 0;
        // The same report twice in one go: once.
        if (op.dupe && batch.length) batch.push(batch[0]!);
        await send(batch, op.mode);
        break;
      }
      case 'again': {
        if (reported.length === 0) break;
        const r = reported[op.pick % reported.length]!;
        const record = op.same ? r.record : { ...r.record, usage: { ...(r.record.usage as object), output_tokens: 999 } };
        const res = op.batch ? await client.post('/v1/usage/batch', { records: [record] }) : await client.post('/v1/usage', record);
        const status = op.batch ? res.json.results[0].status : res.status;
        expect(status, res.text).toBe(op.same ? 200 : 409);
        break;
      }
      case 'version':
        expect((await client.post(`/v1/artifacts/${doc}/versions`, { content: `Returns policy, revision ${n++}. Items may be returned within 30 days. `.repeat(60) })).status).toBe(201);
        break;
      case 'append': {
        const res = await client.post(`/v1/sessions/${ses}/messages`, { messages: [{ role: 'user', content: `Where is order ${n}?` }, { role: 'assistant', content: `Order ${n++} ships today.` }] });
        expect(res.status, res.text).toBe(201);
        break;
      }
      case 'restart':
        await t.services.writes.idle();
        t.close();
        t = open();
        client = clientFor(t.app, tenant.key);
        break;
      case 'check':
        await check();
        break;
    }
  }
  // What is still held back arrives at last, in a batch, after a while.
  await check();
  clock.advance(3 * MIN);
  await send(deferred.splice(0), 'batch');
  await check();
  clock.advance(2 * HOUR);
  await check();
  t.close();

  async function check() {
    await t.services.writes.idle();
    const now = clock.now();
    const requests = ids.map((id) => t.services.requests.get(tenant.id, id) as StoredRequest);
    const rows = expectedRows(requests, now, named);
    if (process.env.ROLLUP_STATS) {
      const inc = (k: string, by = 1) => (coverage[k] = (coverage[k] ?? 0) + by);
      inc('checks');
      const none = rows.filter((r) => r.handle === '-');
      if (none.length) inc('no-handle rows', none.length);
      if (none.some((r) => r.v.captured! > 0)) inc('no-handle captured');
      if (none.some((r) => r.v.opportunity! > 0)) inc('no-handle repeated');
      if (requests.some((q) => q.status === 'reconciled' && named.has(q.id) && q.outcome.segments.every((x: { source: string }) => x.source === 'inline'))) inc('named, rendered nothing');
      for (const q of requests) {
        inc(`status:${q.status}`);
        if (q.status !== 'reconciled') continue;
        if (q.outcome.applied_late) inc('applied_late');
        if (q.outcome.sim?.history) inc('history');
        if (q.outcome.capture === 'unknown') inc('unknown');
        if (q.outcome.tool_use_prompt) inc('tool_use_prompt');
        for (const s of q.outcome.segments) for (const [c, x] of Object.entries(s.classes as Record<string, number>)) if (x > 0) inc(`class:${c}`);
      }
      const tot = totals(rows.filter((r) => r.handle === '*'));
      if (tot.money.write_premiums_pending > 0) inc('pending>0');
      if (tot.money.write_premiums_unread > 0) inc('unread>0');
      const rd = rows.filter((r) => r.handle === '*').reduce((a, r) => a + r.v.write_premium_read!, 0);
      if (rd > 1e-12) inc('read>0');
      if (rows.filter((r) => r.handle === '*').some((r) => r.v.write_premium_read! > 1e-12 && r.v.write_premium_read! < r.v.write_premium_paid! - 1e-12)) inc('partlyread');
      if (new Set(rows.map((r) => r.day)).size > 1) inc('multiday');
      if (new Set(rows.map((r) => new Date(r.day * DAY).getUTCMonth())).size > 1) inc('multimonth');
      // Spans made by the reports of earlier checks (and still held).
      inc('spans held', t.sqlite.prepare('select count(*) from rollups_span_through').pluck().get() as number);
      if (rows.some((r) => r.handle === doc && r.version > 1)) inc('docv2');
      for (const q of requests) {
        const wp = q.writePremium;
        if (!wp || wp.v !== 2) continue;
        const left = (wp.parts as Array<{ premium: number }>).reduce((a, p) => a + p.premium, 0);
        const was = premiumLeft.get(q.id);
        if (was !== undefined && left < was - 1e-12) inc(wp.expires_at <= now ? 'read-after-expiry(late reader)' : 'read-later');
        premiumLeft.set(q.id, left);
      }
    }

    // The rollup table itself, row by row (pending premiums are not in it: they are kept in memory).
    const stored = t.sqlite.prepare('select * from rollups where tenant_id = ?').all(tenant.id) as Array<Record<string, number | string>>;
    const expectedStored = rows.map((r) => ({ ...r, v: { ...r.v, write_premium_pending: 0 } })).filter((r) => Object.values(r.v).some((x) => Math.abs(x) > 1e-15));
    const keyOf = (h: string, v: number, d: number, m: string) => `${h} ${v} ${d} ${m}`;
    const storedBy = new Map(stored.map((s) => [keyOf(s.handle_id as string, s.version as number, s.day as number, s.model as string), s]));
    for (const r of expectedStored) {
      const s = storedBy.get(keyOf(r.handle, r.version, r.day, r.model));
      expect(s, `rollup row ${keyOf(r.handle, r.version, r.day, r.model)}`).toBeDefined();
      for (const [k, x] of Object.entries(r.v)) {
        if (k === 'write_premium_pending') continue;
        if ((MONEY_COLUMNS as readonly string[]).includes(k)) expect(Math.abs((s![k] as number) - x), `${k} of ${keyOf(r.handle, r.version, r.day, r.model)}: ${s![k]} vs ${x}`).toBeLessThan(1e-12);
        else expect(s![k], `${k} of ${keyOf(r.handle, r.version, r.day, r.model)}`).toBe(x);
      }
    }
    for (const s of stored) {
      const nonzero = Object.entries(s).some(([k, x]) => typeof x === 'number' && !['version', 'day'].includes(k) && Math.abs(x) > 1e-15);
      if (nonzero) expect(expectedStored.some((r) => keyOf(r.handle, r.version, r.day, r.model) === keyOf(s.handle_id as string, s.version as number, s.day as number, s.model as string)), `unexpected rollup row ${JSON.stringify(s)}`).toBe(true);
    }

    // The reports, with and without filters.
    const today = Math.floor(now / DAY);
    const days = [...new Set(rows.map((r) => r.day))];
    const ranges: Array<{ q: string; fromDay: number; toDay: number; model?: string }> = [{ q: '', fromDay: -Infinity, toDay: today }];
    for (const model of new Set(rows.map((r) => r.model))) ranges.push({ q: `model=${encodeURIComponent(model)}`, fromDay: -Infinity, toDay: today, model });
    for (const d of days) {
      const iso = new Date(d * DAY).toISOString().slice(0, 10);
      ranges.push({ q: `from=${iso}&to=${iso}`, fromDay: d, toDay: d });
      if (d <= today) ranges.push({ q: `from=${d * DAY + 1234}`, fromDay: d, toDay: today });
      ranges.push({ q: `to=${new Date(d * DAY + DAY - 1).toISOString()}&model=claude-sonnet-4-5`, fromDay: -Infinity, toDay: d, model: 'claude-sonnet-4-5' });
    }
    // From each month's first day: that month's span (and the later months') where it is over two days old.
    for (const month of new Set(days.map((d) => new Date(d * DAY).toISOString().slice(0, 7)))) {
      const first = Date.parse(`${month}-01T00:00:00Z`) / DAY;
      if (first <= today) ranges.push({ q: `from=${month}-01`, fromDay: first, toDay: today });
    }
    const latestOf = new Map<string, number>();
    for (const handle of handles) latestOf.set(handle, (await client.get(`/v1/handles/${handle}?versions=1`)).json.latest_version as number);
    for (const range of ranges) {
      const within = rows.filter((r) => r.day >= range.fromDay && r.day <= range.toDay && (range.model === undefined || r.model === range.model));
      const tenantReport = await client.get(`/v1/reports?${range.q}`);
      expect(tenantReport.status, tenantReport.text).toBe(200);
      same(tenantReport.json, totals(within.filter((r) => r.handle === '*')), `tenant totals ?${range.q}`);
      const none = totals(within.filter((r) => r.handle === '-'));
      expect(tenantReport.json.no_handle, `no_handle ?${range.q}`).toEqual({
        requests: none.requests,
        tokens: { prompt: none.tokens.referenced, repeated: none.tokens.opportunity, cache_read: none.tokens.captured! + none.tokens.bonus! },
        money: {
          currency: 'USD',
          actual_input_cost: expect.closeTo(none.money.actual_input_cost, 5),
          cost_without_caching: expect.closeTo(none.money.cost_without_caching, 5),
          unknown_capture_input_cost: expect.closeTo(none.money.unknown_capture_input_cost, 5),
          write_premiums_paid: expect.closeTo(none.money.write_premiums_paid, 5),
          write_premiums_unread: expect.closeTo(none.money.write_premiums_unread, 5),
          write_premiums_pending: expect.closeTo(none.money.write_premiums_pending, 5),
        },
      });
      const perHandle = new Map<string, Row[]>();
      for (const r of within) if (r.handle !== '*' && r.handle !== '-') perHandle.set(r.handle, [...(perHandle.get(r.handle) ?? []), r]);
      expect(new Set(tenantReport.json.handles.map((h: { id: string }) => h.id)), `handles ?${range.q}`).toEqual(new Set(perHandle.keys()));
      for (const h of tenantReport.json.handles) same(h, totals(perHandle.get(h.id)!), `tenant report's ${h.id} ?${range.q}`);
      for (const handle of handles) {
        const latest = latestOf.get(handle)!;
        const mine = within.filter((r) => r.handle === handle);
        // Every version; over all time and the last range, also a window of two through one of them: the totals and
        // models are over all versions either way.
        const through = 1 + ((latest * 7919 + range.q.length) % latest);
        const pages: Array<[string, [number, number]]> = [[`versions=1000`, [1, latest]]];
        if (range === ranges[0] || range === ranges.at(-1)) pages.push([`versions=2&versions_through=${through}`, [Math.max(1, through - 1), through]]);
        for (const [page, window] of pages) {
          const res = await client.get(`/v1/reports/handles/${handle}?${range.q}&${page}`);
          expect(res.status, res.text).toBe(200);
          const what = `${handle} ?${range.q}&${page}`;
          same(res.json, totals(mine), what);
          expect(res.json.requests_including, what).toBeUndefined();
          expect({ total: res.json.versions_total, listed: res.json.versions_listed }, what).toEqual({ total: latest, listed: { from: window[0], to: window[1] } });
          const listed = mine.filter((r) => r.version >= window[0] && r.version <= window[1]);
          const versions = [...new Set(listed.map((r) => r.version))].sort((a, b) => a - b);
          expect(res.json.versions.map((v: { version: number }) => v.version), `${what} versions`).toEqual(versions);
          for (const v of res.json.versions) {
            const expected = totals(listed.filter((r) => r.version === v.version));
            same(v, expected, `${handle}@${v.version} ?${range.q}`);
            expect(v.requests_including, `${handle}@${v.version} requests_including ?${range.q}`).toBe(expected.requests_including);
          }
          expect(new Set(res.json.models.map((m: { model: string }) => m.model)), `${handle} models ?${range.q}`).toEqual(new Set(mine.map((r) => r.model)));
          for (const m of res.json.models) same(m, totals(mine.filter((r) => r.model === m.model)), `${handle} on ${m.model} ?${range.q}`);
        }
      }
    }
  }
}

// ROLLUP_RUNS=500 for a longer hunt.
const RUNS = Number(process.env.ROLLUP_RUNS ?? 30);

describe('rollup-based reports agree with a recomputation from the stored outcomes', () => {
  it('over random histories: models and TTLs, batches, late and out-of-order reports, failures, repeats, versions, premiums read later, filters, restarts', async () => {
    await fc.assert(
      fc.asyncProperty(runArb, async (history) => {
        const dir = mkdtempSync(join(tmpdir(), 'ph-rollups-'));
        try {
          await run(history, join(dir, 'db.sqlite'));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: RUNS },
    );
    if (process.env.ROLLUP_STATS) console.log(JSON.stringify(coverage, null, 1));
  }, 6_000 * RUNS);
});
