// Multi-turn agent loops through the proxy with the official SDKs: a bundle of
// tools and a long system prompt, a session that becomes the conversation's
// server-side state, and the handle report that results — a cold first turn,
// then captured reads confirmed by the (simulated) provider's own usage.

import Anthropic from '@anthropic-ai/sdk';
import { betaTool } from '@anthropic-ai/sdk/helpers/beta/json-schema';
import type OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mintBundle, mintSystem, mintTools, startSession } from '../helpers/factories';
import { LONG_SYSTEM } from '../helpers/scenario';
import { committed, startHarness, type Harness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const MINUTE = 60_000;
const TURNS = 4;

async function agentSetup(withSessionBase = true) {
  const client = h.tenant.client;
  const tools = await mintTools(client);
  const sys = await mintSystem(client, LONG_SYSTEM);
  const bundle = await mintBundle(client, [tools.id, sys.id]);
  const session = await startSession(client, withSessionBase ? { base: bundle.id } : {});
  return { client, tools, sys, bundle, session };
}

/** One turn per format and mode; returns the reply text and our request id. */
type Turn = (question: string) => Promise<{ text: string; requestId: string }>;

function anthropicTurn(sdk: Anthropic, stream: boolean): Turn {
  return async (question) => {
    const params = { model: 'claude-sonnet-4-6', max_tokens: 256, messages: [{ role: 'user' as const, content: question }] };
    if (!stream) {
      const { data, response } = await sdk.messages.create(params).withResponse();
      return { text: data.content.map((b) => (b.type === 'text' ? b.text : '')).join(''), requestId: response.headers.get('x-ph-request-id')! };
    }
    const s = sdk.messages.stream(params);
    const message = await s.finalMessage();
    const { response } = await s.withResponse();
    return { text: message.content.map((b) => (b.type === 'text' ? b.text : '')).join(''), requestId: response.headers.get('x-ph-request-id')! };
  };
}

function chatTurn(sdk: OpenAI, stream: boolean): Turn {
  return async (question) => {
    const messages = [{ role: 'user' as const, content: question }];
    if (!stream) {
      const { data, response } = await sdk.chat.completions.create({ model: 'gpt-4.1', messages }).withResponse();
      return { text: data.choices[0]!.message.content ?? '', requestId: response.headers.get('x-ph-request-id')! };
    }
    const { data, response } = await sdk.chat.completions.create({ model: 'gpt-4.1', messages, stream: true }).withResponse();
    let text = '';
    for await (const chunk of data) text += chunk.choices[0]?.delta.content ?? '';
    return { text, requestId: response.headers.get('x-ph-request-id')! };
  };
}

function responsesTurn(sdk: OpenAI, stream: boolean): Turn {
  return async (question) => {
    if (!stream) {
      const { data, response } = await sdk.responses.create({ model: 'gpt-4.1', input: question }).withResponse();
      return { text: data.output_text, requestId: response.headers.get('x-ph-request-id')! };
    }
    const { data, response } = await sdk.responses.create({ model: 'gpt-4.1', input: question, stream: true }).withResponse();
    let text = '';
    for await (const event of data) if (event.type === 'response.output_text.delta') text += event.delta;
    return { text, requestId: response.headers.get('x-ph-request-id')! };
  };
}

const CASES = [
  { name: 'anthropic messages', make: (h: Harness, headers: Record<string, string>, stream: boolean) => anthropicTurn(h.anthropic({ headers }), stream) },
  { name: 'openai chat completions', make: (h: Harness, headers: Record<string, string>, stream: boolean) => chatTurn(h.openai({ headers }), stream) },
  { name: 'openai responses', make: (h: Harness, headers: Record<string, string>, stream: boolean) => responsesTurn(h.openai({ headers }), stream) },
];

describe.each(CASES)('$name', ({ make }) => {
  it.each([false, true])('stream=%s: the session carries the conversation; the bundle goes cold once, then is read from cache', async (stream) => {
    const { client, bundle, session } = await agentSetup();
    const turn = make(h, { 'x-ph-session': session.id }, stream);
    const transcript: string[] = [];
    const requestIds: string[] = [];
    for (let i = 1; i <= TURNS; i++) {
      const question = `Question ${i}: what is the weather in city ${i}?`;
      const { text, requestId } = await turn(question);
      expect(text).toContain(`Question ${i}`);
      transcript.push(question, text);
      requestIds.push(requestId);
      h.clock.advance(MINUTE);
    }
    await committed(h);

    // The session is the conversation: every question and every reply, in order, nothing else.
    const expanded = (await client.get(`/v1/handles/${session.id}/expand?format=neutral`)).json;
    expect(expanded.messages.map((m: { content: unknown }) => (typeof m.content === 'string' ? m.content : (m.content as { text: string }[])[0]!.text))).toEqual(transcript);
    expect((await client.get(`/v1/handles/${session.id}`)).json.version.version).toBe(TURNS + 1);

    // Each later turn sent the earlier ones from the session, before this turn's question.
    const calls = h.tap.filter((e) => e.method === 'POST');
    expect(calls).toHaveLength(TURNS);
    expect(calls[TURNS - 1]!.body).toContain(transcript[0]!);
    expect(calls[TURNS - 1]!.body.indexOf(transcript[TURNS * 2 - 3]!)).toBeLessThan(calls[TURNS - 1]!.body.indexOf(transcript[TURNS * 2 - 2]!));

    const rep = (await client.get(`/v1/reports/handles/${bundle.id}`)).json;
    expect(rep.requests).toBe(TURNS);
    expect(rep.requests_with.cold).toBe(1);
    expect(rep.tokens.cold).toBeGreaterThan(0);
    // Everything the simulated cache could serve, the provider confirmed; nothing leaked to drift, expiry or unknown.
    expect(rep.tokens.captured).toBeGreaterThan(2 * rep.tokens.cold);
    expect(rep.tokens.captured).toBe(rep.tokens.predicted);
    expect(rep.tokens).toMatchObject({ unconfirmed: 0, unknown: 0, drift: 0, expired: 0, concurrent: 0 });
    // Every referenced token is the first turn's write, a read, or (OpenAI caches in 128-token steps) the tail after the last step.
    expect(rep.tokens.cold + rep.tokens.captured + rep.tokens.below_minimum).toBe(rep.tokens.referenced);
    expect(rep.tokens.below_minimum).toBeLessThan(128 * (TURNS - 1));

    // Per request: the first wrote the prefix, every later one read it (the provider's receipt).
    for (const [i, id] of requestIds.entries()) {
      const r = (await client.get(`/v1/requests/${id}`)).json;
      expect(r.status).toBe('reconciled');
      expect(r.outcome.capture).toBe('reported');
      if (i === 0) expect(r.usage.cache_read_tokens).toBe(0);
      else expect(r.usage.cache_read_tokens).toBeGreaterThan(0);
    }
  });
});

describe('a tool-using loop', () => {
  it("the assistant's tool_use and the caller's tool_result become session turns, sent back in order", async () => {
    await h.close();
    // The simulator answers in text; the first answer is turned into a tool call, as a model would make.
    h = await startHarness({
      rewrite: (body, type) => {
        if (!type.startsWith('application/json') || !body.includes('Simulated reply #1')) return body;
        const message = JSON.parse(body);
        message.content = [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Oslo' } }];
        message.stop_reason = 'tool_use';
        return JSON.stringify(message);
      },
    });
    const { client, session } = await agentSetup();
    const sdk = h.anthropic({ headers: { 'x-ph-session': session.id } });
    const first = await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 256, messages: [{ role: 'user', content: 'Weather in Oslo?' }] });
    expect(first.stop_reason).toBe('tool_use');
    h.clock.advance(MINUTE);
    // A turn that does not answer the call (or answers another one) is refused before the provider is called.
    const calls = h.tap.length;
    for (const [content, pointer] of [
      ['never mind', '/messages/0'],
      [[{ type: 'tool_result', tool_use_id: 'toolu_bogus', content: 'x' }], '/messages/0/content/0/tool_use_id'],
    ] as const) {
      const refused = await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 256, messages: [{ role: 'user', content: content as never }] }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
      expect((refused as { error: { errors: Array<{ pointer: string }> } }).error.errors[0]!.pointer).toBe(pointer);
    }
    expect(h.tap.length).toBe(calls);
    await sdk.messages.create({
      model: 'claude-sonnet-4-6',
      max_tokens: 256,
      messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: 'Cold, 2°C.' }] }],
    });

    // What the provider got on turn two: the session's turns (the service's breakpoint aside), then the result.
    const sent = JSON.parse(h.tap[1]!.body, (k, v) => (k === 'cache_control' ? undefined : v));
    expect(sent.messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Weather in Oslo?' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Oslo' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: 'Cold, 2°C.' }] },
    ]);

    const neutral = (await client.get(`/v1/handles/${session.id}/expand?format=neutral`)).json.messages;
    expect(neutral.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(neutral[1].content[1]).toEqual({ type: 'tool_use', id: 'toolu_01', name: 'get_weather', input: { city: 'Oslo' } });
    expect(neutral[2].content[0]).toEqual({ type: 'tool_result', tool_use_id: 'toolu_01', content: 'Cold, 2°C.' });
  });
});

