// The dashboard overview of an agent with a session per conversation: SESSIONS_COUNT (5,000) sessions on one bundle,
// four turns each (an append between turns: a version per turn), spread over the last 7 days and reconciled through
// the domain (every third conversation's last turn read nothing: leaked). Times, median of SAMPLES:
//  - the overview's reads as before (every handle ranked, limit 200) against now (artifacts and bundles ranked, the
//    sessions summed into one row, the tenant's days), for 7 days and all time;
//  - the sessions' page (the sessions ranked, and summed);
//  - the sessions' sum and the days alone.
import { join } from 'node:path';
import type { Clock } from '../src/domain/clock';
import { fmt, median, printTable, tempDir, writeResults, type Benchmark } from './lib';
import { inProcess, prose } from './render';

const SESSIONS = Number(process.env.SESSIONS_COUNT ?? 5_000);
const TURNS = 4;
const DAYS = 7;
const DAY = 86_400_000;
const CHUNK = 250;
const SAMPLES = 50;

export async function build(file: string) {
  const today = Math.floor(Date.now() / DAY) * DAY;
  let now = today - (DAYS - 1) * DAY;
  const clock: Clock = { now: () => now };
  const app = inProcess(file, { clock });
  const tid = app.tenantId;
  const handles = app.services.handles;
  const sys = handles.mintArtifact(tid, { kind: 'system', name: 'support', content: prose(7, 8 * 1024) }).handle.id;
  const bundle = handles.createBundle(tid, { members: [sys], name: 'support agent' }).handle.id;
  const t0 = performance.now();
  for (let done = 0; done < SESSIONS; ) {
    // One chunk of conversations, turn by turn: each turn's reports reconciled before the next turn renders.
    const chunk = Array.from({ length: Math.min(CHUNK, SESSIONS - done) }, (_, i) => {
      const n = done + i;
      return { n, id: handles.createSession(tid, { base: bundle, messages: [{ role: 'user', content: `Conversation ${n}: where is order ${n}?` }] }).handle.id };
    });
    now = today - (DAYS - 1) * DAY + Math.floor((done * DAYS * DAY) / SESSIONS) + 60_000;
    for (let turn = 0; turn < TURNS; turn++) {
      if (turn > 0) for (const c of chunk) handles.appendMessages(tid, c.id, [{ role: 'assistant', content: `Answer ${turn} to ${c.n}.` }, { role: 'user', content: `Question ${turn + 1}.` }]);
      const sent = chunk.map((c) => {
        const body = `{"model":"claude-sonnet-4-5","max_tokens":256,"prefix":["${c.id}"],"messages":[{"role":"user","content":[{"type":"text","text":"Go on.","cache_control":{"type":"ephemeral"}}]}]}`;
        const r = app.services.requests.render({ tenantId: tid, format: 'anthropic', bodyText: body, pointer: '/request' });
        const p = (r.prediction ?? { read_tokens: 0, write_tokens: 0 }) as { read_tokens: number; write_tokens: number };
        const read = turn === TURNS - 1 && c.n % 3 === 0 ? 0 : p.read_tokens;
        return { id: r.requestId, read, write: p.write_tokens + p.read_tokens - read, total: r.segments.at(-1)!.token_end };
      });
      const results = await app.services.reconciler.ingestMany(
        tid,
        sent.map((s) => ({ request_id: s.id, usage: { input_tokens: s.total - s.read - s.write, cache_creation_input_tokens: s.write, cache_read_input_tokens: s.read, output_tokens: 50 }, started_at: now, first_byte_at: now + 500, finished_at: now + 1500 })),
      );
      const bad = results.find((x) => !x.ok);
      if (bad) throw new Error(`a usage report was refused: ${JSON.stringify(bad)}`);
      now += 60_000;
    }
    done += chunk.length;
  }
  const seconds = (performance.now() - t0) / 1000;
  now = today + 12 * 3_600_000;
  return { app, tid, seconds, now };
}

function timed(f: () => unknown): number {
  const a = performance.now();
  f();
  return performance.now() - a;
}

async function run(): Promise<void> {
  const dir = tempDir('sessions');
  console.log(`  building ${fmt.rps(SESSIONS)} sessions of ${TURNS} turns through the domain (render + ingestMany)…`);
  const { app, tid, seconds, now } = await build(join(dir, 'prefix-handles.db'));
  const r = app.services.reports;
  const sample = (f: () => unknown) => {
    for (let w = 0; w < 5; w++) f();
    return median(Array.from({ length: SAMPLES }, () => timed(f)));
  };
  const week = { from: now - 6 * DAY };
  const days = { fromDay: Math.floor(now / DAY) - 6, toDay: Math.floor(now / DAY) };
  const rows: Array<[string, string]> = [];
  const ms: Record<string, number> = {};
  for (const [label, range] of [['7d', week], ['all', {}]] as const) {
    const before = sample(() => r.tenant(tid, range, now, 200));
    const after = sample(() => {
      r.tenant(tid, range, now, 200, ['artifact', 'bundle']);
      r.typeTotals(tid, range, now, 'session');
      r.tenantDays(tid, days, undefined, now);
    });
    const sessionsPage = sample(() => {
      r.tenant(tid, range, now, 200, ['session']);
      r.typeTotals(tid, range, now, 'session');
    });
    const sum = sample(() => r.typeTotals(tid, range, now, 'session'));
    Object.assign(ms, { [`${label}Before`]: before, [`${label}After`]: after, [`${label}SessionsPage`]: sessionsPage, [`${label}Sum`]: sum });
    rows.push([`${label}: overview as before (every handle ranked)`, before.toFixed(2)], [`${label}: overview now (artifacts and bundles, sessions summed, days)`, after.toFixed(2)], [`${label}: sessions' page (ranked and summed)`, sessionsPage.toFixed(2)], [`${label}:   the sessions' sum alone`, sum.toFixed(2)]);
  }
  ms.days = sample(() => r.tenantDays(tid, days, undefined, now));
  rows.push(['the tenant days alone (7)', ms.days.toFixed(3)]);
  const total = r.typeTotals(tid, {}, now, 'session');
  const rollupRows = app.sqlite.prepare('select count(*) from rollups').pluck().get() as number;
  app.close();
  console.log(`\nhistory: ${fmt.rps(total.handles_total)} sessions, ${fmt.rps(total.requests)} requests in ${seconds.toFixed(0)} s (${fmt.rps(rollupRows)} rollup rows)`);
  printTable(['read', 'median ms'], rows);
  writeResults('sessions', { sessions: total.handles_total, requests: total.requests, rollupRows, buildSeconds: seconds, ms });
}

export const sessionsBenchmarks: Benchmark[] = [{ name: 'sessions', run }];
