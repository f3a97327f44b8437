// A user whose agents run on Gemini and on a self-hosted vLLM: no drop-in proxy, so they render with /v1/render and
// report what the provider answered to /v1/usage themselves — over real HTTP on loopback, on a real database file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, listen, type TestApp } from '../helpers/app';
import { BIN, cleanEnv } from '../helpers/processes';

let dir: string;
let t: TestApp;
let server: { base: string; close: () => Promise<void> };
let key: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ph-gemini-vllm-'));
  t = createTestApp({ databasePath: join(dir, 'db.sqlite') });
  server = await listen(t.app);
  key = t.tenant().key;
});
afterEach(async () => {
  await server.close();
  t.services.writes.flushNow();
  t.close();
  rmSync(dir, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${server.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: text.startsWith('{') ? JSON.parse(text) : undefined };
}

async function mint(kind: string, content: unknown): Promise<string> {
  const res = await call('POST', '/v1/artifacts', { kind, content });
  expect(res.status, res.text).toBe(201);
  return res.json.id;
}

async function render(body: object) {
  const res = await call('POST', '/v1/render', body);
  expect(res.status, res.text).toBe(200);
  return res.json as { request_id: string; model: { catalog_entry: string; fallback: boolean }; body: Record<string, unknown>; prompt_cache_key: string | null };
}

/** Reports a call that started now and took two seconds, then moves the clock on by `gapMs`. */
async function report(requestId: string, payload: object, gapMs: number) {
  const started = t.clock.now();
  const res = await call('POST', '/v1/usage', { request_id: requestId, ...payload, started_at: started, first_byte_at: started + 800, finished_at: started + 2000 });
  expect(res.status, res.text).toBe(201);
  t.clock.advance(gapMs);
  return res.json.outcome as { capture: string; segments: Array<{ source: string; start: number; end: number; classes: Record<string, number>; read: number | null; write: number | null }> };
}

const nonZero = (classes: Record<string, number>) => Object.fromEntries(Object.entries(classes).filter(([, n]) => n > 0));

// About 3,000 Gemini tokens: over Gemini 2.5's 2,048-token minimum, under Gemini 3.1 Pro's 4,096.
const POLICY = 'Policy clause: a refund needs the receipt, the order number and a reason in writing. '.repeat(190);

describe('a Gemini user reporting generateContent usage', () => {
  it('prices and gates a Gemini 3.1 Pro call as Gemini 3.1 Pro (4,096-token minimum, $2/M), not as the 2.5 Flash default', async () => {
    const sys = await mint('system', POLICY);
    const gemini = (text: string) => ({ format: 'gemini', model: 'gemini-3.1-pro-preview', request: { prefix: [sys], contents: [{ role: 'user', parts: [{ text }] }] } });
    const first = await render(gemini('Where is order 1234?'));
    expect(first.model).toEqual({ name: 'gemini-3.1-pro-preview', catalog_entry: 'gemini-3.1-pro', fallback: false });
    await report(first.request_id, { response: { candidates: [], usageMetadata: { promptTokenCount: 3100, candidatesTokenCount: 9, totalTokenCount: 3109 } } }, 60_000);

    // The same prefix a minute later, and Gemini read nothing from its cache (proto3 leaves the 0 out): the prefix is
    // under the model's minimum, so no cache could have served it — below_minimum, not a miss of Gemini's.
    const second = await render(gemini('Refund it please.'));
    const o = await report(second.request_id, { usage: { promptTokenCount: 3110, candidatesTokenCount: 7, totalTokenCount: 3117 } }, 0);
    const system = o.segments.find((s) => s.source === `${sys}@1`)!;
    expect(Object.keys(nonZero(system.classes))).toEqual(['below_minimum']);

    const rep = (await call('GET', `/v1/reports/handles/${sys}`)).json;
    expect(rep.tokens.unconfirmed).toBe(0);
    expect(rep.models.map((m: { model: string }) => m.model)).toEqual(['gemini-3.1-pro-preview']);
    // Nothing was read: every referenced token at Gemini 3.1 Pro's $2 per million input tokens.
    expect(rep.money.cost_without_caching).toBeCloseTo((rep.tokens.referenced * 2) / 1e6, 9);
    expect(rep.money.actual_input_cost).toBeCloseTo(rep.money.cost_without_caching, 9);
  });

  it("counts a handle's versions on its dashboard page in Gemini's tokens when Gemini models used it, not Anthropic's and o200k's", async () => {
    const sys = await mint('system', POLICY);
    const r = await render({ format: 'gemini', model: 'gemini-2.5-flash', request: { prefix: [sys], contents: [{ role: 'user', parts: [{ text: 'hi' }] }] } });
    await report(r.request_id, { usage: { promptTokenCount: 3100, candidatesTokenCount: 9, totalTokenCount: 3109 } }, 0);
    const meta = (await call('GET', `/v1/handles/${sys}`)).json.version.meta;
    const page = (await call('GET', `/ui/handles/${sys}?period=7d`, undefined, { cookie: `ph_ui_key=${key}` })).text;
    const row = page.slice(page.indexOf('<tr data-version="1"'), page.indexOf('</tr>', page.indexOf('<tr data-version="1"')));
    expect(row).toContain(`≈${meta.tokens.gemini.toLocaleString('en-US')} <small class="muted">gemini</small>`);
    expect(row).not.toContain('anth.');
  });

  it("tells a Gemini call that expired how Gemini keeps a prefix longer (an explicit cache), not Anthropic's or OpenAI's settings", async () => {
    const sys = await mint('system', POLICY.repeat(2));
    const gemini = (text: string) => ({ format: 'gemini', model: 'gemini-2.5-flash', request: { prefix: [sys], contents: [{ role: 'user', parts: [{ text }] }] } });
    const first = await render(gemini('Where is order 1234?'));
    await report(first.request_id, { usage: { promptTokenCount: 6200, candidatesTokenCount: 9, totalTokenCount: 6209 } }, 90 * 60_000);
    const second = await render(gemini('Back again: order 55?'));
    const o = await report(second.request_id, { usage: { promptTokenCount: 6210, candidatesTokenCount: 9, totalTokenCount: 6219 } }, 0);
    expect(nonZero(o.segments[0]!.classes)).toEqual({ expired: o.segments[0]!.classes.expired });

    const page = await call('GET', `/ui/requests/${second.request_id}`, undefined, { cookie: `ph_ui_key=${key}` });
    expect(page.status).toBe(200);
    const expired = page.text.slice(page.text.indexOf('data-expired'));
    expect(expired).toContain('<code>cachedContents</code>');
    expect(expired.slice(0, expired.indexOf('</div>'))).not.toContain('Anthropic');
  });

  it("tells a Gemini explicit cache (cachedContent) apart: its tokens, never rendered, are not spread over the handles after it", async () => {
    const doc = await mint('document', POLICY);
    const res = await call('POST', '/v1/render', { format: 'gemini', model: 'gemini-2.5-pro', request: { cachedContent: 'cachedContents/manual-v3', prefix: [doc], contents: [{ role: 'user', parts: [{ text: 'What does clause 4 say?' }] }] } });
    expect(res.status, res.text).toBe(200);
    expect(res.json.warnings).toEqual([]);
    const estimated = res.json.segments.at(-1).token_end as number;
    // Gemini counts the cached content in promptTokenCount and reads all of it: 8,000 tokens the service never rendered.
    const o = (await report(res.json.request_id, { usage: { promptTokenCount: 8000 + estimated, cachedContentTokenCount: 8000, candidatesTokenCount: 30, totalTokenCount: 8030 + estimated } }, 0)) as unknown as {
      provider_history: { field: string; tokens: number; read: number };
      total_mismatch?: unknown;
      segments: Array<{ source: string; start: number; end: number; read: number; classes: Record<string, number> }>;
    };
    expect(o.provider_history).toEqual({ field: 'cachedContent', tokens: 8000, read: 8000 });
    expect(o.total_mismatch).toBeUndefined();
    const document = o.segments.find((s) => s.source === `${doc}@1`)!;
    expect(document.end - document.start).toBe(res.json.segments[0].token_end - res.json.segments[0].token_start);
    expect(document.read).toBe(0);
    expect(nonZero(document.classes)).toEqual({ cold: document.end - document.start });
    expect((await call('GET', `/v1/reports/handles/${doc}`)).json.tokens).toMatchObject({ captured: 0, bonus: 0 });
    const page = (await call('GET', `/ui/requests/${res.json.request_id}`, undefined, { cookie: `ph_ui_key=${key}` })).text;
    expect(page).toContain('This call reads a Gemini explicit cache (<code>cachedContent</code>)');
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'request', res.json.request_id], { env: { ...cleanEnv(), PH_URL: server.base, PH_API_KEY: key } });
    expect(stdout).toContain("provider history: 8,000 tokens of Gemini's explicit cache (cachedContent), read 8,000, on no segment");
  });
});

