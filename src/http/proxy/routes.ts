// The drop-in proxy for the official SDKs: point the SDK's baseURL at
// /proxy/anthropic, /proxy/openai/v1 or /proxy/gemini and add `x-ph-key`. Our key travels in
// its own header so the provider's credentials reach the provider untouched.

import { createRoute, z } from '@hono/zod-openapi';
import { Hono, type Context, type Handler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { AppDeps, Services } from '../../app';
import { DomainError, invalid } from '../../domain/errors';
import type { ProxyFormat } from '../../domain/proxy/to-neutral';
import { headerOf, headersOf } from '../auth';
import { BodyError } from '../body';
import { fastRoute } from '../fast-route';
import { handleError, malformedJson, problem, type ProblemCode } from '../problem';
import { newRouter, type AppEnv } from '../router';
import { ProblemSchema } from '../schemas';
import { lastTurnCache } from './replay';
import { providerPath, proxyCount, proxyTurn, type TurnDeps } from './turn';
import { readAll, requestHeadersFor, responseHeadersFor, Upstream, UpstreamError, type UpstreamProvider } from './upstream';

const TURNS: Array<[string, ProxyFormat]> = [
  ['/proxy/anthropic/v1/messages', 'anthropic'],
  ['/proxy/openai/v1/chat/completions', 'openai-chat'],
  ['/proxy/openai/v1/responses', 'openai-responses'],
];

/**
 * The proxy: `turns` are the model calls, mounted ahead of the global
 * middleware (app.ts): each authenticates, reads its body, counts and logs
 * itself (fastRoute), so a call's overhead is the proxy's own work; so does
 * count_tokens, rendered as a turn but recorded nowhere. `others` are the calls
 * that carry no prompt (model lists), sent on and answered as they are.
 */
export function proxyRoutes(deps: AppDeps, services: Services) {
  const { config } = deps;
  const upstream = new Upstream({ anthropicBaseUrl: config.anthropicBaseUrl, openaiBaseUrl: config.openaiBaseUrl, geminiBaseUrl: config.geminiBaseUrl, timeoutMs: config.upstreamTimeoutMs });
  const order = services.proxyOrder;
  services.metrics.proxyWaitingSource = () => order.waiting;
  const turnDeps: TurnDeps = {
    services,
    store: deps.store,
    clock: deps.clock,
    upstream,
    log: config.log === 'json',
    maxBodyBytes: config.maxBodyBytes,
    order,
    // The answers of sessions' last turns, kept for an SDK's retry: 64 MiB, each at most 4 MiB (replay.ts).
    lastTurns: lastTurnCache(),
  };
  // Each authenticates, then answers; its errors are problems in the SDK's shape too.
  const route = (path: string, answer: (c: Context<AppEnv>) => Promise<Response>): [string, Handler<AppEnv>] => [
    path,
    fastRoute(services.metrics, turnDeps.log, 'POST', path, async (c) => {
      try {
        c.set('auth', authenticateProxyKey(services, headerOf(c, 'x-ph-key')));
        return await answer(c);
      } catch (err) {
        return proxyError(err, c);
      }
    }),
  ];
  const turns = [
    ...TURNS.map(([path, format]) => route(path, (c) => proxyTurn(c, format, turnDeps))),
    route('/proxy/anthropic/v1/messages/count_tokens', (c) => proxyCount(c, turnDeps)),
    ...GEMINI_VERSIONS.map((version) =>
      route(`/proxy/gemini/${version}/models/:call`, async (c) => {
        const target = geminiCall(c.req.param('call') ?? '');
        // Another method (embedContent, batchGenerateContent…): a 404 naming what is served (not the 405 its GET models/{id} would suggest).
        if (!target) {
          const detail = `no route for POST ${c.req.path}; the proxy serves Gemini's models/{model}:generateContent, :streamGenerateContent and :countTokens (and GET models): call this method at Gemini itself, with a client of its own (https://generativelanguage.googleapis.com)`;
          return problem(c, 'route_not_found', detail, [], sdkError('route_not_found', detail));
        }
        const { model, method } = target;
        return method === 'countTokens' ? proxyCount(c, turnDeps, 'gemini', model) : proxyTurn(c, 'gemini', turnDeps, model);
      }),
    ),
  ];

  const others = new Hono<AppEnv>();
  others.use('/proxy/*', async function proxyKey(c, next) {
    c.set('auth', authenticateProxyKey(services, headerOf(c, 'x-ph-key')));
    await next();
  });
  const pass = (provider: UpstreamProvider) => (c: Context<AppEnv>) => passThrough(c, provider, upstream);
  others.get('/proxy/anthropic/v1/models', pass('anthropic'));
  others.get('/proxy/anthropic/v1/models/:id', pass('anthropic'));
  others.get('/proxy/openai/v1/models', pass('openai'));
  others.get('/proxy/openai/v1/models/:id', pass('openai'));
  for (const version of GEMINI_VERSIONS) {
    others.get(`/proxy/gemini/${version}/models`, pass('gemini'));
    others.get(`/proxy/gemini/${version}/models/:id`, pass('gemini'));
  }
  others.onError(proxyError);
  return { turns, others };
}

/**
 * Gemini's model calls: `POST /{version}/models/{model}:{method}` (Hono reads the last segment whole). @google/genai
 * calls v1 by default since its 3.0 (`httpOptions.apiVersion` chooses), the REST docs v1beta: both are served.
 */
const GEMINI_VERSIONS = ['v1beta', 'v1'];
const GEMINI_METHODS = new Set(['generateContent', 'streamGenerateContent', 'countTokens']);
// Gemini's model ids: letters, digits, dots, dashes and underscores (gemini-2.5-flash, gemini-2.0-flash-001).
const GEMINI_MODEL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The model and method of a Gemini call's last path segment; null for a method the proxy does not serve, refused (invalid_request) for a model that is not one. */
function geminiCall(segment: string): { model: string; method: string } | null {
  const colon = segment.lastIndexOf(':');
  const method = colon === -1 ? '' : segment.slice(colon + 1);
  if (!GEMINI_METHODS.has(method)) return null;
  let model = '';
  try {
    model = decodeURIComponent(segment.slice(0, colon));
  } catch {
    // not percent-encoded correctly: refused below
  }
  if (!GEMINI_MODEL.test(model)) throw invalid('path:model', 'must be a Gemini model id, such as gemini-2.5-flash');
  return { model, method };
}

/**
 * The proxy's own refusals with the status a provider gives the same fault, where ours differs; the `code` is ours
 * either way. Clients stop at a provider's statuses and may retry others: LangChain JS's AsyncCaller retries every
 * 4xx but 400–409 (six more times, backing off: about 80 s for a 422). A request it cannot take, a body not sent as
 * JSON: 400, as Anthropic and OpenAI answer a bad body; a deleted handle: 404, as they answer a missing resource;
 * thinking produced under another prefix: 400, as Anthropic answers it (thinking-prefix.ts).
 */
const PROVIDER_STATUS: Partial<Record<ProblemCode, ContentfulStatusCode>> = { invalid_request: 400, unsupported_media_type: 400, gone: 404, thinking_prefix_changed: 400 };

function proxyError(err: unknown, c: Context<AppEnv>): Response | Promise<Response> {
  // The client left before the answer: nobody reads this response, and it is not our error.
  if (c.req.raw.signal.aborted) return new Response(null, { status: 499 });
  if (err instanceof UpstreamError) return problem(c, err.code, err.message, [], sdkError(err.code, err.message));
  // Our own refusals answer the same call the same way again: the SDKs, which retry a 409 (a session version
  // conflict) twice with back-off, are told not to (the Stainless SDKs' x-should-retry). A 502/504 may be retried.
  if (err instanceof DomainError || err instanceof BodyError || err instanceof SyntaxError) c.header('x-should-retry', 'false');
  if (err instanceof DomainError) return problem(c, err.code, err.message, err.errors, { ...err.extra, ...sdkError(err.code, err.message) }, PROVIDER_STATUS[err.code]);
  if (err instanceof BodyError) return problem(c, err.code, err.message, [], sdkError(err.code, err.message), PROVIDER_STATUS[err.code]);
  if (err instanceof SyntaxError) return problem(c, 'malformed_json', malformedJson(err), [], sdkError('malformed_json', malformedJson(err)));
  return handleError(err as Error, c);
}

/**
 * Our problems also carry an `error` member shaped like the providers' own, so
 * an SDK shows our message (the OpenAI SDK reads only `error.message`).
 */
export function sdkError(code: string, message: string) {
  return { error: { type: code, code, message } };
}

/** Our problems under /proxy (and an SDK's call that missed it): the problem, with that `error` member. */
export const ProxyProblemSchema = z.object({
  ...ProblemSchema.shape,
  error: z.object({ type: z.string(), code: z.string(), message: z.string() }).openapi({ description: "The problem as the providers shape their errors: `type` and `code` are the problem's `code`, `message` its `detail`." }),
}).openapi('ProxyProblem');

/** Our key in `x-ph-key`; Authorization and x-api-key belong to the provider. */
function authenticateProxyKey(services: Services, key: string | undefined) {
  if (!key) throw new DomainError('unauthorized', 'send your prefix-handles key as "x-ph-key: <key>" (the provider key stays in its usual header)');
  return services.tenants.authenticate(key);
}

/** Calls that carry no prompt to render (model lists): sent on and answered as they are. */
async function passThrough(c: Context<AppEnv>, provider: UpstreamProvider, upstream: Upstream): Promise<Response> {
  const method = c.req.method;
  const res = await upstream.send(provider, {
    method,
    path: providerPath(c.req.url, provider),
    headers: requestHeadersFor(headersOf(c)),
    // The bytes as sent (untouched: never decoded and encoded again).
    body: method === 'GET' ? undefined : Buffer.from(await c.req.arrayBuffer()),
    signal: c.req.raw.signal,
  });
  const bytes = await readAll(res.body, provider, c.req.raw.signal);
  return new Response(bytes, { status: res.status, headers: responseHeadersFor(res.headers) as Record<string, string> });
}

/** The proxy's routes in the OpenAPI document (served above, by hand: bodies and answers are the provider's own). */
export function proxyDocs() {
  const docs = newRouter();
  const headers = z.object({
    'x-ph-prefix': z.string().optional().openapi({ description: 'Handles to prepend, comma-separated, as a body "prefix" would.' }),
    'x-ph-session': z.string().optional().openapi({ description: 'A session: prepended, and this turn appended to it after a successful answer.' }),
  });
  const providerBody = { content: { 'application/json': { schema: z.record(z.string(), z.unknown()).openapi({ description: "The provider's own request body; handles may appear as in /v1/render." }) } }, required: true };
  // Two kinds of error answer: ours (problem+json, with the SDKs' `error` member), and the provider's own, passed
  // through with its status and body as it sent them (a 400 for a bad model, a 429, a 529…): any status, JSON.
  const providerError = z.record(z.string(), z.unknown()).openapi('ProviderError', { description: "The provider's own error answer, passed through as it sent it (its shape is the provider's)." });
  const errors = (description: string) => ({
    description,
    content: { 'application/problem+json': { schema: ProxyProblemSchema }, 'application/json': { schema: providerError } },
  });
  const failures = {
    400: errors('malformed_json; invalid_request: a bad ref, or content a session cannot keep; unsupported_media_type: a body not sent as JSON; thinking_prefix_changed: a session\'s thinking would go under another prefix than it was produced under (problem+json with an SDK-shaped `error` member); or the provider\'s own 400 (application/json)'),
    401: errors('unauthorized: no or wrong x-ph-key; or the provider refused its key (application/json)'),
    404: errors('not_found: a referenced handle does not exist for this tenant; gone: it was deleted; or the provider\'s own 404 (application/json)'),
    413: errors('payload_too_large'),
    502: errors('bad_gateway: the provider could not be reached'),
    504: errors('gateway_timeout: the provider did not answer in PH_UPSTREAM_TIMEOUT_MS'),
    default: errors("Any other status: the provider's own error answer as it sent it (application/json), or ours (problem+json)"),
  };
  const answer = {
    200: {
      description: "The provider's answer as it sent it (JSON, or an SSE stream passed through as it arrives); `x-ph-request-id` names the recorded request, `x-ph-warnings` the render's warnings, `x-ph-replayed: true` an SDK retry answered with its lost attempt's answer (see README, Retries).",
      content: { 'application/json': { schema: z.record(z.string(), z.unknown()) }, 'text/event-stream': { schema: z.string() } },
    },
    ...failures,
  };
  /** `proxyGeminiV1betaGenerateContent` for ('gemini', 'v1beta', 'generateContent'); `proxyOpenaiChatCompletions` for 'openai/chat/completions'. */
  const operationId = (...words: string[]) => `proxy${words.map((w) => w.replace(/(^|[-_/])([a-z])/g, (_, __, c: string) => c.toUpperCase())).join('')}`;
  for (const [path, format] of TURNS)
    docs.openAPIRegistry.registerPath(
      createRoute({ operationId: operationId(path.replace(/^\/proxy\/|\/v1(?=\/)/g, '')), method: 'post', path, tags: ['proxy'], summary: `${format}: rendered, sent to the provider, recorded and reconciled`, security: [{ proxyKey: [] }], request: { headers, body: providerBody }, responses: answer }),
    );
  const untouched = { 200: { description: "The provider's answer, untouched; nothing is recorded.", content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } } }, 401: failures[401], 502: failures[502], 504: failures[504], default: failures.default };
  const counted = {
    ...answer,
    200: { description: "The provider's count of the rendered body, as it answered; nothing is recorded.", content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } } },
  };
  docs.openAPIRegistry.registerPath(
    createRoute({ operationId: operationId('anthropic', 'count_tokens'), method: 'post', path: '/proxy/anthropic/v1/messages/count_tokens', tags: ['proxy'], summary: 'Rendered as POST messages would send it (headers, handle blocks, session), counted by the provider; nothing recorded, no session appended', security: [{ proxyKey: [] }], request: { headers, body: providerBody }, responses: counted }),
  );
  // Gemini: the model and the method in the path (`gemini-2.5-flash:generateContent`), under v1beta and v1.
  const geminiModel = z.object({ model: z.string().openapi({ description: 'A Gemini model id, e.g. gemini-2.5-flash.' }) });
  for (const version of GEMINI_VERSIONS) {
    const base = `/proxy/gemini/${version}/models/{model}`;
    for (const method of ['generateContent', 'streamGenerateContent'])
      docs.openAPIRegistry.registerPath(
        createRoute({ operationId: operationId('gemini', version, method), method: 'post', path: `${base}:${method}`, tags: ['proxy'], summary: `gemini ${method}${method === 'streamGenerateContent' ? ' (?alt=sse)' : ''}: rendered, sent to Gemini, recorded and reconciled`, security: [{ proxyKey: [] }], request: { params: geminiModel, headers, body: providerBody }, responses: answer }),
      );
    docs.openAPIRegistry.registerPath(
      createRoute({ operationId: operationId('gemini', version, 'countTokens'), method: 'post', path: `${base}:countTokens`, tags: ['proxy'], summary: 'Rendered as generateContent would send it, counted by Gemini (a body the handles changed goes as generateContentRequest); nothing recorded', security: [{ proxyKey: [] }], request: { params: geminiModel, headers, body: providerBody }, responses: counted }),
    );
  }
  const lists: Array<[string, string[]]> = [['/proxy/anthropic/v1/models', ['anthropic']], ['/proxy/openai/v1/models', ['openai']], ...GEMINI_VERSIONS.map((v): [string, string[]] => [`/proxy/gemini/${v}/models`, ['gemini', v]])];
  for (const [path, words] of lists)
    docs.openAPIRegistry.registerPath(createRoute({ operationId: operationId(...words, 'listModels'), method: 'get', path, tags: ['proxy'], summary: 'Passed through untouched', security: [{ proxyKey: [] }], responses: untouched }));
  const model = z.object({ id: z.string().openapi({ description: "The provider's model id." }) });
  for (const [path, words] of lists)
    docs.openAPIRegistry.registerPath(createRoute({ operationId: operationId(...words, 'getModel'), method: 'get', path: `${path}/{id}`, tags: ['proxy'], summary: 'Passed through untouched', security: [{ proxyKey: [] }], request: { params: model }, responses: untouched }));
  docs.openAPIRegistry.registerComponent('securitySchemes', 'proxyKey', { type: 'apiKey', in: 'header', name: 'x-ph-key', description: 'A tenant API key; the provider key stays in its usual header (Gemini: x-goog-api-key, or ?key=).' });
  return docs;
}
