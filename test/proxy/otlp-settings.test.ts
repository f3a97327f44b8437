// The trace export's standard settings, read from the variables as a deployment sets them (loadConfig of an
// environment) and seen on the wire by loopback receivers: gzip bodies (OTLP/HTTP protobuf and JSON, gRPC), an
// export's timeout against a receiver that never answers, OTEL_RESOURCE_ATTRIBUTES on the resource, the batch span
// processor's sizes and delay, and the span limits.

import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, type OtlpConfig } from '../../src/config';
import { systemClock } from '../../src/domain/clock';
import { Metrics } from '../../src/http/metrics';
import { TraceExport } from '../../src/otlp';
import { bareGrpcReceiver, receiver, type Span } from '../helpers/otlp';
import { committed, eventually, startHarness, type Harness } from './harness';

type Closable = { close: () => Promise<void> };
let closing: Closable[] = [];
let exports: TraceExport[] = [];
let h: Harness | undefined;
afterEach(async () => {
  for (const t of exports) await t.shutdown(0);
  await h?.close();
  for (const c of closing) await c.close();
  closing = [];
  exports = [];
  h = undefined;
});
const keep = <T extends Closable>(c: T) => (closing.push(c), c);

/** The export as the environment sets it, to a receiver at `url`. */
const fromEnv = (url: string, env: Record<string, string>): OtlpConfig => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: url, ...env }).otlp!;
/** A TraceExport of that config, its error lines kept and its spans counted. */
function exportWith(config: OtlpConfig) {
  const lines: string[] = [];
  const metrics = new Metrics(false);
  const traces = new TraceExport(config, { metrics, log: { info: () => undefined, error: (msg) => void lines.push(msg) }, clock: systemClock });
  exports.push(traces);
  const counted = async () => Object.fromEntries(((await metrics.otlpSpans.get()).values ?? []).map((v) => [v.labels.result, v.value]));
  return { traces, lines, counted };
}
/** Epoch milliseconds (a small number the SDK reads as time since the process started, each export's own). */
const AT = Date.UTC(2026, 11, 6, 12);
/** A failed provider call's span, its request id `req_<i>`. */
const fail = (traces: TraceExport, i: number) =>
  traces.failed({ tenantId: 'ten_1', requestId: `req_${i}`, format: 'anthropic', model: 'claude-sonnet-4-6', provider: 'anthropic', startedAt: AT + i, finishedAt: AT + 1_000 + i, status: 529 });
/** What a span says, its own ids aside (each export makes its own). */
const content = ({ spanId: _s, traceId: _t, ...rest }: Span) => rest;

