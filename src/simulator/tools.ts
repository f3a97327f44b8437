// When the simulated model calls a tool instead of answering in text, and with
// what arguments. A real model decides by reading the prompt; the simulator
// decides by a rule a test or a trial can steer, the same for every format:
//
//   - `tool_choice` forcing a call (Anthropic `any` / `tool`, OpenAI `required` /
//     a named function) calls the first declared tool, or the named one;
//   - `tool_choice` none never calls;
//   - otherwise a tool is called when the newest prompt item is the user's own
//     text (not a tool result) and names a declared tool as a whole word
//     ("use get_weather for Oslo"). A tool result is answered in text unless
//     tool_choice forces another call, so an agent loop ends.
//
// The arguments fill the tool's required parameters with placeholders by JSON
// Schema type (the first `enum` value where there is one): valid against a
// plain schema, deterministic, and visibly not a model's. A request for
// structured output (a JSON schema) is answered in text the same way.

import type { RequestFormat } from '../domain/simulator/blocks';
import { lastGeminiUserText } from './gemini';
import { lastUserText } from './turn';
import { isRecord } from '../domain/records';

type Json = Record<string, unknown>;

export interface ToolCall {
  name: string;
  /** The arguments as JSON text (OpenAI's form; Anthropic's `input` is its parse). */
  arguments: string;
}

interface DeclaredTool {
  name: string;
  schema: unknown;
}


/** The tool call the simulated model makes for this request, or null for a text answer. */
export function chooseToolCall(format: RequestFormat, body: Json): ToolCall | null {
  const tools = declaredTools(format, body.tools);
  if (tools.length === 0) return null;
  const choice = format === 'gemini' ? geminiChoice(body.toolConfig) : forcedChoice(body.tool_choice);
  if (choice === 'none') return null;
  let tool: DeclaredTool | undefined;
  if (choice === 'any') tool = tools[0];
  else if (choice !== 'auto') tool = tools.find((t) => t.name === choice.name);
  else if (newestIsUserText(format, body)) {
    const text = format === 'gemini' ? lastGeminiUserText(body.contents) : lastUserText(format === 'openai-responses' ? body.input : body.messages);
    tool = tools.find((t) => namesWord(text, t.name));
  }
  return tool ? { name: tool.name, arguments: JSON.stringify(placeholderArguments(tool.schema)) } : null;
}

/**
 * The text answer of a request that asks for JSON (structured outputs): placeholders filling the schema, as for
 * tool arguments, so an SDK's parse helper reads it; null when the request asks for plain text. Chat
 * `response_format`, Responses `text.format`, Anthropic `output_config.format`; `json_object` is an empty object.
 */
export function structuredReply(format: RequestFormat, body: Json): string | null {
  const spec =
    format === 'openai-chat' ? body.response_format : format === 'openai-responses' ? (isRecord(body.text) ? body.text.format : undefined) : isRecord(body.output_config) ? body.output_config.format : undefined;
  if (!isRecord(spec)) return null;
  if (spec.type === 'json_object') return '{}';
  if (spec.type !== 'json_schema') return null;
  // Chat nests the schema under json_schema; Responses and Anthropic put it on the format itself.
  const schema = format === 'openai-chat' ? (isRecord(spec.json_schema) ? spec.json_schema.schema : undefined) : spec.schema;
  return JSON.stringify(placeholderArguments(schema));
}

/** Function tools only: a provider's own server tools (web search, code execution) are not simulated. */
function declaredTools(format: RequestFormat, tools: unknown): DeclaredTool[] {
  if (!Array.isArray(tools)) return [];
  const out: DeclaredTool[] = [];
  for (const t of tools) {
    if (!isRecord(t)) continue;
    if (format === 'anthropic') {
      if (typeof t.name === 'string' && (t.type === undefined || t.type === 'custom') && isRecord(t.input_schema)) out.push({ name: t.name, schema: t.input_schema });
    } else if (format === 'openai-chat') {
      if (t.type === 'function' && isRecord(t.function) && typeof t.function.name === 'string') out.push({ name: t.function.name, schema: t.function.parameters });
    } else if (format === 'gemini') {
      // Gemini: each tools entry declares its functions, their schema as parametersJsonSchema or parameters.
      for (const d of Array.isArray(t.functionDeclarations) ? t.functionDeclarations : [])
        if (isRecord(d) && typeof d.name === 'string') out.push({ name: d.name, schema: d.parametersJsonSchema ?? d.parameters });
    } else if (t.type === 'function' && typeof t.name === 'string') out.push({ name: t.name, schema: t.parameters });
  }
  return out;
}

