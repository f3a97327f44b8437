// The call to the provider: undici over a keep-alive Agent (global fetch costs
// ~0.24 ms more CPU per call), headers filtered per RFC 9110 §7.6.1, and
// transport failures turned into the two problems a gateway answers.

import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { pipeline, type Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { Agent, type Dispatcher } from 'undici';

export type UpstreamProvider = 'anthropic' | 'openai' | 'gemini';

/** The provider could not be reached (502) or did not answer in time (504). */
export class UpstreamError extends Error {
  constructor(
    readonly code: 'bad_gateway' | 'gateway_timeout',
    message: string,
  ) {
    super(message);
    this.name = 'UpstreamError';
  }
}

export interface UpstreamResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The answer's bytes, decoded when the provider compressed them; destroying it lets the connection go. */
  body: AsyncIterable<Buffer> & { destroy(error?: Error): void };
}

// Hop-by-hop headers never cross a proxy; host and length are the new connection's own;
// accept-encoding is dropped so the answer arrives uncompressed and its usage can be read;
// x-ph-* are ours and must not reach the provider.
const DROP_REQUEST = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length', 'accept-encoding', 'expect']);
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length']);

/** Request headers as node:http gives them: lower-case names, repeated ones joined. */
export type RequestHeaders = Record<string, string | string[] | undefined>;

const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(', ') : v);

export function requestHeadersFor(headers: RequestHeaders): Record<string, string> {
  const listed = new Set((one(headers.connection) ?? '').toLowerCase().split(',').map((s) => s.trim()));
  const out: Record<string, string> = {};
  for (const key in headers) {
    const value = one(headers[key]);
    if (value === undefined || DROP_REQUEST.has(key) || listed.has(key) || key.startsWith('x-ph-')) continue;
    out[key] = value;
  }
  return out;
}

/** The provider's response headers for the client; arrays (set-cookie) stay arrays for node:http. */
export function responseHeadersFor(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  // As on the way in: a header the provider's Connection names is its connection's own.
  const listed = new Set((one(headers.connection) ?? '').toLowerCase().split(',').map((s) => s.trim()));
  const out: Record<string, string | string[]> = {};
  for (const key in headers) {
    const value = headers[key];
    if (value !== undefined && !DROP_RESPONSE.has(key) && !listed.has(key)) out[key] = value;
  }
  return out;
}

// A Map, not an object: a coding named `constructor` or `toString` is no decoder.
const DECODERS = new Map<string, () => Transform>([['gzip', createGunzip], ['x-gzip', createGunzip], ['deflate', createInflate], ['br', createBrotliDecompress]]);

/**
 * An answer the provider compressed though we asked for none (a gateway on the way may compress anyway): decoded
 * here, so its usage can be read and its events passed on as they come, and sent on without content-encoding.
 * An encoding we cannot decode (several stacked, or unknown) goes on untouched, its usage unread.
 */
function decoded(res: UpstreamResponse): UpstreamResponse {
  const coding = (one(res.headers['content-encoding']) ?? '').trim().toLowerCase();
  const decoderFor = DECODERS.get(coding);
  if (!decoderFor) return res;
  const { 'content-encoding': _, ...withLength } = res.headers;
  // No bytes at all (a 429 or 204 a gateway marked gzip all the same) decode to none: a decoder would call them
  // a truncated stream, and the client a 502 where the provider's answer was a retryable 429.
  if (res.status === 204 || res.status === 304 || one(res.headers['content-length'])?.trim() === '0') return { status: res.status, headers: withLength, body: res.body };
  const { 'content-length': __, ...headers } = withLength;
  return { status: res.status, headers, body: decodedBody(res.body, decoderFor) };
}

/**
 * The body decoded, once a first byte has come: a chunked answer without one (an empty 200, or a 4xx a gateway marked
 * gzip, no length said) is no bytes, as a declared empty one is, where a decoder would call it a truncated stream.
 */
function decodedBody(body: UpstreamResponse['body'], decoderFor: () => Transform): UpstreamResponse['body'] {
  const source = body[Symbol.asyncIterator]();
  let decoder: Transform | undefined;
  return {
    async *[Symbol.asyncIterator]() {
      const first = await source.next();
      if (first.done) return;
      decoder = decoderFor();
      const rest = async function* () {
        yield first.value;
        for (let next = await source.next(); !next.done; next = await source.next()) yield next.value;
      };
      // Either side destroyed (the client left, the bytes are corrupt) destroys the other: the connection is let go.
      pipeline(rest(), decoder, (err) => err && body.destroy(err));
      yield* decoder;
    },
    destroy(error?: Error) {
      body.destroy(error);
      decoder?.destroy(error);
    },
  };
}

