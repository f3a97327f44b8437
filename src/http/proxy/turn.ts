// One proxied model call: render the caller's body with its handles, call the
// provider, hand the answer back as the provider sent it, and record what
// happened — usage reconciled, upstream failures marked, and with
// `x-ph-session` the turn appended once the answer is complete.

import type { HttpBindings } from '@hono/node-server';
import type { Context } from 'hono';
import type { Services } from '../../app';
import type { Clock } from '../../domain/clock';
import type { Message } from '../../domain/content';
import { DomainError, invalid } from '../../domain/errors';
import { callerAskedForUsage, inspectBody, withIncludeUsage } from '../../domain/proxy/body';
import { PROXY_FORMATS } from '../../domain/proxy/formats';
import { createStreamReply, MESSAGES_KEY, reasoningNotKept, replyMessage, turnMessages, UNKEEPABLE, whereRead, type ProxyFormat } from '../../domain/proxy/to-neutral';
import type { UsageReport } from '../../domain/reconcile/reconciler';
import type { StartOrder } from '../../domain/reconcile/start-order';
import { extractDiagnostics, normalizeUsage, unreportedUsage } from '../../domain/usage/normalize';
import { USAGE_PROVIDERS } from '../../domain/usage/providers';
import { createStreamUsageAccumulator } from '../../domain/usage/stream';
import { REQUEST_FORMATS } from '../../domain/render/formats';
import type { NormalizedUsage } from '../../domain/usage/types';
import type { RenderCall } from '../../domain/requests';
import type { ModelLookup } from '../../domain/catalog/types';
import { checksPrefix, withPrefixes } from '../../domain/thinking-prefix';
import type { Store } from '../../store/store';
import { headerOf, headersOf } from '../auth';
import { checkBody, readText } from '../body';
import type { AppEnv } from '../router';
import { relayEvents } from './stream';
import { credentialFingerprint, credentialsOf, readAll, redactCredentials, requestHeadersFor, responseHeadersFor, UpstreamError, type Upstream, type UpstreamProvider, type UpstreamResponse } from './upstream';
import { statusOf } from '../problem';
import { isRecord } from '../../domain/records';
import { sha256Hex } from '../../domain/digest';
import type { Lru } from '../../domain/lru';
import { AnswerBytes, ANSWER_CAP, replayed, type LastTurn, type SentAnswer } from './replay';

export interface TurnDeps {
  services: Services;
  store: Store;
  clock: Clock;
  upstream: Upstream;
  log: boolean;
  maxBodyBytes: number;
  /** Reconciles each scope's calls in the order they started. */
  order: StartOrder;
  /** Per session, the turn a proxied call appended last and its answer, until another call is made on it (replay.ts). */
  lastTurns: Lru<string, LastTurn>;
}

const PROVIDER: Record<ProxyFormat, UpstreamProvider> = { anthropic: 'anthropic', 'openai-chat': 'openai', 'openai-responses': 'openai', gemini: 'gemini' };

type Json = Record<string, unknown>;

/** The provider path and query after `/proxy/<provider>`, e.g. `/v1/messages?beta=true`. */
export function providerPath(url: string, provider: UpstreamProvider): string {
  const prefix = `/proxy/${provider}`;
  return url.slice(url.indexOf(prefix) + prefix.length);
}

/** `x-ph-session`: the session this turn continues, pinned to the version it was rendered with. */
function sessionOf(c: Context<AppEnv>, services: Services, tenantId: string) {
  const sent = headerOf(c, 'x-ph-session');
  if (sent === undefined) return null;
  const ref = sent.trim();
  // Sent blank (an unset variable in a client's headers): the caller expects a session kept, and none would be.
  if (!ref) throw invalid('header:x-ph-session', 'x-ph-session is empty: name the session (ses_…), or leave the header out');
  const r = services.handles.resolve(tenantId, ref, 'header:x-ph-session');
  if (r.handle.type !== 'session') throw invalid('header:x-ph-session', `${ref} is not a session (ses_…)`);
  // This turn is appended to the session after the answer: an older version pinned here could not take it
  // (and would send stale history), so it is refused before any money is spent.
  if (r.version.version !== r.handle.latestVersion)
    throw new DomainError('version_conflict', `${ref} is not the session's latest version (${r.handle.latestVersion}): send ${r.handle.id} without a version`, { current_version: r.handle.latestVersion }, [
      { pointer: 'header:x-ph-session', detail: `not the latest version (${r.handle.latestVersion})` },
    ]);
  return { id: r.handle.id, version: r.version.version, ref: r.ref };
}

