import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SqliteStore } from '../../src/store/sqlite-store';
import { createTestApp, type TestApp } from '../helpers/app';
import { mintSystem, startSession } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM } from '../helpers/scenario';

let t: TestApp;
beforeEach(() => {
  t = createTestApp({ config: { usageBatchMax: 5 } });
});
afterEach(() => t.close());

async function rendered(client: ReturnType<TestApp['tenant']>['client'], format = 'anthropic', model = 'claude-sonnet-4-5') {
  const sys = await mintSystem(client, LONG_SYSTEM);
  const key = format === 'anthropic' ? 'messages' : format === 'openai-responses' ? 'input' : 'messages';
  const res = await client.post('/v1/render', { format, request: { model, prefix: [sys.id], [key]: [{ role: 'user', content: 'hi' }] } });
  expect(res.status, res.text).toBe(200);
  return res.json as { request_id: string; segments: Array<{ token_end: number }> };
}

const total = (r: { segments: Array<{ token_end: number }> }) => r.segments[r.segments.length - 1]!.token_end;

describe('POST /v1/usage', () => {
  it('is idempotent by request_id: the same report is accepted once, a different one is 409', async () => {
    const { client } = t.tenant();
    const r = await rendered(client);
    const body = { request_id: r.request_id, usage: anthropicUsage(total(r), 0, 100) };
    const first = await client.post('/v1/usage', body);
    expect(first.status).toBe(201);
    expect(first.json.duplicate).toBe(false);
    const again = await client.post('/v1/usage', body);
    expect(again.status).toBe(200);
    expect(again.json.duplicate).toBe(true);
    expect(again.json.outcome).toEqual(first.json.outcome);
    // The state kept to replay the scope's simulation is not part of the API, here or on the request's page.
    expect(Object.keys(first.json.outcome)).not.toContain('sim');
    expect(Object.keys(first.json.outcome)).not.toContain('lengths');
    const page = (await client.get(`/v1/requests/${r.request_id}`)).json;
    expect(page.outcome).toEqual(first.json.outcome);
    const other = await client.post('/v1/usage', { ...body, usage: anthropicUsage(total(r), 0, 99) });
    expect(other.status).toBe(409);
    expect(other.json.code).toBe('conflict');
    // A report that cannot be read is refused for that, reconciled request or not (a 409 would hide the fault).
    const unreadable = await client.post('/v1/usage', { ...body, usage: { ...anthropicUsage(total(r), 0, 100), cache_read_input_tokens: -5 } });
    expect(unreadable.status).toBe(422);
    expect(unreadable.json.errors[0].pointer).toBe('/usage/cache_read_input_tokens');
    const batch = await client.post('/v1/usage/batch', { records: [{ ...body, usage: { input_tokens: 'many' } }] });
    expect(batch.json.results[0]).toMatchObject({ status: 422 });
    const rep = (await client.get('/v1/reports')).json;
    expect(rep.requests).toBe(1);
  });

  it('times that cannot be (in the future, out of order) are a 422 naming them, before the 409 of a reconciled request, single and batch alike', async () => {
    const { client } = t.tenant();
    const r = await rendered(client);
    const body = { request_id: r.request_id, usage: anthropicUsage(total(r), 0, 100) };
    expect((await client.post('/v1/usage', body)).status).toBe(201);
    const now = t.clock.now();
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ finished_at: now + 3600_000 }, '/finished_at', 'is in the future'],
      [{ started_at: '2099-01-01T00:00:00Z' }, '/started_at', 'is in the future'],
      [{ started_at: now - 1000, first_byte_at: now - 2000 }, '/first_byte_at', 'times must satisfy'],
    ];
    for (const [times, pointer, detail] of cases) {
      const single = await client.post('/v1/usage', { ...body, ...times });
      expect(single.status, JSON.stringify(times)).toBe(422);
      expect(single.json.errors).toEqual([{ pointer, detail: expect.stringContaining(detail) }]);
      const batch = await client.post('/v1/usage/batch', { records: [{ ...body, ...times }] });
      expect(batch.json.results[0], JSON.stringify(times)).toMatchObject({ index: 0, status: 422 });
      expect(batch.json.results[0].problem.errors).toEqual([{ pointer: `/records/0${pointer}`, detail: expect.stringContaining(detail) }]);
    }
    // The stored report is untouched, and still answered as itself.
    expect((await client.post('/v1/usage', body)).status).toBe(200);
  });

  it('a different report for a reconciled request is refused without starting a sync nobody waits for', async () => {
    // A sync started for the 409 and left unawaited would, failing (a full disk, a shutdown closing the file under
    // it), be an unhandled rejection: the process would exit.
    const { client } = t.tenant();
    const r = await rendered(client);
    const body = { request_id: r.request_id, usage: anthropicUsage(total(r), 0, 100) };
    expect((await client.post('/v1/usage', body)).status).toBe(201);
    await t.services.writes.idle();
    const durable = vi.spyOn(SqliteStore.prototype, 'durable');
    try {
      expect((await client.post('/v1/usage', { ...body, usage: anthropicUsage(total(r), 0, 99) })).status).toBe(409);
      expect((await client.post('/v1/usage/batch', { records: [{ ...body, usage: anthropicUsage(total(r), 0, 98) }] })).json.results[0].status).toBe(409);
      expect(durable).not.toHaveBeenCalled();
      // The same report again is answered once it is on disk.
      expect((await client.post('/v1/usage', body)).status).toBe(200);
      expect(durable).toHaveBeenCalledTimes(1);
    } finally {
      durable.mockRestore();
    }
  });

  it('answers 404 for unknown and foreign request ids', async () => {
    const a = t.tenant('a');
    const b = t.tenant('b');
    const r = await rendered(a.client);
    const foreign = await b.client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(total(r), 0, 0) });
    expect(foreign.status).toBe(404);
    expect(foreign.json.errors[0].pointer).toBe('/request_id');
    expect((await b.client.post('/v1/usage', { request_id: 'req_AAAAAAAAAAAAAAAAAAAAA', usage: {} })).status).toBe(404);
    expect((await b.client.get(`/v1/requests/${r.request_id}`)).status).toBe(404);
  });

  it('rejects unrecognisable usage with the pointer, and impossible times', async () => {
    const { client } = t.tenant();
    const r = await rendered(client);
    const bad = await client.post('/v1/usage', { request_id: r.request_id, usage: { tokens: 'many' } });
    expect(bad.status).toBe(422);
    expect(bad.json.errors[0].pointer).toMatch(/^\/usage/);
    const at = t.clock.now();
    const times = await client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(total(r), 0, 0), started_at: at, first_byte_at: at - 1000 });
    expect(times.json.errors).toEqual([{ pointer: '/first_byte_at', detail: expect.stringMatching(/^times must satisfy started_at <= first_byte_at <= finished_at/) }]);
    // Only finished_at sent, before the render: the pointer names the field that was sent.
    const early = await client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(total(r), 0, 0), finished_at: at - 60_000 });
    expect(early.json.errors).toEqual([{ pointer: '/finished_at', detail: expect.stringMatching(/started_at is the render time when not given/) }]);
    expect((await client.post('/v1/usage', { request_id: r.request_id })).status).toBe(422);
    // Both: which one counts would be a guess.
    const both = await client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(total(r), 0, 0), response: { usage: anthropicUsage(total(r), 0, 0) } });
    expect(both.status).toBe(422);
    expect(both.json.errors).toEqual([{ pointer: '/response', detail: 'send "usage" or "response", not both' }]);
  });

  it('accepts whole response bodies of each provider and keeps the diagnostics', async () => {
    const { client } = t.tenant();
    const a = await rendered(client);
    const anthropicMessage = {
      id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [{ type: 'text', text: 'hi' }],
      stop_reason: 'end_turn', stop_sequence: null, usage: anthropicUsage(total(a), 0, 0),
      diagnostics: { cache_miss_reason: { type: 'prompt_changed', cache_missed_input_tokens: 10 } },
    };
    expect((await client.post('/v1/usage', { request_id: a.request_id, response: anthropicMessage })).status).toBe(201);
    const stored = (await client.get(`/v1/requests/${a.request_id}`)).json;
    expect(stored.status).toBe('reconciled');
    expect(stored.diagnostics.cache_miss_reason).toBe('prompt_changed');
    // Only the usage object is kept of a whole response, never the model's answer (as through the proxy).
    expect(stored.usage_raw).toEqual(anthropicMessage.usage);
    expect(JSON.stringify(stored)).not.toContain('"hi"');
    expect(stored.usage.total_prompt_tokens).toBe(total(a));

    const o = await rendered(client, 'openai-responses', 'gpt-4.1');
    const response = { id: 'resp_1', object: 'response', status: 'completed', model: 'gpt-4.1', output: [], usage: { input_tokens: 1200, input_tokens_details: { cached_tokens: 1024 }, output_tokens: 5, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 1205 } };
    const res = await client.post('/v1/usage', { request_id: o.request_id, response });
    expect(res.status).toBe(201);
    expect(res.json.usage).toMatchObject({ total_prompt_tokens: 1200, cache_read_tokens: 1024, cache_fields_reported: true });
  });
});

