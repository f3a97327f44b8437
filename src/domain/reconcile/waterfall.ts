import type { MissReason } from '../simulator/cache';
import { overlap } from './attribution';

/** Where a token ended up: captured, above prediction, or the first gate it failed. */
export const LEAKS = ['cold', 'drift', 'expired', 'concurrent', 'below_minimum', 'no_breakpoint', 'lookback'] as const;
export type Leak = (typeof LEAKS)[number];
export const CLASSES = ['captured', 'bonus', 'unconfirmed', 'unknown', ...LEAKS] as const;
export type TokenClass = (typeof CLASSES)[number];
export type ClassCounts = Record<TokenClass, number>;

/** Token classes a rollup counts, each as tokens and as requests that had any. */
// `reported_opportunity`: opportunity in requests whose provider reported cache fields — the
// denominator of the capture rate, so a request with unknown capture is never a 0% hit.
export const ROLLUP_CLASSES = ['referenced', 'opportunity', 'reported_opportunity', 'predicted', ...CLASSES] as const;
/**
 * The classes leaked money divides into: the tokens a perfect cache would have read and the provider did not. Cold
 * tokens are not among them (perfect capture pays a first send as the call did, written or not), nor unknown ones (priced apart).
 */
export const MONEY_LEAKS = ['drift', 'expired', 'concurrent', 'below_minimum', 'no_breakpoint', 'lookback', 'unconfirmed'] as const;
export type MoneyLeak = (typeof MONEY_LEAKS)[number];
/** A leak class's money column on a rollup row. */
export const leakedColumn = (c: MoneyLeak) => `leaked_${c}` as const;
// Money of requests with unknown capture is kept apart (`cost_unknown`, at full price) rather than
// counted as leaked.
export const ROLLUP_MONEY = ['cost_actual', 'cost_no_cache', 'cost_perfect', 'cost_unknown', 'write_premium_paid', 'write_premium_read'] as const;
/** Leaked money by class (migration 0018 added them after the columns before: they close the row). */
export const ROLLUP_LEAKED = MONEY_LEAKS.map(leakedColumn);
/**
 * The rollup rows of requests that referenced no handle (their whole prompt the caller's inline content), beside the
 * tenant's handle totals ('*'): on no handle's report and not in those totals, but counted, so the tenant sees what
 * went through no handle. No handle id takes this form.
 */
export const NO_HANDLE = '-';
/** A class's "requests that had any" column. */
export const requestsColumn = (c: string) => `req_${c}`;
/**
 * Every value column of a rollup row, in the table's order. `requests` counts a request once per handle, on the row of
 * the newest version it used; `requests_including` on every version's row it had content of (a session's version k
 * holds batch k, and version 1 its base too, which every later turn sends again).
 */
export const ROLLUP_VALUE_COLUMNS = ['requests', ...ROLLUP_CLASSES.flatMap((c) => [c, requestsColumn(c)]), ...ROLLUP_MONEY, 'requests_including', ...ROLLUP_LEAKED];

export const emptyCounts = (): ClassCounts => Object.fromEntries(CLASSES.map((c) => [c, 0])) as ClassCounts;

export interface BlockSpan {
  start: number;
  end: number;
  /** Tokens of the block the simulation predicts as read (from its start). */
  predicted: number;
  reason: MissReason | null;
  /** The same prefix through this block was referenced earlier in the scope (content sent inline, then from a session). */
  seen?: boolean;
}

export interface SegmentInput {
  start: number;
  end: number;
  blocks: BlockSpan[];
  /** Whether the segment's content was referenced earlier in the scope (else its misses are cold). */
  seenBefore: boolean;
}

/**
 * Classifies every token of a segment. `read` is the provider's confirmed
 * read count (null when it did not report cache fields). Tokens read and
 * predicted are captured; read but not predicted, bonus; predicted but not
 * read, unconfirmed (or unknown without a report); the rest fail a gate.
 */
export function classifySegment(seg: SegmentInput, predictedPrefix: number, read: number | null): ClassCounts {
  const out = emptyCounts();
  const { start, end } = seg;
  if (read === null) {
    out.unknown = overlap(start, end, 0, predictedPrefix);
  } else {
    out.captured = overlap(start, end, 0, Math.min(read, predictedPrefix));
    out.bonus = overlap(start, end, predictedPrefix, read);
    out.unconfirmed = overlap(start, end, read, predictedPrefix);
  }
  const explained = read === null ? predictedPrefix : Math.max(read, predictedPrefix);
  for (const b of seg.blocks) {
    const rest = overlap(b.start, b.end, explained, Infinity);
    if (rest === 0) continue;
    out[leakOf(b.reason, seg.seenBefore || b.seen === true)] += rest;
  }
  return out;
}

/** The simulator's miss reason as a waterfall leak; an unseen prefix is cold or drift by whether the content recurred. */
function leakOf(reason: MissReason | null, seenBefore: boolean): Leak {
  if (!seenBefore) return 'cold';
  switch (reason) {
    case 'not_seen':
    case null:
      return 'drift';
    case 'granularity':
      // The tail past the provider's last hit increment: below the next cacheable length.
      return 'below_minimum';
    default:
      return reason;
  }
}

/**
 * A segment's leaked money (what it cost past perfect capture) by class. Every token the provider did not read costs
 * the same in a segment (its unread tokens' average price: writes at their TTL's rate, the rest at the input price),
 * and perfect capture would have read each one that was not cold: so each leak class's share is its tokens' share of
 * the segment's unread tokens that were not cold. The shares sum to `actual - perfect`; a call without cache fields
 * leaks nothing here (its cost is counted apart).
 */
export function leakedByClass(classes: ClassCounts, cost: { actual: number; perfect: number }, reported: boolean): Record<MoneyLeak, number> | null {
  if (!reported) return null;
  let missed = 0;
  for (const c of MONEY_LEAKS) missed += classes[c];
  const leaked = cost.actual - cost.perfect;
  if (missed === 0 || !(leaked > 0)) return null;
  const out = {} as Record<MoneyLeak, number>;
  for (const c of MONEY_LEAKS) out[c] = (leaked * classes[c]) / missed;
  return out;
}
