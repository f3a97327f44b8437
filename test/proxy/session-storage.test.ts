// What a long session's calls store (src/store/compact.ts): a call's stored JSON grows with what is new in it, not
// with the session's length; a database written before migration 0020 (every batch a segment of every request, every
// segment an outcome) reads the same answers once migrated, and a scope replayed after a restart from either shape
// gives the next call the same outcome. With the Anthropic SDK through the proxy and the simulator.

import type Anthropic from '@anthropic-ai/sdk';
import Database from 'better-sqlite3';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { mintBundle, mintSystem, mintTools, startSession } from '../helpers/factories';
import { ADMIN_KEY, clientFor } from '../helpers/app';
import { asBefore0020 } from '../helpers/migrations';
import { LONG_SYSTEM } from '../helpers/scenario';
import { committed, startHarness, type Harness } from './harness';

const MODEL = 'claude-sonnet-4-6';
const THINKING = { type: 'enabled' as const, budget_tokens: 1024 };
type Block = Anthropic.ContentBlockParam;
const marked = (blocks: Block[]): Block[] => [...blocks.slice(0, -1), { ...blocks[blocks.length - 1]!, cache_control: { type: 'ephemeral', ttl: '1h' } } as Block];
const file = (i: number) => Array.from({ length: 40 }, (_, k) => `export const line${k} = ${i * 100 + k};`).join('\n');

const open: Harness[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const h of open.splice(0)) await h.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function harness(opts: Parameters<typeof startHarness>[0] = {}): Promise<Harness> {
  const h = await startHarness(opts);
  open.push(h);
  return h;
}

/** A tool round on the session (a question answered with a tool call, then its result): the two request ids. */
async function round(h: Harness, session: string, i: number, model = MODEL): Promise<[string, string]> {
  const sdk = h.anthropic({ headers: { 'x-ph-session': session } });
  const ask = await sdk.messages.create({ model, max_tokens: 4096, thinking: THINKING, messages: [{ role: 'user', content: marked([{ type: 'text', text: `Step ${i}: use read_file on src/f${i}.ts` }]) }] }).withResponse();
  const call = ask.data.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')!;
  h.clock.advance(10_000);
  const answer = await sdk.messages.create({ model, max_tokens: 4096, thinking: THINKING, messages: [{ role: 'user', content: marked([{ type: 'tool_result', tool_use_id: call.id, content: file(i) }]) }] }).withResponse();
  h.clock.advance(10_000);
  await committed(h);
  return [ask.response.headers.get('x-ph-request-id')!, answer.response.headers.get('x-ph-request-id')!];
}

async function start(h: Harness) {
  const client = h.tenant.client;
  const bundle = await mintBundle(client, [(await mintTools(client, 'read_file')).id, (await mintSystem(client, LONG_SYSTEM)).id]);
  return startSession(client, { base: bundle.id });
}

/** Bytes of JSON a request's call stored: its segments, its outcome, and the session batches first stored with it. */
function storedBytes(db: Database.Database, id: string, batchesBefore: number): number {
  const own = db.prepare('select length(r.segments) + length(c.outcome) from requests r join reconciliations c on c.seq = r.reconciled_seq where r.id = ?').pluck().get(id) as number;
  return own + (db.prepare('select coalesce(sum(length(entry)), 0) from session_batches').pluck().get() as number) - batchesBefore;
}

