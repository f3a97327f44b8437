import { seg } from '../api';
import { API_HELP, API_OPTIONS, moreLine, UsageError, type Command } from '../command';
import { printable, table, tokens } from '../table';
import { driftDetail, setRange, type DriftFinding } from './report';
import { shownRuns, sumClasses, SESSION_BATCHES_SHOWN } from '../../domain/session-runs';
import { concurrentCost, driftAdvice, expiredUnderMinimum, keepLongerText, lifetimeName, requestWhys, type WhyInput } from '../../domain/reconcile/explain';
import { CLASSES } from '../../domain/reconcile/waterfall';
import { HANDLE_TYPES } from '../../domain/ids';

interface Segment {
  source: string;
  path: string[];
  section: string;
  token_start: number;
  token_end: number;
}

interface SegmentOutcome {
  start: number;
  end: number;
  read: number | null;
  write: number | null;
  classes: Record<string, number>;
}

interface Usage {
  total_prompt_tokens: number | null;
  cache_read_tokens: number | null;
  cache_write_tokens: number | null;
  uncached_tokens: number | null;
  output_tokens: number | null;
  cache_fields_reported: boolean;
  complete: boolean;
}

interface Outcome {
  capture: 'reported' | 'unknown';
  predicted: { read: number; write: number };
  provider: { read: number | null; write: number | null };
  segments: SegmentOutcome[];
  drift: (Omit<DriftFinding, 'request_id' | 'previous_request_id' | 'at'> & { previous_request: string }) | null;
  expired?: { last_used_at: number; gap_ms: number; ttl: string };
  concurrent?: { writer: string; writer_started_at: number; readable_at: number };
  applied_late?: { started_at: number; applied_at: number };
  total_mismatch?: { estimated: number; reported: number };
  provider_history?: { field: string; tokens: number; read: number | null };
  first_in_scope?: true;
  overflow?: { prompt_cache_key: string | null; starts: number };
}

/** GET /v1/requests/{id}: the fields this command shows. */
interface RequestView {
  id: string;
  status: 'rendered' | 'reconciled' | 'failed';
  format: string;
  model: string;
  catalog_entry: string;
  catalog_fallback: boolean;
  started_at: string | null;
  first_byte_at: string | null;
  finished_at: string | null;
  segments: Segment[];
  breakpoints: Array<{ segment: number }>;
  outcome: Outcome | null;
  usage: Usage | null;
  error: { status: number | null; body: unknown } | null;
  /** The provider's own miss explanation (Anthropic `diagnostics`, OpenAI `prompt_cache_diagnostics`). */
  diagnostics: { provider: string; raw: unknown; cache_miss_reason?: string } | null;
}

export const request: Command = {
  name: 'request',
  summary: 'one recorded request: its segments by class, usage, and why tokens missed the cache',
  help: `Usage: prefix-handles request <request-id> [--json]

Shows one request the service recorded (the req_… id a render answers with, and the
proxy's x-ph-request-id header): its status and times, the provider's usage, each
segment of the prompt in order (numbered from #1, as on the dashboard) with its tokens
by class (a session's batches before its newest 50 summed in one row, as there too),
and what explains a miss: the drift that broke the cached prefix (where the
bytes first changed), an expired prefix (how long unused, against its lifetime), a
provider total far from the estimate, a failed call's error, and the provider's own
explanation when its answer carried one. Every other class its tokens are in (cold,
concurrent, below_minimum, no_breakpoint, lookback, unconfirmed, unknown, bonus) gets
a line: its tokens and segments, what it means (the dashboard legend's words) and the
request's own figures (the model's minimum or cache step and the prefix's tokens, the
predicted read against the provider's, the breakpoints it marks).

Options:
  --json            the API's JSON (GET /v1/requests/{id}) instead
${API_HELP}`,
  options: { ...API_OPTIONS, json: { type: 'boolean' } },
  positionals: [1, 1],
  async run({ values, positionals, api }) {
    const id = positionals[0]!;
    if (!id.startsWith('req_')) throw new UsageError(`'${id}' is not a request id (req_…); a handle's figures are in 'prefix-handles report ${id}'`);
    const client = api();
    const body = await client.json<RequestView>('GET', `/v1/requests/${seg(id)}`);
    if (values.json) {
      process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
      return 0;
    }
    // The model's cache rules (its minimum, steps, lookback, lifetimes) explain below_minimum, lookback and an
    // expired prefix (its lifetime's length, and whether it was under the minimum anyway): read only for those.
    const ruled = body.outcome?.expired !== undefined || body.outcome?.concurrent !== undefined || body.outcome?.segments.some((s) => (s.classes.below_minimum ?? 0) > 0 || (s.classes.lookback ?? 0) > 0);
    const entry = ruled ? (await client.json<{ models: Entry[] }>('GET', '/v1/models')).models.find((m) => m.id === body.catalog_entry) : undefined;
    process.stdout.write(`${requestText(body, entry)}\n`);
    return 0;
  },
};

