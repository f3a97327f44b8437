import { createRoute, z } from '@hono/zod-openapi';
import { randomUUID } from 'node:crypto';
import type { HandleService } from '../../domain/handles';
import type { Expander } from '../../domain/render/expand';
import type { Reports } from '../../domain/reconcile/reports';
import type { Context, Handler } from 'hono';
import type { TenantService } from '../../domain/tenants';
import { logRequest, type Metrics } from '../metrics';
import { saneRequestId, statusOf } from '../problem';
import { DomainError, invalid } from '../../domain/errors';
import { authenticateRequest, headerOf } from '../auth';
import { expansionFormats, type ExpansionFormat } from '../../domain/render/prompt';
import { newRouter, type AppEnv } from '../router';
import { listed, type QueryParams } from '../query-params';
import { validationError } from '../../domain/validation';
import {
  AppendMessagesBody,
  CreateArtifactBody,
  CreateBundleBody,
  CreateSessionBody,
  ExpandQuery,
  HandleListSchema,
  HandleSchema,
  ArtifactIdParam,
  BundleIdParam,
  IdParam,
  SessionIdParam,
  IfMatchHeader,
  ListQuery,
  MintResultSchema,
  NewArtifactVersionBody,
  NewBundleVersionBody,
  RefParam,
  commonErrors,
  readErrors,
  conflictErrors,
} from '../schemas';
import { handleSummaryView, handleView, mintView } from '../views';
import { artifactKinds, type ArtifactKind } from '../../domain/content';

const json = <T extends z.ZodType>(schema: T) => ({ content: { 'application/json': { schema } }, required: true });
const mint = (description: string) => ({ content: { 'application/json': { schema: MintResultSchema } }, description });

const routes = {
  createArtifact: createRoute({
    operationId: 'createArtifact', method: 'post', path: '/v1/artifacts', tags: ['handles'], summary: 'Mint an artifact (version 1)',
    request: { body: json(CreateArtifactBody) },
    responses: { 201: mint('Created'), ...commonErrors },
  }),
  newArtifactVersion: createRoute({
    operationId: 'createArtifactVersion', method: 'post', path: '/v1/artifacts/{id}/versions', tags: ['handles'], summary: 'Make the next artifact version',
    description: 'Content equal to the latest version returns that version with 200 instead of minting a duplicate.',
    request: { params: z.object({ id: ArtifactIdParam }), body: json(NewArtifactVersionBody) },
    responses: { 200: mint('Unchanged: the latest version'), 201: mint('Created'), ...commonErrors, ...conflictErrors },
  }),
  createBundle: createRoute({
    operationId: 'createBundle', method: 'post', path: '/v1/bundles', tags: ['handles'], summary: 'Create a bundle of artifacts and bundles, pinned',
    request: { body: json(CreateBundleBody) },
    responses: { 201: mint('Created'), ...commonErrors, ...conflictErrors },
  }),
  newBundleVersion: createRoute({
    operationId: 'createBundleVersion', method: 'post', path: '/v1/bundles/{id}/versions', tags: ['handles'], summary: 'Make the next bundle version',
    request: { params: z.object({ id: BundleIdParam }), body: json(NewBundleVersionBody) },
    responses: { 200: mint('Unchanged: the latest version'), 201: mint('Created'), ...commonErrors, ...conflictErrors },
  }),
  createSession: createRoute({
    operationId: 'createSession', method: 'post', path: '/v1/sessions', tags: ['handles'], summary: 'Start a session',
    request: { body: json(CreateSessionBody) },
    responses: { 201: mint('Created'), ...commonErrors, ...conflictErrors },
  }),
  appendMessages: createRoute({
    operationId: 'appendMessages', method: 'post', path: '/v1/sessions/{id}/messages', tags: ['handles'], summary: 'Append messages (next session version)',
    request: { params: z.object({ id: SessionIdParam }), headers: IfMatchHeader, body: json(AppendMessagesBody) },
    responses: {
      201: { ...mint('Appended'), headers: { ETag: { schema: { type: 'string' }, description: 'The new version, quoted ("4"): the If-Match of the next append.' } } },
      ...commonErrors,
      ...conflictErrors,
    },
  }),
  getHandle: createRoute({
    operationId: 'getHandle', method: 'get', path: '/v1/handles/{ref}', tags: ['handles'], summary: 'Describe a handle and its versions',
    request: {
      params: z.object({ ref: RefParam }),
      query: z.object({
        versions: z.coerce
          .number()
          .int()
          .min(0)
          .max(1_000_000)
          .optional()
          .openapi({ description: 'List only the newest N versions (a long session has one per turn; `latest_version` says how many there are). All when absent.' }),
      }),
    },
    responses: { 200: { content: { 'application/json': { schema: HandleSchema } }, description: 'The handle' }, ...readErrors, 410: conflictErrors[410] },
  }),
  listHandles: createRoute({
    operationId: 'listHandles', method: 'get', path: '/v1/handles', tags: ['handles'], summary: 'List handles (cursor pagination, id order)',
    request: { query: ListQuery },
    responses: { 200: { content: { 'application/json': { schema: HandleListSchema } }, description: 'A page' }, 401: readErrors[401], 422: readErrors[422] },
  }),
  deleteHandle: createRoute({
    operationId: 'deleteHandle', method: 'delete', path: '/v1/handles/{ref}', tags: ['handles'], summary: 'Delete a handle nothing pins',
    // Named as GET's is (one path, one parameter name: a generator refuses two), but an id: a ref with @version is refused.
    request: { params: z.object({ ref: IdParam.openapi({ param: { name: 'ref', in: 'path' } }) }) },
    responses: { 204: { description: 'Deleted; expanding it now answers 410' }, ...readErrors, ...conflictErrors },
  }),
  expand: createRoute({
    operationId: 'expandHandle', method: 'get', path: '/v1/handles/{ref}/expand', tags: ['handles'], summary: 'Expand a ref into a byte-stable prompt prefix',
    description: 'Same ref and format give the same bytes forever (per renderer version). ETag is the sha256 of the body.',
    request: {
      params: z.object({ ref: RefParam }),
      query: ExpandQuery,
      headers: z.object({ 'if-none-match': z.string().optional().openapi({ description: 'The ETag of an earlier answer: 304, no body, while it still matches.' }) }),
    },
    responses: {
      200: {
        content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } },
        description: 'The prefix in the provider\'s request shape',
        headers: { ETag: { schema: { type: 'string' }, description: 'The sha256 of the body, quoted: the If-None-Match of the next call.' } },
      },
      304: { description: 'If-None-Match matched the ETag' },
      ...readErrors,
      410: conflictErrors[410],
    },
  }),
};

