// The dashboard answers "where do we lose money to cache misses, on which piece of state, and what should we change":
// found in a team lead's trial of a week of agent traffic (one system prompt cached on Sonnet and sent to Haiku
// 4.5 under its 4,096-token minimum).

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app';
import { mintArtifact, mintSystem, userMessage } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report, type Rendered } from '../helpers/scenario';
import { MIN } from './seed';
import { rangeOf, usd } from '../../src/http/ui/format';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const MISSES = ['drift', 'expired', 'concurrent', 'below_minimum', 'no_breakpoint', 'lookback', 'unconfirmed'];
/** The miss class that leaked the most money, the first in gate order on a tie. */
const biggest = (r: { money: { leaked_by_class: Record<string, number> } }) => {
  const usd = r.money.leaked_by_class;
  return MISSES.reduce<string | null>((best, c) => (usd[c]! > (best ? usd[best]! : 0) ? c : best), null);
};

async function page(path: string, key: string) {
  const res = await t.app.request(path, { headers: { cookie: `ph_ui_key=${key}` } });
  expect(res.status, path).toBe(200);
  return res.text();
}

/** One system prompt on two models: cached on Sonnet 4.5 (then expired), under Haiku 4.5's minimum there. */
async function twoModels() {
  const { client, key } = t.tenant('two models');
  const sys = await mintSystem(client, LONG_SYSTEM);
  const call = async (model: string, text: string, usage: (r: Rendered) => object) => {
    const r = await renderAnthropic(client, { model, system: [{ type: 'handle', ref: sys.id }], messages: [userMessage(text)] });
    await report(client, t, r, usage(r));
    return r;
  };
  const written = (r: Rendered) => anthropicUsage(promptTokens(r), 0, r.breakpoints[0]!.token_end);
  const read = (r: Rendered) => anthropicUsage(promptTokens(r), r.breakpoints[0]!.token_end, 0);
  // Haiku 4.5 caches nothing under 4,096 tokens: it neither writes nor reads this prompt.
  const none = (r: Rendered) => anthropicUsage(promptTokens(r), 0, 0);
  await call('claude-sonnet-4-5', 'a', written);
  await call('claude-haiku-4-5', 'a', none);
  t.clock.advance(MIN);
  await call('claude-sonnet-4-5', 'b', read);
  // A classifier's burst on Haiku: every call pays the whole prompt.
  for (const q of ['b', 'b2', 'b3', 'b4']) await call('claude-haiku-4-5', q, none);
  t.clock.advance(10 * MIN);
  const sonnetExpired = await call('claude-sonnet-4-5', 'c', written);
  const haikuExpired = await call('claude-haiku-4-5', 'c', none);
  return { client, key, sys, sonnetExpired, haikuExpired };
}

