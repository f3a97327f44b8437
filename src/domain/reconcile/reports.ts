import { leakedColumn, MONEY_LEAKS, NO_HANDLE, requestsColumn, ROLLUP_CLASSES, ROLLUP_LEAKED, ROLLUP_MONEY, type MoneyLeak } from './waterfall';
import type { CalibrationRow, HandleRow, HandleSums, RollupRow, Store } from '../../store/store';
import { notFound } from '../errors';
import type { PendingPremiums, PendingRow } from './write-premiums';
import { handleTypeOf, type HandleType } from '../ids';

import { DAY_MS as DAY, MAX_TIME } from '../clock';
import { dayEnd, dayOf, dayStart, UTC } from '../time-zone';

export interface ReportRange {
  from?: number;
  to?: number;
  model?: string;
}

/** How many versions a handle report lists by default (`?versions=`), newest first: a session has one per turn. */
export const VERSIONS_LISTED = 50;
/** The most it lists at once. */
export const VERSIONS_LISTED_MAX = 1000;

/** Which versions a handle report lists: at most `versions` of them, through `through` (the latest when absent). */
export interface VersionPage {
  versions: number;
  through?: number;
}

/** Sums of rollup rows: tokens and requests per class, and money. */
export interface Totals {
  requests: number;
  tokens: Record<string, number>;
  requests_with: Record<string, number>;
  capture_rate: number | null;
  money: {
    currency: 'USD';
    actual_input_cost: number;
    cost_without_caching: number;
    cost_at_perfect_capture: number;
    realised_savings: number;
    leaked_savings: number;
    /** Leaked savings by the class that missed them; they sum to `leaked_savings` to the micro-dollar. */
    leaked_by_class: Record<MoneyLeak, number>;
    write_premiums_paid: number;
    /** Premiums for writes no later request read within their TTL. */
    write_premiums_unread: number;
    /** Premiums for writes not read yet whose TTL has not passed: they may still be read. */
    write_premiums_pending: number;
    /** Input cost (at full price) of requests whose provider did not report cache fields: counted apart. */
    unknown_capture_input_cost: number;
  };
}

// To the micro-dollar, half away from zero, decided in whole nano-dollars: a figure and its negation round alike (a
// write's premium and the savings it cost show the same digits), and float noise does not decide a half.
const round = (x: number) => (Math.sign(x) * Math.floor((Math.round(Math.abs(x) * 1e9) + 500) / 1000)) / 1e6;
// A difference of two printed figures, as a reader subtracts them: rounding each side first, the savings are exactly
// the printed costs' difference (rounding the difference itself could print one micro-dollar more or less).
const difference = (a: number, b: number) => Math.round((round(a) - round(b)) * 1e6) / 1e6;

/** The sums leaked money needs: enough to rank handles. */
const LEAKED_COLUMNS = ['cost_actual', 'cost_perfect'];

/** Leaked savings as sum() gives them (the same additions in the same order). */
function leaked(rows: HandleSums[]): number {
  let actual = 0;
  let perfect = 0;
  for (const r of rows) {
    actual += r.cost_actual ?? 0;
    perfect += r.cost_perfect ?? 0;
  }
  return difference(actual, perfect);
}

/**
 * Each class's leaked money to the micro-dollar, summing to `total` as printed: rounded each, the difference (a few
 * micro-dollars of rounding) goes to the classes with the largest remainders, as a reader adding them up expects.
 */
function apportion(byClass: Record<MoneyLeak, number>, total: number): Record<MoneyLeak, number> {
  const micros = MONEY_LEAKS.map((c) => Math.max(0, byClass[c]) * 1e6);
  const out = micros.map(Math.floor);
  let left = Math.round(total * 1e6) - out.reduce((a, b) => a + b, 0);
  const order = MONEY_LEAKS.map((_, i) => i).sort((a, b) => micros[b]! - out[b]! - (micros[a]! - out[a]!) || micros[b]! - micros[a]!);
  // Never below zero, never on a class that leaked nothing: a total with nothing to divide stays as the classes say.
  for (let k = 0; left !== 0 && k < order.length * 2; k++) {
    const i = order[k % order.length]!;
    if (micros[i] === 0 || (left < 0 && out[i] === 0)) continue;
    const step = Math.sign(left);
    out[i]! += step;
    left -= step;
  }
  return Object.fromEntries(MONEY_LEAKS.map((c, i) => [c, out[i]! / 1e6])) as Record<MoneyLeak, number>;
}

