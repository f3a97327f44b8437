// The proxy is transparent: what the SDK sends reaches the provider byte for
// byte (apart from the expansions and the one usage option it asks for), what
// the provider answers reaches the SDK byte for byte, headers included — and
// the provider's credentials go through without being kept.

import Anthropic from '@anthropic-ai/sdk';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, committed, type Harness } from './harness';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

/** A fetch for the SDK that keeps the request body it sent and the response body it got. */
function recordingFetch() {
  const sent: string[] = [];
  const sentHeaders: Headers[] = [];
  const received: string[] = [];
  const f: typeof fetch = async (input, init) => {
    sent.push(String(init?.body ?? ''));
    sentHeaders.push(new Headers(init?.headers));
    const res = await fetch(input, init);
    received.push(await res.clone().text());
    return res;
  };
  return { fetch: f, sent, sentHeaders, received };
}

/** Every header the SDK set reaches the provider with its value, except our key and the connection's own. */
function expectHeadersForwarded(sdk: Headers, upstream: Headers) {
  const own = new Set(['x-ph-key', 'host', 'connection', 'content-length', 'accept-encoding']);
  const expected = [...sdk].filter(([k]) => !own.has(k));
  expect(expected.length).toBeGreaterThan(3);
  for (const [k, v] of expected) expect(upstream.get(k), k).toBe(v);
  expect(upstream.get('x-ph-key')).toBeNull();
}

