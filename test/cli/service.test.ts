// The service as operators run it: `src/main.ts` as a child process on a real data directory, its
// configuration from the environment, stopped by signals. Each start costs about a second of tsx start-up.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The outer environment without the service's own variables. */
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PH_') && k !== 'PORT' && k !== 'HOST'));

interface Service {
  child: ChildProcess;
  /** Set once it listens. */
  url: string;
  output(): string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
}

const started: Service[] = [];
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ph-service-'));
});
afterEach(async () => {
  for (const s of started.splice(0)) {
    if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
    await s.exited;
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts the service; resolves once it listens, or once it exits (url ''). */
function start(env: Record<string, string>): Promise<Service> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], { cwd: ROOT, env: { ...cleanEnv(), PORT: '0', PH_LOG: 'off', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | string>((ok) => child.once('exit', (code, signal) => ok(code ?? signal ?? -1)));
  const service: Service = { child, url: '', output: () => out, exited };
  started.push(service);
  return new Promise((ok) => {
    const seen = () => {
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (!m) return;
      service.url = m[1]!;
      child.stdout!.off('data', seen);
      ok(service);
    };
    child.stdout!.on('data', seen);
    void exited.then(() => ok(service));
  });
}

const keyOf = (data: string) => readFileSync(join(data, 'api-key'), 'utf8').trim();

describe('one service process per database', () => {
  it('a second process on the same data directory is refused at start, before it migrates; the lock goes with the first process, however it ends', async () => {
    const data = join(dir, 'shared');
    const first = await start({ PH_DATA_DIR: data });
    expect(first.url, first.output()).not.toBe('');
    const second = await start({ PH_DATA_DIR: data });
    expect(await second.exited).toBe(2);
    expect(second.output().trim()).toBe(
      `another prefix-handles process is serving the database ${data}/prefix-handles.db (it holds ${data}/prefix-handles.db-lock): one process per database, ` +
        `since each keeps its cache simulation in memory and two would misreport each other's calls; stop that one, or give this one its own PH_DATA_DIR`,
    );
    // The first is untouched.
    const key = keyOf(data);
    expect((await fetch(`${first.url}/v1/handles`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
    // Killed outright, it leaves no stale lock behind: the kernel drops it with the process.
    first.child.kill('SIGKILL');
    await first.exited;
    const third = await start({ PH_DATA_DIR: data });
    expect(third.url, third.output()).not.toBe('');
    expect((await fetch(`${third.url}/v1/handles`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
  });
});
