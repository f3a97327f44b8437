// OpenAI Responses reasoning items through a session: a reasoning model used statelessly (`store: false`,
// `include: ["reasoning.encrypted_content"]`) returns a reasoning item before its function call or message, to be
// passed back with the function call outputs. With the official SDK, the simulator as the provider (it returns the
// item with deterministic encrypted_content, and refuses a stored function call sent back without its reasoning
// item, in OpenAI's words).

import OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mintBundle, mintSystem, mintTools, startSession } from '../helpers/factories';
import { LONG_SYSTEM } from '../helpers/scenario';
import { committed, rejection, startHarness, type Harness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const MINUTE = 60_000;
const MODEL = 'gpt-5';
const STATELESS = { store: false, include: ['reasoning.encrypted_content' as const] };
const weatherTool: OpenAI.Responses.FunctionTool = { type: 'function', name: 'get_weather', description: 'Get the weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: false };

type Item = Record<string, unknown>;
/** A reasoning item as the API wants it back: id, summary, encrypted_content (its status is metadata). */
const sentBack = (r: Item) => ({ id: r.id, type: 'reasoning', summary: r.summary, encrypted_content: r.encrypted_content });

describe('simulator: OpenAI Responses reasoning items', () => {
  it('a reasoning model asked for encrypted reasoning returns the item first; other models and requests without include do not', async () => {
    const sdk = h.openai();
    const first = await sdk.responses.create({ model: MODEL, ...STATELESS, reasoning: { summary: 'auto' }, tools: [weatherTool], input: 'Use get_weather for Oslo.' });
    expect(first.output.map((o) => o.type)).toEqual(['reasoning', 'function_call']);
    const reasoning = first.output[0] as OpenAI.Responses.ResponseReasoningItem;
    expect(reasoning).toMatchObject({ id: expect.stringMatching(/^rs_/), encrypted_content: expect.any(String), summary: [{ type: 'summary_text', text: expect.stringContaining('Simulated thinking') }] });
    expect(first.usage!.output_tokens_details.reasoning_tokens).toBeGreaterThan(0);
    // Deterministic: the same reasoning, the same encrypted_content (a digest of it).
    const again = await sdk.responses.create({ model: MODEL, ...STATELESS, tools: [weatherTool], input: 'Use get_weather for Oslo.' });
    expect((again.output[0] as OpenAI.Responses.ResponseReasoningItem).summary).toEqual([]);
    expect((again.output[0] as OpenAI.Responses.ResponseReasoningItem).encrypted_content).not.toBe(reasoning.encrypted_content);
    for (const request of [{ model: MODEL }, { model: 'gpt-4.1', include: ['reasoning.encrypted_content' as const] }, { model: 'gpt-5-chat-latest', include: ['reasoning.encrypted_content' as const] }]) {
      const plain = await sdk.responses.create({ ...request, tools: [weatherTool], input: 'Use get_weather for Oslo.' });
      expect(plain.output.map((o) => o.type), request.model).toEqual(['function_call']);
    }
  });

  it("a stored function call sent back by its id without its reasoning item is refused with OpenAI's 400; so is a reasoning item nothing follows", async () => {
    const sdk = h.openai();
    const first = await sdk.responses.create({ model: MODEL, include: ['reasoning.encrypted_content'], tools: [weatherTool], input: 'Use get_weather for Oslo.' });
    const [reasoning, call] = first.output as [OpenAI.Responses.ResponseReasoningItem, OpenAI.Responses.ResponseFunctionToolCall];
    const output = { type: 'function_call_output' as const, call_id: call.call_id, output: 'Cold, 2°C.' };
    const ask = (items: OpenAI.Responses.ResponseInputItem[]) => sdk.responses.create({ model: MODEL, tools: [weatherTool], input: [{ role: 'user', content: 'Use get_weather for Oslo.' }, ...items] });

    const dropped = await rejection(ask([call, output]));
    expect(dropped).toBeInstanceOf(OpenAI.BadRequestError);
    expect(dropped.error).toEqual({
      message: `Item '${call.id}' of type 'function_call' was provided without its required 'reasoning' item: '${reasoning.id}'.`,
      type: 'invalid_request_error',
      param: 'input',
      code: null,
    });
    const alone = await rejection(ask([reasoning]));
    expect(alone.error).toMatchObject({ message: `Item '${reasoning.id}' of type 'reasoning' was provided without its required following item.`, param: 'input' });
    // With it, answered; and a call sent without its id (as a session renders it) refers to nothing stored.
    expect((await ask([reasoning, call, output])).output_text).toContain('Simulated reply');
    const anonymous = { type: call.type, call_id: call.call_id, name: call.name, arguments: call.arguments };
    expect((await ask([anonymous, output])).output_text).toContain('Simulated reply');
  });
});

// The o-series as gpt-5: their catalog entries (o3, o4-mini) price and cache them, the simulator reasons on them.
describe.each([MODEL, 'o3', 'o4-mini'])('OpenAI Responses on %s: reasoning items in a tool loop through a session', (model) => {
  it.each([false, true])("stream=%s: the session keeps each reply's reasoning item and sends it back byte for byte; cold then captured", async (stream) => {
    const client = h.tenant.client;
    const bundle = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, LONG_SYSTEM)).id]);
    const session = await startSession(client, { base: bundle.id });
    const sdk = h.openai({ headers: { 'x-ph-session': session.id } });
    const send = async (input: OpenAI.Responses.ResponseInput) => {
      const params = { model, ...STATELESS, reasoning: { summary: 'auto' as const }, input };
      const response = stream ? await sdk.responses.stream(params).finalResponse() : await sdk.responses.create(params);
      h.clock.advance(MINUTE);
      return response;
    };
    const reasoning: Item[] = [];
    for (const city of ['Oslo', 'Bergen']) {
      const call = await send([{ role: 'user', content: `Use get_weather for ${city}.` }]);
      expect(call.output.map((o) => o.type)).toEqual(['reasoning', 'function_call']);
      const fc = call.output[1] as OpenAI.Responses.ResponseFunctionToolCall;
      const done = await send([{ type: 'function_call_output', call_id: fc.call_id, output: `${city}: cold.` }]);
      expect(done.output.map((o) => o.type)).toEqual(['reasoning', 'message']);
      reasoning.push(call.output[0] as unknown as Item, done.output[0] as unknown as Item);
    }

    // Each later request carried every earlier reasoning item, byte for byte as the API returned it (status aside),
    // right before the item it preceded.
    const calls = h.tap.filter((e) => e.method === 'POST');
    expect(calls).toHaveLength(4);
    for (const [i, r] of reasoning.entries()) {
      for (const later of calls.slice(i + 1)) expect(later.body).toContain(JSON.stringify(sentBack(r)));
    }
    const input = JSON.parse(calls[3]!.body).input as Item[];
    expect(input.map((it) => it.type ?? it.role)).toEqual(['message', 'message', 'reasoning', 'function_call', 'function_call_output', 'reasoning', 'message', 'message', 'reasoning', 'function_call', 'function_call_output']);
    expect(input[2]).toEqual(sentBack(reasoning[0]!));
    // Stored as OpenAI's, with the reply it came with.
    const neutral = (await client.get(`/v1/handles/${session.id}/expand?format=neutral`)).json.messages;
    expect(neutral[1].content[0]).toEqual({ ...sentBack(reasoning[0]!), provider: 'openai' });
    // Rendered for another provider or API, it is left out.
    for (const format of ['openai-chat', 'anthropic', 'gemini'])
      expect((await client.get(`/v1/handles/${session.id}/expand?format=${format}`)).text, format).not.toContain(reasoning[0]!.encrypted_content as string);

    await committed(h);
    // Each call priced and simulated as its own model, not a flagged fallback.
    const listed = (await client.get('/v1/requests')).json.requests as Array<{ id: string }>;
    expect(listed).toHaveLength(4);
    for (const { id } of listed) expect((await client.get(`/v1/requests/${id}`)).json).toMatchObject({ model, catalog_entry: model, catalog_fallback: false });
    const rep = (await client.get(`/v1/reports/handles/${bundle.id}`)).json;
    expect(rep.requests).toBe(4);
    expect(rep.requests_with.cold).toBe(1);
    expect(rep.tokens.captured).toBeGreaterThan(2 * rep.tokens.cold);
    expect(rep.tokens.captured).toBe(rep.tokens.predicted);
    expect(rep.tokens).toMatchObject({ unconfirmed: 0, unknown: 0, drift: 0, expired: 0, concurrent: 0 });
    // The session's earlier turns, reasoning items included, are read from the cache as they recur.
    const ses = (await client.get(`/v1/reports/handles/${session.id}`)).json;
    expect(ses.tokens).toMatchObject({ unconfirmed: 0, drift: 0 });
    expect(ses.tokens.captured).toBeGreaterThan(0);
  });
});

