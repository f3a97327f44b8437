// An Anthropic request's message units as the model reads them (thinking.ts): a unit holding thinking blocks the model
// does not read — an earlier turn's on a model that strips them, another model's under the model check, those the API
// drops under preserved thinking's prefix check with `drop_block` (thinking-prefix.ts) — is keyed and counted without
// them, as the simulated provider caches and bills it. An OpenAI Responses reasoning item of an earlier turn is its own
// unit: it is keyed and counted as not there at all. The bytes sent are unchanged.

import type { ModelEntry } from '../catalog/types';
import type { ContentBlock, Message } from '../content';
import { toolCosts, unitTokens } from '../prompt-tokens';
import { semanticKey, unitKey } from '../simulator/semantic';
import { isThinkingBlock, opensResponsesTurn, opensTurn, readsThinking } from '../thinking';
import { countTokens, type TokenizerFamily } from '../tokens';
import { Lru } from '../lru';
import { isRecord } from '../records';
import type { PromptSegment } from './prompt';

/** What this module reads and changes of a rendered unit (units.ts Unit). */
export interface MessageUnit {
  hashText: string;
  item: { segment: PromptSegment | null; index?: number; all?: readonly string[] } | null;
  /** A block of a message that holds handle blocks (keyed with its role), not a whole message. */
  part?: boolean;
  key: string;
  tokens: (family: TokenizerFamily) => number;
}

/** A block another model produced that this one does not read: where, and whose. */
export interface UnreadThinking {
  unit: number;
  producer: string;
}

/** Where the API starts dropping thinking blocks (drop_block): a message unit and its thinking block (by order), then every later one. */
export interface DroppedFrom {
  unit: number;
  thinking: number;
}

type Json = Record<string, unknown>;
interface Variant {
  key: string;
  counts: Partial<Record<TokenizerFamily, number>>;
}

const isAnthropicThinking = (b: ContentBlock) => b.type === 'thinking' || b.type === 'redacted_thinking';
/** Per rendered segment, by item: the producers of its message's thinking blocks (undefined: none, or not a message). */
const producersOf = new WeakMap<readonly string[], Array<Array<string | null> | undefined>>();
/** Per rendered segment, by item and the blocks kept: the key and counts without the others. */
const variantsOf = new WeakMap<readonly string[], Array<Map<string, Variant> | undefined>>();

/** The stored message a handle unit renders (a session batch's, a messages artifact's), when it is one whole message. */
function storedMessage(u: MessageUnit): Message | undefined {
  const seg = u.item?.segment;
  return !u.part && seg?.section === 'messages' && u.item!.index !== undefined ? seg.messages[u.item!.index] : undefined;
}

/** The producers of a unit's thinking blocks, in order (null: not known); undefined when it holds none. */
function producers(u: MessageUnit): Array<string | null> | undefined {
  if (u.part) return undefined;
  const all = u.item?.all;
  const index = u.item?.index;
  if (u.item?.segment && all && index !== undefined) {
    let list = producersOf.get(all);
    if (!list) producersOf.set(all, (list = []));
    if (!(index in list)) {
      const m = storedMessage(u);
      const blocks = m && typeof m.content !== 'string' ? m.content.filter(isAnthropicThinking) : [];
      list[index] = blocks.length ? blocks.map((b) => ('model' in b && typeof b.model === 'string' ? b.model : null)) : undefined;
    }
    return list[index];
  }
  // The caller's own message (JSON.stringify writes no spaces): whose its blocks are, nothing says.
  if (!u.hashText.includes('"type":"thinking"') && !u.hashText.includes('"type":"redacted_thinking"')) return undefined;
  const content = (JSON.parse(u.hashText) as Json).content;
  const n = Array.isArray(content) ? content.filter(isThinkingBlock).length : 0;
  return n ? new Array<null>(n).fill(null) : undefined;
}

/** Whether a unit opens the current turn: a user message with more than tool results (a block of one with a handle in it does). */
function unitOpensTurn(u: MessageUnit): boolean {
  if (u.part) return u.hashText.startsWith('"user":');
  return opensTurn(storedMessage(u) ?? (JSON.parse(u.hashText) as unknown));
}

/**
 * Re-keys and re-counts, in place, the message units whose thinking `model` does not all read (see the file comment).
 * `producerOf`: a model name's catalog id (null: not known); `dropped`: where the API drops every thinking block from
 * on (none: undefined). Returns the blocks left unread because another model produced them.
 */
