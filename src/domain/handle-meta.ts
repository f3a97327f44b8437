import type { ModelCatalog } from './catalog/catalog';
import type { ArtifactKind, Message, ToolDefinition } from './content';
import { computeReuseMetadata, firstDifferingByte, MAX_STORED_FINDINGS } from './reuse-metadata';
import { countTokens, TOKENIZER_FAMILIES, type PerFamily, type TokenizerFamily } from './tokens';
import { findVolatility } from './volatility';
import type { PromptSegment } from './render/prompt';
import { countedSegmentItems } from './render/formats';
import { toolCosts, unitTokens } from './prompt-tokens';
import type { PromptFormat } from './simulator/semantic';

/**
 * Reuse metadata of a handle version, computed once at mint. Artifacts and
 * session batches are tokenised; bundles and sessions add up their segments,
 * so minting never re-tokenises content that was already measured.
 */
export interface CacheableMeta {
  /** catalog entry id → whether this prefix alone can be cached: the model caches prompts and the prefix reaches its minimum. */
  clears_minimum: Record<string, boolean>;
}

export type Tokens = PerFamily<number>;

const zero = (): Tokens => ({ o200k_base: 0, cl100k_base: 0, anthropic: 0, gemini: 0 });

export function addTokens(a: Tokens, b: Tokens): Tokens {
  const out = zero();
  for (const f of TOKENIZER_FAMILIES) out[f] = a[f] + b[f];
  return out;
}

/**
 * Volatile sources a bundle or session version lists by name (`volatility.by_source`), the first in prompt order:
 * the earliest break the cached prefix. The rest are counted (`count`, `sources`): every version of a session stores
 * its meta, and a list of every volatile batch would grow with the square of its turns.
 */
export const VOLATILE_SOURCES_LISTED = 50;

/**
 * `meta.tokens_basis` of tools, messages, bundle and session versions: their tokens are counted as a request's
 * estimate counts them (prompt-tokens.ts: the text the model reads and the framing of the handle's own tools and
 * messages; OpenAI's function definitions as OpenAI renders them, the types their schemas' `$ref`s name and their
 * `anyOf` alternatives included). `text+tools+refs` since 2026-12-04; `text+tools` from the evening of 2026-12-03, when
 * a member given by `$ref` or `anyOf` counted as its name alone; `text` earlier that day, when o200k_base and
 * cl100k_base counted a tool's schema as its JSON text: either is the same basis for content without tools. Absent,
 * tokens were counted on the stored JSON (about 1.6x on chatty sessions). A system prompt or document counts its text
 * either way (without the 3-7 tokens of framing a request adds). A request's tool-use system prompt (Anthropic) and
 * end of functions (OpenAI) are the request's, in no handle's tokens.
 */
export const TOKENS_BASIS = 'text+tools+refs';
const OLDER_BASES = new Set(['text', 'text+tools']);

/** Whether tokens counted on `basis` are on the current one: an older text basis is, for content without tools. */
export function onTokensBasis(basis: unknown, hasTools: boolean): boolean {
  return basis === TOKENS_BASIS || (!hasTools && OLDER_BASES.has(basis as string));
}

/** The request format each family's count frames its items in: OpenAI's encodings as Chat Completions does. */
const FAMILY_FORMAT: Record<TokenizerFamily, PromptFormat> = { o200k_base: 'openai-chat', cl100k_base: 'openai-chat', anthropic: 'anthropic', gemini: 'gemini' };

/**
 * A segment's rendered items in each family's format and their tokens as a request's estimate counts them.
 * `toolNames`: the tool calls before the segment (Gemini names the call a tool result answers).
 */
function countedItems(seg: PromptSegment, toolNames: ReadonlyMap<string, string>): PerFamily<{ items: string[]; counts: number[] }> {
  const out = {} as PerFamily<{ items: string[]; counts: number[] }>;
  for (const family of TOKENIZER_FAMILIES) {
    const format = FAMILY_FORMAT[family];
    const items = countedSegmentItems(format, seg, { toolNames: new Map(toolNames) });
    out[family] = { items, counts: items.map((item) => unitTokens(format, seg.section, JSON.parse(item), (t) => countTokens(t, family), toolCosts(format, family))) };
  }
  return out;
}

const sum = (ns: number[]) => ns.reduce((a, b) => a + b, 0);

/** Tokens of a segment on the text basis (see TOKENS_BASIS), per family. */
export function segmentTextTokens(seg: PromptSegment, toolNames: ReadonlyMap<string, string> = new Map()): Tokens {
  const counted = countedItems(seg, toolNames);
  const out = zero();
  for (const f of TOKENIZER_FAMILIES) out[f] = sum(counted[f].counts);
  return out;
}

function jsonSegment(kind: 'tools' | 'messages', text: string): PromptSegment {
  return kind === 'tools'
    ? { section: 'tools', source: '', path: [], tools: JSON.parse(text) as ToolDefinition[] }
    : { section: 'messages', source: '', path: [], messages: JSON.parse(text) as Message[] };
}

export class HandleMeter {
  constructor(private readonly catalog: ModelCatalog) {}

