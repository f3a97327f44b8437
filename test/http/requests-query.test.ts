// GET /v1/requests over real HTTP, with any query a client can send: a page, or a 4xx problem naming each bad
// parameter; never a 5xx, never a parameter silently ignored (a filter it does not have would list every request).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, listen, type TestApp } from '../helpers/app';
import { mintSystem } from '../helpers/factories';
import { LIST_SQL } from '../../src/store/sqlite-store';

let t: TestApp;
let server: Awaited<ReturnType<typeof listen>>;
let me: ReturnType<TestApp['tenant']>;
let ids: string[];
beforeAll(async () => {
  t = createTestApp();
  server = await listen(t.app);
  me = t.tenant();
  const sys = await mintSystem(me.client, 'Listed.');
  ids = [];
  for (let i = 0; i < 3; i++) {
    const r = await me.client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 5, prefix: [sys.id], messages: [{ role: 'user', content: `q${i}` }] } });
    ids.push(r.json.request_id);
    t.clock.advance(1000);
  }
  await t.services.writes.idle();
});
afterAll(async () => {
  await server.close();
  t.close();
});

/** A page of requests, or a problem. */
interface Answer {
  requests: Array<{ id: string }>;
  next_cursor: string | null;
  code: string;
  errors: Array<{ pointer: string; detail: string }>;
}

const get = async (query: string) => {
  const res = await fetch(`${server.base}/v1/requests?${query}`, { headers: { authorization: `Bearer ${me.key}` } });
  return { status: res.status, type: res.headers.get('content-type'), json: (await res.json()) as Answer };
};

