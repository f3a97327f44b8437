// Streams go through event by event, and a stream that does not finish leaves
// no trace in the session and an unknown — never zero — capture. Order of
// events is asserted, never durations.

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mintBundle, mintSystem, startSession } from '../helpers/factories';
import { LONG_SYSTEM } from '../helpers/scenario';
import { eventually, startHarness, type Harness } from './harness';

let h: Harness;
afterEach(async () => {
  await h?.close();
});

const requestRow = (id: string) => h.t.services.requests.get(h.tenant.id, id);

describe('pass-through as it arrives', () => {
  it("a streamed answer's first events reach the client before the provider has finished", async () => {
    h = await startHarness({ chunkDelayMs: 15 });
    const stream = await h.anthropic().messages.create({ model: 'claude-sonnet-4-6', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'one two three four five six seven eight nine ten eleven twelve' }] });
    let first = true;
    for await (const event of stream) {
      if (first) h.timeline.push(`client: first event (${event.type})`);
      first = false;
    }
    h.timeline.push('client: end');
    expect(h.timeline).toEqual(['client: first event (message_start)', 'upstream: end', 'client: end']);
  });

  it('the same for an OpenAI chat stream whose usage chunk the proxy holds back', async () => {
    h = await startHarness({ chunkDelayMs: 15 });
    const stream = await h.openai().chat.completions.create({ model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'one two three four five six seven eight nine ten' }] });
    let text = '';
    for await (const chunk of stream) {
      if (text === '' && chunk.choices[0]?.delta.content) h.timeline.push('client: first text');
      text += chunk.choices[0]?.delta.content ?? '';
    }
    expect(h.timeline.indexOf('client: first text')).toBeLessThan(h.timeline.indexOf('upstream: end'));
    expect(text).toContain('one two three');
  });
});