describe('a vLLM user reporting OpenAI-compatible usage', () => {
  it("shows a segment's read as unknown, not 0, when vLLM reports no prompt_tokens_details, and a write vLLM never reports as not reported", async () => {
    const sys = await mint('system', POLICY);
    const chat = (content: string) => ({ format: 'openai-chat', request: { model: 'Qwen/Qwen2.5-7B-Instruct', prefix: [sys], messages: [{ role: 'user', content }] } });
    const first = await render(chat('Where is order 1234?'));
    expect(first.model.catalog_entry).toBe('vllm');
    // vLLM without --enable-prompt-tokens-details: "prompt_tokens_details": null.
    await report(first.request_id, { usage: { prompt_tokens: 2890, completion_tokens: 20, total_tokens: 2910, prompt_tokens_details: null } }, 30_000);
    const second = await render(chat('Refund it please.'));
    const unknown = await report(second.request_id, { usage: { prompt_tokens: 2893, completion_tokens: 9, total_tokens: 2902, prompt_tokens_details: null } }, 30_000);
    expect(unknown.capture).toBe('unknown');
    const third = await render(chat('And order 99?'));
    const hit = await report(third.request_id, { usage: { prompt_tokens: 2895, completion_tokens: 9, total_tokens: 2904, prompt_tokens_details: { cached_tokens: 2880 } } }, 0);

    for (const answer of [unknown, (await call('GET', `/v1/requests/${second.request_id}`)).json.outcome]) {
      for (const s of answer.segments) expect([s.read, s.write], s.source).toEqual([null, null]);
    }
    const read = (await call('GET', `/v1/requests/${third.request_id}`)).json.outcome.segments;
    expect(read[0].read).toBeGreaterThan(2000);
    expect(read.map((s: { write: number | null }) => s.write)).toEqual(read.map(() => null));
    expect(hit.segments[0]!.read).toBe(read[0].read);

    const page = (await call('GET', `/ui/requests/${second.request_id}`, undefined, { cookie: `ph_ui_key=${key}` })).text;
    // Read as OpenAI's chat shape, named as the server the model resolved to (the catalog's vllm entry).
    expect((await call('GET', `/v1/requests/${third.request_id}`)).json.usage).toMatchObject({ provider: 'vllm', cache_read_tokens: 2880 });
    expect(page).toContain('<dt>Provider shape</dt><dd>vllm</dd>');
    const row = page.slice(page.indexOf('<tr data-segment="0"'), page.indexOf('</tr>', page.indexOf('<tr data-segment="0"')));
    expect(row).toContain('<span class="muted">unknown</span>');
    expect(row).toContain('<span class="muted">not reported</span>');
  });

  it('takes "model" beside the request as the catalog name for a --served-model-name, and sends the body\'s own name', async () => {
    const sys = await mint('system', POLICY);
    const request = { model: 'support-bot', prefix: [sys], messages: [{ role: 'user', content: 'hi' }] };
    // Under its served name alone, the service cannot tell it from an unknown OpenAI model.
    const guessed = await render({ format: 'openai-chat', request });
    expect(guessed.model).toMatchObject({ catalog_entry: 'gpt-5', fallback: true });
    const named = await render({ format: 'openai-chat', model: 'vllm/support-bot', request });
    expect(named.model).toEqual({ name: 'vllm/support-bot', catalog_entry: 'vllm', fallback: false });
    expect(named.body.model).toBe('support-bot');
    expect(named.prompt_cache_key).toBeNull();
    expect(named.body).not.toHaveProperty('prompt_cache_key');
  });
});

