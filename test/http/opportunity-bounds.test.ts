// Opportunity bounds capture: a read never counts as captured on content the scope had not referenced
// before (a reply sent after the question it answers), whatever the provider's rounding or our token estimates;
// and a restart replays the same outcomes. Reproductions from a review, kept.

import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fitLengths } from '../../src/domain/reconcile/attribution';
import { unitLengths } from '../../src/domain/reconcile/scopes';
import { clientFor, createTestApp } from '../helpers/app';
import { FakeClock } from '../helpers/clock';
import { anthropicUsage, LONG_SYSTEM } from '../helpers/scenario';

const A = 'Where is order 1003? Please check the depot records carefully. '.repeat(80);
const B = 'It is at depot 7, shelf 12, awaiting the courier. '.repeat(12);
const C = 'And order 1004? Same depot, please confirm the shelf too. '.repeat(12);

async function run(choose: (endA: number) => boolean) {
  const t = createTestApp();
  const { client } = t.tenant();
  const render = async (messages: object[]) => {
    const res = await client.post('/v1/render', { format: 'openai-chat', request: { model: 'gpt-4.1', messages } });
    expect(res.status, res.text).toBe(200);
    return res.json as { request_id: string };
  };
  const send = async (id: string, total: number, cached: number) => {
    const started = t.clock.now();
    const res = await client.post('/v1/usage', { request_id: id, usage: { prompt_tokens: total, completion_tokens: 3, total_tokens: total + 3, prompt_tokens_details: { cached_tokens: cached } }, started_at: started, first_byte_at: started + 100, finished_at: started + 200 });
    expect(res.status, res.text).toBe(201);
    return res.json.outcome;
  };
  const r1 = await render([{ role: 'user', content: A }]);
  const est1 = t.services.writes.pendingRequest(r1.request_id)!.segments as any[];
  await send(r1.request_id, est1.at(-1).token_end, 0);
  t.clock.advance(60_000);
  const r2 = await render([{ role: 'user', content: A }, { role: 'assistant', content: B }, { role: 'user', content: C }]);
  const segs = t.services.writes.pendingRequest(r2.request_id)!.segments as any[];
  const est = segs.map((s) => s.token_end - s.token_start);
  // Find a provider total that puts A's end where we want it.
  for (let total = est.reduce((a, b) => a + b, 0) - 150; total < est.reduce((a, b) => a + b, 0) + 150; total++) {
    const units = unitLengths(segs, fitLengths(est, segs.map((s) => s.tokens_estimated === false), total));
    const endA = units[0]!;
    if (endA >= 1024 && choose(endA) && endA + 128 < total) {
      const o = await send(r2.request_id, total, 1024 + Math.floor((endA + 128 - 1024) / 128) * 128);
      t.close();
      return { o, endA, total, units, segs: segs.length };
    }
  }
  throw new Error('no total found');
}

describe('OpenAI: a read one step past our estimate of the message it reads', () => {
  it('our end exactly on a step, the read one step past it: the message ends there, the reply captures nothing', async () => {
    const { o, endA, total, units } = await run((e) => (e - 1024) % 128 === 0);
    for (const s of o.segments) expect(s.classes.captured).toBeLessThanOrEqual(s.opportunity);
  });
  it('our end between steps, the read past it within a step: the same', async () => {
    const { o, endA, total } = await run((e) => (e - 1024) % 128 === 5);
    for (const s of o.segments) expect(s.classes.captured).toBeLessThanOrEqual(s.opportunity);
  });
});

const A_LONG = 'Where is order 1003? Please check the depot records carefully. '.repeat(180);

describe('Gemini: an automatic cache without steps', () => {
  it('a read a few tokens past our end of the message it reads: the reply captures nothing', async () => {
    const t = createTestApp();
    const { client } = t.tenant();
    const render = async (contents: object[]) => {
      const res = await client.post('/v1/render', { format: 'gemini', request: { model: 'gemini-2.5-flash', contents } });
      expect(res.status, res.text).toBe(200);
      return res.json as { request_id: string; segments: Array<{ token_end: number }> };
    };
    const send = async (id: string, total: number, cached: number) => {
      const started = t.clock.now();
      const res = await client.post('/v1/usage', { request_id: id, usage: { promptTokenCount: total, candidatesTokenCount: 3, totalTokenCount: total + 3, ...(cached ? { cachedContentTokenCount: cached } : {}) }, started_at: started, first_byte_at: started + 100, finished_at: started + 200 });
      expect(res.status, res.text).toBe(201);
      return res.json.outcome;
    };
    const r1 = await render([{ role: 'user', parts: [{ text: A_LONG }] }]);
    await send(r1.request_id, r1.segments.at(-1)!.token_end, 0);
    t.clock.advance(60_000);
    const r2 = await render([{ role: 'user', parts: [{ text: A_LONG }] }, { role: 'model', parts: [{ text: B }] }, { role: 'user', parts: [{ text: C }] }]);
    const segs = t.services.writes.pendingRequest(r2.request_id)!.segments as any[];
    const est = segs.map((s) => s.token_end - s.token_start);
    const total = est.reduce((a, b) => a + b, 0);
    const units = unitLengths(segs, fitLengths(est, segs.map((s) => s.tokens_estimated === false), total));
    const o = await send(r2.request_id, total, units[0]! + 40);
    for (const s of o.segments) expect(s.classes.captured).toBeLessThanOrEqual(s.opportunity);
    t.close();
  });
});