/** What tells a retry from another call: the sha256 of its provider path and body (an SDK sends a retry's bytes again). */
const requestDigest = (c: Context<AppEnv>, text: string) => {
  const url = new URL(c.req.url);
  return sha256Hex(`${url.pathname}${url.search}\n${text}`);
};

/**
 * An official SDK's retry (`X-Stainless-Retry-Count` over 0) of the call that appended the session's latest turn:
 * its timeout fired after the proxy had appended the turn and before the answer reached it. The same path and body,
 * on the session's latest version, that call's own, with no call made on the session since (a call in between, an
 * earlier attempt that failed, means the latest turn is not this call's): the answer that call sent, to send again
 * (and again, to a retry of this retry). Every other model call on a session takes what it left.
 */
function lostAnswer(c: Context<AppEnv>, deps: TurnDeps, session: { id: string; version: number }, request: string): SentAnswer | undefined {
  const last = deps.lastTurns.peek(session.id);
  const retry = Number(headerOf(c, 'x-stainless-retry-count') ?? '0');
  if (last?.answer && retry > 0 && last.version === session.version && last.request === request) return last.answer;
  deps.lastTurns.delete(session.id);
  return undefined;
}

/**
 * A call's body and headers read and checked (everything that can refuse it does so before money is spent), and
 * what to render: its body with the handles of `x-ph-prefix` and `x-ph-session` prepended.
 */