/** `auto` (also when absent), `none`, `any` (some tool must be called) or one named tool. */
function forcedChoice(choice: unknown): 'auto' | 'none' | 'any' | { name: string } {
  if (choice === 'none' || choice === 'required') return choice === 'none' ? 'none' : 'any';
  if (!isRecord(choice)) return 'auto';
  if (choice.type === 'none') return 'none';
  if (choice.type === 'any') return 'any';
  // Anthropic {type:"tool", name}; Chat {type:"function", function:{name}}; Responses {type:"function", name}.
  const name = isRecord(choice.function) ? choice.function.name : choice.name;
  if ((choice.type === 'tool' || choice.type === 'function') && typeof name === 'string') return { name };
  return 'auto';
}

/** Gemini's `toolConfig.functionCallingConfig`: mode AUTO (the default), ANY (its first allowed function, if named) or NONE. */
function geminiChoice(config: unknown): 'auto' | 'none' | 'any' | { name: string } {
  const fc = isRecord(config) && isRecord(config.functionCallingConfig) ? config.functionCallingConfig : {};
  if (fc.mode === 'NONE') return 'none';
  if (fc.mode !== 'ANY') return 'auto';
  const allowed = Array.isArray(fc.allowedFunctionNames) ? fc.allowedFunctionNames[0] : undefined;
  return typeof allowed === 'string' ? { name: allowed } : 'any';
}

/** The newest item is a user message with text, not a tool result (Anthropic puts those in user messages). */
function newestIsUserText(format: RequestFormat, body: Json): boolean {
  if (format === 'gemini') {
    const newest: unknown = Array.isArray(body.contents) ? body.contents.at(-1) : undefined;
    return isRecord(newest) && (newest.role === undefined || newest.role === 'user') && Array.isArray(newest.parts) && !newest.parts.some((p) => isRecord(p) && p.functionResponse !== undefined);
  }
  if (format === 'openai-responses' && typeof body.input === 'string') return true;
  const items = format === 'openai-responses' ? body.input : body.messages;
  if (!Array.isArray(items)) return false;
  const newest: unknown = items.at(-1);
  if (!isRecord(newest) || newest.role !== 'user') return false;
  if (format !== 'anthropic' || !Array.isArray(newest.content)) return true;
  return !newest.content.some((part) => isRecord(part) && part.type === 'tool_result');
}

function namesWord(text: string, name: string): boolean {
  let at = text.indexOf(name);
  const wordChar = (c: string | undefined) => c !== undefined && /[\p{L}\p{N}_-]/u.test(c);
  while (at >= 0) {
    if (!wordChar(text[at - 1]) && !wordChar(text[at + name.length])) return true;
    at = text.indexOf(name, at + 1);
  }
  return false;
}

/**
 * A value for a JSON Schema: required properties filled, depth-limited (a recursive schema stays finite). Schemas as
 * the SDKs' helpers and Pydantic write them are followed: `$ref` to the schema's own `$defs`/`definitions` (or `#`),
 * `anyOf`/`oneOf` by their first alternative that is not null (a nullable field, a union of constants), `allOf`
 * merged, `minItems` items, a string `format` (date-time, date, time, email, uuid, uri), an exclusive minimum, string
 * lengths, and the bounds an SDK wrote into a property's description for Anthropic (below).
 */
export function placeholderArguments(schema: unknown): Json {
  const value = placeholder(schema, 0, schema);
  return isRecord(value) ? value : {};
}

/** How many `$ref`/`anyOf`/`allOf` steps one value may take (references in a circle stay finite). */
const MAX_STEPS = 32;

/** A `$ref` inside the schema: `#`, or a JSON pointer from its root (`#/$defs/Address`, `#/definitions/Unit`). */
function resolveRef(root: unknown, ref: unknown): unknown {
  if (typeof ref !== 'string' || !ref.startsWith('#')) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(1).split('/').slice(1)) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isRecord(node) && !Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

const STRING_FORMATS: Record<string, string> = {
  'date-time': '2026-01-01T00:00:00Z',
  date: '2026-01-01',
  time: '00:00:00Z',
  email: 'simulated@example.com',
  uuid: '00000000-0000-4000-8000-000000000000',
  uri: 'https://example.com/simulated',
};

// Anthropic's structured outputs take no numeric bounds, no minItems above 1 and no string lengths: the SDKs move them
// into the description for the model to read, @anthropic-ai/sdk's zodOutputFormat as `{minimum: 1, maxItems: 5}`, the
// Vercel AI SDK as `minimum: 1; min items: 2.`. A model follows them, and the SDKs check the answer against them.
const DESCRIBED_BOUND = /\b(minimum|maximum|exclusive ?minimum|exclusive ?maximum|min ?items|max ?items|min ?length|max ?length)\s*:\s*(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)/gi;
const BOUND_KEYS: Record<string, string> = {
  minimum: 'minimum',
  maximum: 'maximum',
  exclusiveminimum: 'exclusiveMinimum',
  exclusivemaximum: 'exclusiveMaximum',
  minitems: 'minItems',
  maxitems: 'maxItems',
  minlength: 'minLength',
  maxlength: 'maxLength',
};

