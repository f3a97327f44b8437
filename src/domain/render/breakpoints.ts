// Where the service places cache breakpoints, whichever provider's marks they are (each format's module marks them).
import type { ModelEntry } from '../catalog/types';
import type { RenderedSegment } from './request';

/** The breakpoints a request may hold, the caller's and ours together. */
export function maxBreakpoints(model: ModelEntry): number {
  return model.cache.maxBreakpoints ?? 4;
}

/**
 * The most valuable stable boundaries: the end of the last handle segment
 * (the longest stable prefix), the end of the previous session batch (what
 * the last turn wrote, so this turn reads it exactly), then the ends of the
 * system and tools sections. Boundaries below the model's minimum are skipped.
 */
export function chooseBreakpoints(segs: RenderedSegment[], slots: number, model: ModelEntry, markable: (i: number) => boolean = () => true): number[] {
  if (slots <= 0) return [];
  // A handle named twice in a row is two segments but one place to mark: its last copy's end (as when the
  // copies were one segment; a mark between them would move rendered bytes).
  const same = (a: RenderedSegment, b: RenderedSegment | undefined) => b !== undefined && b.source === a.source && b.section === a.section && b.path.join() === a.path.join();
  const repeatedNext = (i: number) => same(segs[i]!, segs[i + 1]);
  const handle = (i: number) => segs[i]!.source !== 'inline' && markable(i) && !repeatedNext(i);
  // The minimum is checked over the copies counted once, as it was when they were one segment: otherwise a
  // second copy could lift a prefix over the minimum and add a mark, moving rendered bytes.
  const endOnce: number[] = [];
  segs.forEach((s, i) => endOnce.push((endOnce[i - 1] ?? 0) + (repeatedNext(i) ? 0 : s.token_end - s.token_start)));
  const idx = segs.map((_, i) => i).filter(handle);
  const lastOf = (pred: (s: RenderedSegment) => boolean) => [...idx].reverse().find((i) => pred(segs[i]!));
  const candidates = [
    idx[idx.length - 1],
    (() => {
      const batches = idx.filter((i) => segs[i]!.source.startsWith('ses_'));
      return batches[batches.length - 2];
    })(),
    lastOf((s) => s.section === 'system'),
    lastOf((s) => s.section === 'tools'),
    ...[...idx].reverse(),
  ];
  const chosen: number[] = [];
  for (const c of candidates) {
    if (c === undefined || chosen.includes(c) || endOnce[c]! < model.cache.minTokens) continue;
    chosen.push(c);
    if (chosen.length === slots) break;
  }
  return chosen.sort((a, b) => a - b);
}
