// Which of the thinking blocks a request sends back a Claude model reads: what it bills as input and what its cache
// holds. The blocks are always sent (a session's bytes do not depend on the model); the API removes the others before
// the model reads them. Two rules, per model in the catalog (`thinking`):
//
// - Earlier turns (https://platform.claude.com/docs/en/build-with-claude/extended-thinking): Claude Opus 4.5 and later,
//   Sonnet 4.6 and later keep every earlier assistant turn's thinking in context; older models (and every Haiku through
//   4.5) keep only the current turn's — the assistant messages after the newest user message that is more than tool
//   results (the tool loop under way). A new question so removes the previous turn's thinking, and the cached prefix
//   through it no longer matches from the first assistant message that held some.
// - Preserved thinking's model check (https://platform.claude.com/docs/en/build-with-claude/preserved-thinking): a
//   model reads its own blocks and those of a fixed set of other models; a block of any other is dropped without an
//   error (`input_transformations`: `thinking_dropped`, `model_binding_mismatch`).
//
// OpenAI's reasoning models (https://cookbook.openai.com/examples/responses_api/reasoning_items, and the reasoning
// guide): the Responses API drops the reasoning items sent back from before the newest user message; those of the
// tool loop under way are read. An item of an earlier turn is neither billed nor in the cached prefix, so a new
// question after a tool loop misses the prefix from the first reasoning item it held. (Chat Completions sends no
// reasoning back: nothing to drop.) GPT-5.6 and newer (the catalog's `reasoningContext`) take the request's
// `reasoning.context`: `all_turns` keeps every reasoning item sent back read (billed, in the cached prefix),
// `current_turn` drops the earlier turns' as before, `auto` or none is the model's default (`all_turns` for GPT-5.6,
// per the openai SDK's `Reasoning.context`, from OpenAI's API reference).

import type { ModelEntry } from './catalog/types';
import { isRecord } from './records';

type Json = Record<string, unknown>;

export const isThinkingBlock = (b: unknown): boolean => isRecord(b) && (b.type === 'thinking' || b.type === 'redacted_thinking');

/** Whether a message (Anthropic's, or ours) is a user message with more than tool results: a new turn begins with it. */
export function opensTurn(message: unknown): boolean {
  if (!isRecord(message) || message.role !== 'user') return false;
  const content = message.content;
  return !Array.isArray(content) || content.some((b) => !isRecord(b) || b.type !== 'tool_result');
}

/** Whether a Responses input item is a user message: a new turn begins with it (a function call's output is not one). */
export function opensResponsesTurn(item: unknown): boolean {
  return isRecord(item) && item.role === 'user' && (item.type ?? 'message') === 'message';
}

/**
 * Whether `model` reads the reasoning items of earlier turns in an OpenAI request whose `reasoning` is `reasoning`:
 * only a model that accepts `reasoning.context`, asked for `all_turns` (or by default).
 */
export function readsEarlierReasoning(model: Pick<ModelEntry, 'reasoningContext'> | undefined, reasoning: unknown): boolean {
  const rule = model?.reasoningContext;
  if (!rule) return false;
  const asked = isRecord(reasoning) ? reasoning.context : undefined;
  return (asked === 'all_turns' || asked === 'current_turn' ? asked : rule.default) === 'all_turns';
}

/** The name a Responses request's `reasoning.context` is recorded by, among its message settings (`requests.message_settings`). */
export const REASONING_CONTEXT = 'reasoning.context';

/** A Responses request's message settings as recorded: its `reasoning.context` when it sends one, as canonical JSON. */
export function reasoningSettings(reasoning: unknown): string {
  const context = isRecord(reasoning) ? reasoning.context : undefined;
  return context === undefined || context === null ? '{}' : JSON.stringify({ [REASONING_CONTEXT]: context });
}

/** The `reasoning` a request's recorded message settings give back (readsEarlierReasoning reads it). */
export function recordedReasoning(messageSettings: string | null | undefined): { context?: unknown } {
  if (!messageSettings) return {};
  const context = (JSON.parse(messageSettings) as Record<string, unknown>)[REASONING_CONTEXT];
  return context === undefined ? {} : { context };
}

