// Provider request bodies → SimBlocks: one block per tool, per system text block
// (or system/developer message) and per message content block, in the order the
// provider serialises the prompt (tools → system → messages).
//
// Keys chain like the design's prefix chain:
//   key_k = sha256hex(key_{k-1} + '\n' + sha256hex(JCS({ at: position marker, block })))
// with key_{-1} = ''. Blocks are hashed in their semantic form (semantic.ts): cache
// markers removed (they choose where the provider caches, they are not part of the
// cached prompt), string content taken as the text block it stands for, reply-only
// fields dropped.
//
// Token counts are estimates: the text the model reads in each block plus fixed
// framing, and what tools cost beyond their text for the model (prompt-tokens.ts,
// the same count the service's estimate uses); the reconciler scales spans to the
// provider-reported total.

import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { SimulationError, type SimBlock } from './cache';
import { MESSAGE_CACHE_SETTINGS, semanticForm } from './semantic';
import { pushAll } from '../arrays';
import { blockTokens, FRAMING, toolPromptParts, toolTokens, type ToolCosts } from '../prompt-tokens';
import { isRecord } from '../records';
import { opensResponsesTurn } from '../thinking';

export { BLOCK_OVERHEAD_TOKENS, MESSAGE_OVERHEAD_TOKENS } from '../prompt-tokens';

export type RequestFormat = 'anthropic' | 'openai-chat' | 'openai-responses' | 'gemini';
export type TokenCounter = (text: string) => number;

export interface RequestBlocks {
  blocks: SimBlock[];
  totalTokens: number;
  /** The last block that is not the model's own output (where OpenAI's implicit breakpoint goes), or -1. */
  lastInput: number;
  /** Anthropic: the TTL of every cache_control breakpoint, in prompt order (nested ones too: see markedBlocks). */
  marks?: string[];
}

const MARKER_KEYS = ['cache_control', 'prompt_cache_breakpoint'] as const;

/**
 * The blocks of a value that carry a cache breakpoint, in prompt order (a block after the blocks nested in it). As
 * Anthropic documents what can be cached (https://platform.claude.com/docs/en/build-with-claude/prompt-caching, "What
 * can be cached"; the SDK's params say "Create a cache control breakpoint at this content block"): a tool definition,
 * a system block, a message's content block, and a content block nested in one — a tool_result's content, a
 * search_result's, a document's `source.content` (images and documents too). Not a key of what a block carries as data
 * (a tool's input_schema, a tool_use's input), and not a marker set to null (none).
 */
export function markedBlocks(value: unknown): Json[] {
  const out: Json[] = [];
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) {
      for (const y of x) walk(y);
      return;
    }
    if (!isRecord(x)) return;
    if (Array.isArray(x.content)) walk(x.content);
    if (isRecord(x.source) && Array.isArray(x.source.content)) walk(x.source.content);
    if (MARKER_KEYS.some((k) => isRecord(x[k]))) out.push(x);
  };
  walk(value);
  return out;
}

/**
 * What is wrong with a malformed Anthropic `cache_control` (the SDK's CacheControlEphemeral: `{ type: 'ephemeral', ttl?:
 * '5m' | '1h' }`), or null: the failing field's path and Anthropic's validation wording (its 400 reads `<path joined by
 * dots>: <message>`, as `messages.0.content.0.cache_control.type: Field required`). Read where markedBlocks reads marks,
 * and the request's own (automatic caching); a null is no mark.
 */
