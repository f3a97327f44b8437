// Usage from streamed responses. Each provider delivers its final usage in a
// different event (DESIGN.md, "Streaming"); a stream that ends before that
// event leaves capture unknown, never zero.

import { extractDiagnostics, normalizeUsage, normalizeUsageAs, pointer, readCount, unreportedUsage, UsageShapeError } from './normalize';
import { isRecord } from '../records';
import type { NormalizedUsage, ProviderDiagnostics, UsageProvider } from './types';

export type StreamUsageProvider = 'anthropic' | 'openai-chat' | 'openai-responses' | 'gemini' | 'vllm';

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

export function createStreamUsageAccumulator(provider: StreamUsageProvider): StreamUsageAccumulator {
  const acc = accumulatorFor(provider);
  // A report that cannot be read replaced the one before it: the usage is unknown from then on, as the log says.
  let unreadable = false;
  return {
    push(event) {
      try {
        acc.push(event);
      } catch (err) {
        unreadable = true;
        throw err;
      }
    },
    result: () => (unreadable ? unreportedUsage(provider, acc.result().model, null, true) : acc.result()),
    diagnostics: () => acc.diagnostics(),
    raw: () => acc.raw(),
  };
}

function accumulatorFor(provider: StreamUsageProvider): StreamUsageAccumulator {
  switch (provider) {
    case 'anthropic':
      return anthropicAccumulator();
    case 'openai-chat':
    case 'vllm':
      return chatAccumulator(provider);
    case 'openai-responses':
      return responsesAccumulator();
    case 'gemini':
      return geminiAccumulator();
  }
}

// Anthropic: message_start carries the full usage (output_tokens is a
// placeholder); every message_delta carries cumulative counts that replace the
// ones before. Adding them would double-count.
function anthropicAccumulator(): StreamUsageAccumulator {
  let counts: Record<string, unknown> = {};
  let model: string | null = null;
  let sawDelta = false;
  let diagnostics: ProviderDiagnostics | null = null;
  let raw: Record<string, unknown> | null = null;

  function overwrite(usage: Record<string, unknown>, path: string): void {
    // As received, every field kept: a later event's values over the earlier ones (its nulls say "not carried
    // here"), an update refused below included.
    raw = { ...raw, ...Object.fromEntries(Object.entries(usage).filter(([, v]) => v !== null)) };
    const next = { ...counts };
    for (const key of ['input_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens', 'output_tokens']) {
      // A null in a delta means "not carried here" (Anthropic SDK MessageStream does the same).
      const value = readCount(usage, key, path);
      if (value !== null) next[key] = value;
    }
    if (isRecord(usage.cache_creation)) next.cache_creation = usage.cache_creation;
    // A revised write count without its split leaves the earlier split describing another sum: it is dropped
    // (writes then priced at the default TTL) rather than refused, as a report that contradicts itself is.
    else if (isRecord(next.cache_creation) && readCount(usage, 'cache_creation_input_tokens', path) !== null) {
      const split = Object.values(next.cache_creation).reduce<number>((a, v) => a + (typeof v === 'number' ? v : 0), 0);
      if (split !== next.cache_creation_input_tokens) delete next.cache_creation;
    }
    // Checked whole before any of it is kept (a split that does not sum, a total past any context): all or nothing.
    if (next.input_tokens !== undefined) normalizeUsageAs('anthropic', next, { path });
    counts = next;
  }

  return {
    push(event) {
      const data = parseData(event.data);
      if (data === null) return;
      const type = typeof data.type === 'string' ? data.type : event.event;
      if (type === 'message_start' && isRecord(data.message)) {
        const message = data.message;
        if (typeof message.model === 'string') model = message.model;
        if (isRecord(message.usage)) overwrite(message.usage, '/message/usage');
        diagnostics = extractDiagnostics(message) ?? diagnostics;
      } else if (type === 'message_delta' && isRecord(data.usage)) {
        overwrite(data.usage, '/usage');
        sawDelta = true;
      }
    },
    result() {
      if (!sawDelta || counts.input_tokens === undefined) {
        const total =
          typeof counts.input_tokens === 'number' &&
          typeof counts.cache_creation_input_tokens === 'number' &&
          typeof counts.cache_read_input_tokens === 'number'
            ? counts.input_tokens + counts.cache_creation_input_tokens + counts.cache_read_input_tokens
            : null;
        return incomplete('anthropic', model, total);
      }
      return normalizeUsageAs('anthropic', counts, { model });
    },
    diagnostics: () => diagnostics,
    raw: () => raw,
  };
}

