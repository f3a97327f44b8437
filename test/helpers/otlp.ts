// Loopback OTLP receivers for the trace export's tests: a node:http server that decodes the bodies the exporter posts
// to /v1/traces (JSON, or protobuf by the `content-type`), and a gRPC server of the trace service; each turns the
// spans into plain attributes, the same for every protocol. The protobuf schema is OTLP's (opentelemetry-proto's
// trace, common and resource messages, the fields read here), decoded by protobufjs: not the exporter's own code.

import { Server as GrpcServer, ServerCredentials, status as grpcStatus, type Metadata, type ServiceDefinition } from '@grpc/grpc-js';
import { createServer, type Server } from 'node:http';
import { createServer as createHttp2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import protobuf from 'protobufjs';
import { OTLP_DEFAULTS, type OtlpConfig, type OtlpProtocol } from '../../src/config';

type Value = { stringValue?: string; intValue?: number | string; doubleValue?: number; boolValue?: boolean; arrayValue?: { values?: Value[] } };
type KeyValue = { key: string; value: Value };
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: KeyValue[];
  events?: Array<{ name: string; timeUnixNano: string | number; attributes?: KeyValue[] }>;
  status?: { code?: number; message?: string };
}
/**
 * The export's settings as the tests use them: an export every minute unless flushed, and a collector that is down
 * failing at once (no retry fits in the time left). `url` is the receiver's; OTLP/HTTP posts to its /v1/traces.
 */
export const otlpConfig = (url: string, protocol: OtlpProtocol = 'http/json', extra: Partial<OtlpConfig> = {}): OtlpConfig => ({
  ...OTLP_DEFAULTS,
  url: protocol === 'grpc' ? url : `${url}/v1/traces`,
  protocol,
  headers: { authorization: 'Basic cGs6c2s=', 'x-team': 'ml' },
  serviceName: 'agent-proxy',
  scheduledDelayMs: 60_000,
  timeoutMs: 500,
  ...extra,
});

export interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  start: number;
  end: number;
  attrs: Record<string, unknown>;
  events: Array<{ name: string; attrs: Record<string, unknown> }>;
  status: { code?: number; message?: string };
  resource: Record<string, unknown>;
}

const valueOf = (v: Value): unknown =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.doubleValue ?? v.boolValue ?? (v.arrayValue ? (v.arrayValue.values ?? []).map(valueOf) : undefined);
const attributes = (list: KeyValue[] = []) => Object.fromEntries(list.map((a) => [a.key, valueOf(a.value)]));
const ms = (nanos: string | number) => Number(BigInt(nanos) / 1_000_000n);

const SCHEMA = `
syntax = "proto3";
package otlp;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ExportTraceServiceResponse { ExportTracePartialSuccess partial_success = 1; }
message ExportTracePartialSuccess { int64 rejected_spans = 1; string error_message = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; repeated KeyValue attributes = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; fixed32 flags = 16;
  string name = 5; int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8;
  repeated KeyValue attributes = 9; uint32 dropped_attributes_count = 10;
  repeated Event events = 11; uint32 dropped_events_count = 12; Status status = 15;
  message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4; }
}
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; bytes bytes_value = 7; }
}
message ArrayValue { repeated AnyValue values = 1; }
`;
const schema = protobuf.parse(SCHEMA, { keepCase: false }).root;
const Request = schema.lookupType('otlp.ExportTraceServiceRequest');
const Response = schema.lookupType('otlp.ExportTraceServiceResponse');
/** A protobuf body as its JSON form has it: ids in hex, 64-bit numbers as strings, fields left unset absent. */
const fromProtobuf = (body: Uint8Array) => {
  const hex = (b: Uint8Array | undefined) => (b && b.length > 0 ? Buffer.from(b).toString('hex') : undefined);
  const parsed = Request.toObject(Request.decode(body), { longs: String, defaults: false }) as { resourceSpans: Array<{ resource: { attributes: KeyValue[] }; scopeSpans: Array<{ spans: Array<OtlpSpan & Record<string, unknown>> }> }> };
  for (const rs of parsed.resourceSpans ?? [])
    for (const ss of rs.scopeSpans ?? [])
      for (const sp of ss.spans ?? []) Object.assign(sp, { traceId: hex(sp.traceId as unknown as Uint8Array), spanId: hex(sp.spanId as unknown as Uint8Array), parentSpanId: hex(sp.parentSpanId as unknown as Uint8Array), kind: sp.kind ?? 0 });
  return parsed;
};

