import { seg } from '../api';
import { earlierReasoningAdvice, earlierReasoningDropped, REASONING_CONTEXT_RULE, reasoningContextChanged } from '../../domain/thinking';
import { DAY_MS, MAX_TIME, MIN_EPOCH_MS } from '../../domain/clock';
import { HANDLE_TYPES } from '../../domain/ids';
import { dayOf } from '../../domain/time-zone';
import { API_HELP, API_OPTIONS, UsageError, type Command } from '../command';
import { isoChecks, type IsoChecks } from '../iso';
import { percent, printable, table, tokens, usd, type Align } from '../table';

interface Totals {
  requests: number;
  tokens: Record<string, number>;
  requests_with: Record<string, number>;
  capture_rate: number | null;
  money: Money;
}

interface Money {
  currency: string;
  actual_input_cost: number;
  cost_without_caching: number;
  cost_at_perfect_capture: number;
  realised_savings: number;
  leaked_savings: number;
  /** Absent from an older service. */
  leaked_by_class?: Record<string, number>;
  write_premiums_paid: number;
  write_premiums_unread: number;
  write_premiums_pending: number;
  unknown_capture_input_cost?: number;
}

interface HandleInfo {
  id: string;
  type: string | null;
  kind: string | null;
  name: string | null;
  /** Absent from an older service's tenant report. */
  deleted?: boolean;
}

type Row = Totals & { label: string };

interface HandleReport extends Totals {
  handle: HandleInfo & { deleted: boolean };
  range: Range;
  /** Absent from an older service, which listed every version. */
  versions_total?: number;
  versions_listed?: { from: number; to: number };
  versions: Array<Totals & { version: number; requests_including?: number }>;
  drift: DriftFinding[];
}

/** A drift finding as the handle report gives it (see DriftFindingSchema). */
export interface DriftFinding {
  /** The handle version whose cached prefix drifted. */
  handle: string;
  request_id: string;
  previous_request_id: string;
  at: string;
  segment: number;
  byte_offset?: number;
  now: { source: string; digest: string; excerpt?: string };
  before: { source: string; digest: string; excerpt?: string };
  formats?: { now: string; before: string };
  settings?: Array<{ name: string; now: unknown; before: unknown }>;
  thinking?: 'earlier_turn' | 'earlier_reasoning';
  reasoning_context?: 'all_turns';
}

interface TenantReport extends Totals {
  range: Range;
  handles: Array<Totals & HandleInfo>;
  /** With --by-type: each handle type's rows added up. */
  by_type?: Record<string, Totals & { handles_total: number }>;
  /** With --days: a row per day of the tenant's time zone. */
  days?: Array<Totals & { day: string }>;
  /** Absent from an older service. */
  handles_total?: number;
  /** The calls that referenced no handle (absent from an older service). */
  no_handle?: {
    requests: number;
    tokens: { prompt: number; repeated: number; cache_read: number };
    /** The write premiums: absent from an older service. */
    money: { actual_input_cost: number; cost_without_caching: number; unknown_capture_input_cost: number; write_premiums_unread?: number; write_premiums_pending?: number };
  };
}

interface Range {
  from: string | null;
  to: string;
  model: string | null;
  /** The tenant's time zone, whose days the range counts: absent for UTC (and from an older service). */
  time_zone?: string;
}

// The waterfall in gate order: each indented leak is where tokens of the line above it stopped.
const WATERFALL: Array<[string, number]> = [
  ['referenced', 0],
  ['cold', 1],
  ['opportunity', 0],
  ['drift', 1],
  ['expired', 1],
  ['concurrent', 1],
  ['below_minimum', 1],
  ['no_breakpoint', 1],
  ['lookback', 1],
  ['predicted', 0],
  ['unconfirmed', 1],
  ['unknown', 1],
  ['captured', 0],
  ['bonus', 0],
];

