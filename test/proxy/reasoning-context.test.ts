// Which reasoning items sent back an OpenAI reasoning model reads (src/domain/thinking.ts): OpenAI drops the reasoning
// items of earlier turns (before the newest user message) from the model's context, and keeps those of the tool loop
// under way. Through the proxy with the official SDK and the simulator: a Responses agent loop over several questions
// (`store: false`, encrypted reasoning, function calls), the session kept by the proxy or the whole input sent by the
// caller, is estimated as the simulator bills it and reported without unconfirmed tokens; the miss of a new question
// is explained as a drift of reasoning no longer read, at the first batch that held some.

import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mintBundle, mintSystem, mintTools, startSession } from '../helpers/factories';
import { LONG_SYSTEM } from '../helpers/scenario';
import { committed, startHarness, type Harness } from './harness';
import { driftDetail } from '../../src/cli/commands/report';
import { driftAdvice } from '../../src/domain/reconcile/explain';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const MINUTE = 60_000;
const STATELESS = { model: 'gpt-5', store: false, include: ['reasoning.encrypted_content' as const], reasoning: { summary: 'auto' as const } };
const CITIES = ['Oslo', 'Bergen', 'Tromsø'];
/** A tool's output long enough that what a dropped reasoning item moves is more than OpenAI's 128-token steps. */
const forecast = (city: string) => `${city}: ${Array.from({ length: 60 }, (_, i) => `hour ${i}: cold, wind ${i % 7} m/s, snow ${i % 3} mm`).join('; ')}.`;
type Json = Record<string, any>;
const CLASSES = ['captured', 'cold', 'drift', 'unconfirmed', 'below_minimum', 'bonus'] as const;
const sum = (segments: Json[], c: string) => segments.reduce((n, s) => n + (s.classes[c] ?? 0), 0);

/**
 * The agent loop: per question, a call that answers a function call, then its output back (two requests). `send`
 * takes this turn's new items and the items so far (the session keeps them itself: it sends only the new ones).
 */
async function loop(send: (fresh: OpenAI.Responses.ResponseInputItem[], all: OpenAI.Responses.ResponseInputItem[]) => Promise<{ response: OpenAI.Responses.Response; id: string }>) {
  const all: OpenAI.Responses.ResponseInputItem[] = [];
  const ids: string[] = [];
  const turn = async (fresh: OpenAI.Responses.ResponseInputItem[]) => {
    all.push(...fresh);
    const { response, id } = await send(fresh, all);
    h.clock.advance(MINUTE);
    ids.push(id);
    all.push(...(response.output as unknown as OpenAI.Responses.ResponseInputItem[]).map((o: Json) => (o.type === 'reasoning' ? { id: o.id, type: 'reasoning', summary: o.summary, encrypted_content: o.encrypted_content } : o) as OpenAI.Responses.ResponseInputItem));
    return response;
  };
  for (const city of CITIES) {
    const call = await turn([{ role: 'user', content: `Use get_weather for ${city}.` }]);
    expect(call.output.map((o) => o.type)).toEqual(['reasoning', 'function_call']);
    const fc = call.output[1] as OpenAI.Responses.ResponseFunctionToolCall;
    const done = await turn([{ type: 'function_call_output', call_id: fc.call_id, output: forecast(city) }]);
    expect(done.output.map((o) => o.type)).toEqual(['reasoning', 'message']);
  }
  await committed(h);
  return Promise.all(ids.map(async (id) => (await h.tenant.client.get(`/v1/requests/${id}`)).json as Json));
}

/** Per request: the provider's read, the predicted read, then the tokens of each class. */
const waterfall = (rows: Json[]) => rows.map((r) => [r.usage.cache_read_tokens, r.outcome.predicted.read, ...CLASSES.map((c) => sum(r.outcome.segments, c))]);

/**
 * Every call estimated as the simulator bills it (but for a constant the estimate of these requests has without any
 * reasoning item too: the first call's), and predicted to read what it read: no unconfirmed or bonus tokens.
 */
function expectReadAsBilled(rows: Json[]) {
  const offset = rows[0]!.outcome.estimated_prompt_tokens - rows[0]!.usage.total_prompt_tokens;
  expect(Math.abs(offset)).toBeLessThan(8);
  for (const r of rows) {
    expect(r.outcome.estimated_prompt_tokens - r.usage.total_prompt_tokens).toBe(offset);
    expect(r.outcome.predicted.read).toBe(r.usage.cache_read_tokens);
  }
}