describe("a reply calling a tool the session cannot keep (a custom tool's freeform call)", () => {
  // Dropped from the reply, the call would leave the user's message in the session with no answer after it, and the
  // next turn's tool output (which a session cannot hold either) answering nothing: the turn is not kept, and said.
  const customChat = { id: 'call_c1', type: 'custom', custom: { name: 'run_sql', input: 'SELECT 1' } };
  const customItem = { type: 'custom_tool_call', id: 'ctc_1', call_id: 'call_c1', name: 'run_sql', input: 'SELECT 1', status: 'completed' };
  it.each(['chat', 'responses'] as const)('%s: answered as the provider sent it, nothing appended, session_not_appended', async (api) => {
    await h.close();
    h = await startHarness({
      rewrite: (body, type) => {
        if (!type.startsWith('application/json')) return body;
        const answer = JSON.parse(body);
        if (api === 'chat') answer.choices[0] = { ...answer.choices[0], message: { role: 'assistant', content: null, tool_calls: [customChat] }, finish_reason: 'tool_calls' };
        else answer.output = [customItem];
        return JSON.stringify(answer);
      },
    });
    const client = h.tenant.client;
    const session = await startSession(client);
    const sdk = h.openai({ headers: { 'x-ph-session': session.id } });
    const tools = [{ type: 'custom' as const, custom: { name: 'run_sql' } }];
    const { data, response } =
      api === 'chat'
        ? await sdk.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'Run the query' }], tools: tools as never }).withResponse()
        : await sdk.responses.create({ model: 'gpt-4.1', input: 'Run the query', tools: [{ type: 'custom', name: 'run_sql' }] as never }).withResponse();
    expect(api === 'chat' ? (data as OpenAI.ChatCompletion).choices[0]!.message.tool_calls : (data as OpenAI.Responses.Response).output).toEqual([api === 'chat' ? customChat : customItem]);
    expect(response.headers.get('x-ph-warnings')).toBe('session_not_appended');
    expect((await client.get(`/v1/handles/${session.id}`)).json.latest_version).toBe(1);
  });
});