describe('a model the catalog does not know, on /v1/render (no proxy to say x-ph-warnings)', () => {
  it('is warned of as unknown_model in the render, on the request page and in the import summary, in one wording', async () => {
    const sys = await mint('system', POLICY);
    const request = { prefix: [sys], contents: [{ role: 'user', parts: [{ text: 'hi' }] }] };
    const res = await call('POST', '/v1/render', { format: 'gemini', model: 'gemini-7-orbit', request });
    expect(res.status, res.text).toBe(200);
    expect(res.json.model).toEqual({ name: 'gemini-7-orbit', catalog_entry: 'gemini-2.5-flash', fallback: true });
    const warning = { code: 'unknown_model', segment: null, kind: 'model', text: 'gemini-7-orbit', detail: expect.stringContaining('its cache ruled as gemini-2.5-flash') };
    expect(res.json.warnings).toEqual([warning]);
    const detail: string = res.json.warnings[0].detail;
    // A known model is not warned of; a vLLM server's name under a Hugging Face id is a fallback to the vLLM entry.
    expect((await call('POST', '/v1/render', { format: 'gemini', model: 'gemini-2.5-flash', request })).json.warnings).toEqual([]);
    const hf = await call('POST', '/v1/render', { format: 'openai-chat', request: { model: 'Qwen/Qwen2.5-7B-Instruct', messages: [{ role: 'user', content: 'hi' }] } });
    expect(hf.json.warnings).toEqual([{ ...warning, text: 'Qwen/Qwen2.5-7B-Instruct', detail: expect.stringContaining('its cache ruled as vllm') }]);

    const page = (await call('GET', `/ui/requests/${res.json.request_id}`, undefined, { cookie: `ph_ui_key=${key}` })).text;
    expect(page).toContain(`<p class="notice" data-warning="unknown_model">${detail}.</p>`);
    const known = (await call('GET', `/ui/requests/${hf.json.request_id}`, undefined, { cookie: `ph_ui_key=${key}` })).text;
    expect(known).toContain('data-warning="unknown_model"');

    const started = t.clock.now() - 60_000;
    // Two calls a second apart: the same line twice would be one call given twice, skipped.
    const line = (model: string, at = started) => JSON.stringify({ format: 'gemini', model, request, usage: { promptTokenCount: 3100, candidatesTokenCount: 9, totalTokenCount: 3109 }, started_at: at });
    const file = join(dir, 'calls.jsonl');
    writeFileSync(file, [line('gemini-2.5-flash'), line('gemini-7-orbit'), line('gemini-7-orbit', started + 1000)].join('\n'));
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'import', file], { env: { ...cleanEnv(), PH_URL: server.base, PH_API_KEY: key } });
    expect(stdout).toContain('3 accepted, 0 rejected');
    expect(stdout).toContain(`warning unknown_model on 2 lines (first line 2): ${detail}`);
  });
});

