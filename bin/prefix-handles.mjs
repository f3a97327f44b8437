#!/usr/bin/env node
// Runs the TypeScript CLI without a build step: tsx's ESM hooks load src/ as it is.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

// `serve` runs with the young generation of `npm start` (README, Memory). V8 reads the flag only at start-up
// (and `env -S` in a shebang is not portable), so the CLI starts itself again with it, once.
const YOUNG_GENERATION = '--max-semi-space-size=64';
const hasFlag = process.execArgv.some((a) => a.startsWith('--max-semi-space-size')) || (process.env.NODE_OPTIONS ?? '').includes('--max-semi-space-size');
// Global options may stand before the command; re-running any other command this way would only cost a process.
if (process.argv.slice(2).includes('serve') && !hasFlag) {
  // An inspector port can be held by one process only: the parent keeps it.
  const flags = process.execArgv.filter((a) => !a.startsWith('--inspect'));
  // The IPC channel closes when this process dies in any way; the service then shuts down (src/main.ts).
  const child = spawn(process.execPath, [...flags, YOUNG_GENERATION, ...process.argv.slice(1)], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)));
} else {
  const { register } = await import('tsx/esm/api');
  // The package's own tsconfig, not one tsx would find in the caller's working directory.
  register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
  await import('../src/cli/main.ts');
}
