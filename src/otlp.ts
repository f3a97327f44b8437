// The trace export: each reconciled request (and each failed provider call) as one OpenTelemetry span, sent over
// OTLP (HTTP protobuf, HTTP JSON or gRPC: OpenTelemetry's own exporters) to the tracing tool a team already runs
// (Langfuse, Tempo, Honeycomb, Datadog, a collector). Off unless an endpoint is set (config.ts): then no listener is
// registered and the proxy reads no header for it.
//
// Spans are batched off the request path. The queue is bounded: a span that finds it full is dropped and counted, as
// are the spans of an export that failed (a collector down, a 500); a request never waits for the collector.

import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, trace, type Attributes, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { createRequire } from 'node:module';
import type { OTLPTraceExporter as GrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace';
import type { OtlpConfig, OtlpProtocol } from './config';
import type { Clock } from './domain/clock';
import { parseRef } from './domain/ids';
import { Lru } from './domain/lru';
import type { ReconciledEvent, SegmentOutcome } from './domain/reconcile/reconciler';
import { CLASSES, leakedByClass, MONEY_LEAKS } from './domain/reconcile/waterfall';
import type { Metrics } from './http/metrics';
import type { ServiceLog } from './log';

/** The GenAI conventions' provider names (`gen_ai.provider.name`); another provider keeps the catalog's name. */
const PROVIDER_NAME: Record<string, string> = { anthropic: 'anthropic', openai: 'openai', gemini: 'gcp.gemini' };

/** A failed provider call, as the proxy recorded it (GET /v1/requests/{id} shows it `failed`). */
export interface FailedCall {
  tenantId: string;
  requestId: string;
  format: string;
  model: string;
  provider: string;
  startedAt: number;
  finishedAt: number;
  /** The provider's status, or ours (502, 504) when its answer never came; null: none. */
  status: number | null;
  /** Our problem's code when the provider could not be reached or its answer was cut (`upstream_unreachable`…). */
  code?: string;
}

export class TraceExport {
  private readonly provider: TracerProvider;
  private readonly tracer: Tracer;
  private readonly propagator = new W3CTraceContextPropagator();
  /**
   * The caller's span per tenant and request, until the request's span is made (a call never reconciled ages out): the
   * parsed context, a few bytes, not the headers as sent (a caller's header may be kilobytes long).
   */
  private readonly parents = new Lru<string, SpanContext>(10_000);
  /** Spans handed to the batch and not yet exported or failed: the queue's bound is kept on this. */
  private queued = 0;
  /** Failed exports' spans since the last line about them, and when that line was written. */
  private unlogged = { spans: 0, exports: 0 };
  private loggedAt = -Infinity;

  constructor(
    private readonly config: OtlpConfig,
    private readonly deps: { metrics: Metrics; log: ServiceLog; clock: Clock },
  ) {
    const otlp = exporterFor(config);
    const exporter: SpanExporter = {
      export: (spans: ReadableSpan[], done: (result: ExportResult) => void) =>
        otlp.export(spans, (result) => {
          this.queued -= spans.length;
          if (result.code === ExportResultCode.SUCCESS) deps.metrics.otlpSpans.inc({ result: 'exported' }, spans.length);
          else this.exportFailed(spans.length, result.error);
          done(result);
        }),
      shutdown: () => otlp.shutdown(),
      forceFlush: () => otlp.forceFlush(),
    };
    const processor = new BatchSpanProcessor({
      exporter,
      maxQueueSize: config.maxQueueSize,
      maxExportBatchSize: config.maxExportBatchSize,
      scheduledDelayMillis: config.scheduledDelayMs,
      // 0: no limit, as the specification has it (the SDK would give up on each export at once).
      exportTimeoutMillis: config.exportTimeoutMs || MAX_TIMER,
    });
    this.provider = new TracerProvider({
      resource: resourceFromAttributes({ ...config.resourceAttributes, 'service.name': config.serviceName }),
      spanProcessors: [processor],
      // A handle run is an event: a request naming many handles keeps them all by default (config.ts: OTLP_DEFAULTS).
      spanLimits: config.spanLimits,
    });
    this.tracer = this.provider.getTracer('prefix-handles');
  }

  /**
   * The caller's W3C `traceparent` (and `tracestate`) for a request (or each of a batch's): its span is made a child of
   * the caller's. Kept under the tenant's id with the request's: a `POST /v1/usage` names a request id before the
   * request is known to be the tenant's, and another tenant's report must not put that request's span into its trace.
   * A header that does not parse (or none) is no parent, and takes the place of one sent before for the same request.
   */
  parent(tenantId: string, requestIds: string | readonly string[], traceparent: string | undefined, tracestate: string | undefined): void {
    const context = traceparent ? trace.getSpanContext(this.propagator.extract(ROOT_CONTEXT, { traceparent, ...(tracestate ? { tracestate } : {}) }, defaultTextMapGetter)) : undefined;
    const ids = typeof requestIds === 'string' ? [requestIds] : requestIds;
    if (!context) return this.forget(tenantId, ids);
    for (const requestId of ids) this.parents.set(`${tenantId} ${requestId}`, context);
  }

  /**
   * No caller's span for these requests: a report sent without one, or one refused or repeated (a 404, a 409, a 200
   * with the stored result), for which no span is made: nothing would take it, and it would push out the parents of
   * calls still under way.
   */
  forget(tenantId: string, requestIds: readonly string[]): void {
    for (const requestId of requestIds) this.parents.delete(`${tenantId} ${requestId}`);
  }

  /** Callers' spans kept for requests not reconciled yet. */
  get waitingParents(): number {
    return this.parents.size;
  }

  reconciled(e: ReconciledEvent): void {
    const o = e.outcome;
    const startedAt = e.startedAt ?? e.finishedAt ?? this.deps.clock.now();
    const span = this.start(e, startedAt);
    if (!span) return;
    const u = e.usage;
    const reported = o.capture === 'reported';
    const attrs: Attributes = { 'prefix_handles.capture': o.capture };
    if (u.model) attrs['gen_ai.response.model'] = u.model;
    if (o.total_prompt_tokens !== null) attrs['gen_ai.usage.input_tokens'] = o.total_prompt_tokens;
    if (u.output_tokens !== null) attrs['gen_ai.usage.output_tokens'] = u.output_tokens;
    if (o.provider.read !== null) attrs['gen_ai.usage.cache_read.input_tokens'] = o.provider.read;
    if (o.provider.write !== null) attrs['gen_ai.usage.cache_creation.input_tokens'] = o.provider.write;
    const { captured, opportunity } = addTokens(attrs, o.segments, 0, o.segments.length, reported, true);
    if (reported && opportunity > 0) attrs['prefix_handles.capture_rate'] = captured / opportunity;
    if (o.drift) {
      attrs['prefix_handles.drift.handle'] = o.drift.handle;
      attrs['prefix_handles.drift.previous_request'] = o.drift.previous_request;
      attrs['prefix_handles.drift.segment'] = o.drift.segment;
      if (o.drift.byte_offset !== undefined) attrs['prefix_handles.drift.byte_offset'] = o.drift.byte_offset;
    }
    span.setAttributes(attrs);
    // Runs of consecutive segments of one handle (a session's batches, a version each; an artifact): one event each, so
    // a long session's request is one event for its history, not one per batch (spanLimits would cut past 1,000).
    const segs = o.segments;
    for (let i = 0; i < segs.length; ) {
      const source = segs[i]!.source;
      const ref = parseRef(source);
      const id = ref?.id ?? source;
      let end = i + 1;
      while (end < segs.length && (parseRef(segs[end]!.source)?.id ?? segs[end]!.source) === id) end++;
      if (source !== 'inline') {
        const event: Attributes = { 'prefix_handles.handle.id': id, 'prefix_handles.handle.path': segs[i]!.path, 'prefix_handles.segment.index': i, 'prefix_handles.segment.count': end - i };
        if (ref?.version != null) {
          event['prefix_handles.handle.version'] = ref.version;
          event['prefix_handles.handle.last_version'] = parseRef(segs[end - 1]!.source)?.version ?? ref.version;
        }
        addTokens(event, segs, i, end, reported, false);
        span.addEvent('prefix_handles.handle', event, startedAt);
      }
      i = end;
    }
    // An answer cut off (the client left, the provider stopped): its usage is partial, its capture unknown.
    if (!u.complete) span.setStatus({ code: SpanStatusCode.ERROR, message: 'interrupted: the answer was cut off before its end' });
    span.end(e.finishedAt ?? e.startedAt ?? this.deps.clock.now());
  }

  failed(f: FailedCall): void {
    const span = this.start(f, f.startedAt);
    if (!span) return;
    const type = f.code ?? (f.status === null ? 'unreachable' : String(f.status));
    span.setAttribute('error.type', type);
    if (f.status !== null) span.setAttribute('http.response.status_code', f.status);
    span.setStatus({ code: SpanStatusCode.ERROR, message: `the provider call failed: ${type}` });
    span.end(f.finishedAt);
  }

  /** Exports what is queued now. A failed export is counted and logged (exportFailed), not thrown. */
  flush(): Promise<void> {
    return this.provider.forceFlush().catch(() => undefined);
  }

  /**
   * Exports what is queued, then stops (on SIGTERM, after the last reconciliation is committed). A collector that does
   * not answer holds it `waitMs` at most (its export would retry up to its timeout, OTEL_EXPORTER_OTLP_TIMEOUT's 10 s by default): the stop goes on.
   */
  shutdown(waitMs = 5_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)));
    return Promise.race([this.provider.shutdown().catch(() => undefined), waited]).finally(() => clearTimeout(timer));
  }

  /** The span of one call, a child of its caller's when the proxy got a `traceparent`; undefined when it is not kept. */
  private start(e: Pick<ReconciledEvent, 'tenantId' | 'requestId' | 'format' | 'model' | 'provider'>, startedAt: number): Span | undefined {
    const key = `${e.tenantId} ${e.requestId}`;
    const caller = this.parents.get(key);
    if (caller) this.parents.delete(key);
    // A full queue drops the span before it is made: a collector that is down costs the request path nothing more.
    if (this.queued >= this.config.maxQueueSize) {
      this.deps.metrics.otlpSpans.inc({ result: 'dropped_queue_full' });
      return undefined;
    }
    const parent = caller ? trace.setSpanContext(ROOT_CONTEXT, caller) : ROOT_CONTEXT;
    const operation = e.format === 'gemini' ? 'generate_content' : 'chat';
    const provider = PROVIDER_NAME[e.provider] ?? e.provider;
    const span = this.tracer.startSpan(
      `${operation} ${e.model}`,
      {
        kind: SpanKind.CLIENT,
        startTime: startedAt,
        attributes: {
          'gen_ai.operation.name': operation,
          'gen_ai.provider.name': provider,
          // The older name, still what some tools read.
          'gen_ai.system': provider,
          'gen_ai.request.model': e.model,
          'prefix_handles.request.id': e.requestId,
          'prefix_handles.request.url': `/v1/requests/${e.requestId}`,
          'prefix_handles.tenant.id': e.tenantId,
          'prefix_handles.format': e.format,
        },
      },
      parent,
    );
    // A caller's trace not sampled (its flags say so): no span, as the caller's own spans are not kept either.
    if (!span.isRecording()) return undefined;
    this.queued++;
    return span;
  }

  private exportFailed(spans: number, error: Error | undefined): void {
    this.deps.metrics.otlpSpans.inc({ result: 'dropped_export_failed' }, spans);
    this.unlogged.spans += spans;
    this.unlogged.exports++;
    const now = this.deps.clock.now();
    // One line per interval, whatever the number of failed exports: a collector that is down must not flood the log.
    if (now - this.loggedAt < this.config.errorLogEveryMs) return;
    const { spans: dropped, exports } = this.unlogged;
    this.deps.log.error(`OTLP trace export to ${shownUrl(this.config.url)} failed: ${error?.message ?? 'unknown error'}${otherTransport(this.config.protocol, error?.message)}; ${dropped} span(s) dropped in ${exports} failed export(s) since the last such line (at most one line every ${this.config.errorLogEveryMs / 1000} s; ph_otlp_spans_total counts them)`, {
      url: shownUrl(this.config.url),
      error: error?.message,
      droppedSpans: dropped,
      failedExports: exports,
    });
    this.loggedAt = now;
    this.unlogged = { spans: 0, exports: 0 };
  }
}

