// Opportunity bounds capture: a read never counts as captured on content the scope had not referenced
// before (a reply sent after the question it answers), whatever the provider's rounding or our token estimates;
// and a restart replays the same outcomes. Reproductions from a review, kept.

import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RenderedSegment } from '../../src/domain/render/request';
import { fitLengths } from '../../src/domain/reconcile/attribution';
import { unitLengths } from '../../src/domain/reconcile/scopes';
import { clientFor, createTestApp, type TestApp } from '../helpers/app';
import { FakeClock } from '../helpers/clock';
import { anthropicUsage, LONG_SYSTEM } from '../helpers/scenario';

const A = 'Where is order 1003? Please check the depot records carefully. '.repeat(80);
const B = 'It is at depot 7, shelf 12, awaiting the courier. '.repeat(12);
const C = 'And order 1004? Same depot, please confirm the shelf too. '.repeat(12);
const TABLE = Array.from({ length: 300 }, (_, i) => `row ${i}: parcel ${i * 7} at depot ${i % 13}`).join('\n');

interface Outcome {
  segments: Array<{ opportunity: number; classes: Record<string, number> }>;
}

/** Renders and reports on one format's body; `usage(total, cached)` is the provider's usage object. */
function calls(t: TestApp, format: string, model: string, usage: (total: number, cached: number) => object) {
  const { client } = t.tenant();
  return {
    async render(request: object): Promise<{ id: string; segments: RenderedSegment[] }> {
      const res = await client.post('/v1/render', { format, request: { model, ...request } });
      expect(res.status, res.text).toBe(200);
      const id = res.json.request_id as string;
      // The stored segments (with their units), as reconciliation reads them.
      return { id, segments: t.services.writes.pendingRequest(id)!.segments as RenderedSegment[] };
    },
    async send(id: string, total: number, cached: number): Promise<Outcome> {
      const started = t.clock.now();
      const res = await client.post('/v1/usage', { request_id: id, usage: usage(total, cached), started_at: started, first_byte_at: started + 100, finished_at: started + 200 });
      expect(res.status, res.text).toBe(201);
      return res.json.outcome as Outcome;
    },
  };
}

const openai = (t: TestApp) =>
  calls(t, 'openai-chat', 'gpt-4.1', (total, cached) => ({ prompt_tokens: total, completion_tokens: 3, total_tokens: total + 3, prompt_tokens_details: { cached_tokens: cached } }));
const gemini = (t: TestApp) =>
  calls(t, 'gemini', 'gemini-2.5-flash', (total, cached) => ({ promptTokenCount: total, candidatesTokenCount: 3, totalTokenCount: total + 3, ...(cached ? { cachedContentTokenCount: cached } : {}) }));

const promptTokens = (segments: RenderedSegment[]) => segments.at(-1)!.token_end;
const estimates = (segments: RenderedSegment[]) => segments.map((s) => s.token_end - s.token_start);
/** The token where the first unit ends once the spans are fitted to a provider total. */
const firstUnitEnd = (segments: RenderedSegment[], total: number) => unitLengths(segments, fitLengths(estimates(segments), segments.map((s) => s.tokens_estimated === false), total))[0]!;

function expectBounded(o: Outcome): void {
  for (const s of o.segments) expect(s.classes.captured).toBeLessThanOrEqual(s.opportunity);
}

/** OpenAI: A, then A + B + C with a provider total that puts A's end where `choose` wants, read one step past it. */
async function readPastFirstMessage(choose: (endA: number) => boolean): Promise<Outcome> {
  const t = createTestApp();
  try {
    const { render, send } = openai(t);
    const r1 = await render({ messages: [{ role: 'user', content: A }] });
    await send(r1.id, promptTokens(r1.segments), 0);
    t.clock.advance(60_000);
    const r2 = await render({ messages: [{ role: 'user', content: A }, { role: 'assistant', content: B }, { role: 'user', content: C }] });
    const estimated = promptTokens(r2.segments);
    for (let total = estimated - 150; total < estimated + 150; total++) {
      const endA = firstUnitEnd(r2.segments, total);
      if (endA >= 1024 && choose(endA) && endA + 128 < total) return await send(r2.id, total, 1024 + Math.floor((endA + 128 - 1024) / 128) * 128);
    }
    throw new Error('no total puts the first message where wanted');
  } finally {
    t.close();
  }
}

