import type { MiddlewareHandler } from 'hono';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AppEnv } from './router';
import { MONEY_LEAKS } from '../domain/reconcile/waterfall';

/**
 * Prometheus metrics. Labels are bounded: route patterns (never raw paths),
 * status codes, providers, models and tenants — never handle ids.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({ name: 'ph_http_requests_total', help: 'HTTP requests by route pattern and status', labelNames: ['method', 'route', 'status'], registers: [this.registry] });
  readonly duration = new Histogram({ name: 'ph_http_request_duration_seconds', help: 'HTTP request duration by route pattern', labelNames: ['method', 'route'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5], registers: [this.registry] });
  readonly proxyLatency = new Histogram({ name: 'ph_proxy_upstream_seconds', help: 'Proxy: time to upstream first byte and to the end of the answer', labelNames: ['provider', 'phase'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [this.registry] });
  readonly proxyOverhead = new Histogram({ name: 'ph_proxy_overhead_seconds', help: 'Proxy: time spent before the upstream call (auth, render, record)', labelNames: ['provider'], buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05], registers: [this.registry] });
  readonly sessionAppends = new Counter({ name: 'ph_proxy_session_appends_total', help: 'Proxy: x-ph-session turns appended, replayed (an SDK retry of the call that appended the last turn, its answer lost, answered with that answer again), or not (a concurrent turn was appended first, the session was deleted, a reply that cannot be kept whole)', labelNames: ['result'], registers: [this.registry] });
  readonly tokens = new Counter({ name: 'ph_prompt_tokens_total', help: 'Reconciled prompt tokens by provider, model and kind (read, written, uncached; unknown: a report without cache fields)', labelNames: ['provider', 'model', 'kind'], registers: [this.registry] });
  readonly captureRate = new Gauge({ name: 'ph_capture_rate', help: 'Captured / opportunity tokens per tenant since start', labelNames: ['tenant'], registers: [this.registry] });
  // The gauge's two sums as counters: a capture rate over a window (rate / rate) that a restart does not reset.
  readonly captureTokens = new Counter({ name: 'ph_capture_tokens_total', help: 'Handle tokens of reports with cache fields, per tenant: opportunity, and captured (confirmed as cache reads) of it', labelNames: ['tenant', 'kind'], registers: [this.registry] });
  // Leaked money of handle content by the class that missed it, as the reports' leaked_by_class: an alert on what
  // drift cost in the last hour is a rate() of one series.
  readonly leakedUsd = new Counter({ name: 'ph_leaked_usd_total', help: "Leaked savings (USD, against perfect capture) of handle content per tenant, by the class that missed them (the reports' leaked_by_class)", labelNames: ['tenant', 'class'], registers: [this.registry] });
  /** Read at each scrape: the proxy's finished calls waiting for an earlier call of their scope (see StartOrder). */
  proxyWaitingSource: () => number = () => 0;
  readonly proxyWaiting: Gauge = new Gauge({
    name: 'ph_proxy_reconciliations_waiting',
    help: 'Proxy: finished calls whose reconciliation waits for an earlier call of the same cache scope to settle',
    registers: [this.registry],
    collect: (): void => this.proxyWaiting.set(this.proxyWaitingSource()),
  });
  // Off (no OTEL_EXPORTER_OTLP_ENDPOINT): never counted. Dropped spans are what a tracing tool never got.
  readonly otlpSpans = new Counter({ name: 'ph_otlp_spans_total', help: 'Trace export (OTLP): spans of reconciled requests exported, or dropped (the queue full, or their export failed: the collector down or refusing)', labelNames: ['result'], registers: [this.registry] });
  readonly requestsPruned = new Counter({ name: 'ph_requests_pruned_total', help: 'Requests deleted with their detail past retention (PH_REQUEST_RETENTION_DAYS, or a prune asked for)', registers: [this.registry] });
  private readonly captureTotals = new Map<string, { captured: number; opportunity: number }>();

  constructor(withDefaults = true) {
    if (withDefaults) collectDefaultMetrics({ register: this.registry, prefix: 'ph_' });
  }

  /** A deleted tenant's series are dropped: its id is not scraped again. */
  forgetTenant(tenant: string): void {
    this.captureTotals.delete(tenant);
    this.captureRate.remove({ tenant });
    for (const kind of ['opportunity', 'captured']) this.captureTokens.remove({ tenant, kind });
    for (const cls of MONEY_LEAKS) this.leakedUsd.remove({ tenant, class: cls });
  }

  recordCapture(tenant: string, captured: number, opportunity: number): void {
    const t = this.captureTotals.get(tenant) ?? { captured: 0, opportunity: 0 };
    t.captured += captured;
    t.opportunity += opportunity;
    this.captureTotals.set(tenant, t);
    this.captureTokens.inc({ tenant, kind: 'opportunity' }, opportunity);
    this.captureTokens.inc({ tenant, kind: 'captured' }, captured);
    if (t.opportunity > 0) this.captureRate.set({ tenant }, t.captured / t.opportunity);
  }
}

/** Counts and times every request by its route pattern, and logs one JSON line per request. */
const PROBES = new Set(['/healthz', '/readyz']);

export function observe(metrics: Metrics, log: boolean): MiddlewareHandler<AppEnv> {
  return async function observeRequest(c, next) {
    const start = performance.now();
    await next();
    const route = c.req.routePath || 'unmatched';
    const seconds = (performance.now() - start) / 1000;
    metrics.requests.inc({ method: c.req.method, route, status: String(c.res.status) });
    metrics.duration.observe({ method: c.req.method, route }, seconds);
    // Never the body, the query or a key: method, route pattern, status, time and ids only. A probe that passes is
    // counted but not logged: an orchestrator's every few seconds would bury the log; a failing one is logged.
    if (log && !(c.res.status === 200 && PROBES.has(route))) logRequest({ requestId: c.get('requestId'), method: c.req.method, route, status: c.res.status, seconds, tenant: c.get('auth')?.tenantId });
  };
}

/** One JSON line per request: ids, route pattern, status and time — never a body, a query or a key. */
export function logRequest(r: { requestId?: string; method: string; route: string; status: number; seconds: number; tenant?: string; recorded?: string }): void {
  process.stdout.write(
    `${JSON.stringify({ level: 'info', time: new Date().toISOString(), requestId: r.requestId, method: r.method, route: r.route, status: r.status, ms: Math.round(r.seconds * 1e4) / 10, tenant: r.tenant, recorded: r.recorded })}\n`,
  );
}

