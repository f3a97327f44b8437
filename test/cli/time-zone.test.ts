// A tenant's time zone as operators set and read it: PH_TIME_ZONE at the first start, `tenants create/rename
// --time-zone` online and --offline, the zone in `tenants` and in `report --days`; the service as a child process.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, runNode, startService } from '../helpers/processes';
import { startCliHarness } from '../helpers/cli';
import { clientFor } from '../helpers/app';
import { mintSystem } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM } from '../helpers/scenario';

const ADMIN_KEY = 'an-operator-admin-key-7890';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ph-tz-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('time zones from the command line', () => {
  it('PH_TIME_ZONE: a bad zone is refused at start; a good one is the default tenant\'s; tenants --offline shows, sets and refuses zones', async () => {
    await expect(startService(join(dir, 'bad'), { PH_LOG: 'off', PH_TIME_ZONE: 'Mars/Olympus' })).rejects.toThrow(/PH_TIME_ZONE: is not a time zone: give an IANA time zone name, such as America\/Los_Angeles/);

    const data = join(dir, 'kolkata');
    const service = await startService(data, { PH_LOG: 'off', PH_TIME_ZONE: 'Asia/Kolkata' });
    expect(await service.stop()).toBe(0);
    const offline = (args: string[]) => runNode([BIN, 'tenants', ...args, '--offline', '--data-dir', data]);
    const listed = await offline([]);
    expect(listed.code, listed.err).toBe(0);
    expect(listed.out).toMatch(/^tenant\s+name\s+time zone\s+key/);
    expect(listed.out).toMatch(/ten_\w+\s+default\s+Asia\/Kolkata\s+key_/);

    const made = await offline(['create', 'la team', '--time-zone', 'america/los_angeles']);
    expect(made.code, made.err).toBe(0);
    expect(made.out).toContain('zone     America/Los_Angeles\n');
    const id = /^tenant {3}(ten_\w+)/.exec(made.out)![1]!;
    const json = JSON.parse((await offline(['--json'])).out) as { tenants: Array<{ id: string; time_zone: string }> };
    expect(json.tenants.find((x) => x.id === id)?.time_zone).toBe('America/Los_Angeles');
    const changed = await offline(['rename', id, '--time-zone', 'europe/london']);
    expect([changed.code, changed.out]).toEqual([0, `changed ${id}: time zone Europe/London\n`]);
    const bad = await offline(['rename', id, '--time-zone', 'Mars/Olympus']);
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/invalid_request: "Mars\/Olympus" is not a time zone: give an IANA time zone name, such as America\/Los_Angeles/);
    const misplaced = await offline(['list', '--time-zone', 'UTC']);
    expect([misplaced.code, misplaced.err]).toEqual([2, expect.stringContaining('--time-zone is for tenants create and tenants rename')]);
  });

  it("online: a tenant created in Los Angeles; report --days names its days and zone; its zone fixed once a call is reconciled", async () => {
    const service = await startService(join(dir, 'online'), { PH_LOG: 'off', PH_ADMIN_KEY: ADMIN_KEY });
    try {
      const cli = (args: string[], env: Record<string, string> = {}) => runNode([BIN, ...args], { PH_URL: service.url, PH_ADMIN_KEY: ADMIN_KEY, ...env });
      const made = await cli(['tenants', 'create', 'west', '--time-zone', 'America/Los_Angeles', '--json']);
      expect(made.code, made.err).toBe(0);
      const { tenant, api_key: key } = JSON.parse(made.out) as { tenant: string; api_key: string };
      const api = async (path: string, body: unknown) =>
        (await fetch(`${service.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })).json() as Promise<any>;
      const sys = await api('/v1/artifacts', { kind: 'system', content: LONG_SYSTEM });
      const r = await api('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', prefix: [sys.id], messages: [{ role: 'user', content: 'hi' }] } });
      const u = await api('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(r.segments.at(-1).token_end, 0, 100) });
      expect(u.duplicate).toBe(false);
      // Today in Los Angeles, as the service counts it (a run near midnight: the day the call was made, read after it).
      const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'America/Los_Angeles' }).format(new Date());
      const report = await cli(['report', '--days', '--from', today, '--to', today], { PH_API_KEY: key });
      expect(report.code, report.err).toBe(0);
      // The range line names the tenant's days first, then their instants (its day's end is the next UTC date's morning).
      const { range } = JSON.parse((await cli(['report', '--from', today, '--to', today, '--json'], { PH_API_KEY: key })).out) as { range: { from: string; to: string } };
      expect(range.to.slice(0, 10)).not.toBe(today);
      expect(report.out).toContain(`range ${today} .. ${today} (whole days in America/Los_Angeles: ${range.from} .. ${range.to})   model all\n`);
      const open = await cli(['report'], { PH_API_KEY: key });
      expect(open.out).toContain(`range start .. ${today} (whole days in America/Los_Angeles: to ${range.to})   model all\n`);
      expect(report.out).toMatch(new RegExp(`by day \\(America/Los_Angeles\\)\\n.*\\n-[- ]*\\n${today} +1 `));
      const listed = await cli(['tenants']);
      expect(listed.out).toMatch(new RegExp(`${tenant}\\s+west\\s+America/Los_Angeles`));
      const fixed = await cli(['tenants', 'rename', tenant, '--time-zone', 'UTC']);
      expect(fixed.code).not.toBe(0);
      expect(fixed.err).toContain('time_zone_fixed');
    } finally {
      await service.stop();
    }
  });

  it("import run again skips the calls it recorded, for a tenant whose day of them is not UTC's", async () => {
    const h = await startCliHarness('ph-tz-import-');
    try {
      const issued = h.t.services.tenants.createTenant('west importer', 'America/Los_Angeles');
      const client = clientFor(h.t.app, issued.api_key);
      const sys = await mintSystem(client, `${LONG_SYSTEM} imported`);
      // 06:00 UTC on 2026-01-01 (the fake clock's day) is 22:00 on 2025-12-31 in Los Angeles.
      const line = JSON.stringify({
        format: 'openai-chat',
        request: { model: 'gpt-4.1', prefix: [sys.id], messages: [{ role: 'user', content: 'question' }] },
        usage: { prompt_tokens: 2000, completion_tokens: 1, total_tokens: 2001, prompt_tokens_details: { cached_tokens: 0 } },
        started_at: Date.UTC(2026, 0, 1, 6),
      });
      const path = h.file('west.jsonl', `${line}\n`);
      const first = await h.cli(['import', path], { key: issued.api_key });
      expect(first.out, first.err).toContain('west.jsonl: 1 line, 1 accepted, 0 rejected');
      const again = await h.cli(['import', path], { key: issued.api_key });
      expect(again.out, again.err).toContain('west.jsonl: 1 line, 0 accepted, 0 rejected, 1 already imported');
      expect((await client.get('/v1/reports?from=2025-12-31&to=2025-12-31')).json.requests).toBe(1);
    } finally {
      await h.close();
    }
  });
});
