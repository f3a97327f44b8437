import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCatalog, mergeCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import type { Catalog } from '../../src/domain/catalog/types';
import { clientFor, createTestApp, type TestApp } from '../helpers/app';
import { FakeClock } from '../helpers/clock';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';
import { countReplays, numbered, scopeStates } from '../helpers/scope-states';

// A cache scope's snapshot on a real database file, across restarts: what is read, and when it is not trusted.

const MIN = 60_000;
const EVERY = 5;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ph-scope-snapshot-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

interface History {
  t: TestApp;
  clock: FakeClock;
  tenant: { id: string; key: string };
  sys: string;
  ses: string;
  n: number;
}

/** An agent's calls on one model: a system prompt or a session, a drift now and then, a gap past the TTL. */
async function calls(h: History, count: number): Promise<void> {
  const client = clientFor(h.t.app, h.tenant.key);
  for (let k = 0; k < count; k++, h.n++) {
    const i = h.n;
    const stamped = i % 7 === 3;
    const r = await renderAnthropic(client, {
      ...(stamped ? { system: [{ type: 'text', text: `now ${i}` }, { type: 'handle', ref: h.sys }] } : {}),
      prefix: stamped ? [] : i % 3 === 0 ? [h.ses] : [h.sys],
      messages: [{ role: 'user', content: `Question ${i}` }],
    });
    const total = promptTokens(r);
    await report(client, h.t, r, anthropicUsage(total, r.prediction.read_tokens, total - r.prediction.read_tokens), { firstByteMs: i % 4 === 0 ? 2_000 : 300 });
    h.clock.advance(i % 10 === 9 ? 6 * MIN : 20_000);
  }
  await h.t.services.writes.idle();
}

/** The same call again and again: its entries change, their number does not (the chain outgrows them). */
async function same(h: History, count: number): Promise<void> {
  const client = clientFor(h.t.app, h.tenant.key);
  for (let k = 0; k < count; k++) {
    const r = await renderAnthropic(client, { prefix: [h.sys], messages: [{ role: 'user', content: 'The same question' }] });
    const total = promptTokens(r);
    await report(client, h.t, r, anthropicUsage(total, r.prediction.read_tokens, total - r.prediction.read_tokens));
    h.clock.advance(20_000);
  }
  await h.t.services.writes.idle();
}

async function start(every = EVERY, part?: number): Promise<History> {
  const clock = new FakeClock();
  const t = createTestApp({ databasePath: join(dir, 'db.sqlite'), clock, config: { scopeSnapshotEvery: every, ...(part ? { scopeSnapshotPart: part } : {}) } });
  const tenant = t.tenant();
  const mint = async (path: string, body: object) => {
    const res = await tenant.client.post(path, body);
    expect(res.status, res.text).toBe(201);
    return res.json.id as string;
  };
  const sys = await mint('/v1/artifacts', { kind: 'system', content: LONG_SYSTEM });
  const ses = await mint('/v1/sessions', { base: await mint('/v1/bundles', { members: [sys] }), messages: [{ role: 'user', content: 'Where is order 1?' }, { role: 'assistant', content: 'It left.' }] });
  return { t, clock, tenant: { id: tenant.id, key: tenant.key }, sys, ses, n: 0 };
}

/** A copy of the database file as it is now (all committed, checkpointed), opened by a new service. */
function restart(h: History, name: string, opts: { every?: number; catalog?: ModelCatalog; change?: (t: TestApp) => void } = {}): TestApp {
  h.t.sqlite.pragma('wal_checkpoint(TRUNCATE)');
  const file = join(dir, `${name}.sqlite`);
  copyFileSync(join(dir, 'db.sqlite'), file);
  const open = () => createTestApp({ databasePath: file, clock: new FakeClock(h.clock.now()), config: { scopeSnapshotEvery: opts.every ?? EVERY }, ...(opts.catalog ? { deps: { catalog: opts.catalog } } : {}) });
  if (opts.change) {
    const t = open();
    opts.change(t);
    t.close();
  }
  return open();
}

const snapshotRow = (t: TestApp) => t.sqlite.prepare('select scope, seq, rows from scope_snapshots').get() as { scope: string; seq: number; rows: number } | undefined;
/** The chain the snapshot reads, and the parts of others (a new one being written, or one given up). */
const chains = (t: TestApp) =>
  t.sqlite.prepare('select s.chain, s.parts, (select count(*) from scope_snapshot_changes c where c.scope = s.scope and c.chain != s.chain) others from scope_snapshots s').get() as { chain: string; parts: number; others: number };
/** How many requests a restore from the snapshot replays: those reconciled after it. */
const tail = (t: TestApp) => t.sqlite.prepare('select count(*) from requests r join scope_snapshots s on s.scope = r.scope where r.reconciled_seq > s.seq').pluck().get() as number;

