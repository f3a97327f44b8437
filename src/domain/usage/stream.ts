// Usage from streamed responses. Each provider delivers its final usage in a
// different event (DESIGN.md, "Streaming"; each provider's accumulator is in its module of providers/); a stream
// that ends before that event leaves capture unknown, never zero.

import { extractDiagnostics, normalizeUsage, unreportedUsage, UsageShapeError } from './normalize';
import { DONE, parseData } from './events';
import { CLAIM_ORDER, USAGE_PROVIDERS } from './providers';
import { isRecord } from '../records';
import type { NormalizedUsage, ProviderDiagnostics, StreamUsageAccumulator, UsageProvider } from './types';

export { DONE } from './events';
export type { StreamEvent, StreamUsageAccumulator } from './types';

export type StreamUsageProvider = 'anthropic' | 'openai-chat' | 'openai-responses' | 'gemini' | 'vllm';

export function createStreamUsageAccumulator(provider: StreamUsageProvider): StreamUsageAccumulator {
  const acc = USAGE_PROVIDERS[provider].stream(extractDiagnostics);
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

/** What a streamed answer's list carries, read as the proxy reads the stream itself. */
export interface ListedStream {
  usage: NormalizedUsage;
  /** The usage object as the provider sent it (kept with the request, as a response's usage object is). */
  raw: Record<string, unknown>;
  diagnostics: ProviderDiagnostics | null;
}

/**
 * A streamed answer sent as a list, as a client kept it (Gemini's streamGenerateContent answers with a JSON array of
 * chunks; an SDK's stream yields OpenAI's chunks and Anthropic's or Responses' events): its usage read as the proxy
 * reads the stream itself (the accumulators; a provider whose chunks each carry the call's usage so far, Gemini: the
 * last chunk with usage, whose counts are the whole call's). Each item is an event's data, parsed or as its JSON
 * text. A list from which no usage can be read is refused, naming what is missing (the provider's whereUsage); one
 * cut off after some usage (a message_start without its message_delta) is read as the proxy reads a stream cut
 * there: complete: false, capture unknown.
 */
export function listedStreamUsage(list: unknown[], hint?: UsageProvider): ListedStream {
  const items = list.map((item) => parseData(item));
  const provider = hint ?? streamShapeOf(items);
  if (provider === null) throw new UsageShapeError('', "a list, but of no provider's stream chunks or events: send the response body, or its usage object as \"usage\"");
  const rules = USAGE_PROVIDERS[provider];
  if (rules.chunkUsage !== undefined) {
    const chunkUsage = rules.chunkUsage;
    const at = items.findLastIndex((c) => c !== null && isRecord(chunkUsage(c)));
    if (at < 0) throw new UsageShapeError('', rules.whereUsage);
    const chunk = items[at]!;
    try {
      return { usage: normalizeUsage(chunk, provider), raw: chunkUsage(chunk) as Record<string, unknown>, diagnostics: null };
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
  if (raw === null) throw new UsageShapeError('', rules.whereUsage);
  return { usage: acc.result(), raw, diagnostics: acc.diagnostics() };
}

/** Whose stream a list is, from its items' shapes; null when none says. */
function streamShapeOf(items: Array<Record<string, unknown> | null>): StreamUsageProvider | null {
  for (const c of items) {
    if (c === null) continue;
    for (const rules of CLAIM_ORDER) if (rules.claimsEvent?.(c)) return rules.provider;
  }
  return null;
}

// ── SSE parsing ─────────────────────────────────────────────────────────────

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
