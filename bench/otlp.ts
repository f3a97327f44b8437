// The trace export's cost (src/otlp.ts), in-process, no `wrk`: a call rendered and reconciled through the domain (a
// system prompt and a document as handles, the group commit awaited), with the export on (to bench/otlp-collector.ts,
// a child process) against the same app without it, alternated in the same run; and the CPU one
// span takes, made (TraceExport.reconciled) and exported (serialised to OTLP JSON and posted, in batches of 512).
import type { Clock } from '../src/domain/clock';
import type { ReconciledEvent } from '../src/domain/reconcile/reconciler';
import { fmt, printTable, startTsServer, tempDir, timeAlternating, writeResults, type Benchmark } from './lib';
import { inProcess, prose } from './render';
import { join } from 'node:path';

const SAMPLES = 400;
const SPANS = 5_000;

function app(file: string, clock: Clock, collector?: string) {
  const a = inProcess(file, {
    clock,
    config: collector ? { otlp: { url: `${collector}/v1/traces`, protocol: 'http/json', headers: {}, serviceName: 'bench', maxQueueSize: 2048, scheduledDelayMs: 5_000, errorLogEveryMs: 60_000 } } : {},
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
        const traces = on.services.traces!;
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
        const madeOnly = made;
        const us = (c: NodeJS.CpuUsage) => (c.user + c.system) / SPANS;
        const exported = (await on.services.metrics.otlpSpans.get()).values.find((v) => v.labels.result === 'exported')?.value ?? 0;
        printTable(
          ['what', 'value'],
          [
            ['a call rendered + reconciled, export off (median)', `${fmt.ms(baseline.p50Ms)}`],
            ['the same, export on (median)', `${fmt.ms(subject.p50Ms)}`],
            ['CPU per span, made (TraceExport.reconciled)', `${us(madeOnly).toFixed(1)} µs`],
            ['CPU per span, made and exported (OTLP JSON over HTTP, batches of ≤512)', `${us(total).toFixed(1)} µs`],
            ['spans exported', String(exported)],
          ],
        );
        writeResults('otlp', { samples: SAMPLES, spans: SPANS, offMedianMs: baseline.p50Ms, onMedianMs: subject.p50Ms, cpuUsPerSpanMade: us(madeOnly), cpuUsPerSpanTotal: us(total), exported });
      } finally {
        await on.services.traces?.shutdown();
        on.close();
        off.close();
        await echo.stop();
      }
    },
  },
];
