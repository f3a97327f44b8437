// A conversation's earlier turns are a cached prefix however they are sent: the
// whole history inline on every turn, or each turn inline once and then from a
// session the service renders (in its own spelling). The provider reads them;
// reconciliation must predict that read, not call it `bonus` or the write `cold`.

import type Anthropic from '@anthropic-ai/sdk';
import type OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mintArtifact, mintBundle, mintSystem, mintTools, startSession } from '../helpers/factories';
import { LONG_SYSTEM } from '../helpers/scenario';
import { committed, startHarness, type Harness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const MINUTE = 60_000;
/** A tool output of digits: o200k counts it about 1.6 times what ~4 bytes a token would guess. */
const TABLE = Array.from({ length: 300 }, (_, i) => `row ${i}: parcel ${i * 7} at depot ${i % 13}`).join('\n');

interface Segment {
  source: string;
  start: number;
  end: number;
  opportunity: number;
  classes: Record<string, number>;
}
interface Recorded {
  id: string;
  segments: Array<{ section: string; token_start: number; token_end: number; tokens_estimated: boolean }>;
  usage: { cache_read_tokens: number; total_prompt_tokens: number };
  prediction: { read_tokens: number };
  outcome: {
    segments: Segment[];
    predicted: { read: number; write: number };
    drift: { segment: number; previous_request: string; byte_offset?: number; settings?: Array<{ name: string; now: unknown; before: unknown }> } | null;
  };
}

/** A dashboard page, as the tenant's browser sees it. */
const page = async (path: string) => (await h.t.app.request(path, { headers: { cookie: `ph_ui_key=${h.key}` } })).text();

async function bundle() {
  const client = h.tenant.client;
  const tools = await mintTools(client);
  const sys = await mintSystem(client, LONG_SYSTEM);
  return { client, bundle: await mintBundle(client, [tools.id, sys.id]) };
}

const sum = (r: Recorded, cls: string, source?: string) => r.outcome.segments.filter((s) => !source || s.source === source || s.source.startsWith(source)).reduce((n, s) => n + (s.classes[cls] ?? 0), 0);

async function recorded(ids: string[]): Promise<Recorded[]> {
  await committed(h);
  return Promise.all(ids.map(async (id) => (await h.tenant.client.get(`/v1/requests/${id}`)).json as Recorded));
}

describe('the whole history sent inline on every turn', () => {
  it('OpenAI chat: each turn reads the previous one whole, and reconciliation predicted it (captured, no bonus)', async () => {
    const { bundle: b } = await bundle();
    const sdk = h.openai({ headers: { 'x-ph-prefix': b.id } });
    const history: OpenAI.ChatCompletionMessageParam[] = [];
    const ids: string[] = [];
    for (const question of ['Where is order 1003?', TABLE, 'Which depot?', 'Thanks.']) {
      history.push({ role: 'user', content: question });
      const { data, response } = await sdk.chat.completions.create({ model: 'gpt-4.1', messages: history }).withResponse();
      // What the SDK hands back, sent back as it is (refusal: null, annotations: []).
      history.push(data.choices[0]!.message);
      ids.push(response.headers.get('x-ph-request-id')!);
      h.clock.advance(MINUTE);
    }
    const rows = await recorded(ids);
    for (const r of rows.slice(2)) {
      // The provider read past the bundle, into the conversation (the table included); reconciliation predicted it.
      expect(sum(r, 'captured', 'inline')).toBeGreaterThan(3000);
      expect(sum(r, 'bonus') + sum(r, 'unconfirmed')).toBe(0);
      expect(sum(r, 'captured')).toBe(r.usage.cache_read_tokens);
    }
  });

  it('Anthropic, the caller marking its newest message each turn: the earlier turns are read and predicted', async () => {
    const { bundle: b } = await bundle();
    const sdk = h.anthropic({ headers: { 'x-ph-prefix': b.id } });
    const history: Anthropic.MessageParam[] = [];
    const ids: string[] = [];
    for (const question of ['Where is order 1003?', TABLE, 'Which depot?', 'Thanks.']) {
      history.push({ role: 'user', content: question });
      // The mark moves to the newest message (as Anthropic's docs show); earlier ones are sent as plain strings again.
      const marked = history.map((m, i): Anthropic.MessageParam => (i === history.length - 1 ? { role: m.role, content: [{ type: 'text', text: m.content as string, cache_control: { type: 'ephemeral' } }] } : m));
      const { data, response } = await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 64, messages: marked }).withResponse();
      history.push({ role: 'assistant', content: (data.content[0] as Anthropic.TextBlock).text });
      ids.push(response.headers.get('x-ph-request-id')!);
      h.clock.advance(MINUTE);
    }
    const rows = await recorded(ids);
    // Turn 2 reads turn 1's first question, a message inside this turn's inline segment: placed there, not at the bundle's end.
    expect(sum(rows[1]!, 'captured')).toBe(rows[1]!.usage.cache_read_tokens);
    expect(sum(rows[1]!, 'captured', 'inline')).toBeGreaterThan(0);
    for (const r of rows.slice(1)) expect(sum(r, 'bonus') + sum(r, 'unconfirmed')).toBe(0);
    for (const r of rows.slice(2)) {
      expect(sum(r, 'captured', 'inline')).toBeGreaterThan(3000);
      expect(sum(r, 'captured')).toBe(r.usage.cache_read_tokens);
    }
    // The bundle keeps about its own size on every turn: the digits' under-estimate is not spread onto it.
    const bundleTokens = rows.map((r) => r.outcome.segments.filter((s) => s.source !== 'inline').reduce((n, s) => n + Object.values(s.classes).reduce((a, c) => a + c, 0), 0));
    for (const n of bundleTokens) expect(Math.abs(n - bundleTokens[0]!)).toBeLessThan(bundleTokens[0]! * 0.02);
  });
});

