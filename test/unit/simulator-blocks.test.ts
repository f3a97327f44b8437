import { describe, expect, it } from 'vitest';
import {
  BLOCK_OVERHEAD_TOKENS,
  MESSAGE_OVERHEAD_TOKENS,
  blocksFromRequest,
  type RequestFormat,
} from '../../src/domain/simulator/blocks';
import { SimulationError } from '../../src/domain/simulator/cache';

/** A deterministic stand-in tokenizer: one token per 4 characters, rounded up. */
const countTokens = (text: string) => Math.ceil(text.length / 4);

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
const keys = (format: RequestFormat, body: unknown) => blocksFromRequest(format, body, countTokens).blocks.map((b) => b.key);

function anthropicBody() {
  return {
    model: 'claude-sonnet-4',
    max_tokens: 512,
    tools: [
      { name: 'search', description: 'Search the docs', input_schema: { type: 'object', properties: { q: { type: 'string' } } } },
      { name: 'open', description: 'Open a page', input_schema: { type: 'object', properties: { url: { type: 'string' } } } },
    ],
    system: [
      { type: 'text', text: 'You are a careful assistant.' },
      { type: 'text', text: 'House rules: cite sources.' },
    ],
    messages: [
      { role: 'user', content: 'Where is the TTL documented?' },
      { role: 'assistant', content: [{ type: 'text', text: 'Let me look.' }, { type: 'tool_use', id: 'tu_1', name: 'search', input: { q: 'ttl' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'tu_1', content: 'Found: 5 minutes.' }] },
    ],
  };
}

function chatBody() {
  return {
    model: 'gpt-5.6',
    tools: [{ type: 'function', function: { name: 'search', parameters: { type: 'object' } } }],
    messages: [
      { role: 'system', content: 'You are a careful assistant.' },
      { role: 'developer', content: [{ type: 'text', text: 'House rules.' }] },
      { role: 'user', content: [{ type: 'text', text: 'Question one' }, { type: 'text', text: 'More context' }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'search', arguments: '{"q":"x"}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'result' },
    ],
  };
}

function responsesBody() {
  return {
    model: 'gpt-5.6',
    instructions: 'You are a careful assistant.',
    tools: [{ type: 'function', name: 'search', parameters: { type: 'object' } }],
    input: [
      { role: 'user', content: [{ type: 'input_text', text: 'Question one' }] },
      { type: 'function_call', call_id: 'c1', name: 'search', arguments: '{}' },
      { type: 'function_call_output', call_id: 'c1', output: 'result' },
    ],
  };
}

describe('blocksFromRequest — anthropic', () => {
  it('one block per tool, system block and message content block, in tools → system → messages order', () => {
    const { blocks, totalTokens } = blocksFromRequest('anthropic', anthropicBody(), countTokens);
    expect(blocks).toHaveLength(2 + 2 + 1 + 2 + 1);
    expect(totalTokens).toBe(blocks[blocks.length - 1]!.endToken);
    for (let i = 1; i < blocks.length; i++) expect(blocks[i]!.endToken).toBeGreaterThan(blocks[i - 1]!.endToken);
    // system text block 0: "You are a careful assistant." = 28 chars → 7 tokens + block overhead
    expect(blocks[2]!.endToken - blocks[1]!.endToken).toBe(7 + BLOCK_OVERHEAD_TOKENS);
    // first message: string content "Where is the TTL documented?" = 28 chars → 7 + block + message overhead
    expect(blocks[4]!.endToken - blocks[3]!.endToken).toBe(7 + BLOCK_OVERHEAD_TOKENS + MESSAGE_OVERHEAD_TOKENS);
  });

  it('the same body twice gives the same keys', () => {
    expect(keys('anthropic', anthropicBody())).toEqual(keys('anthropic', anthropicBody()));
  });

  it('changing one system character changes keys from that block on only', () => {
    const before = keys('anthropic', anthropicBody());
    const body = anthropicBody();
    body.system[1]!.text = 'House rules: cite sources!';
    const after = keys('anthropic', body);
    expect(after.slice(0, 3)).toEqual(before.slice(0, 3));
    after.slice(3).forEach((k, i) => expect(k).not.toBe(before[3 + i]));
  });

  it('key order inside JSON does not matter (canonical JSON)', () => {
    const body = anthropicBody();
    const reordered = clone(body) as unknown as { tools: Array<Record<string, unknown>> };
    const t = reordered.tools[0]!;
    reordered.tools[0] = { input_schema: t.input_schema, description: t.description, name: t.name };
    expect(keys('anthropic', reordered)).toEqual(keys('anthropic', body));
  });

  it('cache_control does not change keys, and marks breakpoints with its TTL (default 5m)', () => {
    const plain = blocksFromRequest('anthropic', anthropicBody(), countTokens).blocks;
    const body = anthropicBody() as unknown as {
      tools: Array<Record<string, unknown>>;
      system: Array<Record<string, unknown>>;
      messages: Array<{ content: unknown }>;
    };
    body.tools[1]!.cache_control = { type: 'ephemeral', ttl: '1h' };
    body.system[1]!.cache_control = { type: 'ephemeral' };
    (body.messages[2]!.content as Array<Record<string, unknown>>)[0]!.cache_control = { type: 'ephemeral' };
    const marked = blocksFromRequest('anthropic', body, countTokens).blocks;
    expect(marked.map((b) => b.key)).toEqual(plain.map((b) => b.key));
    expect(marked.map((b) => b.endToken)).toEqual(plain.map((b) => b.endToken));
    expect(marked.map((b) => b.breakpoint ?? null)).toEqual([null, '1h', null, '5m', null, null, null, '5m']);
    expect(plain.every((b) => b.breakpoint === undefined)).toBe(true);
  });

  it('top-level cache_control (automatic caching) marks the last block', () => {
    const body = { ...anthropicBody(), cache_control: { type: 'ephemeral' } };
    const blocks = blocksFromRequest('anthropic', body, countTokens).blocks;
    expect(blocks.map((b) => b.breakpoint ?? null)).toEqual([null, null, null, null, null, null, null, '5m']);
  });

  it('a string system prompt is one block; an appended message extends the key chain', () => {
    const body = { system: 'Be brief.', messages: [{ role: 'user', content: 'Hi' }] };
    const longer = { ...body, messages: [...body.messages, { role: 'assistant', content: 'Hello' }] };
    const a = keys('anthropic', body);
    const b = keys('anthropic', longer);
    expect(a).toHaveLength(2);
    expect(b.slice(0, 2)).toEqual(a);
    expect(b).toHaveLength(3);
  });

  it('rejects a body that is not an object', () => {
    expect(() => blocksFromRequest('anthropic', 'nope', countTokens)).toThrow(SimulationError);
  });
});

describe('blocksFromRequest — openai-chat', () => {
  it('blocks per tool, message content part and tool call; same body → same keys', () => {
    const { blocks } = blocksFromRequest('openai-chat', chatBody(), countTokens);
    // tool, system, developer part, 2 user parts, 1 tool call, tool message
    expect(blocks).toHaveLength(7);
    expect(keys('openai-chat', chatBody())).toEqual(blocks.map((b) => b.key));
    expect(blocks.every((b) => b.breakpoint === undefined)).toBe(true);
  });

  it('changing the system message changes keys from that block on only', () => {
    const before = keys('openai-chat', chatBody());
    const body = chatBody();
    body.messages[0]!.content = 'You are a careful assistant!';
    const after = keys('openai-chat', body);
    expect(after[0]).toBe(before[0]);
    after.slice(1).forEach((k, i) => expect(k).not.toBe(before[1 + i]));
  });

  it('prompt_cache_breakpoint marks a breakpoint with the request TTL and does not change keys', () => {
    const body = chatBody();
    const dev = body.messages[1]!.content as Array<Record<string, unknown>>;
    dev[0]!.prompt_cache_breakpoint = { mode: 'explicit' };
    const plainKeys = keys('openai-chat', chatBody());
    const marked = blocksFromRequest('openai-chat', body, countTokens).blocks;
    expect(marked.map((b) => b.key)).toEqual(plainKeys);
    expect(marked[2]!.breakpoint).toBe('30m');
    const withTtl = blocksFromRequest('openai-chat', { ...body, prompt_cache_options: { ttl: '24h' } }, countTokens).blocks;
    expect(withTtl[2]!.breakpoint).toBe('24h');
  });

  it('cache_control on a content part is accepted as a breakpoint too', () => {
    const body = chatBody();
    const user = body.messages[2]!.content as Array<Record<string, unknown>>;
    user[1]!.cache_control = { type: 'ephemeral' };
    const marked = blocksFromRequest('openai-chat', body, countTokens).blocks;
    expect(marked.map((b) => b.key)).toEqual(keys('openai-chat', chatBody()));
    expect(marked.map((b) => b.breakpoint ?? null)).toEqual([null, null, null, null, '30m', null, null]);
  });
});

describe('blocksFromRequest — openai-responses', () => {
  it('tools → instructions → input items; same body → same keys; instructions change moves later keys only', () => {
    const { blocks } = blocksFromRequest('openai-responses', responsesBody(), countTokens);
    expect(blocks).toHaveLength(1 + 1 + 3);
    expect(keys('openai-responses', responsesBody())).toEqual(blocks.map((b) => b.key));
    const body = responsesBody();
    body.instructions = 'You are a careful assistant?';
    const after = keys('openai-responses', body);
    expect(after[0]).toBe(blocks[0]!.key);
    after.slice(1).forEach((k, i) => expect(k).not.toBe(blocks[1 + i]!.key));
  });

  it('string input is one user block; prompt_cache_breakpoint on an input part is found', () => {
    expect(blocksFromRequest('openai-responses', { input: 'hello' }, countTokens).blocks).toHaveLength(1);
    const body = responsesBody();
    (body.input[0]!.content as Array<Record<string, unknown>>)[0]!.prompt_cache_breakpoint = { mode: 'explicit' };
    const marked = blocksFromRequest('openai-responses', body, countTokens).blocks;
    expect(marked.map((b) => b.breakpoint ?? null)).toEqual([null, null, '30m', null, null]);
    expect(marked.map((b) => b.key)).toEqual(keys('openai-responses', responsesBody()));
  });
});

describe('blocksFromRequest — one prompt, several spellings', () => {
  // Providers build the same prompt from these: a turn sent inline, then again from a session the service
  // rendered in the other spelling, must be read from cache.
  it.each([
    [
      'anthropic',
      { model: 'm', max_tokens: 8, system: 'Rules.', messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }, { role: 'user', content: 'More' }] },
      {
        model: 'm',
        max_tokens: 8,
        system: [{ type: 'text', text: 'Rules.', cache_control: { type: 'ephemeral' } }],
        messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }, { role: 'assistant', content: [{ type: 'text', text: 'Hello', cache_control: { type: 'ephemeral' } }] }, { role: 'user', content: [{ type: 'text', text: 'More' }] }],
      },
    ],
    [
      'openai-chat',
      { model: 'm', messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello', refusal: null, annotations: [] }, { role: 'tool', tool_call_id: 'c1', content: 'ok' }] },
      { model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }, { role: 'assistant', content: [{ type: 'text', text: 'Hello' }] }, { role: 'tool', tool_call_id: 'c1', content: [{ type: 'text', text: 'ok' }] }] },
    ],
    [
      'openai-responses',
      { model: 'm', input: [{ role: 'user', content: 'Hi' }, { id: 'msg_1', type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: 'Hello', annotations: [], logprobs: [] }] }, { id: 'fc_1', type: 'function_call', status: 'completed', call_id: 'c1', name: 'f', arguments: '{}' }] },
      { model: 'm', input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hi' }] }, { role: 'assistant', content: 'Hello' }, { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' }] },
    ],
  ] as const)('%s: string content, cache markers and reply-only fields do not change keys or tokens', (format, a, b) => {
    const one = blocksFromRequest(format, a, countTokens);
    const other = blocksFromRequest(format, b, countTokens);
    expect(other.blocks.map((x) => [x.key, x.endToken])).toEqual(one.blocks.map((x) => [x.key, x.endToken]));
  });

  it('a string Responses input is the user message it stands for; the text itself still counts', () => {
    expect(keys('openai-responses', { model: 'm', input: 'Hi' })).toEqual(keys('openai-responses', { model: 'm', input: [{ role: 'user', content: 'Hi' }] }));
    expect(keys('openai-responses', { model: 'm', input: 'Hi' })).not.toEqual(keys('openai-responses', { model: 'm', input: 'Ho' }));
    expect(keys('openai-chat', { model: 'm', messages: [{ role: 'user', content: 'Hi' }] })).not.toEqual(keys('openai-chat', { model: 'm', messages: [{ role: 'assistant', content: 'Hi' }] }));
  });
});
