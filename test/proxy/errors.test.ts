// Provider errors reach the SDK exactly as the provider sent them (same class,
// status and body as calling the provider directly), and are recorded as
// failed; the proxy's own refusals are problem+json; nothing is appended.

import Anthropic from '@anthropic-ai/sdk';
import { serve } from '@hono/node-server';
import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { RequestViewSchema } from '../../src/http/report-schemas';
import { createTestApp } from '../helpers/app';
import { mintBundle, mintSystem, startSession } from '../helpers/factories';
import { committed, type Harness, rejection, startHarness } from './harness';

let h: Harness | undefined;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  await h?.close();
  h = undefined;
  for (const c of cleanups.splice(0)) await c();
});

/** The service with a node:http stand-in for one provider, answering every call with `answer`; a tenant of it. */
async function standIn(provider: 'anthropic' | 'openai', answer: (res: ServerResponse) => void, config: Parameters<typeof createTestApp>[0] extends infer O ? (O extends { config?: infer C } ? C : never) : never = {}) {
  const upstream = createHttpServer((req, res) => void req.resume().on('end', () => answer(res)));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => upstream.close(r)));
  const base = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
  const t = createTestApp({ config: { ...config, ...(provider === 'anthropic' ? { anthropicBaseUrl: base } : { openaiBaseUrl: base }) } });
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  cleanups.push(() => new Promise((r) => server.close(r)), () => t.close());
  return { t, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, ...t.tenant() };
}

