// What a provider counts as prompt tokens is the text the model reads, not the
// request's JSON: Anthropic and OpenAI turn a request into a prompt of the
// texts it carries, each in a little framing (FRAMING below). Counting the JSON instead
// — keys, quotes, `\n` and `\"` escapes, ids — ran ~1.3-1.6x the provider's
// count on chatty agent sessions, where short messages and tool calls are mostly
// syntax. Both the estimate of a rendered request (render/request.ts) and the
// simulated provider's count (simulator/blocks.ts) are built from this file, so
// an OpenAI-family estimate equals the simulator's count exactly.
//
// Values are taken in their semantic form (simulator/semantic.ts): free-form
// JSON a provider writes into the prompt as sent (a tool call's input, a tool's
// schema) is `{ verbatim: <its JSON text> }` there, and is counted as that text.
//
// Tools cost more than their text: OpenAI renders a function definition in a form
// of its own (FUNCTION_TOKENS), and Anthropic adds a tool-use system prompt to every
// request with tools (the catalog's `toolUseSystemPrompt`, per model and tool_choice).
// An Anthropic-defined tool (`{"type": "bash_20250124", "name": "bash"}`) carries no
// schema: the API writes its own definition, a fixed count per tool version and model
// (the catalog's `definedToolTokens`), counted instead of the tool's JSON.

import canonicalize from 'canonicalize';
import type { ModelEntry, TokenizerFamily, ToolUseSystemPrompt } from './catalog/types';
import { semanticForm, type PromptFormat } from './simulator/semantic';
import { MAX_JSON_DEPTH } from './validation';
import { isRecord } from './records';

export type TokenCounter = (text: string) => number;

export interface Framing {
  /** Tokens around each block (a content part, a tool call, a tool, a system block). */
  block: number;
  /** More on the first block of each message (role header and turn delimiters). */
  message: number;
  /** Once per request, after the last message (the provider's header of the reply). */
  reply: number;
}

/**
 * Framing tokens by API. OpenAI's cookbook ("How to count tokens with tiktoken") documents 3 per message plus its
 * role (one token for every role), and 3 priming the reply; the content parts and tool calls of a message are
 * counted as their text. Anthropic and Gemini document none: 3 per block and 4 more per message is our estimate.
 */
export const FRAMING: Readonly<Record<PromptFormat, Framing>> = {
  anthropic: { block: 3, message: 4, reply: 0 },
  gemini: { block: 3, message: 4, reply: 0 },
  'openai-chat': { block: 0, message: 4, reply: 3 },
  'openai-responses': { block: 0, message: 4, reply: 3 },
};
/** Anthropic's framing per block. */
export const BLOCK_OVERHEAD_TOKENS = FRAMING.anthropic.block;
/** Anthropic's framing per message. */
export const MESSAGE_OVERHEAD_TOKENS = FRAMING.anthropic.message;

/**
 * What an OpenAI function definition costs in the prompt, from OpenAI's cookbook ("How to count tokens with tiktoken",
 * `num_tokens_for_tools`): its figures for gpt-4o and gpt-4o-mini (o200k_base) and for gpt-4 and gpt-3.5-turbo
 * (cl100k_base), taken for every model of each encoding.
 */
export interface FunctionTokens {
  /** func_init: each function, before its `name:description` (one final "." dropped). */
  func: number;
  /** prop_init: once for a function with properties. */
  properties: number;
  /** prop_key: each property, before its `name:type:description`. */
  property: number;
  /** enum_init: a property with an enum; then enum_item and the item's text for each item. */
  enum: number;
  enumItem: number;
  /** func_end: once for a request with at least one function. */
  end: number;
}

export const FUNCTION_TOKENS: Readonly<Record<'o200k_base' | 'cl100k_base', FunctionTokens>> = {
  o200k_base: { func: 7, properties: 3, property: 3, enum: -3, enumItem: 3, end: 12 },
  cl100k_base: { func: 10, properties: 3, property: 3, enum: -3, enumItem: 3, end: 12 },
};

/** What tools cost beyond their text in one API for one model. */
export interface ToolCosts {
  /** OpenAI's function definitions (Chat Completions and Responses). */
  functions?: FunctionTokens;
  /** Anthropic's tool-use system prompt, once per request with tools (never in a handle's own count: it is the model's). */
  systemPrompt?: ToolUseSystemPrompt;
  /** Anthropic-defined tools the model's figures are known for: tokens of each definition by tool `type`. */
  definedTools?: Readonly<Record<string, number>>;
}

