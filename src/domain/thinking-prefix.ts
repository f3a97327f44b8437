// Preserved thinking's prefix check (https://platform.claude.com/docs/en/build-with-claude/preserved-thinking): on a
// model that runs it, a thinking block sent back is valid only while what came before it when it was produced — the
// top-level `tools` and `system`, the messages before it, the blocks before it in its message — is unchanged; from
// the first block that fails, it and every later thinking block are invalid, and the API answers a 400 (by default) or
// drops them (`thinking.block_binding.prefix_mismatch_behavior: "drop_block"`). A session keeps, with each block
// it takes from a reply, the digests of that prefix (`prefix` on the block: ours, never rendered), so a render that
// would send it under another one is refused before the provider is called (request.ts), or, with drop_block, sent
// and left out of the estimate as the API leaves it out of what it bills (render/thinking-units.ts).
//
// What counts is the prompt, not the JSON: the digests are of the semantic form (simulator/semantic.ts), cache marks
// aside — they choose where the provider caches, not what the conversation is.

import canonicalize from 'canonicalize';
import type { ModelEntry } from './catalog/types';
import type { Message } from './content';
import { sha256Hex } from './digest';
import { DomainError } from './errors';
import { isRecord } from './records';
import { newRenderContext, segmentItems } from './render/formats';
import type { PromptSegment } from './render/prompt';
import { semanticForm } from './simulator/semantic';
import { readsProducer } from './thinking';

type Json = Record<string, unknown>;

/** A thinking block's prefix, in three parts, so a change can be named. */
export interface ThinkingPrefix {
  tools: string;
  system: string;
  messages: string;
}

export const PREFIX_PARTS = ['tools', 'system', 'messages'] as const;

/** Whether a model runs the prefix check: the models with preserved thinking (the catalog's `thinking.readsFrom`). */
export const checksPrefix = (model: Pick<ModelEntry, 'thinking'>): boolean => model.thinking?.readsFrom !== undefined;

const digest = (v: unknown) => sha256Hex(canonicalize(semanticForm('anthropic', v)) ?? 'null');
const blocksOf = (v: unknown): unknown[] => (typeof v === 'string' ? [{ type: 'text', text: v }] : Array.isArray(v) ? v : []);

/**
 * The prefix of a place in an Anthropic request body: `at(message, before)`, the thinking block's message index (a
 * reply's: the body's message count) and the blocks before it in its message, as sent.
 */
export function thinkingPrefixes(body: Json): (message: number, before: readonly unknown[]) => ThinkingPrefix {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const tools = digest(Array.isArray(body.tools) ? body.tools : []);
  const system = digest(blocksOf(body.system));
  const chain = [''];
  const link = (i: number, m: Json) => sha256Hex(`${chain[i]}\n${digest(m)}`);
  return (i, before) => {
    while (chain.length <= i) {
      const m: unknown = messages[chain.length - 1];
      chain.push(link(chain.length - 1, { role: isRecord(m) ? m.role : undefined, content: isRecord(m) ? blocksOf(m.content) : [] }));
    }
    const m: unknown = messages[i];
    return { tools, system, messages: link(i, { role: isRecord(m) ? m.role : 'assistant', content: before }) };
  };
}

/** A stored block's key in a body: its signature (a redacted block's data), which only that block carries. */
export const thinkingKey = (b: Json): string | undefined =>
  b.type === 'thinking' && typeof b.signature === 'string' ? `s:${b.signature}` : b.type === 'redacted_thinking' && typeof b.data === 'string' ? `d:${b.data}` : undefined;

/** What a stored block was produced under, the model that produced it (its catalog id; null: not known), and where it is kept. */
export interface RecordedThinking {
  prefix: ThinkingPrefix;
  producer: string | null;
  source: string;
}

/** A thinking block whose prefix changed: where in the body (Anthropic's `messages.i.content.j`), and what changed. */
export interface ChangedPrefix {
  path: string;
  /** The path's message and content block indexes. */
  message: number;
  block: number;
  source: string;
  changed: Array<(typeof PREFIX_PARTS)[number]>;
}

/**
 * The body's thinking blocks that fail the prefix check: the first recorded block whose prefix changed, with what
 * changed, then every later thinking block (invalid with it, as Anthropic holds; `changed` empty when its own prefix
 * is unchanged or unknown). `reads(producer)`: whether the model reads a producer's blocks (one it does not is dropped
 * without a check). Empty when none fails.
 */
