import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { DAY_MS } from '../../src/domain/clock';
import { ADMIN_KEY, clientFor, createTestApp, type Client, type TestApp } from '../helpers/app';
import { FakeClock } from '../helpers/clock';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';
import { countReplays, numbered, scopeStates } from '../helpers/scope-states';

// Retention: requests past a horizon are deleted with their detail, on real database files; reports keep their
// figures, a restart still restores each scope from its snapshot, and a pruned id says it was pruned.

const MIN = 60_000;
const EVERY = 5;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ph-retention-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

interface History {
  t: TestApp;
  clock: FakeClock;
  client: Client;
  key: string;
  file: string;
  sys: string;
  ses: string;
  n: number;
  ids: string[];
}

async function start(file = 'db.sqlite', every = EVERY): Promise<History> {
  const clock = new FakeClock();
  const t = createTestApp({ databasePath: join(dir, file), clock, config: { scopeSnapshotEvery: every, inlineRetentionMs: 400 * DAY_MS } });
  const { client, key } = t.tenant();
  const mint = async (path: string, body: object) => {
    const res = await client.post(path, body);
    expect(res.status, res.text).toBe(201);
    return res.json.id as string;
  };
  const sys = await mint('/v1/artifacts', { kind: 'system', content: LONG_SYSTEM });
  const ses = await mint('/v1/sessions', { base: await mint('/v1/bundles', { members: [sys] }), messages: [{ role: 'user', content: 'Where is order 1?' }, { role: 'assistant', content: 'It left.' }] });
  return { t, clock, client, key, file: join(dir, file), sys, ses, n: 0, ids: [] };
}

/** An agent's calls: a system prompt or a session, a timestamp before the handle now and then (a drift), a gap past the TTL. */
async function calls(h: History, count: number, gapMs = 20_000): Promise<void> {
  for (let k = 0; k < count; k++, h.n++) {
    const i = h.n;
    const stamped = i % 7 === 3;
    const r = await renderAnthropic(h.client, {
      ...(stamped ? { system: [{ type: 'text', text: `now ${i}` }, { type: 'handle', ref: h.sys }] } : {}),
      prefix: stamped ? [] : i % 3 === 0 ? [h.ses] : [h.sys],
      messages: [{ role: 'user', content: `Question ${i}` }],
    });
    h.ids.push(r.request_id);
    const total = promptTokens(r);
    await report(h.client, h.t, r, anthropicUsage(total, r.prediction.read_tokens, total - r.prediction.read_tokens), { firstByteMs: i % 4 === 0 ? 2_000 : 300 });
    h.clock.advance(i % 10 === 9 ? 6 * MIN : gapMs);
  }
  await h.t.services.writes.idle();
}

/** Every report a tenant can ask for over the history: all time, by model, each handle's. */
async function reports(h: History): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const path of [
    '/v1/reports?from=2025-12-01',
    '/v1/reports?from=2025-12-01&model=claude-sonnet-4-5',
    '/v1/reports',
    `/v1/reports/handles/${h.sys}?from=2025-12-01`,
    `/v1/reports/handles/${h.sys}?from=2025-12-01&model=claude-sonnet-4-5`,
    `/v1/reports/handles/${h.ses}?from=2025-12-01`,
  ]) {
    const res = await h.client.get(path);
    expect(res.status, res.text).toBe(200);
    out[path] = res.json;
  }
  return out;
}

const prune = (t: TestApp, days: number) => clientFor(t.app, ADMIN_KEY).post('/v1/prune', { older_than_days: days });

