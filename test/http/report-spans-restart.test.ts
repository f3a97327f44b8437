// A span (rollups_span) made before a restart must be undone by a later write to its days, even when the clock the
// service restarts with is behind the one that made it (a VM restored, an NTP step back): the write side skips the
// spans for days it takes to be today or later, which it decides by the clock alone.
import { serve, type ServerType } from '@hono/node-server';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { clientFor, createTestApp, type TestApp } from '../helpers/app';
import { FakeClock } from '../helpers/clock';
import { mintBundle, mintDocument, mintSystem } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic } from '../helpers/scenario';

let dir: string;
const open: Array<{ t: TestApp; server: ServerType }> = [];
async function start(clock: FakeClock) {
  const t = createTestApp({ databasePath: join(dir, 'db.sqlite'), clock });
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  open.push({ t, server });
  return { t, server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
async function stop(s: { t: TestApp; server: ServerType }) {
  await s.t.services.writes.idle();
  await new Promise<void>((resolve) => s.server.close(() => resolve()));
  s.t.close();
  open.splice(open.indexOf(s), 1);
}
afterEach(async () => {
  for (const s of [...open]) await stop(s);
  rmSync(dir, { recursive: true, force: true });
});

describe('spans across a restart with the clock behind', () => {
  it('a write after the restart, to a day a span holds, is in the next all-time report', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ph-spans-restart-'));
    const clock = new FakeClock(Date.parse('2026-03-01T12:00:00Z'));
    const first = await start(clock);
    const { key } = first.t.tenant();
    let client = clientFor({ request: (path, init) => fetch(`${first.base}${path}`, init) }, key);
    const sys = await mintSystem(client, LONG_SYSTEM);
    const doc = await mintDocument(client);
    const bundle = await mintBundle(client, [sys.id, doc.id]);
    const report = async (q: string) => {
      const r = await renderAnthropic(client, { prefix: [bundle.id], messages: [{ role: 'user', content: q }] });
      const started = clock.now();
      const res = await client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(promptTokens(r), 0, promptTokens(r) - 10), started_at: started, first_byte_at: started + 400, finished_at: started + 900 });
      expect(res.status, res.text).toBe(201);
    };
    await report('March 1st');
    clock.set(Date.parse('2026-03-10T12:00:00Z'));
    // The all-time report makes every day's span, through March 8th.
    expect((await client.get('/v1/reports')).json.requests).toBe(1);
    await stop(first);

    // Restarted with the clock five days behind: March 5th is "today", a day the span holds.
    clock.set(Date.parse('2026-03-05T12:00:00Z'));
    const second = await start(clock);
    client = clientFor({ request: (path, init) => fetch(`${second.base}${path}`, init) }, key);
    await report('March 5th');
    await second.t.services.writes.idle();
    clock.set(Date.parse('2026-03-10T12:00:00Z'));
    const own = (await client.get(`/v1/reports/handles/${bundle.id}`)).json;
    expect(own.requests).toBe(2);
    const all = (await client.get('/v1/reports')).json;
    expect(all.requests).toBe(2);
    expect(all.handles.find((h: { id: string }) => h.id === bundle.id).requests).toBe(2);
  });
});