async function readCall(c: Context<AppEnv>, format: ProxyFormat, deps: TurnDeps, model?: string, modelCall = false) {
  const { services } = deps;
  const { tenantId } = c.get('auth');
  // As on every route: a declared size over the limit is a 413, a body that is not JSON a 415.
  checkBody(c, deps.maxBodyBytes);
  const text = await readText(c, deps.maxBodyBytes);
  const caller = inspectBody(text);
  // A part an SDK emptied where a handle block stood: refused before any call, naming the way that works.
  const dropped = PROXY_FORMATS[format].droppedHandleBlock?.(caller.value);
  if (dropped) throw invalid(dropped.at, dropped.detail);
  const session = sessionOf(c, services, tenantId);
  // A model call (not a count): an SDK's retry of the call that appended the session's last turn gets its answer again.
  const request = session && modelCall ? requestDigest(c, text) : '';
  const replay = session && modelCall ? lostAnswer(c, deps, session, request) : undefined;
  if (replay) return { replay } as const;
  const turn = session ? turnMessages(format, caller.value) : [];
  // A turn whose tool calls do not pair with the session's history: refused before money is spent.
  if (session) services.handles.checkTurn(tenantId, session.id, session.version, turn, `/${MESSAGES_KEY[format]}`, format === 'anthropic', (i) => whereRead(turn[i]));
  // OpenAI chat streams report usage only when asked; the extra chunk is hidden again from a caller who did not ask.
  const hideUsageChunk = format === 'openai-chat' && caller.stream && !callerAskedForUsage(caller.value);
  const prefixHeader = headerOf(c, 'x-ph-prefix');
  const prefix = (prefixHeader ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  // As a blank x-ph-session: a prefix the caller expects sent would silently not be.
  if (prefixHeader !== undefined && prefix.length === 0) throw invalid('header:x-ph-prefix', 'x-ph-prefix names no handle: give one or more refs, comma-separated, or leave the header out');
  const call: RenderCall = {
    tenantId,
    format,
    bodyText: hideUsageChunk ? withIncludeUsage(text, caller.value) : text,
    // inspectBody has just parsed it.
    bodyIsJson: !hideUsageChunk,
    pointer: '',
    // Gemini names the model in the URL path, not in the body.
    model: model ?? caller.model,
    extraPrefix: [...prefix.map((ref) => ({ ref, pointer: 'header:x-ph-prefix' })), ...(session ? [{ ref: session.ref, pointer: 'header:x-ph-session' }] : [])],
    credentialFingerprint: credentialFingerprint(PROVIDER[format], headersOf(c), c.req.url),
  };
  return { caller, session, turn, hideUsageChunk, call, request };
}

/**
 * Anthropic's count_tokens and Gemini's countTokens: the body rendered as the model call would send it (the same
 * headers, handle blocks and session), counted by the provider. Counting is not a call: nothing is recorded, no
 * session appended. A body without handles goes as it came, byte for byte. Gemini counts a whole request (system
 * instruction, tools) only as `generateContentRequest`: a body the handles changed is sent so, with its model.
 */
export async function proxyCount(c: Context<AppEnv>, deps: TurnDeps, format: 'anthropic' | 'gemini' = 'anthropic', model?: string): Promise<Response> {
  const read = await readCall(c, format, deps, model);
  if (read.replay) throw new Error('a count is never a replay');
  const { call } = read;
  let { bodyText } = deps.services.requests.expand(call);
  if (format === 'gemini' && bodyText !== call.bodyText) bodyText = `{"generateContentRequest":{"model":${JSON.stringify(`models/${model}`)}${/^\s*\{\s*\}\s*$/.test(bodyText) ? '' : ','}${bodyText.slice(bodyText.indexOf('{') + 1)}}`;
  const provider = PROVIDER[format];
  const signal = c.req.raw.signal;
  const res = await deps.upstream.send(provider, { method: 'POST', path: providerPath(c.req.url, provider), headers: requestHeadersFor(headersOf(c)), body: bodyText, signal });
  const bytes = await readAll(res.body, provider, signal);
  return new Response(bytes, { status: res.status, headers: responseHeadersFor(res.headers) as Record<string, string> });
}

/** `model`: Gemini's, from the URL path. */
export async function proxyTurn(c: Context<AppEnv>, format: ProxyFormat, deps: TurnDeps, model?: string): Promise<Response> {
  const { services, upstream } = deps;
  const began = performance.now();
  const provider = PROVIDER[format];
  const { tenantId } = c.get('auth');
  const headers = headersOf(c);

  // ---- before the call: everything that can refuse the request does so before money is spent ----
  const read = await readCall(c, format, deps, model, true);
  // Not called, not recorded: the provider answered this call once, to the attempt whose answer was lost.
  if (read.replay) {
    services.metrics.sessionAppends.inc({ result: 'replayed' });
    return replayed(read.replay);
  }
  const { caller, session, turn, hideUsageChunk, call, request } = read;
  const rendered = services.requests.render(call);
  const { requestId } = rendered;
  // On our own problem responses too (502, 504): the request was recorded, and this links to it.
  c.header('x-ph-request-id', requestId);
  // A reply's thinking on a model with preserved thinking's prefix check is kept with the prefix it answered: the body sent.
  const producedUnder = session && REQUEST_FORMATS[format].preservedThinking && checksPrefix(rendered.model.entry) ? rendered.bodyText : null;
  const record = new Recorder(deps, tenantId, { http: c.get('requestId'), recorded: requestId }, rendered.scope, format, session && { ...session, request }, turn, producedUnder, rendered.model);
  // The trace export (when on): this call's span goes into the caller's trace.
  services.traces?.parent(tenantId, requestId, headerOf(c, 'traceparent'), headerOf(c, 'tracestate'));

  // ---- the call ----
  const signal = c.req.raw.signal;
  services.metrics.proxyOverhead.observe({ provider }, (performance.now() - began) / 1000);
  record.started();
  const res = await upstream
    .send(provider, { method: 'POST', path: providerPath(c.req.url, provider), headers: requestHeadersFor(headers), body: rendered.bodyText, signal })
    .catch(async (err: unknown) => {
      if (signal.aborted) record.interrupted();
      else await record.failed(...ourAnswer(err));
      throw err;
    });
  const out = responseHeadersFor(res.headers);
  out['x-ph-request-id'] = requestId;
  // What /v1/render lists under "warnings", by code (the request's own page shows the segments; a system message
  // sent with a session is one, a model the catalog does not know another).
  const warnings = [...new Set(rendered.warnings.map((w) => w.code as string))];
  // A reasoning item sent back by id alone (store: true) is left out of the session (to-neutral.ts).
  if (session && reasoningNotKept(format, caller.value)) warnings.push('reasoning_not_kept');
  if (warnings.length) out['x-ph-warnings'] = warnings.join(', ');
  // node:http takes header arrays (set-cookie) as they are.
  const init = { status: res.status, headers: out as Record<string, string> };

  // Events by their type — or, for a call that asked to stream, by anything but a JSON type, unless its first byte
  // says it is JSON: a gateway that drops or rewrites the stream's content-type would otherwise have it held back
  // whole and its usage left unread; one that does not stream, and names no type, answers JSON that is read as such.
  const contentType = String(res.headers['content-type'] ?? '').toLowerCase();
  let body = res.body;
  let events = res.status < 300 && contentType.startsWith('text/event-stream');
  if (res.status < 300 && !events && caller.stream && !contentType.includes('json')) {
    const sniffed = await sniffJson(res.body);
    body = sniffed.body;
    events = !sniffed.json;
  }
  if (events) {
    const outgoing = (c.env as Partial<HttpBindings> | undefined)?.outgoing;
    return new Response(relayTurn(body, format, record, hideUsageChunk, outgoing ? () => outgoing.destroy() : undefined, session ? { status: res.status, headers: out } : null), init);
  }
  // Not streamed: the answer comes whole, with its headers.
  record.firstByte();

  const bytes = await readAll(body, provider, signal).catch(async (err: unknown) => {
    if (signal.aborted) record.interrupted();
    else await record.failed(...ourAnswer(err, res.status));
    throw err;
  });
  const parsed = parseJson(bytes);
  // A failure is answered once it is recorded, so a client that looks it up finds it.
  // Anything but a 2xx (a redirect too) is an answer without usage: recorded as failed.
  // Its error body is kept without the caller's credentials, should the provider or a gateway echo them back
  // (`Invalid API key: sk-…`); the client gets the answer as it came.
  if (res.status >= 300) await record.failed(res.status, redactCredentials(parsed, credentialsOf(headers, c.req.url)));
  else {
    // Gemini's streamGenerateContent without ?alt=sse answers its chunks as one JSON array: read as the stream is.
    const chunks = PROXY_FORMATS[format].chunksAsArray === true && Array.isArray(parsed) ? readChunks(format, parsed) : null;
    const { usageError, ...usage } = chunks ? chunks.usage : usageOfAnswer(format, parsed);
    // The session is appended before the answer goes out: a turn it could not take is said in the header.
    if (record.completed(usage, chunks ? chunks.reply : parsed, usageError) === 'not_appended') out['x-ph-warnings'] = [out['x-ph-warnings'], 'session_not_appended'].filter(Boolean).join(', ');
    record.sent({ status: res.status, headers: out, body: bytes });
  }
  return new Response(bytes, init);
}

/**
 * Whether an answer of no telling type is JSON: its first byte past whitespace is `{` or `[` (an event stream's lines
 * start with a field name or `:`). The body is read up to that byte, and given back whole, those bytes first (a
 * failure while reading them comes where it came: both paths answer it as they do).
 */
async function sniffJson(body: UpstreamResponse['body']): Promise<{ json: boolean; body: UpstreamResponse['body'] }> {
  const iterator = body[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let first: number | undefined;
  let ended = false;
  let failure: { err: unknown } | undefined;
  try {
    while (first === undefined) {
      const next = await iterator.next();
      if (next.done) {
        ended = true;
        break;
      }
      head.push(next.value);
      first = next.value.find((b) => b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d);
    }
  } catch (err) {
    failure = { err };
  }
  const whole = {
    async *[Symbol.asyncIterator]() {
      yield* head;
      if (failure) throw failure.err;
      if (ended) return;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value;
      }
    },
    destroy: (error?: Error) => body.destroy(error),
  };
  return { json: first === 0x7b || first === 0x5b, body: whole };
}

/**
 * What is kept of an answer that was not streamed: its usage object as the raw report and its diagnostics,
 * normalised from the whole body (its model is read there), never the model's reply itself: the stream path
 * keeps no more than that either. An answer whose usage cannot be read is reconciled as unknown, as a stream
 * without its final usage is, with `usageError` saying why.
 */
function usageOfAnswer(format: ProxyFormat, answer: unknown): Pick<UsageReport, 'usage' | 'normalized' | 'diagnostics'> & { usageError?: unknown } {
  const { usageKey, modelKey } = USAGE_PROVIDERS[format].body;
  const usage = isRecord(answer) ? answer[usageKey] : undefined;
  try {
    return { usage, normalized: normalizeUsage(answer, format), diagnostics: extractDiagnostics(answer) ?? undefined };
  } catch (err) {
    const name = isRecord(answer) ? answer[modelKey] : undefined;
    const model = typeof name === 'string' ? name : null;
    return { usage: usage ?? null, normalized: unreportedUsage(format, model, null, true), usageError: err };
  }
}

/** A whole answer's chunks (Gemini's), read as the stream's events are: the usage of the last, the reply of all (null when none finished). */
function readChunks(format: ProxyFormat, chunks: unknown[]): { usage: ReturnType<typeof usageOfAnswer>; reply: unknown } {
  const usage = createStreamUsageAccumulator(format);
  const reply = createStreamReply(format);
  let usageError: unknown;
  for (const data of chunks) {
    try {
      usage.push({ data });
    } catch (err) {
      usageError = err;
    }
    reply.push(data);
  }
  return { usage: { usage: usage.raw() ?? null, normalized: usage.result(), diagnostics: usage.diagnostics() ?? undefined, usageError }, reply: reply.succeeded ? reply.response() : null };
}

/** The answer's events go on as they come; usage and the reply are read on the way. */
function relayTurn(body: UpstreamResponse['body'], format: ProxyFormat, record: Recorder, hideUsageChunk: boolean, dropClient: (() => void) | undefined, sending: Omit<SentAnswer, 'body'> | null) {
  const usage = createStreamUsageAccumulator(format);
  const reply = createStreamReply(format);
  let usageError: unknown = null;
  // The raw report is the provider's own usage as the stream carried it; the figures are normalised here.
  const finish = () => {
    const normalized = usage.result();
    // A stream that reached its terminal event without usage (a server that ignores include_usage) was not cut off.
    const whole = reply.ended && !normalized.complete ? { ...normalized, complete: true } : normalized;
    return record.completed({ usage: usage.raw() ?? null, normalized: whole, diagnostics: usage.diagnostics() ?? undefined }, reply.succeeded ? reply.response() : null, usageError);
  };
  let answering = false;
  // With a session: the bytes as the client gets them (the usage chunk held back), kept for an SDK's retry.
  const sent = sending && new AnswerBytes();
  return relayEvents(body, {
    onEvent(data, event) {
      // A stream's headers come before the provider has read the prompt: it starts answering with its first event
      // (past the Responses API's created / in-progress announcements), and only from then can another call read
      // what this one writes.
      if (!answering && !isAnnouncement(data)) {
        answering = true;
        record.firstByte();
      }
      try {
        usage.push({ event, data });
      } catch (err) {
        usageError = err;
      }
      reply.push(data, event);
      // Finish before the terminal event goes out: a client that reacts to it finds the session appended.
      if (reply.ended) finish();
      return !(hideUsageChunk && isUsageChunk(data));
    },
    // A stream that closes without its terminal event: whatever usage arrived (unknown if none).
    onEnd: () => {
      finish();
      if (sending) record.sent({ ...sending, body: sent!.bytes() });
    },
    onForward: sent ? (bytes) => sent.push(bytes) : undefined,
    onInterrupt: () => record.interrupted(usage.result(), usage.raw()),
    dropClient,
  });
}

/** The Responses events sent as the call is accepted, before the prompt is read. */
function isAnnouncement(data: unknown): boolean {
  return isRecord(data) && (data.type === 'response.created' || data.type === 'response.in_progress');
}

function isUsageChunk(data: unknown): boolean {
  return isRecord(data) && Array.isArray(data.choices) && data.choices.length === 0 && isRecord(data.usage);
}

/** The answer as JSON; a body that is not JSON (a proxy's text error page) as its text, so a failure keeps it. */
function parseJson(bytes: Buffer): unknown {
  const text = bytes.toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    return text === '' ? null : text;
  }
}

