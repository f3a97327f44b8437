// count_tokens through the proxy counts what the messages call would send: the
// handles of x-ph-prefix, x-ph-session and handle blocks expanded the same way,
// counted by the provider, and nothing recorded (counting is not a call). A body
// with no handles reaches the provider byte for byte.

import Anthropic from '@anthropic-ai/sdk';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { assistantMessage, mintArtifact, mintBundle, mintSystem, mintTools, startSession, userMessage } from '../helpers/factories';
import { LONG_SYSTEM } from '../helpers/scenario';
import { committed, type Harness, rejection, startHarness } from './harness';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const MODEL = 'claude-sonnet-4-6';
const sha256 = (bytes: string | Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const requestCount = (h: Harness) => (h.t.sqlite.prepare('select count(*) as n from requests').get() as { n: number }).n;
const versionCount = (h: Harness, id: string) => (h.t.sqlite.prepare('select count(*) as n from handle_versions where handle_id = ?').get(id) as { n: number }).n;

/** A session based on a bundle (tools and a long system prompt) with a turn of history, a document and a system prompt. */
async function handles(h: Harness) {
  const client = h.tenant.client;
  const bundle = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, LONG_SYSTEM)).id]);
  const session = await startSession(client, { base: bundle.id, messages: [userMessage('What is the weather in Paris?'), assistantMessage('Sunny, 21 degrees.')] });
  const doc = await mintArtifact(client, 'document', 'A document about caching, counted with the rest. '.repeat(40));
  const rules = await mintSystem(client, 'Answer in metric units, and say which city you mean. '.repeat(40));
  return { session, doc, rules };
}

describe('POST /proxy/anthropic/v1/messages/count_tokens', () => {
  // Each way of naming handles: headers (a session and a prefix), and a handle block in the body.
  const CASES = [
    { name: 'x-ph-session and x-ph-prefix', headers: (x: Awaited<ReturnType<typeof handles>>) => ({ 'x-ph-session': x.session.id, 'x-ph-prefix': x.doc.id }), system: () => undefined },
    {
      name: 'a handle block in the body',
      headers: () => ({}),
      system: (x: Awaited<ReturnType<typeof handles>>) => [{ type: 'handle', ref: x.rules.id }, { type: 'text', text: 'Answer briefly.' }] as unknown as Anthropic.TextBlockParam[],
    },
  ];

  it.each(CASES)('$name: the SDK counts the rendered body, as the messages call then reports it with a cold cache; nothing is recorded', async ({ headers, system }) => {
    h = await startHarness();
    const x = await handles(h);
    const sdk = h.anthropic({ headers: headers(x) });
    const params = { model: MODEL, ...(system(x) ? { system: system(x) } : {}), messages: [{ role: 'user' as const, content: 'And in Rome?' }] };
    const versions = versionCount(h, x.session.id);

    const counted = await sdk.messages.countTokens(params);
    await committed(h);
    // Nothing recorded, nothing appended: counting is not a call.
    expect(requestCount(h)).toBe(0);
    expect(versionCount(h, x.session.id)).toBe(versions);
    expect(h.tap.map((e) => `${e.method} ${e.path}`)).toEqual(['POST /v1/messages/count_tokens']);
    const sentToCount = JSON.parse(h.tap[0]!.body);
    expect(JSON.stringify(sentToCount)).not.toContain('"handle"');

    // The same call as a message: the provider reads what was counted (its cache cold: all of it input or written).
    const { data: message } = await sdk.messages.create({ ...params, max_tokens: 64 }).withResponse();
    const { max_tokens, ...sentToMessages } = JSON.parse(h.tap[1]!.body);
    expect(max_tokens).toBe(64);
    expect(sentToCount).toEqual(sentToMessages);
    const u = message.usage;
    expect(u.cache_read_input_tokens).toBe(0);
    expect(u.input_tokens + (u.cache_creation_input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0)).toBe(counted.input_tokens);
    // Far more than the body as the SDK sent it (a few tokens): the handles' content is in it.
    expect(counted.input_tokens).toBeGreaterThan(400);
    await committed(h);
    expect(requestCount(h)).toBe(1);
  });

  it('unknown and foreign handles are the same 4xx problems as on messages, and the provider is not called', async () => {
    h = await startHarness();
    const foreign = await mintSystem(h.t.tenant().client);
    const ghost = 'art_000000000000000000000';
    const mine = await mintSystem(h.tenant.client);
    const cases: Array<{ headers: Record<string, string>; system?: unknown }> = [
      { headers: { 'x-ph-prefix': ghost } },
      { headers: { 'x-ph-prefix': foreign.id } },
      { headers: { 'x-ph-session': foreign.id } },
      { headers: { 'x-ph-session': mine.id } },
      { headers: {}, system: [{ type: 'handle', ref: foreign.id }] },
      { headers: {}, system: [{ type: 'handle', ref: 'not-a-ref' }] },
    ];
    for (const { headers, system } of cases) {
      const sdk = h.anthropic({ headers });
      const params = { model: MODEL, ...(system ? { system: system as Anthropic.TextBlockParam[] } : {}), messages: [{ role: 'user' as const, content: 'hi' }] };
      const counting = await rejection(sdk.messages.countTokens(params));
      const messaging = await rejection(sdk.messages.create({ ...params, max_tokens: 16 }));
      expect(counting).toBeInstanceOf(Anthropic.APIError);
      expect(counting.status).toBeGreaterThanOrEqual(400);
      expect(counting.status).toBeLessThan(500);
      expect(counting.status).toBe(messaging.status);
      const { requestId: _a, ...countProblem } = counting.error;
      const { requestId: _b, ...messageProblem } = messaging.error;
      expect(countProblem).toEqual(messageProblem);
      expect(counting.headers.get('content-type')).toBe('application/problem+json');
    }
    expect(h.tap).toEqual([]);
    await committed(h);
    expect(requestCount(h)).toBe(0);
  });

  it('a body with no handles and no headers reaches the provider byte for byte (sha256)', async () => {
    h = await startHarness();
    const harness = h;
    const text = fc.string({ unit: 'grapheme', maxLength: 40 });
    // Bodies as a client may write them: any whitespace, unicode as is or escaped, fields the proxy does not know.
    const body = fc.record({
      messages: fc.array(fc.record({ role: fc.constant('user'), content: text }), { minLength: 1, maxLength: 3 }),
      extra: fc.dictionary(text.map((k) => `x_${k}`), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
      indent: fc.constantFrom(undefined, 0, 1, 2, '\t', ' \n '),
      ascii: fc.boolean(),
    });
    let n = 0;
    await fc.assert(
      fc.asyncProperty(body, async ({ messages, extra, indent, ascii }) => {
        let json = JSON.stringify({ ...extra, model: MODEL, messages }, null, indent);
        if (ascii) json = json.replace(/[\u007f-\uffff]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
        const bytes = Buffer.from(json);
        const res = await fetch(`${harness.url}/proxy/anthropic/v1/messages/count_tokens`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-test', 'anthropic-version': '2023-06-01', 'x-ph-key': harness.key },
          body: bytes,
        });
        const answer = await res.json();
        expect(res.status, JSON.stringify(answer)).toBe(200);
        const seen = harness.tap[n++]!;
        expect(seen.path).toBe('/v1/messages/count_tokens');
        expect(sha256(Buffer.from(seen.body))).toBe(sha256(bytes));
      }),
      { numRuns: 40 },
    );
    await committed(h);
    expect(requestCount(h)).toBe(0);
  });
});