export const report: Command = {
  name: 'report',
  summary: 'reuse report: tokens per class, capture rate, money',
  help: `Usage: prefix-handles report [<handle-id>] [--from T] [--to T] [--model M] [--limit N] [--type T] [--by-type] [--days] [--versions N] [--versions-through V] [--json | --csv [--bom]]

Without a handle: the tenant's totals and its handles ranked by leaked money.
With a handle (an id; a ref's @version is ignored): its waterfall (a bundle's covers
its members, an artifact's its uses inside bundles) and a row per version, the newest
50 (--versions N: the newest N; a session has one per turn). In that table "sent in"
counts the requests whose prompt had the version's content (its tokens are theirs),
"as newest" those for which it was the handle's newest version: a session's version 2
holds the messages appended then, sent again by every later turn.

Token classes, in the order the gates apply:
  referenced    expanded from a handle
  cold          first sent in the cache scope: nothing earlier to read (a write
                only where the request wrote it)
  opportunity   referenced earlier in the same scope: reuse was possible
  drift, expired, concurrent, below_minimum, no_breakpoint, lookback   where reuse leaked
  predicted     what a perfect provider cache would have served
  unconfirmed   predicted, but the provider reported no cache read
  unknown       predicted, but the provider's report had no cache fields (not a miss)
  captured      confirmed by the provider as cache reads
  bonus         reads beyond the prediction (a cache warmed by traffic not seen here)
Capture rate is captured / opportunity, over the requests whose provider reported
cache fields: requests without them are counted apart (unknown), never as misses.

Options:
  --from T, --to T  a range: RFC 3339, YYYY-MM-DD (a day of the tenant's time zone, UTC
                    unless set: see 'tenants') or epoch milliseconds
  --model M         one model only
  --limit N         the tenant report: only the N handles that leaked most
  --type T          the tenant report: only handles of type T (artifact, bundle, session)
  --by-type         the tenant report: a row per handle type (artifacts, bundles, sessions
                    each added up), as GET /v1/reports?by_type=true
  --days            the tenant report: a row per day of the range (the tenant's days), as ?days=true
  --versions N      a handle report: a row for each of the newest N versions (1 to 1000; 50
                    by default); the totals are over every version either way
  --versions-through V   a handle report: list versions up to V instead of the newest
                    (the left-out line names the V that pages back)
  --json            the API's JSON instead of tables
  --csv             the API's CSV export instead (?format=csv: a row per handle, or per
                    version, model and drift finding of a handle), for a spreadsheet or
                    a warehouse
  --bom             with --csv: start it with a UTF-8 byte-order mark (?bom=true), so
                    Excel opens non-ASCII names as written
${API_HELP}`,
  options: { ...API_OPTIONS, from: { type: 'string' }, to: { type: 'string' }, model: { type: 'string' }, limit: { type: 'string' }, versions: { type: 'string' }, 'versions-through': { type: 'string' }, type: { type: 'string' }, 'by-type': { type: 'boolean' }, days: { type: 'boolean' }, json: { type: 'boolean' }, csv: { type: 'boolean' }, bom: { type: 'boolean' } },
  positionals: [0, 1],
  async run({ values, positionals, api }) {
    // The id a render or the proxy's x-ph-request-id gives: its own command shows it.
    if (positionals[0]?.startsWith('req_')) throw new UsageError(`${positionals[0]} is a request, not a handle: 'prefix-handles request ${positionals[0]}' shows it`);
    const q = new URLSearchParams();
    await setRange(q, values);
    if (values.model !== undefined) q.set('model', String(values.model));
    if (values.limit !== undefined) {
      if (positionals[0] !== undefined) throw new UsageError('--limit is for the tenant report (a handle report has one handle)');
      if (!/^[1-9]\d{0,5}$/.test(String(values.limit))) throw new UsageError(`--limit: a whole number of handles from 1 is expected, not '${String(values.limit)}'`);
      q.set('limit', String(values.limit));
    }
    if (values.versions !== undefined) {
      if (positionals[0] === undefined) throw new UsageError('--versions is for a handle report (the tenant report has a row per handle)');
      const n = String(values.versions);
      if (!/^[1-9]\d{0,3}$/.test(n) || Number(n) > VERSIONS_MAX) throw new UsageError(`--versions: a whole number of versions from 1 to ${VERSIONS_MAX} is expected, not '${n}'`);
      q.set('versions', n);
    }
    if (values['versions-through'] !== undefined) {
      if (positionals[0] === undefined) throw new UsageError('--versions-through is for a handle report (the tenant report has a row per handle)');
      const v = String(values['versions-through']);
      if (!/^[1-9]\d{0,6}$/.test(v)) throw new UsageError(`--versions-through: a version number from 1 is expected, not '${v}'`);
      q.set('versions_through', v);
    }
    for (const [flag, param] of [['type', 'type'], ['by-type', 'by_type'], ['days', 'days']] as const) {
      if (values[flag] === undefined) continue;
      if (positionals[0] !== undefined) throw new UsageError(`--${flag} is for the tenant report (a handle report has one handle)`);
      if (flag !== 'type') q.set(param, 'true');
      else if (!(HANDLE_TYPES as readonly string[]).includes(String(values.type))) throw new UsageError(`--type: one of ${HANDLE_TYPES.join(', ')} is expected, not '${String(values.type)}'`);
      else q.set(param, String(values.type));
    }
    if (values.csv && values.json) throw new UsageError('--csv or --json: one output at a time');
    if (values.bom && !values.csv) throw new UsageError('--bom is for --csv (a byte-order mark at the start of the CSV)');
    // Reports are per handle, with a row per version: a ref's "@version" is dropped.
    const id = positionals[0]?.replace(/@\d+$/, '');
    if (values.csv) {
      q.set('format', 'csv');
      if (values.bom) q.set('bom', 'true');
      process.stdout.write((await api().csv(id ? `/v1/reports/handles/${seg(id)}?${q}` : `/v1/reports?${q}`)).bytes);
      return 0;
    }
    const query = q.toString() ? `?${q}` : '';
    const body = id ? await api().json<HandleReport>('GET', `/v1/reports/handles/${seg(id)}${query}`) : await api().json<TenantReport>('GET', `/v1/reports${query}`);
    process.stdout.write(values.json ? `${JSON.stringify(body, null, 2)}\n` : `${id ? handleText(body as HandleReport) : tenantText(body as TenantReport)}\n`);
    // Zeros for a model name nobody used are more often a typo than a fact: said beside them (stdout stays the report).
    // A report counts handle content: calls of the model with their prompt inline are not in it, and may exist (the
    // tenant report counts them apart, under its no_handle).
    const inline = id ? "calls with their prompt inline are on no handle's report, the tenant report counts them apart" : "calls with their prompt inline are counted apart, under 'calls that referenced no handle'";
    if (values.model !== undefined && body.requests === 0)
      process.stderr.write(
        `note: no request ${id ? 'of this handle' : 'that referenced a handle'} used the model '${String(values.model)}' in this range (model names match exactly, as requested; ${inline}: 'prefix-handles requests' lists every call)\n`,
      );
    return 0;
  },
};