// A provider field this proxy has never heard of, added to every JSON object the upstream answers with.
const addFutureField = (body: string, type: string) => (type.startsWith('application/json') ? body.replace(/^\{/, '{"future_field":{"kept":[1,"two",null]},') : body);

describe('Anthropic SDK', () => {
  it('an unknown request field and an unknown response field survive; headers reach the provider untouched', async () => {
    h = await startHarness({ rewrite: addFutureField });
    const rec = recordingFetch();
    const sdk = h.anthropic({ fetch: rec.fetch });
    const { data, response } = await sdk.beta.messages
      .create({
        model: 'claude-sonnet-4-6',
        max_tokens: 64,
        betas: ['future-beta-2030-01-01'],
        messages: [{ role: 'user', content: 'hello' }],
        // @ts-expect-error a parameter the SDK's types (and this proxy) do not know
        future_param: { nested: ['a', { b: 1 }] },
      }, { query: { beta: 'true' } })
      .withResponse();

    const upstream = h.tap[0]!;
    expect(upstream.path).toBe('/v1/messages?beta=true');
    expect(upstream.body).toBe(rec.sent[0]);
    expect(JSON.parse(upstream.body).future_param).toEqual({ nested: ['a', { b: 1 }] });
    expect(upstream.headers.get('anthropic-beta')).toBe('future-beta-2030-01-01');
    expect(rec.sentHeaders[0]!.get('x-ph-key')).toBe(h.key);
    expectHeadersForwarded(rec.sentHeaders[0]!, upstream.headers);

    // The SDK got exactly what the provider sent, and keeps the unknown field on the object it returns.
    expect(rec.received[0]).toBe(upstream.response.replace(/^\{/, '{"future_field":{"kept":[1,"two",null]},'));
    expect((data as unknown as { future_field: unknown }).future_field).toEqual({ kept: [1, 'two', null] });
    expect(response.headers.get('request-id')).toMatch(/^req_/);
    expect(response.headers.get('x-ph-request-id')).toMatch(/^req_[0-9A-Za-z]{21}$/);
  });

  it("the SDKs' models.list() walks every page through the proxy: Anthropic's paging query reaches the provider as sent", async () => {
    h = await startHarness();
    const walked: string[] = [];
    for await (const m of h.anthropic().models.list({ limit: 4 })) walked.push(m.id);
    const all = (await h.anthropic().models.list({ limit: 1000 })).data.map((m) => m.id);
    expect(all.length).toBeGreaterThan(8);
    expect(walked).toEqual(all);
    const pages = h.tap.filter((e) => e.path.startsWith('/v1/models?limit=4'));
    expect(pages.length).toBe(Math.ceil(all.length / 4));
    expect(pages.slice(1).map((e) => e.path)).toEqual(all.filter((_, i) => i % 4 === 3 && i < all.length - 1).map((id) => `/v1/models?limit=4&after_id=${id}`));
    const openai: string[] = [];
    for await (const m of h.openai().models.list()) openai.push(m.id);
    expect(openai).toEqual(expect.arrayContaining(['gpt-4o', 'gpt-4.1']));
    expect(h.t.sqlite.prepare('select count(*) as n from requests').get()).toEqual({ n: 0 });
  });

  it('count_tokens (a body without handles) and the model list pass through untouched', async () => {
    h = await startHarness();
    const sdk = h.anthropic();
    const counted = await sdk.messages.countTokens({ model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'count me' }] });
    expect(counted.input_tokens).toBeGreaterThan(0);
    const models = await sdk.models.list();
    expect(models.data.length).toBeGreaterThan(0);
    // One model by id too (models.retrieve), on both SDKs; an id the provider does not know is its own 404.
    expect(await sdk.models.retrieve('claude-sonnet-4-6')).toMatchObject({ type: 'model', id: 'claude-sonnet-4-6' });
    expect(await h.openai().models.retrieve('gpt-4o')).toMatchObject({ object: 'model', id: 'gpt-4o' });
    const missing = await sdk.models.retrieve('claude-nope-1').then(() => null, (e: unknown) => e);
    expect(missing).toBeInstanceOf(Anthropic.NotFoundError);
    expect(h.tap.map((e) => `${e.method} ${e.path}`)).toEqual([
      'POST /v1/messages/count_tokens',
      expect.stringMatching(/^GET \/v1\/models/),
      'GET /v1/models/claude-sonnet-4-6',
      'GET /v1/models/gpt-4o',
      'GET /v1/models/claude-nope-1',
    ]);
    // Nothing was rendered or recorded for them.
    expect(h.t.sqlite.prepare('select count(*) as n from requests').get()).toEqual({ n: 0 });
  });

  it('a model the catalog does not know is answered, and said so in x-ph-warnings (priced as the default entry)', async () => {
    h = await startHarness();
    const ask = (model: string) => h.anthropic().messages.create({ model, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    const unknown = await ask('claude-foo-9');
    expect(unknown.response.headers.get('x-ph-warnings')).toBe('unknown_model');
    const row = (await h.tenant.client.get(`/v1/requests/${unknown.response.headers.get('x-ph-request-id')}`)).json;
    expect(row).toMatchObject({ model: 'claude-foo-9', catalog_fallback: true });
    expect((await ask('claude-sonnet-4-6')).response.headers.get('x-ph-warnings')).toBeNull();
  });
});

describe('OpenAI SDK', () => {
  it('chat completions: unknown fields survive both ways, byte for byte', async () => {
    h = await startHarness({ rewrite: addFutureField });
    const rec = recordingFetch();
    const sdk = h.openai({ fetch: rec.fetch, headers: { 'OpenAI-Organization': 'org-test' } });
    const completion = await sdk.chat.completions.create({
      model: 'gpt-4.1',
      messages: [{ role: 'user', content: 'hello' }],
      // @ts-expect-error unknown to the SDK's types and to the proxy
      future_param: 42,
    });
    expect(h.tap[0]!.body).toBe(rec.sent[0]);
    expect(h.tap[0]!.headers.get('authorization')).toBe('Bearer sk-openai-test');
    expect(h.tap[0]!.headers.get('openai-organization')).toBe('org-test');
    expectHeadersForwarded(rec.sentHeaders[0]!, h.tap[0]!.headers);
    expect(rec.received[0]).toBe(addFutureField(h.tap[0]!.response, 'application/json'));
    expect((completion as unknown as { future_field: unknown }).future_field).toEqual({ kept: [1, 'two', null] });
    // The provider's request id, not ours, is the one the SDK reports.
    expect(completion._request_id).toMatch(/^req_[0-9A-Za-z]{24}$/);
  });

  it('responses: unknown fields survive both ways', async () => {
    h = await startHarness({ rewrite: addFutureField });
    const rec = recordingFetch();
    const sdk = h.openai({ fetch: rec.fetch });
    // @ts-expect-error unknown to the SDK's types and to the proxy
    const response = await sdk.responses.create({ model: 'gpt-4.1', input: 'hello', future_param: 'x' });
    expect(h.tap[0]!.body).toBe(rec.sent[0]);
    expect(rec.received[0]).toBe(addFutureField(h.tap[0]!.response, 'application/json'));
    expect((response as unknown as { future_field: unknown }).future_field).toEqual({ kept: [1, 'two', null] });
    expect(response.output_text).toContain('hello');
  });

  it('a chat stream asks the provider for usage and hides the extra chunk from a caller who did not ask', async () => {
    h = await startHarness();
    const rec = recordingFetch();
    const sdk = h.openai({ fetch: rec.fetch });
    const { data: stream, response } = await sdk.chat.completions.create({ model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'hello' }] }).withResponse();
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);

    // One option spliced in at the front; every byte the caller sent follows unchanged.
    expect(h.tap[0]!.body).toBe(`{"stream_options":{"include_usage":true},${rec.sent[0]!.slice(1)}`);
    expect(chunks.every((c) => c.choices.length > 0)).toBe(true);
    // The client's stream is the provider's without the usage event, byte for byte.
    const frames = h.tap[0]!.response.split(/(?<=\n\n)/);
    const usageFrame = frames.find((f) => f.includes('"choices":[]'))!;
    expect(usageFrame).toContain('"prompt_tokens"');
    expect(rec.received[0]).toBe(frames.filter((f) => f !== usageFrame).join(''));

    // …while the proxy read that usage and reconciled it.
    await committed(h);
    const r = (await h.tenant.client.get(`/v1/requests/${response.headers.get('x-ph-request-id')}`)).json;
    expect(r.status).toBe('reconciled');
    expect(r.usage).toMatchObject({ complete: true, cache_fields_reported: true });
  });

  it('a caller who asked for stream usage gets it, and the body goes through unchanged', async () => {
    h = await startHarness();
    const rec = recordingFetch();
    const sdk = h.openai({ fetch: rec.fetch });
    const stream = await sdk.chat.completions.create({ model: 'gpt-4.1', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hello' }] });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(h.tap[0]!.body).toBe(rec.sent[0]);
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: expect.any(Number) } });
    expect(rec.received[0]).toBe(h.tap[0]!.response);
  });
});

