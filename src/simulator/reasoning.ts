// The model's reasoning state as the simulator hands it out and takes it back:
// Anthropic thinking blocks when `thinking` is on, Gemini thought signatures on
// Gemini 3 models, OpenAI Responses reasoning items with encrypted_content, and
// the 400s the providers answer when a tool loop sends the conversation back
// without them.
//
// Anthropic (https://platform.claude.com/docs/en/build-with-claude/extended-thinking,
// "Preserving thinking blocks"): during tool use, the last assistant message's
// thinking blocks must come back complete and unmodified, signature included.
// Gemini (https://ai.google.dev/gemini-api/docs/thought-signatures): Gemini 3
// validates every step of the current turn (the model contents after the newest
// user content with text); the first functionCall part of each must carry the
// thoughtSignature it came with.
// OpenAI (https://platform.openai.com/docs/guides/reasoning, "Encrypted reasoning items"; the cookbook
// https://cookbook.openai.com/examples/responses_api/reasoning_items): a reasoning model asked for
// `include: ["reasoning.encrypted_content"]` returns its reasoning item with it, to be passed back with the
// function call outputs. A function_call sent back by its id (a stored response's) needs the reasoning item that came
// before it, and a reasoning item needs the item it preceded: OpenAI's 400s for either, in its words.
//
// Signatures are a digest of what they sign, so the simulator also refuses one
// that no longer matches its content (the real APIs verify theirs cryptographically).

import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { semanticForm } from '../domain/simulator/semantic';
import { isRecord } from '../domain/records';

type Json = Record<string, unknown>;

/** A deterministic stand-in for a provider's signature over `what`. */
export function simSignature(kind: 'anthropic' | 'gemini' | 'openai', what: unknown): string {
  return createHash('sha256').update(`${kind}\n${typeof what === 'string' ? what : (canonicalize(what) ?? '')}`, 'utf8').digest('base64');
}

/** What a thinking block is tied to: the model that produced it and, with preserved thinking, what came before it. */
export interface ThinkingBinding {
  model: string;
  /** anthropicPrefixes' digest at the block; '' for a model without the prefix check. */
  prefix: string;
}

/**
 * An Anthropic thinking block's signature. Tied, it names the model that produced it (the model check applies to every
 * thinking model) and, with preserved thinking, the digest of what came before, as Anthropic's signatures tell the API;
 * untied (a block signed before models were named), it signs the text alone.
 */
export function anthropicSignature(thinking: string, bound: ThinkingBinding | null): string {
  if (bound === null) return simSignature('anthropic', thinking);
  const { model, prefix } = bound;
  return Buffer.from(JSON.stringify([model, prefix, simSignature('anthropic', { model, prefix, thinking })]), 'utf8').toString('base64');
}

/** Whether a thinking block's signature is one the simulator gave its text, and what it is tied to (null: nothing). */
export function anthropicSigner(block: Json): { valid: boolean; bound: ThinkingBinding | null } {
  if (block.type === 'redacted_thinking') return { valid: true, bound: null };
  const thinking = typeof block.thinking === 'string' ? block.thinking : '';
  if (block.signature === simSignature('anthropic', thinking)) return { valid: true, bound: null };
  try {
    const [model, prefix] = JSON.parse(Buffer.from(String(block.signature), 'base64').toString('utf8')) as unknown[];
    if (typeof model === 'string' && typeof prefix === 'string' && block.signature === anthropicSignature(thinking, { model, prefix })) return { valid: true, bound: { model, prefix } };
  } catch {
    // Not one of ours.
  }
  return { valid: false, bound: null };
}

/**
 * Preserved thinking's prefix check (https://platform.claude.com/docs/en/build-with-claude/preserved-thinking): what
 * came before a thinking block — the top-level system and tools, the messages before it, the blocks before it in its
 * message — as a digest, cache marks aside (they choose where the provider caches; they are not the conversation).
 * `at(message, part)`; a reply's first block stands at (messages.length, 0).
 */
export function anthropicPrefixes(body: Json): (message: number, part: number) => string {
  const blocks = (v: unknown) => (typeof v === 'string' ? [{ type: 'text', text: v }] : Array.isArray(v) ? v : []);
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const message = (i: number): Json => (isRecord(messages[i]) ? messages[i] : {});
  const norm = (v: unknown) => semanticForm('anthropic', v);
  const chain = [simSignature('anthropic', { tools: norm(Array.isArray(body.tools) ? body.tools : []), system: norm(blocks(body.system)) })];
  const link = (i: number, m: Json) => simSignature('anthropic', [chain[i], norm(m)]);
  return (i, part) => {
    while (chain.length <= i) chain.push(link(chain.length - 1, { role: message(chain.length - 1).role, content: blocks(message(chain.length - 1).content) }));
    return link(i, { role: i < messages.length ? message(i).role : 'assistant', content: blocks(message(i).content).slice(0, part) });
  };
}

/** The 400 message Anthropic answers for a thinking block whose prefix changed since it was produced (Preserved thinking). */
export const boundToAnotherConversation = (message: number, part: number) =>
  `messages.${message}.content.${part}: Invalid \`signature\` in \`thinking\` block. The block is bound to a different conversation. Remove the block, or set \`thinking.block_binding.prefix_mismatch_behavior\` to "drop_block".`;