/** Rows of every table that holds a request's detail, for these ids. */
function detailRows(t: TestApp, ids: string[]): Record<string, number> {
  const list = JSON.stringify(ids);
  const count = (sql: string) => t.sqlite.prepare(sql).pluck().get(list) as number;
  const ids_ = 'in (select value from json_each(?))';
  return {
    requests: count(`select count(*) from requests where id ${ids_}`),
    reconciliations: count(`select count(*) from reconciliations where request_id ${ids_}`),
    summaries: t.sqlite.prepare('select count(*) from request_summaries where seq not in (select seq from reconciliations)').pluck().get() as number,
    lines: count(`select count(*) from request_lines where request_id ${ids_}`),
    inline: count(`select count(*) from request_inline where request_id ${ids_}`),
    handles: count(`select count(*) from request_handles where request_id ${ids_}`),
  };
}

/** A copy of the database file as it is now, opened by a new service. */
function restart(h: History, name: string): TestApp {
  h.t.sqlite.pragma('wal_checkpoint(TRUNCATE)');
  const file = join(dir, `${name}.sqlite`);
  copyFileSync(h.file, file);
  return createTestApp({ databasePath: file, clock: new FakeClock(h.clock.now()), config: { scopeSnapshotEvery: EVERY } });
}

describe('request retention', () => {
  it('deletes old requests with their detail, keeps the reports, says a pruned id was pruned, and a restart restores the scope from its snapshot', async () => {
    const h = await start();
    await calls(h, 23);
    // A request rendered and never reported, and one the provider refused.
    const lost = await renderAnthropic(h.client, { prefix: [h.sys], messages: [{ role: 'user', content: 'never reported' }] });
    h.clock.advance(40 * DAY_MS);
    await calls(h, 1);
    // The unpruned twin, as the service that never pruned would have it.
    const twin = restart(h, 'twin');
    const before = await reports(h);
    expect(detailRows(h.t, [lost.request_id])).toMatchObject({ requests: 1, lines: 1, handles: 1 });
    expect(detailRows(h.t, h.ids.slice(0, 20)).inline).toBeGreaterThan(0);

    const res = await prune(h.t, 30);
    expect(res.status, res.text).toBe(200);
    // The snapshot covers the first 20 reconciliations: the 21st to 23rd are replayed at a start, so kept.
    expect(res.json).toMatchObject({ pruned: 21, kept: 3, kept_for_replay: 3, kept_for_drift: 0, kept_started_late: 0, floor_hours: 48 });
    expect(res.json.before).toBe(new Date(h.clock.now() - 30 * DAY_MS).toISOString());
    expect(detailRows(h.t, [...h.ids.slice(0, 20), lost.request_id])).toEqual({ requests: 0, reconciliations: 0, summaries: 0, lines: 0, inline: 0, handles: 0 });
    expect(detailRows(h.t, h.ids.slice(20)).requests).toBe(4);
    // Rollups and drift findings stay: every report is the same.
    expect(await reports(h)).toEqual(before);

    const gone = await h.client.get(`/v1/requests/${h.ids[0]}`);
    expect(gone.status).toBe(404);
    expect(gone.headers.get('content-type')).toContain('application/problem+json');
    expect(gone.json).toMatchObject({ code: 'request_pruned', errors: [{ pointer: 'path:id' }] });
    expect((await h.client.get(`/v1/requests/${h.ids[21]}`)).status).toBe(200);
    // A late report for a pruned request says so too (alone, and as its record's result in a batch); nothing changes.
    const late = await h.client.post('/v1/usage', { request_id: lost.request_id, usage: anthropicUsage(promptTokens(lost), 0, 0) });
    expect(late.status).toBe(404);
    expect(late.json).toMatchObject({ code: 'request_pruned', errors: [{ pointer: '/request_id' }] });
    const lateBatch = await h.client.post('/v1/usage/batch', { records: [{ request_id: lost.request_id, usage: anthropicUsage(promptTokens(lost), 0, 0) }] });
    expect(lateBatch.json.results).toMatchObject([{ index: 0, status: 404, problem: { code: 'request_pruned', status: 404 } }]);
    expect(await reports(h)).toEqual(before);
    // An id rendered after the horizon that does not exist is only not found.
    expect((await h.client.get(`/v1/requests/${h.ids[23]!.slice(0, 12)}ZZZZZZZZZZZZZ`)).json.code).toBe('not_found');
    // Listed: only what is kept.
    const listed = (await h.client.get('/v1/requests?limit=500')).json.requests.map((r: { id: string }) => r.id);
    expect(listed.sort()).toEqual(h.ids.slice(20).sort());
    // The dashboard: a pruned request's page says so; a drift finding naming one shows it unlinked, marked pruned.
    const ui = (path: string) => h.t.app.request(path, { headers: { cookie: `ph_ui_key=${h.key}` } });
    const page = await ui(`/ui/requests/${h.ids[0]}`);
    expect(page.status).toBe(404);
    expect(await page.text()).toContain('Pruned past retention');
    const handlePage = await (await ui(`/ui/handles/${h.sys}?period=all`)).text();
    const prunedLinks = [...handlePage.matchAll(/data-pruned="(req_[0-9A-Za-z]+)"/g)].map((m) => m[1]);
    expect(prunedLinks.length).toBeGreaterThan(0);
    for (const id of prunedLinks) expect(h.ids.slice(0, 20)).toContain(id);
    for (const id of h.ids.slice(0, 20)) expect(handlePage).not.toContain(`href="/ui/requests/${id}"`);
    // Again: nothing more to prune.
    expect((await prune(h.t, 30)).json).toMatchObject({ pruned: 0, kept: 3 });

    const metrics = await clientFor(h.t.app, ADMIN_KEY).get('/metrics');
    expect(metrics.text).toMatch(/^ph_requests_pruned_total 21$/m);

    // A start restores the scope from its snapshot (the pruned rows counted), replaying the 4 after it, as the twin.
    const u = restart(h, 'restarted');
    const replays = countReplays(u);
    const v = twin;
    const replaysTwin = countReplays(v);
    expect(scopeStates(u, h.ids)).toBe(scopeStates(v, h.ids));
    expect([...replays.values()]).toEqual([4]);
    expect([...replaysTwin.values()]).toEqual([4]);
    const probe = async (t: TestApp) => {
      const client = clientFor(t.app, h.key);
      const r = await renderAnthropic(client, { prefix: [h.sys], messages: [{ role: 'user', content: 'After the restart?' }] });
      const total = promptTokens(r);
      const out = await report(client, t, r, anthropicUsage(total, 1024, 100));
      return numbered({ prediction: r.prediction, outcome: out.outcome }, [r.request_id, ...h.ids]);
    };
    expect(await probe(u)).toBe(await probe(v));
    u.close();
    v.close();
    h.t.close();
  });

  it('keeps what a restart or a cache still needs: reconciled requests of a scope without a snapshot, and those within a TTL of the scope\'s latest call', async () => {
    const h = await start('none.sqlite', 0);
    await calls(h, 6);
    const lost = await renderAnthropic(h.client, { prefix: [h.sys], messages: [{ role: 'user', content: 'never reported' }] });
    h.clock.advance(40 * DAY_MS);
    // No snapshot: every reconciled request is replayed at a start. The rendered one goes.
    expect((await prune(h.t, 30)).json).toMatchObject({ pruned: 1, kept: 6, kept_for_replay: 6, kept_for_drift: 0 });
    expect(h.t.store.requestExists(lost.request_id)).toBe(false);
    h.t.close();

    // Imported history, all 40 days old: the scope's latest call is too, and the calls within the longest TTL of it
    // (24 hours, OpenAI's) are kept though a snapshot covers them.
    const g = await start('old.sqlite', 5);
    await calls(g, 10);
    g.clock.advance(40 * DAY_MS);
    expect((await prune(g.t, 30)).json).toMatchObject({ pruned: 0, kept: 10, kept_for_replay: 0, kept_for_drift: 10 });
    g.t.close();
  });

  it('never prunes within its floor, twice the catalog\'s longest cache TTL (48 h): an age of one day considers only requests rendered 48 h ago and before, and says so', async () => {
    const h = await start('floor.sqlite', 0);
    const rendered = async () => (await renderAnthropic(h.client, { prefix: [h.sys], messages: [{ role: 'user', content: `never reported ${h.clock.now()}` }] })).request_id;
    const old = await rendered();
    h.clock.advance(47 * 3_600_000);
    // 47 hours old: past the day asked for, within the floor.
    const young = await rendered();
    h.clock.advance(2 * 3_600_000);
    const res = await prune(h.t, 1);
    expect(res.json).toMatchObject({ pruned: 1, kept: 0, floor_hours: 48, before: new Date(h.clock.now() - 48 * 3_600_000).toISOString() });
    expect([h.t.store.requestExists(old), h.t.store.requestExists(young)]).toEqual([false, true]);
    h.t.close();
  });

  it('prunes by itself past PH_REQUEST_RETENTION_DAYS: a minute after the start, then every hour; never with 0', async () => {
    const settle = async () => {
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    };
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      for (const days of [30, 0]) {
        const h = await start(`timer-${days}.sqlite`);
        const t = createTestApp({ databasePath: h.file, clock: h.clock, config: { requestRetentionDays: days } });
        const client = clientFor(t.app, h.key);
        const old = await renderAnthropic(client, { prefix: [h.sys], messages: [{ role: 'user', content: 'old' }] });
        await t.services.writes.idle();
        h.clock.advance(40 * DAY_MS);
        t.services.retention.start();
        vi.advanceTimersByTime(59_000);
        await settle();
        expect(t.store.requestExists(old.request_id)).toBe(true);
        vi.advanceTimersByTime(1_000);
        await settle();
        expect(t.store.requestExists(old.request_id)).toBe(days === 0);
        // An hour later, the next run takes what aged since.
        const next = await renderAnthropic(client, { prefix: [h.sys], messages: [{ role: 'user', content: 'next' }] });
        await t.services.writes.idle();
        h.clock.advance(40 * DAY_MS);
        vi.advanceTimersByTime(3_600_000);
        await settle();
        expect(t.store.requestExists(next.request_id)).toBe(days === 0);
        t.services.retention.stop();
        t.close();
        h.t.close();
      }
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses an age under a day, a field it does not take, and a tenant key (4xx problem+json, nothing deleted)', async () => {
    const h = await start('refuse.sqlite');
    await calls(h, 3);
    const admin = clientFor(h.t.app, ADMIN_KEY);
    for (const body of [{ older_than_days: 0 }, { older_than_days: 1.5 }, { older_than_days: '30' }, { older_than_days: 30, dry_run: true }, {}]) {
      const res = await admin.post('/v1/prune', body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.json.code).toBe('invalid_request');
    }
    expect((await h.client.post('/v1/prune', { older_than_days: 30 })).status).toBe(401);
    expect(h.t.sqlite.prepare('select count(*) from requests').pluck().get()).toBe(3);
    h.t.close();
  });

  it('property: over random histories, every report is the same before and after pruning', async () => {
    let pruned = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ calls: fc.integer({ min: 1, max: 6 }), gapDays: fc.integer({ min: 0, max: 20 }), gapMs: fc.integer({ min: 1_000, max: 20 * MIN }) }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 4 }),
        async (phases, days, every) => {
          const h = await start(`p-${Math.random().toString(36).slice(2)}.sqlite`, every === 0 ? 0 : every + 1);
          for (const p of phases) {
            await calls(h, p.calls, p.gapMs);
            h.clock.advance(p.gapDays * DAY_MS);
          }
          const before = await reports(h);
          const res = await prune(h.t, days);
          expect(res.status, res.text).toBe(200);
          expect(res.json.pruned + res.json.kept).toBeLessThanOrEqual(h.ids.length);
          pruned += res.json.pruned;
          expect(await reports(h)).toEqual(before);
          h.t.close();
        },
      ),
      { numRuns: 12 },
    );
    // The histories did reach past the horizon.
    expect(pruned).toBeGreaterThan(0);
  }, 120_000);
});
