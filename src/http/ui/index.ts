import { Hono } from 'hono';
import type { AppDeps, Services } from '../../app';

/** The dashboard at /ui (issue 6). */
export function uiRoutes(_deps: AppDeps, _services: Services) {
  return new Hono();
}
