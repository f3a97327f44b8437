// The name a misspelt one is nearest to: a query parameter (src/http/query-params.ts), a CLI command or option.

/** The known name a misspelt one is nearest to, if any is near: case aside, one edit for short names, two past 5 letters. */
export function nearest(name: string, names: readonly string[]): string | undefined {
  const given = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = given.length > 5 ? 3 : 2;
  for (const n of names) {
    if (Math.abs(given.length - n.length) >= bestDistance) continue;
    const d = editDistance(given, n.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [n, d];
  }
  return best;
}

/** Optimal string alignment: insertions, deletions, substitutions and swaps of two neighbours (`form` → `from` is one). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  return d[a.length]![b.length]!;
}
