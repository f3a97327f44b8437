import { createRoute, z } from '@hono/zod-openapi';
import { newRouter } from './router';
import { HEADERS_TOO_LARGE, problemResponse } from './schemas';

// The service's own routes in the OpenAPI document: the probes (health.ts), Prometheus metrics (app.ts, metrics.ts) and
// this reference (docs.ts). Documented here, served there; listed after the API's routes.

const HealthSchema = z.object({ status: z.enum(['ok']) }).openapi('Health', { description: 'The database answers, and its file is the one opened.' });
const UnhealthySchema = z
  .object({
    status: z.enum(['failing', 'draining']),
    detail: z.string().optional().openapi({ description: 'What failed (`failing`): the database did not answer, or its file is not the one opened.' }),
  })
  .openapi('Unhealthy', { description: '`failing`: the database check failed; `draining` (/readyz only): a stop has begun.' });

const probe = (operationId: string, path: string, summary: string, unhealthy: string) =>
  createRoute({
    operationId,
    method: 'get',
    path,
    tags: ['service'],
    summary,
    security: [],
    responses: {
      200: { description: 'Healthy', content: { 'application/json': { schema: HealthSchema } } },
      // A probe takes no input: only a refusal before routing is a 4xx.
      431: HEADERS_TOO_LARGE,
      503: { description: unhealthy, content: { 'application/json': { schema: UnhealthySchema } } },
    },
  });

export function serviceDocs() {
  const docs = newRouter();
  const register = (route: Parameters<typeof docs.openAPIRegistry.registerPath>[0]) => docs.openAPIRegistry.registerPath(route);
  register(probe('checkHealth', '/healthz', 'Liveness: the database answers (no key)', '`failing`: the database check failed; restart the process'));
  register(probe('checkReadiness', '/readyz', 'Readiness: as /healthz, and not stopping (no key)', '`draining`: a stop has begun (PH_SHUTDOWN_DELAY_MS); `failing`: as /healthz'));
  register(
    createRoute({
      operationId: 'getMetrics',
      method: 'get',
      path: '/metrics',
      tags: ['service'],
      summary: "Prometheus metrics in its text format (tenant ids among the labels: the operator's key)",
      security: [{ adminKey: [] }],
      responses: {
        200: { description: 'Every series, as prom-client writes them (`text/plain; version=0.0.4`)', content: { 'text/plain': { schema: z.string() } } },
        401: problemResponse('unauthorized: missing or wrong PH_ADMIN_KEY (or PH_ADMIN_KEY not set)'),
      },
    }),
  );
  register(
    createRoute({
      operationId: 'getDocs',
      method: 'get',
      path: '/docs',
      tags: ['service'],
      summary: 'This reference in Swagger UI, served locally (no key)',
      security: [],
      responses: { 200: { description: 'The Swagger UI page, reading /openapi.json', content: { 'text/html': { schema: z.string() } } }, 431: HEADERS_TOO_LARGE },
    }),
  );
  return docs;
}
