import { createHash } from 'node:crypto';

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** RFC 9530 Content-Digest value for bytes. */
export function contentDigestHeader(data: Uint8Array): string {
  return `sha-256=:${createHash('sha256').update(data).digest('base64')}:`;
}
