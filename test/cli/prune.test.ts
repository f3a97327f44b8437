// `prefix-handles prune` as operators run it: the CLI entry as a child process, with --offline on a database file
// written by the service's own code (its clock a year back: its requests are old), and through the admin API.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app';
import { BIN, runNode, startService } from '../helpers/processes';
import { FakeClock } from '../helpers/clock';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';

const ADMIN_KEY = 'an-operator-admin-key-4567';

const run = (args: string[], env: Record<string, string> = {}) => runNode([BIN, ...args], env);
const start = startService;

/** A data directory whose database holds `reported` reconciled calls and one call never reported, all a year old. */
async function oldHistory(data: string, reported: number): Promise<{ ids: string[]; lost: string; key: string }> {
  mkdirSync(data, { recursive: true });
  const t = createTestApp({ databasePath: join(data, 'prefix-handles.db'), clock: new FakeClock(Date.now() - 365 * 86_400_000), config: { scopeSnapshotEvery: 2 } });
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
    expect(offline.out).toMatch(/^pruned 1 request rendered before \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, in 1 batch\nkept 4 old enough but still needed/);

    const service = await start(data, { PH_ADMIN_KEY: ADMIN_KEY, PH_LOG: 'json' });
    try {
      const gone = await fetch(`${service.url}/v1/requests/${lost}`, { headers: { authorization: `Bearer ${key}` } });
      expect([gone.status, ((await gone.json()) as { code: string }).code]).toEqual([404, 'request_pruned']);
      expect((await fetch(`${service.url}/v1/requests/${ids[0]}`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
      const online = await run(['prune', '--older-than', '30d', '--json'], { PH_URL: service.url, PH_ADMIN_KEY: ADMIN_KEY });
      expect(online.code, online.err).toBe(0);
      expect(JSON.parse(online.out)).toMatchObject({ pruned: 0, kept: 4, batches: 1 });
      // A tenant's key is not the admin key.
      expect((await run(['prune', '--older-than', '30d', '--key', key], { PH_URL: service.url })).code).toBe(1);
      // One log line per run.
      await new Promise((r) => setTimeout(r, 100));
      expect(service.output()).toMatch(/"msg":"pruned requests","before":"[^"]+","pruned":0,"kept":4,"batches":1/);
    } finally {
      expect(await service.stop()).toBe(0);
    }
  }, 60_000);
});
