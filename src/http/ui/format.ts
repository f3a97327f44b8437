// Number, money, time and period formatting shared by every dashboard page.

import { DAY_MS } from '../../domain/clock';
import type { ReportRange } from '../../domain/reconcile/reports';
import { dayOf as localDay, dayStart, UTC } from '../../domain/time-zone';

export { DAY_MS };

// Reports count whole days of the tenant's time zone (UTC unless set): a period is its number of days, today included
// (24 hours reach into yesterday).
export const PERIODS = {
  '24h': { label: 'Today and yesterday', days: 2 },
  '7d': { label: 'Last 7 days', days: 7 },
  '30d': { label: 'Last 30 days', days: 30 },
  all: { label: 'All time', days: null },
} as const;

export type Period = keyof typeof PERIODS;
export const DEFAULT_PERIOD: Period = '7d';

export function parsePeriod(value: string | undefined): Period {
  return value !== undefined && Object.hasOwn(PERIODS, value) ? (value as Period) : DEFAULT_PERIOD;
}

/** The report range for a period: the same `from` a client would pass to /v1/reports (its first day's first instant in `zone`). */
export function rangeOf(period: Period, now: number, zone: string = UTC): ReportRange {
  const days = PERIODS[period].days;
  return days === null ? {} : { from: dayStart(localDay(now, zone) - days + 1, zone) };
}

/** How a page names the days it counts: "UTC days", or "days in America/Los_Angeles". */
export const daysIn = (zone: string) => (zone === UTC ? 'UTC days' : `days in ${zone}`);
/** The same for one day: "UTC day", "day in America/Los_Angeles". */
export const dayIn = (zone: string) => (zone === UTC ? 'UTC day' : `day in ${zone}`);

/**
 * What a page shows: a period counted back from today (`?period=7d`), or a chosen range of whole days (the tenant's)
 * (`?from=2026-11-01&to=2026-11-30`, both days included), as the reports' `from`/`to` take it.
 */
export interface Span {
  /** The period, or null for a chosen range. */
  period: Period | null;
  range: ReportRange;
  /** Its first and last day (YYYY-MM-DD, of `zone`); `from` absent: from the start. */
  from?: string;
  to: string;
  /** What carries it in a link: `period=7d` or `from=…&to=…`. */
  query: string;
  /** "Last 7 days", "1–30 Nov 2026". */
  label: string;
  /** The tenant's time zone, whose days these are. */
  zone: string;
}

/** A span as the page's form asked it: the span shown, the days typed, and why they were refused (a 400) or changed. */
export interface SpanChoice {
  span: Span;
  /** The days as typed (the form shows them again), or the span's own. */
  from: string;
  to: string;
  error?: { field: 'from' | 'to'; message: string };
  note?: string;
  /** Today (in the tenant's zone), the latest day the form takes; and the ranges offered beside the periods. */
  today: string;
  presets: Array<{ label: string; span: Span }>;
}

/** The earliest day a range can start: the reports' beginning of time. */
export const FIRST_DAY = '1970-01-01';

export function periodSpan(period: Period, now: number, zone: string = UTC): Span {
  const range = rangeOf(period, now, zone);
  const today = localDay(now, zone);
  const days = PERIODS[period].days;
  return { period, range, from: days === null ? undefined : day((today - days + 1) * DAY_MS), to: day(today * DAY_MS), query: `period=${period}`, label: PERIODS[period].label, zone };
}