describe('POST /v1/usage/batch', () => {
  it('prices leaked savings as the missed opportunity only: cold tokens cost at perfect capture what they cost', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const render = async () =>
      (await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', prefix: [sys.id], messages: [{ role: 'user', content: 'hi' }] } })).json as {
        request_id: string;
        segments: Array<{ source: string; token_start: number; token_end: number }>;
      };
    const input = 3 / 1_000_000; // claude-sonnet-4-5, USD per input token
    // Turn 1: the system prompt is cold; the provider wrote none of it (no premium paid): nothing could have
    // been cheaper, so nothing leaked — not a negative amount for the premium it did not pay.
    const first = await render();
    const prefix = first.segments[0]!.token_end;
    expect((await client.post('/v1/usage', { request_id: first.request_id, usage: anthropicUsage(total(first), 0, 0) })).status).toBe(201);
    const cold = (await client.get(`/v1/reports/handles/${sys.id}`)).json.money;
    expect(cold.leaked_savings).toBe(0);
    expect(cold.cost_at_perfect_capture).toBe(cold.actual_input_cost);
    expect(cold.actual_input_cost).toBeCloseTo(prefix * input, 5); // reports round to 1e-6 USD
    // Turn 2: the provider reads nothing and writes nothing: every token of the prompt leaks (1× instead of 0.1×).
    t.clock.advance(10_000);
    const second = await render();
    expect((await client.post('/v1/usage', { request_id: second.request_id, usage: anthropicUsage(total(second), 0, 0) })).status).toBe(201);
    const leaked = (await client.get(`/v1/reports/handles/${sys.id}`)).json.money;
    expect(leaked.leaked_savings).toBeCloseTo(prefix * (1 - 0.1) * input, 5);
    expect(leaked.cost_at_perfect_capture).toBeCloseTo(prefix * input + prefix * 0.1 * input, 5);
  });

  it('accepts or rejects each record on its own, in order, and limits the batch size', async () => {
    const { client } = t.tenant();
    const r2 = await rendered(client);
    const r3 = await rendered(client);
    const res = await client.post('/v1/usage/batch', {
      records: [
        { request_id: r2.request_id, usage: anthropicUsage(total(r2), 0, 0), started_at: '2026-01-01T11:55:00Z' },
        { request_id: 'req_AAAAAAAAAAAAAAAAAAAAA', usage: {} },
        { nonsense: true },
        { request_id: r3.request_id, usage: { ...anthropicUsage(total(r3), 0, 0), input_tokens: -5 } },
        'not a record',
      ],
    });
    expect(res.status).toBe(200);
    expect(res.json.results.map((x: { status: number }) => x.status)).toEqual([201, 404, 422, 422, 422]);
    expect(res.json.accepted).toBe(1);
    // Each problem points into its own record, counted in the batch as sent (set-aside records included).
    const pointers = (k: number) => res.json.results[k].problem.errors.map((e: { pointer: string }) => e.pointer);
    expect(pointers(1)).toEqual(['/records/1/request_id']);
    expect(pointers(2)).toContain('/records/2/nonsense');
    expect(pointers(3)).toEqual(['/records/3/usage/input_tokens']);
    expect(pointers(4)).toEqual(['/records/4']);
    expect((await client.get(`/v1/requests/${r2.request_id}`)).json.started_at).toBe('2026-01-01T11:55:00.000Z');
    const tooMany = await client.post('/v1/usage/batch', { records: Array.from({ length: 6 }, () => ({})) });
    expect(tooMany.status).toBe(422);
  });
});