/** Server-sent events as a provider writes them. */
const sse = (events: readonly (readonly [string, object])[]) => events.map(([event, data]) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`).join('');

describe('provider errors pass through', () => {
  it.each([529, 429, 500])('%i: the same error class, status and body as from the provider itself', async (status) => {
    h = await startHarness();
    const session = await startSession(h.tenant.client);
    const fault = { 'x-simulator-status': String(status) };
    const direct = {
      anthropic: new Anthropic({ apiKey: 'sk-ant-test', baseURL: h.upstreamUrl, maxRetries: 0, defaultHeaders: fault }),
      openai: new OpenAI({ apiKey: 'sk-openai-test', baseURL: `${h.upstreamUrl}/v1`, maxRetries: 0, defaultHeaders: fault }),
    };
    const proxied = {
      anthropic: h.anthropic({ headers: { ...fault, 'x-ph-session': session.id } }),
      openai: h.openai({ headers: { ...fault, 'x-ph-session': session.id } }),
    };
    const anthropicCall = (sdk: Anthropic) => sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    const chatCall = (sdk: OpenAI) => sdk.chat.completions.create({ model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    const responsesCall = (sdk: OpenAI) => sdk.responses.create({ model: 'gpt-4.1', input: 'hi' });

    const pairs = [
      [await rejection(anthropicCall(direct.anthropic)), await rejection(anthropicCall(proxied.anthropic))],
      [await rejection(chatCall(direct.openai)), await rejection(chatCall(proxied.openai))],
      [await rejection(responsesCall(direct.openai)), await rejection(responsesCall(proxied.openai))],
    ];
    for (const [mine, theirs] of pairs) {
      expect(theirs.constructor).toBe(mine.constructor);
      expect(theirs.status).toBe(status);
      // The body's shape, message and type are the provider's (its request ids differ per call).
      expect(JSON.stringify(theirs.error).replace(/req_\w+/g, 'req')).toBe(JSON.stringify(mine.error).replace(/req_\w+/g, 'req'));
      const id = theirs.headers.get('x-ph-request-id');
      const row = (await h.tenant.client.get(`/v1/requests/${id}`)).json;
      expect(row).toMatchObject({ status: 'failed', usage_raw: null, error: { status } });
      expect(RequestViewSchema.parse(row)).toEqual(row);
      // Its dashboard page shows the provider's error, not an empty usage.
      const page = await (await h.t.app.request(`/ui/requests/${id}`, { headers: { cookie: `ph_ui_key=${h.key}` } })).text();
      expect(page).toContain('data-raw="error"');
      // The same { status, body } the API gives.
      expect(page).toMatch(/data-raw="error"[^>]*>\{\n  &quot;status&quot;: \d+,\n  &quot;body&quot;: \{/);
      expect(page).toContain(String(status));
      // It says the call failed: no usage report will come.
      expect(page).toContain('data-notice="failed"');
      expect(page).not.toContain('No usage report yet');
      expect(page).not.toContain('not reconciled');
      // The provider's error body is kept with the failed request.
      expect(JSON.stringify(row.error.body)).toContain(JSON.stringify(theirs.error).replace(/^\{|\}$/g, ''));
    }
    expect(pairs[0]![1]).toBeInstanceOf(status === 529 ? Anthropic.OverloadedError : status === 429 ? Anthropic.RateLimitError : Anthropic.InternalServerError);
    expect(pairs[1]![1]).toBeInstanceOf(status === 429 ? OpenAI.RateLimitError : OpenAI.InternalServerError);
    await committed(h);
    expect((await h.tenant.client.get(`/v1/handles/${session.id}`)).json.version.version).toBe(1);
  });
});

describe('when a streamed answer starts', () => {
  const message = { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-sonnet-4-6', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 9, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 } };
  const response = (status: string, extra: object = {}) => ({ id: 'resp_1', object: 'response', status, model: 'gpt-4.1', output: [], ...extra });
  const cases = {
    anthropic: {
      path: '/proxy/anthropic/v1/messages',
      body: { model: 'claude-sonnet-4-6', max_tokens: 8, stream: true, messages: [{ role: 'user', content: 'hi' }] },
      early: [],
      late: [
        ['message_start', { type: 'message_start', message }],
        ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
        ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hi.' } }],
        ['content_block_stop', { type: 'content_block_stop', index: 0 }],
        ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } }],
        ['message_stop', { type: 'message_stop' }],
      ],
    },
    // The Responses API announces the call as it accepts it: the answer starts with its first output.
    'openai-responses': {
      path: '/proxy/openai/v1/responses',
      body: { model: 'gpt-4.1', stream: true, input: 'hi' },
      early: [
        ['response.created', { type: 'response.created', sequence_number: 0, response: response('in_progress') }],
        ['response.in_progress', { type: 'response.in_progress', sequence_number: 1, response: response('in_progress') }],
      ],
      late: [
        ['response.output_text.delta', { type: 'response.output_text.delta', sequence_number: 2, item_id: 'msg_1', output_index: 0, content_index: 0, delta: 'Hi.' }],
        [
          'response.completed',
          {
            type: 'response.completed',
            sequence_number: 3,
            response: response('completed', {
              output: [{ type: 'message', id: 'msg_1', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Hi.', annotations: [] }] }],
              usage: { input_tokens: 9, input_tokens_details: { cached_tokens: 0 }, output_tokens: 2, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 11 },
            }),
          },
        ],
      ],
    },
  } as const;

  it.each(Object.keys(cases) as Array<keyof typeof cases>)("%s: a stream's first byte is its first answering event, not its headers: only from then can another call read its write", async (format) => {
    const c = cases[format];
    let go!: () => void;
    const released = new Promise<void>((resolve) => (go = resolve));
    // The provider sends its headers (and any announcements) at once, then reads the prompt: its answer starts 1.5 s later.
    const { t, url, key, client } = await standIn(format === 'anthropic' ? 'anthropic' : 'openai', (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse(c.early) || ': accepted\n\n');
      void released.then(() => res.end(sse(c.late)));
    });
    const res = await fetch(`${url}${c.path}`, {
      method: 'POST',
      headers: { 'x-ph-key': key, 'content-type': 'application/json', 'x-api-key': 'sk-ant-test', authorization: 'Bearer sk-test', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify(c.body),
    });
    // The proxy has passed the headers on, and the announcements: the client reads them before any answer.
    const reader = res.body!.getReader();
    if (c.early.length) expect(new TextDecoder().decode((await reader.read()).value)).toContain(c.early[0]![0]);
    const started = t.clock.now();
    t.clock.advance(1500);
    go();
    while (!(await reader.read()).done);
    await committed({ t });
    const row = (await client.get(`/v1/requests/${res.headers.get('x-ph-request-id')}`)).json;
    expect(row.status).toBe('reconciled');
    expect(row.started_at).toBe(new Date(started).toISOString());
    expect(row.first_byte_at).toBe(new Date(started + 1500).toISOString());
  });

  it('a stream cut before any event has an unknown first byte, not its end', async () => {
    const { url, key, client, t } = await standIn('anthropic', (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end();
    });
    const res = await fetch(`${url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers: { 'x-ph-key': key, 'content-type': 'application/json', 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify(cases.anthropic.body),
    });
    await res.text();
    await committed({ t });
    const id = res.headers.get('x-ph-request-id');
    const row = (await client.get(`/v1/requests/${id}`)).json;
    expect(row).toMatchObject({ status: 'reconciled', first_byte_at: null });
    // Its page says why its capture is unknown: not that the provider reported no cache fields, which it never got to.
    const page = await (await t.app.request(`/ui/requests/${id}`, { headers: { cookie: `ph_ui_key=${key}` } })).text();
    expect(page).toContain('The answer ended before the provider reported its usage (a stream cut off or abandoned): its capture is <b>unknown</b>, not 0%.');
  });

  it('a stream that reaches its end without usage (a server that ignores include_usage) was not cut off, and its page does not say so', async () => {
    const chunk = (delta: object, finish: string | null) => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', model: 'gpt-4.1', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const { url, key, client, t } = await standIn('openai', (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`${chunk({ role: 'assistant', content: 'Hi.' }, null)}${chunk({}, 'stop')}data: [DONE]\n\n`);
    });
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: `${url}/proxy/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-ph-key': key } });
    const stream = await openai.chat.completions.create({ model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    for await (const _ of stream.data);
    await committed({ t });
    const id = stream.response.headers.get('x-ph-request-id');
    const row = (await client.get(`/v1/requests/${id}`)).json;
    expect([row.outcome.capture, row.usage.complete]).toEqual(['unknown', true]);
    const page = await (await t.app.request(`/ui/requests/${id}`, { headers: { cookie: `ph_ui_key=${key}` } })).text();
    expect(page).toContain('The provider reported no cache fields for this request: its capture is <b>unknown</b>, not 0%.');
    expect(page).not.toContain('cut off');
  });
});

describe("the proxy's own refusals", () => {
  it('no x-ph-key, or a wrong one: 401 problem, and the provider is not called', async () => {
    h = await startHarness();
    const noKey = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${h.url}/proxy/anthropic`, maxRetries: 0 });
    const err = await rejection(noKey.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }));
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(err.error).toMatchObject({ code: 'unauthorized', status: 401 });
    const wrong = await rejection(h.openai({ headers: { 'x-ph-key': 'phk_wrong' } }).models.list());
    expect(wrong).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(wrong.message).toBe('401 the API key is not valid');
    expect(h.tap).toHaveLength(0);
  });

  it('an SDK pointed at the service rather than its proxy: a 404 whose message, as the SDK shows it, names the base URL to set', async () => {
    h = await startHarness();
    const headers = { 'x-ph-key': h.key };
    // The service's address, `/v1` of it (which would otherwise ask for the service's key and get the provider's), no `/proxy`.
    for (const base of [h.url, `${h.url}/v1`, `${h.url}/openai/v1`]) {
      const openai = new OpenAI({ apiKey: 'sk-openai-test', baseURL: base, maxRetries: 0, defaultHeaders: headers });
      for (const call of [
        openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }),
        openai.responses.create({ model: 'gpt-4.1', input: 'hi' }),
      ]) {
        const err = await rejection(call);
        expect(err, base).toBeInstanceOf(OpenAI.NotFoundError);
        expect(err.message, base).toContain(`the OpenAI SDK's base URL is ${h.url}/proxy/openai/v1 (with /v1)`);
      }
    }
    for (const base of [h.url, `${h.url}/anthropic`]) {
      const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: base, maxRetries: 0, defaultHeaders: headers });
      const err = await rejection(anthropic.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }));
      expect(err, base).toBeInstanceOf(Anthropic.NotFoundError);
      expect(err.error.error.message, base).toContain(`the Anthropic SDK's base URL is ${h.url}/proxy/anthropic (without /v1`);
    }
    // The service's own routes are as they were: a session's messages are not taken for a model call.
    const { status } = await fetch(`${h.url}/v1/sessions/ses_AAAAAAAAAAAAAAAAAAAAA/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(status).toBe(401);
    expect(h.tap).toHaveLength(0);
  });

  it('an SDK’s models.list() at the service rather than its proxy: a 404 naming the proxy’s base URL, the same whatever its key; the catalog stays the service’s', async () => {
    h = await startHarness();
    const openaiHint = `the OpenAI SDK's base URL is ${h.url}/proxy/openai/v1 (with /v1), which lists the provider's models at ${h.url}/proxy/openai/v1/models`;
    const anthropicHint = `the Anthropic SDK's base URL is ${h.url}/proxy/anthropic (without /v1: the SDK adds it), which lists the provider's models at ${h.url}/proxy/anthropic/v1/models`;
    const answers: string[] = [];
    // The provider's key, ours as its key (a service key where the SDK sends its own), or ours beside it: one answer.
    for (const apiKey of ['sk-openai-test', h.key]) {
      for (const base of [`${h.url}/v1`, h.url]) {
        const openai = new OpenAI({ apiKey, baseURL: base, maxRetries: 0, defaultHeaders: { 'x-ph-key': h.key } });
        const err = await rejection(openai.models.list());
        expect(err, base).toBeInstanceOf(OpenAI.NotFoundError);
        expect(err.message, base).toContain(openaiHint);
        expect(err.error, base).toMatchObject({ code: 'route_not_found', type: 'route_not_found' });
        if (base.endsWith('/v1')) answers.push(JSON.stringify({ ...err.error, requestId: undefined }));
      }
      const anthropic = new Anthropic({ apiKey, baseURL: h.url, maxRetries: 0 });
      const err = await rejection(anthropic.models.list());
      expect(err).toBeInstanceOf(Anthropic.NotFoundError);
      expect(err.error.error.message).toContain(anthropicHint);
      expect(err.error.detail.startsWith("GET /v1/models here is this service's model catalog, not the provider's model list; ")).toBe(true);
    }
    // An unauthenticated caller learns no more than one with a key.
    expect(answers[0]).toBe(answers[1]);
    // At the proxy's base URL the same calls reach the provider.
    expect((await h.openai().models.list()).data).toBeDefined();
    // The service's own clients (no SDK headers) get the catalog with a key, and a 401 without one.
    const catalog = await fetch(`${h.url}/v1/models`, { headers: { authorization: `Bearer ${h.key}` } });
    expect([catalog.status, Array.isArray(((await catalog.json()) as { models: unknown }).models)]).toEqual([200, true]);
    expect((await fetch(`${h.url}/v1/models`, { headers: { authorization: 'Bearer sk-openai-test' } })).status).toBe(401);
  });

  it('a body over PH_MAX_BODY_BYTES, declared or chunked: 413 problem, nothing recorded, the provider not called', async () => {
    h = await startHarness({ maxBodyBytes: 4096 });
    const big = JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'x'.repeat(5000) }] });
    const err = await rejection(h.anthropic().messages.create(JSON.parse(big)));
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect(err.status).toBe(413);
    expect(err.error).toMatchObject({ code: 'payload_too_large', status: 413 });
    // The SDKs' own error member too (the OpenAI SDK shows only error.message).
    expect(err.error.error).toEqual({ type: 'payload_too_large', code: 'payload_too_large', message: err.error.detail });
    // Chunked: no declared length, refused once the bytes read pass the limit.
    const chunked = await fetch(`${h.url}/proxy/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'x-ph-key': h.key, 'content-type': 'application/json', authorization: 'Bearer sk-openai-test' },
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < 8; i++) controller.enqueue(new TextEncoder().encode(i ? ' '.repeat(1024) : '{"model":"gpt-4.1",'));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(chunked.headers.get('content-type')).toBe('application/problem+json');
    expect(((await chunked.json()) as { code: string }).code).toBe('payload_too_large');
    expect(h.tap).toHaveLength(0);
    expect(h.t.sqlite.prepare('select count(*) as n from requests').get()).toEqual({ n: 0 });
  });

  it('a body that is not JSON: 400 malformed_json, with the error member the SDKs read', async () => {
    h = await startHarness();
    const res = await fetch(`${h.url}/proxy/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'x-ph-key': h.key, 'content-type': 'application/json', authorization: 'Bearer sk-openai-test' },
      body: '{"model":"gpt-4.1","messages":[',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    // The parser's own words say what is wrong and where.
    expect(await res.json()).toMatchObject({ code: 'malformed_json', error: { type: 'malformed_json', message: 'The request body is not valid JSON: Unexpected end of JSON input' } });
    expect(h.tap).toHaveLength(0);
  });

  it('a member name twice (prefix, then prefix again): 400 naming it before the provider is called, nothing recorded', async () => {
    h = await startHarness();
    const sys = await mintSystem(h.tenant.client, 'You are terse.');
    const res = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers: { 'x-ph-key': h.key, 'content-type': 'application/json', 'x-api-key': 'sk-ant-test' },
      body: `{"model":"claude-sonnet-4-5","max_tokens":5,"prefix":["${sys.id}"],"prefix":[],"messages":[{"role":"user","content":"hi"}]}`,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { errors: unknown }).errors).toEqual([{ pointer: '/prefix', detail: expect.stringContaining('"prefix" appears twice') }]);
    // A member JavaScript would drop on the way into a session (which keeps what it was sent, or nothing): refused there.
    const session = await startSession(h.tenant.client);
    const proto = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers: { 'x-ph-key': h.key, 'x-ph-session': session.id, 'content-type': 'application/json', 'x-api-key': 'sk-ant-test' },
      body: '{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"r","__proto__":{}}]}]}',
    });
    expect(((await proto.json()) as { errors: unknown }).errors).toEqual([{ pointer: '/messages/0/content/0/__proto__', detail: expect.stringContaining('"__proto__" cannot be stored') }]);
    expect(h.tap).toHaveLength(0);
    expect(h.t.sqlite.prepare('select count(*) as n from requests').get()).toEqual({ n: 0 });
  });

  it('a Responses turn with both previous_response_id and x-ph-session: 400 before the provider is called (the history would go twice)', async () => {
    h = await startHarness();
    const session = await startSession(h.tenant.client);
    const sdk = h.openai({ headers: { 'x-ph-session': session.id } });
    const err = await sdk.responses.create({ model: 'gpt-4.1', input: 'And order 1004?', previous_response_id: 'resp_123' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as { message: string }).message).toContain('use one of them');
    const raw = await fetch(`${h.url}/proxy/openai/v1/responses`, {
      method: 'POST',
      headers: { 'x-ph-key': h.key, 'x-ph-session': session.id, 'content-type': 'application/json', authorization: 'Bearer sk-test' },
      body: JSON.stringify({ model: 'gpt-4.1', input: 'x', previous_response_id: 'resp_123' }),
    });
    expect(((await raw.json()) as { errors: unknown }).errors).toEqual([{ pointer: '/previous_response_id', detail: expect.stringContaining('use one of them') }]);
    expect(h.tap).toHaveLength(0);
    // The same for a session named in x-ph-prefix, and for a Responses conversation id.
    for (const [headers, extra] of [
      [{ 'x-ph-prefix': session.id }, { previous_response_id: 'resp_123' }],
      [{ 'x-ph-session': session.id }, { conversation: 'conv_123' }],
    ] as const) {
      const other = await h.openai({ headers }).responses.create({ model: 'gpt-4.1', input: 'x', ...extra }).catch((e: unknown) => e);
      expect(other, JSON.stringify(extra)).toBeInstanceOf(OpenAI.BadRequestError);
    }
    expect(h.tap).toHaveLength(0);
    // Either alone is served: the session without it, and previous_response_id (of a response the provider keeps) without a session.
    const first = await sdk.responses.create({ model: 'gpt-4.1', input: 'Where is order 1003?' });
    await h.openai().responses.create({ model: 'gpt-4.1', input: 'And 1004?', previous_response_id: first.id });
    expect(h.tap).toHaveLength(2);
  });

  it('a lone surrogate anywhere in the body: 400 naming it before the provider is called, nothing recorded', async () => {
    h = await startHarness();
    const res = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers: { 'x-ph-key': h.key, 'content-type': 'application/json', 'x-api-key': 'sk-ant-test' },
      body: '{"model":"claude-sonnet-4-6","max_tokens":5,"messages":[{"role":"user","content":"hi \\ud800"}]}',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ errors: [{ pointer: '/messages/0/content' }], error: { message: expect.any(String) } });
    expect(h.tap).toHaveLength(0);
    expect(h.t.sqlite.prepare('select count(*) as n from requests').get()).toEqual({ n: 0 });
  });

  it('a number past a double\'s range in the caller\'s content: 400 naming it, with the error member, the provider not called', async () => {
    h = await startHarness();
    for (const [path, body, pointer] of [
      ['/proxy/anthropic/v1/messages', '{"model":"claude-sonnet-4-6","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"hi","citations":1e309}]}]}', '/messages/0/content/0/citations'],
      ['/proxy/openai/v1/chat/completions', '{"model":"gpt-4.1","messages":[{"role":"system","content":"s","x":-1e309},{"role":"user","content":"hi"}]}', '/messages/0/x'],
    ] as const) {
      const res = await fetch(`${h.url}${path}`, { method: 'POST', headers: { 'x-ph-key': h.key, 'content-type': 'application/json', 'x-api-key': 'sk-ant-test', authorization: 'Bearer sk-test' }, body });
      expect(res.status, path).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'invalid_request', errors: [{ pointer }], error: { message: expect.stringContaining('out of range') } });
    }
    expect(h.tap).toHaveLength(0);
    expect(h.t.sqlite.prepare('select count(*) as n from requests').get()).toEqual({ n: 0 });
  });

  it('a body sent as something other than JSON: 400 as a provider answers a bad body (not a 415 LangChain retries), code unsupported_media_type, the provider not called', async () => {
    h = await startHarness();
    for (const path of ['/proxy/anthropic/v1/messages', '/proxy/openai/v1/chat/completions']) {
      const res = await fetch(`${h.url}${path}`, {
        method: 'POST',
        headers: { 'x-ph-key': h.key, 'content-type': 'text/plain', 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01' },
        body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(res.status, path).toBe(400);
      expect(await res.json()).toMatchObject({ status: 400, code: 'unsupported_media_type', error: { type: 'unsupported_media_type' } });
    }
    // The service's own routes keep their 415.
    expect((await fetch(`${h.url}/v1/render`, { method: 'POST', headers: { authorization: `Bearer ${h.key}`, 'content-type': 'text/plain' }, body: '{}' })).status).toBe(415);
    expect(h.tap).toHaveLength(0);
  });

  it('a deleted handle: a 404 the SDKs raise as NotFoundError (not a 410 LangChain retries), code gone, naming it; the REST API keeps its 410', async () => {
    h = await startHarness();
    const sys = await mintSystem(h.tenant.client, 'deleted before the call');
    expect((await h.tenant.client.delete(`/v1/handles/${sys.id}`)).status).toBe(204);
    const headers = { 'x-ph-prefix': sys.id };
    const errors = [
      await rejection(h.anthropic({ headers }).messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] })),
      await rejection(h.openai({ headers }).chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] })),
      await rejection(h.openai({ headers }).responses.create({ model: 'gpt-4.1', input: 'hi' })),
    ];
    expect(errors[0]).toBeInstanceOf(Anthropic.NotFoundError);
    expect(errors[1]).toBeInstanceOf(OpenAI.NotFoundError);
    expect(errors[2]).toBeInstanceOf(OpenAI.NotFoundError);
    for (const err of errors) {
      expect(err.status).toBe(404);
      expect(err.message).toContain(sys.id);
    }
    expect(errors[0].error).toMatchObject({ status: 404, code: 'gone', errors: [{ pointer: 'header:x-ph-prefix' }] });
    expect(h.tap).toHaveLength(0);
    expect((await h.tenant.client.get(`/v1/handles/${sys.id}/expand`)).status).toBe(410);
  });

  it('a body that starts with a byte-order mark is served (RFC 8259 §8.1), and the provider gets JSON without it', async () => {
    h = await startHarness();
    const body = JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    const res = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers: { 'x-ph-key': h.key, 'content-type': 'application/json', 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01' },
      body: '\uFEFF' + body,
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { type: string }).type).toBe('message');
    expect(h.tap).toHaveLength(1);
    expect(h.tap[0]!.body.charCodeAt(0)).toBe('{'.charCodeAt(0));
    expect(JSON.parse(h.tap[0]!.body)).toEqual(JSON.parse(body));
    // Two are malformed JSON, said as on every other route; the provider is not called.
    const two = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers: { 'x-ph-key': h.key, 'content-type': 'application/json', 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01' },
      body: '\uFEFF\uFEFF' + body,
    });
    expect(two.status).toBe(400);
    expect(await two.json()).toMatchObject({ code: 'malformed_json', error: { message: 'The request body is not valid JSON: it starts with two byte-order marks' } });
    expect(h.tap).toHaveLength(1);
  });

  it('a body nested deeper than 512 levels, or tool arguments that are: 400 problem (not a stack overflow), the provider not called', async () => {
    h = await startHarness();
    const session = await startSession(h.tenant.client);
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    const post = (path: string, body: string, headers: Record<string, string>) =>
      fetch(`${h!.url}${path}`, { method: 'POST', headers: { 'x-ph-key': h!.key, 'content-type': 'application/json', 'x-ph-session': session.id, ...headers }, body });
    const anthropic = await post(
      '/proxy/anthropic/v1/messages',
      `{"model":"claude-sonnet-4-6","max_tokens":16,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"a":${deep}}}]},{"role":"user","content":"hi"}]}`,
      { 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01' },
    );
    expect(anthropic.status).toBe(400);
    expect(anthropic.headers.get('content-type')).toBe('application/problem+json');
    expect(((await anthropic.json()) as { errors: unknown }).errors).toEqual([{ pointer: '/messages', detail: 'nested deeper than 512 levels' }]);
    // JSON inside a string (a chat tool call's arguments) is parsed only to be kept in the session.
    const args = JSON.stringify(`{"a":${deep}}`);
    const chat = await post(
      '/proxy/openai/v1/chat/completions',
      `{"model":"gpt-4.1","messages":[{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":${args}}}]},{"role":"tool","tool_call_id":"c1","content":"ok"},{"role":"user","content":"hi"}]}`,
      { authorization: 'Bearer sk-openai-test' },
    );
    expect(chat.status).toBe(400);
    expect(((await chat.json()) as { errors: { pointer: string; detail: string }[] }).errors).toEqual([
      { pointer: '/messages/0/tool_calls/0/function/arguments', detail: 'nested deeper than 512 levels' },
    ]);
    expect(h.tap).toHaveLength(0);
  });

  it('a handle that does not exist or a session header naming a bundle: 404 / 400 before the provider is called', async () => {
    h = await startHarness();
    const sys = await mintSystem(h.tenant.client);
    const bundle = await mintBundle(h.tenant.client, [sys.id]);
    const call = (headers: Record<string, string>) => rejection(h!.anthropic({ headers }).messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }));
    const missing = await call({ 'x-ph-prefix': 'bnd_000000000000000000000' });
    expect(missing.status).toBe(404);
    expect(missing.error).toMatchObject({ code: 'not_found', errors: [{ pointer: 'header:x-ph-prefix' }] });
    const notSession = await call({ 'x-ph-session': bundle.id });
    expect(notSession.status).toBe(400);
    expect(notSession.error).toMatchObject({ code: 'invalid_request', errors: [{ pointer: 'header:x-ph-session' }] });
    // A pinned older version of the session could not take this turn: 409 naming the latest, before the call.
    const session = await startSession(h.tenant.client, { messages: [{ role: 'user', content: 'one' }] });
    await h.tenant.client.post(`/v1/sessions/${session.id}/messages`, { messages: [{ role: 'assistant', content: 'two' }] });
    const stale = await call({ 'x-ph-session': `${session.id}@1` });
    expect(stale.status).toBe(409);
    expect(stale.error).toMatchObject({ code: 'version_conflict', current_version: 2, errors: [{ pointer: 'header:x-ph-session' }] });
    expect(h.tap).toHaveLength(0);
    // The latest version, pinned, is the session itself.
    const latest = await h.anthropic({ headers: { 'x-ph-session': `${session.id}@2` } }).messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    expect(latest.type).toBe('message');
    expect(h.tap).toHaveLength(1);
  });

  it('with a session, a block the session cannot hold is a 400 naming it, before any money is spent', async () => {
    h = await startHarness();
    const session = await startSession(h.tenant.client);
    const sdk = h.anthropic({ headers: { 'x-ph-session': session.id } });
    const err = await rejection(
      sdk.messages.create({
        model: 'claude-sonnet-4-6',
        max_tokens: 16,
        messages: [{ role: 'user', content: [{ type: 'text', text: 'summarise' }, { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'x' } }] }],
      }),
    );
    expect(err.status).toBe(400);
    expect(err.error.errors).toEqual([{ pointer: '/messages/0/content/1', detail: expect.stringContaining('"document"') }]);
    expect(h.tap).toHaveLength(0);
  });

  it('with a session, a turn that ends with a tool call is a 400 before any money is spent: the reply could not answer it', async () => {
    h = await startHarness();
    const session = await startSession(h.tenant.client, { messages: [{ role: 'user', content: 'weather?' }] });
    const sdk = h.anthropic({ headers: { 'x-ph-session': session.id } });
    const err = await rejection(
      sdk.messages.create({
        model: 'claude-sonnet-4-6',
        max_tokens: 16,
        messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'get_weather', input: {} }] }],
      }),
    );
    expect(err.status).toBe(400);
    expect(err.error.errors).toEqual([{ pointer: '/messages/0', detail: expect.stringContaining('ends the turn with the tool_use "t1"') }]);
    expect(h.tap).toHaveLength(0);
  });

  it('an unreachable provider is a 502 problem; a silent one a 504; both recorded as failed', async () => {
    // A port nothing listens on, and a server that accepts and never answers.
    const closed = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    });
    const sockets = new Set<Socket>();
    const silent: Server = await new Promise((resolve) => {
      const s = createServer((socket) => void sockets.add(socket)).listen(0, '127.0.0.1', () => resolve(s));
    });
    cleanups.push(() => {
      for (const socket of sockets) socket.destroy();
      return new Promise((r) => silent.close(r));
    });
    const silentPort = (silent.address() as { port: number }).port;

    const t = createTestApp({ config: { anthropicBaseUrl: `http://127.0.0.1:${closed}`, openaiBaseUrl: `http://127.0.0.1:${silentPort}`, upstreamTimeoutMs: 200 } });
    const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
      const s = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    cleanups.push(() => new Promise((r) => server.close(r)), () => t.close());
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const { client, key } = t.tenant();

    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${url}/proxy/anthropic`, maxRetries: 0, defaultHeaders: { 'x-ph-key': key } });
    const unreachable = await rejection(anthropic.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }));
    expect(unreachable.status).toBe(502);
    expect(unreachable.error).toMatchObject({ code: 'bad_gateway', type: 'urn:prefix-handles:problem:bad_gateway' });
    // Where it went: with PH_UPSTREAM=simulator forgotten, or a gateway's URL mistyped, the provider alone said neither.
    expect(unreachable.error.detail).toBe(`anthropic could not be reached at http://127.0.0.1:${closed} (ECONNREFUSED)`);
    expect(unreachable.headers.get('content-type')).toBe('application/problem+json');

    const openai = new OpenAI({ apiKey: 'sk-openai-test', baseURL: `${url}/proxy/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-ph-key': key } });
    const timedOut = await rejection(openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }));
    expect(timedOut.status).toBe(504);
    // The OpenAI SDK reads a body's `error` member: our problem carries one, so the message shows.
    expect(timedOut.error).toMatchObject({ code: 'gateway_timeout', message: expect.stringContaining('PH_UPSTREAM_TIMEOUT_MS') });
    expect(timedOut.message).toContain('did not answer');

    // Recorded with what the caller got: our problem's status, code and message.
    for (const [err, status, code, detail] of [[unreachable, 502, 'bad_gateway', 'anthropic could not be reached'], [timedOut, 504, 'gateway_timeout', 'openai did not answer within PH_UPSTREAM_TIMEOUT_MS']] as const) {
      const r = await client.get(`/v1/requests/${err.headers.get('x-ph-request-id')}`);
      expect(r.json.status).toBe('failed');
      expect(r.json.error).toEqual({ status, body: { code, detail: expect.stringContaining(detail) } });
    }
  });

  it('a provider that sends its headers and then falls silent: a 504 recorded as such, with the status the provider had sent', async () => {
    const { url, client, key } = await standIn(
      'anthropic',
      (res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"id":"msg_1","type":"message",');
      },
      { upstreamTimeoutMs: 200 },
    );
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${url}/proxy/anthropic`, maxRetries: 0, defaultHeaders: { 'x-ph-key': key } });
    const err = await rejection(anthropic.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }));
    expect(err.status).toBe(504);
    const r = await client.get(`/v1/requests/${err.headers.get('x-ph-request-id')}`);
    expect(r.json).toMatchObject({ status: 'failed', error: { status: 504, body: { code: 'gateway_timeout', upstream_status: 200 } } });
  });

  it('an answer whose usage cannot be read (none, negative, past any context) is reconciled as unknown, not left unreconciled', async () => {
    // A stand-in upstream answering 200 with each broken usage in turn.
    const usages: unknown[] = [undefined, { input_tokens: -5, output_tokens: 'x' }, { input_tokens: 3, cache_read_input_tokens: 1e15, cache_creation_input_tokens: 0, output_tokens: 1 }];
    let n = 0;
    const { t, url, client, key } = await standIn('anthropic', (res) => {
      const usage = usages[n++ % usages.length];
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-sonnet-4-6', content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn', ...(usage === undefined ? {} : { usage }) }));
    });
    // A handle on each call, so the reports count them.
    const sys = await mintSystem(client);
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${url}/proxy/anthropic`, maxRetries: 0, defaultHeaders: { 'x-ph-key': key, 'x-ph-prefix': sys.id } });
    for (let i = 0; i < usages.length; i++) {
      const { response } = await anthropic.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
      await committed({ t });
      const r = (await client.get(`/v1/requests/${response.headers.get('x-ph-request-id')}`)).json;
      expect(r.status, JSON.stringify(usages[i])).toBe('reconciled');
      expect(r.outcome.capture).toBe('unknown');
      expect(r.usage).toMatchObject({ cache_fields_reported: false, complete: true, total_prompt_tokens: null });
    }
    // The three count in the reports with unknown capture (priced apart), none as a read.
    const totals = (await client.get('/v1/reports')).json;
    expect([totals.requests, totals.tokens.captured + totals.tokens.bonus]).toEqual([3, 0]);
    expect(totals.money.unknown_capture_input_cost).toBeGreaterThan(0);
  });

  it('a stream whose later usage cannot be read is reconciled as unknown, none of that usage applied; usage_raw is what it carried', async () => {
    const start = { input_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 };
    const { t, url, client, key } = await standIn('anthropic', (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(
        sse([
          ['message_start', { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-sonnet-4-6', content: [], stop_reason: null, usage: start } }],
          ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
          ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hi.' } }],
          ['content_block_stop', { type: 'content_block_stop', index: 0 }],
          ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { ...start, output_tokens: 3 } }],
          // Each count but the last is fine: none of them is taken.
          ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { input_tokens: 5000, cache_creation_input_tokens: 0, cache_read_input_tokens: 4000, output_tokens: -1 } }],
          ['message_stop', { type: 'message_stop' }],
        ]),
      );
    });
    const sys = await mintSystem(client);
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${url}/proxy/anthropic`, maxRetries: 0, defaultHeaders: { 'x-ph-key': key, 'x-ph-prefix': sys.id } });
    const { data: stream, response } = await anthropic.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, stream: true, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    for await (const _ of stream) void _;
    await committed({ t });
    const r = (await client.get(`/v1/requests/${response.headers.get('x-ph-request-id')}`)).json;
    // What the log says ("recorded as unknown") is what is kept: not the first delta's figures, nor 5000 + 4000 of the second's.
    expect(r).toMatchObject({ status: 'reconciled', outcome: { capture: 'unknown' } });
    expect(r.usage).toMatchObject({ cache_fields_reported: false, complete: true, total_prompt_tokens: null, cache_read_tokens: null, output_tokens: null });
    expect(r.usage_raw).toEqual({ input_tokens: 5000, cache_creation_input_tokens: 0, cache_read_input_tokens: 4000, output_tokens: -1 });
    const totals = (await client.get('/v1/reports')).json;
    expect([totals.requests, totals.tokens.captured + totals.tokens.bonus]).toEqual([1, 0]);
  });

  it('an answer the reconciler cannot keep (a lone surrogate in its model name) is still reconciled, as unknown', async () => {
    const { t, url, client, key } = await standIn('anthropic', (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"id":"msg_1","type":"message","role":"assistant","model":"claude\\ud800","content":[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}');
    });
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${url}/proxy/anthropic`, maxRetries: 0, defaultHeaders: { 'x-ph-key': key } });
    const { response } = await anthropic.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    await committed({ t });
    const r = (await client.get(`/v1/requests/${response.headers.get('x-ph-request-id')}`)).json;
    expect(r.status).toBe('reconciled');
    expect(r.outcome.capture).toBe('unknown');
    expect(r.usage_raw).toBeNull();
  });

  it('a reply the session cannot keep (a tool call whose arguments are not an object): answered, nothing appended, said in x-ph-warnings', async () => {
    const { t, url, client, key } = await standIn('openai', (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const message = { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '[1' } }] };
      res.end(JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', model: 'gpt-4.1', choices: [{ index: 0, message, finish_reason: 'tool_calls' }], usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15, prompt_tokens_details: { cached_tokens: 0 } } }));
    });
    const session = await startSession(client);
    const openai = new OpenAI({ apiKey: 'sk-test', baseURL: `${url}/proxy/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-ph-key': key, 'x-ph-session': session.id } });
    const { data, response } = await openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'look it up' }] }).withResponse();
    // The caller gets the provider's answer as it is…
    expect(data.choices[0]!.message.tool_calls![0]).toMatchObject({ function: { arguments: '[1' } });
    // …and is told the session did not take the turn, which it did not: kept without the call, the next tool output would answer nothing.
    expect(response.headers.get('x-ph-warnings')).toBe('session_not_appended');
    expect((await client.get(`/v1/handles/${session.id}`)).json.latest_version).toBe(1);
  });

  it('a session the database cannot append to (a storage fault): the answer is delivered, streamed or not, nothing appended, the fault logged', async () => {
    const message = { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-sonnet-4-6', content: [{ type: 'text', text: 'Sunny.' }], stop_reason: 'end_turn', stop_sequence: null };
    const usage = { input_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 2 };
    let n = 0;
    const { t, url, client, key } = await standIn('anthropic', (res) => {
      if (n++ === 0) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ...message, usage }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(
        sse([
          ['message_start', { type: 'message_start', message: { ...message, content: [], stop_reason: null, usage } }],
          ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
          ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Sunny.' } }],
          ['content_block_stop', { type: 'content_block_stop', index: 0 }],
          ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 2 } }],
          ['message_stop', { type: 'message_stop' }],
        ]),
      );
    });
    const session = await startSession(client);
    // A real storage error from SQLite (as a full disk would give) on every new handle version.
    t.sqlite.exec("create trigger no_versions before insert on handle_versions begin select raise(fail, 'database or disk is full'); end");
    const logged: string[] = [];
    const error = console.error;
    console.error = (line: string) => void logged.push(line);
    try {
      const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${url}/proxy/anthropic`, maxRetries: 0, defaultHeaders: { 'x-ph-key': key, 'x-ph-session': session.id } });
      const params = { model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user' as const, content: 'weather in Oslo?' }] };
      const { data, response } = await anthropic.messages.create(params).withResponse();
      expect(data.content).toEqual([{ type: 'text', text: 'Sunny.' }]);
      expect(response.headers.get('x-ph-warnings')).toBe('session_not_appended');
      const events: string[] = [];
      for await (const event of await anthropic.messages.create({ ...params, stream: true })) events.push(event.type);
      expect(events.at(-1)).toBe('message_stop');
    } finally {
      console.error = error;
    }
    expect(logged.filter((l) => l.includes('not appended: a fault of ours') && l.includes('database or disk is full'))).toHaveLength(2);
    expect(await t.services.metrics.registry.getSingleMetricAsString('ph_proxy_session_appends_total')).toContain('ph_proxy_session_appends_total{result="not_appended"} 2');
    expect((await client.get(`/v1/handles/${session.id}`)).json.latest_version).toBe(1);
  });

  it('an Anthropic tool call whose input is not an object (max_tokens cut it mid-JSON), streamed or not: answered, nothing appended, said', async () => {
    const message = { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-sonnet-4-6', stop_reason: 'max_tokens', stop_sequence: null };
    const usage = { input_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 8 };
    const call = { type: 'tool_use', id: 'toolu_1', name: 'get_weather' };
    let n = 0;
    const { t, url, client, key } = await standIn('anthropic', (res) => {
      if (n++ === 0) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ...message, content: [{ ...call, input: '{"city": "Os' }], usage }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(
        sse([
          ['message_start', { type: 'message_start', message: { ...message, content: [], stop_reason: null, usage } }],
          ['content_block_start', { type: 'content_block_start', index: 0, content_block: { ...call, input: {} } }],
          ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '{"city": "Os' } }],
          ['content_block_stop', { type: 'content_block_stop', index: 0 }],
          ['message_delta', { type: 'message_delta', delta: { stop_reason: 'max_tokens', stop_sequence: null }, usage: { output_tokens: 8 } }],
          ['message_stop', { type: 'message_stop' }],
        ]),
      );
    });
    const session = await startSession(client);
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${url}/proxy/anthropic`, maxRetries: 0, defaultHeaders: { 'x-ph-key': key, 'x-ph-session': session.id } });
    const params = { model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user' as const, content: 'weather in Oslo?' }] };

    // Not streamed: the answer as the provider sent it, and the header says the session did not take it.
    const { data, response } = await anthropic.messages.create(params).withResponse();
    expect(data.content[0]).toMatchObject({ input: '{"city": "Os' });
    expect(response.headers.get('x-ph-warnings')).toBe('session_not_appended');
    // Streamed: every event reaches the client; the headers left first, so the metric says it.
    const events: string[] = [];
    for await (const event of await anthropic.messages.create({ ...params, stream: true })) events.push(event.type);
    expect(events).toEqual(['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    expect(await t.services.metrics.registry.getSingleMetricAsString('ph_proxy_session_appends_total')).toContain('ph_proxy_session_appends_total{result="not_appended"} 2');
    // Kept with input {}, the session would hold a call that was never made.
    expect((await client.get(`/v1/handles/${session.id}`)).json.latest_version).toBe(1);
  });

  it.each(['anthropic', 'openai'] as const)('%s: a stream whose block or tool call index is 1,000,000,000 is relayed at once, and its reply not appended', async (provider) => {
    const chunk = (choice: object) => ({ id: 'chatcmpl-1', object: 'chat.completion.chunk', model: 'gpt-4.1', choices: [{ index: 0, finish_reason: null, ...choice }] });
    const events =
      provider === 'anthropic'
        ? sse([
            ['message_start', { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-sonnet-4-6', content: [], stop_reason: null, usage: { input_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 } } }],
            ['content_block_start', { type: 'content_block_start', index: 1_000_000_000, content_block: { type: 'text', text: '' } }],
            ['content_block_delta', { type: 'content_block_delta', index: 1_000_000_000, delta: { type: 'text_delta', text: 'Hi.' } }],
            ['content_block_stop', { type: 'content_block_stop', index: 1_000_000_000 }],
            ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } }],
            ['message_stop', { type: 'message_stop' }],
          ])
        : [
            chunk({ delta: { role: 'assistant', content: null, tool_calls: [{ index: 1_000_000_000, id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{}' } }] } }),
            chunk({ delta: {}, finish_reason: 'tool_calls' }),
            { id: 'chatcmpl-1', object: 'chat.completion.chunk', model: 'gpt-4.1', choices: [], usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15, prompt_tokens_details: { cached_tokens: 0 } } },
            '[DONE]',
          ]
            .map((data) => `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`)
            .join('');
    const { t, url, client, key } = await standIn(provider, (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(events);
    });
    const session = await startSession(client);
    const path = provider === 'anthropic' ? '/proxy/anthropic/v1/messages' : '/proxy/openai/v1/chat/completions';
    const res = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'x-ph-key': key, 'x-ph-session': session.id, 'content-type': 'application/json', 'x-api-key': 'sk-ant-test', authorization: 'Bearer sk-test' },
      body: JSON.stringify({ model: provider === 'anthropic' ? 'claude-sonnet-4-6' : 'gpt-4.1', max_tokens: 8, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(await res.text()).toContain(provider === 'anthropic' ? 'message_stop' : '[DONE]');
    // Not filled up to the index (seconds of a blocked service): the reply is no place to keep, and said so.
    expect(await t.services.metrics.registry.getSingleMetricAsString('ph_proxy_session_appends_total')).toContain('ph_proxy_session_appends_total{result="not_appended"} 1');
    expect((await client.get(`/v1/handles/${session.id}`)).json.latest_version).toBe(1);
    await committed({ t });
    expect((await client.get(`/v1/requests/${res.headers.get('x-ph-request-id')}`)).json.status).toBe('reconciled');
  });

  it('a provider error body that is not JSON is kept as its text with the failed request', async () => {
    const { t, url, client, key } = await standIn('anthropic', (res) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('upstream exploded');
    });
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${url}/proxy/anthropic`, maxRetries: 0, defaultHeaders: { 'x-ph-key': key } });
    const err = await rejection(anthropic.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }));
    expect(err.status).toBe(502);
    const row = (await client.get(`/v1/requests/${err.headers.get('x-ph-request-id')}`)).json;
    expect(row).toMatchObject({ status: 'failed', error: { status: 502, body: 'upstream exploded' } });
    // A usage report for it is a conflict naming the request: it has no usage to reconcile.
    const late = await client.post('/v1/usage', { request_id: row.id, usage: { input_tokens: 5, output_tokens: 1 } });
    expect(late.status).toBe(409);
    expect(late.json.errors).toEqual([{ pointer: '/request_id', detail: expect.stringContaining('failed') }]);
  });

  it('a redirect from the provider is passed back as it came and recorded as failed (it carries no usage)', async () => {
    const { url, client, key } = await standIn('anthropic', (res) => {
      res.writeHead(307, { location: 'https://elsewhere.example/v1/messages', 'content-type': 'application/json' });
      res.end('{"moved":true}');
    });
    const res = await fetch(`${url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'x-ph-key': key, 'x-api-key': 'sk-ant-test', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status).toBe(307);
    expect(res.headers.get('location')).toBe('https://elsewhere.example/v1/messages');
    const row = (await client.get(`/v1/requests/${res.headers.get('x-ph-request-id')}`)).json;
    expect(row).toMatchObject({ status: 'failed', error: { status: 307, body: { moved: true } } });
  });
});

describe('a malformed Anthropic cache_control through the proxy', () => {
  it('is a 400 at the field before the provider is called (the render refuses it), with and without a session', async () => {
    h = await startHarness();
    const session = await startSession(h.tenant.client, {});
    for (const headers of [{}, { 'x-ph-session': session.id }] as Array<Record<string, string>>) {
      const body = { model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'Hi', cache_control: { type: 'ephemeral', ttl: '10m' } as never }] }] };
      const err = await rejection(h.anthropic({ headers }).messages.create(body));
      expect(err).toBeInstanceOf(Anthropic.BadRequestError);
      expect(err.error).toMatchObject({ code: 'invalid_request', errors: [{ pointer: '/messages/0/content/0/cache_control/ttl', detail: expect.stringContaining("messages.0.content.0.cache_control.ttl: Input should be '5m' or '1h'") }] });
    }
    expect(h.tap).toHaveLength(0);
  });
});
