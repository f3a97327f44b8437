import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientFor, createTestApp, type Client, type TestApp } from '../helpers/app';
import { FakeClock } from '../helpers/clock';
import { LONG_SYSTEM } from '../helpers/scenario';
import { countReplays, numbered, scopeStates } from '../helpers/scope-states';

// A cache scope restored from its snapshot and the requests reconciled after it must be exactly the scope replayed
// from its first request: the same states, and the same outcomes and predictions for every later request. Random
// histories on a database file (snapshots every few reconciliations), cut at a random point; the rest of the history
// then runs on two copies of the file in lockstep, one with snapshots, one replaying from the start. New chains are
// written a few entries per group commit: many cuts fall while one is being written (the old one is read then).

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

const MODELS = {
  // Explicit breakpoints, messages cached by units.
  sonnet: { format: 'anthropic', model: 'claude-sonnet-4-5' },
  // Automatic, read in 128-token steps.
  gpt41: { format: 'openai-chat', model: 'gpt-4.1' },
} as const;
type Model = keyof typeof MODELS;

const callArb = fc.record({
  k: fc.constant('call' as const),
  model: fc.constantFrom<Model>('sonnet', 'sonnet', 'gpt41'),
  prefix: fc.nat(3),
  // An agent loop: the same call this many times, 3 s apart.
  repeat: fc.constantFrom(1, 1, 2, 4),
  // The same question again and again: its entries change, the scope's size does not (its chain outgrows it: a new one).
  same: fc.constantFrom(false, false, true),
  // A timestamp before the system prompt: what follows it drifts.
  stamped: fc.constantFrom(false, false, false, true),
  read: fc.constantFrom(0, 1, 1, 0.5),
  // now: reported at once; defer: held back (sent late, out of order, or past the TTL: the scope's history).
  delivery: fc.constantFrom('now', 'now', 'defer'),
  // No first byte: the write is readable from the start or only from the end (uncertain, settled by a later read).
  // import: a call of a month ago, reported now (before every live call by more than the TTL: the scope's history).
  times: fc.constantFrom('given', 'given', 'nofirstbyte', 'none', 'import'),
});
const opArb = fc.oneof(
  { weight: 10, arbitrary: callArb },
  { weight: 4, arbitrary: fc.record({ k: fc.constant('advance' as const), ms: fc.constantFrom(2_000, 30_000, 4 * MIN, 6 * MIN, 70 * MIN, 3 * HOUR) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('flush' as const), lifo: fc.boolean(), batch: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('version' as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('append' as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('restart' as const) }) },
  // A group commit that fails: the next with a snapshot in it (its reports are then written one by one, without it),
  // or the next call's report (refused; memory is rebuilt from the database).
  { weight: 1, arbitrary: fc.record({ k: fc.constant('break' as const), what: fc.constantFrom('snapshot', 'report') }) },
);
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;
type Call = Extract<Op, { k: 'call' }>;

/** One history on one database file: the ops apply the same way to each copy of it (only new request ids differ). */
class Run {
  readonly ids: string[] = [];
  private deferred: Array<Record<string, unknown>> = [];
  private n = 0;
  private breakSnapshot = false;
  private failReport = false;
  /** The request whose report's write fails. */
  private failing: string | null = null;
  client: Client;

  constructor(
    public t: TestApp,
    private readonly open: () => TestApp,
    private readonly tenant: { id: string; key: string },
    private readonly handles: { sys: string; doc: string; ses: string },
  ) {
    this.client = clientFor(t.app, tenant.key);
    this.inject();
  }

  private inject(): void {
    const store = this.t.store;
    const write = store.writeBatch.bind(store);
    store.writeBatch = (ops) => {
      if (this.breakSnapshot && ops.some((o) => o.kind === 'snapshot')) {
        this.breakSnapshot = false;
        coverage['snapshot writes failed'] = (coverage['snapshot writes failed'] ?? 0) + 1;
        throw new Error('injected: a batch with a snapshot failed');
      }
      if (ops.some((o) => o.kind === 'ingest' && o.write.request.id === this.failing)) throw new Error('injected: a report failed');
      write(ops);
      for (const o of ops) if (o.kind === 'snapshot' && o.snapshot.replaces) coverage['new chains'] = (coverage['new chains'] ?? 0) + 1;
      for (const o of ops) if (o.kind === 'snapshot' && !o.snapshot.row && this.t.sqlite.prepare('select 1 from scope_snapshots where scope = ?').get(o.snapshot.scope)) coverage['parts beside a stored one'] = (coverage['parts beside a stored one'] ?? 0) + 1;
    };
  }

  /** The same history on a copy of the file (taken between ops). */
  copy(open: () => TestApp): Run {
    const run = new Run(open(), open, this.tenant, this.handles);
    run.ids.push(...this.ids);
    run.deferred = structuredClone(this.deferred);
    run.n = this.n;
    run.breakSnapshot = this.breakSnapshot;
    run.failReport = this.failReport;
    return run;
  }

  async apply(op: Op): Promise<void> {
    const { client } = this;
    if (op.k === 'call') {
      for (let i = 0; i < op.repeat; i++) {
        if (i > 0) this.t.clock.advance(3_000);
        await this.call(op);
      }
      return;
    }
    if (op.k === 'break') {
      if (op.what === 'snapshot') this.breakSnapshot = true;
      else this.failReport = true;
      return;
    }
    if (op.k === 'advance') return this.t.clock.advance(op.ms);
    if (op.k === 'flush') {
      const records = op.lifo ? this.deferred.reverse() : this.deferred;
      this.deferred = [];
      if (op.batch && records.length) expect((await client.post('/v1/usage/batch', { records })).status).toBe(200);
      else for (const r of records) expect((await client.post('/v1/usage', r)).status).toBe(201);
      return;
    }
    if (op.k === 'version') {
      const res = await client.post(`/v1/artifacts/${this.handles.doc}/versions`, { content: `Returns policy, revision ${this.n++}. Items may be returned within 30 days. `.repeat(40) });
      expect(res.status, res.text).toBe(201);
      return;
    }
    if (op.k === 'append') {
      const res = await client.post(`/v1/sessions/${this.handles.ses}/messages`, { messages: [{ role: 'user', content: `Where is order ${this.n}?` }, { role: 'assistant', content: `Order ${this.n++} ships today.` }] });
      expect(res.status, res.text).toBe(201);
      return;
    }
    await this.close();
    this.t = this.open();
    this.client = clientFor(this.t.app, this.tenant.key);
    this.inject();
  }

  async close(): Promise<void> {
    await this.t.services.writes.idle();
    this.t.close();
  }

  private async call(op: Call): Promise<void> {
    const { sys, doc, ses } = this.handles;
    const prefix = [[sys], [sys, doc], [ses], [sys, ses]][op.prefix]!;
    const m = MODELS[op.model];
    const question = { role: 'user', content: op.same ? 'The same question' : `Question ${this.n++}` };
    const before = op.stamped && prefix[0] === sys;
    const stamp = [{ type: 'text', text: `now ${this.n}` }, { type: 'handle', ref: sys }];
    const rest = before ? prefix.slice(1) : prefix;
    const request =
      m.format === 'anthropic'
        ? { model: m.model, max_tokens: 64, ...(before ? { system: stamp } : {}), prefix: rest, messages: [question] }
        : { model: m.model, prefix: rest, messages: [...(before ? [{ role: 'system', content: stamp }] : []), question] };
    const res = await this.client.post('/v1/render', { format: m.format, request });
    expect(res.status, res.text).toBe(200);
    const r = res.json;
    this.ids.push(r.request_id);
    const total = r.segments.at(-1).token_end as number;
    const read = Math.min(total, Math.round(r.prediction.read_tokens * op.read));
    const usage =
      m.format === 'anthropic'
        ? { input_tokens: 0, cache_creation_input_tokens: total - read, cache_read_input_tokens: read, output_tokens: 3 }
        : { prompt_tokens: total, completion_tokens: 3, prompt_tokens_details: { cached_tokens: read } };
    const now = op.times === 'import' ? this.t.clock.now() - 30 * DAY + this.n * MIN : this.t.clock.now();
    const times = op.times === 'none' ? {} : op.times === 'nofirstbyte' ? { started_at: now, finished_at: now + 900 } : { started_at: now, first_byte_at: now + 400, finished_at: now + 900 };
    const record = { request_id: r.request_id, usage, ...times };
    if (this.failReport) {
      this.failReport = false;
      this.failing = r.request_id;
      expect((await this.client.post('/v1/usage', record)).status).toBe(500);
      this.failing = null;
    } else if (op.delivery === 'defer') this.deferred.push(record);
    else expect((await this.client.post('/v1/usage', record)).status).toBe(201);
  }

  /** Every request's prediction and outcome, and the tenant's report; request ids by render order (each copy mints its own). */
  async results(): Promise<string> {
    await this.t.services.writes.idle();
    const rows = this.ids.map((id) => this.t.services.requests.get(this.tenant.id, id));
    const report = (await this.client.get('/v1/reports')).json;
    return numbered({ requests: rows.map((r) => ({ status: r.status, prediction: r.prediction, outcome: r.outcome })), report }, this.ids);
  }

  /** Whether a scope has parts of a chain other than its snapshot's (a new one being written, or one given up). */
  async midChain(): Promise<boolean> {
    await this.t.services.writes.idle();
    return (this.t.sqlite.prepare('select count(*) from scope_snapshot_changes c join scope_snapshots s on s.scope = c.scope and s.chain != c.chain').pluck().get() as number) > 0;
  }

  states(): string {
    return scopeStates(this.t, this.ids);
  }

}

/** With SNAPSHOT_STATS: what the cuts covered (scopes with a snapshot, a tail after it, a history, uncertain writes). */
const coverage: Record<string, number> = {};
function stats(t: TestApp) {
  const inc = (k: string) => (coverage[k] = (coverage[k] ?? 0) + 1);
  inc('runs');
  const rows = t.sqlite.prepare(`select s.scope, s.seq, s.state, (select max(reconciled_seq) from requests r where r.scope = s.scope) last,
    (select count(*) from scope_snapshot_changes c where c.scope = s.scope and c.chain = s.chain) changes,
    (select count(*) from scope_snapshot_changes c where c.scope = s.scope and c.chain != s.chain) other from scope_snapshots s`).all() as Array<{ seq: number; state: string; last: number; changes: number; other: number }>;
  const unread = t.sqlite.prepare('select count(distinct scope) from scope_snapshot_changes c where not exists (select 1 from scope_snapshots s where s.scope = c.scope)').pluck().get() as number;
  if (unread > 0) inc('cut mid-chain, none complete');
  for (const r of rows) {
    inc('scopes with a snapshot');
    if (r.last > r.seq) inc('a tail after it');
    if (r.changes > 1) inc('changes appended');
    if (r.other > 0) inc('cut mid-chain, the old one read');
    const state = JSON.parse(r.state);
    if (state.history.lastStart !== null) inc('a history');
    if (state.live.sim.uncertain !== null) inc('uncertain writes');
  }
}

const runArb = fc.record({
  ops: fc.array(opArb, { minLength: 6, maxLength: 50 }),
  cut: fc.nat(),
  midChain: fc.boolean(),
  every: fc.constantFrom(1, 2, 3, 5, 8),
  // Entries of a new chain per group commit: most chains here take several commits, some many.
  part: fc.constantFrom(2, 5, 20, 4_000),
});

// SNAPSHOT_RUNS=200 for a longer hunt.
const RUNS = Number(process.env.SNAPSHOT_RUNS ?? 20);

describe('a scope restored from its snapshot and the requests after it', () => {
  it('is the scope replayed from its first request: the same states, then the same predictions, outcomes and reports', async () => {
    await fc.assert(
      fc.asyncProperty(runArb, async ({ ops, cut, midChain, every, part }) => {
        const dir = mkdtempSync(join(tmpdir(), 'ph-snapshots-'));
        try {
          const file = join(dir, 'db.sqlite');
          const clock = new FakeClock();
          const open = (path: string, snapshots: number, c: FakeClock) => () => createTestApp({ databasePath: path, clock: c, config: { scopeSnapshotEvery: snapshots, scopeSnapshotPart: part } });
          const t = open(file, every, clock)();
          const tenant = t.tenant();
          const mint = async (path: string, body: object) => {
            const res = await tenant.client.post(path, body);
            expect(res.status, res.text).toBe(201);
            return res.json.id as string;
          };
          const sys = await mint('/v1/artifacts', { kind: 'system', content: LONG_SYSTEM });
          const doc = await mint('/v1/artifacts', { kind: 'document', content: 'Returns policy, section 4. Items may be returned within 30 days. '.repeat(40) });
          const ses = await mint('/v1/sessions', { base: (await mint('/v1/bundles', { members: [sys, doc] })), messages: [{ role: 'user', content: 'Where is order 1?' }, { role: 'assistant', content: 'It left the warehouse.' }] });
          const run = new Run(t, open(file, every, clock), { id: tenant.id, key: tenant.key }, { sys, doc, ses });
          // Past the first third: most cuts have a few snapshots behind them.
          const first = Math.floor(ops.length / 3);
          // Or (midChain) at the first point past the third where a new chain is being written beside the snapshot
          // stored (a stop mid-chain), if any.
          let at = midChain ? ops.length : first + (cut % (ops.length - first + 1));
          for (let i = 0; i < at; i++) {
            await run.apply(ops[i]!);
            if (midChain && i + 1 >= first && (await run.midChain())) at = i + 1;
          }
          await run.close();

          // Two copies of the file: one restores its scopes from their snapshots, the other replays them from the start.
          const copyTo = (name: string) => {
            const path = join(dir, name);
            for (const suffix of ['', '-wal']) if (existsSync(file + suffix)) copyFileSync(file + suffix, path + suffix);
            return path;
          };
          const [a, b] = [copyTo('a.sqlite'), copyTo('b.sqlite')];
          const restored = run.copy(open(a, every, new FakeClock(clock.now())));
          const replayed = run.copy(open(b, 0, new FakeClock(clock.now())));
          try {
            if (process.env.SNAPSHOT_STATS) stats(restored.t);
            // Each scope with a snapshot replays only the requests reconciled after it.
            const tails = restored.t.sqlite
              .prepare('select s.scope, (select count(*) from requests r where r.scope = s.scope and r.reconciled_seq > s.seq) tail from scope_snapshots s')
              .all() as Array<{ scope: string; tail: number }>;
            const replays = countReplays(restored.t);
            const states = restored.states();
            expect(Object.fromEntries(tails.map((r) => [r.scope, replays.get(r.scope)]))).toEqual(Object.fromEntries(tails.map((r) => [r.scope, r.tail])));
            expect(states).toBe(replayed.states());
            for (const op of ops.slice(at)) {
              await restored.apply(op);
              await replayed.apply(op);
            }
            expect(await restored.results()).toBe(await replayed.results());
            if (process.env.SNAPSHOT_STATS) for (const id of restored.ids) {
              const o = restored.t.services.requests.get(tenant.id, id).outcome as { sim?: { history?: boolean }; applied_late?: unknown; drift?: unknown } | null;
              if (o?.sim?.history) coverage['history requests'] = (coverage['history requests'] ?? 0) + 1;
              if (o?.applied_late) coverage['applied late'] = (coverage['applied late'] ?? 0) + 1;
              if (o?.drift) coverage['drifts'] = (coverage['drifts'] ?? 0) + 1;
            }
            expect(restored.states()).toBe(replayed.states());
          } finally {
            await restored.close();
            await replayed.close();
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: RUNS },
    );
    if (process.env.SNAPSHOT_STATS) console.log(JSON.stringify(coverage));
  }, 4_000 * RUNS);
});