const count = (n: number | null) => (n === null ? 'unknown' : tokens(n));

/** A catalog entry as `GET /v1/models` lists it: the rules the notes explain, and its lifetimes. */
type Entry = NonNullable<WhyInput['entry']> & { cache: { ttls?: Array<{ name: string; seconds: number }>; refreshOnHit?: boolean; writesBilled?: boolean } };

function requestText(r: RequestView, entry: Entry | undefined): string {
  const model = r.catalog_fallback ? `${r.model} (unknown to the catalog: priced as ${r.catalog_entry})` : r.model;
  const times = [['started', r.started_at], ['first byte', r.first_byte_at], ['finished', r.finished_at]].filter(([, v]) => v).map(([k, v]) => `${k} ${v}`);
  const parts = [printable(`request ${r.id}  ${r.status}  ${r.format}  ${model}`) + (times.length ? `\n${times.join('   ')}` : '')];
  if (r.error) parts.push(`error: the call failed${r.error.status === null ? ' (the provider was not reached, or did not answer in time)' : ` with status ${r.error.status}`}: ${printable(JSON.stringify(r.error.body))}`);
  const o = r.outcome;
  const u = r.usage;
  if (!o || !u) {
    if (r.status === 'rendered') parts.push('not reconciled yet: no usage has been reported for it');
  } else {
    const capture =
      o.capture === 'unknown'
        ? `capture unknown: ${u.complete ? 'the provider reported no cache fields' : 'the answer ended before its usage'} (counted apart, never as a miss)`
        : `provider read ${count(u.cache_read_tokens)}, wrote ${count(u.cache_write_tokens)} (predicted read ${tokens(o.predicted.read)}, write ${tokens(o.predicted.write)})`;
    parts.push(`prompt tokens ${count(u.total_prompt_tokens)}, uncached ${count(u.uncached_tokens)}, output ${count(u.output_tokens)}\n${capture}`);
  }
  parts.push(segmentsTable(r));
  if (o) parts.push(...notes(o, o.applied_late?.applied_at ?? (r.started_at ? Date.parse(r.started_at) : null), entry?.cache.ttls, entry?.cache.writesBilled));
  // An expired prefix under the model's minimum: keeping it alive would not have had it read.
  const under = o?.expired ? expiredUnderMinimum({ entry, segments: o.segments }) : null;
  if (under) parts.push(printable(`expired, but ${under}`));
  // Otherwise how this provider keeps a prefix longer, as the dashboard's request page says.
  else if (o?.expired && entry) parts.push(printable(`to keep it: ${keepLongerText(entry.provider, o.expired.ttl, entry.cache.refreshOnHit ?? true)}`));
  // Every other class's why, in the legend's words, with this request's figures.
  if (o && u)
    parts.push(
      ...requestWhys({ entry, segments: o.segments.map((x, i) => ({ ...x, section: r.segments[i]?.section })), breakpoints: r.breakpoints, predicted_read: o.predicted.read, predicted_write: o.predicted.write, provider_read: o.capture === 'unknown' ? null : o.provider.read, provider_write: o.provider.write, complete: u.complete, first_in_scope: o.first_in_scope, overflow: o.overflow }).map(printable),
    );
  // Evidence beside our own cause: what the provider said about its miss, as it said it.
  if (r.diagnostics) parts.push(printable(`the provider's own explanation${r.diagnostics.cache_miss_reason ? `: ${r.diagnostics.cache_miss_reason}` : ''} (${JSON.stringify(r.diagnostics.raw)})`));
  return parts.join('\n\n');
}

