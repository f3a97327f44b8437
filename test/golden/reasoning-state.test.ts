// Reasoning state (Anthropic thinking blocks, Gemini thought signatures, OpenAI Responses reasoning items) renders
// back exactly for the provider that produced it and is left out for every other
// one: those expansions are byte for byte the ones of the same messages without
// it, so no existing handle's or session's bytes move (expansions.test.ts pins those).

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type Client, type TestApp } from '../helpers/app';
import { expansionFormats } from '../../src/domain/render/prompt';

let t: TestApp;
let client: Client;
beforeAll(() => {
  t = createTestApp();
  client = t.tenant().client;
});
afterAll(() => t.close());

const THINKING = { type: 'thinking', provider: 'anthropic', thinking: 'Weigh "units" first — °C.\n', signature: 'EqQBCkgIARABGAIiQL+/sig==' };
const REDACTED = { type: 'redacted_thinking', provider: 'anthropic', data: 'EmwKAhgBEgy3va3pzix/LafPsn4a' };
const GEMINI_SIG = { provider: 'gemini', signature: 'CiQBcsjafD3+ZZ/sig==' };
const OPENAI_REASONING = { type: 'reasoning', provider: 'openai', id: 'rs_68a1', summary: [{ type: 'summary_text', text: '**Units**\n\nWeigh "°C" first.' }], encrypted_content: 'gAAAAABo+enc/ry==' };

type Block = Record<string, unknown>;
type Msg = { role: 'user' | 'assistant'; content: string | Block[] };

/** The messages without their reasoning state: what every other provider is sent. */
const plain = (messages: Msg[]): Msg[] =>
  messages.map((m) => ({
    role: m.role,
    content: typeof m.content === 'string' ? m.content : m.content.filter((b) => b.type !== 'thinking' && b.type !== 'redacted_thinking' && b.type !== 'reasoning').map(({ thought_signature: _, ...b }) => b),
  }));

async function expansions(messages: Msg[]): Promise<Record<(typeof expansionFormats)[number], string>> {
  const res = await client.post('/v1/artifacts', { kind: 'messages', content: messages });
  expect(res.status, res.text).toBe(201);
  const out = {} as Record<(typeof expansionFormats)[number], string>;
  for (const format of expansionFormats) out[format] = (await client.get(`/v1/handles/${res.json.id as string}/expand?format=${format}`)).text;
  return out;
}

const conversation: Msg[] = [
  { role: 'user', content: 'Weather in Oslo?' },
  { role: 'assistant', content: [THINKING, REDACTED, { type: 'text', text: 'Checking.', thought_signature: GEMINI_SIG }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' }, thought_signature: GEMINI_SIG }] },
  { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'cold' }] },
];

