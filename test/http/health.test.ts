// GET /healthz and GET /readyz over real HTTP on a real database file, broken the ways an operator's disk or
// hands break it: the file removed or replaced under the running service, its WAL removed, the connection closed.
import { copyFileSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, listen, type TestApp } from '../helpers/app';

let dir: string;
let file: string;
let t: TestApp;
let server: { base: string; close: () => Promise<void> };
let url: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ph-health-'));
  file = join(dir, 'prefix-handles.db');
  t = createTestApp({ databasePath: file });
  server = await listen(t.app);
  url = server.base;
});
afterEach(async () => {
  await server.close();
  t.close();
  rmSync(dir, { recursive: true, force: true });
});

async function probe(path: '/healthz' | '/readyz'): Promise<{ status: number; body: { status: string; detail?: string } }> {
  const res = await fetch(`${url}${path}`);
  return { status: res.status, body: (await res.json()) as { status: string; detail?: string } };
}

describe('GET /healthz on a database file', () => {
  it('answers 200 ok while the database answers, without a key', async () => {
    expect(await probe('/healthz')).toEqual({ status: 200, body: { status: 'ok' } });
    expect(await probe('/readyz')).toEqual({ status: 200, body: { status: 'ok' } });
    t.tenant('first');
    expect(await probe('/healthz')).toEqual({ status: 200, body: { status: 'ok' } });
  });

  it('answers 503 failing once the database file is removed under the service (it went on writing a file no path leads to)', async () => {
    // The service still writes: the removal is invisible to its connection, which is why the check stats the path.
    const { client } = t.tenant();
    unlinkSync(file);
    expect((await client.post('/v1/artifacts', { kind: 'system', content: 'still answered' })).status).toBe(201);
    const health = await probe('/healthz');
    expect(health.status).toBe(503);
    expect(health.body).toEqual({ status: 'failing', detail: `${file} was removed while the service runs: what it writes now goes to a file no path leads to, lost when it stops; restart the service` });
    expect((await probe('/readyz')).body.status).toBe('failing');
  });

  it("answers 503 failing once the database's WAL is removed (the acknowledged commits not yet checkpointed are in it)", async () => {
    t.tenant();
    unlinkSync(`${file}-wal`);
    const health = await probe('/healthz');
    expect(health.status).toBe(503);
    expect(health.body.detail).toBe(`${file}-wal was removed while the service runs: what it writes now goes to a file no path leads to, lost when it stops; restart the service`);
  });

  it('answers 503 failing once another file is put at its path (a backup restored while the service runs)', async () => {
    t.tenant();
    const copy = join(dir, 'copy.db');
    copyFileSync(file, copy);
    renameSync(copy, file);
    const health = await probe('/healthz');
    expect(health.status).toBe(503);
    expect(health.body.detail).toBe(`${file} was replaced while the service runs: it still writes the file it opened, which the next start will not read; restart the service`);
  });

  it('answers 503 failing once the connection is closed, and /readyz too', async () => {
    t.sqlite.close();
    expect(await probe('/healthz')).toEqual({ status: 503, body: { status: 'failing', detail: 'the database connection is closed' } });
    expect(await probe('/readyz')).toEqual({ status: 503, body: { status: 'failing', detail: 'the database connection is closed' } });
  });

  it('answers 503 failing when the read itself fails (the table it reads is gone), naming SQLite\'s error', async () => {
    t.sqlite.exec('pragma foreign_keys = off');
    t.sqlite.exec('drop table api_keys');
    t.sqlite.exec('drop table tenants');
    const health = await probe('/healthz');
    expect(health.status).toBe(503);
    expect(health.body.detail).toMatch(/^the database does not answer a read \(.*no such table: tenants\)$/);
  });
});

describe('GET /readyz', () => {
  it('answers 503 draining once the stop has begun, while /healthz stays 200 (a draining service is alive) and requests are still served', async () => {
    const { client } = t.tenant();
    expect((await probe('/readyz')).status).toBe(200);
    t.services.draining.abort();
    expect(await probe('/readyz')).toEqual({ status: 503, body: { status: 'draining' } });
    expect(await probe('/healthz')).toEqual({ status: 200, body: { status: 'ok' } });
    expect((await client.post('/v1/artifacts', { kind: 'system', content: 'served while draining' })).status).toBe(201);
  });
});

describe('GET /healthz when the database directory is gone from its path', () => {
  it('answers 503 failing, not a 500, once a file stands where the data directory was (the stat fails ENOTDIR, not ENOENT)', async () => {
    t.tenant();
    const moved = `${dir}.moved`;
    renameSync(dir, moved);
    writeFileSync(dir, 'not a directory');
    try {
      for (const path of ['/healthz', '/readyz'] as const) {
        const health = await probe(path);
        expect(health.status, path).toBe(503);
        expect(health.body).toEqual({ status: 'failing', detail: `${file} was removed while the service runs: what it writes now goes to a file no path leads to, lost when it stops; restart the service` });
      }
    } finally {
      rmSync(dir, { force: true });
      renameSync(moved, dir);
    }
  });
});
