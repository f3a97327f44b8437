// Calls that referenced no handle: on no handle's report and not in the tenant's totals, but counted apart (the
// NO_HANDLE rollup rows, kept on ingestion) and shown as `no_handle` in GET /v1/reports, on the dashboard's overview
// and in `prefix-handles report`.
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDb } from '../../src/store/db';
import { createTestApp, type Client, type TestApp } from '../helpers/app';
import { asBefore0019 } from '../helpers/migrations';
import { startCliHarness } from '../helpers/cli';
import { mintSystem, startSession, userMessage } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report, type Rendered } from '../helpers/scenario';

const DAY = 86_400_000;
const MIN = 60_000;

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

interface Sent {
  total: number;
  read: number;
  written: number;
  cost: number;
}

/** A call with the system prompt inline (no handle): the provider reads what the simulation predicts, and writes the rest up to the mark. */
async function inlineCall(client: Client, text: string, system = LONG_SYSTEM): Promise<Sent> {
  const r = await renderAnthropic(client, { system: [{ type: 'text', text: system, cache_control: { type: 'ephemeral' } }], messages: [userMessage(text)] });
  return reportPredicted(client, r);
}

async function reportPredicted(client: Client, r: Rendered): Promise<Sent> {
  const total = promptTokens(r);
  const read = r.prediction.read_tokens;
  const written = r.prediction.write_tokens;
  const o = (await report(client, t, r, anthropicUsage(total, read, written))).outcome as unknown as { segments: Array<{ cost: { actual: number } }> };
  t.clock.advance(MIN);
  return { total, read, written, cost: o.segments.reduce((a, s) => a + s.cost.actual, 0) };
}

/** Two calls through a system handle and three with the same system prompt inline; another tenant's inline call. */
async function history() {
  const { client, key } = t.tenant();
  const sys = await mintSystem(client, `${LONG_SYSTEM} (handle)`);
  const handle = (text: string) => renderAnthropic(client, { system: [{ type: 'handle', ref: sys.id }], messages: [userMessage(text)] });
  await reportPredicted(client, await handle('one'));
  await reportPredicted(client, await handle('two'));
  const inline = [await inlineCall(client, 'a'), await inlineCall(client, 'b'), await inlineCall(client, 'c')];
  // A session with no turns yet renders nothing: the call named a handle, and is not one through no handle.
  const empty = await startSession(client);
  await reportPredicted(client, await renderAnthropic(client, { prefix: [empty.id], messages: [userMessage('first turn')] }));
  await inlineCall(t.tenant().client, 'another tenant');
  return { client, key, sys, inline };
}