/**
 * --from and --to into the query (reports, and the request list), checked as the API would check them so a range it
 * would refuse is a usage error (exit 2). Both read whole days: a --from on a later day than --to is refused (here by
 * UTC's days, the API's check by the tenant's). A day (YYYY-MM-DD) is sent as it is: the API reads it as the tenant's.
 */
export async function setRange(q: URLSearchParams, values: { from?: unknown; to?: unknown }): Promise<void> {
  if (values.from === undefined && values.to === undefined) return;
  const iso = await isoChecks();
  if (values.from !== undefined) q.set('from', time('--from', String(values.from), iso));
  if (values.to !== undefined) q.set('to', time('--to', String(values.to), iso));
  const [from, to] = [q.get('from'), q.get('to')].map((v) => (v === null ? null : Math.floor(Date.parse(v) / DAY_MS)));
  if (from !== null && to !== null && from! > to!) throw new UsageError(`--from ${String(values.from)} is on a later day than --to ${String(values.to)}`);
}

/** The API takes RFC 3339 in the query; days and epoch milliseconds are converted here. */
function time(flag: string, v: string, iso: IsoChecks): string {
  if (/^\d+$/.test(v)) {
    // As the API takes them: 0 is the beginning of time, other numbers under 10^11 are seconds.
    const ms = Number(v);
    if (ms !== 0 && ms < MIN_EPOCH_MS) throw new UsageError(`${flag}: epoch milliseconds are expected; '${v}' looks like seconds (multiply by 1000)`);
    if (ms > MAX_TIME) throw new UsageError(`${flag}: '${v}' is past the largest time a date can hold`);
    return new Date(ms).toISOString();
  }
  // The API's own forms, checked here so a time it would refuse is a usage error (exit 2), not an API error:
  // Date.parse takes days that do not exist (2026-02-30), times without a zone and free text.
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
    if (!iso.day(v)) throw new UsageError(`${flag}: no such day: '${v}'`);
    return v;
  }
  if (!iso.instant(v)) throw new UsageError(`${flag}: not a time: '${v}' (RFC 3339 with a zone such as 2026-12-01T09:30:00Z, YYYY-MM-DD, or epoch milliseconds)`);
  return v;
}

