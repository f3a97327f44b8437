import { Hono } from 'hono';
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

export function docsRoutes() {
  const app = new Hono();
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