describe("a cache scope's snapshot across a restart", () => {
  it('is restored with only the requests reconciled after it, and the next render and report are those of the service that never stopped', async () => {
    const h = await start();
    await calls(h, 23);
    // One report per commit: a snapshot every 5th, the last at the 20th.
    const snap = snapshotRow(h.t)!;
    expect(snap.rows).toBe(20);

    const u = restart(h, 'restarted');
    const replays = countReplays(u);
    const probe = async (t: TestApp) => {
      const client = clientFor(t.app, h.tenant.key);
      const r = await renderAnthropic(client, { prefix: [h.sys], messages: [{ role: 'user', content: 'After the restart?' }] });
      const total = promptTokens(r);
      const out = await report(client, t, r, anthropicUsage(total, 1024, 100));
      return numbered({ prediction: r.prediction, outcome: out.outcome, report: (await client.get('/v1/reports')).json }, [r.request_id]);
    };
    const after = await probe(u);
    expect(replays.get(snap.scope)).toBe(3);
    expect(after).toBe(await probe(h.t));
    u.close();
    h.t.close();
  });

  const fallbacks: Array<[string, { change?: (t: TestApp) => void; catalog?: ModelCatalog }]> = [
    ['of a format this version does not know', { change: (t) => t.sqlite.prepare('update scope_snapshots set version = 999').run() }],
    ['that does not cover the rows it says (another process reconciled in the scope)', { change: (t) => t.sqlite.prepare('update scope_snapshots set rows = rows - 1').run() }],
    ['whose chain of entries another process appended to', { change: (t) => t.sqlite.prepare(`insert into scope_snapshot_changes select scope, chain, parts, '{}' from scope_snapshots`).run() }],
    ['that cannot be read', { change: (t) => t.sqlite.prepare(`update scope_snapshot_changes set entries = '{"live.held":[]}'`).run() }],
    [
      "simulated by other rules (a catalog override changed the model's since)",
      { catalog: new ModelCatalog(mergeCatalog(loadCatalog(), { models: [{ id: 'claude-sonnet-4-5', cache: { minTokens: 2048 } }] } as never, 'test') as Catalog) },
    ],
  ];
  it.each(fallbacks)('not read when %s: the scope is replayed from its first request, then snapshot whole', async (_name, opts) => {
    const h = await start();
    await calls(h, 12);
    const u = restart(h, 'restarted', opts);
    const replays = countReplays(u);
    const replayed = restart(h, 'replayed', { ...opts, change: undefined, every: 0 });
    expect(scopeStates(u, [], opts.catalog)).toBe(scopeStates(replayed, [], opts.catalog));
    expect(replays.get(snapshotRow(u)!.scope)).toBe(12);
    replayed.close();

    // Its next snapshot (with the next report: 12 replayed) writes every entry, in place of those stored; restored, it is the replay again.
    const again: History = { ...h, t: u };
    await calls(again, 3);
    expect(snapshotRow(u)!.rows).toBe(13);
    expect(u.sqlite.prepare('select count(*) from scope_snapshot_changes').pluck().get()).toBe(1);
    again.t.sqlite.pragma('wal_checkpoint(TRUNCATE)');
    const file = join(dir, 'restarted.sqlite');
    const [v, w] = ['v', 'w'].map((name) => {
      copyFileSync(file, join(dir, `${name}.sqlite`));
      return createTestApp({ databasePath: join(dir, `${name}.sqlite`), clock: new FakeClock(h.clock.now()), config: { scopeSnapshotEvery: name === 'v' ? EVERY : 0 }, ...(opts.catalog ? { deps: { catalog: opts.catalog } } : {}) });
    });
    const vReplays = countReplays(v!);
    expect(scopeStates(v!, [], opts.catalog)).toBe(scopeStates(w!, [], opts.catalog));
    expect(vReplays.get(snapshotRow(v!)!.scope)).toBe(2);
    for (const t of [u, v!, w!, h.t]) t.close();
  });

  it('written anew a part at a time: stopped or failing mid-chain, the old snapshot is read, until the new one replaces it', async () => {
    // Three entries a group commit: a new chain takes many.
    const h = await start(EVERY, 3);
    await calls(h, 10);
    let k = 0;
    while (chains(h.t).others === 0 && k++ < 100) await same(h, 1);
    const old = chains(h.t);
    expect(old.others).toBeGreaterThan(0);

    // Stopped here (the file as it is now): the old snapshot is read, and the requests after it replayed.
    const expectRestored = (name: string) => {
      const u = restart(h, name);
      const replays = countReplays(u);
      const replayed = restart(h, `${name}-replayed`, { every: 0 });
      expect(scopeStates(u)).toBe(scopeStates(replayed));
      expect(replays.get(snapshotRow(u)!.scope)).toBe(tail(u));
      u.close();
      replayed.close();
    };
    expectRestored('stopped');

    // The commit with the chain's next part fails: the chain is given up, the old snapshot stays and is read.
    const write = h.t.store.writeBatch.bind(h.t.store);
    let failed = 0;
    h.t.store.writeBatch = (ops) => {
      if (failed === 0 && ops.some((o) => o.kind === 'snapshot' && !o.snapshot.row)) {
        failed++;
        throw new Error('injected: a commit with a part of a new chain failed');
      }
      write(ops);
    };
    await same(h, 1);
    expect(failed).toBe(1);
    expect(chains(h.t)).toMatchObject({ chain: old.chain, parts: old.parts });
    expectRestored('failed');

    // A new chain is begun again (as many requests later) and, written whole, replaces the old: the parts of the old
    // and of the one given up are deleted.
    k = 0;
    while ((chains(h.t).chain === old.chain || chains(h.t).others > 0) && k++ < 100) await same(h, 1);
    expect(chains(h.t).chain).not.toBe(old.chain);
    expect(chains(h.t).others).toBe(0);
    expect(h.t.sqlite.prepare('select count(*) from scope_snapshot_changes').pluck().get()).toBe(chains(h.t).parts);
    expectRestored('replaced');
    h.t.close();
  });

  it('is not written while a request the scope applied in memory was never written (a fault after its simulation)', async () => {
    const h = await start(2);
    await calls(h, 4);
    expect(snapshotRow(h.t)!.rows).toBe(4);
    // Request 7 drifts (a timestamp before the system prompt): locating the drift reads the last request that had it.
    await calls(h, 3);
    const getRequest = h.t.store.getRequest.bind(h.t.store);
    h.t.store.getRequest = () => {
      throw new Error('injected: the database could not be read');
    };
    const client = clientFor(h.t.app, h.tenant.key);
    const r = await renderAnthropic(client, { system: [{ type: 'text', text: 'now' }, { type: 'handle', ref: h.sys }], prefix: [], messages: [{ role: 'user', content: 'Drifting' }] });
    const res = await client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(promptTokens(r), 0, 0), started_at: h.clock.now() });
    expect(res.status).toBe(500);
    h.t.store.getRequest = getRequest;
    const before = snapshotRow(h.t)!;
    await calls(h, 4);
    expect(snapshotRow(h.t)).toEqual(before);
    const u = restart(h, 'restarted', { every: 2 });
    const replayed = restart(h, 'replayed', { every: 0 });
    expect(scopeStates(u)).toBe(scopeStates(replayed));
    for (const t of [u, replayed, h.t]) t.close();
  });
  it("written before rewrittenBy was kept (format 2) is not read: the scope's rewrites are replayed, and a later read reads the rewrite's premium", async () => {
    // The first call writes, the second reads, the third finds the entry evicted and writes it again (an eviction the
    // simulation did not see): the snapshot after it holds that rewrite. One of format 2 has no rewrittenBy part: read,
    // the fourth call's read went to the first write (read already) and the rewrite's premium showed as unread.
    const h = await start(3);
    const turn = async (t: TestApp, read: boolean) => {
      t.clock.advance(MIN);
      const client = clientFor(t.app, h.tenant.key);
      const r = await renderAnthropic(client, { prefix: [h.sys], messages: [{ role: 'user', content: 'q' }] });
      const cached = r.breakpoints[0]!.token_end;
      await report(client, t, r, anthropicUsage(promptTokens(r), read ? cached : 0, read ? 0 : cached));
      await t.services.writes.idle();
      return cached;
    };
    const cached = await turn(h.t, false);
    await turn(h.t, true);
    await turn(h.t, false);
    expect(snapshotRow(h.t)!.rows).toBe(3);
    let rewrites = 0;
    const formatTwo = (t: TestApp) => {
      t.sqlite.prepare('update scope_snapshots set version = 2').run();
      for (const { chain, part, entries } of t.sqlite.prepare('select chain, part, entries from scope_snapshot_changes').all() as Array<{ chain: string; part: number; entries: string }>) {
        const changes = JSON.parse(entries) as Record<string, Array<[string, string]>>;
        for (const name of Object.keys(changes).filter((n) => n.endsWith('.rewrittenBy'))) {
          rewrites += changes[name]!.filter(([, id]) => id !== '').length;
          delete changes[name];
        }
        t.sqlite.prepare('update scope_snapshot_changes set entries = ? where chain = ? and part = ?').run(JSON.stringify(changes), chain, part);
      }
    };
    const u = restart(h, 'restarted', { every: 3, change: formatTwo });
    expect(rewrites).toBe(1);
    const replays = countReplays(u);
    const replayed = restart(h, 'replayed', { every: 0 });
    expect(scopeStates(u)).toBe(scopeStates(replayed));
    expect(replays.get(snapshotRow(u)!.scope)).toBe(3);
    await turn(u, true);
    u.clock.advance(10 * MIN);
    const money = (await clientFor(u.app, h.tenant.key).get(`/v1/reports/handles/${h.sys}`)).json.money;
    // Sonnet 4.5: $3/M, 5-minute writes 1.25×: a premium of $0.75/M on each of the two writes, both read.
    expect(money).toMatchObject({ write_premiums_paid: Math.round(2 * cached * 0.75) / 1e6, write_premiums_unread: 0 });
    for (const t of [u, replayed, h.t]) t.close();
  });
});
