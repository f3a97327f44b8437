// Gemini through the proxy with the official @google/genai SDK: only its base URL
// (httpOptions.baseUrl) changed and x-ph-key added. generateContent and
// streamGenerateContent (?alt=sse) rendered with handles, recorded and reconciled
// from Gemini's usageMetadata; countTokens and the model list passed on.

import { ApiError, GoogleGenAI } from '@google/genai';
import { serve, type ServerType } from '@hono/node-server';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import { mintBundle, mintSystem, mintTools, startSession } from '../helpers/factories';
import { createTestApp } from '../helpers/app';
import { committed, eventually, rejection, startHarness, type Harness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const MINUTE = 60_000;
const TURNS = 4;
const MODEL = 'gemini-2.5-flash';
/** The model's implicit-cache minimum, as the catalog has it. */
const MIN = new ModelCatalog(loadCatalog()).lookup(MODEL, 'gemini').entry.cache.minTokens;
// Well over the implicit-cache minimum, as a real agent's instructions are.
const SYSTEM = 'You are the support agent for a large handbook. Follow every policy exactly and cite sections. '.repeat(400);

async function agentSetup() {
  const client = h.tenant.client;
  const tools = await mintTools(client);
  const sys = await mintSystem(client, SYSTEM);
  const bundle = await mintBundle(client, [tools.id, sys.id]);
  const session = await startSession(client, { base: bundle.id });
  return { client, bundle, session };
}

/** One turn through the SDK; the reply's text, our request id (from the raw response headers), its usage. */
async function turn(headers: Record<string, string>, question: string, stream: boolean, apiVersion?: string) {
  const ai = h.gemini({ headers, apiVersion });
  const contents = [{ role: 'user', parts: [{ text: question }] }];
  if (!stream) {
    const res = await ai.models.generateContent({ model: MODEL, contents });
    return { text: res.text ?? '', requestId: res.sdkHttpResponse?.headers?.['x-ph-request-id'], usage: res.usageMetadata };
  }
  let text = '';
  let requestId: string | undefined;
  let usage;
  for await (const chunk of await ai.models.generateContentStream({ model: MODEL, contents })) {
    text += chunk.text ?? '';
    requestId ??= chunk.sdkHttpResponse?.headers?.['x-ph-request-id'];
    usage = chunk.usageMetadata;
  }
  return { text, requestId, usage };
}

describe('an agent loop over a bundle and a session', () => {
  // @google/genai 3.x calls v1 by default, 2.x (pinned: Node 20) v1beta, the REST docs' version: both are served.
  it.each([
    { stream: false, version: 'v1' },
    { stream: true, version: 'v1' },
    { stream: true, version: 'v1beta' },
  ])('stream=$stream, $version: the session carries the conversation; the bundle goes cold once, then is read from cache', async ({ stream, version }) => {
    const { client, bundle, session } = await agentSetup();
    const transcript: string[] = [];
    const requestIds: string[] = [];
    for (let i = 1; i <= TURNS; i++) {
      const question = `Question ${i}: what is the weather in city ${i}?`;
      const { text, requestId, usage } = await turn({ 'x-ph-session': session.id }, question, stream, version);
      expect(text).toContain(`Question ${i}`);
      expect(requestId).toMatch(/^req_/);
      // Gemini's own usage reaches the SDK: a cache hit only after the first turn.
      if (i === 1) expect(usage?.cachedContentTokenCount).toBeUndefined();
      else expect(usage?.cachedContentTokenCount).toBeGreaterThan(MIN);
      transcript.push(question, text);
      requestIds.push(requestId!);
      h.clock.advance(MINUTE);
    }
    await committed(h);

    // The session is the conversation: every question and reply, in order.
    const expanded = (await client.get(`/v1/handles/${session.id}/expand?format=neutral`)).json;
    expect(expanded.messages.map((m: { content: unknown }) => (typeof m.content === 'string' ? m.content : (m.content as { text: string }[])[0]!.text))).toEqual(transcript);

    // The URL the SDK called, the key it sent (untouched, never ours), and each later turn sent the history first.
    const calls = h.tap.filter((e) => e.method === 'POST');
    expect(calls).toHaveLength(TURNS);
    expect(calls[0]!.path).toBe(`/${version}/models/${MODEL}:${stream ? 'streamGenerateContent?alt=sse' : 'generateContent'}`);
    expect(calls[0]!.headers.get('x-goog-api-key')).toBe('gemini-test-key');
    expect(calls[0]!.headers.get('x-ph-key')).toBeNull();
    const last = JSON.parse(calls[TURNS - 1]!.body);
    expect(last.systemInstruction.parts[0].text).toBe(SYSTEM);
    expect(last.tools[0].functionDeclarations.length).toBeGreaterThan(0);
    expect(last.contents.map((c: { role: string }) => c.role)).toEqual([...Array(TURNS - 1).fill(['user', 'model']).flat(), 'user']);

    const rep = (await client.get(`/v1/reports/handles/${bundle.id}`)).json;
    expect(rep.requests).toBe(TURNS);
    expect(rep.requests_with.cold).toBe(1);
    expect(rep.tokens.cold).toBeGreaterThan(0);
    expect(rep.tokens.captured).toBeGreaterThan(2 * rep.tokens.cold);
    // Every token the simulated implicit cache could serve, Gemini's usage confirmed; the bundle is over the minimum.
    expect(rep.tokens.captured).toBe(rep.tokens.predicted);
    expect(rep.tokens.cold + rep.tokens.captured).toBe(rep.tokens.referenced);
    expect(rep.tokens).toMatchObject({ unconfirmed: 0, unknown: 0, drift: 0, expired: 0, concurrent: 0, below_minimum: 0 });

    for (const [i, id] of requestIds.entries()) {
      const r = (await client.get(`/v1/requests/${id}`)).json;
      expect(r.status).toBe('reconciled');
      expect(r.outcome.capture).toBe('reported');
      if (i === 0) expect(r.usage.cache_read_tokens).toBe(0);
      else expect(r.usage.cache_read_tokens).toBeGreaterThan(0);
    }
  });
});

describe('fields the proxy does not know', () => {
  it('reach the provider in the body as sent, and the SDK in the answer as Gemini sent them', async () => {
    await h.close();
    // A field of a newer API in Gemini's answer (the SDK keeps usageMetadata whole).
    h = await startHarness({ rewrite: (body) => body.replaceAll('"promptTokenCount":', '"futureTokenCount":7,"promptTokenCount":') });
    const { session } = await agentSetup();
    // extraBody: the SDK's way to send a field it does not know, at the top level and inside generationConfig.
    const ai = h.gemini({ headers: { 'x-ph-session': session.id } });
    for (const stream of [false, true]) {
      const params = {
        model: MODEL,
        contents: [{ role: 'user', parts: [{ text: `unknown fields, stream=${stream}` }] }],
        config: { temperature: 0.5, httpOptions: { extraBody: { futureField: { keep: ['as', 'sent'] }, generationConfig: { futureKnob: 3 } } } },
      };
      let usage: Record<string, unknown> | undefined;
      if (stream) for await (const chunk of await ai.models.generateContentStream(params)) usage = chunk.usageMetadata as Record<string, unknown>;
      else usage = (await ai.models.generateContent(params)).usageMetadata as Record<string, unknown>;
      expect(usage?.futureTokenCount).toBe(7);
    }
    await committed(h);
    const calls = h.tap.filter((e) => e.method === 'POST');
    for (const call of calls) {
      const sent = JSON.parse(call.body);
      expect(sent.futureField).toEqual({ keep: ['as', 'sent'] });
      expect(sent.generationConfig).toEqual({ temperature: 0.5, futureKnob: 3 });
      // The caller's members keep their order, after what the handles added (tools, systemInstruction).
      const keys = Object.keys(sent);
      expect(keys.indexOf('contents')).toBeLessThan(keys.indexOf('futureField'));
    }
    // Both answers were read (the unknown count is no reason to lose the known ones) and both turns kept.
    const rows = h.t.sqlite.prepare('select status from requests').all() as { status: string }[];
    expect(rows.map((r) => r.status)).toEqual(['reconciled', 'reconciled']);
    expect((await h.tenant.client.get(`/v1/handles/${session.id}`)).json.version.version).toBe(3);
  });
});

describe('provider errors pass through', () => {
  it.each([429, 500])('%i: the same ApiError, status and message as from Gemini itself; recorded as failed, nothing appended', async (status) => {
    const session = await startSession(h.tenant.client);
    const fault = { 'x-simulator-status': String(status) };
    const direct = new GoogleGenAI({ apiKey: 'gemini-test-key', httpOptions: { baseUrl: h.upstreamUrl, headers: fault } });
    const proxied = h.gemini({ headers: { ...fault, 'x-ph-session': session.id } });
    const params = { model: MODEL, contents: 'hi' };
    for (const call of [(ai: GoogleGenAI) => ai.models.generateContent(params), async (ai: GoogleGenAI) => (await ai.models.generateContentStream(params)).next()]) {
      const mine = await rejection(call(direct));
      const theirs = await rejection(call(proxied));
      expect(theirs).toBeInstanceOf(ApiError);
      expect(theirs.status).toBe(status);
      expect(theirs.message).toBe(mine.message);
      expect(JSON.parse(theirs.message).error.status).toBe(status === 429 ? 'RESOURCE_EXHAUSTED' : 'INTERNAL');
    }
    await committed(h);
    const rows = h.t.sqlite.prepare('select id, status from requests').all() as { id: string; status: string }[];
    expect(rows.map((r) => r.status)).toEqual(['failed', 'failed']);
    const row = (await h.tenant.client.get(`/v1/requests/${rows[0]!.id}`)).json;
    expect(row).toMatchObject({ status: 'failed', usage_raw: null, error: { status, body: { error: { code: status } } } });
    expect((await h.tenant.client.get(`/v1/handles/${session.id}`)).json.version.version).toBe(1);
  });
});

describe('a stream that does not finish', () => {
  it('the client aborts: the upstream call is cancelled, nothing is appended, usage is unknown', async () => {
    await h.close();
    h = await startHarness({ chunkDelayMs: 25 });
    const session = await startSession(h.tenant.client, { messages: [{ role: 'user', content: 'earlier' }, { role: 'assistant', content: 'noted' }] });
    const controller = new AbortController();
    const stream = await h.gemini({ headers: { 'x-ph-session': session.id } }).models.generateContentStream({
      model: MODEL,
      contents: 'a long answer please, many many words',
      config: { abortSignal: controller.signal },
    });
    await expect(
      (async () => {
        for await (const chunk of stream) if (chunk.text) controller.abort();
      })(),
    ).rejects.toThrow();

    await eventually(() => h.tap[0]!.events.includes('cancelled'), 'the upstream call is cancelled');
    const rows = () => h.t.sqlite.prepare('select id, status from requests').all() as { id: string; status: string }[];
    const [row] = await eventually(() => (rows()[0]?.status === 'reconciled' ? rows() : null), 'the request is reconciled');
    const view = (await h.tenant.client.get(`/v1/requests/${row!.id}`)).json;
    expect(view.usage).toMatchObject({ complete: false, cache_read_tokens: null });
    expect(view.outcome.capture).toBe('unknown');
    const described = (await h.tenant.client.get(`/v1/handles/${session.id}`)).json;
    expect(described.version.version).toBe(1);
    expect(described.version.message_count).toBe(2);
  });
});

describe('countTokens and the model list', () => {
  it('countTokens counts the body as generateContent would send it (x-ph-prefix included), records nothing; models.list passes through', async () => {
    const sys = await mintSystem(h.tenant.client, SYSTEM);
    const ai = h.gemini({ headers: { 'x-ph-prefix': sys.id } });
    const bare = await h.gemini().models.countTokens({ model: MODEL, contents: 'how many?' });
    const prefixed = await ai.models.countTokens({ model: MODEL, contents: 'how many?' });
    expect(prefixed.totalTokens! - bare.totalTokens!).toBeGreaterThan(MIN);
    // Gemini counts a system instruction only inside generateContentRequest, with its model.
    const [plain, wrapped] = h.tap.map((e) => JSON.parse(e.body));
    expect(plain).toEqual({ contents: [{ parts: [{ text: 'how many?' }], role: 'user' }] });
    expect(wrapped.generateContentRequest.model).toBe(`models/${MODEL}`);
    expect(wrapped.generateContentRequest.systemInstruction.parts[0].text).toBe(SYSTEM);
    expect(h.t.sqlite.prepare('select count(*) as n from requests').get()).toEqual({ n: 0 });

    const names: string[] = [];
    for await (const model of await ai.models.list()) names.push(model.name!);
    expect(names).toContain(`models/${MODEL}`);
    expect(h.tap.at(-1)!.headers.get('x-goog-api-key')).toBe('gemini-test-key');
  });
});

describe('bad input', () => {
  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${h.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-ph-key': h.key, 'x-goog-api-key': 'k', ...headers }, body });

  it('a model path that is not one, a body that is not JSON, a method the proxy does not serve, no x-ph-key: problem+json 4xx, the provider never called', async () => {
    const cases: Array<[Response, number, string, string?]> = [
      [await post('/proxy/gemini/v1/models/no%20such%2Fmodel:generateContent', '{"contents":[]}'), 400, 'invalid_request', 'path:model'],
      [await post('/proxy/gemini/v1beta/models/:generateContent', '{"contents":[]}'), 400, 'invalid_request', 'path:model'],
      [await post(`/proxy/gemini/v1/models/${MODEL}:generateContent`, '{"contents": [oops'), 400, 'malformed_json'],
      [await post(`/proxy/gemini/v1/models/${MODEL}:streamGenerateContent?alt=sse`, '[1, 2]'), 400, 'invalid_request'],
      [await post(`/proxy/gemini/v1/models/${MODEL}:embedContent`, '{}'), 404, 'route_not_found'],
      [await post(`/proxy/gemini/v1/models/${MODEL}:generateContent`, '{"contents":[]}', { 'x-ph-key': '' }), 401, 'unauthorized'],
    ];
    for (const [res, status, code, pointer] of cases) {
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      const body = (await res.json()) as { code: string; errors: Array<{ pointer: string }> };
      expect(body.code).toBe(code);
      if (pointer) expect(body.errors.map((e) => e.pointer)).toContain(pointer);
    }
    expect(h.tap).toHaveLength(0);
    // The 404 for another method names what is served, in the SDK's error member too.
    const other = (await (await post(`/proxy/gemini/v1/models/${MODEL}:embedContent`, '{}')).json()) as { error: { message: string } };
    expect(other.error.message).toContain(':generateContent, :streamGenerateContent and :countTokens');
    // The routes are documented.
    const doc = (await (await fetch(`${h.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/proxy/gemini/v1/models/{model}:generateContent', '/proxy/gemini/v1beta/models/{model}:streamGenerateContent', '/proxy/gemini/v1/models']));
  });

  it('a deleted handle is a 404 the SDK shows (code gone), naming it, before Gemini is called', async () => {
    const gone = await mintSystem(h.tenant.client, 'deleted before the call');
    expect((await h.tenant.client.delete(`/v1/handles/${gone.id}`)).status).toBe(204);
    const err = await rejection(h.gemini({ headers: { 'x-ph-prefix': gone.id } }).models.generateContent({ model: MODEL, contents: 'hi' }));
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(404);
    expect(err.message).toContain(gone.id);
    expect(h.tap).toHaveLength(0);
  });
});

describe('a handle block sent through @google/genai', () => {
  // The SDK copies only the part fields it knows: {"type":"handle","ref":…} reaches the proxy as {}. Passed on, the
  // handle was silently lost (the simulator read the empty part as nothing; Gemini refuses an empty part).
  it.each(['systemInstruction', 'contents'] as const)('in %s: a 400 the SDK shows, naming the headers to use, before Gemini is called', async (where) => {
    const sys = await mintSystem(h.tenant.client, SYSTEM);
    const handle = { type: 'handle', ref: sys.id } as never;
    const request =
      where === 'systemInstruction'
        ? { model: MODEL, contents: 'hi', config: { systemInstruction: { parts: [{ text: 'Current time: 09:00' }, handle] } } }
        : { model: MODEL, contents: [{ role: 'user', parts: [handle, { text: 'hi' }] }] };
    const err = await rejection(h.gemini().models.generateContent(request));
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(400);
    expect(err.message).toContain('@google/genai keeps only the fields it knows');
    expect(err.message).toContain('x-ph-prefix and x-ph-session headers');
    expect(h.tap).toHaveLength(0);
    const raw = await fetch(`${h.url}/proxy/gemini/v1/models/${MODEL}:generateContent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-ph-key': h.key, 'x-goog-api-key': 'k' },
      body: where === 'systemInstruction' ? '{"systemInstruction":{"parts":[{"text":"t"},{}]},"contents":[{"parts":[{"text":"hi"}]}]}' : '{"contents":[{"parts":[{"text":"a"}]},{"parts":[{}]}]}',
    });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as { errors: Array<{ pointer: string }> }).errors[0]!.pointer).toBe(where === 'systemInstruction' ? '/systemInstruction/parts/1' : '/contents/1/parts/0');
  });
});

describe('a turn a session cannot keep', () => {
  it('is a 400 before Gemini is called, pointing at the part of the body (not at the neutral message it was read into)', async () => {
    const session = await startSession(h.tenant.client, { messages: [{ role: 'user', content: 'Weather in Oslo?' }, { role: 'assistant', content: 'Which day?' }] });
    const ai = h.gemini({ headers: { 'x-ph-session': session.id } });
    const err = await rejection(ai.models.generateContent({ model: MODEL, contents: [{ role: 'user', parts: [{ text: 'Tomorrow.' }, { text: ' ' }] }] }));
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(400);
    // The SDK's message is the answer's JSON, our problem document as its error.message.
    const problem = JSON.parse((JSON.parse(err.message) as { error: { message: string } }).error.message) as { code: string; errors: Array<{ pointer: string; detail: string }> };
    expect(problem.code).toBe('invalid_request');
    // Before: /contents/0/content/1/text, a member the body does not have.
    expect(problem.errors).toEqual([{ pointer: '/contents/0/parts/1/text', detail: 'must contain non-whitespace text (providers refuse empty text blocks)' }]);
    expect(h.tap).toHaveLength(0);
    // A turn whose tool output answers no call of the session: at its content (before, /contents, the whole list).
    const unanswered = await rejection(ai.models.generateContent({ model: MODEL, contents: [{ role: 'user', parts: [{ text: 'Tomorrow.' }] }, { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { content: 'sunny' } } }] }] }));
    const pairing = JSON.parse((JSON.parse(unanswered.message) as { error: { message: string } }).error.message) as { errors: Array<{ pointer: string; detail: string }> };
    expect(pairing.errors).toEqual([{ pointer: '/contents/1', detail: expect.stringContaining('answers no tool_use of the message before it') }]);
    expect(pairing.errors[0]!.detail).not.toContain('of this turn');
    expect(h.tap).toHaveLength(0);
    // Nothing appended: the session is as it was.
    expect((await h.tenant.client.get(`/v1/handles/${session.id}`)).json.latest_version).toBe(session.version);
  });
});

