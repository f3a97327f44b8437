// The baseline for HTTP benchmarks: a bare Hono app on @hono/node-server that
// serves fixed bytes from memory. No middleware, no auth, no database — the
// floor of what any Hono route can cost on this machine.
// BARE_ROUTES names a JSON file { "<path>": "<file with the bytes>" }.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { readFileSync } from 'node:fs';

const manifest = JSON.parse(readFileSync(process.env.BARE_ROUTES ?? '', 'utf8')) as Record<string, string>;
const app = new Hono();
app.get('/healthz', (c) => c.text('ok'));
for (const [path, file] of Object.entries(manifest)) {
  const bytes = readFileSync(file);
  app.get(path, (c) => c.body(bytes, 200, { 'content-type': 'application/json' }));
}

const server = serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 0), hostname: process.env.HOST ?? '127.0.0.1' });
process.on('SIGTERM', () => server.close(() => process.exit(0)));
