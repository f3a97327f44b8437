import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { requestId } from 'hono/request-id';
import type { Config } from './config';
import type { Clock } from './domain/clock';
import { DomainError } from './domain/errors';
import { HandleService } from './domain/handles';
import { HandleMeter } from './domain/handle-meta';
import type { ModelCatalog } from './domain/catalog/catalog';
import { Expander } from './domain/render/expand';
import { TenantService } from './domain/tenants';
import { RequestService } from './domain/requests';
import { RequestRetention } from './domain/retention';
import { TenantDeletion } from './domain/tenant-deletion';
import { RENDER_PATH, renderRoute, renderRoutes } from './http/routes/render';
import { USAGE_PATH, usageRoute, usageRoutes } from './http/routes/usage';
import { checkStorableBytes, checkUtf8, closeUnreadBody, notJsonBody } from './http/body';
import { Reconciler } from './domain/reconcile/reconciler';
import { leakedByClass, MONEY_LEAKS } from './domain/reconcile/waterfall';
import { WriteQueue } from './domain/write-queue';
import { StartOrder } from './domain/reconcile/start-order';
import { Reports } from './domain/reconcile/reports';
import { headerOf, requireAdminKey, requireApiKey } from './http/auth';
import { docsRoutes } from './http/docs';
import { proxyDocs, proxyRoutes, sdkError } from './http/proxy';
import { uiRoutes } from './http/ui';
import { handleError, problem } from './http/problem';
import { healthRoutes } from './http/health';
import { Metrics, observe } from './http/metrics';
import { serviceDocs } from './http/service-docs';
import { QueryParams } from './http/query-params';
import type { AppEnv } from './http/router';
import { adminRoutes } from './http/routes/admin';
import { EXPAND_PATH, expandRoute, handleRoutes } from './http/routes/handles';
import { withOtherErrors } from './http/schemas';
import type { Store } from './store/store';
import { serviceLog } from './log';
import { TraceExport } from './otlp';

export interface AppDeps {
  config: Config;
  store: Store;
  clock: Clock;
  catalog: ModelCatalog;
}

export interface Services {
  tenants: TenantService;
  handles: HandleService;
  expander: Expander;
  requests: RequestService;
  reconciler: Reconciler;
  reports: Reports;
  metrics: Metrics;
  writes: WriteQueue;
  /** The proxy's calls, reconciled per scope in the order they started (a shutdown releases them all). */
  proxyOrder: StartOrder;
  /** Deletes request detail past PH_REQUEST_RETENTION_DAYS (its timer is started by main.ts), or when asked. */
  retention: RequestRetention;
  /** Deletes a tenant and all its data (a deletion a stop cut short is resumed by main.ts). */
  deletion: TenantDeletion;
  /** Aborted on the stop signal, before PH_SHUTDOWN_DELAY_MS: /readyz answers 503 draining while requests are still served. */
  draining: AbortController;
  /** Aborted as the listener closes: answers that never end by themselves (the dashboard's live events) end. */
  stopping: AbortController;
  /** Each reconciled request as an OpenTelemetry span, sent over OTLP (src/otlp.ts); undefined when off. */
  traces?: TraceExport;
}