describe('calls that referenced no handle', () => {
  it('GET /v1/reports counts them apart: 3 calls, their exact prompt tokens, cache reads and input cost; the totals stay handle content', async () => {
    const { client, inline } = await history();
    // The second and third inline calls read the prefix the first wrote.
    expect(inline.map((c) => c.read > 0)).toEqual([false, true, true]);
    const rep = (await client.get('/v1/reports')).json;
    expect(rep.no_handle).toEqual({
      requests: 3,
      tokens: { prompt: inline.reduce((a, c) => a + c.total, 0), repeated: expect.any(Number), cache_read: inline.reduce((a, c) => a + c.read, 0) },
      money: {
        currency: 'USD',
        actual_input_cost: round6(inline.reduce((a, c) => a + c.cost, 0)),
        cost_without_caching: expect.any(Number),
        unknown_capture_input_cost: 0,
        // The first call's write (5m, 1.25×), read by the second a minute later: paid, and not wasted.
        write_premiums_paid: round6(inline[0]!.written * 0.75e-6),
        write_premiums_unread: 0,
        write_premiums_pending: 0,
      },
    });
    // What was repeated is what the later two calls could read: at least what the provider did read.
    expect(rep.no_handle.tokens.repeated).toBeGreaterThanOrEqual(rep.no_handle.tokens.cache_read);
    expect(rep.no_handle.tokens.repeated).toBeLessThan(rep.no_handle.tokens.prompt);
    expect(rep.no_handle.money.cost_without_caching).toBeGreaterThan(rep.no_handle.money.actual_input_cost);
    // The totals count handle content: the two handle calls (the empty session's call had no handle content).
    expect(rep.requests).toBe(2);
    expect(rep.handles.map((h: { id: string }) => h.id)).not.toContain('-');

    // By model and by day, as the totals: another model's calls are none; a range before today holds none of them.
    expect((await client.get('/v1/reports?model=gpt-4.1')).json.no_handle).toMatchObject({ requests: 0, tokens: { prompt: 0, repeated: 0, cache_read: 0 } });
    expect((await client.get('/v1/reports?model=claude-sonnet-4-5')).json.no_handle.requests).toBe(3);
    const yesterday = new Date(t.clock.now() - DAY).toISOString().slice(0, 10);
    expect((await client.get(`/v1/reports?to=${yesterday}`)).json.no_handle.requests).toBe(0);
  });

  it('a call whose provider reported no cache fields is priced apart, as the totals price theirs', async () => {
    const { client } = t.tenant();
    const r = await renderAnthropic(client, { system: LONG_SYSTEM, messages: [userMessage('q')] });
    const total = promptTokens(r);
    await report(client, t, r, { input_tokens: total, output_tokens: 5 });
    const n = (await client.get('/v1/reports')).json.no_handle;
    expect(n.requests).toBe(1);
    expect(n.tokens.prompt).toBe(total);
    expect(n.money.actual_input_cost).toBe(0);
    // claude-sonnet-4-5: $3 per million input tokens.
    expect(n.money.unknown_capture_input_cost).toBe(round6((total * 3) / 1e6));
  });

  it('their write premiums are followed as a handle\'s: a 1h write never read is pending for its hour, then unread; a 5m one after its five minutes; one read is neither', async () => {
    const { client } = t.tenant();
    const premiums = async () => {
      const n = (await client.get('/v1/reports')).json.no_handle.money;
      return { paid: n.write_premiums_paid, unread: n.write_premiums_unread, pending: n.write_premiums_pending };
    };
    // claude-sonnet-4-5: $3 per million input tokens; a 1h write costs 2× (premium $3/M), a 5m write 1.25× ($0.75/M).
    const hour = await renderAnthropic(client, { system: [{ type: 'text', text: LONG_SYSTEM, cache_control: { type: 'ephemeral', ttl: '1h' } }], messages: [userMessage('a')] });
    const H = hour.prediction.write_tokens;
    expect(H).toBeGreaterThan(1024);
    await report(client, t, hour, { input_tokens: promptTokens(hour) - H, cache_creation_input_tokens: H, cache_read_input_tokens: 0, cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: H }, output_tokens: 5 });
    const P1 = round6(H * 3e-6);
    expect(await premiums()).toEqual({ paid: P1, unread: 0, pending: P1 });
    // Pending, not a handle: the ranking has none.
    expect((await client.get('/v1/reports')).json.handles).toEqual([]);

    // Half an hour on, still within its TTL; a 5m write of another prompt beside it.
    t.clock.advance(30 * MIN);
    expect(await premiums()).toEqual({ paid: P1, unread: 0, pending: P1 });
    const five = await inlineCall(client, 'b', `${LONG_SYSTEM} (five minutes)`);
    const P5 = round6(five.written * 0.75e-6);
    expect(five.read).toBe(0);
    expect(await premiums()).toEqual({ paid: round6(P1 + P5), unread: 0, pending: round6(P1 + P5) });
    // Ten minutes on, the 5m write was never read: unread; the 1h one still pending.
    t.clock.advance(10 * MIN);
    expect(await premiums()).toEqual({ paid: round6(P1 + P5), unread: P5, pending: P1 });
    // Past its hour, the 1h write is unread too: the whole premium wasted.
    t.clock.advance(25 * MIN);
    expect(await premiums()).toEqual({ paid: round6(P1 + P5), unread: round6(P1 + P5), pending: 0 });

    // A write read within its TTL by the next call: paid, never unread.
    const other = t.tenant().client;
    const first = await inlineCall(other, 'c');
    const second = await inlineCall(other, 'd');
    expect(second.read).toBe(first.written);
    t.clock.advance(60 * MIN);
    const n = (await other.get('/v1/reports')).json.no_handle.money;
    expect(n).toMatchObject({ write_premiums_paid: round6((first.written + second.written) * 0.75e-6), write_premiums_unread: round6(second.written * 0.75e-6), write_premiums_pending: 0 });
  });

  it("the overview shows them with the API's figures, and says so when every call referenced a handle", async () => {
    const { client, key } = await history();
    const api = (await client.get('/v1/reports')).json.no_handle;
    const page = await (await t.app.request('/ui?period=24h', { headers: { cookie: `ph_ui_key=${key}` } })).text();
    const shown = Object.fromEntries([...page.matchAll(/data-no-handle="([^"]+)" data-value="([^"]*)"/g)].map((m) => [m[1], Number(m[2])]));
    expect(shown).toEqual({
      requests: 3,
      'tokens.prompt': api.tokens.prompt,
      'tokens.repeated': api.tokens.repeated,
      'tokens.cache_read': api.tokens.cache_read,
      'money.actual_input_cost': api.money.actual_input_cost,
      'money.write_premiums_unread': api.money.write_premiums_unread,
    });
    expect(page).toContain('<h2>Calls through no handle</h2>');
    // The live fragment carries them too.
    const fragment = await (await t.app.request('/ui/fragments/overview?period=24h', { headers: { cookie: `ph_ui_key=${key}` } })).text();
    expect(fragment).toContain(`data-no-handle="requests" data-value="3"`);

    const other = t.tenant();
    const sys = await mintSystem(other.client, LONG_SYSTEM);
    await reportPredicted(other.client, await renderAnthropic(other.client, { system: [{ type: 'handle', ref: sys.id }], messages: [userMessage('x')] }));
    const all = await (await t.app.request('/ui', { headers: { cookie: `ph_ui_key=${other.key}` } })).text();
    expect(all).toContain('data-no-handle="none"');
    expect(all).not.toContain('data-no-handle="requests"');
  });

  it('a tenant whose every call went through no handle is not told there are no reconciled requests', async () => {
    const { client, key } = t.tenant();
    await inlineCall(client, 'a');
    await inlineCall(client, 'b');
    const page = await (await t.app.request('/ui?period=24h', { headers: { cookie: `ph_ui_key=${key}` } })).text();
    expect(page).toContain('data-no-handle="requests" data-value="2"');
    // It said "No reconciled requests in this period yet" above the two calls it counted below.
    expect(page).not.toContain('No reconciled requests');
    expect(page).toContain('No reconciled request in this period referenced a handle: the 2 calls under “Calls through no handle” sent their whole prompt inline.');
    // A tenant with no call at all is still told so.
    const empty = await (await t.app.request('/ui?period=24h', { headers: { cookie: `ph_ui_key=${t.tenant().key}` } })).text();
    expect(empty).toContain('No reconciled requests in this period yet.');
  });

  it("'prefix-handles report' without a handle prints them under the handles, over real HTTP", async () => {
    const h = await startCliHarness('ph-no-handle-');
    try {
      const { client, key } = h.t.tenant();
      // inlineCall reports on the served app's clock.
      t.close();
      t = h.t;
      const calls = [await inlineCall(client, 'a'), await inlineCall(client, 'b'), await inlineCall(client, 'c')];
      // Another prompt's write, within its five minutes when the report is read.
      await inlineCall(client, 'd', `${LONG_SYSTEM} (another)`);
      const api = (await client.get('/v1/reports')).json.no_handle;
      const run = await h.cli(['report'], { key });
      expect(run.code, run.err).toBe(0);
      const fmt = (n: number) => n.toLocaleString('en-US');
      expect(run.out).toContain('calls that referenced no handle (their whole prompt inline: in none of the figures above) 4');
      expect(run.out).toContain(`prompt tokens ${fmt(api.tokens.prompt)}, of which ${fmt(api.tokens.repeated)} repeated a prefix their cache scope was sent before and ${fmt(calls.reduce((a, c) => a + c.read, 0))} were read from cache`);
      expect(run.out).toContain(`input cost $${api.money.actual_input_cost.toFixed(6)}`);
      // The first call's write was read; the fourth's is still within its five minutes.
      expect(api.money.write_premiums_unread).toBe(0);
      expect(api.money.write_premiums_pending).toBeGreaterThan(0);
      expect(api.money.write_premiums_paid).toBe(round6(api.money.write_premiums_pending + calls[0]!.written * 0.75e-6));
      expect(run.out).toContain(`unread write premiums $${api.money.write_premiums_unread.toFixed(6)} (and $${api.money.write_premiums_pending.toFixed(6)} still within their TTL)`);
    } finally {
      await h.close();
      t = createTestApp();
    }
  });
});

