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
