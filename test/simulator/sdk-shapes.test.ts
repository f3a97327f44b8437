// Response and usage shapes of features the official SDKs commonly use, read through those SDKs over real HTTP:
// Chat `n` (several choices).

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

let keys = 0;
/** A client with its own API key, so its own cache. */
const openai = () => new OpenAI({ apiKey: `sk-shapes-${++keys}`, baseURL: `${sim.url}/v1`, maxRetries: 0 });

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
