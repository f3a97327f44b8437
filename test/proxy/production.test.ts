// The proxy under what production traffic brings and the simulator never does: a provider (or a gateway before it)
// that compresses its answer, chunks its events anyhow, ends a stream early or with an error event, retries,
// clients that leave at any moment, answers of megabytes, and headers that belong to one connection only. The
// provider is a node:http stand-in that misbehaves on purpose; the clients are the official SDKs, or node:http
// where an SDK cannot send what is tested.

import Anthropic from '@anthropic-ai/sdk';
import fc from 'fast-check';
import { request as httpRequest } from 'node:http';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EventFramer } from '../../src/http/proxy/stream';
import { SseParser } from '../../src/domain/usage/stream';
import { startSession } from '../helpers/factories';
import { committed, eventually, startStandIn, type StandIn } from './harness';

let h: StandIn | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await h?.close();
  h = undefined;
});

type Event = readonly [string, object];

const usage = { input_tokens: 12, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 };
const message = { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-sonnet-4-6', content: [], stop_reason: null, stop_sequence: null, usage };

/** An Anthropic stream answering `pieces` as text deltas; `end: false` leaves out its message_delta and message_stop. */
function anthropicStream(pieces: string[], end = true): Event[] {
  return [
    ['message_start', { type: 'message_start', message }],
    ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
    ...pieces.map((text): Event => ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }]),
    ...(end
      ? ([
          ['content_block_stop', { type: 'content_block_stop', index: 0 }],
          ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 7 } }],
          ['message_stop', { type: 'message_stop' }],
        ] as Event[])
      : []),
  ];
}

const anthropicAnswer = (text: string) => ({ ...message, content: [{ type: 'text', text }], stop_reason: 'end_turn', usage: { ...usage, output_tokens: 7 } });

/** Server-sent events as a provider writes them, each line ended with `eol`. */
const sse = (events: readonly Event[], eol = '\n') => events.map(([event, data]) => `event: ${event}${eol}data: ${JSON.stringify(data)}${eol}${eol}`).join('');

