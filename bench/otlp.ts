// The trace export's cost (src/otlp.ts), in-process, no `wrk`: a call rendered and reconciled through the domain (a
// system prompt and a document as handles, the group commit awaited), with the export on (the default protocol,
// OTLP/HTTP protobuf, to bench/otlp-collector.ts, a child process) against the same app without it, alternated in the
// same run; and for each protocol (HTTP protobuf, HTTP JSON, gRPC) the CPU one span takes, made
// (TraceExport.reconciled) and exported (serialised and sent, in batches of 512), and the bytes it takes on the wire.
import { OTLP_DEFAULTS, type OtlpConfig, type OtlpProtocol } from '../src/config';
import type { Clock } from '../src/domain/clock';
import type { ReconciledEvent } from '../src/domain/reconcile/reconciler';
import { Metrics } from '../src/http/metrics';
import { TraceExport } from '../src/otlp';
import { fmt, printTable, startTsServer, tempDir, timeAlternating, writeResults, type Benchmark } from './lib';
import { inProcess, prose } from './render';
import { join } from 'node:path';

const SAMPLES = 400;
const SPANS = 5_000;
const PROTOCOLS: OtlpProtocol[] = ['http/protobuf', 'http/json', 'grpc'];

const exportTo = (url: string, protocol: OtlpProtocol): OtlpConfig => ({ ...OTLP_DEFAULTS, url, protocol, headers: {}, serviceName: 'bench' });

function app(file: string, clock: Clock, collector?: string) {
  const a = inProcess(file, {
    clock,
    config: collector ? { otlp: exportTo(`${collector}/v1/traces`, 'http/protobuf') } : {},
  });
  const h = a.services.handles;
  const sys = h.mintArtifact(a.tenantId, { kind: 'system', content: prose(3, 6 * 1024) }).handle.id;
  const doc = h.mintArtifact(a.tenantId, { kind: 'document', content: prose(5, 4 * 1024) }).handle.id;
  /** One call: rendered, reported with the provider's usage (a read of what the last call wrote), committed. */
  const call = async (i: number) => {
    const body = `{"model":"claude-sonnet-4-6","max_tokens":256,"prefix":["${sys}","${doc}"],"messages":[{"role":"user","content":"Question ${i}: where is my order?"}]}`;
    const r = a.services.requests.render({ tenantId: a.tenantId, format: 'anthropic', bodyText: body, pointer: '/request' });
    const p = (r.prediction ?? { read_tokens: 0, write_tokens: 0 }) as { read_tokens: number; write_tokens: number };
    const total = r.segments.at(-1)!.token_end;
    const at = clock.now();
    await a.services.reconciler.ingest(a.tenantId, {
      request_id: r.requestId,
      usage: { input_tokens: total - p.read_tokens - p.write_tokens, cache_creation_input_tokens: p.write_tokens, cache_read_input_tokens: p.read_tokens, output_tokens: 50 },
      started_at: at,
      first_byte_at: at + 500,
      finished_at: at + 1_500,
    });
  };
  return { ...a, call };
}

export const otlpBenchmarks: Benchmark[] = [
  {
    name: 'otlp',
    async run() {
      const echo = await startTsServer({ entry: 'bench/otlp-collector.ts', env: {}, healthPath: '/healthz', label: 'OTLP collector' });
      let now = Date.UTC(2026, 11, 1);
      const clock: Clock = { now: () => (now += 1_000) };
      const dir = tempDir('otlp');
      const on = app(join(dir, 'on.db'), clock, echo.url);
      const off = app(join(dir, 'off.db'), clock);
      try {
        const { baseline, subject } = await timeAlternating((i) => off.call(i), (i) => on.call(i), { samples: SAMPLES, warmup: 20 });
        await on.services.traces!.flush();

        // One span's CPU, made and exported, over SPANS copies of a real reconciliation's event.
        let event: ReconciledEvent | undefined;
        const stop = on.services.reconciler.onReconciled((e) => (event = e));
        await on.call(-1);
        stop();
        const stats = async () => (await (await fetch(`${echo.url}/stats`)).json()) as { grpcPort: number; stats: Record<OtlpProtocol, { exports: number; bytes: number }> };
        const { grpcPort } = await stats();
        const rows: string[][] = [];
        const perProtocol: Record<string, { cpuUsPerSpanMade: number; cpuUsPerSpanSent: number; cpuUsPerSpanTotal: number; bytesPerSpan: number; exported: number }> = {};
        for (const protocol of PROTOCOLS) {
          const metrics = new Metrics(false);
          const url = protocol === 'grpc' ? `http://127.0.0.1:${grpcPort}` : `${echo.url}/v1/traces`;
          const traces = new TraceExport(exportTo(url, protocol), { metrics, clock, log: { info: () => undefined, error: (msg) => console.error(msg) } });
          // Warmed first (untimed): making a span is the same for each protocol, and the first one measured would pay the JIT's warm-up.
          for (let i = 0; i < 1_000; i++) traces.reconciled({ ...event!, requestId: `req_warm${i}` });
          await traces.flush();
          const before = (await stats()).stats[protocol].bytes;
          // In chunks of 1,000 (the queue holds 2,048): the CPU of making them, then of exporting them (flush).
          const made = { user: 0, system: 0 };
          const total = { user: 0, system: 0 };
          for (let chunk = 0; chunk < SPANS / 1_000; chunk++) {
            const c0 = process.cpuUsage();
            for (let i = 0; i < 1_000; i++) traces.reconciled({ ...event!, requestId: `req_bench${chunk * 1_000 + i}` });
            const c1 = process.cpuUsage(c0);
            await traces.flush();
            const c2 = process.cpuUsage(c0);
            made.user += c1.user;
            made.system += c1.system;
            total.user += c2.user;
            total.system += c2.system;
          }
          await traces.shutdown();
          const us = (c: NodeJS.CpuUsage) => (c.user + c.system) / SPANS;
          const exported = ((await metrics.otlpSpans.get()).values.find((v) => v.labels.result === 'exported')?.value ?? 0) - 1_000;
          const bytesPerSpan = ((await stats()).stats[protocol].bytes - before) / SPANS;
          const sent = { user: total.user - made.user, system: total.system - made.system };
          perProtocol[protocol] = { cpuUsPerSpanMade: us(made), cpuUsPerSpanSent: us(sent), cpuUsPerSpanTotal: us(total), bytesPerSpan, exported };
          rows.push([`${protocol}: CPU per span made / sent (serialised, batches of ≤512) / both; bytes per span sent`, `${us(made).toFixed(1)} / ${us(sent).toFixed(1)} / ${us(total).toFixed(1)} µs; ${bytesPerSpan.toFixed(0)} B (${exported} exported)`]);
        }
        printTable(
          ['what', 'value'],
          [
            ['a call rendered + reconciled, export off (median)', `${fmt.ms(baseline.p50Ms)}`],
            ['the same, export on, http/protobuf (median)', `${fmt.ms(subject.p50Ms)}`],
            ...rows,
          ],
        );
        writeResults('otlp', { samples: SAMPLES, spans: SPANS, offMedianMs: baseline.p50Ms, onMedianMs: subject.p50Ms, protocols: perProtocol });
      } finally {
        await on.services.traces?.shutdown();
        on.close();
        off.close();
        await echo.stop();
      }
    },
  },
];
