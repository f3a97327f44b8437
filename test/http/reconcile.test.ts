import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientFor, createTestApp, type TestApp } from '../helpers/app';
import { mintArtifact, mintBundle, mintSystem, mintTools, startSession } from '../helpers/factories';
import { anthropicUsage, classesOf, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';
import type { Rendered } from '../helpers/scenario';
import { png } from '../helpers/media';
import { totalMismatch } from '../../src/domain/reconcile/reconciler';
import { usd } from '../../src/http/ui/format';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const MIN = 60_000;

async function agentSetup() {
  const { client, key } = t.tenant();
  const tools = await mintTools(client);
  const sys = await mintSystem(client, LONG_SYSTEM);
  const bundle = await mintBundle(client, [tools.id, sys.id]);
  return { client, key, tools, sys, bundle };
}

describe('reconciliation scenarios', () => {
  it('warm agent loop: cold first, then captured', async () => {
    const { client, sys, tools, bundle } = await agentSetup();
    const r1 = await renderAnthropic(client, { prefix: [bundle.id], messages: [{ role: 'user', content: 'turn one' }] });
    const cached = r1.breakpoints[0]!.token_end;
    expect(r1.prediction.read_tokens).toBe(0);
    const o1 = (await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, cached))).outcome;
    expect(classesOf(o1, `${sys.id}@1`)).toEqual({ cold: r1.segments[1]!.token_end - r1.segments[1]!.token_start });
    expect(classesOf(o1, `${tools.id}@1`)).toEqual({ cold: r1.segments[0]!.token_end });

    t.clock.advance(MIN);
    const r2 = await renderAnthropic(client, { prefix: [bundle.id], messages: [{ role: 'user', content: 'turn two' }] });
    expect(r2.prediction.read_tokens).toBe(cached);
    const o2 = (await report(client, t, r2, anthropicUsage(promptTokens(r2), cached, 0))).outcome;
    expect(classesOf(o2, `${sys.id}@1`)).toEqual({ captured: r2.segments[1]!.token_end - r2.segments[1]!.token_start });
    expect(classesOf(o2, `${tools.id}@1`)).toEqual({ captured: r2.segments[0]!.token_end });

    const rep = (await client.get(`/v1/reports/handles/${bundle.id}`)).json;
    expect(rep.requests).toBe(2);
    expect(rep.tokens.referenced).toBe(2 * cached);
    expect(rep.tokens.cold).toBe(cached);
    expect(rep.tokens.opportunity).toBe(cached);
    expect(rep.tokens.captured).toBe(cached);
    expect(rep.capture_rate).toBe(1);
    expect(rep.requests_with.cold).toBe(1);
    expect(rep.money.realised_savings).toBeGreaterThan(0);
    // Turn one's write was read by turn two: its premium was not wasted.
    expect(rep.money.write_premiums_paid).toBeGreaterThan(0);
    expect(rep.money.write_premiums_unread).toBe(0);

    // Provider totals calibrate the estimate: here they equal it, so the ratio is 1.
    const described = (await client.get(`/v1/handles/${sys.id}`)).json;
    expect(described.calibrated_tokens).toEqual([
      { model: 'claude-sonnet-4-5', family: 'anthropic', ratio: 1, reports: 2, estimate: described.version.meta.tokens.anthropic, calibrated: described.version.meta.tokens.anthropic },
    ]);
  });

  it('a timestamp in an inline system prompt before the bundle: drift, located to the byte', async () => {
    const { client, sys, bundle } = await agentSetup();
    const at = (stamp: string) => ({
      system: [{ type: 'text', text: `Current time: ${stamp}` }, { type: 'handle', ref: sys.id }],
      messages: [{ role: 'user', content: 'hello' }],
    });
    const r1 = await renderAnthropic(client, at('2026-11-21T10:00:00Z'));
    expect(r1.segments[0]!.source).toBe('inline');
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, r1.breakpoints[0]!.token_end));
    t.clock.advance(MIN);
    const r2 = await renderAnthropic(client, at('2026-11-21T10:01:00Z'));
    expect(r2.prediction.read_tokens).toBe(0);
    const o2 = (await report(client, t, r2, anthropicUsage(promptTokens(r2), 0, r2.breakpoints[0]!.token_end))).outcome;
    const sysTokens = r2.segments[1]!.token_end - r2.segments[1]!.token_start;
    expect(classesOf(o2, `${sys.id}@1`)).toEqual({ drift: sysTokens });
    expect(o2.drift).toMatchObject({
      handle: `${sys.id}@1`,
      segment: 0,
      now: { source: 'inline', excerpt: expect.stringContaining('10:01:00Z') },
      before: { source: 'inline', excerpt: expect.stringContaining('10:00:00Z') },
    });
    // The byte offset is inside the inline segment's text (as sent), at the minute's second digit.
    const text = '{"type":"text","text":"Current time: 2026-11-21T10:00:00Z"}';
    expect(o2.drift.byte_offset).toBe(text.indexOf('T10:0') + 5);
    const rep = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
    expect(rep.tokens.drift).toBe(sysTokens);
    expect(rep.drift[0]).toMatchObject({ request_id: r2.request_id, previous_request_id: r1.request_id, byte_offset: o2.drift.byte_offset });
    // The findings follow the report's filters, as its figures do: dated by the request's start, of its model.
    const day = new Date(t.clock.now()).toISOString().slice(0, 10);
    const filtered = async (q: string) => (await client.get(`/v1/reports/handles/${sys.id}?${q}`)).json;
    expect((await filtered(`from=${day}&to=${day}`)).drift).toHaveLength(1);
    const otherDay = await filtered('from=2020-01-01&to=2020-01-31');
    expect([otherDay.tokens.drift, otherDay.drift]).toEqual([0, []]);
    const otherModel = await filtered('model=gpt-4o');
    expect([otherModel.tokens.drift, otherModel.drift]).toEqual([0, []]);
    expect((await filtered(`model=${(r2 as unknown as { model: { name: string } }).model.name}`)).drift).toHaveLength(1);
    void bundle;
  });

  it('a timestamp put where a handle was: both beginnings shown, and the finding filed on every handle it broke', async () => {
    const { client, tools, sys } = await agentSetup();
    const doc = await mintArtifact(client, 'document', LONG_SYSTEM + ' The handbook.');
    const body = (system: unknown[]) => ({ tools: [{ type: 'handle', ref: tools.id }], system, messages: [{ role: 'user', content: [{ type: 'handle', ref: doc.id }, { type: 'text', text: 'hello' }] }] });
    const r1 = await renderAnthropic(client, body([{ type: 'handle', ref: sys.id }]));
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, r1.breakpoints.at(-1)!.token_end));
    t.clock.advance(MIN);
    const r2 = await renderAnthropic(client, body([{ type: 'text', text: 'Current time: 2026-11-21T10:01:00Z' }, { type: 'handle', ref: sys.id }]));
    const o2 = (await report(client, t, r2, anthropicUsage(promptTokens(r2), 0, r2.breakpoints.at(-1)!.token_end))).outcome;
    expect(Object.keys(classesOf(o2, `${sys.id}@1`))).toEqual(['drift']);
    expect(Object.keys(classesOf(o2, `${doc.id}@1`))).toEqual(['drift']);
    // The system prompt's place now holds the timestamp: no common bytes to point at, but both sides to read.
    expect(o2.drift).toMatchObject({
      handle: `${sys.id}@1`,
      segment: 1,
      now: { source: 'inline', excerpt: expect.stringContaining('Current time: 2026-11-21T10:01') },
      before: { source: `${sys.id}@1`, excerpt: LONG_SYSTEM.slice(0, 80) },
    });
    expect(o2.drift.byte_offset).toBeUndefined();
    // The handbook drifted for the same reason: its report holds the finding too; the tools, before it, did not drift.
    for (const h of [sys.id, doc.id]) expect((await client.get(`/v1/reports/handles/${h}`)).json.drift).toMatchObject([{ request_id: r2.request_id, segment: 1 }]);
    expect((await client.get(`/v1/reports/handles/${tools.id}`)).json.drift).toEqual([]);
  });

  it("a new version of a handle before others: drift on what follows, located to the byte in the handle's content", async () => {
    const { client } = t.tenant();
    const stamped = (stamp: string) => `Policy as of ${stamp}. ${LONG_SYSTEM}`;
    const sys = await mintSystem(client, stamped('2026-11-21'));
    const doc = await mintArtifact(client, 'document', LONG_SYSTEM + ' The handbook.');
    const turn = () => renderAnthropic(client, { prefix: [sys.id, doc.id], messages: [{ role: 'user', content: 'hello' }] });
    const r1 = await turn();
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, r1.breakpoints.at(-1)!.token_end));
    t.clock.advance(MIN);
    const next = await client.post(`/v1/artifacts/${sys.id}/versions`, { content: stamped('2026-11-22') });
    expect(next.status, next.text).toBe(201);
    const r2 = await turn();
    const o2 = (await report(client, t, r2, anthropicUsage(promptTokens(r2), 0, r2.breakpoints.at(-1)!.token_end))).outcome;
    expect(Object.keys(classesOf(o2, `${doc.id}@1`))).toEqual(['drift']);
    expect(o2.drift).toMatchObject({
      handle: `${doc.id}@1`,
      segment: 0,
      now: { source: `${sys.id}@2`, excerpt: expect.stringContaining('2026-11-22') },
      before: { source: `${sys.id}@1`, excerpt: expect.stringContaining('2026-11-21') },
    });
    // The same offset the new version's metadata gives: the day's second digit.
    expect(o2.drift.byte_offset).toBe('Policy as of 2026-11-2'.length);
    expect(o2.drift.byte_offset).toBe(next.json.meta.change.first_diff_byte);
  });

  it('a change of API format on one cache (chat, then Responses) is drift the finding names as such', async () => {
    const { client, bundle } = await agentSetup();
    const renderAs = async (format: string, request: object) => {
      const res = await client.post('/v1/render', { format, request: { model: 'gpt-4.1', prefix: [bundle.id], ...request } });
      expect(res.status, res.text).toBe(200);
      return res.json as Rendered;
    };
    const chat = await renderAs('openai-chat', { messages: [{ role: 'user', content: 'hello' }] });
    const usage = (r: Rendered, cached: number) => ({ prompt_tokens: promptTokens(r), completion_tokens: 5, prompt_tokens_details: { cached_tokens: cached } });
    await report(client, t, chat, usage(chat, 0));
    t.clock.advance(MIN);
    const responses = await renderAs('openai-responses', { input: 'hello' });
    const o = (await report(client, t, responses, { input_tokens: promptTokens(responses), output_tokens: 5, input_tokens_details: { cached_tokens: 0 } })).outcome;
    expect(o.drift).toMatchObject({ formats: { before: 'openai-chat', now: 'openai-responses' } });
    // The same request again in the same format: no format note.
    t.clock.advance(MIN);
    const again = await renderAs('openai-responses', { input: 'hello' });
    const o2 = (await report(client, t, again, { input_tokens: promptTokens(again), output_tokens: 5, input_tokens_details: { cached_tokens: 0 } })).outcome;
    expect(o2.drift?.formats).toBeUndefined();
  });

  it("an expired Gemini prefix: its page does not advise calls within the lifetime (Gemini's hits do not renew it)", async () => {
    const { client, key } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM + LONG_SYSTEM);
    const turn = async () => {
      const res = await client.post('/v1/render', { format: 'gemini', model: 'gemini-2.5-flash', request: { contents: [{ role: 'user', parts: [{ type: 'handle', ref: sys.id }, { text: 'q' }] }] } });
      expect(res.status, res.text).toBe(200);
      return res.json as Rendered;
    };
    const first = await turn();
    await report(client, t, first, { promptTokenCount: promptTokens(first), candidatesTokenCount: 3 });
    t.clock.advance(2 * 60 * MIN);
    const later = await turn();
    const o = (await report(client, t, later, { promptTokenCount: promptTokens(later), candidatesTokenCount: 3 })).outcome;
    expect(o.expired).toMatchObject({ ttl: '1h' });
    const page = await (await t.app.request(`/ui/requests/${later.request_id}`, { headers: { cookie: `ph_ui_key=${key}` } })).text();
    expect(page).toContain('On this model a hit does not renew it');
    expect(page).not.toContain('A call within the lifetime keeps it alive');
  });

  it('a whole Gemini response in snake_case (model_dump() of the Python SDK) is reconciled, its usage kept as received', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM + LONG_SYSTEM);
    const res = await client.post('/v1/render', { format: 'gemini', model: 'gemini-2.5-flash', request: { contents: [{ role: 'user', parts: [{ type: 'handle', ref: sys.id }, { text: 'q' }] }] } });
    const r = res.json as Rendered;
    const usage_metadata = { prompt_token_count: promptTokens(r), cached_content_token_count: 0, candidates_token_count: 3, total_token_count: promptTokens(r) + 3 };
    const reported = await client.post('/v1/usage', { request_id: r.request_id, response: { candidates: [{ content: { parts: [{ text: 'hi' }] } }], usage_metadata, model_version: 'gemini-2.5-flash' } });
    expect(reported.status, reported.text).toBe(201);
    expect(reported.json.outcome).toMatchObject({ capture: 'reported', total_prompt_tokens: promptTokens(r) });
    expect((await client.get(`/v1/requests/${r.request_id}`)).json.usage_raw).toEqual(usage_metadata);
    // Refused, it is named as sent.
    const r2 = (await client.post('/v1/render', { format: 'gemini', model: 'gemini-2.5-flash', request: { contents: [{ role: 'user', parts: [{ type: 'handle', ref: sys.id }, { text: 'q2' }] }] } })).json as Rendered;
    const bad = await client.post('/v1/usage', { request_id: r2.request_id, response: { candidates: [], usage_metadata: { ...usage_metadata, cached_content_token_count: -1 } } });
    expect(bad.status).toBe(422);
    expect(bad.json.errors).toEqual([{ pointer: '/response/usage_metadata/cached_content_token_count', detail: 'cached_content_token_count is not a non-negative integer' }]);
  });

  it("Gemini's toolUsePromptTokenCount: input billed outside the prompt, in the request's input cost, on no handle nor the tenant's totals, not a total mismatch", async () => {
    const { client, key } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM + LONG_SYSTEM);
    const res = await client.post('/v1/render', { format: 'gemini', model: 'gemini-2.5-flash', request: { contents: [{ role: 'user', parts: [{ type: 'handle', ref: sys.id }, { text: 'q' }] }] } });
    const r = res.json as Rendered;
    const prompt = promptTokens(r);
    // Search results the model read: three times the prompt, which would be a total mismatch if counted in it.
    const toolUse = 3 * prompt + 2048;
    const usageMetadata = { promptTokenCount: prompt, candidatesTokenCount: 3, toolUsePromptTokenCount: toolUse, totalTokenCount: prompt + 3 + toolUse };
    const reported = await client.post('/v1/usage', { request_id: r.request_id, usage: usageMetadata });
    expect(reported.status, reported.text).toBe(201);
    const { usage, outcome } = reported.json;
    expect(usage).toMatchObject({ total_prompt_tokens: prompt, uncached_tokens: prompt, cache_read_tokens: 0, tool_use_prompt_tokens: toolUse });
    // The segments carry the prompt alone.
    expect(outcome.total_prompt_tokens).toBe(prompt);
    expect(outcome.total_mismatch).toBeUndefined();
    expect(outcome.segments.at(-1).end).toBe(prompt);
    const handleSeg = outcome.segments.find((s: { source: string }) => s.source === `${sys.id}@1`);
    const perToken = handleSeg.cost.no_cache / (handleSeg.end - handleSeg.start);
    expect(outcome.tool_use_prompt.tokens).toBe(toolUse);
    expect(outcome.tool_use_prompt.cost).toBeCloseTo(toolUse * perToken, 12);
    expect((await client.get(`/v1/requests/${r.request_id}`)).json.outcome.tool_use_prompt).toEqual(outcome.tool_use_prompt);

    // Neither the tenant's money nor the handle's counts it: the totals are handle content, as for inline content.
    const micro = (x: number) => Math.round(x * 1e6) / 1e6;
    const tenant = (await client.get('/v1/reports')).json.money;
    const handle = (await client.get(`/v1/reports/handles/${sys.id}`)).json.money;
    expect(handle.actual_input_cost).toBe(micro(handleSeg.cost.actual));
    expect(handle.cost_without_caching).toBe(micro(handleSeg.cost.no_cache));
    expect(tenant.actual_input_cost).toBe(micro(handleSeg.cost.actual));
    expect(tenant.cost_without_caching).toBe(micro(handleSeg.cost.no_cache));
    expect(tenant.cost_at_perfect_capture).toBe(micro(handleSeg.cost.perfect));
    expect(tenant.leaked_savings).toBe(handle.leaked_savings);
    expect(tenant.realised_savings).toBe(handle.realised_savings);

    // The request page shows the count and counts it in the input cost.
    const page = await (await t.app.request(`/ui/requests/${r.request_id}`, { headers: { cookie: `ph_ui_key=${key}` } })).text();
    expect(page).toContain(`<dt>Tool-use prompt tokens</dt><dd data-value="${toolUse}">`);
    const inline = outcome.segments.filter((s: { source: string }) => s.source === 'inline').reduce((n: number, s: { cost: { actual: number } }) => n + s.cost.actual, 0);
    expect(page).toContain(`of ${usd(handleSeg.cost.actual + inline + outcome.tool_use_prompt.cost)} input cost`);
  });

  it('a 6-minute gap on a 5-minute TTL expires, with the gap; hits every 4 minutes keep it alive', async () => {
    const { client, key, sys, bundle } = await agentSetup();
    const turn = (n: number) => renderAnthropic(client, { prefix: [bundle.id], messages: [{ role: 'user', content: `turn ${n}` }] });
    const r1 = await turn(1);
    const cached = r1.breakpoints[0]!.token_end;
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, cached));
    for (let i = 2; i <= 4; i++) {
      t.clock.advance(4 * MIN);
      const r = await turn(i);
      expect(r.prediction.read_tokens, `turn ${i}`).toBe(cached);
      const o = (await report(client, t, r, anthropicUsage(promptTokens(r), cached, 0))).outcome;
      expect(Object.keys(classesOf(o, `${sys.id}@1`))).toEqual(['captured']);
      expect(o.expired).toBeUndefined();
    }
    const lastUse = t.clock.now();
    t.clock.advance(6 * MIN);
    const late = await turn(5);
    expect(late.prediction.read_tokens).toBe(0);
    const o = (await report(client, t, late, anthropicUsage(promptTokens(late), 0, cached))).outcome;
    const sysTokens = late.segments[1]!.token_end - late.segments[1]!.token_start;
    expect(classesOf(o, `${sys.id}@1`)).toEqual({ expired: sysTokens });
    // The leak says how long the prefix was left unused (since the last hit refreshed it), against its lifetime.
    expect(o.expired).toEqual({ last_used_at: lastUse, gap_ms: 6 * MIN, ttl: '5m' });
    const page = await (await t.app.request(`/ui/requests/${late.request_id}`, { headers: { cookie: `ph_ui_key=${key}` } })).text();
    expect(page).toContain('data-expired');
    expect(page).toMatch(/<b data-gap="360000">6 min<\/b> before this one, longer than its cache lifetime of <b>5m<\/b>/);
    expect(page).toContain('A call within the lifetime keeps it alive');
  });

  it("last week's calls reported after today's traffic are reconciled as they happened (cold, expired, captured), also after a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ph-history-'));
    const file = join(dir, 'db.sqlite');
    try {
      t.close();
      t = createTestApp({ databasePath: file });
      const { client, key, sys, bundle } = await agentSetup();
      const turn = (c: typeof client, n: number) => renderAnthropic(c, { prefix: [bundle.id], messages: [{ role: 'user', content: `turn ${n}` }] });
      const today = await turn(client, 0);
      const cached = today.breakpoints[0]!.token_end;
      const sysTokens = today.segments[1]!.token_end - today.segments[1]!.token_start;
      await report(client, t, today, anthropicUsage(promptTokens(today), 0, cached));

      // Then last week's calls, with their own times (as `import` sends them).
      const weekAgo = t.clock.now() - 7 * 24 * 60 * MIN;
      const past = async (c: typeof client, n: number, at: number, read: number, write: number) => {
        const r = await turn(c, n);
        const res = await c.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(promptTokens(r), read, write), started_at: at, first_byte_at: at + 500, finished_at: at + 1000 });
        expect(res.status, res.text).toBe(201);
        return classesOf(res.json.outcome, `${sys.id}@1`);
      };
      expect(await past(client, 1, weekAgo, 0, cached)).toEqual({ cold: sysTokens });
      expect(await past(client, 2, weekAgo + 30 * MIN, 0, cached)).toEqual({ expired: sysTokens });

      // After a restart the history is rebuilt from the database: a call two minutes later read that write.
      t.close();
      t = createTestApp({ databasePath: file, clock: t.clock });
      const again = clientFor(t.app, key);
      expect(await past(again, 3, weekAgo + 32 * MIN, cached, 0)).toEqual({ captured: sysTokens });
      // Today's cache is as it was: a call now reads today's write.
      t.clock.advance(MIN);
      const now = await turn(again, 4);
      expect(now.prediction.read_tokens).toBe(cached);
      const o = (await report(again, t, now, anthropicUsage(promptTokens(now), cached, 0))).outcome;
      expect(classesOf(o, `${sys.id}@1`)).toEqual({ captured: sysTokens });
    } finally {
      t.close();
      t = createTestApp();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a report an hour late in a busy scope stays with the live cache: its read was of a write that traffic kept warm', async () => {
    const { client, sys, bundle } = await agentSetup();
    const turn = (n: number) => renderAnthropic(client, { prefix: [bundle.id], messages: [{ role: 'user', content: `turn ${n}` }] });
    const late = await turn(0);
    const lateStart = t.clock.now();
    const cached = late.breakpoints[0]!.token_end;
    for (let i = 1; i <= 30; i++) {
      const r = await turn(i);
      await report(client, t, r, anthropicUsage(promptTokens(r), i === 1 ? 0 : cached, i === 1 ? cached : 0));
      t.clock.advance(4 * MIN);
    }
    // A call 50 minutes into the two-hour loop (over an hour before its last turn), reported only now: it read the prefix.
    const at = lateStart + 50 * MIN;
    const res = await client.post('/v1/usage', { request_id: late.request_id, usage: anthropicUsage(promptTokens(late), cached, 0), started_at: at, first_byte_at: at + 500, finished_at: at + 1000 });
    expect(res.status, res.text).toBe(201);
    expect(Object.keys(classesOf(res.json.outcome, `${sys.id}@1`))).toEqual(['captured']);
    // Applied at the scope's latest start, not its own, and said so.
    expect(res.json.outcome.applied_late).toEqual({ started_at: at, applied_at: expect.any(Number) });
    expect(res.json.outcome.applied_late.applied_at).toBeGreaterThan(at + 60 * MIN);
  });

  it("OpenAI's prompt_cache_retention 24h: a read half an hour later is captured, not expired (and is expired without it)", async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const turn = async (n: number, retention?: string) => {
      const res = await client.post('/v1/render', { format: 'openai-chat', request: { model: 'gpt-5', ...(retention ? { prompt_cache_retention: retention } : {}), prefix: [sys.id], messages: [{ role: 'user', content: `q${n}` }] } });
      expect(res.status, res.text).toBe(200);
      return res.json as Rendered;
    };
    const send = (r: Rendered, cached: number) => report(client, t, r, { prompt_tokens: promptTokens(r), completion_tokens: 3, total_tokens: promptTokens(r) + 3, prompt_tokens_details: { cached_tokens: cached } });
    for (const retention of ['24h', undefined]) {
      t.clock.advance(48 * 60 * MIN);
      await send(await turn(1, retention), 0);
      t.clock.advance(30 * MIN);
      const later = await turn(2, retention);
      const expected = Math.floor((later.segments[0]!.token_end - 1024) / 128) * 128 + 1024;
      expect(later.prediction.read_tokens, String(retention)).toBe(retention ? expected : 0);
      const o = (await send(later, retention ? expected : 0)).outcome;
      expect(Object.keys(classesOf(o, `${sys.id}@1`)), String(retention)).toContain(retention ? 'captured' : 'expired');
      expect((await client.get(`/v1/requests/${later.request_id}`)).json.cache_ttl).toBe(retention ?? null);
    }
  });

  it("OpenAI's tail past the prompt's last 128-token step is below_minimum even when the simulated cache had expired", async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const body = { format: 'openai-chat', request: { model: 'gpt-4.1', prefix: [sys.id], messages: [{ role: 'user', content: 'the same question, asked again' }] } };
    const send = (r: Rendered, cached: number) => report(client, t, r, { prompt_tokens: promptTokens(r), completion_tokens: 3, total_tokens: promptTokens(r) + 3, prompt_tokens_details: { cached_tokens: cached } });
    await send((await client.post('/v1/render', body)).json, 0);
    // Six minutes on, past the 5-minute lifetime we simulate, the provider still read all it could: every whole step.
    t.clock.advance(6 * MIN);
    const again = (await client.post('/v1/render', body)).json as Rendered;
    const total = promptTokens(again);
    const steps = 1024 + Math.floor((total - 1024) / 128) * 128;
    const o = (await send(again, steps)).outcome;
    // The tail after the last step could not have been read by any cache, live or not: never `expired`.
    const segments = o.segments as Array<{ source: string; classes: Record<string, number> }>;
    const tail = segments[segments.length - 1]!;
    expect(tail.source).toBe('inline');
    expect(Object.keys(classesOf(o, 'inline'))).not.toContain('expired');
    expect(segments.reduce((n, s) => n + s.classes.below_minimum!, 0)).toBe(total - steps);
    expect(o.expired).toBeUndefined();
    // OpenAI reports no write: unknown, not 0.
    expect((o as unknown as { provider: unknown }).provider).toEqual({ read: steps, write: null });
  });

  it('a prefix under the model minimum: below_minimum, nothing predicted', async () => {
    const { client } = t.tenant();
    const small = await mintSystem(client, 'Be brief.');
    const turn = () => renderAnthropic(client, { system: [{ type: 'handle', ref: small.id }], messages: [{ role: 'user', content: 'hi' }] });
    const r1 = await turn();
    expect(r1.breakpoints).toEqual([]);
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, 0));
    t.clock.advance(MIN);
    const r2 = await turn();
    const o = (await report(client, t, r2, anthropicUsage(promptTokens(r2), 0, 0))).outcome;
    expect(classesOf(o, `${small.id}@1`)).toEqual({ below_minimum: r2.segments[0]!.token_end });
  });

  it('writes at two TTLs: each segment pays its own TTL (1h writes come first), not a blended rate', async () => {
    const { client, bundle } = await agentSetup();
    const r1 = await renderAnthropic(client, { prefix: [bundle.id], messages: [{ role: 'user', content: 'a question long enough to be its own write '.repeat(8) }] });
    const cached = r1.breakpoints[0]!.token_end;
    const total = promptTokens(r1);
    const usage = { input_tokens: 0, cache_creation_input_tokens: total, cache_read_input_tokens: 0, cache_creation: { ephemeral_5m_input_tokens: total - cached, ephemeral_1h_input_tokens: cached }, output_tokens: 5 };
    await report(client, t, r1, usage);
    // Sonnet 4.5: $3 per million input tokens, 1h writes at 2× (a premium of 1×), 5m writes at 1.25×.
    const rep = (await client.get(`/v1/reports/handles/${bundle.id}`)).json;
    expect(rep.money.write_premiums_paid).toBeCloseTo((cached * 1 * 3) / 1e6, 12);
    expect(rep.money.actual_input_cost).toBeCloseTo((cached * 2 * 3) / 1e6, 12);
  });

  it('money rounds to the micro-dollar alike either side of zero: an unread write costs as much savings as its premium', async () => {
    // Writes of 4k + 2 tokens at $3/M and a 0.25× premium: 0.75 µ$ a token, premiums ending in half a micro-dollar.
    for (const shift of [-24, -20, -16, -12, -8, -4, 0, 4, 8, 12, 16, 20]) {
      const { client } = t.tenant();
      const sys = await mintSystem(client, LONG_SYSTEM);
      const r1 = await renderAnthropic(client, { prefix: [sys.id], messages: [{ role: 'user', content: 'q' }] });
      const bp = r1.breakpoints[0]!.token_end;
      const written = bp - (bp % 4) + 2 + shift;
      const o = (await report(client, t, r1, anthropicUsage(written + 5, 0, written))).outcome;
      expect((o.segments[0] as unknown as { write: number }).write).toBe(written);
      for (const path of [`/v1/reports/handles/${sys.id}`, '/v1/reports']) {
        const { money } = (await client.get(path)).json;
        expect(money.write_premiums_paid).toBeCloseTo((written * 0.25 * 3) / 1e6, 5);
        // Nothing was read: the savings lost are exactly the premium, to the same digits.
        expect(money.realised_savings, `${written} tokens written`).toBe(-money.write_premiums_paid);
      }
    }
  });

  it('GET /v1/reports?limit=N lists the first N handles by leaked money, the same totals, and how many there are', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const doc = await mintArtifact(client, 'document', 'Returns policy, section 4. Items may be returned within 30 days. '.repeat(60));
    const bundle = await mintBundle(client, [sys.id, doc.id]);
    for (let i = 0; i < 2; i++) {
      const r = await renderAnthropic(client, { prefix: [bundle.id], messages: [{ role: 'user', content: `q${i}` }] });
      const cached = r.breakpoints[r.breakpoints.length - 1]!.token_end;
      await report(client, t, r, anthropicUsage(promptTokens(r), 0, i === 0 ? cached : 0));
      t.clock.advance(MIN);
    }
    const all = (await client.get('/v1/reports')).json;
    expect(all.handles.length).toBe(3);
    expect(all.handles_total).toBe(3);
    const top = (await client.get('/v1/reports?limit=1')).json;
    expect(top.handles).toEqual(all.handles.slice(0, 1));
    expect(top.handles_total).toBe(3);
    const { handles: _a, ...allTotals } = all;
    const { handles: _t, ...topTotals } = top;
    expect(topTotals).toEqual(allTotals);
    for (const bad of ['0', '-1', '1.5', 'x']) {
      const res = await client.get(`/v1/reports?limit=${bad}`);
      expect(res.status, bad).toBe(422);
      expect(res.json.errors[0].pointer).toMatch(/limit/);
    }
  });

  it('a write reported without its TTL split is priced at the TTL its marks asked for (1h: 2×, pending for the hour)', async () => {
    const { client, bundle } = await agentSetup();
    // A top-level 1h mark: every breakpoint of the request is 1h.
    const r1 = await renderAnthropic(client, { cache_control: { type: 'ephemeral', ttl: '1h' }, prefix: [bundle.id], messages: [{ role: 'user', content: 'q' }] });
    expect(new Set((r1.breakpoints as unknown as Array<{ ttl: string }>).map((b) => b.ttl))).toEqual(new Set(['1h']));
    const cached = r1.breakpoints[0]!.token_end;
    const total = promptTokens(r1);
    // A log or gateway that kept only the sum (no `cache_creation`).
    await report(client, t, r1, { input_tokens: 0, cache_creation_input_tokens: total, cache_read_input_tokens: 0, output_tokens: 5 });
    const money = async () => (await client.get(`/v1/reports/handles/${bundle.id}`)).json.money;
    // Sonnet 4.5: $3 per million input tokens; a 1h write costs 2× (a premium of 1×), not the 5m 1.25×.
    const m0 = await money();
    expect(m0.actual_input_cost).toBeCloseTo((cached * 2 * 3) / 1e6, 6);
    expect(m0.write_premiums_paid).toBeCloseTo((cached * 1 * 3) / 1e6, 6);
    // Ten minutes on, the hour-long write may still be read: pending, not wasted.
    t.clock.advance(10 * MIN);
    const m1 = await money();
    expect([m1.write_premiums_pending, m1.write_premiums_unread]).toEqual([m1.write_premiums_paid, 0]);
    // And a read 30 minutes after the write is captured (the simulated entry lived for the hour too).
    t.clock.advance(20 * MIN);
    const r2 = await renderAnthropic(client, { cache_control: { type: 'ephemeral', ttl: '1h' }, prefix: [bundle.id], messages: [{ role: 'user', content: 'q' }] });
    const o2 = (await report(client, t, r2, { input_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: promptTokens(r2), output_tokens: 5 })).outcome;
    expect(o2.segments.every((s: { classes: Record<string, number>; end: number; start: number }) => s.classes.captured === s.end - s.start)).toBe(true);
    const m2 = await money();
    expect([m2.write_premiums_pending, m2.write_premiums_unread]).toEqual([0, 0]);
  });

  it('a write at two TTLs, unread: the 5m part is wasted once 5 minutes pass, the 1h part beside it still pending', async () => {
    const { client, bundle } = await agentSetup();
    const doc = await mintArtifact(client, 'document', 'Document A. '.repeat(400));
    const r1 = await renderAnthropic(client, { prefix: [bundle.id, doc.id], messages: [{ role: 'user', content: 'q' }] });
    const hour = r1.breakpoints[0]!.token_end;
    const total = promptTokens(r1);
    // The bundle written for an hour, the document and the question for 5 minutes (1h marks come first).
    await report(client, t, r1, { input_tokens: 0, cache_creation_input_tokens: total, cache_read_input_tokens: 0, cache_creation: { ephemeral_5m_input_tokens: total - hour, ephemeral_1h_input_tokens: hour }, output_tokens: 5 });
    const money = async (id: string) => (await client.get(`/v1/reports/handles/${id}`)).json.money;
    const [b0, d0] = [await money(bundle.id), await money(doc.id)];
    expect(d0.write_premiums_paid).toBeGreaterThan(0);
    expect([b0.write_premiums_pending, d0.write_premiums_pending]).toEqual([b0.write_premiums_paid, d0.write_premiums_paid]);
    t.clock.advance(10 * MIN);
    const [b1, d1] = [await money(bundle.id), await money(doc.id)];
    expect([b1.write_premiums_pending, b1.write_premiums_unread]).toEqual([b1.write_premiums_paid, 0]);
    expect([d1.write_premiums_pending, d1.write_premiums_unread]).toEqual([0, d1.write_premiums_paid]);
  });

  it('a later read marks only the part of a write it covers; an unread write is pending until its TTL passes', async () => {
    const { client, sys, bundle } = await agentSetup();
    const docA = await mintArtifact(client, 'document', 'Document A. '.repeat(400));
    const docB = await mintArtifact(client, 'document', 'Document B. '.repeat(400));
    const r1 = await renderAnthropic(client, { prefix: [bundle.id, docA.id], messages: [{ role: 'user', content: 'q1' }] });
    const written = r1.breakpoints[r1.breakpoints.length - 1]!.token_end;
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, written));
    const money = async (id: string) => (await client.get(`/v1/reports/handles/${id}`)).json.money;
    // Nothing read it yet, and its 5-minute TTL has not passed: pending, not wasted.
    expect((await money(docA.id)).write_premiums_pending).toBeGreaterThan(0);
    expect((await money(docA.id)).write_premiums_unread).toBe(0);

    t.clock.advance(MIN);
    const r2 = await renderAnthropic(client, { prefix: [bundle.id, docB.id], messages: [{ role: 'user', content: 'q2' }] });
    const bundleEnd = r2.segments.find((x) => x.source === `${sys.id}@1`)!.token_end;
    await report(client, t, r2, anthropicUsage(promptTokens(r2), bundleEnd, promptTokens(r2) - bundleEnd));
    // The bundle's part was read; document A's was not, and is still pending until r1's TTL ends.
    const bundleMoney = await money(bundle.id);
    expect(bundleMoney.write_premiums_paid).toBeGreaterThan(0);
    const a = await money(docA.id);
    expect([a.write_premiums_unread, a.write_premiums_pending]).toEqual([0, a.write_premiums_paid]);

    t.clock.advance(5 * MIN);
    const after = await money(docA.id);
    expect([after.write_premiums_unread, after.write_premiums_pending]).toEqual([after.write_premiums_paid, 0]);
    // r1's bundle write was read (r2's own write of document B is past its TTL too, unread).
    const sysMoney = await money(sys.id);
    const r1SysPremium = (await client.get(`/v1/requests/${r1.request_id}`)).json.outcome.segments[1].cost.write_premium;
    expect(sysMoney.write_premiums_paid).toBeCloseTo(r1SysPremium, 5);
    expect(sysMoney.write_premiums_unread).toBe(0);
  });

  it('parallel fan-out of identical requests: the second pays the write again (concurrent)', async () => {
    const { client, sys, bundle } = await agentSetup();
    const first = await renderAnthropic(client, { prefix: [bundle.id], messages: [{ role: 'user', content: 'warm-up' }] });
    const cached = first.breakpoints[0]!.token_end;
    await report(client, t, first, anthropicUsage(promptTokens(first), 0, cached));
    // A new bundle version: both parallel calls are the first to see it.
    const sys2 = await mintSystem(client, LONG_SYSTEM + ' v2');
    const b2 = (await client.post(`/v1/bundles/${bundle.id}/versions`, { members: [first.segments[0]!.source.split('@')[0], sys2.id] })).json;
    t.clock.advance(10 * MIN);
    const a = await renderAnthropic(client, { prefix: [`${b2.id}@2`], messages: [{ role: 'user', content: 'same' }] });
    const b = await renderAnthropic(client, { prefix: [`${b2.id}@2`], messages: [{ role: 'user', content: 'same' }] });
    const start = t.clock.now();
    const total = promptTokens(a);
    const post = (r: typeof a, startedAt: number) =>
      client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(total, 0, r.breakpoints[0]!.token_end), started_at: startedAt, first_byte_at: start + 2000, finished_at: start + 3000 });
    expect((await post(a, start)).status).toBe(201);
    const ob = (await post(b, start + 100)).json.outcome;
    const sysTokens = b.segments[1]!.token_end - b.segments[1]!.token_start;
    expect(ob.segments[1].source).toBe(`${sys2.id}@1`);
    expect(Object.fromEntries(Object.entries(ob.segments[1].classes).filter(([, n]) => (n as number) > 0))).toEqual({ concurrent: sysTokens });
    // It names the call whose write it paid again: started 100 ms before it, readable from its first byte, 1.9 s after.
    expect(ob.concurrent).toEqual({ writer: a.request_id, writer_started_at: start, readable_at: start + 2000 });
    expect((await client.get(`/v1/requests/${b.request_id}`)).json.outcome.concurrent).toEqual(ob.concurrent);
    void sys;
  });

  it('parallel calls the provider read from each other: captured, not bonus, and the write premium read', async () => {
    // A client (the proxy too) sees a call's first byte after the provider sent it, and the next call's start
    // before the provider had it: the second call started before the first's reported first byte, yet the
    // provider read the first one's write. The receipt decides: captured.
    const { client, tools } = await agentSetup();
    const sys2 = await mintSystem(client, LONG_SYSTEM + ' fan-out');
    const b2 = await mintBundle(client, [tools.id, sys2.id]);
    t.clock.advance(MIN);
    const a = await renderAnthropic(client, { prefix: [b2.id], messages: [{ role: 'user', content: 'same' }] });
    const b = await renderAnthropic(client, { prefix: [b2.id], messages: [{ role: 'user', content: 'same' }] });
    const start = t.clock.now();
    const cached = a.breakpoints[0]!.token_end;
    const times = (startedAt: number) => ({ started_at: startedAt, first_byte_at: startedAt + 400, finished_at: startedAt + 900 });
    expect((await client.post('/v1/usage', { request_id: a.request_id, usage: anthropicUsage(promptTokens(a), 0, cached), ...times(start) })).status).toBe(201);
    const ob = (await client.post('/v1/usage', { request_id: b.request_id, usage: anthropicUsage(promptTokens(b), cached, 0), ...times(start + 100) })).json.outcome;
    const sysTokens = b.segments[1]!.token_end - b.segments[1]!.token_start;
    expect(classesOf(ob, `${sys2.id}@1`)).toEqual({ captured: sysTokens });
    expect(ob.predicted.read).toBe(cached);
    const report = (await client.get(`/v1/reports/handles/${sys2.id}`)).json;
    expect(report.tokens.bonus).toBe(0);
    expect(report.tokens.captured).toBe(sysTokens);
    // The first call's premium was worth paying: read, neither pending nor unread.
    expect(report.money.write_premiums_paid).toBeGreaterThan(0);
    expect([report.money.write_premiums_pending, report.money.write_premiums_unread]).toEqual([0, 0]);
  });

  it('two late readers of a write past its TTL, reconciled together while a report is read: the premium is read once', async () => {
    // A write of the system prompt and a document; two calls read it within its 5 minutes, one the system prompt, the
    // other both, and are reported ten minutes later, together (their group commit not yet in the database when the
    // second is reconciled), while the dashboard reads a report — which drops writes past their TTL from the pending
    // ones. The second reader must not find the write as the database still had it: the system prompt's premium
    // would count as read twice, and the write's unread premium elsewhere on the same rows be hidden.
    const { client, id: tenantId } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const doc = await mintArtifact(client, 'document', 'Returns policy. '.repeat(300));
    const ask = (prefix: string[]) => renderAnthropic(client, { prefix, messages: [{ role: 'user', content: 'q' }] });
    const times = (at: number) => ({ started_at: at, first_byte_at: at + 200, finished_at: at + 500 });
    const w = await ask([sys.id, doc.id]);
    await client.post('/v1/usage', { request_id: w.request_id, usage: anthropicUsage(promptTokens(w), 0, promptTokens(w)), ...times(t.clock.now()) });
    t.clock.advance(30_000);
    const r1 = await ask([sys.id]);
    const at1 = t.clock.now();
    t.clock.advance(30_000);
    const r2 = await ask([sys.id, doc.id]);
    const at2 = t.clock.now();
    expect([r1.prediction.read_tokens, r2.prediction.read_tokens]).toEqual([r1.breakpoints[0]!.token_end, w.breakpoints[1]!.token_end]);
    t.clock.advance(10 * MIN);
    const money = async (id: string) => (await client.get(`/v1/reports/handles/${id}`)).json.money;
    expect((await money(sys.id)).write_premiums_unread).toBeGreaterThan(0);
    const reportOf = (r: Rendered, at: number) => ({ request_id: r.request_id, usage: anthropicUsage(promptTokens(r), r.prediction.read_tokens, 0), ...times(at) });
    const first = t.services.reconciler.ingest(tenantId, reportOf(r1, at1));
    t.services.reports.tenant(tenantId, {}, t.clock.now());
    const second = t.services.reconciler.ingest(tenantId, reportOf(r2, at2));
    await Promise.all([first, second]);
    // Each part of the write read once: nothing unread, nothing read twice.
    for (const id of [sys.id, doc.id]) expect((await money(id)).write_premiums_unread, id).toBe(0);
    const rows = t.sqlite.prepare("select handle_id, write_premium_paid as paid, write_premium_read as read from rollups where handle_id != '*'").all() as Array<{ paid: number; read: number }>;
    for (const row of rows) expect(row.read).toBeCloseTo(row.paid, 12);
  });

  it('a parallel call without cache fields settles nothing: a later one whose provider wrote again is still concurrent', async () => {
    const { client, tools } = await agentSetup();
    const sys2 = await mintSystem(client, LONG_SYSTEM + ' receiptless');
    const b2 = await mintBundle(client, [tools.id, sys2.id]);
    t.clock.advance(MIN);
    const fan = () => renderAnthropic(client, { prefix: [b2.id], messages: [{ role: 'user', content: 'same' }] });
    const [a, c, d] = [await fan(), await fan(), await fan()];
    const start = t.clock.now();
    const cached = a.breakpoints[0]!.token_end;
    const times = (startedAt: number) => ({ started_at: startedAt, first_byte_at: startedAt + 400, finished_at: startedAt + 900 });
    expect((await client.post('/v1/usage', { request_id: a.request_id, usage: anthropicUsage(promptTokens(a), 0, cached), ...times(start) })).status).toBe(201);
    // No cache fields: its capture is unknown, not a leak, and it shows nothing about the first write.
    const oc = (await client.post('/v1/usage', { request_id: c.request_id, usage: { input_tokens: promptTokens(c), output_tokens: 5 }, ...times(start + 100) })).json.outcome;
    expect(oc.capture).toBe('unknown');
    expect(Object.keys(classesOf(oc, `${sys2.id}@1`))).toEqual(['unknown']);
    const od = (await client.post('/v1/usage', { request_id: d.request_id, usage: anthropicUsage(promptTokens(d), 0, cached), ...times(start + 200) })).json.outcome;
    expect(Object.keys(classesOf(od, `${sys2.id}@1`))).toEqual(['concurrent']);
  });

  it('reports sent late without times: the provider receipt tells a read write from a concurrent one', async () => {
    const { client, sys, bundle } = await agentSetup();
    const turn = (n: number) => renderAnthropic(client, { prefix: [bundle.id], messages: [{ role: 'user', content: `t${n}` }] });
    const send = (r: Rendered, read: number, write: number) => client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(promptTokens(r), read, write) });
    const sysTokens = (r: Rendered) => r.segments[1]!.token_end - r.segments[1]!.token_start;
    // A queue worker reports both calls 90 s after the first one, with no times: each call's end is unknown
    // to us up to the report's receipt, so the first call may have been answering when the second started.
    const r1 = await turn(1);
    const cached = r1.breakpoints[0]!.token_end;
    t.clock.advance(MIN);
    const r2 = await turn(2);
    t.clock.advance(30_000);
    expect((await send(r1, 0, cached)).status).toBe(201);
    // The provider read the first call's write: it was answering by then. Captured, not bonus.
    const o2 = (await send(r2, cached, 0)).json.outcome;
    expect(classesOf(o2, `${sys.id}@1`)).toEqual({ captured: sysTokens(r2) });
    expect(o2.predicted.read).toBe(cached);

    // The same, but the provider wrote it again: the second call started before the first answered (concurrent).
    const sys2 = await mintSystem(client, LONG_SYSTEM + ' v2');
    const b2 = await mintBundle(client, [r1.segments[0]!.source.split('@')[0]!, sys2.id]);
    const fan = () => renderAnthropic(client, { prefix: [b2.id], messages: [{ role: 'user', content: 'same' }] });
    t.clock.advance(10 * MIN);
    const a = await fan();
    const b = await fan();
    t.clock.advance(5_000);
    await send(a, 0, a.breakpoints[0]!.token_end);
    const ob = (await send(b, 0, b.breakpoints[0]!.token_end)).json.outcome;
    expect(classesOf(ob, `${sys2.id}@1`)).toEqual({ concurrent: sysTokens(b) });
  });

  it('more than 20 blocks appended in one turn: the previous breakpoint is out of lookback', async () => {
    const { client, bundle } = await agentSetup();
    const ses = (await client.post('/v1/sessions', { base: bundle.id, messages: [{ role: 'user', content: 'start' }] })).json;
    const r1 = await renderAnthropic(client, { prefix: [ses.id], messages: [{ role: 'user', content: 'q1' }] });
    const w1 = r1.breakpoints[r1.breakpoints.length - 1]!.token_end;
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, w1));
    // 24 single-block messages in one append: the new end is 24 blocks past what turn 1 wrote.
    const batch = Array.from({ length: 24 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `step ${i}` }));
    await client.post(`/v1/sessions/${ses.id}/messages`, { messages: batch });
    t.clock.advance(MIN);
    const r2 = await renderAnthropic(client, { prefix: [ses.id], messages: [{ role: 'user', content: 'q2' }] });
    // The service marks the previous batch's end too, so the read still lands there.
    expect(r2.breakpoints.map((b) => r2.segments[b.segment]!.source)).toContain(`${ses.id}@1`);
    expect(r2.prediction.read_tokens).toBe(w1);
    // A caller who spends three breakpoints on its own last message leaves one slot: the new end only.
    const own = ['a', 'b', 'c'].map((x) => ({ type: 'text', text: x, cache_control: { type: 'ephemeral' } }));
    const r3 = await renderAnthropic(client, { prefix: [ses.id], messages: [{ role: 'user', content: own }] });
    expect(r3.breakpoints.filter((b) => b.set_by === 'service').map((b) => r3.segments[b.segment]!.source)).toEqual([`${ses.id}@2`]);
    const o3 = (await report(client, t, r3, anthropicUsage(promptTokens(r3), 0, promptTokens(r3)))).outcome;
    const ses1 = r3.segments.find((x) => x.source === `${ses.id}@1`)!;
    expect(classesOf(o3, `${ses.id}@1`)).toEqual({ lookback: ses1.token_end - ses1.token_start });
  });

  it('a provider that confirms less than predicted (unconfirmed) and more (bonus)', async () => {
    const { client, sys, bundle } = await agentSetup();
    const turn = (n: number) => renderAnthropic(client, { prefix: [bundle.id], messages: [{ role: 'user', content: `t${n}` }] });
    const r1 = await turn(1);
    const cached = r1.breakpoints[0]!.token_end;
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, cached));
    t.clock.advance(MIN);
    const r2 = await turn(2);
    const o2 = (await report(client, t, r2, anthropicUsage(promptTokens(r2), 0, cached))).outcome;
    const sysTokens = r2.segments[1]!.token_end - r2.segments[1]!.token_start;
    expect(classesOf(o2, `${sys.id}@1`)).toEqual({ unconfirmed: sysTokens });

    // A fresh tenant's very first request, read from a cache warmed by traffic we did not see.
    const other = await agentSetup();
    const r3 = await renderAnthropic(other.client, { prefix: [other.bundle.id], messages: [{ role: 'user', content: 'x' }] });
    const o3 = (await report(other.client, t, r3, anthropicUsage(promptTokens(r3), r3.breakpoints[0]!.token_end, 0))).outcome;
    expect(classesOf(o3, `${other.sys.id}@1`)).toEqual({ bonus: r3.segments[1]!.token_end - r3.segments[1]!.token_start });
    const rep = (await other.client.get(`/v1/reports/handles/${other.bundle.id}`)).json;
    expect(rep.tokens.bonus).toBe(r3.breakpoints[0]!.token_end);
  });

  it('a usage report without cache fields is unknown, never a 0% hit', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const turn = (n: number) => client.post('/v1/render', { format: 'openai-chat', request: { model: 'gpt-4o', prefix: [sys.id], messages: [{ role: 'user', content: `q${n}` }] } });
    const r1 = (await turn(1)).json;
    const total = r1.segments[r1.segments.length - 1].token_end;
    // vLLM without prompt_tokens_details: no cache fields at all.
    await client.post('/v1/usage', { request_id: r1.request_id, response: { id: 'x', object: 'chat.completion', model: 'gpt-4o', choices: [], usage: { prompt_tokens: total, completion_tokens: 5, total_tokens: total + 5 } } });
    t.clock.advance(MIN);
    const r2 = (await turn(2)).json;
    const res = await client.post('/v1/usage', { request_id: r2.request_id, usage: { prompt_tokens: total, completion_tokens: 5, total_tokens: total + 5 } });
    expect(res.json.outcome.capture).toBe('unknown');
    const seg = res.json.outcome.segments[0];
    expect(seg.classes.unknown).toBeGreaterThan(0);
    expect(seg.classes.captured + seg.classes.unconfirmed).toBe(0);
    const rep = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
    expect(rep.tokens.captured).toBe(0);
    expect(rep.tokens.unknown).toBe(seg.classes.unknown);
    expect(rep.requests_with.unknown).toBe(1);
  });

  it('a self-hosted vLLM model on the OpenAI chat format: its own rules (16-token blocks) and price (free), flagged when not in the catalog', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, 'You answer from the handbook, briefly. '.repeat(12));
    const turn = (n: number) => client.post('/v1/render', { format: 'openai-chat', request: { model: 'Qwen/Qwen2.5-7B-Instruct', prefix: [sys.id], messages: [{ role: 'user', content: `q${n}` }] } });
    const r1 = (await turn(1)).json;
    expect(r1.model).toEqual({ name: 'Qwen/Qwen2.5-7B-Instruct', catalog_entry: 'vllm', fallback: true });
    expect(r1.warnings.map((w: { code: string }) => w.code)).not.toContain('below_minimum');
    const total = promptTokens(r1);
    const usage = (read: number) => ({ prompt_tokens: total, completion_tokens: 5, total_tokens: total + 5, prompt_tokens_details: { cached_tokens: read } });
    await report(client, t, r1, usage(0));
    t.clock.advance(MIN);
    const r2 = (await turn(2)).json;
    // A prompt of a few hundred tokens is cached (GPT's minimum is 1,024), read in whole 16-token blocks.
    const sysTokens = r2.segments[0].token_end;
    expect(r2.prediction.read_tokens).toBe(Math.floor(sysTokens / 16) * 16);
    const o = (await report(client, t, r2, usage(r2.prediction.read_tokens))).outcome;
    const all = (cls: string) => o.segments.reduce((n, seg) => n + (seg.classes[cls] ?? 0), 0);
    expect(all('captured')).toBe(r2.prediction.read_tokens);
    expect(all('bonus') + all('unconfirmed')).toBe(0);
    // Self-hosted: no money either way.
    const rep = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
    expect(rep.money).toMatchObject({ actual_input_cost: 0, realised_savings: 0, leaked_savings: 0 });
  });

  it("a self-hosted model counts with its own tokenizer, not OpenAI's: a handle's span scales to its total, so a read ending at the handle is captured, not bonus on the question after it", async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const turn = (n: number) => client.post('/v1/render', { format: 'openai-chat', request: { model: 'Qwen/Qwen2.5-7B-Instruct', prefix: [sys.id], messages: [{ role: 'user', content: `Where is order ${n}?` }] } });
    // The server's tokenizer counts 8% more than the cl100k estimate (a Qwen or Llama tokenizer is not OpenAI's).
    const theirs = (n: number) => Math.round(n * 1.08);
    const r1 = (await turn(1)).json as Rendered;
    expect(r1.segments[0]!.tokens_estimated).toBe(true);
    const usage = (total: number, read: number) => ({ prompt_tokens: total, completion_tokens: 5, total_tokens: total + 5, prompt_tokens_details: { cached_tokens: read } });
    await report(client, t, r1, usage(theirs(promptTokens(r1)), 0));
    t.clock.advance(MIN);
    const r2 = (await turn(2)).json as Rendered;
    // vLLM reads whole 16-token blocks of the system prompt, as its own tokenizer counts it.
    const read = Math.floor(theirs(r2.segments[0]!.token_end) / 16) * 16;
    const o = (await report(client, t, r2, usage(theirs(promptTokens(r2)), read))).outcome;
    expect(o.segments[0]!.end).toBe(theirs(r2.segments[0]!.token_end));
    expect(classesOf(o, `${sys.id}@1`).captured).toBe(read);
    expect(o.segments.reduce((n, s) => n + s.classes.bonus!, 0)).toBe(0);
  });

  it("a Gemini model on the OpenAI chat format (Gemini's OpenAI compatibility endpoint): Gemini's rules and prices, no prompt_cache_key", async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const turn = (n: number) => client.post('/v1/render', { format: 'openai-chat', request: { model: 'gemini-2.5-flash', prefix: [sys.id], messages: [{ role: 'user', content: `q${n}` }] } });
    const r1 = (await turn(1)).json;
    // It was GPT-5's fallback entry: flagged unknown, priced at $1.25 for Gemini's $0.30, and sent a prompt_cache_key.
    expect(r1.model).toEqual({ name: 'gemini-2.5-flash', catalog_entry: 'gemini-2.5-flash', fallback: false });
    expect(r1.prompt_cache_key).toBeNull();
    expect(r1.body).not.toHaveProperty('prompt_cache_key');
    const total = promptTokens(r1);
    const usage = (read: number) => ({ prompt_tokens: total, completion_tokens: 5, total_tokens: total + 5, prompt_tokens_details: { cached_tokens: read } });
    await report(client, t, r1, usage(0));
    t.clock.advance(MIN);
    const r2 = (await turn(2)).json;
    const read = r2.segments[0].token_end;
    await report(client, t, r2, usage(read));
    const rep = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
    expect(rep.tokens).toMatchObject({ cold: read, captured: read });
    // Gemini 2.5 Flash: $0.30 a million input tokens, reads at 0.1x.
    expect(rep.money.cost_without_caching).toBeCloseTo((2 * read * 0.3) / 1e6, 6);
    expect(rep.money.actual_input_cost).toBeCloseTo((read * 0.3 + read * 0.03) / 1e6, 6);
  });

  it('a report without a prompt total (a Gemini usageMetadata with no promptTokenCount): the estimates by the model’s calibration, said in the outcome', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const turn = (n: number) => client.post('/v1/render', { format: 'gemini', request: { model: 'gemini-2.5-flash', prefix: [sys.id], contents: [{ role: 'user', parts: [{ text: `question ${n}` }] }] } });
    // Before any total: the estimates as they are.
    const r0 = (await turn(0)).json as Rendered;
    const bare = await report(client, t, r0, { candidatesTokenCount: 5 });
    expect(bare.outcome.capture).toBe('unknown');
    expect(bare.outcome).not.toHaveProperty('calibrated_by');
    expect(bare.outcome.segments[0]!.end).toBe(r0.segments[0]!.token_end);
    t.clock.advance(MIN);
    // The provider counts 70% of the estimate: calibration learns 0.7.
    const r1 = (await turn(1)).json as Rendered;
    const counted = Math.round(promptTokens(r1) * 0.7);
    await report(client, t, r1, { promptTokenCount: counted, candidatesTokenCount: 5 });
    t.clock.advance(MIN);
    const r2 = (await turn(2)).json as Rendered;
    const res = await report(client, t, r2, { candidatesTokenCount: 5 });
    const ratio = counted / promptTokens(r1);
    expect(res.outcome.capture).toBe('unknown');
    expect((res.outcome as { calibrated_by?: number }).calibrated_by).toBeCloseTo(ratio, 4);
    const seg = res.outcome.segments[0]!;
    expect(seg.end - seg.start).toBe(Math.round(r2.segments[0]!.token_end * ratio));
    // Shown in the request, as stored.
    expect((await client.get(`/v1/requests/${r2.request_id}`)).json.outcome.calibrated_by).toBeCloseTo(ratio, 4);
  });

  it("the provider's framing of messages is theirs: a few-shot artifact and the same session batch are fitted alike, the system prompt keeps its exact count", async () => {
    const { client } = t.tenant();
    const fewShot = Array.from({ length: 20 }, (_, i) => [
      { role: 'user', content: `Where is order ${1000 + i}?` },
      { role: 'assistant', content: `Order ${1000 + i} is at depot ${i % 7}.` },
    ]).flat();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const lens: number[][] = [];
    for (const ref of [(await mintArtifact(client, 'messages', fewShot)).id, (await startSession(client, { messages: fewShot })).id]) {
      const r = (await client.post('/v1/render', { format: 'openai-chat', request: { model: 'gpt-4.1', prefix: [sys.id, ref], messages: [{ role: 'user', content: 'And order 1003?' }] } })).json as Rendered;
      // The provider counts 160 tokens more than our estimate: its per-message framing (40 messages).
      const total = promptTokens(r) + 160;
      const o = (await report(client, t, r, { prompt_tokens: total, completion_tokens: 5, total_tokens: total + 5, prompt_tokens_details: { cached_tokens: 0 } })).outcome;
      lens.push(o.segments.map((seg) => seg.end - seg.start));
      expect(lens.at(-1)![0]).toBe(r.segments[0]!.token_end - r.segments[0]!.token_start);
      t.clock.advance(3 * 60 * MIN);
    }
    expect(lens[0]).toEqual(lens[1]);
    // The messages take most of it, as their share of the estimate: the short question is not inflated many times.
    expect(lens[0]![2]!).toBeLessThan(40);
  });

  it('a model without a prompt cache: its repeats are below_minimum, never expired', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const turn = async (n: number) => (await client.post('/v1/render', { format: 'openai-chat', request: { model: 'gpt-4-turbo', prefix: [sys.id], messages: [{ role: 'user', content: `q${n}` }] } })).json as Rendered;
    const send = (r: Rendered) => report(client, t, r, { prompt_tokens: promptTokens(r), completion_tokens: 3, total_tokens: promptTokens(r) + 3, prompt_tokens_details: { cached_tokens: 0 } });
    await send(await turn(1));
    t.clock.advance(MIN);
    const r2 = await turn(2);
    expect(r2.prediction.read_tokens).toBe(0);
    expect(classesOf((await send(r2)).outcome, `${sys.id}@1`)).toEqual({ below_minimum: r2.segments[0]!.token_end });
  });

  it('Gemini: a usageMetadata without cachedContentTokenCount is a miss (proto3 drops zeros), not unknown', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM + LONG_SYSTEM);
    const turn = async (n: number) => {
      const res = await client.post('/v1/render', { format: 'gemini', model: 'gemini-2.5-flash', request: { prefix: [sys.id], contents: [{ role: 'user', parts: [{ text: `q${n}` }] }] } });
      expect(res.status, res.text).toBe(200);
      return res.json as Rendered;
    };
    const send = (r: Rendered, cached?: number) =>
      report(client, t, r, { promptTokenCount: promptTokens(r), candidatesTokenCount: 3, totalTokenCount: promptTokens(r) + 3, ...(cached ? { cachedContentTokenCount: cached } : {}) });
    await send(await turn(1));
    t.clock.advance(MIN);
    const r2 = await turn(2);
    const sysTokens = r2.segments[0]!.token_end;
    expect(r2.prediction.read_tokens).toBeGreaterThan(0);
    const o2 = (await send(r2)).outcome;
    expect(o2.capture).toBe('reported');
    expect(classesOf(o2, `${sys.id}@1`)).toEqual({ unconfirmed: sysTokens });
    t.clock.advance(MIN);
    const r3 = await turn(3);
    expect(classesOf((await send(r3, sysTokens)).outcome, `${sys.id}@1`)).toEqual({ captured: sysTokens });
    const rep = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
    expect(rep.tokens.unknown).toBe(0);
    expect(rep.capture_rate).toBe(0.5);
  });

  it('a screenshot in the turn is counted as Anthropic bills it (by pixels), so the system prompt beside it keeps its size and is captured whole', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const turn = (n: number) =>
      renderAnthropic(client, {
        system: [{ type: 'handle', ref: sys.id }],
        messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: png(1200, 800, 220_000).toString('base64') } }, { type: 'text', text: `What changed on screen ${n}?` }] }],
      });
    const r1 = await turn(1);
    const sysTokens = r1.segments[0]!.token_end;
    const image = r1.segments[1]!;
    // 1200 × 800 / 750 = 1,280 tokens and the text beside it, not ~350,000 tokens of base64.
    expect(image.token_end - image.token_start).toBeGreaterThan(1280);
    expect(image.token_end - image.token_start).toBeLessThan(1400);
    // The provider's own figures: the system prompt written, then read; the image and question uncached.
    const usage = (r: Rendered, read: number, write: number) => anthropicUsage(sysTokens + 1310, read, write);
    expect(classesOf((await report(client, t, r1, usage(r1, 0, sysTokens))).outcome, `${sys.id}@1`)).toEqual({ cold: sysTokens });
    t.clock.advance(MIN);
    const r2 = await turn(2);
    expect(r2.prediction.read_tokens).toBe(sysTokens);
    expect(classesOf((await report(client, t, r2, usage(r2, sysTokens, 0))).outcome, `${sys.id}@1`)).toEqual({ captured: sysTokens });
    expect((await client.get(`/v1/reports/handles/${sys.id}`)).json.capture_rate).toBe(1);
  });

  it('Gemini: a read that ends inside a segment leaves it its length, partly captured, and moves nothing onto the segment after it', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM + LONG_SYSTEM);
    const turn = async (n: number) => (await client.post('/v1/render', { format: 'gemini', model: 'gemini-2.5-flash', request: { prefix: [sys.id], contents: [{ role: 'user', parts: [{ text: `question ${n}` }] }] } })).json as Rendered;
    const send = (r: Rendered, cached: number) => report(client, t, r, { promptTokenCount: promptTokens(r), candidatesTokenCount: 3, totalTokenCount: promptTokens(r) + 3, cachedContentTokenCount: cached });
    await send(await turn(1), 0);
    t.clock.advance(MIN);
    const r2 = await turn(2);
    const sysTokens = r2.segments[0]!.token_end;
    // Gemini read 1.7% less than the system prompt (a fan-out's 5,300 of 5,391): the spans are the estimate's,
    // scaled to the provider's total, and the read covers them in order. Taken for the whole prefix, the system
    // prompt shrank onto the read and its tail went to the question after it (91 cold tokens on a short question).
    const short2 = sysTokens - Math.round(sysTokens * 0.017);
    const o2 = (await send(r2, short2)).outcome;
    const system = o2.segments.find((s) => s.source === `${sys.id}@1`)!;
    expect(system.end - system.start).toBe(sysTokens);
    expect(classesOf(o2, `${sys.id}@1`)).toEqual({ captured: short2, unconfirmed: sysTokens - short2 });
    const question = o2.segments.find((s) => s.source === 'inline')!;
    expect(question.end - question.start).toBe(r2.segments[1]!.token_end - r2.segments[1]!.token_start);
    expect(Object.keys(classesOf(o2, 'inline'))).toEqual(['cold']);
    // Short by more, the same: the rest is unconfirmed.
    t.clock.advance(MIN);
    const r3 = await turn(3);
    const short = Math.floor(sysTokens * 0.8);
    expect(classesOf((await send(r3, short)).outcome, `${sys.id}@1`)).toMatchObject({ captured: short, unconfirmed: sysTokens - short });
  });

  it("a provider that counts tokens its own way: its read ends on the breakpoint, not a few tokens into the next segment", async () => {
    const { client, sys } = await agentSetup();
    const turn = (n: number) => renderAnthropic(client, { system: [{ type: 'handle', ref: sys.id }], messages: [{ role: 'user', content: `question ${n}` }] });
    // The provider counts 3% more in the system prompt than we estimate, and the same in the question: its
    // breakpoint sits 3% later, which scaling the whole prompt to its total does not quite reproduce.
    const counts = (r: Rendered) => {
      const cached = r.breakpoints[0]!.token_end;
      const provider = Math.round(cached * 1.03);
      return { cached: provider, total: provider + (promptTokens(r) - cached) + 9 };
    };
    const r1 = await turn(1);
    const c1 = counts(r1);
    await report(client, t, r1, anthropicUsage(c1.total, 0, c1.cached));
    t.clock.advance(MIN);
    const r2 = await turn(2);
    const c2 = counts(r2);
    const o2 = (await report(client, t, r2, anthropicUsage(c2.total, c2.cached, 0))).outcome;
    // The system prompt is read whole and nothing else: no bonus spilling onto the question, nothing unconfirmed.
    expect(classesOf(o2, `${sys.id}@1`)).toEqual({ captured: c2.cached });
    expect(Object.keys(classesOf(o2, 'inline'))).toEqual(['cold']);
    expect(o2.segments.at(-1)!.end).toBe(c2.total);
    const rep = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
    expect([rep.tokens.captured, rep.tokens.bonus, rep.tokens.unconfirmed, rep.capture_rate]).toEqual([c2.cached, 0, 0, 1]);
  });

  it('OpenAI: an inline segment the estimate gets wrong takes the difference; the counted system prompt keeps its size', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    // Digits: o200k counts them about 1.6 times the ~4-bytes-a-token estimate.
    const rows = (n: number) => Array.from({ length: 300 }, (_, i) => `row ${i}: parcel ${i * 7 + n} at depot ${i % 13}`).join('\n');
    const turn = async (n: number) => (await client.post('/v1/render', { format: 'openai-chat', request: { model: 'gpt-4.1', prefix: [sys.id], messages: [{ role: 'user', content: rows(n) }] } })).json as Rendered;
    const counted = (r: Rendered) => r.segments[0]!.token_end;
    const send = (r: Rendered, cached: number) => {
      const total = counted(r) + Math.round((promptTokens(r) - counted(r)) * 1.6);
      return report(client, t, r, { prompt_tokens: total, completion_tokens: 3, total_tokens: total + 3, prompt_tokens_details: { cached_tokens: cached } });
    };
    const r1 = await turn(1);
    expect(r1.segments[0]!.tokens_estimated).toBe(false);
    await send(r1, 0);
    t.clock.advance(MIN);
    const r2 = await turn(2);
    const sysTokens = counted(r2);
    // OpenAI caches in 128-token steps: it reads the system prompt's whole steps, and the question differs.
    const read = Math.floor(sysTokens / 128) * 128;
    const o2 = (await send(r2, read)).outcome;
    // Scaled with the question, the system prompt would be stretched past the read and its tail shown as unconfirmed.
    expect(classesOf(o2, `${sys.id}@1`)).toEqual({ captured: read, below_minimum: sysTokens - read });
    expect(o2.segments[0]!.end).toBe(sysTokens);
  });

  it('Anthropic: a read that reaches a block past the simulated one is bonus, even within 10% of it', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const r1 = await renderAnthropic(client, { prefix: [sys.id], messages: [{ role: 'user', content: 'hi' }] });
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, r1.breakpoints[0]!.token_end));
    t.clock.advance(MIN);
    // A marked message we never saw written (another client warmed it): the provider reads through it.
    const earlier = 'Some earlier turn the service never saw reported. '.repeat(15);
    const r2 = await renderAnthropic(client, { prefix: [sys.id], messages: [{ role: 'user', content: [{ type: 'text', text: earlier, cache_control: { type: 'ephemeral' } }] }, { role: 'assistant', content: 'ok' }, { role: 'user', content: 'next' }] });
    const through = r2.breakpoints.find((b) => b.set_by === 'caller')!.token_end;
    const o2 = (await report(client, t, r2, anthropicUsage(promptTokens(r2), through, 0))).outcome;
    const sysTokens = o2.segments[0]!.end;
    expect(classesOf(o2, `${sys.id}@1`)).toEqual({ captured: sysTokens });
    expect(o2.segments.reduce((n, s) => n + (s.classes.bonus ?? 0), 0)).toBe(through - sysTokens);
    expect(o2.predicted.read).toBe(sysTokens);
  });

  it("Anthropic: a provider that read less than the simulation (an evicted entry) leaves the rest unconfirmed, the handle whole", async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const m1 = { role: 'user', content: [{ type: 'text', text: 'First question about the handbook, in detail. '.repeat(60), cache_control: { type: 'ephemeral' } }] };
    const r1 = await renderAnthropic(client, { prefix: [sys.id], messages: [m1] });
    const sysTokens = r1.segments[0]!.token_end;
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, promptTokens(r1)));
    t.clock.advance(MIN);
    const r2 = await renderAnthropic(client, { prefix: [sys.id], messages: [m1, { role: 'assistant', content: 'Answer. '.repeat(20) }, { role: 'user', content: 'Second question.' }] });
    // The provider read only the system prompt: the entry through the first question was evicted.
    const o2 = (await report(client, t, r2, anthropicUsage(promptTokens(r2), sysTokens, promptTokens(r2) - sysTokens))).outcome;
    expect(o2.segments[0]).toMatchObject({ start: 0, end: sysTokens });
    expect(classesOf(o2, `${sys.id}@1`)).toEqual({ captured: sysTokens });
    expect(classesOf(o2, 'inline').unconfirmed).toBeGreaterThan(500);
  });

  it('Anthropic: a provider that read more than the simulation (an earlier message warmed elsewhere) shows bonus; the handle keeps its size', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const r1 = await renderAnthropic(client, { prefix: [sys.id], messages: [{ role: 'user', content: 'hi' }] });
    const sysTokens = r1.segments[0]!.token_end;
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, sysTokens));
    t.clock.advance(MIN);
    const marked = { role: 'user', content: [{ type: 'text', text: 'First question about the handbook, in detail. '.repeat(60), cache_control: { type: 'ephemeral' } }] };
    const r2 = await renderAnthropic(client, { prefix: [sys.id], messages: [marked, { role: 'assistant', content: 'Answer. '.repeat(20) }, { role: 'user', content: 'Second question.' }] });
    const o2 = (await report(client, t, r2, anthropicUsage(promptTokens(r2), sysTokens + 677, 0))).outcome;
    expect(o2.segments[0]).toMatchObject({ start: 0, end: sysTokens });
    expect(classesOf(o2, `${sys.id}@1`)).toEqual({ captured: sysTokens });
    expect(classesOf(o2, 'inline').bonus).toBe(677);
    expect(o2.predicted.read).toBe(sysTokens);
  });

  it("Anthropic: a handle the provider counts 15% below our estimate is still read whole, not partly unconfirmed", async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const q = (n: number) => `Question ${n}: ` + 'please look this up in the handbook for me. '.repeat(250);
    const r1 = await renderAnthropic(client, { prefix: [sys.id], messages: [{ role: 'user', content: q(1) }] });
    const sysReal = Math.round(r1.segments[0]!.token_end * 0.85);
    const question = promptTokens(r1) - r1.segments[0]!.token_end;
    await report(client, t, r1, anthropicUsage(sysReal + question, 0, sysReal));
    t.clock.advance(MIN);
    const r2 = await renderAnthropic(client, { prefix: [sys.id], messages: [{ role: 'user', content: q(2) }] });
    const o2 = (await report(client, t, r2, anthropicUsage(sysReal + question, sysReal, 0))).outcome;
    expect(classesOf(o2, `${sys.id}@1`)).toEqual({ captured: sysReal });
  });

  it.each([false, true])("a session batch keeps the size the provider showed when it was written: later reads do not shift tokens between segments (restart before the read: %s)", async (restart) => {
    const dir = mkdtempSync(join(tmpdir(), 'ph-ends-'));
    t.close();
    t = createTestApp({ databasePath: join(dir, 'db.sqlite') });
    let { client, key, bundle } = await agentSetup();
    const session = await startSession(client, { base: bundle.id, messages: [{ role: 'user', content: 'Where is my order 1?' }, { role: 'assistant', content: 'It left the warehouse.' }] });
    let version = session.version;
    // The provider counts each segment a little longer than our estimate, by a different share each.
    const real = (r: Rendered) => r.segments.map((seg, i) => Math.round((seg.token_end - seg.token_start) * (i === 0 ? 1.3 : 1.05)) + (seg.source === 'inline' ? 0 : 7));
    const ends = (sizes: number[]) => sizes.map((_, i) => sizes.slice(0, i + 1).reduce((a, b) => a + b, 0));
    const outcomes: Array<{ r: Rendered; sizes: number[]; o: Awaited<ReturnType<typeof report>>['outcome'] }> = [];
    for (let turn = 2; turn <= 4; turn++) {
      const r = await renderAnthropic(client, { prefix: [session.id], messages: [{ role: 'user', content: `Where is my order ${turn}?` }] });
      const sizes = real(r);
      const e = ends(sizes);
      const batches = r.segments.map((seg, i) => [seg.source, i] as const).filter(([src]) => src.startsWith(`${session.id}@`));
      const last = batches.at(-1)![1];
      // The provider read up to the previous batch (what the last turn wrote) and wrote the newest one.
      const read = turn === 2 ? 0 : e[last - 1]!;
      const o = (await report(client, t, r, anthropicUsage(e.at(-1)!, read, e[last]! - read))).outcome;
      outcomes.push({ r, sizes, o });
      const append = await client.post(`/v1/sessions/${session.id}/messages`, { messages: [{ role: 'user', content: `Where is my order ${turn}?` }, { role: 'assistant', content: `Order ${turn} ships today.` }] }, { 'if-match': `"${version}"` });
      expect(append.status, append.text).toBe(201);
      version = append.json.version;
      t.clock.advance(MIN);
      // The ends learned so far must come back from the database: the read after a restart depends on them.
      if (restart && turn === 3) {
        await t.services.writes.idle();
        t.close();
        t = createTestApp({ databasePath: join(dir, 'db.sqlite'), clock: t.clock });
        client = clientFor(t.app, key);
      }
    }
    // Turn 3 wrote batch 2 (measured: its read and write ends); turn 4 read it. Its tokens are the same in both,
    // and exactly what the provider wrote, not a share of a rescaled total.
    const batch2 = `${session.id}@2`;
    const size = (o: (typeof outcomes)[number]['o']) => {
      const seg = o.segments.find((s) => s.source === batch2)!;
      return seg.end - seg.start;
    };
    const written = outcomes[1]!.sizes[outcomes[1]!.r.segments.findIndex((s) => s.source === batch2)]!;
    expect(size(outcomes[1]!.o)).toBe(written);
    expect(size(outcomes[2]!.o)).toBe(written);
    expect(classesOf(outcomes[2]!.o, batch2)).toEqual({ captured: written });
    t.close();
    t = createTestApp();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a provider total far from the rendered estimate is flagged and left out of calibration', async () => {
    const { client, sys, key } = await agentSetup();
    const uiPage = async (id: string) => (await t.app.request(`/ui/requests/${id}`, { headers: { cookie: `ph_ui_key=${key}` } })).text();
    const turn = (n: number) => renderAnthropic(client, { system: [{ type: 'handle', ref: sys.id }], messages: [{ role: 'user', content: `q${n}` }] });
    // Within tens of percent of the estimate: calibrated by, nothing flagged.
    const r1 = await turn(1);
    const estimate = promptTokens(r1);
    expect(estimate).toBeGreaterThan(2048);
    const near = Math.round(estimate * 1.3);
    const o1 = (await report(client, t, r1, anthropicUsage(near, 0, 0))).outcome as Record<string, unknown>;
    expect(o1.total_mismatch).toBeUndefined();
    // Three times the estimate: another prompt than the one rendered.
    t.clock.advance(MIN);
    const r2 = await turn(2);
    const far = (await report(client, t, r2, anthropicUsage(estimate * 3, 0, 0))).outcome as Record<string, any>;
    expect(far.total_mismatch).toEqual({ estimated: estimate, reported: estimate * 3, ratio: 3 });
    // Attribution is still scaled to the provider's total.
    expect(far.segments.at(-1).end).toBe(estimate * 3);
    // Calibration counts the first report only.
    const described = (await client.get(`/v1/handles/${sys.id}`)).json;
    expect(described.calibrated_tokens).toMatchObject([{ model: 'claude-sonnet-4-5', reports: 1, ratio: Math.round((near / estimate) * 1e4) / 1e4 }]);
    // The request's page says so.
    expect(await uiPage(r2.request_id)).toContain('data-warning="total_mismatch"');
    expect(await uiPage(r1.request_id)).not.toContain('data-warning="total_mismatch"');
  });

  it('a Responses call continuing a kept conversation whose provider total is far under the estimate: no history explains it, flagged as a mismatch', async () => {
    const { client, sys } = await agentSetup();
    const render = async (input: string) => {
      const res = await client.post('/v1/render', { format: 'openai-responses', request: { model: 'gpt-4.1', prefix: [sys.id], input, previous_response_id: 'resp_1' } });
      expect(res.status, res.text).toBe(200);
      return res.json as Rendered;
    };
    const usage = (input: number) => ({ input_tokens: input, input_tokens_details: { cached_tokens: 0 }, output_tokens: 5, total_tokens: input + 5 });
    const r1 = await render('q1');
    const estimate = promptTokens(r1);
    expect(estimate).toBeGreaterThan(2048);
    // Over the estimate: the difference is the history OpenAI keeps, not a mismatch.
    const o1 = (await report(client, t, r1, usage(estimate + 3000))).outcome as Record<string, any>;
    expect(o1.provider_history).toMatchObject({ field: 'previous_response_id', tokens: 3000 });
    expect(o1.total_mismatch).toBeUndefined();
    // A third of the estimate: no history explains a total under the rendered part (another prompt was counted).
    t.clock.advance(MIN);
    const r2 = await render('q2');
    const low = Math.round(promptTokens(r2) / 3);
    const o2 = (await report(client, t, r2, usage(low))).outcome as Record<string, any>;
    expect(o2.total_mismatch).toEqual({ estimated: promptTokens(r2), reported: low, ratio: Math.round((low / promptTokens(r2)) * 1e4) / 1e4 });
    expect(o2.provider_history).toMatchObject({ tokens: 0 });
    expect(o2.segments.at(-1).end).toBe(low);
  });

  it('the mismatch thresholds: under half or over twice, and more than 1,024 tokens away', () => {
    expect(totalMismatch(10_000, 5_000)).toBeNull();
    expect(totalMismatch(10_000, 4_999)).toEqual({ estimated: 10_000, reported: 4_999, ratio: 0.4999 });
    expect(totalMismatch(10_000, 20_000)).toBeNull();
    expect(totalMismatch(10_000, 20_001)).toMatchObject({ ratio: 2.0001 });
    // Small prompts: a provider's framing (a tool-use system prompt) is not a mismatch.
    expect(totalMismatch(300, 1_300)).toBeNull();
    expect(totalMismatch(300, 1_325)).toMatchObject({ reported: 1_325 });
    expect(totalMismatch(0, 2_000)).toEqual({ estimated: 0, reported: 2_000, ratio: null });
  });
});
