// Edges of the waterfall where DESIGN.md gives an exact figure: a TTL's last millisecond, calls that started at the
// same instant, and an Anthropic usage that reports one cache field of two. Real SQLite file, fake clock.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestApp, type Client, type TestApp } from '../helpers/app';
import { mintBundle, mintSystem, mintTools } from '../helpers/factories';
import { anthropicUsage, classesOf, LONG_SYSTEM, promptTokens, renderAnthropic, type Rendered } from '../helpers/scenario';

let t: TestApp;
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ph-spec-edges-'));
  t = createTestApp({ databasePath: join(dir, 'db.sqlite') });
});
afterEach(() => {
  t.close();
  rmSync(dir, { recursive: true, force: true });
});

const MIN = 60_000;
const HOUR = 60 * MIN;

async function setup() {
  const { client } = t.tenant();
  const sys = await mintSystem(client, LONG_SYSTEM);
  const bundle = await mintBundle(client, [(await mintTools(client)).id, sys.id]);
  const turn = (extra: object = {}) => renderAnthropic(client, { prefix: [bundle.id], messages: [{ role: 'user', content: 'q' }], ...extra });
  return { client, sys: `${sys.id}@1`, turn };
}

/** A report with the call's times (first byte 100 ms, end 200 ms after its start). */
async function post(client: Client, r: Rendered, at: number, usage: object) {
  const res = await client.post('/v1/usage', { request_id: r.request_id, usage, started_at: at, first_byte_at: at + 100, finished_at: at + 200 });
  expect(res.status, res.text).toBe(201);
  return res.json.outcome;
}

const sysTokens = (o: { segments: Array<{ source: string; start: number; end: number }> }, sys: string) => {
  const s = o.segments.find((x) => x.source === sys)!;
  return s.end - s.start;
};

it.each([
  ['5m', {}, 5 * MIN],
  ['1h', { cache_control: { type: 'ephemeral', ttl: '1h' } }, HOUR],
] as const)('the %s TTL runs from the last use’s start: its last millisecond is captured, its end expired', async (ttl, extra, life) => {
  const { client, sys, turn } = await setup();
  const t0 = t.clock.now();
  t.clock.advance(3 * HOUR);
  const r1 = await turn(extra);
  const cached = r1.breakpoints[0]!.token_end;
  const split = (n: number) => ({ ...anthropicUsage(promptTokens(r1), 0, n), cache_creation: { ephemeral_5m_input_tokens: ttl === '5m' ? n : 0, ephemeral_1h_input_tokens: ttl === '1h' ? n : 0 } });
  await post(client, r1, t0, split(cached));
  // One millisecond before the lifetime ends: read, and the hit renews the entry from this call's start.
  const r2 = await turn(extra);
  const o2 = await post(client, r2, t0 + life - 1, anthropicUsage(promptTokens(r2), cached, 0));
  expect(classesOf(o2, sys)).toEqual({ captured: sysTokens(o2, sys) });
  // Exactly one lifetime after that hit (not after the write): expired, and the gap is the lifetime.
  const r3 = await turn(extra);
  const o3 = await post(client, r3, t0 + 2 * life - 1, split(cached));
  expect(classesOf(o3, sys)).toEqual({ expired: sysTokens(o3, sys) });
  expect(o3.expired).toEqual({ last_used_at: t0 + life - 1, gap_ms: life, ttl });
});

it.each([
  ['only starts (first byte and end default to the start)', {}],
  ['a first byte logged equal to the start', { first_byte: 0 }],
] as const)('calls that started at the same instant, logged with %s: the second paid the write again (concurrent), or read it where its provider says so', async (_, times) => {
  const { client, sys, turn } = await setup();
  const t0 = t.clock.now() - 10 * MIN;
  const [r1, r2, r3] = [await turn(), await turn(), await turn()];
  const cached = r1.breakpoints[0]!.token_end;
  const at = (extra: object) => ('first_byte' in times ? { started_at: t0, first_byte_at: t0 + times.first_byte, ...extra } : { started_at: t0, ...extra });
  const res = await client.post('/v1/usage/batch', {
    records: [
      { request_id: r1.request_id, usage: anthropicUsage(promptTokens(r1), 0, cached), ...at({}) },
      // The provider wrote it again: the first call had not started answering when this one started.
      { request_id: r2.request_id, usage: anthropicUsage(promptTokens(r2), 0, cached), ...at({}) },
      // This provider read it: its receipt shows the write was readable.
      { request_id: r3.request_id, usage: anthropicUsage(promptTokens(r3), cached, 0), ...at({}) },
    ],
  });
  expect(res.json.results.map((x: { status: number }) => x.status)).toEqual([201, 201, 201]);
  const outcome = async (r: Rendered) => (await client.get(`/v1/requests/${r.request_id}`)).json.outcome;
  const o2 = await outcome(r2);
  expect(classesOf(o2, sys)).toEqual({ concurrent: sysTokens(o2, sys) });
  // Readable no sooner than a millisecond after its start (a provider answers after a call starts).
  expect(o2.concurrent).toEqual({ writer: r1.request_id, writer_started_at: t0, readable_at: t0 + 1 });
  const o3 = await outcome(r3);
  expect(classesOf(o3, sys)).toEqual({ captured: sysTokens(o3, sys) });
  // A call a millisecond later reads it, as before.
  const r4 = await turn();
  const o4 = await post(client, r4, t0 + 1, anthropicUsage(promptTokens(r4), cached, 0));
  expect(classesOf(o4, sys)).toEqual({ captured: sysTokens(o4, sys) });
});

