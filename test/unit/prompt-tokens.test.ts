import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { unitTokens, visibleText } from '../../src/domain/prompt-tokens';
import { semanticForm } from '../../src/domain/simulator/semantic';
import { countTokens } from '../../src/domain/tokens';

const o200k = (s: string) => countTokens(s, 'o200k_base');

describe('visibleText: what the model reads of a block', () => {
  it('a tool call is its name and its arguments as JSON — written once, not escaped again', () => {
    const input = { path: 'a "b"\nc' };
    expect(visibleText(semanticForm('anthropic', { type: 'tool_use', id: 'toolu_1', name: 'read_file', input }))).toBe(`read_file\n${JSON.stringify(input)}`);
    const call = { id: 'call_1', type: 'function', function: { name: 'read_file', arguments: JSON.stringify(input) } };
    expect(visibleText(semanticForm('openai-chat', call))).toBe(`read_file\n${JSON.stringify(input)}`);
    expect(visibleText(semanticForm('openai-responses', { type: 'function_call', call_id: 'c', name: 'read_file', arguments: JSON.stringify(input) }))).toBe(`read_file\n${JSON.stringify(input)}`);
  });

  it('a tool result is its output; a tool is its name, description and schema', () => {
    expect(visibleText(semanticForm('anthropic', { type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }))).toBe('a\nb');
    expect(visibleText(semanticForm('openai-responses', { type: 'function_call_output', call_id: 'c', output: 'out "x"' }))).toBe('out "x"');
    const schema = { type: 'object', properties: { q: { type: 'string' } } };
    expect(visibleText(semanticForm('anthropic', { name: 'search', description: 'Search.', input_schema: schema }))).toBe(`search\nSearch.\n${JSON.stringify(schema)}`);
  });
});

describe('unitTokens', () => {
  it('property: a message counts its text and the framing, however its content is spelled', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 200 }), (text) => {
        const expected = o200k(text) + 3 + 4;
        expect(unitTokens('anthropic', 'messages', { role: 'user', content: text }, o200k)).toBe(expected);
        expect(unitTokens('anthropic', 'messages', { role: 'user', content: [{ type: 'text', text }] }, o200k)).toBe(expected);
        // OpenAI's documented framing: 3 per message and its role.
        expect(unitTokens('openai-chat', 'messages', { role: 'user', content: text }, o200k)).toBe(o200k(text) + 4);
      }),
    );
  });
});