describe('reports', () => {
  it('filter by time range and model, and rank handles by leaked money', async () => {
    const { client } = t.tenant();
    const r = await rendered(client);
    await client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(total(r), 0, total(r)) });
    const all = (await client.get('/v1/reports')).json;
    expect(all.requests).toBe(1);
    expect(all.handles).toHaveLength(1);
    expect(all.money.actual_input_cost).toBeGreaterThan(all.money.cost_without_caching);
    expect(all.money.write_premiums_paid).toBeGreaterThan(0);
    // Within its TTL, an unread write may still be read: pending, not yet wasted.
    expect([all.money.write_premiums_unread, all.money.write_premiums_pending]).toEqual([0, all.money.write_premiums_paid]);
    expect((await client.get('/v1/reports?model=gpt-4o')).json.requests).toBe(0);
    expect((await client.get('/v1/reports?to=2020-01-01T00:00:00Z')).json.requests).toBe(0);
    expect((await client.get('/v1/reports?from=nonsense')).status).toBe(422);
    // A day (UTC) or epoch ms, as the CLI takes them; whole days are counted.
    expect((await client.get('/v1/reports?from=2026-01-01&to=2026-01-01')).json.requests).toBe(1);
    expect((await client.get('/v1/reports?to=2025-12-31')).json.requests).toBe(0);
    expect((await client.get(`/v1/reports?from=${Date.parse('2026-01-02T00:00:00Z')}&to=2026-01-03`)).json.requests).toBe(0);
    // With no to, it is today: a from on a later day is refused as any from after to; later today is counted.
    const future = await client.get(`/v1/reports?from=${Date.parse('2026-01-02T00:00:00Z')}`);
    expect(future.json.errors).toEqual([{ pointer: 'query:from', detail: 'from is after to (today, when to is not given)' }]);
    expect((await client.get(`/v1/reports?from=${t.clock.now() + 60_000}`)).json.requests).toBe(1);
    // The range shown is the one counted: whole UTC days.
    expect((await client.get('/v1/reports?from=2026-01-01T09:30:00Z&to=2026-01-01')).json.range).toEqual({ from: '2026-01-01T00:00:00.000Z', to: '2026-01-01T23:59:59.999Z', model: null });
    // Epoch seconds where milliseconds are expected would land in January 1970: refused with a hint (0 is fine).
    expect((await client.get('/v1/reports?from=1764633600')).json.errors).toEqual([{ pointer: 'query:from', detail: expect.stringMatching(/looks like seconds/) }]);
    expect((await client.get('/v1/reports?from=0')).status).toBe(200);
    const seconds = await client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(total(r), 0, 0), started_at: 1764633600 });
    expect(seconds.json.errors).toEqual([{ pointer: '/started_at', detail: expect.stringMatching(/looks like seconds/) }]);
    // A time before 1973 is refused in either form (a string used to pass, and the request fell out of every report).
    for (const old of ['0001-01-01T00:00:00Z', '1970-01-01T00:00:01Z', 0, -5]) {
      const res = await client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(total(r), 0, 0), started_at: old });
      expect(res.json.errors, String(old)).toEqual([{ pointer: '/started_at', detail: 'before 1973: no model call is that old' }]);
    }
    // A list is a streamed answer's events, read as the request's provider streams them: none that carries usage
    // (here Gemini's chunks for an Anthropic request, or nothing at all) is refused, naming what is missing.
    const chunks = await client.post('/v1/usage', { request_id: r.request_id, response: [{ usageMetadata: { promptTokenCount: 5 } }] });
    expect(chunks.json.errors).toEqual([{ pointer: '/response', detail: expect.stringMatching(/^no message_start or message_delta event carries usage/) }]);
    const batchChunks = await client.post('/v1/usage/batch', { records: [{ request_id: r.request_id, response: [] }] });
    expect(batchChunks.json.results[0].problem.errors).toEqual([{ pointer: '/records/0/response', detail: expect.stringMatching(/^no message_start or message_delta event carries usage/) }]);
    const listedUsage = await client.post('/v1/usage', { request_id: r.request_id, usage: [] });
    expect(listedUsage.json.errors).toEqual([{ pointer: '/usage', detail: expect.any(String) }]);
    // A report's time that is not one says which forms are: a log's zone-less time is told it lacks a zone
    // (it was "Invalid ISO datetime", and a fraction of a millisecond "Invalid input").
    const zoneless = await client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(total(r), 0, 0), started_at: '2026-01-01T11:55:00.123456' });
    expect(zoneless.json.errors).toEqual([{ pointer: '/started_at', detail: expect.stringMatching(/^has no zone, so the moment is not known: add one \(Z for UTC, or \+01:00\); expected epoch milliseconds \(a whole number\) or RFC 3339 with a zone/) }]);
    for (const bad of ['2026-01-01 11:55:00Z', 'yesterday', 1767268500000.5, true])
      expect((await client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(total(r), 0, 0), finished_at: bad })).json.errors, String(bad)).toEqual([
        { pointer: '/finished_at', detail: expect.stringMatching(/^expected epoch milliseconds \(a whole number\) or RFC 3339 with a zone \(2026-11-20T09:00:00Z/) },
      ]);
    // One message for the three forms a time may take.
    for (const bad of ['yesterday', '2026-02-30', '2026-12-02T00:00:00'])
      expect((await client.get(`/v1/reports?from=${bad}`)).json.errors, bad).toEqual([{ pointer: 'query:from', detail: expect.stringMatching(/^expected a day \(2026-12-01, in the tenant's time zone\), RFC 3339 with a zone/) }]);
    expect((await client.get(`/v1/reports/handles/${(r.segments[0] as unknown as { source: string }).source.split('@')[0]}?from=2026-01-01`)).json.requests).toBe(1);
    // Past the largest time a date holds: a 422, not a 500 when the range is shown back.
    expect((await client.get('/v1/reports?from=99999999999999999')).status).toBe(422);
    expect((await client.get('/v1/reports?to=9999999999999999')).status).toBe(422);
    // The largest time accepted: its day's end is shown as that time, not past it (a 500).
    const farthest = await client.get('/v1/reports?to=8640000000000000');
    expect(farthest.status).toBe(200);
    expect(farthest.json.range.to).toBe(new Date(8.64e15).toISOString());
    expect((await client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(total(r), 0, 0), started_at: 9e15 })).status).toBe(422);
    const backwards = await client.get('/v1/reports?from=2026-01-02&to=2026-01-01');
    expect(backwards.status).toBe(422);
    expect(backwards.json.errors).toEqual([{ pointer: 'query:from', detail: 'from is after to' }]);
  });
});

