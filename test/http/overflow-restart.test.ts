// OpenAI's overflow past ~15 starts a minute of one prefix and prompt_cache_key (overflow.ts) is counted from the
// scope's calls: a restart of the service in the middle of a burst keeps the minute before it, whether the scope is
// replayed from its first call or restored from a snapshot and the calls after it. On a real database file, two
// service instances one after the other, through /v1/render and /v1/usage.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clientFor, createTestApp, type TestApp } from '../helpers/app';
import { FakeClock } from '../helpers/clock';
import { mintSystem } from '../helpers/factories';
import { LONG_SYSTEM, promptTokens, report, type Rendered } from '../helpers/scenario';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ph-overflow-restart-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const CALLS = 20;
const chatUsage = (total: number, cached: number) => ({ prompt_tokens: total, completion_tokens: 5, total_tokens: total + 5, prompt_tokens_details: { cached_tokens: cached } });

/**
 * 20 calls of one system prompt a second apart, the 16th read nothing (a machine that had not seen the prefix), the
 * service restarted before call `restartAt` (none: never). Each call's overflow and unconfirmed tokens.
 */
async function burst(name: string, restartAt: number | null, every: number): Promise<Array<[number | null, number]>> {
  const file = join(dir, `${name}.sqlite`);
  const clock = new FakeClock();
  const open = () => createTestApp({ databasePath: file, clock, config: { scopeSnapshotEvery: every } });
  let t: TestApp = open();
  const { key, client: first } = t.tenant();
  let client = first;
  const sys = await mintSystem(client, LONG_SYSTEM);
  const ids: string[] = [];
  for (let i = 0; i < CALLS; i++) {
    if (i === restartAt) {
      await t.services.writes.idle();
      t.close();
      t = open();
      client = clientFor(t.app, key);
    }
    const res = await client.post('/v1/render', { format: 'openai-chat', request: { model: 'gpt-4.1', prefix: [sys.id], messages: [{ role: 'user', content: 'Where is my invoice?' }] } });
    expect(res.status, res.text).toBe(200);
    const r: Rendered = res.json;
    await report(client, t, r, chatUsage(promptTokens(r), i === 0 || i === 15 ? 0 : 2048));
    ids.push(r.request_id);
    clock.advance(1000);
  }
  await t.services.writes.idle();
  const out: Array<[number | null, number]> = [];
  for (const id of ids) {
    const o = (await client.get(`/v1/requests/${id}`)).json.outcome;
    out.push([o.overflow?.starts ?? null, o.segments.reduce((n: number, s: { classes: Record<string, number> }) => n + (s.classes.unconfirmed ?? 0), 0)]);
  }
  t.close();
  return out;
}

describe('OpenAI overflow starts across a restart', () => {
  it('a burst split by a restart gives the outcomes of one without: replayed from the first call, or restored from a snapshot', async () => {
    const whole = await burst('whole', null, 0);
    // The 16th call is past 15 starts in the minute: its unconfirmed read is explained by the overflow.
    expect(whole[15]![0]).toBe(16);
    expect(whole[15]![1]).toBeGreaterThan(0);
    expect(whole.filter(([starts]) => starts !== null)).toHaveLength(1);
    // Restarted after 10 calls: the 6 after it alone would be 6 starts, no overflow.
    expect(await burst('replayed', 10, 0)).toEqual(whole);
    // Snapshot every 4 calls: restored from the 8th call's, then calls 9 and 10 replayed.
    expect(await burst('snapshot', 10, 4)).toEqual(whole);
    // Restored from a snapshot that covers every call before the restart.
    expect(await burst('snapshot-only', 12, 4)).toEqual(whole);
  });
});
