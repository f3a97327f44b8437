// `npm run demo -- --exit` as a new user runs it, piped (as in CI or a log): the story it tells, in plain text.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('npm run demo -- --exit', () => {
  it('tells its story without a terminal: drift located, the expired gap, the session read whole, no escape codes', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/demo/main.ts', '--exit'], { encoding: 'utf8', env: { ...process.env, PORT: '0' }, timeout: 60_000 });
    expect(run.status, run.stderr).toBe(0);
    const out = run.stdout;
    // Piped, no bold: the text is plain.
    expect(out).not.toContain('\u001b[');
    expect(out, run.stderr).toMatch(/drift located: segment #2 changed since req_\w+, first at byte \d+/);
    // The demo's clock is the real one moved on by its pauses: 7 min 20 s of pauses, and the seconds the calls took.
    expect(out).toMatch(/expired: the bundle's prefix was last used 7 min 2\d s before this call; its cache lifetime is 5m/);
    // The loop marks its newest message: every turn after the first reads the one before, and the session is read whole.
    const session = out.split('\n').find((l) => l.startsWith('demo conversation (session)'));
    expect(session).toMatch(/100\.0%/);
    const loop = out.slice(out.indexOf('2. An agent loop'), out.indexOf('3. The same loop'));
    const reads = [...loop.matchAll(/read\s+(\d+)/g)].map((m) => Number(m[1]));
    expect(reads).toHaveLength(4);
    expect(reads[0]).toBe(0);
    for (let i = 1; i < reads.length; i++) expect(reads[i]).toBeGreaterThan(reads[i - 1]!);
    // Where each handle's leaked money went: the bundle's to the pause (expired), the system prompt's mostly to the
    // timestamp (drift); each handle's causes add up to its leaked figure in the table above.
    const micros = (usd: string) => Math.round(Number(usd.slice(1)) * 1e6);
    const causes = new Map([...out.slice(out.indexOf('leaked, by cause')).matchAll(/^(support agent|support system prompt|support tools|handbook) +(\w+ \$[\d.]+(?: · \w+ \$[\d.]+)*)$/gm)].map((m) => [m[1]!, m[2]!.split(' · ').map((p) => p.split(' ') as [string, string])]));
    expect([...causes.keys()].sort()).toEqual(['handbook', 'support agent', 'support system prompt', 'support tools']);
    expect(causes.get('support agent')!.map(([c]) => c)).toEqual(['expired']);
    expect(causes.get('support system prompt')![0]![0]).toBe('drift');
    for (const [name, parts] of causes) {
      const leaked = new RegExp(`^${name} \\(\\w+\\) .* (\\$[\\d.]+)$`, 'm').exec(out)![1]!;
      expect(parts.reduce((n, [, v]) => n + micros(v), 0), name).toBe(micros(leaked));
    }
  });

  // SIGHUP: the terminal it was started in is closed (or its ssh connection drops) while the dashboard is served.
  it.each([
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const)('killed while it runs (%s), it still removes its database', async (signal, code) => {
    const tmp = mkdtempSync(join(tmpdir(), 'demo-kill-'));
    // tsx keeps its compiled files in <tmpdir>/tsx-<uid>: the usual one, not a cold cache that compiles src/ again.
    const tsxCache = `tsx-${process.getuid?.() ?? 0}`;
    mkdirSync(join(tmpdir(), tsxCache), { recursive: true });
    symlinkSync(join(tmpdir(), tsxCache), join(tmp, tsxCache));
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/demo/main.ts', '--exit'], { env: { ...process.env, PORT: '0', TMPDIR: tmp } });
      let out = '';
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (b: Buffer) => {
          out += b.toString();
          // Its database exists by the first step.
          if (out.includes('1. Mint')) resolve();
        });
        child.once('exit', () => reject(new Error(`the demo ended before its first step: ${out}`)));
      });
      expect(readdirSync(tmp).some((f) => f.startsWith('prefix-handles-demo-'))).toBe(true);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill(signal);
      expect(await exited).toBe(code);
      expect(readdirSync(tmp).filter((f) => f.startsWith('prefix-handles-demo-'))).toEqual([]);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }, 60_000);
});