it("a call's stored JSON grows with what is new in it: each batch stored once, a few bytes a round on top (was about 1,100 a batch)", async () => {
  const h = await harness();
  const db = h.t.sqlite;
  const session = await start(h);
  const batchBytes = () => db.prepare('select coalesce(sum(length(entry)), 0) from session_batches').pluck().get() as number;
  const perCall: number[] = [];
  let last = '';
  for (let i = 1; i <= 30; i++) {
    const before = batchBytes();
    // Each round's two calls, both measured: the answer's holds the ask's batch and its own.
    const [ask, answer] = await round(h, session.id, i);
    perCall.push(storedBytes(db, ask, before) + storedBytes(db, answer, before) - (batchBytes() - before));
    last = answer;
  }
  // Round 30's calls refer to 59 batches, round 5's to 9: 50 batches more, a few bytes each (the outcome's lengths of
  // each segment and unit, kept as they were), where a batch whole in each request and its outcome took 1,100.
  const growth = perCall[29]! - perCall[4]!;
  expect(growth).toBeGreaterThan(0);
  expect(growth).toBeLessThan(50 * 40);
  // Every batch stored once (under the one variant the calls rendered it in).
  const versions = (await h.tenant.client.get(`/v1/handles/${session.id}`)).json.version.version as number;
  expect(db.prepare('select count(*), count(distinct version) from session_batches where session_id = ?').raw().get(session.id)).toEqual([versions - 2, versions - 2]);
  // The last request refers to the session's batches as one run; GET lists each, with its outcome, captured.
  const stored = JSON.parse(db.prepare('select segments from requests where id = ?').pluck().get(last) as string);
  expect(stored.s.filter((e: unknown) => Array.isArray(e))).toEqual([[session.id, 2, versions - 1]]);
  const got = (await h.tenant.client.get(`/v1/requests/${last}`)).json;
  const batches = got.outcome.segments.filter((s: { source: string }) => s.source.startsWith(`${session.id}@`));
  expect(batches.map((s: { source: string }) => s.source)).toEqual(Array.from({ length: versions - 2 }, (_, k) => `${session.id}@${k + 2}`));
  // Every batch read from the cache but the newest (the reply, sent for the first time by this call).
  type Seg = { classes: { captured: number; cold: number }; end: number; start: number };
  expect(batches.slice(0, -1).every((s: Seg) => s.classes.captured === s.end - s.start && s.end > s.start)).toBe(true);
  expect(batches.at(-1).classes.cold).toBeGreaterThan(0);
  expect(got.segments.map((s: { source: string }) => s.source)).toEqual(got.outcome.segments.map((s: { source: string }) => s.source));
});

it('a database of the old shape reads the same answers once migrated; a scope replayed from either after a restart gives the next call the same outcome', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ph-session-storage-'));
  dirs.push(dir);
  const a = join(dir, 'compact.sqlite');
  const b = join(dir, 'old.sqlite');
  const first = await harness({ databasePath: a });
  const session = await start(first);
  const ids: string[] = [];
  for (let i = 1; i <= 6; i++) ids.push(...(await round(first, session.id, i)));
  // 20 minutes without a call (the 1h marks keep the prefix), then a round more.
  first.clock.advance(20 * 60_000);
  ids.push(...(await round(first, session.id, 7)));
  const tenant = { id: first.tenant.id, key: first.tenant.key };
  const answers = async (h: Harness) => ({
    requests: await Promise.all(ids.map(async (id) => (await h.tenant.client.get(`/v1/requests/${id}`)).json)),
    session: (await h.tenant.client.get(`/v1/reports/handles/${session.id}`)).json,
    tenant: (await h.tenant.client.get('/v1/reports')).json,
  });
  const written = await answers(first);
  expect(written.requests.every((r) => r.status === 'reconciled')).toBe(true);
  const at = first.clock.now();
  open.splice(open.indexOf(first), 1);
  await first.close();

  // The old shape: as the code before 0020 wrote it (each request's batches whole, each outcome one per segment).
  for (const ext of ['', '-wal']) if (existsSync(a + ext)) copyFileSync(a + ext, b + ext);
  const raw = new Database(b);
  asBefore0020(raw);
  const oldRows = raw.prepare('select segments from requests').pluck().all() as string[];
  expect(oldRows.every((s) => Array.isArray(JSON.parse(s)))).toBe(true);
  expect(Math.max(...oldRows.map((s) => JSON.parse(s).length))).toBeGreaterThan(14);
  raw.close();
  // Each restarted scope replays from its first request (no snapshot to start from): from compact rows, and old ones.
  for (const path of [a, b]) {
    const db = new Database(path);
    db.prepare('delete from scope_snapshot_changes').run();
    db.prepare('delete from scope_snapshots').run();
    db.close();
  }

  const next = async (path: string) => {
    const h = await harness({ databasePath: path, tenant });
    h.clock.set(at + 60_000);
    const read = await answers(h);
    const [ask, answer] = await round(h, session.id, 8);
    // The simulator's replies differ from run to run (tool call ids, signatures): their figures do not.
    const got = await Promise.all([ask, answer].map(async (id) => (await h.tenant.client.get(`/v1/requests/${id}`)).json));
    return { read, next: got.map((r) => ({ outcome: r.outcome, prediction: r.prediction })) };
  };
  const compact = await next(a);
  const old = await next(b);
  expect(compact.read).toEqual(written);
  expect(old.read).toEqual(written);
  expect(old.next).toEqual(compact.next);
  expect(compact.next[1]!.outcome.segments.filter((s: { source: string }) => s.source.startsWith(session.id)).length).toBeGreaterThan(14);
});

