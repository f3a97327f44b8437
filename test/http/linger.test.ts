// A refusal given before the request's body arrived (see lingerUntilRead in src/http/body.ts), over a raw connection.

import { serve, type ServerType } from '@hono/node-server';
import { connect, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app';

let t: TestApp;
let server: ServerType;
let port: number;
beforeAll(async () => {
  t = createTestApp({ config: { maxBodyBytes: 1000 } });
  server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  port = (server.address() as AddressInfo).port;
});
afterAll(() => {
  server.close();
  t.close();
});

const post = (key: string, body: string, length = Buffer.byteLength(body)) =>
  `POST /v1/artifacts HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${key}\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n${body}`;

describe('a body refused before it arrived', () => {
  it('is read to its end and the 413 read; a request pipelined after it is not run (its answer would never be sent)', async () => {
    const { key, client } = t.tenant();
    const big = JSON.stringify({ kind: 'document', content: 'x'.repeat(5000) });
    const sock = connect(port, '127.0.0.1');
    let got = '';
    sock.on('data', (d: Buffer) => (got += d.toString()));
    const closed = new Promise((r) => sock.on('close', r));
    sock.write(post(key, '', big.length));
    // The 413 has come before the body is sent: the client goes on sending it, then a second request on the same connection.
    await new Promise<void>((r) => sock.once('data', () => r()));
    sock.end(big + post(key, JSON.stringify({ kind: 'document', content: 'pipelined' })));
    await closed;
    expect(got.match(/^HTTP\/1\.1 \d+/gm)).toEqual(['HTTP/1.1 413']);
    expect(got).toContain('connection: close');
    // The client was told the connection closes and got no answer to the second: it was not run (a retry would mint it twice).
    expect((await client.get('/v1/handles')).json.handles).toEqual([]);
  });
});
