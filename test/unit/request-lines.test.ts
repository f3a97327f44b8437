// A listed request (GET /v1/requests, a handle page's recent requests) is read from what a list shows: a reconciled
// one from its summary, one not reconciled from its line, kept at render (the handles on its paths, whether it
// failed), never from its segments or the columns after them, megabytes on a long session. Whatever happened to it
// (failed, reconciled, both, in one group commit or several; recorded before lines or summaries were kept; its summary
// of another shape), its list line must be the one its whole row gives, and its place in the list (and in the index of
// rare classes) its report's start once reconciled.
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { summarizeOutcome } from '../../src/domain/reconcile/request-summary';
import { CLASSES } from '../../src/domain/reconcile/waterfall';
import { requestSummaryView } from '../../src/http/views';
import { openDb, type OpenedDb } from '../../src/store/db';
import { SqliteStore } from '../../src/store/sqlite-store';
import type { RequestRow, WriteOp } from '../../src/store/store';
import { FakeClock } from '../helpers/clock';

let db: OpenedDb;
let store: SqliteStore;
beforeEach(() => {
  db = openDb(':memory:');
  store = new SqliteStore(db.db, db.walSync, new FakeClock());
  db.sqlite.prepare("insert into tenants (id, name, created_at) values ('ten_1', 't', 0)").run();
});
afterEach(() => db.close());

const ref = fc.oneof(
  fc.tuple(fc.constantFrom('art_a', 'art_b', 'bnd_c', 'ses_d'), fc.integer({ min: 1, max: 3 })).map(([id, v]) => `${id}@${v}`),
  // Not a ref: listed among the handles as it is.
  fc.constant('inline'),
);
const request = fc.record({
  paths: fc.array(fc.array(ref, { maxLength: 3 }), { maxLength: 5 }),
  /** What happens to it after its render, in order: a failure (the proxy's; more than one is refused), its report. */
  fate: fc.array(fc.constantFrom('fail', 'reconcile'), { maxLength: 3 }).map((f) => f.filter((x, i) => x === 'fail' || f.indexOf(x) === i)),
  /** Recorded before lines were kept (0014): none. */
  noLine: fc.boolean(),
  /** Its summary of another shape than this code's, or none (reconciled before summaries were kept). */
  summary: fc.constantFrom('current', 'other', 'none'),
});

let seq = 0;
function ops(r: { paths: string[][]; fate: string[] }, id: string): WriteOp[] {
  const segments = r.paths.map((path, i) => ({ source: path.at(-1) ?? 'inline', path, section: 'messages', index: i }));
  const row = { id, tenantId: 'ten_1', scope: 's', format: 'anthropic', model: 'm', catalogEntry: 'm', catalogFallback: false, renderedAt: 1000, segments, breakpoints: [], promptCacheKey: null, prediction: null } as unknown as RequestRow;
  const out: WriteOp[] = [{ kind: 'request', row, inline: [] }];
  for (const f of r.fate) {
    const at = 2000 + ++seq;
    if (f === 'fail') out.push({ kind: 'failed', requestId: id, detail: { startedAt: at, finishedAt: at + 1, usageRaw: { status: 529 } } });
    else {
      const outcome = { capture: 'reported' as const, total_prompt_tokens: 40, drift: null, segments: segments.map((s) => ({ ...s, classes: Object.fromEntries(CLASSES.map((c, k) => [c, (k + s.index) % 3])) })) };
      const request = { id, tenantId: 'ten_1', status: 'reconciled' as const, startedAt: at, firstByteAt: at, finishedAt: at, reportHash: `h${at}`, usageRaw: {}, usage: { cache_read_tokens: 7, cache_write_tokens: 3 }, diagnostics: null, outcome, summary: summarizeOutcome(outcome as never), writePremium: null };
      out.push({ kind: 'ingest', write: { request, rollups: [], drift: [], calibration: null, markWriteRead: null } });
    }
  }
  return out;
}

describe("a listed request's line", () => {
  it('is the one its whole row gives, read without its segments (a line kept) or its outcome (a summary of this shape)', () => {
    fc.assert(
      fc.property(fc.array(request, { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 20 }), (requests, cuts) => {
        db.sqlite.exec('delete from request_summaries; delete from request_lines; delete from request_handles; delete from request_classes; delete from request_starts; delete from reconciliations; delete from requests');
        const ids = requests.map((_, i) => `req_${String(i).padStart(21, '0')}`);
        // Every op in order, cut into group commits anywhere (a render and its failure can land in one).
        const all = requests.flatMap((r, i) => ops(r, ids[i]!));
        const at = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
        [0, ...at, all.length].reduce((from, to) => (store.writeBatch(all.slice(from, to)), to));
        requests.forEach((r, i) => {
          if (r.noLine) db.sqlite.prepare('delete from request_lines where request_id = ?').run(ids[i]);
          const seqOf = `(select seq from reconciliations where request_id = '${ids[i]}')`;
          if (r.summary === 'none') db.sqlite.exec(`delete from request_summaries where seq = ${seqOf}`);
          if (r.summary === 'other') db.sqlite.exec(`update request_summaries set version = version + 1, summary = '{"shape":"another"}' where seq = ${seqOf}`);
        });

        const listed = store.listRequests({ tenantId: 'ten_1', limit: 500 }).rows;
        expect(listed.map((l) => l.id).sort()).toEqual([...ids].sort());
        // The index of rare classes (0019) places a request where the list does: a failure recorded after its report
        // moves neither, nor does a second failure (refused) move a failed one.
        const place = new Map(listed.map((l) => [l.id, l.listedAt]));
        for (const m of db.sqlite.prepare('select request_id as id, started_at as at from request_classes').all() as Array<{ id: string; at: number }>) expect(m.at, m.id).toBe(place.get(m.id));
        for (const l of listed) if (l.status !== 'rendered') expect(l.listedAt, l.id).toBe(store.getRequest(l.id)!.startedAt);
        for (const l of listed) {
          const r = requests[ids.indexOf(l.id)]!;
          const whole = store.getRequest(l.id)!;
          expect(JSON.stringify(requestSummaryView(l)), l.id).toBe(JSON.stringify(requestSummaryView(whole)));
          // What it was read from: segments only without a line, outcome only without a summary of this shape.
          const reconciled = whole.status === 'reconciled';
          expect([l.segments !== null, l.outcome !== null, l.summary !== null]).toEqual([!reconciled && r.noLine, reconciled && r.summary !== 'current', reconciled && r.summary === 'current']);
        }
      }),
    );
  });
});