const ask = { model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user' as const, content: 'hello' }] };

const row = (id: string) => h!.t.services.requests.get(h!.tenant.id, id);
const reconciled = (id: string) => eventually(() => (row(id).status === 'reconciled' ? row(id) : null), `${id} reconciled`);
const sessionVersion = async (id: string) => (await h!.tenant.client.get(`/v1/handles/${id}`)).json.version.version as number;
const sessionMessages = async (id: string) => (await h!.tenant.client.get(`/v1/handles/${id}/expand?format=anthropic`)).json.messages as Array<{ role: string; content: unknown }>;

describe('a compressed answer (a gateway that compresses though the proxy asked for none)', () => {
  const encoders = { gzip: gzipSync, br: brotliCompressSync, deflate: deflateSync };

  it.each(Object.keys(encoders) as Array<keyof typeof encoders>)('%s, JSON and SSE: the SDK gets the answer, without content-encoding; usage is read and the session appended', async (coding) => {
    const encode = encoders[coding];
    h = await startStandIn((req, res, call) => {
      const streamed = JSON.parse(h!.calls[call]!.body).stream === true;
      res.writeHead(200, { 'content-type': streamed ? 'text/event-stream' : 'application/json', 'content-encoding': coding, 'request-id': `req_up_${call}` });
      const bytes = encode(Buffer.from(streamed ? sse(anthropicStream(['Grüße ', '🌍'])) : JSON.stringify(anthropicAnswer('Grüße 🌍'))));
      // In two pieces, the second after the first has gone: the decoder gets the bytes as they come.
      res.write(bytes.subarray(0, 7));
      setImmediate(() => res.end(bytes.subarray(7)));
    });
    const session = await startSession(h.tenant.client);
    const sdk = h.anthropic({ headers: { 'x-ph-session': session.id } });

    const { data, response } = await sdk.messages.create(ask).withResponse();
    expect(data.content).toEqual([{ type: 'text', text: 'Grüße 🌍' }]);
    expect(response.headers.get('content-encoding')).toBeNull();
    expect(response.headers.get('request-id')).toBe('req_up_0');

    const { data: stream, response: streamed } = await sdk.messages.create({ ...ask, stream: true }).withResponse();
    let text = '';
    for await (const e of stream) if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') text += e.delta.text;
    expect(text).toBe('Grüße 🌍');
    expect(streamed.headers.get('content-encoding')).toBeNull();

    for (const r of [response, streamed]) {
      const done = await reconciled(r.headers.get('x-ph-request-id')!);
      expect(done.usage).toMatchObject({ complete: true, total_prompt_tokens: 12, output_tokens: 7 });
    }
    expect(await sessionVersion(session.id)).toBe(3);
    expect((await sessionMessages(session.id)).map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    // What the proxy asked for: the provider's answer uncompressed (the client's accept-encoding is not passed on).
    expect(h.calls.every((c) => c.headers['accept-encoding'] === undefined)).toBe(true);
  });

  it('a corrupt compressed answer is a 502 recorded as failed, not a 500 or a hang', async () => {
    h = await startStandIn((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(Buffer.from('not gzip at all'));
    });
    const err = await h.anthropic().messages.create(ask).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect((err as InstanceType<typeof Anthropic.APIError>).status).toBe(502);
    const [only] = h.t.sqlite.prepare('select id, status from requests').all() as { id: string; status: string }[];
    expect(only!.status).toBe('failed');
  });

  it.each(['constructor', 'toString', 'x-unknown'])('a coding it does not know (%s) goes on untouched with its header, the answer as sent', async (coding) => {
    const body = JSON.stringify(anthropicAnswer('as sent'));
    h = await startStandIn((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': coding });
      res.end(body);
    });
    const res = await fetch(`${h.url}/proxy/anthropic/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'sk-test', 'x-ph-key': h.tenant.key }, body: JSON.stringify(ask) });
    expect([res.status, res.headers.get('content-encoding')]).toEqual([200, coding]);
    expect(await res.text()).toBe(body);
  });

  it('an empty answer marked gzip (a 429 with retry-after) goes on as the 429 it is, not a 502 for a truncated stream', async () => {
    h = await startStandIn((_req, res) => {
      res.writeHead(429, { 'content-encoding': 'gzip', 'content-length': '0', 'retry-after': '7' });
      res.end();
    });
    const err = await h.anthropic().messages.create(ask).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    const status = err as InstanceType<typeof Anthropic.APIError>;
    expect([status.status, status.headers?.get('retry-after'), status.headers?.get('content-encoding')]).toEqual([429, '7', null]);
  });

  it.each([
    [429, 'json'],
    [200, 'json'],
    [200, 'stream'],
  ] as const)('an empty chunked answer marked gzip (%i, %s): the client gets the status and no bytes, not a 502; recorded as what came', async (status, kind) => {
    h = await startStandIn((_req, res) => {
      // No content-length: node:http sends it chunked, with no chunk before the last.
      res.writeHead(status, { 'content-type': kind === 'stream' ? 'text/event-stream' : 'application/json', 'content-encoding': 'gzip', 'retry-after': '7' });
      res.end();
    });
    const session = await startSession(h.tenant.client);
    const res = await fetch(`${h.url}/proxy/anthropic/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'sk-test', 'x-ph-key': h.tenant.key, 'x-ph-session': session.id }, body: JSON.stringify({ ...ask, stream: kind === 'stream' }) });
    expect([res.status, res.headers.get('retry-after'), res.headers.get('content-encoding'), await res.text()]).toEqual([status, '7', null, '']);
    const id = res.headers.get('x-ph-request-id')!;
    if (status === 429) {
      expect(row(id)).toMatchObject({ status: 'failed', usageRaw: { status: 429, error: null } });
    } else {
      // An answer without usage: reconciled as unknown, nothing appended.
      expect((await reconciled(id)).usage).toMatchObject({ total_prompt_tokens: null, cache_fields_reported: false });
      expect(await sessionVersion(session.id)).toBe(1);
    }
  });
});