/** `format` named twice in a query string, with a value or without (`?format=gemini&format`). */
const TWO_FORMATS = /[?&]format(?:[=&#]|$).*[?&]format(?:[=&#]|$)/;

function parseIfMatch(value: string | undefined): number | undefined {
  return value === undefined || value === '*' ? undefined : Number(value.replace(/"/g, ''));
}

export function handleRoutes(handles: HandleService, expander: Expander, reports: Reports) {
  const app = newRouter();

  app.openapi(routes.createArtifact, (c) => {
    const r = handles.mintArtifact(c.get('auth').tenantId, c.req.valid('json'));
    return c.json(mintView(r), 201);
  });

  app.openapi(routes.newArtifactVersion, (c) => {
    const r = handles.newArtifactVersion(c.get('auth').tenantId, c.req.valid('param').id, c.req.valid('json').content);
    return c.json(mintView(r), r.created ? 201 : 200);
  });

  app.openapi(routes.createBundle, (c) => {
    const r = handles.createBundle(c.get('auth').tenantId, c.req.valid('json'));
    return c.json(mintView(r), 201);
  });

  app.openapi(routes.newBundleVersion, (c) => {
    const r = handles.newBundleVersion(c.get('auth').tenantId, c.req.valid('param').id, c.req.valid('json').members);
    return c.json(mintView(r), r.created ? 201 : 200);
  });

  app.openapi(routes.createSession, (c) => {
    // Every field is optional, so only the missing document itself can be refused (an empty session is `{}`).
    if (c.req.header('content-type') === undefined) throw invalid('', 'send a JSON body: {} starts an empty session');
    const r = handles.createSession(c.get('auth').tenantId, c.req.valid('json'));
    return c.json(mintView(r), 201);
  });

  app.openapi(routes.appendMessages, (c) => {
    const ifMatch = parseIfMatch(c.req.valid('header')['if-match']);
    const r = handles.appendMessages(c.get('auth').tenantId, c.req.valid('param').id, c.req.valid('json').messages, ifMatch);
    c.header('ETag', `"${r.version.version}"`);
    return c.json(mintView(r), 201);
  });

  app.openapi(routes.getHandle, (c) => {
    const tenantId = c.get('auth').tenantId;
    const { handle, version } = handles.resolve(tenantId, c.req.valid('param').ref, 'path:ref');
    const view = handleView(handle, version, handles.versions(handle.id, c.req.valid('query').versions));
    // On the estimate's basis (the text the model reads): counted now for a version minted on the JSON basis.
    return c.json({ ...view, calibrated_tokens: reports.calibrated(tenantId, () => handles.textTokens(handle, version)) }, 200);
  });

  app.openapi(routes.listHandles, (c) => {
    const q = c.req.valid('query');
    const isKind = (artifactKinds as readonly string[]).includes(q.kind ?? '');
    const page = handles.list(c.get('auth').tenantId, {
      type: isKind ? 'artifact' : (q.kind as 'artifact' | 'bundle' | 'session' | undefined),
      kind: isKind ? (q.kind as ArtifactKind) : undefined,
      cursor: q.cursor,
      limit: q.limit,
    });
    return c.json({ handles: page.handles.map(handleSummaryView), next_cursor: page.next_cursor }, 200);
  });

  app.openapi(routes.deleteHandle, (c) => {
    handles.delete(c.get('auth').tenantId, c.req.valid('param').ref);
    return c.body(null, 204);
  });

  // Served by expandRoute(), mounted ahead of the global middleware in app.ts; documented here.
  app.openAPIRegistry.registerPath(routes.expand);

  return app;
}

/** The path of the hottest route, GET /v1/handles/{ref}/expand. */
export const EXPAND_PATH = '/v1/handles/:ref/expand';

/**
 * The expand handler. It runs ahead of the global middleware, as one layer that
 * authenticates, expands and counts: the bytes are already in memory, so
 * per-request overhead is what decides its throughput.
 */
export function expandRoute(expander: Expander, tenants: TenantService, metrics: Metrics, log: boolean, queryParams: QueryParams): Handler<AppEnv> {
  const known = new Set<string>(expansionFormats);
  const checkQuery = queryParams.check('GET', EXPAND_PATH);
  let started = 0;
  let tenant: string | undefined;
  // Counter children per status, bound once: inc() on a child skips hashing the label set.
  const counters = new Map<number, { inc(): void }>();
  const count = (c: Context<AppEnv>, status: number) => {
    let counter = counters.get(status);
    if (!counter) counters.set(status, (counter = metrics.requests.labels('GET', EXPAND_PATH, String(status))));
    counter.inc();
    if (log) logRequest({ requestId: c.get('requestId') ?? saneRequestId(headerOf(c, 'x-request-id')), method: 'GET', route: EXPAND_PATH, status, seconds: (performance.now() - started) / 1000, tenant });
  };
  const expand = (c: Context<AppEnv>): Response => {
    const auth = authenticateRequest(tenants, c);
    tenant = auth.tenantId;
    checkQuery(c);
    const given = c.req.query('format');
    // Two formats would be a guess between them (a string search: parsing every query would cost the hot path).
    if (given !== undefined) {
      const url = c.req.url;
      if (TWO_FORMATS.test(url) && c.req.queries('format')!.length > 1) throw invalid('query:format', 'give one format');
    }
    // A known format (or none) skips schema validation; anything else gets zod's error.
    let format: ExpansionFormat = 'neutral';
    if (given !== undefined && known.has(given)) format = given as ExpansionFormat;
    else if (given !== undefined) {
      // A prefix has no CSV: the routes that do are named.
      if (given.toLowerCase() === 'csv') throw invalid('query:format', `format is one of ${expansionFormats.join(', ')} here (a provider's request shape); CSV is exported by ${listed(queryParams.csvRoutes())}`);
      const query = ExpandQuery.safeParse({ format: given });
      if (!query.success) throw validationError(query.error, 'query:', 'invalid query');
    }
    const e = expander.expand(auth.tenantId, c.req.param('ref')!, format);
    const inm = headerOf(c, 'if-none-match');
    // "*" matches any current representation (RFC 9110 §13.1.2): the expansion exists, so nothing changed to send.
    if (inm && inm.split(',').some((t) => t.trim() === '*' || t.trim().replace(/^W\//, '') === e.headers.ETag)) return new Response(null, { status: 304, headers: e.notModifiedHeaders });
    return new Response(e.bytes, { status: 200, headers: e.headers });
  };
  // Its own wrapper, not fastRoute's: a request here is ~20 µs of work, and sharing the wrapper (one call site
  // for this and the async usage route) measured a few percent slower over eight runs.
  return (c) => {
    started = log ? performance.now() : 0;
    tenant = undefined;
    try {
      const res = expand(c);
      count(c, res.status);
      return res;
    } catch (err) {
      // The id its problem will quote, and its log line with it.
      c.set('requestId', saneRequestId(headerOf(c, 'x-request-id')) ?? randomUUID());
      count(c, err instanceof DomainError ? statusOf(err.code) : 500);
      throw err;
    }
  };
}
