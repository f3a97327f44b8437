// A coding agent's long run through a session, as README's *Sessions* tells it to: a tool loop with extended thinking
// under a `1h` mark, then compaction (a new session on the same bundle, the summary as its first messages), a fork of
// the conversation (a new session of the parent's messages) and sub-agents on the same base. With the official SDK and
// the simulator: what each first turn reads and writes, and how the report counts it.

import type Anthropic from '@anthropic-ai/sdk';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { mintBundle, mintSystem, mintTools, startSession } from '../helpers/factories';
import { LONG_SYSTEM } from '../helpers/scenario';
import { committed, startHarness, type Harness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const MODEL = 'claude-sonnet-4-6';
const THINKING = { type: 'enabled' as const, budget_tokens: 1024 };
const MINUTE = 60_000;
type Block = Anthropic.ContentBlockParam;
/** The newest block marked for an hour, as a long-running agent marks it. */
const marked = (blocks: Block[]): Block[] => [...blocks.slice(0, -1), { ...blocks[blocks.length - 1]!, cache_control: { type: 'ephemeral', ttl: '1h' } } as Block];
const file = (i: number) => Array.from({ length: 40 }, (_, k) => `export const line${k} = ${i * 100 + k};`).join('\n');

interface Segment {
  source: string;
  section: string;
  classes: Record<string, number>;
}

async function setup() {
  const client = h.tenant.client;
  const bundle = await mintBundle(client, [(await mintTools(client, 'read_file')).id, (await mintSystem(client, LONG_SYSTEM)).id]);
  return { client, bundle };
}

/** `rounds` tool rounds on a session (a question the model answers with a tool call, then its result); the request ids. */
async function toolRounds(session: string, from: number, rounds: number): Promise<string[]> {
  const sdk = h.anthropic({ headers: { 'x-ph-session': session } });
  const ids: string[] = [];
  for (let i = from; i < from + rounds; i++) {
    const ask = await sdk.messages.create({ model: MODEL, max_tokens: 4096, thinking: THINKING, messages: [{ role: 'user', content: marked([{ type: 'text', text: `Step ${i}: use read_file on src/f${i}.ts` }]) }] }).withResponse();
    expect(ask.data.content[0]!.type).toBe('thinking');
    const call = ask.data.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use')!;
    h.clock.advance(MINUTE / 6);
    const answer = await sdk.messages.create({ model: MODEL, max_tokens: 4096, thinking: THINKING, messages: [{ role: 'user', content: marked([{ type: 'tool_result', tool_use_id: call.id, content: file(i) }]) }] }).withResponse();
    ids.push(ask.response.headers.get('x-ph-request-id')!, answer.response.headers.get('x-ph-request-id')!);
    h.clock.advance(MINUTE / 6);
  }
  return ids;
}

/** A request's tokens per class, by the kind of segment: the bundle's artifacts, the session's batches, the turn's own. */
async function classesOf(id: string): Promise<Record<'art' | 'ses' | 'inline', Record<string, number>>> {
  const r = (await h.tenant.client.get(`/v1/requests/${id}`)).json;
  expect(r.status).toBe('reconciled');
  const out: Record<string, Record<string, number>> = { art: {}, ses: {}, inline: {} };
  for (const s of r.outcome.segments as Segment[]) {
    const kind = s.source.slice(0, s.source.indexOf('_') + 1 || undefined).replace('_', '') || s.source;
    for (const [k, v] of Object.entries(s.classes)) if (v) out[kind]![k] = (out[kind]![k] ?? 0) + v;
  }
  return out as Record<'art' | 'ses' | 'inline', Record<string, number>>;
}

it('compaction: a new session on the same bundle, the summary first — the bundle read, the summary written once, then read', async () => {
  const { client, bundle } = await setup();
  const parent = await startSession(client, { base: bundle.id });
  await toolRounds(parent.id, 1, 4);
  // Twenty minutes without a call: the 1h marks keep the bundle.
  h.clock.advance(20 * MINUTE);
  const summary = [
    { role: 'user', content: 'Summary of the work so far: src/f1.ts to src/f4.ts read and fixed. Go on with src/f5.ts.' },
    { role: 'assistant', content: 'Understood: going on with src/f5.ts.' },
  ];
  const compacted = await startSession(client, { base: bundle.id, messages: summary });
  const [first, second] = await toolRounds(compacted.id, 5, 1);
  await committed(h);

  const one = await classesOf(first!);
  expect(Object.keys(one.art)).toEqual(['captured']);
  expect(one.ses).toEqual({ cold: expect.any(Number) });
  const two = await classesOf(second!);
  expect(two.art).toEqual({ captured: one.art.captured });
  // The summary batch read now, after it the first turn's messages and reply.
  expect(two.ses.captured).toBeGreaterThanOrEqual(one.ses.cold!);
  // The old history is gone from the provider's request, kept in the old session.
  const sent = h.tap[h.tap.length - 1]!.body;
  expect(sent).toContain('Summary of the work so far');
  expect(sent).not.toContain('Step 1:');
  expect((await client.get(`/v1/handles/${parent.id}`)).json.version.message_count).toBe(16);
});

it("a fork: a new session of the parent's messages reads the parent's history from the cache, thinking signatures and all", async () => {
  const { client, bundle } = await setup();
  const parent = await startSession(client, { base: bundle.id });
  await toolRounds(parent.id, 1, 3);
  const history = (await client.get(`/v1/handles/${parent.id}/expand?format=neutral`)).json.messages;
  const fork = await startSession(client, { base: bundle.id, messages: history });
  const [first] = await toolRounds(fork.id, 10, 1);
  await committed(h);

  const parentCalls = h.tap.length - 2;
  const fromParent = JSON.parse(h.tap[parentCalls - 1]!.body).messages.length;
  // The fork's first call sends the parent's whole history (its last call's and that call's reply) before its question.
  expect(JSON.parse(h.tap[parentCalls]!.body).messages).toHaveLength(history.length + 1);
  expect(fromParent).toBe(history.length - 1);
  const classes = await classesOf(first!);
  expect(Object.keys(classes.art)).toEqual(['captured']);
  // The copied history: read from the parent's cache, but for its last reply, which no call of the parent had sent.
  expect(classes.ses.captured).toBeGreaterThan(10 * (classes.ses.cold ?? 0));
  expect(Object.keys(classes.ses).sort()).toEqual(['captured', 'cold']);
});

it('sub-agents on the same base after the parent: each first turn reads the bundle', async () => {
  const { client, bundle } = await setup();
  const parent = await startSession(client, { base: bundle.id });
  await toolRounds(parent.id, 1, 1);
  h.clock.advance(MINUTE);
  const subs = await Promise.all([0, 1, 2].map(() => startSession(client, { base: bundle.id })));
  const ids = await Promise.all(
    subs.map((s, k) =>
      h
        .anthropic({ headers: { 'x-ph-session': s.id } })
        .messages.create({ model: MODEL, max_tokens: 4096, thinking: THINKING, messages: [{ role: 'user', content: marked([{ type: 'text', text: `Sub-agent ${k}: review src/f${k}.ts` }]) }] })
        .withResponse()
        .then((r) => r.response.headers.get('x-ph-request-id')!),
    ),
  );
  await committed(h);
  const rep = (await client.get(`/v1/reports/handles/${bundle.id}`)).json;
  expect(rep.requests).toBe(5);
  expect(rep.requests_with.cold).toBe(1);
  expect(rep.tokens).toMatchObject({ concurrent: 0, unconfirmed: 0, drift: 0 });
  for (const id of ids) expect(Object.keys((await classesOf(id)).art)).toEqual(['captured']);
});