export function changedPrefixes(body: Json, recorded: ReadonlyMap<string, RecordedThinking>, reads: (producer: string | null) => boolean): ChangedPrefix[] {
  const out: ChangedPrefix[] = [];
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const at = thinkingPrefixes(body);
  messages.forEach((m, i) => {
    if (!isRecord(m) || m.role !== 'assistant' || !Array.isArray(m.content)) return;
    const content: unknown[] = m.content;
    content.forEach((b, j) => {
      const key = isRecord(b) ? thinkingKey(b) : undefined;
      if (key === undefined) return;
      const kept = recorded.get(key);
      if (kept && !reads(kept.producer)) return;
      const now = kept ? at(i, content.slice(0, j)) : null;
      const changed = kept && now ? PREFIX_PARTS.filter((p) => kept.prefix[p] !== now[p]) : [];
      if (out.length || changed.length) out.push({ path: `messages.${i}.content.${j}`, message: i, block: j, source: kept?.source ?? 'inline', changed });
    });
  });
  return out;
}

/**
 * One message of a body as the check reads it, digested once: the message (a link of the chain), and each thinking
 * block's key with the blocks before it in the message (an assistant message's, as changedPrefixes finds them).
 */
export class CheckedMessage {
  readonly digest: string;
  readonly thinking: Array<{ block: number; key: string; before: string }> = [];
  /** The last links computed through it (linked): kept, a session's message is linked once, not on every render. */
  private last: { from: string; to: string; at: string[] } | undefined;

  constructor(m: unknown) {
    this.digest = digest({ role: isRecord(m) ? m.role : undefined, content: isRecord(m) ? blocksOf(m.content) : [] });
    if (!isRecord(m) || m.role !== 'assistant' || !Array.isArray(m.content)) return;
    const content: unknown[] = m.content;
    content.forEach((b, j) => {
      const key = isRecord(b) ? thinkingKey(b) : undefined;
      if (key !== undefined) this.thinking.push({ block: j, key, before: digest({ role: m.role, content: content.slice(0, j) }) });
    });
  }

  /** From the chain of the messages before it: the chain through it, and its thinking blocks' `messages` prefixes. */
  linked(from: string): { to: string; at: string[] } {
    if (this.last?.from !== from) this.last = { from, to: sha256Hex(`${from}\n${this.digest}`), at: this.thinking.map((t) => sha256Hex(`${from}\n${t.before}`)) };
    return this.last;
  }
}

/** A body as the check reads it, each part computed when first asked for: its tools' and system's digests, its messages. */
export interface PrefixParts {
  tools: () => string;
  system: () => string;
  messages: () => readonly CheckedMessage[];
}

/** What the check reads of a rendered unit (units.ts Unit): its JSON text, and the segment's rendered texts it is one of. */
export interface PrefixUnit {
  hashText: string;
  item: { all?: readonly string[]; index?: number } | null;
}

/** Per segment's rendered texts (immutable: handle versions never change), its messages checked: once, not per render. */
const checkedOf = new WeakMap<readonly string[], CheckedMessage[]>();
/** Per segment's rendered texts, the digest of the tools or system it is the whole of. */
const sectionDigests = new WeakMap<readonly string[], string>();

/** The segment's rendered texts that `units` are, all of them in order, if so. */
function wholeSegment(units: readonly PrefixUnit[]): readonly string[] | undefined {
  const all = units[0]?.item?.all;
  return all && all.length === units.length && units.every((u, k) => u.item?.all === all && u.item.index === k && u.hashText === all[k]) ? all : undefined;
}

function sectionDigest(units: readonly PrefixUnit[], value: (u: PrefixUnit) => unknown): string {
  const all = wholeSegment(units);
  let d = all && sectionDigests.get(all);
  if (d === undefined) {
    d = digest(units.map(value));
    if (all) sectionDigests.set(all, d);
  }
  return d;
}

/**
 * The parts of the Anthropic body a render's units make up, each unit a whole tool, system block or message, in the
 * body's order (`systemString`: the unit of a system given as a string, a text block in the body or read as one). Their
 * texts are the body's but for the service's cache marks, which the digests leave aside, and a caller's number too
 * large for a double (RequestService refuses those before rendering).
 */
export function unitParts(tools: readonly PrefixUnit[], system: readonly PrefixUnit[], systemString: PrefixUnit | undefined, messages: readonly PrefixUnit[]): PrefixParts {
  return {
    tools: () => sectionDigest(tools, (u) => JSON.parse(u.hashText)),
    system: () => sectionDigest(system, (u) => (u === systemString ? { type: 'text', text: JSON.parse(u.hashText) } : JSON.parse(u.hashText))),
    messages: () => messages.map(checkedMessage),
  };
}