describe('GET /v1/requests', () => {
  it('lists recorded requests newest first, a page at a time; with a handle, those that referenced it', async () => {
    const me = t.tenant();
    const other = t.tenant('other');
    const sys = await mintSystem(me.client, LONG_SYSTEM);
    const doc = await mintSystem(me.client, 'Another system prompt.');
    const ids: string[] = [];
    for (const [i, ref] of [sys.id, doc.id, sys.id].entries()) {
      const r = await me.client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 5, prefix: [ref], messages: [{ role: 'user', content: `q${i}` }] } });
      ids.push(r.json.request_id);
      t.clock.advance(1000);
    }
    await t.services.writes.idle();
    const prompt = (await me.client.get(`/v1/requests/${ids[2]}`)).json.segments.at(-1).token_end;
    await me.client.post('/v1/usage', { request_id: ids[2], usage: anthropicUsage(prompt, 0, prompt - 10) });
    await t.services.writes.idle();

    const all = (await me.client.get('/v1/requests')).json;
    expect(all.requests.map((r: { id: string }) => r.id)).toEqual([...ids].reverse());
    expect(all.next_cursor).toBeNull();
    expect(all.requests[0]).toMatchObject({ status: 'reconciled', capture: 'reported', cache_write_tokens: prompt - 10, handles: [sys.id], drift: false });
    expect(all.requests[0].classes.cold).toBeGreaterThan(0);
    expect(all.requests[1]).toMatchObject({ status: 'rendered', capture: null, handles: [doc.id], classes: {} });

    const bySys = (await me.client.get(`/v1/requests?handle=${sys.id}`)).json;
    expect(bySys.requests.map((r: { id: string }) => r.id)).toEqual([ids[2], ids[0]]);
    // Page by page: the cursor continues after the last one shown.
    const first = (await me.client.get(`/v1/requests?handle=${sys.id}&limit=1`)).json;
    expect(first.requests.map((r: { id: string }) => r.id)).toEqual([ids[2]]);
    const second = (await me.client.get(`/v1/requests?handle=${sys.id}&limit=1&cursor=${first.next_cursor}`)).json;
    expect(second.requests.map((r: { id: string }) => r.id)).toEqual([ids[0]]);

    // Another tenant sees none of them, and cannot name this tenant's handle.
    expect((await other.client.get('/v1/requests')).json.requests).toEqual([]);
    const foreign = await other.client.get(`/v1/requests?handle=${sys.id}`);
    expect(foreign.status).toBe(404);
    expect(foreign.json.errors[0].pointer).toBe('query:handle');
    for (const bad of ['cursor=abc', 'handle=req_x', 'limit=0']) {
      const res = await me.client.get(`/v1/requests?${bad}`);
      expect(res.status, bad).toBe(422);
      expect(res.json.errors[0].pointer, bad).toBe(`query:${bad.split('=')[0]}`);
    }
  });
});

