// Which thinking blocks sent back a Claude model reads (src/domain/thinking.ts), per model as the catalog has it, and
// what the estimate and the simulator count of a conversation by it.

import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { catalogSchema, loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import { toolCosts } from '../../src/domain/prompt-tokens';
import { blocksFromRequest } from '../../src/domain/simulator/blocks';
import { currentTurnStart, earlierTurnsUnread, opensResponsesTurn, readsEarlierReasoning, readsProducer, readsThinking, reasoningSettings, recordedReasoning } from '../../src/domain/thinking';
import { createTestApp, type TestApp } from '../helpers/app';
import { anthropicPrefixes, anthropicSignature, anthropicSigner } from '../../src/simulator/reasoning';
import { countTokens } from '../../src/domain/tokens';
import { readCurrentReasoningOnly, type MessageUnit } from '../../src/domain/render/thinking-units';
import { unitKey } from '../../src/domain/simulator/semantic';

const catalog = new ModelCatalog(loadCatalog());
const entry = (name: string) => catalog.lookup(name, 'anthropic').entry;

describe('earlier turns: which Claude models keep them', () => {
  // Extended thinking: Opus 4.5 and later, Sonnet 4.6 and later keep every earlier turn's thinking; Opus 4.1 and
  // earlier, Sonnet 4.5 and earlier, every Haiku through 4.5 keep only the current turn's.
  const STRIPPED = ['claude-opus-4-20250514', 'claude-opus-4-1', 'claude-sonnet-4-20250514', 'claude-sonnet-4-5', 'claude-haiku-4-5', 'claude-3-5-haiku-latest', 'claude-3-haiku-20240307'];
  const KEPT = ['claude-opus-4-5', 'claude-opus-4-6', 'claude-opus-4-7', 'claude-opus-4-8', 'claude-opus-5', 'claude-opus-5-5', 'claude-sonnet-4-6', 'claude-sonnet-5', 'claude-sonnet-5-5', 'claude-fable-5', 'claude-fable-5-1', 'claude-fable-5-2'];

  it.each(STRIPPED)('%s reads the current turn\'s thinking only', (name) => {
    const model = entry(name);
    expect(model.thinking?.earlierTurns).toBe('stripped');
    // The turn opens with message 4 (a question): the assistant messages before it are an earlier turn's.
    expect(readsThinking(model, 1, 4, null)).toBe(false);
    expect(readsThinking(model, 3, 4, null)).toBe(false);
    expect(readsThinking(model, 5, 4, null)).toBe(true);
  });

  it.each(KEPT)('%s reads every turn\'s thinking', (name) => {
    const model = entry(name);
    expect(model.thinking?.earlierTurns).toBe('kept');
    expect(readsThinking(model, 1, 4, null)).toBe(true);
    expect(readsThinking(model, 5, 4, null)).toBe(true);
  });

  it('every Claude entry has the rule, with its source; no other provider has one', () => {
    for (const e of catalog.entries()) {
      if (e.provider === 'anthropic') expect(e.thinking?.source, e.id).toMatch(/^https:\/\/platform\.claude\.com\/docs\/en\//);
      else expect(e.thinking, e.id).toBeUndefined();
    }
  });

  it('the current turn opens with the newest user message that is more than tool results', () => {
    const q = { role: 'user', content: 'Weather in Oslo?' };
    const call = { role: 'assistant', content: [{ type: 'thinking', thinking: 't', signature: 's' }, { type: 'tool_use', id: 'a', name: 'w', input: {} }] };
    const result = { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'a', content: 'cold' }] };
    expect(currentTurnStart([q, call, result])).toBe(0);
    expect(currentTurnStart([q, call, result, { role: 'assistant', content: 'Cold.' }, { role: 'user', content: [{ type: 'text', text: 'And Bergen?' }] }])).toBe(4);
    // A tool result with text beside it is a new question.
    expect(currentTurnStart([q, call, { role: 'user', content: [...result.content, { type: 'text', text: 'Now Bergen.' }] }])).toBe(2);
    expect(currentTurnStart([])).toBe(-1);
  });
});