export function anthropicMarkProblem(body: unknown): { path: string[]; message: string } | null {
  const check = (x: Record<string, unknown>, path: string[]): { path: string[]; message: string } | null => {
    const mark = x.cache_control;
    if (mark === undefined || mark === null) return null;
    const at = [...path, 'cache_control'];
    if (!isRecord(mark)) return { path: at, message: 'Input should be a valid dictionary' };
    if (mark.type === undefined) return { path: [...at, 'type'], message: 'Field required' };
    if (mark.type !== 'ephemeral') return { path: [...at, 'type'], message: "Input should be 'ephemeral'" };
    if (mark.ttl !== undefined && mark.ttl !== null && mark.ttl !== '5m' && mark.ttl !== '1h') return { path: [...at, 'ttl'], message: "Input should be '5m' or '1h'" };
    return null;
  };
  const walk = (x: unknown, path: string[]): { path: string[]; message: string } | null => {
    if (Array.isArray(x)) {
      for (const [i, y] of x.entries()) {
        const problem = walk(y, [...path, String(i)]);
        if (problem) return problem;
      }
      return null;
    }
    if (!isRecord(x)) return null;
    return (
      (Array.isArray(x.content) ? walk(x.content, [...path, 'content']) : null) ??
      (isRecord(x.source) && Array.isArray(x.source.content) ? walk(x.source.content, [...path, 'source', 'content']) : null) ??
      check(x, path)
    );
  };
  if (!isRecord(body)) return null;
  const messages = arrayOf(body.messages).map((m) => (isRecord(m) && Array.isArray(m.content) ? { content: m.content } : null));
  return walk(arrayOf(body.tools), ['tools']) ?? (Array.isArray(body.system) ? walk(body.system, ['system']) : null) ?? walk(messages, ['messages']) ?? check(body, []);
}

/** One TTL for the breakpoints of a block and those nested in it (the render's rule, units.ts): 1h if any asks it. */
function markedTtl(ttls: string[]): string | null {
  return ttls.length === 0 ? null : ttls.includes('1h') ? '1h' : ttls[0]!;
}

/** Anthropic's TTL when `cache_control` names none. */
export const ANTHROPIC_DEFAULT_TTL = '5m';
/** OpenAI's breakpoint TTL when `prompt_cache_options.ttl` is absent (documented default, GPT-5.6+). */
export const OPENAI_DEFAULT_TTL = '30m';

type Json = Record<string, unknown>;

/** One block before chaining: where it sits, what it holds, whether it carries a breakpoint. */
interface RawBlock {
  at: Json;
  content: unknown;
  breakpoint: string | null;
  /** First block of a message: carries the message framing overhead. */
  opensMessage: boolean;
  /** The model's own output (an assistant message, a function call, reasoning): it cannot carry a breakpoint. */
  output?: boolean;
}

/**
 * Whether the model reads an Anthropic thinking block of message `message` (thinking.ts): one it does not is removed
 * before the model reads the prompt — not billed, in no cached prefix, as if it had not been sent.
 */
export type ThinkingFilter = (message: number, block: Json) => boolean;

/**
 * `costs`: what tools cost beyond their text for the model (prompt-tokens.ts `toolCosts`); none by default. `thinking`:
 * which Anthropic thinking blocks the model reads (all by default). `earlierReasoning`: whether an OpenAI model reads
 * earlier turns' reasoning items (`reasoning.context` all_turns, thinking.ts; not by default).
 */
export function blocksFromRequest(format: RequestFormat, body: unknown, countTokens: TokenCounter, costs: ToolCosts = {}, thinking?: ThinkingFilter, earlierReasoning = false): RequestBlocks {
  switch (format) {
    case 'anthropic':
      return blocksFromAnthropic(body, countTokens, costs, thinking);
    case 'openai-chat':
      return blocksFromOpenAIChat(body, countTokens, costs);
    case 'openai-responses':
      return blocksFromOpenAIResponses(body, countTokens, costs, earlierReasoning);
    case 'gemini':
      return blocksFromGemini(body, countTokens, costs);
  }
}

