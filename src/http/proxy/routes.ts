// The drop-in proxy for the official SDKs: point the SDK's baseURL at
// /proxy/anthropic or /proxy/openai/v1 and add `x-ph-key`. Our key travels in
// its own header so the provider's credentials reach the provider untouched.

import { Hono, type Context, type MiddlewareHandler } from 'hono';
import type { AppDeps, Services } from '../../app';
import { DomainError } from '../../domain/errors';
import type { ProxyFormat } from '../../domain/proxy/to-neutral';
import { handleError, problem } from '../problem';
import type { AppEnv } from '../router';
import { providerPath, proxyTurn, type TurnDeps } from './turn';
import { readAll, requestHeadersFor, responseHeadersFor, Upstream, UpstreamError, type UpstreamProvider } from './upstream';

export function proxyRoutes(deps: AppDeps, services: Services) {
  const { config } = deps;
  const upstream = new Upstream({ anthropicBaseUrl: config.anthropicBaseUrl, openaiBaseUrl: config.openaiBaseUrl, timeoutMs: config.upstreamTimeoutMs });
  const turnDeps: TurnDeps = { services, store: deps.store, clock: deps.clock, upstream, log: config.log === 'json' };
  const app = new Hono<AppEnv>();

  app.use('/proxy/*', requireProxyKey(services));

  const turn = (format: ProxyFormat) => (c: Context<AppEnv>) => proxyTurn(c, format, turnDeps);
  app.post('/proxy/anthropic/v1/messages', turn('anthropic'));
  app.post('/proxy/openai/v1/chat/completions', turn('openai-chat'));
  app.post('/proxy/openai/v1/responses', turn('openai-responses'));

  const pass = (provider: UpstreamProvider) => (c: Context<AppEnv>) => passThrough(c, provider, upstream);
  app.post('/proxy/anthropic/v1/messages/count_tokens', pass('anthropic'));
  app.get('/proxy/anthropic/v1/models', pass('anthropic'));
  app.get('/proxy/openai/v1/models', pass('openai'));

  app.onError(function proxyError(err, c) {
    // The client left before the answer: nobody reads this response, and it is not our error.
    if (c.req.raw.signal.aborted) return new Response(null, { status: 499 });
    if (err instanceof UpstreamError) return problem(c, err.code, err.message, [], sdkError(err.code, err.message));
    if (err instanceof DomainError) return problem(c, err.code, err.message, err.errors, { ...err.extra, ...sdkError(err.code, err.message) });
    return handleError(err, c);
  });
  return app;
}

/**
 * Our problems also carry an `error` member shaped like the providers' own, so
 * an SDK shows our message (the OpenAI SDK reads only `error.message`).
 */
function sdkError(code: string, message: string) {
  return { error: { type: code, code, message } };
}

/** Our key in `x-ph-key`; Authorization and x-api-key belong to the provider. */
function requireProxyKey(services: Services): MiddlewareHandler<AppEnv> {
  return async function proxyKey(c, next) {
    const key = c.req.header('x-ph-key');
    if (!key) throw new DomainError('unauthorized', 'send your prefix-handles key as "x-ph-key: <key>" (the provider key stays in its usual header)');
    c.set('auth', services.tenants.authenticate(key));
    await next();
  };
}

/** Calls that carry no prompt to render (token counting, model lists): sent on and answered as they are. */
async function passThrough(c: Context<AppEnv>, provider: UpstreamProvider, upstream: Upstream): Promise<Response> {
  const method = c.req.method;
  const res = await upstream.send(provider, {
    method,
    path: providerPath(c.req.url, provider),
    headers: requestHeadersFor(c.req.raw.headers),
    body: method === 'GET' ? undefined : await c.req.text(),
    signal: c.req.raw.signal,
  });
  const bytes = await readAll(res.body, provider, c.req.raw.signal);
  return new Response(bytes, { status: res.status, headers: responseHeadersFor(res.headers) as Record<string, string> });
}
