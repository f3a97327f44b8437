// An official SDK's retry of a call whose answer the proxy had sent after appending the turn (its timeout fired
// after the answer's end reached the proxy, before the answer reached the SDK): the proxy answers the retry with the
// lost answer, byte for byte, marked x-ph-replayed, without calling the provider again or appending anything, so the
// session holds the turn once, with the reply the client got. Engineered with the SDK's own `fetch` option: the first
// attempt's answer is read whole (the turn is appended and the answer kept) and then lost; the SDK retries.

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { ANSWER_CAP } from '../../src/http/proxy/replay';
import { startSession } from '../helpers/factories';
import { type Harness, startHarness } from './harness';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const TOOLS = [{ name: 'get_weather', input_schema: { type: 'object' as const, properties: { city: { type: 'string' } }, required: ['city'] } }];
const OPENAI_TOOLS = [{ type: 'function' as const, function: { name: 'get_weather', parameters: TOOLS[0]!.input_schema } }];

interface Attempt {
  retryCount: string | null;
  status: number;
  headers: Headers;
  body: string;
}

/** A fetch whose first model call's answer (or first `lost`) is read whole, then lost (the SDK sees a failed connection and retries). */
function losingFirstAnswer(lost = 1) {
  const attempts: Attempt[] = [];
  const lose: typeof fetch = async (input, init) => {
    const retryCount = new Headers(init?.headers).get('x-stainless-retry-count');
    const res = await fetch(input, init);
    attempts.push({ retryCount, status: res.status, headers: res.headers, body: await res.clone().text() });
    if (attempts.length > lost) return res;
    throw new TypeError('fetch failed (the answer was lost: a timeout at the instant after the proxy appended the turn)');
  };
  return { lose, attempts };
}

type Kept = Array<{ role: string; content: Array<{ type: string; id?: string; text?: string; tool_use_id?: string }> }>;

async function kept(sessionId: string, version?: number) {
  const res = await h!.tenant.client.get(`/v1/handles/${sessionId}${version ? `@${version}` : ''}/expand?format=neutral`);
  return res.json.messages as Kept;
}

const latestVersion = async (sessionId: string) => ((await h!.tenant.client.get(`/v1/handles/${sessionId}`)).json as { latest_version: number }).latest_version;
const modelCalls = () => h!.tap.filter((e) => /\/v1\/(messages|chat\/completions)/.test(e.path));
const appends = () => h!.t.services.metrics.registry.getSingleMetricAsString('ph_proxy_session_appends_total');

/** The tool call the client got, by SDK and shape. */
async function ask(provider: 'anthropic' | 'openai', stream: boolean, fetchFn: typeof fetch, sessionId: string, maxRetries = 2): Promise<string> {
  const headers = { 'x-ph-key': h!.key, 'x-ph-session': sessionId };
  const question = 'Use get_weather for Oslo.';
  if (provider === 'anthropic') {
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${h!.url}/proxy/anthropic`, maxRetries, fetch: fetchFn, defaultHeaders: headers });
    const body = { model: 'claude-sonnet-4-6', max_tokens: 64, tools: TOOLS, messages: [{ role: 'user' as const, content: question }] };
    const message = stream ? await anthropic.messages.stream(body).finalMessage() : await anthropic.messages.create(body);
    return (message.content.find((b) => b.type === 'tool_use') as { id: string }).id;
  }
  const openai = new OpenAI({ apiKey: 'sk-openai-test', baseURL: `${h!.url}/proxy/openai/v1`, maxRetries, fetch: fetchFn, defaultHeaders: headers });
  const body = { model: 'gpt-4.1', tools: OPENAI_TOOLS, messages: [{ role: 'user' as const, content: question }] };
  if (!stream) return (await openai.chat.completions.create(body)).choices[0]!.message.tool_calls![0]!.id;
  const final = await openai.chat.completions.stream(body).finalChatCompletion();
  return final.choices[0]!.message.tool_calls![0]!.id;
}

/** The agent answers the tool call it got, on the session, with a plain SDK. */
async function answerTool(provider: 'anthropic' | 'openai', sessionId: string, callId: string) {
  const headers = { 'x-ph-key': h!.key, 'x-ph-session': sessionId };
  if (provider === 'anthropic') {
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${h!.url}/proxy/anthropic`, maxRetries: 0, defaultHeaders: headers });
    await anthropic.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 64, tools: TOOLS, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: callId, content: 'sunny' }] }] });
  } else {
    const openai = new OpenAI({ apiKey: 'sk-openai-test', baseURL: `${h!.url}/proxy/openai/v1`, maxRetries: 0, defaultHeaders: headers });
    await openai.chat.completions.create({ model: 'gpt-4.1', tools: OPENAI_TOOLS, messages: [{ role: 'tool', tool_call_id: callId, content: 'sunny' }] });
  }
}