/**
 * What the proxy writes down about one call, at most once: reconciled usage
 * (unknown when the answer was cut off), a failure, and the session's new batch.
 */
/**
 * What a failed call is recorded with when the provider's answer never came whole: the problem we answered
 * (502 or 504, its code and message), and the status the provider had sent before it stopped, if any.
 */
function ourAnswer(err: unknown, upstreamStatus?: number): [number | null, unknown, string?] {
  if (!(err instanceof UpstreamError)) return [upstreamStatus ?? null, null];
  return [statusOf(err.code), { code: err.code, detail: err.message, ...(upstreamStatus === undefined ? {} : { upstream_status: upstreamStatus }) }, err.code];
}

class Recorder {
  private startedAt = 0;
  private firstByteAt = 0;
  private startedMs = 0;
  private done = false;
  /** The session's last turn, when this call appended it: its answer is kept once sent whole (`sent`). */
  private appended: LastTurn | undefined;
  /** Runs this call's reconciliation once the calls of its scope that started before it have settled. */
  private inOrder: (reconcile: () => void) => void = (reconcile) => reconcile();

  constructor(
    private readonly deps: TurnDeps,
    private readonly tenantId: string,
    /** The HTTP request's id (the request line's `requestId`) and the recorded request's (its `recorded`). */
    private readonly ids: { http: string | undefined; recorded: string },
    private readonly scope: string,
    private readonly format: ProxyFormat,
    /** `request`: the digest that tells an SDK's retry of this call (lostAnswer). */
    private readonly session: { id: string; version: number; request: string } | null,
    private readonly turn: Message[],
    /** The body sent, when the reply's thinking blocks are kept with their prefix (thinking-prefix.ts). */
    private readonly producedUnder: string | null = null,
    /** The model as sent and its catalog entry (a failed call's span names them). */
    private readonly model?: ModelLookup,
  ) {}

