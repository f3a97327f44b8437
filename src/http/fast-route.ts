import type { Context, Handler } from 'hono';
import { randomUUID } from 'node:crypto';
import { DomainError } from '../domain/errors';
import type { AuthContext, TenantService } from '../domain/tenants';
import { authenticateRequest, headerOf } from './auth';
import { BodyError, checkBody, closingIfUnread } from './body';
import { logRequest, type Metrics } from './metrics';
import type { QueryParams } from './query-params';
import { handleError, saneRequestId, statusOf } from './problem';
import type { AppEnv } from './router';

/** The response header naming the request, for a fast route's own responses. */
export const requestIdHeader = (c: Context<AppEnv>) => ({ 'x-request-id': c.get('requestId') });

/**
 * A hot POST route mounted ahead of the global middleware (see app.ts; expand has
 * its own, leaner wrapper in routes/handles.ts). It names,
 * counts, times and logs itself in one layer, as the middleware would, so its
 * per-request overhead is its own work; the handler authenticates (and sets
 * `auth`) itself and answers with `x-request-id` (requestIdHeader). Errors are
 * counted here and answered by the app's error handler (handleError), as on every other route.
 */
export function fastRoute(
  metrics: Metrics,
  log: boolean,
  method: string,
  route: string,
  handle: (c: Context<AppEnv>) => Promise<Response>,
): Handler<AppEnv> {
  // Metric children bound once: inc() and observe() on a child skip hashing the label set.
  const counters = new Map<number, { inc(): void }>();
  const duration = metrics.duration.labels(method, route);
  const count = (c: Context<AppEnv>, status: number, started: number, recorded?: string | null) => {
    let counter = counters.get(status);
    if (!counter) counters.set(status, (counter = metrics.requests.labels(method, route, String(status))));
    counter.inc();
    const seconds = (performance.now() - started) / 1000;
    duration.observe(seconds);
    if (log) logRequest({ requestId: c.get('requestId'), method, route, status, seconds, tenant: c.get('auth')?.tenantId, recorded: recorded ?? undefined });
  };
  // Answered here by the app's error handler, so that a refusal given before the body arrived can close the connection
  // (closingIfUnread), as closeUnreadBody does behind the middleware.
  const failed = async (c: Context<AppEnv>, err: unknown, started: number): Promise<Response> => {
    count(c, err instanceof DomainError || err instanceof BodyError ? statusOf(err.code) : 500, started);
    return closingIfUnread(c, await handleError(err instanceof Error ? err : new Error(String(err)), c));
  };
  return (c) => {
    const started = performance.now();
    // The client's id when it is a sane one (as the request-id middleware does), ours otherwise.
    c.set('requestId', saneRequestId(headerOf(c, 'x-request-id')) ?? randomUUID());
    return handle(c).then(
      // The recorded request (render, proxy) is logged with the line, so a client's x-ph-request-id finds it.
      (r) => (count(c, r.status, started, log ? r.headers.get('x-ph-request-id') : null), closingIfUnread(c, r)),
      (err: unknown) => failed(c, err, started),
    );
  };
}

/** What a tenant's JSON POST route ahead of the middleware needs. */
export interface FastPostDeps {
  tenants: TenantService;
  metrics: Metrics;
  log: boolean;
  maxBodyBytes: number;
  queryParams: QueryParams;
}

/**
 * A tenant's JSON POST (POST /v1/usage, /v1/render) ahead of the middleware:
 * the middleware's checks in its order — a declared size over the limit (413),
 * a body that is not JSON (415), the key (401), a query parameter the route does
 * not take (422) — then the handler, which reads the body (readJson or readText
 * keep the limit for chunked bodies).
 */
export function fastPost(deps: FastPostDeps, route: string, handle: (c: Context<AppEnv>, auth: AuthContext) => Promise<Response>): Handler<AppEnv> {
  const checkQuery = deps.queryParams.check('POST', route);
  // async: a refusal here is a rejection, which fastRoute counts, not a throw past it.
  return fastRoute(deps.metrics, deps.log, 'POST', route, async (c) => {
    checkBody(c, deps.maxBodyBytes);
    const auth = authenticateRequest(deps.tenants, c);
    c.set('auth', auth);
    checkQuery(c);
    return handle(c, auth);
  });
}