export function createServices(deps: AppDeps): Services {
  const { config } = deps;
  // First: every service that writes asks it whether a tenant is deleted. What memory holds of a deleted tenant is
  // dropped (`forget`, below) once the services holding it are made.
  const deletion = new TenantDeletion({
    store: deps.store,
    forget: (tenantId) => forget(tenantId),
    settle: () => writes.idle(),
    onDeleted: (r) => {
      if (config.log === 'json') process.stdout.write(`${JSON.stringify({ level: 'info', time: new Date().toISOString(), msg: 'deleted a tenant', tenant: r.id, rows: r.rows, batches: r.batches })}\n`);
    },
  });
  const deleted = (tenantId: string) => deletion.isDeleted(tenantId);
  const handles = new HandleService({ store: deps.store, clock: deps.clock, meter: new HandleMeter(deps.catalog), deleted });
  const writes = new WriteQueue(deps.store);
  // Before the reconciler: a report for a pruned request is a 404 request_pruned, as a lookup of it is.
  const retention = new RequestRetention({
    store: deps.store,
    clock: deps.clock,
    catalog: deps.catalog,
    retentionDays: config.requestRetentionDays,
    forget: (ids) => writes.forget(ids),
    onPruned: (r) => {
      metrics.requestsPruned.inc(r.pruned);
      if (config.log === 'json') process.stdout.write(`${JSON.stringify({ level: 'info', time: new Date().toISOString(), msg: 'pruned requests', before: new Date(r.before).toISOString(), pruned: r.pruned, kept: r.kept, batches: r.batches })}\n`);
    },
  });
  // Before the reconciler and reports: they count each tenant's days in its time zone.
  const tenants = new TenantService(deps.store, deps.clock, (id) => writes.reconciling(id));
  const zoneOf = (tenantId: string) => tenants.zoneOf(tenantId);
  const reconciler = new Reconciler({ store: deps.store, clock: deps.clock, catalog: deps.catalog, writes, scopeSnapshotEvery: config.scopeSnapshotEvery, scopeSnapshotPart: config.scopeSnapshotPart, missing: (id) => retention.missing(id), deleted, zoneOf });
  const metrics = countReconciled(reconciler, new Metrics(config.log !== 'off'));
  const traces = config.otlp ? new TraceExport(config.otlp, { metrics, log: serviceLog(config.log), clock: deps.clock }) : undefined;
  if (traces) reconciler.onReconciled((e) => traces.reconciled(e));
  const expander = new Expander(handles, config.expansionCacheBytes);
  const requests = new RequestService({
    store: deps.store,
    clock: deps.clock,
    handles,
    catalog: deps.catalog,
    reconciler,
    writes,
    retention,
    policy: { inlineKeepBytes: config.inlineKeepBytes, inlineRetentionMs: config.inlineRetentionMs, cacheTtl: config.cacheTtl, listScanBudget: config.listScanBudget },
    deleted,
    zoneOf,
  });
  // Its keys are deleted with the mark; its cache scopes, pending premiums, rendered requests and metric series are
  // dropped, and the content caches (handles, expansions, the renderer's) whole: none of it is served again.
  const forget = (tenantId: string) => {
    tenants.forgetKeys();
    tenants.forgetTenant(tenantId);
    writes.forgetTenant(tenantId);
    reconciler.forgetTenant(tenantId);
    handles.forgetCaches();
    expander.clear();
    requests.forgetCaches();
    metrics.forgetTenant(tenantId);
  };
  return {
    tenants,
    handles,
    expander,
    requests,
    reconciler,
    reports: new Reports(deps.store, reconciler.pendingPremiums, zoneOf),
    metrics,
    writes,
    retention,
    deletion,
    proxyOrder: new StartOrder(config.proxyOrderWaitMs),
    draining: new AbortController(),
    stopping: new AbortController(),
    ...(traces ? { traces } : {}),
  };
}

/** Feeds reconciled token counts and capture rates into the metrics. */
function countReconciled(reconciler: Reconciler, metrics: Metrics): Metrics {
  reconciler.onReconciled((e) => {
    const o = e.outcome;
    // The catalog entry's provider: a vLLM server answers in OpenAI's chat shape but is not OpenAI (DESIGN.md's usage table).
    const provider = e.provider;
    // The catalog's entry, not the name the caller sent: every distinct name would be a series of its own, kept
    // in memory for good (a client sending made-up names grows /metrics without bound).
    const model = e.catalogModel ?? 'unknown';
    if (o.provider.read !== null) metrics.tokens.inc({ provider, model, kind: 'read' }, o.provider.read);
    if (o.provider.write !== null) metrics.tokens.inc({ provider, model, kind: 'written' }, o.provider.write);
    // Without cache fields the prompt's tokens are unknown, never uncached (a 0% hit): counted apart, as reports do.
    if (o.total_prompt_tokens !== null && o.provider.read === null) metrics.tokens.inc({ provider, model, kind: 'unknown' }, o.total_prompt_tokens);
    else if (o.total_prompt_tokens !== null)
      metrics.tokens.inc({ provider, model, kind: 'uncached' }, Math.max(0, o.total_prompt_tokens - (o.provider.read ?? 0) - (o.provider.write ?? 0)));
    if (o.capture === 'unknown') return;
    let captured = 0;
    let opportunity = 0;
    for (const s of o.segments) {
      if (s.source === 'inline') continue;
      captured += s.classes.captured;
      opportunity += s.opportunity;
      const leaked = leakedByClass(s.classes, s.cost, true);
      if (leaked) for (const c of MONEY_LEAKS) if (leaked[c] > 0) metrics.leakedUsd.inc({ tenant: e.tenantId, class: c }, leaked[c]);
    }
    metrics.recordCapture(e.tenantId, captured, opportunity);
  });
  return metrics;
}