/** The money columns of rollup rows (and of pending premiums), as sum() adds them. */
const MONEY_SUMS = ['cost_actual', 'cost_no_cache', 'cost_perfect', 'cost_unknown', 'write_premium_paid', 'write_premium_read', 'write_premium_pending', ...ROLLUP_LEAKED] as const;
type MoneySums = Record<(typeof MONEY_SUMS)[number], number>;
const zeroMoney = (): MoneySums => Object.fromEntries(MONEY_SUMS.map((k) => [k, 0])) as MoneySums;

/** A report's money from its summed money columns. */
function moneyOf(m: MoneySums): Totals['money'] {
  return {
    currency: 'USD',
    actual_input_cost: round(m.cost_actual),
    cost_without_caching: round(m.cost_no_cache),
    cost_at_perfect_capture: round(m.cost_perfect),
    realised_savings: difference(m.cost_no_cache, m.cost_actual),
    leaked_savings: difference(m.cost_actual, m.cost_perfect),
    leaked_by_class: apportion(Object.fromEntries(MONEY_LEAKS.map((c) => [c, m[leakedColumn(c)]])) as Record<MoneyLeak, number>, difference(m.cost_actual, m.cost_perfect)),
    write_premiums_paid: round(m.write_premium_paid),
    write_premiums_unread: Math.max(0, round(m.write_premium_paid - m.write_premium_read - m.write_premium_pending)),
    write_premiums_pending: round(m.write_premium_pending),
    unknown_capture_input_cost: round(m.cost_unknown),
  };
}

function sum(rows: HandleSums[]): Totals {
  const tokens: Record<string, number> = {};
  const requestsWith: Record<string, number> = {};
  let requests = 0;
  const m: MoneySums = zeroMoney();
  for (const r of rows) {
    requests += r.requests ?? 0;
    for (const c of ROLLUP_CLASSES) {
      tokens[c] = (tokens[c] ?? 0) + (r[c] ?? 0);
      requestsWith[c] = (requestsWith[c] ?? 0) + (r[requestsColumn(c)] ?? 0);
    }
    for (const k of Object.keys(m) as (keyof typeof m)[]) m[k] += r[k] ?? 0;
  }
  for (const c of ROLLUP_CLASSES) {
    tokens[c] ??= 0;
    requestsWith[c] ??= 0;
  }
  return {
    requests,
    tokens,
    requests_with: requestsWith,
    // Capture is measured against opportunity, never against everything referenced, and only
    // over requests whose provider reported cache fields (unknown is not zero).
    capture_rate: tokens.reported_opportunity ? round(tokens.captured! / tokens.reported_opportunity) : null,
    money: moneyOf(m),
  };
}

/**
 * Several reports' money added up as each gives it (rounded to the micro-dollar): the sum of the handles' own reports,
 * to the micro-dollar. In whole micro-dollars: adding the decimals would leave float noise past the sixth digit.
 */
function addUpMoney(sums: Iterable<MoneySums>): Totals['money'] {
  const out = moneyOf(zeroMoney());
  const keys = Object.keys(out).filter((k) => k !== 'currency' && k !== 'leaked_by_class') as Array<Exclude<keyof Totals['money'], 'currency' | 'leaked_by_class'>>;
  const micro = keys.map(() => 0);
  const byClass = MONEY_LEAKS.map(() => 0);
  for (const m of sums) {
    const money = moneyOf(m);
    keys.forEach((k, i) => (micro[i]! += Math.round(money[k] * 1e6)));
    // Each handle's classes add up to its leaked savings: so do their sums to the sum of those.
    MONEY_LEAKS.forEach((c, i) => (byClass[i]! += Math.round(money.leaked_by_class[c] * 1e6)));
  }
  keys.forEach((k, i) => (out[k] = micro[i]! / 1e6));
  out.leaked_by_class = Object.fromEntries(MONEY_LEAKS.map((c, i) => [c, byClass[i]! / 1e6])) as Record<MoneyLeak, number>;
  return out;
}

/** The range's whole days in the tenant's zone: those its `from` and `to` (today, when not given) are in. */
function days(range: ReportRange, now: number, zone: string) {
  return { fromDay: dayOf(range.from ?? 0, zone), toDay: dayOf(range.to ?? now, zone) };
}

