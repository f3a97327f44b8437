// Preserved thinking's prefix check as the service sees it coming (src/domain/thinking-prefix.ts): what counts as a
// change agrees with the simulator's check, and which blocks a render that fails it names.

import { describe, expect, it } from 'vitest';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import { DomainError } from '../../src/domain/errors';
import { changedPrefixes, refuseChangedPrefixes, thinkingPrefixes, type RecordedThinking } from '../../src/domain/thinking-prefix';
import { anthropicPrefixes } from '../../src/simulator/reasoning';

const catalog = new ModelCatalog(loadCatalog());
const entry = (name: string) => catalog.lookup(name, 'anthropic').entry;

type Json = Record<string, unknown>;
const TOOL = { name: 'get_weather', description: 'Weather.', input_schema: { type: 'object', properties: { city: { type: 'string' } } } };
const thinking = (n: number) => ({ type: 'thinking', thinking: `t${n}`, signature: `sig${n}` });
const call = (n: number) => ({ type: 'tool_use', id: `toolu_${n}`, name: 'get_weather', input: { city: 'Oslo' } });
const result = (n: number) => ({ role: 'user', content: [{ type: 'tool_result', tool_use_id: `toolu_${n}`, content: 'cold' }] });
/** A tool loop of two rounds: thinking blocks at messages.1.content.0 and messages.3.content.0. */
const base = (): Json => ({
  model: 'claude-fable-5-1',
  tools: [TOOL],
  system: 'Be brief.',
  messages: [{ role: 'user', content: 'Weather?' }, { role: 'assistant', content: [thinking(1), call(1)] }, result(1), { role: 'assistant', content: [thinking(3), call(3)] }, result(3)],
});
/** The blocks of `body` as a session would have recorded them, produced under it. */
function recorded(body: Json, producer: string | null = 'claude-fable-5-1'): Map<string, RecordedThinking> {
  const at = thinkingPrefixes(body);
  return new Map([
    ['s:sig1', { prefix: at(1, []), producer, source: 'ses_a@2' }],
    ['s:sig3', { prefix: at(3, []), producer, source: 'ses_a@3' }],
  ]);
}
const readsAll = () => true;

describe('what counts as a change: the prompt, as the simulator checks it', () => {
  const cases: Array<[string, (b: Json) => void, string[]]> = [
    ['the system prompt', (b) => (b.system = 'Be thorough.'), ['system']],
    ['the tools', (b) => (b.tools = [{ ...TOOL, description: 'The weather.' }]), ['tools']],
    ['an earlier message', (b) => ((b.messages as Json[])[0] = { role: 'user', content: 'Weather now?' }), ['messages']],
    ['the system prompt as a text block: the same prompt', (b) => (b.system = [{ type: 'text', text: 'Be brief.' }]), []],
    ['a cache mark on it: not the conversation', (b) => (b.system = [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }]), []],
    ['a message after the block', (b) => ((b.messages as Json[])[2] = result(9)), []],
    ['the question as a text block', (b) => ((b.messages as Json[])[0] = { role: 'user', content: [{ type: 'text', text: 'Weather?' }] }), []],
  ];
  it.each(cases)('%s', (_, change, parts) => {
    const before = base();
    const after = base();
    change(after);
    // The first block (messages.1.content.0): ours names the parts; the simulator's digest moves alike.
    const ours = changedPrefixes(after, new Map([...recorded(before)].slice(0, 1)), readsAll);
    expect(ours[0]?.changed ?? []).toEqual(parts);
    expect(anthropicPrefixes(after)(1, 0) !== anthropicPrefixes(before)(1, 0)).toBe(parts.length > 0);
  });
});

describe('the blocks a render that fails the check names', () => {
  it('the first changed block with what changed, then every later thinking block, invalid with it', () => {
    const after = base();
    after.system = 'Be thorough.';
    expect(changedPrefixes(after, recorded(base()), readsAll)).toEqual([
      { path: 'messages.1.content.0', source: 'ses_a@2', changed: ['system'] },
      { path: 'messages.3.content.0', source: 'ses_a@3', changed: ['system'] },
    ]);
    // A change between the two blocks: only the later one, and it names the messages.
    const between = base();
    (between.messages as Json[])[2] = { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'warm' }] };
    expect(changedPrefixes(between, recorded(base()), readsAll)).toEqual([{ path: 'messages.3.content.0', source: 'ses_a@3', changed: ['messages'] }]);
  });

  it('refused on a model with the prefix check (Claude Fable 5.1), with pointers to what changed; not with drop_block, nor for blocks it does not read, nor on a model without the check', () => {
    const after = base();
    after.system = 'Be thorough.';
    const refusal = (() => {
      try {
        refuseChangedPrefixes(entry('claude-fable-5-1'), after, recorded(base()), '/request');
      } catch (e) {
        return e as DomainError;
      }
      return null;
    })();
    expect(refusal).toBeInstanceOf(DomainError);
    expect(refusal!.code).toBe('thinking_prefix_changed');
    expect(refusal!.errors).toEqual([{ pointer: '/request/system', detail: 'changed since the thinking block at messages.1.content.0 was produced' }]);
    expect(refusal!.extra.blocks).toHaveLength(2);
    expect(() => refuseChangedPrefixes(entry('claude-fable-5-1'), { ...after, thinking: { type: 'adaptive', block_binding: { prefix_mismatch_behavior: 'drop_block' } } }, recorded(base()), '')).not.toThrow();
    // Claude Sonnet 4.6's blocks: Fable 5.1 does not read them (dropped without an error), so they are not checked.
    expect(() => refuseChangedPrefixes(entry('claude-fable-5-1'), after, recorded(base(), 'claude-sonnet-4-6'), '')).not.toThrow();
    // Claude Opus 5 has no preserved thinking: no prefix check.
    expect(() => refuseChangedPrefixes(entry('claude-opus-5'), after, recorded(base()), '')).not.toThrow();
    // Nothing changed: nothing refused.
    expect(() => refuseChangedPrefixes(entry('claude-fable-5-1'), base(), recorded(base()), '')).not.toThrow();
  });
});
