// A platform engineer's trial: a self-hosted vLLM fleet driven by hand (render, send the body, report the answer),
// some servers started without --enable-prompt-tokens-details (`prompt_tokens_details: null`), the service on a
// SQLite file and real HTTP, the CLI as a child process. What tripped the trial, each checked here.

import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientFor, type Client } from '../helpers/app';
import { startCliHarness, type CliHarness } from '../helpers/cli';
import { mintSystem } from '../helpers/factories';
import { LONG_SYSTEM, promptTokens, report, type Rendered } from '../helpers/scenario';
import { sha256Hex } from '../../src/domain/digest';

const MIN = 60_000;
let h: CliHarness;
let key: string;
let client: Client;

beforeAll(async () => {
  h = await startCliHarness('ph-vllm-', { onDisk: true });
  ({ key } = h.t.tenant('vllm fleet'));
  client = clientFor({ request: (path: string, init?: RequestInit) => fetch(`${h.url}${path}`, init) }, key);
});
afterAll(() => h.close());

/** A call to `vllm/support-bot` (the server's --served-model-name in the body), reported with this prompt details. */
async function call(sys: string, question: string, details: { cached_tokens: number } | null) {
  const res = await client.post('/v1/render', { format: 'openai-chat', model: 'vllm/support-bot', request: { model: 'support-bot', prefix: [sys], messages: [{ role: 'user', content: question }] } });
  expect(res.status, res.text).toBe(200);
  const r = res.json as Rendered;
  expect(res.json.model).toEqual({ name: 'vllm/support-bot', catalog_entry: 'vllm', fallback: false });
  const total = promptTokens(r);
  return { r, outcome: (await report(client, h.t, r, { prompt_tokens: total, completion_tokens: 5, total_tokens: total + 5, prompt_tokens_details: details })).outcome };
}

async function page(path: string) {
  const res = await fetch(`${h.url}${path}`, { headers: { cookie: `ph_ui_key=${key}` } });
  expect(res.status, path).toBe(200);
  return res.text();
}