/** The tool costs of a format for a tokenizer family, and with `model` (a catalog entry) for a request to that model. */
export function toolCosts(format: PromptFormat, family: TokenizerFamily, model?: Pick<ModelEntry, 'toolUseSystemPrompt' | 'definedToolTokens'>): ToolCosts {
  if (format === 'openai-chat' || format === 'openai-responses') return { functions: FUNCTION_TOKENS[family === 'cl100k_base' ? 'cl100k_base' : 'o200k_base'] };
  if (format !== 'anthropic' || !model) return {};
  return { ...(model.toolUseSystemPrompt ? { systemPrompt: model.toolUseSystemPrompt } : {}), ...(model.definedToolTokens ? { definedTools: model.definedToolTokens } : {}) };
}

/**
 * What the API adds for an Anthropic-defined tool of a `type` the costs know (its definition; for computer use also its
 * system prompt), or undefined: a custom tool, or a version without a documented figure, counted as its text.
 */
export function definedToolTokens(type: unknown, costs: ToolCosts): number | undefined {
  const table = costs.definedTools;
  // Own keys only: a tool typed "constructor" is not Object.prototype's.
  return table && typeof type === 'string' && Object.hasOwn(table, type) ? table[type] : undefined;
}

type Json = Record<string, unknown>;
const TEXT_TYPES = new Set([undefined, 'text', 'input_text', 'output_text']);
/** Responses content parts: inside a message, not items of their own. */
const PART_TYPES = new Set(['input_text', 'output_text', 'input_image', 'input_file', 'refusal']);

/** The JSON text a provider writes into the prompt for a free-form value (a verbatim one as sent). */
function jsonText(v: unknown): string {
  // OpenAI sends arguments as a string of JSON: the model reads that string, not its quoted form.
  if (isRecord(v) && typeof v.verbatim === 'string' && Object.keys(v).length === 1) return v.verbatim.startsWith('"') ? (JSON.parse(v.verbatim) as string) : v.verbatim;
  if (typeof v === 'string') return v;
  return canonicalize(v) ?? '';
}

/**
 * The text the model reads for one block in its semantic form: a text block's text; a tool call's name and
 * arguments; a tool result's output; a tool definition's name, description and schema; a reasoning item nothing
 * (encrypted). Anything else (an image, a provider's own tool) is counted as its JSON, where a base64 image or PDF
 * counts as media.
 */
export function visibleText(block: unknown): string {
  if (typeof block === 'string') return block;
  if (block === null || block === undefined) return '';
  if (!isRecord(block)) return canonicalize(block) ?? '';
  if (typeof block.text === 'string' && TEXT_TYPES.has(block.type as string | undefined)) return block.text;
  // Anthropic's thinking as the model reads it: its text, not the signature that authenticates it. Redacted thinking
  // is encrypted, its length unknown to us: framing only. (Gemini's thoughtSignature is left out the same way, above.)
  if (block.type === 'thinking') return typeof block.thinking === 'string' ? block.thinking : '';
  if (block.type === 'redacted_thinking') return '';
  // An OpenAI reasoning item: the model reads the reasoning its encrypted_content holds (during the tool loop it
  // belongs to; OpenAI drops earlier turns' items), a length nobody but OpenAI can read off it: framing only.
  if (block.type === 'reasoning') return '';
  // Gemini's parts name what they hold; Chat's tool calls and definitions nest it under `function`.
  const inner = isRecord(block.functionCall) ? block.functionCall : isRecord(block.functionResponse) ? block.functionResponse : isRecord(block.function) ? block.function : block;
  const kind = block.type;
  if (kind === 'tool_result' || kind === 'function_call_output') {
    const out = block.content ?? block.output;
    return Array.isArray(out) ? out.map(visibleText).join('\n') : visibleText(out);
  }
  const payload = inner.input ?? inner.arguments ?? inner.args ?? inner.response ?? inner.input_schema ?? inner.parameters ?? inner.parametersJsonSchema;
  if (typeof inner.name === 'string' && (payload !== undefined || typeof inner.description === 'string' || kind === undefined || kind === 'function' || kind === 'tool_use' || kind === 'function_call')) {
    return [inner.name, typeof inner.description === 'string' ? inner.description : undefined, payload === undefined ? undefined : jsonText(payload)].filter((s) => s !== undefined).join('\n');
  }
  return canonicalize(block) ?? '';
}

/** Tokens of one block: its visible text and its framing (and the message's, when it opens one). */
export function blockTokens(format: PromptFormat, block: unknown, opensMessage: boolean, count: TokenCounter): number {
  const framing = FRAMING[format];
  return count(visibleText(block)) + framing.block + (opensMessage ? framing.message : 0);
}

