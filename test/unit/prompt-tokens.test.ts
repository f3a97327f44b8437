import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FUNCTION_TOKENS, toolCosts, toolPromptTokens, toolTokens, unitTokens, visibleText } from '../../src/domain/prompt-tokens';
import { blocksFromRequest } from '../../src/domain/simulator/blocks';
import { semanticForm } from '../../src/domain/simulator/semantic';
import { countTokens } from '../../src/domain/tokens';
import { COOKBOOK_MESSAGES, COOKBOOK_TOOLS } from '../helpers/cookbook';

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

describe('reasoning state: counted as the model reads it', () => {
  const count = (s: string) => countTokens(s, 'anthropic');
  it('a thinking block is its thinking text, not its signature; a redacted one and a Gemini signature add framing only', () => {
    expect(visibleText(semanticForm('anthropic', { type: 'thinking', thinking: 'Weigh the units.', signature: 'EqQBCkgIARABGAIiQL' }))).toBe('Weigh the units.');
    expect(visibleText(semanticForm('anthropic', { type: 'redacted_thinking', data: 'EmwKAhgBEgy3va3pzix' }))).toBe('');
    const plain = { role: 'model', parts: [{ functionCall: { name: 'f', args: { a: 1 } } }] };
    const signed = { role: 'model', parts: [{ functionCall: { name: 'f', args: { a: 1 } }, thoughtSignature: 'CiQBcsjafD3+ZZ' }] };
    expect(unitTokens('gemini', 'messages', signed, count)).toBe(unitTokens('gemini', 'messages', plain, count));
  });

  it('the estimate of a request with thinking equals the simulated provider\'s count of it', () => {
    const body = {
      model: 'claude-sonnet-4-6',
      messages: [
        { role: 'user', content: 'Use get_weather for Oslo.' },
        { role: 'assistant', content: [{ type: 'thinking', thinking: 'I should call the tool.', signature: 'sig' }, { type: 'tool_use', id: 't', name: 'get_weather', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: 'cold' }] },
      ],
    };
    const estimate = body.messages.reduce((n, m) => n + unitTokens('anthropic', 'messages', m, count), 0);
    expect(blocksFromRequest('anthropic', body, count).totalTokens).toBe(estimate);
  });

  it('an OpenAI reasoning item adds framing only, as the simulator counts it, in the tool loop it belongs to; earlier turns\' the simulator drops, as OpenAI does', () => {
    const reasoning = { id: 'rs_1', type: 'reasoning', summary: [{ type: 'summary_text', text: 'Call the tool.' }], encrypted_content: 'gAAAAAB'.repeat(40) };
    expect(visibleText(semanticForm('openai-responses', reasoning))).toBe('');
    const loop = [
      { role: 'user', content: 'Use get_weather for Oslo.' },
      reasoning,
      { type: 'function_call', call_id: 'c', name: 'get_weather', arguments: '{}' },
      { type: 'function_call_output', call_id: 'c', output: 'cold' },
    ];
    const estimate = loop.reduce((n, item) => n + unitTokens('openai-responses', 'messages', item, o200k), 0);
    const simulated = blocksFromRequest('openai-responses', { input: loop }, o200k);
    // The estimate's items, and the reply's header (3 tokens) the simulator adds to every prompt.
    expect(simulated.totalTokens).toBe(estimate + 3);
    // A new question: the loop's reasoning item is an earlier turn's, not read, and in no cached prefix.
    const next = blocksFromRequest('openai-responses', { input: [...loop, { role: 'user', content: 'And Bergen?' }] }, o200k);
    const without = blocksFromRequest('openai-responses', { input: [...loop.filter((i) => i !== reasoning), { role: 'user', content: 'And Bergen?' }] }, o200k);
    expect(next.totalTokens).toBe(without.totalTokens);
    expect(next.blocks.map((b) => b.endToken)).toEqual(without.blocks.map((b) => b.endToken));
    expect(next.blocks[1]!.key).not.toBe(simulated.blocks[1]!.key);
    expect(next.blocks[0]!.key).toBe(simulated.blocks[0]!.key);
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


describe("what tools cost beyond their text (OpenAI's cookbook)", () => {
  it("the cookbook's example: 101 prompt tokens on gpt-4o (o200k_base), 105 on gpt-4 (cl100k_base)", () => {
    for (const [family, expected] of [
      ['o200k_base', 101],
      ['cl100k_base', 105],
    ] as const) {
      const count = (s: string) => countTokens(s, family);
      const body = { model: 'm', tools: COOKBOOK_TOOLS, messages: COOKBOOK_MESSAGES };
      expect(blocksFromRequest('openai-chat', body, count, toolCosts('openai-chat', family)).totalTokens, family).toBe(expected);
    }
  });

  it('a function counts as the recipe says: per function, its properties, each property and enum item, once the end', () => {
    const c = FUNCTION_TOKENS.o200k_base;
    const expected =
      c.func +
      o200k('get_current_weather:Get the current weather in a given location') +
      c.properties +
      (c.property + o200k('location:string:The city and state, e.g. San Francisco, CA')) +
      (c.property + c.enum + c.enumItem + o200k('celsius') + c.enumItem + o200k('fahrenheit') + o200k('unit:string:The unit of temperature to return'));
    const costs = toolCosts('openai-chat', 'o200k_base');
    expect(unitTokens('openai-chat', 'tools', COOKBOOK_TOOLS[0], o200k, costs)).toBe(expected);
    // The Responses API's flat function definition: the same function, the same count.
    const { name, description, parameters } = COOKBOOK_TOOLS[0]!.function;
    expect(unitTokens('openai-responses', 'tools', { type: 'function', name, description, parameters, strict: false }, o200k, toolCosts('openai-responses', 'o200k_base'))).toBe(expected);
    expect(toolPromptTokens(COOKBOOK_TOOLS, undefined, costs)).toBe(c.end);
  });

  it("a tool that is not a function (a provider's own) is its text, and closes no functions; Anthropic's tools are their text", () => {
    const costs = toolCosts('openai-responses', 'o200k_base');
    const search = { type: 'web_search', search_context_size: 'low' };
    expect(toolTokens('openai-responses', search, o200k, costs)).toBe(o200k(JSON.stringify(search)));
    expect(toolPromptTokens([search], undefined, costs)).toBe(0);
    expect(toolPromptTokens([search, COOKBOOK_TOOLS[0]], undefined, costs)).toBe(12);
    const tool = { name: 'f', description: 'Do f.', input_schema: { type: 'object' } };
    expect(unitTokens('anthropic', 'tools', tool, o200k, toolCosts('anthropic', 'anthropic'))).toBe(o200k(`f\nDo f.\n${JSON.stringify(tool.input_schema)}`) + 3);
  });

  it("Anthropic's tool-use system prompt: auto for auto and none, any for any and tool; nothing without tools or figures", () => {
    const costs = toolCosts('anthropic', 'anthropic', { toolUseSystemPrompt: { auto: 497, any: 589 } });
    const tools = [{ name: 'f', input_schema: { type: 'object' } }];
    expect(toolPromptTokens(tools, undefined, costs)).toBe(497);
    expect(toolPromptTokens(tools, { type: 'auto' }, costs)).toBe(497);
    expect(toolPromptTokens(tools, { type: 'none' }, costs)).toBe(497);
    expect(toolPromptTokens(tools, { type: 'any' }, costs)).toBe(589);
    expect(toolPromptTokens(tools, { type: 'tool', name: 'f' }, costs)).toBe(589);
    expect(toolPromptTokens([], { type: 'any' }, costs)).toBe(0);
    expect(toolPromptTokens(tools, undefined, toolCosts('anthropic', 'anthropic'))).toBe(0);
    // Gemini documents none (its tool-use prompts are reported apart, as toolUsePromptTokenCount).
    expect(toolPromptTokens(tools, undefined, toolCosts('gemini', 'gemini', { toolUseSystemPrompt: { auto: 497, any: 589 } }))).toBe(0);
  });

  describe('a schema as generators write it (pydantic, zod): $ref to $defs, anyOf for an optional member', () => {
    const costs = toolCosts('openai-chat', 'o200k_base');
    const fn = (parameters: object) => unitTokens('openai-chat', 'tools', { type: 'function', function: { name: 'save_person', description: 'Save a person.', parameters } }, o200k, costs);
    const address = { type: 'object', properties: { street: { type: 'string', description: 'Street and number' }, city: { type: 'string' }, country: { type: 'string', enum: ['FR', 'DE'] } } };
    const person = (member: object) => ({ type: 'object', properties: { name: { type: 'string', description: 'Full name' }, address: member } });

    it('a member given by $ref counts as the schema it names, written in place (the model reads the same members)', () => {
      const inline = fn(person({ ...address, description: 'Where they live' }));
      expect(inline).toBeGreaterThan(fn(person({ type: 'object', description: 'Where they live' })));
      expect(fn({ ...person({ $ref: '#/$defs/Address', description: 'Where they live' }), $defs: { Address: address } })).toBe(inline);
      expect(fn({ ...person({ $ref: '#/definitions/Address', description: 'Where they live' }), definitions: { Address: address } })).toBe(inline);
    });

    it("anyOf, oneOf: the alternatives' types joined, an object alternative's members counted", () => {
      const c = FUNCTION_TOKENS.o200k_base;
      const inline = fn(person({ ...address, description: 'Where they live' }));
      const optional = fn(person({ anyOf: [address, { type: 'null' }], description: 'Where they live' }));
      expect(optional).toBe(inline - o200k('address:object:Where they live') + o200k('address:object | null:Where they live'));
      expect(fn({ ...person({ oneOf: [{ $ref: '#/$defs/Address' }, { type: 'null' }], description: 'Where they live' }), $defs: { Address: address } })).toBe(optional);
      // allOf (a description beside a $ref, as pydantic writes it): the members of each part.
      expect(fn({ ...person({ allOf: [{ $ref: '#/$defs/Address' }], description: 'Where they live' }), $defs: { Address: address } })).toBe(inline);
      expect(c.properties).toBe(3);
    });

    it('a definition is counted once however often it is named, and a recursive one ends', () => {
      // A chain of n definitions, each naming the next twice: counted once each, the count grows by one definition a link.
      const chain = (n: number) => {
        const defs: Record<string, object> = {};
        for (let i = 0; i < n; i++) defs[`D${i}`] = { type: 'object', properties: i + 1 < n ? { left: { $ref: `#/$defs/D${i + 1}` }, right: { $ref: `#/$defs/D${i + 1}` } } : { leaf: { type: 'string' } } };
        return fn({ type: 'object', properties: { root: { $ref: '#/$defs/D0' } }, $defs: defs });
      };
      const step = chain(41) - chain(40);
      expect(chain(42) - chain(41)).toBe(step);
      expect(step).toBeLessThan(40);
      const tree = { type: 'object', properties: { root: { $ref: '#/$defs/Node' } }, $defs: { Node: { type: 'object', properties: { label: { type: 'string' }, children: { type: 'array', items: { $ref: '#/$defs/Node' } } } } } };
      expect(fn(tree)).toBeGreaterThan(fn({ type: 'object', properties: { root: { type: 'object' } } }));
      // A reference to nothing is its own text (no member to count).
      expect(fn(person({ $ref: '#/$defs/Nope' }))).toBe(fn(person({})));
    });

    it('references chained past the nesting a body may have are counted as far as that depth, not to a stack overflow', () => {
      // Each definition is shallow, but written in place one inside the next they are 20,000 levels deep.
      for (const via of ['properties', 'anyOf'] as const) {
        const defs: Record<string, object> = {};
        for (let i = 0; i < 20_000; i++) {
          const next = { $ref: `#/$defs/D${i + 1}` };
          defs[`D${i}`] = via === 'properties' ? { type: 'object', properties: { next } } : { anyOf: [{ type: 'object', properties: { k: { type: 'string' } } }, next] };
        }
        const n = fn({ type: 'object', properties: { root: { $ref: '#/$defs/D0' } }, $defs: defs });
        expect(n, via).toBeGreaterThan(100);
        expect(n, via).toBeLessThan(20_000);
      }
    });
  });

  it('property: a function with any properties counts no less than the recipe without nesting, and its nested members on top', () => {
    const name = fc.stringMatching(/^[a-z_]{1,12}$/);
    const prop = fc.record({ type: fc.constantFrom('string', 'integer', 'boolean'), description: fc.string({ maxLength: 30 }) });
    fc.assert(
      fc.property(name, fc.dictionary(name, prop, { maxKeys: 6 }), fc.dictionary(name, prop, { minKeys: 1, maxKeys: 4 }), (fn, props, nested) => {
        const c = FUNCTION_TOKENS.o200k_base;
        const costs = toolCosts('openai-chat', 'o200k_base');
        const flat = { type: 'function', function: { name: fn, description: 'Does it.', parameters: { type: 'object', properties: props } } };
        const line = (k: string, p: { type: string; description: string }) => c.property + o200k(`${k}:${p.type}:${p.description.endsWith('.') ? p.description.slice(0, -1) : p.description}`);
        const entries = Object.entries(props);
        const expected = c.func + o200k(`${fn}:Does it`) + (entries.length ? c.properties + entries.reduce((n, [k, p]) => n + line(k, p), 0) : 0);
        expect(unitTokens('openai-chat', 'tools', flat, o200k, costs)).toBe(expected);
        const withNested = { type: 'function', function: { ...flat.function, parameters: { type: 'object', properties: { ...props, nested_1: { type: 'object', description: '', properties: nested } } } } };
        const inner = c.properties + Object.entries(nested).reduce((n, [k, p]) => n + line(k, p), 0);
        const outer = (entries.length ? 0 : c.properties) + c.property + o200k('nested_1:object:');
        expect(unitTokens('openai-chat', 'tools', withNested, o200k, costs)).toBe(expected + outer + inner);
      }),
    );
  });
});
