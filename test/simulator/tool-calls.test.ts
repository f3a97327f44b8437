// The simulator's tool calls, read by the official SDKs (their stream helpers
// assemble the argument pieces): when a call is made (named in the user's
// text, or forced by tool_choice), when it is not (a tool result, tool_choice
// none), and what arguments it carries.

import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import { startSimulator, type RunningSimulator } from '../../src/simulator/server';
import { placeholderArguments } from '../../src/simulator/tools';
import { zodOutputFormat } from '@anthropic-ai/sdk/helpers/zod';
import { zodResponseFormat, zodTextFormat } from 'openai/helpers/zod';
import { z } from 'zod';

const catalog = new ModelCatalog(loadCatalog());
let sim: RunningSimulator;
let anthropic: Anthropic;
let openai: OpenAI;
beforeAll(async () => {
  sim = await startSimulator({ catalog });
  anthropic = new Anthropic({ apiKey: 'sk-ant-tools', baseURL: sim.url, maxRetries: 0 });
  openai = new OpenAI({ apiKey: 'sk-tools', baseURL: `${sim.url}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await sim.close();
});

const SCHEMA = {
  type: 'object',
  properties: { city: { type: 'string' }, unit: { enum: ['c', 'f'] }, days: { type: 'integer', minimum: 1 }, note: { type: 'string' } },
  required: ['city', 'unit', 'days'],
};
const ARGS = { city: 'simulated', unit: 'c', days: 1 };

const anthropicTools: Anthropic.Tool[] = [
  { name: 'get_time', description: 'Current time', input_schema: { type: 'object', properties: {} } },
  { name: 'get_weather', description: 'Weather for a city', input_schema: SCHEMA as Anthropic.Tool.InputSchema },
];
const chatTools: OpenAI.ChatCompletionTool[] = anthropicTools.map((t) => ({ type: 'function', function: { name: t.name, parameters: t.input_schema as Record<string, unknown> } }));
const responseTools: OpenAI.Responses.FunctionTool[] = anthropicTools.map((t) => ({ type: 'function', name: t.name, parameters: t.input_schema as Record<string, unknown>, strict: false }));

describe('Anthropic', () => {
  const ask = (messages: Anthropic.MessageParam[], extra: Partial<Anthropic.MessageCreateParamsNonStreaming> = {}) =>
    anthropic.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 64, tools: anthropicTools, messages, ...extra });

  it('calls the tool the user names, streamed or not; the SDK assembles the same input', async () => {
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'Please use get_weather for Oslo.' }];
    const plain = await ask(messages);
    expect(plain.stop_reason).toBe('tool_use');
    expect(plain.content).toEqual([{ type: 'tool_use', id: expect.stringMatching(/^toolu_/), name: 'get_weather', input: ARGS }]);
    expect(plain.usage.output_tokens).toBeGreaterThan(1);

    const streamed = await anthropic.messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 64, tools: anthropicTools, messages }).finalMessage();
    expect(streamed.stop_reason).toBe('tool_use');
    expect(streamed.content).toEqual([{ type: 'tool_use', id: expect.stringMatching(/^toolu_/), name: 'get_weather', input: ARGS }]);
    expect(streamed.usage.output_tokens).toBe(plain.usage.output_tokens);
  });

  it('answers a tool result in text, and text that names no tool (or only part of a name) in text', async () => {
    const call = await ask([{ role: 'user', content: 'use get_weather' }]);
    const toolUse = call.content[0] as Anthropic.ToolUseBlock;
    const after = await ask([
      { role: 'user', content: 'use get_weather' },
      { role: 'assistant', content: call.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: toolUse.id, content: 'get_weather says 2°C' }] },
    ]);
    expect(after.stop_reason).toBe('end_turn');
    expect(after.content[0]!.type).toBe('text');
    for (const text of ['What is the weather?', 'try get_weathers', 'my_get_weather']) expect((await ask([{ role: 'user', content: text }])).stop_reason).toBe('end_turn');
  });

  it('follows tool_choice: any calls the first tool, a named tool that one, none never calls', async () => {
    const plain: Anthropic.MessageParam[] = [{ role: 'user', content: 'hello' }];
    expect((await ask(plain, { tool_choice: { type: 'any' } })).content[0]).toMatchObject({ type: 'tool_use', name: 'get_time', input: {} });
    expect((await ask(plain, { tool_choice: { type: 'tool', name: 'get_weather' } })).content[0]).toMatchObject({ type: 'tool_use', name: 'get_weather', input: ARGS });
    expect((await ask([{ role: 'user', content: 'use get_weather' }], { tool_choice: { type: 'none' } })).stop_reason).toBe('end_turn');
  });
});

describe('OpenAI chat completions', () => {
  const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Call get_weather, please.' }];

  it('returns tool_calls with JSON arguments, streamed or not', async () => {
    const plain = await openai.chat.completions.create({ model: 'gpt-4.1', messages, tools: chatTools });
    const choice = plain.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    const call = choice.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call).toMatchObject({ id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'get_weather' } });
    expect(JSON.parse(call.function.arguments)).toEqual(ARGS);

    const stream = openai.chat.completions.stream({ model: 'gpt-4.1', messages, tools: chatTools, stream_options: { include_usage: true } });
    const final = await stream.finalChatCompletion();
    const streamedCall = final.choices[0]!.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(final.choices[0]!.finish_reason).toBe('tool_calls');
    expect(streamedCall.function).toEqual({ name: 'get_weather', arguments: call.function.arguments });
    expect(final.usage!.completion_tokens).toBe(plain.usage!.completion_tokens);
  });

  it('answers the tool message in text; required and a named function force a call; none prevents one', async () => {
    const first = await openai.chat.completions.create({ model: 'gpt-4.1', messages, tools: chatTools });
    const after = await openai.chat.completions.create({
      model: 'gpt-4.1',
      tools: chatTools,
      messages: [...messages, first.choices[0]!.message, { role: 'tool', tool_call_id: first.choices[0]!.message.tool_calls![0]!.id, content: '2°C' }],
    });
    expect(after.choices[0]!.finish_reason).toBe('stop');
    expect(after.choices[0]!.message.content).toMatch(/^Simulated reply/);
    const hello: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'hello' }];
    const forced = await openai.chat.completions.create({ model: 'gpt-4.1', messages: hello, tools: chatTools, tool_choice: 'required' });
    expect((forced.choices[0]!.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall).function.name).toBe('get_time');
    const named = await openai.chat.completions.create({ model: 'gpt-4.1', messages: hello, tools: chatTools, tool_choice: { type: 'function', function: { name: 'get_weather' } } });
    expect((named.choices[0]!.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall).function.name).toBe('get_weather');
    const none = await openai.chat.completions.create({ model: 'gpt-4.1', messages, tools: chatTools, tool_choice: 'none' });
    expect(none.choices[0]!.message.tool_calls).toBeUndefined();
  });
});

describe('OpenAI responses', () => {
  it('returns a function_call item, streamed or not; its output is answered in text', async () => {
    const plain = await openai.responses.create({ model: 'gpt-4.1', input: 'use get_weather for Oslo', tools: responseTools });
    expect(plain.output).toEqual([
      { type: 'function_call', id: expect.stringMatching(/^fc_/), call_id: expect.stringMatching(/^call_/), name: 'get_weather', arguments: JSON.stringify(ARGS), status: 'completed' },
    ]);
    expect(plain.output_text).toBe('');

    const stream = openai.responses.stream({ model: 'gpt-4.1', input: 'use get_weather for Oslo', tools: responseTools });
    const deltas: string[] = [];
    stream.on('response.function_call_arguments.delta', (e) => deltas.push(e.delta));
    const final = await stream.finalResponse();
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('')).toBe(JSON.stringify(ARGS));
    expect(final.output[0]).toMatchObject({ type: 'function_call', name: 'get_weather', arguments: JSON.stringify(ARGS) });

    const call = plain.output[0] as OpenAI.Responses.ResponseFunctionToolCall;
    const after = await openai.responses.create({
      model: 'gpt-4.1',
      tools: responseTools,
      input: [{ role: 'user', content: 'use get_weather for Oslo' }, call, { type: 'function_call_output', call_id: call.call_id, output: '2°C' }],
    });
    expect(after.output[0]!.type).toBe('message');
    expect(after.output_text).toMatch(/^Simulated reply/);
  });
});

describe('structured outputs', () => {
  // Asked for JSON by a schema, the simulated model answers with placeholders filling it, so the SDKs' parse
  // helpers read an object (they threw on "Simulated reply …", which is no JSON).
  const WEATHER = { type: 'object', properties: { city: { type: 'string' }, unit: { enum: ['c', 'f'] }, days: { type: 'integer', minimum: 1 } }, required: ['city', 'unit', 'days'], additionalProperties: false };
  const PARSED = { city: 'simulated', unit: 'c', days: 1 };

  it('OpenAI chat: response_format json_schema, parsed by the SDK, streamed or not; json_object is an object', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Weather in Oslo as JSON' }];
    const response_format = { type: 'json_schema' as const, json_schema: { name: 'weather', schema: WEATHER, strict: true } };
    const parsed = await openai.chat.completions.parse({ model: 'gpt-4.1', messages, response_format });
    expect(parsed.choices[0]!.message.parsed).toEqual(PARSED);
    const streamed = await openai.chat.completions.stream({ model: 'gpt-4.1', messages, response_format }).finalChatCompletion();
    expect(JSON.parse(streamed.choices[0]!.message.content!)).toEqual(PARSED);
    const object = await openai.chat.completions.create({ model: 'gpt-4.1', messages, response_format: { type: 'json_object' } });
    expect(JSON.parse(object.choices[0]!.message.content!)).toEqual({});
    // Plain text stays plain text.
    expect((await openai.chat.completions.create({ model: 'gpt-4.1', messages, response_format: { type: 'text' } })).choices[0]!.message.content).toMatch(/^Simulated reply/);
  });

  it('OpenAI responses: text.format json_schema, parsed by the SDK', async () => {
    const parsed = await openai.responses.parse({ model: 'gpt-4.1', input: 'Weather in Oslo as JSON', text: { format: { type: 'json_schema', name: 'weather', schema: WEATHER, strict: true } } });
    expect(parsed.output_parsed).toEqual(PARSED);
  });

  it('Anthropic: output_config.format json_schema, parsed by the SDK', async () => {
    const parsed = await anthropic.messages.parse({
      model: 'claude-sonnet-4-6',
      max_tokens: 64,
      messages: [{ role: 'user', content: 'Weather in Oslo as JSON' }],
      output_config: { format: { type: 'json_schema', schema: WEATHER } },
    });
    expect(parsed.parsed_output).toEqual(PARSED);
  });
  it('Anthropic: bounds the SDKs move into a description (its structured outputs take no minimum, minItems above 1 or string lengths) are followed', async () => {
    // @anthropic-ai/sdk's zodOutputFormat writes them as `{minimum: 1, maximum: 30}`; parse() checks the answer with zod.
    const Trip = z.object({ days: z.number().int().min(1).max(30), tags: z.array(z.string()).min(2).max(5), code: z.string().min(12), ratio: z.number().gt(0.5) });
    const format = zodOutputFormat(Trip);
    expect(JSON.stringify(format.schema)).toContain('{minimum: 1, maximum: 30}');
    const parsed = await anthropic.messages.parse({ model: 'claude-sonnet-4-6', max_tokens: 256, messages: [{ role: 'user', content: 'Plan a trip' }], output_config: { format } });
    expect(parsed.parsed_output).toEqual(Trip.parse(parsed.parsed_output));
    expect(parsed.parsed_output).toMatchObject({ days: 1, ratio: 1.5 });
    // The Vercel AI SDK's spelling (ai 6.0.333, @ai-sdk/anthropic 3.0.140, `Output.object` with zod), as it sent it:
    // `minimum: 1; maximum: 9007199254740991.` with `min items`, `min length` spelt out.
    const aiSdkSchema = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      properties: {
        city: { type: 'string' },
        days: { type: 'integer', description: 'minimum: 1; maximum: 9007199254740991.' },
        tags: { type: 'array', items: { type: 'string' }, description: 'min items: 2; max items: 5.' },
        code: { type: 'string', description: 'An order code\nmin length: 12.' },
      },
      additionalProperties: false,
      required: ['city', 'days', 'tags', 'code'],
    };
    // Its request as it sent it, by fetch (the Anthropic SDK refuses a max_tokens this large unstreamed).
    const res = await fetch(`${sim.url}/v1/messages`, {
      method: 'POST',
      headers: { 'anthropic-beta': 'structured-outputs-2025-11-13', 'anthropic-version': '2023-06-01', 'content-type': 'application/json', 'x-api-key': 'sk-ant-tools' },
      body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 128000, output_config: { format: { type: 'json_schema', schema: aiSdkSchema } }, messages: [{ role: 'user', content: [{ type: 'text', text: 'Plan a trip to Oslo.' }] }] }),
    });
    expect(res.status).toBe(200);
    const message = (await res.json()) as Anthropic.Message;
    const answer = JSON.parse((message.content[0] as Anthropic.TextBlock).text);
    expect(answer).toEqual({ city: 'simulated', days: 1, tags: ['simulated', 'simulated'], code: 'simulated si' });
    // A bound the schema states itself wins over its description's.
    expect(placeholderArguments({ type: 'object', properties: { n: { type: 'integer', minimum: 3, description: 'minimum: 7' } }, required: ['n'] })).toEqual({ n: 3 });
  });

  it("schemas as the SDKs' helpers and Pydantic write them: nullable fields (anyOf with null), unions of constants, $ref to $defs, formats: parse() validates the answer", async () => {
    // zod's .nullable() and literal unions are anyOf in strict mode; the SDK checks the answer with the zod schema.
    const Address = z.object({ city: z.string(), zip: z.string() });
    const Order = z.object({ shipping: Address, billing: Address.nullable(), count: z.number().int().nullable(), kind: z.union([z.literal('a'), z.literal('b')]), when: z.string().datetime(), tags: z.array(z.string()).min(2) });
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'The order as JSON' }];
    const chat = await openai.chat.completions.parse({ model: 'gpt-4.1', messages, response_format: zodResponseFormat(Order, 'order') });
    const order = chat.choices[0]!.message.parsed!;
    expect(order).toMatchObject({ shipping: { city: 'simulated', zip: 'simulated' }, billing: { city: 'simulated', zip: 'simulated' }, count: 0, kind: 'a' });
    expect(order.tags).toHaveLength(2);
    const responses = await openai.responses.parse({ model: 'gpt-4.1', input: 'The order as JSON', text: { format: zodTextFormat(Order, 'order') } });
    expect(responses.output_parsed).toEqual(order);
    // Pydantic's nested models are $ref to #/$defs (draft 2019) or #/definitions.
    const pydantic = {
      $defs: { Address: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
      definitions: { Unit: { enum: ['c', 'f'] } },
      type: 'object',
      properties: { home: { $ref: '#/$defs/Address' }, unit: { $ref: '#/definitions/Unit' }, both: { allOf: [{ $ref: '#/$defs/Address' }, { type: 'object', properties: { n: { type: 'integer', exclusiveMinimum: 0 } }, required: ['n'] }] }, loop: { $ref: '#' } },
      required: ['home', 'unit', 'both'],
    };
    expect(placeholderArguments(pydantic)).toEqual({ home: { city: 'simulated' }, unit: 'c', both: { city: 'simulated', n: 1 } });
    // References in a circle stay finite.
    expect(JSON.stringify(placeholderArguments({ $defs: { A: { $ref: '#/$defs/B' }, B: { $ref: '#/$defs/A' } }, type: 'object', properties: { a: { $ref: '#/$defs/A' } }, required: ['a'] })).length).toBeLessThan(200);
    expect(JSON.stringify(placeholderArguments({ type: 'object', properties: { self: { $ref: '#' } }, required: ['self'] })).length).toBeLessThan(400);
  });
});

describe('placeholder arguments', () => {
  it('fill required properties by type, nested, with enum and minimum; optional ones are left out', () => {
    expect(
      placeholderArguments({
        type: 'object',
        properties: {
          a: { type: 'string' },
          b: { type: ['null', 'number'] },
          c: { type: 'boolean' },
          d: { type: 'array', items: { type: 'string' } },
          e: { type: 'object', properties: { f: { const: 7 }, g: { type: 'string' } }, required: ['f'] },
          h: { type: 'string' },
        },
        required: ['a', 'b', 'c', 'd', 'e'],
      }),
    ).toEqual({ a: 'simulated', b: 0, c: false, d: [], e: { f: 7 } });
    expect(placeholderArguments(undefined)).toEqual({});
    // A schema that refers to itself stays finite.
    const node: Record<string, unknown> = { type: 'object', properties: {}, required: ['child'] };
    (node.properties as Record<string, unknown>).child = node;
    expect(JSON.stringify(placeholderArguments(node)).length).toBeLessThan(200);
  });
});
