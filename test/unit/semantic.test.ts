import { describe, expect, it } from 'vitest';
import { semanticKey, unitKey } from '../../src/domain/simulator/semantic';

describe('semanticKey', () => {
  it('one prompt, several spellings: string content, markers, nulls and empty reply fields, a Responses message id', () => {
    expect(semanticKey('openai-chat', { role: 'user', content: 'Hi' })).toBe(semanticKey('openai-chat', { content: [{ type: 'text', text: 'Hi', prompt_cache_breakpoint: { mode: 'explicit' } }], role: 'user', name: null }));
    expect(semanticKey('openai-chat', { role: 'assistant', content: 'Hello', refusal: null, annotations: [] })).toBe(semanticKey('openai-chat', { role: 'assistant', content: [{ type: 'text', text: 'Hello' }] }));
    expect(semanticKey('openai-responses', { id: 'msg_1', status: 'completed', type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Hi', annotations: [] }] })).toBe(
      semanticKey('openai-responses', { role: 'assistant', content: 'Hi' }),
    );
    expect(semanticKey('anthropic', { role: 'user', content: [{ type: 'text', text: 'Hi', cache_control: { type: 'ephemeral' } }] })).toBe(semanticKey('anthropic', { role: 'user', content: 'Hi' }));
  });

  it('different prompts stay apart: free-form JSON exactly as sent, a reasoning item by its id, another format', () => {
    const use = (input: unknown) => semanticKey('anthropic', { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'f', input }] });
    expect(use({ a: 1, b: null })).not.toBe(use({ a: 1 }));
    expect(use({ a: 1, b: 2 })).not.toBe(use({ b: 2, a: 1 }));
    const tool = (id: unknown) => semanticKey('openai-responses', { type: 'function', name: 'f', parameters: { type: 'object', properties: { id, role: { type: 'string' }, status: { type: 'string' } } } });
    expect(tool({ type: 'string' })).not.toBe(tool({ type: 'integer' }));
    expect(semanticKey('openai-responses', { type: 'reasoning', id: 'rs_1', summary: [] })).not.toBe(semanticKey('openai-responses', { type: 'reasoning', id: 'rs_2', summary: [] }));
    expect(semanticKey('openai-chat', { role: 'user', content: 'Hi' })).not.toBe(semanticKey('openai-responses', { role: 'user', content: 'Hi' }));
    // A "__proto__" key is a key like any other.
    const plain = JSON.parse('{"type":"text","text":"x"}');
    const proto = JSON.parse('{"type":"text","text":"x","__proto__":{"a":1}}');
    expect(semanticKey('anthropic', proto)).not.toBe(semanticKey('anthropic', plain));
  });

  it('unitKey: a string is what it stands for where it stands; the same text in another section is another prompt', () => {
    expect(unitKey('anthropic', 'system', 'Rules.')).toBe(unitKey('anthropic', 'system', { type: 'text', text: 'Rules.', cache_control: { type: 'ephemeral' } }));
    expect(unitKey('openai-responses', 'messages', 'Hi')).toBe(unitKey('openai-responses', 'messages', { role: 'user', content: 'Hi' }));
    expect(unitKey('openai-responses', 'system', 'Hi')).not.toBe(unitKey('openai-responses', 'messages', 'Hi'));
    // OpenAI keeps system messages among the messages: a system handle's message and the caller's own are one prompt.
    expect(unitKey('openai-chat', 'system', { role: 'system', content: 'Rules.' })).toBe(unitKey('openai-chat', 'messages', { role: 'system', content: 'Rules.' }));
  });

  it("Gemini: a function call's args and a declaration's schema count exactly as sent", () => {
    const call = (args: unknown) => semanticKey('gemini', { role: 'model', parts: [{ functionCall: { name: 'f', args } }] });
    expect(call({ a: 1, b: 2 })).not.toBe(call({ b: 2, a: 1 }));
    expect(call({ a: 1 })).toBe(call({ a: 1 }));
  });
});
