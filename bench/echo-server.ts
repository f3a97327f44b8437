// The baseline for HTTP benchmarks that POST JSON: a bare Hono app on
// @hono/node-server that reads the body, JSON.parse + JSON.stringify, and
// answers with the result. No middleware, no auth, no database — the floor of
// what any Hono route that takes a JSON body can cost on this machine.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const app = new Hono();
app.get('/healthz', (c) => c.text('ok'));
app.post('*', async (c) => c.body(JSON.stringify(JSON.parse(await c.req.text())), 200, { 'content-type': 'application/json' }));

const server = serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 0), hostname: process.env.HOST ?? '127.0.0.1' });
process.on('SIGTERM', () => server.close(() => process.exit(0)));
