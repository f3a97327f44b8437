// An audit of the money in the reports, worked out by hand from the providers' published prices — never from the
// catalog's figures or the reconciler's formulas. Each scenario reports provider usage whose prompt total is the
// rendered estimate (so no scaling moves a token), then compares the handle and tenant reports with the dollars
// computed here, to the micro-dollar the API prints.
//
// Prices ($ per million input tokens) as the providers publish them (checked 2026-12-04):
//   Anthropic (platform.claude.com/docs/en/about-claude/pricing): Sonnet 4.5 $3, Sonnet 5 $2, Opus 4.1 $15;
//     5-minute writes 1.25×, 1-hour writes 2×, reads ("cache hits") 0.1×; Sonnet 4 and 4.5 past 200K prompt
//     tokens ("long context pricing"): $6 for the whole request, the cache multipliers on top.
//   OpenAI (developers.openai.com/api/docs/pricing): gpt-4o $2.50 (cached $1.25: 0.5×), gpt-4.1 $2 (cached $0.50:
//     0.25×), gpt-5 $1.25 (cached $0.125: 0.1×); writes not billed.
//   Google (ai.google.dev/gemini-api/docs/pricing): gemini-2.5-flash $0.30 (cached $0.03: 0.1×); gemini-2.5-pro
//     $1.25 up to 200K prompt tokens, $2.50 past them (cached 0.1× of either).
// Money is input cost only (DESIGN.md: "actual input cost"): output tokens never count.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestApp, type Client, type TestApp } from '../helpers/app';
import { mintArtifact, mintBundle, mintSystem, mintTools, startSession, userMessage } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report, type Rendered } from '../helpers/scenario';
import { startCliHarness } from '../helpers/cli';
import { usd as shown } from '../../src/http/ui/format';

let dir: string;
let t: TestApp;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ph-money-'));
  t = createTestApp({ databasePath: join(dir, 'db.sqlite') });
});
afterEach(() => {
  t.services.writes.flushNow();
  t.close();
  rmSync(dir, { recursive: true, force: true });
});

const MIN = 60_000;

/** Nano-dollars per token of a price in $/MTok times a multiplier: $1/MTok is 1,000 n$ a token. Whole numbers for every price here. */
const perToken = (dollarsPerMTok: number, multiplier = 1) => Math.round(dollarsPerMTok * multiplier * 1000);
/** Nano-dollars to dollars, to the micro-dollar, half away from zero (as the API prints). */
const usd = (nano: number) => (Math.sign(nano) * Math.floor((Math.abs(nano) + 500) / 1000)) / 1e6;

interface Expected {
  actual: number;
  noCache: number;
  perfect: number;
  premiumsPaid: number;
  premiumsUnread: number;
  premiumsPending: number;
  unknown?: number;
  /** Nano-dollars leaked by class, worked out here: every class that leaked must be named (the rest leaked nothing). */
  leaked?: Partial<Record<(typeof MONEY_LEAKS)[number], number>>;
}

const MONEY_LEAKS = ['drift', 'expired', 'concurrent', 'below_minimum', 'no_breakpoint', 'lookback', 'unconfirmed'] as const;

/** The report's money as this audit expects it, from nano-dollar sums. */
function moneyOf(e: Expected) {
  return {
    currency: 'USD',
    actual_input_cost: usd(e.actual),
    cost_without_caching: usd(e.noCache),
    cost_at_perfect_capture: usd(e.perfect),
    // As a reader subtracts the printed costs.
    realised_savings: Math.round((usd(e.noCache) - usd(e.actual)) * 1e6) / 1e6,
    leaked_savings: Math.round((usd(e.actual) - usd(e.perfect)) * 1e6) / 1e6,
    leaked_by_class: leakedByClass(e),
    write_premiums_paid: usd(e.premiumsPaid),
    write_premiums_unread: usd(e.premiumsUnread),
    write_premiums_pending: usd(e.premiumsPending),
    unknown_capture_input_cost: usd(e.unknown ?? 0),
  };
}

/**
 * Leaked money by class as this audit expects it: a scenario that leaked must say where, all of it in one class (its
 * figure is then the printed leaked savings, which the classes add up to: the hand-worked one within its rounding).
 */
function leakedByClass(e: Expected) {
  const leaked = Math.round((usd(e.actual) - usd(e.perfect)) * 1e6) / 1e6;
  const named = Object.entries(e.leaked ?? {});
  if (leaked !== 0 && named.length !== 1) throw new Error(`leaked ${e.actual - e.perfect} n$: name its one class`);
  if (named.length) expect(Math.abs(usd(named[0]![1]) - leaked), `${named[0]![0]} worked by hand`).toBeLessThanOrEqual(1.0001e-6);
  return Object.fromEntries(MONEY_LEAKS.map((c) => [c, c === named[0]?.[0] ? leaked : 0]));
}

/**
 * The printed figures add up as a reader adds them: savings are the printed costs' differences to the micro-dollar,
 * every figure is a whole number of micro-dollars, and a report's versions and models sum to its totals (each row
 * rounded on its own: within half a micro-dollar a row).
 */
