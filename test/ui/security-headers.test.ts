// Every dashboard answer carries the pages' security headers — the CSV downloads (a tenant's figures and handle
// names behind its cookie), the live event stream, the sign-in refusals and redirects too — and /docs, on the same
// origin, is never framed nor sniffed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app';
import { seed } from './seed';

let t: TestApp;
let s: Awaited<ReturnType<typeof seed>>;
beforeAll(async () => {
  t = createTestApp();
  s = await seed(t);
});
afterAll(() => t.close());

const ui = (path: string, init: RequestInit & { key?: string } = {}) =>
  t.app.request(path, { ...init, headers: { ...(init.key ? { cookie: `ph_ui_key=${init.key}` } : {}), ...(init.headers as Record<string, string>) } });

function expectGuarded(res: Response, label: string, cache = 'no-store') {
  expect(res.headers.get('x-content-type-options'), label).toBe('nosniff');
  expect(res.headers.get('content-security-policy'), label).toContain("frame-ancestors 'none'");
  expect(res.headers.get('content-security-policy'), label).toContain("default-src 'none'");
  expect(res.headers.get('referrer-policy'), label).toBe('no-referrer');
  expect(res.headers.get('cache-control'), label).toBe(cache);
}

describe('dashboard security headers', () => {
  it('are on the CSV downloads, which hold the tenant\'s names and figures behind its cookie', async () => {
    for (const path of ['/ui/reports.csv?period=all', `/ui/handles/${s.sys.id}/report.csv?period=all`]) {
      const res = await ui(path, { key: s.key });
      expect([res.status, res.headers.get('content-type')], path).toEqual([200, 'text/csv; charset=utf-8']);
      expectGuarded(res, path);
    }
  });

  it('are on the refusals and redirects of sign-in, a 404 of a foreign handle, and the event stream (which keeps no-cache)', async () => {
    const stranger = t.tenant();
    const answers: Array<[string, Response]> = [
      ['no cookie, a page', await ui('/ui')],
      ['no cookie, a fragment', await ui('/ui/fragments/overview')],
      ['no cookie, a CSV', await ui('/ui/reports.csv')],
      ['cross-site sign-in', await ui('/ui/sign-in', { method: 'POST', headers: { 'sec-fetch-site': 'cross-site' } })],
      ['cross-site sign-out', await ui('/ui/sign-out', { method: 'POST', headers: { 'sec-fetch-site': 'cross-site' } })],
      ['a ref redirect', await ui(`/ui/handles/${s.sys.id}@1`, { key: s.key })],
      ['a foreign CSV', await ui(`/ui/handles/${s.sys.id}/report.csv`, { key: stranger.key })],
    ];
    expect(answers.map(([, r]) => r.status)).toEqual([303, 401, 303, 403, 403, 303, 404]);
    for (const [label, res] of answers) expectGuarded(res, label);

    const abort = new AbortController();
    const events = await ui('/ui/events', { key: s.key, signal: abort.signal });
    expect(events.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expectGuarded(events, 'events', 'no-cache');
    abort.abort();
    await events.body?.cancel().catch(() => undefined);
  });
});

describe('/docs', () => {
  it('may not be framed by another site nor sniffed, its page and its assets', async () => {
    for (const path of ['/docs', '/docs/init.js', '/docs/swagger-ui.css']) {
      const res = await t.app.request(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-security-policy'), path).toBe("frame-ancestors 'none'");
      expect(res.headers.get('x-frame-options'), path).toBe('DENY');
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
    }
  });
});
