// The collector for `npm run bench -- otlp`: a bare Hono app that reads each OTLP/HTTP export's body and answers `{}`
// (an OTLP success), as a collector does, without echoing the body back for the exporter to parse.
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const app = new Hono();
app.get('/healthz', (c) => c.text('ok'));
app.post('/v1/traces', async (c) => {
  await c.req.arrayBuffer();
  return c.body('{}', 200, { 'content-type': 'application/json' });
});

const server = serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 0), hostname: process.env.HOST ?? '127.0.0.1' });
process.on('SIGTERM', () => server.close(() => process.exit(0)));