describe('provider credentials', () => {
  it('are never stored: only a short fingerprint, in the cache scope', async () => {
    h = await startHarness();
    const anthropicKey = 'sk-ant-secret-0123456789abcdef';
    const openaiKey = 'sk-proj-secret-0123456789abcdef';
    const a = await h.anthropic({ apiKey: anthropicKey }).messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    const o = await h.openai({ apiKey: openaiKey }).chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    await committed(h);

    const fingerprint = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 12);
    const scope = (id: string) => (h.t.sqlite.prepare('select scope from requests where id = ?').get(id) as { scope: string }).scope;
    expect(scope(a.response.headers.get('x-ph-request-id')!)).toContain(`|${fingerprint(anthropicKey)}`);
    expect(scope(o.response.headers.get('x-ph-request-id')!)).toContain(`|${fingerprint(openaiKey)}`);

    // No table holds either credential, whole or in part.
    const tables = h.t.sqlite.prepare("select name from sqlite_master where type = 'table'").all() as { name: string }[];
    for (const { name } of tables) {
      const dump = JSON.stringify(h.t.sqlite.prepare(`select * from "${name}"`).all());
      expect(dump, name).not.toContain('secret-0123456789');
    }
  });
});

describe("the model's answer", () => {
  it('is never stored: a request keeps the usage object as its raw report, and the diagnostics', async () => {
    h = await startHarness();
    const anthropic = await h.anthropic().messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    const chat = await h.openai().chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    const responses = await h.openai().responses.create({ model: 'gpt-4.1', input: 'hi' }).withResponse();
    await committed(h);

    for (const { data, response } of [anthropic, chat, responses]) {
      const row = (await h.tenant.client.get(`/v1/requests/${response.headers.get('x-ph-request-id')}`)).json;
      expect(row.status).toBe('reconciled');
      expect(row.usage_raw).toEqual(JSON.parse(JSON.stringify(data.usage)));
    }
    expect(anthropic.data.content).toEqual([expect.objectContaining({ text: expect.stringContaining('Simulated reply') })]);

    // Streamed: the usage as the stream carried it, in the provider's own shape (not our normalised one).
    const streams = [
      await h.anthropic().messages.create({ model: 'claude-sonnet-4-6', max_tokens: 16, stream: true, messages: [{ role: 'user', content: 'hi' }] }).withResponse(),
      await h.openai().chat.completions.create({ model: 'gpt-4.1', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] }).withResponse(),
      await h.openai().responses.create({ model: 'gpt-4.1', input: 'hi', stream: true }).withResponse(),
    ];
    const finals: unknown[] = [];
    for (const { data } of streams) {
      let usage: unknown = null;
      for await (const event of data as AsyncIterable<Record<string, any>>)
        usage = event.type === 'message_delta' ? { ...(usage as object), ...event.usage } : event.type === 'message_start' ? event.message.usage : event.usage ?? event.response?.usage ?? usage;
      finals.push(usage);
    }
    await committed(h);
    for (const [k, { response }] of streams.entries()) {
      const row = (await h.tenant.client.get(`/v1/requests/${response.headers.get('x-ph-request-id')}`)).json;
      expect(row.status).toBe('reconciled');
      expect(row.usage_raw).not.toHaveProperty('total_prompt_tokens');
      expect(row.usage_raw).toEqual(JSON.parse(JSON.stringify(finals[k])));
    }
    const tables = h.t.sqlite.prepare("select name from sqlite_master where type = 'table'").all() as { name: string }[];
    for (const { name } of tables) expect(JSON.stringify(h.t.sqlite.prepare(`select * from "${name}"`).all()), name).not.toContain('Simulated reply');
  });
});