describe("the Anthropic SDK's toolRunner, which keeps the conversation in a server-held thread", () => {
  // From its second turn on it sends `thread: {type: "continue", previous_message_id}` and only the new messages: the
  // provider prepends the thread's history, and a session would prepend it again — every earlier turn sent twice, as
  // with OpenAI's previous_response_id (refused the same way). With x-ph-prefix alone it is served.
  const weather = betaTool({ name: 'get_weather', description: 'Weather for a city', inputSchema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } as const, run: () => 'Sunny' });
  const params = { model: 'claude-sonnet-4-6', max_tokens: 256, max_iterations: 4, tools: [weather], messages: [{ role: 'user' as const, content: 'Use get_weather for Oslo.' }] };

  it('with x-ph-session: the continuing turn is a 400 naming /thread, before the provider is called', async () => {
    const client = h.tenant.client;
    const session = await startSession(client);
    const runner = h.anthropic({ headers: { 'x-ph-session': session.id } }).beta.messages.toolRunner(params);
    const refused = await (async () => {
      for await (const _ of runner);
    })().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
    expect((refused as { error: { errors: Array<{ pointer: string }> } }).error.errors[0]!.pointer).toBe('/thread');
    expect(h.tap.map((t) => JSON.parse(t.body).thread)).toEqual([{ type: 'create' }]);
    // The first turn (which started the thread) was answered and kept; nothing after it.
    expect((await client.get(`/v1/handles/${session.id}`)).json.latest_version).toBe(2);
  });

  it('with x-ph-prefix alone: every turn is served', async () => {
    const sys = await mintSystem(h.tenant.client, LONG_SYSTEM);
    const runner = h.anthropic({ headers: { 'x-ph-prefix': sys.id } }).beta.messages.toolRunner(params);
    const stops: string[] = [];
    for await (const message of runner) stops.push(message.stop_reason!);
    expect(stops).toEqual(['tool_use', 'end_turn']);
    expect(JSON.parse(h.tap[1]!.body).thread).toMatchObject({ type: 'continue' });
  });
});

