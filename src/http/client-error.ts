import type { Socket } from 'node:net';

// Requests Node refuses before the app sees them (headers over its limit, bytes
// that are not HTTP) are answered as problem+json too, not with Node's bare status.

const REFUSED: Record<string, { status: number; reason: string; code: string; detail: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, reason: 'Request Header Fields Too Large', code: 'headers_too_large', detail: 'the request line and headers are larger than the server accepts (16 KB): send handles in the body ("prefix") rather than in x-ph-prefix' },
};
const MALFORMED = { status: 400, reason: 'Bad Request', code: 'malformed_request', detail: 'the request is not valid HTTP/1.1' };

/** A server's `clientError` listener: a problem+json answer on a socket the parser gave up on. */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const p = REFUSED[err.code ?? ''] ?? MALFORMED;
  const body = JSON.stringify({ type: `urn:prefix-handles:problem:${p.code}`, title: p.reason, status: p.status, detail: p.detail, code: p.code });
  socket.end(`HTTP/1.1 ${p.status} ${p.reason}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}