describe("OpenAI Responses: earlier turns' reasoning items are not read", () => {
  it('a session kept by the proxy: every call estimated and predicted as the simulator bills and reads it; a new question after a tool loop is a drift of reasoning no longer read', async () => {
    const client = h.tenant.client;
    const bundle = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, LONG_SYSTEM)).id]);
    const session = await startSession(client, { base: bundle.id });
    const sdk = h.openai({ headers: { 'x-ph-session': session.id } });
    const rows = await loop(async (fresh) => {
      const { data, response } = await sdk.responses.create({ ...STATELESS, input: fresh }).withResponse();
      return { response: data, id: response.headers.get('x-ph-request-id')! };
    });
    expectReadAsBilled(rows);
    // The bytes carry every reasoning item: the last call sent the first turn's.
    const calls = h.tap.filter((e) => e.method === 'POST');
    expect((JSON.parse(calls[5]!.body).input as Json[]).filter((it) => it.type === 'reasoning')).toHaveLength(5);

    // Per call: the provider's read, the predicted read, then captured, cold, drift, unconfirmed, below_minimum, bonus.
    // A new question (the 3rd and 5th calls) reads through the question before it only: the loop's function call and
    // output were cached after its reasoning item, which the model no longer reads; the session batch holding it
    // drifts (the output after it was this turn's inline input: cold). The tool loop's calls read what the question wrote.
    expect(waterfall(rows)).toEqual([
      [0, 0, 0, 2224, 0, 0, 0, 0],
      [2176, 2176, 2176, 1047, 0, 0, 45, 0],
      [2176, 2176, 2176, 1057, 13, 0, 45, 0],
      [3200, 3200, 3200, 1045, 0, 0, 90, 0],
      [3200, 3200, 3200, 1056, 14, 0, 89, 0],
      [4352, 4352, 4352, 1046, 0, 0, 6, 0],
    ]);
    for (const i of [1, 3, 5]) expect(rows[i]!.outcome.drift, `call ${i}`).toBeNull();
    for (const i of [2, 4]) {
      // At the batch of the previous turn's first reasoning item; the bytes the same.
      expect(rows[i]!.outcome.drift).toMatchObject({ thinking: 'earlier_reasoning', previous_request: rows[i - 1]!.id, handle: `${session.id}@${i}`, segment: i });
      expect(rows[i]!.outcome.drift.now).toEqual(rows[i]!.outcome.drift.before);
      // gpt-5 takes no reasoning.context: nothing to send.
      expect(rows[i]!.outcome.drift).not.toHaveProperty('reasoning_context');
    }
    const ses = (await client.get(`/v1/reports/handles/${session.id}`)).json;
    expect(ses.tokens).toMatchObject({ unconfirmed: 0, bonus: 0, unknown: 0 });
    expect(ses.tokens.captured).toBeGreaterThan(0);
    const bnd = (await client.get(`/v1/reports/handles/${bundle.id}`)).json;
    expect(bnd.tokens).toMatchObject({ unconfirmed: 0, bonus: 0, unknown: 0, drift: 0 });
    expect(bnd.tokens.captured).toBe(bnd.tokens.predicted);
    // Said so on the request's page, and the session's, in OpenAI's words.
    const ui = async (path: string) => (await h.t.app.request(path, { headers: { cookie: `ph_ui_key=${h.key}` } })).text();
    expect(await ui(`/ui/requests/${rows[2]!.id}`)).toMatch(/data-drift-thinking[\s\S]*OpenAI drops earlier turns&#39; reasoning items once a new question follows a tool loop/);
    expect(await ui(`/ui/handles/${session.id}`)).toContain('the bytes are the same, but OpenAI drops earlier turns&#39; reasoning items once');
    expect(await ui(`/ui/requests/${rows[2]!.id}`)).toContain("OpenAI&#39;s rule, nothing in the agent to change");
  });

  it('a session kept by the proxy, each question a string input: the string is the user message that opens the turn, estimated as billed', async () => {
    const client = h.tenant.client;
    const bundle = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, LONG_SYSTEM)).id]);
    const session = await startSession(client, { base: bundle.id });
    const sdk = h.openai({ headers: { 'x-ph-session': session.id } });
    const rows = await loop(async (fresh) => {
      const only = fresh[0] as Json;
      const input = fresh.length === 1 && only.role === 'user' ? (only.content as string) : fresh;
      const { data, response } = await sdk.responses.create({ ...STATELESS, input }).withResponse();
      return { response: data, id: response.headers.get('x-ph-request-id')! };
    });
    expectReadAsBilled(rows);
    for (const i of [2, 4]) expect(rows[i]!.outcome.drift).toMatchObject({ thinking: 'earlier_reasoning', previous_request: rows[i - 1]!.id });
  });

  it('the whole input sent by the caller on a system prompt handle: read as billed, no unconfirmed', async () => {
    const client = h.tenant.client;
    const sys = await mintSystem(client, LONG_SYSTEM);
    const sdk = h.openai({ headers: { 'x-ph-prefix': sys.id } });
    const tools: OpenAI.Responses.FunctionTool[] = [{ type: 'function', name: 'get_weather', description: 'Get the weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: false }];
    const rows = await loop(async (_, all) => {
      const { data, response } = await sdk.responses.create({ ...STATELESS, tools, input: all }).withResponse();
      return { response: data, id: response.headers.get('x-ph-request-id')! };
    });
    expectReadAsBilled(rows);
    // The caller's own items are inline: what a new question misses is cold (nothing recurred by a handle).
    expect(waterfall(rows)).toEqual([
      [0, 0, 0, 2214, 0, 0, 0, 0],
      [2176, 2176, 2176, 1047, 0, 0, 35, 0],
      [2176, 2176, 2176, 1070, 0, 0, 35, 0],
      [3200, 3200, 3200, 1045, 0, 0, 80, 0],
      [3200, 3200, 3200, 1069, 0, 0, 80, 0],
      [4224, 4224, 4224, 1046, 0, 0, 124, 0],
    ]);
    const rep = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
    expect(rep.tokens).toMatchObject({ unconfirmed: 0, bonus: 0, unknown: 0, drift: 0 });
  });
});