function expectConsistent(rep: { money: Record<string, number>; versions?: Array<{ money: Record<string, number> }>; models?: Array<{ money: Record<string, number> }>; handles?: Array<{ money: Record<string, number> }> }, where: string) {
  const micros = (x: number) => Math.round(x * 1e6);
  const rows = (list: Array<{ money: Record<string, number> }> | undefined) => list ?? [];
  for (const [label, m] of [[where, rep.money], ...rows(rep.versions).map((v, i) => [`${where} versions[${i}]`, v.money] as const), ...rows(rep.models).map((v, i) => [`${where} models[${i}]`, v.money] as const), ...rows(rep.handles).map((v, i) => [`${where} handles[${i}]`, v.money] as const)] as const) {
    for (const [k, v] of Object.entries(m)) if (typeof v === 'number') expect(Math.abs(v * 1e6 - micros(v)), `${label}.${k} = ${v}`).toBeLessThan(1e-6);
    expect(micros(m.realised_savings!), `${label}: realised = without caching − actual`).toBe(micros(m.cost_without_caching!) - micros(m.actual_input_cost!));
    expect(micros(m.leaked_savings!), `${label}: leaked = actual − perfect`).toBe(micros(m.actual_input_cost!) - micros(m.cost_at_perfect_capture!));
    // Leaked money by class: whole micro-dollars, none below zero, adding up to the leaked savings exactly.
    const byClass = Object.values((m as unknown as { leaked_by_class: Record<string, number> }).leaked_by_class);
    expect(byClass, `${label}.leaked_by_class`).toHaveLength(MONEY_LEAKS.length);
    for (const v of byClass) expect(v * 1e6 - micros(v) === 0 && v >= 0, `${label}.leaked_by_class: ${v}`).toBe(true);
    expect(byClass.reduce((n, v) => n + micros(v), 0), `${label}: leaked_by_class adds up to leaked_savings`).toBe(micros(m.leaked_savings!));
  }
  for (const list of [rep.models, rep.versions?.length === (rep as { versions_total?: number }).versions_total ? rep.versions : undefined]) {
    if (!list?.length) continue;
    const flat = (m: Record<string, unknown>): Record<string, number> =>
      Object.fromEntries(Object.entries(m).flatMap(([k, v]) => (typeof v === 'number' ? [[k, v]] : v && typeof v === 'object' ? Object.entries(v).map(([c, x]) => [`${k}.${c}`, x as number]) : [])));
    const total = flat(rep.money);
    for (const k of Object.keys(total).filter((k) => k !== 'write_premiums_unread')) {
      const added = list.reduce((n, r) => n + micros(flat(r.money)[k]!), 0);
      // A class's figure is also moved by up to a micro-dollar a row to make its row's classes add up.
      const slack = Math.ceil(list.length / 2) + (k.startsWith('leaked_by_class.') ? list.length : 0);
      expect(Math.abs(added - micros(total[k]!)), `${where}: ${k} summed over ${list === rep.models ? 'models' : 'versions'}`).toBeLessThanOrEqual(slack);
    }
  }
}

const handleMoney = async (client: Client, id: string, query = '') => {
  const res = await client.get(`/v1/reports/handles/${id}${query}`);
  expect(res.status, res.text).toBe(200);
  expectConsistent(res.json, `handle ${id}${query}`);
  return res.json;
};
const tenantReport = async (client: Client, query = '') => {
  const res = await client.get(`/v1/reports${query}`);
  expect(res.status, res.text).toBe(200);
  expectConsistent(res.json, `tenant${query}`);
  return res.json;
};

const span = (r: Rendered, i: number) => r.segments[i]!.token_end - r.segments[i]!.token_start;

/** Every money figure of a report (and of its versions and models) is a whole number of micro-dollars. */
function expectWholeMicros(money: Record<string, unknown>, where: string) {
  for (const [k, v] of Object.entries(money)) {
    if (typeof v !== 'number') continue;
    expect(Math.abs(v * 1e6 - Math.round(v * 1e6)), `${where}.${k} = ${v}`).toBeLessThan(1e-6);
  }
}

async function anthropicAgent(client: Client, model = 'claude-sonnet-4-5') {
  const tools = await mintTools(client);
  const sys = await mintSystem(client, LONG_SYSTEM);
  const bundle = await mintBundle(client, [tools.id, sys.id]);
  const turn = (text: string, extra: object = {}) => renderAnthropic(client, { model, prefix: [bundle.id], messages: [{ role: 'user', content: text }], ...extra });
  return { tools, sys, bundle, turn };
}