/** The most versions the API lists at once. */
const VERSIONS_MAX = 1000;

function handleText(r: HandleReport): string {
  const h = r.handle;
  const title = `handle ${h.id}  ${[h.type, h.kind].filter(Boolean).join('/')}${h.name ? `  "${printable(h.name)}"` : ''}${h.deleted ? '  (deleted)' : ''}`;
  const parts = [title, rangeLine(r.range), totalsText(r)];
  const older = r.versions_listed ? r.versions_listed.from - 1 : 0;
  if (r.versions.length > 1 || older > 0) parts.push(`by version\n${versionsTable(r.versions)}${unsent(r)}${older > 0 ? `\n${leftOut(older, r)}` : ''}`);
  if (r.drift.length) parts.push(`recent drift, newest first (the ${r.drift.length} latest in the range; 'prefix-handles request <id>' opens one)\n${r.drift.map(driftText).join('\n')}`);
  return parts.join('\n\n');
}

/** One finding as the dashboard says it: which request missed which one's prefix, and what changed before the handle. */
function driftText(d: DriftFinding): string {
  return [`${d.at}  ${d.handle}: ${d.request_id} missed the prefix ${d.previous_request_id} had written`, ...driftDetail(d).map((l) => `  ${l}`)].map(printable).join('\n');
}

/**
 * What changed before the handle: a setting the messages are cached under, or the first changed segment (numbered
 * from #1, as on the dashboard) with both sides around the first differing byte, JSON-quoted so whitespace shows.
 */
export function driftDetail(d: Omit<DriftFinding, 'request_id' | 'previous_request_id' | 'at'>): string[] {
  const shown = (v: unknown) => (v === null ? 'not sent' : JSON.stringify(v));
  if (d.settings?.length)
    return [`${d.settings.map((c) => `${c.name} changed: ${shown(c.before)} → ${shown(c.now)}`).join('; ')}: ${reasoningContextChanged(d.settings) ? REASONING_CONTEXT_RULE : 'Anthropic caches the messages under tool_choice and thinking'}, so from segment #${d.segment + 1} on they were sent again uncached`];
  if (d.thinking === 'earlier_reasoning')
    return [`the same bytes, read otherwise: ${earlierReasoningDropped(d.reasoning_context !== undefined)} once a new question follows a tool loop, so from segment #${d.segment + 1} on the prefix the loop wrote was sent again uncached (${earlierReasoningAdvice(d.reasoning_context !== undefined)})`];
  if (d.thinking)
    return [`the same bytes, read otherwise: the model strips earlier turns' thinking once a new question follows a tool loop, so from segment #${d.segment + 1} on the prefix the loop wrote was sent again uncached (the model's rule, nothing in the agent to change: a model that keeps earlier turns' thinking, Sonnet 4.6 or Opus 4.5 and later, reads it)`];
  const formats = d.formats ? ` (the API format changed, ${d.formats.before} → ${d.formats.now}: the same handles serialise to other bytes)` : '';
  const at = d.byte_offset !== undefined ? `, first at byte ${tokens(d.byte_offset)}` : '';
  const lines = [`segment #${d.segment + 1} changed${at}: ${d.before.source} → ${d.now.source}${formats}`];
  if (d.before.excerpt !== undefined && d.now.excerpt !== undefined) lines.push(`  before ${JSON.stringify(d.before.excerpt)}`, `  now    ${JSON.stringify(d.now.excerpt)}`);
  else lines.push(`  the changed bytes were not kept (only inline content is, for a while): ${d.before.digest.slice(0, 12)}… → ${d.now.digest.slice(0, 12)}…`);
  return lines;
}

