// Which thinking blocks sent back a Claude model reads (src/domain/thinking.ts): older models strip earlier turns'
// thinking from context, newer ones keep it; under preserved thinking's model check a model drops another model's
// blocks without an error. Through the proxy with the official SDK and the simulator: the estimate, the simulator's
// count, count_tokens and the report agree, and a session's bytes are the same whatever the model.

import Anthropic from '@anthropic-ai/sdk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mintBundle, mintSystem, mintTools, startSession } from '../helpers/factories';
import { LONG_SYSTEM } from '../helpers/scenario';
import { committed, rejection, startHarness, type Harness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const MINUTE = 60_000;
const ENABLED: Anthropic.ThinkingConfigParam = { type: 'enabled', budget_tokens: 1024 };
const ADAPTIVE: Anthropic.ThinkingConfigParam = { type: 'adaptive' };
interface Sent {
  content: Anthropic.ContentBlock[];
  requestId: string;
  warnings: string | null;
}

/** A session on a tools and system bundle, and a turn through the proxy (streamed or not) on a model. */
async function setup(stream = false) {
  const client = h.tenant.client;
  const bundle = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, LONG_SYSTEM)).id]);
  const session = await startSession(client, { base: bundle.id });
  const sdk = h.anthropic({ headers: { 'x-ph-session': session.id } });
  const send = async (model: string, thinking: Anthropic.ThinkingConfigParam, content: Anthropic.MessageParam['content']): Promise<Sent> => {
    const params = { model, max_tokens: 4096, thinking, messages: [{ role: 'user' as const, content }] };
    const { data, response } = stream ? await sdk.messages.stream(params).withResponse() : await sdk.messages.create(params).withResponse();
    const message = stream ? await (data as ReturnType<typeof sdk.messages.stream>).finalMessage() : (data as Anthropic.Message);
    h.clock.advance(MINUTE);
    return { content: message.content, requestId: response.headers.get('x-ph-request-id')!, warnings: response.headers.get('x-ph-warnings') };
  };
  /** A question and its tool round: two requests. */
  const round = async (model: string, thinking: Anthropic.ThinkingConfigParam, city: string) => {
    const call = await send(model, thinking, `Use get_weather for ${city}.`);
    const id = (call.content.find((b) => b.type === 'tool_use') as Anthropic.ToolUseBlock).id;
    return [call, await send(model, thinking, [{ type: 'tool_result', tool_use_id: id, content: `${city}: cold.` }])];
  };
  return { client, bundle, session, sdk, send, round };
}

const requestOf = async (id: string) => (await h.tenant.client.get(`/v1/requests/${id}`)).json;
const upstreamCalls = () => h.tap.filter((e) => e.method === 'POST' && e.path.endsWith('/v1/messages'));
/** A request body as the provider got it, without some of its thinking blocks (`drop`: by message index). */
function withoutThinking(body: string, drop: (message: number, block: { signature?: string }) => boolean) {
  const b = JSON.parse(body) as { messages: Array<{ content: unknown }> } & Record<string, unknown>;
  const messages = b.messages.map((m, i) => (Array.isArray(m.content) ? { ...m, content: m.content.filter((x: { type: string; signature?: string }) => x.type !== 'thinking' || !drop(i, x)) } : m));
  const { max_tokens: _max, ...rest } = b;
  return { ...rest, messages } as unknown as Anthropic.MessageCountTokensParams;
}