/**
 * A short, one-way fingerprint of the provider credential: requests made with
 * different accounts never share a provider cache, so it is part of the cache
 * scope. The credential itself is never stored or logged.
 */
export function credentialFingerprint(provider: UpstreamProvider, headers: RequestHeaders, url?: string): string | undefined {
  const bearer = /^Bearer\s+(\S+)/i.exec(one(headers.authorization) ?? '')?.[1];
  // Azure OpenAI takes its key as `api-key` (or an Entra ID bearer token).
  const secret =
    provider === 'anthropic'
      ? (one(headers['x-api-key']) ?? bearer)
      : provider === 'gemini'
        ? (one(headers['x-goog-api-key']) ?? geminiQueryKey(url) ?? bearer)
        : (bearer ?? one(headers['api-key']));
  return secret ? createHash('sha256').update(secret).digest('hex').slice(0, 12) : undefined;
}

/** Shorter values are not taken for a secret: redacting every `k` of an error message would say nothing. */
const SECRET_MIN = 8;

/**
 * Every provider credential a call carries (`x-api-key`, `Authorization`'s token, `x-goog-api-key`, Gemini's `?key=`,
 * Azure OpenAI's `api-key`), whatever the provider: what must never be stored, should the provider or a gateway echo
 * it in an error body.
 */
export function credentialsOf(headers: RequestHeaders, url?: string): string[] {
  // The token after any scheme, not Bearer's alone: a self-hosted server behind a gateway may take Basic (a base URL
  // holds no password, so the caller sends it here), and a gateway echoing the token without its scheme is as likely.
  // A value with no scheme is taken whole; with one, its token is enough (the scheme's word is no secret, and a
  // part of `Bearer …` would be taken for one).
  const authorization = one(headers.authorization);
  const token = /^\S+\s+(\S+)/.exec(authorization ?? '')?.[1] ?? authorization?.trim();
  const values = [one(headers['x-api-key']), token, one(headers['x-goog-api-key']), one(headers['api-key']), geminiQueryKey(url)];
  return [...new Set(values.filter((v): v is string => v !== undefined && v.length >= SECRET_MIN))].sort((a, b) => b.length - a.length);
}

/**
 * `value` with each of `secrets` inside a string (a member name too) replaced by `[redacted]`; a body too deep to walk
 * is not kept. Walked with no secret too: a body too deep to walk is too deep to store, and the failure was then not
 * recorded at all (the request left as rendered).
 */
export function redactCredentials(value: unknown, secrets: string[]): unknown {
  const text = (s: string) => secrets.reduce(redactOne, s);
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return text(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [text(k), walk(x)]));
    return v;
  };
  try {
    return walk(value);
  } catch (err) {
    // Nested too deep to walk (a provider's body, not a caller's): not kept rather than kept unread.
    if (err instanceof RangeError) return '[not kept: nested too deep to redact]';
    throw err;
  }
}

/**
 * `text` with `secret` replaced by `[redacted]`, and any run of `SECRET_MIN` characters or more that starts it or ends
 * it (a gateway that echoes part of a key: `sk-ant-api03-AbCd…`, `…Wxyz0123`): a key's first or last characters say
 * which key it was, and a shorter run could be any text. Found from the key's first and last `SECRET_MIN`
 * characters, then extended as far as the text goes on matching.
 */
function redactOne(text: string, secret: string): string {
  const head = secret.slice(0, SECRET_MIN);
  const tail = secret.slice(-SECRET_MIN);
  const runs: Array<[number, number]> = [];
  for (let at = text.indexOf(head); at !== -1; at = text.indexOf(head, at + 1)) {
    let n = SECRET_MIN;
    while (n < secret.length && text[at + n] === secret[n]) n++;
    runs.push([at, at + n]);
  }
  for (let at = text.indexOf(tail); at !== -1; at = text.indexOf(tail, at + 1)) {
    const end = at + SECRET_MIN;
    let n = SECRET_MIN;
    while (n < secret.length && end - n - 1 >= 0 && text[end - n - 1] === secret[secret.length - n - 1]) n++;
    runs.push([end - n, end]);
  }
  if (runs.length === 0) return text;
  runs.sort((a, b) => a[0] - b[0]);
  let out = '';
  let from = 0;
  for (const [start, end] of runs) {
    if (end <= from) continue;
    // Overlapping runs (a whole key is found from both ends) are one redaction.
    if (start < from) {
      from = end;
      continue;
    }
    out += `${text.slice(from, start)}[redacted]`;
    from = end;
  }
  return out + text.slice(from);
}