describe('a short OpenAI conversation in a session', () => {
  it.each(['openai-chat', 'openai-responses'] as const)('%s: nothing is captured that was never sent before; the prediction stays inside the prompt', async (format) => {
    const { client, bundle: b } = await bundle();
    // Questions of every length modulo the 128-token step: in some, the provider's read of the last turn ends past
    // where our estimate ends its question.
    for (let pad = 0; pad < 16; pad++) {
      const session = await startSession(client);
      const sdk = h.openai({ headers: { 'x-ph-prefix': b.id, 'x-ph-session': session.id } });
      const ids: string[] = [];
      for (const q of [`Where is order 1003? ${'Please check the depot records. '.repeat(pad)}`, 'And order 1004?', 'And 1005?']) {
        const { response } =
          format === 'openai-chat'
            ? await sdk.chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'user', content: q }] }).withResponse()
            : await sdk.responses.create({ model: 'gpt-4.1', input: q }).withResponse();
        ids.push(response.headers.get('x-ph-request-id')!);
        h.clock.advance(MINUTE);
      }
      const rows = await recorded(ids);
      for (const r of rows.slice(1)) {
        // The provider read the last turn's question (rounded to its 128-token step), never the reply sent after it.
        for (const seg of r.outcome.segments) expect(seg.classes.captured ?? 0, `pad ${pad} ${seg.source}`).toBeLessThanOrEqual(seg.opportunity);
        expect(r.outcome.predicted.read + r.outcome.predicted.write).toBeLessThanOrEqual(r.usage.total_prompt_tokens);
        expect(sum(r, 'bonus') + sum(r, 'unconfirmed')).toBe(0);
        // The artifacts counted exactly (tools, system: o200k) keep their count, however the read moved the rest
        // (messages, session batches too, take the provider's framing).
        r.segments.forEach((s, i) => {
          if (!s.tokens_estimated && s.section !== 'messages') expect(r.outcome.segments[i]!.end - r.outcome.segments[i]!.start, `pad ${pad} segment ${i}`).toBe(s.token_end - s.token_start);
        });
      }
      const rep = (await client.get(`/v1/reports/handles/${session.id}`)).json;
      expect(rep.tokens.captured).toBeLessThanOrEqual(rep.tokens.opportunity);
    }
  });
});

