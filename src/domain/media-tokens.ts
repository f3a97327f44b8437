// Images and PDFs in a prompt are billed by what they show (pixels, pages), not by the length of their base64.
// Counted as text, a 300 KB screenshot is ~335,000 tokens where Anthropic bills ~1,600, and scaling the estimates
// to the provider's total then shrinks every handle beside it to almost nothing. So a base64 image or PDF in a
// JSON text is counted as the provider documents it, the rest of the text as text.

import { imageSize } from 'image-size';
import type { TokenizerFamily } from './catalog/types';

/** A base64 payload in a JSON text (the characters between its quotes) and what it holds. */
export interface MediaSpan {
  start: number;
  end: number;
  media: Media;
}

type Media = { kind: 'image'; width: number; height: number } | { kind: 'image'; width: null; height: null } | { kind: 'pdf'; pages: number };

/** Shorter payloads are left as text: no image or PDF worth telling apart is this small. */
const MIN_PAYLOAD = 256;
/** Bytes decoded to find an image's size (a JPEG's size can follow its EXIF block). */
const HEAD_BYTES = 192 * 1024;

// Where a payload starts: an image or document's `data` member (Anthropic, Gemini, our stored form), or a data: URL (OpenAI).
const DATA_MEMBER = '"data":"';
const DATA_URL = '"data:';
const MEMBER_BEFORE = new Set([0x7b, 0x2c]);
const VALUE_BEFORE = new Set([0x3a, 0x2c, 0x5b]);

/** The base64 images and PDFs in a JSON text, in order; nothing else is taken for one. */
export function mediaSpans(text: string): MediaSpan[] {
  const spans: MediaSpan[] = [];
  if (text.length < MIN_PAYLOAD) return spans;
  // Each marker's next place is looked for again only once passed: searched afresh on every step, the marker
  // that is far (or absent) was scanned for to the end each time — quadratic in a text of many "data" members.
  let member = -2;
  let url = -2;
  for (let at = 0; ; ) {
    if (member !== -1 && member < at) member = text.indexOf(DATA_MEMBER, at);
    if (url !== -1 && url < at) url = text.indexOf(DATA_URL, at);
    if (member < 0 && url < 0) break;
    let start: number;
    if (member >= 0 && (url < 0 || member < url)) {
      start = member + DATA_MEMBER.length;
      // A member of compact JSON (what is counted: canonical or stringified) follows `{` or `,`.
      if (!MEMBER_BEFORE.has(text.charCodeAt(member - 1))) {
        at = start;
        continue;
      }
    } else if (!VALUE_BEFORE.has(text.charCodeAt(url - 1))) {
      // A JSON string value follows `:`, `,` or `[`: `src="data:…` is an HTML page's inline image, which a provider
      // reads (and bills) as the text it is.
      at = url + DATA_URL.length;
      continue;
    } else {
      // "data:image/png;base64,…": the payload starts after the comma (a media type has none), looked for only
      // within this string (up to its closing quote), so each string is scanned once.
      const quote = text.indexOf('"', url + 1);
      const comma = text.slice(url, quote < 0 ? text.length : quote).indexOf(';base64,');
      if (comma < 0) {
        at = url + DATA_URL.length;
        continue;
      }
      start = url + comma + ';base64,'.length;
    }
    const end = base64End(text, start);
    at = Math.max(end, start);
    if (end - start < MIN_PAYLOAD || text.charCodeAt(end) !== 0x22) continue;
    const media = sniff(text, start, end);
    if (media) spans.push({ start, end, media });
  }
  return spans;
}

/** The end of the run of base64 characters (padding included) from `start`. */
function base64End(text: string, start: number): number {
  let i = start;
  while (isBase64(text.charCodeAt(i))) i++;
  while (text.charCodeAt(i) === 61) i++;
  return i;
}

/** A-Z, a-z, 0-9, + and / (a character code; NaN past the end is none). */
const isBase64 = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 47 && c <= 57) || c === 43;

