// Response and usage shapes of features the official SDKs commonly use, read through those SDKs over real HTTP:
// Chat `n` (several choices), Responses `previous_response_id` (the conversation the API keeps), output limits
// (max_tokens and its kin: the text stops there, and the reply says so).

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import { blocksFromRequest } from '../../src/domain/simulator/blocks';
import { countTokens } from '../../src/domain/tokens';
import { startSimulator, type RunningSimulator } from '../../src/simulator/server';

const catalog = new ModelCatalog(loadCatalog());
let sim: RunningSimulator;
beforeAll(async () => {
  sim = await startSimulator({ catalog });
});
afterAll(async () => {
  await sim.close();
});

/** OpenAI hits come in 1024 + n*128 token steps. */
const openaiCached = (prefixTokens: number) => (prefixTokens < 1024 ? 0 : 1024 + Math.floor((prefixTokens - 1024) / 128) * 128);

let keys = 0;
/** A client with its own API key, so its own cache. */
const openai = () => new OpenAI({ apiKey: `sk-shapes-${++keys}`, baseURL: `${sim.url}/v1`, maxRetries: 0 });
const anthropic = () => new Anthropic({ apiKey: `sk-ant-shapes-${++keys}`, baseURL: sim.url, maxRetries: 0 });

describe('Chat n: several choices', () => {
  const body = { model: 'gpt-4o', n: 3, messages: [{ role: 'user' as const, content: 'Name a colour.' }] };
  const prompt = blocksFromRequest('openai-chat', body, (t) => countTokens(t, 'o200k_base')).totalTokens;

  it('answers n choices, indexed 0..n-1; the prompt counted once, the completion tokens of every choice summed', async () => {
    const c = await openai().chat.completions.create(body);
    expect(c.choices.map((x) => x.index)).toEqual([0, 1, 2]);
    expect(c.choices.every((x) => x.finish_reason === 'stop' && typeof x.message.content === 'string' && x.message.content !== '')).toBe(true);
    const completion = c.choices.reduce((n, x) => n + countTokens(x.message.content!, 'o200k_base'), 0);
    expect(c.usage).toMatchObject({ prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion });
  });

  it("streams each choice's deltas under its index; the SDK assembles the same choices and usage", async () => {
    const client = openai();
    const plain = await client.chat.completions.create(body);
    const stream = client.chat.completions.stream({ ...body, stream_options: { include_usage: true } });
    const indexes = new Set<number>();
    for await (const chunk of stream) for (const choice of chunk.choices) indexes.add(choice.index);
    const final = await stream.finalChatCompletion();
    expect([...indexes].sort()).toEqual([0, 1, 2]);
    expect(final.choices.map((x) => [x.index, x.finish_reason])).toEqual([
      [0, 'stop'],
      [1, 'stop'],
      [2, 'stop'],
    ]);
    expect(final.choices.map((x) => countTokens(x.message.content!, 'o200k_base'))).toEqual(plain.choices.map((x) => countTokens(x.message.content!, 'o200k_base')));
    expect(final.usage).toMatchObject({ prompt_tokens: prompt, completion_tokens: plain.usage!.completion_tokens });
  });

  it('n: 1, null or absent is one choice; an n outside 1..128 is the API’s 400 naming n', async () => {
    for (const n of [1, null, undefined]) expect((await openai().chat.completions.create({ ...body, n })).choices).toHaveLength(1);
    for (const n of [0, 129, 1.5]) {
      const err = await openai()
        .chat.completions.create({ ...body, n })
        .catch((e: unknown) => e);
      expect(err, String(n)).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as { param: string }).param).toBe('n');
    }
  });
});

