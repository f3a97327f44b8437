// How a request's segments are listed to a person (the dashboard's request page, the CLI's `request`): a long
// session's request has a segment per batch, and a 2,000-turn session's would be 2,000 rows.
import { parseRef } from './ids';

/** A session's newest batches shown one by one; its earlier ones in the same prompt are summed into one entry. */
export const SESSION_BATCHES_SHOWN = 50;

/**
 * The segments as shown, as index ranges: each its own, except a session's batches before its newest
 * SESSION_BATCHES_SHOWN in a run of them, one range.
 */
export function shownRuns(sources: string[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < sources.length; ) {
    const session = sessionOf(sources[i]!);
    let end = i;
    while (session && end + 1 < sources.length && sessionOf(sources[end + 1]!) === session) end++;
    const summed = end - i + 1 - SESSION_BATCHES_SHOWN;
    if (summed > 1) {
      out.push([i, i + summed - 1]);
      i += summed;
    }
    for (; i <= end; i++) out.push([i, i]);
  }
  return out;
}

const sessionOf = (source: string) => (source.startsWith('ses_') ? parseRef(source)?.id : undefined);

/** Tokens by class of the segments summed into one entry. */
export function sumClasses(list: Array<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const classes of list) for (const [c, n] of Object.entries(classes)) out[c] = (out[c] ?? 0) + n;
  return out;
}
