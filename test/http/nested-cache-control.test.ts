// Where Anthropic reads a cache_control breakpoint (blocks.ts markedBlocks): a tool definition, a system block, a
// message's content block, and a content block nested in one (a tool_result's content, a document's source content);
// not a `cache_control` key of what a block carries as data (a tool's input_schema, a tool_use's input). The render (its
// caller breakpoints, /v1/render) and the simulator (its breakpoints and 4-breakpoint limit, over real HTTP with the
// official Anthropic SDK) agree, both ways.

import Anthropic from '@anthropic-ai/sdk';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import { blocksFromRequest, markedBlocks } from '../../src/domain/simulator/blocks';
import { countTokens } from '../../src/domain/tokens';
import { toolCosts } from '../../src/domain/prompt-tokens';
import { startSimulator, type RunningSimulator } from '../../src/simulator/server';
import { createTestApp, type TestApp } from '../helpers/app';
import { LONG_SYSTEM } from '../helpers/scenario';

const catalog = new ModelCatalog(loadCatalog());
const clock = { t: Date.UTC(2026, 0, 1, 12, 0, 0), now() { return this.t; } };
let sim: RunningSimulator;
let t: TestApp;
beforeAll(async () => {
  sim = await startSimulator({ catalog, clock });
});
afterAll(async () => {
  await sim.close();
});
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const MARK = { type: 'ephemeral' } as const;
const TOOL = { name: 'lookup', description: 'Look a policy up.', input_schema: { type: 'object', properties: { topic: { type: 'string' }, cache_control: { type: 'string', description: 'a field named like the marker' } } } };

/** A tool loop: a question, the model's tool call, the tool's long result (its text blocks given), then a question. */
function loopBody(result: object[], input: object = { topic: 'refunds' }) {
  return {
    model: 'claude-sonnet-4-5',
    max_tokens: 64,
    tools: [TOOL],
    system: 'You answer from the handbook.',
    messages: [
      { role: 'user', content: 'What is the refund policy?' },
      { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'lookup', input }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: result }, { type: 'text', text: 'Summarise it.' }] },
    ],
  };
}

const text = (s: string, marked = false) => ({ type: 'text', text: s, ...(marked ? { cache_control: MARK } : {}) });
const entry = catalog.lookup('claude-sonnet-4-5').entry;
/** The blocks the simulator makes of a body (as server.ts counts them). */
const blocksOf = (body: object) => blocksFromRequest('anthropic', body, (s) => countTokens(s, entry.tokenizer), toolCosts('anthropic', entry.tokenizer, entry));

async function rendered(body: object) {
  const { client } = t.tenant();
  return client.post('/v1/render', { format: 'anthropic', request: body });
}

describe('cache_control nested in a tool_result', () => {
  it('is a breakpoint: the render counts it the caller\'s, the simulator writes the prefix through the tool_result and reads it on the next call', async () => {
    const body = loopBody([text(LONG_SYSTEM.slice(0, 6000), true)]);
    expect(markedBlocks(body.messages)).toHaveLength(1);
    // A document's content source nests blocks too; a block's own mark comes after those nested in it.
    const doc = { type: 'document', source: { type: 'content', content: [text('a', true), text('b')] }, cache_control: { type: 'ephemeral', ttl: '1h' } };
    expect(markedBlocks([doc]).map((b) => b.text ?? b.type)).toEqual(['a', 'document']);
    const simulated = blocksOf(body);
    expect(simulated.marks).toEqual(['5m']);
    // The tool_result part (the last message's first block) carries it.
    const marked = simulated.blocks.filter((b) => b.breakpoint);
    expect(marked).toHaveLength(1);
    expect(marked[0]!.endToken).toBeLessThan(simulated.totalTokens);

    const res = await rendered(body);
    expect(res.status, res.text).toBe(200);
    const caller = (res.json.breakpoints as Array<{ set_by: string; segment: number; ttl: string }>).filter((b) => b.set_by === 'caller');
    expect(caller).toHaveLength(1);
    expect(res.json.segments[caller[0]!.segment].section).toBe('messages');

    const client = new Anthropic({ apiKey: `sk-nested-${Math.random()}`, baseURL: sim.url, maxRetries: 0 });
    const first = await client.messages.create(body as never);
    expect(first.usage.cache_creation_input_tokens).toBe(marked[0]!.endToken);
    clock.t += 60_000;
    const second = await client.messages.create(body as never);
    expect([second.usage.cache_read_input_tokens, second.usage.cache_creation_input_tokens]).toEqual([marked[0]!.endToken, 0]);
  });

  it('counts toward the limit of 4: five nested marks are Anthropic\'s 400 in the simulator and a 422 at render', async () => {
    const body = loopBody(Array.from({ length: 5 }, (_, i) => text(`Section ${i}: ${LONG_SYSTEM.slice(0, 400)}`, true)));
    expect(blocksOf(body).marks).toHaveLength(5);
    const client = new Anthropic({ apiKey: `sk-nested-${Math.random()}`, baseURL: sim.url, maxRetries: 0 });
    const err = await client.messages.create(body as never).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect((err as Error).message).toContain('A maximum of 4 blocks with cache_control may be provided. Found 5.');
    const res = await rendered(body);
    expect(res.status).toBe(422);
    expect(res.text).toContain('the request sets 5 cache_control breakpoints; claude-sonnet-4-5 allows at most 4');
  });
});