// OpenAI chat (and vLLM): with stream_options.include_usage, one extra chunk
// before [DONE] has empty choices and the whole request's usage; every other
// chunk has usage null. vLLM's continuous_usage_stats puts running usage on
// content chunks too; those update the figures but do not end the stream.
function chatAccumulator(provider: 'openai-chat' | 'vllm'): StreamUsageAccumulator {
  let model: string | null = null;
  let latest: NormalizedUsage | null = null;
  let final = false;
  let diagnostics: ProviderDiagnostics | null = null;
  let raw: Record<string, unknown> | null = null;

  return {
    push(event) {
      const data = parseData(event.data);
      if (data === null) return;
      if (typeof data.model === 'string') model = data.model;
      diagnostics = extractDiagnostics(data) ?? diagnostics;
      if (!isRecord(data.usage)) return;
      // As received, also when it cannot be read.
      raw = data.usage;
      latest = normalizeUsageAs(provider, data.usage, { path: pointer('', 'usage'), model });
      if (!Array.isArray(data.choices) || data.choices.length === 0) final = true;
    },
    result() {
      if (!final || latest === null) return incomplete(provider, model, null);
      return { ...latest, model };
    },
    diagnostics: () => diagnostics,
    raw: () => raw,
  };
}

// Responses API: usage is null until the terminal event. response.incomplete
// (e.g. max_output_tokens) and response.failed still close the response and
// carry its final usage when there is one.
const RESPONSES_TERMINAL = new Set(['response.completed', 'response.incomplete', 'response.failed']);

function responsesAccumulator(): StreamUsageAccumulator {
  let model: string | null = null;
  let final: NormalizedUsage | null = null;
  let diagnostics: ProviderDiagnostics | null = null;
  let raw: Record<string, unknown> | null = null;

  return {
    push(event) {
      const data = parseData(event.data);
      if (data === null || !isRecord(data.response)) return;
      const type = typeof data.type === 'string' ? data.type : event.event;
      const response = data.response;
      if (typeof response.model === 'string') model = response.model;
      if (type === undefined || !RESPONSES_TERMINAL.has(type)) return;
      diagnostics = extractDiagnostics(response) ?? diagnostics;
      if (isRecord(response.usage)) {
        raw = response.usage;
        final = normalizeUsageAs('openai-responses', response.usage, { path: '/response/usage', model });
      }
    },
    result: () => (final === null ? incomplete('openai-responses', model, null) : { ...final, model }),
    diagnostics: () => diagnostics,
    raw: () => raw,
  };
}

// Gemini (streamGenerateContent?alt=sse): each chunk is a GenerateContentResponse; usageMetadata, when a chunk
// carries it, is the request's so far (candidatesTokenCount grows), the one with the finishReason (or after it) final.
function geminiAccumulator(): StreamUsageAccumulator {
  let model: string | null = null;
  let latest: NormalizedUsage | null = null;
  let finished = false;
  let diagnostics: ProviderDiagnostics | null = null;
  let raw: Record<string, unknown> | null = null;

  return {
    push(event) {
      const data = parseData(event.data);
      if (data === null) return;
      if (typeof data.modelVersion === 'string') model = data.modelVersion;
      diagnostics = extractDiagnostics(data) ?? diagnostics;
      const candidate = Array.isArray(data.candidates) ? data.candidates[0] : undefined;
      if (isRecord(candidate) && typeof candidate.finishReason === 'string') finished = true;
      if (!isRecord(data.usageMetadata)) return;
      raw = data.usageMetadata;
      latest = normalizeUsageAs('gemini', data.usageMetadata, { path: pointer('', 'usageMetadata'), model });
    },
    result: () => (!finished || latest === null ? incomplete('gemini', model, null) : { ...latest, model }),
    diagnostics: () => diagnostics,
    raw: () => raw,
  };
}

/** What a streamed answer's list carries, read as the proxy reads the stream itself. */
export interface ListedStream {
  usage: NormalizedUsage;
  /** The usage object as the provider sent it (kept with the request, as a response's usage object is). */
  raw: Record<string, unknown>;
  diagnostics: ProviderDiagnostics | null;
}

/** Where each provider's stream carries its usage: said when a list carries none. */
const WHERE_USAGE: Record<UsageProvider, string> = {
  gemini: 'no chunk carries usageMetadata (Gemini puts it on its chunks, the whole count on the last one): send the chunks as received, the last one included',
  anthropic: 'no message_start or message_delta event carries usage: send the events as received, from message_start on',
  'openai-chat': "no chunk carries usage: OpenAI sends it in a last chunk only when the request sets stream_options.include_usage (the proxy sets it)",
  vllm: "no chunk carries usage: vLLM sends it in a last chunk only when the request sets stream_options.include_usage",
  'openai-responses': 'no response.completed, response.incomplete or response.failed event carries the usage: send the events as received, the last one included',
};

/**
 * A streamed answer sent as a list, as a client kept it (Gemini's streamGenerateContent answers with a JSON array of
 * chunks; an SDK's stream yields OpenAI's chunks and Anthropic's or Responses' events): its usage read as the proxy
 * reads the stream itself (the accumulators above; Gemini: the last chunk with usageMetadata, whose counts are the
 * whole call's). Each item is an event's data, parsed or as its JSON text. A list from which no usage can be read
 * is refused, naming what is missing; one cut off after some usage (a message_start without its message_delta) is
 * read as the proxy reads a stream cut there: complete: false, capture unknown.
 */