describe("the dashboard's below_minimum legend", () => {
  const legendOf = (page: string) => {
    const at = page.indexOf('<span data-help="below_minimum">');
    return at < 0 ? null : page.slice(at, page.indexOf('</span>', at)).replaceAll('&#39;', "'");
  };
  const ui = async (path: string) => (await call('GET', path, undefined, { cookie: `ph_ui_key=${key}` })).text;

  it("names the cache steps of the providers on the page: none on a Gemini page, vLLM's blocks, OpenAI's 128 tokens", async () => {
    const sys = await mint('system', POLICY);
    const gemini = (text: string) => ({ format: 'gemini', model: 'gemini-3.1-pro-preview', request: { prefix: [sys], contents: [{ role: 'user', parts: [{ text }] }] } });
    const first = await render(gemini('Where is order 1234?'));
    await report(first.request_id, { usage: { promptTokenCount: 3100, candidatesTokenCount: 9, totalTokenCount: 3109 } }, 60_000);
    const second = await render(gemini('Refund it please.'));
    const o = await report(second.request_id, { usage: { promptTokenCount: 3110, candidatesTokenCount: 7, totalTokenCount: 3117 } }, 0);
    expect(o.segments[0]!.classes.below_minimum).toBeGreaterThan(0);
    const minimum = "the prefix is shorter than the model's minimum cacheable length";
    // The handle's page and the overview: Gemini reads a prefix of any length.
    for (const page of [await ui(`/ui/handles/${sys}?period=7d`), await ui('/ui?period=7d')]) expect(legendOf(page)).toBe(`<span data-help="below_minimum">${minimum}`);
    // The request page says it with the request's own figures instead, as 'prefix-handles request' does: its legend keys the colour only.
    const requestPage = await ui(`/ui/requests/${second.request_id}`);
    expect(legendOf(requestPage)).toBeNull();
    const why = /<li data-why="below_minimum" data-tokens="(\d+)">[\s\S]*?<span data-why-text>([^<]*)<\/span>/.exec(requestPage)!;
    expect(Number(why[1])).toBe(o.segments[0]!.classes.below_minimum);
    const last = o.segments.findLastIndex((s) => (s.classes.below_minimum ?? 0) > 0);
    expect(why[2]!.replaceAll('&#39;', "'")).toBe(`${minimum}: through #${last + 1} it is ${o.segments[last]!.end.toLocaleString('en-US')} tokens, under gemini-3.1-pro's minimum of 4,096; no breakpoint or longer lifetime caches it: more of what every call sends the same (tools, documents, in one bundle before what changes) to clear the minimum, or a model with a lower one, would`);

    const vllm = await mint('system', `${POLICY} vLLM.`);
    const v = await render({ format: 'openai-chat', request: { model: 'vllm/qwen', prefix: [vllm], messages: [{ role: 'user', content: 'hi' }] } });
    await report(v.request_id, { usage: { prompt_tokens: 2890, completion_tokens: 20, total_tokens: 2910 } }, 0);
    expect(legendOf(await ui(`/ui/handles/${vllm}?period=7d`))).toContain("(vLLM caches in 16-token blocks: up to 15 tokens at a prompt's end are never read)");
    const openai = await mint('system', `${POLICY} OpenAI.`);
    const g = await render({ format: 'openai-chat', request: { model: 'gpt-4.1', prefix: [openai], messages: [{ role: 'user', content: 'hi' }] } });
    await report(g.request_id, { usage: { prompt_tokens: 2890, completion_tokens: 20, total_tokens: 2910 } }, 0);
    const handle = legendOf(await ui(`/ui/handles/${openai}?period=7d`))!;
    expect(handle).toContain("(OpenAI caches in 128-token steps: up to 127 tokens at a prompt's end are never read)");
    expect(handle).not.toContain('vLLM');
    // The overview covers the tenant's latest requests: the three providers' rules, each once.
    const overview = legendOf(await ui('/ui?period=7d'))!;
    expect(overview).toContain('OpenAI caches in 128-token steps');
    expect(overview).toContain('vLLM caches in 16-token blocks');
  });
});