describe('GET /v1/requests?handle= for a handle that rendered nothing', () => {
  it("lists a session's first turn, sent while the session was still empty", async () => {
    const me = t.tenant();
    const session = await startSession(me.client);
    const first = await me.client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-6', max_tokens: 5, prefix: [session.id], messages: [{ role: 'user', content: 'hello' }] } });
    expect(first.status, first.text).toBe(200);
    expect(first.json.segments.map((s: { source: string }) => s.source)).toEqual(['inline']);
    await t.services.writes.idle();
    const listed = (await me.client.get(`/v1/requests?handle=${session.id}`)).json.requests.map((r: { id: string }) => r.id);
    expect(listed).toEqual([first.json.request_id]);
  });
});

describe('GET /v1/requests with requests rendered in the same millisecond', () => {
  it('pages through them one at a time, each once, newest id first', async () => {
    const me = t.tenant();
    const sys = await mintSystem(me.client, 'Tied.');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await me.client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 5, prefix: [sys.id], messages: [{ role: 'user', content: `q${i}` }] } });
      ids.push(r.json.request_id);
    }
    await t.services.writes.idle();
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = (await me.client.get(`/v1/requests?limit=1${cursor ? `&cursor=${cursor}` : ''}`)).json as { requests: Array<{ id: string; rendered_at: string }>; next_cursor: string | null };
      seen.push(...page.requests.map((r) => r.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(new Set((await me.client.get('/v1/requests')).json.requests.map((r: { rendered_at: string }) => r.rendered_at)).size).toBe(1);
    expect(seen).toEqual([...ids].sort().reverse());
  });
});