/** Anthropic Messages API: `tools`, `system` (string or text blocks), `messages`. */
export function blocksFromAnthropic(body: unknown, countTokens: TokenCounter, costs: ToolCosts = {}, thinking?: ThinkingFilter): RequestBlocks {
  const b = requireObject(body);
  const raw: RawBlock[] = [];
  // Every breakpoint's TTL in prompt order; a block's own and its nested ones' make its breakpoint.
  const marks: string[] = [];
  const breakpointOf = (block: unknown): string | null => {
    // Anthropic's marks only (an OpenAI prompt_cache_breakpoint is not one here).
    const ttls = markedBlocks(block).flatMap((m) => anthropicTtl(m) ?? []);
    pushAll(marks, ttls);
    return markedTtl(ttls);
  };
  arrayOf(b.tools).forEach((tool, index) => {
    raw.push({ at: { section: 'tools', index }, content: semanticForm('anthropic', tool), breakpoint: breakpointOf(tool), opensMessage: false });
  });
  // A string is the text block it stands for.
  const asBlocks = (v: unknown) => (typeof v === 'string' ? [{ type: 'text', text: v }] : arrayOf(v));
  asBlocks(b.system).forEach((part, index) => {
    raw.push({ at: { section: 'system', index }, content: semanticForm('anthropic', part), breakpoint: breakpointOf(part), opensMessage: false });
  });
  // The messages are cached under the request's tool_choice and thinking settings: another value, another prefix.
  const settings = Object.fromEntries(MESSAGE_CACHE_SETTINGS.filter((k) => b[k] !== undefined && b[k] !== null).map((k) => [k, b[k]]));
  const context = Object.keys(settings).length ? { settings } : {};
  arrayOf(b.messages).forEach((message, m) => {
    const msg = isRecord(message) ? message : {};
    const role = msg.role ?? null;
    // The thinking the model does not read is not there for it: the message is the rest (its places counted without it).
    const parts = thinking ? asBlocks(msg.content).filter((part) => !isRecord(part) || (part.type !== 'thinking' && part.type !== 'redacted_thinking') || thinking(m, part)) : asBlocks(msg.content);
    if (parts.length === 0) {
      raw.push({ at: { section: 'messages', message: m, role, part: 0, ...context }, content: null, breakpoint: null, opensMessage: true });
    }
    parts.forEach((part, p) => {
      raw.push({
        at: { section: 'messages', message: m, role, part: p, ...context },
        content: semanticForm('anthropic', part),
        breakpoint: breakpointOf(part),
        opensMessage: p === 0,
      });
    });
  });
  // Top-level `cache_control` is Anthropic's automatic caching: the breakpoint goes on the last block.
  const auto = anthropicTtl(b);
  const last = raw[raw.length - 1];
  if (auto !== null && last && last.breakpoint === null) {
    last.breakpoint = auto;
    marks.push(auto);
  }
  return { ...chain('anthropic', raw, countTokens, costs, toolPromptParts(arrayOf(b.tools), b.tool_choice, costs)), marks };
}

/** OpenAI Chat Completions: `tools`, then `messages` in array order (system/developer messages are the system section). */
export function blocksFromOpenAIChat(body: unknown, countTokens: TokenCounter, costs: ToolCosts = {}): RequestBlocks {
  const b = requireObject(body);
  const ttl = openaiRequestTtl(b);
  const raw: RawBlock[] = [];
  arrayOf(b.tools).forEach((tool, index) => {
    raw.push({ at: { section: 'tools', index }, content: semanticForm('openai-chat', tool), breakpoint: openaiTtl(tool, ttl), opensMessage: false });
  });
  arrayOf(b.messages).forEach((message, m) => {
    const msg = isRecord(message) ? message : {};
    pushAll(raw, messageBlocks('openai-chat', msg, m, ttl, arrayOf(msg.tool_calls)));
  });
  return chain('openai-chat', raw, countTokens, costs, toolPromptParts(arrayOf(b.tools), b.tool_choice, costs));
}

/**
 * OpenAI Responses: `tools`, `instructions`, then `input` (a string or a list of items). `earlierReasoning`: the model
 * reads earlier turns' reasoning items too (`reasoning.context` all_turns on a model that accepts it).
 */