describe('the provider key', () => {
  it('as ?key= or x-goog-api-key reaches Gemini untouched, is never stored, and each key has its own cache scope', async () => {
    const sys = await mintSystem(h.tenant.client, SYSTEM);
    const call = (auth: { query?: string; header?: string }) =>
      fetch(`${h.url}/proxy/gemini/v1beta/models/${MODEL}:generateContent${auth.query ? `?key=${auth.query}` : ''}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-ph-key': h.key, 'x-ph-prefix': sys.id, ...(auth.header ? { 'x-goog-api-key': auth.header } : {}) },
        body: '{"contents":[{"parts":[{"text":"hi"}]}]}',
      }).then(async (r) => ({ status: r.status, usage: ((await r.json()) as { usageMetadata: Record<string, number> }).usageMetadata }));
    const first = await call({ query: 'secret-query-key' });
    h.clock.advance(MINUTE);
    const again = await call({ query: 'secret-query-key' });
    h.clock.advance(MINUTE);
    const other = await call({ header: 'secret-header-key' });
    expect([first.status, again.status, other.status]).toEqual([200, 200, 200]);
    expect(first.usage.cachedContentTokenCount).toBeUndefined();
    expect(again.usage.cachedContentTokenCount).toBeGreaterThan(MIN);
    // Another account: another cache, at Gemini and in our scope.
    expect(other.usage.cachedContentTokenCount).toBeUndefined();
    expect(h.tap.map((e) => e.path)).toEqual([
      `/v1beta/models/${MODEL}:generateContent?key=secret-query-key`,
      `/v1beta/models/${MODEL}:generateContent?key=secret-query-key`,
      `/v1beta/models/${MODEL}:generateContent`,
    ]);
    expect(h.tap[2]!.headers.get('x-goog-api-key')).toBe('secret-header-key');
    await committed(h);
    const rows = h.t.sqlite.prepare('select * from requests').all() as Array<{ scope: string }>;
    expect(new Set(rows.map((r) => r.scope)).size).toBe(2);
    expect(JSON.stringify(rows)).not.toMatch(/secret-(query|header)-key/);
  });
});

describe('a tool-using loop', () => {
  it("the model's functionCall and the caller's functionResponse become session turns, sent back as Gemini takes them", async () => {
    await h.close();
    // The simulator answers in text; its first answer becomes a function call, as the model would make.
    h = await startHarness({
      rewrite: (body, type) => {
        if (!type.startsWith('application/json') || !body.includes('Simulated reply #1')) return body;
        const answer = JSON.parse(body);
        answer.candidates[0].content.parts = [{ text: 'Checking.' }, { functionCall: { name: 'get_weather', args: { city: 'Oslo' } } }];
        return JSON.stringify(answer);
      },
    });
    const { client, session } = await agentSetup();
    const ai = h.gemini({ headers: { 'x-ph-session': session.id } });
    const first = await ai.models.generateContent({ model: MODEL, contents: 'Weather in Oslo?' });
    expect(first.functionCalls).toEqual([{ name: 'get_weather', args: { city: 'Oslo' } }]);
    await ai.models.generateContent({ model: MODEL, contents: [{ role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { content: 'sunny, 12°C' } } }] }] });

    const expanded = (await client.get(`/v1/handles/${session.id}/expand?format=neutral`)).json;
    expect(expanded.messages.slice(0, 3)).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Weather in Oslo?' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'get_weather', name: 'get_weather', input: { city: 'Oslo' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'get_weather', content: 'sunny, 12°C' }] },
    ]);
    // The second call sent the history back as Gemini takes it: the call, then its answer by the function's name.
    const sent = JSON.parse(h.tap[1]!.body);
    expect(sent.contents.slice(0, 3)).toEqual([
      { role: 'user', parts: [{ text: 'Weather in Oslo?' }] },
      { role: 'model', parts: [{ text: 'Checking.' }, { functionCall: { name: 'get_weather', args: { city: 'Oslo' } } }] },
      { role: 'user', parts: [{ functionResponse: { name: 'get_weather', response: { content: 'sunny, 12°C' } } }] },
    ]);
  });
});

describe('streamGenerateContent without ?alt=sse', () => {
  it("Gemini's one JSON array of chunks is passed through and read as the stream would be: usage reported, the turn appended", async () => {
    const session = await startSession(h.tenant.client);
    const res = await fetch(`${h.url}/proxy/gemini/v1beta/models/${MODEL}:streamGenerateContent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-ph-key': h.key, 'x-ph-session': session.id, 'x-goog-api-key': 'k' },
      body: '{"contents":[{"parts":[{"text":"as an array"}]}]}',
    });
    expect(res.status).toBe(200);
    const chunks = (await res.json()) as Array<{ candidates: Array<{ content: { parts: Array<{ text: string }> } }>; usageMetadata: { promptTokenCount: number } }>;
    expect(Array.isArray(chunks)).toBe(true);
    const id = res.headers.get('x-ph-request-id')!;
    await committed(h);
    const view = (await h.tenant.client.get(`/v1/requests/${id}`)).json;
    expect(view.status).toBe('reconciled');
    expect(view.outcome.capture).toBe('reported');
    expect(view.usage.total_prompt_tokens).toBe(chunks.at(-1)!.usageMetadata.promptTokenCount);
    const expanded = (await h.tenant.client.get(`/v1/handles/${session.id}/expand?format=neutral`)).json;
    expect(expanded.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant']);
    expect(expanded.messages[1].content[0].text).toBe(chunks.map((c) => c.candidates[0]!.content.parts[0]!.text).join(''));
  });
});