describe('money audit: Anthropic', () => {
  it('an agent loop writing at 5m then reading: every figure as priced by hand ($3/M, writes 1.25×, reads 0.1×)', async () => {
    const { client } = t.tenant();
    const { tools, sys, bundle, turn } = await anthropicAgent(client);
    const r1 = await turn('turn one');
    const [T, S] = [span(r1, 0), span(r1, 1)];
    const C = r1.segments[1]!.token_end;
    expect(C).toBe(T + S);
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, C));
    for (const text of ['turn two', 'turn three']) {
      t.clock.advance(MIN);
      const r = await turn(text);
      await report(client, t, r, anthropicUsage(promptTokens(r), C, 0));
    }
    // Per handle of n tokens: one write at $3.75/M, two reads at $0.30/M, against three sends at $3/M; the write's
    // $0.75/M premium was read a minute later; nothing leaked (the first send was cold, the rest were read).
    const expected = (n: number): Expected => ({
      actual: n * perToken(3, 1.25) + 2 * n * perToken(3, 0.1),
      noCache: 3 * n * perToken(3),
      perfect: n * perToken(3, 1.25) + 2 * n * perToken(3, 0.1),
      premiumsPaid: n * perToken(3, 0.25),
      premiumsUnread: 0,
      premiumsPending: 0,
    });
    for (const [id, n] of [[bundle.id, C], [tools.id, T], [sys.id, S]] as const) {
      const rep = await handleMoney(client, id);
      expect(rep.money, id).toEqual(moneyOf(expected(n)));
      expectWholeMicros(rep.money, id);
    }
    // The tenant's totals count handle content once (the bundle's members are its tokens).
    expect((await tenantReport(client)).money).toEqual(moneyOf(expected(C)));
    // A worked figure, for the README: the system prompt alone.
    expect(S).toBeGreaterThan(1000);
  });

  it('output tokens never count: the same prompt usage with 20 or 100,000 output tokens costs the same', async () => {
    const a = t.tenant('a');
    const b = t.tenant('b');
    const money: unknown[] = [];
    for (const [{ client }, output] of [[a, 20], [b, 100_000]] as const) {
      const { bundle, turn } = await anthropicAgent(client);
      const r = await turn('q');
      await report(client, t, r, { ...anthropicUsage(promptTokens(r), 0, r.segments[1]!.token_end), output_tokens: output });
      const rep = await handleMoney(client, bundle.id);
      expect(rep.money.cost_without_caching).toBe(usd(rep.tokens.referenced * perToken(3)));
      money.push(rep.money);
    }
    expect(money[1]).toEqual(money[0]);
  });

  it('1h writes are priced at 2×, split from 5m ones by cache_creation, each part unread or pending by its own TTL', async () => {
    const { client } = t.tenant();
    const { tools, sys, bundle, turn } = await anthropicAgent(client);
    const r1 = await turn('q');
    const [T, S] = [span(r1, 0), span(r1, 1)];
    // The tools written for an hour, the system prompt for five minutes (1h entries come first in the prompt).
    await report(client, t, r1, {
      input_tokens: promptTokens(r1) - T - S,
      cache_creation_input_tokens: T + S,
      cache_read_input_tokens: 0,
      cache_creation: { ephemeral_1h_input_tokens: T, ephemeral_5m_input_tokens: S },
      output_tokens: 10,
    });
    const toolsWrite: Expected = { actual: T * perToken(3, 2), noCache: T * perToken(3), perfect: T * perToken(3, 2), premiumsPaid: T * perToken(3, 1), premiumsUnread: 0, premiumsPending: T * perToken(3, 1) };
    const sysWrite: Expected = { actual: S * perToken(3, 1.25), noCache: S * perToken(3), perfect: S * perToken(3, 1.25), premiumsPaid: S * perToken(3, 0.25), premiumsUnread: 0, premiumsPending: S * perToken(3, 0.25) };
    expect((await handleMoney(client, tools.id)).money).toEqual(moneyOf(toolsWrite));
    expect((await handleMoney(client, sys.id)).money).toEqual(moneyOf(sysWrite));

    // Ten minutes on, nothing read yet: the 5m part is wasted, the 1h part may still be read.
    t.clock.advance(10 * MIN);
    expect((await handleMoney(client, tools.id)).money).toEqual(moneyOf(toolsWrite));
    expect((await handleMoney(client, sys.id)).money).toEqual(moneyOf({ ...sysWrite, premiumsUnread: sysWrite.premiumsPaid, premiumsPending: 0 }));
    const both = (a: Expected, b: Expected): Expected => ({
      actual: a.actual + b.actual,
      noCache: a.noCache + b.noCache,
      perfect: a.perfect + b.perfect,
      premiumsPaid: a.premiumsPaid + b.premiumsPaid,
      premiumsUnread: a.premiumsUnread + b.premiumsUnread,
      premiumsPending: a.premiumsPending + b.premiumsPending,
    });
    expect((await handleMoney(client, bundle.id)).money).toEqual(moneyOf(both(toolsWrite, { ...sysWrite, premiumsUnread: sysWrite.premiumsPaid, premiumsPending: 0 })));

  });

  it('a write at 1h (2×) read half an hour later: its premium was worth paying, never shown as unread', async () => {
    const { client } = t.tenant();
    const { bundle, turn } = await anthropicAgent(client);
    const hour = { cache_control: { type: 'ephemeral', ttl: '1h' } };
    const r1 = await turn('q', hour);
    const C = r1.segments[1]!.token_end;
    await report(client, t, r1, {
      input_tokens: promptTokens(r1) - C,
      cache_creation_input_tokens: C,
      cache_read_input_tokens: 0,
      cache_creation: { ephemeral_1h_input_tokens: C, ephemeral_5m_input_tokens: 0 },
      output_tokens: 10,
    });
    const written: Expected = { actual: C * perToken(3, 2), noCache: C * perToken(3), perfect: C * perToken(3, 2), premiumsPaid: C * perToken(3, 1), premiumsUnread: 0, premiumsPending: C * perToken(3, 1) };
    t.clock.advance(30 * MIN);
    expect((await handleMoney(client, bundle.id)).money).toEqual(moneyOf(written));
    const r2 = await turn('q2', hour);
    await report(client, t, r2, anthropicUsage(promptTokens(r2), C, 0));
    const read: Expected = { ...written, actual: written.actual + C * perToken(3, 0.1), noCache: 2 * C * perToken(3), perfect: written.perfect + C * perToken(3, 0.1), premiumsPending: 0 };
    expect((await handleMoney(client, bundle.id)).money).toEqual(moneyOf(read));
    t.clock.advance(2 * 60 * MIN);
    expect((await handleMoney(client, bundle.id)).money).toEqual(moneyOf(read));
  });

  it('a write never read within its 5 minutes: its premium unread, and the write made again leaked as a miss', async () => {
    const { client, key } = t.tenant();
    const { bundle, turn } = await anthropicAgent(client);
    const r1 = await turn('q1');
    const C = r1.segments[1]!.token_end;
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, C));
    t.clock.advance(10 * MIN);
    const r2 = await turn('q2');
    const o2 = await report(client, t, r2, anthropicUsage(promptTokens(r2), 0, C));
    expect(o2.outcome.segments.slice(0, 2).reduce((n, s) => n + (s.classes.expired ?? 0), 0)).toBe(C);
    // The request's own leak by class, in its outcome (as reported and as GET /v1/requests/{id} shows it) and on its
    // page: all expired, the C tokens at 1.25× where a read was 0.1×.
    const expiredUsd = (C * (perToken(3, 1.25) - perToken(3, 0.1))) / 1e9;
    for (const o of [o2.outcome, (await client.get(`/v1/requests/${r2.request_id}`)).json.outcome]) {
      const leaked = o.segments.map((s: { cost: { leaked?: Record<string, number> } }) => s.cost.leaked ?? {});
      expect(new Set(leaked.flatMap((l: object) => Object.keys(l)))).toEqual(new Set(['expired']));
      expect(Math.abs(leaked.reduce((n: number, l: Record<string, number>) => n + (l.expired ?? 0), 0) - expiredUsd)).toBeLessThan(1e-10);
    }
    const pageHtml = await (await t.app.request(`/ui/requests/${r2.request_id}`, { headers: { cookie: `ph_ui_key=${key}` } })).text();
    expect(pageHtml).toMatch(new RegExp(`data-metric="cost.leaked"[^>]*>.*?input cost; expired ${shown(expiredUsd).replace('$', '\\$')}<`, 's'));
    // Perfect capture would have read the second time (0.1×): it paid 1.25×, so 1.15× the input price leaked.
    const e: Expected = {
      actual: 2 * C * perToken(3, 1.25),
      noCache: 2 * C * perToken(3),
      perfect: C * perToken(3, 1.25) + C * perToken(3, 0.1),
      premiumsPaid: 2 * C * perToken(3, 0.25),
      premiumsUnread: C * perToken(3, 0.25),
      premiumsPending: C * perToken(3, 0.25),
      // All of it to the TTL: the second write's C tokens at 1.25× where a read was 0.1×.
      leaked: { expired: C * (perToken(3, 1.25) - perToken(3, 0.1)) },
    };
    expect((await handleMoney(client, bundle.id)).money).toEqual(moneyOf(e));
    // Five minutes after the second write, unread too.
    t.clock.advance(6 * MIN);
    expect((await handleMoney(client, bundle.id)).money).toEqual(moneyOf({ ...e, premiumsUnread: e.premiumsPaid, premiumsPending: 0 }));
    // Caching cost more than it saved: realised savings are negative, by the two unread premiums.
    expect((await handleMoney(client, bundle.id)).money.realised_savings).toBe(-usd(e.premiumsPaid));
  });

  it('a write the provider read after our 5 minutes (its entry lived on: bonus) was read: its premium not wasted', async () => {
    const { client } = t.tenant();
    const { bundle, turn } = await anthropicAgent(client);
    const r1 = await turn('q1');
    const C = r1.segments[1]!.token_end;
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, C));
    t.clock.advance(7 * MIN);
    const r2 = await turn('q2');
    const o2 = await report(client, t, r2, anthropicUsage(promptTokens(r2), C, 0));
    expect(o2.outcome.segments.slice(0, 2).reduce((n, s) => n + (s.classes.bonus ?? 0), 0)).toBe(C);
    const e: Expected = { actual: C * perToken(3, 1.25) + C * perToken(3, 0.1), noCache: 2 * C * perToken(3), perfect: C * perToken(3, 1.25) + C * perToken(3, 0.1), premiumsPaid: C * perToken(3, 0.25), premiumsUnread: 0, premiumsPending: 0 };
    expect((await handleMoney(client, bundle.id)).money).toEqual(moneyOf(e));
    expect((await tenantReport(client)).money).toEqual(moneyOf(e));
  });

  it('one handle on two models: each request at its own model\'s price; models and ?model= add up to the total', async () => {
    const { client } = t.tenant();
    const { bundle, turn } = await anthropicAgent(client);
    const ends: Record<string, number> = {};
    for (const model of ['claude-sonnet-4-5', 'claude-sonnet-5']) {
      const r = await turn('q', { model });
      ends[model] = r.segments[1]!.token_end;
      await report(client, t, r, anthropicUsage(promptTokens(r), 0, ends[model]!));
      t.clock.advance(MIN);
    }
    for (const model of ['claude-sonnet-4-5', 'claude-sonnet-5']) {
      const r = await turn('q again', { model });
      await report(client, t, r, anthropicUsage(promptTokens(r), ends[model]!, 0));
      t.clock.advance(MIN);
    }
    // Sonnet 4.5 at $3/M, Sonnet 5 at $2/M: a write and a read of the bundle on each.
    const on = (n: number, price: number): Expected => ({
      actual: n * perToken(price, 1.25) + n * perToken(price, 0.1),
      noCache: 2 * n * perToken(price),
      perfect: n * perToken(price, 1.25) + n * perToken(price, 0.1),
      premiumsPaid: n * perToken(price, 0.25),
      premiumsUnread: 0,
      premiumsPending: 0,
    });
    const sonnet45 = on(ends['claude-sonnet-4-5']!, 3);
    const sonnet5 = on(ends['claude-sonnet-5']!, 2);
    const total: Expected = { actual: sonnet45.actual + sonnet5.actual, noCache: sonnet45.noCache + sonnet5.noCache, perfect: sonnet45.perfect + sonnet5.perfect, premiumsPaid: sonnet45.premiumsPaid + sonnet5.premiumsPaid, premiumsUnread: 0, premiumsPending: 0 };
    const rep = await handleMoney(client, bundle.id);
    expect(rep.money).toEqual(moneyOf(total));
    const byModel = Object.fromEntries(rep.models.map((m: { model: string; money: unknown }) => [m.model, m.money]));
    expect(byModel).toEqual({ 'claude-sonnet-4-5': moneyOf(sonnet45), 'claude-sonnet-5': moneyOf(sonnet5) });
    expect((await handleMoney(client, bundle.id, '?model=claude-sonnet-5')).money).toEqual(moneyOf(sonnet5));
    expect((await tenantReport(client, '?model=claude-sonnet-4-5')).money).toEqual(moneyOf(sonnet45));
    expect((await tenantReport(client)).money).toEqual(moneyOf(total));
  });

  it('a prompt of several handles: the provider\'s read covers them in prompt order; each handle pays its own part', async () => {
    const { client } = t.tenant();
    const tools = await mintTools(client);
    const sys = await mintSystem(client, LONG_SYSTEM);
    const bundle = await mintBundle(client, [tools.id, sys.id]);
    const doc = await mintArtifact(client, 'document', LONG_SYSTEM.replaceAll('handbook', 'manual'));
    const turn = (text: string) => renderAnthropic(client, { prefix: [bundle.id, doc.id], messages: [{ role: 'user', content: text }] });
    const r1 = await turn('q1');
    const at = (r: Rendered, id: string) => r.segments.findIndex((s) => s.source === `${id}@1`);
    const [T, S, D] = [span(r1, at(r1, tools.id)), span(r1, at(r1, sys.id)), span(r1, at(r1, doc.id))];
    const C = T + S;
    const docEnd = r1.segments[at(r1, doc.id)]!.token_end;
    expect(r1.breakpoints.map((b) => b.token_end)).toContain(docEnd);
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, docEnd));
    // A minute later the provider reads the bundle only (the document's entry was evicted) and writes it again.
    t.clock.advance(MIN);
    const r2 = await turn('q2');
    expect(r2.segments[at(r2, doc.id)]!.token_end).toBe(docEnd);
    await report(client, t, r2, anthropicUsage(promptTokens(r2), C, docEnd - C));
    const readOnce = (n: number): Expected => ({
      actual: n * perToken(3, 1.25) + n * perToken(3, 0.1),
      noCache: 2 * n * perToken(3),
      perfect: n * perToken(3, 1.25) + n * perToken(3, 0.1),
      premiumsPaid: n * perToken(3, 0.25),
      premiumsUnread: 0,
      premiumsPending: 0,
    });
    const docMoney: Expected = {
      actual: 2 * D * perToken(3, 1.25),
      noCache: 2 * D * perToken(3),
      perfect: D * perToken(3, 1.25) + D * perToken(3, 0.1),
      premiumsPaid: 2 * D * perToken(3, 0.25),
      premiumsUnread: 0,
      premiumsPending: 2 * D * perToken(3, 0.25),
      // The provider did not read what a cache would have held: written again at 1.25× where a read was 0.1×.
      leaked: { unconfirmed: D * (perToken(3, 1.25) - perToken(3, 0.1)) },
    };
    expect((await handleMoney(client, tools.id)).money).toEqual(moneyOf(readOnce(T)));
    expect((await handleMoney(client, sys.id)).money).toEqual(moneyOf(readOnce(S)));
    expect((await handleMoney(client, bundle.id)).money).toEqual(moneyOf(readOnce(C)));
    expect((await handleMoney(client, doc.id)).money).toEqual(moneyOf(docMoney));
    // Six minutes on, both of the document's writes are past their TTL unread.
    t.clock.advance(6 * MIN);
    const docLater = { ...docMoney, premiumsUnread: docMoney.premiumsPaid, premiumsPending: 0 };
    expect((await handleMoney(client, doc.id)).money).toEqual(moneyOf(docLater));
    // The tenant's totals: each token once (the bundle and the document), to the micro-dollar of the sum.
    const all = readOnce(C);
    const sum = (k: 'actual' | 'noCache' | 'perfect' | 'premiumsPaid' | 'premiumsUnread') => all[k] + docLater[k];
    const tenant = await tenantReport(client);
    expect(tenant.money).toEqual(moneyOf({ actual: sum('actual'), noCache: sum('noCache'), perfect: sum('perfect'), premiumsPaid: sum('premiumsPaid'), premiumsUnread: sum('premiumsUnread'), premiumsPending: 0, leaked: docLater.leaked }));
    // The three artifacts' printed figures add up to the tenant's within their rounding (half a micro-dollar each).
    const artifacts = await Promise.all([tools.id, sys.id, doc.id].map((id) => handleMoney(client, id)));
    for (const k of Object.keys(tenant.money).filter((k) => k !== 'currency' && k !== 'leaked_by_class')) {
      const added = artifacts.reduce((n, a) => n + Math.round(a.money[k] * 1e6), 0);
      expect(Math.abs(added - Math.round(tenant.money[k] * 1e6)), k).toBeLessThanOrEqual(1);
    }
    for (const c of MONEY_LEAKS) {
      const added = artifacts.reduce((n, a) => n + Math.round(a.money.leaked_by_class[c] * 1e6), 0);
      expect(Math.abs(added - Math.round(tenant.money.leaked_by_class[c] * 1e6)), c).toBeLessThanOrEqual(1);
    }
  });

  it('a request whose usage has no cache fields: its input counted apart at full price, never as a 0 or a saving', async () => {
    const { client } = t.tenant();
    const { bundle, turn } = await anthropicAgent(client);
    const r1 = await turn('q1');
    const C = r1.segments[1]!.token_end;
    // A gateway's log that kept only input and output counts.
    await report(client, t, r1, { input_tokens: promptTokens(r1), output_tokens: 9 });
    const rep = await handleMoney(client, bundle.id);
    expect(rep.capture_rate).toBeNull();
    expect(rep.tokens.referenced).toBe(C);
    expect(rep.money).toEqual(moneyOf({ actual: 0, noCache: 0, perfect: 0, premiumsPaid: 0, premiumsUnread: 0, premiumsPending: 0, unknown: C * perToken(3) }));
    // Beside a reported request, the known figures are that request's alone; the unknown one stays apart. The bundle
    // was sent a minute before, so this write is no cold one: at perfect capture it was read (0.1×), 1.15× leaked.
    t.clock.advance(MIN);
    const r2 = await turn('q2');
    await report(client, t, r2, anthropicUsage(promptTokens(r2), 0, C));
    expect((await handleMoney(client, bundle.id)).money).toEqual(
      moneyOf({ actual: C * perToken(3, 1.25), noCache: C * perToken(3), perfect: C * perToken(3, 0.1), premiumsPaid: C * perToken(3, 0.25), premiumsUnread: 0, premiumsPending: C * perToken(3, 0.25), unknown: C * perToken(3), leaked: { unconfirmed: C * (perToken(3, 1.25) - perToken(3, 0.1)) } }),
    );
  });
});