  /** Whether some catalog model has a token figure for an Anthropic-defined tool version (`definedToolTokens`). */
  hasToolFigure(type: string): boolean {
    return this.catalog.entries().some((m) => m.definedToolTokens !== undefined && Object.hasOwn(m.definedToolTokens, type));
  }

  /** Whether `tokens` clears each catalog model's minimum (in that model's tokenizer family). */
  cacheable(tokens: Tokens): CacheableMeta {
    const clears: Record<string, boolean> = {};
    // A model without prompt caching (gpt-4, gpt-3.5-turbo) has a minimum of 0 that nothing is cached above.
    for (const m of this.catalog.entries()) clears[m.id] = m.cache.supported !== false && tokens[m.tokenizer] >= m.cache.minTokens;
    return { clears_minimum: clears };
  }

  /**
   * A system prompt or document counts its text (plain text throughout); tools and messages count on the text basis
   * (TOKENS_BASIS), and a new version's `first_diff_token` is the tokens of its leading tools or messages that are
   * the previous version's (a change inside one counts it whole as changed).
   */
  artifact(kind: ArtifactKind, text: string, previousText: string | undefined) {
    if (kind === 'system' || kind === 'document') {
      const meta = computeReuseMetadata({ text, previous: previousText === undefined ? undefined : { text: previousText }, media: false });
      return { ...meta, estimated: ['anthropic', 'gemini'], ...this.cacheable(meta.tokens) };
    }
    const counted = countedItems(jsonSegment(kind, text), new Map());
    const tokens = zero();
    for (const f of TOKENIZER_FAMILIES) tokens[f] = sum(counted[f].counts);
    const findings = findVolatility(text);
    const meta: Record<string, unknown> = {
      bytes: Buffer.byteLength(text),
      tokens,
      tokens_basis: TOKENS_BASIS,
      volatility: { count: findings.length, findings: findings.slice(0, MAX_STORED_FINDINGS) },
    };
    if (previousText !== undefined) {
      const before = jsonSegment(kind, previousText);
      const firstDiffToken = zero();
      for (const f of TOKENIZER_FAMILIES) {
        const old = countedSegmentItems(FAMILY_FORMAT[f], before, { toolNames: new Map() });
        const { items, counts } = counted[f];
        let i = 0;
        while (i < items.length && items[i] === old[i]) i++;
        firstDiffToken[f] = sum(counts.slice(0, i));
      }
      const invalidated = zero();
      for (const f of TOKENIZER_FAMILIES) invalidated[f] = tokens[f] - firstDiffToken[f];
      meta.change = { first_diff_byte: firstDifferingByte(Buffer.from(text), Buffer.from(previousText)), first_diff_token: firstDiffToken, invalidated_tokens: invalidated };
    }
    return { ...meta, estimated: ['anthropic', 'gemini'], ...this.cacheable(tokens) };
  }

  /** A batch of session messages: tokens on the text basis, after the tool calls named before it. */
  batch(messages: Message[], text: string, toolNames: ReadonlyMap<string, string>) {
    const findings = findVolatility(text);
    const tokens = segmentTextTokens({ section: 'messages', source: '', path: [], messages }, toolNames);
    return { tokens, volatility: { count: findings.length, findings: findings.slice(0, 100) } };
  }

  /**
   * A bundle or session version: totals over its segments, volatility by
   * source (the first VOLATILE_SOURCES_LISTED), and — against the previous version — the first segment that
   * changed and the cached tokens the change invalidates. `bytes`: its neutral text's length; `firstDiffByte`: where
   * that text first differs from the previous version's. `tokens`: the total on the text basis, and each segment's by
   * its index.
   */
  composite(segments: PromptSegment[], bytes: number, previous: { segments: PromptSegment[]; firstDiffByte: number | null } | undefined, tokens: Tokens, tokensAt: (i: number) => Tokens) {
    const volatile = new Map<string, number>();
    for (const s of segments) if (s.volatility) volatile.set(s.source, s.volatility);
    let count = 0;
    for (const n of volatile.values()) count += n;
    const meta: Record<string, unknown> = {
      bytes,
      tokens,
      tokens_basis: TOKENS_BASIS,
      estimated: ['anthropic', 'gemini'],
      volatility: { count, sources: volatile.size, by_source: Object.fromEntries([...volatile].slice(0, VOLATILE_SOURCES_LISTED)) },
      ...this.cacheable(tokens),
    };
    if (previous) {
      let i = 0;
      while (i < segments.length && i < previous.segments.length && segments[i]!.source === previous.segments[i]!.source) i++;
      let invalidated = zero();
      // Segments before the first changed one keep their cache; a pure append invalidates nothing.
      if (i < previous.segments.length) for (let k = i; k < segments.length; k++) invalidated = addTokens(invalidated, tokensAt(k));
      meta.change = {
        first_diff_byte: previous.firstDiffByte,
        first_diff_segment: i < segments.length ? segments[i]!.source : null,
        invalidated_tokens: invalidated,
      };
    }
    return meta;
  }
}
