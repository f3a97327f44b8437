import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { summarizeOutcome } from '../../src/domain/reconcile/request-summary';
import { CLASSES } from '../../src/domain/reconcile/waterfall';
import { requestSummaryView } from '../../src/http/views';
import { parseRef } from '../../src/domain/ids';
import type { RequestRow } from '../../src/store/store';

// A listed request is shown from the summary stored at reconciliation, or (reconciled before summaries were kept)
// from its outcome: both must give the line the outcome always gave, to the order of its keys.

const IDS = ['art_', 'bnd_', 'ses_'].flatMap((p) => ['a', 'b'].map((c) => `${p}${c.repeat(21)}`));
const ref = fc.oneof(
  fc.tuple(fc.constantFrom(...IDS), fc.integer({ min: 1, max: 3 })).map(([id, v]) => `${id}@${v}`),
  // Not a ref: listed among the handles as it is, never a handle's segment.
  fc.constant('not-a-ref'),
);
const count = fc.oneof(fc.constant(0), fc.constant(0), fc.nat(5000));
const segment = fc.record({
  inline: fc.boolean(),
  path: fc.array(ref, { maxLength: 4 }),
  classes: fc.tuple(...CLASSES.map(() => count)).map((ns) => Object.fromEntries(CLASSES.map((c, i) => [c, ns[i]!]))),
});
const outcome = fc.record({
  capture: fc.constantFrom('reported' as const, 'unknown' as const),
  total_prompt_tokens: fc.option(fc.nat(100_000)),
  drift: fc.option(fc.record({ handle: fc.constantFrom(...IDS) })),
  segments: fc.array(segment, { maxLength: 12 }).map((segs) =>
    segs.map((s) => (s.inline ? { source: 'inline', path: [], classes: s.classes } : { source: s.path.at(-1) ?? 'art_x@1', path: s.path, classes: s.classes })),
  ),
});

/** The line as it was made from the outcome before summaries were kept (the code it replaced). */
function fromOutcome(o: { capture: string; total_prompt_tokens: number | null; drift: unknown; segments: Array<{ source: string; path: string[]; classes: Record<string, number> }> }, handleId?: string) {
  const handles = new Set<string>();
  for (const s of o.segments) for (const r of s.path) handles.add(parseRef(r)?.id ?? r);
  const classes: Record<string, number> = {};
  for (const s of o.segments) {
    if (s.source === 'inline' || (handleId !== undefined && !s.path.some((r) => parseRef(r)?.id === handleId))) continue;
    for (const [c, n] of Object.entries(s.classes)) if (n > 0) classes[c] = (classes[c] ?? 0) + n;
  }
  return { capture: o.capture, prompt_tokens: o.total_prompt_tokens, handles: [...handles], classes, drift: !!o.drift };
}

const row = (fields: Partial<RequestRow>) =>
  ({ id: 'req_1', status: 'reconciled', format: 'anthropic', model: 'm', renderedAt: 0, startedAt: 1, segments: null, usage: null, outcome: null, summary: null, ...fields }) as RequestRow;

describe('request summaries', () => {
  it('a stored summary lists a request as its outcome does: every handle, each handle alone, byte for byte', () => {
    fc.assert(
      fc.property(outcome, (o) => {
        const stored = JSON.parse(JSON.stringify(summarizeOutcome(o as never))) as unknown;
        for (const handleId of [undefined, ...IDS]) {
          const summarised = requestSummaryView(row({ summary: stored }), handleId);
          const old = requestSummaryView(row({ outcome: o }), handleId);
          expect(JSON.stringify(summarised)).toBe(JSON.stringify(old));
          const { capture, prompt_tokens, handles, classes, drift } = summarised;
          expect(JSON.stringify({ capture, prompt_tokens, handles, classes, drift })).toBe(JSON.stringify(fromOutcome(o, handleId)));
        }
      }),
    );
  });
});