function tenantText(r: TenantReport): string {
  const rows = r.handles.map((h) => ({ ...h, label: `${h.id}${h.kind ? ` ${h.kind}` : h.type ? ` ${h.type}` : ''}${h.name ? ` "${h.name}"` : ''}${h.deleted ? ' (deleted)' : ''}` }));
  const parts = ['tenant report', rangeLine(r.range), totalsText(r)];
  if (r.by_type) {
    const types = Object.entries(r.by_type).map(([type, t]) => ({ ...t, label: type }));
    parts.push(`by handle type (each type's handles added up)\n${rowsTable(['type', 'handles', 'requests'], types, (t) => [tokens(t.handles_total), tokens(t.requests)])}`);
  }
  if (r.days) parts.push(r.days.length ? `by day (${r.range.time_zone ?? 'UTC'})\n${rowsTable(['day', 'requests'], r.days.map((d) => ({ ...d, label: d.day })))}` : 'no day of this range has figures');
  const shown = r.handles_total !== undefined && r.handles_total > rows.length ? ` (the ${rows.length} that leaked most of ${r.handles_total})` : '';
  parts.push(rows.length ? `handles, by leaked money${shown}\n${rowsTable(['handle', 'requests'], rows)}` : 'no handles were referenced in this range');
  if (r.no_handle) parts.push(noHandleText(r.no_handle));
  return parts.join('\n\n');
}

/** The calls that referenced no handle: on no report above, counted here. */
function noHandleText(n: NonNullable<TenantReport['no_handle']>): string {
  if (!n.requests) return 'every call in this range referenced a handle';
  const unknown = n.money.unknown_capture_input_cost ? `, and ${usd(n.money.unknown_capture_input_cost)} for calls without cache fields` : '';
  return [
    `calls that referenced no handle (their whole prompt inline: in none of the figures above) ${tokens(n.requests)}`,
    `  prompt tokens ${tokens(n.tokens.prompt)}, of which ${tokens(n.tokens.repeated)} repeated a prefix their cache scope was sent before and ${tokens(n.tokens.cache_read)} were read from cache`,
    `  input cost ${usd(n.money.actual_input_cost)} (${usd(n.money.cost_without_caching)} without caching)${unknown}`,
    ...(n.money.write_premiums_unread === undefined ? [] : [`  unread write premiums ${usd(n.money.write_premiums_unread)} (and ${usd(n.money.write_premiums_pending ?? 0)} still within their TTL)`]),
    `  'prefix-handles suggest' on a log of them names what they repeat, to mint and name in "prefix"`,
  ].join('\n');
}

function rangeLine(range: Range): string {
  const zone = range.time_zone;
  if (!zone) return `range ${range.from ?? 'start'} .. ${range.to}   model ${range.model ?? 'all'}`;
  // The tenant's days first: its last instant in UTC (2026-12-07T07:59:59.999Z) is a day later than its own for a team west of UTC.
  const day = (t: string) => new Date(dayOf(Date.parse(t), zone) * DAY_MS).toISOString().slice(0, 10);
  const days = `${range.from ? day(range.from) : 'start'} .. ${day(range.to)}`;
  return `range ${days} (whole days in ${zone}: ${range.from ? `${range.from} .. ` : 'to '}${range.to})   model ${range.model ?? 'all'}`;
}