describe('GET /v1/requests?handle=', () => {
  it("counts that handle's tokens per class, not the other handles' of the same request", async () => {
    const me = t.tenant();
    const a = await mintSystem(me.client, LONG_SYSTEM);
    const b = await mintSystem(me.client, 'A second, short system prompt.');
    const r = await me.client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 5, prefix: [a.id, b.id], messages: [{ role: 'user', content: 'q' }] } });
    const segs = r.json.segments as Array<{ source: string; token_start: number; token_end: number }>;
    const prompt = segs.at(-1)!.token_end;
    await me.client.post('/v1/usage', { request_id: r.json.request_id, usage: anthropicUsage(prompt, 0, prompt) });
    await t.services.writes.idle();
    const outcome = (await me.client.get(`/v1/requests/${r.json.request_id}`)).json.outcome as { segments: Array<{ source: string; start: number; end: number }> };
    const size = (id: string) => outcome.segments.filter((s) => s.source.startsWith(id)).reduce((n, s) => n + s.end - s.start, 0);
    const sum = (classes: Record<string, number>) => Object.values(classes).reduce((x, y) => x + y, 0);
    const forB = (await me.client.get(`/v1/requests?handle=${b.id}`)).json.requests[0];
    expect(sum(forB.classes)).toBe(size(b.id));
    const all = (await me.client.get('/v1/requests')).json.requests[0];
    expect(sum(all.classes)).toBe(size(a.id) + size(b.id));
    expect(size(a.id)).toBeGreaterThan(0);
  });
});