describe('a stream that does not finish', () => {
  it('the client aborts: the upstream call is aborted, nothing is appended, usage is unknown', async () => {
    h = await startHarness({ chunkDelayMs: 25 });
    const session = await startSession(h.tenant.client, { messages: [{ role: 'user', content: 'earlier' }, { role: 'assistant', content: 'noted' }] });
    const sdk = h.anthropic({ headers: { 'x-ph-session': session.id } });
    const { data: stream, response } = await sdk.messages
      .create({ model: 'claude-sonnet-4-6', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'a long answer please, many many words' }] })
      .withResponse();
    const requestId = response.headers.get('x-ph-request-id')!;
    for await (const event of stream) {
      if (event.type === 'content_block_delta') {
        stream.controller.abort();
        break;
      }
    }

    // The proxy notices, cancels its own upstream call, and records the turn as cut off.
    await eventually(() => h.tap[0]!.events.includes('cancelled'), 'the upstream call is cancelled');
    const row = await eventually(() => (requestRow(requestId).status === 'reconciled' ? requestRow(requestId) : null), 'the request is reconciled');
    expect(row.usage).toMatchObject({ complete: false, cache_fields_reported: false, cache_read_tokens: null });
    expect((row.outcome as { capture: string }).capture).toBe('unknown');

    const described = (await h.tenant.client.get(`/v1/handles/${session.id}`)).json;
    expect(described.version.version).toBe(1);
    expect(described.version.message_count).toBe(2);
  });

  it('a client that leaves before a non-streamed answer: the call is abandoned, usage unknown, nothing appended', async () => {
    h = await startHarness({ firstByteDelayMs: 300 });
    const session = await startSession(h.tenant.client);
    const controller = new AbortController();
    const call = h.openai({ headers: { 'x-ph-session': session.id } }).chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }, { signal: controller.signal });
    await eventually(() => h.tap.length === 1, 'the provider has the request');
    controller.abort();
    await expect(call).rejects.toThrow();

    const rows = () => h.t.sqlite.prepare('select id, status from requests').all() as { id: string; status: string }[];
    const [row] = await eventually(() => (rows()[0]?.status === 'reconciled' ? rows() : null), 'the request is reconciled');
    expect(requestRow(row!.id).usage).toMatchObject({ complete: false, cache_fields_reported: false });
    expect((await h.tenant.client.get(`/v1/handles/${session.id}`)).json.version.version).toBe(1);
  });

  it('the provider drops the connection mid-stream: the SDK sees the stream break, nothing is appended, usage is unknown', async () => {
    h = await startHarness();
    const session = await startSession(h.tenant.client);
    for (const sdk of [h.anthropic({ headers: { 'x-ph-session': session.id, 'x-simulator-abort-after': '3' } }), h.openai({ headers: { 'x-ph-session': session.id, 'x-simulator-abort-after': '2' } })]) {
      const params = { model: sdk instanceof Anthropic ? 'claude-sonnet-4-6' : 'gpt-4.1', max_tokens: 64, stream: true as const, messages: [{ role: 'user' as const, content: 'hello there' }] };
      const { data: stream, response } =
        sdk instanceof Anthropic ? await sdk.messages.create(params).withResponse() : await (sdk as OpenAI).chat.completions.create(params).withResponse();
      const events: unknown[] = [];
      await expect(
        (async () => {
          for await (const e of stream as AsyncIterable<unknown>) events.push(e);
        })(),
      ).rejects.toThrow();
      expect(events.length).toBeGreaterThan(0);

      const id = response.headers.get('x-ph-request-id')!;
      const row = await eventually(() => (requestRow(id).status === 'reconciled' ? requestRow(id) : null), 'the request is reconciled');
      expect(row.usage).toMatchObject({ complete: false, cache_read_tokens: null });
      expect((row.outcome as { capture: string }).capture).toBe('unknown');
      // The raw report is what the stream carried before it broke (Anthropic's message_start usage), not our normalised object.
      if (sdk instanceof Anthropic) expect(row.usageRaw).toMatchObject({ input_tokens: expect.any(Number), cache_read_input_tokens: expect.any(Number) });
      else expect(row.usageRaw).toBeNull();
    }
    expect((await h.tenant.client.get(`/v1/handles/${session.id}`)).json.version.version).toBe(1);
  });

  it('a stream cut off is logged: a warn line under the id of the request line that answered 200, naming the recorded request', async () => {
    // The request line is written as the headers go out (status 200): before, nothing in the log said that the
    // answer never reached its end, and the proxy's warn lines put the recorded req_… under "requestId", where the
    // request line has the HTTP request id, so the two could not be joined.
    h = await startHarness({ log: true });
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      const sdk = h.anthropic({ headers: { 'x-simulator-abort-after': '3', 'x-request-id': 'cut-stream-1' } });
      const { data: stream, response } = await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'hello there' }] }).withResponse();
      await expect((async () => {
        for await (const _ of stream) void _;
      })()).rejects.toThrow();
      const recorded = response.headers.get('x-ph-request-id')!;
      await eventually(() => requestRow(recorded).status === 'reconciled', 'the request is reconciled');
      const logged = lines.flatMap((l) => l.split('\n')).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      const mine = logged.filter((l) => l.requestId === 'cut-stream-1');
      expect(mine).toEqual([
        expect.objectContaining({ level: 'info', route: '/proxy/anthropic/v1/messages', status: 200, recorded }),
        expect.objectContaining({ level: 'warn', recorded, msg: expect.stringContaining('cut off before its end') }),
      ]);
      expect(logged.filter((l) => l.level === 'warn')).toHaveLength(1);
    } finally {
      vi.restoreAllMocks();
    }
  });

  it('a streamed Responses answer cut at max_output_tokens is kept in the session, as the same answer unstreamed is', async () => {
    h = await startHarness();
    const client = h.tenant.client;
    const session = await startSession(client, { base: (await mintBundle(client, [(await mintSystem(client, LONG_SYSTEM)).id])).id });
    const sdk = h.openai({ headers: { 'x-ph-session': session.id } });
    // The simulator's reply quotes the question: numbers make it longer than 16 tokens.
    const input = '1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20';
    const stream = await sdk.responses.create({ model: 'gpt-4.1', input, max_output_tokens: 16, stream: true });
    let last: { type: string; response?: { status?: string } } | undefined;
    for await (const event of stream) last = event;
    expect(last).toMatchObject({ type: 'response.incomplete', response: { status: 'incomplete' } });
    let version = 1;
    for (let i = 0; i < 200 && version === 1; i++) {
      version = (await client.get(`/v1/handles/${session.id}`)).json.version.version as number;
      if (version === 1) await new Promise((r) => setTimeout(r, 5));
    }
    expect(version).toBe(2);
    const messages = (await client.get(`/v1/handles/${session.id}/expand?format=anthropic`)).json.messages as Array<{ role: string }>;
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant']);
  });

  it('an unknown capture is counted apart in the handle report, never as a 0% hit', async () => {
    h = await startHarness({ chunkDelayMs: 5 });
    const client = h.tenant.client;
    const sys = await mintSystem(client, LONG_SYSTEM);
    const bundle = await mintBundle(client, [sys.id]);
    const session = await startSession(client, { base: bundle.id });
    const sdk = h.openai({ headers: { 'x-ph-session': session.id } });
    await sdk.responses.create({ model: 'gpt-4.1', input: 'first turn' });
    h.clock.advance(60_000);

    // The second turn reads the bundle the first wrote, but the answer is cut off before its usage.
    const { data: stream, response } = await sdk.responses.create({ model: 'gpt-4.1', input: 'second turn', stream: true }, { headers: { 'x-simulator-abort-after': '3' } }).withResponse();
    await expect(
      (async () => {
        for await (const _ of stream) void _;
      })(),
    ).rejects.toThrow();
    const id = response.headers.get('x-ph-request-id')!;
    await eventually(() => requestRow(id).status === 'reconciled', 'the request is reconciled');
    await new Promise((r) => setImmediate(r));

    const rep = (await client.get(`/v1/reports/handles/${bundle.id}`)).json;
    expect(rep.requests).toBe(2);
    expect(rep.requests_with).toMatchObject({ cold: 1, unknown: 1 });
    expect(rep.tokens.unknown).toBeGreaterThan(0);
    expect(rep.tokens.captured).toBe(0);
    // The only opportunity was in the request without a receipt: no rate, rather than 0%.
    expect(rep.capture_rate).toBeNull();
    expect((await client.get(`/v1/handles/${session.id}`)).json.version.version).toBe(2);
  });
});
