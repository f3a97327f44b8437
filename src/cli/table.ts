// Plain-text tables and the number formats they use.

export type Align = 'left' | 'right';

/**
 * Text from the API shown on a terminal: control characters (ESC, NUL, a carriage return…) are written as
 * escapes, so a handle's name cannot move the cursor, recolour or hide the lines around it.
 */
export function printable(text: string): string {
  // Also the bidirectional controls, which would reorder the rest of the line (a name with U+202E).
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// East Asian wide and fullwidth characters (CJK, kana, Hangul, fullwidth forms) and emoji take two terminal columns.
const WIDE = /[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\u{1f300}-\u{1f64f}\u{1f900}-\u{1f9ff}\u{20000}-\u{3fffd}]|\p{Emoji_Presentation}|\ufe0f/u;
const graphemes = new Intl.Segmenter('en', { granularity: 'grapheme' });

/**
 * The columns a cell takes on a terminal: a grapheme is one column, two when wide (`客服` is four), none when it is
 * a mark alone. Padding by `length` pushed every column after a CJK name two places right per character.
 */
export function displayWidth(text: string): number {
  if (/^[\x20-\x7e]*$/.test(text)) return text.length;
  let width = 0;
  for (const { segment } of graphemes.segment(text)) width += WIDE.test(segment) ? 2 : /^[\p{M}\p{Cf}]+$/u.test(segment) ? 0 : 1;
  return width;
}

/** Columns padded to their widest cell, in terminal columns; numbers (align 'right') line up on the right. */
export function table(header: string[], rows: string[][], align: Align[] = []): string {
  const [head, ...body] = [header, ...rows].map((r) => r.map(printable));
  const all = [head!, ...body];
  const widths = head!.map((_, c) => Math.max(...all.map((r) => displayWidth(r[c] ?? ''))));
  const pad = (cell: string, c: number) => ' '.repeat(widths[c]! - displayWidth(cell));
  const line = (r: string[]) =>
    r
      .map((cell, c) => (align[c] === 'right' ? pad(cell, c) + cell : cell + pad(cell, c)))
      .join('  ')
      .trimEnd();
  return [line(head!), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** An RFC 3339 time to the second: the milliseconds are in --json. */
export const when = (iso: string | null) => (iso === null ? '' : iso.replace(/\.\d{3}Z$/, 'Z'));

export const tokens = (n: number | undefined) => (n ?? 0).toLocaleString('en-US');

export const percent = (ratio: number | null | undefined) => (ratio === null || ratio === undefined ? 'n/a' : `${(ratio * 100).toFixed(1)}%`);

/** US dollars to six decimals: one request's input costs fractions of a cent, and the API rounds there too. */
export function usd(n: number | undefined): string {
  const x = n ?? 0;
  return `${x < 0 ? '-' : ''}$${Math.abs(x).toFixed(6)}`;
}

/**
 * `version.meta.volatility` of a handle version: findings for artifacts; for bundles and sessions, counts per source
 * (the first 50 volatile sources) and how many sources there are (absent in versions minted when every one was listed).
 */
export interface VolatilityMeta {
  count: number;
  findings?: Array<{ kind: string; offset: number; text: string }>;
  sources?: number;
  by_source?: Record<string, number>;
}

/** One line naming the first few volatile values, or null when there are none. */
export function volatilityNote(v: VolatilityMeta | undefined): string | null {
  if (!v || v.count === 0) return null;
  const head = `${v.count} volatile value${v.count === 1 ? '' : 's'}`;
  const shown = v.findings
    ? v.findings.slice(0, 3).map((f) => `${f.kind} ${JSON.stringify(f.text)} at byte ${f.offset}`)
    : Object.entries(v.by_source ?? {}).slice(0, 3).map(([source, n]) => `${n} in ${source}`);
  const listed = v.findings ? Math.min(v.findings.length, 3) : Math.min(Object.keys(v.by_source ?? {}).length, 3);
  const more = (v.findings ? v.count : (v.sources ?? Object.keys(v.by_source ?? {}).length)) > listed ? ', …' : '';
  return shown.length ? `${head}: ${shown.join(', ')}${more}` : head;
}