/** Whether a tool is a function definition: Chat's `{type: 'function', function: {name, …}}`, or Responses' flat one. */
function isFunction(tool: unknown): tool is Json {
  return isRecord(tool) && tool.type === 'function' && typeof (isRecord(tool.function) ? tool.function : tool).name === 'string';
}

const withoutDot = (s: unknown) => (typeof s !== 'string' ? '' : s.endsWith('.') ? s.slice(0, -1) : s);

/** What a schema's `$ref`s may name: its root (`#/$defs/X`, `#/definitions/X`), and the definitions already written out. */
interface SchemaContext {
  root: unknown;
  written: Set<string>;
  /** How deep the walk is: definitions written in place inside one another can chain past any body's nesting. */
  depth: number;
}

/** `walk` one level deeper, or `none` past the nesting a body may have (validation.ts MAX_JSON_DEPTH). */
function deeper<T>(ctx: SchemaContext, none: T, walk: () => T): T {
  if (ctx.depth >= MAX_JSON_DEPTH) return none;
  ctx.depth++;
  try {
    return walk();
  } finally {
    ctx.depth--;
  }
}

/**
 * A member's schema as the model reads it. Generators write shared types once and name them (`$ref`, pydantic's
 * `$defs`, `definitions`), and an optional member as `anyOf: [T, {type: 'null'}]`: a reference counts as the schema it
 * names, the first time only (after that, as its name: a recursive or much-shared type is counted once, not without end),
 * with the member's own keys beside it kept; `anyOf`/`oneOf`/`allOf` as their alternatives.
 */
