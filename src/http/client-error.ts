import type { ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';

// Requests Node refuses before the app sees them (headers over its limit, bytes
// that are not HTTP, a request that took too long to arrive) are answered as
// problem+json too, not with Node's bare status — where Node would answer at all.

interface Refusal {
  status: number;
  reason: string;
  code: string;
  detail: string;
}

const REFUSED: Record<string, Refusal> = {
  HPE_HEADER_OVERFLOW: { status: 431, reason: 'Request Header Fields Too Large', code: 'headers_too_large', detail: 'the request line and headers are larger than the server accepts (16 KB): send handles in the body ("prefix") rather than in x-ph-prefix' },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: { status: 413, reason: 'Payload Too Large', code: 'payload_too_large', detail: 'the chunk extensions are larger than the server accepts' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, reason: 'Request Timeout', code: 'request_timeout', detail: 'the request did not arrive in time' },
};
const MALFORMED: Refusal = { status: 400, reason: 'Bad Request', code: 'malformed_request', detail: 'the request is not valid HTTP/1.1' };

/** A server's `clientError` listener: as Node's own, but the answer is problem+json. */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  // An answer already under way on this connection (a streamed reply) must not get another one written into it.
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (err.code !== 'ECONNRESET' && socket.writable && !inFlight?.headersSent) {
    const p = REFUSED[err.code ?? ''] ?? MALFORMED;
    const requestId = randomUUID();
    // The path is not known here: the `error` member the proxy's answers carry (the SDKs read it) is always there.
    const body = JSON.stringify({ type: `urn:prefix-handles:problem:${p.code}`, title: p.reason, status: p.status, detail: p.detail, code: p.code, requestId, error: { type: p.code, code: p.code, message: p.detail } });
    socket.write(`HTTP/1.1 ${p.status} ${p.reason}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`);
  }
  socket.destroy(err);
}