describe('events however they are cut', () => {
  // Every line ending SSE allows, comments, a BOM-free multi-byte text; cut anywhere.
  const line = fc.oneof(fc.constant('\n'), fc.constant('\r\n'), fc.constant('\r'));
  const event = fc.record({
    name: fc.constantFrom('message_start', 'content_block_delta', 'ping'),
    text: fc.string({ unit: fc.constantFrom('a', 'é', '世', '🌍', ' ', ':') }),
    comment: fc.boolean(),
    eols: fc.tuple(line, line, line, line),
  });
  // A CR that ends the data line and an LF that follows it are one line end (CRLF), not a blank line.
  const blank = (before: string, eol: string) => (before === '\r' && eol === '\n' ? '\r' : eol);

  it('EventFramer: every event comes out whole and alone, whatever the chunks (property)', () => {
    fc.assert(
      fc.property(fc.array(event, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 }), (events, cutsAt) => {
        const frames = events.map((e) => `${e.comment ? `: ping${e.eols[0]}` : ''}event: ${e.name}${e.eols[1]}data: ${JSON.stringify({ t: e.text })}${e.eols[2]}${blank(e.eols[2], e.eols[3])}`);
        const bytes = Buffer.from(frames.join(''));
        const cuts = [...new Set(cutsAt.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const framer = new EventFramer();
        const out: Buffer[] = [];
        let from = 0;
        for (const at of [...cuts, bytes.length]) {
          out.push(...framer.push(bytes.subarray(from, at)));
          from = at;
        }
        const { events: last, rest } = framer.end();
        out.push(...last);
        expect(rest.length).toBe(0);
        // A frame is one event, as the provider sent it; its bytes decode alone (no character cut in two).
        expect(out.map((b) => b.toString('utf8'))).toEqual(frames);
        const parser = new SseParser();
        expect(out.flatMap((b) => parser.feed(b.toString('utf8')).map((m) => JSON.parse(m.data).t))).toEqual(events.map((e) => e.text));
      }),
      { numRuns: 300 },
    );
  });

  it('a stream written a byte at a time, CRLF, with comments and multi-byte text: the SDK gets it all, usage is read, the turn appended', async () => {
    const pieces = ['Grüße, ', '世界 ', '🌍\r\n', 'done'];
    const body = Buffer.from(`: ping\r\n\r\n${sse(anthropicStream(pieces), '\r\n').replace('event: content_block_stop', ': keep-alive\r\nevent: content_block_stop')}`);
    h = await startStandIn((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      let i = 0;
      const next = () => (i < body.length ? res.write(body.subarray(i, ++i), () => setImmediate(next)) : res.end());
      next();
    });
    const session = await startSession(h.tenant.client);
    const { data: stream, response } = await h.anthropic({ headers: { 'x-ph-session': session.id } }).messages.create({ ...ask, stream: true }).withResponse();
    let text = '';
    for await (const e of stream) if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') text += e.delta.text;
    expect(text).toBe(pieces.join(''));
    const done = await reconciled(response.headers.get('x-ph-request-id')!);
    expect(done.usage).toMatchObject({ complete: true, total_prompt_tokens: 12, output_tokens: 7 });
    expect((await sessionMessages(session.id)).at(-1)).toMatchObject({ role: 'assistant', content: [{ type: 'text', text: pieces.join('') }] });
  });
});

describe('a stream that ends without its final event', () => {
  it('an error event mid-stream (overloaded_error): the SDK raises it after the text before it; nothing appended, usage unknown', async () => {
    const overloaded = { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } };
    h = await startStandIn((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(sse([...anthropicStream(['partial '], false), ['error', overloaded]]));
    });
    const session = await startSession(h.tenant.client);
    const { data: stream, response } = await h.anthropic({ headers: { 'x-ph-session': session.id } }).messages.create({ ...ask, stream: true }).withResponse();
    let text = '';
    const err = await (async () => {
      for await (const e of stream) if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') text += e.delta.text;
    })().catch((e: unknown) => e);
    expect(text).toBe('partial ');
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect(String((err as Error).message)).toContain('overloaded_error');
    const done = await reconciled(response.headers.get('x-ph-request-id')!);
    expect(done.usage).toMatchObject({ complete: false, cache_read_tokens: null });
    expect((done.outcome as { capture: string }).capture).toBe('unknown');
    expect(await sessionVersion(session.id)).toBe(1);
  });

  it('a provider that closes the stream cleanly before its end: the client gets what was sent, nothing appended, usage unknown', async () => {
    const sent = sse(anthropicStream(['half an ', 'answer'], false));
    h = await startStandIn((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(sent);
    });
    const session = await startSession(h.tenant.client);
    const res = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers: { 'x-ph-key': h.tenant.key, 'x-ph-session': session.id, 'content-type': 'application/json', 'x-api-key': 'sk-ant-test' },
      body: JSON.stringify({ ...ask, stream: true }),
    });
    expect(await res.text()).toBe(sent);
    const done = await reconciled(res.headers.get('x-ph-request-id')!);
    expect(done.usage).toMatchObject({ complete: false });
    expect((done.outcome as { capture: string }).capture).toBe('unknown');
    expect(await sessionVersion(session.id)).toBe(1);
  });
});

