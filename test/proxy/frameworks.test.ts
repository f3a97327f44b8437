// Agent frameworks through a session: their requests as the Vercel AI SDK (ai 6.0.333, @ai-sdk/anthropic 3.0.140) and
// LangChain (@langchain/openai 1.5.8) sent them in a trial, replayed by fetch: the headers, the field order, the
// tools as they write them. A framework re-sends the whole conversation on every call, each step of its tool loop
// too; a session holds it already, so that call is refused (a 400) before the provider is paid and the session is
// never doubled. Sent only what the session does not hold (the messages after the last assistant message: README, "With
// the Vercel AI SDK and LangChain"), the loop runs, the session is the conversation once, and the cache is read.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mintBundle, mintSystem, startSession } from '../helpers/factories';
import { LONG_SYSTEM } from '../helpers/scenario';
import { committed, startHarness, type Harness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

type Json = Record<string, any>;

async function setup() {
  const client = h.tenant.client;
  const sys = await mintSystem(client, LONG_SYSTEM);
  const bundle = await mintBundle(client, [sys.id]);
  const session = await startSession(client, {});
  return { client, bundle, session };
}

async function post(path: string, headers: Record<string, string>, body: Json) {
  const res = await fetch(`${h.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-ph-key': h.key, ...headers }, body: JSON.stringify(body) });
  return { res, json: (await res.json()) as Json };
}

const upstreamCalls = () => h.tap.filter((e) => e.method === 'POST').length;

describe('a framework tool loop through a session', () => {
  it("the Vercel AI SDK on Anthropic: its history re-sent is a 400 and the session stays as it was; the messages after the last assistant message run the loop, kept once, cold then captured", async () => {
    const { client, bundle, session } = await setup();
    const headers = { 'anthropic-beta': 'structured-outputs-2025-11-13', 'anthropic-version': '2023-06-01', 'user-agent': 'ai/6.0.333 ai-sdk/provider-utils/4.0.65 runtime/node.js/v20.20.2', 'x-api-key': 'sk-ant-framework', 'x-ph-prefix': bundle.id, 'x-ph-session': session.id };
    // As @ai-sdk/anthropic writes a call: messages before tools, a zod schema with its $schema, tool_choice auto.
    const call = (messages: Json[]) => ({
      model: 'claude-sonnet-4-6',
      max_tokens: 256,
      messages,
      tools: [{ name: 'get_order_status', description: 'The shipping status of an order', input_schema: { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'], additionalProperties: false } }],
      tool_choice: { type: 'auto' },
    });
    const question = (text: string) => ({ role: 'user', content: [{ type: 'text', text, cache_control: { type: 'ephemeral' } }] });
    const path = '/proxy/anthropic/v1/messages';

    const step1 = await post(path, headers, call([question('Use get_order_status for order 42.')]));
    expect(step1.res.status).toBe(200);
    const toolUse = step1.json.content.find((b: Json) => b.type === 'tool_use');
    expect(toolUse).toMatchObject({ name: 'get_order_status' });
    const assistant = { role: 'assistant', content: [{ type: 'tool_use', id: toolUse.id, name: toolUse.name, input: toolUse.input }] };
    const results = { role: 'user', content: [{ type: 'tool_result', tool_use_id: toolUse.id, content: 'shipped on Tuesday' }] };
    const before = upstreamCalls();

    // generateText's second step, as the framework sends it: the whole conversation again.
    const resent = await post(path, headers, call([question('Use get_order_status for order 42.'), assistant, results]));
    // A 400, as a provider's own refusal is: clients stop there. (A 422, LangChain JS retried six more times, ~80 s.)
    expect(resent.res.status).toBe(400);
    expect(resent.json).toMatchObject({ code: 'invalid_request', errors: [{ pointer: '/messages', detail: expect.stringContaining("starts with the session's last 2 messages again") }] });
    expect(upstreamCalls()).toBe(before);
    expect((await client.get(`/v1/handles/${session.id}`)).json.version.message_count).toBe(2);

    // With prepareStep keeping the messages after the last assistant message: the tool result alone, then the next question.
    const step2 = await post(path, headers, call([results]));
    expect(step2.res.status).toBe(200);
    const turn2 = await post(path, headers, call([question('Thanks. And what is your return policy?')]));
    expect(turn2.res.status).toBe(200);
    for (const r of [step1, step2, turn2]) expect(r.res.headers.get('x-ph-warnings')).toBeNull();

    // The session is the conversation, once: question, call, result, answer, question, answer.
    const expanded = (await client.get(`/v1/handles/${session.id}/expand?format=anthropic`)).json;
    expect(expanded.messages.map((m: Json) => `${m.role}:${m.content.map((b: Json) => b.type).join('+')}`)).toEqual(['user:text', 'assistant:tool_use', 'user:tool_result', 'assistant:text', 'user:text', 'assistant:text']);
    // The provider's receipts: the first call wrote the bundle, every later one read it and the session's turns.
    expect(step1.json.usage.cache_read_input_tokens).toBe(0);
    expect(step2.json.usage.cache_read_input_tokens).toBeGreaterThan(step1.json.usage.cache_creation_input_tokens - 1);
    expect(turn2.json.usage.cache_read_input_tokens).toBeGreaterThan(step2.json.usage.cache_read_input_tokens);
    await committed(h);
    const rep = (await client.get(`/v1/reports/handles/${bundle.id}`)).json;
    expect(rep.requests).toBe(3);
    expect(rep.requests_with.cold).toBe(1);
    expect(rep.tokens.captured).toBe(2 * rep.tokens.cold);
    expect(rep.tokens).toMatchObject({ drift: 0, unconfirmed: 0, unknown: 0 });
    const sessionRep = (await client.get(`/v1/reports/handles/${session.id}`)).json;
    expect(sessionRep.tokens.captured).toBeGreaterThan(0);
  });

  it("LangChain on OpenAI chat, streamed: its history re-sent is a 400; its tool message (with the tool's name) sent alone is kept", async () => {
    const { client, bundle, session } = await setup();
    const headers = { authorization: 'Bearer sk-framework', 'user-agent': 'langchainjs-openai/1.0.0 ((node/v20.20.2; linux; x64))', 'x-stainless-lang': 'js', 'x-ph-prefix': bundle.id, 'x-ph-session': session.id };
    // As ChatOpenAI writes a streamed call with bound tools: stream first, stream_options asked, messages last.
    const call = (messages: Json[]) => ({
      model: 'gpt-4.1',
      stream: true,
      tools: [{ type: 'function', function: { name: 'get_order_status', description: 'The shipping status of an order', parameters: { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'], additionalProperties: false } } }],
      stream_options: { include_usage: true },
      max_tokens: 256,
      messages,
    });
    const path = '/proxy/openai/v1/chat/completions';
    const streamed = async (messages: Json[]) => {
      const res = await fetch(`${h.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-ph-key': h.key, ...headers }, body: JSON.stringify(call(messages)) });
      const text = await res.text();
      return { res, chunks: text.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)) as Json) };
    };
    const user = { role: 'user', content: 'Use get_order_status for order 42.' };

    const step1 = await streamed([user]);
    expect(step1.res.status).toBe(200);
    const callId = step1.chunks.flatMap((c) => c.choices?.[0]?.delta?.tool_calls ?? []).find((t: Json) => t.id)?.id as string;
    expect(callId).toMatch(/^call_/);
    // The usage chunk the caller asked for reaches it.
    expect(step1.chunks.at(-1)!.usage.prompt_tokens).toBeGreaterThan(1000);
    const assistant = { role: 'assistant', content: '', tool_calls: [{ id: callId, type: 'function', function: { name: 'get_order_status', arguments: '{"order_id":"simulated"}' } }] };
    const tool = { role: 'tool', content: 'shipped on Tuesday', name: 'get_order_status', tool_call_id: callId };

    const resent = await post(path, headers, call([user, assistant, tool]));
    expect(resent.res.status).toBe(400);
    expect(resent.json.detail).toContain("starts with the session's last 2 messages again");
    expect((await client.get(`/v1/handles/${session.id}`)).json.version.message_count).toBe(2);

    const step2 = await streamed([tool]);
    expect(step2.res.status).toBe(200);
    expect(step2.chunks.at(-1)!.usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(1000);
    const expanded = (await client.get(`/v1/handles/${session.id}/expand?format=openai-chat`)).json;
    expect(expanded.messages.map((m: Json) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant']);
    expect(expanded.messages[2]).toMatchObject({ tool_call_id: callId, content: 'shipped on Tuesday' });
  });

  it("the Vercel AI SDK on the Responses API: a tool's image output (toModelOutput) in a function_call_output is a 400 before the provider is called, not kept as its text alone", async () => {
    const { client, bundle, session } = await setup();
    const headers = { authorization: 'Bearer sk-framework', 'user-agent': 'ai-sdk/openai/3.0.141 ai-sdk/provider-utils/4.0.66 runtime/node.js/v20.20.2', 'x-ph-prefix': bundle.id, 'x-ph-session': session.id };
    const tools = [{ type: 'function', name: 'get_photo', description: 'A photo of the parcel', parameters: { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'], additionalProperties: false } }];
    const call = (input: Json[]) => ({ model: 'gpt-4.1', input, max_output_tokens: 256, tools, tool_choice: 'auto' });
    const path = '/proxy/openai/v1/responses';
    const step1 = await post(path, headers, call([{ role: 'user', content: [{ type: 'input_text', text: 'Use get_photo for order 42.' }] }]));
    expect(step1.res.status).toBe(200);
    const fc = step1.json.output.find((o: Json) => o.type === 'function_call');
    const before = upstreamCalls();
    // A 1×1 PNG, as the AI SDK writes a tool's { type: 'image-data' } output part.
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC';
    const output = [{ type: 'input_text', text: 'The parcel:' }, { type: 'input_image', image_url: `data:image/png;base64,${png}` }];
    const refused = await post(path, headers, call([{ type: 'function_call_output', call_id: fc.call_id, output }]));
    expect(refused.res.status).toBe(400);
    expect(refused.json).toMatchObject({ code: 'invalid_request', errors: [{ pointer: '/input/0/output/1', detail: expect.stringContaining('an image in a function call output') }] });
    expect(upstreamCalls()).toBe(before);
    expect((await client.get(`/v1/handles/${session.id}`)).json.version.message_count).toBe(2);
    // Its text alone is kept as sent.
    const ok = await post(path, headers, call([{ type: 'function_call_output', call_id: fc.call_id, output: [output[0]] }]));
    expect(ok.res.status).toBe(200);
    const expanded = (await client.get(`/v1/handles/${session.id}/expand?format=openai-responses`)).json;
    expect(expanded.input.find((i: Json) => i.type === 'function_call_output')).toEqual({ type: 'function_call_output', call_id: fc.call_id, output: 'The parcel:' });
  });
});