describe('reasoning items a session cannot hold', () => {
  it('a reasoning item that ends the turn (an assistant message of reasoning alone) is a 400 before the provider is called; one without encrypted_content is dropped, with reasoning_not_kept', async () => {
    const session = await startSession(h.tenant.client, {});
    const sdk = h.openai({ headers: { 'x-ph-session': session.id } });
    const reasoning = { type: 'reasoning' as const, id: 'rs_1', summary: [], encrypted_content: 'gAAAAAB-enc' };
    const refused = await rejection(sdk.responses.create({ model: MODEL, ...STATELESS, input: [{ role: 'user', content: 'Hi' }, reasoning] }));
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    expect(refused.error).toMatchObject({ code: 'invalid_request', message: expect.stringContaining('a message of thinking blocks (or reasoning items) alone has nothing to send to other providers') });
    expect(refused.error.message).not.toContain('of this turn');
    expect(h.tap).toHaveLength(0);
    // By id alone (store: true), it names state the session does not hold: left out of the session, the rest kept.
    const { data: answered, response } = await sdk.responses
      .create({ model: MODEL, input: [{ role: 'user', content: 'Hi' }, { type: 'reasoning', id: 'rs_2', summary: [] }, { role: 'assistant', content: 'Hello.' }, { role: 'user', content: 'And?' }] })
      .withResponse();
    expect(answered.output_text).toContain('Simulated reply');
    expect(response.headers.get('x-ph-warnings')).toBe('reasoning_not_kept');
    await committed(h);
    const neutral = (await h.tenant.client.get(`/v1/handles/${session.id}/expand?format=neutral`)).json.messages;
    expect(neutral.slice(0, 3)).toEqual([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello.' }, { role: 'user', content: 'And?' }]);
  });
});

describe("a refused session turn's wording", () => {
  // The list kept in the session is not the body's: the message's place is the pointer's, and the text no longer counts
  // the kept list (it said "(message 1 of this turn)" for /messages/2, "(message 2 of this turn)" for /input/3).
  const DETAIL = 'answers no tool_use of the message before it ("call_none")';
  /** The SDK shows the detail; the problem's pointer is read from the answer as sent (the OpenAI SDK keeps `error` alone). */
  async function refusal(path: string, session: string, body: object) {
    const sdk = h.openai({ headers: { 'x-ph-session': session } });
    const call = path === 'chat/completions' ? sdk.chat.completions.create(body as never) : sdk.responses.create(body as never);
    const err = await rejection(call);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.error).toMatchObject({ code: 'invalid_request', message: DETAIL });
    const raw = await fetch(`${h.url}/proxy/openai/v1/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-ph-key': h.key, authorization: 'Bearer sk', 'x-ph-session': session }, body: JSON.stringify(body) });
    expect(raw.status).toBe(400);
    expect(h.tap).toHaveLength(0);
    return ((await raw.json()) as { errors: Array<{ pointer: string; detail: string }> }).errors;
  }

  it('chat: a tool message after a system message answering no call is refused at its place in the body, with no count of the kept list', async () => {
    const session = await startSession(h.tenant.client, { messages: [{ role: 'user', content: 'Weather in Oslo?' }, { role: 'assistant', content: 'Which day?' }] });
    const body = { model: MODEL, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Tomorrow.' }, { role: 'tool', tool_call_id: 'call_none', content: 'sunny' }] };
    expect(await refusal('chat/completions', session.id, body)).toEqual([{ pointer: '/messages/2', detail: DETAIL }]);
  });

  it('responses: an output after two joined calls answering neither is refused at its item, with no count of the kept list', async () => {
    const session = await startSession(h.tenant.client, {});
    const call = (id: string) => ({ type: 'function_call', call_id: id, name: 'get_weather', arguments: '{}' });
    const body = { model: MODEL, ...STATELESS, input: [{ role: 'user', content: 'Weather?' }, call('call_1'), call('call_2'), { type: 'function_call_output', call_id: 'call_none', output: 'sunny' }] };
    expect(await refusal('responses', session.id, body)).toEqual([{ pointer: '/input/3', detail: DETAIL }]);
  });
});