describe('the trace export honours the standard OTEL_ settings', () => {
  for (const protocol of ['http/protobuf', 'http/json'] as const) {
    it(`OTEL_EXPORTER_OTLP_COMPRESSION=gzip sends ${protocol} bodies gzipped, which the receiver decodes; the TRACES_ one wins`, async () => {
      const gz = keep(await receiver());
      const plain = keep(await receiver());
      const zipped = exportWith(fromEnv(gz.url, { OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' }));
      // The signal's own setting wins over the general one.
      const unzipped = exportWith(fromEnv(plain.url, { OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'none' }));
      for (const { traces } of [zipped, unzipped]) {
        for (let i = 0; i < 20; i++) fail(traces, i);
        await traces.flush();
      }
      expect(gz.bodies.map((b) => [b.headers['content-encoding'], b.spans])).toEqual([['gzip', 20]]);
      expect(plain.bodies.map((b) => [b.headers['content-encoding'], b.spans])).toEqual([[undefined, 20]]);
      expect(gz.spans.map(content)).toEqual(plain.spans.map(content));
      // Twenty spans alike: gzip takes most of the bytes away.
      expect(gz.bodies[0]!.bytes).toBeLessThan(plain.bodies[0]!.bytes / 2);
      expect(await zipped.counted()).toEqual({ exported: 20 });
    });
  }

  it('OTEL_EXPORTER_OTLP_TRACES_COMPRESSION=gzip compresses the gRPC message (grpc-encoding: gzip, its compressed flag)', async () => {
    const gz = keep(await bareGrpcReceiver());
    const plain = keep(await bareGrpcReceiver());
    const zipped = exportWith(fromEnv(gz.url, { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'gzip' }));
    const unzipped = exportWith(fromEnv(plain.url, { OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }));
    for (const { traces } of [zipped, unzipped]) {
      for (let i = 0; i < 20; i++) fail(traces, i);
      await traces.flush();
    }
    expect(gz.calls.map((c) => [c.path, c.encoding, c.compressed])).toEqual([['/opentelemetry.proto.collector.trace.v1.TraceService/Export', 'gzip', true]]);
    expect(plain.calls.map((c) => [c.encoding, c.compressed])).toEqual([[undefined, false]]);
    expect(gz.spans).toHaveLength(20);
    expect(gz.spans.map(content)).toEqual(plain.spans.map(content));
    expect(gz.calls[0]!.bytes).toBeLessThan(plain.calls[0]!.bytes / 2);
    expect(await zipped.counted()).toEqual({ exported: 20 });
  });

  it('an export slower than OTEL_EXPORTER_OTLP_TRACES_TIMEOUT fails and is logged; the proxied call was answered, the flush not held', async () => {
    // A collector that takes the body and never answers.
    const slow = keep(await receiver(200, new Promise<void>(() => undefined)));
    const harness = await startHarness();
    h = harness;
    // The signal's own timeout wins over the general one (a minute: the flush would wait for it).
    const { traces, lines, counted } = exportWith(fromEnv(slow.url, { OTEL_EXPORTER_OTLP_TIMEOUT: '60000', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '300' }));
    harness.t.services.reconciler.onReconciled((e) => traces.reconciled(e));
    const answer = await harness.anthropic().messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    expect(answer.content.length).toBeGreaterThan(0);
    await committed(harness);
    // Resolves once the export gave up: the receiver has not answered (it never does).
    await traces.flush();
    expect(slow.bodies).toEqual([]);
    expect(await counted()).toEqual({ dropped_export_failed: 1 });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^OTLP trace export to ${slow.url}/v1/traces failed: .*time.*; 1 span\\(s\\) dropped in 1 failed export\\(s\\)`, 'i'));
    // The service goes on: the next call is answered too.
    expect((await harness.anthropic().messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'again' }] })).content.length).toBeGreaterThan(0);
  });

  for (const protocol of ['http/protobuf', 'grpc'] as const) {
    it(`OTEL_EXPORTER_OTLP_TIMEOUT=0 is no limit (the specification's timeout zero, which the ${protocol} exporter library would refuse): the export goes out`, async () => {
      const r = keep(protocol === 'grpc' ? await bareGrpcReceiver() : await receiver());
      const { traces, counted } = exportWith(fromEnv(r.url, { OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_EXPORTER_OTLP_TIMEOUT: '0' }));
      fail(traces, 1);
      await traces.flush();
      expect(r.spans.map((s) => s.attrs['prefix_handles.request.id'])).toEqual(['req_1']);
      expect(await counted()).toEqual({ exported: 1 });
    });
  }

  it("puts OTEL_RESOURCE_ATTRIBUTES on the spans' resource, percent-decoded; OTEL_SERVICE_NAME wins over its service.name", async () => {
    const r = keep(await receiver());
    const attributes = 'deployment.environment.name=prod, team=ml%2Cops ,note=a%3Db%20c%25,service.name=from-attributes,,';
    const named = exportWith(fromEnv(r.url, { OTEL_RESOURCE_ATTRIBUTES: attributes, OTEL_SERVICE_NAME: 'agents' }));
    const unnamed = exportWith(fromEnv(r.url, { OTEL_RESOURCE_ATTRIBUTES: attributes }));
    const bare = exportWith(fromEnv(r.url, {}));
    for (const [i, { traces }] of [named, unnamed, bare].entries()) {
      fail(traces, i);
      await traces.flush();
    }
    const resources = [0, 1, 2].map((i) => r.spans.find((s) => s.attrs['prefix_handles.request.id'] === `req_${i}`)!.resource);
    const decoded = { 'deployment.environment.name': 'prod', team: 'ml,ops', note: 'a=b c%' };
    expect(resources[0]).toEqual({ ...decoded, 'service.name': 'agents' });
    // Without OTEL_SERVICE_NAME, the attributes' own service.name; without either, prefix-handles.
    expect(resources[1]).toEqual({ ...decoded, 'service.name': 'from-attributes' });
    expect(resources[2]).toEqual({ 'service.name': 'prefix-handles' });
  });

  it('OTEL_BSP_MAX_EXPORT_BATCH_SIZE=2 sends spans in batches of at most 2; OTEL_BSP_MAX_QUEUE_SIZE bounds the queue', async () => {
    const r = keep(await receiver());
    const { traces, counted } = exportWith(fromEnv(r.url, { OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '2' }));
    for (let i = 0; i < 5; i++) fail(traces, i);
    await traces.flush();
    expect(r.bodies.map((b) => b.spans).sort()).toEqual([1, 2, 2]);
    expect(r.spans.map((s) => s.attrs['prefix_handles.request.id']).sort()).toEqual(['req_0', 'req_1', 'req_2', 'req_3', 'req_4']);
    expect(await counted()).toEqual({ exported: 5 });

    // A queue of 3 behind a collector that holds its answer: the 4th and 5th spans are dropped, counted.
    let release!: () => void;
    const held = keep(await receiver(200, new Promise<void>((resolve) => (release = resolve))));
    const small = exportWith(fromEnv(held.url, { OTEL_BSP_MAX_QUEUE_SIZE: '3' }));
    for (let i = 0; i < 5; i++) fail(small.traces, i);
    expect(await small.counted()).toEqual({ dropped_queue_full: 2 });
    release();
    await eventually(() => held.bodies.length === 1, 'the held export answered');
    expect(held.bodies.map((b) => b.spans)).toEqual([3]);
    // Counted once its answer is in (the counter is read by a promise: polled, never timed).
    for (let i = 0; i < 5_000 && (await small.counted()).exported !== 3; i++) await new Promise((resolve) => setTimeout(resolve, 2));
    expect(await small.counted()).toEqual({ dropped_queue_full: 2, exported: 3 });
  });

  it('OTEL_BSP_SCHEDULE_DELAY sets how long a span waits for its batch: 0 sends it unflushed, an hour keeps it until a flush', async () => {
    const soon = keep(await receiver());
    const later = keep(await receiver());
    const now = exportWith(fromEnv(soon.url, { OTEL_BSP_SCHEDULE_DELAY: '0' }));
    const hour = exportWith(fromEnv(later.url, { OTEL_BSP_SCHEDULE_DELAY: '3600000' }));
    fail(hour.traces, 1);
    fail(now.traces, 1);
    await eventually(() => soon.spans.length === 1, 'the span sent without a flush');
    expect(later.bodies).toEqual([]);
    await hour.traces.flush();
    expect(later.spans.map(content)).toEqual(soon.spans.map(content));
  });

  it('the span limits: OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT over OTEL_ATTRIBUTE_COUNT_LIMIT, OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT', async () => {
    const r = keep(await receiver());
    const span = exportWith(fromEnv(r.url, { OTEL_ATTRIBUTE_COUNT_LIMIT: '2', OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: '3', OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: '6' }));
    const general = exportWith(fromEnv(r.url, { OTEL_ATTRIBUTE_COUNT_LIMIT: '2' }));
    const unset = exportWith(fromEnv(r.url, {}));
    for (const [i, { traces }] of [span, general, unset].entries()) {
      fail(traces, i);
      await traces.flush();
    }
    const [cut, fewer, whole] = r.spans;
    // The span's first attributes, each string cut to 6 characters.
    expect(cut!.attrs).toEqual({ 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'anthro', 'gen_ai.system': 'anthro' });
    expect(Object.keys(fewer!.attrs)).toEqual(['gen_ai.operation.name', 'gen_ai.provider.name']);
    // Unset: every attribute, whole (10 on a failed call's span).
    expect(Object.keys(whole!.attrs)).toHaveLength(10);
    expect(whole!.attrs['prefix_handles.request.url']).toBe('/v1/requests/req_2');
  });
});