describe('a cache_control key that is data', () => {
  it("in a tool's input_schema or a tool_use's input is no breakpoint: none for the render, none for the simulator; four real ones are taken", async () => {
    const data = loopBody([text(LONG_SYSTEM.slice(0, 6000))], { topic: 'refunds', cache_control: MARK });
    expect(markedBlocks(data)).toEqual([]);
    expect(blocksOf(data).marks).toEqual([]);
    expect(blocksOf(data).blocks.filter((b) => b.breakpoint)).toEqual([]);
    const res = await rendered(data);
    expect(res.status, res.text).toBe(200);
    expect((res.json.breakpoints as Array<{ set_by: string }>).filter((b) => b.set_by === 'caller')).toEqual([]);

    // With four real marks beside the data keys: within the limit for both (the data keys counted made it five).
    const four = loopBody(Array.from({ length: 4 }, (_, i) => text(`Section ${i}: ${LONG_SYSTEM.slice(0, 400)}`, true)), { topic: 'refunds', cache_control: MARK });
    expect(blocksOf(four).marks).toHaveLength(4);
    const client = new Anthropic({ apiKey: `sk-nested-${Math.random()}`, baseURL: sim.url, maxRetries: 0 });
    expect((await client.messages.create(four as never)).type).toBe('message');
    const ok = await rendered(four);
    expect(ok.status, ok.text).toBe(200);
    // One caller breakpoint: the render marks the segment (the message) its four marks are in.
    expect((ok.json.breakpoints as Array<{ set_by: string }>).filter((b) => b.set_by === 'caller')).toHaveLength(1);
  });

  it('set to null is no breakpoint either (Anthropic: none)', async () => {
    const body = loopBody([{ ...text(LONG_SYSTEM.slice(0, 6000)), cache_control: null }]);
    expect(blocksOf(body).marks).toEqual([]);
    const res = await rendered(body);
    expect(res.status, res.text).toBe(200);
    expect((res.json.breakpoints as Array<{ set_by: string }>).filter((b) => b.set_by === 'caller')).toEqual([]);
  });
});

describe('a malformed cache_control (not { type: "ephemeral", ttl?: "5m" | "1h" })', () => {
  const cases: Array<[string, (mark: object) => object, string]> = [
    ['{} on a message block', (mark) => ({ ...loopBody([text('x')]), messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi', cache_control: mark }] }] }), 'messages.0.content.0.cache_control'],
    ['nested in a tool_result', (mark) => loopBody([text('x', false), { type: 'text', text: 'y', cache_control: mark }]), 'messages.2.content.0.content.1.cache_control'],
    ['on a tool', (mark) => ({ ...loopBody([text('x')]), tools: [{ ...TOOL, cache_control: mark }] }), 'tools.0.cache_control'],
    ['on a system block', (mark) => ({ ...loopBody([text('x')]), system: [{ type: 'text', text: 'S', cache_control: mark }] }), 'system.0.cache_control'],
    ['as the request\'s automatic mark', (mark) => ({ ...loopBody([text('x')]), cache_control: mark }), 'cache_control'],
  ];
  const marks: Array<[object, string]> = [
    [{}, '.type: Field required'],
    [{ ttl: '1h' }, '.type: Field required'],
    [{ type: 'persistent' }, ".type: Input should be 'ephemeral'"],
    [{ type: 'ephemeral', ttl: '10m' }, ".ttl: Input should be '5m' or '1h'"],
  ];
  it.each(cases)("%s is Anthropic's 400 invalid_request_error in the simulator, naming the field's path, and a 422 at render", async (_, body, path) => {
    const client = new Anthropic({ apiKey: `sk-malformed-${Math.random()}`, baseURL: sim.url, maxRetries: 0 });
    for (const [mark, wording] of marks) {
      const err = await client.messages.create(body(mark) as never).then(() => null, (e: unknown) => e);
      expect(err, JSON.stringify(mark)).toBeInstanceOf(Anthropic.BadRequestError);
      expect((err as InstanceType<typeof Anthropic.BadRequestError>).error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: `${path}${wording}` } });
      // The render refuses it too (a 422 at the field), where it used to count it a breakpoint.
      const res = await rendered(body(mark));
      expect(res.status, res.text).toBe(422);
      expect(res.json.code).toBe('invalid_request');
      expect(res.json.errors[0].pointer).toBe(`/request/${`${path}${wording.split(':')[0]}`.replaceAll('.', '/')}`);
    }
    // The well-formed marks are taken, a null is none.
    for (const mark of [{ type: 'ephemeral' }, { type: 'ephemeral', ttl: '1h' }]) expect((await client.messages.create(body(mark) as never)).type).toBe('message');
    expect((await client.messages.create(JSON.parse(JSON.stringify(body({})), (k, v: unknown) => (k === 'cache_control' ? null : v)) as never)).type).toBe('message');
  });
});