describe('GET /v1/requests query parameters', () => {
  it('refuses a parameter it does not take, naming it, rather than listing every request', async () => {
    for (const name of ['status', 'since', 'models', 'offset', 'page']) {
      const res = await get(`${name}=x&limit=1`);
      const hint = name === 'models' ? '; did you mean model?' : '';
      expect([res.status, res.json.code, res.json.errors], name).toEqual([422, 'invalid_request', [{ pointer: `query:${name}`, detail: `not a parameter of GET /v1/requests${hint}` }]]);
    }
  });

  it('states its limit, and pages with a cursor that holds as requests arrive', async () => {
    expect((await get('limit=501')).json.errors).toEqual([{ pointer: 'query:limit', detail: 'limit must be a whole number from 1 to 500' }]);
    const first = await get('limit=2');
    expect(first.json.requests.map((r) => r.id)).toEqual([ids[2], ids[1]]);
    // A request rendered since lists first, and does not move the next page.
    await me.client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 5, messages: [{ role: 'user', content: 'later' }] } });
    await t.services.writes.idle();
    const next = await get(`limit=2&cursor=${first.json.next_cursor}`);
    expect([next.json.requests.map((r) => r.id), next.json.next_cursor]).toEqual([[ids[0]], null]);
    expect((await get('limit=500')).json.requests).toHaveLength(4);
  });

  it('answers any query with a page or a 4xx problem whose every error names a query parameter', async () => {
    const name = fc.constantFrom('handle', 'limit', 'cursor', 'status', 'Limit', 'from', 'to', 'class', 'model', '');
    const value = fc.oneof(
      fc.string(),
      fc.constantFrom('0', '1', '50', '500', '501', '1e2', '-1', ' 5', 'art_' + 'a'.repeat(21), `1767225600000_${'req_' + 'a'.repeat(21)}`, '%zz', '%', '2026-01-01', '2027-01-01', '2025-12-31T23:00:00-02:00', '1767225600000', '1767225600', 'drift', 'lookback', 'claude-sonnet-4-5'),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(name, value, fc.boolean()), { maxLength: 4 }), async (params) => {
        // Encoded, or as typed (a stray % or & included).
        const query = params.map(([n, v, raw]) => `${n}=${raw ? v : encodeURIComponent(v)}`).join('&');
        const res = await get(query);
        expect([200, 404, 422], query).toContain(res.status);
        if (res.status === 200) {
          expect(Array.isArray(res.json.requests), query).toBe(true);
          return;
        }
        expect(res.type, query).toBe('application/problem+json');
        expect(['invalid_request', 'not_found'], query).toContain(res.json.code);
        expect(res.json.errors.length, query).toBeGreaterThan(0);
        for (const e of res.json.errors) expect(e.pointer, query).toMatch(/^query:/);
      }),
      { numRuns: 150 },
    );
  });

  it('reads a range of an index per tenant (and handle), in its order: no scan, no sort', () => {
    const plan = (sql: string, more: object = {}) => (t.sqlite.prepare(`explain query plan ${sql}`).all({ tenantId: 'ten_x', handle: 'art_x', from: 0, at: 1, id: 'req_x', limit: 5, ...more }) as Array<{ detail: string }>).map((r) => r.detail);
    expect(plan(LIST_SQL.tenant)).toEqual(['SEARCH request_starts USING COVERING INDEX request_starts_tenant (tenant_id=? AND started_at>? AND started_at<?)']);
    expect(plan(LIST_SQL.handle)).toEqual(['SEARCH request_handles USING COVERING INDEX request_handles_started (tenant_id=? AND handle_id=? AND started_at>? AND started_at<?)']);
    // The filters an index holds (0019): the calls through no handle (a partial index of those calls alone), a rare
    // class's on '*', a handle or a type.
    expect(plan(LIST_SQL.noHandle)).toEqual(['SEARCH request_starts USING COVERING INDEX request_starts_no_handle (tenant_id=? AND started_at>? AND started_at<?)']);
    expect(plan(LIST_SQL.class, { cls: 'drift', within: '*' })).toEqual(['SEARCH request_classes USING COVERING INDEX sqlite_autoindex_request_classes_1 (tenant_id=? AND class=? AND within=? AND started_at>? AND started_at<?)']);
  });

  it('from and to list the requests whose call started on those whole UTC days, both included, newest start first, paged exhaustively', async () => {
    const other = t.tenant();
    const sys = await mintSystem(other.client, 'Listed by day.');
    // A week's log imported on its last day: twenty calls rendered then, minutes apart; sixteen reported with their
    // own starts over five days from 2026-03-01 (several at the same moment), four not reported (started when rendered).
    const day0 = Date.UTC(2026, 2, 1);
    const rendered: Array<{ id: string; at: number }> = [];
    t.clock.set(day0 + 4 * 86_400_000 + 20 * 3_600_000);
    for (let k = 0; k < 20; k++) {
      const r = await other.client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 5, prefix: [sys.id], messages: [{ role: 'user', content: `q${k}` }] } });
      rendered.push({ id: r.json.request_id, at: t.clock.now() });
      t.clock.advance(60_000);
    }
    const records = rendered.slice(0, 16).map((r, k) => {
      r.at = day0 + (k % 5) * 86_400_000 + ((k >> 1) % 3) * 6 * 3_600_000;
      return { request_id: r.id, usage: { input_tokens: 20, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, output_tokens: 1 }, started_at: r.at, finished_at: r.at + 1000 };
    });
    const batch = await other.client.post('/v1/usage/batch', { records });
    expect([batch.status, batch.json.accepted], batch.text).toEqual([200, 16]);
    await t.services.writes.idle();
    const newestFirst = [...rendered].sort((a, b) => b.at - a.at || (a.id < b.id ? 1 : -1));
    expect(new Set(newestFirst.map((r) => r.at)).size).toBeLessThan(16);
    const list = async (query: string) => {
      const res = await fetch(`${server.base}/v1/requests?${query}`, { headers: { authorization: `Bearer ${other.key}` } });
      return { status: res.status, json: (await res.json()) as Answer };
    };
    const day = (d: number) => new Date(day0 + d * 86_400_000).toISOString().slice(0, 10);
    await fc.assert(
      fc.asyncProperty(
        fc.option(fc.integer({ min: -1, max: 5 }), { nil: undefined }),
        fc.option(fc.integer({ min: -1, max: 5 }), { nil: undefined }),
        fc.integer({ min: 1, max: 7 }),
        fc.boolean(),
        fc.constantFrom('day', 'instant', 'ms'),
        async (from, to, limit, byHandle, form) => {
          // Any moment of a day stands for the whole day.
          const at = (d: number) => (form === 'day' ? day(d) : form === 'instant' ? `${day(d)}T13:45:00Z` : String(day0 + d * 86_400_000 + 86_399_999));
          const query = [from !== undefined ? `from=${at(from)}` : '', to !== undefined ? `to=${at(to)}` : '', `limit=${limit}`, byHandle ? `handle=${sys.id}` : ''].filter(Boolean).join('&');
          const first = await list(query);
          if (from !== undefined && from > (to ?? 4)) {
            expect([first.status, first.json.code, first.json.errors[0]?.pointer], query).toEqual([422, 'invalid_request', 'query:from']);
            return;
          }
          const expected = newestFirst.filter((r) => (from === undefined || r.at >= day0 + from * 86_400_000) && (to === undefined || r.at < day0 + (to + 1) * 86_400_000)).map((r) => r.id);
          const seen: string[] = [];
          let page = first;
          for (;;) {
            expect(page.status, query).toBe(200);
            seen.push(...page.json.requests.map((r) => r.id));
            if (!page.json.next_cursor) break;
            page = await list(`${query}&cursor=${page.json.next_cursor}`);
          }
          expect(seen, query).toEqual(expected);
        },
      ),
      { numRuns: 60 },
    );
    // Each line says when its call started (the list's order) and when it was rendered (the import).
    const lines = (await list('limit=500')).json.requests as unknown as Array<{ id: string; started_at: string | null; rendered_at: string }>;
    expect(lines.map((l) => l.id)).toEqual(newestFirst.map((r) => r.id));
    for (const l of lines.slice(0, 4)) expect(l.started_at).toBeNull();
    for (const l of lines.slice(4)) expect(Date.parse(l.started_at!)).toBe(rendered.find((r) => r.id === l.id)!.at);
    // Today (the clock's) is the default end: a from after it is refused, as by the reports.
    t.clock.set(day0 + 2 * 86_400_000);
    expect((await list(`from=${day(3)}`)).json.errors).toEqual([{ pointer: 'query:from', detail: 'from is after to (today, when to is not given)' }]);
  });
});
