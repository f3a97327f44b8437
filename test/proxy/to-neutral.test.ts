// The proxy's pure helpers: provider messages → neutral messages for sessions,
// streamed answers rebuilt into the non-streaming shape, and the one body edit.

import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors';
import { withIncludeUsage } from '../../src/domain/proxy/body';
import { createStreamReply, replyMessage, turnMessages, UNKEEPABLE, type ProxyFormat } from '../../src/domain/proxy/to-neutral';

const PNG = 'iVBORw0KGgo=';

function refusal(f: () => unknown): DomainError {
  try {
    f();
  } catch (e) {
    if (e instanceof DomainError) return e;
    throw e;
  }
  throw new Error('expected a DomainError');
}

describe('turnMessages: Anthropic', () => {
  it('keeps text, images, tool use and results; drops caching directives', () => {
    const body = {
      messages: [
        { role: 'user', content: 'plain' },
        {
          role: 'assistant',
          content: [
            { type: 'text', text: 'calling', cache_control: { type: 'ephemeral' } },
            { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'cold' }], is_error: false },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
            { type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } },
          ],
        },
      ],
    };
    expect(turnMessages('anthropic', body)).toEqual([
      { role: 'user', content: 'plain' },
      { role: 'assistant', content: [{ type: 'text', text: 'calling' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } }] },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'cold' }], is_error: false },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } },
        ],
      },
    ]);
  });

  it('refuses what a session cannot hold, naming the place', () => {
    const doc = refusal(() => turnMessages('anthropic', { messages: [{ role: 'user', content: [{ type: 'document', source: {} }] }] }));
    expect(doc.errors).toEqual([{ pointer: '/messages/0/content/0', detail: expect.stringContaining('"document"') }]);
    const handle = refusal(() => turnMessages('anthropic', { messages: [{ type: 'handle', ref: 'ses_x' }] }));
    expect(handle.errors[0]!.pointer).toBe('/messages/0');
    const media = refusal(() => turnMessages('anthropic', { messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/tiff', data: PNG } }] }] }));
    expect(media.errors[0]!.pointer).toBe('/messages/0/content/0/source/media_type');
    // A tool call's input that is not an object is refused as OpenAI's arguments are, not kept as {}.
    const input = refusal(() => turnMessages('anthropic', { messages: [{ role: 'assistant', content: [{ type: 'tool_use', id: 't', name: 'f', input: 'str' }] }] }));
    expect(input.errors).toEqual([{ pointer: '/messages/0/content/0/input', detail: 'tool_use input must be a JSON object' }]);
  });

  it('refuses blank text (providers refuse it when it is sent back), a message without a role, a block without a type', () => {
    const blank = /must contain non-whitespace text/;
    for (const [format, body, pointer] of [
      ['anthropic', { messages: [{ role: 'user', content: '' }] }, '/messages/0/content'],
      ['anthropic', { messages: [{ role: 'user', content: [{ type: 'text', text: ' \n' }] }] }, '/messages/0/content/0/text'],
      ['openai-chat', { messages: [{ role: 'user', content: '' }] }, '/messages/0/content'],
      ['openai-responses', { input: ' ' }, '/input'],
      ['openai-responses', { input: [{ role: 'user', content: '' }] }, '/input/0/content'],
    ] as const) {
      const e = refusal(() => turnMessages(format, body));
      expect(e.errors, `${format} ${JSON.stringify(body)}`).toEqual([{ pointer, detail: expect.stringMatching(blank) }]);
    }
    expect(refusal(() => turnMessages('openai-chat', { messages: [{ content: 'x' }] })).errors).toEqual([{ pointer: '/messages/0/role', detail: 'a message needs a role' }]);
    expect(refusal(() => turnMessages('anthropic', { messages: [{ role: 'user', content: [{ text: 'x' }] }] })).errors).toEqual([{ pointer: '/messages/0/content/0/type', detail: 'a content block needs a type' }]);
    expect(refusal(() => turnMessages('openai-chat', { messages: [{ role: 'user', content: [{ text: 'x' }] }] })).errors).toEqual([{ pointer: '/messages/0/content/0/type', detail: 'a content part needs a type' }]);
  });

  it("points a refusal found once the turn is converted at the body's place, not at the converted list's", () => {
    // A system message left out, tool messages joined into one, Gemini's contents and parts, Responses items joined.
    const blank = 'must contain non-whitespace text (providers refuse empty text blocks)';
    const surrogate = 'string contains a lone UTF-16 surrogate (not valid Unicode)';
    const cases: Array<[ProxyFormat, Record<string, unknown>, string, string]> = [
      ['gemini', { contents: [{ role: 'user', parts: [{ text: 'a' }, { text: ' ' }] }] }, '/contents/0/parts/1/text', blank],
      ['gemini', { contents: [{ role: 'user', parts: [{ text: '\ud800' }] }] }, '/contents/0/parts/0/text', surrogate],
      // The body has no `input` there: the part itself.
      ['gemini', { contents: [{ role: 'user', parts: [{ inlineData: { mimeType: 'image/png', data: '' } }] }] }, '/contents/0/parts/0', 'must be base64, not empty'],
      ['gemini', { contents: [{ role: 'user', parts: [] }] }, '/contents/0', 'Too small: expected array to have >=1 items'],
      ['openai-chat', { messages: [{ role: 'system', content: 's' }, { role: 'user', content: [{ type: 'text', text: ' ' }] }] }, '/messages/1/content/0/text', blank],
      ['openai-chat', { messages: [{ role: 'developer', content: 's' }, { role: 'user', content: '' }] }, '/messages/1/content', blank],
      [
        'openai-chat',
        {
          messages: [
            { role: 'assistant', tool_calls: ['a', 'b'].map((id) => ({ id, type: 'function', function: { name: 'f', arguments: '{}' } })) },
            { role: 'tool', tool_call_id: 'a', content: 'x' },
            { role: 'tool', tool_call_id: 'b', content: [{ type: 'text', text: '' }] },
          ],
        },
        '/messages/2/content/0/text',
        blank,
      ],
      ['openai-chat', { messages: [{ role: 'system', content: 's' }, { role: 'assistant', content: '\udc00' }] }, '/messages/1/content', surrogate],
      ['openai-responses', { input: [{ role: 'developer', content: 's' }, { role: 'user', content: [{ type: 'input_text', text: ' ' }] }] }, '/input/1/content/0/text', blank],
      ['openai-responses', { input: [{ type: 'function_call', call_id: 'a', name: 'f', arguments: '{}' }, { type: 'function_call', call_id: 'b', name: 'f', arguments: '{"k":"\ud800"}' }] }, '/input/1', surrogate],
      // Anthropic's turn has our shape: the path as it is.
      ['anthropic', { messages: [{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: ' ' }] }] }, '/messages/0/content/1/text', blank],
    ];
    for (const [format, body, pointer, detail] of cases) {
      const e = refusal(() => turnMessages(format, body as Parameters<typeof turnMessages>[1]));
      expect(e.errors, `${format} ${JSON.stringify(body)}`).toEqual([{ pointer, detail }]);
    }
    // A Gemini part that is a handle block is said to be one, at the part.
    const handle = refusal(() => turnMessages('gemini', { contents: [{ role: 'user', parts: [{ text: 'hi' }, { type: 'handle', ref: 'art_x' }] }] }));
    expect(handle.errors).toEqual([{ pointer: '/contents/0/parts/1', detail: expect.stringContaining('a handle block cannot be kept (reference handles with x-ph-prefix') }]);
  });
});

