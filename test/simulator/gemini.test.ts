// The simulator's Gemini endpoints read through the official @google/genai SDK: the
// response shape (candidates, usageMetadata, modelVersion, responseId), streamed and
// not, and the implicit cache as the catalog describes each Gemini model.

import { ApiError, GoogleGenAI, type GenerateContentResponse } from '@google/genai';
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
const gemini = (apiVersion?: string) => new GoogleGenAI({ apiKey: `gemini-sim-${++keys}`, httpOptions: { baseUrl: sim.url, ...(apiVersion ? { apiVersion } : {}) } });
const promptTokens = (body: unknown) => blocksFromRequest('gemini', body, (t) => countTokens(t, 'gemini')).totalTokens;
const words = (n: number) => Array.from({ length: n }, (_, i) => `word${i}`).join(' ');

describe('generateContent and streamGenerateContent', () => {
  it("answer Gemini's shape: the text, STOP, usageMetadata without cachedContentTokenCount on a miss, modelVersion, responseId", async () => {
    const ai = gemini();
    const body = { contents: [{ role: 'user', parts: [{ text: 'Name a colour.' }] }] };
    const res = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: body.contents });
    expect(res.text).toContain('Name a colour.');
    expect(res.candidates![0]).toMatchObject({ finishReason: 'STOP', index: 0, content: { role: 'model' } });
    const prompt = promptTokens(body);
    const output = res.usageMetadata!.candidatesTokenCount!;
    expect(res.usageMetadata).toEqual({ promptTokenCount: prompt, candidatesTokenCount: output, totalTokenCount: prompt + output, promptTokensDetails: [{ modality: 'TEXT', tokenCount: prompt }] });
    expect(res.modelVersion).toBe('gemini-2.5-flash');
    expect(res.responseId).toMatch(/^\w{24}$/);

    // Streamed (v1beta too): the usage so far on every chunk, the final counts and STOP on the last.
    const chunks: GenerateContentResponse[] = [];
    for await (const chunk of await gemini('v1beta').models.generateContentStream({ model: 'gemini-2.5-flash', contents: body.contents })) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.map((c) => c.text).join('')).toMatch(/^Simulated reply #\d+ to: Name a colour\.$/);
    expect(chunks.every((c) => c.usageMetadata?.promptTokenCount === prompt && c.responseId === chunks[0]!.responseId)).toBe(true);
    expect(chunks.at(-1)!.candidates![0]!.finishReason).toBe('STOP');
    expect(chunks.slice(0, -1).every((c) => c.candidates![0]!.finishReason === undefined)).toBe(true);
    expect(chunks.at(-1)!.usageMetadata!.candidatesTokenCount).toBe(output);
  });

  it('maxOutputTokens stops the text there: MAX_TOKENS, and that many candidate tokens', async () => {
    const res = await gemini().models.generateContent({ model: 'gemini-2.5-flash', contents: 'Tell me a long story about many things', config: { maxOutputTokens: 3 } });
    expect(res.candidates![0]!.finishReason).toBe('MAX_TOKENS');
    expect(res.usageMetadata!.candidatesTokenCount).toBe(3);
  });

  it("an injected fault and a missing key are Gemini's errors: {error: {code, message, status}}", async () => {
    const ai = new GoogleGenAI({ apiKey: 'k', httpOptions: { baseUrl: sim.url, headers: { 'x-simulator-status': '429' } } });
    const err = (await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'hi' }).catch((e: unknown) => e)) as ApiError;
    expect(err).toBeInstanceOf(ApiError);
    expect(err.status).toBe(429);
    expect(JSON.parse(err.message)).toEqual({ error: { code: 429, message: 'Rate limit exceeded (simulated)', status: 'RESOURCE_EXHAUSTED' } });
    const res = await fetch(`${sim.url}/v1beta/models/gemini-2.5-flash:generateContent`, { method: 'POST', body: '{"contents":[]}' });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { status: string } }).error.status).toBe('PERMISSION_DENIED');
  });
});

describe("the implicit cache, by the catalog's Gemini rules", () => {
  const models = catalog.entries().filter((e) => e.provider === 'gemini');

  it.each(models.map((e) => [e.id, e.cache.mode, e.cache.minTokens] as const))('%s (%s, minimum %i): a repeated prompt over the minimum is read from cache, one under it never', async (model, mode, min) => {
    const ai = gemini();
    const ask = async (text: string) => (await ai.models.generateContent({ model, contents: text })).usageMetadata!;
    const long = words(Math.ceil(min * 1.5));
    const short = words(Math.floor(min / 8));
    expect(promptTokens({ contents: [{ role: 'user', parts: [{ text: long }] }] })).toBeGreaterThan(min);
    expect(promptTokens({ contents: [{ role: 'user', parts: [{ text: short }] }] })).toBeLessThan(min);

    expect((await ask(long)).cachedContentTokenCount).toBeUndefined();
    const again = await ask(long);
    await ask(short);
    const shortAgain = await ask(short);
    expect(shortAgain.cachedContentTokenCount).toBeUndefined();
    if (mode === 'automatic') {
      // A hit: Gemini's cached count, and its details, within the prompt.
      expect(again.cachedContentTokenCount).toBeGreaterThanOrEqual(min);
      expect(again.cachedContentTokenCount).toBeLessThanOrEqual(again.promptTokenCount!);
      expect(again.cacheTokensDetails).toEqual([{ modality: 'TEXT', tokenCount: again.cachedContentTokenCount }]);
    } else {
      // No implicit caching (Gemini 2.0): only an explicit cachedContents prefix is cached, which the simulator does not create.
      expect(again.cachedContentTokenCount).toBeUndefined();
    }
  });
});

describe('countTokens and the model list', () => {
  it('count a bare contents body and a whole generateContentRequest; list the catalog’s Gemini models', async () => {
    const ai = gemini();
    const contents = [{ role: 'user', parts: [{ text: 'count me' }] }];
    expect((await ai.models.countTokens({ model: 'gemini-2.5-flash', contents })).totalTokens).toBe(promptTokens({ contents }));
    const whole = { contents, systemInstruction: { parts: [{ text: 'be brief' }] } };
    const res = await fetch(`${sim.url}/v1beta/models/gemini-2.5-flash:countTokens`, { method: 'POST', headers: { 'x-goog-api-key': 'k' }, body: JSON.stringify({ generateContentRequest: { model: 'models/gemini-2.5-flash', ...whole } }) });
    expect(((await res.json()) as { totalTokens: number }).totalTokens).toBe(promptTokens(whole));
    const names: string[] = [];
    for await (const m of await ai.models.list()) names.push(m.name!);
    expect(names.sort()).toEqual(catalog.entries().filter((e) => e.provider === 'gemini').map((e) => `models/${e.id}`).sort());
  });
});