function sniff(text: string, start: number, end: number): Media | null {
  // A whole number of 4-character groups: the decoder never sees a cut group.
  const headChars = Math.min(end - start, Math.ceil(HEAD_BYTES / 3) * 4) & ~3;
  const head = Buffer.from(text.slice(start, start + headChars), 'base64');
  if (head.subarray(0, 5).toString('latin1') === '%PDF-') return { kind: 'pdf', pages: pdfPages(Buffer.from(text.slice(start, end), 'base64')) };
  const magic = head.subarray(0, 12);
  const isImage =
    (magic[0] === 0x89 && magic.subarray(1, 4).toString('latin1') === 'PNG') ||
    (magic[0] === 0xff && magic[1] === 0xd8) ||
    magic.subarray(0, 4).toString('latin1') === 'GIF8' ||
    (magic.subarray(0, 4).toString('latin1') === 'RIFF' && magic.subarray(8, 12).toString('latin1') === 'WEBP');
  if (!isImage) return null;
  try {
    const { width, height } = imageSize(head);
    if (width > 0 && height > 0) return { kind: 'image', width, height };
  } catch {
    // A size past the decoded head, or a header we cannot read: an image of unknown size.
  }
  return { kind: 'image', width: null, height: null };
}

/** Pages of a PDF: its page objects, else the page tree's count, else one per 60 KB (compressed object streams hide both). */
function pdfPages(pdf: Buffer): number {
  const text = pdf.toString('latin1');
  const objects = text.match(/\/Type\s*\/Page(?![s\w])/g)?.length ?? 0;
  if (objects > 0) return objects;
  // The largest count in a loop: spread into Math.max, a crafted file's 150,000 page trees overflow the stack (a 500).
  let count = 0;
  for (const m of text.matchAll(/\/Type\s*\/Pages\b[^>]{0,200}?\/Count\s+(\d{1,6})/g)) count = Math.max(count, Number(m[1]));
  if (count > 0) return count;
  return Math.max(1, Math.round(pdf.length / 60_000));
}

/**
 * Tokens a provider bills for one image or PDF, by the tokenizer family of its models:
 * - Anthropic: width × height / 750, after scaling to 1568 px on the long edge and about 1.15 megapixels (≈1,600 at
 *   most); a PDF page is its text and its image, 1,500–3,000 tokens (2,250 taken).
 * - OpenAI (o200k, cl100k): 85 + 170 per 512 px tile, after fitting 2048 × 2048 and scaling the short side to 768
 *   (high detail, the default for large images); a PDF page as Anthropic's (its text and an image of it).
 * - Gemini: 258 for an image up to 384 × 384, else 258 per 768 × 768 tile; 258 per PDF page.
 * An image whose size we cannot read gets its family's typical figure.
 */
export function mediaTokens(media: Media, family: TokenizerFamily): number {
  const gemini = family === 'gemini';
  if (media.kind === 'pdf') return media.pages * (gemini ? 258 : 2250);
  const { width: w, height: h } = media;
  if (family === 'anthropic') {
    if (w === null) return 1600;
    const scale = Math.min(1, 1568 / Math.max(w, h), Math.sqrt(1_150_000 / (w * h)));
    return Math.max(1, Math.ceil((Math.round(w * scale) * Math.round(h * scale)) / 750));
  }
  if (gemini) {
    if (w === null) return 258;
    return w <= 384 && h <= 384 ? 258 : 258 * Math.ceil(w / 768) * Math.ceil(h / 768);
  }
  if (w === null) return 765;
  const fit = Math.min(1, 2048 / Math.max(w, h));
  const [fw, fh] = [w * fit, h * fit];
  const short = Math.min(1, 768 / Math.min(fw, fh));
  return 85 + 170 * Math.ceil((fw * short) / 512) * Math.ceil((fh * short) / 512);
}
