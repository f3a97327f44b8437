// A parallel fan-out pays its write twice (`concurrent`): the outcome, the request page and `prefix-handles request`
// name the call whose write it paid again, how long before it that call started, and how long after this call started
// its write became readable — what a team needs to find the fan-out in its agent and stagger it.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { startCliHarness, type CliHarness } from '../helpers/cli';
import { mintSystem, userMessage } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic } from '../helpers/scenario';

let h: CliHarness;
beforeEach(async () => {
  h = await startCliHarness('ph-concurrent-');
});
afterEach(async () => {
  await h.close();
});

it('a concurrent write names the call that wrote it first, by how much it led, and when its write became readable', async () => {
  const { client, key } = h.t.tenant();
  const sys = await mintSystem(client, LONG_SYSTEM);
  const call = () => renderAnthropic(client, { system: [{ type: 'handle', ref: sys.id }], messages: [userMessage('same question')] });
  const [a, b] = [await call(), await call()];
  const start = h.t.clock.now();
  const post = (r: typeof a, startedAt: number) =>
    client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(promptTokens(r), 0, r.breakpoints[0]!.token_end), started_at: startedAt, first_byte_at: start + 1900, finished_at: start + 2400 });
  expect((await post(a, start)).status).toBe(201);
  // B starts 250 ms after A, 1,650 ms before A's first byte: A's write was not readable yet.
  const ob = (await post(b, start + 250)).json.outcome;
  expect(ob.segments.some((s: { classes: { concurrent: number } }) => s.classes.concurrent > 0)).toBe(true);
  expect(ob.concurrent).toEqual({ writer: a.request_id, writer_started_at: start, readable_at: start + 1900 });
  // A itself paid no write twice: nothing to name.
  expect((await client.get(`/v1/requests/${a.request_id}`)).json.outcome.concurrent).toBeUndefined();

  const page = await (await h.t.app.request(`/ui/requests/${b.request_id}`, { headers: { cookie: `ph_ui_key=${key}` } })).text();
  const block = /<div class="card" data-concurrent>[\s\S]*?<\/div>/.exec(page)![0];
  expect(block).toContain(`href="/ui/requests/${a.request_id}"`);
  expect(block).toContain('<b data-after="250">250 ms</b> before this call');
  expect(block).toContain('<b data-wait="1650">1.6 s</b> after this call started');

  const run = await h.cli(['request', b.request_id], { key });
  expect(run.code, run.err).toBe(0);
  expect(run.out).toContain(`concurrent: ${a.request_id} wrote the prefix, started 250 ms before this call; its write was readable only 1.6 s after this call started, so this call paid the write again`);
  expect(block).toContain('and this call paid its write again');
});

it('on a provider that bills no cache write (OpenAI), a concurrent miss paid the full input price, not a write again', async () => {
  const { client, key } = h.t.tenant();
  const sys = await mintSystem(client, LONG_SYSTEM);
  const call = async () => (await client.post('/v1/render', { format: 'openai-chat', request: { model: 'gpt-4.1', prefix: [sys.id], messages: [userMessage('same question')] } })).json;
  const [a, b] = [await call(), await call()];
  const start = h.t.clock.now();
  const total = a.segments.at(-1).token_end;
  const post = (r: { request_id: string }, startedAt: number) =>
    client.post('/v1/usage', { request_id: r.request_id, usage: { prompt_tokens: total, completion_tokens: 5, total_tokens: total + 5, prompt_tokens_details: { cached_tokens: 0 } }, started_at: startedAt, first_byte_at: start + 1900, finished_at: start + 2400 });
  expect((await post(a, start)).status).toBe(201);
  const ob = (await post(b, start + 250)).json.outcome;
  expect(ob.concurrent).toEqual({ writer: a.request_id, writer_started_at: start, readable_at: start + 1900 });

  const page = await (await h.t.app.request(`/ui/requests/${b.request_id}`, { headers: { cookie: `ph_ui_key=${key}` } })).text();
  const block = /<div class="card" data-concurrent>[\s\S]*?<\/div>/.exec(page)![0];
  expect(block).toContain('so this call missed it and paid the full input price for it (this provider bills no cache write)');
  expect(block).not.toContain('paid its write again');
  const run = await h.cli(['request', b.request_id], { key });
  expect(run.code, run.err).toBe(0);
  expect(run.out).toContain('after this call started, so this call missed it and paid the full input price for it (this provider bills no cache write) (send one call first');
  expect(run.out).not.toContain('paid the write again');
  // Nor the class line under it (the legend's wording, the page's and the CLI's): no write was paid on this provider.
  expect(run.out).toContain('concurrent 2,048 tokens in #1: a parallel request');
  expect([run.out, page].filter((text) => /paid (the|its|the same) write again/.test(text))).toEqual([]);
});
