// Cached tokens are a prefix of the prompt: a provider's read count covers
// segments in order, and writes follow the reads.

/** Integer lengths proportional to `lengths` that sum exactly to `total` (cumulative rounding, order kept). */
export function scaleLengths(lengths: number[], total: number): number[] {
  const sum = lengths.reduce((a, b) => a + b, 0);
  if (sum === 0) return lengths.map((_, i) => (i === lengths.length - 1 ? total : 0));
  let acc = 0;
  let prev = 0;
  return lengths.map((len) => {
    acc += len;
    const end = Math.round((acc * total) / sum);
    const out = end - prev;
    prev = end;
    return out;
  });
}

/** How far from a segment end a provider's read or write end may be and still be taken for it. */
const ANCHOR_SHARE = 0.1;
const ANCHOR_MIN_TOKENS = 16;

/**
 * An explicit cache (Anthropic) reads and writes whole prefixes that end at a breakpoint, so at a segment end:
 * where the provider's read end (and write end) lie near a segment end of the scaled estimate, the lengths are
 * moved so that the segment end falls exactly there — scaling each stretch between such ends on its own. The
 * estimate's error then does not show as a few tokens of bonus or unconfirmed on the next segment. An end farther
 * than 10% of its position (at least 16 tokens) from every segment end is left where the estimate puts it.
 */
export function anchorLengths(lengths: number[], anchors: number[]): number[] {
  const ends: number[] = [];
  let acc = 0;
  for (const len of lengths) ends.push((acc += len));
  const total = acc;
  // Each pin: the last segment of a stretch, and the token position its end moves to.
  const pins: { segment: number; at: number }[] = [];
  for (const at of [...new Set(anchors)].sort((a, b) => a - b)) {
    if (!(at > 0 && at < total)) continue;
    let nearest = -1;
    for (let k = 0; k < ends.length - 1; k++) if (nearest < 0 || Math.abs(ends[k]! - at) < Math.abs(ends[nearest]! - at)) nearest = k;
    if (nearest < 0 || Math.abs(ends[nearest]! - at) > Math.max(ANCHOR_MIN_TOKENS, ANCHOR_SHARE * ends[nearest]!)) continue;
    const last = pins.at(-1);
    if (last && (nearest <= last.segment || at <= last.at)) continue;
    pins.push({ segment: nearest, at });
  }
  if (pins.length === 0) return lengths;
  const out: number[] = [];
  let from = 0;
  let base = 0;
  for (const { segment, at } of [...pins, { segment: lengths.length - 1, at: total }]) {
    out.push(...scaleLengths(lengths.slice(from, segment + 1), at - base));
    from = segment + 1;
    base = at;
  }
  return out;
}

/** Splits `total` into `parts` integer pieces as evenly as possible (earlier pieces take the remainder). */
export function splitEvenly(total: number, parts: number): number[] {
  const n = Math.max(1, parts);
  const base = Math.floor(total / n);
  const extra = total - base * n;
  return Array.from({ length: n }, (_, i) => base + (i < extra ? 1 : 0));
}

/** Tokens of [start, end) that fall inside [from, to). */
export function overlap(start: number, end: number, from: number, to: number): number {
  return Math.max(0, Math.min(end, to) - Math.max(start, from));
}
