#!/usr/bin/env node
// Runs the TypeScript CLI without a build step: tsx's ESM hooks load src/ as it is.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// `serve` runs with the young generation of `npm start` (README, Memory). V8 reads the flag only at start-up
// (and `env -S` in a shebang is not portable), so the CLI starts itself again with it, once.
const YOUNG_GENERATION = '--max-semi-space-size=64';
const hasFlag = process.execArgv.some((a) => a.startsWith('--max-semi-space-size')) || (process.env.NODE_OPTIONS ?? '').includes('--max-semi-space-size');
if (process.argv[2] === 'serve' && !hasFlag) {
  const child = spawn(process.execPath, [...process.execArgv, YOUNG_GENERATION, ...process.argv.slice(1)], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  const { register } = await import('tsx/esm/api');
  // The package's own tsconfig, not one tsx would find in the caller's working directory.
  register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
  await import('../src/cli/main.ts');
}
