// POST /v1/usage over real HTTP on a real database file: the route that reads
// its body from the Node request, and the group commit that stores it.
import { serve, type ServerType } from '@hono/node-server';
import { request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { answerClientError } from '../../src/http/client-error';
import { openDb, WalSync } from '../../src/store/db';
import { SqliteStore } from '../../src/store/sqlite-store';
import { systemClock } from '../../src/domain/clock';
import { ADMIN_KEY, clientFor, createTestApp, type TestApp } from '../helpers/app';
import { mintSystem } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM } from '../helpers/scenario';

interface Running {
  t: TestApp;
  url: string;
  server: ServerType;
}

let dir: string;
let file: string;
let running: Running | undefined;

async function start(maxBodyBytes = 64 * 1024): Promise<Running> {
  const t = createTestApp({ databasePath: file, config: { maxBodyBytes } });
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  return { t, server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function stop(r: Running): Promise<void> {
  await new Promise((resolve) => r.server.close(resolve));
  // Shutdown as main.ts does it: what is still queued is committed before the database closes.
  r.t.services.writes.flushNow();
  r.t.close();
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ph-usage-http-'));
  file = join(dir, 'db.sqlite');
});
afterEach(async () => {
  if (running) await stop(running);
  running = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** A raw HTTP POST: the body exactly as given, and chunked when no length is declared. */
function post(url: string, path: string, body: string | Buffer, headers: Record<string, string>): Promise<{ status: number; type: string; json: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function postRaw(url: string, path: string, body: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function renderOne(r: Running) {
  const { key, client } = r.t.tenant();
  const sys = await mintSystem(client, LONG_SYSTEM);
  const res = await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', prefix: [sys.id], messages: [{ role: 'user', content: 'hi' }] } });
  expect(res.status, res.text).toBe(200);
  const total = res.json.segments.at(-1).token_end as number;
  return { key, requestId: res.json.request_id as string, total };
}

describe('POST /v1/usage over HTTP, on a database file', () => {
  it('reconciles once, answers the same report with the stored result, refuses a different one, and keeps it across a restart', async () => {
    running = await start();
    const { key, requestId, total } = await renderOne(running);
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const body = JSON.stringify({ request_id: requestId, usage: anthropicUsage(total, 0, total - 10) });

    const first = await post(running.url, '/v1/usage', body, headers);
    expect(first.status).toBe(201);
    expect(first.json.outcome.capture).toBe('reported');
    expect(first.json.outcome.provider).toEqual({ read: 0, write: total - 10 });
    // The same report with its keys in another order is the same report.
    const reordered = JSON.stringify({ usage: anthropicUsage(total, 0, total - 10), request_id: requestId });
    const again = await post(running.url, '/v1/usage', reordered, headers);
    expect(again.status).toBe(200);
    expect(again.json.duplicate).toBe(true);
    expect(again.json.outcome).toEqual(first.json.outcome);
    const other = await post(running.url, '/v1/usage', JSON.stringify({ request_id: requestId, usage: anthropicUsage(total, 0, 5) }), headers);
    expect(other.status).toBe(409);
    expect(other.json.code).toBe('conflict');

    await stop(running);
    running = await start();
    const stored = await post(running.url, '/v1/usage', body, headers);
    expect(stored.status).toBe(200);
    expect(stored.json.outcome).toEqual(first.json.outcome);
    const client = clientFor(running.t.app, key);
    const row = await client.get(`/v1/requests/${requestId}`);
    expect(row.json.status).toBe('reconciled');
    expect(row.json.usage_raw).toEqual(anthropicUsage(total, 0, total - 10));
    expect(row.json.outcome).toEqual(first.json.outcome);
    expect((await client.get('/v1/reports')).json.requests).toBe(1);
  });

  it('answers bad bodies with the same problems as every other route, and writes nothing', async () => {
    running = await start(20_000);
    const { key, requestId, total } = await renderOne(running);
    const json = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const expectProblem = (res: { status: number; type: string; json: any }, status: number, code: string) => {
      expect(res.status).toBe(status);
      expect(res.type).toMatch(/^application\/problem\+json/);
      expect(res.json.code).toBe(code);
    };

    expectProblem(await post(running.url, '/v1/usage', '{"request_id":', json), 400, 'malformed_json');
    expectProblem(await post(running.url, '/v1/usage', '{}', { ...json, 'content-type': 'text/plain' }), 415, 'unsupported_media_type');
    const big = JSON.stringify({ request_id: requestId, usage: anthropicUsage(total, 0, 0), diagnostics: 'x'.repeat(24_000) });
    expectProblem(await post(running.url, '/v1/usage', big, { ...json, 'content-length': String(Buffer.byteLength(big)) }), 413, 'payload_too_large');
    // No declared length (chunked): refused once the bytes read pass the limit.
    expectProblem(await post(running.url, '/v1/usage', big, { ...json, 'transfer-encoding': 'chunked' }), 413, 'payload_too_large');
    const unknownField = await post(running.url, '/v1/usage', JSON.stringify({ request_id: requestId, usage: anthropicUsage(total, 0, 0), extra: 1 }), json);
    expectProblem(unknownField, 422, 'invalid_request');
    expect(unknownField.json.errors).toEqual([{ pointer: '/extra', detail: 'unknown field "extra"' }]);
    expectProblem(await post(running.url, '/v1/usage', JSON.stringify({ request_id: requestId, usage: {} }), { 'content-type': 'application/json' }), 401, 'unauthorized');
    expectProblem(await post(running.url, '/v1/usage', JSON.stringify({ request_id: 'req_AAAAAAAAAAAAAAAAAAAAA', usage: {} }), json), 404, 'not_found');

    // No body at all: the key is checked, then the schema says what is missing (as on every route).
    expectProblem(await post(running.url, '/v1/usage', '', {}), 401, 'unauthorized');
    expectProblem(await post(running.url, '/v1/usage', '', { authorization: json.authorization }), 422, 'invalid_request');
    expectProblem(await post(running.url, '/v1/usage', '', json), 400, 'malformed_json');

    // A compressed body is refused for what it is (415), not read as broken text.
    const gzipped = await post(running.url, '/v1/usage', Buffer.from([0x1f, 0x8b, 0x08, 0x00]), { ...json, 'content-encoding': 'gzip' });
    expectProblem(gzipped, 415, 'unsupported_media_type');
    expect(gzipped.json.detail).toBe('send the JSON uncompressed (got content-encoding: gzip)');
    // Bytes that are not UTF-8 are refused, never decoded with replacement characters.
    const latin1 = Buffer.concat([Buffer.from(`{"request_id":"${requestId}","usage":{"input_tokens":1},"diagnostics":"caf`), Buffer.from([0xe9]), Buffer.from('"}')]);
    const notUtf8 = await post(running.url, '/v1/usage', latin1, json);
    expectProblem(notUtf8, 400, 'malformed_json');
    expect(notUtf8.json.detail).toBe(`The request body is not valid UTF-8 (at byte ${latin1.indexOf(0xe9)}): send the text as UTF-8`);

    // None of it was written: the real report is still the first. A leading byte-order mark is not an error.
    const ok = await post(running.url, '/v1/usage', '\uFEFF' + JSON.stringify({ request_id: requestId, usage: anthropicUsage(total, 0, 0) }), json);
    expect(ok.status).toBe(201);
  });

  it('POST /v1/render, also ahead of the middleware: the same problems in the same order, and nothing written', async () => {
    running = await start(20_000);
    const { key } = await renderOne(running);
    const json = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const expectProblem = (res: { status: number; type: string; json: any }, status: number, code: string) => {
      expect(res.status, JSON.stringify(res.json)).toBe(status);
      expect(res.type).toMatch(/^application\/problem\+json/);
      expect(res.json.code).toBe(code);
    };
    const requests = () => running!.t.sqlite.prepare('select count(*) as n from requests').get();
    const before = requests();
    const body = (extra: object = {}) => JSON.stringify({ format: 'anthropic', request: { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'hi' }] }, ...extra });

    const malformed = await post(running.url, '/v1/render', '{"format":"anthropic",}', json);
    expectProblem(malformed, 400, 'malformed_json');
    // The parser's own words say where.
    expect(malformed.json.detail).toMatch(/^The request body is not valid JSON: .* at position 22/);
    expectProblem(await post(running.url, '/v1/render', body(), { ...json, 'content-type': 'text/plain' }), 415, 'unsupported_media_type');
    const big = body({ model: 'x'.repeat(24_000) });
    expectProblem(await post(running.url, '/v1/render', big, { ...json, 'content-length': String(Buffer.byteLength(big)) }), 413, 'payload_too_large');
    expectProblem(await post(running.url, '/v1/render', big, { ...json, 'transfer-encoding': 'chunked' }), 413, 'payload_too_large');
    const unknownField = await post(running.url, '/v1/render', body({ extra: 1 }), json);
    expectProblem(unknownField, 422, 'invalid_request');
    expect(unknownField.json.errors).toEqual([{ pointer: '/extra', detail: 'unknown field "extra"' }]);
    expectProblem(await post(running.url, '/v1/render', body(), { 'content-type': 'application/json' }), 401, 'unauthorized');
    expectProblem(await post(running.url, '/v1/render', '', {}), 401, 'unauthorized');
    expect(requests()).toEqual(before);

    // A leading byte-order mark is not an error; the answer names the request and is counted under its route.
    const ok = await postRaw(running.url, '/v1/render', '\uFEFF' + body(), { ...json, 'x-request-id': 'trace-7' });
    expect(ok.status).toBe(200);
    expect(ok.headers['x-request-id']).toBe('trace-7');
    expect(ok.headers['x-ph-request-id']).toBe(JSON.parse(ok.text).request_id);
    expect(requests()).toEqual({ n: (before as { n: number }).n + 1 });
    const counted = await running.t.services.metrics.registry.getSingleMetricAsString('ph_http_requests_total');
    expect(counted).toMatch(/ph_http_requests_total\{method="POST",route="\/v1\/render",status="200"\} \d+/);
    expect(counted).toMatch(/ph_http_requests_total\{method="POST",route="\/v1\/render",status="415"\} 1/);
  });

  it('names each request: a sane x-request-id is echoed and used in problems, any other is replaced', async () => {
    running = await start();
    const { key, requestId, total } = await renderOne(running);
    const json = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const named = await postRaw(running.url, '/v1/usage', JSON.stringify({ request_id: requestId, usage: anthropicUsage(total, 0, 0) }), { ...json, 'x-request-id': 'trace-42' });
    expect(named.status).toBe(201);
    expect(named.headers['x-request-id']).toBe('trace-42');
    const bad = await postRaw(running.url, '/v1/usage', '{', { ...json, 'x-request-id': 'no spaces allowed' });
    expect(bad.status).toBe(400);
    expect(bad.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.parse(bad.text).requestId).toBe(bad.headers['x-request-id']);
    const metrics = await running.t.services.metrics.registry.getSingleMetricAsString('ph_http_request_duration_seconds');
    expect(metrics).toMatch(/ph_http_request_duration_seconds_count\{method="POST",route="\/v1\/usage"\} 2/);
  });

  it.each(['/v1/usage', '/v1/artifacts'])("treats a client that leaves mid-body as the client's error, and keeps serving (%s)", async (path) => {
    running = await start();
    const { key, requestId, total } = await renderOne(running);
    const errors: unknown[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void errors.push(args);
    try {
      await new Promise<void>((resolve) => {
        const req = httpRequest(`${running!.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': '5000' } });
        req.on('error', () => resolve());
        req.write('{"request_id":');
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 50);
      });
      await new Promise((r) => setTimeout(r, 50));
      const ok = await post(running.url, '/v1/usage', JSON.stringify({ request_id: requestId, usage: anthropicUsage(total, 0, 0) }), { authorization: `Bearer ${key}`, 'content-type': 'application/json' });
      expect(ok.status).toBe(201);
      const counted = await running.t.services.metrics.registry.getSingleMetricAsString('ph_http_requests_total');
      expect(counted).toMatch(new RegExp(`ph_http_requests_total\\{method="POST",route="[^"]*",status="400"\\} 1`));
      expect(counted).not.toMatch(/status="500"/);
      expect(errors).toEqual([]);
    } finally {
      console.error = original;
    }
  });
});

describe('GET /healthz on a database file', () => {
  it('answers 503 "failing" once a WAL sync has failed (every later report is refused until a restart), 200 until then', async () => {
    // A real failure, as in the group-commit test: the WAL synced belongs to a database that has none.
    const opened = openDb(file);
    const noWal = openDb(join(dir, 'no-wal.sqlite'));
    noWal.sqlite.pragma('journal_mode = DELETE');
    const t = createTestApp({ databasePath: file, deps: { store: new SqliteStore(opened.db, new WalSync(noWal.sqlite), systemClock) } });
    const server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    running = { t, server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    try {
      const health = async () => {
        const res = await fetch(`${running!.url}/healthz`);
        return { status: res.status, json: (await res.json()) as Record<string, string> };
      };
      expect(await health()).toEqual({ status: 200, json: { status: 'ok' } });
      // The first group commit (a render's) fails its sync.
      const { key } = running.t.tenant();
      const render = { format: 'anthropic', request: { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'hi' }] } };
      const res = await post(running.url, '/v1/render', JSON.stringify(render), { authorization: `Bearer ${key}`, 'content-type': 'application/json' });
      expect(res.status).toBe(500);
      // It was 200 {"status":"ok"} here: an orchestrator's health check kept a service that stores nothing.
      const failing = await health();
      expect(failing.status).toBe(503);
      expect(failing.json.status).toBe('failing');
      expect(failing.json.detail).toMatch(/^the database's WAL could not be synced to disk; writes are refused from now on \(.*\); restart the service$/);
    } finally {
      opened.close();
      noWal.close();
    }
  });
});

describe('two processes on one database file', () => {
  it('reconcile a request once: the second writer gets a 409, then the stored result', async () => {
    running = await start();
    const { key, requestId, total } = await renderOne(running);
    // Another service instance on the same file reconciles it first; ours still holds the rendered row in memory.
    const other = createTestApp({ databasePath: file });
    const report = { request_id: requestId, usage: anthropicUsage(total, 0, total - 10) };
    const json = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    try {
      const first = await clientFor(other.app, key).post('/v1/usage', report);
      expect(first.status).toBe(201);
      const late = await post(running.url, '/v1/usage', JSON.stringify(report), json);
      expect(late.status).toBe(409);
      expect(late.json.code).toBe('conflict');
      const again = await post(running.url, '/v1/usage', JSON.stringify(report), json);
      expect(again.status).toBe(200);
      expect(again.json.outcome).toEqual(first.json.outcome);
      expect(running.t.sqlite.prepare('select count(*) from reconciliations').pluck().get()).toBe(1);
    } finally {
      other.close();
    }
  });
  it("reconcile each other's requests after either wrote: the reconciliation order is the file's, not a counter one process read at start", async () => {
    running = await start();
    // Both processes are up before either reconciles anything (each reads the counter at start).
    const other = createTestApp({ databasePath: file });
    const json = (key: string) => ({ authorization: `Bearer ${key}`, 'content-type': 'application/json' });
    try {
      const a = await renderOne(running);
      const first = await clientFor(other.app, a.key).post('/v1/usage', { request_id: a.requestId, usage: anthropicUsage(a.total, 0, a.total - 10) });
      expect(first.status, first.text).toBe(201);
      // A request of its own, reported to the process that has not written yet: it is not reconciled by anyone.
      const b = await renderOne(running);
      const res = await post(running.url, '/v1/usage', JSON.stringify({ request_id: b.requestId, usage: anthropicUsage(b.total, 0, b.total - 10) }), json(b.key));
      expect(res.status, JSON.stringify(res.json)).toBe(201);
      // And the other way round, after this one wrote.
      const c = await renderOne(running);
      const third = await clientFor(other.app, c.key).post('/v1/usage', { request_id: c.requestId, usage: anthropicUsage(c.total, 0, c.total - 10) });
      expect(third.status, third.text).toBe(201);
      const seqs = running.t.sqlite.prepare('select seq from reconciliations order by seq').pluck().all();
      expect(seqs).toEqual([1, 2, 3]);
    } finally {
      other.close();
    }
  });
});

describe('the write queue on a database file', () => {
  it('commits the good writes of a batch one by one when another write in it fails', async () => {
    running = await start();
    const { key, requestId, total } = await renderOne(running);
    const { services } = running.t;
    const row = services.writes.pendingRequest(requestId)!;
    expect(row.id).toBe(requestId);
    // The same request inserted twice fails (primary key); the report enqueued in the same batch still commits.
    const duplicate = services.writes.enqueue({ kind: 'request', row, inline: [] });
    const reported = services.reconciler.ingest(row.tenantId, { request_id: requestId, usage: anthropicUsage(total, 0, 0) });
    await expect(duplicate).rejects.toThrow(/UNIQUE/);
    expect((await reported).duplicate).toBe(false);
    const client = clientFor(running.t.app, key);
    expect((await client.get(`/v1/requests/${requestId}`)).json.status).toBe('reconciled');
  });

  it('a POST with no body at all (curl -X POST) needs no content type: rotate a key, issue one', async () => {
    running = await start();
    const admin = { authorization: `Bearer ${ADMIN_KEY}` };
    const tenant = await post(running.url, '/v1/tenants', JSON.stringify({ name: 'acme' }), { ...admin, 'content-type': 'application/json' });
    expect(tenant.status).toBe(201);
    // As curl -X POST sends it: no content type, no length, no transfer encoding.
    const bare = (path: string) =>
      new Promise<string>((resolve, reject) => {
        const { port } = new URL(running!.url);
        const socket = connect(Number(port), '127.0.0.1', () => socket.end(`POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: ${admin.authorization}\r\nConnection: close\r\n\r\n`));
        let text = '';
        socket.on('data', (c) => (text += c.toString())).on('end', () => resolve(text)).on('error', reject);
      });
    expect(await bare(`/v1/keys/${tenant.json.id}/rotate`)).toMatch(/^HTTP\/1\.1 201/);
    expect(await bare(`/v1/tenants/${tenant.json.tenant}/keys`)).toMatch(/^HTTP\/1\.1 201/);
    // A body without a JSON type is still a 415.
    expect((await post(running.url, `/v1/tenants/${tenant.json.tenant}/keys`, 'x', { ...admin, 'content-type': 'text/plain' })).status).toBe(415);
  });

  it('headers over Node\'s limit, or bytes that are not HTTP: problem+json too, not a bare status', async () => {
    running = await start();
    running.server.on('clientError', answerClientError);
    const raw = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(Number(new URL(running!.url).port), '127.0.0.1', () => socket.write(request));
        let text = '';
        socket.on('data', (c) => (text += c.toString())).on('end', () => resolve(text)).on('error', reject);
      });
    const big = await raw(`POST /proxy/anthropic/v1/messages HTTP/1.1\r\nHost: x\r\nx-ph-prefix: ${'art_AAAAAAAAAAAAAAAAAAAAA, '.repeat(800)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    expect(big).toContain('content-type: application/problem+json');
    // With a request id (in the header too) and the error member the SDKs read, as every answer of the proxy.
    const bigBody = JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4));
    expect(bigBody).toMatchObject({ status: 431, code: 'headers_too_large', requestId: expect.any(String), error: { type: 'headers_too_large', message: expect.stringContaining('16 KB') } });
    expect(big).toContain(`x-request-id: ${bigBody.requestId}`);
    const garbage = await raw('NOT HTTP AT ALL\r\n\r\n');
    expect(JSON.parse(garbage.slice(garbage.indexOf('\r\n\r\n') + 4))).toMatchObject({ status: 400, code: 'malformed_request' });
  });
});