describe('turnMessages: OpenAI chat', () => {
  it('skips instructions, turns tool calls into tool_use and merges consecutive tool results', () => {
    const body = {
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'developer', content: 'really brief' },
        { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'call_1', type: 'function', function: { name: 'a', arguments: '{"x":1}' } },
            { id: 'call_2', type: 'function', function: { name: 'b', arguments: '' } },
          ],
        },
        { role: 'tool', tool_call_id: 'call_1', content: 'one' },
        { role: 'tool', tool_call_id: 'call_2', content: [{ type: 'text', text: 'two' }] },
        { role: 'assistant', content: 'done' },
      ],
    };
    expect(turnMessages('openai-chat', body)).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'look' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } }] },
      {
        role: 'assistant',
        content: [
          { type: 'tool_use', id: 'call_1', name: 'a', input: { x: 1 } },
          { type: 'tool_use', id: 'call_2', name: 'b', input: {} },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'call_1', content: 'one' },
          { type: 'tool_result', tool_use_id: 'call_2', content: [{ type: 'text', text: 'two' }] },
        ],
      },
      { role: 'assistant', content: 'done' },
    ]);
  });

  it('refuses tool arguments that are not a JSON object', () => {
    const e = refusal(() =>
      turnMessages('openai-chat', { messages: [{ role: 'assistant', tool_calls: [{ id: 'c', type: 'function', function: { name: 'a', arguments: '[1]' } }] }] }),
    );
    expect(e.errors[0]!.pointer).toBe('/messages/0/tool_calls/0/function/arguments');
  });

  it('refuses what the neutral shape would drop: an image detail other than "auto", a message name', () => {
    const image = (detail?: string) => ({ type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}`, ...(detail ? { detail } : {}) } });
    const low = refusal(() => turnMessages('openai-chat', { messages: [{ role: 'user', content: [image('low')] }] }));
    expect(low.errors).toEqual([{ pointer: '/messages/0/content/0/image_url/detail', detail: expect.stringContaining('an image detail ("low") cannot be kept') }]);
    expect(turnMessages('openai-chat', { messages: [{ role: 'user', content: [image('auto')] }] })).toHaveLength(1);
    const named = refusal(() => turnMessages('openai-chat', { messages: [{ role: 'user', name: 'alice', content: 'hi' }] }));
    expect(named.errors).toEqual([{ pointer: '/messages/0/name', detail: expect.stringContaining('a message name cannot be kept') }]);
    // Clients that send null for "none" lose nothing.
    expect(turnMessages('openai-chat', { messages: [{ role: 'user', name: null, content: [image(undefined)] }] })).toHaveLength(1);
    const responses = refusal(() => turnMessages('openai-responses', { input: [{ role: 'user', content: [{ type: 'input_image', image_url: `data:image/png;base64,${PNG}`, detail: 'high' }] }] }));
    expect(responses.errors[0]!.pointer).toBe('/input/0/content/0/detail');
  });
});

describe('turnMessages: a field the neutral shape has no place for', () => {
  // Kept without it, the next turn would render the message differently from how it was sent (and cached), and lose it.
  it('is refused wherever it stands, naming it, in each format', () => {
    const cases: Array<[ProxyFormat, Record<string, unknown>, string]> = [
      ['anthropic', { messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', citations: [{ type: 'char_location', cited_text: 'x' }] }] }] }, '/messages/0/content/0/citations'],
      ['anthropic', { messages: [{ role: 'user', content: 'hi', metadata: { a: 1 } }] }, '/messages/0/metadata'],
      ['anthropic', { messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'text', text: 'r', citations: [{}] }] }] }] }, '/messages/0/content/0/content/0/citations'],
      ['openai-chat', { messages: [{ role: 'user', content: 'hi', audio: { id: 'a1' } }] }, '/messages/0/audio'],
      ['openai-chat', { messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', extra: 2 }] }] }, '/messages/0/content/0/extra'],
      ['openai-chat', { messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}', strict: true } }] }] }, '/messages/0/tool_calls/0/function/strict'],
      ['openai-responses', { input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi', extra: 3 }] }] }, '/input/0/content/0/extra'],
      ['openai-responses', { input: [{ type: 'function_call_output', call_id: 'c', output: 'r', extra: 'x' }] }, '/input/0/extra'],
    ];
    for (const [format, body, pointer] of cases) {
      const e = refusal(() => turnMessages(format, body));
      expect(e.errors, pointer).toEqual([{ pointer, detail: expect.stringContaining(`the field "${pointer.split('/').pop()}" cannot be kept`) }]);
    }
  });

  it('passes when it says nothing (null, an empty list) or is no prompt content (cache_control, a Responses item id and status)', () => {
    expect(turnMessages('anthropic', { messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', citations: null, cache_control: { type: 'ephemeral' } }] }] })).toEqual([{ role: 'user', content: [{ type: 'text', text: 'hi' }] }]);
    expect(turnMessages('openai-chat', { messages: [{ role: 'user', content: 'hi', audio: null }, { role: 'system', content: 'be brief', whatever: 1 }] })).toEqual([{ role: 'user', content: 'hi' }]);
    expect(turnMessages('openai-responses', { input: [{ type: 'message', id: 'msg_1', status: 'completed', role: 'user', content: [{ type: 'input_text', text: 'hi', annotations: [] }] }] })).toEqual([{ role: 'user', content: [{ type: 'text', text: 'hi' }] }]);
  });
});

describe('turnMessages: OpenAI responses', () => {
  it('a string input is one user message', () => {
    expect(turnMessages('openai-responses', { input: 'hi' })).toEqual([{ role: 'user', content: 'hi' }]);
  });

  it('items: messages, function calls joined to their assistant turn, outputs to one user turn; reasoning skipped', () => {
    const input = [
      { role: 'developer', content: 'rules' },
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'q' }] },
      { type: 'reasoning', id: 'rs_1', summary: [] },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'let me check', annotations: [] }] },
      { type: 'function_call', call_id: 'fc_1', name: 'lookup', arguments: '{"q":"a"}' },
      { type: 'function_call_output', call_id: 'fc_1', output: 'found' },
    ];
    expect(turnMessages('openai-responses', { input })).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'q' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'let me check' }, { type: 'tool_use', id: 'fc_1', name: 'lookup', input: { q: 'a' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'fc_1', content: 'found' }] },
    ]);
    const e = refusal(() => turnMessages('openai-responses', { input: [{ type: 'file_search_call', id: 'x' }] }));
    expect(e.errors[0]!.pointer).toBe('/input/0');
  });
});

describe('replyMessage', () => {
  it('a reply nested too deep to keep is unkeepable, at the limit it is kept', () => {
    const nest = (n: number): unknown => (n === 0 ? 1 : { a: nest(n - 1) });
    const reply = (n: number) => ({ type: 'message', content: [{ type: 'tool_use', id: 'toolu_1', name: 'f', input: nest(n) }] });
    // The input sits at depth 2 of the checked blocks ([0].input), so its innermost value at 2 + n.
    expect(replyMessage('anthropic', reply(510))).toMatchObject({ role: 'assistant' });
    expect(replyMessage('anthropic', reply(511))).toBe(UNKEEPABLE);
  });

  it('a reply nested past the stack (a provider\'s answer, 200,000 levels) is unkeepable, not a thrown RangeError', () => {
    let input: unknown = 1;
    for (let i = 0; i < 200_000; i++) input = { a: input };
    const reply = { type: 'message', content: [{ type: 'tool_use', id: 'toolu_1', name: 'f', input }] };
    expect(replyMessage('anthropic', reply)).toBe(UNKEEPABLE);
  });

  it('Anthropic: text, tool use and thinking (kept whole, marked as Anthropic\'s); thinking without its signature is left out', () => {
    const reply = {
      type: 'message',
      content: [
        { type: 'thinking', thinking: '…', signature: 'sig' },
        { type: 'redacted_thinking', data: 'enc' },
        { type: 'thinking', thinking: 'cut', signature: '' },
        { type: 'text', text: 'Checking.', citations: null },
        { type: 'tool_use', id: 'toolu_9', name: 'get_weather', input: { city: 'Bergen' } },
      ],
    };
    expect(replyMessage('anthropic', reply)).toEqual({
      role: 'assistant',
      content: [
        { type: 'thinking', provider: 'anthropic', thinking: '…', signature: 'sig' },
        { type: 'redacted_thinking', provider: 'anthropic', data: 'enc' },
        { type: 'text', text: 'Checking.' },
        { type: 'tool_use', id: 'toolu_9', name: 'get_weather', input: { city: 'Bergen' } },
      ],
    });
    // Thinking alone is no reply: nothing of it would be left for another provider.
    expect(replyMessage('anthropic', { content: [{ type: 'thinking', thinking: 'x', signature: 's' }] })).toBeNull();
    // Ending in thinking (cut inside it), it cannot be kept whole: a breakpoint would go on the thinking block.
    expect(replyMessage('anthropic', { content: [{ type: 'text', text: 'a' }, { type: 'thinking', thinking: 'x', signature: 's' }] })).toBe(UNKEEPABLE);
    // Blank text in a reply is left out: sent back in the session, providers would refuse it.
    expect(replyMessage('anthropic', { content: [{ type: 'text', text: '' }, { type: 'tool_use', id: 't', name: 'f', input: {} }] })).toEqual({
      role: 'assistant',
      content: [{ type: 'tool_use', id: 't', name: 'f', input: {} }],
    });
    expect(replyMessage('anthropic', { content: [{ type: 'text', text: '  ' }] })).toBeNull();
  });

  it('Anthropic: a tool call whose input is not an object (cut off mid-JSON, sent as its text) is unkeepable, never kept as {}', () => {
    for (const input of ['{"city": "Os', '{}', [1], null]) {
      const reply = { content: [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input }] };
      expect(replyMessage('anthropic', reply), JSON.stringify(input)).toBe(UNKEEPABLE);
    }
  });

  it('OpenAI chat (choice 0) and responses (messages and function calls)', () => {
    const chat = { choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: [{ id: 'call_7', type: 'function', function: { name: 'f', arguments: '{"a":[1]}' } }] } }] };
    expect(replyMessage('openai-chat', chat)).toEqual({ role: 'assistant', content: [{ type: 'tool_use', id: 'call_7', name: 'f', input: { a: [1] } }] });
    const response = {
      object: 'response',
      output: [
        { type: 'reasoning', id: 'rs', summary: [] },
        { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Sure.', annotations: [] }] },
        { type: 'function_call', call_id: 'fc_2', name: 'g', arguments: '{}' },
      ],
    };
    expect(replyMessage('openai-responses', response)).toEqual({ role: 'assistant', content: [{ type: 'text', text: 'Sure.' }, { type: 'tool_use', id: 'fc_2', name: 'g', input: {} }] });
    // A call whose arguments are not a JSON object: the reply is not kept at all (as for chat), never kept
    // without the call its next tool output answers.
    const broken = { ...response, output: [...response.output.slice(0, 2), { type: 'function_call', call_id: 'fc_3', name: 'g', arguments: '[1' }] };
    expect(replyMessage('openai-responses', broken)).toBe(UNKEEPABLE);
    const brokenChat = { choices: [{ index: 0, message: { role: 'assistant', content: 'x', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '[1' } }] } }] };
    expect(replyMessage('openai-chat', brokenChat)).toBe(UNKEEPABLE);
  });
});

describe('turnMessages: reasoning state sent back in the turn', () => {
  const THINKING = { type: 'thinking', thinking: 'Hmm.', signature: 'sig' };
  it('Anthropic: thinking and redacted_thinking in an assistant message are kept whole; without a signature, or with another field, refused', () => {
    const messages = [{ role: 'assistant', content: [THINKING, { type: 'redacted_thinking', data: 'enc' }, { type: 'text', text: 'Sure.' }] }];
    expect(turnMessages('anthropic', { messages })).toEqual([
      { role: 'assistant', content: [{ type: 'thinking', provider: 'anthropic', thinking: 'Hmm.', signature: 'sig' }, { type: 'redacted_thinking', provider: 'anthropic', data: 'enc' }, { type: 'text', text: 'Sure.' }] },
    ]);
    const pointerOf = (content: unknown[]) => refusal(() => turnMessages('anthropic', { messages: [{ role: 'assistant', content }] })).errors?.[0]?.pointer;
    expect(pointerOf([{ type: 'thinking', thinking: 'Hmm.' }, { type: 'text', text: 'x' }])).toBe('/messages/0/content/0');
    // Refused as Anthropic refuses it, not as a field a session has no place for (it said sessions keep no thinking).
    for (const block of [{ ...THINKING, cache_control: { type: 'ephemeral' } }, { type: 'redacted_thinking', data: 'enc', cache_control: { type: 'ephemeral', ttl: '1h' } }]) {
      const e = refusal(() => turnMessages('anthropic', { messages: [{ role: 'assistant', content: [block, { type: 'text', text: 'x' }] }] }));
      expect(e.errors).toEqual([{ pointer: '/messages/0/content/0/cache_control', detail: `Anthropic refuses cache_control on a ${block.type} block; mark the text or tool_use after it (the service marks a message's last block itself)` }]);
    }
  });

  it('Gemini: a thoughtSignature is kept on its text or functionCall part; on a functionResponse it is refused', () => {
    const contents = [{ role: 'model', parts: [{ text: 'Checking.', thoughtSignature: 'a' }, { functionCall: { name: 'f', args: {} }, thoughtSignature: 'b' }] }];
    expect(turnMessages('gemini', { contents })).toEqual([
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Checking.', thought_signature: { provider: 'gemini', signature: 'a' } },
          { type: 'tool_use', id: 'f', name: 'f', input: {}, thought_signature: { provider: 'gemini', signature: 'b' } },
        ],
      },
    ]);
    const e = refusal(() => turnMessages('gemini', { contents: [{ role: 'user', parts: [{ functionResponse: { name: 'f', response: {} }, thoughtSignature: 'c' }] }] }));
    expect(e.errors?.[0]?.pointer).toBe('/contents/0/parts/0/thoughtSignature');
  });
});

