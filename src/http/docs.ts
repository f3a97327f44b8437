import { Hono, type MiddlewareHandler } from 'hono';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

// Swagger UI from the swagger-ui-dist package, served locally: /docs works with no network.
const dist = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
const asset = (file: string) => readFileSync(join(dist, file));

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>prefix-handles API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="ui"></div><script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>`;

const INIT = `window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#ui', deepLinking: true });`;

/**
 * The docs share the dashboard's origin: never framed by another site (clickjacking "Try it out" with a key typed
 * into Authorize), never sniffed as another type. Swagger UI's own script and styles are left unrestricted.
 */
const DOCS_HEADERS = { 'content-security-policy': "frame-ancestors 'none'", 'x-frame-options': 'DENY', 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' };

export function docsRoutes() {
  const app = new Hono();
  const guarded: MiddlewareHandler = async (c, next) => {
    await next();
    for (const [k, v] of Object.entries(DOCS_HEADERS)) c.res.headers.set(k, v);
  };
  app.use('/docs', guarded);
  app.use('/docs/*', guarded);
  const css = asset('swagger-ui.css');
  const js = asset('swagger-ui-bundle.js');
  app.get('/docs', (c) => c.html(PAGE));
  // Browsers ask for one on every page: no icon, and no 404 in the console.
  app.get('/favicon.ico', (c) => c.body(null, 204, { 'cache-control': 'public, max-age=86400' }));
  app.get('/docs/init.js', (c) => c.body(INIT, 200, { 'content-type': 'text/javascript' }));
  app.get('/docs/swagger-ui.css', (c) => c.body(new Uint8Array(css), 200, { 'content-type': 'text/css', 'cache-control': 'public, max-age=86400' }));
  app.get('/docs/swagger-ui-bundle.js', (c) => c.body(new Uint8Array(js), 200, { 'content-type': 'text/javascript', 'cache-control': 'public, max-age=86400' }));
  return app;
}
