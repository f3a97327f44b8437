import { afterEach, describe, expect, it, vi } from 'vitest';
import { ADMIN_KEY, createTestApp, type TestApp } from '../helpers/app';
import { mintSystem } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM } from '../helpers/scenario';

let t: TestApp;
afterEach(() => {
  vi.restoreAllMocks();
  t.close();
});

describe('metrics and logs', () => {
  it('serves Prometheus text with bounded labels: route patterns, never handle ids', async () => {
    t = createTestApp();
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    await client.get(`/v1/handles/${sys.id}/expand`);
    const r = (await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', prefix: [sys.id], messages: [{ role: 'user', content: 'x' }] } })).json;
    const total = r.segments[r.segments.length - 1].token_end;
    await client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(total, 0, 1000) });
    t.clock.advance(60_000);
    const r2 = (await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', prefix: [sys.id], messages: [{ role: 'user', content: 'y' }] } })).json;
    await client.post('/v1/usage', { request_id: r2.request_id, usage: anthropicUsage(total, r2.prediction.read_tokens, 0) });
    expect((await t.app.request('/metrics')).status).toBe(401);
    const res = await t.app.request('/metrics', { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    const text = await res.text();
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(text).toContain('ph_http_requests_total{method="GET",route="/v1/handles/:ref/expand",status="200"} 1');
    expect(text).toContain('ph_prompt_tokens_total{provider="anthropic",model="claude-sonnet-4-5",kind="written"} 1000');
    expect(text).toMatch(/ph_capture_rate\{tenant="ten_[0-9A-Za-z]+"\} 1\n/);
    expect(text).not.toMatch(/art_|bnd_|ses_|req_/);
  });

  it('counts each tenant\'s handle opportunity and capture in counters, so a capture rate is a rate() over any window and survives a restart', async () => {
    t = createTestApp();
    const series = async () =>
      (await (await t.app.request('/metrics', { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text()).split('\n').filter((l) => l.startsWith('ph_capture_tokens_total'));
    const run = async (read: boolean) => {
      const me = t.tenant();
      const sys = await mintSystem(me.client, LONG_SYSTEM);
      const request = (q: string) => me.client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', prefix: [sys.id], messages: [{ role: 'user', content: q }] } });
      const r1 = (await request('x')).json;
      const total = r1.segments[r1.segments.length - 1].token_end;
      await me.client.post('/v1/usage', { request_id: r1.request_id, usage: anthropicUsage(total, 0, 1000) });
      t.clock.advance(60_000);
      const r2 = (await request('y')).json;
      await me.client.post('/v1/usage', { request_id: r2.request_id, usage: anthropicUsage(total, read ? r2.prediction.read_tokens : 0, 0) });
      return { id: me.id, opportunity: r2.prediction.read_tokens as number };
    };
    const a = await run(true);
    const b = await run(false);
    expect(a.opportunity).toBeGreaterThan(1000);
    // Only a gauge "since start" before: a rate over the last hour could not be had, and a restart reset it to nothing.
    expect((await series()).sort()).toEqual(
      [
        `ph_capture_tokens_total{tenant="${a.id}",kind="opportunity"} ${a.opportunity}`,
        `ph_capture_tokens_total{tenant="${a.id}",kind="captured"} ${a.opportunity}`,
        `ph_capture_tokens_total{tenant="${b.id}",kind="opportunity"} ${b.opportunity}`,
        `ph_capture_tokens_total{tenant="${b.id}",kind="captured"} 0`,
      ].sort(),
    );
  });

  it("counts each tenant's leaked money by class, as the tenant report divides it: what drift cost in an hour is a rate() of one series", async () => {
    t = createTestApp();
    const me = t.tenant();
    const sys = await mintSystem(me.client, LONG_SYSTEM);
    const call = async (system: unknown, read: (r: { prediction: { read_tokens: number }; segments: Array<{ token_end: number }> }) => [number, number]) => {
      const r = (await me.client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', system, messages: [{ role: 'user', content: 'q' }] } })).json;
      const total = r.segments[r.segments.length - 1].token_end;
      const [cacheRead, written] = read(r);
      expect((await me.client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(total, cacheRead, written) })).status).toBe(201);
    };
    const handle = [{ type: 'handle', ref: sys.id }];
    const end = (r: { segments: Array<{ token_end: number }> }) => r.segments[r.segments.length - 2]!.token_end;
    await call(handle, (r) => [0, end(r)]);
    // Ten minutes on: expired, written again. Then a timestamp before it: drift, written again.
    t.clock.advance(10 * 60_000);
    await call(handle, (r) => [0, end(r)]);
    t.clock.advance(60_000);
    await call([{ type: 'text', text: `Now: ${new Date(t.clock.now()).toISOString()}` }, ...handle], (r) => [0, end(r)]);
    const series = (await (await t.app.request('/metrics', { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text()).split('\n').filter((l) => l.startsWith('ph_leaked_usd_total'));
    const byClass = Object.fromEntries(series.map((l) => [/class="(\w+)"/.exec(l)![1]!, Number(l.split(' ').at(-1))]));
    const report = (await me.client.get('/v1/reports')).json.money;
    expect(Object.keys(byClass).sort()).toEqual(['drift', 'expired']);
    for (const c of ['drift', 'expired']) {
      expect(byClass[c], c).toBeGreaterThan(0);
      expect(Math.abs(byClass[c]! - report.leaked_by_class[c]), c).toBeLessThanOrEqual(1.0001e-6);
    }
    expect(series.every((l) => l.includes(`tenant="${me.id}"`))).toBe(true);
    // A deleted tenant's series go with it: its id is not scraped again.
    const listed = (await (await t.app.request('/v1/tenants', { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as { tenants: Array<{ id: string; name: string }> };
    const name = listed.tenants.find((x) => x.id === me.id)!.name;
    const del = await t.app.request(`/v1/tenants/${me.id}?confirm=${encodeURIComponent(name)}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(del.status, await del.clone().text()).toBe(200);
    const after = await (await t.app.request('/metrics', { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    expect(after).not.toContain(me.id);
  });

  it('labels prompt tokens by the catalog entry, never by the model name a caller sent: made-up names are one "unknown" series', async () => {
    t = createTestApp();
    const { client } = t.tenant();
    for (const model of ['claude-sonnet-4-5-20250929', 'claude-made-up-1', 'claude-made-up-2', 'claude-made-up-3']) {
      const r = (await client.post('/v1/render', { format: 'anthropic', request: { model, messages: [{ role: 'user', content: 'x' }] } })).json;
      expect((await client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(100, 0, 0) })).status).toBe(201);
    }
    const text = await (await t.app.request('/metrics', { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    const uncached = text.split('\n').filter((l) => l.startsWith('ph_prompt_tokens_total') && l.includes('kind="uncached"'));
    // Each distinct name was a series of its own, kept for good: /metrics grew with every name a client made up.
    expect(uncached.sort()).toEqual([
      'ph_prompt_tokens_total{provider="anthropic",model="claude-sonnet-4-5",kind="uncached"} 100',
      'ph_prompt_tokens_total{provider="anthropic",model="unknown",kind="uncached"} 300',
    ]);
  });

  it('labels a vLLM server\'s tokens provider="vllm", though it answers in OpenAI\'s chat shape', async () => {
    t = createTestApp();
    const { client } = t.tenant();
    const usage = { prompt_tokens: 40, completion_tokens: 2, total_tokens: 42, prompt_tokens_details: { cached_tokens: 16 } };
    for (const [model, body] of [['vllm/support-bot', 'support-bot'], [undefined, 'gpt-4.1']] as const) {
      const r = (await client.post('/v1/render', { format: 'openai-chat', ...(model ? { model } : {}), request: { model: body, messages: [{ role: 'user', content: 'x' }] } })).json;
      expect((await client.post('/v1/usage', { request_id: r.request_id, usage })).status).toBe(201);
    }
    const text = await (await t.app.request('/metrics', { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    const read = text.split('\n').filter((l) => l.startsWith('ph_prompt_tokens_total') && l.includes('kind="read"'));
    // Labelled openai before: a self-hosted model's tokens were summed into OpenAI's in a dashboard by provider.
    expect(read.sort()).toEqual(['ph_prompt_tokens_total{provider="openai",model="gpt-4.1",kind="read"} 16', 'ph_prompt_tokens_total{provider="vllm",model="vllm",kind="read"} 16']);
  });

  it('counts the prompt tokens of a report without cache fields as kind="unknown", never as uncached', async () => {
    t = createTestApp();
    const { client } = t.tenant();
    // A vLLM server started without --enable-prompt-tokens-details: capture unknown, not a 0% hit.
    for (const details of [null, { cached_tokens: 32 }]) {
      const r = (await client.post('/v1/render', { format: 'openai-chat', model: 'vllm/support-bot', request: { model: 'support-bot', messages: [{ role: 'user', content: 'x' }] } })).json;
      const usage = { prompt_tokens: 40, completion_tokens: 2, total_tokens: 42, prompt_tokens_details: details };
      expect((await client.post('/v1/usage', { request_id: r.request_id, usage })).status).toBe(201);
    }
    const text = await (await t.app.request('/metrics', { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    const series = text.split('\n').filter((l) => l.startsWith('ph_prompt_tokens_total'));
    // Before, the unknown report's 40 tokens were uncached: a hit rate of read / (read + uncached) counted them as misses.
    expect(series.sort()).toEqual([
      'ph_prompt_tokens_total{provider="vllm",model="vllm",kind="read"} 32',
      'ph_prompt_tokens_total{provider="vllm",model="vllm",kind="uncached"} 8',
      'ph_prompt_tokens_total{provider="vllm",model="vllm",kind="unknown"} 40',
    ]);
  });

  it('logs one JSON line per request with the request id, and never a body or a key', async () => {
    t = createTestApp({ config: { log: 'json' } });
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const { client, key } = t.tenant();
    const minted = await client.post('/v1/artifacts', { kind: 'system', content: 'SECRET PROMPT TEXT' }, { 'x-request-id': 'req-log-1' });
    await client.get(`/v1/handles/${minted.json.id}/expand`, { 'x-request-id': 'req-log-2' });
    const rendered = await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 8, system: [{ type: 'handle', ref: minted.json.id }], messages: [{ role: 'user', content: 'hi' }] } }, { 'x-request-id': 'req-log-3' });
    vi.restoreAllMocks();
    // The expand fast path logs the same way.
    expect(lines.map((l) => JSON.parse(l)).find((l) => l.requestId === 'req-log-2')).toMatchObject({ method: 'GET', route: '/v1/handles/:ref/expand', status: 200 });
    const entry = lines.map((l) => JSON.parse(l)).find((l) => l.requestId === 'req-log-1');
    expect(entry).toMatchObject({ level: 'info', method: 'POST', route: '/v1/artifacts', status: 201 });
    // A call that records a request names it, as the client's x-ph-request-id does.
    expect(lines.map((l) => JSON.parse(l)).find((l) => l.requestId === 'req-log-3')).toMatchObject({ route: '/v1/render', status: 200, recorded: rendered.json.request_id });
    const all = lines.join('');
    expect(all).not.toContain('SECRET PROMPT TEXT');
    expect(all).not.toContain(key);
  });

  it('counts passing health probes without logging them, and logs a failing one', async () => {
    t = createTestApp({ config: { log: 'json' } });
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    expect((await t.app.request('/healthz')).status).toBe(200);
    expect((await t.app.request('/readyz')).status).toBe(200);
    const metrics = await (await t.app.request('/metrics', { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
    t.sqlite.close();
    expect((await t.app.request('/healthz')).status).toBe(503);
    vi.restoreAllMocks();
    const logged = lines.map((l) => JSON.parse(l) as { route: string; status: number });
    expect(logged.filter((l) => l.route === '/healthz' || l.route === '/readyz')).toEqual([expect.objectContaining({ route: '/healthz', status: 503 })]);
    expect(metrics).toContain('ph_http_requests_total{method="GET",route="/healthz",status="200"} 1');
    expect(metrics).toContain('ph_http_requests_total{method="GET",route="/readyz",status="200"} 1');
  });

  it("logs a refused expand under the id its problem quotes, not an odd x-request-id the client sent", async () => {
    t = createTestApp({ config: { log: 'json' } });
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const { client } = t.tenant();
    const refused = await client.get('/v1/handles/art_0000000000000000000000/expand', { 'x-request-id': 'z(M{{Xg' });
    vi.restoreAllMocks();
    expect(refused.status).toBeGreaterThanOrEqual(400);
    const quoted = (refused.json as { requestId: string }).requestId;
    expect(quoted).toMatch(/^[0-9a-f-]{36}$/);
    expect(lines.map((l) => JSON.parse(l)).filter((l) => l.route === '/v1/handles/:ref/expand')).toEqual([expect.objectContaining({ requestId: quoted, status: refused.status })]);
  });
});