describe('OpenAI: a read one step past our estimate of the message it reads', () => {
  it('our end exactly on a step, the read one step past it: the message ends there, the reply captures nothing', async () => {
    expectBounded(await readPastFirstMessage((e) => (e - 1024) % 128 === 0));
  });
  it('our end between steps, the read past it within a step: the same', async () => {
    expectBounded(await readPastFirstMessage((e) => (e - 1024) % 128 === 5));
  });
});

describe('Gemini: an automatic cache without steps', () => {
  it('a read a few tokens past our end of the message it reads: the reply captures nothing', async () => {
    const t = createTestApp();
    const { render, send } = gemini(t);
    const long = A.repeat(2);
    const r1 = await render({ contents: [{ role: 'user', parts: [{ text: long }] }] });
    await send(r1.id, promptTokens(r1.segments), 0);
    t.clock.advance(60_000);
    const r2 = await render({ contents: [{ role: 'user', parts: [{ text: long }] }, { role: 'model', parts: [{ text: B }] }, { role: 'user', parts: [{ text: C }] }] });
    const total = promptTokens(r2.segments);
    expectBounded(await send(r2.id, total, firstUnitEnd(r2.segments, total) + 40));
    t.close();
  });
});

describe('a scope with more traffic than it remembers', () => {
  it('a prefix the cache still holds is an opportunity, however many others the scope saw since', async () => {
    const t = createTestApp();
    const { render, send } = openai(t);
    const first = await render({ messages: [{ role: 'user', content: A }] });
    await send(first.id, promptTokens(first.segments), 0);
    // Other traffic of the scope, within the TTL: 9 requests of 1000 distinct messages each.
    for (let k = 0; k < 9; k++) {
      t.clock.advance(1000);
      const other = await render({ messages: Array.from({ length: 1000 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `note ${k}-${i}` })) });
      await send(other.id, promptTokens(other.segments), 0);
    }
    t.clock.advance(1000);
    const r2 = await render({ messages: [{ role: 'user', content: A }, { role: 'assistant', content: B }, { role: 'user', content: C }] });
    expectBounded(await send(r2.id, promptTokens(r2.segments), 1024));
    t.close();
  });
});

/** An Anthropic conversation whose tool_choice changes from turn to turn; with a restart before turn 4 if asked. */
async function conversation(restart: boolean): Promise<Outcome[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ph-replay-'));
  const file = join(dir, 'db.sqlite');
  const clock = new FakeClock();
  let t = createTestApp({ databasePath: file, clock });
  const tenant = t.tenant();
  let client = tenant.client;
  const history: Array<{ role: string; content: string }> = [];
  const outcomes: Outcome[] = [];
  const turns: Array<[string, 'auto' | 'any']> = [['Where is order 1003?', 'auto'], [TABLE, 'auto'], ['Which depot?', 'any'], ['And 1004?', 'auto'], ['Thanks', 'any']];
  for (const [i, [question, choice]] of turns.entries()) {
    if (restart && i === 3) {
      t.close();
      t = createTestApp({ databasePath: file, clock });
      client = clientFor(t.app, tenant.key);
    }
    history.push({ role: 'user', content: question });
    const messages = history.map((m, k) => (k === history.length - 1 ? { role: m.role, content: [{ type: 'text', text: m.content, cache_control: { type: 'ephemeral' } }] } : m));
    const tools = [{ name: 'w', description: 'x', input_schema: { type: 'object' } }];
    const res = await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 64, system: LONG_SYSTEM, tools, messages, tool_choice: { type: choice } } });
    expect(res.status, res.text).toBe(200);
    const total = promptTokens(res.json.segments);
    const read = res.json.prediction.read_tokens as number;
    const started = clock.now();
    const usage = await client.post('/v1/usage', { request_id: res.json.request_id, usage: anthropicUsage(total, read, total - read), started_at: started, first_byte_at: started + 100, finished_at: started + 200 });
    expect(usage.status, usage.text).toBe(201);
    outcomes.push(usage.json.outcome as Outcome);
    history.push({ role: 'assistant', content: `answer ${i}` });
    clock.advance(60_000);
  }
  t.close();
  rmSync(dir, { recursive: true, force: true });
  return outcomes;
}

describe('replay after a restart', () => {
  it('gives the outcomes of a continuous run, with tool_choice changing from turn to turn', async () => {
    const continuous = await conversation(false);
    const restarted = await conversation(true);
    const shown = (o: Outcome) => o.segments.map((s) => ({ opportunity: s.opportunity, classes: Object.fromEntries(Object.entries(s.classes).filter(([, n]) => n > 0)) }));
    for (let i = 3; i < continuous.length; i++) expect(shown(restarted[i]!)).toEqual(shown(continuous[i]!));
  });
});