describe('money audit: a session\'s versions', () => {
  it('each version row costs its own content\'s reads and writes, and the rows add up to the handle\'s total', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const bundle = await mintBundle(client, [sys.id]);
    const ses = await startSession(client, { base: bundle.id, messages: [userMessage('turn 1')] });
    for (let v = 2; v <= 3; v++) {
      const res = await client.post(`/v1/sessions/${ses.id}/messages`, { messages: [{ role: v % 2 ? 'user' : 'assistant', content: `turn ${v}: ${'words '.repeat(40 * v)}` }] });
      expect(res.status, res.text).toBe(201);
    }
    // An agent loop: each turn reads what the last one wrote and writes up to its last breakpoint; one turn 10
    // minutes late, past the 5 minutes (read nothing, wrote it all again).
    const byVersion = new Map<number, { actual: number; noCache: number; paid: number }>();
    for (const [ref, gap] of [[`${ses.id}@1`, MIN], [`${ses.id}@2`, MIN], [`${ses.id}@3`, 10 * MIN], [`${ses.id}@3`, MIN]] as const) {
      const r = await renderAnthropic(client, { prefix: [ref], messages: [userMessage('go on')] });
      const read = r.prediction.read_tokens;
      const write = Math.max(0, r.breakpoints.at(-1)!.token_end - read);
      const { outcome } = await report(client, t, r, anthropicUsage(promptTokens(r), read, write));
      for (const seg of outcome.segments as unknown as Array<{ source: string; start: number; end: number; read: number; write: number }>) {
        if (seg.source === 'inline') continue;
        // The base bundle's content is version 1's, as batch 1 is.
        const version = seg.source.startsWith(ses.id) ? Number(seg.source.split('@')[1]) : 1;
        const row = byVersion.get(version) ?? { actual: 0, noCache: 0, paid: 0 };
        const len = seg.end - seg.start;
        row.actual += seg.read * perToken(3, 0.1) + seg.write * perToken(3, 1.25) + (len - seg.read - seg.write) * perToken(3);
        row.noCache += len * perToken(3);
        row.paid += seg.write * perToken(3, 0.25);
        byVersion.set(version, row);
      }
      t.clock.advance(gap);
    }
    const rep = await handleMoney(client, ses.id);
    expect(rep.versions.map((v: { version: number }) => v.version)).toEqual([1, 2, 3]);
    for (const v of rep.versions as Array<{ version: number; money: Record<string, number> }>) {
      const e = byVersion.get(v.version)!;
      expect([v.money.actual_input_cost, v.money.cost_without_caching, v.money.write_premiums_paid], `@${v.version}`).toEqual([usd(e.actual), usd(e.noCache), usd(e.paid)]);
    }
    const all = [...byVersion.values()].reduce((a, b) => ({ actual: a.actual + b.actual, noCache: a.noCache + b.noCache, paid: a.paid + b.paid }));
    expect([rep.money.actual_input_cost, rep.money.cost_without_caching, rep.money.write_premiums_paid]).toEqual([usd(all.actual), usd(all.noCache), usd(all.paid)]);
    // The late turn re-wrote what it could have read: a leak, on the rows of the content it re-wrote.
    expect(rep.money.leaked_savings).toBeGreaterThan(0);
    // The base bundle's figures are version 1's content: the bundle's report has the base's share of that row.
    expect((await handleMoney(client, bundle.id)).money.cost_without_caching).toBeLessThan(rep.versions[0].money.cost_without_caching);
  });
});