/** A chosen range of the tenant's days (day numbers since the epoch, of `zone`'s calendar); `from` undefined: from the start. */
export function daysSpan(from: number | undefined, to: number, zone: string = UTC): Span {
  const f = from === undefined ? undefined : day(from * DAY_MS);
  const t = day(to * DAY_MS);
  // Instants in those days (their first), as the reports read a range.
  const range = { ...(from === undefined ? {} : { from: dayStart(from, zone) }), to: dayStart(to, zone) };
  return { period: null, range, from: f, to: t, query: `from=${f ?? ''}&to=${t}`, label: daysLabel(from, to), zone };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** "5 Nov 2026", "1–30 Nov 2026", "28 Oct – 3 Nov 2026", "28 Dec 2025 – 3 Jan 2026", "Through 30 Nov 2026". */
export function daysLabel(from: number | undefined, to: number): string {
  const parts = (d: number) => {
    const x = new Date(d * DAY_MS);
    return { d: x.getUTCDate(), m: MONTHS[x.getUTCMonth()]!, y: x.getUTCFullYear() };
  };
  const b = parts(to);
  if (from === undefined) return `Through ${b.d} ${b.m} ${b.y}`;
  const a = parts(from);
  if (from === to) return `${b.d} ${b.m} ${b.y}`;
  if (a.y !== b.y) return `${a.d} ${a.m} ${a.y} – ${b.d} ${b.m} ${b.y}`;
  return a.m === b.m ? `${a.d}–${b.d} ${b.m} ${b.y}` : `${a.d} ${a.m} – ${b.d} ${b.m} ${b.y}`;
}

/** A day as a date input sends it, as a day number; or why it is not one the reports count. */
function dayOf(value: string, today: number, zone: string): number | string {
  const m = /^(\d{4,6})-(\d{2})-(\d{2})$/.exec(value);
  // A year of more than four digits is one past 9999 (a date input's), never 2026 written with a leading 0.
  if (!m || (m[1]!.length > 4 && m[1]!.startsWith('0'))) return `“${value}” is not a day: use YYYY-MM-DD`;
  if (Number(m[1]) > 9999) return `${value} is after today (${day(today * DAY_MS)}, ${zone})`;
  if (value < FIRST_DAY) return `${value} is before ${FIRST_DAY}, where reports start`;
  const ms = Date.parse(`${value}T00:00:00Z`);
  if (Number.isNaN(ms) || day(ms) !== value) return `${value} is not a day of the calendar`;
  return ms / DAY_MS;
}

/**
 * The span a page's query asks: `from`/`to` (both empty: the default period), else `period`. A day that is not one, or
 * a range that starts after it ends or after today, is refused with the reason (the page shows the default period and
 * says why, at the form); a range that ends after today ends today, and says so.
 */
export function parseSpan(q: { period?: string; from?: string; to?: string }, now: number, zone: string = UTC): SpanChoice {
  const today = localDay(now, zone);
  const from = q.from?.trim() ?? '';
  const to = q.to?.trim() ?? '';
  const form = { today: day(today * DAY_MS), presets: presets(now, zone) };
  if (!from && !to) {
    const span = periodSpan(parsePeriod(q.period), now, zone);
    return { span, from: span.from ?? '', to: span.to, ...form };
  }
  const refuse = (field: 'from' | 'to', message: string): SpanChoice => ({ span: periodSpan(DEFAULT_PERIOD, now, zone), from, to, ...form, error: { field, message: `${message}. Showing the ${PERIODS[DEFAULT_PERIOD].label.toLowerCase()} instead` } });
  const f = from ? dayOf(from, today, zone) : undefined;
  if (typeof f === 'string') return refuse('from', f);
  const t = to ? dayOf(to, today, zone) : today;
  if (typeof t === 'string') return refuse('to', t);
  if (f !== undefined && f > today) return refuse('from', `${from} is after today (${form.today}, ${zone}): no figures yet`);
  if (f !== undefined && f > t) return refuse('from', `The range starts (${from}) after it ends (${to})`);
  const span = daysSpan(f, Math.min(t, today), zone);
  return { span, from: span.from ?? '', to: span.to, ...form, ...(t > today ? { note: `${to} is after today: the range ends today, ${span.to} (${zone})` } : {}) };
}

/** Ranges a user reaches for, beside the periods: this month so far, and the month before (the tenant's months). */
export function presets(now: number, zone: string = UTC): Array<{ label: string; span: Span }> {
  const today = localDay(now, zone);
  const d = new Date(today * DAY_MS);
  const first = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) / DAY_MS;
  const prev = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1) / DAY_MS;
  return [
    { label: 'This month', span: daysSpan(first, today, zone) },
    { label: 'Last month', span: daysSpan(prev, first - 1, zone) },
  ];
}

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export const tokens = (n: number) => int.format(n);

/** "12,345 tok" — token counts always carry their unit. */
export const tok = (n: number) => `${int.format(n)} tok`;

/** USD with cents, and three significant digits below 10¢ (prompt costs are often fractions of a cent). */
export function usd(x: number): string {
  if (x === 0) return '$0.00';
  const abs = Math.abs(x);
  const digits = abs >= 0.1 ? 2 : Math.min(8, 2 - Math.floor(Math.log10(abs)));
  const s = abs.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return `${x < 0 ? '−' : ''}$${s}`;
}

/**
 * A round amount on a chart's axis, to the digit: `usd` keeps three significant digits (cents from $0.10 on), so a
 * gridline at $0.125 read "$0.13" and one at $0.05 "$0.0500". Cents at least, more only where the value has them.
 */
export function usdTick(x: number): string {
  if (x === 0) return '$0.00';
  const abs = Math.abs(x);
  let digits = 2;
  while (digits < 8 && Math.abs(Math.round(abs * 10 ** digits) - abs * 10 ** digits) > 1e-6) digits++;
  const s = abs.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return `${x < 0 ? '−' : ''}$${s}`;
}

/** A fraction as a percentage; null (no opportunity) is "—", never 0%. */
export function pct(x: number | null, digits = 1): string {
  return x === null || !Number.isFinite(x) ? '—' : `${(x * 100).toFixed(digits)}%`;
}

export const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);

/** "2026-01-01 12:00 UTC" */
export function when(value: number | string): string {
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** A span of time as people say it: 45 s, 6 min 12 s, 1 h 5 min, 2 d 3 h. */
/** A short interval to the millisecond (a parallel call's lead), a longer one as `span` says it. */
export function shortSpan(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : span(ms);
}

export function span(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  if (s < 86400) return `${Math.floor(s / 3600)} h${Math.floor(s / 60) % 60 ? ` ${Math.floor(s / 60) % 60} min` : ''}`;
  return `${Math.floor(s / 86400)} d${Math.floor(s / 3600) % 24 ? ` ${Math.floor(s / 3600) % 24} h` : ''}`;
}

export const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
