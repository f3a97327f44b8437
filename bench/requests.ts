// A rare class's page of GET /v1/requests on a long history: REQUESTS_HISTORY (50,000) calls rendered and reconciled
// through the domain, a system prompt read from the cache every 20 seconds, 10 of them drifting far apart (a time
// inline before it). Times, the median of SAMPLES:
//  (a) the page of drifts as the service lists it (`class=drift`: its index, one page holds all 10);
//  (b) the same drifts found by reading the list in its order, as the list did before 0019 (pages of at most 2,000
//      requests, LIST_SCAN_BUDGET, followed to the list's end): one page of the scan, and the whole walk;
//  (c) the in-process cost per report of building it (ingestMany, group commit included): run this file on the code
//      before and after, alternately, to compare (it uses no API the code before lacks).
import { join } from 'node:path';
import type { Clock } from '../src/domain/clock';
import { listedClassTokens } from '../src/domain/reconcile/request-summary';
import { LIST_SCAN_BUDGET } from '../src/domain/requests';
import type { RequestListCursor } from '../src/store/store';
import { fmt, median, printTable, tempDir, writeResults, type Benchmark } from './lib';
import { inProcess, prose } from './render';

const REQUESTS = Number(process.env.REQUESTS_HISTORY ?? 50_000);
const DRIFTS = 10;
const STEP = 20_000;
const CHUNK = 1000;
const SAMPLES = 20;

async function build(file: string) {
  let now = Date.UTC(2026, 10, 1);
  const clock: Clock = { now: () => now };
  const app = inProcess(file, { clock });
  const tid = app.tenantId;
  const sys = app.services.handles.mintArtifact(tid, { kind: 'system', name: 'support', content: prose(7, 8 * 1024) }).handle.id;
  const driftAt = new Set([...Array(DRIFTS).keys()].map((k) => Math.floor(((k + 0.5) * REQUESTS) / DRIFTS)));
  let ingestMs = 0;
  for (let done = 0; done < REQUESTS; ) {
    const chunk: Array<{ id: string; at: number; usage: object }> = [];
    for (let j = 0; j < CHUNK && done < REQUESTS; j++, done++) {
      const drift = driftAt.has(done);
      const system = drift ? `[{"type":"text","text":"Now: call ${done}"},{"type":"handle","ref":"${sys}"}]` : `[{"type":"handle","ref":"${sys}"}]`;
      const body = `{"model":"claude-sonnet-4-5","max_tokens":256,"system":${system},"messages":[{"role":"user","content":"Call ${done}: where is my order?"}]}`;
      const r = app.services.requests.render({ tenantId: tid, format: 'anthropic', bodyText: body, pointer: '/request' });
      const total = r.segments.at(-1)!.token_end;
      const cached = r.breakpoints.at(-1)?.token_end ?? 0;
      const [read, write] = done === 0 || drift ? [0, cached] : [cached, 0];
      chunk.push({ id: r.requestId, at: now, usage: { input_tokens: total - read - write, cache_creation_input_tokens: write, cache_read_input_tokens: read, output_tokens: 50 } });
      now += STEP;
    }
    const t0 = performance.now();
    const results = await app.services.reconciler.ingestMany(
      tid,
      chunk.map((c) => ({ request_id: c.id, usage: c.usage, started_at: c.at, first_byte_at: c.at + 500, finished_at: c.at + 1500 })),
    );
    ingestMs += performance.now() - t0;
    const bad = results.find((x) => !x.ok);
    if (bad) throw new Error(`a usage report was refused: ${JSON.stringify(bad)}`);
  }
  return { app, tid, ingestUs: (ingestMs * 1000) / REQUESTS, now };
}

function timed(f: () => unknown): number {
  const a = performance.now();
  f();
  return performance.now() - a;
}

export const requestsBenchmarks: Benchmark[] = [
  {
    name: 'requests',
    async run() {
      const file = join(tempDir('requests'), 'db.sqlite');
      const t0 = performance.now();
      const { app, tid, ingestUs } = await build(file);
      const seconds = (performance.now() - t0) / 1000;
      const store = (app.services.requests as unknown as { deps: { store: import('../src/store/store').Store } }).deps.store;
      const page = () => app.services.requests.list(tid, { tokenClass: 'drift', limit: 50 });
      // The list read in its order, keeping the drifts, LIST_SCAN_BUDGET rows a page (the list before 0019).
      const scanPage = (before?: RequestListCursor) => {
        const rows = [];
        let next = before;
        let scanned = 0;
        while (scanned < LIST_SCAN_BUDGET) {
          const got = store.listRequests({ tenantId: tid, before: next, limit: Math.min(500, LIST_SCAN_BUDGET - scanned) });
          scanned += got.rows.length;
          rows.push(...got.rows.filter((r) => listedClassTokens(r, 'drift') > 0));
          next = got.next ?? undefined;
          if (!got.next) return { rows, next: null };
        }
        return { rows, next };
      };
      const walk = () => {
        let found = 0;
        let pages = 0;
        for (let at: RequestListCursor | undefined | null = undefined; at !== null; pages++) {
          const p = scanPage(at);
          found += p.rows.length;
          at = p.next;
        }
        return { found, pages };
      };
      const listed = page();
      const walked = walk();
      const samples = { index: [] as number[], scanPage: [] as number[], walk: [] as number[] };
      for (let i = 0; i < SAMPLES; i++) {
        samples.index.push(timed(page));
        samples.scanPage.push(timed(() => scanPage()));
        samples.walk.push(timed(walk));
      }
      const result = {
        requests: REQUESTS,
        drifts: DRIFTS,
        buildSeconds: seconds,
        ingestUsPerReport: ingestUs,
        indexPage: { ms: median(samples.index), rows: listed.rows.length, scanned: listed.scanned ?? null },
        scanOnePage: { ms: median(samples.scanPage), read: LIST_SCAN_BUDGET },
        scanWalk: { ms: median(samples.walk), pages: walked.pages, found: walked.found },
      };
      printTable(
        ['what', 'median', ''],
        [
          ['ingest (in-process, per report)', `${ingestUs.toFixed(1)} µs`, `${REQUESTS} reports, built in ${seconds.toFixed(0)} s`],
          ['class=drift page (as listed)', fmt.ms(result.indexPage.ms), `${listed.rows.length} rows${listed.scanned === undefined ? ', from the index' : `, ${listed.scanned} read`}`],
          ['scan: one page of 2,000', fmt.ms(result.scanOnePage.ms), ''],
          ['scan: every page to the end', fmt.ms(result.scanWalk.ms), `${walked.pages} pages, ${walked.found} found`],
        ],
      );
      console.log(`results: ${writeResults('requests', result)}`);
      app.close();
    },
  },
];