/** Conversation B's thinking budget raised on its third turn, after another conversation of the same scope. */
async function budgetRaisedBesideAnother(otherThinking: { type: 'enabled'; budget_tokens: number } | undefined) {
  const { client, bundle: b } = await bundle();
  const sdk = h.anthropic({ headers: { 'x-ph-prefix': b.id } });
  const mark = (history: Anthropic.MessageParam[]) =>
    history.map((m, k): Anthropic.MessageParam => (k === history.length - 1 ? { role: m.role, content: [{ type: 'text', text: m.content as string, cache_control: { type: 'ephemeral' } }] } : m));
  const ask = async (history: Anthropic.MessageParam[], thinking?: { type: 'enabled'; budget_tokens: number }) => {
    const { data, response } = await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 4096, messages: mark(history), ...(thinking ? { thinking } : {}) }).withResponse();
    h.clock.advance(MINUTE);
    return { data, id: response.headers.get('x-ph-request-id')! };
  };
  // Conversation B, two turns with a 1024 budget.
  const hb: Anthropic.MessageParam[] = [];
  const ids: string[] = [];
  for (const q of ['Where is order 1003?', TABLE]) {
    hb.push({ role: 'user', content: q });
    const { data, id } = await ask(hb, { type: 'enabled', budget_tokens: 1024 });
    hb.push({ role: 'assistant', content: data.content as Anthropic.ContentBlockParam[] });
    ids.push(id);
  }
  // Another user's conversation, same key, model and bundle.
  const other = await ask([{ role: 'user', content: 'Hello, a different customer here.' }], otherThinking);
  // Conversation B again, its budget raised: its whole history is written again (drift).
  hb.push({ role: 'user', content: 'Which depot?' });
  const last = await ask(hb, { type: 'enabled', budget_tokens: 2048 });
  const [row] = await recorded([last.id]);
  const drifted = sum(row!, 'drift', 'inline');
  return { row: row!, drifted, previous: ids[1]!, other: other.id };
}

/** Three Anthropic turns, each marking its question; the third sends `toolChoice`. The third's record. */
async function markedLoopChangingToolChoice(headers: Record<string, string>, toolChoice: Anthropic.ToolChoice): Promise<Recorded> {
  const sdk = h.anthropic({ headers });
  const ids: string[] = [];
  for (const [i, question] of ['Where is order 1003?', 'And 1004?', 'Which depot?'].entries()) {
    const extra = i === 2 ? { tool_choice: toolChoice } : {};
    const { response } = await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: [{ type: 'text', text: question, cache_control: { type: 'ephemeral' } }] }], ...extra }).withResponse();
    ids.push(response.headers.get('x-ph-request-id')!);
    h.clock.advance(MINUTE);
  }
  return (await recorded(ids)).at(-1)!;
}