describe('a vLLM fleet by hand', () => {
  let sys: { id: string };
  let expired: Rendered;
  beforeAll(async () => {
    sys = await mintSystem(client, LONG_SYSTEM);
    await call(sys.id, 'q1', { cached_tokens: 0 });
    // The next day's call, from a server without prompt-token details: a day past the entry's nominal lifetime.
    h.t.clock.advance(25 * 60 * MIN);
    const late = await call(sys.id, 'q2', null);
    expired = late.r;
    expect(late.outcome.capture).toBe('unknown');
    expect(late.outcome.expired?.ttl).toBe('lru');
    // A minute later, the same: predicted, its read unknown.
    h.t.clock.advance(MIN);
    const soon = await call(sys.id, 'q3', null);
    expect(soon.outcome.capture).toBe('unknown');
  });

  it("the overview's request count says what it counts: calls with unknown tokens, not every call without cache fields", async () => {
    const api = (await client.get('/v1/reports')).json;
    // Two calls had no cache fields; the one whose prefix had expired has no unknown tokens (expired is the earlier gate).
    expect(api.requests).toBe(3);
    expect(api.requests_with.unknown).toBe(1);
    expect(api.requests_with.expired).toBe(1);
    const html = await page('/ui?period=7d');
    const requests = /<div class="metric [^"]*" data-metric="requests"[\s\S]*?<\/div>/.exec(html)![0];
    // It read "1 without cache fields" where 2 were.
    expect(requests).not.toContain('without cache fields');
    expect(requests).toContain('1 with unknown tokens (no cache fields)');
    expect(await page(`/ui/handles/${sys.id}?period=7d`)).toContain('1 with unknown tokens (no cache fields)');
  });

  it("an expired vLLM prefix names its lifetime's length, not the catalog's option name alone", async () => {
    const html = await page(`/ui/requests/${expired.request_id}`);
    // It read "longer than its cache lifetime of lru".
    expect(html).toContain('longer than its cache lifetime of <b>24h (nominal: lru)</b>.');
    expect(html).toContain('A call within the lifetime keeps it alive. A self-hosted server evicts by memory pressure, not time');
    const text = await h.cli(['request', expired.request_id], { key });
    expect(text.code, text.err).toBe(0);
    expect(text.out).toMatch(/expired: the prefix was last used 25 h 0 min before this call \([^)]+\), longer than its cache lifetime of 24h \(nominal: lru\)\n/);
  });

  it("a usage report without a request_id, or with the provider's own id in it, says which id to send", async () => {
    const missing = await client.post('/v1/usage', { usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } });
    expect(missing.status).toBe(422);
    expect(missing.headers.get('content-type')).toContain('application/problem+json');
    // It read "Invalid input: expected string, received undefined".
    expect(missing.json.errors).toEqual([{ pointer: '/request_id', detail: "request_id is required: the request_id /v1/render answered (req_…), or the proxy's x-ph-request-id header" }]);
    for (const id of ['chatcmpl-9vLLMxyz', 'msg_01ABCdef', 'resp_68abc']) {
      const res = await client.post('/v1/usage', { request_id: id, usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } });
      expect(res.status, id).toBe(422);
      expect(res.json.errors, id).toEqual([{ pointer: '/request_id', detail: `"${id}" is the provider's id for its answer, not ours: send the request_id /v1/render answered (req_…), or the proxy's x-ph-request-id header` }]);
    }
    // In a batch, the record's own problem says it too, and the other records go on.
    const r = (await client.post('/v1/render', { format: 'openai-chat', model: 'vllm/support-bot', request: { model: 'support-bot', messages: [{ role: 'user', content: 'batch' }] } })).json as Rendered;
    const usage = { prompt_tokens: promptTokens(r), completion_tokens: 1, total_tokens: promptTokens(r) + 1, prompt_tokens_details: null };
    const batch = await client.post('/v1/usage/batch', { records: [{ request_id: 'chatcmpl-abc', usage }, { request_id: r.request_id, usage }] });
    expect(batch.status, batch.text).toBe(200);
    expect(batch.json.results.map((x: { status: number }) => x.status)).toEqual([422, 201]);
    expect(batch.json.results[0].problem.errors[0].detail).toContain('"chatcmpl-abc" is the provider\'s id for its answer, not ours');
    // A malformed id of ours is still the plain message.
    const other = await client.post('/v1/usage', { request_id: 'req_short', usage });
    expect(other.json.errors[0].detail).toBe("a request_id from /v1/render or the proxy: the request_id /v1/render answered (req_…), or the proxy's x-ph-request-id header");
  });
});

describe('request <id> on an expired prefix', () => {
  it("says when the prefix was under the model's minimum anyway, with no other class to fetch the model's rules for", async () => {
    const other = h.t.tenant('haiku classifier');
    const haiku = clientFor({ request: (path: string, init?: RequestInit) => fetch(`${h.url}${path}`, init) }, other.key);
    const sys = await mintSystem(haiku, LONG_SYSTEM);
    const send = async () => {
      const res = await haiku.post('/v1/render', { format: 'anthropic', request: { model: 'claude-haiku-4-5', max_tokens: 64, prefix: [sys.id], messages: [{ role: 'user', content: 'classify' }] } });
      expect(res.status, res.text).toBe(200);
      const r = res.json as Rendered;
      // Haiku 4.5 caches nothing under 4,096 tokens: it neither writes nor reads this prompt.
      const total = promptTokens(r);
      return { r, outcome: (await report(haiku, h.t, r, { input_tokens: total, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 3 })).outcome };
    };
    await send();
    h.t.clock.advance(10 * MIN);
    const { r, outcome } = await send();
    // Every handle token expired (the earlier gate), none below_minimum: the CLI read the model's rules only for those.
    expect(outcome.segments[0]!.classes.expired).toBeGreaterThan(0);
    expect(outcome.segments.every((s) => !s.classes.below_minimum)).toBe(true);
    const text = await h.cli(['request', r.request_id], { key: other.key });
    expect(text.code, text.err).toBe(0);
    expect(text.out).toContain('longer than its cache lifetime of 5m\n');
    expect(text.out).toMatch(/\nexpired, but had it been fresh, the provider would not have read it either: through #\d+ the prefix is [\d,]+ tokens, under claude-haiku-4-5's minimum of 4,096/);
  });
});

describe('a key with a typo', () => {
  it('the CLI names where the refused key came from: --key, PH_API_KEY (which shadows the key file), or the file', async () => {
    const typo = `${key}x`;
    const dir = join(h.dir, 'data');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'api-key'), `${typo}\n`);
    const [flag, env, file, good] = await Promise.all([
      h.cli(['handles', '--key', typo]),
      h.cli(['handles'], { key: typo }),
      h.cli(['handles'], { env: { PH_DATA_DIR: dir } }),
      h.cli(['handles'], { key }),
    ]);
    for (const r of [flag, env, file]) expect(r.code, r.err).toBe(1);
    expect(good.code, good.err).toBe(0);
    // It read "unauthorized: the API key is not valid" whichever key was sent.
    expect(flag.err).toBe('unauthorized: the API key is not valid (the key from --key)\n');
    expect(env.err).toBe('unauthorized: the API key is not valid (the key from PH_API_KEY, which --key overrides and the api-key file does not)\n');
    expect(file.err).toBe(`unauthorized: the API key is not valid (the key from ${join(dir, 'api-key')}, read when neither --key nor PH_API_KEY is set)\n`);
    // Never the secret itself.
    for (const r of [flag, env, file]) expect(r.err).not.toContain(typo.slice(0, 12));
  });
});

