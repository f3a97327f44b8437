// A unit of the prompt as the provider sees it (a tool, a system block, a message; a block where handles stand inside a
// message): the rendered items of handles and the caller's own content alike, with their identity, semantic key and
// token counts, cached where the texts are immutable (a handle's).
import type { Message } from '../content';
import { Lru } from '../lru';
import { definedToolTokens, toolCosts, unitTokens, type ToolCosts } from '../prompt-tokens';
import { semanticKey, unitKey } from '../simulator/semantic';
import { markedBlocks } from '../simulator/blocks';
import { isRecord, type Json } from '../records';
import { countTokens, type TokenizerFamily } from '../tokens';
import type { PromptSegment, RequestFormat, Section } from './prompt';

/** A rendered item of a handle (a tool, a system block, a message; its text inside a message's content), as placed in the body. */
export interface Item {
  text: string;
  segment: PromptSegment | null;
  blocks: number;
  /** The rendered texts of the whole segment this item is one of (an immutable array), when they are kept. */
  all?: readonly string[];
  /** This item's place in `all`. */
  index?: number;
}

/** A unit of the prompt as the provider sees it, with its identity for hashing. */
export interface Unit {
  section: Section;
  hashText: string;
  item: Item | null;
  segment: PromptSegment | null;
  blocks: number;
  /** cache_control markers the caller set inside this unit. */
  callerBreakpoints: number;
  /** The longest TTL among them ('1h' or '5m'), if any. */
  callerTtl?: string;
  /** Whether any of them is 5m: a mark after this unit must be 5m too. */
  caller5m?: boolean;
  /** The semantic key (see RenderedSegment.units). */
  key: string;
  /** The key without the request's message settings (Anthropic tool_choice, thinking), when they apply. */
  base?: string;
  /** A block of a message keyed with the message's role (inRole), not a whole message. */
  part?: boolean;
  /** The unit's estimated prompt tokens in a tokenizer family (see prompt-tokens.ts). */
  tokens: (family: TokenizerFamily) => number;
}

/** A tool's unit costing the model's figure for an Anthropic-defined tool version (`type`), else as it was (its JSON). */
export function costedTool(unit: Unit, type: unknown, costs: ToolCosts): Unit {
  const defined = definedToolTokens(type, costs);
  return defined === undefined ? unit : { ...unit, tokens: () => defined };
}

export function itemsFrom(seg: PromptSegment, texts: string[]): Item[] {
  const perItemBlocks = seg.section === 'messages' ? seg.messages.map(blockCount) : texts.map(() => 1);
  return texts.map((text, i) => ({
    index: i,
    text,
    segment: seg,
    // OpenAI renders one message as several items at times (tool results): keep the total right.
    blocks: perItemBlocks[i] ?? 1,
    all: texts,
  }));
}

function blockCount(m: Message): number {
  return typeof m.content === 'string' ? 1 : m.content.length;
}

export function unitOf(format: RequestFormat, section: Section, item: Item): Unit {
  // Bound, not a closure: tsx names every closure it creates (an Object.defineProperty), 1,200 a call in a long session.
  const tokens: (family: TokenizerFamily) => number = itemTokens.bind(null, format, section, item);
  return { section, hashText: item.text, item, segment: item.segment, blocks: item.blocks, callerBreakpoints: 0, key: itemKey(format, section, item), tokens };
}

/** Token counts of a segment's rendered items, per immutable texts array and family: a bundle is counted once. */
const itemCounts = new WeakMap<readonly string[], Partial<Record<TokenizerFamily, number[]>>>();

/** Counts of a handle's text placed inside a message's content, by format, handle version and family. */
const inContentCounts = new Lru<string, number>(16_384);

function itemTokens(format: RequestFormat, section: Section, item: Item, family: TokenizerFamily): number {
  if (!item.all || item.index === undefined) {
    const cacheKey = item.segment ? `${format}|${section}|${item.segment.source}|${family}` : null;
    const known = cacheKey ? inContentCounts.get(cacheKey) : undefined;
    if (known !== undefined) return known;
    const n = countItem(format, section, item, family, item.text);
    if (cacheKey) inContentCounts.set(cacheKey, n);
    return n;
  }
  let counts = itemCounts.get(item.all);
  if (!counts) itemCounts.set(item.all, (counts = {}));
  const list = (counts[family] ??= []);
  return (list[item.index] ??= countItem(format, section, item, family, item.all[item.index]!));
}