describe("earlier turns' thinking: stripped by older models, kept by newer ones", () => {
  it.each([
    ['claude-sonnet-4-5', 'stripped'],
    ['claude-sonnet-4-6', 'kept'],
  ])('%s (%s): a thinking tool loop over three questions is estimated as the simulator counts it, and reported without unconfirmed or bonus tokens', async (model, rule) => {
    const { client, bundle, session, sdk, send, round } = await setup();
    const sent = [...(await round(model, ENABLED, 'Oslo')), ...(await round(model, ENABLED, 'Bergen'))];
    // count_tokens through the proxy counts the session and the new question as the next request is billed.
    const counted = (await sdk.messages.countTokens({ model, thinking: ENABLED, messages: [{ role: 'user', content: 'Use get_weather for Tromsø.' }] })).input_tokens;
    sent.push(await send(model, ENABLED, 'Use get_weather for Tromsø.'));
    await committed(h);
    const requests = await Promise.all(sent.map((s) => requestOf(s.requestId)));
    for (const { outcome, usage } of requests) expect(outcome.estimated_prompt_tokens).toBe(usage.total_prompt_tokens);
    expect(requests[4].usage.total_prompt_tokens).toBe(counted);

    // The bytes carry every thinking block on either model; the count of a new question is the body's without the
    // earlier turns' on the model that strips them, with them on the one that keeps them.
    const calls = upstreamCalls();
    for (const s of sent.slice(0, 3)) for (const later of calls.slice(sent.indexOf(s) + 1)) expect(later.body).toContain(JSON.stringify((s.content[0] as Anthropic.ThinkingBlock).signature));
    const bare = h.anthropic();
    const stripped = (await bare.messages.countTokens(withoutThinking(calls[2]!.body, () => true))).input_tokens;
    if (rule === 'stripped') expect(requests[2].usage.total_prompt_tokens).toBe(stripped);
    else expect(requests[2].usage.total_prompt_tokens - stripped).toBeGreaterThan(20);
    // During the tool loop the loop's own thinking is read by both.
    const loop = (await bare.messages.countTokens(withoutThinking(calls[3]!.body, (m) => m < 4))).input_tokens;
    if (rule === 'stripped') expect(requests[3].usage.total_prompt_tokens).toBe(loop);
    else expect(requests[3].usage.total_prompt_tokens).toBeGreaterThan(loop);

    const bnd = (await client.get(`/v1/reports/handles/${bundle.id}`)).json;
    expect(bnd.tokens).toMatchObject({ unconfirmed: 0, bonus: 0, unknown: 0, drift: 0 });
    expect(bnd.tokens.captured).toBe(bnd.tokens.predicted);
    const ses = (await client.get(`/v1/reports/handles/${session.id}`)).json;
    expect(ses.tokens).toMatchObject({ unconfirmed: 0, bonus: 0, unknown: 0 });
    expect(ses.tokens.captured).toBeGreaterThan(0);
    if (rule === 'kept') expect(ses.tokens.drift).toBe(0);
    else {
      // A new question after a tool loop: the cached prefix held the loop's thinking, which the model no longer reads;
      // the finding says so, at the first session batch that held some (the first turn's), not at a changed byte.
      expect(ses.tokens.drift).toBeGreaterThan(0);
      expect(requests[2].outcome.drift).toMatchObject({ thinking: 'earlier_turn', handle: `${session.id}@2`, segment: 2 });
      expect(requests[2].outcome.drift.now).toEqual(requests[2].outcome.drift.before);
      expect(requests[4].outcome.drift).toMatchObject({ thinking: 'earlier_turn' });
      expect(requests[3].outcome.drift).toBeNull();
      // The dashboard says the same, on the request's page and the session's.
      const ui = async (path: string) => (await h.t.app.request(path, { headers: { cookie: `ph_ui_key=${h.key}` } })).text();
      expect(await ui(`/ui/requests/${sent[2]!.requestId}`)).toMatch(/data-drift-thinking[\s\S]*the model strips earlier turns' thinking once a new question follows a tool loop: from segment <b>#3<\/b> on[^<]*nothing in the agent to change: a model that keeps earlier turns' thinking, Sonnet 4.6 or Opus 4.5 and later, reads it\)/);
      expect(await ui(`/ui/handles/${session.id}`)).toContain("the bytes are the same, but the model strips earlier turns' thinking");
    }
  });
});