  started(): void {
    this.startedAt = this.deps.clock.now();
    this.startedMs = performance.now();
    this.inOrder = this.deps.order.begin(this.scope);
  }

  firstByte(): void {
    this.firstByteAt = this.deps.clock.now();
    this.observe('first_byte');
  }

  /**
   * The provider answered; `reply` is its answer in the non-streaming shape, or null when it did not finish.
   * Says whether this turn went into the session (null: no session, or no complete reply).
   */
  completed(usage: Pick<UsageReport, 'usage' | 'response' | 'normalized' | 'diagnostics'>, reply: unknown, usageError: unknown = null): 'appended' | 'not_appended' | null {
    if (this.settle()) return null;
    if (usageError) this.warn('the answer carried no usable usage; recorded as unknown', usageError);
    this.reconcile(usage);
    return reply === null ? null : this.append(reply);
  }

  /** The answer was cut off (client gone, provider dropped): capture unknown, nothing appended. */
  interrupted(partial?: UsageReport['normalized'], raw?: Record<string, unknown> | null): void {
    if (this.settle()) return;
    // The request line went out with the headers (a 200 for a stream): only this line says the answer never ended.
    this.warn('the answer was cut off before its end (the client left, the provider stopped, or a shutdown cut it): recorded as interrupted, with the usage that had arrived');
    // With no stream read at all, a fresh accumulator's result is exactly "nothing known".
    // The raw report is the usage the stream carried before it was cut, as for a complete stream.
    this.reconcile({ usage: raw ?? null, normalized: partial ?? createStreamUsageAccumulator(this.format).result() });
  }

