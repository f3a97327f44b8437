// CSV exports of the reports and the request list, for a spreadsheet or a warehouse load. A column is its JSON
// field's path joined with `_` (`money.leaked_by_class.drift` → `money_leaked_by_class_drift`); a cell is the
// value as the JSON writes it, and empty where the JSON has null or the row has no such field: unknown, never 0.

import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { accepts } from 'hono/accepts';
import { stringify } from 'csv-stringify/sync';
import { CLASSES, MONEY_LEAKS, ROLLUP_CLASSES } from '../domain/reconcile/waterfall';

export const CSV_TYPE = 'text/csv; charset=utf-8';

/** `?format=`: an explicit choice, for a link or a script that cannot set `Accept`. */
export const FormatQuery = z
  .enum(['json', 'csv'], { error: 'format must be json or csv' })
  .optional()
  .openapi({ description: '`csv`: the answer as text/csv (as `Accept: text/csv` asks for it); `json`: JSON whatever `Accept` says. JSON when absent.' });

/**
 * `?bom=true`: the CSV starts with a UTF-8 byte-order mark. Excel reads a CSV without one in the system's legacy code
 * page (Überblick as Ãœberblick); with it, as UTF-8. Off by default: a script or a warehouse load reads the bytes as
 * they were. JSON never has one (RFC 8259 §8.1), so a JSON answer is the same whatever this says.
 */
export const BomQuery = z
  .enum(['true', 'false'], { error: 'bom must be true or false' })
  .transform((v) => v === 'true')
  .optional()
  .openapi({ type: 'boolean', description: 'With `true`, a CSV answer starts with a UTF-8 byte-order mark (EF BB BF), so Excel opens non-ASCII names as written; a JSON answer is unchanged.' });

/** CSV when `?format=csv`, or without `format` when `Accept` prefers text/csv to application/json; else JSON. */
export function wantsCsv(c: Context, format: 'json' | 'csv' | undefined): boolean {
  if (format) return format === 'csv';
  return accepts(c, { header: 'Accept', supports: ['application/json', 'text/csv'], default: 'application/json' }) === 'text/csv';
}

/** A 200 answer's content in the OpenAPI document: the JSON schema, or the same figures as CSV. */
export const jsonOrCsv = (schema: z.ZodType, description: string) => ({
  content: { 'application/json': { schema }, 'text/csv': { schema: z.string().openapi({ description: 'The same figures, a row per record (README: CSV exports).' }) } },
  description,
});

type Json = Record<string, unknown>;
interface TotalsJson extends Json {
  capture_rate?: number | null;
  tokens?: Record<string, number>;
}

/** The columns of a report's totals, in the JSON's order. */
const TOTALS = [
  'requests',
  ...ROLLUP_CLASSES.map((c) => `tokens_${c}`),
  ...ROLLUP_CLASSES.map((c) => `requests_with_${c}`),
  'capture_rate',
  'money_currency',
  'money_actual_input_cost',
  'money_cost_without_caching',
  'money_cost_at_perfect_capture',
  'money_realised_savings',
  'money_leaked_savings',
  ...MONEY_LEAKS.map((c) => `money_leaked_by_class_${c}`),
  'money_write_premiums_paid',
  'money_write_premiums_unread',
  'money_write_premiums_pending',
  'money_unknown_capture_input_cost',
];

const RANGE = ['range_from', 'range_to', 'range_model'];

export const TENANT_COLUMNS = ['row', 'day', 'id', 'type', 'kind', 'name', 'deleted', ...RANGE, ...TOTALS, 'handles_total', 'tokens_prompt', 'tokens_repeated', 'tokens_cache_read'];

/** A drift finding's fields (`drift[]` of a handle report), in the JSON's order; `settings` is its list as JSON text. */
const DRIFT = [
  'request_id', 'previous_request_id', 'at', 'handle', 'segment', 'now_source', 'now_digest', 'now_excerpt', 'before_source', 'before_digest',
  'before_excerpt', 'byte_offset', 'formats_now', 'formats_before', 'settings', 'thinking',
];

export const HANDLE_COLUMNS = [
  'row', 'version', 'model', 'handle_id', 'handle_type', 'handle_kind', 'handle_name', 'handle_deleted', ...RANGE,
  TOTALS[0]!, 'requests_including', ...TOTALS.slice(1), 'versions_total', 'versions_listed_from', 'versions_listed_to', ...DRIFT,
];

export const REQUEST_COLUMNS = [
  'id', 'status', 'format', 'model', 'rendered_at', 'started_at', 'capture', 'prompt_tokens', 'cache_read_tokens', 'cache_write_tokens', 'handles',
  ...CLASSES.map((c) => `classes_${c}`), 'drift', 'class_tokens',
];

/** An object's fields by their path joined with `_`; a list stays one value (a request's handles). */
function flat(o: object, prefix = '', out: Json = {}): Json {
  for (const [k, v] of Object.entries(o)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) flat(v, `${prefix}${k}_`, out);
    else out[prefix + k] = v;
  }
  return out;
}