describe('a large image', () => {
  // An image's base64 is one run without whitespace. Over about 6 million characters (a 4.5 MB image, under
  // Anthropic's 5 MB limit and the 8 MiB body limit) one regex match over it overflowed V8's regex stack while
  // the prompt was measured: a 500 before the provider was called, and, kept in a session, after it had answered.
  // With a PNG header it is counted as an image (by pixels); without one, as the text it then is (in pieces).
  it.each([
    ['an image', 'iVBORw0KGgo'],
    ['no image the service can tell', ''],
  ])('6.5 million characters of base64 in a session turn (%s): answered, recorded and appended, as a small one', async (_, header) => {
    h = await startHarness();
    const session = await h.tenant.client.post('/v1/sessions', {});
    const data = header + 'A'.repeat(6_500_000);
    const sdk = h.anthropic({ headers: { 'x-ph-session': session.json.id } });
    const { response } = await sdk.messages
      .create({ model: 'claude-sonnet-4-6', max_tokens: 16, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data } }, { type: 'text', text: 'What is it?' }] }] })
      .withResponse();
    expect(response.status).toBe(200);
    expect(response.headers.get('x-ph-warnings')).toBeNull();
    await committed(h);
    expect((await h.tenant.client.get(`/v1/requests/${response.headers.get('x-ph-request-id')}`)).json.status).toBe('reconciled');
    expect((await h.tenant.client.get(`/v1/handles/${session.json.id}`)).json.latest_version).toBe(2);
  }, 60_000);
});