it('an Anthropic usage with one cache field of two: the read alone is a reported capture, the write alone leaves it unknown', async () => {
  const { client, sys, turn } = await setup();
  const r1 = await turn();
  const cached = r1.breakpoints[0]!.token_end;
  const total = promptTokens(r1);
  // cache_read_input_tokens without cache_creation_input_tokens: the read is known (0), the write and total are not.
  const o1 = await post(client, r1, t.clock.now(), { input_tokens: total - cached, cache_read_input_tokens: 0, output_tokens: 3 });
  expect(o1.capture).toBe('reported');
  expect(o1.provider).toEqual({ read: 0, write: null });
  expect(o1.total_prompt_tokens).toBeNull();
  expect(classesOf(o1, sys)).toEqual({ cold: sysTokens(o1, sys) });
  // Its unreported write is priced as plain input (no premium guessed): cost as without caching.
  const seg1 = o1.segments.find((s: { source: string }) => s.source === sys);
  expect(seg1.cost.actual).toBeCloseTo(seg1.cost.no_cache, 12);
  expect(seg1.cost.write_premium).toBe(0);

  t.clock.advance(MIN);
  const r2 = await turn();
  // cache_creation_input_tokens without cache_read_input_tokens: capture unknown, never a 0% hit.
  const o2 = await post(client, r2, t.clock.now(), { input_tokens: total - cached, cache_creation_input_tokens: 0, output_tokens: 3 });
  expect(o2.capture).toBe('unknown');
  expect(o2.provider).toEqual({ read: null, write: 0 });
  expect(classesOf(o2, sys)).toEqual({ unknown: sysTokens(o2, sys) });
  const rep = (await client.get(`/v1/reports/handles/${sys.split('@')[0]}`)).json;
  expect(rep.tokens.reported_opportunity).toBe(0);
  expect(rep.capture_rate).toBeNull();
  expect(rep.money.unknown_capture_input_cost).toBeGreaterThan(0);
});

it('a batch listed newest first is applied by request times: the TTL gate measures call starts, never the import time; sent again it is 200, changed 409', async () => {
  const { client, sys, turn } = await setup();
  const t0 = t.clock.now();
  t.clock.advance(HOUR);
  const [r1, r2, r3] = [await turn(), await turn(), await turn()];
  const cached = r1.breakpoints[0]!.token_end;
  const record = (r: Rendered, at: number, read: number, write: number) => ({ request_id: r.request_id, usage: anthropicUsage(promptTokens(r), read, write), started_at: at, first_byte_at: at + 100, finished_at: at + 200 });
  const records = [record(r3, t0 + 10 * MIN, 0, cached), record(r2, t0 + 4 * MIN, cached, 0), record(r1, t0, 0, cached)];
  const res = await client.post('/v1/usage/batch', { records });
  expect(res.json.results.map((x: { status: number }) => x.status)).toEqual([201, 201, 201]);
  const outcome = async (r: Rendered) => (await client.get(`/v1/requests/${r.request_id}`)).json.outcome;
  const [o1, o2, o3] = [await outcome(r1), await outcome(r2), await outcome(r3)];
  expect(classesOf(o1, sys)).toEqual({ cold: sysTokens(o1, sys) });
  expect(classesOf(o2, sys)).toEqual({ captured: sysTokens(o2, sys) });
  // Six minutes after the hit that renewed it (not an hour after, when the batch came): expired.
  expect(classesOf(o3, sys)).toEqual({ expired: sysTokens(o3, sys) });
  expect(o3.expired).toEqual({ last_used_at: t0 + 4 * MIN, gap_ms: 6 * MIN, ttl: '5m' });
  for (const o of [o1, o2, o3]) expect(o.applied_late).toBeUndefined();
  // The same batch again: each record its stored result; one record changed: that one alone is a conflict.
  const again = await client.post('/v1/usage/batch', { records: [records[0], { ...records[1]!, usage: anthropicUsage(promptTokens(r2), 0, cached) }, records[2]] });
  expect(again.json.results.map((x: { status: number }) => x.status)).toEqual([200, 409, 200]);
  expect(await outcome(r2)).toEqual(o2);
});