/** The spans of one export request, JSON's or protobuf's decoded. */
function spansOf(parsed: { resourceSpans: Array<{ resource: { attributes: KeyValue[] }; scopeSpans: Array<{ spans: OtlpSpan[] }> }> }): Span[] {
  const spans: Span[] = [];
  for (const rs of parsed.resourceSpans ?? [])
    for (const ss of rs.scopeSpans ?? [])
      for (const s of ss.spans ?? [])
        spans.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId || undefined,
          name: s.name,
          kind: s.kind,
          start: ms(s.startTimeUnixNano),
          end: ms(s.endTimeUnixNano),
          attrs: attributes(s.attributes),
          events: (s.events ?? []).map((e) => ({ name: e.name, attrs: attributes(e.attributes) })),
          status: s.status ?? {},
          resource: attributes(rs.resource.attributes),
        });
  return spans;
}

/**
 * An OTLP/HTTP receiver on a free loopback port: the spans of the bodies it took (JSON or protobuf, by their
 * `content-type`), and what it answers.
 */
export async function receiver(status = 200, hold?: Promise<void>) {
  const spans: Span[] = [];
  /** Each export's: its content type, headers, the bytes sent (gzip's, when compressed) and its spans (200 alone). */
  const bodies: Array<{ type: string | undefined; headers: Record<string, string | string[] | undefined>; bytes: number; spans: number }> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', async () => {
      await hold;
      const sent = Buffer.concat(chunks);
      let taken: Span[] = [];
      if (status === 200 && req.url === '/v1/traces') {
        // A collector's own reading of `Content-Encoding: gzip`: a body that is not gzip fails here, not quietly.
        const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(sent) : sent;
        taken = spansOf(req.headers['content-type'] === 'application/x-protobuf' ? fromProtobuf(body) : JSON.parse(body.toString('utf8')));
      }
      bodies.push({ type: req.headers['content-type'], headers: req.headers, bytes: sent.length, spans: taken.length });
      spans.push(...taken);
      res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, spans, bodies, close: () => new Promise<void>((r) => (server.close(() => r()), server.closeAllConnections())) };
}

/** OTLP's trace service over gRPC, its messages (de)serialised with the schema above. */
const TRACE_SERVICE: ServiceDefinition = {
  Export: {
    path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    requestStream: false,
    responseStream: false,
    requestSerialize: (v: Buffer) => v,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (v: object) => Buffer.from(Response.encode(Response.create(v)).finish()),
    responseDeserialize: (b: Buffer) => Response.decode(b),
  },
};

/**
 * An OTLP/gRPC receiver (the trace service of @grpc/grpc-js) on a free loopback port: the spans it took, each call's
 * metadata, and what it answers (`code` a gRPC status: UNAVAILABLE is retried by the exporter, others are not).
 */
export async function grpcReceiver(code: grpcStatus = grpcStatus.OK) {
  const spans: Span[] = [];
  const calls: Array<{ metadata: Record<string, unknown> }> = [];
  const server = new GrpcServer();
  server.addService(TRACE_SERVICE, {
    Export: (call: { request: Buffer; metadata: Metadata }, done: (err: { code: grpcStatus; details: string } | null, value?: object) => void) => {
      calls.push({ metadata: call.metadata.getMap() });
      if (code !== grpcStatus.OK) return done({ code, details: 'refused by the test receiver' });
      spans.push(...spansOf(fromProtobuf(call.request)));
      done(null, {});
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { url: `http://127.0.0.1:${port}`, spans, calls, close: () => new Promise<void>((r) => (server.forceShutdown(), r())) };
}

/**
 * OTLP's trace service as bare HTTP/2 (node:http2), for what @grpc/grpc-js's server decodes unseen: each call's
 * `grpc-encoding` header and its message's compressed flag, as sent. The message is unpacked here (gunzip when the
 * flag says so) and its spans read like the other receivers'.
 */
export async function bareGrpcReceiver() {
  const spans: Span[] = [];
  const calls: Array<{ path: string | undefined; encoding: string | undefined; compressed: boolean; bytes: number }> = [];
  const server = createHttp2Server();
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('end', () => {
      // A gRPC message: a flag byte (1: compressed with the call's grpc-encoding), its length (4 bytes), its bytes.
      const frame = Buffer.concat(chunks);
      const compressed = frame[0] === 1;
      const message = frame.subarray(5, 5 + frame.readUInt32BE(1));
      calls.push({ path: headers[':path'], encoding: headers['grpc-encoding'] as string | undefined, compressed, bytes: message.length });
      spans.push(...spansOf(fromProtobuf(compressed ? gunzipSync(message) : message)));
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      // An empty ExportTraceServiceResponse: an uncompressed message of 0 bytes.
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, spans, calls, close: () => new Promise<void>((r) => server.close(() => r())) };
}