describe('a client that leaves', () => {
  /** The stand-in answers each call in steps the test releases: headers and some text, the final events, the end. */
  function stepped() {
    const held: Array<Array<() => void>> = [];
    const wait = (call: number) => new Promise<void>((resolve) => (held[call] ??= []).push(resolve));
    const answer = async (res: import('node:http').ServerResponse, call: number) => {
      await wait(call);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(sse(anthropicStream(['some text'], false)));
      await wait(call);
      res.write(sse(anthropicStream([], true).slice(-3)));
      await wait(call);
      res.end();
    };
    return { answer, holding: (call: number) => held[call]?.length === 1, release: (call: number) => held[call]!.shift()!() };
  }

  it('before the headers, mid-stream, or right after the final event: the upstream call is let go, no socket left open, no 5xx logged; only the complete answer is appended', async () => {
    const s = stepped();
    h = await startStandIn((_req, res, call) => void s.answer(res, call), { log: true });
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (String(chunk).startsWith('{') ? lines.push(String(chunk)) > 0 : write(chunk)));
    vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void lines.push(args.join(' ')));
    const session = await startSession(h.tenant.client);
    const sdk = h.anthropic({ headers: { 'x-ph-session': session.id } });
    const versions: number[] = [];

    for (const stage of ['before headers', 'mid-stream', 'after the final event'] as const) {
      const call = h.calls.length;
      const controller = new AbortController();
      const pending = sdk.messages.create({ ...ask, stream: true }, { signal: controller.signal });
      await eventually(() => s.holding(call), 'the stand-in holds the headers');
      if (stage === 'before headers') {
        controller.abort();
        await expect(pending).rejects.toThrow();
      } else {
        s.release(call);
        const stream = await pending;
        const it = stream[Symbol.asyncIterator]();
        for (let e = await it.next(); !e.done; e = await it.next()) if (e.value.type === 'content_block_delta') break;
        if (stage === 'after the final event') {
          s.release(call);
          for (let e = await it.next(); !e.done && e.value.type !== 'message_stop'; e = await it.next());
        }
        controller.abort();
      }
      await eventually(() => h!.calls[call]!.aborted, `${stage}: the proxy lets the upstream call go`);
      await eventually(() => h!.connections.open === 0, `${stage}: the stand-in's connection is closed`);
      const [id] = (h.t.sqlite.prepare('select id from requests order by rowid desc limit 1').all() as { id: string }[]).map((r) => r.id);
      const done = await reconciled(id!);
      expect(done.usage, stage).toMatchObject({ complete: stage === 'after the final event' });
      versions.push(await sessionVersion(session.id));
    }
    // The answer the client had whole (its message_stop read) is in the session; the others are not.
    expect(versions).toEqual([1, 1, 2]);
    await committed(h);
    const logged = lines.flatMap((l) => l.split('\n')).filter(Boolean);
    expect(logged.filter((l) => /"status":5\d\d/.test(l) || /"level":"error"/.test(l) || !l.startsWith('{'))).toEqual([]);
  });

  it('mid-body (a declared length never sent): nothing recorded, the provider not called, counted as a 4xx, no error logged', async () => {
    h = await startStandIn((_req, res) => res.end());
    const errors: unknown[] = [];
    vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void errors.push(args));
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${h!.url}/proxy/anthropic/v1/messages`, { method: 'POST', headers: { 'x-ph-key': h!.tenant.key, 'content-type': 'application/json', 'content-length': '5000' } });
      req.on('error', () => resolve());
      req.write('{"model":"claude-sonnet-4-6","messages":[', () => {
        req.destroy();
        resolve();
      });
    });
    const metric = () => h!.t.services.metrics.registry.getSingleMetricAsString('ph_http_requests_total');
    let counted = '';
    // Counted once the proxy has seen the client leave: as long as that takes on a loaded machine.
    for (const until = Date.now() + 10_000; !counted.includes('/proxy/anthropic/v1/messages') && Date.now() < until; ) {
      await new Promise((r) => setTimeout(r, 2));
      counted = await metric();
    }
    expect(counted).toMatch(/route="\/proxy\/anthropic\/v1\/messages",status="4\d\d"\} 1/);
    expect(counted).not.toMatch(/status="5\d\d"/);
    expect(h.calls).toHaveLength(0);
    expect(h.t.sqlite.prepare('select count(*) as n from requests').get()).toEqual({ n: 0 });
    expect(errors).toEqual([]);
  });
});

describe("the SDKs' retries", () => {
  it('529 and 429 with retry-after, then an answer: the retried call is appended once; the refusals are recorded as failed', async () => {
    h = await startStandIn((_req, res, call) => {
      if (call < 2) {
        const [status, type] = call === 0 ? [529, 'overloaded_error'] : [429, 'rate_limit_error'];
        res.writeHead(status, { 'content-type': 'application/json', 'retry-after': '0', 'retry-after-ms': '1' });
        res.end(JSON.stringify({ type: 'error', error: { type, message: type } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(sse(anthropicStream(['at last'])));
    });
    const session = await startSession(h.tenant.client);
    const stream = await h.anthropic({ headers: { 'x-ph-session': session.id }, maxRetries: 2 }).messages.create({ ...ask, stream: true });
    for await (const _ of stream) void _;
    expect(h.calls.map((c) => c.headers['x-stainless-retry-count'])).toEqual(['0', '1', '2']);
    const rows = () => h!.t.sqlite.prepare('select status from requests order by rowid').all() as { status: string }[];
    await eventually(() => rows()[2]?.status === 'reconciled', 'the answered call is reconciled');
    expect(rows().map((r) => r.status)).toEqual(['failed', 'failed', 'reconciled']);
    expect(await sessionVersion(session.id)).toBe(2);
    expect(await sessionMessages(session.id)).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'hello' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'at last' }] },
    ]);
  });

  it("a 500 on an OpenAI chat call, then an answer: appended once", async () => {
    h = await startStandIn((_req, res, call) => {
      if (call === 0) {
        res.writeHead(500, { 'content-type': 'application/json', 'retry-after-ms': '1' });
        res.end(JSON.stringify({ error: { message: 'server error', type: 'server_error' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'gpt-4.1', choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'fine' } }], usage: { prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 } }));
    });
    const session = await startSession(h.tenant.client);
    const done = await h.openai({ headers: { 'x-ph-session': session.id }, maxRetries: 1 }).chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hello' }] });
    expect(done.choices[0]!.message.content).toBe('fine');
    expect(h.calls).toHaveLength(2);
    expect(await sessionVersion(session.id)).toBe(2);
    expect((await sessionMessages(session.id)).map((m) => m.role)).toEqual(['user', 'assistant']);
  });

  it("a call the SDK's timeout gave up on appends nothing: the provider call is let go, and the retry is the turn, once", async () => {
    // The first attempt is never answered: the SDK's own timeout ends it, and its retry is answered at once.
    h = await startStandIn((_req, res, call) => {
      if (call === 0) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(anthropicAnswer('second try')));
    });
    const session = await startSession(h.tenant.client);
    const done = await h.anthropic({ headers: { 'x-ph-session': session.id }, maxRetries: 1 }).messages.create(ask, { timeout: 300 });
    expect(done.content).toEqual([{ type: 'text', text: 'second try' }]);
    expect(h.calls.map((c) => c.headers['x-stainless-retry-count'])).toEqual(['0', '1']);
    // The abandoned attempt's provider call was closed by the proxy, not left to run for an answer nobody reads.
    await eventually(() => h!.calls[0]!.aborted && h!.connections.open <= 1, 'the first provider call let go');
    const rows = () => h!.t.sqlite.prepare('select id, status from requests order by rowid').all() as { id: string; status: string }[];
    await eventually(() => rows()[1]?.status === 'reconciled', 'the retry reconciled');
    // The abandoned attempt has no usage to read: unknown, never a 0% hit; the retry's is reported. (By id: on the
    // harness's fake clock both started at the same time, and the list orders those by their ids' random tails.)
    const listed = (await h.tenant.client.get('/v1/requests')).json.requests as Array<{ id: string; capture: string; prompt_tokens: number | null }>;
    const byId = new Map(listed.map((r) => [r.id, [r.capture, r.prompt_tokens]]));
    expect(listed).toHaveLength(2);
    expect(rows().map((r) => byId.get(r.id))).toEqual([['unknown', null], ['reported', 12]]);
    expect(await sessionVersion(session.id)).toBe(2);
    expect(await sessionMessages(session.id)).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'hello' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'second try' }] },
    ]);
  });

  it("the proxy's own refusal (a 409: the session's version is not its latest) is not retried: one call, none to the provider", async () => {
    h = await startStandIn((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(anthropicAnswer('ok')));
    });
    const session = await startSession(h.tenant.client);
    await h.anthropic({ headers: { 'x-ph-session': session.id } }).messages.create(ask);
    expect(await sessionVersion(session.id)).toBe(2);
    let sent = 0;
    const counting: typeof fetch = (input, init) => {
      sent++;
      return fetch(input, init);
    };
    const err = await h.anthropic({ headers: { 'x-ph-session': `${session.id}@1` }, maxRetries: 2, fetch: counting }).messages.create(ask).catch((e: unknown) => e);
    expect((err as InstanceType<typeof Anthropic.APIError>).status).toBe(409);
    expect(sent).toBe(1);
    expect(h.calls).toHaveLength(1);
  });
});

describe('a stream whose content-type a gateway dropped or rewrote', () => {
  it.each([['text/plain; charset=utf-8'], ['application/octet-stream'], [undefined]])('%s: its events still go on as they come, their usage read and the turn appended', async (type) => {
    let clientHasText!: () => void;
    const clientRead = new Promise<void>((resolve) => (clientHasText = resolve));
    h = await startStandIn((_req, res) => {
      res.writeHead(200, type ? { 'content-type': type } : {});
      const events = anthropicStream(['first ', 'second']);
      res.write(sse(events.slice(0, -3)));
      // The end only once the client has read text: held back whole, the answer would never end.
      void clientRead.then(() => res.end(sse(events.slice(-3))));
    });
    const session = await startSession(h.tenant.client);
    const stream = await h.anthropic({ headers: { 'x-ph-session': session.id } }).messages.create({ ...ask, stream: true });
    let text = '';
    for await (const e of stream)
      if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') {
        text += e.delta.text;
        clientHasText();
      }
    expect(text).toBe('first second');
    const id = (await h.tenant.client.get('/v1/requests')).json.requests[0].id as string;
    expect((await reconciled(id)).usage).toMatchObject({ complete: true, total_prompt_tokens: 12, output_tokens: 7 });
    expect(await sessionMessages(session.id)).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'hello' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'first second' }] },
    ]);
  });

  it("an OpenAI chat stream without its type: the usage chunk the proxy asked for is read, and hidden from a caller who did not ask", async () => {
    const chunk = (delta: object, extra: object = {}) => ({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'gpt-4.1', choices: [{ index: 0, delta, finish_reason: null }], ...extra });
    h = await startStandIn((req, res) => {
      res.writeHead(200, {});
      const asked = JSON.parse(h!.calls[0]!.body).stream_options;
      expect(asked).toEqual({ include_usage: true });
      res.write(`data: ${JSON.stringify(chunk({ role: 'assistant', content: 'fine' }, { usage: null }))}\n\n`);
      res.write(`data: ${JSON.stringify({ ...chunk({}, { usage: null }), choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
      res.write(`data: ${JSON.stringify({ ...chunk({}), choices: [], usage: { prompt_tokens: 2048, completion_tokens: 1, total_tokens: 2049, prompt_tokens_details: { cached_tokens: 1024 } } })}\n\n`);
      res.end('data: [DONE]\n\n');
      void req;
    });
    const session = await startSession(h.tenant.client);
    const stream = await h.openai({ headers: { 'x-ph-session': session.id } }).chat.completions.create({ model: 'gpt-4.1', stream: true, messages: [{ role: 'user', content: 'hello' }] });
    const chunks: Array<{ choices: unknown[]; usage?: unknown }> = [];
    for await (const c of stream) chunks.push(c);
    // The caller did not ask for usage: no chunk without choices reaches it.
    expect(chunks.map((c) => c.choices.length)).toEqual([1, 1]);
    const id = (await h.tenant.client.get('/v1/requests')).json.requests[0].id as string;
    expect((await reconciled(id)).usage).toMatchObject({ complete: true, total_prompt_tokens: 2048, cache_read_tokens: 1024 });
    expect((await sessionMessages(session.id)).map((m) => m.role)).toEqual(['user', 'assistant']);
  });

  it('a call that asked to stream and got JSON (a gateway that does not stream) is read as the JSON it is', async () => {
    h = await startStandIn((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(anthropicAnswer('whole')));
    });
    const session = await startSession(h.tenant.client);
    const res = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers: { 'x-ph-key': h.tenant.key, 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01', 'content-type': 'application/json', 'x-ph-session': session.id },
      body: JSON.stringify({ ...ask, stream: true }),
    });
    expect(await res.json()).toMatchObject({ content: [{ type: 'text', text: 'whole' }] });
    expect((await reconciled(res.headers.get('x-ph-request-id')!)).usage).toMatchObject({ complete: true, total_prompt_tokens: 12, output_tokens: 7 });
    expect((await sessionMessages(session.id)).map((m) => m.role)).toEqual(['user', 'assistant']);
  });

  it.each([['text/plain; charset=utf-8'], ['application/octet-stream'], [undefined]])('%s on JSON to a call that asked to stream (a gateway that does not stream, nor name the type): read as the JSON it is, its usage read and the turn appended', async (type) => {
    const body = `\n  ${JSON.stringify(anthropicAnswer('whole'))}`;
    h = await startStandIn((_req, res) => {
      res.writeHead(200, type ? { 'content-type': type } : {});
      // Its first bytes alone first: what they are is known only from the first one that is not whitespace.
      res.write(body.slice(0, 2));
      setImmediate(() => res.end(body.slice(2)));
    });
    const session = await startSession(h.tenant.client);
    const res = await fetch(`${h.url}/proxy/anthropic/v1/messages`, {
      method: 'POST',
      headers: { 'x-ph-key': h.tenant.key, 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01', 'content-type': 'application/json', 'x-ph-session': session.id },
      body: JSON.stringify({ ...ask, stream: true }),
    });
    expect([res.status, await res.text()]).toEqual([200, body]);
    expect((await reconciled(res.headers.get('x-ph-request-id')!)).usage).toMatchObject({ complete: true, total_prompt_tokens: 12, output_tokens: 7 });
    expect(await sessionMessages(session.id)).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'hello' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'whole' }] },
    ]);
  });
});