/** The exporters' compression setting (an enum of 'gzip' and 'none' the exporter packages do not export). */
type Compression = NonNullable<NonNullable<ConstructorParameters<typeof ProtobufExporter>[0]>['compression']>;

/** Node's longest timer (a longer one fires at once). */
const MAX_TIMER = 2_147_483_647;

/** Both gRPC packages are CommonJS alone: required, as their import would be, by the one module instance. */
const loadCjs = createRequire(import.meta.url);

/**
 * OpenTelemetry's exporter for the protocol, given the timeout and compression config.ts read (and checked: the
 * library skips a bad one with a warning nobody sees); it reads the certificates itself. The gRPC one takes the
 * endpoint's origin (http:// a plain connection, https:// TLS) and the headers as metadata.
 */
function exporterFor(config: OtlpConfig): GrpcExporter | JsonExporter | ProtobufExporter {
  // 0: no limit, as the specification has a timeout of zero (the library refuses 0; the longest timer is as long).
  const settings = { timeoutMillis: config.timeoutMs || MAX_TIMER, compression: config.compression as Compression };
  if (config.protocol === 'grpc') {
    // Loaded only when spoken: gRPC's client and its protobuf loader cost every start 50–70 ms and 3.4 MB of heap.
    const { Metadata } = loadCjs('@grpc/grpc-js') as typeof import('@grpc/grpc-js');
    const { OTLPTraceExporter } = loadCjs('@opentelemetry/exporter-trace-otlp-grpc') as typeof import('@opentelemetry/exporter-trace-otlp-grpc');
    const metadata = new Metadata();
    for (const [name, value] of Object.entries(config.headers)) metadata.set(name, value);
    return new OTLPTraceExporter({ url: config.url, metadata, ...settings });
  }
  const Exporter = config.protocol === 'http/json' ? JsonExporter : ProtobufExporter;
  return new Exporter({ url: config.url, headers: config.headers, ...settings });
}

