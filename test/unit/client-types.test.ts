// The typed client's types (src/client/openapi.ts) are what openapi-typescript makes of the service's document: a
// route schema changed without `npm run client:types` fails here. And a team generating them from a running
// service's /openapi.json with the package's own command gets the same file (README: Typed client).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { clientTypes, TYPES_FILE } from '../../src/client/generate';
import { createTestApp, listen } from '../helpers/app';
import { runNode } from '../helpers/processes';

const CLI = 'node_modules/openapi-typescript/bin/cli.js';
/** The committed file's body: without the banner the generator puts first (its first two lines and a blank one). */
const body = (text: string) => text.split('\n').slice(3).join('\n');

let cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

describe('the typed client types', () => {
  it('src/client/openapi.ts is what the document gives now (else: npm run client:types)', async () => {
    const committed = readFileSync(TYPES_FILE, 'utf8');
    const fresh = await clientTypes();
    expect(committed === fresh, 'src/client/openapi.ts is stale: run `npm run client:types` and commit it').toBe(true);
    // Every /v1 route is in it, each with its answers.
    expect(committed).toContain('"/v1/reports/handles/{id}": {');
    expect(committed).toContain('"/v1/sessions/{id}/messages": {');
  });

  it('src/client/index.ts imports only openapi-fetch and, as types, ./openapi: the two files copied elsewhere work', () => {
    const source = readFileSync(new URL('../../src/client/index.ts', import.meta.url), 'utf8');
    const imports = [...source.matchAll(/^(import|export)( type)? .* from '([^']+)';$/gm)].map((m) => `${m[2] ? 'type ' : ''}${m[3]}`);
    expect(imports).toEqual(['openapi-fetch', 'type ./openapi', 'type ./openapi']);
  });

  it("the openapi-typescript command on a running service's /openapi.json writes the same types", { timeout: 120_000 }, async () => {
    const t = createTestApp();
    const server = await listen(t.app);
    const dir = mkdtempSync(join(tmpdir(), 'ph-client-types-'));
    cleanup.push(
      () => server.close(),
      () => t.close(),
      () => rmSync(dir, { recursive: true, force: true }),
    );
    const out = join(dir, 'openapi.ts');
    const run = await runNode([CLI, `${server.base}/openapi.json`, '-o', out]);
    expect(run.code, run.err).toBe(0);
    const generated = readFileSync(out, 'utf8');
    // Its own header comment (five lines), then the same text.
    expect(generated.split('\n').slice(5).join('\n')).toBe(body(readFileSync(TYPES_FILE, 'utf8')));
  });
});