describe('a very large streamed answer', () => {
  it('several megabytes go on as they come: the client reads the first text while the provider still holds back the end', async () => {
    let clientHasText!: () => void;
    const clientRead = new Promise<void>((resolve) => (clientHasText = resolve));
    const piece = 'x'.repeat(4096);
    const count = 1024; // 4 MiB of text
    h = await startStandIn((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const events = anthropicStream(Array.from({ length: count }, () => piece));
      res.write(sse(events.slice(0, -3)));
      // The end only once the client has read text: a proxy that waited for the whole answer would never see it.
      void clientRead.then(() => res.end(sse(events.slice(-3))));
    });
    const session = await startSession(h.tenant.client);
    const stream = await h.anthropic({ headers: { 'x-ph-session': session.id } }).messages.create({ ...ask, stream: true });
    let length = 0;
    for await (const e of stream)
      if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') {
        length += e.delta.text.length;
        clientHasText();
      }
    expect(length).toBe(piece.length * count);
    expect(await sessionVersion(session.id)).toBe(2);
  });
});

describe('headers', () => {
  it("the SDKs' own (x-stainless-*, anthropic-beta, idempotency-key, OpenAI-Project) reach the provider untouched; hop-by-hop ones, either way, do not", async () => {
    h = await startStandIn((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive, x-upstream-hop', 'x-upstream-hop': 'mine', 'keep-alive': 'timeout=5', 'x-request-id': 'up-1' });
      res.end(JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'gpt-4.1', choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'ok' } }], usage: { prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 } }));
    });
    // The OpenAI SDK's own headers, as it sends them, with a project and an idempotency key of the caller's.
    const sdk = new (await import('openai')).default({ apiKey: 'sk-openai-test', baseURL: `${h.url}/proxy/openai/v1`, project: 'proj_1', maxRetries: 0, defaultHeaders: { 'x-ph-key': h.tenant.key, 'anthropic-beta': 'b-1' } });
    await sdk.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'idempotency-key': 'idem-1' } });
    const seen = h.calls[0]!.headers;
    expect(seen).toMatchObject({ 'openai-project': 'proj_1', 'idempotency-key': 'idem-1', 'anthropic-beta': 'b-1', 'x-stainless-lang': 'js', 'x-stainless-retry-count': '0', authorization: 'Bearer sk-openai-test' });
    expect(seen['x-ph-key']).toBeUndefined();

    // Headers fetch will not send: node:http does. Those the connection names, and the hop-by-hop ones, stop here.
    const answered = await new Promise<{ headers: Record<string, unknown>; status: number }>((resolve, reject) => {
      const req = httpRequest(`${h!.url}/proxy/openai/v1/chat/completions`, {
        method: 'POST',
        headers: { 'x-ph-key': h!.tenant.key, 'content-type': 'application/json', authorization: 'Bearer sk', connection: 'keep-alive, x-client-hop', 'x-client-hop': '1', 'keep-alive': 'timeout=5', te: 'trailers', 'proxy-authorization': 'Basic eDp5', trailer: 'x-t', 'x-kept': 'yes' },
      });
      req.on('response', (res) => {
        res.resume().on('end', () => resolve({ headers: res.headers, status: res.statusCode! }));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] }));
    });
    expect(answered.status).toBe(200);
    const second = h.calls[1]!.headers;
    expect(second['x-kept']).toBe('yes');
    for (const name of ['x-client-hop', 'keep-alive', 'te', 'proxy-authorization', 'trailer']) expect(second[name], name).toBeUndefined();
    expect(answered.headers['x-request-id']).toBe('up-1');
    expect(answered.headers['x-upstream-hop']).toBeUndefined();
  });
});