function countItem(format: RequestFormat, section: Section, item: Item, family: TokenizerFamily, json: string): number {
  // A system prompt or document is text throughout (no media), already counted at mint: only its framing is added.
  const seg = item.segment;
  const text = seg?.section === 'system' ? seg.text : undefined;
  const measured = seg?.tokens?.[family];
  const counter = (t: string) => (t === text && measured !== undefined ? measured : countTokens(t, family, text === undefined));
  return unitTokens(format, section, JSON.parse(json), counter, toolCosts(format, family));
}

/** Semantic keys of a segment's rendered items, per immutable texts array: a bundle's are computed once. */
const itemKeys = new WeakMap<readonly string[], string[]>();

/** Keys of a handle's text placed inside a message's content, by format and handle version (its text never changes). */
const inContentKeys = new Lru<string, string>(16_384);

export function itemKey(format: RequestFormat, section: Section, item: Item): string {
  if (!item.all || item.index === undefined) {
    const cacheKey = item.segment ? `${format}|${section}|${item.segment.source}` : null;
    const known = cacheKey ? inContentKeys.get(cacheKey) : undefined;
    if (known) return known;
    const key = unitKey(format, section, JSON.parse(item.text));
    if (cacheKey) inContentKeys.set(cacheKey, key);
    return key;
  }
  let keys = itemKeys.get(item.all);
  if (!keys) itemKeys.set(item.all, (keys = []));
  return (keys[item.index] ??= unitKey(format, section, JSON.parse(item.all[item.index]!)));
}

/** A block of a message keyed with the message's role (a handle or a caller block inside a message's content). */
export function inRole(format: RequestFormat, role: string, unit: Unit): Unit {
  return { ...unit, hashText: `${role}:${unit.hashText}`, key: semanticKey(format, [role, unit.key]), part: true };
}

/** What a caller's inline unit contributes to the digests and breakpoints. */
export interface InlineIdentity {
  text: string;
  hashText: string;
  /** The text counted for tokens: hashText without the caller's cache marks (a mark is not prompt tokens). */
  countText: string;
  /** Semantic keys by format and section, computed when first rendered there. */
  keys: Record<string, string>;
  /** Token counts by format, section and tokenizer family, computed when first needed. */
  tokens: Record<string, number>;
  callerBreakpoints: number;
  callerTtl: string | undefined;
  caller5m: boolean;
  weight: number;
}

/** FNV-1a over UTF-16 code units: a cheap 32-bit fingerprint. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function inlineIdentity(text: string, format: RequestFormat, section: Section): InlineIdentity {
  // The value jsonc-parser's tree walk would give (duplicate keys, "__proto__"), several times faster.
  const value: unknown = JSON.parse(text);
  // Hash the value as parsed: whitespace does not change what the model sees, but key order does
  // (providers serialise keys as sent), so it is kept.
  const hashText = JSON.stringify(value);
  // The breakpoints the caller set, where the provider reads one (blocks.ts markedBlocks): nested ones too.
  const marked = markedBlocks(value);
  const callerBreakpoints = marked.length;
  // A marked turn is counted as it will be once its mark has moved on (in the next turn's history): the same size.
  const countText =
    callerBreakpoints > 0
      ? JSON.stringify(value, function (this: unknown, k, v: unknown) {
          return (k === 'cache_control' || k === 'prompt_cache_breakpoint') && marked.includes(this as Json) ? undefined : v;
        })
      : hashText;
  const weight = 2 * text.length + hashText.length + (countText === hashText ? 0 : countText.length) + 64;
  return { text, hashText, countText, tokens: {}, keys: { [`${format}|${section}`]: unitKey(format, section, value) }, callerBreakpoints, ...callerTtls(marked), weight };
}

/** The longest TTL the caller marked (an Anthropic cache_control's), and whether any mark is 5m. */
function callerTtls(marked: Json[]): { callerTtl: string | undefined; caller5m: boolean } {
  const ttls = marked.flatMap((b) => (isRecord(b.cache_control) ? [b.cache_control.ttl === '1h' ? '1h' : '5m'] : []));
  return { callerTtl: ttls.includes('1h') ? '1h' : ttls[0], caller5m: ttls.includes('5m') };
}