/**
 * Figures per version, oldest first. Beside `requests` (a request counts on its newest version's row), the requests
 * the row's tokens come from: for a session, version k's batch is sent by every turn from version k on.
 */
function byVersion(rows: RollupRow[]) {
  return [...groupBy(rows, (r) => String(r.version))]
    .map(([v, rs]) => {
      const { requests, ...rest } = sum(rs);
      return { version: Number(v), requests, requests_including: rs.reduce((n, r) => n + (r.requests_including ?? 0), 0), ...rest };
    })
    .sort((a, b) => a.version - b.version);
}

function groupBy<R extends HandleSums>(rows: R[], key: (r: R) => string): Map<string, R[]> {
  const out = new Map<string, R[]>();
  for (const r of rows) {
    const k = key(r);
    const list = out.get(k);
    if (list) list.push(r);
    else out.set(k, [r]);
  }
  return out;
}

/** Reports read rollups kept up to date at ingestion: their cost does not grow with the number of requests. */
export class Reports {
  constructor(
    private readonly store: Store,
    private readonly pending: PendingPremiums,
    /** A tenant's time zone (TenantService.zoneOf): its reports count whole days in it. UTC when not given. */
    private readonly zoneOf: (tenantId: string) => string = () => UTC,
  ) {}

  /** Pending premiums on the range's days and model, as rows to sum with the rollups (`handleId` null: every handle). */
  private pendingRows(pending: PendingRow[], handleId: string | null, span: { fromDay: number; toDay: number }, model: string | undefined): RollupRow[];
  private pendingRows(pending: PendingRow[], handleId: string | null, span: { fromDay: number; toDay: number }, model: string | undefined, keepDay: true): Array<RollupRow & { day: number }>;
  private pendingRows(pending: PendingRow[], handleId: string | null, span: { fromDay: number; toDay: number }, model: string | undefined, keepDay = false): RollupRow[] {
    return pending
      .filter((p) => p.day >= span.fromDay && p.day <= span.toDay && (model === undefined || p.model === model) && (handleId === null ? p.handle_id !== '*' && p.handle_id !== NO_HANDLE : p.handle_id === handleId))
      .map(({ day, ...row }) => (keepDay ? { ...row, day } : row) as unknown as RollupRow);
  }

  /**
   * A handle's report: totals and per-model figures over all its versions (summed per model in SQL), and figures per
   * version for a window of at most `page.versions` versions only, through `page.through` (the latest when absent):
   * a session has one version per turn, and its report would grow with every turn.
   */
  handle(tenantId: string, handleId: string, range: ReportRange, now: number, page: VersionPage = { versions: VERSIONS_LISTED }) {
    const row = this.handleRow(tenantId, handleId);
    const span = days(range, now, this.zoneOf(tenantId));
    const q = { tenantId, handleId, ...span, model: range.model };
    const total = row.latestVersion;
    const to = Math.min(page.through ?? total, total);
    const listed = { from: Math.max(1, to - page.versions + 1), to };
    const pending = this.pendingRows(this.pending.rows(tenantId, now), handleId, span, range.model);
    const rows = [...this.store.sumModelRollups(q), ...pending];
    const versionRows = [...this.store.sumVersionRollups({ ...q, versions: listed }), ...pending.filter((p) => p.version >= listed.from && p.version <= listed.to)];
    return {
      handle: handleView(row),
      range: rangeView(range, now, this.zoneOf(tenantId)),
      ...sum(rows),
      versions_total: total,
      versions_listed: listed,
      versions: byVersion(versionRows),
      models: [...groupBy(rows, (r) => r.model)].map(([model, rs]) => ({ model, ...sum(rs) })),
      drift: this.drift(tenantId, handleId, span, range.model),
    };
  }