it('1h and 5m marks in one request (1h first, as Anthropic requires): each part priced and kept by its own TTL', async () => {
  const { client } = t.tenant();
  const call = () =>
    renderAnthropic(client, {
      system: [{ type: 'text', text: LONG_SYSTEM, cache_control: { type: 'ephemeral', ttl: '1h' } }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Document B. '.repeat(600), cache_control: { type: 'ephemeral' } }] }, { role: 'assistant', content: 'ok' }, { role: 'user', content: 'q' }],
    });
  const r1 = await call();
  expect(r1.breakpoints.map((b) => [b.token_end, (b as unknown as { ttl: string }).ttl])).toEqual([[r1.segments[0]!.token_end, '1h'], [r1.segments[1]!.token_end, '5m']]);
  const [hour, five] = [r1.breakpoints[0]!.token_end, r1.breakpoints[1]!.token_end];
  const total = promptTokens(r1);
  const t0 = t.clock.now();
  const o1 = await post(client, r1, t0, { input_tokens: total - five, cache_read_input_tokens: 0, cache_creation_input_tokens: five, cache_creation: { ephemeral_1h_input_tokens: hour, ephemeral_5m_input_tokens: five - hour }, output_tokens: 1 });
  // Sonnet 4.5 at $3/M: the 1h part at 2×, the 5m part at 1.25×.
  expect(o1.segments[0].cost.actual).toBeCloseTo((hour * 2 * 3) / 1e6, 12);
  expect(o1.segments[1].cost.actual).toBeCloseTo(((five - hour) * 1.25 * 3) / 1e6, 12);
  // Ten minutes on: the 1h prefix is read, the 5m one past it expired (its gap measured from the write's start).
  t.clock.advance(10 * MIN);
  const r2 = await call();
  expect(r2.prediction).toEqual({ read_tokens: hour, write_tokens: five - hour });
  const o2 = await post(client, r2, t0 + 10 * MIN, { input_tokens: total - five, cache_read_input_tokens: hour, cache_creation_input_tokens: five - hour, cache_creation: { ephemeral_1h_input_tokens: 0, ephemeral_5m_input_tokens: five - hour }, output_tokens: 1 });
  expect(o2.segments[0].classes.captured).toBe(hour);
  expect(o2.segments[1].classes.expired).toBe(five - hour);
  expect(o2.expired).toEqual({ last_used_at: t0, gap_ms: 10 * MIN, ttl: '5m' });
});

it('a batch record without started_at is placed by its render time (its start), not before every timed record', async () => {
  const { client, sys, turn } = await setup();
  const t0 = t.clock.now();
  const r1 = await turn();
  t.clock.advance(4 * MIN);
  const r2 = await turn();
  const cached = r1.breakpoints[0]!.token_end;
  // Listed first and sent without times: it started when it was rendered, four minutes after r1.
  const res = await client.post('/v1/usage/batch', {
    records: [
      { request_id: r2.request_id, usage: anthropicUsage(promptTokens(r2), cached, 0) },
      { request_id: r1.request_id, usage: anthropicUsage(promptTokens(r1), 0, cached), started_at: t0, first_byte_at: t0 + 100, finished_at: t0 + 200 },
    ],
  });
  expect(res.json.results.map((x: { status: number }) => x.status)).toEqual([201, 201]);
  const outcome = async (r: Rendered) => (await client.get(`/v1/requests/${r.request_id}`)).json.outcome;
  const [o1, o2] = [await outcome(r1), await outcome(r2)];
  expect(classesOf(o1, sys)).toEqual({ cold: sysTokens(o1, sys) });
  expect(o1.applied_late).toBeUndefined();
  // It read r1's write: captured, not bonus.
  expect(classesOf(o2, sys)).toEqual({ captured: sysTokens(o2, sys) });
});