it("pruning: a session's stored batches stay while a request names the session, and go with its last request", async () => {
  // A snapshot after every reconciliation: no request is kept for replay.
  const h = await harness({ scopeSnapshotEvery: 1 });
  const db = h.t.sqlite;
  const prune = async () => {
    const res = await clientFor(h.t.app, ADMIN_KEY).post('/v1/prune', { older_than_days: 30 });
    expect(res.status).toBe(200);
    return res.json.pruned as number;
  };
  const batches = (session: string) => db.prepare('select count(*) from session_batches where session_id = ?').pluck().get(session) as number;
  const kept = await start(h);
  const left = await start(h);
  for (let i = 1; i <= 3; i++) await round(h, kept.id, i);
  for (let i = 1; i <= 3; i++) await round(h, left.id, i);
  expect([batches(kept.id), batches(left.id)]).toEqual([5, 5]);
  h.clock.advance(40 * 86_400_000);
  const [, recent] = await round(h, kept.id, 4);
  const before = (await h.tenant.client.get(`/v1/requests/${recent}`)).json;
  expect(await prune()).toBe(12);
  // `left` is named by no request now; `kept` by its recent ones, which read as they did.
  expect([batches(kept.id), batches(left.id)]).toEqual([7, 0]);
  expect((await h.tenant.client.get(`/v1/requests/${recent}`)).json).toEqual(before);
  // Its last requests go once a later call of the scope (on another session) is past their lifetime.
  h.clock.advance(40 * 86_400_000);
  await round(h, (await start(h)).id, 1);
  expect(await prune()).toBe(2);
  expect(batches(kept.id)).toBe(0);
  // A later call on the session stores the batches again.
  const [, again] = await round(h, kept.id, 5);
  expect(batches(kept.id)).toBe(9);
  expect((await h.tenant.client.get(`/v1/requests/${again}`)).json.segments.filter((x: { source: string }) => x.source.startsWith(kept.id))).toHaveLength(9);
});

it("a model that reads only the current turn's thinking: each batch stored in its two forms (in the tool loop, then after the next question), every request's batches references", async () => {
  const h = await harness();
  const db = h.t.sqlite;
  const session = await start(h);
  let last = '';
  for (let i = 1; i <= 8; i++) [, last] = await round(h, session.id, i, 'claude-sonnet-4-5');
  const versions = (await h.tenant.client.get(`/v1/handles/${session.id}`)).json.version.version as number;
  const stored = JSON.parse(db.prepare('select segments from requests where id = ?').pluck().get(last) as string);
  // No session batch kept whole (each ask's batch, holding thinking, was before: 1 KB each in every later request).
  expect(stored.s.filter((e: { source?: string }) => !Array.isArray(e) && e.source?.startsWith(session.id))).toEqual([]);
  const refs = stored.s.filter((e: unknown) => Array.isArray(e)) as Array<[string, number, number, number?]>;
  expect(refs.flatMap(([, from, to]) => Array.from({ length: to - from + 1 }, (_, k) => from + k))).toEqual(Array.from({ length: versions - 2 }, (_, k) => k + 2));
  expect(refs.some((r) => r[3] === 1)).toBe(true);
  // At most two forms a version; the request reads back whole, its segments its outcome's.
  expect(db.prepare('select max(n) from (select count(*) as n from session_batches where session_id = ? group by version)').pluck().get(session.id)).toBe(2);
  const got = (await h.tenant.client.get(`/v1/requests/${last}`)).json;
  expect(got.segments.filter((s: { source: string }) => s.source.startsWith(`${session.id}@`)).map((s: { source: string }) => s.source)).toEqual(Array.from({ length: versions - 2 }, (_, k) => `${session.id}@${k + 2}`));
  expect(got.segments.map((s: { source: string }) => s.source)).toEqual(got.outcome.segments.map((s: { source: string }) => s.source));
});

