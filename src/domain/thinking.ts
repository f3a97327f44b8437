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
// reasoning back: nothing to drop.)

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
 * Why the same bytes can be read otherwise by `model` in `format` once a new question follows a tool loop, as a drift
 * finding names it (reconciler.ts): a Claude model that strips earlier turns' thinking (`earlier_turn`), an OpenAI
 * Responses request, whose earlier turns' reasoning items are dropped (`earlier_reasoning`); null when nothing is.
 */
export function earlierTurnsUnread(format: string, model: Pick<ModelEntry, 'thinking'> | undefined): 'earlier_turn' | 'earlier_reasoning' | null {
  if (format === 'openai-responses') return 'earlier_reasoning';
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
