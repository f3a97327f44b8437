// Untrusted handle content shown with marks: volatility findings at UTF-8
// byte offsets, and the first differing bytes of a drift finding.

import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';

export interface Finding {
  kind: string;
  /** UTF-8 byte offset into the text. */
  offset: number;
  text: string;
}

/** Content shown per source; longer text is cut (at a character boundary) and says so. */
export const SHOW_BYTES = 64 * 1024;

/** Largest index ≤ n that does not split a UTF-8 sequence. */
function charBoundary(buf: Buffer, n: number): number {
  let i = Math.min(n, buf.length);
  while (i > 0 && i < buf.length && (buf[i]! & 0xc0) === 0x80) i--;
  return i;
}

/**
 * The text with each finding wrapped in <mark>. Offsets are byte offsets, so
 * slicing happens on the bytes, never on UTF-16 string indices.
 */
export function markFindings(text: string, findings: Finding[], limit = SHOW_BYTES): { body: HtmlEscapedString | Promise<HtmlEscapedString>; cut: boolean; shown: number } {
  const buf = Buffer.from(text, 'utf8');
  const end = charBoundary(buf, limit);
  const parts: (string | HtmlEscapedString | Promise<HtmlEscapedString>)[] = [];
  let pos = 0;
  let shown = 0;
  for (const f of [...findings].sort((a, b) => a.offset - b.offset)) {
    const fEnd = f.offset + Buffer.byteLength(f.text);
    // Skip overlaps and findings that do not sit on the bytes they name (stale or corrupt metadata).
    if (f.offset < pos || fEnd > end || buf.subarray(f.offset, fEnd).toString('utf8') !== f.text) continue;
    parts.push(buf.subarray(pos, f.offset).toString('utf8'));
    parts.push(html`<mark title="${f.kind} at byte ${f.offset}" data-kind="${f.kind}" data-offset="${f.offset}">${f.text}</mark>`);
    pos = fEnd;
    shown++;
  }
  parts.push(buf.subarray(pos, end).toString('utf8'));
  return { body: html`${parts}`, cut: end < buf.length, shown };
}

/**
 * Two excerpts that start at the same byte of texts equal up to the drift:
 * marks what differs between their common start and common end.
 */
export function diffPair(before: string, now: string) {
  const a = [...before];
  const b = [...now];
  let p = 0;
  while (p < a.length && p < b.length && a[p] === b[p]) p++;
  let s = 0;
  while (s < a.length - p && s < b.length - p && a[a.length - 1 - s] === b[b.length - 1 - s]) s++;
  const side = (chars: string[]) =>
    html`<span class="same">${chars.slice(0, p).join('')}</span><mark class="diff">${chars.slice(p, chars.length - s).join('')}</mark><span class="same">${chars.slice(chars.length - s).join('')}</span>`;
  return { before: side(a), now: side(b) };
}