describe('two turns racing on one session', () => {
  it('both are answered; only the first to finish is appended, the other is not interleaved into it', async () => {
    await h.close();
    h = await startHarness({ firstByteDelayMs: 50 });
    const { client, session } = await agentSetup();
    const sdk = h.anthropic({ headers: { 'x-ph-session': session.id } });
    const ask = (q: string) => sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: q }] }).withResponse();
    const answers = await Promise.all([ask('first racer'), ask('second racer')]);
    expect(answers.every((a) => a.data.content.length === 1)).toBe(true);
    // The one left out is told so.
    expect(answers.map((a) => a.response.headers.get('x-ph-warnings')).sort()).toEqual([null, 'session_not_appended']);
    const metrics = await h.t.services.metrics.registry.getSingleMetricAsString('ph_proxy_session_appends_total');
    expect(metrics).toContain('ph_proxy_session_appends_total{result="appended"} 1');
    expect(metrics).toContain('ph_proxy_session_appends_total{result="not_appended"} 1');

    const described = (await client.get(`/v1/handles/${session.id}`)).json;
    expect(described.version.version).toBe(2);
    const kept = (await client.get(`/v1/handles/${session.id}/expand?format=neutral`)).json.messages;
    expect(kept).toHaveLength(2);
    const text = (m: { content: string | { text: string }[] }) => (typeof m.content === 'string' ? m.content : m.content[0]!.text);
    // One question and its own answer, never the other racer's.
    expect(text(kept[1])).toContain(text(kept[0]));
  });
});