/** The schema with the bounds its description states, where it does not state them itself. */
function withDescribedBounds(schema: Json): Json {
  if (typeof schema.description !== 'string') return schema;
  const described: Json = {};
  for (const [, name, value] of schema.description.matchAll(DESCRIBED_BOUND)) described[BOUND_KEYS[name!.replace(' ', '').toLowerCase()]!] = Number(value);
  return { ...described, ...schema };
}

function placeholder(schema: unknown, depth: number, root: unknown, steps = 0): unknown {
  if (!isRecord(schema)) return 'simulated';
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  if ('const' in schema) return schema.const;
  if (steps >= MAX_STEPS) return null;
  if (schema.$ref !== undefined) {
    const { $ref, ...rest } = schema;
    const target = resolveRef(root, $ref);
    return placeholder(isRecord(target) ? { ...target, ...rest } : rest, depth, root, steps + 1);
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    const options = schema[key];
    if (!Array.isArray(options) || options.length === 0) continue;
    const { [key]: _, ...rest } = schema;
    const isNull = (o: unknown) => isRecord(o) && (o.type === 'null' || o.const === null);
    const chosen = options.find((o) => !isNull(o)) ?? options[0];
    return placeholder(isRecord(chosen) ? { ...rest, ...chosen } : rest, depth, root, steps + 1);
  }
  if (Array.isArray(schema.allOf) && schema.allOf.length > 0) {
    const { allOf, ...rest } = schema;
    const merged: Json = { ...rest };
    for (const part of allOf) {
      let p: unknown = part;
      for (let i = 0; i < MAX_STEPS && isRecord(p) && p.$ref !== undefined; i++) {
        const { $ref, ...own } = p;
        const target = resolveRef(root, $ref);
        p = isRecord(target) ? { ...target, ...own } : own;
      }
      if (!isRecord(p)) continue;
      const properties = { ...(isRecord(merged.properties) ? merged.properties : {}), ...(isRecord(p.properties) ? p.properties : {}) };
      const required = [...(Array.isArray(merged.required) ? merged.required : []), ...(Array.isArray(p.required) ? p.required : [])];
      Object.assign(merged, p, { properties, required });
    }
    return placeholder(merged, depth, root, steps + 1);
  }
  const own = withDescribedBounds(schema);
  const type = Array.isArray(own.type) ? own.type.find((t) => t !== 'null') : own.type;
  switch (type) {
    case 'object': {
      const out: Json = {};
      if (depth >= 8) return out;
      const properties = isRecord(own.properties) ? own.properties : {};
      const required = Array.isArray(own.required) ? own.required.filter((r): r is string => typeof r === 'string') : [];
      for (const key of required) out[key] = placeholder(properties[key], depth + 1, root, steps);
      return out;
    }
    case 'array': {
      const min = typeof own.minItems === 'number' && Number.isInteger(own.minItems) ? Math.min(own.minItems, 16) : 0;
      if (min === 0 || depth >= 8) return [];
      return Array.from({ length: min }, () => placeholder(own.items, depth + 1, root, steps));
    }
    case 'integer':
    case 'number':
    {
      // 0 when the bounds allow it (zod writes ±2^53 as an integer's), else the nearest bound.
      const step = (n: number, up: boolean) => (type === 'integer' ? (up ? Math.floor(n) + 1 : Math.ceil(n) - 1) : up ? n + 1 : n - 1);
      const low = typeof own.minimum === 'number' ? own.minimum : typeof own.exclusiveMinimum === 'number' ? step(own.exclusiveMinimum, true) : -Infinity;
      const high = typeof own.maximum === 'number' ? own.maximum : typeof own.exclusiveMaximum === 'number' ? step(own.exclusiveMaximum, false) : Infinity;
      return low > 0 ? low : high < 0 ? high : 0;
    }
    case 'boolean':
      return false;
    case 'null':
      return null;
    case 'string': {
      const formatted = typeof own.format === 'string' ? STRING_FORMATS[own.format] : undefined;
      if (formatted) return formatted;
      const min = typeof own.minLength === 'number' ? Math.min(own.minLength, 4096) : 0;
      const max = typeof own.maxLength === 'number' ? Math.max(own.maxLength, 0) : Infinity;
      return 'simulated'.padEnd(min, ' simulated').slice(0, max);
    }
    default:
      return isRecord(own.properties) ? placeholder({ ...own, type: 'object' }, depth, root, steps) : 'simulated';
  }
}
