import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { createTestApp, type Client, type TestApp } from '../helpers/app';
import { mintArtifact, mintBundle, mintDocument, mintSystem, mintTools, startSession } from '../helpers/factories';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const LONG = 'Answer carefully and cite the handbook. '.repeat(300);

async function render(client: Client, format: string, request: string | object, extra = '') {
  const raw = typeof request === 'string' ? request : JSON.stringify(request);
  return client.post('/v1/render', `{"format":${JSON.stringify(format)},"request":${raw}${extra}}`);
}

/** The body text inside a render response, exactly as the service returned it. */
function bodyText(responseText: string): string {
  const start = responseText.indexOf('"body":') + 7;
  const end = responseText.indexOf(',"segments":');
  return responseText.slice(start, end);
}

const requestCount = (t: TestApp) => t.sqlite.prepare('select count(*) from requests').pluck().get() as number;

describe('POST /v1/render', () => {
  it('splices a prefix bundle into an Anthropic body and keeps every caller byte', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG);
    const tools = await mintTools(client);
    const b = await mintBundle(client, [sys.id, tools.id]);
    const raw = `{"model":"claude-sonnet-4-5","max_tokens":  1024,"prefix":["${b.id}"],"metadata":{"user_id":"u1","z":1.50,"a":"\\u00e9"},"messages":[{"role":"user","content":"hi"}],"x_future":[1e2,{"b":0,"a":0}]}`;
    const res = await render(client, 'anthropic', raw);
    expect(res.status, res.text).toBe(200);
    const body = bodyText(res.text);
    // Caller fields the service does not know come through byte for byte.
    expect(body).toContain('"max_tokens":  1024');
    expect(body).toContain('"metadata":{"user_id":"u1","z":1.50,"a":"\\u00e9"}');
    expect(body).toContain('"x_future":[1e2,{"b":0,"a":0}]');
    expect(body).not.toContain('"prefix"');
    const parsed = JSON.parse(body);
    expect(parsed.tools[0].name).toBe('get_weather');
    expect(parsed.system[0].text).toBe(LONG);
    expect(parsed.system[0].cache_control).toEqual({ type: 'ephemeral' });
    expect(parsed.messages).toEqual([{ role: 'user', content: 'hi' }]);
    expect(res.json.segments.map((s: { source: string }) => s.source)).toEqual([`${tools.id}@1`, `${sys.id}@1`, 'inline']);
    expect(res.json.segments[1].path).toEqual([`${b.id}@1`, `${sys.id}@1`]);
    expect(res.json.breakpoints).toEqual([{ segment: 1, source: `${sys.id}@1`, token_end: res.json.segments[1].token_end, ttl: '5m', set_by: 'service' }]);
    expect(res.json.model).toEqual({ name: 'claude-sonnet-4-5', catalog_entry: 'claude-sonnet-4-5', fallback: false });
    expect(res.headers.get('x-ph-request-id')).toBe(res.json.request_id);
    expect(requestCount(t)).toBe(1);
  });

  it('turns a plain-string system prompt into blocks: handle first, caller text unchanged', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, 'stable system');
    const res = await render(client, 'anthropic', `{"model":"claude-sonnet-4-5","prefix":["${sys.id}"],"system":"Today is 2026-11-21","messages":[{"role":"user","content":"x"}]}`);
    expect(JSON.parse(bodyText(res.text)).system).toEqual([{ type: 'text', text: 'stable system' }, { type: 'text', text: 'Today is 2026-11-21' }]);
    expect(res.json.warnings).toEqual([]);
  });

  it('warns when volatile caller content comes before a handle', async () => {
    const { client } = t.tenant();
    const doc = await mintArtifact(client, 'document', 'the handbook');
    const res = await render(client, 'anthropic', {
      model: 'claude-sonnet-4-5',
      system: 'Request 3f2a9c1e-8b7d-4c2a-9e1f-0a1b2c3d4e5f at 2026-11-21T10:00:00Z',
      messages: [{ role: 'user', content: [{ type: 'handle', ref: doc.id }, { type: 'text', text: 'now is 2026-11-21' }] }],
    });
    expect(res.json.warnings.map((w: { kind: string; segment: number }) => [w.kind, w.segment])).toEqual([['uuid', 0], ['iso_timestamp', 0]]);
    // In words (import's summary prints it): it read "holds a iso_timestamp", naming a kind where a reader wants the value's nature.
    expect(res.json.warnings[1].detail).toBe(
      `inline content before ${doc.id}@1 holds a value that differs from call to call (iso_timestamp "2026-11-21T10:00:00Z"): the cached prefix will not match on the next call`,
    );
  });

  it('warns when a handle is sent twice: a bundle named beside a session based on it (tools twice are refused, below)', async () => {
    const { client } = t.tenant();
    const tools = await mintSystem(client, 'You answer from the handbook.');
    const bundle = await mintBundle(client, [tools.id]);
    const ses = await startSession(client, { base: bundle.id, messages: [{ role: 'user', content: 'earlier' }] });
    const once = await render(client, 'anthropic', { model: 'claude-sonnet-4-5', prefix: [ses.id], messages: [{ role: 'user', content: 'hi' }] });
    expect(once.json.warnings).toEqual([]);
    const twice = await render(client, 'anthropic', { model: 'claude-sonnet-4-5', prefix: [bundle.id, ses.id], messages: [{ role: 'user', content: 'hi' }] });
    expect(twice.status).toBe(200);
    expect(twice.json.warnings).toEqual([{ code: 'repeated_handle', segment: 1, kind: 'handle', text: `${tools.id}@1`, detail: expect.stringContaining(`${tools.id}@1 is also segment 0`) }]);
    expect(twice.json.segments.map((s: { source: string }) => s.source).slice(0, 2)).toEqual([`${tools.id}@1`, `${tools.id}@1`]);
  });

  it('warns of a system or developer message after a session’s messages (system_after_session), as the proxy does', async () => {
    const { client } = t.tenant();
    const ses = await startSession(client, { messages: [{ role: 'user', content: 'earlier' }, { role: 'assistant', content: 'answer' }] });
    const system = { role: 'system', content: 'Be brief.' };
    const question = { role: 'user', content: 'And then?' };
    const chat = await render(client, 'openai-chat', { model: 'gpt-4.1', prefix: [ses.id], messages: [question, system] });
    expect(chat.status, chat.text).toBe(200);
    expect(chat.json.warnings).toEqual([{ code: 'system_after_session', segment: 1, kind: 'message', text: 'system', detail: expect.stringContaining('it stands after the history, where no turn') }]);
    // The segment named is the caller's own, after the session's batch.
    expect(chat.json.segments.map((s: { source: string }) => s.source)).toEqual([`${ses.id}@1`, 'inline']);
    // Responses: a developer item in the input; one of another type (a function call's output) is no message.
    const dev = await render(client, 'openai-responses', { model: 'gpt-4.1', prefix: [ses.id], input: [{ type: 'message', role: 'developer', content: 'Be brief.' }, question] });
    expect(dev.json.warnings.map((w: { code: string; text: string }) => [w.code, w.text])).toEqual([['system_after_session', 'developer']]);
    // A session placed in the messages after the system message: the system message comes first, nothing to warn of.
    const first = await render(client, 'openai-chat', { model: 'gpt-4.1', messages: [system, { type: 'handle', ref: ses.id }, question] });
    expect([first.status, first.json.warnings]).toEqual([200, []]);
    // An empty session too: the history it starts sits before the system message from the next turn on.
    const empty = await startSession(client, {});
    const none = await render(client, 'openai-chat', { model: 'gpt-4.1', prefix: [empty.id], messages: [system, question] });
    expect(none.json.warnings.map((w: { code: string; segment: number }) => [w.code, w.segment])).toEqual([['system_after_session', 0]]);
    // No session, or Responses `instructions` (which OpenAI puts before the input): nothing to warn of.
    const sys = await mintSystem(client, 'You answer from the handbook.');
    expect((await render(client, 'openai-chat', { model: 'gpt-4.1', prefix: [sys.id], messages: [system, question] })).json.warnings).toEqual([]);
    expect((await render(client, 'openai-responses', { model: 'gpt-4.1', prefix: [ses.id], instructions: 'Be brief.', input: 'hi' })).json.warnings).toEqual([]);
    // Anthropic keeps its system prompt apart, before the messages.
    expect((await render(client, 'anthropic', { model: 'claude-sonnet-4-5', prefix: [ses.id], system: 'Be brief.', messages: [question] })).json.warnings).toEqual([]);
  });

  it('system_after_session: warned of exactly when a system or developer message comes after a session, at its segment', async () => {
    const { client } = t.tenant();
    const ses = await startSession(client, { messages: [{ role: 'user', content: 'earlier' }] });
    const sys = await mintSystem(client, 'You answer from the handbook.');
    const item = fc.constantFrom('user', 'assistant', 'system', 'developer', 'session', 'handle');
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(item, { minLength: 1, maxLength: 6 }), fc.constantFrom('openai-chat', 'openai-responses'), async (inPrefix, items, format) => {
        const messages = items.map((k, i) => (k === 'session' ? { type: 'handle', ref: ses.id } : k === 'handle' ? { role: 'system', content: [{ type: 'handle', ref: sys.id }] } : { role: k, content: `m${i}` }));
        const request = { model: 'gpt-4.1', ...(inPrefix ? { prefix: [ses.id] } : {}), [format === 'openai-chat' ? 'messages' : 'input']: messages };
        const res = await render(client, format, request);
        expect(res.status, res.text).toBe(200);
        const firstSession = inPrefix ? -1 : items.indexOf('session');
        const instructs = (k: string) => k === 'system' || k === 'developer' || k === 'handle';
        const after = firstSession === -1 && !inPrefix ? -1 : items.findIndex((k, i) => i > firstSession && instructs(k));
        const warned = res.json.warnings.filter((w: { code: string }) => w.code === 'system_after_session');
        expect(warned.length, JSON.stringify(request)).toBe(after === -1 ? 0 : 1);
        if (after === -1) return;
        // The segment named holds that message: its role, and it comes after the session's batch.
        const segs = res.json.segments as Array<{ source: string }>;
        expect(warned[0].text).toBe(items[after] === 'developer' ? 'developer' : 'system');
        expect(segs.findIndex((s) => s.source === `${ses.id}@1`)).toBeLessThan(warned[0].segment);
      }),
      { numRuns: 60 },
    );
  });

  it('warns when a Responses call continuing a conversation OpenAI keeps places a handle in its input, after that history', async () => {
    const { client } = t.tenant();
    const tools = await mintTools(client);
    const sys = await mintSystem(client, 'You answer from the handbook.');
    const request = { model: 'gpt-4.1', prefix: [tools.id, sys.id], input: 'And then?' };
    expect((await render(client, 'openai-responses', request)).json.warnings).toEqual([]);
    for (const field of ['previous_response_id', 'conversation']) {
      const res = await render(client, 'openai-responses', { ...request, [field]: 'resp_123' });
      // The tools come before the history and are not named; the system prompt, in the input after it, is.
      expect(res.json.warnings, field).toEqual([
        { code: 'prefix_after_history', segment: 1, kind: 'handle', text: `${sys.id}@1`, detail: expect.stringContaining(`stands after the conversation OpenAI keeps (${field})`) },
      ]);
    }
    // Only tools in the prefix: nothing after the history, nothing to warn of.
    expect((await render(client, 'openai-responses', { model: 'gpt-4.1', prefix: [tools.id], input: 'x', previous_response_id: 'resp_1' })).json.warnings).toEqual([]);
    // A handle in this turn's own input (a document the question is about, an item) is new content of this turn, not
    // sent again: it joins the history OpenAI keeps and is read from there. Only what the prefix places is warned of.
    const doc = await mintDocument(client, 'The handbook, chapter 3.');
    const few = await mintArtifact(client, 'messages', [{ role: 'user', content: 'An example.' }]);
    const input = [{ type: 'handle', ref: few.id }, { role: 'user', content: [{ type: 'handle', ref: doc.id }, { type: 'input_text', text: 'Summarise it.' }] }];
    const own = await render(client, 'openai-responses', { model: 'gpt-4.1', prefix: [tools.id], input, previous_response_id: 'resp_1' });
    expect([own.status, own.json.warnings]).toEqual([200, []]);
    const both = await render(client, 'openai-responses', { model: 'gpt-4.1', prefix: [sys.id], input, previous_response_id: 'resp_1' });
    expect(both.json.warnings.map((w: { code: string; text: string }) => [w.code, w.text])).toEqual([['prefix_after_history', `${sys.id}@1`]]);
  });

  it('a handle named twice in a row is two segments, each with its own bytes and tokens, and a warning', async () => {
    const { client } = t.tenant();
    const tools = await mintSystem(client, 'You answer from the handbook.');
    const ses = await startSession(client, { messages: [{ role: 'user', content: 'earlier' }] });
    for (const prefix of [[tools.id, tools.id], [ses.id, ses.id]]) {
      const res = await render(client, 'anthropic', { model: 'claude-sonnet-4-5', prefix, messages: [{ role: 'user', content: 'hi' }] });
      const segs = res.json.segments as Array<{ source: string; byte_start: number; byte_end: number; token_start: number; token_end: number; blocks: number }>;
      const [a, b] = segs;
      expect([a!.source, b!.source], String(prefix)).toEqual([`${prefix[0]}@1`, `${prefix[0]}@1`]);
      expect(b!.byte_end - b!.byte_start).toBe(a!.byte_end - a!.byte_start);
      expect(b!.token_end - b!.token_start).toBe(a!.token_end - a!.token_start);
      expect(b!.blocks).toBe(a!.blocks);
      expect(res.json.warnings.map((w: { code: string; segment: number }) => [w.code, w.segment])).toEqual([['repeated_handle', 1]]);
    }
    // The bytes are those of the copies as one segment (renderer version 1): one mark, after the last copy,
    // and the minimum checked over one copy's tokens, so a second copy adds no mark either.
    const sys = await mintArtifact(client, 'system', 'You are the support agent for a large handbook. '.repeat(160));
    const twice = await render(client, 'anthropic', { model: 'claude-sonnet-4-5', prefix: [sys.id, sys.id], messages: [{ role: 'user', content: 'hi' }] });
    expect(twice.json.body.system.map((b: { cache_control?: unknown }) => b.cache_control !== undefined)).toEqual([false, true]);
    const doc = await mintArtifact(client, 'document', 'Doc text. '.repeat(300));
    const small = await render(client, 'openai-chat', { model: 'gpt-5.6', prefix: [doc.id, doc.id], messages: [{ role: 'user', content: 'hi' }] });
    expect(small.json.segments[1].token_end).toBeGreaterThan(1024);
    // None of ours (only OpenAI's own, at the newest message).
    expect(small.json.breakpoints.map((b: { set_by: string }) => b.set_by)).toEqual(['provider']);
  });

  it("refuses a tool named by two sources (a handle's and the request's own, or two handles'): providers refuse it", async () => {
    const { client } = t.tenant();
    const weather = await mintTools(client, 'get_weather');
    const again = await mintTools(client, 'get_weather');
    const other = await mintTools(client, 'lookup');
    const own = { name: 'get_weather', description: 'mine', input_schema: { type: 'object' } };
    const refused = await render(client, 'anthropic', { model: 'claude-sonnet-4-5', max_tokens: 5, prefix: [weather.id], tools: [own], messages: [{ role: 'user', content: 'hi' }] });
    expect(refused.status).toBe(422);
    expect(refused.json.errors).toEqual([{ pointer: '/request/tools/0', detail: expect.stringContaining(`"get_weather" is also defined by ${weather.id}@1`) }]);
    const twoHandles = await render(client, 'openai-chat', { model: 'gpt-4o', tools: [{ type: 'handle', ref: weather.id }, { type: 'handle', ref: again.id }], messages: [{ role: 'user', content: 'hi' }] });
    expect(twoHandles.status).toBe(422);
    expect(twoHandles.json.errors[0].pointer).toBe('/request/tools/1');
    // The same tools artifact placed twice (in the prefix and again in tools) gives every name twice as well.
    const placedTwice = await render(client, 'anthropic', { model: 'claude-sonnet-4-5', max_tokens: 5, prefix: [weather.id], tools: [{ type: 'handle', ref: weather.id }], messages: [{ role: 'user', content: 'hi' }] });
    expect(placedTwice.status).toBe(422);
    expect(placedTwice.json.errors[0].pointer).toBe('/request/tools/0');
    // Twice in the prefix, or once and again in a bundle of it: each placement gives its names again.
    for (const prefix of [[weather.id, weather.id], [weather.id, (await mintBundle(client, [weather.id])).id]]) {
      const again = await render(client, 'anthropic', { model: 'claude-sonnet-4-5', max_tokens: 5, prefix, messages: [{ role: 'user', content: 'hi' }] });
      expect(again.status, again.text).toBe(422);
      expect(again.json.errors).toEqual([{ pointer: '/request/prefix/1', detail: expect.stringContaining(`"get_weather" is also defined by ${weather.id}@1 (the same tools placed twice: a bundle or a session based on one sends them already; name it alone)`) }]);
    }
    expect(t.sqlite.prepare('select count(*) as n from requests').get()).toEqual({ n: 0 });
    // Different names from two sources are fine.
    const fine = await render(client, 'anthropic', { model: 'claude-sonnet-4-5', max_tokens: 5, prefix: [other.id], tools: [own], messages: [{ role: 'user', content: 'hi' }] });
    expect(fine.status, fine.text).toBe(200);
  });

  it('expands handle blocks in place: tools, messages and text content', async () => {
    const { client } = t.tenant();
    const tools = await mintTools(client, 'lookup');
    const doc = await mintArtifact(client, 'document', 'the document text');
    const ses = await startSession(client, { messages: [{ role: 'user', content: 'earlier' }, { role: 'assistant', content: 'ok' }] });
    const res = await render(client, 'openai-chat', {
      model: 'gpt-4o',
      tools: [{ type: 'handle', ref: tools.id }],
      messages: [
        { role: 'system', content: 'sys' },
        { type: 'handle', ref: ses.id },
        { role: 'user', content: [{ type: 'handle', ref: doc.id }, { type: 'text', text: 'question' }] },
      ],
    });
    expect(res.status, res.text).toBe(200);
    const body = JSON.parse(bodyText(res.text));
    expect(body.tools[0].function.name).toBe('lookup');
    expect(body.messages).toEqual([
      { role: 'system', content: 'sys' },
      { role: 'user', content: 'earlier' },
      { role: 'assistant', content: 'ok' },
      { role: 'user', content: [{ type: 'text', text: 'the document text' }, { type: 'text', text: 'question' }] },
    ]);
    expect(body.prompt_cache_key).toBe(`ph-${tools.id}`);
    expect(res.json.prompt_cache_key).toBe(`ph-${tools.id}`);
    expect(res.json.segments.map((s: { source: string }) => s.source)).toEqual([`${tools.id}@1`, 'inline', `${ses.id}@1`, `${doc.id}@1`, 'inline']);
  });

  it('places explicit OpenAI breakpoints for GPT-5.6, never on assistant output, and none for older models', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG);
    const ses = await startSession(client, { messages: [{ role: 'user', content: 'hello' }, { role: 'assistant', content: 'hi' }] });
    const chat = await render(client, 'openai-chat', { model: 'gpt-5.6', prefix: [sys.id, ses.id], messages: [{ role: 'user', content: 'q' }] });
    expect(chat.status, chat.text).toBe(200);
    const body = JSON.parse(bodyText(chat.text));
    expect(body.messages[0]).toEqual({ role: 'system', content: [{ type: 'text', text: LONG, prompt_cache_breakpoint: { mode: 'explicit' } }] });
    // The session's last batch ends with the assistant's turn, which cannot carry a breakpoint.
    expect(body.messages[2]).toEqual({ role: 'assistant', content: 'hi' });
    // Recorded beside ours: OpenAI's own implicit breakpoint at the end of the newest message (not rendered).
    expect(chat.json.breakpoints.map((b: { source: string; set_by: string }) => [b.source, b.set_by])).toEqual([
      [`${sys.id}@1`, 'service'],
      ['inline', 'provider'],
    ]);
    expect(chat.json.breakpoints[1].segment).toBe(chat.json.segments.length - 1);
    expect(body.messages[3]).toEqual({ role: 'user', content: 'q' });
    // prompt_cache_options.mode 'explicit' turns it off; a caller's own mark is recorded as the caller's.
    const explicit = await render(client, 'openai-chat', {
      model: 'gpt-5.6',
      prompt_cache_options: { mode: 'explicit' },
      prefix: [sys.id],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'marked', prompt_cache_breakpoint: { mode: 'explicit' } }] }, { role: 'assistant', content: 'noted' }, { role: 'user', content: 'q' }],
    });
    expect(explicit.status, explicit.text).toBe(200);
    expect(explicit.json.breakpoints.map((b: { set_by: string }) => b.set_by)).toEqual(['service', 'caller']);
    const responses = await render(client, 'openai-responses', { model: 'gpt-5.6', prefix: [sys.id], input: 'q' });
    expect(JSON.parse(bodyText(responses.text)).input[0].content[0].prompt_cache_breakpoint).toEqual({ mode: 'explicit' });
    const old = await render(client, 'openai-chat', { model: 'gpt-4o', prefix: [sys.id], messages: [{ role: 'user', content: 'q' }] });
    expect(old.text).not.toContain('prompt_cache_breakpoint');
    expect(old.json.breakpoints).toEqual([]);
  });

  it("OpenAI's prompt_cache_key is the leading handle: a session keeps its conversation on one machine", async () => {
    const { client } = t.tenant();
    const b = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, 'be brief'))!.id]);
    const keyOf = async (prefix: string[]) => JSON.parse(bodyText((await render(client, 'openai-chat', { model: 'gpt-4.1', prefix, messages: [{ role: 'user', content: 'hi' }] })).text)).prompt_cache_key;
    // Each conversation its own key, also on a shared base (OpenAI spreads a busy key over machines).
    const [one, two] = [await startSession(client, { base: b.id }), await startSession(client, { base: b.id })];
    expect(await keyOf([one.id])).toBe(`ph-${one.id}`);
    expect(await keyOf([two.id])).toBe(`ph-${two.id}`);
    // The bundle named first leads.
    expect(await keyOf([b.id, (await startSession(client)).id])).toBe(`ph-${b.id}`);
  });

  it('renders Responses and Gemini bodies', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, 'be brief');
    const tools = await mintTools(client);
    const b = await mintBundle(client, [tools.id, sys.id]);
    const r = await render(client, 'openai-responses', { model: 'gpt-4.1', prefix: [b.id], input: 'hello', prompt_cache_key: 'mine' });
    const rb = JSON.parse(bodyText(r.text));
    expect(rb.input).toEqual([{ type: 'message', role: 'system', content: [{ type: 'input_text', text: 'be brief' }] }, { role: 'user', content: 'hello' }]);
    expect(rb.prompt_cache_key).toBe('mine');
    expect(rb.tools[0]).toMatchObject({ type: 'function', name: 'get_weather' });
    const g = await render(client, 'gemini', { prefix: [b.id], contents: [{ role: 'user', parts: [{ text: 'hi' }] }], generationConfig: { temperature: 0 } }, ',"model":"gemini-2.5-flash"');
    expect(g.status, g.text).toBe(200);
    const gb = JSON.parse(bodyText(g.text));
    expect(gb.systemInstruction).toEqual({ parts: [{ text: 'be brief' }] });
    expect(gb.tools[0].functionDeclarations[0].name).toBe('get_weather');
    expect(gb.contents).toEqual([{ role: 'user', parts: [{ text: 'hi' }] }]);
    expect(g.json.model.catalog_entry).toMatch(/gemini-2\.5-flash/);
  });

  it('flags an unknown model as a fallback, never silently', async () => {
    const { client } = t.tenant();
    const res = await render(client, 'anthropic', { model: 'claude-future-9', messages: [{ role: 'user', content: 'x' }] });
    expect(res.status).toBe(200);
    expect(res.json.model.fallback).toBe(true);
  });

  it('refuses bad input with a pointer and records nothing', async () => {
    const { client } = t.tenant();
    const other = t.tenant('other');
    const foreign = await mintSystem(other.client);
    const tools = await mintTools(client);
    const sys = await mintSystem(client);
    const cases: Array<[object, number, string]> = [
      [{ model: 'gpt-4o', prefix: ['art_AAAAAAAAAAAAAAAAAAAAA'], messages: [] }, 404, '/request/prefix/0'],
      [{ model: 'gpt-4o', prefix: [foreign.id], messages: [] }, 404, '/request/prefix/0'],
      [{ model: 'gpt-4o', prefix: 'nope', messages: [] }, 422, '/request/prefix'],
      [{ model: 'gpt-4o', messages: [{ role: 'user', content: [{ type: 'handle', ref: tools.id }] }] }, 422, '/request/messages/0/content/0'],
      [{ model: 'gpt-4o', messages: [{ type: 'handle', ref: sys.id }] }, 422, '/request/messages/0'],
      [{ model: 'gpt-4o', messages: [{ type: 'handle' }] }, 422, '/request/messages/0/ref'],
      // An empty ref once went through to the provider as it was.
      [{ model: 'gpt-4o', messages: [{ type: 'handle', ref: '' }] }, 422, '/request/messages/0/ref'],
      [{ model: 'gpt-4o', messages: [{ role: 'user', content: [{ type: 'handle', ref: '' }] }] }, 422, '/request/messages/0/content/0/ref'],
      [{ model: 'gpt-4o' }, 422, '/request/messages'],
      [{ messages: [] }, 422, '/request/model'],
      [{ model: 'claude-sonnet-4-5', messages: 'x' }, 422, '/request/messages'],
    ];
    for (const [request, status, pointer] of cases) {
      const format = (request as { model?: string }).model?.startsWith('claude') ? 'anthropic' : 'openai-chat';
      const res = await render(client, format, request);
      expect(res.status, JSON.stringify(request) + res.text).toBe(status);
      expect(res.json.errors?.[0]?.pointer, JSON.stringify(request)).toBe(pointer);
    }
    const five = Array.from({ length: 5 }, (_, i) => ({ type: 'text', text: `b${i}`, cache_control: { type: 'ephemeral' } }));
    const tooMany = await render(client, 'anthropic', { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: five }] });
    expect(tooMany.status).toBe(422);
    expect(tooMany.json.detail).toMatch(/at most 4/);
    expect((await render(client, 'cohere', {})).status).toBe(422);
    expect(requestCount(t)).toBe(0);
  });

  it("counts a caller's cache mark as no prompt tokens: a marked turn has the size it has unmarked, in the next turn's history", async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG);
    const text = 'Which sections of the handbook cover retries, and what do they say about backoff limits?';
    const sizes: number[] = [];
    for (const [model, block] of [
      ['claude-sonnet-4-5', { type: 'text', text }],
      ['claude-sonnet-4-5', { type: 'text', text, cache_control: { type: 'ephemeral', ttl: '1h' } }],
      ['gpt-5.6-terra', { type: 'text', text }],
      ['gpt-5.6-terra', { type: 'text', text, prompt_cache_breakpoint: {} }],
    ] as const) {
      const res = await render(client, model.startsWith('gpt') ? 'openai-chat' : 'anthropic', { model, max_tokens: 64, prefix: [sys.id], messages: [{ role: 'user', content: [block] }] });
      expect(res.status, res.text).toBe(200);
      const last = res.json.segments.at(-1);
      expect(last.source).toBe('inline');
      sizes.push(last.token_end - last.token_start);
    }
    expect(sizes[1]).toBe(sizes[0]);
    expect(sizes[3]).toBe(sizes[2]);
  });

  it('never adds breakpoints beyond the limit, counting the caller\'s', async () => {
    const { client } = t.tenant();
    const a = await mintSystem(client, LONG);
    const b2 = await mintSystem(client, LONG + 'b');
    const c = await mintSystem(client, LONG + 'c');
    const three = Array.from({ length: 3 }, (_, i) => ({ type: 'text', text: `b${i}`, cache_control: { type: 'ephemeral' } }));
    const res = await render(client, 'anthropic', { model: 'claude-sonnet-4-5', prefix: [a.id, b2.id, c.id], messages: [{ role: 'user', content: three }] });
    expect(res.status).toBe(200);
    const service = res.json.breakpoints.filter((b: { set_by: string }) => b.set_by === 'service');
    expect(service).toHaveLength(1);
    expect(service[0].segment).toBe(2);
    expect((bodyText(res.text).match(/cache_control/g) ?? []).length).toBe(4);
  });
  it("never places a 1h mark after a caller's 5m mark when the caller marks both (Anthropic refuses that order)", async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG);
    const doc = await mintArtifact(client, 'document', LONG + ' The handbook.');
    const res = await render(client, 'anthropic', {
      model: 'claude-sonnet-4-6',
      max_tokens: 64,
      tools: [{ name: 'lookup', input_schema: { type: 'object' }, cache_control: { type: 'ephemeral', ttl: '1h' } }],
      prefix: [sys.id],
      system: [{ type: 'text', text: 'Today is Tuesday.', cache_control: { type: 'ephemeral' } }],
      messages: [{ role: 'user', content: [{ type: 'handle', ref: doc.id }, { type: 'text', text: 'question' }] }],
    });
    expect(res.status, res.text).toBe(200);
    // In prompt order: the caller's 1h tool, ours on the system handle (1h, before the caller's 5m), the caller's 5m, ours on the document (5m).
    expect(res.json.breakpoints.map((b: { set_by: string; ttl: string }) => `${b.set_by}:${b.ttl}`)).toEqual(['caller:1h', 'service:1h', 'caller:5m', 'service:5m']);
    // One message marking 1h then 5m: our mark after it is 5m too.
    const mixed = await render(client, 'anthropic', {
      model: 'claude-sonnet-4-6',
      max_tokens: 64,
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'a', cache_control: { type: 'ephemeral', ttl: '1h' } }, { type: 'text', text: 'b', cache_control: { type: 'ephemeral' } }] },
        { role: 'assistant', content: 'ok' },
        { role: 'user', content: [{ type: 'handle', ref: doc.id }, { type: 'text', text: 'q' }] },
      ],
    });
    expect(mixed.status, mixed.text).toBe(200);
    expect(mixed.json.breakpoints.filter((b: { set_by: string }) => b.set_by === 'service').map((b: { ttl: string }) => b.ttl)).toEqual(['5m']);
    const ttls = [...bodyText(res.text).matchAll(/"cache_control":\{"type":"ephemeral"(?:,"ttl":"(1h)")?\}/g)].map((m) => m[1] ?? '5m');
    expect(ttls).toEqual(['1h', '1h', '5m', '5m']);
  });
});

