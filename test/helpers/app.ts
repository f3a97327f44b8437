import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { createApp, createServices, type AppDeps } from '../../src/app';
import { testConfig, type Config } from '../../src/config';
import { openDb } from '../../src/store/db';
import { SqliteStore } from '../../src/store/sqlite-store';
import { FakeClock } from './clock';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';

// Loaded once per test file: the bundled catalog is read-only data.
const catalog = new ModelCatalog(loadCatalog());

export const ADMIN_KEY = 'test-admin-key-0123456789';

/** A migrated empty database, made once per worker: each in-memory test app opens a copy of it. */
let migratedImage: Buffer | undefined;
function migratedInMemory(): ReturnType<typeof openDb> {
  if (migratedImage === undefined) {
    const template = openDb(':memory:');
    migratedImage = template.sqlite.serialize();
    template.close();
  }
  return openDb(migratedImage);
}

/** Tenant names are unique: each unnamed tenant gets a name of its own (across apps on one database file too). */
let unnamed = 0;

export interface TestApp {
  app: ReturnType<typeof createApp>;
  services: ReturnType<typeof createServices>;
  clock: FakeClock;
  config: Config;
  sqlite: ReturnType<typeof openDb>['sqlite'];
  store: AppDeps['store'];
  close(): void;
  /** A fresh tenant with its key. */
  tenant(name?: string): { id: string; key: string; client: Client };
}

export interface TestResponse {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

export type Client = ReturnType<typeof clientFor>;

/** A fresh app over a fresh, migrated database (':memory:' unless a path is given). */
export function createTestApp(opts: { config?: Partial<Config>; databasePath?: string; clock?: FakeClock; deps?: Partial<AppDeps> } = {}): TestApp {
  const config = testConfig({ adminKey: ADMIN_KEY, ...opts.config });
  const opened = opts.databasePath === undefined ? migratedInMemory() : openDb(opts.databasePath);
  const clock = opts.clock ?? new FakeClock();
  const deps: AppDeps = { config, store: new SqliteStore(opened.db, opened.walSync, clock), clock, catalog, ...opts.deps };
  const services = createServices(deps);
  const app = createApp(deps, services);
  return {
    app,
    services,
    clock,
    config,
    sqlite: opened.sqlite,
    store: deps.store,
    close: () => opened.close(),
    tenant(name) {
      const issued = services.tenants.createTenant(name ?? `test ${++unnamed}`);
      return { id: issued.tenant, key: issued.api_key, client: clientFor(app, issued.api_key) };
    },
  };
}

export function clientFor(app: { request: (path: string, init?: RequestInit) => Response | Promise<Response> }, key?: string) {
  async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<TestResponse> {
    const h: Record<string, string> = { ...headers };
    if (key) h.authorization = `Bearer ${key}`;
    let payload: string | undefined;
    if (body !== undefined) {
      h['content-type'] ??= 'application/json';
      payload = typeof body === 'string' ? body : JSON.stringify(body);
    }
    const res = await app.request(path, { method, headers: h, body: payload });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }
  return {
    get: (path: string, headers?: Record<string, string>) => call('GET', path, undefined, headers),
    post: (path: string, body?: unknown, headers?: Record<string, string>) => call('POST', path, body, headers),
    delete: (path: string, headers?: Record<string, string>) => call('DELETE', path, undefined, headers),
    call,
  };
}

/** Serves an app over real HTTP on a free loopback port: its base URL, and how to stop it. */
export async function listen(app: { fetch: (request: Request) => Response | Promise<Response> }): Promise<{ base: string; close: () => Promise<void> }> {
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