describe('createStreamReply', () => {
  const feed = (format: ProxyFormat, events: unknown[]) => {
    const r = createStreamReply(format);
    for (const e of events) r.push(e);
    return r;
  };

  it('Anthropic: text deltas and tool input in pieces rebuild the message', () => {
    const r = feed('anthropic', [
      { type: 'message_start', message: { id: 'msg', content: [] } },
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Let me ' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'check.' } },
      { type: 'content_block_stop', index: 0 },
      { type: 'content_block_start', index: 1, content_block: { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} } },
      { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '{"city":' } },
      { type: 'content_block_delta', index: 1, delta: { type: 'input_json_delta', partial_json: '"Oslo"}' } },
      { type: 'content_block_stop', index: 1 },
    ]);
    expect(r.ended).toBe(false);
    r.push({ type: 'message_stop' });
    expect(r).toMatchObject({ ended: true, succeeded: true });
    expect(replyMessage('anthropic', r.response())).toEqual({
      role: 'assistant',
      content: [{ type: 'text', text: 'Let me check.' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } }],
    });
  });

  it('Anthropic: a thinking block in pieces, then its signature, is kept whole before the tool call', () => {
    const r = feed('anthropic', [
      { type: 'message_start', message: { id: 'msg', content: [] } },
      { type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'Weather: ' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: 'call the tool.' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'EqQB' } },
      { type: 'content_block_stop', index: 0 },
      { type: 'content_block_start', index: 1, content_block: { type: 'redacted_thinking', data: 'enc' } },
      { type: 'content_block_stop', index: 1 },
      { type: 'content_block_start', index: 2, content_block: { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} } },
      { type: 'content_block_delta', index: 2, delta: { type: 'input_json_delta', partial_json: '{}' } },
      { type: 'content_block_stop', index: 2 },
      { type: 'message_stop' },
    ]);
    expect(replyMessage('anthropic', r.response())).toEqual({
      role: 'assistant',
      content: [
        { type: 'thinking', provider: 'anthropic', thinking: 'Weather: call the tool.', signature: 'EqQB' },
        { type: 'redacted_thinking', provider: 'anthropic', data: 'enc' },
        { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} },
      ],
    });
  });

  it('Gemini: a signature sent on a later text piece belongs to the text it ends; a signed part is not joined by the next', () => {
    const chunk = (part: object) => ({ candidates: [{ content: { role: 'model', parts: [part] } }] });
    const r = feed('gemini', [chunk({ text: 'Sunny ' }), chunk({ text: 'in Oslo.' }), chunk({ text: '', thoughtSignature: 'sig' }), chunk({ text: 'More.' })]);
    expect(replyMessage('gemini', r.response())).toEqual({
      role: 'assistant',
      content: [
        { type: 'text', text: 'Sunny in Oslo.', thought_signature: { provider: 'gemini', signature: 'sig' } },
        { type: 'text', text: 'More.' },
      ],
    });
  });

  it('Gemini: a part holding a signature alone (how Gemini 3 may end a text answer) signs the text before it; after a call, or not streamed, it is left out: the reply is kept', () => {
    const chunk = (...parts: object[]) => ({ candidates: [{ content: { role: 'model', parts } }] });
    const streamed = feed('gemini', [chunk({ text: 'Sunny ' }), chunk({ text: 'in Oslo.' }), chunk({ thoughtSignature: 'sig' })]);
    expect(replyMessage('gemini', streamed.response())).toEqual({
      role: 'assistant',
      content: [{ type: 'text', text: 'Sunny in Oslo.', thought_signature: { provider: 'gemini', signature: 'sig' } }],
    });
    const call = { functionCall: { name: 'f', args: {} }, thoughtSignature: 'c' };
    const afterCall = feed('gemini', [chunk(call), chunk({ thoughtSignature: 'extra' })]);
    expect(replyMessage('gemini', afterCall.response())).toEqual({ role: 'assistant', content: [{ type: 'tool_use', id: 'f', name: 'f', input: {}, thought_signature: { provider: 'gemini', signature: 'c' } }] });
    // Before: a part of no known kind, the whole reply unkeepable, and the session not appended.
    expect(replyMessage('gemini', { candidates: [{ content: { role: 'model', parts: [{ text: 'Sunny.' }, { thoughtSignature: 'sig' }] }, finishReason: 'STOP' }] })).toEqual({
      role: 'assistant',
      content: [{ type: 'text', text: 'Sunny.' }],
    });
  });

  it('Anthropic: tool input pieces that do not make JSON (max_tokens cut the call) leave the reply unkeepable, with or without the block stop', () => {
    const cut = [
      { type: 'message_start', message: { id: 'msg', content: [] } },
      { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: {} } },
      { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '{"city": ' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: '"Os' } },
    ];
    for (const events of [[...cut, { type: 'content_block_stop', index: 0 }, { type: 'message_stop' }], [...cut, { type: 'message_stop' }]]) {
      const r = feed('anthropic', events);
      expect(r.succeeded).toBe(true);
      expect(replyMessage('anthropic', r.response())).toBe(UNKEEPABLE);
    }
    // Pieces that complete the JSON are kept, also when the block's stop never came.
    const whole = feed('anthropic', [...cut, { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: 'lo"}' } }, { type: 'message_stop' }]);
    expect(replyMessage('anthropic', whole.response())).toEqual({ role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } }] });
  });

  it('OpenAI chat: content and tool calls by index; ends at [DONE]', () => {
    const r = feed('openai-chat', [
      { choices: [{ index: 0, delta: { role: 'assistant', content: 'Hm' } }] },
      { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_', arguments: '' } }] } }] },
      { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { name: 'weather', arguments: '{"city"' } }] } }] },
      { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: ':"Oslo"}' } }] } }] },
      { choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] },
      { choices: [], usage: { prompt_tokens: 10 } },
    ]);
    expect(r).toMatchObject({ ended: false, succeeded: true });
    r.push('[DONE]');
    expect(r.ended).toBe(true);
    expect(replyMessage('openai-chat', r.response())).toEqual({
      role: 'assistant',
      content: [{ type: 'text', text: 'Hm' }, { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Oslo' } }],
    });
  });

  it('an index that is no place in the answer (negative, fractional, missing, far past the blocks so far) leaves it unkeepable, at once', () => {
    const anthropic = (index: unknown) => [
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hi.' } },
      { type: 'content_block_start', ...(index === undefined ? {} : { index }), content_block: { type: 'tool_use', id: 'toolu_1', name: 'f', input: {} } },
      { type: 'content_block_delta', ...(index === undefined ? {} : { index }), delta: { type: 'input_json_delta', partial_json: '{}' } },
      { type: 'message_stop' },
    ];
    const chat = (index: unknown) => [
      { choices: [{ index: 0, delta: { tool_calls: [{ ...(index === undefined ? {} : { index }), id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }] } }] },
      { choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] },
      '[DONE]',
    ];
    for (const index of [1_000_000_000, 1e300, 18, -1, 1.5, '1', undefined]) {
      expect(replyMessage('anthropic', feed('anthropic', anthropic(index)).response()), `anthropic ${index}`).toBe(UNKEEPABLE);
      expect(replyMessage('openai-chat', feed('openai-chat', chat(index)).response()), `chat ${index}`).toBe(UNKEEPABLE);
    }
    // A few skipped places are followed (a block a gateway left out), the answer kept in order.
    expect(replyMessage('anthropic', feed('anthropic', anthropic(2)).response())).toMatchObject({ content: [{ type: 'text' }, { type: 'tool_use', input: {} }] });
    expect(replyMessage('openai-chat', feed('openai-chat', chat(3)).response())).toMatchObject({ content: [{ type: 'tool_use', id: 'call_1' }] });
  });

  it('Responses: the terminal event carries the answer; completed and incomplete succeed, failed does not', () => {
    const done = feed('openai-responses', [{ type: 'response.completed', response: { output: [{ type: 'message', content: [{ type: 'output_text', text: 'ok' }] }] } }]);
    expect(done).toMatchObject({ ended: true, succeeded: true });
    expect(replyMessage('openai-responses', done.response())).toEqual({ role: 'assistant', content: [{ type: 'text', text: 'ok' }] });
    expect(feed('openai-responses', [{ type: 'response.incomplete', response: { status: 'incomplete', output: [] } }])).toMatchObject({ ended: true, succeeded: true });
    expect(feed('openai-responses', [{ type: 'response.failed', response: { status: 'failed', output: [] } }])).toMatchObject({ ended: true, succeeded: false });
  });
});