  /**
   * A handle's report as its dashboard page shows it: the figures of `handle` (not by model), per-version figures
   * only for `versions`, and the figures of each day (the tenant's) of `perDay`, as `handle` gives them for that day's range.
   * The totals and days are read summed by day, not a row per version and day: a session has one version per turn.
   */
  handleOverview(tenantId: string, handleId: string, range: ReportRange, now: number, opts: { versions: { from: number; to: number }; perDay: { fromDay: number; toDay: number } }) {
    const handle = this.reportedHandle(tenantId, handleId);
    const span = days(range, now, this.zoneOf(tenantId));
    const model = range.model;
    const read = { fromDay: Math.min(span.fromDay, opts.perDay.fromDay), toDay: Math.max(span.toDay, opts.perDay.toDay) };
    const pending = this.pendingRows(this.pending.rows(tenantId, now), handleId, read, model, true);
    const dayRows = [...this.store.sumDayRollups({ tenantId, handleId, ...read, model }), ...pending] as Array<RollupRow & { day: number }>;
    const inDays = (from: number, to: number) => dayRows.filter((r) => r.day >= from && r.day <= to);
    const perDay: Array<{ day: number } & Totals> = [];
    for (let d = opts.perDay.fromDay; d <= opts.perDay.toDay; d++) perDay.push({ day: d, ...sum(inDays(d, d)) });
    const versionRows = [
      ...this.store.sumVersionRollups({ tenantId, handleId, ...span, model, versions: opts.versions }),
      ...pending.filter((p) => p.day >= span.fromDay && p.day <= span.toDay && p.version >= opts.versions.from && p.version <= opts.versions.to),
    ];
    // Per model, as `handle` gives them, the most leaked first: a prefix can be cached on one model and under another's minimum.
    const modelRows = [...this.store.sumModelRollups({ tenantId, handleId, ...span, model }), ...pending.filter((p) => p.day >= span.fromDay && p.day <= span.toDay)];
    const models = [...groupBy(modelRows, (r) => r.model)].map(([m, rs]) => ({ model: m, ...sum(rs) })).sort((a, b) => b.money.leaked_savings - a.money.leaked_savings || a.model.localeCompare(b.model));
    return {
      handle,
      range: rangeView(range, now, this.zoneOf(tenantId)),
      ...sum(inDays(span.fromDay, span.toDay)),
      versions: byVersion(versionRows),
      models,
      days: perDay,
      drift: this.drift(tenantId, handleId, span, model),
    };
  }

  private reportedHandle(tenantId: string, handleId: string) {
    return handleView(this.handleRow(tenantId, handleId));
  }

  private handleRow(tenantId: string, handleId: string): HandleRow {
    const handle = this.store.getHandle(handleId);
    if (!handle || handle.tenantId !== tenantId) throw notFound(`handle ${handleId}`);
    return handle;
  }

  /** The drift findings of the same requests as the figures: started on the range's days, of its model. */
  private drift(tenantId: string, handleId: string, span: { fromDay: number; toDay: number }, model: string | undefined) {
    const zone = this.zoneOf(tenantId);
    const within = { fromMs: dayStart(span.fromDay, zone), toMs: dayStart(span.toDay + 1, zone), model };
    return this.store.driftFindings(tenantId, handleId, 10, within).map((d) => {
      // The finding names the earlier request too: said once, as previous_request_id.
      const { previous_request: _previous, ...finding } = d.finding as { previous_request?: string };
      return { request_id: d.requestId, previous_request_id: d.previousRequestId, at: new Date(d.at).toISOString(), ...finding };
    });
  }

  /**
   * Token estimates calibrated by what providers reported: per model, the running
   * ratio of reported to estimated prompt tokens, applied to `tokens` of that family (asked for only when a ratio
   * applies: counting a version minted on the JSON basis again can take a while).
   */
  calibrated(tenantId: string, tokensOf: () => Record<string, number> | undefined) {
    const rows = this.store.calibrations(tenantId).filter(currentBasis);
    const tokens = rows.length ? tokensOf() : undefined;
    if (!tokens) return [];
    return rows.map((c) => {
      const ratio = calibrationRatio(c) ?? 1;
      const family = c.family.slice(0, -CALIBRATION_BASIS.length);
      return { model: c.model, family, ratio: Math.round(ratio * 1e4) / 1e4, reports: c.reports, estimate: tokens[family] ?? null, calibrated: tokens[family] === undefined ? null : Math.round(tokens[family]! * ratio) };
    });
  }