describe('warnings', () => {
  it('x-ph-warnings names what /v1/render would warn about: the bundle sent again beside a session based on it', async () => {
    const { bundle, session } = await agentSetup(true);
    const ask = (headers: Record<string, string>) =>
      h.anthropic({ headers }).messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    const once = await ask({ 'x-ph-session': session.id });
    expect(once.response.headers.get('x-ph-warnings')).toBeNull();
    // The bundle holds tools: sent twice, their names would be too, which providers refuse. Refused before the call.
    const twice = await ask({ 'x-ph-session': session.id, 'x-ph-prefix': bundle.id }).catch((e: unknown) => e);
    expect(twice).toBeInstanceOf(Anthropic.BadRequestError);
    // The later placement is named: the session's base, after the header's bundle.
    expect((twice as { error: { errors: unknown } }).error.errors).toEqual([{ pointer: 'header:x-ph-session', detail: expect.stringContaining('(the same tools placed twice: a bundle or a session based on one sends them already; name it alone)') }]);
    expect(h.tap).toHaveLength(1);
    // A bundle without tools, sent again beside a session based on it: a warning, and the call goes out.
    const sysOnly = await mintBundle(h.tenant.client, [(await mintSystem(h.tenant.client, LONG_SYSTEM)).id]);
    const based = await startSession(h.tenant.client, { base: sysOnly.id });
    const warned = await ask({ 'x-ph-session': based.id, 'x-ph-prefix': sysOnly.id });
    expect(warned.response.headers.get('x-ph-warnings')).toBe('repeated_handle');
  });

  it('x-ph-warnings names an Anthropic-defined tool version the catalog has no figure for (sent as given, counted as its JSON)', async () => {
    const tools = [{ type: 'text_editor_20250728', name: 'str_replace_based_edit_tool' }] as unknown as Anthropic.ToolUnion[];
    const answer = await h.anthropic({}).messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, tools, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    expect(answer.response.headers.get('x-ph-warnings')).toBe('tool_tokens_estimated');
    expect((JSON.parse(h.tap.at(-1)!.body) as { tools: unknown }).tools).toEqual(tools);
  });

  it('a system message in the body beside x-ph-session: said in x-ph-warnings, since it stands after the history and is never read from the cache', async () => {
    const client = h.tenant.client;
    const session = await startSession(client, {});
    const chat = h.openai({ headers: { 'x-ph-session': session.id } });
    const reads: number[] = [];
    for (let i = 0; i < 3; i++) {
      const { data, response } = await chat.chat.completions
        .create({ model: 'gpt-4.1', messages: [{ role: 'system', content: LONG_SYSTEM }, { role: 'user', content: `question ${i}` }] })
        .withResponse();
      expect(response.headers.get('x-ph-warnings')).toBe('system_after_session');
      reads.push(data.usage!.prompt_tokens_details!.cached_tokens!);
      h.clock.advance(MINUTE);
    }
    // What it warns of: the system prompt follows the growing history, so no turn reads it (the history is under a cache step).
    expect(reads).toEqual([0, 0, 0]);
    // The same prompt in x-ph-prefix comes before the history: read from the second turn on, and no warning.
    const sys = await mintSystem(client, LONG_SYSTEM);
    const prefixed = h.openai({ headers: { 'x-ph-session': (await startSession(client, {})).id, 'x-ph-prefix': sys.id } });
    for (let i = 0; i < 2; i++) {
      const { data, response } = await prefixed.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: `question ${i}` }] }).withResponse();
      expect(response.headers.get('x-ph-warnings')).toBeNull();
      if (i) expect(data.usage!.prompt_tokens_details!.cached_tokens).toBeGreaterThan(1024);
      h.clock.advance(MINUTE);
    }
    // Responses: a developer item in the input is warned of; `instructions`, which OpenAI puts before the input, is not.
    const responses = h.openai({ headers: { 'x-ph-session': (await startSession(client, {})).id } }).responses;
    const dev = await responses.create({ model: 'gpt-4.1', input: [{ role: 'developer', content: 'Be brief.' }, { role: 'user', content: 'hi' }] }).withResponse();
    expect(dev.response.headers.get('x-ph-warnings')).toBe('system_after_session');
    const instructions = await responses.create({ model: 'gpt-4.1', instructions: 'Be brief.', input: 'hi again' }).withResponse();
    expect(instructions.response.headers.get('x-ph-warnings')).toBeNull();
    // Without a session the system message is the prompt's start: nothing to warn of.
    const { response } = await h.openai().chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi' }] }).withResponse();
    expect(response.headers.get('x-ph-warnings')).toBeNull();
  });
});