export function blocksFromOpenAIResponses(body: unknown, countTokens: TokenCounter, costs: ToolCosts = {}, earlierReasoning = false): RequestBlocks {
  const b = requireObject(body);
  const ttl = openaiRequestTtl(b);
  const raw: RawBlock[] = [];
  arrayOf(b.tools).forEach((tool, index) => {
    raw.push({ at: { section: 'tools', index }, content: semanticForm('openai-responses', tool), breakpoint: openaiTtl(tool, ttl), opensMessage: false });
  });
  if (typeof b.instructions === 'string') {
    raw.push({ at: { section: 'system', index: 0 }, content: b.instructions, breakpoint: null, opensMessage: true });
  }
  // A string input is the one user message it stands for.
  const input = typeof b.input === 'string' ? [{ role: 'user', content: b.input }] : arrayOf(b.input);
  // Reasoning items of earlier turns (before the newest user message) are dropped from the model's context, as
  // OpenAI does (thinking.ts; https://cookbook.openai.com/examples/responses_api/reasoning_items, "Caching"): not read, not billed,
  // in no cached prefix. Those of the turn under way (its tool loop) are kept; all of them with reasoning.context all_turns.
  const turnStart = earlierReasoning ? -1 : input.findLastIndex(opensResponsesTurn);
  input.forEach((item, m) => {
    const it = isRecord(item) ? item : {};
    if (it.type === 'reasoning' && m < turnStart) return;
    if ('content' in it) {
      pushAll(raw, messageBlocks('openai-responses', it, m, ttl, []));
    } else {
      // function_call, function_call_output, reasoning, …: one block for the whole item
      const output = it.type === 'function_call' || it.type === 'reasoning';
      raw.push({ at: { section: 'messages', message: m, part: 0 }, content: semanticForm('openai-responses', it), breakpoint: openaiTtl(it, ttl), opensMessage: true, output });
    }
  });
  return chain('openai-responses', raw, countTokens, costs, toolPromptParts(arrayOf(b.tools), b.tool_choice, costs));
}

/**
 * Gemini generateContent: `tools` (each function declaration a tool, as the renderer counts them), the
 * `systemInstruction` parts, then each content's parts (`model` parts are the model's own output). Gemini takes no
 * breakpoints: its implicit cache finds the prefix itself.
 */
export function blocksFromGemini(body: unknown, countTokens: TokenCounter, costs: ToolCosts = {}): RequestBlocks {
  const b = requireObject(body);
  const raw: RawBlock[] = [];
  arrayOf(b.tools).forEach((tool, index) => {
    const declarations = isRecord(tool) && Array.isArray(tool.functionDeclarations) ? tool.functionDeclarations : [tool];
    declarations.forEach((d, f) => raw.push({ at: { section: 'tools', index, f }, content: semanticForm('gemini', d), breakpoint: null, opensMessage: false }));
  });
  // The REST docs spell it system_instruction too; a string is the text part it stands for.
  const system = b.systemInstruction ?? b.system_instruction;
  const systemParts = typeof system === 'string' ? [{ text: system }] : isRecord(system) ? arrayOf(system.parts) : [];
  systemParts.forEach((part, index) => raw.push({ at: { section: 'system', index }, content: semanticForm('gemini', part), breakpoint: null, opensMessage: false }));
  arrayOf(b.contents).forEach((content, m) => {
    const c = isRecord(content) ? content : {};
    const role = c.role ?? 'user';
    const parts = arrayOf(c.parts);
    const at = (part: number) => ({ section: 'messages', message: m, role, part });
    if (parts.length === 0) raw.push({ at: at(0), content: null, breakpoint: null, opensMessage: true, output: role === 'model' });
    parts.forEach((part, p) => raw.push({ at: at(p), content: semanticForm('gemini', part), breakpoint: null, opensMessage: p === 0, output: role === 'model' }));
  });
  return chain('gemini', raw, countTokens, costs, { withTools: 0, withMessages: 0 });
}