/** Whether a drift finding's changed settings are a Responses request's `reasoning.context` (else Anthropic's). */
export const reasoningContextChanged = (settings: ReadonlyArray<{ name: string }>): boolean => settings.some((c) => c.name === REASONING_CONTEXT);

/** Why a changed `reasoning.context` misses the same bytes, as the CLI and the dashboard say it. */
export const REASONING_CONTEXT_RULE = `OpenAI reads earlier turns' reasoning items only under reasoning.context "all_turns": the previous request's prefix held other items than the model read now`;

/** What to do about it (the drift advice). */
export const REASONING_CONTEXT_ADVICE = `keep reasoning.context the same on every call of a conversation ("all_turns" keeps earlier turns' reasoning in the cached prefix): a change sends the conversation again from the first reasoning item one of them dropped`;

/**
 * Who dropped earlier turns' reasoning items, as the `earlier_reasoning` finding says it: OpenAI's rule, or on a model
 * that accepts `reasoning.context` (its default `all_turns`) the request's own `current_turn`.
 */
export function earlierReasoningDropped(acceptsContext: boolean): string {
  return acceptsContext ? `OpenAI drops earlier turns' reasoning items under the request's reasoning.context "current_turn"` : "OpenAI drops earlier turns' reasoning items";
}

/**
 * What to do about a new question's miss of earlier turns' reasoning (the drift finding's `earlier_reasoning`), as the
 * CLI and the dashboard say it: on a model that accepts `reasoning.context` (the finding's `reasoning_context`), send
 * `all_turns`; otherwise nothing (OpenAI's rule).
 */
export function earlierReasoningAdvice(acceptsContext: boolean): string {
  return acceptsContext
    ? `the model accepts reasoning.context: send reasoning: {"context": "all_turns"} and earlier turns' reasoning stays in the prefix, so a new question reads it from cache (it is billed as input, as the cached prefix is)`
    : "OpenAI's rule, nothing in the agent to change: keep sending the items back, the tool loop under way reads its own";
}

/**
 * Why the same bytes can be read otherwise by `model` in `format` once a new question follows a tool loop, as a drift
 * finding names it (reconciler.ts): a Claude model that strips earlier turns' thinking (`earlier_turn`), an OpenAI
 * Responses request, whose earlier turns' reasoning items are dropped (`earlier_reasoning`) unless its `reasoning`
 * keeps them read; null when nothing is.
 */
export function earlierTurnsUnread(format: string, model: Pick<ModelEntry, 'thinking' | 'reasoningContext'> | undefined, reasoning?: unknown): 'earlier_turn' | 'earlier_reasoning' | null {
  // A model asked for (or defaulting to) all_turns read every turn's reasoning: nothing was dropped.
  if (format === 'openai-responses') return readsEarlierReasoning(model, reasoning) ? null : 'earlier_reasoning';
  return format === 'anthropic' && model?.thinking?.earlierTurns === 'stripped' ? 'earlier_turn' : null;
}

/** The index of the message the current turn opens with (the newest user message with more than tool results); -1 when none. */
export function currentTurnStart(messages: readonly unknown[]): number {
  for (let i = messages.length - 1; i >= 0; i--) if (opensTurn(messages[i])) return i;
  return -1;
}

/** Whether `model` reads blocks produced by `producer` (a catalog id; null: unknown, read as nothing says otherwise). */
export function readsProducer(model: Pick<ModelEntry, 'id' | 'thinking'>, producer: string | null): boolean {
  const from = model.thinking?.readsFrom;
  return !from || producer === null || producer === model.id || from.includes(producer);
}

/**
 * Whether `model` reads a thinking block of the assistant message at `message`, given where the current turn starts
 * and the catalog id of the model that produced the block (null: unknown — a caller's own block, or one kept before
 * the producer was).
 */
export function readsThinking(model: Pick<ModelEntry, 'id' | 'thinking'>, message: number, turnStart: number, producer: string | null): boolean {
  if (!model.thinking) return true;
  return readsProducer(model, producer) && (model.thinking.earlierTurns === 'kept' || message > turnStart);
}
