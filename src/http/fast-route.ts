import type { Context, Handler } from 'hono';
import { DomainError } from '../domain/errors';
import { headerOf } from './auth';
import { BodyError } from './body';
import { logRequest, type Metrics } from './metrics';
import { statusOf } from './problem';
import type { AppEnv } from './router';

/**
 * A hot route mounted ahead of the global middleware (see app.ts). It counts
 * and logs itself in one layer, so its per-request overhead is its own work;
 * the handler authenticates (and sets `auth`) itself. Errors are counted here
 * and answered by the app's error handler, as on every other route.
 */
export function fastRoute(
  metrics: Metrics,
  log: boolean,
  method: string,
  route: string,
  handle: (c: Context<AppEnv>) => Response | Promise<Response>,
): Handler<AppEnv> {
  // Counter children per status, bound once: inc() on a child skips hashing the label set.
  const counters = new Map<number, { inc(): void }>();
  const count = (c: Context<AppEnv>, status: number, started: number) => {
    let counter = counters.get(status);
    if (!counter) counters.set(status, (counter = metrics.requests.labels(method, route, String(status))));
    counter.inc();
    if (log)
      logRequest({ requestId: headerOf(c, 'x-request-id'), method, route, status, seconds: (performance.now() - started) / 1000, tenant: c.get('auth')?.tenantId });
  };
  const failed = (c: Context<AppEnv>, err: unknown, started: number): never => {
    count(c, err instanceof DomainError || err instanceof BodyError ? statusOf(err.code) : 500, started);
    throw err;
  };
  return (c) => {
    const started = log ? performance.now() : 0;
    let res: Response | Promise<Response>;
    try {
      res = handle(c);
    } catch (err) {
      return failed(c, err, started);
    }
    // Synchronous handlers (expand) stay synchronous: no promise per request.
    if (!(res instanceof Promise)) {
      count(c, res.status, started);
      return res;
    }
    return res.then(
      (r) => (count(c, r.status, started), r),
      (err: unknown) => failed(c, err, started),
    );
  };
}