function checkedMessage(u: PrefixUnit): CheckedMessage {
  const all = u.item?.all;
  const index = u.item?.index;
  if (!all || index === undefined || all[index] !== u.hashText) return new CheckedMessage(JSON.parse(u.hashText));
  let list = checkedOf.get(all);
  if (!list) checkedOf.set(all, (list = []));
  return (list[index] ??= new CheckedMessage(JSON.parse(u.hashText)));
}

/** changedPrefixes over a body's parts, each message linked from the chain before it (see CheckedMessage). */
function changedInParts(parts: PrefixParts, recorded: ReadonlyMap<string, RecordedThinking>, reads: (producer: string | null) => boolean): ChangedPrefix[] {
  const out: ChangedPrefix[] = [];
  let tools: string | undefined;
  let system: string | undefined;
  let chain = '';
  parts.messages().forEach((m, i) => {
    const links = m.linked(chain);
    chain = links.to;
    m.thinking.forEach((t, k) => {
      const kept = recorded.get(t.key);
      if (kept && !reads(kept.producer)) return;
      let changed: ChangedPrefix['changed'] = [];
      if (kept) {
        const now: ThinkingPrefix = { tools: (tools ??= parts.tools()), system: (system ??= parts.system()), messages: links.at[k]! };
        changed = PREFIX_PARTS.filter((p) => kept.prefix[p] !== now[p]);
      }
      if (out.length || changed.length) out.push({ path: `messages.${i}.content.${t.block}`, message: i, block: t.block, source: kept?.source ?? 'inline', changed });
    });
  });
  return out;
}

const isAnthropicThinking = (b: { type: string }) => b.type === 'thinking' || b.type === 'redacted_thinking';

/**
 * A reply kept in a session, each of its thinking blocks with the prefix it was produced under: its place after the
 * messages of `body`, the request that was answered (its JSON text, as sent), behind the reply's blocks before it as a
 * later turn renders them.
 */
export function withPrefixes(reply: Message, bodyText: string): Message {
  if (typeof reply.content === 'string' || !reply.content.some(isAnthropicThinking)) return reply;
  const body = JSON.parse(bodyText) as Json;
  const at = thinkingPrefixes(body);
  const messageCount = Array.isArray(body.messages) ? body.messages.length : 0;
  const [item] = segmentItems('anthropic', { section: 'messages', messages: [reply], source: 'reply', path: [] }, newRenderContext());
  const rendered = (JSON.parse(item!) as { content: unknown[] }).content;
  return { ...reply, content: reply.content.map((b, j) => (isAnthropicThinking(b) ? { ...b, prefix: at(messageCount, rendered.slice(0, j)) } : b)) } as Message;
}

/** Per segment (immutable: handle versions never change), its thinking blocks kept with a prefix: key, prefix, model. */
const keptOf = new WeakMap<PromptSegment, Array<{ key: string; prefix: ThinkingPrefix; model: string | undefined }>>();

function keptIn(seg: PromptSegment & { section: 'messages' }) {
  let kept = keptOf.get(seg);
  if (kept) return kept;
  kept = [];
  for (const m of seg.messages) {
    if (typeof m.content === 'string') continue;
    for (const b of m.content) {
      if ((b.type !== 'thinking' && b.type !== 'redacted_thinking') || !b.prefix) continue;
      const key = thinkingKey(b as Json);
      if (key !== undefined) kept.push({ key, prefix: b.prefix, model: b.model });
    }
  }
  keptOf.set(seg, kept);
  return kept;
}

/**
 * The thinking blocks of a render's session (and messages artifact) segments kept with their prefix, by key. `segments`:
 * its message units' (null: the caller's own), each read at its first.
 */
export function recordedThinking(segments: Iterable<PromptSegment | null>, producerOf: (name: string) => string | null): Map<string, RecordedThinking> {
  const out = new Map<string, RecordedThinking>();
  const producers = new Map<string, string | null>();
  const producer = (name: string) => {
    let p = producers.get(name);
    if (p === undefined) producers.set(name, (p = producerOf(name)));
    return p;
  };
  const seen = new Set<PromptSegment>();
  for (const seg of segments) {
    if (seg?.section !== 'messages' || seen.has(seg)) continue;
    seen.add(seg);
    for (const k of keptIn(seg)) out.set(k.key, { prefix: k.prefix, producer: k.model === undefined ? null : producer(k.model), source: seg.source });
  }
  return out;
}