/** Gemini's key may travel as `?key=` instead of x-goog-api-key. */
function geminiQueryKey(url: string | undefined): string | undefined {
  const query = url?.indexOf('?') ?? -1;
  return query === -1 ? undefined : (new URLSearchParams(url!.slice(query + 1)).get('key') ?? undefined);
}

const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

/**
 * Maps a transport failure to the problem a gateway answers: a timeout (504) or anything else (502). A call that
 * could not be sent names where it went (`base`, an origin: base URLs hold no password): with the providers
 * called by mistake (PH_UPSTREAM=simulator forgotten) or a gateway's URL mistyped, "anthropic could not be reached
 * (ENOTFOUND)" said neither.
 */
export function upstreamFailure(err: unknown, provider: UpstreamProvider, base?: URL): UpstreamError {
  const code = (err as { code?: string } | null)?.code ?? '';
  if (TIMEOUTS.has(code)) return new UpstreamError('gateway_timeout', `${provider} did not answer within PH_UPSTREAM_TIMEOUT_MS`);
  return new UpstreamError('bad_gateway', `${provider} could not be reached${base ? ` at ${base.origin}` : ''} (${code || (err instanceof Error ? err.message : 'connection failed')})`);
}

/** The whole body of a short answer; a transport failure midway is a 502/504 unless the client left. */
export async function readAll(body: AsyncIterable<Buffer>, provider: UpstreamProvider, signal?: AbortSignal): Promise<Buffer> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of body) chunks.push(chunk);
  } catch (err) {
    throw signal?.aborted ? err : upstreamFailure(err, provider);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/**
 * Where a provider path goes under a base URL. Anthropic's SDKs take the API's origin (`https://api.anthropic.com`,
 * or a gateway's path to it) and add `/v1/messages`, as we do. OpenAI's take a base URL that ends where the API's
 * version does (`https://api.openai.com/v1`, vLLM's `http://host:8000/v1`, Gemini's
 * `…/v1beta/openai`) and add `/chat/completions`: a base with a path is read that way, its provider path without
 * `/v1`; a bare origin keeps it (`https://api.openai.com` → `/v1/chat/completions`). Gemini's SDK takes the origin
 * and adds `/v1beta/models/…`, as Anthropic's does.
 */
export function upstreamPath(provider: UpstreamProvider, base: URL, path: string): string {
  const prefix = base.pathname.replace(/\/+$/, '');
  if (provider === 'openai' && prefix !== '') return prefix + path.replace(/^\/v1(?=[/?]|$)/, '');
  return prefix + path;
}

export class Upstream {
  private readonly agent: Agent;
  private readonly bases: Record<UpstreamProvider, URL>;

  constructor(opts: { anthropicBaseUrl: string; openaiBaseUrl: string; geminiBaseUrl: string; timeoutMs: number }) {
    // headersTimeout: until the answer starts; bodyTimeout: the longest silence inside it.
    this.agent = new Agent({ keepAliveTimeout: 30_000, headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs, connect: { timeout: Math.min(opts.timeoutMs, 30_000) } });
    this.bases = { anthropic: new URL(opts.anthropicBaseUrl), openai: new URL(opts.openaiBaseUrl), gemini: new URL(opts.geminiBaseUrl) };
  }

  /** `path` is the provider path with its query (`/v1/messages?beta=true`). Rejects with UpstreamError, or the signal's reason. */
  async send(provider: UpstreamProvider, call: { method: string; path: string; headers: Record<string, string>; body?: string | Buffer; signal?: AbortSignal }): Promise<UpstreamResponse> {
    const base = this.bases[provider];
    try {
      const res = await this.agent.request({
        origin: base.origin,
        path: upstreamPath(provider, base, call.path),
        method: call.method as Dispatcher.HttpMethod,
        headers: call.headers,
        body: call.body,
        signal: call.signal,
      });
      return decoded({ status: res.statusCode, headers: res.headers, body: res.body });
    } catch (err) {
      if (call.signal?.aborted) throw err;
      throw upstreamFailure(err, provider, base);
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