describe('GPT-5.6: reasoning.context says which turns’ reasoning items are read', () => {
  type Context = 'all_turns' | 'current_turn' | undefined;
  /**
   * The session loop of the first test on gpt-5.6 with `context` (or one per question); the rows of its six calls and
   * the session's id.
   */
  async function sessionLoop(context?: Context | Context[]) {
    const client = h.tenant.client;
    const bundle = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, LONG_SYSTEM)).id]);
    const session = await startSession(client, { base: bundle.id });
    const sdk = h.openai({ headers: { 'x-ph-session': session.id } });
    let call = 0;
    const rows = await loop(async (fresh) => {
      const asked = Array.isArray(context) ? context[Math.floor(call++ / 2)] : context;
      const reasoning = { summary: 'auto' as const, ...(asked ? { context: asked } : {}) };
      const { data, response } = await sdk.responses.create({ ...STATELESS, model: 'gpt-5.6', reasoning, input: fresh }).withResponse();
      return { response: data, id: response.headers.get('x-ph-request-id')! };
    });
    return { rows, session, bundle };
  }

  it('all_turns: earlier turns’ reasoning is read, kept in the cached prefix: a new question reads through it, no drift', async () => {
    const { rows, session } = await sessionLoop('all_turns');
    expectReadAsBilled(rows);
    // Per call as above. A new question (the 3rd and 5th calls) reads through the previous turn's reasoning, function
    // call and output, all written by the call before it: only its own message is cold (34, 35 tokens where
    // current_turn, below, sends 1,057 cold and drifts 13, 14).
    expect(waterfall(rows)).toEqual([
      [0, 0, 0, 2224, 0, 0, 0, 0],
      [2221, 2221, 2221, 1047, 0, 0, 0, 0],
      [3265, 3265, 3265, 34, 0, 0, 0, 0],
      [3296, 3296, 3296, 1047, 0, 0, 0, 0],
      [4340, 4340, 4340, 35, 0, 0, 0, 0],
      [4372, 4372, 4372, 1048, 0, 0, 0, 0],
    ]);
    for (const r of rows) expect(r.outcome.drift).toBeNull();
    const ses = (await h.tenant.client.get(`/v1/reports/handles/${session.id}`)).json;
    expect(ses.tokens).toMatchObject({ unconfirmed: 0, bonus: 0, unknown: 0, drift: 0 });
  });

  it('current_turn: a new question misses the prefix from the previous turn’s reasoning; the finding says to send all_turns', async () => {
    const { rows, session } = await sessionLoop('current_turn');
    expectReadAsBilled(rows);
    expect(waterfall(rows)).toEqual([
      [0, 0, 0, 2224, 0, 0, 0, 0],
      [2221, 2221, 2221, 1047, 0, 0, 0, 0],
      [2221, 2221, 2221, 1057, 13, 0, 0, 0],
      [3288, 3288, 3288, 1047, 0, 0, 0, 0],
      [3288, 3288, 3288, 1057, 14, 0, 0, 0],
      [4356, 4356, 4356, 1048, 0, 0, 0, 0],
    ]);
    for (const i of [2, 4]) expect(rows[i]!.outcome.drift).toMatchObject({ thinking: 'earlier_reasoning', reasoning_context: 'all_turns', previous_request: rows[i - 1]!.id, segment: i });
    const ui = async (path: string) => (await h.t.app.request(path, { headers: { cookie: `ph_ui_key=${h.key}` } })).text();
    expect(await ui(`/ui/requests/${rows[2]!.id}`)).toMatch(/data-drift-thinking[\s\S]*send reasoning: \{&quot;context&quot;: &quot;all_turns&quot;\} and earlier turns&#39; reasoning stays in the prefix/);
    expect(await ui(`/ui/handles/${session.id}`)).not.toContain("OpenAI's rule, nothing in the agent to change");
    // The drop is the request's own asking, not OpenAI's rule, on both pages.
    for (const path of [`/ui/requests/${rows[2]!.id}`, `/ui/handles/${session.id}`])
      expect(await ui(path)).toContain('OpenAI drops earlier turns&#39; reasoning items under the request&#39;s reasoning.context &quot;current_turn&quot; once');
  });

  it('current_turn, then all_turns: the third question misses from the first reasoning item the second turn dropped; the finding names reasoning.context, not dropped reasoning', async () => {
    const { rows, session } = await sessionLoop(['current_turn', 'current_turn', 'all_turns']);
    expectReadAsBilled(rows);
    // The second question drops the first turn's reasoning, as its current_turn asks.
    expect(rows[2]!.outcome.drift).toMatchObject({ thinking: 'earlier_reasoning', reasoning_context: 'all_turns', previous_request: rows[1]!.id, segment: 2 });
    // The third reads every turn's: the same bytes as the call before, which had dropped the first turn's reasoning. It
    // reads through the first turn's tool loop (its own calls wrote that, the reasoning then current), and misses from
    // the batch holding the reasoning item of the first turn's answer, which no call read before.
    const drift = rows[4]!.outcome.drift;
    expect(drift).toMatchObject({ previous_request: rows[3]!.id, handle: `${session.id}@3`, segment: 3, settings: [{ name: 'reasoning.context', before: 'current_turn', now: 'all_turns' }] });
    expect(drift).not.toHaveProperty('thinking');
    expect(drift.now).toEqual(drift.before);
    const lines = driftDetail(drift);
    expect(lines).toEqual([
      `reasoning.context changed: "current_turn" → "all_turns": OpenAI reads earlier turns' reasoning items only under reasoning.context "all_turns": the previous request's prefix held other items than the model read now, so from segment #4 on they were sent again uncached`,
    ]);
    expect(driftAdvice(drift)).toMatch(/^keep reasoning\.context the same on every call of a conversation/);
    const page = (await (await h.t.app.request(`/ui/requests/${rows[4]!.id}`, { headers: { cookie: `ph_ui_key=${h.key}` } })).text()).replaceAll('&#39;', "'").replaceAll('&quot;', '"');
    expect(page).toMatch(/data-drift-settings[\s\S]*<code>reasoning.context<\/code> changed[\s\S]*OpenAI reads earlier turns' reasoning items only under reasoning.context "all_turns"/);
    expect(page).not.toContain('data-drift-thinking');
  });

  it('no reasoning.context: the model’s default, all_turns on GPT-5.6: as all_turns', async () => {
    const { rows } = await sessionLoop();
    expectReadAsBilled(rows);
    expect(waterfall(rows).map((w) => w[0])).toEqual([0, 2221, 3265, 3296, 4340, 4372]);
    for (const r of rows) expect(r.outcome.drift).toBeNull();
  });
});
