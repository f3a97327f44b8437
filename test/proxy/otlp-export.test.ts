// The trace export: a loopback OTLP/HTTP receiver (node:http, JSON bodies decoded here), the proxy configured to
// send to it, the official Anthropic SDK calling with a W3C traceparent on the simulator. Each reconciled request's
// span is checked against GET /v1/requests/{id}; a collector that is down or answers 500 fails no request, and its
// spans are counted as dropped.

import { afterEach, describe, expect, it } from 'vitest';
import type { OtlpConfig } from '../../src/config';
import { TraceExport } from '../../src/otlp';
import { Metrics } from '../../src/http/metrics';
import { FakeClock } from '../helpers/clock';
import { otlpConfig, receiver } from '../helpers/otlp';
import { mintArtifact, mintBundle, mintSystem, startSession } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic } from '../helpers/scenario';
import { committed, eventually, startHarness, startStandIn, type Harness, type StandIn } from './harness';

const otlp = (url: string, extra: Partial<OtlpConfig> = {}) => otlpConfig(url, 'http/json', extra);

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const MINUTE = 60_000;

let h: Harness | StandIn | undefined;
let r: Awaited<ReturnType<typeof receiver>> | undefined;
afterEach(async () => {
  // Each test has flushed what it checks: the stop is not waited for (a collector that holds an export would hold it).
  await h?.t.services.traces?.shutdown(0);
  await h?.close();
  await r?.close();
  h = r = undefined;
});

const spansCounted = async (t: Harness['t']) => Object.fromEntries(((await t.services.metrics.otlpSpans.get()).values ?? []).map((v) => [v.labels.result, v.value]));

