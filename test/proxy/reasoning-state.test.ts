// The model's reasoning state through a session: Anthropic thinking blocks and
// Gemini 3 thought signatures, which the providers require back while a tool
// loop is under way. With the official SDKs, the simulator as the provider (it
// refuses the request without them, as Anthropic and Gemini do).

import Anthropic from '@anthropic-ai/sdk';
import { ApiError } from '@google/genai';
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

async function agentSetup(system = LONG_SYSTEM) {
  const client = h.tenant.client;
  const bundle = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, system)).id]);
  const session = await startSession(client, { base: bundle.id });
  return { client, bundle, session };
}

/** The bundle's report: one cold turn, then reads the provider confirmed, nothing leaked. */
async function expectColdThenCaptured(bundleId: string, requests: number) {
  await committed(h);
  const rep = (await h.tenant.client.get(`/v1/reports/handles/${bundleId}`)).json;
  expect(rep.requests).toBe(requests);
  expect(rep.requests_with.cold).toBe(1);
  expect(rep.tokens.captured).toBeGreaterThan(2 * rep.tokens.cold);
  expect(rep.tokens.captured).toBe(rep.tokens.predicted);
  expect(rep.tokens).toMatchObject({ unconfirmed: 0, unknown: 0, drift: 0, expired: 0, concurrent: 0 });
}

const THINKING_REQUIRED =
  'messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`. When `thinking` is enabled, a final `assistant` message must start with a thinking block';

describe('Anthropic: extended thinking in a tool loop through a session', () => {
  const thinking = { type: 'enabled' as const, budget_tokens: 1024 };

  it('without the thinking block the provider refuses the next step (what a session did before it kept them)', async () => {
    const sdk = h.anthropic();
    const first = await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 4096, thinking, tools: [weatherTool], messages: [{ role: 'user', content: 'Use get_weather for Oslo.' }] });
    expect(first.content.map((b) => b.type)).toEqual(['thinking', 'tool_use']);
    const call = first.content[1] as Anthropic.ToolUseBlock;
    const answer: Anthropic.MessageParam = { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'Cold, 2°C.' }] };
    const ask = (assistant: Anthropic.ContentBlockParam[]) =>
      sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 4096, thinking, tools: [weatherTool], messages: [{ role: 'user', content: 'Use get_weather for Oslo.' }, { role: 'assistant', content: assistant }, answer] });

    const dropped = await rejection(ask([call]));
    expect(dropped).toBeInstanceOf(Anthropic.BadRequestError);
    expect(dropped.error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    expect(dropped.error.error.message).toContain(THINKING_REQUIRED);
    // Changed in any way, the block is refused too (the signature no longer matches).
    const edited = await rejection(ask([{ ...(first.content[0] as Anthropic.ThinkingBlock), thinking: 'something else' }, call]));
    expect(edited.error.error.message).toBe('messages.1.content.0: Invalid `signature` in `thinking` block');
    // Sent back whole, it is answered.
    expect((await ask(first.content as Anthropic.ContentBlockParam[])).stop_reason).toBe('end_turn');
  });

  it.each([false, true])('stream=%s: the session keeps each reply\'s thinking and sends it back unchanged; the report shows cold then captured', async (stream) => {
    const { client, bundle, session } = await agentSetup();
    const sdk = h.anthropic({ headers: { 'x-ph-session': session.id } });
    const send = async (content: Anthropic.MessageParam['content']) => {
      const params = { model: 'claude-sonnet-4-6', max_tokens: 4096, thinking, messages: [{ role: 'user' as const, content }] };
      const message = stream ? await sdk.messages.stream(params).finalMessage() : await sdk.messages.create(params);
      h.clock.advance(MINUTE);
      return message;
    };
    const replies: Anthropic.Message[] = [];
    for (const city of ['Oslo', 'Bergen']) {
      const call = await send(`Use get_weather for ${city}.`);
      expect(call.content.map((b) => b.type)).toEqual(['thinking', 'tool_use']);
      const id = (call.content[1] as Anthropic.ToolUseBlock).id;
      const done = await send([{ type: 'tool_result', tool_use_id: id, content: `${city}: cold.` }]);
      expect(done.content.map((b) => b.type)).toEqual(['thinking', 'text']);
      replies.push(call, done);
    }

    // Each step's request carried every earlier reply's thinking block byte for byte, in the provider's field order.
    const calls = h.tap.filter((e) => e.method === 'POST');
    expect(calls).toHaveLength(4);
    for (const [i, reply] of replies.entries()) {
      const block = reply.content[0] as Anthropic.ThinkingBlock;
      const bytes = JSON.stringify({ type: 'thinking', thinking: block.thinking, signature: block.signature });
      for (const later of calls.slice(i + 1)) expect(later.body).toContain(bytes);
    }
    // Stored as Anthropic's, with the reply it came with and the model that produced it (streamed: message_start's).
    const neutral = (await client.get(`/v1/handles/${session.id}/expand?format=neutral`)).json.messages;
    expect(neutral[1].content[0]).toEqual({ type: 'thinking', provider: 'anthropic', thinking: (replies[0]!.content[0] as Anthropic.ThinkingBlock).thinking, signature: (replies[0]!.content[0] as Anthropic.ThinkingBlock).signature, model: 'claude-sonnet-4-6' });
    // Rendered for another provider, it is left out.
    const chat = (await client.get(`/v1/handles/${session.id}/expand?format=openai-chat`)).text;
    expect(chat).not.toContain('Simulated thinking');

    await expectColdThenCaptured(bundle.id, 4);
    // The session's earlier turns, thinking included, are read from the cache as they recur.
    const rep = (await client.get(`/v1/reports/handles/${session.id}`)).json;
    expect(rep.tokens).toMatchObject({ unconfirmed: 0, drift: 0 });
    expect(rep.tokens.captured).toBeGreaterThan(0);
  });
});