describe('money audit: OpenAI and Gemini', () => {
  async function openaiTurns(client: Client, model: string) {
    const sys = await mintSystem(client, LONG_SYSTEM);
    const turn = async (text: string) => {
      const res = await client.post('/v1/render', { format: 'openai-chat', request: { model, prefix: [sys.id], messages: [{ role: 'user', content: text }] } });
      expect(res.status, res.text).toBe(200);
      return res.json as Rendered;
    };
    return { sys, turn };
  }
  const chatUsage = (total: number, cached: number) => ({ prompt_tokens: total, completion_tokens: 12, total_tokens: total + 12, prompt_tokens_details: { cached_tokens: cached } });

  it.each([
    ['gpt-4o', 2.5, 0.5],
    ['gpt-4.1', 2, 0.25],
    ['gpt-5', 1.25, 0.1],
  ])('%s: cached tokens at its own cached price ($%s/M, %s×), writes not billed, the tail past the last 128-token step leaked', async (model, price, cached) => {
    const { client } = t.tenant();
    const { sys, turn } = await openaiTurns(client, model);
    const r1 = await turn('q1');
    const i = r1.segments.findIndex((s) => s.source === `${sys.id}@1`);
    const [start, end] = [r1.segments[i]!.token_start, r1.segments[i]!.token_end];
    const L = end - start;
    await report(client, t, r1, chatUsage(promptTokens(r1), 0));
    t.clock.advance(MIN);
    const r2 = await turn('q2');
    // OpenAI reads 1,024 tokens and then whole 128-token steps of the shared prefix (the system prompt).
    const R = 1024 + 128 * Math.floor((end - 1024) / 128);
    await report(client, t, r2, chatUsage(promptTokens(r2), R));
    const read = Math.max(0, R - start);
    // Perfect capture reads every token that was not cold, the tail under a step too (README: opportunity counts it).
    const e: Expected = {
      actual: L * perToken(price) + read * perToken(price, cached) + (L - read) * perToken(price),
      noCache: 2 * L * perToken(price),
      perfect: L * perToken(price) + L * perToken(price, cached),
      premiumsPaid: 0,
      premiumsUnread: 0,
      premiumsPending: 0,
      // The tail short of the next step: under the next cacheable length, at full price where a read was cached.
      leaked: { below_minimum: (L - read) * (perToken(price) - perToken(price, cached)) },
    };
    expect((await handleMoney(client, sys.id)).money).toEqual(moneyOf(e));
    expect((await tenantReport(client)).money).toEqual(moneyOf(e));
  });

  it('Gemini 2.5 Flash implicit caching: cachedContentTokenCount at $0.03/M (0.1× of $0.30), no write premium', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM + LONG_SYSTEM);
    const turn = async (text: string) => {
      const res = await client.post('/v1/render', { format: 'gemini', model: 'gemini-2.5-flash', request: { prefix: [sys.id], contents: [{ role: 'user', parts: [{ text }] }] } });
      expect(res.status, res.text).toBe(200);
      return res.json as Rendered;
    };
    const r1 = await turn('q1');
    const i = r1.segments.findIndex((s) => s.source === `${sys.id}@1`);
    const [start, end] = [r1.segments[i]!.token_start, r1.segments[i]!.token_end];
    const L = end - start;
    await report(client, t, r1, { promptTokenCount: promptTokens(r1), candidatesTokenCount: 5, totalTokenCount: promptTokens(r1) + 5 });
    t.clock.advance(MIN);
    const r2 = await turn('q2');
    await report(client, t, r2, { promptTokenCount: promptTokens(r2), cachedContentTokenCount: end, candidatesTokenCount: 5, totalTokenCount: promptTokens(r2) + 5 });
    const e: Expected = {
      actual: L * perToken(0.3) + L * perToken(0.3, 0.1),
      noCache: 2 * L * perToken(0.3),
      perfect: L * perToken(0.3) + L * perToken(0.3, 0.1),
      premiumsPaid: 0,
      premiumsUnread: 0,
      premiumsPending: 0,
    };
    expect((await handleMoney(client, sys.id)).money).toEqual(moneyOf(e));
  });
});