describe('settings the cached messages depend on', () => {
  it('a drift of inline messages beside another conversation of the scope names the change against the conversation\'s own previous turn (1024 → 2048), not the other user\'s request', async () => {
    const { row, drifted, previous } = await budgetRaisedBesideAnother(undefined);
    expect(drifted).toBeGreaterThan(3000);
    expect(row.outcome.drift).toMatchObject({ previous_request: previous, settings: [{ name: 'thinking', before: { type: 'enabled', budget_tokens: 1024 }, now: { type: 'enabled', budget_tokens: 2048 } }] });
  });

  it('a settings drift is not missed when the other conversation happens to use the new budget', async () => {
    const { row, drifted } = await budgetRaisedBesideAnother({ type: 'enabled', budget_tokens: 2048 });
    expect(drifted).toBeGreaterThan(3000);
    expect(row.outcome.drift?.settings).toEqual([{ name: 'thinking', before: { type: 'enabled', budget_tokens: 1024 }, now: { type: 'enabled', budget_tokens: 2048 } }]);
  });
  it('Anthropic: a changed tool_choice invalidates the messages, not the tools and system; the prediction agrees', async () => {
    const { bundle: b } = await bundle();
    const sdk = h.anthropic({ headers: { 'x-ph-prefix': b.id } });
    const history: Anthropic.MessageParam[] = [];
    const ids: string[] = [];
    const questions = ['Where is order 1003?', TABLE, 'Which depot?'];
    for (const [i, question] of questions.entries()) {
      history.push({ role: 'user', content: question });
      const marked = history.map((m, k): Anthropic.MessageParam => (k === history.length - 1 ? { role: m.role, content: [{ type: 'text', text: m.content as string, cache_control: { type: 'ephemeral' } }] } : m));
      // The last turn forces a tool call: another tool_choice than the turns before.
      const extra = i === questions.length - 1 ? { tool_choice: { type: 'any' as const } } : {};
      const { data, response } = await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 64, messages: marked, ...extra }).withResponse();
      history.push({ role: 'assistant', content: data.content as Anthropic.ContentBlockParam[] });
      ids.push(response.headers.get('x-ph-request-id')!);
      h.clock.advance(MINUTE);
    }
    const rows = await recorded(ids);
    const last = rows.at(-1)!;
    // The provider read the bundle (tools and system) only; reconciliation predicted the same.
    expect(last.usage.cache_read_tokens).toBe(sum(last, 'captured', 'art_') + sum(last, 'captured', 'bnd_'));
    expect(sum(last, 'captured', 'inline')).toBe(0);
    expect(sum(last, 'bonus') + sum(last, 'unconfirmed')).toBe(0);
    expect(sum(rows[1]!, 'captured', 'inline')).toBeGreaterThan(0);
    // The earlier turns were referenced before: losing them to the setting is a leak (drift), not a first write (cold).
    expect(sum(last, 'drift', 'inline')).toBeGreaterThan(3000);
    expect(sum(last, 'cold', 'inline')).toBeLessThan(200);
    // The drift is explained by the setting, at the first segment of the messages (the bytes before are the same).
    const drift = last.outcome.drift!;
    expect(drift).toMatchObject({ previous_request: ids[1], settings: [{ name: 'tool_choice', before: null, now: { type: 'any' } }] });
    expect(last.segments[drift.segment]!.section).toBe('messages');
    expect(last.segments[drift.segment - 1]!.section).not.toBe('messages');
    expect(drift.byte_offset).toBeUndefined();
    // The turn before changed no setting: its new messages were simply new, with nothing to explain.
    expect(rows[1]!.outcome.drift).toBeNull();
    const html = await page(`/ui/requests/${last.id}`);
    expect(html).toContain('data-drift-settings');
    expect(html).toMatch(/<code>tool_choice<\/code> changed \(<code data-setting-before="tool_choice">not sent<\/code> → <code data-setting-now="tool_choice">\{&quot;type&quot;:&quot;any&quot;\}<\/code>\)/);
  });

  it('Anthropic: after a changed tool_choice the provider reads the system prompt only; its read is not moved onto the session batch behind it (no bonus)', async () => {
    const client = h.tenant.client;
    const sys = await mintSystem(client, LONG_SYSTEM);
    const session = await startSession(client);
    const last = await markedLoopChangingToolChoice({ 'x-ph-prefix': sys.id, 'x-ph-session': session.id }, { type: 'auto' });
    expect(last.usage.cache_read_tokens).toBeGreaterThan(0);
    expect(sum(last, 'captured', `${sys.id}@`)).toBe(last.usage.cache_read_tokens);
    expect(sum(last, 'bonus') + sum(last, 'unconfirmed')).toBe(0);
    expect(sum(last, 'drift', `${session.id}@`)).toBeGreaterThan(0);
  });

  it("Anthropic: a changed tool_choice behind a bundle's document is named on the reports of the document, the bundle and the session", async () => {
    const client = h.tenant.client;
    const doc = await mintArtifact(client, 'document', TABLE);
    const b = await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client, LONG_SYSTEM)).id, doc.id]);
    const session = await startSession(client);
    const last = await markedLoopChangingToolChoice({ 'x-ph-prefix': b.id, 'x-ph-session': session.id }, { type: 'any' });
    // The document (a message) drifts first, then the session after it: one finding, on each handle it cost.
    expect(sum(last, 'drift', `${doc.id}@`)).toBeGreaterThan(1000);
    expect(sum(last, 'drift', `${session.id}@`)).toBeGreaterThan(0);
    expect(last.outcome.drift?.settings).toEqual([{ name: 'tool_choice', before: null, now: { type: 'any' } }]);
    for (const handle of [doc.id, b.id, session.id]) {
      const rep = (await client.get(`/v1/reports/handles/${handle}`)).json;
      expect(rep.drift, handle).toHaveLength(1);
      expect(rep.drift[0], handle).toMatchObject({ request_id: last.id, settings: [{ name: 'tool_choice' }] });
    }
  });

  it('Anthropic: a changed thinking budget on a session is named on the session\'s drift findings', async () => {
    const { client, bundle: b } = await bundle();
    const session = await startSession(client);
    const sdk = h.anthropic({ headers: { 'x-ph-prefix': b.id, 'x-ph-session': session.id } });
    const ids: string[] = [];
    for (const [i, question] of ['Where is order 1003?', TABLE, 'Which depot?'].entries()) {
      const thinking = { type: 'enabled' as const, budget_tokens: i === 2 ? 2048 : 1024 };
      const { response } = await sdk.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 4096, thinking, messages: [{ role: 'user', content: [{ type: 'text', text: question, cache_control: { type: 'ephemeral' } }] }] }).withResponse();
      ids.push(response.headers.get('x-ph-request-id')!);
      h.clock.advance(MINUTE);
    }
    const rows = await recorded(ids);
    const last = rows.at(-1)!;
    expect(sum(last, 'drift', `${session.id}@`)).toBeGreaterThan(3000);
    expect(last.outcome.drift?.settings).toEqual([{ name: 'thinking', before: { type: 'enabled', budget_tokens: 1024 }, now: { type: 'enabled', budget_tokens: 2048 } }]);
    // Recorded on the session, so its report lists it.
    const rep = (await client.get(`/v1/reports/handles/${session.id}`)).json;
    expect(rep.drift).toHaveLength(1);
    expect(rep.drift[0]).toMatchObject({ request_id: last.id, previous_request_id: ids[1], settings: [{ name: 'thinking' }] });
    expect(await page(`/ui/handles/${session.id}`)).toContain('<code>thinking</code> changed');
  });
});