describe('reasoning state a session cannot hold', () => {
  it('a thinking block in the turn\'s user message is a 400 naming it, before the provider is called', async () => {
    const { session } = await agentSetup();
    const sdk = h.anthropic({ headers: { 'x-ph-session': session.id } });
    const content = [{ type: 'thinking', thinking: 'x', signature: 's' }, { type: 'text', text: 'Hi' }];
    const refused = await rejection(sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: content as never }] }));
    expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
    expect(refused.error.errors[0]).toMatchObject({ pointer: '/messages/0/content/0', detail: expect.stringContaining('come from the assistant') });
    expect(h.tap).toHaveLength(0);
  });
});

const weatherTool: Anthropic.Tool = { name: 'get_weather', description: 'Get the weather for a city', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };

describe('Gemini 3: thought signatures in a function-call loop through a session', () => {
  const MODEL = 'gemini-3-flash';
  const SYSTEM = 'You are the support agent for a large handbook. Follow every policy exactly and cite sections. '.repeat(400);
  const declarations = [{ name: 'get_weather', description: 'Get the weather for a city', parametersJsonSchema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];

  it('without the signature Gemini 3 refuses the next step (what a session did before it kept them)', async () => {
    const ai = h.gemini();
    const config = { tools: [{ functionDeclarations: declarations }] };
    const first = await ai.models.generateContent({ model: MODEL, contents: 'Use get_weather for Oslo.', config });
    const part = first.candidates![0]!.content!.parts![0]!;
    expect(part.functionCall?.name).toBe('get_weather');
    expect(part.thoughtSignature).toEqual(expect.any(String));
    const ask = (modelPart: object) =>
      ai.models.generateContent({
        model: MODEL,
        config,
        contents: [
          { role: 'user', parts: [{ text: 'Use get_weather for Oslo.' }] },
          { role: 'model', parts: [modelPart] },
          { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { content: 'cold' } } }] },
        ],
      });
    const dropped = await rejection(ask({ functionCall: part.functionCall }));
    expect(dropped).toBeInstanceOf(ApiError);
    expect(dropped.status).toBe(400);
    expect(JSON.parse(dropped.message).error).toMatchObject({
      code: 400,
      status: 'INVALID_ARGUMENT',
      message: expect.stringContaining('Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly'),
    });
    expect(JSON.parse(dropped.message).error.message).toContain('function call `default_api:get_weather`, position 1.');
    expect((await ask(part)).text).toContain('Simulated reply');
    // Gemini 2.5 does not enforce it.
    const older = await ai.models.generateContent({ model: 'gemini-2.5-flash', config, contents: [{ role: 'user', parts: [{ text: 'Use get_weather for Oslo.' }] }, { role: 'model', parts: [{ functionCall: part.functionCall }] }, { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { content: 'cold' } } }] }] });
    expect(older.text).toContain('Simulated reply');
  });

  it.each([false, true])('stream=%s: the session keeps the signature on the call it came on and sends it back; cold then captured', async (stream) => {
    const { client, bundle, session } = await agentSetup(SYSTEM);
    const ai = h.gemini({ headers: { 'x-ph-session': session.id } });
    const send = async (parts: object[]) => {
      const contents = [{ role: 'user', parts }];
      const got: Array<Record<string, unknown>> = [];
      if (!stream) got.push(...((await ai.models.generateContent({ model: MODEL, contents })).candidates![0]!.content!.parts as Array<Record<string, unknown>>));
      else for await (const chunk of await ai.models.generateContentStream({ model: MODEL, contents })) got.push(...((chunk.candidates?.[0]?.content?.parts ?? []) as Array<Record<string, unknown>>));
      h.clock.advance(MINUTE);
      return got;
    };
    const signatures: string[] = [];
    for (const city of ['Oslo', 'Bergen']) {
      const [call] = await send([{ text: `Use get_weather for ${city}.` }]);
      expect(call).toMatchObject({ functionCall: { name: 'get_weather' }, thoughtSignature: expect.any(String) });
      signatures.push(call!.thoughtSignature as string);
      const done = await send([{ functionResponse: { name: 'get_weather', response: { content: `${city}: cold.` } } }]);
      expect(done.map((p) => p.text).join('')).toContain('Simulated reply');
    }

    // Every later request carried each call with its signature, on the same part, after the call (Gemini's order).
    const calls = h.tap.filter((e) => e.method === 'POST');
    expect(calls).toHaveLength(4);
    const modelTurns = JSON.parse(calls[3]!.body).contents.filter((c: { role: string }) => c.role === 'model');
    expect(modelTurns[0].parts).toEqual([{ functionCall: { name: 'get_weather', args: { city: 'simulated' } }, thoughtSignature: signatures[0] }]);
    expect(modelTurns[2].parts).toEqual([{ functionCall: { name: 'get_weather', args: { city: 'simulated' } }, thoughtSignature: signatures[1] }]);
    expect(calls[1]!.body).toContain(`{"functionCall":{"name":"get_weather","args":{"city":"simulated"}},"thoughtSignature":${JSON.stringify(signatures[0])}}`);
    // A text reply's signature (on its last part) is kept as well.
    expect(modelTurns[1].parts[0].thoughtSignature).toEqual(expect.any(String));
    // Rendered for Anthropic, the signatures are left out.
    expect((await client.get(`/v1/handles/${session.id}/expand?format=anthropic`)).text).not.toContain(signatures[0]!);

    await expectColdThenCaptured(bundle.id, 4);
  });
});