describe('handles without a session', () => {
  it('x-ph-prefix prepends a bundle for the OpenAI SDK; handle blocks in the body work as in /v1/render', async () => {
    const { client, bundle, sys } = await agentSetup(false);
    const chat = h.openai({ headers: { 'x-ph-prefix': bundle.id } });
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { response } = await chat.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: `hello ${i}` }] }).withResponse();
      ids.push(response.headers.get('x-ph-request-id')!);
      h.clock.advance(MINUTE);
    }
    const sent = JSON.parse(h.tap[0]!.body);
    expect(sent.messages[0]).toEqual({ role: 'system', content: LONG_SYSTEM });
    expect(sent.tools[0].function.name).toBe('get_weather');
    // The proxy routes requests that start with the same handle to the same OpenAI cache.
    expect(sent.prompt_cache_key).toBe(`ph-${bundle.id}`);
    // …and the request says which key it was sent with.
    expect((await client.get(`/v1/requests/${ids[0]}`)).json.prompt_cache_key).toBe(`ph-${bundle.id}`);

    // The Anthropic SDK does not know handle blocks; the body carries them anyway.
    const messages = h.anthropic();
    const system = [{ type: 'handle', ref: sys.id }] as unknown as Anthropic.TextBlockParam[];
    for (let i = 0; i < 2; i++) {
      await messages.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 64, system, messages: [{ role: 'user', content: `hi ${i}` }] });
      h.clock.advance(MINUTE);
    }
    const anthropicBody = JSON.parse(h.tap[2]!.body);
    expect(anthropicBody.system[0]).toEqual({ type: 'text', text: LONG_SYSTEM, cache_control: { type: 'ephemeral' } });
    await committed(h);

    const bundleRep = (await client.get(`/v1/reports/handles/${bundle.id}`)).json;
    expect(bundleRep).toMatchObject({ requests: 2, requests_with: { cold: 1 }, tokens: { unconfirmed: 0, unknown: 0 } });
    expect(bundleRep.tokens.captured).toBeGreaterThan(0);
    const sysRep = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
    // Two chat requests through the bundle, two Anthropic requests naming the artifact itself.
    expect(sysRep.requests).toBe(4);
    expect(sysRep.requests_with.cold).toBe(2);
  });
});

/** One tool round trip per format: the question that makes the simulated model call a tool, then the tool's result. */
interface ToolLoop {
  /** Asks; returns the call's id when the answer is a tool call (else null) and our request id. */
  ask(question: string): Promise<{ callId: string | null; requestId: string }>;
  /** Sends the tool's result for the call; returns the reply text. */
  answer(callId: string, result: string): Promise<{ text: string; requestId: string }>;
}

function anthropicToolLoop(sdk: Anthropic, stream: boolean): ToolLoop {
  const send = async (messages: Anthropic.MessageParam[]) => {
    const params = { model: 'claude-sonnet-4-6', max_tokens: 256, messages };
    if (!stream) {
      const { data, response } = await sdk.messages.create(params).withResponse();
      return { message: data, requestId: response.headers.get('x-ph-request-id')! };
    }
    const s = sdk.messages.stream(params);
    const message = await s.finalMessage();
    return { message, requestId: (await s.withResponse()).response.headers.get('x-ph-request-id')! };
  };
  return {
    async ask(question) {
      const { message, requestId } = await send([{ role: 'user', content: question }]);
      const call = message.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use');
      return { callId: call?.id ?? null, requestId };
    },
    async answer(callId, result) {
      const { message, requestId } = await send([{ role: 'user', content: [{ type: 'tool_result', tool_use_id: callId, content: result }] }]);
      return { text: message.content.map((b) => (b.type === 'text' ? b.text : '')).join(''), requestId };
    },
  };
}