describe('reasoning state in rendered messages', () => {
  it("renders for its provider in the provider's own fields and order, and is left out for every other", async () => {
    const withState = await expansions(conversation);
    const without = await expansions(plain(conversation));
    expect(withState['openai-chat']).toBe(without['openai-chat']);
    expect(withState['openai-responses']).toBe(without['openai-responses']);
    expect(withState.anthropic).toContain(
      '{"role":"assistant","content":[{"type":"thinking","thinking":"Weigh \\"units\\" first — °C.\\n","signature":"EqQBCkgIARABGAIiQL+/sig=="},{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix/LafPsn4a"},{"type":"text","text":"Checking."},{"type":"tool_use"',
    );
    expect(withState.anthropic).not.toContain(GEMINI_SIG.signature);
    expect(withState.anthropic.replace(/\{"type":"(redacted_)?thinking",[^}]*\},/g, '')).toBe(without.anthropic);
    expect(withState.gemini).toContain(
      '{"role":"model","parts":[{"text":"Checking.","thoughtSignature":"CiQBcsjafD3+ZZ/sig=="},{"functionCall":{"name":"get_weather","args":{"city":"Oslo"}},"thoughtSignature":"CiQBcsjafD3+ZZ/sig=="}]}',
    );
    expect(withState.gemini).not.toContain('Weigh');
    expect(withState.gemini.replaceAll(',"thoughtSignature":"CiQBcsjafD3+ZZ/sig=="', '')).toBe(without.gemini);
    // The neutral form is what is stored, all of it.
    expect(JSON.parse(withState.neutral).messages[1].content[0]).toEqual(THINKING);
  });

  it('the model that produced a block is kept in the neutral form only: every provider format renders the bytes of the block without it', async () => {
    const by = (b: Block) => ({ ...b, model: 'claude-fable-5-1' });
    const bound = conversation.map((m) => (m.role === 'assistant' && Array.isArray(m.content) ? { ...m, content: m.content.map((b) => (b.type === 'thinking' || b.type === 'redacted_thinking' ? by(b) : b)) } : m));
    const [withModel, without] = [await expansions(bound), await expansions(conversation)];
    for (const format of expansionFormats.filter((f) => f !== 'neutral')) expect(withModel[format], format).toBe(without[format]);
    expect(JSON.parse(withModel.neutral).messages[1].content.slice(0, 2)).toEqual([by(THINKING), by(REDACTED)]);
    // Ours, and a model name: not empty, not a number.
    for (const model of ['', 5])
      expect((await client.post('/v1/artifacts', { kind: 'messages', content: [conversation[0], { role: 'assistant', content: [{ ...THINKING, model }, { type: 'text', text: 'x' }] }] })).status).toBe(422);
  });

  it('property: any conversation renders for OpenAI the same bytes with or without reasoning state on its assistant turns', async () => {
    const text = fc.string({ minLength: 1, maxLength: 20 }).filter((s) => /\S/.test(s));
    const turn = fc.record({ question: text, answer: text, thinking: fc.option(fc.string({ maxLength: 20 })), sig: fc.option(fc.base64String({ minLength: 4, maxLength: 12 })) });
    await fc.assert(
      fc.asyncProperty(fc.array(turn, { minLength: 1, maxLength: 4 }), async (turns) => {
        const messages: Msg[] = turns.flatMap(({ question, answer, thinking, sig }) => [
          { role: 'user' as const, content: question },
          {
            role: 'assistant' as const,
            content: [
              ...(thinking === null ? [] : [{ ...THINKING, thinking }]),
              { type: 'text', text: answer, ...(sig === null || sig === '' ? {} : { thought_signature: { provider: 'gemini', signature: sig } }) },
            ],
          },
        ]);
        const withState = await expansions(messages);
        const without = await expansions(plain(messages));
        for (const format of ['openai-chat', 'openai-responses'] as const) expect(withState[format]).toBe(without[format]);
      }),
      { numRuns: 25 },
    );
  });

  it('an OpenAI reasoning item renders for Responses alone, before the item it preceded, as the API returned it; every other format is byte for byte the same without it', async () => {
    const messages: Msg[] = [
      { role: 'user', content: 'Weather in Oslo?' },
      { role: 'assistant', content: [OPENAI_REASONING, { type: 'tool_use', id: 'call_1', name: 'get_weather', input: { city: 'Oslo' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: 'cold' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'Checking more.' }, { ...OPENAI_REASONING, id: 'rs_68a2', summary: [] }, { type: 'text', text: 'Cold.' }] },
    ];
    const withState = await expansions(messages);
    const without = await expansions(plain(messages));
    for (const format of ['anthropic', 'openai-chat', 'gemini'] as const) expect(withState[format], format).toBe(without[format]);
    expect(withState['openai-responses']).toContain(
      '{"id":"rs_68a1","type":"reasoning","summary":[{"type":"summary_text","text":"**Units**\\n\\nWeigh \\"°C\\" first."}],"encrypted_content":"gAAAAABo+enc/ry=="},{"type":"function_call","call_id":"call_1"',
    );
    // Between an assistant's two texts (as a turn's input of message, reasoning, message is kept), it goes back between the two messages.
    expect(withState['openai-responses']).toContain(
      '{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Checking more."}]},{"id":"rs_68a2","type":"reasoning","summary":[],"encrypted_content":"gAAAAABo+enc/ry=="},{"type":"message","role":"assistant","content":[{"type":"output_text","text":"Cold."}]}',
    );
    expect(JSON.parse(withState.neutral).messages[1].content[0]).toEqual(OPENAI_REASONING);
  });

  it('is refused where no provider takes it: in a user message, alone in a message or last in it (where the breakpoint goes), without its signature', async () => {
    const refused = async (messages: unknown, pointer: string) => {
      const res = await client.post('/v1/artifacts', { kind: 'messages', content: messages });
      expect(res.status, res.text).toBe(422);
      expect(res.json.errors.map((e: { pointer: string }) => e.pointer)).toContain(pointer);
    };
    await refused([{ role: 'user', content: [THINKING, { type: 'text', text: 'hi' }] }], '/content/0/content/0');
    await refused([{ role: 'user', content: [{ type: 'text', text: 'hi', thought_signature: GEMINI_SIG }] }], '/content/0/content/0');
    await refused([{ role: 'user', content: 'hi' }, { role: 'assistant', content: [THINKING] }], '/content/1/content');
    await refused([{ role: 'assistant', content: [{ ...THINKING, signature: '' }, { type: 'text', text: 'x' }] }], '/content/0/content/0/signature');
    await refused([{ role: 'user', content: 'hi' }, { role: 'assistant', content: [{ type: 'text', text: 'x' }, THINKING] }], '/content/1/content/1');
    await refused([{ role: 'user', content: [OPENAI_REASONING, { type: 'text', text: 'hi' }] }], '/content/0/content/0');
    await refused([{ role: 'user', content: 'hi' }, { role: 'assistant', content: [OPENAI_REASONING] }], '/content/1/content');
    await refused([{ role: 'assistant', content: [{ ...OPENAI_REASONING, encrypted_content: '' }, { type: 'text', text: 'x' }] }], '/content/0/content/0/encrypted_content');
    await refused([{ role: 'assistant', content: [{ ...OPENAI_REASONING, status: 'completed' }, { type: 'text', text: 'x' }] }], '/content/0/content/0/status');
    // A tool's output is not the model's: a signature in a tool result's text would be stored and sent nowhere.
    const call = { type: 'tool_use', id: 'call_1', name: 'f', input: {} };
    await refused(
      [{ role: 'assistant', content: [call] }, { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'call_1', content: [{ type: 'text', text: 'ok', thought_signature: GEMINI_SIG }] }] }],
      '/content/1/content/0/content/0/thought_signature',
    );
  });
});
