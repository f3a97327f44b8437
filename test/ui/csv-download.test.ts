// The dashboard's "Download CSV" links: beside the handle ranking and a handle's versions, each the API's CSV export
// of the page's period.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app';
import { rangeOf } from '../../src/http/ui/format';
import { seed } from './seed';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const ui = (path: string, key: string) => t.app.request(path, { headers: { cookie: `ph_ui_key=${key}` } });
/** The API's CSV export's bytes (Response.text() would drop a byte-order mark). */
const api = async (path: string, key: string) => Buffer.from(await (await t.app.request(path, { headers: { authorization: `Bearer ${key}`, accept: 'text/csv' } })).arrayBuffer());
const bytesOf = async (res: Response) => Buffer.from(await res.arrayBuffer());
/** The UTF-8 byte-order mark: a download is opened by a double click, and Excel reads UTF-8 names only after one. */
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

describe('Download CSV', () => {
  it("links the period's export from the overview and a handle's page; each is the API's CSV of that range, after a BOM", async () => {
    const s = await seed(t);
    for (const period of ['7d', 'all'] as const) {
      const from = rangeOf(period, t.clock.now()).from;
      const query = from === undefined ? '' : `?from=${day(from)}`;
      const overview = await (await ui(`/ui?period=${period}`, s.key)).text();
      expect(overview).toMatch(new RegExp(`<h2>Handles by leaked money <small><a href="/ui/reports.csv\\?period=${period}" data-csv download>Download CSV</a>`));
      const res = await ui(`/ui/reports.csv?period=${period}`, s.key);
      expect([res.status, res.headers.get('content-type')]).toEqual([200, 'text/csv; charset=utf-8']);
      expect(res.headers.get('content-disposition')).toBe(`attachment; filename="report_${from === undefined ? 'start' : day(from)}_${day(t.clock.now())}.csv"`);
      const body = await bytesOf(res);
      expect(body.subarray(0, 3).equals(BOM), period).toBe(true);
      expect(body.subarray(3).equals(await api(`/v1/reports${query}`, s.key)), period).toBe(true);
      expect(body.equals(await api(`/v1/reports${query}${query ? '&' : '?'}bom=true`, s.key)), period).toBe(true);

      const page = await (await ui(`/ui/handles/${s.sys.id}?period=${period}`, s.key)).text();
      expect(page).toContain(`<h2>Versions <small><a href="/ui/handles/${s.sys.id}/report.csv?period=${period}" data-csv download>Download CSV</a>`);
      const handle = await ui(`/ui/handles/${s.sys.id}/report.csv?period=${period}`, s.key);
      expect(handle.headers.get('content-type')).toBe('text/csv; charset=utf-8');
      const handleBody = await bytesOf(handle);
      expect(handleBody.subarray(0, 3).equals(BOM), period).toBe(true);
      expect(handleBody.subarray(3).equals(await api(`/v1/reports/handles/${s.sys.id}${query}`, s.key)), period).toBe(true);
      expect(handleBody.equals(await api(`/v1/reports/handles/${s.sys.id}${query}${query ? '&' : '?'}bom=true`, s.key)), period).toBe(true);
    }
    // Signed out: the sign-in page, not the figures; another tenant's handle: not found.
    const out = await t.app.request('/ui/reports.csv?period=7d');
    expect([out.status, out.headers.get('location')]).toEqual([303, expect.stringContaining('/ui/sign-in')]);
    const other = t.tenant();
    expect((await ui(`/ui/handles/${s.sys.id}/report.csv`, other.key)).status).toBe(404);
  });
});