  /**
   * `limit`: only the first handles by leaked money (their names looked up; the rest only counted in `handles_total`).
   * `types`: only handles of those types in `handles` and `handles_total` (the totals are the tenant's whatever it is).
   */
  tenant(tenantId: string, range: ReportRange, now: number, limit = Infinity, types?: readonly HandleType[]) {
    const span = days(range, now, this.zoneOf(tenantId));
    const pending = this.pending.rows(tenantId, now);
    const totals = [...this.store.sumRollups({ tenantId, handleId: '*', ...span, model: range.model }), ...this.pendingRows(pending, '*', span, range.model)];
    const q = { tenantId, ...span, model: range.model, types };
    const pendingHandles = this.pendingRows(pending, null, span, range.model).filter((p) => !types || types.includes(handleTypeOf(p.handle_id)));
    // With a limit, handles are ranked on the two sums leaked money needs (a fifth of the work of all of them on a
    // year of 5,000 handles), and only those shown are summed whole.
    const ranking = limit < Infinity ? LEAKED_COLUMNS : undefined;
    const rows: HandleSums[] = [...this.store.sumHandles(q, ranking), ...pendingHandles];
    const ranked = [...groupBy(rows, (r) => r.handle_id)].map(([id, rs]) => ({ id, leaked: leaked(rs) })).sort((a, b) => b.leaked - a.leaked || a.id.localeCompare(b.id));
    const shown = ranked.slice(0, limit);
    const whole = ranking ? [...this.store.sumHandles(shown.length < ranked.length ? { ...q, types: undefined, handles: shown.map((h) => h.id) } : q), ...pendingHandles] : rows;
    const byId = groupBy(whole, (r) => r.handle_id);
    const handles = shown.map(({ id }) => {
      const h = this.store.getHandle(id);
      return { id, type: h?.type ?? null, kind: h?.kind ?? null, name: h?.name ?? null, deleted: h ? h.deletedAt !== null : true, ...sum(byId.get(id) ?? []) };
    });
    // Read as the totals are: the NO_HANDLE rows of the range's days by the primary key.
    const noHandle = sum([...this.store.sumRollups({ tenantId, handleId: NO_HANDLE, ...span, model: range.model }), ...this.pendingRows(pending, NO_HANDLE, span, range.model)]);
    return { range: rangeView(range, now, this.zoneOf(tenantId)), ...sum(totals), handles_total: ranked.length, handles, no_handle: noHandleView(noHandle) };
  }

  /**
   * The handles of one type as one row: how many have figures in the range, and their figures summed as each one's own
   * report gives them (the overview's sessions: an agent's hundreds, one per conversation). Every such handle is read
   * whole: the figures of all of them are what is asked.
   */
  typeTotals(tenantId: string, range: ReportRange, now: number, type: HandleType): { handles_total: number } & Totals {
    const span = days(range, now, this.zoneOf(tenantId));
    const q = { tenantId, ...span, model: range.model, types: [type] };
    const pending = this.pendingRows(this.pending.rows(tenantId, now), null, span, range.model).filter((p) => handleTypeOf(p.handle_id) === type);
    // Counts add up exactly whichever way: summed over all of them at once. Money is each handle's report's, then added
    // up: per handle, its money columns only (a fifth of the work of every column; 5,000 sessions: see the README).
    const { money: _once, ...counts } = sum([...this.store.sumHandles({ ...q, together: true }), ...pending]);
    const byHandle = new Map<string, MoneySums>();
    for (const r of [...this.store.sumHandles(q, [...ROLLUP_MONEY, ...ROLLUP_LEAKED]), ...pending]) {
      let m = byHandle.get(r.handle_id);
      if (!m) byHandle.set(r.handle_id, (m = zeroMoney()));
      for (const k of MONEY_SUMS) m[k] += r[k] ?? 0;
    }
    return { handles_total: byHandle.size, ...counts, money: addUpMoney(byHandle.values()) };
  }

  /** typeTotals of each handle type (the API's `by_type`: the sessions' figure the overview's row shows, and the others'). */
  byType(tenantId: string, range: ReportRange, now: number): Record<HandleType, { handles_total: number } & Totals> {
    return { artifact: this.typeTotals(tenantId, range, now, 'artifact'), bundle: this.typeTotals(tenantId, range, now, 'bundle'), session: this.typeTotals(tenantId, range, now, 'session') };
  }

  /**
   * The tenant's totals on each of its days of `span` that has figures, oldest first: the '*' rows summed by day (by the
   * primary key, not every handle's rows), as `tenant` gives them for that day alone.
   */
  tenantDays(tenantId: string, span: { fromDay: number; toDay: number }, model: string | undefined, now: number): Array<{ day: number } & Totals> {
    const rows = [...this.store.sumDayRollups({ tenantId, handleId: '*', ...span, model }), ...this.pendingRows(this.pending.rows(tenantId, now), '*', span, model, true)] as Array<RollupRow & { day: number }>;
    return [...groupBy(rows, (r) => String(r.day))].map(([d, rs]) => ({ day: Number(d), ...sum(rs) })).sort((a, b) => a.day - b.day);
  }

