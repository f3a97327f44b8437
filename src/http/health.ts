import { Hono } from 'hono';
import type { Store } from '../store/store';

/**
 * The orchestrator's probes, without a key. `/healthz` (liveness): the database answers and its file is the one
 * opened; a failure there needs a restart. `/readyz` (readiness): the same, and 503 `draining` once a stop has begun,
 * so a load balancer stops sending before the listener closes (PH_SHUTDOWN_DELAY_MS).
 */
export function healthRoutes(store: Store, draining: AbortSignal) {
  const app = new Hono();
  app.get('/healthz', (c) => {
    const failure = store.health();
    return failure ? c.json({ status: 'failing', detail: failure }, 503) : c.json({ status: 'ok' });
  });
  app.get('/readyz', (c) => {
    if (draining.aborted) return c.json({ status: 'draining' }, 503);
    const failure = store.health();
    return failure ? c.json({ status: 'failing', detail: failure }, 503) : c.json({ status: 'ok' });
  });
  return app;
}