  /** The provider refused (its status and error body) or could not be reached (null, null); `code`: our problem's, when we answered. */
  failed(status: number | null, body: unknown, code?: string): Promise<void> {
    if (this.settle()) return Promise.resolve();
    // A failed call is not applied to the simulated cache: the calls of its scope after it need not wait.
    this.inOrder(() => undefined);
    const finishedAt = this.deps.clock.now();
    const { traces } = this.deps.services;
    return this.deps.services.requests
      .markFailed(this.ids.recorded, { startedAt: this.startedAt, finishedAt, usageRaw: { status, error: body } })
      .then(
        () => {
          if (!traces || !this.model) return;
          traces.failed({ tenantId: this.tenantId, requestId: this.ids.recorded, format: this.format, model: this.model.model, provider: this.model.entry.provider, startedAt: this.startedAt, finishedAt, status, ...(code ? { code } : {}) });
        },
        (err: unknown) => this.warn('failure not recorded', err),
      );
  }

  private settle(): boolean {
    if (this.done) return true;
    this.done = true;
    this.observe('end');
    return false;
  }

  private reconcile(usage: Pick<UsageReport, 'usage' | 'response' | 'normalized' | 'diagnostics'>): void {
    const finishedAt = this.deps.clock.now();
    // No first byte seen (a stream cut before its first event): unknown, for the reconciler to decide.
    const report: UsageReport = { request_id: this.ids.recorded, ...usage, started_at: this.startedAt, ...(this.firstByteAt ? { first_byte_at: this.firstByteAt } : {}), finished_at: finishedAt };
    // An answer whose usage the reconciler refuses (a lone surrogate in its model name, say) is still reconciled:
    // as unknown, without the provider's objects, so the call never stays unreconciled.
    const ingest = (r: UsageReport, firstTry: boolean) => {
      const failed = (err: unknown) => {
        if (!firstTry || !(err instanceof DomainError && err.code === 'invalid_request')) return this.warn('usage not reconciled', err);
        this.warn('usage refused; reconciled as unknown', err);
        ingest({ ...r, usage: null, diagnostics: undefined, normalized: unreportedUsage(this.format, null, null, true) }, false);
      };
      try {
        this.deps.services.reconciler.ingest(this.tenantId, r).catch(failed);
      } catch (err) {
        failed(err);
      }
    };
    // After the answer has gone out, and not awaited: the caller waits for neither the reconciliation nor its commit.
    setImmediate(() => this.inOrder(() => ingest(report, true)));
  }

