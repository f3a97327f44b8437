import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientFor, createTestApp } from '../helpers/app';
import { FakeClock } from '../helpers/clock';
import { LONG_SYSTEM, anthropicUsage } from '../helpers/scenario';

// A random agent history: gaps between turns, whether an inline timestamp precedes the
// bundle, how much of the prompt the provider says it read, and how much of the rest it wrote.
const step = fc.record({
  gapSeconds: fc.constantFrom(5, 30, 200, 290, 310, 900),
  stamped: fc.boolean(),
  readFraction: fc.constantFrom(0, 0.3, 1, 1.2),
  writeFraction: fc.constantFrom(0, 0.5, 1),
  reported: fc.boolean(),
  // The provider's count against our estimate: its read and write ends then fall near, not on, segment ends.
  skew: fc.constantFrom(1, 0.96, 1.05),
  // Reported without times after the next call was rendered, as a queue worker would: its first byte unknown.
  late: fc.boolean(),
});

type Step = { gapSeconds: number; stamped: boolean; readFraction: number; writeFraction: number; reported: boolean; skew: number; late: boolean };

async function run(history: Step[], file: string, restartAt: number | null) {
  const clock = new FakeClock();
  let app = createTestApp({ databasePath: file, clock });
  const { key } = app.tenant();
  let client = clientFor(app.app, key);
  const sys = (await client.post('/v1/artifacts', { kind: 'system', content: LONG_SYSTEM })).json.id as string;
  const invariants: Array<() => void> = [];
  let pending: (() => Promise<void>) | null = null;
  for (const [i, s] of history.entries()) {
    if (i === restartAt && !pending) {
      // A restart: the scope's simulated cache is rebuilt by replaying what was committed.
      app.close();
      app = createTestApp({ databasePath: file, clock });
      client = clientFor(app.app, key);
    }
    clock.advance(s.gapSeconds * 1000);
    const system = s.stamped ? [{ type: 'text', text: `now ${i}` }, { type: 'handle', ref: sys }] : [{ type: 'handle', ref: sys }];
    const r = (await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', system, messages: [{ role: 'user', content: `q${i}` }] } })).json;
    const total = Math.round((r.segments[r.segments.length - 1].token_end as number) * s.skew);
    const read = Math.min(total, Math.round(r.prediction.read_tokens * s.readFraction * s.skew));
    const written = Math.floor((total - read) * s.writeFraction);
    const usage = s.reported ? anthropicUsage(total, read, written) : { input_tokens: total, output_tokens: 3 };
    const times = { started_at: clock.now(), first_byte_at: clock.now() + 300, finished_at: clock.now() + 600 };
    const send = async () => {
      const res = await client.post('/v1/usage', { request_id: r.request_id, usage, ...(s.late ? {} : times) });
      expect(res.status, res.text).toBe(201);
      check(res.json.outcome);
    };
    if (pending) await pending();
    pending = null;
    if (s.late && i < history.length - 1) pending = send;
    else await send();
  }
  // Every check of one report's outcome.
  function check(outcome: any) {
    invariants.push(() => {
      let captured = 0;
      for (const seg of outcome.segments) {
        const sum = Object.values(seg.classes as Record<string, number>).reduce((a, b) => a + b, 0);
        expect(sum).toBe(seg.end - seg.start);
        captured += seg.classes.captured + seg.classes.bonus;
        // Perfect capture never costs more than what was paid: leaked savings are never negative.
        expect(seg.cost.perfect).toBeLessThanOrEqual(seg.cost.actual + 1e-12);
      }
      if (outcome.capture === 'reported') expect(captured).toBeLessThanOrEqual(outcome.provider.read);
      else expect(captured).toBe(0);
    });
  }
  const report = (await client.get(`/v1/reports/handles/${sys}`)).json;
  app.close();
  // Every referenced token is in exactly one class; opportunity is what recurred, the rest cold or read anyway (bonus).
  const classes = ['captured', 'bonus', 'unconfirmed', 'unknown', 'cold', 'drift', 'expired', 'concurrent', 'below_minimum', 'no_breakpoint', 'lookback'] as const;
  const t = report.tokens as Record<(typeof classes)[number] | 'referenced' | 'opportunity', number>;
  expect(classes.reduce((a, c) => a + t[c], 0)).toBe(t.referenced);
  expect(t.referenced - t.opportunity - t.cold).toBeGreaterThanOrEqual(0);
  expect(t.referenced - t.opportunity - t.cold).toBeLessThanOrEqual(t.bonus);
  invariants.forEach((check) => check());
  // Ids differ between runs; everything else must not.
  return JSON.parse(JSON.stringify(report).replaceAll(sys, 'SYS').replace(/req_[0-9A-Za-z]{21}/g, 'REQ'));
}

describe('reconciliation properties', () => {
  it('every segment\'s classes sum to its tokens, captured never exceeds the read, nothing leaks a negative amount, and a replay gives the same report', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 2, maxLength: 8 }), fc.nat(), async (history, cut) => {
        const dir = mkdtempSync(join(tmpdir(), 'ph-replay-'));
        try {
          const straight = await run(history, join(dir, 'a.db'), null);
          const restarted = await run(history, join(dir, 'b.db'), 1 + (cut % (history.length - 1)));
          expect(restarted).toEqual(straight);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 15 },
    );
  });
});
