// An official SDK's retry of a proxied call whose answer was lost after the proxy had appended the turn (its timeout
// fired in between): the answer the first attempt sent is replayed, byte for byte, not asked of the provider again,
// so the session holds the reply the client got and the provider is paid once. Per session, the turn a proxied call
// appended last and, once it has gone out whole, the answer as the client was sent it; in memory, bounded by bytes.

import { Lru } from '../../domain/lru';

/** An answer as the proxy sent it: status, headers (the provider's as passed on, and our x-ph-*), body bytes. */
export interface SentAnswer {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/** The session version a proxied call appended, the digest of the request that appended it, and its answer once sent. */
export interface LastTurn {
  version: number;
  request: string;
  answer?: SentAnswer;
}

/** An answer over this is not kept: its retry is a call of its own (appended again). */
export const ANSWER_CAP = 4 * 1024 * 1024;
/** All sessions' kept answers together; past it the least recently set go first (second chance). */
export const ANSWERS_TOTAL = 64 * 1024 * 1024;
/** What an entry weighs besides its body: its session id, digest, headers. */
const ENTRY_BYTES = 512;

export function lastTurnCache(total = ANSWERS_TOTAL): Lru<string, LastTurn> {
  return new Lru(total, (t) => ENTRY_BYTES + (t.answer?.body.length ?? 0));
}

/** The bytes of a streamed answer as they go out to the client, until they pass the cap (then none are kept). */
export class AnswerBytes {
  private chunks: Buffer[] | null = [];
  private size = 0;

  push(bytes: Uint8Array): void {
    if (!this.chunks) return;
    this.size += bytes.length;
    if (this.size > ANSWER_CAP) this.chunks = null;
    else this.chunks.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  }

  /** The whole answer, or null when it passed the cap. */
  bytes(): Buffer | null {
    return this.chunks && Buffer.concat(this.chunks);
  }
}

/** The kept answer, sent again, marked `x-ph-replayed: true`. */
export function replayed(answer: SentAnswer): Response {
  return new Response(answer.body, { status: answer.status, headers: { ...answer.headers, 'x-ph-replayed': 'true' } as Record<string, string> });
}
