// `prefix-handles prune` as operators run it: the CLI entry as a child process, with --offline on a database file
// written by the service's own code (its clock a year back: its requests are old), and through the admin API.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app';
import { BIN, runNode, startService } from '../helpers/processes';
import { FakeClock } from '../helpers/clock';
import { keptLine } from '../../src/cli/commands/prune';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';

const ADMIN_KEY = 'an-operator-admin-key-4567';

const run = (args: string[], env: Record<string, string> = {}) => runNode([BIN, ...args], env);
const start = startService;

/** A data directory whose database holds `reported` reconciled calls and one call never reported, all a year old. */
async function oldHistory(data: string, reported: number, ageMs = 365 * 86_400_000): Promise<{ ids: string[]; lost: string; key: string }> {
  mkdirSync(data, { recursive: true });
  const t = createTestApp({ databasePath: join(data, 'prefix-handles.db'), clock: new FakeClock(Date.now() - ageMs), config: { scopeSnapshotEvery: 2 } });
  const { client, key } = t.tenant();
  const sys = (await client.post('/v1/artifacts', { kind: 'system', content: LONG_SYSTEM })).json.id as string;
  const ids: string[] = [];
  for (let i = 0; i < reported; i++) {
    const r = await renderAnthropic(client, { prefix: [sys], messages: [{ role: 'user', content: `Question ${i}` }] });
    const total = promptTokens(r);
    await report(client, t, r, anthropicUsage(total, r.prediction.read_tokens, total - r.prediction.read_tokens));
    ids.push(r.request_id);
    t.clock.advance(30_000);
  }
  const lost = (await renderAnthropic(client, { prefix: [sys], messages: [{ role: 'user', content: 'never reported' }] })).request_id;
  await t.services.writes.idle();
  t.close();
  return { ids, lost, key };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ph-prune-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('prefix-handles prune', () => {
  it('--offline prunes the file and prints what went and what was kept; through the API the same; a bad age is a usage error', async () => {
    const data = join(dir, 'data');
    const { ids, lost, key } = await oldHistory(data, 4);
    const usage = await Promise.all([run(['prune', '--offline', '--data-dir', data]), run(['prune', '--older-than', '30', '--offline', '--data-dir', data]), run(['prune', '--older-than', '0d', '--offline', '--data-dir', data])]);
    for (const r of usage) expect(r.code, r.err).toBe(2);
    expect(usage[1]!.err).toContain("--older-than takes a number of days from 1 to 36500, written as 30d (got '30')");

    const offline = await run(['prune', '--older-than', '30d', '--offline', '--data-dir', data]);
    expect(offline.code, offline.err).toBe(0);
    // The never-reported call goes; of the four reconciled, all are within a day of their scope's latest call: kept.
    expect(offline.out).toMatch(
      /^pruned 1 request rendered before \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, in 1 batch\nkept 4 requests older than 30 days, still needed: 4 started within 24 h of their scope's latest call \(a drift is located against them\); nothing younger than 48 h is ever pruned \(twice the catalog's longest cache TTL, 24 h: a late report, or a write whose premium may still be read, must find its request\)\n$/,
    );

    const service = await start(data, { PH_ADMIN_KEY: ADMIN_KEY, PH_LOG: 'json' });
    try {
      const gone = await fetch(`${service.url}/v1/requests/${lost}`, { headers: { authorization: `Bearer ${key}` } });
      expect([gone.status, ((await gone.json()) as { code: string }).code]).toEqual([404, 'request_pruned']);
      expect((await fetch(`${service.url}/v1/requests/${ids[0]}`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
      const online = await run(['prune', '--older-than', '30d', '--json'], { PH_URL: service.url, PH_ADMIN_KEY: ADMIN_KEY });
      expect(online.code, online.err).toBe(0);
      expect(JSON.parse(online.out)).toMatchObject({ pruned: 0, kept: 4, kept_for_replay: 0, kept_for_drift: 4, kept_started_late: 0, floor_hours: 48, batches: 1 });
      // A tenant's key is not the admin key.
      expect((await run(['prune', '--older-than', '30d', '--key', key], { PH_URL: service.url })).code).toBe(1);
      // One log line per run.
      await new Promise((r) => setTimeout(r, 100));
      expect(service.output()).toMatch(/"msg":"pruned requests","before":"[^"]+","pruned":0,"kept":4,"batches":1/);
    } finally {
      expect(await service.stop()).toBe(0);
    }
  }, 60_000);

  it('an age under the 48 h floor says so: what it kept, from when, and why', async () => {
    const data = join(dir, 'young');
    // A day and a half old: past the day asked for, within the floor.
    const { lost } = await oldHistory(data, 2, 36 * 3_600_000);
    const r = await run(['prune', '--older-than', '1d', '--offline', '--data-dir', data]);
    expect(r.code, r.err).toBe(0);
    const [pruned, kept, rest] = r.out.split('\n');
    expect(pruned).toMatch(/^pruned 0 requests rendered before (\S+), in 1 batch$/);
    const before = /before (\S+),/.exec(pruned!)![1]!;
    // The horizon is the floor's, 48 h back, not the day asked for.
    expect(Math.abs(Date.parse(before) - (Date.now() - 48 * 3_600_000))).toBeLessThan(3_600_000);
    expect(kept).toBe(
      `kept every request rendered after ${before}: nothing younger than 48 h is pruned, whatever --older-than says (twice the catalog's longest cache TTL, 24 h: a late report, or a write whose premium may still be read, must find its request); and no older one`,
    );
    expect(rest).toBe('');
    const t = createTestApp({ databasePath: join(data, 'prefix-handles.db') });
    try {
      expect(t.store.requestExists(lost)).toBe(true);
    } finally {
      t.close();
    }
  }, 60_000);

  it("against an older service, whose answer has no reasons nor floor, prints that service's kept line, not 'NaN min'", () => {
    const older = { before: '2026-11-01T00:00:00.000Z', pruned: 3, batches: 1 };
    expect(keptLine({ ...older, kept: 2 }, 30)).toBe("kept 2 old enough but still needed (reconciled after their scope's snapshot, or within a cache TTL of its latest call)");
    expect(keptLine({ ...older, kept: 0 }, 1)).toBe('');
    // The current answer keeps its line.
    expect(keptLine({ ...older, kept: 2, kept_for_replay: 2, kept_for_drift: 0, kept_started_late: 0, floor_hours: 48 }, 30)).toMatch(/^kept 2 requests older than 30 days, still needed: 2 reconciled after .*nothing younger than 48 h is ever pruned/);
  });
});