  private append(reply: unknown): 'appended' | 'not_appended' | null {
    if (!this.session) return null;
    const appends = this.deps.services.metrics.sessionAppends;
    try {
      const answer = replyMessage(this.format, reply);
      // Kept without the reply's tool call, the turn would leave the next tool output answering nothing.
      if (answer === UNKEEPABLE) throw new DomainError('invalid_request', 'the reply cannot be kept (a tool call whose arguments are not a JSON object, nested too deep, or a streamed index that is no place in the answer)');
      const batch = answer ? [...this.turn, this.producedUnder === null ? answer : withPrefixes(answer, this.producedUnder)] : this.turn;
      if (batch.length === 0) return null;
      // If-Match on the rendered version: a concurrent turn on the same session must not interleave with this one.
      const { version } = this.deps.services.handles.appendMessages(this.tenantId, this.session.id, batch, this.session.version);
      this.appended = { version: version.version, request: this.session.request };
      this.deps.lastTurns.set(this.session.id, this.appended);
      appends.inc({ result: 'appended' });
      return 'appended';
    } catch (err) {
      // The answer has been (or is being) delivered, and paid for: a session that cannot take the turn is logged and
      // counted, never a failed call. A fault of ours (storage, a bug) is logged as an error, with its stack.
      if (err instanceof DomainError) this.warn(`session ${this.session.id} not appended`, err);
      else console.error(JSON.stringify({ level: 'error', time: new Date().toISOString(), requestId: this.ids.http, recorded: this.ids.recorded, msg: `session ${this.session.id} not appended: a fault of ours`, error: (err instanceof Error ? err.stack : undefined) ?? String(err) }));
      appends.inc({ result: 'not_appended' });
      return 'not_appended';
    }
  }

  /**
   * The answer has gone out whole (body null: over ANSWER_CAP). Kept for an SDK's retry if this call appended the
   * session's last turn and no call has been made on the session since; else, or over the cap, that retry is a call.
   */
  sent(answer: Omit<SentAnswer, 'body'> & { body: Buffer | null }): void {
    if (!this.session || !this.appended || this.deps.lastTurns.peek(this.session.id) !== this.appended) return;
    const { body } = answer;
    if (body && body.length <= ANSWER_CAP) this.deps.lastTurns.set(this.session.id, { ...this.appended, answer: { ...answer, body } });
    else this.deps.lastTurns.delete(this.session.id);
  }

  private observe(phase: 'first_byte' | 'end'): void {
    this.deps.services.metrics.proxyLatency.observe({ provider: PROVIDER[this.format], phase }, (performance.now() - this.startedMs) / 1000);
  }

  /** A line with the request line's ids, so the two join: `requestId` the HTTP request's, `recorded` the req_…. */
  private warn(msg: string, err?: unknown): void {
    if (!this.deps.log) return;
    const error = err === undefined ? undefined : err instanceof Error ? err.message : String(err);
    process.stdout.write(`${JSON.stringify({ level: 'warn', time: new Date().toISOString(), requestId: this.ids.http, recorded: this.ids.recorded, msg, error })}\n`);
  }
}