describe("preserved thinking's model check: whose blocks a model reads", () => {
  it('Claude Fable 5.1 reads Claude Opus 5 and 5.5; neither reads Claude Fable 5.1; a model without the check reads any', () => {
    const [fable, opus55, opus5] = [entry('claude-fable-5-1'), entry('claude-opus-5-5'), entry('claude-opus-5')];
    expect(readsProducer(fable, 'claude-opus-5')).toBe(true);
    expect(readsProducer(fable, 'claude-opus-5-5')).toBe(true);
    expect(readsProducer(fable, 'claude-fable-5-1')).toBe(true);
    expect(readsProducer(opus55, 'claude-fable-5-1')).toBe(false);
    expect(readsProducer(opus5, 'claude-fable-5-1')).toBe(true);
    // Claude Fable 5.2's blocks: Claude Fable 5.2 (and Mythos 5.2) only.
    expect(readsProducer(entry('claude-fable-5-1'), 'claude-fable-5-2')).toBe(false);
    // Unknown producer (a caller's own block): read, nothing says otherwise; on every turn on a model that keeps them.
    expect(readsThinking(opus55, 1, 4, null)).toBe(true);
    expect(readsThinking(opus55, 5, 4, 'claude-fable-5-1')).toBe(false);
  });

  it('a catalog whose readsFrom names no entry is refused, naming the path', () => {
    const bad = { ...loadCatalog(), models: loadCatalog().models.map((m) => (m.id === 'claude-opus-5-5' ? { ...m, thinking: { ...m.thinking!, readsFrom: ['claude-nope'] } } : m)) };
    const parsed = catalogSchema.safeParse(bad);
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues.map((i) => [i.path.slice(2).join('.'), i.message])).toEqual([['thinking.readsFrom.0', 'no model entry with id "claude-nope"']]);
  });
});

describe("the simulator's signatures", () => {
  it('a model with preserved thinking signs its thinking as its own and with what came before it; a changed block is no longer signed', () => {
    const body = { system: 'Be brief.', tools: [], messages: [{ role: 'user', content: 'Weather in Oslo?' }] };
    const bound = { model: 'claude-opus-5-5', prefix: anthropicPrefixes(body)(1, 0) };
    const signature = anthropicSignature('Weigh the units.', bound);
    expect(anthropicSigner({ type: 'thinking', thinking: 'Weigh the units.', signature })).toEqual({ valid: true, bound });
    expect(anthropicSigner({ type: 'thinking', thinking: 'Weigh the units!', signature }).valid).toBe(false);
    // Another model's name put in its place does not sign the text either.
    const [, prefix, sig] = JSON.parse(Buffer.from(signature, 'base64').toString()) as string[];
    expect(anthropicSigner({ type: 'thinking', thinking: 'Weigh the units.', signature: Buffer.from(JSON.stringify(['claude-fable-5-1', prefix, sig])).toString('base64') }).valid).toBe(false);
    // Untied (a model without preserved thinking): the text's signature, read by any model.
    expect(anthropicSigner({ type: 'thinking', thinking: 'Weigh the units.', signature: anthropicSignature('Weigh the units.', null) })).toEqual({ valid: true, bound: null });
  });

  it('the prefix is the system, tools and messages before the block, as sent but for cache marks', () => {
    const reply = { role: 'assistant', content: [{ type: 'thinking', thinking: 't', signature: 's' }, { type: 'text', text: 'Cold.' }] };
    const body = { system: 'Be brief.', messages: [{ role: 'user', content: 'Weather in Oslo?' }, reply, { role: 'user', content: 'And Bergen?' }] };
    const at = anthropicPrefixes(body)(1, 0);
    expect(anthropicPrefixes({ ...body, messages: body.messages.slice(0, 1) })(1, 0)).toBe(at);
    const marked = { ...body, system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }], messages: [{ role: 'user', content: [{ type: 'text', text: 'Weather in Oslo?', cache_control: { type: 'ephemeral' } }] }, ...body.messages.slice(1)] };
    expect(anthropicPrefixes(marked)(1, 0)).toBe(at);
    expect(anthropicPrefixes({ ...body, system: 'Be terse.' })(1, 0)).not.toBe(at);
    expect(anthropicPrefixes({ ...body, tools: [{ name: 'get_weather', input_schema: { type: 'object' } }] })(1, 0)).not.toBe(at);
    expect(anthropicPrefixes(body)(1, 1)).not.toBe(at);
  });
});

