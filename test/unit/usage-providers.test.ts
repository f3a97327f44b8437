// Every provider in the usage registry reads its own simulator's shapes (src/simulator/): the response body found
// without a hint, its counts as the simulator set them, and its stream (read live and as a list) giving the same usage.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { anthropicMessage, anthropicStreamFrames } from '../../src/simulator/anthropic';
import { geminiResponse, geminiStreamFrames } from '../../src/simulator/gemini';
import { chatCompletion, chatStreamFrames } from '../../src/simulator/openai-chat';
import { newResponseParts, responseBody, responsesStreamFrames } from '../../src/simulator/openai-responses';
import type { SimUsage, Turn } from '../../src/simulator/turn';
import { normalizeUsage, usageObjectOf } from '../../src/domain/usage/normalize';
import { USAGE_PROVIDERS } from '../../src/domain/usage/providers';
import { createStreamUsageAccumulator, listedStreamUsage, SseParser, type SseMessage } from '../../src/domain/usage/stream';
import type { UsageProvider } from '../../src/domain/usage/types';

interface Simulated {
  body(turn: Turn): Record<string, unknown>;
  frames(turn: Turn): string[];
  /** The usage the simulator reports for a write: whether the provider's shape carries it. */
  writes: (u: SimUsage) => boolean;
}

const parts = newResponseParts({});
// vLLM answers in the chat completion shape, with prompt_logprobs serialised (null) and no cache writes.
const vllmTurn = (turn: Turn): Turn => ({ ...turn, usage: { ...turn.usage, writesBilled: false } });

const SIMULATED: Record<UsageProvider, Simulated> = {
  anthropic: { body: (t) => anthropicMessage(t, 'msg_1'), frames: (t) => anthropicStreamFrames(t, 'msg_1'), writes: () => true },
  'openai-chat': { body: (t) => chatCompletion(t, 'chatcmpl-1'), frames: (t) => chatStreamFrames(t, 'chatcmpl-1', true), writes: (u) => u.writesBilled },
  'openai-responses': { body: (t) => responseBody(t, parts), frames: (t) => responsesStreamFrames(t, parts), writes: (u) => u.writesBilled },
  gemini: { body: (t) => geminiResponse(t, 'r1'), frames: (t) => geminiStreamFrames(t, 'r1'), writes: () => false },
  vllm: {
    body: (t) => ({ ...chatCompletion(vllmTurn(t), 'chatcmpl-1'), prompt_logprobs: null }),
    frames: (t) => chatStreamFrames(vllmTurn(t), 'chatcmpl-1', true),
    writes: () => false,
  },
};

const simUsage: fc.Arbitrary<SimUsage> = fc
  .record({ prompt: fc.integer({ min: 0, max: 200_000 }), read: fc.nat(), write: fc.nat(), hour: fc.nat(), output: fc.integer({ min: 1, max: 5000 }), writesBilled: fc.boolean() })
  .map(({ prompt, read, write, hour, output, writesBilled }) => {
    const readTokens = read % (prompt + 1);
    const writeTokens = write % (prompt - readTokens + 1);
    const oneHour = hour % (writeTokens + 1);
    return { promptTokens: prompt, readTokens, writeTokens, writeByTtl: { '5m': writeTokens - oneHour, '1h': oneHour }, outputTokens: output, writesBilled };
  });

function turnOf(usage: SimUsage, text: string): Turn {
  return { model: 'sim-model', text, chunks: [text.slice(0, 3), text.slice(3)], toolCall: null, truncated: false, thinking: null, signed: false, thinkingBinding: null, inputTransformations: null, more: [], createdAt: 0, usage };
}

function events(frames: string[]): SseMessage[] {
  const parser = new SseParser();
  return frames.flatMap((f) => parser.feed(f));
}

describe('every registered usage provider reads its simulator', () => {
  it('the simulator table covers the registry', () => {
    expect(Object.keys(SIMULATED).sort()).toEqual(Object.keys(USAGE_PROVIDERS).sort());
  });

  it.each(Object.keys(USAGE_PROVIDERS) as UsageProvider[])('%s: its body, its stream and its listed stream agree with the simulated counts', (provider) => {
    const sim = SIMULATED[provider];
    const rules = USAGE_PROVIDERS[provider];
    fc.assert(
      fc.property(simUsage, fc.constantFrom('Simulated reply', 'ok'), (usage, text) => {
        const turn = turnOf(usage, text);
        const body = sim.body(turn);
        const fromBody = normalizeUsage(body);
        expect(fromBody.provider).toBe(provider);
        expect(fromBody).toMatchObject({
          model: 'sim-model',
          total_prompt_tokens: usage.promptTokens,
          cache_read_tokens: usage.readTokens,
          cache_write_tokens: sim.writes(usage) ? usage.writeTokens : null,
          // Writes a provider does not report are billed as plain input.
          uncached_tokens: usage.promptTokens - usage.readTokens - (sim.writes(usage) ? usage.writeTokens : 0),
          output_tokens: usage.outputTokens,
          cache_fields_reported: true,
          complete: true,
        });
        expect(usageObjectOf(body)).toBe(body[rules.body.usageKey]);

        const stream = events(sim.frames(turn));
        const acc = createStreamUsageAccumulator(provider);
        for (const e of stream) acc.push(e);
        expect(acc.result()).toEqual(fromBody);

        // A listed stream is told by its items where the provider's events say whose they are (vLLM's: only by a hint).
        const datas = stream.map((e) => e.data);
        expect(listedStreamUsage(datas, provider).usage).toEqual(fromBody);
        if (rules.claimsEvent) expect(listedStreamUsage(datas).usage).toEqual(fromBody);
      }),
      { numRuns: 100 },
    );
  });
});
