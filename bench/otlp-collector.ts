// The collector for `npm run bench -- otlp`: a bare Hono app that reads each OTLP/HTTP export's body and answers `{}`
// (an OTLP success), as a collector does, without echoing the body back for the exporter to parse; and a gRPC server
// of OTLP's trace service (@grpc/grpc-js) that takes each export's message and answers an empty one. `GET /stats`
// gives its gRPC port and the bytes and exports it took by protocol.
import { Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const stats: Record<string, { exports: number; bytes: number }> = { 'http/json': { exports: 0, bytes: 0 }, 'http/protobuf': { exports: 0, bytes: 0 }, grpc: { exports: 0, bytes: 0 } };
const count = (protocol: string, bytes: number) => {
  stats[protocol]!.exports++;
  stats[protocol]!.bytes += bytes;
};

const identity = (b: Buffer) => b;
const TRACE_SERVICE: ServiceDefinition = {
  Export: { path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export', requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
};
const grpc = new Server();
grpc.addService(TRACE_SERVICE, {
  Export: (call: { request: Buffer }, done: (err: null, value: Buffer) => void) => {
    count('grpc', call.request.length);
    done(null, Buffer.alloc(0));
  },
});
const grpcPort = await new Promise<number>((resolve, reject) => grpc.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))));

const app = new Hono();
app.get('/healthz', (c) => c.text('ok'));
app.get('/stats', (c) => c.json({ grpcPort, stats }));
app.post('/v1/traces', async (c) => {
  const body = await c.req.arrayBuffer();
  count(c.req.header('content-type') === 'application/x-protobuf' ? 'http/protobuf' : 'http/json', body.byteLength);
  return c.body('{}', 200, { 'content-type': 'application/json' });
});

const server = serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 0), hostname: process.env.HOST ?? '127.0.0.1' });
process.on('SIGTERM', () => (grpc.forceShutdown(), server.close(() => process.exit(0))));
