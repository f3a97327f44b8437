// Number, money, time and period formatting shared by every dashboard page.

import { DAY_MS } from '../../domain/clock';
import type { ReportRange } from '../../domain/reconcile/reports';

export { DAY_MS };

// Reports count whole UTC days: a period is its number of days, today included (24 hours reach into yesterday).
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

/** The report range for a period: the same `from` a client would pass to /v1/reports. */
export function rangeOf(period: Period, now: number): ReportRange {
  const days = PERIODS[period].days;
  return days === null ? {} : { from: (Math.floor(now / DAY_MS) - days + 1) * DAY_MS };
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