function chatToolLoop(sdk: OpenAI, stream: boolean): ToolLoop {
  const send = async (messages: OpenAI.ChatCompletionMessageParam[]) => {
    if (!stream) {
      const { data, response } = await sdk.chat.completions.create({ model: 'gpt-4.1', messages }).withResponse();
      return { message: data.choices[0]!.message, requestId: response.headers.get('x-ph-request-id')! };
    }
    // The SDK's chunks, assembled as its stream helper would: the call's id arrives first, its arguments in pieces.
    const { data, response } = await sdk.chat.completions.create({ model: 'gpt-4.1', messages, stream: true }).withResponse();
    let content = '';
    let callId: string | undefined;
    for await (const chunk of data) {
      content += chunk.choices[0]?.delta.content ?? '';
      callId ??= chunk.choices[0]?.delta.tool_calls?.[0]?.id;
    }
    const message = { content, tool_calls: callId ? [{ id: callId }] : undefined };
    return { message, requestId: response.headers.get('x-ph-request-id')! };
  };
  return {
    async ask(question) {
      const { message, requestId } = await send([{ role: 'user', content: question }]);
      return { callId: message.tool_calls?.[0]?.id ?? null, requestId };
    },
    async answer(callId, result) {
      const { message, requestId } = await send([{ role: 'tool', tool_call_id: callId, content: result }]);
      return { text: message.content ?? '', requestId };
    },
  };
}

function responsesToolLoop(sdk: OpenAI, stream: boolean): ToolLoop {
  const send = async (input: OpenAI.Responses.ResponseInput) => {
    if (!stream) {
      const { data, response } = await sdk.responses.create({ model: 'gpt-4.1', input }).withResponse();
      return { response: data, requestId: response.headers.get('x-ph-request-id')! };
    }
    const { data, response } = await sdk.responses.create({ model: 'gpt-4.1', input, stream: true }).withResponse();
    let final: OpenAI.Responses.Response | undefined;
    for await (const event of data) if (event.type === 'response.completed') final = event.response;
    return { response: final!, requestId: response.headers.get('x-ph-request-id')! };
  };
  return {
    async ask(question) {
      const { response, requestId } = await send([{ role: 'user', content: question }]);
      const call = response.output.find((o): o is OpenAI.Responses.ResponseFunctionToolCall => o.type === 'function_call');
      return { callId: call?.call_id ?? null, requestId };
    },
    async answer(callId, result) {
      const { response, requestId } = await send([{ type: 'function_call_output', call_id: callId, output: result }]);
      // output_text is the SDK's own addition to a non-streamed response: read the message itself.
      const text = response.output.flatMap((o) => (o.type === 'message' ? o.content.map((c) => (c.type === 'output_text' ? c.text : '')) : [])).join('');
      return { text, requestId };
    },
  };
}

const TOOL_CASES = [
  { name: 'anthropic messages', make: (h: Harness, headers: Record<string, string>, stream: boolean) => anthropicToolLoop(h.anthropic({ headers }), stream) },
  { name: 'openai chat completions', make: (h: Harness, headers: Record<string, string>, stream: boolean) => chatToolLoop(h.openai({ headers }), stream) },
  { name: 'openai responses', make: (h: Harness, headers: Record<string, string>, stream: boolean) => responsesToolLoop(h.openai({ headers }), stream) },
];

