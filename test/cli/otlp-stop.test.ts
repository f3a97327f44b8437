// The trace export as operators run it: the service a child process, its endpoint from OTEL_EXPORTER_OTLP_ENDPOINT and
// no protocol set (OTLP/HTTP protobuf, the default) or OTEL_EXPORTER_OTLP_PROTOCOL=grpc, the proxy on the built-in
// simulator. A span still waiting for its batch when SIGTERM comes is sent before the exit.

import Anthropic from '@anthropic-ai/sdk';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { grpcReceiver, receiver } from '../helpers/otlp';
import { cleanEnv, startService } from '../helpers/processes';

const dir = mkdtempSync(join(tmpdir(), 'ph-otlp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

for (const protocol of ['http/protobuf', 'grpc'] as const) {
  it(`sends the spans still queued when it stops on SIGTERM, in the caller’s trace, with the headers configured (${protocol})`, async () => {
    const r = protocol === 'grpc' ? await grpcReceiver() : await receiver();
    try {
      // The batch waits 5 s: the span goes out on the stop, or with its batch if the stop comes later; never lost.
      // gRPC set by the traces' own variable: the start line names it, as the one to change.
      // Over HTTP, gzip bodies and a resource attribute from the service's own environment, as a deployment sets them.
      const set: Record<string, string> = protocol === 'grpc' ? { OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc' } : { OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip', OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=prod' };
      const service = await startService(join(dir, protocol.replace('/', '-')), { PH_UPSTREAM: 'simulator', OTEL_EXPORTER_OTLP_ENDPOINT: r.url, OTEL_EXPORTER_OTLP_HEADERS: 'x-langfuse-key=pk-1', OTEL_SERVICE_NAME: 'agents', ...set });
      const key = readFileSync(join(dir, protocol.replace('/', '-'), 'api-key'), 'utf8').trim();
      const sdk = new Anthropic({ baseURL: `${service.url}/proxy/anthropic`, apiKey: 'provider-key', maxRetries: 0, defaultHeaders: { 'x-ph-key': key, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } });
      const { response } = await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'Hello' }] }).withResponse();
      const id = response.headers.get('x-ph-request-id')!;
      // Reconciled (and so announced) before the stop: the stop commits what is queued, then flushes the spans.
      for (let i = 0; i < 5_000; i++) {
        const res = await fetch(`${service.url}/v1/requests/${id}`, { headers: { authorization: `Bearer ${key}` } });
        if (((await res.json()) as { status: string }).status === 'reconciled') break;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      // No OTEL_EXPORTER_OTLP_PROTOCOL: the specification's default, OTLP/HTTP protobuf.
      const target = protocol === 'grpc' ? `${r.url}/ (OTLP/gRPC` : `${r.url}/v1/traces (OTLP/HTTP protobuf)`;
      expect(service.output()).toContain(`each reconciled request is sent as a span to ${target}`);
      expect(service.output()).toContain(protocol === 'grpc' ? '; OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : '; OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL');
      // The settings the service's environment gave, said at start.
      expect(service.output()).toContain(protocol === 'grpc' ? '; uncompressed, timeout 10000 ms, resource service.name=agents' : '; gzip, timeout 10000 ms, resource service.name=agents, deployment.environment.name=prod');
      expect(await service.stop()).toBe(0);
      expect(r.spans.map((s) => [s.traceId, s.parentSpanId, s.attrs['prefix_handles.request.id'], s.resource['service.name']])).toEqual([['0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331', id, 'agents']]);
      if ('calls' in r) expect(r.calls[0]!.metadata['x-langfuse-key']).toBe('pk-1');
      else {
        expect(r.bodies[0]!.headers['x-langfuse-key']).toBe('pk-1');
        expect(r.bodies[0]!.type).toBe('application/x-protobuf');
        expect(r.bodies[0]!.headers['content-encoding']).toBe('gzip');
        expect(r.spans[0]!.resource).toEqual({ 'service.name': 'agents', 'deployment.environment.name': 'prod' });
      }
    } finally {
      await r.close();
    }
  });
}

it('loads gRPC’s client only for an export over gRPC (with the export off or over HTTP, a start does not pay for it)', () => {
  // In a process of its own: the module cache is the process's. Each protocol's exporter made as the service makes it.
  const loaded = (protocol: string | null) => {
    const code = `
      import { createRequire } from 'node:module';
      await import('./src/app.ts');
      const { TraceExport } = await import('./src/otlp.ts');
      const { Metrics } = await import('./src/http/metrics.ts');
      const { loadConfig } = await import('./src/config.ts');
      ${protocol ? `const otlp = loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_EXPORTER_OTLP_PROTOCOL: '${protocol}' }).otlp;
      await new TraceExport(otlp, { metrics: new Metrics(false), log: { info() {}, error() {} }, clock: { now: () => 0 } }).shutdown();` : ''}
      const cache = Object.keys(createRequire(import.meta.url).cache);
      process.stdout.write(String(cache.some((p) => p.includes('@grpc/grpc-js'))));`;
    return execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: join(import.meta.dirname, '../..'), env: cleanEnv(), encoding: 'utf8' });
  };
  expect([loaded(null), loaded('http/protobuf'), loaded('http/json'), loaded('grpc')]).toEqual(['false', 'false', 'false', 'true']);
});
