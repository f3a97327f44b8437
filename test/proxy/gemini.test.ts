// Gemini through the proxy with the official @google/genai SDK: only its base URL
// (httpOptions.baseUrl) changed and x-ph-key added. generateContent and
// streamGenerateContent (?alt=sse) rendered with handles, recorded and reconciled
// from Gemini's usageMetadata; countTokens and the model list passed on.

import { ApiError } from '@google/genai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mintBundle, mintSystem, mintTools, startSession } from '../helpers/factories';
import { committed, eventually, rejection, startHarness, type Harness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const MINUTE = 60_000;
const TURNS = 4;
const MODEL = 'gemini-2.5-flash';
// Over gemini-2.5-flash's implicit-cache minimum (2048 tokens), as a real agent's instructions are.
const SYSTEM = 'You are the support agent for a large handbook. Follow every policy exactly and cite sections. '.repeat(240);

async function agentSetup() {
  const client = h.tenant.client;
  const tools = await mintTools(client);
  const sys = await mintSystem(client, SYSTEM);
  const bundle = await mintBundle(client, [tools.id, sys.id]);
  const session = await startSession(client, { base: bundle.id });
  return { client, bundle, session };
}

/** One turn through the SDK; the reply's text, our request id (from the raw response headers), its usage. */
async function turn(headers: Record<string, string>, question: string, stream: boolean, apiVersion?: string) {
  const ai = h.gemini({ headers, apiVersion });
  const contents = [{ role: 'user', parts: [{ text: question }] }];
  if (!stream) {
    const res = await ai.models.generateContent({ model: MODEL, contents });
    return { text: res.text ?? '', requestId: res.sdkHttpResponse?.headers?.['x-ph-request-id'], usage: res.usageMetadata };
  }
  let text = '';
  let requestId: string | undefined;
  let usage;
  for await (const chunk of await ai.models.generateContentStream({ model: MODEL, contents })) {
    text += chunk.text ?? '';
    requestId ??= chunk.sdkHttpResponse?.headers?.['x-ph-request-id'];
    usage = chunk.usageMetadata;
  }
  return { text, requestId, usage };
}

describe('an agent loop over a bundle and a session', () => {
  // @google/genai calls v1 by default; the REST docs' v1beta is served too.
  it.each([
    { stream: false, version: 'v1' },
    { stream: true, version: 'v1' },
    { stream: true, version: 'v1beta' },
  ])('stream=$stream, $version: the session carries the conversation; the bundle goes cold once, then is read from cache', async ({ stream, version }) => {
    const { client, bundle, session } = await agentSetup();
    const transcript: string[] = [];
    const requestIds: string[] = [];
    for (let i = 1; i <= TURNS; i++) {
      const question = `Question ${i}: what is the weather in city ${i}?`;
      const { text, requestId, usage } = await turn({ 'x-ph-session': session.id }, question, stream, version === 'v1' ? undefined : version);
      expect(text).toContain(`Question ${i}`);
      expect(requestId).toMatch(/^req_/);
      // Gemini's own usage reaches the SDK: a cache hit only after the first turn.
      if (i === 1) expect(usage?.cachedContentTokenCount).toBeUndefined();
      else expect(usage?.cachedContentTokenCount).toBeGreaterThan(2048);
      transcript.push(question, text);
      requestIds.push(requestId!);
      h.clock.advance(MINUTE);
    }
    await committed(h);

    // The session is the conversation: every question and reply, in order.
    const expanded = (await client.get(`/v1/handles/${session.id}/expand?format=neutral`)).json;
    expect(expanded.messages.map((m: { content: unknown }) => (typeof m.content === 'string' ? m.content : (m.content as { text: string }[])[0]!.text))).toEqual(transcript);

    // The URL the SDK called, the key it sent (untouched, never ours), and each later turn sent the history first.
    const calls = h.tap.filter((e) => e.method === 'POST');
    expect(calls).toHaveLength(TURNS);
    expect(calls[0]!.path).toBe(`/${version}/models/${MODEL}:${stream ? 'streamGenerateContent?alt=sse' : 'generateContent'}`);
    expect(calls[0]!.headers.get('x-goog-api-key')).toBe('gemini-test-key');
    expect(calls[0]!.headers.get('x-ph-key')).toBeNull();
    const last = JSON.parse(calls[TURNS - 1]!.body);
    expect(last.systemInstruction.parts[0].text).toBe(SYSTEM);
    expect(last.tools[0].functionDeclarations.length).toBeGreaterThan(0);
    expect(last.contents.map((c: { role: string }) => c.role)).toEqual([...Array(TURNS - 1).fill(['user', 'model']).flat(), 'user']);

    const rep = (await client.get(`/v1/reports/handles/${bundle.id}`)).json;
    expect(rep.requests).toBe(TURNS);
    expect(rep.requests_with.cold).toBe(1);
    expect(rep.tokens.cold).toBeGreaterThan(0);
    expect(rep.tokens.captured).toBeGreaterThan(2 * rep.tokens.cold);
    // Every token the simulated implicit cache could serve, Gemini's usage confirmed; the bundle is over the minimum.
    expect(rep.tokens.captured).toBe(rep.tokens.predicted);
    expect(rep.tokens.cold + rep.tokens.captured).toBe(rep.tokens.referenced);
    expect(rep.tokens).toMatchObject({ unconfirmed: 0, unknown: 0, drift: 0, expired: 0, concurrent: 0, below_minimum: 0 });

    for (const [i, id] of requestIds.entries()) {
      const r = (await client.get(`/v1/requests/${id}`)).json;
      expect(r.status).toBe('reconciled');
      expect(r.outcome.capture).toBe('reported');
      if (i === 0) expect(r.usage.cache_read_tokens).toBe(0);
      else expect(r.usage.cache_read_tokens).toBeGreaterThan(0);
    }
  });
});