describe('a turn that sends the session\'s history again', () => {
  it('chat: the whole conversation re-sent is a 400 saying to send only the new messages, before the provider is called; the session keeps its history once', async () => {
    const { client, session } = await agentSetup();
    const openai = h.openai({ headers: { 'x-ph-session': session.id } });
    const first = await openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'Hello there.' }] });
    const reply = first.choices[0]!.message.content!;
    const calls = h.tap.length;
    const err = await openai.chat.completions
      .create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'Hello there.' }, { role: 'assistant', content: reply }, { role: 'user', content: 'And then?' }] })
      .then(() => null, (e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(err?.status).toBe(400);
    // (The OpenAI SDK shows the problem's `error` member: its message says what to do.)
    expect(err!.message).toContain("400 this turn starts with the session's last 2 messages again: the session sends its history itself, so send only the new messages (to continue its last reply, send none: the session already ends with it)");
    expect(h.tap.length).toBe(calls);
    // The same question twice in a row (no reply repeated) is a user's own turn: served.
    const again = await openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'Hello there.' }] }).withResponse();
    expect(again.response.status).toBe(200);
    await committed(h);
    const kept = (await client.get(`/v1/handles/${session.id}/expand?format=neutral`)).json.messages as Array<{ role: string }>;
    expect(kept.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
  });

  it("responses: the previous response's output sent back before the tool output is a 400 that says so, not a tool pairing puzzle", async () => {
    const { session } = await agentSetup();
    const openai = h.openai({ headers: { 'x-ph-session': session.id } });
    const asked = await openai.responses.create({ model: 'gpt-4.1', input: [{ role: 'user', content: 'Use get_weather for Oslo.' }] });
    const call = asked.output.find((o): o is OpenAI.Responses.ResponseFunctionToolCall => o.type === 'function_call')!;
    expect(call).toBeDefined();
    const err = await openai.responses
      .create({ model: 'gpt-4.1', input: [...(asked.output as OpenAI.Responses.ResponseInput), { type: 'function_call_output', call_id: call.call_id, output: 'Oslo: 2°C' }] })
      .then(() => null, (e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(err?.status).toBe(400);
    expect(err!.message).toContain("400 this turn starts with the session's last message again: the session sends its history itself, so send only the new messages");
    // Sent as the README says (only the tool output), the loop goes on.
    const answered = await openai.responses.create({ model: 'gpt-4.1', input: [{ type: 'function_call_output', call_id: call.call_id, output: 'Oslo: 2°C' }] });
    expect(answered.status).toBe('completed');
  });
});

describe.each(TOOL_CASES)('a tool loop the simulator drives: $name', ({ make }) => {
  it.each([false, true])('stream=%s: each call and result joins the session; every turn after the first reads the bundle from cache', async (stream) => {
    const { client, bundle, session } = await agentSetup();
    const loop = make(h, { 'x-ph-session': session.id }, stream);
    const requestIds: string[] = [];
    for (const city of ['Oslo', 'Lima']) {
      const asked = await loop.ask(`Use get_weather for ${city}.`);
      expect(asked.callId).not.toBeNull();
      h.clock.advance(MINUTE);
      const answered = await loop.answer(asked.callId!, `${city}: 2°C`);
      expect(answered.text).toMatch(/^Simulated reply/);
      h.clock.advance(MINUTE);
      requestIds.push(asked.requestId, answered.requestId);
    }
    await committed(h);

    // The session holds the whole loop in order: question, call, result, reply, twice.
    const kept = (await client.get(`/v1/handles/${session.id}/expand?format=neutral`)).json.messages as Array<{ role: string; content: unknown }>;
    const kinds = kept.map((m) => `${m.role}:${typeof m.content === 'string' ? 'text' : (m.content as Array<{ type: string }>).map((p) => p.type).join('+')}`);
    expect(kinds).toEqual(['user:text', 'assistant:tool_use', 'user:tool_result', 'assistant:text', 'user:text', 'assistant:tool_use', 'user:tool_result', 'assistant:text']);
    // The last call the provider saw carried the first round trip before its own question.
    const last = h.tap.filter((e) => e.method === 'POST').at(-1)!.body;
    expect(last.indexOf('Oslo: 2°C')).toBeGreaterThan(0);
    expect(last.indexOf('Oslo: 2°C')).toBeLessThan(last.indexOf('Lima: 2°C'));

    const rep = (await client.get(`/v1/reports/handles/${bundle.id}`)).json;
    expect(rep.requests).toBe(4);
    expect(rep.requests_with.cold).toBe(1);
    expect(rep.tokens.captured).toBe(rep.tokens.predicted);
    expect(rep.tokens.captured).toBeGreaterThan(2 * rep.tokens.cold);
    expect(rep.tokens).toMatchObject({ unconfirmed: 0, unknown: 0, drift: 0, expired: 0 });
    for (const id of requestIds) expect((await client.get(`/v1/requests/${id}`)).json.status).toBe('reconciled');
  });
});
