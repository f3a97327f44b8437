// Cached tokens are a prefix of the prompt: a provider's read count covers
// segments in order, and writes follow the reads.

import { pushAll } from '../arrays';

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

/** Beyond this factor either way, estimates and counts do not describe the same prompt: all are scaled together. */
const FIT_MAX_FACTOR = 4;
/** …and more than this many tokens apart (as a total far from its estimate is flagged). */
const FIT_MAX_TOKENS = 1024;

/**
 * Lengths that sum to a provider's `total`: segments whose count is exact (an OpenAI encoding's count of a handle)
 * keep it, and the estimated ones (inline content, other tokenizer families) take the rest in proportion. Scaling them all
 * together would move the estimate's error onto the exact spans: inline digits under-estimated by a third
 * stretched a measured system prompt past the provider's read, and showed its tail as `unconfirmed`. When the
 * rest would scale the estimated segments by more than 4× either way and over 1,024 tokens (or there are none, or the
 * exact counts exceed the total), all are scaled together.
 */
export function fitLengths(lengths: number[], exact: boolean[], total: number): number[] {
  let counted = 0;
  let estimated = 0;
  lengths.forEach((len, i) => (exact[i] ? (counted += len) : (estimated += len)));
  const factor = (total - counted) / estimated;
  // A few short inline items are mostly the provider's framing: many times their estimate, and still only a few tokens.
  const far = !(factor >= 1 / FIT_MAX_FACTOR && factor <= FIT_MAX_FACTOR) && Math.abs(total - counted - estimated) > FIT_MAX_TOKENS;
  if (counted === 0 || estimated === 0 || total < counted || far) return scaleLengths(lengths, total);
  const rest = scaleLengths(lengths.filter((_, i) => !exact[i]), total - counted);
  let k = 0;
  return lengths.map((len, i) => (exact[i] ? len : rest[k++]!));
}

/** How far from a segment end a provider's read or write end may be and still be taken for it. */
const ANCHOR_SHARE = 0.1;
const ANCHOR_MIN_TOKENS = 16;

/**
 * An explicit cache (Anthropic) reads and writes whole prefixes that end at a breakpoint: where the provider's
 * read end (and write end) lie near the end of a segment that carries a breakpoint, the lengths are moved so
 * that that segment end falls exactly there — scaling each stretch between such ends on its own. The estimate's
 * error then does not show as a few tokens of bonus or unconfirmed on the next segment. The nearest such end
 * within 10% of its position (at least 16 tokens) is taken; an end farther from all of them stays where the
 * estimate puts it. `known` are segment ends earlier reports measured for the same prefixes: they hold too,
 * unless one no longer fits between this report's own. `exact` marks the lengths counted exactly (fitLengths):
 * within each stretch, those keep their size where the others can take up the difference.
 */
export function anchorLengths(lengths: number[], breakpointSegments: number[], anchors: number[], known: Pin[] = [], exact?: boolean[]): number[] {
  const fixed = orderedPins(known, lengths);
  const base = stretch(lengths, fixed, exact);
  const ends: number[] = [];
  let acc = 0;
  for (const len of base) ends.push((acc += len));
  const total = acc;
  const candidates = [...new Set(breakpointSegments)].filter((k) => k >= 0 && k < lengths.length - 1).sort((a, b) => a - b);
  // Each pin: the last segment of a stretch, and the token position its end moves to.
  const pins: Pin[] = [];
  for (const at of [...new Set(anchors)].sort((a, b) => a - b)) {
    if (!(at > 0 && at < total)) continue;
    // A known end exactly there explains it: the read is that prefix, not one ending at a breakpoint near it; it
    // holds as this report's own pin, so a later end (the write's) is placed past it.
    const known = fixed.find((f) => f.at === at);
    if (known) {
      if (!pins.some((p) => p.segment >= known.segment || p.at >= at)) pins.push(known);
      continue;
    }
    const last = pins.at(-1);
    let best = -1;
    for (const k of candidates) {
      const off = Math.abs(ends[k]! - at);
      if (off > Math.max(ANCHOR_MIN_TOKENS, ANCHOR_SHARE * ends[k]!)) continue;
      if (last && (k <= last.segment || at <= last.at)) continue;
      // A known end is measured, a breakpoint near an anchor only guessed: another end is not moved onto its segment.
      if (fixed.some((f) => f.segment === k)) continue;
      if (best < 0 || off < Math.abs(ends[best]! - at)) best = k;
    }
    if (best >= 0) pins.push({ segment: best, at });
  }
  return stretch(base, withKnown(pins, fixed), exact);
}

/**
 * What this report shows comes first (`own`, in segment order); a known end (`fixed`, in segment and position order)
 * that no longer fits between them and the known ends kept before it is left out. In one pass over both: each known end
 * is compared with the pins around it, as inserting each in turn among the others would (a long session has a known end
 * per unit, ~1,200 at 300 rounds, and inserting them one at a time took time in the square of that).
 */
export function withKnown(own: Pin[], fixed: Pin[]): Pin[] {
  const kept: Pin[] = [];
  let next = 0;
  for (const f of fixed) {
    while (next < own.length && own[next]!.segment < f.segment) next++;
    if (own[next]?.segment === f.segment) continue;
    // The pin just before it: the last known end kept (all before it) or this report's last before it, the later one.
    const mine = own[next - 1];
    const last = kept.at(-1);
    const before = !last || (mine && mine.segment > last.segment) ? mine : last;
    const after = own[next];
    if ((before && before.at >= f.at) || (after && after.at <= f.at)) continue;
    kept.push(f);
  }
  if (kept.length === 0) return own;
  const out: Pin[] = [];
  let i = 0;
  for (const k of kept) {
    while (i < own.length && own[i]!.segment < k.segment) out.push(own[i++]!);
    out.push(k);
  }
  while (i < own.length) out.push(own[i++]!);
  return out;
}

/** A segment whose end is put at a token position. */
export interface Pin {
  segment: number;
  at: number;
}

/** The pins that can hold together, in segment order: inside the prompt, and each past the one before. */
function orderedPins(pins: Pin[], lengths: number[]): Pin[] {
  const total = lengths.reduce((a, b) => a + b, 0);
  const out: Pin[] = [];
  for (const p of [...pins].sort((a, b) => a.segment - b.segment)) {
    const last = out.at(-1);
    if (p.segment < 0 || p.segment >= lengths.length - 1 || !(p.at > 0 && p.at < total)) continue;
    if (last && (p.segment === last.segment || p.at <= last.at)) continue;
    out.push(p);
  }
  return out;
}

/** Each stretch of segments up to a pin scaled on its own, so that its last segment ends at the pin. */
function stretch(lengths: number[], pins: Pin[], exact?: boolean[]): number[] {
  if (pins.length === 0) return lengths;
  const total = lengths.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  let from = 0;
  let base = 0;
  for (const { segment, at } of [...pins, { segment: lengths.length - 1, at: total }]) {
    const slice = lengths.slice(from, segment + 1);
    pushAll(out, exact ? fitLengths(slice, exact.slice(from, segment + 1), at - base) : scaleLengths(slice, at - base));
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