export function listedStreamUsage(list: unknown[], hint?: UsageProvider): ListedStream {
  const items = list.map((item) => parseData(item));
  const provider = hint ?? streamShapeOf(items);
  if (provider === null) throw new UsageShapeError('', "a list, but of no provider's stream chunks or events: send the response body, or its usage object as \"usage\"");
  if (provider === 'gemini') {
    const at = items.findLastIndex((c) => c !== null && isRecord(c.usageMetadata ?? c.usage_metadata));
    if (at < 0) throw new UsageShapeError('', WHERE_USAGE.gemini);
    const chunk = items[at]!;
    try {
      return { usage: normalizeUsage(chunk, 'gemini'), raw: (chunk.usageMetadata ?? chunk.usage_metadata) as Record<string, unknown>, diagnostics: null };
    } catch (e) {
      throw e instanceof UsageShapeError ? new UsageShapeError(`/${at}${e.path}`, e.detail) : e;
    }
  }
  const acc = createStreamUsageAccumulator(provider);
  items.forEach((data, i) => {
    if (data === null) return;
    try {
      acc.push({ data });
    } catch (e) {
      throw e instanceof UsageShapeError ? new UsageShapeError(`/${i}${e.path}`, e.detail) : e;
    }
  });
  const raw = acc.raw();
  if (raw === null) throw new UsageShapeError('', WHERE_USAGE[provider]);
  return { usage: acc.result(), raw, diagnostics: acc.diagnostics() };
}

/** Whose stream a list is, from its items' shapes; null when none says. */
function streamShapeOf(items: Array<Record<string, unknown> | null>): StreamUsageProvider | 'gemini' | null {
  for (const c of items) {
    if (c === null) continue;
    if ('usageMetadata' in c || 'usage_metadata' in c || Array.isArray(c.candidates)) return 'gemini';
    if (c.object === 'chat.completion.chunk') return 'openai-chat';
    if (typeof c.type === 'string' && c.type.startsWith('message_')) return 'anthropic';
    if (typeof c.type === 'string' && c.type.startsWith('response.')) return 'openai-responses';
  }
  return null;
}

function incomplete(provider: UsageProvider, model: string | null, totalPromptTokens: number | null): NormalizedUsage {
  return unreportedUsage(provider, model, totalPromptTokens, false);
}

// Accepts parsed JSON or the raw data string straight from SseParser; the
// "[DONE]" sentinel, keep-alives and anything that is not a JSON object carry no usage.
function parseData(data: unknown): Record<string, unknown> | null {
  if (typeof data !== 'string') return isRecord(data) ? data : null;
  if (data.trim() === '' || data === DONE) return null;
  try {
    const parsed: unknown = JSON.parse(data);
    return isRecord(parsed) ? parsed : null;
  } catch {
    return null;
  }
}

// ── SSE parsing ─────────────────────────────────────────────────────────────

/** OpenAI's end-of-stream sentinel, sent as the data of a last event. */
export const DONE = '[DONE]';

export interface SseMessage {
  /** The `event:` field; absent when the event did not name itself (a plain "message"). */
  event?: string;
  /** Data lines joined with "\n". */
  data: string;
}

/**
 * Incremental parser for text/event-stream, after the WHATWG HTML "event stream
 * interpretation" rules: lines end in CRLF, LF or CR; a blank line dispatches;
 * lines starting with ":" are comments; an event without data is dropped.
 * Feed decoded text in whatever chunks the network delivers.
 */
export class SseParser {
  #buffer = '';
  #dataLines: string[] = [];
  #event: string | undefined;
  #started = false;
  // A chunk that ends in CR may be the first half of a CRLF.
  #skipLeadingLf = false;
  #done = false;

  /** True once a `data: [DONE]` event has been dispatched. */
  get done(): boolean {
    return this.#done;
  }

  feed(text: string): SseMessage[] {
    if (text === '') return [];
    if (!this.#started) {
      this.#started = true;
      if (text.startsWith('\uFEFF')) text = text.slice(1);
    }
    if (this.#skipLeadingLf && text.startsWith('\n')) text = text.slice(1);
    this.#skipLeadingLf = false;

    const buffer = this.#buffer + text;
    const out: SseMessage[] = [];
    let start = 0;
    for (let i = start; i < buffer.length; i++) {
      const ch = buffer[i];
      if (ch !== '\n' && ch !== '\r') continue;
      this.#line(buffer.slice(start, i), out);
      if (ch === '\r') {
        if (i + 1 === buffer.length) this.#skipLeadingLf = true;
        else if (buffer[i + 1] === '\n') i++;
      }
      start = i + 1;
    }
    this.#buffer = buffer.slice(start);
    return out;
  }

  #line(line: string, out: SseMessage[]): void {
    if (line === '') {
      this.#dispatch(out);
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.#dataLines.push(value);
    else if (field === 'event') this.#event = value;
    // id and retry steer browser reconnects; nothing here reconnects.
  }

  #dispatch(out: SseMessage[]): void {
    const event = this.#event;
    const lines = this.#dataLines;
    this.#event = undefined;
    this.#dataLines = [];
    if (lines.length === 0) return;
    const data = lines.join('\n');
    if (data === DONE) this.#done = true;
    out.push(event === undefined || event === '' ? { data } : { event, data });
  }
}
