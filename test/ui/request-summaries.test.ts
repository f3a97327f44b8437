import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app';
import { renderAnthropic } from '../helpers/scenario';
import { seed } from './seed';

// A handle page's recent requests (and GET /v1/requests) are shown from a summary stored with each reconciliation,
// not from its outcome, which lists every segment of the request (a long session's: thousands); a request not
// reconciled, from its line kept at render, not from its segments. Requests recorded before these were kept have
// none, and summaries of another shape are not read: their outcome (or segments) is read, and shows the same.

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const recentTable = (page: string) => /<h2 id="recent-requests">[\s\S]*?<\/table>/.exec(page)![0];

describe("a handle page's recent requests", () => {
  it('are read from the summaries, and show what the outcomes say: also for requests reconciled before summaries were kept', async () => {
    const s = await seed(t);
    // One rendered and never reported: listed without figures; one the provider refused: listed as failed.
    await renderAnthropic(s.client, { prefix: [s.bundle.id], messages: [{ role: 'user', content: 'no report yet' }] });
    t.clock.advance(1000);
    const refused = await renderAnthropic(s.client, { prefix: [s.bundle.id], messages: [{ role: 'user', content: 'overloaded' }] });
    await t.services.writes.idle();
    await t.services.requests.markFailed(refused.request_id, { startedAt: t.clock.now(), finishedAt: t.clock.now() + 5, usageRaw: { status: 529, error: {} } });
    const handles = [s.bundle.id, s.sys.id, s.doc.id];
    const show = async () => {
      const out: Record<string, { page: string; api: unknown }> = {};
      for (const h of [...handles, '']) {
        const api = (await s.client.get(`/v1/requests?limit=10${h ? `&handle=${h}` : ''}`)).json;
        out[h] = { page: h ? recentTable(await (await t.app.request(`/ui/handles/${h}`, { headers: { cookie: `ph_ui_key=${s.key}` } })).text()) : '', api };
      }
      return out;
    };
    const listed = (handleId: string) => t.store.listRequests({ tenantId: s.tenantId, handleId, limit: 10 }).rows;

    // Each reconciled request is listed by its summary: its outcome is not read; the others by their lines: their
    // segments are not read.
    const withSummaries = await show();
    const rows = listed(s.bundle.id);
    expect(rows.filter((r) => r.status === 'reconciled').length).toBeGreaterThanOrEqual(4);
    expect(rows.filter((r) => r.status !== 'reconciled').map((r) => r.status)).toEqual(['failed', 'rendered']);
    for (const r of rows) expect([r.status, r.outcome, !!r.summary, r.segments]).toEqual([r.status, null, r.status === 'reconciled', null]);
    const failed = (withSummaries['']!.api as { requests: Array<{ id: string; status: string; started_at: string; handles: string[] }> }).requests[0]!;
    expect(failed).toMatchObject({ id: refused.request_id, status: 'failed', started_at: new Date(t.clock.now()).toISOString(), handles: [s.bundle.id, ...(await s.client.get(`/v1/handles/${s.bundle.id}`)).json.version.members.map((m: string) => m.split('@')[0])] });

    // The figures are the outcome's: each handle's tokens by class, as the request's own outcome gives them.
    for (const h of handles) {
      const requests = (withSummaries[h]!.api as { requests: Array<{ id: string; classes: Record<string, number>; drift: boolean; capture: string | null }> }).requests;
      for (const r of requests) {
        const { outcome } = (await s.client.get(`/v1/requests/${r.id}`)).json;
        const expected: Record<string, number> = {};
        for (const seg of outcome?.segments ?? [])
          if (seg.source !== 'inline' && seg.path.some((ref: string) => ref.startsWith(`${h}@`)))
            for (const [c, n] of Object.entries(seg.classes as Record<string, number>)) if (n > 0) expected[c] = (expected[c] ?? 0) + n;
        expect(r.classes, `${h} ${r.id}`).toEqual(expected);
        expect([r.capture, r.drift]).toEqual([outcome?.capture ?? null, !!outcome?.drift]);
      }
    }
    // The lists hold what the page shows differently: a drift, a capture unknown, a request not reconciled.
    expect(withSummaries[s.sys.id]!.page).toContain('data-drift-flag');
    expect(withSummaries[s.bundle.id]!.page).toContain('(capture unknown)');
    expect(withSummaries[s.bundle.id]!.page).toContain('<td>rendered</td>');

    // Summaries of another shape (written by a later version of the service, or an earlier one) are not read: the
    // outcome is, and the pages and the API show exactly the same.
    t.sqlite.exec(`update request_summaries set version = version + 1, summary = '{"capture":"another shape"}'`);
    for (const r of listed(s.bundle.id)) expect([r.outcome !== null, r.summary]).toEqual([r.status === 'reconciled', null]);
    expect(await show()).toEqual(withSummaries);

    // Reconciled before summaries were kept (as every request is on a database migrated from before them): the
    // outcome is read, and the pages and the API show exactly the same.
    t.sqlite.exec('delete from request_summaries');
    for (const r of listed(s.bundle.id)) expect([r.outcome !== null, r.summary]).toEqual([r.status === 'reconciled', null]);
    expect(await show()).toEqual(withSummaries);

    // Rendered before lines were kept: the request's row is read (its status, its start, its segments), the same.
    t.sqlite.exec('delete from request_lines');
    for (const r of listed(s.bundle.id)) expect([r.status, r.segments !== null]).toEqual([r.status, r.status !== 'reconciled']);
    expect(await show()).toEqual(withSummaries);
  });
});