describe('the same report twice', () => {
  it('is the same usage object, times and diagnostics, however it was sent: the whole answer, its usage, its chunks', async () => {
    const r = (await client.post('/v1/render', { format: 'openai-chat', model: 'vllm/support-bot', request: { model: 'support-bot', messages: [{ role: 'user', content: 'again?' }] } })).json as Rendered;
    const total = promptTokens(r);
    const usage = { prompt_tokens: total, completion_tokens: 4, total_tokens: total + 4, prompt_tokens_details: null };
    const answer = { id: 'chatcmpl-1', object: 'chat.completion', model: 'support-bot', choices: [{ index: 0, message: { role: 'assistant', content: 'Yes.' }, finish_reason: 'stop' }], usage };
    const started_at = h.t.clock.now();
    const first = await client.post('/v1/usage', { request_id: r.request_id, response: answer, started_at });
    expect(first.status, first.text).toBe(201);
    // Sent again by a retry that kept the usage alone, the chunks of the stream, or the answer with other text.
    const chunks = [{ id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: 'Yes.' } }] }, { id: 'chatcmpl-1', object: 'chat.completion.chunk', choices: [], usage }];
    for (const again of [{ usage }, { response: chunks }, { response: { ...answer, choices: [] } }, { response: answer }]) {
      const res = await client.post('/v1/usage', { request_id: r.request_id, started_at, ...again });
      // It was a 409 "already has a different usage report" for all but the last.
      expect(res.status, JSON.stringify(again).slice(0, 60)).toBe(200);
      expect(res.json.duplicate).toBe(true);
      expect(res.json.outcome).toEqual(first.json.outcome);
    }
    // Other figures or times are another report.
    const other = await client.post('/v1/usage', { request_id: r.request_id, started_at, usage: { ...usage, prompt_tokens_details: { cached_tokens: 0 } } });
    expect(other.status).toBe(409);
    expect((await client.post('/v1/usage', { request_id: r.request_id, started_at: started_at - 1, usage })).status).toBe(409);
    expect((await client.post('/v1/usage', { request_id: r.request_id, usage })).status).toBe(409);
  });

  it('property: whichever form comes first, every other form of the same usage is its duplicate, and other figures a 409', async () => {
    const forms = (usage: object, text: string) => [
      { usage },
      { response: { id: 'chatcmpl-p', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: text } }], usage } },
      { response: [{ id: 'chatcmpl-p', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: text } }] }, { id: 'chatcmpl-p', object: 'chat.completion.chunk', choices: [], usage }] },
    ];
    await fc.assert(
      fc.asyncProperty(fc.option(fc.nat({ max: 64 }), { nil: null }), fc.nat({ max: 2 }), fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), async (cached, firstForm, text, otherText) => {
        const r = (await client.post('/v1/render', { format: 'openai-chat', model: 'vllm/support-bot', request: { model: 'support-bot', messages: [{ role: 'user', content: `property ${text}` }] } })).json as Rendered;
        const total = promptTokens(r) + 64;
        const usage = { prompt_tokens: total, completion_tokens: 2, total_tokens: total + 2, prompt_tokens_details: cached === null ? null : { cached_tokens: cached } };
        const started_at = h.t.clock.now();
        const first = await client.post('/v1/usage', { request_id: r.request_id, started_at, ...forms(usage, text)[firstForm]! });
        expect(first.status, first.text).toBe(201);
        for (const form of forms(usage, otherText)) {
          const again = await client.post('/v1/usage', { request_id: r.request_id, started_at, ...form });
          expect(again.status, again.text).toBe(200);
        }
        const changed = { ...usage, completion_tokens: 3, total_tokens: total + 3 };
        expect((await client.post('/v1/usage', { request_id: r.request_id, started_at, ...forms(changed, text)[firstForm]! })).status).toBe(409);
      }),
      { numRuns: 15 },
    );
  });

  it('a report stored under the hash of its bytes, as before, sent again as it was, is still a duplicate', async () => {
    const r = (await client.post('/v1/render', { format: 'openai-chat', model: 'vllm/support-bot', request: { model: 'support-bot', messages: [{ role: 'user', content: 'stored before' }] } })).json as Rendered;
    const report = { response: { id: 'chatcmpl-2', choices: [], usage: { prompt_tokens: promptTokens(r), completion_tokens: 1, total_tokens: promptTokens(r) + 1 } }, started_at: h.t.clock.now() };
    expect((await client.post('/v1/usage', { request_id: r.request_id, ...report })).status).toBe(201);
    h.t.sqlite.prepare('update reconciliations set report_hash = ? where request_id = ?').run(sha256Hex(canonicalize(report)!), r.request_id);
    const again = await client.post('/v1/usage', { request_id: r.request_id, ...report });
    expect(again.status, again.text).toBe(200);
    expect(again.json.duplicate).toBe(true);
    expect((await client.post('/v1/usage', { request_id: r.request_id, ...report, started_at: report.started_at + 1 })).status).toBe(409);
  });
});