/** Blocks of one OpenAI message: one per content part, then one per tool call; at least one. */
function messageBlocks(format: 'openai-chat' | 'openai-responses', msg: Json, m: number, ttl: string, toolCalls: unknown[]): RawBlock[] {
  const { content: _content, tool_calls: _calls, ...meta } = msg;
  const section = msg.role === 'system' || msg.role === 'developer' ? 'system' : 'messages';
  // Message-level fields (role, name, tool_call_id, …) are part of every block's position.
  const place = semanticForm(format, meta);
  const at = (part: number): Json => ({ section, message: m, meta: place, part });
  const out: RawBlock[] = [];
  // The content in its semantic form (a string is its one text part); the markers are read from what was sent.
  const sent = arrayOf(msg.content);
  arrayOf((semanticForm(format, { role: msg.role, content: msg.content }) as Json).content).forEach((part, p) => {
    out.push({ at: at(out.length), content: part, breakpoint: openaiTtl(sent[p], ttl), opensMessage: out.length === 0 });
  });
  toolCalls.forEach((call) => {
    out.push({ at: at(out.length), content: semanticForm(format, call), breakpoint: null, opensMessage: out.length === 0 });
  });
  if (out.length === 0) out.push({ at: at(0), content: null, breakpoint: null, opensMessage: true });
  if (msg.role === 'assistant') for (const r of out) r.output = true;
  return out;
}

/**
 * `toolPrompt`: what the provider adds once for the request's tools (prompt-tokens.ts toolPromptParts), counted with
 * the first tool (tools come first) and the first message (with the first tool when there is none).
 */
function chain(format: RequestFormat, raw: RawBlock[], countTokens: TokenCounter, costs: ToolCosts, toolPrompt: { withTools: number; withMessages: number }): RequestBlocks {
  const blocks: SimBlock[] = [];
  let key = '';
  let total = 0;
  let lastInput = -1;
  const firstMessage = raw.findIndex((r) => r.at.section === 'messages');
  const added = (i: number) => (i === 0 ? toolPrompt.withTools + (firstMessage < 0 ? toolPrompt.withMessages : 0) : 0) + (i === firstMessage ? toolPrompt.withMessages : 0);
  for (const [i, r] of raw.entries()) {
    if (!r.output) lastInput = blocks.length;
    key = sha256hex(`${key}\n${sha256hex(canonicalJson({ at: r.at, block: r.content }))}`);
    total += (r.at.section === 'tools' ? toolTokens(format, r.content, countTokens, costs) : blockTokens(format, r.content, r.opensMessage, countTokens)) + added(i);
    blocks.push(r.breakpoint === null ? { key, endToken: total } : { key, endToken: total, breakpoint: r.breakpoint });
  }
  // The reply's header follows the last block: counted in the prompt, in no cached prefix.
  return { blocks, totalTokens: total + FRAMING[format].reply, lastInput };
}

/** Anthropic `cache_control: {type: 'ephemeral', ttl?: '5m' | '1h'}` → TTL name. */
function anthropicTtl(block: unknown): string | null {
  if (!isRecord(block) || !isRecord(block.cache_control)) return null;
  const ttl = block.cache_control.ttl;
  return typeof ttl === 'string' ? ttl : ANTHROPIC_DEFAULT_TTL;
}

/**
 * OpenAI explicit breakpoints (GPT-5.6 and later) are `prompt_cache_breakpoint: {mode: 'explicit'}`
 * on a content block; their TTL is the request's `prompt_cache_options.ttl`. A `cache_control`
 * marker (the form gateways such as OpenRouter accept) is recognised too.
 */
function openaiTtl(block: unknown, requestTtl: string): string | null {
  if (!isRecord(block)) return null;
  if (isRecord(block.prompt_cache_breakpoint)) return requestTtl;
  if (isRecord(block.cache_control)) {
    const ttl = block.cache_control.ttl;
    return typeof ttl === 'string' ? ttl : requestTtl;
  }
  return null;
}

function openaiRequestTtl(body: Json): string {
  const options = body.prompt_cache_options;
  return isRecord(options) && typeof options.ttl === 'string' ? options.ttl : OPENAI_DEFAULT_TTL;
}

function canonicalJson(value: unknown): string {
  try {
    return canonicalize(value) ?? 'null';
  } catch (e) {
    // A lone surrogate: the providers refuse such a body as invalid (a 400), not as their own failure.
    throw new SimulationError('invalid_request', `the request body is not valid Unicode: ${(e as Error).message.toLowerCase()}`);
  }
}

function sha256hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function requireObject(body: unknown): Json {
  if (!isRecord(body)) throw new SimulationError('invalid_request', 'request body must be a JSON object');
  return body;
}


function arrayOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