describe('the simulated provider counts what the model reads', () => {
  const body = {
    model: 'x',
    max_tokens: 10,
    messages: [
      { role: 'user', content: 'Weather in Oslo?' },
      { role: 'assistant', content: [{ type: 'thinking', thinking: 'I should call the weather tool for Oslo now. '.repeat(5), signature: 's' }, { type: 'tool_use', id: 'a', name: 'get_weather', input: { city: 'Oslo' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'a', content: 'cold' }] },
      { role: 'assistant', content: [{ type: 'thinking', thinking: 'Answer briefly.', signature: 's' }, { type: 'text', text: 'Cold.' }] },
      { role: 'user', content: 'And Bergen?' },
    ],
  };
  const count = (s: string) => countTokens(s, 'anthropic');
  const turnStart = currentTurnStart(body.messages);
  const withRule = (name: string) => blocksFromRequest('anthropic', body, count, {}, (m) => readsThinking(entry(name), m, turnStart, null));
  const withoutThinking = { ...body, messages: body.messages.map((m) => (Array.isArray(m.content) ? { ...m, content: m.content.filter((b) => b.type !== 'thinking') } : m)) };

  it('a model that strips them counts and caches the conversation as if they had not been sent; one that keeps them, all', () => {
    const all = blocksFromRequest('anthropic', body, count);
    const none = blocksFromRequest('anthropic', withoutThinking, count);
    expect(withRule('claude-sonnet-4-5').totalTokens).toBe(none.totalTokens);
    expect(withRule('claude-sonnet-4-5').blocks.map((b) => b.key)).toEqual(none.blocks.map((b) => b.key));
    expect(withRule('claude-sonnet-4-6').totalTokens).toBe(all.totalTokens);
    expect(all.totalTokens - none.totalTokens).toBeGreaterThan(50);
  });
});

describe("OpenAI Responses: earlier turns' reasoning items", () => {
  let t: TestApp;
  beforeEach(() => {
    t = createTestApp();
  });
  afterEach(() => t.close());

  it('a turn opens with a user message item; the finding a new question gets, by format and model', () => {
    expect(opensResponsesTurn({ role: 'user', content: 'Weather in Oslo?' })).toBe(true);
    expect(opensResponsesTurn({ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'And Bergen?' }] })).toBe(true);
    for (const item of [{ type: 'function_call_output', call_id: 'c', output: 'cold' }, { type: 'reasoning', id: 'rs_1', summary: [] }, { role: 'assistant', content: 'Cold.' }, { role: 'developer', content: 'Be brief.' }, null])
      expect(opensResponsesTurn(item), JSON.stringify(item)).toBe(false);
    expect(earlierTurnsUnread('openai-responses', catalog.lookup('gpt-5', 'openai').entry)).toBe('earlier_reasoning');
    expect(earlierTurnsUnread('anthropic', entry('claude-sonnet-4-5'))).toBe('earlier_turn');
    expect(earlierTurnsUnread('anthropic', entry('claude-sonnet-4-6'))).toBeNull();
    // Chat Completions sends no reasoning back.
    expect(earlierTurnsUnread('openai-chat', catalog.lookup('gpt-5', 'openai').entry)).toBeNull();
    // A model that takes reasoning.context drops nothing under all_turns (its default): the request's recorded value.
    const sol = catalog.lookup('gpt-5.6-sol', 'openai').entry;
    const recorded = (context?: string) => recordedReasoning(reasoningSettings(context === undefined ? { summary: 'auto' } : { context }));
    expect(['all_turns', 'current_turn', undefined].map((c) => earlierTurnsUnread('openai-responses', sol, recorded(c)))).toEqual([null, 'earlier_reasoning', null]);
    expect(earlierTurnsUnread('openai-responses', catalog.lookup('gpt-5', 'openai').entry, recorded('all_turns'))).toBe('earlier_reasoning');
    expect([reasoningSettings({ context: 'all_turns' }), reasoningSettings(null), recordedReasoning(null)]).toEqual(['{"reasoning.context":"all_turns"}', '{}', {}]);
  });

  it('the rule re-keys the earlier turns\' reasoning items and parses each item once, not on every request that sends it back', () => {
    const units = (): MessageUnit[] =>
      [
        { role: 'user', content: 'Weather in Oslo?' },
        { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'gAAAA'.repeat(400) },
        { type: 'function_call', call_id: 'c', name: 'get_weather', arguments: '{"city":"Oslo"}' },
        { type: 'function_call_output', call_id: 'c', output: 'user' },
        { type: 'reasoning', id: 'rs_2', summary: [], encrypted_content: 'gAAAB'.repeat(400) },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'reasoning' }] },
        { type: 'reasoning', id: 'rs_3', summary: [], encrypted_content: 'gAAAC'.repeat(400) },
      ].map((v) => ({ hashText: JSON.stringify(v), item: null, key: unitKey('openai-responses', 'messages', v), tokens: () => 7 }));
    const first = units();
    readCurrentReasoningOnly(first);
    const notRead = first.map((u) => u.tokens('o200k_base') === 0);
    expect(notRead).toEqual([false, true, false, false, true, false, false]);
    expect(first[1]!.key).toBe(first[4]!.key);
    // The same conversation sent again: nothing parsed.
    const again = units();
    const parse = vi.spyOn(JSON, 'parse');
    try {
      readCurrentReasoningOnly(again);
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
    expect(again.map((u) => u.key)).toEqual(first.map((u) => u.key));
    // A string input after them (a session's items, then the caller's question) opens the turn: the last one is not read either.
    const withString = [...units(), { hashText: '"And Bergen?"', item: null, key: 'q', tokens: () => 3 }];
    readCurrentReasoningOnly(withString);
    expect(withString.map((u) => u.tokens('o200k_base') === 0)).toEqual([false, true, false, false, true, false, true, false]);
  });

  // A random agent conversation: questions, each followed by tool rounds (a reasoning item, a call, its output) and an
  // answer (a reasoning item, a message); the newest question's loop may be under way.
  const reasoning = (id: string, words: number) => ({ type: 'reasoning', id: `rs_${id}`, summary: [], encrypted_content: `gAAAA${'x'.repeat(words * 7)}` });
  // A question as a bare role item or a `type: "message"` one, its text at times the words "reasoning" or "user"; a
  // round's reasoning at times two items in a row, its output at times the word "user".
  const question = (q: number, shape: number) =>
    [
      { role: 'user', content: `Question ${q}: the weather in city ${q}?` },
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'reasoning' }] },
      { role: 'user', content: [{ type: 'input_text', text: 'user' }] },
    ][shape]!;
  const turn = fc.record({ rounds: fc.integer({ min: 0, max: 3 }), answered: fc.boolean(), words: fc.integer({ min: 1, max: 60 }), shape: fc.integer({ min: 0, max: 2 }), twice: fc.boolean() });
  const conversation = fc.array(turn, { minLength: 1, maxLength: 4 }).map((turns) =>
    turns.flatMap(({ rounds, answered, words, shape, twice }, q) => {
      const items: unknown[] = [question(q, shape)];
      for (let r = 0; r < rounds; r++) {
        if (twice) items.push(reasoning(`${q}_${r}_0`, words));
        items.push(reasoning(`${q}_${r}`, words + r), { type: 'function_call', call_id: `call_${q}_${r}`, name: 'get_weather', arguments: `{"city":"c${q}${r}"}` }, { type: 'function_call_output', call_id: `call_${q}_${r}`, output: twice ? 'user' : `cold ${'and windy '.repeat(words)}` });
      }
      if (answered || q < turns.length - 1) items.push(reasoning(`${q}_a`, words), { role: 'assistant', content: `Cold in city ${q}.` });
      return items;
    }),
  );

  it('property: the estimate of any such conversation is what the simulated provider bills for it, the earlier turns\' reasoning items not read', async () => {
    const { client } = t.tenant();
    const model = catalog.lookup('gpt-5', 'openai').entry;
    const bill = (body: unknown) => blocksFromRequest('openai-responses', body, (text) => countTokens(text, model.tokenizer), toolCosts('openai-responses', model.tokenizer, model)).totalTokens;
    const render = async (input: unknown[]) => {
      const res = await client.post('/v1/render', { format: 'openai-responses', request: { model: 'gpt-5', store: false, instructions: 'Answer from the forecast.', input } });
      expect(res.status, res.text).toBe(200);
      return { body: res.json.body, estimate: res.json.segments.at(-1).token_end as number };
    };
    // What the segments leave out of any request (the reply's priming): a question alone.
    const alone = await render([{ role: 'user', content: 'Hi?' }]);
    const primed = bill(alone.body) - alone.estimate;
    expect(primed).toBeGreaterThanOrEqual(0);
    expect(primed).toBeLessThan(8);
    await fc.assert(
      fc.asyncProperty(conversation, async (input) => {
        const { body, estimate } = await render(input);
        expect(estimate + primed).toBe(bill(body));
        // Sent back, all of them; the earlier turns' cost nothing: the same conversation without them is billed alike.
        const start = input.findLastIndex(opensResponsesTurn);
        const current = input.filter((it, i) => i >= start || (it as { type?: string }).type !== 'reasoning');
        expect(bill({ ...body, input: current })).toBe(estimate + primed);
      }),
      { numRuns: 40 },
    );
  });

  it('reasoning.context: GPT-5.6 and newer read earlier turns\' reasoning with all_turns, their default; current_turn and earlier models do not', () => {
    for (const name of ['gpt-5.6', 'gpt-5.6-sol', 'gpt-5.6-terra', 'gpt-5.6-luna-2026-07-01']) {
      const model = catalog.lookup(name, 'openai').entry;
      expect(model.reasoningContext, name).toMatchObject({ default: 'all_turns' });
      for (const reasoning of [{ context: 'all_turns' }, { context: 'auto' }, { effort: 'low' }, undefined, null]) expect(readsEarlierReasoning(model, reasoning), `${name} ${JSON.stringify(reasoning)}`).toBe(true);
      expect(readsEarlierReasoning(model, { context: 'current_turn' }), name).toBe(false);
    }
    for (const name of ['gpt-5', 'gpt-5.5', 'o3']) {
      const model = catalog.lookup(name, 'openai').entry;
      expect(model.reasoningContext, name).toBeUndefined();
      expect(readsEarlierReasoning(model, { context: 'all_turns' }), name).toBe(false);
    }
  });

  it('property: on gpt-5.6 the estimate of any such conversation is what the simulated provider bills for it under any reasoning.context', async () => {
    const { client } = t.tenant();
    const model = catalog.lookup('gpt-5.6', 'openai').entry;
    const bill = (body: unknown, earlier: boolean) => blocksFromRequest('openai-responses', body, (text) => countTokens(text, model.tokenizer), toolCosts('openai-responses', model.tokenizer, model), undefined, earlier).totalTokens;
    const render = async (input: unknown[], context?: string) => {
      const request = { model: 'gpt-5.6', store: false, instructions: 'Answer from the forecast.', input, ...(context ? { reasoning: { context } } : {}) };
      const res = await client.post('/v1/render', { format: 'openai-responses', request });
      expect(res.status, res.text).toBe(200);
      return { body: res.json.body, estimate: res.json.segments.at(-1).token_end as number };
    };
    const alone = await render([{ role: 'user', content: 'Hi?' }]);
    const primed = bill(alone.body, true) - alone.estimate;
    expect(primed).toBeGreaterThanOrEqual(0);
    expect(primed).toBeLessThan(8);
    await fc.assert(
      fc.asyncProperty(conversation, fc.constantFrom(undefined, 'auto', 'all_turns', 'current_turn'), async (input, context) => {
        const { body, estimate } = await render(input, context);
        const earlier = context !== 'current_turn';
        expect(estimate + primed).toBe(bill(body, earlier));
        // all_turns reads every reasoning item sent back: what current_turn bills plus the earlier turns'.
        const start = input.findLastIndex(opensResponsesTurn);
        const dropped = input.some((it, i) => i < start && (it as { type?: string }).type === 'reasoning');
        if (dropped) expect(bill(body, true)).toBeGreaterThan(bill(body, false));
        else expect(bill(body, true)).toBe(bill(body, false));
      }),
      { numRuns: 40 },
    );
  });
});
