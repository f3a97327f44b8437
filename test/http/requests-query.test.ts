// GET /v1/requests over real HTTP, with any query a client can send: a page, or a 4xx problem naming each bad
// parameter; never a 5xx, never a parameter silently ignored (a filter it does not have would list every request).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, listen, type TestApp } from '../helpers/app';
import { mintSystem } from '../helpers/factories';

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
    for (const name of ['status', 'from', 'model', 'offset', 'page']) {
      const res = await get(`${name}=x&limit=1`);
      expect([res.status, res.json.code, res.json.errors], name).toEqual([422, 'invalid_request', [{ pointer: `query:${name}`, detail: `unknown field "${name}"` }]]);
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
    const name = fc.constantFrom('handle', 'limit', 'cursor', 'status', 'Limit', '');
    const value = fc.oneof(fc.string(), fc.constantFrom('0', '1', '50', '500', '501', '1e2', '-1', ' 5', 'art_' + 'a'.repeat(21), `1767225600000_${'req_' + 'a'.repeat(21)}`, '%zz', '%'));
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
});