describe('an SDK retry of a call whose answer was lost after the turn was appended', () => {
  it.each([
    ['anthropic', false],
    ['anthropic', true],
    ['openai', false],
    ['openai', true],
  ] as const)('%s (stream: %s): the lost answer replayed byte for byte, the provider called once, the turn appended once, the next tool result pairs', async (provider, stream) => {
    h = await startHarness();
    const session = await startSession(h.tenant.client);
    const before = await latestVersion(session.id);
    const { lose, attempts } = losingFirstAnswer();
    const callId = await ask(provider, stream, lose, session.id);

    expect(attempts.map((a) => a.retryCount)).toEqual(['0', '1']);
    const [lost, retry] = attempts as [Attempt, Attempt];
    // One provider call; the retry got the first attempt's answer, its bytes, status and headers (the provider's
    // request id, our x-ph-request-id of the call recorded), marked replayed.
    expect(modelCalls()).toHaveLength(1);
    expect(retry.body).toBe(lost.body);
    expect(retry.status).toBe(lost.status);
    for (const name of ['content-type', 'request-id', 'x-request-id', 'x-ph-request-id']) expect(retry.headers.get(name), name).toBe(lost.headers.get(name));
    expect(lost.headers.get('x-ph-request-id')).toMatch(/^req_/);
    expect(lost.headers.get('x-ph-replayed')).toBeNull();
    expect(retry.headers.get('x-ph-replayed')).toBe('true');
    // A chat stream's usage chunk, asked of the provider by the proxy, stays hidden from the client on the replay too.
    if (provider === 'openai' && stream) {
      expect(modelCalls()[0]!.response).toContain('"choices":[]');
      expect(retry.body).not.toContain('"choices":[]');
    }
    expect(await appends()).toContain('ph_proxy_session_appends_total{result="replayed"} 1');
    // The retry is no call of its own: one recorded request.
    expect(((await h.tenant.client.get('/v1/requests')).json as { requests: unknown[] }).requests).toHaveLength(1);

    // One new version, extending the one before; its reply is the one the client got.
    expect(await latestVersion(session.id)).toBe(before + 1);
    const messages = await kept(session.id);
    expect(messages.slice(0, -2)).toEqual(await kept(session.id, before));
    expect(messages.slice(-2).map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(messages.at(-1)!.content.find((b) => b.type === 'tool_use')!.id).toBe(callId);

    // The agent answers the call it got: it pairs with the session's last reply.
    await answerTool(provider, session.id, callId);
    expect(await latestVersion(session.id)).toBe(before + 2);
    expect((await kept(session.id)).slice(-4).map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
  });

  it('a retry of the retry, its replayed answer lost too, gets the same answer again: still one provider call, one turn', async () => {
    h = await startHarness();
    const session = await startSession(h.tenant.client);
    const { lose, attempts } = losingFirstAnswer(2);
    const callId = await ask('openai', false, lose, session.id);
    expect(attempts.map((a) => a.retryCount)).toEqual(['0', '1', '2']);
    expect(attempts.map((a) => a.headers.get('x-ph-replayed'))).toEqual([null, 'true', 'true']);
    expect(new Set(attempts.map((a) => a.body)).size).toBe(1);
    expect(modelCalls()).toHaveLength(1);
    const messages = await kept(session.id);
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(messages[1]!.content.find((b) => b.type === 'tool_use')!.id).toBe(callId);
  });

  it(`an answer over ${ANSWER_CAP} bytes is not kept: the retry is a call of its own, appended again`, async () => {
    const filler = 'x'.repeat(ANSWER_CAP);
    h = await startHarness({ rewrite: (body, type) => (type.includes('json') ? JSON.stringify({ ...JSON.parse(body), filler }) : body) });
    const session = await startSession(h.tenant.client);
    const { lose, attempts } = losingFirstAnswer();
    const openai = new OpenAI({ apiKey: 'sk-openai-test', baseURL: `${h.url}/proxy/openai/v1`, maxRetries: 2, fetch: lose, defaultHeaders: { 'x-ph-key': h.key, 'x-ph-session': session.id } });
    await openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'What is a prompt cache?' }] });
    expect(attempts.map((a) => a.retryCount)).toEqual(['0', '1']);
    expect(attempts[0]!.body.length).toBeGreaterThan(ANSWER_CAP);
    expect(attempts[1]!.headers.get('x-ph-replayed')).toBeNull();
    expect(modelCalls()).toHaveLength(2);
    expect((await kept(session.id)).map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(await appends()).not.toContain('result="replayed"');
  });

  it('the same question again without a retry count (another call, another client) is a turn of its own', async () => {
    h = await startHarness();
    const session = await startSession(h.tenant.client);
    const openai = h.openai({ headers: { 'x-ph-session': session.id } });
    for (let i = 0; i < 2; i++) await openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'yes' }] });
    expect((await kept(session.id)).map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(modelCalls()).toHaveLength(2);
  });

  it('a retry whose first attempt failed before any answer is a turn of its own, even repeating the turn before', async () => {
    h = await startHarness();
    const session = await startSession(h.tenant.client);
    const openai = h.openai({ headers: { 'x-ph-session': session.id } });
    await openai.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'yes' }] });
    // The next "yes": its first attempt is refused by the provider (429), the SDK retries with a retry count of 1.
    let attempts = 0;
    const first429: typeof fetch = (input, init) => {
      const headers = new Headers(init?.headers);
      if (attempts++ === 0) headers.set('x-simulator-status', '429');
      return fetch(input, { ...init, headers });
    };
    const retrying = new OpenAI({ apiKey: 'sk-openai-test', baseURL: `${h.url}/proxy/openai/v1`, maxRetries: 2, fetch: first429, defaultHeaders: { 'x-ph-key': h.key, 'x-ph-session': session.id, 'retry-after-ms': '0' } });
    await retrying.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'yes' }] });
    expect(attempts).toBe(2);
    expect(modelCalls()).toHaveLength(3);
    expect((await kept(session.id)).map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
  });
});
