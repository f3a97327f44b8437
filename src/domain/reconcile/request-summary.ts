import { handleTypeOf, parseRef, type HandleType } from '../ids';
import type { RequestOutcome } from './reconciler';
import { CLASSES } from './waterfall';

/**
 * What a list of requests shows of a reconciled one (GET /v1/requests, a handle page's recent requests), kept with
 * its reconciliation: its outcome lists every segment — a long session's, thousands, read and parsed in full for one
 * line each — where this holds a few handles' tokens by class.
 */
export interface RequestSummary {
  capture: RequestOutcome['capture'];
  prompt_tokens: number | null;
  drift: boolean;
  /** Every handle id on its segments' paths, in order of first appearance. */
  handles: string[];
  /** Tokens by class of every segment but inline ones (the classes above 0, in the order they first appear). */
  classes: Record<string, number>;
  /** The same per handle, over the segments on whose path it is (a handle with none above 0 is left out). */
  by_handle: Record<string, Record<string, number>>;
}

/**
 * The shape of RequestSummary, stored with each summary: a change to it bumps this, and the rows of the shape before
 * are not read (their requests are listed from their outcomes, as those reconciled before summaries were kept).
 */
export const SUMMARY_VERSION = 1;

/** Every handle id on the segments' paths (a ref `id@version` is named by its id), in order of first appearance. */
export function pathHandles(segments: ReadonlyArray<{ path: readonly string[] }>): string[] {
  const handles = new Set<string>();
  for (const s of segments) for (const ref of s.path) handles.add(parseRef(ref)?.id ?? ref);
  return [...handles];
}

export function summarizeOutcome(outcome: Pick<RequestOutcome, 'capture' | 'total_prompt_tokens' | 'drift' | 'segments'>): RequestSummary {
  const classes: Record<string, number> = {};
  const byHandle: Record<string, Record<string, number>> = {};
  const add = (to: Record<string, number>, from: Array<[string, number]>) => {
    for (const [c, n] of from) to[c] = (to[c] ?? 0) + n;
  };
  for (const s of outcome.segments) {
    const counted = Object.entries(s.classes).filter(([, n]) => n > 0);
    if (s.source === 'inline' || counted.length === 0) continue;
    add(classes, counted);
    // Once per segment, whatever the number of times its path names a handle.
    for (const id of new Set(s.path.flatMap((ref) => parseRef(ref)?.id ?? []))) add((byHandle[id] ??= {}), counted);
  }
  return { capture: outcome.capture, prompt_tokens: outcome.total_prompt_tokens, drift: !!outcome.drift, handles: pathHandles(outcome.segments), classes, by_handle: byHandle };
}

/**
 * A request's list line's tokens by class: every handle's, one handle's (`handleId`), or those of the handles of one
 * type (`type`) added up, as GET /v1/reports?by_type= adds up their rows (a segment inside two nested bundles counts
 * for each; a session is on no other's path, so a session segment counts once).
 */
export function summaryClasses(s: RequestSummary, handleId?: string, type?: HandleType): Record<string, number> {
  if (handleId !== undefined) return s.by_handle[handleId] ?? {};
  if (type === undefined) return s.classes;
  const out: Record<string, number> = {};
  for (const [id, classes] of Object.entries(s.by_handle)) {
    if (handleTypeOf(id) !== type) continue;
    for (const [c, n] of Object.entries(classes)) out[c] = (out[c] ?? 0) + n;
  }
  return out;
}

/**
 * A listed row's summary (see the store's listRequests): its stored one, or one made from its outcome (reconciled
 * before summaries were kept, or of another shape); null when it is not reconciled.
 */
export const listedSummary = (row: { summary?: unknown; outcome?: unknown }): RequestSummary | null =>
  (row.summary as RequestSummary | null | undefined) ?? (row.outcome ? summarizeOutcome(row.outcome as RequestOutcome) : null);

/** A listed row's tokens of one class (on `handleId`'s segments, those of handles of `type`, or any handle's): 0 when it is not reconciled. */
export function listedClassTokens(row: { summary?: unknown; outcome?: unknown }, cls: string, handleId?: string, type?: HandleType): number {
  const summary = listedSummary(row);
  return summary ? (summaryClasses(summary, handleId, type)[cls] ?? 0) : 0;
}

/**
 * The classes the list finds by an index (request_classes): every class but `captured` and `cold`, which most
 * requests have (a read of the list in its order finds a page of them at once). A healthy request has none of them,
 * and its reconciliation writes no row for the index.
 */
export const INDEXED_CLASSES: ReadonlySet<string> = new Set(CLASSES.filter((c) => c !== 'captured' && c !== 'cold'));

/**
 * A reconciled request's rows in the index of rare classes, as [class, within]: each indexed class it has tokens of, on
 * '*' (any handle's segment), on each handle that has them, and on each type of those handles — as summaryClasses
 * counts them (a class is above 0 for a type when it is for one of its handles). Migration 0019 writes the same.
 */
export function classMarks(s: RequestSummary): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const c in s.classes) if (s.classes[c]! > 0 && INDEXED_CLASSES.has(c)) out.push([c, '*']);
  if (out.length === 0) return out;
  const types = new Set<string>();
  for (const id in s.by_handle) {
    const classes = s.by_handle[id]!;
    for (const c in classes)
      if (classes[c]! > 0 && INDEXED_CLASSES.has(c)) {
        out.push([c, id]);
        const key = `${c}\n${handleTypeOf(id)}`;
        if (types.has(key)) continue;
        types.add(key);
        out.push([c, handleTypeOf(id)]);
      }
  }
  return out;
}