  /** The days of `tenantDays` for a report's range, each named by its date (the API's `days`). */
  tenantDaysOf(tenantId: string, range: ReportRange, now: number) {
    return this.tenantDays(tenantId, days(range, now, this.zoneOf(tenantId)), range.model, now).map(({ day, ...t }) => ({ day: new Date(day * DAY).toISOString().slice(0, 10), ...t }));
  }

  /**
   * The calls that referenced no handle, per model, the most costly first: which agent sends its whole prompt inline
   * (the dashboard's overview; the API's `no_handle` sums them).
   */
  noHandleByModel(tenantId: string, range: ReportRange, now: number) {
    const span = days(range, now, this.zoneOf(tenantId));
    // With the premiums still within their TTL, as `tenant` reads no_handle: else they counted as unread here.
    const rows = [...this.store.sumRollups({ tenantId, handleId: NO_HANDLE, ...span, model: range.model }), ...this.pendingRows(this.pending.rows(tenantId, now), NO_HANDLE, span, range.model)];
    return [...groupBy(rows, (r) => r.model)]
      .map(([model, rs]) => ({ model, ...noHandleView(sum(rs)) }))
      .sort((a, b) => b.money.actual_input_cost - a.money.actual_input_cost || a.model.localeCompare(b.model));
  }
}

/**
 * The calls that referenced no handle: how many, their prompt tokens, how many of those the cache scope had been sent
 * before (what a handle would make a prefix to reuse), how many the provider read from its cache, their input cost, and
 * their write premiums as a handle's are followed (paid, unread within their TTL, still within it).
 */
function noHandleView(t: Totals) {
  const m = t.money;
  return {
    requests: t.requests,
    tokens: { prompt: t.tokens.referenced!, repeated: t.tokens.opportunity!, cache_read: t.tokens.captured! + t.tokens.bonus! },
    money: {
      currency: m.currency,
      actual_input_cost: m.actual_input_cost,
      cost_without_caching: m.cost_without_caching,
      unknown_capture_input_cost: m.unknown_capture_input_cost,
      write_premiums_paid: m.write_premiums_paid,
      write_premiums_unread: m.write_premiums_unread,
      write_premiums_pending: m.write_premiums_pending,
    },
  };
}

export type NoHandleFigures = ReturnType<typeof noHandleView>;

function handleView(handle: HandleRow) {
  return { id: handle.id, type: handle.type, kind: handle.kind, name: handle.name, deleted: handle.deletedAt !== null };
}

/**
 * The range as counted: whole days in the tenant's zone, from the first day's first instant to the last day's last
 * millisecond; `time_zone` names the zone, for a tenant not in UTC (a UTC tenant's answer is as it always was).
 */
function rangeView(range: ReportRange, now: number, zone: string) {
  const { fromDay, toDay } = days(range, now, zone);
  return {
    from: range.from !== undefined ? new Date(dayStart(fromDay, zone)).toISOString() : null,
    to: new Date(Math.min(dayEnd(toDay, zone), MAX_TIME)).toISOString(),
    model: range.model ?? null,
    ...(zone === UTC ? {} : { time_zone: zone }),
  };
}

/**
 * Calibration rows name the estimate's basis after its tokenizer family. Estimates counted the request's JSON before
 * 2026-12-03, then the text the model reads (`+text`), and since that evening also what tools cost beyond their text
 * (`+text+tools`: Anthropic's tool-use system prompt, OpenAI's function definitions; prompt-tokens.ts): a row summed
 * over an older basis is not applied to the new one, and the store starts it again at the next report.
 */
export const CALIBRATION_BASIS = '+text+tools';
export const calibrationFamily = (family: string) => `${family}${CALIBRATION_BASIS}`;
export const currentBasis = (c: Pick<CalibrationRow, 'family'>) => c.family.endsWith(CALIBRATION_BASIS);

/** A model's running ratio of provider-reported to estimated prompt tokens, or null with nothing estimated yet. */
export function calibrationRatio(c: Pick<CalibrationRow, 'providerTokens' | 'estimatedTokens'>): number | null {
  return c.estimatedTokens > 0 ? c.providerTokens / c.estimatedTokens : null;
}