describe('segments', () => {
  it('tile the prompt, and P_k changes exactly when a byte before the end of segment k changes', async () => {
    const { client } = t.tenant();
    const texts = ['alpha', 'beta', 'gamma', 'delta'];
    const ids: string[] = [];
    for (const x of texts) ids.push((await mintArtifact(client, 'document', x)).id);
    const baseline = await render(client, 'anthropic', { model: 'claude-sonnet-4-5', prefix: ids, messages: [{ role: 'user', content: 'q' }] });
    await fc.assert(
      fc.asyncProperty(fc.nat(texts.length - 1), fc.string({ minLength: 1, maxLength: 8 }), async (k, suffix) => {
        const changed = (await mintArtifact(client, 'document', texts[k] + suffix)).id;
        const refs = ids.map((id, i) => (i === k ? changed : id));
        const res = await render(client, 'anthropic', { model: 'claude-sonnet-4-5', prefix: refs, messages: [{ role: 'user', content: 'q' }] });
        const segs = res.json.segments as Array<{ byte_start: number; byte_end: number; token_start: number; token_end: number; chain: string }>;
        let at = 0;
        let tok = 0;
        for (const s of segs) {
          expect(s.byte_start).toBe(at);
          expect(s.byte_end).toBeGreaterThan(s.byte_start);
          expect(s.token_start).toBe(tok);
          at = s.byte_end;
          tok = s.token_end;
        }
        segs.forEach((s, i) => {
          const same = s.chain === baseline.json.segments[i].chain;
          expect(same, `segment ${i} after a change in ${k}`).toBe(i < k);
        });
      }),
      { numRuns: 20 },
    );
  });

  it('digest each segment and chain them as sha256(P_{k-1} + digest_k)', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, 'x');
    const res = await render(client, 'anthropic', { model: 'claude-sonnet-4-5', prefix: [sys.id], messages: [{ role: 'user', content: 'q' }] });
    let chain = '';
    for (const s of res.json.segments) {
      chain = createHash('sha256').update(chain + s.digest).digest('hex');
      expect(s.chain).toBe(chain);
    }
  });
});

describe('GET /v1/models', () => {
  it('serves the catalog with sources and check dates', async () => {
    const { client } = t.tenant();
    const res = await client.get('/v1/models');
    expect(res.status).toBe(200);
    expect(res.json.version).toMatch(/^\d{4}-\d{2}-\d{2}/);
    const ids = res.json.models.map((m: { id: string }) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['claude-sonnet-4-5', 'gpt-4o']));
    for (const m of res.json.models) {
      expect(m.source).toMatch(/^https:\/\//);
      expect(m.checked).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    }
  });
});
