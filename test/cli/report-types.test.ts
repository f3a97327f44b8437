// `report --type`, `--by-type` and `--days` as child processes: the tenant report's handle types and days, which the
// API had (`?type=`, `?by_type=true`, `?days=true`) and the CLI could only reach through curl.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCliHarness, type CliHarness } from '../helpers/cli';
import { seed, type Seeded } from '../ui/seed';
import { tokens, usd } from '../../src/cli/table';

let h: CliHarness;
let s: Seeded;
beforeAll(async () => {
  h = await startCliHarness('ph-cli-report-types-');
  s = await seed(h.t);
});
afterAll(() => h.close());

async function api(path: string): Promise<Response> {
  const res = await fetch(`${h.url}${path}`, { headers: { authorization: `Bearer ${s.key}` } });
  expect(res.status, path).toBe(200);
  return res;
}

interface Row {
  requests: number;
  handles_total?: number;
  day?: string;
  money: { leaked_savings: number };
}

describe('report --type, --by-type and --days', () => {
  it('ask the API as its parameters do: the same JSON and CSV, and a table row per handle type and per day', async () => {
    const [csv, json, text, bundles] = await Promise.all([
      h.cli(['report', '--type', 'artifact', '--by-type', '--days', '--csv'], { key: s.key }),
      h.cli(['report', '--by-type', '--days', '--json'], { key: s.key }),
      h.cli(['report', '--by-type', '--days'], { key: s.key }),
      h.cli(['report', '--type', 'bundle', '--json'], { key: s.key }),
    ]);
    for (const run of [csv, json, text, bundles]) expect([run.code, run.err]).toEqual([0, '']);
    expect(csv.out).toBe(await (await api('/v1/reports?type=artifact&by_type=true&days=true&format=csv')).text());
    const body = (await (await api('/v1/reports?by_type=true&days=true')).json()) as { by_type: Record<string, Row>; days: Row[]; handles: Array<{ type: string }> };
    expect(JSON.parse(json.out)).toEqual(body);
    expect(JSON.parse(bundles.out)).toEqual(await (await api('/v1/reports?type=bundle')).json());
    expect(new Set(JSON.parse(bundles.out).handles.map((r: { type: string }) => r.type))).toEqual(new Set(['bundle']));

    // The table: a row per type (its handles, requests and leaked money as by_type has them), then per day.
    const lines = text.out.split('\n');
    const byType = lines.indexOf('by handle type (each type\'s handles added up)');
    const byDay = lines.indexOf('by day (UTC)');
    expect(byType).toBeGreaterThan(0);
    expect(byDay).toBeGreaterThan(byType);
    for (const [type, row] of Object.entries(body.by_type)) {
      const line = lines.slice(byType, byDay).find((l) => l.startsWith(`${type} `))!;
      expect(line, type).toBeDefined();
      const cells = line.trim().split(/\s+/);
      expect(cells.slice(0, 3), type).toEqual([type, tokens(row.handles_total!), tokens(row.requests)]);
      expect(line, type).toContain(usd(row.money.leaked_savings));
    }
    expect(body.days.length).toBeGreaterThan(0);
    for (const day of body.days) {
      const line = lines.slice(byDay).find((l) => l.startsWith(`${day.day} `))!;
      expect(line, day.day).toBeDefined();
      expect(line.trim().split(/\s+/).slice(0, 2), day.day).toEqual([day.day, tokens(day.requests)]);
    }
  });

  it('are usage errors on a handle report and for an unknown type (exit 2, nothing asked)', async () => {
    const runs = await Promise.all([
      h.cli(['report', s.bundle.id, '--days'], { key: s.key }),
      h.cli(['report', s.bundle.id, '--by-type'], { key: s.key }),
      h.cli(['report', s.bundle.id, '--type', 'bundle'], { key: s.key }),
      h.cli(['report', '--type', 'system'], { key: s.key }),
    ]);
    for (const run of runs) expect([run.code, run.out]).toEqual([2, '']);
    expect(runs[0]!.err).toContain('--days is for the tenant report');
    expect(runs[3]!.err).toContain("--type: one of artifact, bundle, session is expected, not 'system'");
  });
});