it("a deleted session's requests read as before, their batches kept until pruning takes the last of them (then a 404, not a missing batch)", async () => {
  const h = await harness({ scopeSnapshotEvery: 1 });
  const db = h.t.sqlite;
  const session = await start(h);
  const ids: string[] = [];
  for (let i = 1; i <= 3; i++) ids.push(...(await round(h, session.id, i)));
  const read = async () => ({
    requests: await Promise.all(ids.map(async (id) => (await h.tenant.client.get(`/v1/requests/${id}`)).json)),
    report: (await h.tenant.client.get(`/v1/reports/handles/${session.id}`)).json.tokens,
  });
  const before = await read();
  expect((await h.tenant.client.delete(`/v1/handles/${session.id}`)).status).toBe(204);
  expect(await read()).toEqual(before);
  expect(db.prepare('select count(*) from session_batches where session_id = ?').pluck().get(session.id)).toBe(5);
  h.clock.advance(40 * 86_400_000);
  await round(h, (await start(h)).id, 1);
  expect((await clientFor(h.t.app, ADMIN_KEY).post('/v1/prune', { older_than_days: 30 })).json.pruned).toBe(6);
  expect(db.prepare('select count(*) from session_batches where session_id = ?').pluck().get(session.id)).toBe(0);
  for (const id of ids) expect((await h.tenant.client.get(`/v1/requests/${id}`)).status).toBe(404);
});

it('two services on one database file taking turns on a session: each batch stored once, every request of either (two at once on one version among them) read whole by both', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ph-session-two-'));
  dirs.push(dir);
  const path = join(dir, 'shared.sqlite');
  const a = await harness({ databasePath: path });
  const b = await harness({ databasePath: path, tenant: { id: a.tenant.id, key: a.tenant.key } });
  b.clock.set(a.clock.now());
  const session = await start(a);
  const ids: string[] = [];
  for (let i = 1; i <= 6; i++) {
    const h = i % 2 ? a : b;
    ids.push(...(await round(h, session.id, i)));
    (h === a ? b : a).clock.set(h.clock.now());
  }
  // Then both at once on the same version: one appends, both store their request (the same batches, stored once).
  const both = await Promise.all(
    [a, b].map(async (h) => {
      const res = await h.anthropic({ headers: { 'x-ph-session': session.id } }).messages.create({ model: MODEL, max_tokens: 4096, thinking: THINKING, messages: [{ role: 'user', content: marked([{ type: 'text', text: 'Step 7: summarise' }]) }] }).withResponse();
      return res.response.headers.get('x-ph-request-id')!;
    }),
  );
  await Promise.all([committed(a), committed(b)]);
  ids.push(...both);
  const versions = (await a.tenant.client.get(`/v1/handles/${session.id}`)).json.version.version as number;
  expect(a.t.sqlite.prepare('select count(*), count(distinct version) from session_batches where session_id = ?').raw().get(session.id)).toEqual([versions - 2, versions - 2]);
  for (const id of both) expect(JSON.parse(a.t.sqlite.prepare('select segments from requests where id = ?').pluck().get(id) as string).s.filter((e: unknown) => Array.isArray(e))).toEqual([[session.id, 2, versions - 1]]);
  for (const id of ids) {
    const [x, y] = await Promise.all([a, b].map(async (h) => (await h.tenant.client.get(`/v1/requests/${id}`)).json));
    expect(x.status).toBe('reconciled');
    expect(y).toEqual(x);
    if (both.includes(id)) expect(x.segments.filter((s: { source: string }) => s.source.startsWith(`${session.id}@`))).toHaveLength(versions - 2);
  }
});

it("a request whose session batches were removed by hand reads as not stored (404), not a 500; the list and the reports still answer", async () => {
  const h = await harness();
  const session = await start(h);
  const [, last] = await round(h, session.id, 1);
  h.t.sqlite.prepare('delete from session_batches').run();
  const res = await h.tenant.client.get(`/v1/requests/${last}`);
  expect([res.status, res.json.code]).toEqual([404, 'not_found']);
  expect((await h.tenant.client.get('/v1/requests')).json.requests.map((r: { id: string }) => r.id)).toContain(last);
  expect((await h.tenant.client.get(`/v1/reports/handles/${session.id}`)).status).toBe(200);
});
