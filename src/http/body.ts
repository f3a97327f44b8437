import type { Context, MiddlewareHandler } from 'hono';
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { DomainError, invalid } from '../domain/errors';
import { parseJsonTree, pointerOf, type JsonNode } from '../domain/render/json-text';
import { pushAll } from '../domain/arrays';
import { checkDepth, checkProtoMembers, parseJsonBody } from '../domain/validation';
import { malformedJson } from './problem';
import { headerOf, incomingOf } from './auth';
import type { AppEnv } from './router';

export const JSON_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i;
const CHARSET = /;\s*charset\s*=\s*("?[^;\s]*"?)/i;

/** A body the route refuses before parsing it: too large (413) or not JSON (415). */
export class BodyError extends Error {
  constructor(
    readonly code: 'payload_too_large' | 'unsupported_media_type',
    message: string,
  ) {
    super(message);
  }
}

/**
 * The request body parsed as JSON, for the routes that run ahead of the global
 * middleware (after checkBody): the same checks as the middleware (size limit,
 * valid JSON) with the same problems. On Node the bytes are read from the
 * incoming message directly: building a web Request and its stream costs more
 * than the rest of a small POST.
 */
export async function readJson(c: Context<AppEnv>, maxBytes: number): Promise<unknown> {
  const text = await readText(c, maxBytes);
  // No body at all is a missing document (the schema says what is missing); an empty JSON body is malformed JSON.
  if (text === '' && headerOf(c, 'content-type') === undefined) return undefined;
  const body = parseBody(text);
  // Its schema builds objects from it, which would drop a __proto__ member (render keeps the text as sent).
  checkProtoMembers(text, body);
  return body;
}

/** A body's text as JSON: malformed JSON is a 400 in the parser's words, a document nested too deep a 422. */
export function parseBody(text: string): unknown {
  let body: unknown;
  try {
    body = parseJsonBody(text);
  } catch (e) {
    throw new DomainError('malformed_json', malformedJson(e));
  }
  checkDepth(body);
  return body;
}

/**
 * What can be refused before reading: a declared length over the limit (413),
 * a body that is not JSON (415). A request without a body passes, as in the
 * middleware: its key is checked next, then the schema names what is missing.
 */
export function checkBody(c: Context<AppEnv>, maxBytes: number): void {
  if (Number(headerOf(c, 'content-length') ?? NaN) > maxBytes) throw tooLarge(maxBytes);
  const notJson = notJsonBody(c);
  if (notJson) throw new BodyError('unsupported_media_type', notJson);
}

/** Why a request's body is refused as not JSON (415), or null: it is JSON, or there is no body. */
export function notJsonBody(c: Context<AppEnv>): string | null {
  if (!declaresBody(c)) return null;
  const type = headerOf(c, 'content-type') ?? '';
  if (!JSON_TYPE.test(type)) return `send the body as application/json (got ${type || 'no content type'})`;
  // JSON is UTF-8 (RFC 8259 §8.1): a body declared in another charset would be read as what it is not. `utf8` is
  // UTF-8's other label (WHATWG Encoding), and US-ASCII text is UTF-8 as it is: both accepted, as they were.
  const charset = CHARSET.exec(type)?.[1];
  if (charset !== undefined && !/^"?(?:utf-?8|us-ascii)"?$/i.test(charset)) return `send the JSON as UTF-8 (got charset=${charset})`;
  // A compressed body would be read as (invalid) text: said for what it is.
  const encoding = headerOf(c, 'content-encoding');
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') return `send the JSON uncompressed (got content-encoding: ${encoding})`;
  return null;
}

/**
 * Over HTTP/1.1 a body is declared by a non-zero length or a chunked transfer (`curl -X POST` sends neither);
 * a Request made in-process (app.request) has a body without declaring one.
 */
function declaresBody(c: Context<AppEnv>): boolean {
  const length = headerOf(c, 'content-length');
  const declared = length === undefined ? headerOf(c, 'transfer-encoding') !== undefined : length !== '0';
  return incomingOf(c) ? declared : declared || c.req.raw.body !== null;
}

