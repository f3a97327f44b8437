import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import type { ScopeState } from '../../src/domain/reconcile/scopes';
import type { SimSnapshot } from '../../src/domain/simulator/cache';
import type { TestApp } from './app';

// Cache-scope states compared across copies of a database: restored from a snapshot, or replayed from the start.

const bundled = new ModelCatalog(loadCatalog());

/** A state as comparable data: its simulator's maps by key (their order changes nothing), its recent maps in order (it evicts by it). */
function comparable(s: ScopeState) {
  const snap: SimSnapshot = s.sim.snapshot();
  const byKey = (a: [string, unknown], b: [string, unknown]) => (a[0] < b[0] ? -1 : 1);
  return {
    sim: { ...snap, entries: [...snap.entries].sort(byKey), seen: [...snap.seen].sort(byKey) },
    seenSources: [...s.seenSources].sort(),
    lastRequestBySource: [...s.lastRequestBySource].sort(byKey),
    firstStart: s.firstStart,
    lastStart: s.lastStart,
    exactEnds: s.exactEnds.entries(),
    seenKeys: s.seenKeys.entries(),
    rewrittenBy: s.rewrittenBy.entries(),
    routeStarts: s.routeStarts.entries(),
  };
}

/** JSON with request ids numbered in the order given (two copies of a database mint their own for the same calls). */
export function numbered(value: unknown, ids: string[] = []): string {
  let text = JSON.stringify(value, null, 1);
  ids.forEach((id, i) => (text = text.replaceAll(id, `#${i}`)));
  return text;
}

/** Every scope's live state and history, loading them (by the bundled catalog unless given). */
export function scopeStates(t: TestApp, ids: string[] = [], catalog = bundled): string {
  const scopes = t.services.reconciler.scopes;
  const rows = t.sqlite.prepare("select distinct scope, catalog_entry from requests where status = 'reconciled' order by scope").all() as Array<{ scope: string; catalog_entry: string }>;
  return numbered(
    rows.map(({ scope, catalog_entry }) => {
      const model = catalog.byId(catalog_entry)!;
      const live = scopes.get(scope, model);
      // A start before everything the live state has seen, by more than any TTL: the history (when the live state has any start).
      const history = scopes.forStart(scope, model, -1e15);
      return { scope, live: comparable(live), history: history.history ? comparable(history.state) : null };
    }),
    ids,
  );
}

/** How many rows each scope's load replays from now on. */
export function countReplays(t: TestApp): Map<string, number> {
  const counts = new Map<string, number>();
  const replay = t.store.reconciledInScope.bind(t.store);
  t.store.reconciledInScope = function* (scope, after) {
    counts.set(scope, counts.get(scope) ?? 0);
    for (const row of replay(scope, after)) {
      counts.set(scope, counts.get(scope)! + 1);
      yield row;
    }
  };
  return counts;
}