function totalsText(t: Totals): string {
  const referenced = t.tokens.referenced ?? 0;
  // reported_opportunity is the capture rate's denominator, shown on that line.
  const known = new Set([...WATERFALL.map(([c]) => c), 'reported_opportunity']);
  // Classes a newer service reports that this list does not know yet are still shown.
  const classes = [...WATERFALL, ...Object.keys(t.tokens).filter((c) => !known.has(c)).map((c): [string, number] => [c, 1])];
  const m = t.money;
  // Each miss class's share of the leaked savings beside its tokens (cold and unknown leak none: priced apart).
  const leaked = m.leaked_by_class;
  // Misses of calls without cache fields only (no capture rate: a reported miss is opportunity): their money is not
  // known, not $0.
  const leakedCell = (c: string) => (leaked![c] === undefined ? '' : t.capture_rate === null && (t.tokens[c] ?? 0) > 0 ? 'unknown' : usd(leaked![c]));
  const tokenRows = classes.map(([c, indent]) => [
    `${'  '.repeat(indent)}${c}`,
    tokens(t.tokens[c]),
    referenced ? percent((t.tokens[c] ?? 0) / referenced) : '',
    tokens(t.requests_with[c]),
    ...(leaked ? [leakedCell(c)] : []),
  ]);
  const moneyRows = [
    ['realised savings', usd(m.realised_savings)],
    ['leaked savings', usd(m.leaked_savings)],
    ['unread write premiums', usd(m.write_premiums_unread)],
    ...(m.write_premiums_pending ? [['write premiums within TTL', usd(m.write_premiums_pending)]] : []),
    ['actual input cost', usd(m.actual_input_cost)],
    ['cost without caching', usd(m.cost_without_caching)],
    ['cost at perfect capture', usd(m.cost_at_perfect_capture)],
    ['write premiums paid', usd(m.write_premiums_paid)],
    ...(m.unknown_capture_input_cost ? [['input cost, capture unknown', usd(m.unknown_capture_input_cost)]] : []),
  ];
  const unknown = t.tokens.unknown
    ? `\n${tokens(t.tokens.unknown)} tokens in ${tokens(t.requests_with.unknown)} ${t.requests_with.unknown === 1 ? 'request' : 'requests'} had no cache report: unknown, not counted as misses`
    : '';
  return [
    `requests ${tokens(t.requests)}`,
    leaked
      ? table(['tokens', 'count', 'of referenced', 'requests', 'leaked'], tokenRows, ['left', 'right', 'right', 'right', 'right'])
      : table(['tokens', 'count', 'of referenced', 'requests'], tokenRows, ['left', 'right', 'right', 'right']),
    `capture rate ${percent(t.capture_rate)} (captured ${tokens(t.tokens.captured)} / opportunity with a cache report ${tokens(t.tokens.reported_opportunity ?? t.tokens.opportunity)})${unknown}`,
    table(['money', m.currency], moneyRows, ['left', 'right']),
  ].join('\n\n');
}

/**
 * The versions of the listed range without a row: no request of the range sent them. A session's newest version
 * always is one (the turn the proxy just appended, sent by the next call): `--versions 3` showed two rows under
 * "5 older versions of 8 left out", the newest nowhere.
 */
function unsent(r: HandleReport): string {
  if (!r.versions_listed) return '';
  const shown = new Set(r.versions.map((v) => v.version));
  const missing: number[] = [];
  for (let v = r.versions_listed.from; v <= r.versions_listed.to; v++) if (!shown.has(v)) missing.push(v);
  if (missing.length === 0) return '';
  const named = missing.length > 5 ? `${missing.slice(0, 5).map((v) => `@${v}`).join(', ')} and ${tokens(missing.length - 5)} more` : missing.map((v) => `@${v}`).join(', ');
  return `\nno row for ${named}: sent in no request of the range`;
}

/** The line under a handle report's versions when older versions were left out (the totals still count them). */
function leftOut(older: number, r: HandleReport): string {
  const total = r.versions_total ?? older + r.versions.length;
  return `${tokens(older)} older version${older === 1 ? '' : 's'} of ${tokens(total)} left out (in the totals above; --versions-through ${older} lists them back from @${older}, --versions N up to ${tokens(VERSIONS_MAX)} at once)`;
}

/** Versions' rows: "sent in" the requests whose prompt had the version's content, "as newest" those that had it as the handle's newest. */
function versionsTable(versions: HandleReport['versions']): string {
  return rowsTable(
    ['version', 'sent in', 'as newest'],
    versions.map((v) => ({ ...v, label: `@${v.version}` })),
    (v) => [v.requests_including === undefined ? '—' : tokens(v.requests_including), tokens(v.requests)],
  );
}

function rowsTable<R extends Row>(first: string[], rows: R[], counts: (r: R) => string[] = (r) => [tokens(r.requests)]): string {
  return table(
    [...first, 'referenced', 'opportunity', 'captured', 'capture', 'leaked', 'realised', 'unread premiums', 'within TTL'],
    rows.map((r) => [
      r.label,
      ...counts(r),
      tokens(r.tokens.referenced),
      tokens(r.tokens.opportunity),
      tokens(r.tokens.captured),
      percent(r.capture_rate),
      usd(r.money.leaked_savings),
      usd(r.money.realised_savings),
      usd(r.money.write_premiums_unread),
      usd(r.money.write_premiums_pending),
    ]),
    first.map((_, i) => (i === 0 ? 'left' : 'right')).concat(Array<Align>(8).fill('right')),
  );
}