describe('money audit: long context', () => {
  // About 210K tokens of a document no two lines of which are alike.
  const bigText = () => Array.from({ length: 21_000 }, (_, i) => `Clause ${i}: the tenant keeps record ${i * 7919} on file.`).join('\n');

  it('Sonnet 4.5 past 200K prompt tokens: the whole request at $6/M, writes 1.25× and reads 0.1× of it', async () => {
    const { client } = t.tenant();
    const doc = await mintArtifact(client, 'document', bigText());
    const turn = (text: string) => renderAnthropic(client, { prefix: [doc.id], messages: [{ role: 'user', content: text }] });
    const r1 = await turn('q1');
    const i = r1.segments.findIndex((s) => s.source === `${doc.id}@1`);
    const end = r1.segments[i]!.token_end;
    const D = span(r1, i);
    expect(promptTokens(r1)).toBeGreaterThan(200_000);
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, end));
    t.clock.advance(MIN);
    const r2 = await turn('q2');
    await report(client, t, r2, anthropicUsage(promptTokens(r2), end, 0));
    const e: Expected = {
      actual: D * perToken(6, 1.25) + D * perToken(6, 0.1),
      noCache: 2 * D * perToken(6),
      perfect: D * perToken(6, 1.25) + D * perToken(6, 0.1),
      premiumsPaid: D * perToken(6, 0.25),
      premiumsUnread: 0,
      premiumsPending: 0,
    };
    expect((await handleMoney(client, doc.id)).money).toEqual(moneyOf(e));
  });

  it("Sonnet 4.5 with the provider's total unknown (no cache_read_input_tokens): past 200K by its own input_tokens, priced at $6/M though our estimate is under", async () => {
    const { client } = t.tenant();
    const doc = await mintArtifact(client, 'document', bigText().split('\n').slice(0, 10_300).join('\n'));
    const r = await renderAnthropic(client, { prefix: [doc.id], messages: [{ role: 'user', content: 'q' }] });
    // Our estimate stays under the threshold; the provider's count of the uncached tokens alone is over it.
    expect(promptTokens(r)).toBeLessThan(200_000);
    await report(client, t, r, { input_tokens: 205_000, output_tokens: 5 });
    const D = span(r, r.segments.findIndex((s) => s.source === `${doc.id}@1`));
    // Capture unknown (no cache fields): the spans stay our estimate, priced at the tier the provider's count proves.
    expect((await handleMoney(client, doc.id)).money.unknown_capture_input_cost).toBe(usd(D * perToken(6)));
  });

  it('Gemini 2.5 Pro past 200K prompt tokens: $2.50/M and cached $0.25/M; at 200K or under, $1.25/M', async () => {
    const { client } = t.tenant();
    const doc = await mintArtifact(client, 'document', bigText());
    const render = async () => {
      const res = await client.post('/v1/render', { format: 'gemini', model: 'gemini-2.5-pro', request: { prefix: [doc.id], contents: [{ role: 'user', parts: [{ text: 'q' }] }] } });
      expect(res.status, res.text).toBe(200);
      return res.json as Rendered;
    };
    const r1 = await render();
    const total = promptTokens(r1);
    expect(total).toBeGreaterThan(200_000);
    const D = span(r1, r1.segments.findIndex((s) => s.source === `${doc.id}@1`));
    await report(client, t, r1, { promptTokenCount: total, candidatesTokenCount: 5, totalTokenCount: total + 5 });
    expect((await handleMoney(client, doc.id)).money.cost_without_caching).toBe(usd(D * perToken(2.5)));
  });
});