describe('last month imported twice', () => {
  it('the second import skips the calls the first recorded: each call counts once (before, each counted twice)', async () => {
    const other = h.t.tenant('imported twice');
    const line = (day: string, cached: number | null) =>
      JSON.stringify({
        format: 'openai-chat',
        model: 'vllm/support-bot',
        request: { model: 'support-bot', messages: [{ role: 'system', content: LONG_SYSTEM }, { role: 'user', content: `q ${day}` }] },
        response: { id: `chatcmpl-${day}`, choices: [], usage: { prompt_tokens: 2200, completion_tokens: 3, total_tokens: 2203, prompt_tokens_details: cached === null ? null : { cached_tokens: cached } } },
        started_at: `2026-01-01T${day}Z`,
      });
    const file = h.file('last-month.jsonl', `${line('09:00:00', 0)}\n${line('09:05:00', null)}\n`);
    const first = await h.cli(['import', file], { key: other.key });
    expect(first.code, first.err).toBe(0);
    expect(first.out).not.toContain('already imported');
    const second = await h.cli(['import', file], { key: other.key });
    expect(second.code, second.err).toBe(0);
    expect(second.out).toContain('last-month.jsonl: 2 lines, 0 accepted, 0 rejected, 2 already imported\n');
    expect(second.out).toContain('2 lines already imported, skipped (a reconciled request of the same model, start and provider counts is recorded: its call counted once): lines 1, 2');
    expect(second.out).not.toContain('applied after later calls');
    // Two requests, as the log has two calls (there were four).
    expect((await clientFor({ request: (path: string, init?: RequestInit) => fetch(`${h.url}${path}`, init) }, other.key).get('/v1/reports')).json.no_handle.requests).toBe(2);
  });
});