const PART_NAMES = { tools: '`tools`', system: '`system`', messages: 'the earlier messages' } as const;

/** Whether a request lets the API drop the thinking blocks that fail the check (`drop_block`) rather than answer a 400. */
export function dropsFailedBlocks(thinking: unknown): boolean {
  return isRecord(thinking) && isRecord(thinking.block_binding) && thinking.block_binding.prefix_mismatch_behavior === 'drop_block';
}

/** The blocks of a body that fail the check on `model` (one that reads a producer's blocks checks them; see changedPrefixes). */
export const changedInBody = (model: ModelEntry, body: Json, recorded: ReadonlyMap<string, RecordedThinking>): ChangedPrefix[] =>
  changedPrefixes(body, recorded, (producer) => readsProducer(model, producer));

/** The same for a body given as its parts (a render's: request.ts). */
export const changedInUnits = (model: ModelEntry, parts: PrefixParts, recorded: ReadonlyMap<string, RecordedThinking>): ChangedPrefix[] =>
  changedInParts(parts, recorded, (producer) => readsProducer(model, producer));

/**
 * Refuses a render that would send thinking blocks under another prefix than they were produced under, on a model
 * that checks it, unless the request lets the API drop them (`drop_block`): Anthropic would answer a 400 for it
 * (`messages.i.content.j: Invalid \`signature\` in \`thinking\` block. The block is bound to a different
 * conversation…`) — refused here before the provider is called, naming the blocks and what changed. `pointer`: the
 * body's, for the errors' pointers.
 */
export function refuseChangedPrefixes(model: ModelEntry, body: Json, recorded: ReadonlyMap<string, RecordedThinking>, pointer: string): void {
  if (!checksPrefix(model) || recorded.size === 0 || dropsFailedBlocks(body.thinking)) return;
  refuseChanged(model, changedInBody(model, body, recorded), pointer);
}

/** What changed before the first failing block, in words. */
const whatChanged = (first: ChangedPrefix) => first.changed.map((p) => PART_NAMES[p]).join(' and ');

/** The refusal of a render whose thinking blocks fail the check (`changed`, as changedInBody or changedInUnits give them); none when none does. */
export function refuseChanged(model: ModelEntry, changed: readonly ChangedPrefix[], pointer: string): void {
  const first = changed[0];
  if (!first) return;
  const later = changed.length - 1;
  const detail =
    `${whatChanged(first)} changed since the thinking block at ${first.path} (kept in ${first.source}) was produced: ${model.id} checks a thinking block's prefix (preserved thinking), and Anthropic ` +
    `would refuse this request with a 400 (the block is bound to a different conversation)${later ? `; ${later === 1 ? 'the thinking block' : `the ${later} thinking blocks`} after it ${later === 1 ? 'is' : 'are'} invalid with it` : ''}. ` +
    'Send the conversation under the prefix it was produced under (keep system and tools fixed, in x-ph-prefix), or set thinking.block_binding.prefix_mismatch_behavior to "drop_block" ' +
    '(with anthropic-beta: thinking-binding-controls-2026-08-01) on this and every later request of the conversation, for the API to drop them';
  throw new DomainError(
    'thinking_prefix_changed',
    detail,
    { blocks: changed.map((c) => ({ path: c.path, source: c.source, changed: c.changed })) },
    first.changed.map((p) => ({ pointer: `${pointer}/${p}`, detail: `changed since the thinking block at ${first.path} was produced` })),
  );
}

/** The render warning's detail for blocks the API drops under drop_block (`dropped`: the failing ones, in order). */
export function droppedDetail(model: ModelEntry, dropped: readonly ChangedPrefix[]): string {
  const first = dropped[0]!;
  const later = dropped.length - 1;
  return (
    `${whatChanged(first)} changed since the thinking block at ${first.path} (kept in ${first.source}) was produced, and the request sets thinking.block_binding.prefix_mismatch_behavior to "drop_block": ` +
    `${model.id} drops that block${later ? ` and the ${later === 1 ? 'thinking block' : `${later} thinking blocks`} after it` : ''} from the request without an error (its input_transformations: thinking_dropped, prefix_binding_mismatch), ` +
    'so the model answers without that reasoning and does not bill it; they are sent, and not counted in the estimate. Keep system and tools fixed (in x-ph-prefix) for the conversation to keep its thinking'
  );
}
