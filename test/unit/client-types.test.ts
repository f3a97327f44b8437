// The typed client's types (src/client/openapi.ts) are what openapi-typescript makes of the service's document: a
// route schema changed without `npm run client:types` fails here. And a team generating them from a running
// service's /openapi.json with the package's own command gets the same file (README: Typed client).
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
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
    expect(imports).toEqual(['openapi-fetch', 'type ./openapi.js', 'type ./openapi.js']);
  });

  // `tsc --init` (TypeScript 5.9) writes `"module": "nodenext"`: Node's own resolution, where a relative import names
  // its file (`./openapi` was TS2835 there, in the copied client and the README's example alike).
  it("the two files copied elsewhere, and the README's example beside them, type-check under Node's resolution (ESM and CommonJS) and a bundler's", { timeout: 120_000 }, () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const example = /### Typed client\n[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)![1]!;
    const root = new URL('../../', import.meta.url);
    const failures: Record<string, string[]> = {};
    for (const [name, type, resolution] of [
      ['nodenext esm', 'module', 'NodeNext'],
      ['nodenext commonjs', 'commonjs', 'NodeNext'],
      ['bundler', 'module', 'Bundler'],
    ] as const) {
      const dir = mkdtempSync(join(tmpdir(), 'ph-client-copy-'));
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      mkdirSync(join(dir, 'prefix-handles-client'));
      for (const f of ['index.ts', 'openapi.ts']) copyFileSync(new URL(`src/client/${f}`, root), join(dir, 'prefix-handles-client', f));
      writeFileSync(join(dir, 'agent.ts'), example);
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ type }));
      symlinkSync(new URL('node_modules', root).pathname, join(dir, 'node_modules'), 'dir');
      const options: ts.CompilerOptions = {
        strict: true,
        noEmit: true,
        target: ts.ScriptTarget.ES2022,
        types: ['node'],
        skipLibCheck: true,
        ...(resolution === 'NodeNext'
          ? { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext }
          : { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler }),
      };
      const program = ts.createProgram([join(dir, 'agent.ts'), join(dir, 'prefix-handles-client', 'index.ts')], options);
      failures[name] = ts.getPreEmitDiagnostics(program).map((d) => `${d.file?.fileName.slice(dir.length) ?? ''} TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
    }
    expect(failures).toEqual({ 'nodenext esm': [], 'nodenext commonjs': [], bundler: [] });
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