/** Anthropic `thinking: {type: "enabled" | "adaptive"}`. */
export function anthropicThinkingOn(body: Json): boolean {
  return isRecord(body.thinking) && (body.thinking.type === 'enabled' || body.thinking.type === 'adaptive');
}

/** Gemini 3 and later return (and require) thought signatures, at every thinking level. */
export function geminiSignsCalls(model: string): boolean {
  const major = /^gemini-(\d+)/.exec(model)?.[1];
  return major !== undefined && Number(major) >= 3;
}

const DOCS = 'https://docs.claude.com/en/docs/build-with-claude/extended-thinking';

/** The 400 message Anthropic answers for the request's thinking blocks, or null when they are in order. */
export function anthropicThinkingProblem(body: Json): string | null {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (const [i, m] of messages.entries()) {
    if (!isRecord(m) || m.role !== 'assistant' || !Array.isArray(m.content)) continue;
    for (const [j, b] of m.content.entries())
      if (isRecord(b) && b.type === 'thinking' && !anthropicSigner(b).valid) return `messages.${i}.content.${j}: Invalid \`signature\` in \`thinking\` block`;
  }
  if (!anthropicThinkingOn(body)) return null;
  // A tool loop under way: the newest message answers tool calls of the assistant message before it.
  const last = messages.at(-1);
  const answering = isRecord(last) && last.role === 'user' && Array.isArray(last.content) && last.content.some((b) => isRecord(b) && b.type === 'tool_result');
  const a = messages.length - 2;
  const assistant = messages[a];
  if (!answering || !isRecord(assistant) || assistant.role !== 'assistant') return null;
  const first = Array.isArray(assistant.content) ? assistant.content[0] : { type: 'text' };
  const type = isRecord(first) ? String(first.type) : 'text';
  if (type === 'thinking' || type === 'redacted_thinking') return null;
  return (
    `messages.${a}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${type}\`. When \`thinking\` is enabled, a final \`assistant\` message ` +
    'must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. ' +
    `To avoid this requirement, disable \`thinking\`. Please consult our documentation at ${DOCS}`
  );
}

const isUserText = (c: Json) => (c.role === undefined || c.role === 'user') && Array.isArray(c.parts) && c.parts.some((p) => isRecord(p) && p.functionResponse === undefined);

/** The 400 message Gemini 3 answers for the current turn's function calls, or null when each step's first is signed. */
export function geminiSignatureProblem(model: string, body: Json): string | null {
  if (!geminiSignsCalls(model)) return null;
  const contents = Array.isArray(body.contents) ? body.contents : [];
  let start = contents.length - 1;
  while (start >= 0 && !(isRecord(contents[start]) && isUserText(contents[start] as Json))) start--;
  for (let i = Math.max(start, 0); i < contents.length; i++) {
    const c = contents[i];
    if (!isRecord(c) || c.role !== 'model' || !Array.isArray(c.parts)) continue;
    const call = c.parts.find((p) => isRecord(p) && isRecord(p.functionCall));
    if (!isRecord(call) || !isRecord(call.functionCall)) continue;
    const { name, args } = call.functionCall;
    if (typeof call.thoughtSignature !== 'string')
      return (
        'Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature ' +
        `may lead to degraded model performance. Additional data, function call \`default_api:${String(name)}\`, position ${i}. ` +
        'Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.'
      );
    if (call.thoughtSignature !== simSignature('gemini', { name, args: args ?? {} })) return 'Corrupted thought signature.';
  }
  return null;
}

/** OpenAI's reasoning models: the o-series (o1, o3, o4-mini, their -pro, -mini and deep research models), the gpt-5 family but its chat models. */
export function openaiReasons(model: string): boolean {
  return /^(o\d|gpt-5)/.test(model) && !model.includes('-chat');
}

/** An OpenAI reasoning model asked for its encrypted reasoning (a Responses request). */
export function openaiReturnsReasoning(model: string, body: Json): boolean {
  return openaiReasons(model) && Array.isArray(body.include) && body.include.includes('reasoning.encrypted_content');
}

/** What a Responses input item is to the model: its own output (reasoning, a call, an assistant message) or not. */
const isOutputItem = (it: unknown) => isRecord(it) && (it.type === 'reasoning' || it.type === 'function_call' || (it.role === 'assistant' && (it.type ?? 'message') === 'message'));

/**
 * The 400 message OpenAI answers for the input's reasoning items, or null: a function_call sent by the id of a stored
 * one whose reasoning item (`required(id)`) is not before it, or a reasoning item that no output item follows.
 */
export function openaiReasoningProblem(input: unknown[], required: (functionCallId: string) => string | undefined): string | null {
  const seen = new Set<string>();
  for (const [i, it] of input.entries()) {
    if (!isRecord(it)) continue;
    if (it.type === 'reasoning' && typeof it.id === 'string') {
      seen.add(it.id);
      if (!isOutputItem(input[i + 1])) return `Item '${it.id}' of type 'reasoning' was provided without its required following item.`;
    }
    const rs = it.type === 'function_call' && typeof it.id === 'string' ? required(it.id) : undefined;
    if (rs !== undefined && !seen.has(rs)) return `Item '${String(it.id)}' of type 'function_call' was provided without its required 'reasoning' item: '${rs}'.`;
  }
  return null;
}