/** The prompt in order: each segment's handle path and, once reconciled, its tokens by class. */
function segmentsTable(r: RequestView): string {
  const classesText = (classes: Record<string, number>) =>
    Object.entries(classes)
      .filter(([, n]) => n > 0)
      .map(([c, n]) => `${c} ${tokens(n)}`)
      .join(', ');
  const runs = shownRuns(r.segments.map((s) => s.source));
  const rows = runs.map(([from, to]) => {
    const s = r.segments[from]!;
    const outs = r.outcome?.segments.slice(from, to + 1);
    const length = outs?.length ? outs.at(-1)!.end - outs[0]!.start : r.segments[to]!.token_end - s.token_start;
    const classes = outs?.length ? classesText(sumClasses(outs.map((o) => o.classes))) : '';
    if (from < to) return [`#${from + 1}–#${to + 1}`, `${s.source} … ${r.segments[to]!.source} (${tokens(to - from + 1)} earlier batches of the session, summed)`, s.section, tokens(length), classes];
    const via = s.path.length > 1 ? ` (via ${s.path.slice(0, -1).join(' → ')})` : '';
    return [`#${from + 1}`, `${s.source}${via}`, s.section, tokens(length), classes];
  });
  const list = table(['#', 'segment', 'section', 'tokens', r.status === 'rendered' ? 'classes (once reconciled)' : 'classes'], rows, ['left', 'left', 'left', 'right', 'left']);
  const folded = runs.filter(([from, to]) => from < to).reduce((n, [from, to]) => n + to - from + 1, 0);
  return folded
    ? `${list}\n${tokens(folded)} of the ${tokens(r.segments.length)} segments are a session's batches before its newest ${SESSION_BATCHES_SHOWN}, summed in one row (--json lists each)`
    : list;
}

/** What explains this request's misses, as the outcome records it. */
function notes(o: Outcome, startedAt: number | null, ttls: Entry['cache']['ttls'], writesBilled: boolean | undefined): string[] {
  const out: string[] = [];
  if (o.drift) {
    const d = o.drift;
    const advice = driftAdvice(d);
    out.push([`drift: the prefix ${d.previous_request} had written was not read from ${d.handle} on`, ...driftDetail(d).map((l) => `  ${l}`), ...(advice ? [`  to be read: ${advice}`] : [])].map(printable).join('\n'));
  }
  if (o.expired) {
    const e = o.expired;
    out.push(`expired: the prefix was last used ${duration(e.gap_ms)} before this call (${new Date(e.last_used_at).toISOString()}), longer than its cache lifetime of ${lifetimeName(e.ttl, ttls)}`);
  }
  if (o.concurrent && startedAt !== null) {
    const c = o.concurrent;
    out.push(
      `concurrent: ${c.writer} wrote the prefix, started ${ms(startedAt - c.writer_started_at)} before this call; its write was readable only ${ms(c.readable_at - startedAt)} after this call started, ${concurrentCost(writesBilled)} (send one call first, the rest once it answers)`,
    );
  }
  if (o.applied_late) out.push(`applied late: started ${new Date(o.applied_late.started_at).toISOString()}, after a later call of its model had been reconciled, so classed as of ${new Date(o.applied_late.applied_at).toISOString()}`);
  if (o.total_mismatch) out.push(`total mismatch: the provider counted ${tokens(o.total_mismatch.reported)} prompt tokens where ${tokens(o.total_mismatch.estimated)} were rendered: likely not the request rendered (another request's id, a body changed after rendering); left out of calibration`);
  if (o.provider_history) out.push(`provider history: ${tokens(o.provider_history.tokens)} tokens ${o.provider_history.field === 'cachedContent' ? "of Gemini's explicit cache" : 'of the conversation OpenAI keeps'} (${o.provider_history.field}), read ${count(o.provider_history.read)}, on no segment`);
  return out;
}

