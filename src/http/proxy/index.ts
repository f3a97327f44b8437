import { Hono } from 'hono';
import type { AppDeps, Services } from '../../app';

/** The drop-in proxy for the official SDKs (issue 5). */
export function proxyRoutes(_deps: AppDeps, _services: Services) {
  return new Hono();
}