describe('Responses previous_response_id: the API prepends the conversation it keeps', () => {
  // ~2,100 words: a history above the 1024-token cache minimum.
  const LONG = Array.from({ length: 150 }, (_, i) => `Clause ${i + 1}: the tenant keeps the premises clean and reports damage promptly.`).join(' ');
  const model = 'gpt-4.1';
  const count = (input: unknown, instructions?: string) =>
    blocksFromRequest('openai-responses', { model, input, ...(instructions ? { instructions } : {}) }, (t) => countTokens(t, 'o200k_base')).totalTokens;

  it("counts and caches the earlier input and output as this call's prompt, as if the caller had sent them again", async () => {
    const chained = openai();
    const r1 = await chained.responses.create({ model, instructions: 'Be brief.', input: LONG });
    expect(r1.usage!.input_tokens).toBe(count(LONG, 'Be brief.'));
    // Instructions are not carried over (sent again, they count once); the same ones keep the cached prefix.
    const r2 = await chained.responses.create({ model, instructions: 'Be brief.', input: 'And clause 7?', previous_response_id: r1.id });
    expect(r2.previous_response_id).toBe(r1.id);
    // The history (not the earlier instructions: they are not carried over) comes before this call's input.
    const history = [{ role: 'user', content: LONG }, ...r1.output];
    expect(r2.usage!.input_tokens).toBe(count([...history, { role: 'user', content: 'And clause 7?' }], 'Be brief.'));
    expect(r2.usage!.input_tokens).toBeGreaterThan(count('And clause 7?', 'Be brief.') + 1000);
    // The first call's prompt is a cached prefix of the second's.
    expect(r2.usage!.input_tokens_details.cached_tokens).toBe(openaiCached(r1.usage!.input_tokens));

    // The same conversation sent inline under another key: the same usage, cache reads included.
    const inline = openai();
    await inline.responses.create({ model, instructions: 'Be brief.', input: LONG });
    const again = await inline.responses.create({ model, instructions: 'Be brief.', input: [...history, { role: 'user', content: 'And clause 7?' }] as OpenAI.Responses.ResponseInput });
    expect(r2.usage!.input_tokens_details).toEqual(again.usage!.input_tokens_details);

    // A chain goes on: the third call reads the second's whole prompt from cache (the first answer included).
    const r3 = await chained.responses.create({ model, instructions: 'Be brief.', input: 'And clause 8?', previous_response_id: r2.id, stream: true });
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of r3) if (event.type === 'response.completed') completed = event.response;
    expect(completed!.usage!.input_tokens).toBe(count([...history, { role: 'user', content: 'And clause 7?' }, ...r2.output, { role: 'user', content: 'And clause 8?' }], 'Be brief.'));
    expect(completed!.usage!.input_tokens_details.cached_tokens).toBe(openaiCached(r2.usage!.input_tokens));
    // A streamed response is kept too.
    const r4 = await chained.responses.create({ model, input: 'Thanks.', previous_response_id: completed!.id });
    expect(r4.usage!.input_tokens).toBeGreaterThan(completed!.usage!.input_tokens);
  });

  it("an id the API does not keep for this key (unknown, another key's, or sent with store: false) is its 400 previous_response_not_found", async () => {
    const client = openai();
    const kept = await client.responses.create({ model, input: 'Hello' });
    const unkept = await client.responses.create({ model, input: 'Hello', store: false });
    for (const [sdk, id] of [
      [client, 'resp_unknown'],
      [openai(), kept.id],
      [client, unkept.id],
    ] as const) {
      const err = await sdk.responses.create({ model, input: 'Again', previous_response_id: id }).catch((e: unknown) => e);
      expect(err, id).toBeInstanceOf(OpenAI.BadRequestError);
      expect(err).toMatchObject({ status: 400, code: 'previous_response_not_found', param: 'previous_response_id', message: expect.stringContaining(`Previous response with id '${id}' not found.`) });
    }
    expect((await client.responses.create({ model, input: 'Again', previous_response_id: kept.id })).previous_response_id).toBe(kept.id);
  });
});

describe('Responses item_reference: an input item that names a stored output item by its id', () => {
  // The Vercel AI SDK's OpenAI provider (the Responses API by default, `store` not false) sends an earlier reply back
  // this way, each turn of a conversation it re-sends: {"type":"item_reference","id":"msg_…"}.
  const LONG = Array.from({ length: 150 }, (_, i) => `Clause ${i + 1}: the tenant keeps the premises clean and reports damage promptly.`).join(' ');
  const model = 'gpt-4.1';
  const count = (input: unknown) => blocksFromRequest('openai-responses', { model, input }, (t) => countTokens(t, 'o200k_base')).totalTokens;
  const user = (text: string) => ({ role: 'user', content: [{ type: 'input_text', text }] });

  it('is read as the item it names: counted, cached and answered as if the item had been sent inline', async () => {
    const client = openai();
    const r1 = await client.responses.create({ model, input: [user(LONG)] as OpenAI.Responses.ResponseInput });
    const reply = r1.output[0] as OpenAI.Responses.ResponseOutputMessage;
    expect(reply.id).toMatch(/^msg_/);
    const referenced = [user(LONG), { type: 'item_reference', id: reply.id }, user('And clause 7?')];
    const r2 = await client.responses.create({ model, input: referenced as OpenAI.Responses.ResponseInput });
    // The reply's tokens are in the prompt, not the reference's: the same count as the item sent inline.
    expect(r2.usage!.input_tokens).toBe(count([user(LONG), reply, user('And clause 7?')]));
    // The first call's prompt is a cached prefix of the second's.
    expect(r2.usage!.input_tokens_details.cached_tokens).toBe(openaiCached(r1.usage!.input_tokens));
    // Streamed, and referring to a streamed reply, alike; the conversation goes on.
    const stream = await client.responses.create({ model, input: [...referenced, { type: 'item_reference', id: (r2.output[0] as OpenAI.Responses.ResponseOutputMessage).id }, user('And 8?')] as OpenAI.Responses.ResponseInput, stream: true });
    let completed: OpenAI.Responses.Response | undefined;
    for await (const event of stream) if (event.type === 'response.completed') completed = event.response;
    expect(completed!.usage!.input_tokens).toBe(count([user(LONG), reply, user('And clause 7?'), r2.output[0], user('And 8?')]));
    expect(completed!.usage!.input_tokens_details.cached_tokens).toBe(openaiCached(r2.usage!.input_tokens));
  });

  it("an item not kept for this key (sent with store: false, another key's, or unknown) is OpenAI's 404", async () => {
    const client = openai();
    const kept = await client.responses.create({ model, input: 'Hello' });
    const unkept = await client.responses.create({ model, input: 'Hello', store: false });
    const idOf = (r: OpenAI.Responses.Response) => (r.output[0] as OpenAI.Responses.ResponseOutputMessage).id;
    for (const [sdk, id] of [
      [client, idOf(unkept)],
      [openai(), idOf(kept)],
      [client, 'msg_unknown'],
    ] as const) {
      const err = await sdk.responses.create({ model, input: [user('Hello'), { type: 'item_reference', id }, user('Again')] as OpenAI.Responses.ResponseInput }).catch((e: unknown) => e);
      expect(err, id).toBeInstanceOf(OpenAI.NotFoundError);
      expect(err).toMatchObject({ status: 404, param: 'input', code: null, type: 'invalid_request_error' });
      expect((err as Error).message).toContain(`Item with id '${id}' not found. Items are not persisted when \`store\` is set to false.`);
    }
    const ok = await client.responses.create({ model, input: [user('Hello'), { type: 'item_reference', id: idOf(kept) }, user('Again')] as OpenAI.Responses.ResponseInput });
    expect(ok.status).toBe('completed');
  });
});

