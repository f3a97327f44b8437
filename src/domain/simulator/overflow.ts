// OpenAI's cache routing past its rate: "If requests for the same prefix and prompt_cache_key combination exceed a
// certain rate (approximately 15 requests per minute), some may overflow and get routed to additional machines,
// reducing cache effectiveness" (https://platform.openai.com/docs/guides/prompt-caching, "How it works"). A request is
// routed by a hash of its prompt's first ~256 tokens with its prompt_cache_key. The provider simulator spreads such a
// burst over more machines, each with its own cache; the reconciler tells an `unconfirmed` read of such a burst so.

import type { SimBlock } from './cache';

/** Starts a minute of one prefix and prompt_cache_key one machine serves (OpenAI's "approximately 15"). */
export const OVERFLOW_RATE = 15;
export const OVERFLOW_WINDOW_MS = 60_000;
/** The leading tokens OpenAI routes by ("typically the first 256 tokens"). */
export const ROUTING_PREFIX_TOKENS = 256;

/** The prefix a prompt is routed by: the key of its shortest block prefix that reaches 256 tokens (else all of it). */
export function routingPrefix(blocks: readonly SimBlock[]): string {
  return (blocks.find((b) => b.endToken >= ROUTING_PREFIX_TOKENS) ?? blocks.at(-1))?.key ?? '';
}

/** A route's key: the prompt_cache_key (or none) and the leading prefix. */
export function routeKey(promptCacheKey: string | null, blocks: readonly SimBlock[]): string {
  return JSON.stringify([promptCacheKey, routingPrefix(blocks)]);
}

/**
 * Request starts per route, kept a window back (two, for reports that arrive out of order), and how many calls each
 * route has had while kept; the least recent routes dropped past `maxRoutes`.
 */
export class StartWindow {
  private readonly routes = new Map<string, { starts: number[]; sent: number }>();

  constructor(
    private readonly windowMs = OVERFLOW_WINDOW_MS,
    private readonly maxRoutes = 10_000,
  ) {}

  /** Every route kept, least recent first: its starts (ascending) and its `sent` count (a scope snapshot stores them). */
  entries(): Array<[route: string, starts: number[], sent: number]> {
    return [...this.routes].map(([route, r]) => [route, [...r.starts], r.sent]);
  }

  /** Routes as entries() gave them, set in that order (the least recent dropped past `maxRoutes`, as they were). */
  load(entries: Iterable<[route: string, starts: number[], sent: number]>): void {
    for (const [route, starts, sent] of entries) {
      this.routes.delete(route);
      this.routes.set(route, { starts: [...starts], sent });
      if (this.routes.size > this.maxRoutes) this.routes.delete(this.routes.keys().next().value!);
    }
  }

  /** Records a start of `route` at `t`: how many of its starts, this one included, fall in the window up to t, (t − window, t]. */
  add(route: string, t: number): number {
    return this.record(route, t).starts;
  }

  /** The same, with `sent`: the route's calls recorded before this one (since it was last dropped). */
  record(route: string, t: number): { starts: number; sent: number } {
    const kept = this.routes.get(route) ?? { starts: [], sent: 0 };
    this.routes.delete(route);
    this.routes.set(route, kept);
    if (this.routes.size > this.maxRoutes) this.routes.delete(this.routes.keys().next().value!);
    const list = kept.starts;
    let i = list.length;
    while (i > 0 && list[i - 1]! > t) i--;
    list.splice(i, 0, t);
    // Counted before the oldest are dropped: a start reported more than two windows late still counts itself.
    const starts = list.filter((s) => s > t - this.windowMs && s <= t).length;
    const latest = list.at(-1)!;
    let old = 0;
    while (list[old]! <= latest - 2 * this.windowMs) old++;
    if (old) list.splice(0, old);
    return { starts, sent: kept.sent++ };
  }
}

/**
 * Which machine serves a request of a route whose starts in the window, this one included, are `rate`: the first while
 * the rate is at most `threshold`; past it, round-robin over ceil(rate / threshold) machines by the route's `sent`
 * count (its requests before this one). null threshold: no overflow.
 */
export function machineOf(rate: number, sent: number, threshold: number | null): number {
  if (threshold === null || rate <= threshold) return 0;
  return sent % Math.ceil(rate / threshold);
}
