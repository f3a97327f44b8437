import type { Json } from '../../records';
import type { UsageShapeError } from '../counts';
import type { NormalizedUsage, ProviderDiagnostics, StreamUsageAccumulator, UsageProvider } from '../types';

/**
 * How one provider reports usage: its usage object's rules, and what tells its shapes from the others' (the shared
 * flow in normalize.ts tries the providers in the registry's orders, index.ts).
 */
export interface UsageRules {
  provider: UsageProvider;
  /** Whether requests are rendered in this provider's own request format (vLLM is sent OpenAI chat requests). */
  rendered: boolean;
  /** The provider whose response shape this one speaks, when another's (vLLM: OpenAI chat): a hint of either fits. */
  speaks?: UsageProvider;
  /** The count its usage object always carries (a bare usage object has it; a response trimmed to its usage does not). */
  countKey: string;
  /** This provider's usage object (`path` points at it) as NormalizedUsage; a UsageShapeError when it does not fit. */
  normalize(usage: Json, path: string, model: string | null): NormalizedUsage;
  /** How its whole response body is recognised, and where the body keeps the usage and the model. */
  body: ResponseBody;
  /**
   * Whether a bare usage object is this provider's, from its keys; may refuse one that mixes its keys with another's.
   * Absent: a bare usage of this provider is told only by a hint (vLLM's is OpenAI chat's).
   */
  claimsUsage?(usage: Json, path: string): boolean;
  /** A spelling of the provider's fields other than its REST API's (an SDK's), read as the REST one. */
  respelling?: Respelling;
  /** The provider's own cache-miss explanation on a response body, or null when it carries none. */
  diagnostics?(response: Json): ProviderDiagnostics | null;
  /** The response object a stream event of this provider carries (its diagnostics are read there), else undefined. */
  eventResponse?(event: Json): Json | undefined;
  /**
   * A fresh reader of its streamed usage (DESIGN.md, "Streaming"); `diagnostics` reads a provider's cache-miss
   * explanation on an event (normalize.ts's extractDiagnostics).
   */
  stream(diagnostics: DiagnosticsReader): StreamUsageAccumulator;
  /** Where its stream carries the usage: said when a list of its chunks or events carries none. */
  whereUsage: string;
  /** Whether a stream's chunk or event is this provider's, from its shape (absent: its streams are told only by a hint). */
  claimsEvent?(item: Json): boolean;
  /**
   * Set when a list of its chunks is read by its last chunk carrying usage (each chunk's usage is the call's so far,
   * Gemini): a chunk's usage, as sent. Absent: the list is read as the stream is, through stream().
   */
  chunkUsage?(chunk: Json): unknown;
}

export type DiagnosticsReader = (response: unknown) => ProviderDiagnostics | null;

export interface ResponseBody {
  matches(input: Json): boolean;
  usageKey: string;
  modelKey: string;
}

export interface Respelling {
  /** The input in the REST spelling; the input itself when nothing in it is spelt otherwise. */
  toRest(input: unknown): unknown;
  /** An error about the respelt input, its pointer and field names as the input spells them. */
  errorAsSent(e: UsageShapeError, input: unknown): UsageShapeError;
  /** A response body's usage object as the input spells it, when the input uses this spelling; else undefined. */
  usageAsSent(input: Json): Json | undefined;
}
