// The trace export over each OTLP protocol: http/protobuf (the default) to a loopback OTLP/HTTP receiver that decodes
// the protobuf body, and gRPC to a loopback trace service (@grpc/grpc-js). The same request's span carries, over
// each, what the JSON export's carries (test/proxy/otlp-export.test.ts checks that one against GET /v1/requests/{id}).

import { status as grpcStatus } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { TraceExport } from '../../src/otlp';
import { Metrics } from '../../src/http/metrics';
import { systemClock } from '../../src/domain/clock';
import { grpcReceiver, receiver, otlpConfig, type Span } from '../helpers/otlp';
import { mintArtifact, mintSystem } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic } from '../helpers/scenario';
import { committed, startHarness, type Harness } from './harness';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';

type Closable = { close: () => Promise<void> };
let h: Harness | undefined;
let closing: Closable[] = [];
let extra: TraceExport[] = [];
afterEach(async () => {
  for (const t of extra) await t.shutdown(0);
  await h?.t.services.traces?.shutdown(0);
  await h?.close();
  for (const c of closing) await c.close();
  h = undefined;
  closing = [];
  extra = [];
});
const keep = <T extends Closable>(c: T) => (closing.push(c), c);

const spansCounted = async (t: Harness['t']) => Object.fromEntries(((await t.services.metrics.otlpSpans.get()).values ?? []).map((v) => [v.labels.result, v.value]));
/** What a span says of its request, whatever the protocol: all but its own id (and its trace's, a root's). */
const content = ({ spanId: _s, traceId: _t, ...rest }: Span) => rest;

describe('the trace export over OTLP/HTTP protobuf and OTLP/gRPC', () => {
  it("sends the same span over each protocol: its attributes and handle events those of the JSON export's", async () => {
    const json = keep(await receiver());
    const proto = keep(await receiver());
    const grpc = keep(await grpcReceiver());
    const harness = await startHarness({ config: { otlp: otlpConfig(json.url, 'http/json') } });
    h = harness;
    // The same reconciled events, exported over the other two protocols as well.
    const metrics = new Metrics(false);
    const quiet = { info: () => undefined, error: () => undefined };
    extra = [new TraceExport(otlpConfig(proto.url, 'http/protobuf'), { metrics, log: quiet, clock: harness.clock }), new TraceExport(otlpConfig(grpc.url, 'grpc'), { metrics, log: quiet, clock: harness.clock })];
    for (const t of extra) harness.t.services.reconciler.onReconciled((e) => t.reconciled(e));

    const client = harness.tenant.client;
    const stamped = (stamp: string) => `Policy as of ${stamp}. ${LONG_SYSTEM}`;
    const sys = await mintSystem(client, stamped('2026-11-21'));
    const doc = await mintArtifact(client, 'document', `${LONG_SYSTEM} The handbook.`);
    const sdk = harness.anthropic({ headers: { 'x-ph-prefix': `${sys.id},${doc.id}` } });
    const ask = async () => (await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: 'Where is order 1003?' }] }).withResponse()).response.headers.get('x-ph-request-id')!;
    const first = await ask();
    await committed(harness);
    harness.clock.advance(60_000);
    expect((await client.post(`/v1/artifacts/${sys.id}/versions`, { content: stamped('2026-11-22') })).status).toBe(201);
    const second = await ask();
    await committed(harness);
    // A report, and a record of a batch: the other ways a request is reconciled.
    const rendered = await renderAnthropic(client, { prefix: [sys.id], messages: [{ role: 'user', content: 'hi' }] });
    const usage = anthropicUsage(promptTokens(rendered), 0, rendered.breakpoints.at(-1)!.token_end);
    expect((await client.post('/v1/usage/batch', { records: [{ request_id: rendered.request_id, usage }] })).json.accepted).toBe(1);
    await harness.t.services.writes.idle();
    await harness.t.services.traces!.flush();
    for (const t of extra) await t.flush();

    const ids = [first, second, rendered.request_id];
    const byRequest = (spans: Span[]) => ids.map((id) => spans.find((s) => s.attrs['prefix_handles.request.id'] === id));
    const expected = byRequest(json.spans);
    expect(expected.every(Boolean)).toBe(true);
    // The drift finding and the handle events are there to compare: the second call drifted on the document.
    expect(expected[1]!.attrs['prefix_handles.drift.handle']).toBe(`${doc.id}@1`);
    expect(expected[1]!.events).toHaveLength(2);
    expect(proto.bodies[0]!.type).toBe('application/x-protobuf');
    expect(proto.bodies[0]!.headers).toMatchObject({ authorization: 'Basic cGs6c2s=', 'x-team': 'ml' });
    for (const spans of [proto.spans, grpc.spans]) {
      expect(spans).toHaveLength(3);
      expect(byRequest(spans).map((s) => s && content(s))).toEqual(expected.map((s) => content(s!)));
    }
    // Integers stay integers over protobuf (intValue), as in JSON: a query that sums them reads the same values.
    expect(Number.isInteger(byRequest(proto.spans)[0]!.attrs['prefix_handles.tokens.cold'])).toBe(true);
    expect(await spansCounted(harness.t)).toEqual({ exported: 3 });
    expect(Object.fromEntries(((await metrics.otlpSpans.get()).values ?? []).map((v) => [v.labels.result, v.value]))).toEqual({ exported: 6 });
  });

  it("over gRPC: the span in the caller's trace, the configured headers as the call's metadata", async () => {
    const grpc = keep(await grpcReceiver());
    const harness = await startHarness({ config: { otlp: otlpConfig(grpc.url, 'grpc', { headers: { authorization: 'Basic cGs6c2s=', 'X-Honeycomb-Team': 'key-1' } }) } });
    h = harness;
    const { response } = await harness
      .anthropic({ headers: { traceparent: `00-${TRACE}-${CALLER_SPAN}-01` } })
      .messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    const id = response.headers.get('x-ph-request-id')!;
    await committed(harness);
    await harness.t.services.traces!.flush();

    expect(grpc.spans.map((s) => [s.traceId, s.parentSpanId, s.attrs['prefix_handles.request.id'], s.resource['service.name']])).toEqual([[TRACE, CALLER_SPAN, id, 'agent-proxy']]);
    // gRPC metadata names are lowercase.
    expect(grpc.calls[0]!.metadata).toMatchObject({ authorization: 'Basic cGs6c2s=', 'x-honeycomb-team': 'key-1' });
    expect(await spansCounted(harness.t)).toEqual({ exported: 1 });
  });

  for (const [what, start] of [
    ['is down', async () => ({ url: await downUrl(), calls: undefined })],
    ['answers UNAUTHENTICATED', async () => keep(await grpcReceiver(grpcStatus.UNAUTHENTICATED))],
  ] as const) {
    it(`a gRPC collector that ${what} fails no request: its spans are counted as dropped, the failure logged with where`, async () => {
      const c = await start();
      const lines: string[] = [];
      const harness = await startHarness({ config: { otlp: otlpConfig(c.url, 'grpc') } });
      h = harness;
      // The app's export, its log caught: the same settings, a TraceExport of the test's own.
      const metrics = new Metrics(false);
      const traces = new TraceExport(otlpConfig(c.url, 'grpc'), { metrics, log: { info: () => undefined, error: (msg) => void lines.push(msg) }, clock: harness.clock });
      extra = [traces];
      harness.t.services.reconciler.onReconciled((e) => traces.reconciled(e));
      const sdk = harness.anthropic();
      for (let i = 0; i < 2; i++) {
        const answer = await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: `question ${i}` }] });
        expect(answer.content.length).toBeGreaterThan(0);
        await committed(harness);
        await harness.t.services.traces!.flush();
        await traces.flush();
      }
      expect((await harness.tenant.client.get('/v1/requests')).json.requests.map((q: { status: string }) => q.status)).toEqual(['reconciled', 'reconciled']);
      expect(await spansCounted(harness.t)).toEqual({ dropped_export_failed: 2 });
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`OTLP trace export to ${c.url}/ failed`);
      // Each span sent by both exports (the app's and this test's): each call refused.
      if (c.calls) expect(c.calls).toHaveLength(4);
    });
  }
});

