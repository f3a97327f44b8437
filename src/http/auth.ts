import type { Context, MiddlewareHandler } from 'hono';
import type { IncomingMessage } from 'node:http';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { AuthContext, TenantService } from '../domain/tenants';
import { DomainError } from '../domain/errors';
import type { AppEnv } from './router';

function bearer(header: string | undefined): string | undefined {
  if (!header) return undefined;
  // The common spelling needs no regular expression (this runs on every request).
  if (header.startsWith('Bearer ') && header.indexOf(' ', 7) === -1 && header.length > 7) return header.slice(7);
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

/** Tenant API key from `Authorization: Bearer` (or `x-ph-key`, which the proxy uses). */
export function requireApiKey(tenants: TenantService): MiddlewareHandler<AppEnv> {
  return async function apiKeyAuth(c, next) {
    c.set('auth', authenticateRequest(tenants, c));
    await next();
  };
}

/**
 * A request header. On Node, read from the incoming message directly: building
 * the web Headers object is the largest cost of a small GET.
 */
export function headerOf(c: Context<AppEnv>, name: string): string | undefined {
  const incoming = incomingOf(c);
  if (!incoming) return c.req.header(name);
  const v = incoming.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** All request headers as node:http gives them (lower-case names), without building web Headers on Node. */
export function headersOf(c: Context<AppEnv>): Record<string, string | string[] | undefined> {
  return incomingOf(c)?.headers ?? Object.fromEntries(c.req.raw.headers);
}

/** The node:http request under a Hono context (undefined off Node, e.g. in `app.request` tests). */
export const incomingOf = (c: Context<AppEnv>) => (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;

/** The tenant a request's key belongs to; throws `unauthorized`. */
export function authenticateRequest(tenants: TenantService, c: Context<AppEnv>): AuthContext {
  const secret = bearer(headerOf(c, 'authorization')) ?? headerOf(c, 'x-ph-key');
  if (!secret) throw new DomainError('unauthorized', 'send your API key as "Authorization: Bearer <key>"');
  return tenants.authenticate(secret);
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The operator's PH_ADMIN_KEY; admin routes do not exist when it is unset. */
export function requireAdminKey(adminKey: string | undefined): MiddlewareHandler<AppEnv> {
  const expected = adminKey ? digest(adminKey) : undefined;
  return async function adminAuth(c, next) {
    const secret = bearer(c.req.header('authorization'));
    // Compare digests in constant time so the key's length and prefix don't leak.
    if (!expected || !secret || !timingSafeEqual(digest(secret), expected))
      throw new DomainError('unauthorized', expected ? 'admin routes need "Authorization: Bearer <PH_ADMIN_KEY>"' : 'admin routes are disabled: PH_ADMIN_KEY is not set');
    await next();
  };
}
