// Shared vocabulary of the model catalog: what a provider cache does for one
// model family, and what its tokens cost. Values live in data (catalog.json),
// never in code.

export type ProviderFamily = 'anthropic' | 'openai' | 'gemini' | 'vllm';

/** Tokenizer family used for token spans. OpenAI encodings are exact; the others are estimates. */
export type TokenizerFamily = 'o200k_base' | 'cl100k_base' | 'anthropic' | 'gemini';

export interface CacheTtl {
  /** Label as the provider names it, e.g. "5m", "1h", "24h". */
  name: string;
  seconds: number;
  /** Price of a cache write relative to base input price (Anthropic 5m: 1.25, 1h: 2). 1 when writes are not billed extra. */
  writeMultiplier: number;
}

export interface CacheRules {
  /**
   * explicit: only prefixes ending at a breakpoint are cached (Anthropic cache_control).
   * automatic: any long-enough prefix is cached (OpenAI, Gemini implicit, vLLM).
   */
  mode: 'explicit' | 'automatic';
  /** Minimum cacheable prefix length in tokens. */
  minTokens: number;
  ttls: CacheTtl[];
  /** Name of the TTL used when the request does not choose one. */
  defaultTtl: string;
  /** Whether a cache hit resets the TTL clock. */
  refreshOnHit: boolean;
  /** Price of a cache read relative to base input price (e.g. 0.1). */
  readMultiplier: number;
  /** Maximum explicit breakpoints per request (Anthropic: 4); null when the provider takes none. */
  maxBreakpoints: number | null;
  /** How many blocks before a breakpoint the provider looks back for an earlier hit (Anthropic: 20); null when not applicable. */
  lookbackBlocks: number | null;
  /** Hit granularity: cached counts are `first + n * step` tokens (OpenAI: first 1024, step 128); null = any length. */
  granularity: { first: number; step: number } | null;
  /** Whether cache writes are billed (at the TTL's writeMultiplier). */
  writesBilled: boolean;
  /** Whether the model family accepts explicit breakpoints in the request. */
  acceptsBreakpoints: boolean;
  /**
   * With mode 'explicit': the provider also places one breakpoint of its own at the end of the
   * latest message unless the request opts out (OpenAI GPT-5.6 "implicit" mode). Absent = false.
   */
  implicitBreakpoint?: boolean;
  /** false when the model has no prompt cache at all: every prompt token is uncached. Absent = true. */
  supported?: boolean;
  /**
   * The last prompt token is always computed, never read (vLLM: it needs that token's logits), so a read is capped at
   * the prompt's length − 1 before it is cut to whole steps: a 64-token prompt cached whole in 16-token blocks reads 48.
   * Absent = false.
   */
  lastTokenComputed?: boolean;
}

export interface ModelPrice {
  currency: 'USD';
  inputPerMTok: number;
  outputPerMTok: number;
  /** Storage of an explicit cache per million tokens per hour (Gemini cachedContents); absent when not billed. */
  cacheStoragePerMTokHour?: number;
  /**
   * The price of a whole request whose prompt (cached tokens included) is over `aboveTokens`, as Anthropic's Sonnet 4
   * and 4.5 and Gemini's Pro models bill past 200K; the cache multipliers apply to it. Absent: one price at any length.
   */
  longContext?: LongContextPrice;
}

export interface LongContextPrice {
  aboveTokens: number;
  inputPerMTok: number;
  outputPerMTok: number;
}

export interface ToolUseSystemPrompt {
  auto: number;
  any: number;
}

export interface ThinkingContext {
  /**
   * What becomes of earlier assistant turns' thinking blocks. `kept`: every block sent back stays in context, read and
   * billed as input. `stripped`: only the current turn's (the assistant messages after the newest user message that is
   * not only tool results: the tool loop under way) are; the API removes the earlier ones before the model reads them,
   * so they are neither billed nor in the cached prefix.
   */
  earlierTurns: 'kept' | 'stripped';
  /**
   * Preserved thinking's model check: the catalog ids of the other models whose blocks this one reads. A block another
   * model produced is dropped from the request without an error. Absent: no model check (every Claude block is read).
   */
  readsFrom?: string[];
  /** Where the rule is documented. */
  source: string;
}

/** OpenAI (GPT-5.6 and newer): the request's `reasoning.context` says which turns' reasoning items the model reads. */
export interface ReasoningContextRule {
  /**
   * What `auto` (or no `reasoning.context`) reads: `current_turn`, the reasoning items of the tool loop under way only
   * (the earlier turns' are dropped, as on every earlier OpenAI model); `all_turns`, every reasoning item sent back.
   */
  default: 'current_turn' | 'all_turns';
  /** Where the rule is documented. */
  source: string;
}

export interface ModelEntry {
  /** Catalog key, e.g. "claude-sonnet-4". */
  id: string;
  provider: ProviderFamily;
  /** Model name patterns this entry covers: exact names or prefixes ending in "*". */
  match: string[];
  tokenizer: TokenizerFamily;
  cache: CacheRules;
  price: ModelPrice;
  /**
   * Anthropic's "tool use system prompt" ("Tool use with Claude", Pricing): tokens the API adds to a request that has
   * tools, by tool_choice — `auto` for auto and none, `any` for any and tool. Absent: not documented, not modelled.
   */
  toolUseSystemPrompt?: ToolUseSystemPrompt;
  /**
   * Anthropic-defined tools (`bash_20250124`, `text_editor_20250429`, `computer_20250124`, …): the input tokens the API
   * adds for one such tool in a request, by its `type`, as Anthropic's tool pages give them for this model (for computer
   * use with its system prompt). A type absent here is counted as its JSON: no documented figure.
   */
  definedToolTokens?: Record<string, number>;
  /** Anthropic: which thinking blocks sent back the model reads (and bills as input). Absent: not a thinking model. */
  thinking?: ThinkingContext;
  /** OpenAI: the model accepts `reasoning.context` (thinking.ts). Absent: earlier turns' reasoning items are never read. */
  reasoningContext?: ReasoningContextRule;
  /** Where the figures come from (URL of the provider's documentation). */
  source: string;
  /** ISO date the figures were last checked against the source. */
  checked: string;
  /** Why a figure is what it is: secondary sources, disagreements between sources, known gaps. */
  notes?: string;
}

export interface Catalog {
  /** Catalog data version, bumped on every change to the data. */
  version: string;
  models: ModelEntry[];
  /**
   * Entry id used, flagged as a fallback, for an unknown model of each provider.
   * A provider without one falls back to its first entry.
   */
  defaults?: Partial<Record<ProviderFamily, string>>;
}

/** Result of looking a model name up: the entry and whether it is a flagged fallback. */
export interface ModelLookup {
  model: string;
  entry: ModelEntry;
  /** true when no entry matched and a provider default was used instead. Never silent: reports carry this flag. */
  fallback: boolean;
}