export function readThinkingOnly(units: MessageUnit[], model: ModelEntry, producerOf: (name: string) => string | null, dropped?: DroppedFrom): UnreadThinking[] {
  const unread: UnreadThinking[] = [];
  if (!model.thinking) return unread;
  // The catalog's answer per producer's name, once a call: a long session names the same model in every reply.
  const ids = new Map<string, string | null>();
  const idOf = (name: string) => {
    let id = ids.get(name);
    if (id === undefined) ids.set(name, (id = producerOf(name)));
    return id;
  };
  let turnStart: number | undefined;
  units.forEach((u, i) => {
    const by = producers(u);
    if (!by) return;
    turnStart ??= units.findLastIndex(unitOpensTurn);
    const start = turnStart;
    const keep = by.map((name, k) => {
      const read = readsThinking(model, i, start, name === null ? null : idOf(name));
      if (!read && name !== null && readsThinking(model, i, start, null)) unread.push({ unit: i, producer: name });
      return read && !(dropped && (i > dropped.unit || (i === dropped.unit && k >= dropped.thinking)));
    });
    if (keep.every(Boolean)) return;
    const variant = strippedVariant(u, keep);
    u.key = variant.key;
    u.tokens = (family) => (variant.counts[family] ??= unitTokens('anthropic', 'messages', strippedMessage(u.hashText, keep), (t) => countTokens(t, family), toolCosts('anthropic', family)));
  });
  return unread;
}

/** The message without the thinking blocks not kept (`keep`, by thinking block in order). */
function strippedMessage(hashText: string, keep: boolean[]): Json {
  const message = JSON.parse(hashText) as Json;
  let k = 0;
  const content = Array.isArray(message.content) ? message.content.filter((b) => !isThinkingBlock(b) || keep[k++]) : message.content;
  return { ...message, content };
}

function strippedVariant(u: MessageUnit, keep: boolean[]): Variant {
  const make = (): Variant => ({ key: unitKey('anthropic', 'messages', strippedMessage(u.hashText, keep)), counts: {} });
  const all = u.item?.segment ? u.item.all : undefined;
  const index = u.item?.index;
  if (!all || index === undefined) return make();
  let list = variantsOf.get(all);
  if (!list) variantsOf.set(all, (list = []));
  const byMask = (list[index] ??= new Map());
  const mask = keep.map((k) => (k ? '1' : '0')).join('');
  let v = byMask.get(mask);
  if (!v) byMask.set(mask, (v = make()));
  return v;
}

/** The key of a reasoning item the model does not read: the same wherever it stands, as nothing is there to read. */
const REASONING_NOT_READ = semanticKey('openai-responses', { type: 'reasoning', read: false }, 'messages');

/**
 * What a Responses item is, by unit key (the same value, the same answer): parsed once, not on every request that sends
 * the conversation back (a reasoning item's encrypted content is kilobytes).
 */
const kinds = new Lru<string, 'user' | 'reasoning' | null>(16_384);

/** A Responses unit as this rule reads it: a turn's opening (a user message item, a block of one, a string input), a reasoning item, or neither. */
function kindOf(u: MessageUnit): 'user' | 'reasoning' | null {
  if (u.part) return u.hashText.startsWith('"user":') ? 'user' : null;
  // A string input after a session's items: the one user message it stands for.
  if (u.hashText.startsWith('"')) return 'user';
  if (!u.hashText.includes('"user"') && !u.hashText.includes('"reasoning"')) return null;
  let kind = kinds.get(u.key);
  if (kind === undefined) {
    const item = JSON.parse(u.hashText) as unknown;
    kinds.set(u.key, (kind = opensResponsesTurn(item) ? 'user' : isRecord(item) && item.type === 'reasoning' ? 'reasoning' : null));
  }
  return kind;
}

/**
 * Re-keys and re-counts, in place, the OpenAI Responses reasoning items the model does not read: those before the
 * current turn (thinking.ts), each one whole unit. A block of a message with handles in it is never one; one of a user
 * message opens a turn, as does a string input after a session's items.
 */
export function readCurrentReasoningOnly(units: MessageUnit[]): void {
  const start = units.findLastIndex((u) => kindOf(u) === 'user');
  for (let i = 0; i < start; i++) {
    const u = units[i]!;
    if (kindOf(u) !== 'reasoning') continue;
    u.key = REASONING_NOT_READ;
    u.tokens = () => 0;
  }
}