describe('an endpoint of the other transport', () => {
  // The Collector's gRPC receiver is on 4317 and its OTLP/HTTP one on 4318: a user who names one with the other's
  // protocol gets, from the libraries, "Parse Error: Expected HTTP/…" or "Protocol error"; the line says what it means.
  for (const [protocol, start, hint] of [
    ['http/protobuf', grpcReceiver, 'the endpoint does not answer in HTTP/1.1: a gRPC port, such as 4317? Set OTEL_EXPORTER_OTLP_PROTOCOL=grpc'],
    ['grpc', () => receiver(), 'the endpoint does not speak gRPC: an OTLP/HTTP port, such as 4318?'],
  ] as const) {
    it(`${protocol} to ${protocol === 'grpc' ? 'an OTLP/HTTP' : 'a gRPC'} receiver: the failure logged says the protocol is likely the other`, async () => {
      const c = keep(await start());
      const lines: string[] = [];
      const traces = new TraceExport(otlpConfig(c.url, protocol), { metrics: new Metrics(false), log: { info: () => undefined, error: (msg) => void lines.push(msg) }, clock: systemClock });
      extra = [traces];
      traces.failed({ tenantId: 'ten_1', requestId: 'req_1', format: 'anthropic', model: 'claude-sonnet-4-6', provider: 'anthropic', startedAt: 1, finishedAt: 2, status: 529 });
      await traces.flush();
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(hint);
      expect(c.spans).toEqual([]);
    });
  }
  it('a collector that is down is not said to be of the other transport', async () => {
    const lines: string[] = [];
    const traces = new TraceExport(otlpConfig(await downUrl(), 'http/protobuf'), { metrics: new Metrics(false), log: { info: () => undefined, error: (msg) => void lines.push(msg) }, clock: systemClock });
    extra = [traces];
    traces.failed({ tenantId: 'ten_1', requestId: 'req_1', format: 'anthropic', model: 'claude-sonnet-4-6', provider: 'anthropic', startedAt: 1, finishedAt: 2, status: 529 });
    await traces.flush();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('failed: ');
    expect(lines[0]).not.toContain('transport');
    expect(lines[0]).not.toContain('4317');
  });
});

/** A loopback port nothing listens on: a gRPC receiver's, closed. */
async function downUrl() {
  const r = await grpcReceiver();
  await r.close();
  return r.url;
}