describe('where the money leaks', () => {
  it('overview: each handle says its biggest leak, and the Leaked figure it is ranked by comes first', async () => {
    const { client, key, sys } = await twoModels();
    const api = (await client.get('/v1/reports')).json;
    const row = api.handles.find((h: { id: string }) => h.id === sys.id);
    const html = /<tr data-handle="[^"]+">[\s\S]*?<\/tr>/.exec(await page('/ui?period=7d', key))![0];
    const cls = biggest(row)!;
    // By money: the prefix written again after its TTL on both models (Sonnet's at 1.25× of $3/M) cost more than
    // Haiku's four calls under its minimum, though those were more tokens.
    expect(cls).toBe('expired');
    expect(row.tokens.below_minimum).toBeGreaterThan(row.tokens.expired);
    expect(html).toContain(`data-biggest-leak="${cls}" data-tokens="${row.tokens[cls]}" data-usd="${row.money.leaked_by_class[cls]}"`);
    expect(html).toContain(`title="${row.tokens[cls].toLocaleString('en-US')} tokens">`);
    // Its name leads to the handle's requests with it, in the period shown.
    expect(html).toMatch(new RegExp(`<a href="/ui/requests\\?handle=${sys.id}&amp;class=expired&amp;period=7d" data-requests-link="expired">expired</a><br><small class="muted">${usd(row.money.leaked_by_class[cls]).replace('$', '\\$')} · \\d+% of opp\\.</small>`));
    // The first figure of the row is the leaked money (a phone shows the first columns; the ranking's key was the 8th).
    expect(/data-value="([^"]*)"/.exec(html)![1]).toBe(String(row.money.leaked_savings));
    expect(await page('/ui?period=7d', key)).toMatch(/<th>Handle<\/th><th class="num">Leaked<\/th><th>Biggest leak<\/th>/);
  });

  it('handle page: the waterfall by model, the most leaked first, each with its biggest leak, as the API gives them', async () => {
    const { client, key, sys } = await twoModels();
    const api = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
    const html = await page(`/ui/handles/${sys.id}?period=7d`, key);
    const rows = [...html.matchAll(/<tr data-model="([^"]+)">([\s\S]*?)<\/tr>/g)].map((m) => ({ model: m[1], html: m[2]! }));
    const expected = [...api.models].sort((a, b) => b.money.leaked_savings - a.money.leaked_savings);
    expect(rows.map((r) => r.model)).toEqual(expected.map((m: { model: string }) => m.model));
    expect(new Set(rows.map((r) => r.model))).toEqual(new Set(['claude-haiku-4-5', 'claude-sonnet-4-5']));
    for (const [i, m] of expected.entries()) {
      expect(rows[i]!.html).toContain(`data-value="${m.money.leaked_savings}"`);
      const cls = biggest(m)!;
      expect(rows[i]!.html, m.model).toContain(`data-biggest-leak="${cls}" data-tokens="${m.tokens[cls]}" data-usd="${m.money.leaked_by_class[cls]}"`);
    }
    // Haiku's loss is the minimum, Sonnet's the expired prefix: two different changes to make.
    expect(rows.find((r) => r.model === 'claude-haiku-4-5')!.html).toContain('data-biggest-leak="below_minimum"');
    expect(rows.find((r) => r.model === 'claude-sonnet-4-5')!.html).toContain('data-biggest-leak="expired"');
    // Its recent requests name the classes as the legend does.
    const recent = /<table data-table="recent">[\s\S]*?<\/table>/.exec(html)![0];
    expect(recent).toMatch(/below minimum [\d,]+ tok/);
    expect(recent).not.toContain('below_minimum');
  });

  it('the waterfall card divides the leaked savings by cause, the costliest first, as the API and prices by hand give them', async () => {
    const { client, key, sys } = await twoModels();
    const tenant = (await client.get('/v1/reports')).json;
    const handle = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
    // By hand: Haiku 4.5's calls paid $1/M where a read is $0.10/M (four under its minimum, then one after the prefix
    // expired: the TTL is the first gate it fails); Sonnet 4.5's expired prefix was written again at $3.75/M where a
    // read is $0.30/M.
    const haiku = handle.models.find((m: { model: string }) => m.model === 'claude-haiku-4-5');
    const sonnet = handle.models.find((m: { model: string }) => m.model === 'claude-sonnet-4-5');
    expect(haiku.tokens.below_minimum).toBeGreaterThan(0);
    expect(Math.abs(handle.money.leaked_by_class.below_minimum - haiku.tokens.below_minimum * 0.9e-6)).toBeLessThanOrEqual(1.0001e-6);
    expect(Math.abs(handle.money.leaked_by_class.expired - sonnet.tokens.expired * 3.45e-6 - haiku.tokens.expired * 0.9e-6)).toBeLessThanOrEqual(2.0001e-6);
    for (const [path, rep] of [['/ui?period=7d', tenant], [`/ui/handles/${sys.id}?period=7d`, handle]] as const) {
      const table = /<table data-table="leaked-by-class"[^>]*>[\s\S]*?<\/table>/.exec(await page(path, key))![0];
      expect(table).toContain(`(${usd(rep.money.leaked_savings)} against perfect capture`);
      const rows = [...table.matchAll(/<tr data-class="([^"]+)">[\s\S]*?data-value="([^"]+)">([^<]+)</g)].map((m) => ({ cls: m[1]!, value: Number(m[2]), shown: m[3] }));
      // Every class with tokens or money, the costliest first, each at the API's figure.
      expect(rows.map((r) => r.cls)).toEqual(['expired', 'below_minimum']);
      for (const r of rows) {
        expect(r.value, r.cls).toBe(rep.money.leaked_by_class[r.cls]);
        expect(r.shown, r.cls).toBe(usd(rep.money.leaked_by_class[r.cls]));
      }
      expect(rows.reduce((n, r) => n + Math.round(r.value * 1e6), 0)).toBe(Math.round(rep.money.leaked_savings * 1e6));
    }
  });

  it('the leaked savings by cause of calls without cache fields are unknown, not $0.00; beside reported calls, said to be counted apart', async () => {
    const { client, key } = t.tenant('capture unknown');
    const sys = await mintSystem(client, LONG_SYSTEM);
    const turn = (text: string) => renderAnthropic(client, { prefix: [sys.id], messages: [userMessage(text)] });
    // A gateway's log kept input and output counts only: the prefix sent again after 10 minutes is expired tokens
    // whose money nobody knows (the input is counted apart, at full price).
    for (const q of ['a', 'b']) {
      const r = await turn(q);
      await report(client, t, r, { input_tokens: promptTokens(r), output_tokens: 9 });
      t.clock.advance(10 * MIN);
    }
    const unknownOnly = (await client.get('/v1/reports')).json;
    expect(unknownOnly.tokens.expired).toBeGreaterThan(0);
    expect(unknownOnly.capture_rate).toBeNull();
    for (const path of ['/ui?period=7d', `/ui/handles/${sys.id}?period=7d`]) {
      const table = /<table data-table="leaked-by-class"[^>]*>[\s\S]*?<\/table>/.exec(await page(path, key))![0];
      // It said "expired $0.00": nothing leaked, where the money of those tokens is not known.
      expect(table, path).toMatch(/<tr data-class="expired">.*?<td class="num" data-value=""><span class="muted">unknown<\/span><\/td><td class="num">—<\/td>/);
      expect(table, path).not.toContain('$0.00</td>');
      expect(table, path).toContain(`the tokens count calls without cache fields too, whose ${usd(unknownOnly.money.unknown_capture_input_cost)} of input is counted apart`);
    }
    // A call with cache fields: its miss has money, the classes theirs (the expired tokens of the calls without cache
    // fields leak none of it), and the caption says the tokens count the others too.
    const r = await turn('c');
    await report(client, t, r, anthropicUsage(promptTokens(r), 0, r.breakpoints[0]!.token_end));
    const mixed = (await client.get('/v1/reports')).json;
    expect(mixed.capture_rate).not.toBeNull();
    expect(mixed.money.leaked_savings).toBeGreaterThan(0);
    const table = /<table data-table="leaked-by-class"[^>]*>[\s\S]*?<\/table>/.exec(await page('/ui?period=7d', key))![0];
    expect(table).not.toContain('unknown</span>');
    const rows = [...table.matchAll(/<tr data-class="([^"]+)">[\s\S]*?data-value="([^"]+)">([^<]+)</g)].map((m) => ({ cls: m[1]!, value: Number(m[2]) }));
    expect(rows.reduce((n, x) => n + Math.round(x.value * 1e6), 0)).toBe(Math.round(mixed.money.leaked_savings * 1e6));
    for (const x of rows) expect(x.value, x.cls).toBe(mixed.money.leaked_by_class[x.cls]);
    expect(table).toContain(`whose ${usd(mixed.money.unknown_capture_input_cost)} of input is counted apart`);
  });

  it('request page: an expired prefix under the model minimum is not advised to be kept alive', async () => {
    const { key, sonnetExpired, haikuExpired } = await twoModels();
    const haiku = await page(`/ui/requests/${haikuExpired.request_id}`, key);
    expect(haiku).toContain('data-expired');
    expect(haiku).toMatch(/<span data-expired-under-minimum>But had it been fresh, the provider would not have read it either: through #\d+ the prefix is [\d,]+ tokens, under claude-haiku-4-5&#39;s minimum of 4,096/);
    expect(haiku).not.toContain('A call within the lifetime keeps it alive');
    // Over the minimum, keeping it alive is the remedy, and the page says so.
    const sonnet = await page(`/ui/requests/${sonnetExpired.request_id}`, key);
    expect(sonnet).toContain('A call within the lifetime keeps it alive');
    expect(sonnet).not.toContain('data-expired-under-minimum');
  });

  it('an input cost above the uncached cost is said to be more than it, not "of" it', async () => {
    const { client, key } = t.tenant('writes never read');
    const sys = await mintSystem(client, LONG_SYSTEM);
    // A timestamp first: every call writes its prefix again and none reads it, through a handle and inline alike.
    for (const stamp of ['09:00:00', '09:01:00', '09:02:00']) {
      const system = [{ type: 'text', text: `Current time: 2026-12-01T${stamp}Z`, cache_control: { type: 'ephemeral' } }];
      const withHandle = await renderAnthropic(client, { system: [...system, { type: 'handle', ref: sys.id }], messages: [userMessage('hi')] });
      await report(client, t, withHandle, anthropicUsage(promptTokens(withHandle), 0, withHandle.breakpoints.at(-1)!.token_end));
      const inline = await renderAnthropic(client, { system: [{ ...system[0]!, text: `${system[0]!.text}\n${LONG_SYSTEM}` }], messages: [userMessage('hi')] });
      await report(client, t, inline, anthropicUsage(promptTokens(inline), 0, inline.breakpoints.at(-1)!.token_end));
      t.clock.advance(MIN);
    }
    const api = (await client.get('/v1/reports')).json;
    const usd = (x: number) => `$${x.toPrecision(3)}`;
    const html = await page('/ui?period=7d', key);
    for (const m of [api.money, api.no_handle.money]) {
      expect(m.actual_input_cost).toBeGreaterThan(m.cost_without_caching);
      // It read "$0.0250 … of $0.0200 uncached".
      expect(html).toContain(`${usd(m.actual_input_cost - m.cost_without_caching)} more than the ${usd(m.cost_without_caching)} it would cost uncached`);
      expect(html).not.toContain(`of ${usd(m.cost_without_caching)} uncached`);
    }
  });

  it('calls through no handle, per model, the most costly first: which agent sends its whole prompt inline', async () => {
    const { client, key } = t.tenant('inline agents');
    const inline = async (model: string, text: string) => {
      const r = await renderAnthropic(client, { model, system: [{ type: 'text', text, cache_control: { type: 'ephemeral' } }], messages: [userMessage('hi')] });
      await report(client, t, r, anthropicUsage(promptTokens(r), 0, model === 'claude-haiku-4-5' ? 0 : r.breakpoints.at(-1)!.token_end));
      t.clock.advance(MIN);
    };
    for (const stamp of ['09:00', '09:01', '09:02']) await inline('claude-sonnet-4-5', `Current time: ${stamp}\n${LONG_SYSTEM}`);
    for (const q of ['a', 'b']) await inline('claude-haiku-4-5', `${LONG_SYSTEM}${q}`);
    const html = await page('/ui?period=7d', key);
    const rows = [...html.matchAll(/<tr data-no-handle-model="([^"]+)">([\s\S]*?)<\/tr>/g)].map((m) => ({ model: m[1]!, cells: [...m[2]!.matchAll(/<td class="num"[^>]*>(?:<a [^>]*>)?([^<]*)(?:<\/a>)?<\/td>/g)].map((c) => c[1]) }));
    expect(rows.map((r) => r.model)).toEqual(['claude-sonnet-4-5', 'claude-haiku-4-5']);
    // Each row is the API's no_handle for that model alone.
    for (const r of rows) {
      const n = (await client.get(`/v1/reports?model=${r.model}`)).json.no_handle;
      expect(r.cells, r.model).toEqual([
        String(n.requests),
        `${n.tokens.prompt.toLocaleString('en-US')} tok`,
        `${n.tokens.repeated.toLocaleString('en-US')} tok`,
        `${n.tokens.cache_read.toLocaleString('en-US')} tok`,
        `$${n.money.actual_input_cost.toPrecision(3)}`,
      ]);
    }
    expect(rows.map((r) => Number(r.cells[0]))).toEqual([3, 2]);
  });

  it("request page: an OpenAI prefix expired at its day-long lifetime is not advised to ask for '24h' (gpt-5.5 has no other)", async () => {
    const { client, key } = t.tenant('a day apart');
    const sys = await mintSystem(client, LONG_SYSTEM);
    const call = async (model: string, read: boolean) => {
      const res = await client.post('/v1/render', { format: 'openai-chat', request: { model, messages: [{ role: 'system', content: [{ type: 'handle', ref: sys.id }] }, { role: 'user', content: 'hi' }] } });
      expect(res.status, res.text).toBe(200);
      const r = res.json as Rendered;
      const total = promptTokens(r);
      await report(client, t, r, { prompt_tokens: total, completion_tokens: 5, total_tokens: total + 5, prompt_tokens_details: { cached_tokens: read ? 1024 : 0 } });
      return r;
    };
    await call('gpt-5.5', false);
    t.clock.advance(25 * 60 * MIN);
    const expired = await call('gpt-5.5', false);
    const html = await page(`/ui/requests/${expired.request_id}`, key);
    expect(html).toMatch(/longer than its cache lifetime of <b>24h<\/b>/);
    // It read: "OpenAI keeps it a day with prompt_cache_retention: "24h" on the models that offer it." — as it does here.
    expect(html).not.toContain('keeps it a day with');
    expect(html).toContain('A day is the longest OpenAI keeps a prefix');
    // A model whose prefix expired in minutes is still pointed at the day-long retention.
    await call('gpt-5.4', false);
    t.clock.advance(30 * MIN);
    const minutes = await call('gpt-5.4', false);
    expect(await page(`/ui/requests/${minutes.request_id}`, key)).toContain('OpenAI keeps it a day with <code>prompt_cache_retention: &quot;24h&quot;</code>');
  });

  it("calls through no handle per model: each model's figures are the API's no_handle for it, write premiums still within their TTL too", async () => {
    const { id, client } = t.tenant('inline writes');
    const r = await renderAnthropic(client, { system: [{ type: 'text', text: `Current time: 09:00\n${LONG_SYSTEM}`, cache_control: { type: 'ephemeral' } }], messages: [userMessage('hi')] });
    await report(client, t, r, anthropicUsage(promptTokens(r), 0, r.breakpoints.at(-1)!.token_end));
    t.clock.advance(MIN);
    // The dashboard's 7d as the API takes it (period= is the dashboard's parameter: the API refuses it).
    const api = (await client.get(`/v1/reports?from=${rangeOf('7d', t.clock.now()).from}&model=claude-sonnet-4-5`)).json.no_handle;
    // Written a minute ago, within its 5 minutes: pending, not unread.
    expect(api.money.write_premiums_pending).toBeGreaterThan(0);
    expect(api.money.write_premiums_unread).toBe(0);
    const [row, ...more] = t.services.reports.noHandleByModel(id, rangeOf('7d', t.clock.now()), t.clock.now());
    expect(more).toEqual([]);
    expect(row).toEqual({ model: 'claude-sonnet-4-5', ...api });
  });

  it("request page: each segment's handle by its name under its id, inline content as before", async () => {
    const { client, key } = t.tenant('names');
    const sys = await mintArtifact(client, 'system', LONG_SYSTEM, { name: 'review <prompt>' });
    const r = await renderAnthropic(client, { system: [{ type: 'handle', ref: sys.id }], messages: [userMessage('hi')] });
    await report(client, t, r, anthropicUsage(promptTokens(r), 0, r.breakpoints[0]!.token_end));
    const html = await page(`/ui/requests/${r.request_id}`, key);
    const rows = [...html.matchAll(/<tr data-segment="(\d+)">([\s\S]*?)<\/tr>/g)].map((m) => m[2]!);
    expect(rows[0]).toContain(`>${sys.id}@1</a><br><small class="muted" data-source-name><bdi>review &lt;prompt&gt;</bdi></small>`);
    expect(rows[1]).not.toContain('data-source-name');
  });

  it('capture rate per day: a phone drawing beside the wide one, which alone carries the figures by day', async () => {
    const { key, sys } = await twoModels();
    const html = await page(`/ui/handles/${sys.id}?period=7d`, key);
    const narrow = /<svg class="chart ct-narrow"[^>]*data-chart="capture-trend-narrow">[\s\S]*?<\/svg>/.exec(html)![0];
    expect(narrow).toContain('viewBox="0 0 360 220"');
    expect(narrow).not.toContain('data-day');
    expect((html.match(/data-day="/g) ?? []).length).toBe(7);
  });
});