/**
 * Totals flattened. Misses of calls without cache fields only (no capture rate) have no known money: their class's
 * leaked money is unknown, as the dashboard and the CLI say it, not the 0 the JSON sums to.
 */
function totals(t: TotalsJson): Json {
  const cells = flat(t);
  if (t.capture_rate === null) for (const c of MONEY_LEAKS) if ((t.tokens?.[c] ?? 0) > 0) cells[`money_leaked_by_class_${c}`] = null;
  return cells;
}

/**
 * Text a spreadsheet would run as a formula (OWASP's CSV injection list, with ASVS 1.2.10's NUL): a name or model a
 * caller chose can be one.
 */
const FORMULA_START = /^[=+\-@\t\r\0]/;

/**
 * null and absent: empty (unknown, or not this row's); a list of ids: space-separated; text that would start a formula
 * after an added `'` (a spreadsheet shows it as text; numbers, negative savings too, are never text here); else as
 * JSON writes it.
 */
function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return FORMULA_START.test(v) ? `'${v}` : v;
  return Array.isArray(v) ? v.join(' ') : String(v);
}

/** RFC 4180: CRLF between records, a field with a comma, a quote, CR or LF quoted (csv-stringify's own rules). */
function table(columns: string[], rows: Json[]): string {
  return stringify(
    rows.map((r) => columns.map((k) => cell(r[k]))),
    { header: true, columns, record_delimiter: 'windows', quote_record_delimiter: true },
  );
}

/**
 * GET /v1/reports: the totals (`row` total), each handle type of `by_type=true` (`row` type, its count of handles in
 * `handles_total`), each handle, the calls through no handle, then each day of `days=true`.
 */
export function tenantReportCsv(r: Json): string {
  const { range, handles, no_handle: noHandle, days, by_type: byType, ...rest } = r as Json & {
    range: Json;
    handles: TotalsJson[];
    no_handle?: Json;
    days?: TotalsJson[];
    by_type?: Record<string, TotalsJson & { handles_total: number }>;
  };
  const ctx = flat({ range });
  return table(TENANT_COLUMNS, [
    { row: 'total', ...ctx, ...totals(rest) },
    ...Object.entries(byType ?? {}).map(([type, figures]) => ({ row: 'type', type, ...ctx, ...totals(figures) })),
    ...handles.map((h) => ({ row: 'handle', ...ctx, ...totals(h) })),
    ...(noHandle ? [{ row: 'no_handle', ...ctx, ...flat(noHandle) }] : []),
    ...(days ?? []).map((d) => ({ row: 'day', ...ctx, ...totals(d) })),
  ]);
}

/**
 * GET /v1/reports/handles/{id}: its totals, each listed version, each model, then each drift finding (`row` drift,
 * newest first). A finding's `settings` is a list of values of any shape (a tool_choice object, null): one cell, its JSON.
 */
export function handleReportCsv(r: Json): string {
  const { handle, range, versions, models, drift, ...rest } = r as Json & { handle: Json; range: Json; versions: TotalsJson[]; models: TotalsJson[]; drift: Json[] };
  const ctx = flat({ handle, range });
  return table(HANDLE_COLUMNS, [
    { row: 'total', ...ctx, ...totals(rest) },
    ...versions.map((v) => ({ row: 'version', ...ctx, ...totals(v) })),
    ...models.map((m) => ({ row: 'model', ...ctx, ...totals(m) })),
    ...drift.map(({ settings, ...d }) => ({ row: 'drift', ...ctx, ...flat(d), settings: settings === undefined ? null : JSON.stringify(settings) })),
  ]);
}

/** GET /v1/requests: a row per request of the page. A reconciled request has 0 tokens of a class it does not list. */
export function requestListCsv(requests: Json[]): string {
  return table(
    REQUEST_COLUMNS,
    requests.map((q) => {
      const classes = q.classes as Record<string, number>;
      const known = q.status === 'reconciled';
      return { ...q, ...Object.fromEntries(CLASSES.map((c) => [`classes_${c}`, known ? (classes[c] ?? 0) : null])) };
    }),
  );
}

/** The file a browser saves: `<what>_<first day or start>_<last day>.csv`. */
export function csvFilename(what: string, range: { from?: unknown; to?: unknown }): string {
  const day = (v: unknown) => (typeof v === 'string' ? v.slice(0, 10) : null);
  const span = day(range.to) ? `_${day(range.from) ?? 'start'}_${day(range.to)}` : '';
  return `${what}${span}.csv`;
}

/** The UTF-8 byte-order mark, as csv-stringify's `bom` option writes it. */
const BOM = '\ufeff';

/** A CSV answer: a download named `filename`; `bom`: after a byte-order mark (see BomQuery); `headers`: more (a page's Link). */
export function csvAnswer(c: Context, body: string, filename: string, opts: { bom?: boolean; headers?: Record<string, string> } = {}): Response {
  return c.body(opts.bom ? BOM + body : body, 200, { 'content-type': CSV_TYPE, 'content-disposition': `attachment; filename="${filename}"`, ...opts.headers });
}