describe('output limits: a reply longer than the limit stops there, billed at the limit, and says why', () => {
  // Many short tokens: the reply quotes them, well past 16 tokens.
  const question = '1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20';

  it('Anthropic max_tokens: stop_reason max_tokens, output_tokens the limit, streamed or not', async () => {
    const client = anthropic();
    const params = { model: 'claude-sonnet-4-6', max_tokens: 4, messages: [{ role: 'user' as const, content: question }] };
    const whole = await client.messages.create({ ...params, max_tokens: 256 });
    expect(whole.stop_reason).toBe('end_turn');
    const cut = await client.messages.create(params);
    expect(cut.stop_reason).toBe('max_tokens');
    expect(cut.usage.output_tokens).toBe(4);
    const text = (cut.content[0] as Anthropic.TextBlock).text;
    expect((whole.content[0] as Anthropic.TextBlock).text.startsWith(text)).toBe(true);
    expect(countTokens(text, 'anthropic')).toBeLessThanOrEqual(4);
    const streamed = await client.messages.stream(params).finalMessage();
    expect([streamed.stop_reason, streamed.usage.output_tokens]).toEqual(['max_tokens', 4]);
  });

  it('Chat max_completion_tokens and max_tokens: finish_reason length, completion_tokens the limit per choice, streamed or not', async () => {
    const client = openai();
    for (const limit of [{ max_completion_tokens: 5 }, { max_tokens: 5 }]) {
      const c = await client.chat.completions.create({ model: 'gpt-4o', n: 2, messages: [{ role: 'user', content: question }], ...limit });
      expect(c.choices.map((x) => x.finish_reason), JSON.stringify(limit)).toEqual(['length', 'length']);
      expect(c.usage!.completion_tokens).toBe(10);
      expect(c.choices.every((x) => countTokens(x.message.content!, 'o200k_base') <= 5)).toBe(true);
      const stream = client.chat.completions.stream({ model: 'gpt-4o', messages: [{ role: 'user', content: question }], stream_options: { include_usage: true }, ...limit });
      const final = await stream.finalChatCompletion();
      expect([final.choices[0]!.finish_reason, final.usage!.completion_tokens]).toEqual(['length', 5]);
    }
    const roomy = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: question }], max_completion_tokens: 1000 });
    expect(roomy.choices[0]!.finish_reason).toBe('stop');
  });

  it('Responses max_output_tokens: status incomplete with reason max_output_tokens, ended by response.incomplete; under 16 is a 400', async () => {
    const client = openai();
    const r = await client.responses.create({ model: 'gpt-4.1', input: question, max_output_tokens: 16 });
    expect(r.status).toBe('incomplete');
    expect(r.incomplete_details).toEqual({ reason: 'max_output_tokens' });
    expect(r.usage!.output_tokens).toBe(16);
    expect(r.output[0]).toMatchObject({ type: 'message', status: 'incomplete' });
    expect(countTokens(r.output_text, 'o200k_base')).toBeLessThanOrEqual(16);
    const types: string[] = [];
    let last: OpenAI.Responses.Response | undefined;
    for await (const event of await client.responses.create({ model: 'gpt-4.1', input: question, max_output_tokens: 16, stream: true })) {
      types.push(event.type);
      if (event.type === 'response.incomplete') last = event.response;
    }
    expect(types.at(-1)).toBe('response.incomplete');
    expect(types).not.toContain('response.completed');
    expect([last!.status, last!.usage!.output_tokens]).toEqual(['incomplete', 16]);
    const err = await client.responses.create({ model: 'gpt-4.1', input: question, max_output_tokens: 5 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ param: 'max_output_tokens', code: 'integer_below_min_value' });
  });
});