describe('money audit: the CLI and the dashboard print the API\'s figures', () => {
  it('report (handle and tenant) and the handle and overview pages show every money figure as the API gives it', async () => {
    const h = await startCliHarness('ph-money-cli-');
    try {
      const { client, key } = h.t.tenant();
      const { bundle, turn } = await anthropicAgent(client);
      // A write read once, then one never read: savings, a leak and an unread premium.
      const r1 = await turn('q1');
      const C = r1.segments[1]!.token_end;
      await report(client, h.t, r1, anthropicUsage(promptTokens(r1), 0, C));
      h.t.clock.advance(MIN);
      const r2 = await turn('q2');
      await report(client, h.t, r2, anthropicUsage(promptTokens(r2), C, 0));
      h.t.clock.advance(10 * MIN);
      const r3 = await turn('q3');
      await report(client, h.t, r3, anthropicUsage(promptTokens(r3), 0, C));
      h.t.clock.advance(10 * MIN);
      const api = (await handleMoney(client, bundle.id)).money;
      const tenant = (await tenantReport(client)).money;
      expect(api).toEqual(
        moneyOf({
          actual: 2 * C * perToken(3, 1.25) + C * perToken(3, 0.1),
          noCache: 3 * C * perToken(3),
          perfect: C * perToken(3, 1.25) + 2 * C * perToken(3, 0.1),
          premiumsPaid: 2 * C * perToken(3, 0.25),
          premiumsUnread: C * perToken(3, 0.25),
          premiumsPending: 0,
          leaked: { expired: C * (perToken(3, 1.25) - perToken(3, 0.1)) },
        }),
      );
      expect(tenant).toEqual(api);

      // The CLI prints micro-dollars: the API's figures to the last digit, a negative one with its sign.
      const cliUsd = (x: number) => `${x < 0 ? '-' : ''}$${Math.abs(x).toFixed(6)}`;
      const labels: Record<string, string> = {
        realised_savings: 'realised savings',
        leaked_savings: 'leaked savings',
        write_premiums_unread: 'unread write premiums',
        actual_input_cost: 'actual input cost',
        cost_without_caching: 'cost without caching',
        cost_at_perfect_capture: 'cost at perfect capture',
        write_premiums_paid: 'write premiums paid',
      };
      const [handleRun, tenantRun] = await Promise.all([h.cli(['report', bundle.id], { key }), h.cli(['report'], { key })]);
      for (const [run, money] of [[handleRun, api], [tenantRun, tenant]] as const) {
        expect(run.code, run.err).toBe(0);
        for (const [k, label] of Object.entries(labels)) expect(run.out, k).toMatch(new RegExp(`^${label} +${cliUsd(money[k]).replace('$', '\\$')}$`, 'm'));
        // Each miss class's leaked money closes its line of the token table; cold leaks none (its cell is empty).
        expect(run.out).toMatch(new RegExp(`^ +expired +[\\d,]+ +[\\d.]+% +1 +${cliUsd(money.leaked_by_class.expired).replace('$', '\\$')}$`, 'm'));
        expect(run.out).toMatch(new RegExp(`^ +drift +0 +0\\.0% +0 +\\$0\\.000000$`, 'm'));
        expect(run.out).toMatch(/^ +cold +[\d,]+ +[\d.]+% +\d+$/m);
      }
      expect(api.realised_savings).toBeGreaterThan(0);

      // The dashboard: each figure's exact value in data-value, and the text shown beside it.
      const page = async (path: string) => {
        const res = await h.t.app.request(path, { headers: { cookie: `ph_ui_key=${key}` } });
        expect(res.status, path).toBe(200);
        return res.text();
      };
      for (const [path, money] of [[`/ui/handles/${bundle.id}?period=7d`, api], ['/ui?period=7d', tenant]] as const) {
        const html = await page(path);
        for (const k of ['realised_savings', 'leaked_savings', 'actual_input_cost', 'cost_at_perfect_capture', 'write_premiums_unread', 'unknown_capture_input_cost']) {
          const m = html.match(new RegExp(`data-metric="money\\.${k}" data-value="([^"]*)"><dt>[^<]*</dt><dd>([^<]*)`));
          expect(m, `${path} ${k}`).not.toBeNull();
          expect(Number(m![1]), `${path} ${k}`).toBe(money[k]);
          expect(m![2]!.trim(), `${path} ${k}`).toBe(shown(money[k]));
        }
        expect(html).toContain(`of ${shown(money.cost_without_caching)} uncached`);
        expect(html).toContain(`of ${shown(money.write_premiums_paid)} paid`);
      }
      // Shown with three significant digits under 10¢, cents above: the leaked figure here, worked by hand.
      expect(shown(api.leaked_savings)).toBe(`$${api.leaked_savings.toPrecision(3)}`);
    } finally {
      await h.close();
    }
  });
});
