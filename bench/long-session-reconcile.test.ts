// The reconciliation side of the README's 300-round trial (Sessions: "What a long session costs the service"), timed:
// per call, the reconciler's work on the report (attribution, cache simulation, classification, rollup deltas) and its
// group commit (building the statements: rollups summed, the outcome made compact; running them), and the rows the
// commit writes. Medians over the ten rounds up to 10, 100 and 300 (both calls of each). Not part of `npm test`:
//   npx vitest run -c bench/reconcile-trial.config.ts    (ROUNDS=300, RECONCILE_OUT=… for another file than bench/results/reconcile-trial.txt, LABEL=… to change)
import type Anthropic from '@anthropic-ai/sdk';
import { it } from 'vitest';
import { dirname } from 'node:path';
import { appendFileSync, mkdirSync } from 'node:fs';
import { Reconciler } from '../src/domain/reconcile/reconciler';
import { SqliteStore } from '../src/store/sqlite-store';
import { file, marked, MODEL, startCodingAgent, THINKING, type Block } from './coding-agent';
import { committed, startHarness } from '../test/proxy/harness';

const ROUNDS = Number(process.env.ROUNDS ?? 300);
const OUT = process.env.RECONCILE_OUT ?? 'bench/results/reconcile-trial.txt';

type Timed = { prepare: number[]; build: number[]; commit: number[]; rows: number[] };

/** Wraps a prototype method to time each call into `into` (when `when` holds for its arguments). */
function timeMethod(proto: object, name: string, into: () => number[], when: (args: unknown[]) => boolean = () => true): void {
  const p = proto as Record<string, (...a: unknown[]) => unknown>;
  const f = p[name]!;
  p[name] = function (this: unknown, ...args: unknown[]) {
    const t = performance.now();
    try {
      return f.apply(this, args);
    } finally {
      if (when(args)) into().push(performance.now() - t);
    }
  };
}

it('reconcile trial', async () => {
  let cur: Timed = { prepare: [], build: [], commit: [], rows: [] };
  const reconciles = (args: unknown[]) => (args[0] as Array<{ kind: string }>).some((op) => op.kind === 'ingest');
  timeMethod(Reconciler.prototype, 'prepare', () => cur.prepare);
  timeMethod(SqliteStore.prototype, 'statementsFor', () => cur.build, reconciles);
  timeMethod(SqliteStore.prototype, 'writeBatch', () => cur.commit, reconciles);
  const h = await startHarness();
  const db = h.t.sqlite;
  const changes = () => db.prepare('select total_changes()').pluck().get() as number;
  const { sdk } = await startCodingAgent(h);
  const lines: string[] = [];
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const at = [10, 100, 300, ROUNDS];
  for (let i = 1; i <= ROUNDS; i++) {
    if (at.some((r) => i === r - 9)) cur = { prepare: [], build: [], commit: [], rows: [] };
    let callId = '';
    for (const turn of ['ask', 'answer'] as const) {
      const before = changes();
      const content: Block[] = turn === 'ask' ? [{ type: 'text', text: `Step ${i}: use read_file on src/f${i}.ts` }] : [{ type: 'tool_result', tool_use_id: callId, content: file(i) }];
      const res = await sdk.messages.create({ model: MODEL, max_tokens: 4096, thinking: THINKING, messages: [{ role: 'user', content: marked(content) }] });
      await committed(h);
      cur.rows.push(changes() - before);
      if (turn === 'ask') callId = res.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')!.id;
      h.clock.advance(turn === 'answer' && i === 150 ? 20 * 60_000 : 10_000);
    }
    if (at.includes(i) && !lines.some((l) => l.startsWith(`round ${i}:`))) {
      const f = (xs: number[]) => median(xs).toFixed(2);
      lines.push(`round ${i}: reconcile ${f(cur.prepare)} ms, commit ${f(cur.commit)} ms (statements built in ${f(cur.build)} ms), rows ${median(cur.rows)} (medians of ${cur.prepare.length} calls)`);
    }
  }
  mkdirSync(dirname(OUT), { recursive: true });
  appendFileSync(OUT, `${process.env.LABEL ?? ''}\n${lines.join('\n')}\n`);
  console.log(`${lines.join('\n')}\n(appended to ${OUT})`);
  await h.close();
}, 3_600_000);