const tooLarge = (maxBytes: number) => new BodyError('payload_too_large', `the body is larger than ${maxBytes} bytes (PH_MAX_BODY_BYTES)`);

/** A leading byte-order mark is not part of a JSON text (RFC 8259 §8.1 lets a parser ignore it). */
const withoutBom = (text: string) => (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);

/**
 * The request body as text (without a byte-order mark), read from the incoming message on Node. A declared
 * length over the limit was refused by checkBody, which every caller runs first; a chunked body is refused
 * (413) once the bytes read pass the limit.
 */
export async function readText(c: Context<AppEnv>, maxBytes: number): Promise<string> {
  const incoming = incomingOf(c);
  if (!incoming) {
    // TextDecoder drops a leading byte-order mark, as the Node path below does.
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    if (bytes.length > maxBytes) throw tooLarge(maxBytes);
    checkUtf8(bytes);
    return new TextDecoder().decode(bytes);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      chunks.push(chunk);
      // A chunked body declares no length: refuse it once it is over the limit, and discard the rest.
      if (size > maxBytes) {
        incoming.off('data', onData).off('end', onEnd);
        incoming.resume();
        reject(tooLarge(maxBytes));
      }
    };
    const onEnd = () => {
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      try {
        checkUtf8(bytes);
      } catch (e) {
        return reject(e);
      }
      resolve(withoutBom(bytes.toString('utf8')));
    };
    // A client that leaves mid-body (Node reports "aborted") settles the read as a client error, not ours.
    const cutShort = () => reject(new DomainError('malformed_json', 'the client closed the connection before the body ended'));
    const onClose = () => incoming.readableEnded || cutShort();
    incoming.on('data', onData).on('end', onEnd).once('error', cutShort).once('close', onClose);
  });
}

/**
 * A JSON text is UTF-8 (RFC 8259 §8.1): a body with invalid bytes is refused, never decoded with
 * replacement characters, which would store other text than the caller sent.
 */
export function checkUtf8(bytes: Uint8Array): void {
  if (isUtf8(bytes)) return;
  throw new DomainError('malformed_json', `The request body is not valid UTF-8 (at byte ${firstInvalidUtf8(bytes)}): send the text as UTF-8`);
}

/**
 * A validated route's body, before its schema builds objects from it: what would not be kept as sent is refused
 * (422 at its pointer) — a `__proto__` member (see checkProtoMembers), a member name given twice (JSON.parse keeps
 * the last without a word), an integer a double cannot hold (see checkNumbers). A body that is not JSON is left to
 * the validator.
 */
export function checkStorableBytes(bytes: Uint8Array, stored: boolean): void {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // A body that is not kept (a usage batch, judged record by record) is parsed here only when it can hold `__proto__`.
  if (!stored && buf.indexOf('__proto__') < 0 && buf.indexOf('\\u') < 0) return;
  const raw = buf.toString('utf8');
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  let value: unknown;
  try {
    value = parseJsonBody(text);
  } catch {
    return;
  }
  checkDepth(value);
  checkProtoMembers(text, value);
  if (!stored) return;
  // Only objects can repeat a name, and only a run of 16 digits can be an integer past 2^53.
  if (typeof value !== 'object' || value === null) return;
  const tree = parseJsonTree(text, '', true);
  if (BIG_NUMBER.test(text)) checkNumbers(text, tree);
}

const BIG_NUMBER = /\d{16}/;

/**
 * Refuses an integer that would be stored as another: past 2^53 a double does not hold every integer
 * (9007199254740993 would be kept as …992), where a provider's JSON reader keeps integers exact. (A value past
 * the double range is refused by the schemas, as out of range.)
 */
function checkNumbers(text: string, root: JsonNode): void {
  const stack = [root];
  for (let node = stack.pop(); node; node = stack.pop()) {
    if (node.children) pushAll(stack, node.children);
    if (node.type !== 'number') continue;
    const literal = text.slice(node.offset, node.offset + node.length);
    const n = node.value as number;
    if (Number.isFinite(n) && !Number.isSafeInteger(n) && INTEGER.test(literal) && BigInt(literal) !== BigInt(n))
      throw invalid(pointerOf(node), `${literal} cannot be kept exactly: integers past 2^53 become approximate (it would be stored as ${BigInt(n)}); send it as a string`);
  }
}