describe('a scope with more traffic than it remembers', () => {
  it('a prefix the cache still holds is an opportunity, however many others the scope saw since', async () => {
    const t = createTestApp();
    const { client } = t.tenant();
    const render = async (messages: object[]) => {
      const res = await client.post('/v1/render', { format: 'openai-chat', request: { model: 'gpt-4.1', messages } });
      expect(res.status, res.text).toBe(200);
      return res.json as { request_id: string; segments: Array<{ token_end: number }> };
    };
    const send = async (r: { request_id: string; segments: Array<{ token_end: number }> }, cached: number) => {
      const total = r.segments.at(-1)!.token_end;
      const started = t.clock.now();
      const res = await client.post('/v1/usage', { request_id: r.request_id, usage: { prompt_tokens: total, completion_tokens: 3, total_tokens: total + 3, prompt_tokens_details: { cached_tokens: cached } }, started_at: started, first_byte_at: started + 100, finished_at: started + 200 });
      expect(res.status, res.text).toBe(201);
      return res.json.outcome;
    };
    await send(await render([{ role: 'user', content: A }]), 0);
    // Other traffic of the scope, within the TTL: 9 requests of 1000 distinct messages each.
    for (let k = 0; k < 9; k++) {
      t.clock.advance(1000);
      const msgs = Array.from({ length: 1000 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `note ${k}-${i}` }));
      await send(await render(msgs), 0);
    }
    t.clock.advance(1000);
    const r2 = await render([{ role: 'user', content: A }, { role: 'assistant', content: B }, { role: 'user', content: C }]);
    const o = await send(r2, 1024);
    for (const s of o.segments) expect(s.classes.captured).toBeLessThanOrEqual(s.opportunity);
    t.close();
  });
});

const TABLE = Array.from({ length: 300 }, (_, i) => `row ${i}: parcel ${i * 7} at depot ${i % 13}`).join('\n');

async function scenario(restart: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'rv3-'));
  const file = join(dir, 'db.sqlite');
  const clock = new FakeClock();
  let t = createTestApp({ databasePath: file, clock });
  const ten = t.tenant();
  let client = ten.client;
  const history: any[] = [];
  const outs: any[] = [];
  const turns: Array<[string, object]> = [['Where is order 1003?', { tool_choice: { type: 'auto' } }], [TABLE, { tool_choice: { type: 'auto' } }], ['Which depot?', { tool_choice: { type: 'any' } }], ['And 1004?', { tool_choice: { type: 'auto' } }], ['Thanks', { tool_choice: { type: 'any' } }]];
  for (const [i, [q, extra]] of turns.entries()) {
    if (restart && i === 3) {
      t.close();
      t = createTestApp({ databasePath: file, clock });
      client = clientFor(t.app, ten.key);
    }
    history.push({ role: 'user', content: q });
    const messages = history.map((m, k) => (k === history.length - 1 ? { role: m.role, content: [{ type: 'text', text: m.content, cache_control: { type: 'ephemeral' } }] } : m));
    const res = await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 64, system: LONG_SYSTEM, tools: [{ name: 'w', description: 'x', input_schema: { type: 'object' } }], messages, ...extra } });
    expect(res.status, res.text).toBe(200);
    const r = res.json;
    const total = r.segments.at(-1).token_end;
    const read = r.prediction.read_tokens;
    const started = clock.now();
    const u = await client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(total, read, total - read), started_at: started, first_byte_at: started + 100, finished_at: started + 200 });
    expect(u.status, u.text).toBe(201);
    outs.push(u.json.outcome);
    history.push({ role: 'assistant', content: `answer ${i}` });
    clock.advance(60_000);
  }
  t.close();
  rmSync(dir, { recursive: true, force: true });
  return outs;
}

describe('replay after a restart', () => {
  it('gives the outcomes of a continuous run, with tool_choice changing from turn to turn', async () => {
    const a = await scenario(false);
    const b = await scenario(true);
    const strip = (o: any) => o.segments.map((s: any) => ({ opp: s.opportunity, classes: Object.fromEntries(Object.entries(s.classes).filter(([, n]) => (n as number) > 0)) }));
    for (let i = 3; i < a.length; i++) expect(strip(b[i])).toEqual(strip(a[i]));
  });
});
