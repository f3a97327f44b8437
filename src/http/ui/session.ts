// Dashboard sign-in: the API key is kept in an http-only, SameSite=Strict
// cookie and checked on every request, so a revoked key signs out at once.

import type { Context, MiddlewareHandler } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { html } from 'hono/html';
import { DomainError } from '../../domain/errors';
import type { TenantService } from '../../domain/tenants';
import { page } from './layout';

export const COOKIE = 'ph_ui_key';
const COOKIE_PATH = '/ui';

export interface UiEnv {
  Variables: { requestId: string; tenantId: string };
}

// Secure only over https (a plain-http cookie marked Secure would never come back).
const isHttps = (c: Context) => new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';

/**
 * Where to go after signing in: only a path inside the dashboard, never another origin. A control character cannot be
 * in a Location header (a CR LF would start another header): the redirect threw, and the sign-in answered a 500.
 */
export function safeNext(value: unknown): string {
  return typeof value === 'string' && /^\/ui(?:[/?#]|$)/.test(value) && !value.includes('\\') && !/[\x00-\x1f\x7f]/.test(value) ? value : '/ui';
}

function authenticate(tenants: TenantService, secret: string): string | null {
  try {
    return tenants.authenticate(secret).tenantId;
  } catch (e) {
    if (e instanceof DomainError && e.code === 'unauthorized') return null;
    throw e;
  }
}

/** Pages redirect to sign-in; fragments and the event stream (fetched by script) answer 401. */
export function requireSignIn(tenants: TenantService, mode: 'page' | 'api'): MiddlewareHandler<UiEnv> {
  return async function uiSignIn(c, next) {
    const secret = getCookie(c, COOKIE);
    const tenantId = secret ? authenticate(tenants, secret) : null;
    if (!tenantId) {
      if (secret) deleteCookie(c, COOKIE, { path: COOKIE_PATH });
      if (mode === 'api') return c.text('sign in again', 401);
      const url = new URL(c.req.url);
      return c.redirect(`/ui/sign-in?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
    }
    c.set('tenantId', tenantId);
    await next();
  };
}

/**
 * Form posts must come from the dashboard itself (login CSRF, forced sign-out).
 * Browsers send Sec-Fetch-Site or Origin on every POST; clients that send neither are not browsers.
 */
export function fromThisSite(c: Context): boolean {
  const site = c.req.header('sec-fetch-site');
  if (site !== undefined) return site === 'same-origin';
  const origin = c.req.header('origin');
  return origin === undefined || origin === new URL(c.req.url).origin;
}

export function signInPage(c: Context, opts: { next: string; error?: string; status?: 200 | 400 | 401 }) {
  const body = html`<form class="signin card" method="post" action="/ui/sign-in">
<h1>Sign in</h1>
<p class="sub">Use one of your tenant's API keys (<code>phk_…</code>). It is kept in an http-only cookie for this browser session.</p>
${opts.error ? html`<p class="error" role="alert">${opts.error}</p>` : ''}
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="${opts.next}">
<button type="submit">Sign in</button>
</form>`;
  return page(c, { title: 'Sign in', body, status: opts.status ?? 200 });
}

export async function signIn(c: Context, tenants: TenantService) {
  if (!fromThisSite(c)) return c.text('cross-site form posts are refused', 403);
  const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
  const next = safeNext(form.next);
  const key = typeof form.key === 'string' ? form.key.trim() : '';
  if (!key) return signInPage(c, { next, error: 'Enter an API key.', status: 400 });
  // Keys are short; anything long is not one (and is not worth hashing).
  const tenantId = key.length <= 512 ? authenticate(tenants, key) : null;
  if (!tenantId) return signInPage(c, { next, error: 'That API key is not valid (or was revoked).', status: 401 });
  setCookie(c, COOKIE, key, { path: COOKIE_PATH, httpOnly: true, sameSite: 'Strict', secure: isHttps(c) });
  return c.redirect(next, 303);
}

export function signOut(c: Context) {
  if (!fromThisSite(c)) return c.text('cross-site form posts are refused', 403);
  deleteCookie(c, COOKIE, { path: COOKIE_PATH, httpOnly: true, sameSite: 'Strict', secure: isHttps(c) });
  return c.redirect('/ui/sign-in', 303);
}