describe('migration 0017 (no_handle_rollups)', () => {
  it('counts the calls a database already holds as reconciliation counts them: the same rows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ph-no-handle-'));
    const file = join(dir, 'db.sqlite');
    try {
      t.close();
      t = createTestApp({ databasePath: file });
      const { client } = await history();
      const r = await renderAnthropic(client, { system: LONG_SYSTEM, messages: [userMessage('no cache fields')] });
      await report(client, t, r, { input_tokens: promptTokens(r), output_tokens: 5 });
      // Two days later, another model.
      t.clock.advance(2 * DAY);
      const chat = (await client.post('/v1/render', { format: 'openai-chat', request: { model: 'gpt-4.1', messages: [{ role: 'system', content: LONG_SYSTEM }, userMessage('q')] } })).json;
      expect((await client.post('/v1/usage', { request_id: chat.request_id, usage: { prompt_tokens: 2900, completion_tokens: 3, prompt_tokens_details: { cached_tokens: 0 } } })).status).toBe(201);
      t.close();

      const rowsOf = (db: Database.Database) => db.prepare("select * from rollups where handle_id = '-' order by tenant_id, day, model").all() as Array<Record<string, number | string>>;
      const raw = new Database(file);
      const written = rowsOf(raw);
      // Two tenants; one of them on two days and models.
      expect(written).toHaveLength(3);
      expect(written.map((w) => w.requests)).toEqual(expect.arrayContaining([4, 1, 1]));
      // As a database before 0017: no such rows, the migration not applied (nor 0018 and 0019, and their columns not there).
      asBefore0019(raw);
      raw.prepare("delete from rollups where handle_id = '-'").run();
      const leaked = (raw.prepare('select name from pragma_table_info(?)').pluck().all('rollups') as string[]).filter((c) => c.startsWith('leaked_'));
      expect(leaked).toHaveLength(7);
      for (const table of ['rollups', 'rollups_span']) for (const c of leaked) raw.prepare(`alter table ${table} drop column ${c}`).run();
      raw.prepare('delete from __drizzle_migrations where created_at >= (select created_at from __drizzle_migrations order by created_at desc limit 1 offset 1)').run();
      raw.close();

      const opened = openDb(file);
      try {
        const migrated = rowsOf(opened.sqlite);
        expect(migrated).toHaveLength(written.length);
        migrated.forEach((m, i) => {
          const byClass = Object.entries(m).filter(([k]) => k.startsWith('leaked_')).reduce((n, [, v]) => n + (v as number), 0);
          expect(Math.abs(byClass - ((m.cost_actual as number) - (m.cost_perfect as number))), 'leaked by class').toBeLessThan(1e-12);
          for (const [k, v] of Object.entries(written[i]!)) {
            // Calls reconciled before their write premiums were followed kept none: the migration counts none, paid or read.
            if (k === 'write_premium_paid' || k === 'write_premium_read') expect(m[k], k).toBe(0);
            // 0018 divides a row's leaked money by its classes' tokens (its own test: leaked-by-class.test.ts).
            else if (k.startsWith('leaked_')) continue;
            else if (typeof v === 'number' && !Number.isInteger(v)) expect(Math.abs((m[k] as number) - v), k).toBeLessThan(1e-12);
            else expect(m[k], k).toBe(v);
          }
        });
      } finally {
        opened.close();
      }
      t = createTestApp();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