/**
 * What the failure says when the endpoint speaks the other transport: an OTLP/HTTP export to a gRPC port is answered
 * with HTTP/2 frames, which Node reads as no HTTP/1.1 (`Parse Error: Expected HTTP/…`), and a gRPC export to an
 * OTLP/HTTP port gets an HTTP/1.1 answer (`Protocol error`). A Collector takes gRPC on 4317 and OTLP/HTTP on 4318.
 */
function otherTransport(protocol: OtlpProtocol, message = ''): string {
  if (protocol !== 'grpc' && message.startsWith('Parse Error')) return ' (the endpoint does not answer in HTTP/1.1: a gRPC port, such as 4317? Set OTEL_EXPORTER_OTLP_PROTOCOL=grpc, or point OTEL_EXPORTER_OTLP_ENDPOINT at the OTLP/HTTP port, such as 4318)';
  if (protocol === 'grpc' && message.includes('Protocol error')) return ' (the endpoint does not speak gRPC: an OTLP/HTTP port, such as 4318? Point OTEL_EXPORTER_OTLP_ENDPOINT at the gRPC port, such as 4317, or set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)';
  return '';
}

/** Where spans go, as the start line says it: the URL (gRPC's origin) and the protocol. */
export function exportTarget(config: OtlpConfig): string {
  const how = { 'http/protobuf': 'OTLP/HTTP protobuf', 'http/json': 'OTLP/HTTP JSON', grpc: 'OTLP/gRPC, the trace service on that host and port' }[config.protocol];
  return `${shownUrl(config.url)} (${how})`;
}

