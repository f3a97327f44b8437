// `report --csv` and `requests --csv` as child processes: stdout is the API's CSV export byte for byte.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCliHarness, type CliHarness } from '../helpers/cli';
import { seed, type Seeded } from '../ui/seed';

let h: CliHarness;
let s: Seeded;
beforeAll(async () => {
  h = await startCliHarness('ph-cli-csv-');
  s = await seed(h.t);
});
afterAll(() => h.close());

/** The API's answer over the same loopback the CLI uses (`bytes` as sent: Response.text() drops a byte-order mark). */
async function api(path: string): Promise<{ text: string; bytes: Buffer; link: string | null }> {
  const res = await fetch(`${h.url}${path}`, { headers: { authorization: `Bearer ${s.key}`, accept: 'text/csv' } });
  expect(res.status, path).toBe(200);
  expect(res.headers.get('content-type'), path).toBe('text/csv; charset=utf-8');
  const bytes = Buffer.from(await res.arrayBuffer());
  return { text: bytes.toString(), bytes, link: res.headers.get('link') };
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

describe('the CLI writes the CSV exports', () => {
  it('report --csv and report <id> --csv print the API CSV; requests --csv a page, the next cursor on stderr', async () => {
    const [tenant, handle, versions, page, cursorPage, both] = await Promise.all([
      h.cli(['report', '--csv', '--from', '2025-12-01', '--model', 'claude-sonnet-4-5'], { key: s.key }),
      h.cli(['report', s.bundle.id, '--csv'], { key: s.key }),
      h.cli(['report', `${s.sys.id}@2`, '--csv', '--versions', '1'], { key: s.key }),
      h.cli(['requests', '--csv', '--limit', '2', '--handle', s.bundle.id], { key: s.key }),
      h.cli(['requests', '--csv', '--limit', '1', '--class', 'cold'], { key: s.key }),
      h.cli(['report', '--csv', '--json'], { key: s.key }),
    ]);
    for (const run of [tenant, handle, versions, page, cursorPage]) expect(run.code, run.err).toBe(0);
    expect(tenant.out).toBe((await api('/v1/reports?from=2025-12-01&model=claude-sonnet-4-5')).text);
    expect(tenant.err).toBe('');
    expect(handle.out).toBe((await api(`/v1/reports/handles/${s.bundle.id}`)).text);
    expect(versions.out).toBe((await api(`/v1/reports/handles/${s.sys.id}?versions=1`)).text);
    const first = await api(`/v1/requests?limit=2&handle=${s.bundle.id}`);
    expect(page.out).toBe(first.text);
    // The API's next page is the one the cursor on stderr names (the command's options with it, stdout only CSV).
    const cursor = new URL(/^<([^>]+)>/.exec(first.link!)![1]!, h.url).searchParams.get('cursor');
    expect(page.err).toBe(`more: --cursor ${cursor} --handle ${s.bundle.id} --limit 2 --csv\n`);
    const cold = await api('/v1/requests?limit=1&class=cold');
    expect(cursorPage.out).toBe(cold.text);
    const next = new URL(/^<([^>]+)>/.exec(cold.link!)![1]!, h.url).searchParams.get('cursor')!;
    expect(cursorPage.err).toBe(`more: --cursor ${next} --class cold --limit 1 --csv\n`);
    const second = await h.cli(['requests', '--csv', '--limit', '1', '--class', 'cold', '--cursor', next], { key: s.key });
    expect(second.out).toBe((await api(`/v1/requests?limit=1&class=cold&cursor=${next}`)).text);
    expect(second.out.split('\r\n')[0]).toBe(cold.text.split('\r\n')[0]);
    expect([both.code, both.err]).toEqual([2, expect.stringContaining('--csv or --json')]);
  });

  it('--bom: the API\'s CSV with ?bom=true, byte for byte; the next page\'s line keeps it; without --csv a usage error', async () => {
    const [tenant, handle, page, plain, alone, json] = await Promise.all([
      h.cli(['report', '--csv', '--bom', '--days'], { key: s.key }),
      h.cli(['report', s.sys.id, '--csv', '--bom'], { key: s.key }),
      h.cli(['requests', '--csv', '--bom', '--limit', '2'], { key: s.key }),
      h.cli(['report', '--csv'], { key: s.key }),
      h.cli(['report', '--bom'], { key: s.key }),
      h.cli(['requests', '--json', '--bom'], { key: s.key }),
    ]);
    for (const run of [tenant, handle, page, plain]) expect(run.code, run.err).toBe(0);
    expect(tenant.stdout.equals((await api('/v1/reports?days=true&bom=true')).bytes)).toBe(true);
    expect(tenant.stdout.subarray(0, 3).equals(BOM)).toBe(true);
    expect(handle.stdout.equals((await api(`/v1/reports/handles/${s.sys.id}?bom=true`)).bytes)).toBe(true);
    const first = await api('/v1/requests?limit=2&bom=true');
    expect(page.stdout.equals(first.bytes)).toBe(true);
    expect(page.stdout.subarray(0, 3).equals(BOM)).toBe(true);
    const cursor = new URL(/^<([^>]+)>/.exec(first.link!)![1]!, h.url).searchParams.get('cursor');
    expect(page.err).toBe(`more: --cursor ${cursor} --limit 2 --csv --bom\n`);
    // Without --bom, none: the bytes as before.
    expect(plain.stdout.subarray(0, 3).equals(BOM)).toBe(false);
    expect(plain.stdout.equals((await api('/v1/reports')).bytes)).toBe(true);
    for (const run of [alone, json]) {
      expect([run.code, run.out], run.err).toEqual([2, '']);
      expect(run.err).toContain('--bom is for --csv');
    }
  });

  it("an API error is the CLI's error message, nothing on stdout", async () => {
    const run = await h.cli(['report', 'art_000000000000000000000', '--csv'], { key: s.key });
    expect(run.code).toBe(1);
    expect(run.out).toBe('');
    expect(run.err).toContain('not_found');
  });
});