describe('each turn inline once, then from the session', () => {
  it('Anthropic, the caller marking its newest message each turn: the provider reads the marked question inside the next session batch, and reconciliation predicts it (the reply after it is cold, not read)', async () => {
    const { client, bundle: b } = await bundle();
    const session = await startSession(client);
    const sdk = h.anthropic({ headers: { 'x-ph-prefix': b.id, 'x-ph-session': session.id } });
    const ids: string[] = [];
    for (const q of ['one', 'two', 'three', 'four']) {
      const { response } = await sdk.messages
        .create({ model: 'claude-sonnet-4-6', max_tokens: 30, messages: [{ role: 'user', content: [{ type: 'text', text: `Question ${q}: where is order 1003?`, cache_control: { type: 'ephemeral' } }] }] })
        .withResponse();
      ids.push(response.headers.get('x-ph-request-id')!);
      h.clock.advance(MINUTE);
    }
    const rows = await recorded(ids);
    for (const r of rows.slice(1)) {
      // Each read ends at the question the turn before marked, now inside the session's newest batch: predicted whole.
      expect(r.prediction.read_tokens).toBeGreaterThan(0);
      expect(r.outcome.predicted.read).toBe(r.usage.cache_read_tokens);
      expect(sum(r, 'bonus') + sum(r, 'unconfirmed')).toBe(0);
      // The newest batch holds that question (read) and the reply to it, sent for the first time on this turn (cold).
      const newest = r.outcome.segments.filter((s) => s.source.startsWith(`${session.id}@`)).at(-1)!;
      expect(newest.classes.captured).toBeGreaterThan(0);
      expect(newest.classes.cold).toBeGreaterThan(0);
      expect(newest.opportunity).toBe(newest.classes.captured);
    }
    const rep = (await client.get(`/v1/reports/handles/${session.id}`)).json;
    expect(rep.tokens).toMatchObject({ bonus: 0, unconfirmed: 0, no_breakpoint: 0 });
    expect(rep.tokens.captured).toBe(rep.tokens.opportunity);
    expect(rep.tokens.cold).toBeGreaterThan(0);
  });

  it.each(['openai-chat', 'openai-responses'] as const)('%s: a large tool output is read on the next turn, and counted as captured in the session batch', async (format) => {
    const { client, bundle: b } = await bundle();
    const session = await startSession(client);
    const sdk = h.openai({ headers: { 'x-ph-prefix': b.id, 'x-ph-session': session.id } });
    const ids: string[] = [];
    const send = async (turn: unknown[]) => {
      const { response } =
        format === 'openai-chat'
          ? await sdk.chat.completions.create({ model: 'gpt-4.1', messages: turn as OpenAI.ChatCompletionMessageParam[] }).withResponse()
          : await sdk.responses.create({ model: 'gpt-4.1', input: turn as OpenAI.Responses.ResponseInput }).withResponse();
      ids.push(response.headers.get('x-ph-request-id')!);
      h.clock.advance(MINUTE);
    };
    // The caller's own spelling (plain strings); the session renders them as content parts.
    await send([{ role: 'user', content: 'Where is order 1003?' }]);
    await send(
      format === 'openai-chat'
        ? [{ role: 'assistant', content: 'Looking.', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] }, { role: 'tool', tool_call_id: 'c1', content: TABLE }]
        : [{ type: 'function_call', call_id: 'c1', name: 'get_weather', arguments: '{"city":"Oslo"}' }, { type: 'function_call_output', call_id: 'c1', output: TABLE }],
    );
    await send([{ role: 'user', content: 'Thanks.' }]);
    const [, second, third] = await recorded(ids);
    // Turn 3 read everything turn 2 sent (in 128-token steps): the tool output included. The 3 tokens priming the
    // reply are in turn 2's total but in no cached prefix.
    expect(third!.usage.cache_read_tokens).toBeGreaterThan(second!.usage.total_prompt_tokens - 3 - 128);
    expect(third!.prediction.read_tokens).toBeGreaterThan(0);
    expect(sum(third!, 'bonus') + sum(third!, 'unconfirmed')).toBe(0);
    // Everything read past the bundle was the session: the first question, and the call with its output.
    const inSession = sum(third!, 'captured', `${session.id}@`);
    expect(inSession).toBe(third!.usage.cache_read_tokens - sum(third!, 'captured', 'art_'));
    expect(inSession).toBeGreaterThan(3000);
    const rep = (await client.get(`/v1/reports/handles/${session.id}`)).json;
    expect(rep.tokens.bonus).toBe(0);
    expect(rep.tokens.captured).toBe(inSession);
    // The batch's content was referenced before (inline, on the turn it was sent): an opportunity, so the rate is at most 1;
    // only the tail past the provider's last 128-token step was not read, and it is below_minimum, not cold.
    expect(rep.tokens.opportunity).toBeGreaterThanOrEqual(rep.tokens.captured);
    expect(rep.capture_rate).toBeGreaterThan(0.9);
    expect(rep.capture_rate).toBeLessThanOrEqual(1);
    expect(sum(third!, 'cold', `${session.id}@`)).toBeLessThan(200);
  });
});
