// A query parameter a route does not take is refused, not ignored: `?form=2026-12-01` (for `from`) would otherwise
// answer all-time totals, and `?format=csv` on a route without CSV its JSON, without a word. Each route takes the keys
// of its query schema in the OpenAPI document (none without one), so a parameter added to a schema is taken at once.

import type { OpenAPIHono, RouteConfig } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import { DomainError, type ErrorDetailItem } from '../domain/errors';
import { nearest } from '../domain/nearest';

/**
 * Taken on every route and ignored: jQuery's `cache: false` (and tools copying it) add `_=<time>` to defeat a cache.
 * It names no figure, and no parameter is near it to be misspelt as it.
 */
export const CACHE_BUSTER = '_';

type Definitions = OpenAPIHono['openAPIRegistry']['definitions'];

interface RouteQuery {
  /** `GET /v1/reports`, as the OpenAPI document names it. */
  label: string;
  names: readonly string[];
  taken: ReadonlySet<string>;
}

/** The keys of a route's query schema (none without one). */
export function queryNames(route: Pick<RouteConfig, 'request'>): string[] {
  const query = route.request?.query as { shape?: Record<string, unknown> } | undefined;
  return Object.keys(query?.shape ?? {});
}

/** The routes under /v1 of the OpenAPI document, by method and Hono path (`GET /v1/handles/:ref`). */
export class QueryParams {
  #table?: { routes: Map<string, RouteQuery>; csv: string[] };

  constructor(private readonly definitions: () => Definitions) {}

  /** The check of one route, for a route served ahead of the middleware (expand, usage, render). */
  check(method: string, path: string): (c: Context) => void {
    let route: RouteQuery | undefined;
    return (c) => {
      // No URL object: the URL is a string already, and most calls have no query at all.
      const url = c.req.url;
      if (url.indexOf('?') === -1) return;
      route ??= this.route(`${method} ${path}`);
      if (route) this.refuseUnknown(route, url);
    };
  }

  /** The check behind the middleware: the route is the handler the router matched (none: a 404 or 405 follows). */
  middleware(): MiddlewareHandler {
    const refuseUnknownQuery: MiddlewareHandler = async (c, next) => {
      const url = c.req.url;
      if (url.indexOf('?') !== -1) {
        const handler = matchedRoutes(c).find((r) => r.method !== 'ALL');
        const route = handler && this.route(`${handler.method} ${handler.path}`);
        if (route) this.refuseUnknown(route, url);
      }
      await next();
    };
    return refuseUnknownQuery;
  }

  /** The CSV exports: routes that take `format` and answer text/csv. */
  csvRoutes(): string[] {
    return this.#load().csv;
  }

  private route(key: string): RouteQuery | undefined {
    return this.#load().routes.get(key);
  }

  // Read once, at the first query string: the document is complete only once every router is mounted.
  #load(): { routes: Map<string, RouteQuery>; csv: string[] } {
    if (this.#table) return this.#table;
    const routes = new Map<string, RouteQuery>();
    const csv: string[] = [];
    for (const d of this.definitions()) {
      if (d.type !== 'route' || !d.route.path.startsWith('/v1/')) continue;
      const method = d.route.method.toUpperCase();
      const label = `${method} ${d.route.path}`;
      const names = queryNames(d.route);
      routes.set(`${method} ${d.route.path.replace(/\{([^}]+)\}/g, ':$1')}`, { label, names, taken: new Set([...names, CACHE_BUSTER]) });
      const answersCsv = Object.values(d.route.responses ?? {}).some((r) => 'content' in r && r.content !== undefined && 'text/csv' in r.content);
      if (answersCsv && names.includes('format')) csv.push(label);
    }
    return (this.#table = { routes, csv: csv.sort() });
  }

  private refuseUnknown(route: RouteQuery, url: string): void {
    const unknown = unknownNames(url, route.taken);
    if (unknown.length === 0) return;
    const takes = route.names.length ? `it takes ${listed(route.names)}` : 'it takes no query parameters';
    // A query of thousands of names is answered with the first ones, as zod's issues are (validation.ts).
    const shown = unknown.slice(0, MAX_LISTED);
    const errors: ErrorDetailItem[] = shown.map((name) => ({ pointer: `query:${name}`, detail: `not a parameter of ${route.label}${this.hint(name, route.names, url)}` }));
    if (unknown.length > MAX_LISTED) errors.push({ pointer: 'query', detail: `and ${unknown.length - MAX_LISTED} more names it does not take, not listed` });
    const named = unknown.length > MAX_LISTED ? `${unknown.length} names, ${shown.slice(0, 3).join(', ')} …` : listed(unknown);
    throw new DomainError('invalid_request', `${route.label} does not take ${named}: ${takes}`, {}, errors);
  }

  private hint(name: string, names: readonly string[], url: string): string {
    const near = nearest(name, names);
    if (near !== undefined) return `; did you mean ${near}?`;
    // `format` (any value: `format=json` asks for what the route answers anyway), or CSV asked under a misspelt name
    // (`formt=csv` on /v1/handles): the route has no format to choose, and which routes export CSV is the answer.
    if (name.toLowerCase() === 'format' || valuesOf(url, name).some((v) => v.trim().toLowerCase() === 'csv'))
      return `: it has no format to choose; CSV is exported by ${listed(this.csvRoutes())} (format=csv)`;
    return '';
  }
}

const MAX_LISTED = 100;
const NONE: readonly string[] = [];

/** The distinct parameter names of a URL's query string that are not in `taken`, decoded as Hono decodes them. */
export function unknownNames(url: string, taken: ReadonlySet<string>): readonly string[] {
  let at = url.indexOf('?');
  if (at === -1) return NONE;
  // A fragment is no part of the query: Hono reads up to it (a client sends none, a raw request line can).
  const hash = url.indexOf('#', at);
  if (hash !== -1) url = url.slice(0, hash);
  // Made at the first unknown name only: a query of known ones (the hot path's `?format=`) allocates nothing but names.
  let unknown: Set<string> | undefined;
  while (at !== -1) {
    const next = url.indexOf('&', at + 1);
    const end = next === -1 ? url.length : next;
    const eq = url.indexOf('=', at + 1);
    let name = url.slice(at + 1, eq !== -1 && eq < end ? eq : end);
    if (name.includes('+')) name = name.replace(/\+/g, ' ');
    if (name.includes('%')) name = decoded(name);
    // An empty name (`?&limit=5`, a trailing `&`) is no parameter: Hono skips it too.
    if (name !== '' && !taken.has(name)) (unknown ??= new Set()).add(name);
    at = next;
  }
  return unknown ? [...unknown] : NONE;
}

/** The values given to `name` in a URL's query, decoded as its names are (read for a refusal's hint only). */
function valuesOf(url: string, name: string): string[] {
  const values: string[] = [];
  for (const pair of url.slice(url.indexOf('?') + 1).split('&')) {
    const eq = pair.indexOf('=');
    if (eq === -1) continue;
    const plain = (s: string) => decoded(s.replace(/\+/g, ' '));
    if (plain(pair.slice(0, eq)) === name) values.push(plain(pair.slice(eq + 1)));
  }
  return values;
}

function decoded(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}

/** `a, b and c`. */
export const listed = (names: readonly string[]) => (names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`);