describe('the trace export (OTLP/HTTP)', () => {
  it("sends each proxied call as a span in the caller's trace, its attributes and handle events those of GET /v1/requests/{id}", async () => {
    r = await receiver();
    const harness = await startHarness({ config: { otlp: otlp(r.url) } });
    h = harness;
    const client = harness.tenant.client;
    const stamped = (stamp: string) => `Policy as of ${stamp}. ${LONG_SYSTEM}`;
    const sys = await mintSystem(client, stamped('2026-11-21'));
    const doc = await mintArtifact(client, 'document', `${LONG_SYSTEM} The handbook.`);
    const sdk = harness.anthropic({ headers: { 'x-ph-prefix': `${sys.id},${doc.id}`, traceparent: `00-${TRACE}-${CALLER_SPAN}-01` } });
    const ask = async () => {
      const { response } = await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: 'Where is order 1003?' }] }).withResponse();
      return response.headers.get('x-ph-request-id')!;
    };
    const first = await ask();
    await committed(harness);
    harness.clock.advance(MINUTE);
    // A new version of the system prompt: what follows it (the document) is drift on the next call.
    expect((await client.post(`/v1/artifacts/${sys.id}/versions`, { content: stamped('2026-11-22') })).status).toBe(201);
    const second = await ask();
    await committed(harness);
    await harness.t.services.traces!.flush();

    expect(r.spans.map((s) => s.attrs['prefix_handles.request.id'])).toEqual([first, second]);
    expect(r.bodies[0]!.type).toBe('application/json');
    expect(r.bodies[0]!.headers.authorization).toBe('Basic cGs6c2s=');
    for (const id of [first, second]) {
      const span = r.spans.find((s) => s.attrs['prefix_handles.request.id'] === id)!;
      const view = (await client.get(`/v1/requests/${id}`)).json;
      // In the caller's trace, under its span.
      expect(span).toMatchObject({ traceId: TRACE, parentSpanId: CALLER_SPAN, name: 'chat claude-sonnet-4-6', kind: 3, resource: { 'service.name': 'agent-proxy' } });
      expect(span.start).toBe(Date.parse(view.started_at));
      expect(span.end).toBe(Date.parse(view.finished_at));
      expect(span.status.code ?? 0).toBe(0);
      const handleSegments = (view.outcome.segments as Array<{ source: string; path: string[]; opportunity: number; classes: Record<string, number>; cost: { leaked?: Record<string, number> } }>).filter((s) => s.source !== 'inline');
      const sum = (f: (s: (typeof handleSegments)[number]) => number) => handleSegments.reduce((n, s) => n + f(s), 0);
      expect(span.attrs).toMatchObject({
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'anthropic',
        'gen_ai.request.model': 'claude-sonnet-4-6',
        'gen_ai.usage.input_tokens': view.usage.total_prompt_tokens,
        'gen_ai.usage.output_tokens': view.usage.output_tokens,
        'gen_ai.usage.cache_read.input_tokens': view.usage.cache_read_tokens,
        'gen_ai.usage.cache_creation.input_tokens': view.usage.cache_write_tokens,
        'prefix_handles.request.url': `/v1/requests/${id}`,
        'prefix_handles.tenant.id': harness.tenant.id,
        'prefix_handles.capture': view.outcome.capture,
        'prefix_handles.tokens.captured': sum((s) => s.classes.captured!),
        'prefix_handles.tokens.cold': sum((s) => s.classes.cold!),
        'prefix_handles.tokens.drift': sum((s) => s.classes.drift!),
        'prefix_handles.opportunity_tokens': sum((s) => s.opportunity),
      });
      expect(span.attrs['prefix_handles.leaked_usd']).toBeCloseTo(sum((s) => Object.values(s.cost.leaked ?? {}).reduce((a, b) => a + b, 0)), 9);
      // One event per handle's run of segments: the system prompt, then the document.
      expect(span.events.map((e) => [e.name, e.attrs['prefix_handles.handle.id'], e.attrs['prefix_handles.handle.version']])).toEqual(
        handleSegments.map((s) => ['prefix_handles.handle', s.source.split('@')[0], Number(s.source.split('@')[1])]),
      );
      span.events.forEach((e, i) => {
        // Those above 0 (the span carries every class).
        for (const [c, n] of Object.entries(handleSegments[i]!.classes)) expect(e.attrs[`prefix_handles.tokens.${c}`], c).toBe(n > 0 ? n : undefined);
        expect(e.attrs['prefix_handles.opportunity_tokens']).toBe(handleSegments[i]!.opportunity);
      });
    }
    const [one, two] = r.spans;
    expect(one!.attrs['prefix_handles.tokens.cold']).toBeGreaterThan(0);
    expect(one!.attrs['prefix_handles.drift.handle']).toBeUndefined();
    // The second call read the new system prompt cold and the document as drift, located to the byte.
    const drift = (await client.get(`/v1/requests/${second}`)).json.outcome.drift;
    expect(drift).toMatchObject({ handle: `${doc.id}@1`, previous_request: first });
    expect(two!.attrs).toMatchObject({ 'prefix_handles.drift.handle': `${doc.id}@1`, 'prefix_handles.drift.previous_request': first, 'prefix_handles.drift.byte_offset': 'Policy as of 2026-11-2'.length });
    expect(two!.attrs['prefix_handles.tokens.drift']).toBeGreaterThan(0);
    expect(two!.attrs['prefix_handles.leaked_usd.drift']).toBeGreaterThan(0);
    expect(two!.attrs['prefix_handles.capture_rate']).toBeLessThan(1);
    expect(await spansCounted(harness.t)).toEqual({ exported: 2 });
  });

  it("a long session's batches are one handle event (its first and last version, its segment count), not one per batch", async () => {
    r = await receiver();
    const harness = await startHarness({ config: { otlp: otlp(r.url) } });
    h = harness;
    const client = harness.tenant.client;
    const sys = await mintSystem(client, LONG_SYSTEM);
    const bundle = await mintBundle(client, [sys.id]);
    const session = await startSession(client, { base: bundle.id, messages: [{ role: 'user', content: 'Round 0' }] });
    // 120 rounds appended, a version each: a request on the session has a segment per batch.
    const ROUNDS = 120;
    for (let i = 1; i <= ROUNDS; i++) {
      const batch = [{ role: 'assistant', content: `Answer ${i - 1}` }, { role: 'user', content: `Round ${i}` }];
      const appended = await client.post(`/v1/sessions/${session.id}/messages`, { messages: batch }, { 'if-match': `"${i}"` });
      expect(appended.status, appended.text).toBe(201);
    }
    const { response } = await harness
      .anthropic({ headers: { 'x-ph-session': session.id } })
      .messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'assistant', content: `Answer ${ROUNDS}` }, { role: 'user', content: 'One more' }] })
      .withResponse();
    const id = response.headers.get('x-ph-request-id')!;
    await committed(harness);
    await harness.t.services.traces!.flush();

    const view = (await client.get(`/v1/requests/${id}`)).json;
    const segments = view.outcome.segments as Array<{ source: string; classes: Record<string, number>; opportunity: number }>;
    const batches = segments.filter((s) => s.source.startsWith(`${session.id}@`));
    expect(batches).toHaveLength(ROUNDS + 1);
    const span = r.spans.find((s) => s.attrs['prefix_handles.request.id'] === id)!;
    const summed = (list: typeof segments, c: string) => list.reduce((n, s) => n + s.classes[c]!, 0);
    expect(span.events.map((e) => e.attrs)).toEqual([
      expect.objectContaining({ 'prefix_handles.handle.id': sys.id, 'prefix_handles.handle.version': 1, 'prefix_handles.handle.last_version': 1, 'prefix_handles.segment.count': 1 }),
      expect.objectContaining({
        'prefix_handles.handle.id': session.id,
        'prefix_handles.handle.version': 1,
        'prefix_handles.handle.last_version': ROUNDS + 1,
        'prefix_handles.segment.index': segments.indexOf(batches[0]!),
        'prefix_handles.segment.count': ROUNDS + 1,
        'prefix_handles.opportunity_tokens': batches.reduce((n, s) => n + s.opportunity, 0),
      }),
    ]);
    // The session's event carries its batches' tokens summed (those above 0).
    const sessionEvent = span.events[1]!.attrs;
    for (const c of Object.keys(batches[0]!.classes)) expect(sessionEvent[`prefix_handles.tokens.${c}`], c).toBe(summed(batches, c) || undefined);
  });

  it('exports a POST /v1/usage report in the trace its traceparent names, and a failed provider call with its error', async () => {
    r = await receiver();
    const standIn = await startStandIn((_req, res) => void res.writeHead(529, { 'content-type': 'application/json' }).end('{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'), { config: { otlp: otlp(r.url) } });
    h = standIn;
    const client = standIn.tenant.client;
    const err = await standIn.anthropic({ headers: { traceparent: `00-${TRACE}-${CALLER_SPAN}-01` } }).messages.create({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    expect((err as { status: number }).status).toBe(529);
    const sys = await mintSystem(client, LONG_SYSTEM);
    const rendered = await renderAnthropic(client, { prefix: [sys.id], messages: [{ role: 'user', content: 'hi' }] });
    const usage = anthropicUsage(promptTokens(rendered), 0, rendered.breakpoints.at(-1)!.token_end);
    const started = standIn.t.clock.now();
    const reporter = '1111111111111111';
    const reported = await client.post('/v1/usage', { request_id: rendered.request_id, usage, started_at: started, finished_at: started + 1_500 }, { traceparent: `00-${TRACE}-${reporter}-01` });
    expect(reported.status, reported.text).toBe(201);
    await standIn.t.services.writes.idle();
    await standIn.t.services.traces!.flush();

    const failedId = (await client.get('/v1/requests?limit=5')).json.requests.find((q: { status: string }) => q.status === 'failed').id;
    const failed = r.spans.find((s) => s.attrs['prefix_handles.request.id'] === failedId)!;
    expect(failed).toMatchObject({ traceId: TRACE, parentSpanId: CALLER_SPAN, status: { code: 2 } });
    expect(failed.attrs).toMatchObject({ 'error.type': '529', 'http.response.status_code': 529, 'gen_ai.request.model': 'claude-sonnet-4-6' });
    const report = r.spans.find((s) => s.attrs['prefix_handles.request.id'] === rendered.request_id)!;
    expect([report.traceId, report.parentSpanId]).toEqual([TRACE, reporter]);
    expect([report.start, report.end]).toEqual([started, started + 1_500]);
    expect(report.attrs).toMatchObject({
      'gen_ai.usage.input_tokens': promptTokens(rendered),
      'gen_ai.usage.output_tokens': usage.output_tokens,
      'gen_ai.usage.cache_read.input_tokens': 0,
      'gen_ai.usage.cache_creation.input_tokens': usage.cache_creation_input_tokens,
      'prefix_handles.capture': 'reported',
      'prefix_handles.tokens.cold': expect.any(Number),
    });
    expect(report.events.map((e) => e.attrs['prefix_handles.handle.id'])).toEqual([sys.id]);
  });

  it("puts each record of a POST /v1/usage/batch in the trace the batch's traceparent names; another tenant's request in none", async () => {
    r = await receiver();
    const harness = await startHarness({ config: { otlp: otlp(r.url) } });
    h = harness;
    const owner = harness.tenant.client;
    const other = harness.t.tenant().client;
    const render = async (client: typeof owner, question: string) => {
      const sys = await mintSystem(client, LONG_SYSTEM);
      const rendered = await renderAnthropic(client, { prefix: [sys.id], messages: [{ role: 'user', content: question }] });
      return { request_id: rendered.request_id, usage: anthropicUsage(promptTokens(rendered), 0, rendered.breakpoints.at(-1)!.token_end) };
    };
    const [one, two, theirs] = [await render(owner, 'one'), await render(owner, 'two'), await render(other, 'three')];
    const importer = '2222222222222222';
    // A bad record and another tenant's request among them: each refused alone, the others' spans in the batch's trace.
    const imported = await owner.post('/v1/usage/batch', { records: [one, { request_id: 'req_x' }, two, theirs] }, { traceparent: `00-${TRACE}-${importer}-01` });
    expect(imported.status, imported.text).toBe(200);
    expect(imported.json.results.map((x: { status: number }) => x.status)).toEqual([201, 422, 201, 404]);
    // The other tenant reports its own request, without a traceparent: its span is no child of the owner's batch.
    expect((await other.post('/v1/usage', theirs)).status).toBe(201);
    await harness.t.services.writes.idle();
    await harness.t.services.traces!.flush();

    const spanOf = (id: string) => r!.spans.find((s) => s.attrs['prefix_handles.request.id'] === id)!;
    expect(r.spans).toHaveLength(3);
    for (const rec of [one, two]) expect([spanOf(rec.request_id).traceId, spanOf(rec.request_id).parentSpanId]).toEqual([TRACE, importer]);
    expect([spanOf(theirs.request_id).traceId === TRACE, spanOf(theirs.request_id).parentSpanId]).toEqual([false, undefined]);
    // The refused record's parent is not kept (nothing would take it), nor that of a single report refused or repeated.
    expect((await owner.post('/v1/usage', theirs, { traceparent: `00-${TRACE}-${importer}-01` })).status).toBe(404);
    expect((await owner.post('/v1/usage', one, { traceparent: `00-${TRACE}-${importer}-01` })).status).toBe(200);
    expect(harness.t.services.traces!.waitingParents).toBe(0);
  });

  for (const [what, collector] of [
    ['is down', async () => ({ ...(await receiver()), down: true })],
    ['answers 500', async () => ({ ...(await receiver(500)), down: false })],
  ] as const) {
    it(`a collector that ${what} fails no request: its spans are counted as dropped, the failure logged once`, async () => {
      const c = await collector();
      r = c;
      if (c.down) await c.close();
      const harness = await startHarness({ config: { otlp: otlp(c.url) } });
      h = harness;
      const sdk = harness.anthropic();
      for (let i = 0; i < 3; i++) {
        const answer = await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: `question ${i}` }] });
        expect(answer.content.length).toBeGreaterThan(0);
        await committed(harness);
        // Each span in a batch of its own: three failed exports.
        await harness.t.services.traces!.flush();
      }
      expect((await harness.tenant.client.get('/v1/requests')).json.requests.map((q: { status: string }) => q.status)).toEqual(['reconciled', 'reconciled', 'reconciled']);
      expect(await spansCounted(harness.t)).toEqual({ dropped_export_failed: 3 });
      if (!c.down) expect(c.bodies.length).toBe(3);
    });
  }

  it('a full queue drops the span before it is made, and counts it', async () => {
    let release!: () => void;
    // A collector that takes the export and answers only when told: the two spans it holds fill the queue.
    r = await receiver(200, new Promise<void>((resolve) => (release = resolve)));
    const harness = await startHarness({ config: { otlp: otlp(r.url, { maxQueueSize: 2, timeoutMs: 60_000 }) } });
    h = harness;
    const sdk = harness.anthropic();
    const ask = async (question: string) => {
      const answer = await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: question }] });
      expect(answer.content.length).toBeGreaterThan(0);
      await committed(harness);
    };
    for (let i = 0; i < 5; i++) await ask(`question ${i}`);
    expect(await spansCounted(harness.t)).toEqual({ dropped_queue_full: 3 });
    release();
    await eventually(() => r!.spans.length === 2, 'the held export answered');
    // Counted once its answer is in (the counter is read by a promise: polled, never timed).
    for (let i = 0; i < 5_000 && (await spansCounted(harness.t)).exported !== 2; i++) await new Promise((resolve) => setTimeout(resolve, 2));
    expect(await spansCounted(harness.t)).toEqual({ dropped_queue_full: 3, exported: 2 });
    // Room again: the next span is kept.
    await ask('one more');
    await harness.t.services.traces!.flush();
    expect(r.spans).toHaveLength(3);
  });

  it('a stop is held by a collector that does not answer only as long as it is told', async () => {
    let answered = false;
    r = await receiver(200, new Promise<void>(() => undefined));
    const harness = await startHarness({ config: { otlp: otlp(r.url, { timeoutMs: 2_000 }) } });
    h = harness;
    await harness.anthropic().messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    await committed(harness);
    await harness.t.services.traces!.shutdown(50).then(() => (answered = r!.bodies.length > 0));
    // Shut down while the collector still holds the export: its answer never came.
    expect(answered).toBe(false);
    expect(await spansCounted(harness.t)).toEqual({});
  });

  it("another tenant's report naming a request id puts nothing in that request's span; a huge or odd traceparent is no 5xx", async () => {
    r = await receiver();
    const standIn = await startHarness({ config: { otlp: otlp(r.url) } });
    h = standIn;
    const owner = standIn.tenant.client;
    const other = standIn.t.tenant().client;
    const sys = await mintSystem(owner, LONG_SYSTEM);
    const rendered = await renderAnthropic(owner, { prefix: [sys.id], messages: [{ role: 'user', content: 'hi' }] });
    const usage = anthropicUsage(promptTokens(rendered), 0, rendered.breakpoints.at(-1)!.token_end);
    // The other tenant names the owner's request with its own trace: refused (not its request).
    const stranger = await other.post('/v1/usage', { request_id: rendered.request_id, usage }, { traceparent: `00-${TRACE}-${CALLER_SPAN}-01` });
    expect(stranger.status).toBe(404);
    const reported = await owner.post('/v1/usage', { request_id: rendered.request_id, usage });
    expect(reported.status, reported.text).toBe(201);
    await standIn.t.services.writes.idle();
    // A proxied call with a traceparent of a later version kilobytes long (W3C: read its first fields), one with odd bytes.
    const long = `cc-${TRACE}-${CALLER_SPAN}-01-${'x'.repeat(6_000)}`;
    for (const traceparent of [long, '00-\u00ff-zz', `00-${'0'.repeat(32)}-${CALLER_SPAN}-01`]) {
      const answer = await standIn.anthropic({ headers: { traceparent } }).messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
      expect(answer.content.length).toBeGreaterThan(0);
      await committed(standIn);
    }
    await standIn.t.services.traces!.flush();

    expect(r.spans).toHaveLength(4);
    const report = r.spans.find((sp) => sp.attrs['prefix_handles.request.id'] === rendered.request_id)!;
    // Its own trace: not the other tenant's.
    expect(report.traceId).not.toBe(TRACE);
    expect(report.parentSpanId).toBeUndefined();
    const [longOne, odd, zeros] = r.spans.slice(1);
    expect([longOne!.traceId, longOne!.parentSpanId]).toEqual([TRACE, CALLER_SPAN]);
    // No trace context (an all-zero trace id is invalid): roots of their own.
    for (const sp of [odd!, zeros!]) expect([sp.parentSpanId, sp.traceId === TRACE || /^0+$/.test(sp.traceId)]).toEqual([undefined, false]);
  });

  it('a caller whose trace is not sampled gets no span', async () => {
    r = await receiver();
    const harness = await startHarness({ config: { otlp: otlp(r.url) } });
    h = harness;
    await harness.anthropic({ headers: { traceparent: `00-${TRACE}-${CALLER_SPAN}-00` } }).messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    await committed(harness);
    await harness.anthropic({ headers: { traceparent: 'not a traceparent' } }).messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    await committed(harness);
    await harness.t.services.traces!.flush();
    // The second's header is no trace context: a root span of its own.
    expect(r.spans).toHaveLength(1);
    expect(r.spans[0]!.parentSpanId).toBeUndefined();
    expect(r.spans[0]!.traceId).not.toBe(TRACE);
  });

  it('logs failed exports at most once an interval, with the count of spans dropped since', async () => {
    const down = await receiver();
    await down.close();
    const lines: string[] = [];
    const clock = new FakeClock();
    const metrics = new Metrics(false);
    const traces = new TraceExport(otlp(down.url), { metrics, clock, log: { info: () => undefined, error: (msg) => void lines.push(msg) } });
    const event = (i: number) => ({
      tenantId: 'ten_x',
      requestId: `req_${i}`,
      format: 'anthropic',
      model: 'claude-sonnet-4-6',
      catalogModel: 'claude-sonnet-4-6',
      provider: 'anthropic',
      handles: [],
      startedAt: clock.now(),
      finishedAt: clock.now() + 10,
      usage: { provider: 'anthropic', model: null, total_prompt_tokens: 10, cache_read_tokens: 0, cache_write_tokens: 0, cache_write_by_ttl: null, uncached_tokens: 10, output_tokens: 1, cache_fields_reported: true, complete: true },
      outcome: { capture: 'reported', total_prompt_tokens: 10, estimated_prompt_tokens: 10, predicted: { read: 0, write: 0 }, provider: { read: 0, write: 0 }, segments: [], drift: null, lengths: [], sim: {}, ...{} },
    }) as unknown as Parameters<TraceExport['reconciled']>[0];
    for (let i = 0; i < 3; i++) {
      traces.reconciled(event(i));
      await traces.flush();
    }
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`OTLP trace export to ${down.url}/v1/traces failed`);
    clock.advance(61_000);
    traces.reconciled(event(3));
    await traces.flush();
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain('3 span(s) dropped in 3 failed export(s) since the last such line');
    await traces.shutdown();
  });
});