const ADMIN_PATH = /^\/v1\/(tenants|keys|prune)(\/|$)/;

/** A request body must say it is JSON: anything else is refused before parsing. */
const requireJson: MiddlewareHandler<AppEnv> = async function requireJson(c, next) {
  const method = c.req.method;
  // Only methods that carry a body are checked: touching c.req.raw on a GET costs a full Request.
  if (method !== 'POST' && method !== 'PUT' && method !== 'PATCH') return next();
  const notJson = notJsonBody(c);
  if (notJson) return problem(c, 'unsupported_media_type', notJson);
  // Any JSON type form HTTP allows (`application/json ; charset=utf-8`): the schema validators take only the
  // strictest spelling, and would answer a 422 without a pointer. The body is checked as UTF-8 JSON either way.
  const type = c.req.header('content-type');
  if (type !== undefined && type !== 'application/json' && !STRICT_JSON_TYPE.test(type)) c.req.raw.headers.set('content-type', 'application/json');
  await next();
};
/** What the schema validators accept as JSON. */
const STRICT_JSON_TYPE = /^application\/([a-z-.]+\+)?json(;\s*[a-zA-Z0-9-]+=([^;]+))*$/;

const BOM = [0xef, 0xbb, 0xbf];
/** Routes whose body is kept as handle content: a usage batch is read record by record, each refused on its own. */
const STORED_BODY = /^\/v1\/(?:artifacts|bundles|sessions)(?:\/|$)/;

/** A JSON body in valid UTF-8, checked once authenticated (the validators decode with replacement characters). */
const requireUtf8: MiddlewareHandler<AppEnv> = async function requireUtf8(c, next) {
  const method = c.req.method;
  if ((method === 'POST' || method === 'PUT' || method === 'PATCH') && c.req.raw.body !== null) {
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    checkUtf8(bytes);
    // One leading byte-order mark may be ignored (RFC 8259 §8.1); the body decoder here would drop a second too.
    if (BOM.every((b, i) => bytes[i] === b && bytes[i + 3] === b))
      throw new DomainError('malformed_json', 'The request body is not valid JSON: it starts with two byte-order marks');
    checkStorableBytes(bytes, STORED_BODY.test(c.req.path));
  }
  await next();
};

