// Provider usage reports, normalised to one shape. The receipt behind every
// "captured" token in a report is one of these.

export type UsageProvider = 'anthropic' | 'openai-chat' | 'openai-responses' | 'gemini' | 'vllm';

export interface NormalizedUsage {
  provider: UsageProvider;
  /** Model name from the response, when the response says (bare usage objects carry none). */
  model: string | null;
  /** Every prompt token, cached or not. null = the provider did not say. */
  total_prompt_tokens: number | null;
  /** Tokens the provider confirmed as cache reads. null = unknown, which is NOT zero. */
  cache_read_tokens: number | null;
  /** Tokens written to the cache. null = unknown / not reported by this provider or model. */
  cache_write_tokens: number | null;
  /** Writes split by TTL label, e.g. { "5m": 100, "1h": 0 }; null when the provider gives no split. */
  cache_write_by_ttl: Record<string, number> | null;
  /** Prompt tokens billed at the base input price. null when it cannot be derived. */
  uncached_tokens: number | null;
  output_tokens: number | null;
  /**
   * Gemini only (`toolUsePromptTokenCount`): input tokens of the prompts its tools ran (search results, code
   * execution), billed at the input price but outside `total_prompt_tokens` and every rendered segment. Absent for
   * other providers (their whole input is in the prompt total); null = not reported.
   */
  tool_use_prompt_tokens?: number | null;
  /** false => this request's capture is "unknown": counted apart, never as a 0% hit. */
  cache_fields_reported: boolean;
  /** false for an interrupted stream that never delivered its final usage. */
  complete: boolean;
}

/** The provider's own explanation of a cache miss, stored beside ours. */
export interface ProviderDiagnostics {
  provider: UsageProvider;
  raw: unknown;
  cache_miss_reason?: string;
}

/** One server-sent event; `data` either already parsed or the raw data string. */
export interface StreamEvent {
  event?: string;
  data: unknown;
}

export interface StreamUsageAccumulator {
  /** Feeds one event. Throws UsageShapeError only when a final-usage event carries malformed counts: the usage is then unknown. */
  push(event: StreamEvent): void;
  /** Usage as of the events seen so far; `complete: false` until the final usage arrived. */
  result(): NormalizedUsage;
  /** The provider's cache-miss explanation, when the stream carried one. */
  diagnostics(): ProviderDiagnostics | null;
  /** The usage as the provider sent it (Anthropic: message_start's, with the last message_delta's counts over it), or null before any. */
  raw(): Record<string, unknown> | null;
}