function resolved(schema: unknown, ctx: SchemaContext): { schema: Json; name?: string; parts: Json[] } {
  let s: Json = isRecord(schema) ? schema : {};
  let name: string | undefined;
  if (typeof s.$ref === 'string') {
    const { $ref: ref, ...own } = s;
    const target = ref.startsWith('#/') ? ref.slice(2).split('/').reduce<unknown>((v, k) => (isRecord(v) ? v[k.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined), ctx.root) : undefined;
    if (isRecord(target) && !ctx.written.has(ref)) {
      ctx.written.add(ref);
      s = { ...target, ...own };
    } else {
      s = own;
      if (isRecord(target)) name = ref.slice(ref.lastIndexOf('/') + 1);
    }
  }
  const alternatives = ['anyOf', 'oneOf', 'allOf'].flatMap((k) => (Array.isArray(s[k]) ? (s[k] as unknown[]) : []));
  const parts = deeper(ctx, [], () => alternatives.map((p) => resolved(p, ctx)));
  const types = [name, typeNameOf(s.type), ...parts.map((p) => p.name ?? typeNameOf(p.schema.type))].filter((t): t is string => !!t);
  return { schema: s, name: types.length ? [...new Set(types)].join(' | ') : undefined, parts: parts.flatMap((p) => [p.schema, ...p.parts]) };
}

const typeNameOf = (t: unknown) => (typeof t === 'string' ? t : Array.isArray(t) ? t.join(' | ') : '');

/**
 * The properties of a schema as the cookbook counts them. Its recipe stops at the top level; the members of a nested
 * object (or of an array's items, or of an alternative) are counted the same way, as OpenAI writes them into the
 * prompt too.
 */
function propertiesTokens(schema: Json, count: TokenCounter, c: FunctionTokens, ctx: SchemaContext): number {
  const props = isRecord(schema.properties) ? Object.entries(schema.properties) : [];
  let n = props.length ? c.properties : 0;
  for (const [key, value] of props) {
    const { schema: p, name, parts } = resolved(value, ctx);
    n += c.property + count(`${key}:${name ?? ''}:${withoutDot(p.description)}`);
    if (Array.isArray(p.enum)) n += c.enum + p.enum.reduce((m: number, item) => m + c.enumItem + count(typeof item === 'string' ? item : JSON.stringify(item)), 0);
    n += memberTokens([p, ...parts], count, c, ctx);
  }
  return n;
}

/** The nested members of a member's schemas: their properties, and their array items'. */
function memberTokens(schemas: Json[], count: TokenCounter, c: FunctionTokens, ctx: SchemaContext): number {
  return deeper(ctx, 0, () => {
    let n = 0;
    for (const s of schemas) {
      n += propertiesTokens(s, count, c, ctx);
      if (s.items !== undefined) {
        const items = resolved(s.items, ctx);
        n += memberTokens([items.schema, ...items.parts], count, c, ctx);
      }
    }
    return n;
  });
}

/**
 * Tokens of one tool definition in its semantic form: an Anthropic-defined tool as its documented figure, an OpenAI
 * function as the cookbook counts it, any other as its text and framing.
 */
export function toolTokens(format: PromptFormat, tool: unknown, count: TokenCounter, costs: ToolCosts): number {
  const defined = isRecord(tool) ? definedToolTokens(tool.type, costs) : undefined;
  if (defined !== undefined) return defined;
  if (!costs.functions || !isFunction(tool)) return blockTokens(format, tool, false, count);
  const fn = isRecord(tool.function) ? tool.function : tool;
  // Parameters in their semantic form are the JSON text sent.
  const p = fn.parameters;
  const parameters = isRecord(p) && typeof p.verbatim === 'string' && Object.keys(p).length === 1 ? (JSON.parse(p.verbatim) as unknown) : p;
  const ctx: SchemaContext = { root: parameters, written: new Set(), depth: 0 };
  const root = resolved(parameters, ctx);
  return costs.functions.func + count(`${fn.name as string}:${withoutDot(fn.description)}`) + memberTokens([root.schema, ...root.parts], count, costs.functions, ctx);
}

/**
 * Tokens a provider adds once to a request that has tools: Anthropic's tool-use system prompt (`any` for tool_choice
 * any and tool, else `auto`); OpenAI's func_end, with at least one function.
 */
export function toolPromptTokens(tools: Iterable<unknown>, toolChoice: unknown, costs: ToolCosts): number {
  const { withTools, withMessages } = toolPromptParts(tools, toolChoice, costs);
  return withTools + withMessages;
}

/**
 * Where those tokens stand in the prompt: `withTools` counted with its first tool (cached with the tools), `withMessages`
 * with its first message. A change of tool_choice keeps the tools' and the system's cache and rebuilds the messages'
 * (Anthropic's prompt caching), so the part of the tool-use system prompt one tool_choice has beyond another is not in
 * the tools' prefix: the tools carry what auto and any share (the smaller), the messages the rest.
 */
export function toolPromptParts(tools: Iterable<unknown>, toolChoice: unknown, costs: ToolCosts): { withTools: number; withMessages: number } {
  let some = false;
  let functions = false;
  // Read up to the first function only (a request's tools are parsed lazily).
  for (const tool of tools) {
    some = true;
    if (!costs.functions) break;
    if ((functions = isFunction(tool))) break;
  }
  if (!some) return { withTools: 0, withMessages: 0 };
  const forced = isRecord(toolChoice) && (toolChoice.type === 'any' || toolChoice.type === 'tool');
  const sp = costs.systemPrompt;
  const shared = sp ? Math.min(sp.auto, sp.any) : 0;
  const system = sp ? (forced ? sp.any : sp.auto) : 0;
  return { withTools: shared + (functions ? costs.functions!.end : 0), withMessages: system - shared };
}

/** The blocks of a message in its semantic form: its content parts, then its tool calls; an item without content is one block. */
function messageBlocks(message: Json): unknown[] {
  const content = message.content ?? message.parts;
  if (content === undefined && !Array.isArray(message.tool_calls)) return [message];
  const parts = Array.isArray(content) ? content : content === undefined ? [] : [content];
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls : [];
  const blocks = [...parts, ...calls];
  return blocks.length ? blocks : [null];
}

/**
 * Estimated prompt tokens of one rendered unit — a tool, a system block, a message or item — as the provider
 * counts it, in the same blocks and framing as the simulated provider (simulator/blocks.ts).
 */
export function unitTokens(format: PromptFormat, section: 'tools' | 'system' | 'messages', value: unknown, count: TokenCounter, costs: ToolCosts = {}): number {
  // A Gemini tools entry declares several functions; each is a tool.
  if (isRecord(value) && Array.isArray(value.functionDeclarations)) return value.functionDeclarations.reduce((n: number, d) => n + unitTokens(format, section, d, count, costs), 0);
  // A plain string stands for what it is where it stands: Responses instructions and a string input are a message.
  if (typeof value === 'string') return blockTokens(format, value, format === 'openai-responses', count);
  const v = semanticForm(format, value);
  if (section === 'tools') return toolTokens(format, v, count, costs);
  const isMessage = isRecord(v) && (typeof v.role === 'string' || (format === 'openai-responses' && section === 'messages' && !PART_TYPES.has(v.type as string)));
  if (!isMessage) return blockTokens(format, v, false, count);
  return messageBlocks(v as Json).reduce((n: number, b, i) => n + blockTokens(format, b, i === 0, count), 0);
}