export function createApp(deps: AppDeps, services: Services = createServices(deps)) {
  const app = new OpenAPIHono<AppEnv>();
  const { config } = deps;

  // Each /v1 route's query parameters, read from the document once every route is in it.
  const queryParams = new QueryParams(() => app.openAPIRegistry.definitions);

  // The hottest routes go first: they authenticate and count themselves, without the global middleware.
  app.get(EXPAND_PATH, expandRoute(services.expander, services.tenants, services.metrics, config.log === 'json', queryParams));
  app.post(USAGE_PATH, usageRoute({ ...services, log: config.log === 'json', maxBodyBytes: config.maxBodyBytes, queryParams }));
  app.post(RENDER_PATH, renderRoute({ ...services, log: config.log === 'json', maxBodyBytes: config.maxBodyBytes, queryParams }));
  const proxy = proxyRoutes(deps, services);
  for (const [path, handler] of proxy.turns) app.post(path, handler);

  app.use('*', closeUnreadBody);
  app.use('*', requestId({ headerName: 'x-request-id' }));
  app.use('*', observe(services.metrics, config.log === 'json'));
  const limit = bodyLimit({
    maxSize: config.maxBodyBytes,
    onError: (c) => problem(c, 'payload_too_large', `the body is larger than ${config.maxBodyBytes} bytes (PH_MAX_BODY_BYTES)`),
  });
  // GET, HEAD and DELETE carry no body here; skipping them keeps the expand path from building a full Request.
  app.use('*', async function limitBody(c, next) {
    return c.req.method === 'GET' || c.req.method === 'HEAD' || c.req.method === 'DELETE' ? next() : limit(c, next);
  });
  app.use('/v1/*', requireJson);

  const admin = requireAdminKey(config.adminKey);
  const tenant = requireApiKey(services.tenants);
  app.use('/v1/*', async function authenticate(c, next) {
    // An SDK pointed at the service instead of its proxy: the 404 below names the base URL, where a 401 would
    // blame the key (its provider key, sent as the Bearer token).
    if (MISDIRECTED_SDK_CALL.test(c.req.path)) return next();
    // Its model list, GET /v1/models, is the service's own catalog: an SDK (its headers say so) is told the same, whatever its key.
    if (c.req.path === '/v1/models' && c.req.method === 'GET' && sdkOf(c)) return sdkNotFound(c);
    return ADMIN_PATH.test(c.req.path) ? admin(c, next) : tenant(c, next);
  });
  // After the key (a caller without one learns nothing of the routes), before the body is read.
  app.use('/v1/*', queryParams.middleware());
  app.use('/v1/*', requireUtf8);

  app.route('/', healthRoutes(deps.store, services.draining.signal));
  // Metrics carry tenant ids: scraping them takes the operator's key, like the admin routes.
  app.get('/metrics', admin, async (c) => c.body(await services.metrics.registry.metrics(), 200, { 'content-type': services.metrics.registry.contentType }));
  app.route('/', adminRoutes(services.tenants, services.retention, services.deletion));
  app.route('/', handleRoutes(services.handles, services.expander, services.reports));
  app.route('/', renderRoutes(deps.catalog));
  app.route('/', usageRoutes({ ...services, clock: deps.clock, batchMax: config.usageBatchMax }));
  app.route('/', docsRoutes());
  app.route('/', proxy.others);
  app.route('/', proxyDocs());
  app.route('/', serviceDocs());
  app.route('/', uiRoutes(deps, services));

  app.openAPIRegistry.registerComponent('securitySchemes', 'apiKey', { type: 'http', scheme: 'bearer', description: 'A tenant API key (phk_…).' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'adminKey', { type: 'http', scheme: 'bearer', description: 'The operator\'s PH_ADMIN_KEY.' });
  const documentObject = {
    openapi: '3.1.0' as const,
    info: {
      title: 'prefix-handles',
      version: '0.1.0',
      description: 'Durable prompt state behind opaque handles, byte-stable prefixes, and per-handle prompt-cache reuse reports. Errors are application/problem+json with a stable `code`. A query parameter a route does not list is refused (422 `invalid_request` at `query:<name>`), never ignored; `_` (a cache buster) is taken everywhere.',
    },
    // Relative: the service's own origin, wherever it is deployed (a generated client takes its base URL from here).
    servers: [{ url: '/', description: 'This service: the origin that served this document' }],
    security: [{ apiKey: [] }],
  };
  app.get('/openapi.json', (c) => c.json(withOtherErrors(app.getOpenAPI31Document(documentObject))));

  // A documented path asked with another method: 405 naming the methods it takes (the document lists every route).
  let allowed: Array<{ path: RegExp; method: string }> | undefined;
  app.notFound((c) => {
    allowed ??= app.openAPIRegistry.definitions.flatMap((d) =>
      d.type === 'route' ? [{ path: new RegExp(`^${d.route.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`), method: d.route.method.toUpperCase() }] : [],
    );
    const methods = [...new Set(allowed.filter((r) => r.path.test(c.req.path)).map((r) => r.method))];
    // An SDK reads the problem (under /proxy, a model call sent elsewhere, or a call with an SDK's headers): it carries the provider-shaped `error` member too.
    const sdk = c.req.path.startsWith('/proxy/') || SDK_CALL.test(c.req.path) || sdkOf(c) !== null;
    if (methods.length === 0) return sdk ? sdkNotFound(c) : problem(c, 'route_not_found', `no route for ${c.req.method} ${c.req.path}`);
    c.header('allow', methods.join(', '));
    const detail = `${c.req.path} takes ${methods.join(', ')}, not ${c.req.method}`;
    return problem(c, 'method_not_allowed', detail, [], sdk ? sdkError('method_not_allowed', detail) : {});
  });
  app.onError(handleError);
  return app;
}

export type App = ReturnType<typeof createApp>;

/**
 * A model call as the SDKs send it, whatever their base URL: the service's own address (`/chat/completions`,
 * `/v1/messages`, Gemini's `/v1/models/{model}:generateContent`), `/v1` of it, or a path without `/proxy`
 * (`/openai/v1/responses`).
 */
const SDK_CALL = /\/(?:chat\/completions|responses|v1\/messages|models\/[^/]+:(?:generateContent|streamGenerateContent|countTokens))$/;
/** Of those, the ones under /v1, which would otherwise ask for the service's key first. */
const MISDIRECTED_SDK_CALL = /^\/v1\/(?:chat\/completions|responses|messages|models\/[^/]+:(?:generateContent|streamGenerateContent|countTokens))$/;

/**
 * The provider whose SDK sent a request, by the headers every Stainless-built SDK sends (`x-stainless-lang`, in any
 * language) and Anthropic's `anthropic-version`; null for any other client (curl, the CLI, a browser).
 */
function sdkOf(c: Context<AppEnv>): 'openai' | 'anthropic' | null {
  if (headerOf(c, 'anthropic-version') !== undefined) return 'anthropic';
  return headerOf(c, 'x-stainless-lang') !== undefined ? 'openai' : null;
}

/**
 * A 404 for an SDK that called a path the service does not serve it (a base URL off by a segment, or the service's
 * own address): the same text for any caller, key or none, naming the base URL to set, with the SDKs' `error` member.
 */
function sdkNotFound(c: Context<AppEnv>): Response {
  const what = c.req.path === '/v1/models' ? "GET /v1/models here is this service's model catalog, not the provider's model list" : `no route for ${c.req.method} ${c.req.path}`;
  const detail = `${what}${proxyBaseUrlHint(c.req.path, new URL(c.req.url).origin, sdkOf(c))}`;
  return problem(c, 'route_not_found', detail, [], sdkError('route_not_found', detail));
}

/** A call under /proxy that matches no route (or a model call elsewhere) has most likely come through an SDK with a base URL off by a segment. */
function proxyBaseUrlHint(path: string, origin: string, sdk: 'openai' | 'anthropic' | null): string {
  const openai = /\/(chat\/completions|responses)$/.test(path);
  const anthropic = /\/messages$/.test(path);
  const base = (p: string) => `${origin}${p}`;
  if (openai) return `; the OpenAI SDK's base URL is ${base('/proxy/openai/v1')} (with /v1), which calls ${base('/proxy/openai/v1/chat/completions')} and /responses`;
  if (anthropic) return `; the Anthropic SDK's base URL is ${base('/proxy/anthropic')} (without /v1: the SDK adds it), which calls ${base('/proxy/anthropic/v1/messages')}`;
  // Gemini's SDK calls /v1/models/{model}:{method} (or /v1beta/…) under its base URL.
  const gemini = /\/models\/[^/]*:[A-Za-z]+$/.test(path) || /^\/proxy\/gemini\/v1(?:beta)?\/models/.test(path);
  if (gemini && /^\/proxy\/gemini\/v1(?:beta)?\/models\//.test(path))
    return `; the base URL is right, but the proxy serves only POST models/{model}:generateContent, :streamGenerateContent and :countTokens, and GET models, there: call this method at the provider itself, with a client of its own (https://generativelanguage.googleapis.com)`;
  if (gemini) return `; the Gemini SDK's base URL (httpOptions.baseUrl) is ${base('/proxy/gemini')}, which calls ${base('/proxy/gemini/v1/models/{model}:generateContent')}`;
  // The model list outside /proxy (GET /v1/models here is the service's own catalog): the provider is the SDK's.
  if (/\/models$/.test(path) && !path.startsWith('/proxy/') && sdk) {
    return sdk === 'openai'
      ? `; the OpenAI SDK's base URL is ${base('/proxy/openai/v1')} (with /v1), which lists the provider's models at ${base('/proxy/openai/v1/models')}`
      : `; the Anthropic SDK's base URL is ${base('/proxy/anthropic')} (without /v1: the SDK adds it), which lists the provider's models at ${base('/proxy/anthropic/v1/models')}`;
  }
  // The base URL is right, the endpoint is one the proxy does not serve (embeddings, files, batches, a stored response).
  const endpoint = /^\/proxy\/(openai|anthropic)\/v1\/(?!v1\/)(.+)$/.exec(path);
  if (endpoint) {
    const served = endpoint[1] === 'openai' ? 'POST chat/completions, POST responses and GET models' : 'POST messages, POST messages/count_tokens and GET models';
    return `; the base URL is right, but the proxy serves only ${served} there: call ${endpoint[2]} at the provider itself, with a client of its own (${endpoint[1] === 'openai' ? 'https://api.openai.com/v1' : 'https://api.anthropic.com'})`;
  }
  return `; the proxy's base URLs are ${base('/proxy/anthropic')} (Anthropic SDK), ${base('/proxy/openai/v1')} (OpenAI SDK) and ${base('/proxy/gemini')} (Gemini SDK)`;
}