describe("a streamed answer's chunks or events as /v1/usage's response, as the client kept them", () => {
  const chunk = (text: string, usageMetadata?: object) => ({ candidates: [{ content: { role: 'model', parts: [{ text }] }, index: 0 }], ...(usageMetadata ? { usageMetadata } : {}), modelVersion: 'gemini-2.5-flash' });

  it("Gemini's streamGenerateContent array: the last chunk carrying usageMetadata is the usage; a list with none is a 422 saying so", async () => {
    const sys = await mint('system', POLICY);
    const gemini = (text: string) => ({ format: 'gemini', model: 'gemini-2.5-flash', request: { prefix: [sys], contents: [{ role: 'user', parts: [{ text }] }] } });
    const first = await render(gemini('Where is order 1234?'));
    const none = await call('POST', '/v1/usage', { request_id: first.request_id, response: [chunk('Your'), chunk(' order')] });
    expect(none.status).toBe(422);
    expect(none.json.errors).toEqual([{ pointer: '/response', detail: expect.stringMatching(/^no chunk carries usageMetadata/) }]);
    // Gemini counts on every chunk; the last one's are the call's (its candidates grow as the answer does).
    const streamed = [chunk('Your', { promptTokenCount: 3100, totalTokenCount: 3101 }), chunk(' order ships', { promptTokenCount: 3100, candidatesTokenCount: 3, totalTokenCount: 3103 }), chunk(' today.', { promptTokenCount: 3100, cachedContentTokenCount: 2048, candidatesTokenCount: 9, totalTokenCount: 3109 })];
    const o = (await report(first.request_id, { response: streamed }, 0)) as unknown as { provider: { read: number }; total_prompt_tokens: number };
    expect(o).toMatchObject({ total_prompt_tokens: 3100, provider: { read: 2048 } });
    const row = (await call('GET', `/v1/requests/${first.request_id}`)).json;
    expect(row.usage).toMatchObject({ provider: 'gemini', total_prompt_tokens: 3100, cache_read_tokens: 2048, output_tokens: 9, complete: true });
    // Only the usage object is kept, as of a whole response: never the answer's text.
    expect(row.usage_raw).toEqual(streamed[2]!.usageMetadata);
  });

  it("OpenAI chat chunks and Anthropic's SSE events, read as the proxy reads those streams", async () => {
    const sys = await mint('system', POLICY);
    const chat = await render({ format: 'openai-chat', request: { model: 'gpt-4.1', prefix: [sys], messages: [{ role: 'user', content: 'hi' }] } });
    const c = (delta: object, extra: object = {}) => ({ id: 'chatcmpl-1', object: 'chat.completion.chunk', model: 'gpt-4.1', choices: [{ index: 0, delta, finish_reason: null }], usage: null, ...extra });
    const withoutUsage = [c({ role: 'assistant', content: '' }), c({ content: 'Hi' }), { ...c({}), choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }];
    const refused = await call('POST', '/v1/usage', { request_id: chat.request_id, response: withoutUsage });
    expect(refused.json.errors).toEqual([{ pointer: '/response', detail: expect.stringContaining('stream_options.include_usage') }]);
    const usage = { prompt_tokens: 2890, completion_tokens: 2, total_tokens: 2892, prompt_tokens_details: { cached_tokens: 1024 } };
    await report(chat.request_id, { response: [...withoutUsage, { ...c({}), choices: [], usage }, '[DONE]'] }, 0);
    expect((await call('GET', `/v1/requests/${chat.request_id}`)).json.usage).toMatchObject({ provider: 'openai-chat', total_prompt_tokens: 2890, cache_read_tokens: 1024, complete: true });

    const anthropic = await render({ format: 'anthropic', request: { model: 'claude-sonnet-4-6', max_tokens: 64, prefix: [sys], messages: [{ role: 'user', content: 'hi' }] } });
    const start = { type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-sonnet-4-6', content: [], usage: { input_tokens: 40, cache_creation_input_tokens: 0, cache_read_input_tokens: 2800, output_tokens: 1 } } };
    const events = [start, { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hi' } }, { type: 'content_block_stop', index: 0 }];
    // Cumulative counts in message_delta replace message_start's, never add to them.
    const whole = [...events, { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 12 } }, { type: 'message_stop' }];
    await report(anthropic.request_id, { response: whole }, 0);
    expect((await call('GET', `/v1/requests/${anthropic.request_id}`)).json.usage).toMatchObject({ total_prompt_tokens: 2840, cache_read_tokens: 2800, output_tokens: 12, complete: true });
    // Cut off before message_delta: as the proxy takes a stream cut there, its capture is unknown, not a 422.
    const cut = await render({ format: 'anthropic', request: { model: 'claude-sonnet-4-6', max_tokens: 64, prefix: [sys], messages: [{ role: 'user', content: 'again' }] } });
    expect((await report(cut.request_id, { response: events }, 0)).capture).toBe('unknown');
  });
});