describe('a base URL without /proxy/gemini', () => {
  it("is a 404 naming the base URL to set, as the SDK shows it, not a 401 for the provider's key", async () => {
    for (const apiVersion of [undefined, 'v1beta']) {
      const ai = new GoogleGenAI({ apiKey: 'gemini-test-key', httpOptions: { baseUrl: h.url, headers: { 'x-ph-key': h.key }, ...(apiVersion ? { apiVersion } : {}) } });
      const err = await rejection(ai.models.generateContent({ model: MODEL, contents: 'hi' }));
      expect(err).toBeInstanceOf(ApiError);
      expect(err.status).toBe(404);
      expect(err.message).toContain(`base URL (httpOptions.baseUrl) is ${h.url}/proxy/gemini`);
    }
    expect(h.tap).toHaveLength(0);
  });
});

describe('a Gemini that cannot be reached or does not answer', () => {
  it('unreachable is a 502, silent past PH_UPSTREAM_TIMEOUT_MS a 504: problem+json the SDK shows, recorded as failed with what the caller got', async () => {
    // A port nobody listens on, and a server that accepts and never answers.
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    const sockets = new Set<Socket>();
    const silent: Server = await new Promise((resolve) => {
      const s = createServer((socket) => void sockets.add(socket)).listen(0, '127.0.0.1', () => resolve(s));
    });
    const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      for (const [base, status, code] of [[`http://127.0.0.1:${closed}`, 502, 'bad_gateway'], [silentUrl, 504, 'gateway_timeout']] as const) {
        const t = createTestApp({ config: { geminiBaseUrl: base, upstreamTimeoutMs: 200 } });
        const server = await new Promise<ServerType>((resolve) => {
          const s = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
        });
        try {
          const { client, key } = t.tenant();
          const ai = new GoogleGenAI({ apiKey: 'gemini-test-key', httpOptions: { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/proxy/gemini`, headers: { 'x-ph-key': key } } });
          const err = await rejection(ai.models.generateContent({ model: MODEL, contents: 'hi' }));
          expect(err).toBeInstanceOf(ApiError);
          expect(err.status).toBe(status);
          expect(err.message).toContain(code);
          const [row] = t.sqlite.prepare('select id from requests').all() as { id: string }[];
          const r = await client.get(`/v1/requests/${row!.id}`);
          expect(r.json).toMatchObject({ status: 'failed', error: { status, body: { code, detail: expect.stringContaining('gemini') } } });
        } finally {
          await new Promise((r) => server.close(r));
          t.close();
        }
      }
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((r) => silent.close(r));
    }
  });
});