const INTEGER = /^-?\d+$/;

/** The offset of the first byte that does not start a well-formed UTF-8 sequence (Unicode Table 3-7). */
export function firstInvalidUtf8(b: Uint8Array): number {
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    const more = c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1;
    if (more < 0) return i;
    // The second byte's range excludes overlong forms (E0, F0), surrogates (ED) and code points past U+10FFFF (F4).
    const lo = c === 0xe0 ? 0xa0 : c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xed ? 0x9f : c === 0xf4 ? 0x8f : 0xbf;
    for (let k = 1; k <= more; k++) {
      const d = b[i + k];
      if (d === undefined || d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i;
    }
    i += more + 1;
  }
  return -1;
}

/**
 * An answer given before the request's body has arrived (a refusal: 401, 413, 415) ends the connection, and says so
 * (RFC 9112 §9.6): the adapter would close it after a while all the same, and a client that reused it for its next
 * request would see that request fail with nothing said ("socket hang up").
 */
export const closeUnreadBody: MiddlewareHandler<AppEnv> = async function closeUnreadBody(c, next) {
  await next();
  const res = closingIfUnread(c, c.res);
  if (res !== c.res) c.res = res;
};

/** The most read (and discarded) of a refused connection's bytes before it closes all the same, and the longest wait for them. */
const LINGER_BYTES = 64 * 1024 * 1024;
const LINGER_MS = 10_000;
const lingering = new WeakSet<Socket>();

/**
 * Keeps a connection whose answer came before the request's body open until the client has sent what it was
 * sending (read and discarded; at most LINGER_BYTES, LINGER_MS), then closes it, as HTTP servers' "lingering
 * close" does (RFC 9112 §9.6): once the answer is written its side is shut, and the client's end (or close) ends
 * the wait. Closed at once, with the client still sending, the socket's unread bytes made the kernel reset the
 * connection: the client's write failed (EPIPE) and it mostly never read the 413 — the SDKs raised "Connection
 * error." (and retried a 9 MB body twice), the CLI said the service could not be reached.
 *
 * The bytes go to no HTTP parser from the refusal on: a request pipelined after the refused body would be run
 * (a handle minted) with its answer never sent, and the client, told `connection: close`, would send it again.
 */
function lingerUntilRead(incoming: IncomingMessage): void {
  const socket = incoming.socket as (Socket & { destroySoon?: () => void }) | null;
  if (!socket || socket.destroyed || lingering.has(socket) || typeof socket.destroySoon !== 'function') return;
  lingering.add(socket);
  const destroySoon = socket.destroySoon;
  let read = 0;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    socket.off('end', close);
    socket.off('close', close);
    socket.destroySoon = destroySoon;
    socket.destroySoon();
  };
  const onData = (chunk: Buffer) => {
    read += chunk.length;
    if (read > LINGER_BYTES) close();
  };
  const timer = setTimeout(close, LINGER_MS);
  timer.unref();
  // A 'data' listener takes the socket from the parser (node:http unconsumes it); the parser's own is then removed.
  socket.on('data', onData);
  for (const listener of socket.listeners('data')) if (listener !== onData) socket.off('data', listener as (chunk: Buffer) => void);
  socket.once('end', close);
  socket.once('close', close);
  // Node closes a `connection: close` answer's socket with destroySoon once the answer is written (the adapter, too,
  // after draining a while): its side is shut then, and the socket closes at the client's end.
  socket.destroySoon = () => {
    if (socket.writable) socket.end();
  };
  socket.resume();
}

/** The answer, saying `connection: close` when the request's body has not all arrived (see closeUnreadBody). */
export function closingIfUnread(c: Context, res: Response): Response {
  const incoming = incomingOf(c);
  if (incoming === undefined || incoming.complete) return res;
  lingerUntilRead(incoming);
  try {
    res.headers.set('connection', 'close');
    return res;
  } catch {
    // A response whose headers are immutable (one made by fetch): a copy that can say it.
    const copy = new Response(res.body, res);
    copy.headers.set('connection', 'close');
    return copy;
  }
}
