// The service and the CLI run as operators run them: child processes of this Node, in the repository, with the
// outer environment's own PH_ variables (and PORT, HOST) left out so a developer's shell cannot change a test.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/prefix-handles.mjs', import.meta.url));
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The outer environment without the service's and the CLI's own variables (OpenTelemetry's exporter settings too). */
export const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PH_') && !k.startsWith('OTEL_') && k !== 'PORT' && k !== 'HOST'));

export interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** Runs `node <args>` to its end. */
export function runNode(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', fail);
    child.on('close', (code) => ok({ code, out, err }));
  });
}

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  /** SIGTERM, then its exit code. */
  stop(): Promise<number | null>;
  /** Everything it wrote so far, stdout and stderr. */
  output(): string;
}

/** Starts the service (src/main.ts) on the data directory `data`, on a free port; resolves once it listens. */
export function startService(data: string, env: Record<string, string> = {}): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], { cwd: ROOT, env: { ...cleanEnv(), PORT: '0', PH_DATA_DIR: data, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  let out = '';
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  return new Promise((ok, fail) => {
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) ok({ child, url: m[1]!, stop: () => (child.kill('SIGTERM'), exited), output: () => out });
    });
    void exited.then(() => fail(new Error(`the service exited: ${out}`)));
  });
}