describe('withIncludeUsage', () => {
  const check = (text: string) => {
    const out = withIncludeUsage(text, JSON.parse(text));
    expect(JSON.parse(out).stream_options.include_usage).toBe(true);
    return out;
  };

  it('inserts the option after the opening brace, every caller byte after it unchanged', () => {
    const text = ' {\n  "model": "gpt-4.1",  "stream": true }';
    expect(check(text)).toBe(` {"stream_options":{"include_usage":true},\n  "model": "gpt-4.1",  "stream": true }`);
  });

  it('edits an existing stream_options in place', () => {
    expect(check('{"stream_options":{"x":1},"stream":true}')).toBe('{"stream_options":{"include_usage":true,"x":1},"stream":true}');
    expect(check('{"stream_options":{"include_usage":false},"stream":true}')).toBe('{"stream_options":{"include_usage":true},"stream":true}');
    expect(check('{"stream":true,"stream_options":null}')).toBe('{"stream":true,"stream_options":{"include_usage":true}}');
  });
});

describe('OpenAI Responses reasoning items', () => {
  const RS = { id: 'rs_1', type: 'reasoning', summary: [{ type: 'summary_text', text: '**Plan**' }], encrypted_content: 'gAAAAAB-enc' };
  const KEPT = { type: 'reasoning', provider: 'openai', id: 'rs_1', summary: [{ type: 'summary_text', text: '**Plan**' }], encrypted_content: 'gAAAAAB-enc' };
  const CALL = { type: 'function_call', id: 'fc_1', call_id: 'call_1', name: 'lookup', arguments: '{"q":"a"}', status: 'completed' };

  it("a turn's item with encrypted_content joins the assistant output it preceded; one with an id alone is dropped; a field it has no place for is refused", () => {
    const input = [{ role: 'user', content: 'q' }, { ...RS, status: 'completed' }, CALL, { type: 'function_call_output', call_id: 'call_1', output: 'found' }, { type: 'reasoning', id: 'rs_2', summary: [] }, { role: 'assistant', content: 'done' }];
    expect(turnMessages('openai-responses', { input })).toEqual([
      { role: 'user', content: 'q' },
      { role: 'assistant', content: [KEPT, { type: 'tool_use', id: 'call_1', name: 'lookup', input: { q: 'a' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: 'found' }] },
      { role: 'assistant', content: 'done' },
    ]);
    expect(refusal(() => turnMessages('openai-responses', { input: [{ role: 'user', content: 'q' }, { ...RS, content: [{ type: 'reasoning_text', text: 'x' }] }, CALL] })).errors[0]!.pointer).toBe('/input/1/content');
    expect(refusal(() => turnMessages('openai-responses', { input: [{ role: 'user', content: 'q' }, { ...RS, summary: [{ type: 'x', text: 'y' }] }, CALL] })).errors[0]!.pointer).toBe('/input/1/summary/0');
  });

  it('kept from a reply, unstreamed and streamed (the terminal event carries it); an item without encrypted_content is not', () => {
    const response = { object: 'response', output: [RS, CALL] };
    expect(replyMessage('openai-responses', response)).toEqual({ role: 'assistant', content: [KEPT, { type: 'tool_use', id: 'call_1', name: 'lookup', input: { q: 'a' } }] });
    const stream = createStreamReply('openai-responses');
    stream.push({ type: 'response.output_item.done', output_index: 0, item: RS });
    stream.push({ type: 'response.completed', response });
    expect(replyMessage('openai-responses', stream.response())).toEqual(replyMessage('openai-responses', response));
    const byId = { object: 'response', output: [{ type: 'reasoning', id: 'rs_1', summary: [] }, CALL] };
    expect(replyMessage('openai-responses', byId)).toEqual({ role: 'assistant', content: [{ type: 'tool_use', id: 'call_1', name: 'lookup', input: { q: 'a' } }] });
    // A summary not in the documented shape leaves the item out, not the reply unkept.
    const odd = { object: 'response', output: [{ ...RS, summary: [{ type: 'summary_image' }] }, CALL] };
    expect(replyMessage('openai-responses', odd)).toEqual(replyMessage('openai-responses', byId));
    // A reply of reasoning alone (cut before its answer) is no reply.
    expect(replyMessage('openai-responses', { object: 'response', output: [RS] })).toBeNull();
  });
});