describe('a session continued on another model: thinking blocks bound to the model that produced them', () => {
  it.each([false, true])('stream=%s: Claude Opus 5.5 drops Claude Fable 5.1\'s blocks without an error; the proxy says so, the estimate leaves them out; back on Fable 5.1 they are read again', async (stream) => {
    const { client, session, send, round } = await setup(stream);
    const fable = await round('claude-fable-5-1', ADAPTIVE, 'Oslo');
    // Kept with the model that produced them (ours: never sent).
    const kept = (await client.get(`/v1/handles/${session.id}/expand?format=neutral`)).json.messages;
    expect(kept[1].content[0]).toMatchObject({ type: 'thinking', provider: 'anthropic', model: 'claude-fable-5-1' });
    expect((await client.get(`/v1/handles/${session.id}/expand?format=anthropic`)).text).not.toContain('claude-fable-5-1');

    const opus = await send('claude-opus-5-5', ADAPTIVE, 'Use get_weather for Bergen.');
    expect(opus.warnings).toBe('thinking_not_read');
    expect(fable.every((s) => s.warnings === null)).toBe(true);
    // Sent all the same, byte for byte: the session's bytes do not depend on the model.
    const calls = upstreamCalls();
    for (const s of fable) expect(calls[2]!.body).toContain(JSON.stringify((s.content[0] as Anthropic.ThinkingBlock).signature));
    const opusDone = await send('claude-opus-5-5', ADAPTIVE, [{ type: 'tool_result', tool_use_id: (opus.content.find((b) => b.type === 'tool_use') as Anthropic.ToolUseBlock).id, content: 'Bergen: cold.' }]);
    expect(opusDone.warnings).toBe('thinking_not_read');
    // Claude Fable 5.1 reads Claude Opus 5.5's blocks (on the Claude API) and its own: nothing left unread.
    const back = await send('claude-fable-5-1', ADAPTIVE, 'Use get_weather for Tromsø.');
    expect(back.warnings).toBeNull();
    await committed(h);

    const [o, od, b] = await Promise.all([opus, opusDone, back].map((s) => requestOf(s.requestId)));
    for (const r of [o, od, b]) expect(r.outcome.estimated_prompt_tokens).toBe(r.usage.total_prompt_tokens);
    // What Opus 5.5 was billed for is the conversation without Fable 5.1's thinking; Fable 5.1 reads all of it.
    const bare = h.anthropic();
    const fableSigned = new Set(fable.map((s) => (s.content[0] as Anthropic.ThinkingBlock).signature));
    expect(o.usage.total_prompt_tokens).toBe((await bare.messages.countTokens(withoutThinking(calls[2]!.body, (_, x) => fableSigned.has(x.signature!)))).input_tokens);
    const all = upstreamCalls()[4]!.body;
    expect(b.usage.total_prompt_tokens).toBe((await bare.messages.countTokens(withoutThinking(all, () => false))).input_tokens);
    // The render names the producer and the segment of its first block.
    const rendered = await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-opus-5-5', max_tokens: 64, prefix: [session.id], messages: [{ role: 'user', content: 'And Alta?' }] } });
    expect(rendered.json.warnings).toEqual([{ code: 'thinking_not_read', segment: 2, kind: 'thinking', text: 'claude-fable-5-1', detail: expect.stringContaining('claude-opus-5-5 does not read') }]);
  });

  it("a model without preserved thinking's own blocks (Claude Sonnet 4.6's) are not read by Claude Fable 5.1 either: the simulator drops them as the estimate does", async () => {
    const { send, round } = await setup();
    const sonnet = await round('claude-sonnet-4-6', ENABLED, 'Oslo');
    const fable = await send('claude-fable-5-1', ADAPTIVE, 'Use get_weather for Bergen.');
    expect(fable.warnings).toBe('thinking_not_read');
    await committed(h);
    const r = await requestOf(fable.requestId);
    expect(r.outcome.estimated_prompt_tokens).toBe(r.usage.total_prompt_tokens);
    const signed = new Set(sonnet.map((s) => (s.content[0] as Anthropic.ThinkingBlock).signature));
    const body = upstreamCalls()[2]!.body;
    expect(r.usage.total_prompt_tokens).toBe((await h.anthropic().messages.countTokens(withoutThinking(body, (_, x) => signed.has(x.signature!)))).input_tokens);
    expect(r.usage.total_prompt_tokens).toBeLessThan((await h.anthropic().messages.countTokens({ ...withoutThinking(body, () => false), model: 'claude-sonnet-4-6' })).input_tokens);
  });

  it("a changed prefix before the session's thinking (another system prompt): refused before the provider is called, naming the block and what changed, where the provider would answer its 400; with drop_block, sent and answered", async () => {
    const { client, session, sdk, round } = await setup();
    const loop = await round('claude-fable-5-1', ADAPTIVE, 'Oslo');
    // Each block is kept with the digests of the prefix it was produced under (ours: never sent).
    const kept = (await client.get(`/v1/handles/${session.id}/expand?format=neutral`)).json.messages;
    expect(kept[1].content[0].prefix).toEqual({ tools: expect.stringMatching(/^[0-9a-f]{64}$/), system: expect.stringMatching(/^[0-9a-f]{64}$/), messages: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(kept[3].content[0].prefix.system).toBe(kept[1].content[0].prefix.system);
    expect((await client.get(`/v1/handles/${session.id}/expand?format=anthropic`)).text).not.toContain('"prefix"');
    expect(loop.every((s) => s.warnings === null)).toBe(true);
    const version = (await client.get(`/v1/handles/${session.id}`)).json.version;
    const norwegian = { model: 'claude-fable-5-1', max_tokens: 4096, system: 'Answer in Norwegian.', messages: [{ role: 'user' as const, content: 'And Bergen?' }] };
    const ask = (thinking: object) => sdk.messages.create({ ...norwegian, thinking: thinking as Anthropic.ThinkingConfigParam });

    // What the provider answers the body as rendered: its 400 (the simulator, called directly, as before this check).
    const rendered = await client.post('/v1/render', { format: 'anthropic', request: { ...norwegian, thinking: ADAPTIVE, prefix: [session.id] } });
    expect(rendered.status).toBe(409);
    const direct = new Anthropic({ apiKey: 'sk-ant-test', baseURL: h.upstreamUrl, maxRetries: 0 });
    const body = (await client.post('/v1/render', { format: 'anthropic', request: { ...norwegian, thinking: { ...ADAPTIVE, block_binding: { prefix_mismatch_behavior: 'drop_block' } }, prefix: [session.id] } })).json.body;
    const upstream400 = await rejection(direct.messages.create({ ...body, thinking: ADAPTIVE }));
    expect(upstream400).toBeInstanceOf(Anthropic.BadRequestError);
    expect(upstream400.error.error.message).toBe('messages.1.content.0: Invalid `signature` in `thinking` block. The block is bound to a different conversation. Remove the block, or set `thinking.block_binding.prefix_mismatch_behavior` to "drop_block".');

    // Through the proxy: our 400 (the provider's status, its SDK class), the provider not called, nothing appended.
    const calls = upstreamCalls().length;
    const refused = await rejection(ask(ADAPTIVE));
    expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
    expect(refused.status).toBe(400);
    const blocks = [
      { path: 'messages.1.content.0', source: `${session.id}@2`, changed: ['system'] },
      { path: 'messages.3.content.0', source: `${session.id}@3`, changed: ['system'] },
    ];
    expect(refused.error).toMatchObject({ status: 400, code: 'thinking_prefix_changed', blocks, errors: [{ pointer: '/system', detail: 'changed since the thinking block at messages.1.content.0 was produced' }] });
    expect(refused.message).toContain(`\`system\` changed since the thinking block at messages.1.content.0 (kept in ${session.id}@2) was produced: claude-fable-5-1 checks`);
    expect(refused.message).toContain('the thinking block after it is invalid with it');
    expect(refused.message).toContain('prefix_mismatch_behavior to \\"drop_block\\"');
    expect(rendered.json).toMatchObject({ status: 409, code: 'thinking_prefix_changed', blocks, errors: [{ pointer: '/request/system' }] });
    expect(upstreamCalls()).toHaveLength(calls);
    expect((await client.get(`/v1/handles/${session.id}`)).json.version).toEqual(version);
    // count_tokens renders the same way: refused alike.
    const counted = await rejection(sdk.messages.countTokens({ model: norwegian.model, system: norwegian.system, thinking: ADAPTIVE, messages: norwegian.messages }));
    expect(counted.error).toMatchObject({ status: 400, code: 'thinking_prefix_changed', blocks });
    expect(h.tap.filter((e) => e.path.includes('count_tokens'))).toHaveLength(0);
    // Another tools list is named so too.
    const otherTools = await rejection(sdk.messages.create({ model: 'claude-fable-5-1', max_tokens: 4096, thinking: ADAPTIVE, tools: [{ name: 'get_time', description: 'The time.', input_schema: { type: 'object', properties: {} } }], messages: [{ role: 'user', content: 'And Bergen?' }] }));
    expect(otherTools.error).toMatchObject({ code: 'thinking_prefix_changed', blocks: [{ changed: ['tools'] }, { changed: ['tools'] }], errors: [{ pointer: '/tools' }] });

    // Told to drop what no longer matches, the request goes, and the API answers without those blocks.
    const answered = await ask({ ...ADAPTIVE, block_binding: { prefix_mismatch_behavior: 'drop_block' } });
    expect(answered.content.map((b) => b.type)).toEqual(['thinking', 'text']);
    expect(upstreamCalls()).toHaveLength(calls + 1);
    // That answer's thinking, appended, is bound to the Norwegian prompt: back on the first, it is the one refused
    // (Anthropic: the setting is not stored between requests; send it on every later one).
    const back = { model: 'claude-fable-5-1', max_tokens: 4096, messages: [{ role: 'user' as const, content: 'And Tromsø?' }] };
    const again = await rejection(sdk.messages.create({ ...back, thinking: ADAPTIVE }));
    expect(again.error).toMatchObject({ code: 'thinking_prefix_changed', blocks: [{ path: 'messages.5.content.0', source: `${session.id}@4`, changed: ['system'] }] });
    const keptBack = await sdk.messages.create({ ...back, thinking: { ...ADAPTIVE, block_binding: { prefix_mismatch_behavior: 'drop_block' } } as Anthropic.ThinkingConfigParam });
    expect(keptBack.content.map((b) => b.type)).toEqual(['thinking', 'text']);
  });

  it("with drop_block, the blocks the API drops are sent but not counted: the estimate is what the simulator billed, segment by segment, and the proxy and the render name them (thinking_dropped)", async () => {
    const { client, session, sdk, round } = await setup();
    const loop = await round('claude-fable-5-1', ADAPTIVE, 'Oslo');
    const DROP = { ...ADAPTIVE, block_binding: { prefix_mismatch_behavior: 'drop_block' } } as Anthropic.ThinkingConfigParam;
    const norwegian = { model: 'claude-fable-5-1', max_tokens: 4096, system: 'Answer in Norwegian.', thinking: DROP, messages: [{ role: 'user' as const, content: 'And Bergen?' }] };
    // The render of that request names the blocks the check fails: the loop's two.
    const named = (await client.post('/v1/render', { format: 'anthropic', request: { ...norwegian, prefix: [session.id] } })).json.warnings;
    expect(named).toMatchObject([{ code: 'thinking_dropped', text: 'messages.1.content.0, messages.3.content.0' }]);
    const calls = upstreamCalls().length;
    // Through the proxy, with the beta under which Anthropic lists what it removed: the same blocks.
    const { data, response } = await sdk.beta.messages.create({ ...norwegian, betas: ['thinking-binding-controls-2026-08-01'] } as Anthropic.Beta.MessageCreateParamsNonStreaming).withResponse();
    expect(data.content.map((b) => b.type)).toEqual(['thinking', 'text']);
    expect(data.input_transformations).toEqual([
      { type: 'thinking_dropped', path: 'messages.1.content.0', reason: 'prefix_binding_mismatch' },
      { type: 'thinking_dropped', path: 'messages.3.content.0', reason: 'prefix_binding_mismatch' },
    ]);
    expect(response.headers.get('x-ph-warnings')).toBe('thinking_dropped');
    h.clock.advance(MINUTE);
    await committed(h);
    const r = await requestOf(response.headers.get('x-ph-request-id')!);

    // What the simulator billed is the body sent without the loop's two thinking blocks (both are sent)…
    const sent = upstreamCalls()[calls]!.body;
    const signed = loop.map((s) => (s.content[0] as Anthropic.ThinkingBlock).signature);
    for (const sig of signed) expect(sent).toContain(JSON.stringify(sig));
    const bare = h.anthropic();
    const billed = r.usage.total_prompt_tokens;
    expect(billed).toBe((await bare.messages.countTokens(withoutThinking(sent, (_, x) => signed.includes(x.signature!)))).input_tokens);
    // …and the estimate is that: no segment scaled to fit the provider's total (counting the dropped blocks put the
    // difference onto the others).
    expect(r.outcome.estimated_prompt_tokens).toBe(billed);
    expect(r.outcome.segments.map((s: { start: number; end: number }) => [s.start, s.end])).toEqual(r.segments.map((s: { token_start: number; token_end: number }) => [s.token_start, s.token_end]));
    expect(r.outcome.total_mismatch).toBeUndefined();
    // The prediction and the provider agree on what is read: the tools, then nothing of the session past the new system prompt.
    expect(r.outcome.predicted.read).toBe(r.usage.cache_read_tokens);

    // The render names the blocks and the segment of the first (the session's batch 2: messages.1).
    const rendered = await client.post('/v1/render', { format: 'anthropic', request: { ...norwegian, prefix: [session.id], messages: [{ role: 'user', content: 'And Alta?' }] } });
    expect(rendered.status).toBe(200);
    const first = rendered.json.segments.findIndex((s: { source: string }) => s.source === `${session.id}@2`);
    expect(first).toBeGreaterThan(0);
    const warning = rendered.json.warnings.find((w: { code: string }) => w.code === 'thinking_dropped');
    expect(warning).toEqual({
      code: 'thinking_dropped',
      segment: first,
      kind: 'thinking',
      // The loop's two, and the Norwegian answer's, kept in the session since: produced under this very prompt, but
      // after the first failing block, invalid with it (Anthropic drops every later thinking block).
      text: 'messages.1.content.0, messages.3.content.0, messages.5.content.0',
      detail: expect.stringContaining('`system` changed since the thinking block at messages.1.content.0'),
    });
    // Without drop_block, the same render is refused, naming the same blocks.
    const refused = await client.post('/v1/render', { format: 'anthropic', request: { ...norwegian, thinking: ADAPTIVE, prefix: [session.id], messages: [{ role: 'user', content: 'And Alta?' }] } });
    expect(refused.json.blocks.map((b: { path: string }) => b.path)).toEqual(['messages.1.content.0', 'messages.3.content.0', 'messages.5.content.0']);
  });

  it.each([false, true])('stream=%s: the unchanged prefix: a tool loop on Claude Fable 5.1 goes on through the session, read from the cache, the bytes sent those of the session', async (stream) => {
    const { client, session, round } = await setup(stream);
    await round('claude-fable-5-1', ADAPTIVE, 'Oslo');
    const kept = (await client.get(`/v1/handles/${session.id}/expand?format=neutral`)).json.messages;
    expect(kept[3].content[0]).toMatchObject({ type: 'thinking', model: 'claude-fable-5-1', prefix: { system: expect.any(String) } });
    const second = await round('claude-fable-5-1', ADAPTIVE, 'Bergen');
    expect(second.every((s) => s.warnings === null)).toBe(true);
    await committed(h);
    const last = await requestOf(second[1]!.requestId);
    expect(last.outcome.estimated_prompt_tokens).toBe(last.usage.total_prompt_tokens);
    expect(last.usage.cache_read_tokens).toBeGreaterThan(0);
    expect(last.outcome.predicted.read).toBe(last.usage.cache_read_tokens);
    // The session as sent (the fourth call, on its version 4): its anthropic expansion's messages, no digest among them.
    const sent = JSON.parse(upstreamCalls()[3]!.body) as { messages: unknown[] };
    const expansion = JSON.parse((await client.get(`/v1/handles/${session.id}@4/expand?format=anthropic`)).text) as { messages: unknown[] };
    expect(expansion.messages).toHaveLength(6);
    // (The service's cache breakpoint on the session's last block aside.)
    const unmarked = (v: unknown) => JSON.parse(JSON.stringify(v, (k, x: unknown) => (k === 'cache_control' ? undefined : x))) as unknown;
    expect(unmarked(sent.messages.slice(0, expansion.messages.length))).toEqual(expansion.messages);
    expect(upstreamCalls()[3]!.body).not.toContain('"prefix"');
  });

  it('a session kept before prefixes were (its blocks without one): sent as before, and the provider answers its own 400', async () => {
    const { client, bundle, session, round } = await setup();
    await round('claude-fable-5-1', ADAPTIVE, 'Oslo');
    const messages = (await client.get(`/v1/handles/${session.id}/expand?format=neutral`)).json.messages.map((m: { content: string | Array<Record<string, unknown>> }) => ({
      ...m,
      content: typeof m.content === 'string' ? m.content : m.content.map(({ prefix: _prefix, ...b }) => b),
    }));
    const old = await startSession(client, { base: bundle.id, messages });
    const sdk = h.anthropic({ headers: { 'x-ph-session': old.id } });
    const calls = upstreamCalls().length;
    const refused = await rejection(sdk.messages.create({ model: 'claude-fable-5-1', max_tokens: 4096, system: 'Answer in Norwegian.', thinking: ADAPTIVE, messages: [{ role: 'user', content: 'And Bergen?' }] }));
    expect(refused).toBeInstanceOf(Anthropic.BadRequestError);
    expect(refused.error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: expect.stringMatching(/^messages\.1\.content\.0: Invalid `signature` in `thinking` block\. The block is bound to a different conversation/) } });
    expect(upstreamCalls()).toHaveLength(calls + 1);
  });
});
