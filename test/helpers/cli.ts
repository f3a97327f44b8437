// The CLI as users run it: a child process (bin/prefix-handles.mjs) against a test app served in the test's process
// on a loopback port. Each spawn costs ~0.5-1 s of tsx start-up: keep them few, and parallel.
import { serve, type ServerType } from '@hono/node-server';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestApp, type TestApp } from './app';
import { BIN, cleanEnv } from './processes';

export interface CliRun {
  code: number | null;
  stdout: Buffer;
  out: string;
  err: string;
}

export interface CliOptions {
  /** Becomes PH_API_KEY. */
  key?: string;
  env?: Record<string, string>;
  input?: string | Buffer;
}

export interface CliHarness {
  t: TestApp;
  url: string;
  /** A scratch directory, removed by close(). */
  dir: string;
  /** Runs the CLI. PH_* from the outer environment never leak in; PH_URL is the served app's. */
  cli(args: string[], opts?: CliOptions): Promise<CliRun>;
  /** Writes a file in `dir`; its path. */
  file(name: string, content: string | Buffer): string;
  close(): Promise<void>;
}

/**
 * A fresh test app served on 127.0.0.1 (port 0), and a scratch directory; `onDisk`: its database a file there;
 * `around`: each request passes through it on its way to the app (`next()` answers it).
 */
export async function startCliHarness(prefix = 'ph-cli-', opts: { onDisk?: boolean; around?: (req: Request, next: () => Promise<Response>) => Promise<Response> } = {}): Promise<CliHarness> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const t = createTestApp(opts.onDisk ? { databasePath: join(dir, 'prefix-handles.db') } : {});
  const server = await new Promise<ServerType>((ok) => {
    const { around } = opts;
    const fetch = around ? (req: Request, env: unknown) => around(req, async () => t.app.fetch(req, env)) : t.app.fetch;
    const s = serve({ fetch, port: 0, hostname: '127.0.0.1' }, () => ok(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const cli = (args: string[], opts: CliOptions = {}) => {
    const env: Record<string, string | undefined> = { ...cleanEnv(), PH_DATA_DIR: join(dir, 'no-such-dir'), PH_URL: url, ...opts.env };
    if (opts.key) env.PH_API_KEY = opts.key;
    return new Promise<CliRun>((ok, fail) => {
      const child = spawn(process.execPath, [BIN, ...args], { env: Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)) });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', fail);
      child.on('close', (code) => {
        const stdout = Buffer.concat(out);
        ok({ code, stdout, out: stdout.toString(), err: Buffer.concat(err).toString() });
      });
      child.stdin.end(opts.input ?? '');
    });
  };
  return {
    t,
    url,
    dir,
    cli,
    file: (name, content) => {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    },
    close: async () => {
      await new Promise((ok) => server.close(ok));
      t.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
