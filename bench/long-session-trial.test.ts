// The README's 300-round trial (Sessions: the conversation kept server-side), measured: bytes of stored JSON and rows
// written per call at rounds 10, 100 and 300, the database's growth and its tables, and at the last round the store's
// read of a request (median of 15) and the building of a request's write. Not part of `npm test`:
//   npx vitest run -c bench/trial.config.ts    (ROUNDS=300, FILE_LINES=40, TRIAL_OUT=… for another file than bench/results/trial.txt, LABEL=… to change)
// and the wall time of a call (the SDK's, through the proxy to the simulator and back) at the first and last 10 rounds.
import type Anthropic from '@anthropic-ai/sdk';
import { it } from 'vitest';
import { appendFileSync, mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { file, marked, MODEL, startCodingAgent, THINKING, type Block } from './coding-agent';
import { committed, startHarness } from '../test/proxy/harness';

const ROUNDS = Number(process.env.ROUNDS ?? 300);
const OUT = process.env.TRIAL_OUT ?? 'bench/results/trial.txt';

it('trial', async () => {
  const h = await startHarness();
  const db = h.t.sqlite;
  const hasBatches = (db.prepare("select count(*) from sqlite_master where name = 'session_batches'").pluck().get() as number) > 0;
  const size = () => (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number) - (db.pragma('freelist_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number);
  const stored = () => {
    const s = db.prepare('select coalesce(sum(length(segments)), 0) from requests').pluck().get() as number;
    const o = db.prepare('select coalesce(sum(length(outcome)), 0) from reconciliations').pluck().get() as number;
    const b = hasBatches ? (db.prepare('select coalesce(sum(length(entry)), 0) from session_batches').pluck().get() as number) : 0;
    return { s, o, b };
  };
  const changes = () => db.prepare('select total_changes()').pluck().get() as number;
  const { client, session, sdk } = await startCodingAgent(h);
  const size0 = size();
  const lines: string[] = [];
  // Each round's two calls, the SDK's wall time from the request to the parsed answer, averaged (the wait for the
  // ask's group commit and the bookkeeping between them left out).
  const callMs: Array<{ round: number; ms: number }> = [];
  let last = '';
  for (let i = 1; i <= ROUNDS; i++) {
    const before = { st: stored(), c: changes() };
    const t0 = performance.now();
    const ask = await sdk.messages.create({ model: MODEL, max_tokens: 4096, thinking: THINKING, messages: [{ role: 'user', content: marked([{ type: 'text', text: `Step ${i}: use read_file on src/f${i}.ts` }]) }] });
    const t0a = performance.now();
    await committed(h);
    const mid = { st: stored(), c: changes() };
    const t1a = performance.now();
    const call = ask.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')!;
    h.clock.advance(10_000);
    const answer = await sdk.messages.create({ model: MODEL, max_tokens: 4096, thinking: THINKING, messages: [{ role: 'user', content: marked([{ type: 'tool_result', tool_use_id: call.id, content: file(i) }]) }] }).withResponse();
    last = answer.response.headers.get('x-ph-request-id')!;
    callMs.push({ round: i, ms: (performance.now() - t0 - (t1a - t0a)) / 2 });
    await committed(h);
    const after = { st: stored(), c: changes() };
    h.clock.advance(i === 150 ? 20 * 60_000 : 10_000);
    if ([10, 100, 300].includes(i) || i === ROUNDS) {
      const d = (a: typeof before, b: typeof before) => `segments ${b.st.s - a.st.s} B, outcome ${b.st.o - a.st.o} B, batches ${b.st.b - a.st.b} B, rows ${b.c - a.c}`;
      const t0 = performance.now();
      const got = await client.get(`/v1/requests/${last}`);
      const t1 = performance.now();
      const median = (f: () => unknown) => {
        const times: number[] = [];
        for (let k = 0; k < 15; k++) {
          const t = performance.now();
          f();
          times.push(performance.now() - t);
        }
        return times.sort((a, b) => a - b)[7]!.toFixed(2);
      };
      const row = h.t.store.getRequest(last)!;
      // The statements of a group commit of this request again (as a new id): its segments made compact, or not.
      const build = (h.t.store as unknown as { statementsFor(ops: unknown[]): unknown[] }).statementsFor.bind(h.t.store);
      // The outcome made compact (claude-sonnet-4-6: $3 per MTok, reads at 0.1), where the code has it.
      const compact = await import('../src/store/compact').catch(() => null);
      const outcomeTiming = compact ? `, outcome made compact ${median(() => compact.compactOutcome(row.outcome, { read: 0.1, input: 3 / 1_000_000 }))} ms (${JSON.stringify(compact.compactOutcome(row.outcome, { read: 0.1, input: 3 / 1_000_000 })).length} B)` : '';
      const timing = `${outcomeTiming.slice(2)}; store read ${median(() => h.t.store.getRequest(last))} ms, commit statements ${median(() => build([{ kind: 'request', row: { ...row, id: 'req_trial' }, inline: [], handles: [] }]))} ms`;
      lines.push(`round ${i}: ${timing}; ask: ${d(before, mid)}; answer: ${d(mid, after)}; GET request ${(t1 - t0).toFixed(1)} ms (${got.text.length} B); db ${(size() - size0) / 1e6} MB`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const calls = (from: number, to: number) => median(callMs.filter((c) => c.round >= from && c.round <= to).map((c) => c.ms)).toFixed(1);
  lines.push(`a call's wall time (median of the rounds' two calls' mean): rounds 1-10 ${calls(1, 10)} ms, ${Math.max(1, ROUNDS - 9)}-${ROUNDS} ${calls(ROUNDS - 9, ROUNDS)} ms`);
  const st = stored();
  const version = (await client.get(`/v1/handles/${session.id}`)).json.version;
  lines.push(`end: db grew ${((size() - size0) / 1e6).toFixed(1)} MB; segments ${(st.s / 1e6).toFixed(1)} MB, outcomes ${(st.o / 1e6).toFixed(1)} MB, batches ${(st.b / 1e6).toFixed(2)} MB; session ${JSON.stringify({ messages: version.message_count, bytes: version.bytes ?? version.size })}`);
  try {
    const tables = db.prepare("select name, sum(pgsize) as bytes from dbstat group by name order by bytes desc limit 8").all() as Array<{ name: string; bytes: number }>;
    lines.push(`tables: ${tables.map((t) => `${t.name} ${(t.bytes / 1e6).toFixed(2)} MB`).join(', ')}`);
  } catch (e) {
    lines.push(`no dbstat: ${String(e)}`);
  }
  mkdirSync(dirname(OUT), { recursive: true });
  appendFileSync(OUT, `${process.env.LABEL ?? ''}\n${lines.join('\n')}\n`);
  console.log(`${lines.join('\n')}\n(appended to ${OUT})`);
  await h.close();
}, 3_600_000);