/** A parallel call's lead, to the millisecond under a second. */
const ms = (x: number): string => (x < 1000 ? `${Math.round(x)} ms` : x < 60_000 ? `${(x / 1000).toFixed(1)} s` : duration(x));

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** A line of GET /v1/requests. */
interface RequestLine {
  id: string;
  status: string;
  model: string;
  rendered_at: string;
  started_at: string | null;
  capture: 'reported' | 'unknown' | null;
  cache_read_tokens: number | null;
  cache_write_tokens: number | null;
  classes: Record<string, number>;
  drift: boolean;
  prompt_tokens: number | null;
  /** With --class: its tokens of that class. */
  class_tokens?: number;
}

export const requests: Command = {
  name: 'requests',
  summary: 'recorded requests, newest start first (of a handle with --handle), to pick one to open',
  help: `Usage: prefix-handles requests [--handle ID | --type T | --no-handle] [--class C] [--model M] [--from T] [--to T] [--limit N] [--cursor C] [--json | --csv [--bom]]

Lists the recorded requests, newest first by when the call started (an imported call's
start is its log line's; a call not reported yet, its render time), a page at a time:
when each was rendered and started, its id (what 'prefix-handles request <id>' opens), status, model, the provider's cache
read and write, the handle tokens by class (with --handle, that handle's), and whether
a drift was found. The way from a leak in a report to the requests that had it.

Options:
  --handle ID       only the requests that referenced this handle (a bundle's include
                    those of sessions based on it)
  --class C         only reconciled requests with tokens of this class (${CLASSES.join(', ')}):
                    on the handle's segments with --handle, else on any handle's; the
                    requests behind a report's 'drift 40,000 in 12 requests'. A page reads
                    at most 2,000 requests of the list: one that stops there says so
                    and may be short, its cursor going on from where it stopped
  --type T          with --class: the class's tokens on the segments of handles of type T
                    (artifact, bundle, session) instead, added up: '--type session' lists
                    the requests behind the sessions row's figures (report --by-type)
  --no-handle       only the calls a report counts under 'no handle': reconciled, their
                    whole prompt inline, no handle named (what to mint a handle for); its
                    prompt tokens shown; not with --handle, --type or --class
  --model M         only requests sent to this model (its name as sent), read as --class is
  --from T, --to T  only those whose call started on these days (the tenant's time zone's,
                    UTC unless set), both included: RFC 3339, YYYY-MM-DD or epoch ms, as report takes
                    them and counts a request (an imported call on its log line's day)
  --limit N         requests per page, 1 to 500 (50 by default)
  --cursor C        the next page: the cursor the line under the previous page names
  --json            the API's JSON (GET /v1/requests) instead
  --csv             the page as the API's CSV export (?format=csv); the next page's
                    cursor on stderr ('more: --cursor …')
  --bom             with --csv: start it with a UTF-8 byte-order mark (?bom=true), so
                    Excel opens non-ASCII names as written
${API_HELP}`,
  options: { ...API_OPTIONS, handle: { type: 'string' }, class: { type: 'string' }, type: { type: 'string' }, 'no-handle': { type: 'boolean' }, model: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' }, json: { type: 'boolean' }, csv: { type: 'boolean' }, bom: { type: 'boolean' } },
  positionals: [0, 0],
  async run({ values, api }) {
    const q = new URLSearchParams();
    if (values.handle !== undefined) q.set('handle', String(values.handle).replace(/@\d+$/, ''));
    await setRange(q, values);
    if (values.limit !== undefined) {
      const n = String(values.limit);
      if (!/^[1-9]\d{0,2}$/.test(n) || Number(n) > 500) throw new UsageError(`--limit: a whole number of requests from 1 to 500 is expected, not '${n}'`);
      q.set('limit', n);
    }
    if (values.class !== undefined) {
      const cls = String(values.class);
      if (!(CLASSES as readonly string[]).includes(cls)) throw new UsageError(`--class: one of ${CLASSES.join(', ')} is expected, not '${cls}'`);
      q.set('class', cls);
    }
    if (values.type !== undefined) {
      const type = String(values.type);
      if (!(HANDLE_TYPES as readonly string[]).includes(type)) throw new UsageError(`--type: one of ${HANDLE_TYPES.join(', ')} is expected, not '${type}'`);
      if (values.handle !== undefined) throw new UsageError('--type or --handle: a handle is of one type already');
      if (values.class === undefined) throw new UsageError('--type needs --class: it lists the requests with tokens of that class on handles of the type');
      q.set('type', type);
    }
    if (values['no-handle']) {
      const other = ['handle', 'type', 'class'].find((k) => values[k] !== undefined);
      if (other) throw new UsageError(`--no-handle lists the calls that named no handle, so not with --${other}`);
      q.set('no_handle', 'true');
    }
    if (values.model !== undefined) q.set('model', String(values.model));
    if (values.cursor !== undefined) q.set('cursor', String(values.cursor));
    // The next page is the same list's: the handle, range, filters and page size go with its cursor.
    const next = (cursor: string) => moreLine(cursor, values, ['handle', 'type', 'no-handle', 'class', 'model', 'from', 'to', 'limit', 'url']);
    if (values.csv && values.json) throw new UsageError('--csv or --json: one output at a time');
    if (values.bom && !values.csv) throw new UsageError('--bom is for --csv (a byte-order mark at the start of the CSV)');
    if (values.csv) {
      q.set('format', 'csv');
      if (values.bom) q.set('bom', 'true');
      const page = await api().csv(`/v1/requests?${q}`);
      process.stdout.write(page.bytes);
      // stdout stays the CSV: the way on is said beside it.
      if (page.nextCursor) process.stderr.write(`${next(page.nextCursor)} --csv${values.bom ? ' --bom' : ''}\n`);
      return 0;
    }
    const body = await api().json<{ requests: RequestLine[]; next_cursor: string | null; scanned?: number; scan_budget_spent?: boolean }>('GET', `/v1/requests${q.size ? `?${q}` : ''}`);
    if (values.json) {
      process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
      return 0;
    }
    const noHandle = q.has('no_handle');
    const rows = body.requests.map((r) => [
      r.rendered_at,
      // An imported call is rendered at the import; its start is when it happened (what the reports count by).
      r.started_at ?? '—',
      `${r.id}${r.drift ? ' drift' : ''}`,
      r.status === 'reconciled' && r.capture === 'unknown' ? 'reconciled, capture unknown' : r.status,
      r.model,
      r.status === 'reconciled' ? `${count(r.cache_read_tokens)} / ${count(r.cache_write_tokens)}` : '—',
      // A call through no handle has no handle's tokens: its prompt's are shown.
      noHandle
        ? count(r.prompt_tokens)
        : Object.entries(r.classes)
            .sort(([, a], [, b]) => b - a)
            .map(([c, n]) => `${c} ${tokens(n)}`)
            .join(', '),
    ]);
    const type = q.get('type');
    const last = noHandle ? 'prompt tokens' : values.handle !== undefined ? "the handle's tokens by class" : type ? `the ${type}s' tokens by class` : 'handle tokens by class';
    const list = rows.length
      ? table(['rendered', 'started', 'request', 'status', 'model', 'read / written', last], rows, ['left', 'left', 'left', 'left', 'left', 'right', noHandle ? 'right' : 'left'])
      : (body.scan_budget_spent ? 'no requests on this page' : 'no requests recorded') +
        (values.handle !== undefined ? ' that referenced this handle' : '') +
        (noHandle ? ' through no handle' : '') +
        (q.has('class') ? ` with ${q.get('class')}${values.handle !== undefined ? ' on it' : type ? ` on ${type}s` : ''}` : '') +
        (q.has('model') ? ` sent to ${printable(q.get('model')!)}` : '') +
        (q.has('from') || q.has('to') ? ' that started in this range' : '');
    // A filtered page that stopped at the API's scan budget: the rest is after its cursor, however short it is.
    const cut = body.scan_budget_spent && body.next_cursor ? `\n\nthis page read ${tokens(body.scanned ?? 0)} requests of the list (the most one page reads) and stopped there` : '';
    const more = body.next_cursor ? `\n\n${next(body.next_cursor)}` : '';
    process.stdout.write(`${list}${cut}${more}\n`);
    return 0;
  },
};