/**
 * What else the start line says of the export, so a deployment sees its settings took: the bodies' compression, the
 * export's timeout and the spans' resource (`service.name` first), as OTEL_EXPORTER_OTLP_COMPRESSION, _TIMEOUT,
 * OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES set them (or their defaults).
 */
export function exportSettings(config: OtlpConfig): string {
  const resource = Object.entries({ 'service.name': config.serviceName, ...config.resourceAttributes }).map(([k, v]) => `${k}=${v}`);
  return `${config.compression === 'gzip' ? 'gzip' : 'uncompressed'}, timeout ${config.timeoutMs} ms, resource ${resource.join(', ')}`;
}

/** A URL as logged: a user and password in it are not shown. */
export function shownUrl(url: string): string {
  const u = new URL(url);
  if (u.username || u.password) [u.username, u.password] = ['***', ''];
  return u.href;
}

const CAPTURED = CLASSES.indexOf('captured');
const TOKEN_KEYS = CLASSES.map((c) => `prefix_handles.tokens.${c}`);
const LEAKED_KEYS = MONEY_LEAKS.map((c) => `prefix_handles.leaked_usd.${c}`);
/** Money in billionths of a cent, as the API shows it: float noise is not sent. */
const money = (v: number) => Math.round(v * 1e11) / 1e11;

/**
 * Adds to `attrs` the tokens by waterfall class, the opportunity and the leaked money (USD, in all and by class) of the
 * handle segments in [from, to) (inline ones are the caller's own content, left out as the reports leave them out).
 * Every class is set, 0 included, on the span (`all`): a query can sum it; an event carries those above 0.
 */
function addTokens(attrs: Attributes, segments: SegmentOutcome[], from: number, to: number, reported: boolean, all: boolean): { captured: number; opportunity: number } {
  const tokens = new Array<number>(CLASSES.length).fill(0);
  const leaked = new Array<number>(MONEY_LEAKS.length).fill(0);
  let opportunity = 0;
  for (let i = from; i < to; i++) {
    const s = segments[i]!;
    if (s.source === 'inline') continue;
    for (let c = 0; c < CLASSES.length; c++) tokens[c]! += s.classes[CLASSES[c]!];
    opportunity += s.opportunity;
    const byClass = leakedByClass(s.classes, s.cost, reported);
    if (byClass) for (let c = 0; c < MONEY_LEAKS.length; c++) leaked[c]! += byClass[MONEY_LEAKS[c]!];
  }
  for (let c = 0; c < CLASSES.length; c++) if (all || tokens[c]! > 0) attrs[TOKEN_KEYS[c]!] = tokens[c]!;
  attrs['prefix_handles.opportunity_tokens'] = opportunity;
  if (reported) attrs['prefix_handles.leaked_usd'] = money(leaked.reduce((a, b) => a + b, 0));
  for (let c = 0; c < MONEY_LEAKS.length; c++) if (leaked[c]! > 0) attrs[LEAKED_KEYS[c]!] = money(leaked[c]!);
  return { captured: tokens[CAPTURED]!, opportunity };
}
