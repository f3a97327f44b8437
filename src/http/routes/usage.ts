import { createRoute, z } from '@hono/zod-openapi';
import type { Reconciler } from '../../domain/reconcile/reconciler';
import { VERSIONS_LISTED, VERSIONS_LISTED_MAX, type Reports } from '../../domain/reconcile/reports';
import { LIST_SCAN_BUDGET, type RequestService } from '../../domain/requests';
import { CLASSES } from '../../domain/reconcile/waterfall';
import { listedClassTokens } from '../../domain/reconcile/request-summary';
import { DAY_MS, MAX_TIME, MIN_EPOCH_MS, type Clock } from '../../domain/clock';
import { logUnhandled, problemBody, statusOf } from '../problem';
import type { Context, Handler } from 'hono';
import type { TenantService } from '../../domain/tenants';
import { dayEnd, dayOf, dayStart, UTC } from '../../domain/time-zone';
import { readJson } from '../body';
import { fastPost, requestIdHeader, type FastPostDeps } from '../fast-route';
import type { TraceExport } from '../../otlp';
import { zodIssues } from '../../domain/validation';
import { invalid } from '../../domain/errors';
import { HANDLE_TYPES, handleIdPattern } from '../../domain/ids';
import { invalidInput, newRouter, type AppEnv } from '../router';
import { commonErrors, conflictErrors, IdParam, Limit, problemResponse, readErrors } from '../schemas';
import { HandleReportSchema, RequestListSchema, RequestViewSchema, TenantReportSchema, UsageBatchResultSchema, UsageResultSchema } from '../report-schemas';
import { failureView, outcomeView, requestSummaryView, segmentsView } from '../views';
import type { RenderedSegment } from '../../domain/render/request';
import { BomQuery, csvAnswer, csvFilename, FormatQuery, handleReportCsv, jsonOrCsv, requestListCsv, tenantReportCsv, wantsCsv } from '../csv';

const SECONDS_HINT = 'epoch milliseconds are expected; this looks like seconds (multiply by 1000)';
const TIME_FORMS = 'epoch milliseconds (a whole number) or RFC 3339 with a zone (2026-11-20T09:00:00Z, 2026-11-20T10:00:00+01:00)';
/** A log's zone-less time ("2026-11-20T09:00:00", Python's naive isoformat()): said so, not "Invalid ISO datetime". */
const zoneless = z.iso.datetime({ local: true });
/** Either form, one rule: a time before 1973 (or past what a date holds) is refused, as a number or a string. */
const time = z.union([
  z.number().int(),
  z.iso.datetime({ offset: true, error: (iss) => (zoneless.safeParse(iss.input).success ? `has no zone, so the moment is not known: add one (Z for UTC, or +01:00); expected ${TIME_FORMS}` : `expected ${TIME_FORMS}`) }),
], { error: `expected ${TIME_FORMS}` }).transform((v, ctx) => {
  const ms = typeof v === 'number' ? v : Date.parse(v);
  if (ms >= MIN_EPOCH_MS && ms <= MAX_TIME) return ms;
  const message = ms > MAX_TIME ? 'past the largest time a date can hold' : typeof v === 'number' && v > 0 ? SECONDS_HINT : 'before 1973: no model call is that old';
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
});

/** A request id as /v1/render and the proxy hand them out. */
const REQUEST_ID = /^req_[0-9A-Za-z]{21}$/;
const WHERE_IDS = "the request_id /v1/render answered (req_…), or the proxy's x-ph-request-id header";
/** The provider's own id for its answer (OpenAI's chatcmpl-…, resp_…; Anthropic's msg_…), sent where ours belongs. */
const PROVIDER_ID = /^(chatcmpl-|cmpl-|resp_|msg_)/;
const requestId = z.string({ error: (iss) => (iss.input === undefined ? `request_id is required: ${WHERE_IDS}` : `expected a string: ${WHERE_IDS}`) }).regex(REQUEST_ID, {
  error: (iss) =>
    typeof iss.input === 'string' && PROVIDER_ID.test(iss.input)
      ? `${JSON.stringify(iss.input.slice(0, 40))} is the provider's id for its answer, not ours: send ${WHERE_IDS}`
      : `a request_id from /v1/render or the proxy: ${WHERE_IDS}`,
});

const UsageRecord = z
  .strictObject({
    request_id: requestId,
    usage: z.record(z.string(), z.unknown()).optional().openapi({ description: "The provider's usage object as received." }),
    response: z
      .union([z.record(z.string(), z.unknown()), z.array(z.unknown())], { error: 'expected the response body (an object), or a streamed answer\'s chunks or events (a list)' })
      .optional()
      .openapi({
        description:
          "Or the whole response body as received; or a streamed answer as a list of its chunks or events, as received (Gemini's streamGenerateContent array, OpenAI chat chunks, Anthropic or Responses events), its usage read as the proxy reads the stream.",
      }),
    model: z.string().optional(),
    started_at: time.optional().openapi({ description: 'Epoch ms or RFC 3339; defaults to the render time.' }),
    first_byte_at: time.optional().openapi({ description: "When the answer started. Not given, it is unknown (null in GET /v1/requests/{id}): a later call's provider receipt decides whether this call's cache write was readable when that call started." }),
    finished_at: time.optional().openapi({ description: 'Defaults to receipt time; when started_at is given (an import), to first_byte_at or started_at. At most 5 minutes ahead of the service clock.' }),
    diagnostics: z.unknown().optional().openapi({ description: "The provider's own cache-miss explanation, if any." }),
  })
  .refine((r) => r.usage !== undefined || r.response !== undefined, { message: 'send "usage" or "response"', path: ['usage'] })
  .refine((r) => r.usage === undefined || r.response === undefined, { message: 'send "usage" or "response", not both', path: ['response'] })
  .openapi('UsageReport');

/** A time in a query string: RFC 3339, a day (`2026-12-01`: the tenant's day, see inRange) or epoch ms, as the CLI takes them. */
const epochMs = z.string().regex(/^\d{1,16}$/).transform(Number);
const day = z.iso.date().transform((d) => Date.parse(`${d}T00:00:00Z`));
const instant = z.iso.datetime({ offset: true }).transform((v) => Date.parse(v));
const queryTime = z
  .string()
  .transform((v, ctx) => {
    for (const form of [epochMs, day, instant]) {
      const parsed = form.safeParse(v);
      if (parsed.success) {
        // 0 is the beginning of time, a natural `from`; other small numbers are seconds.
        if (form === epochMs && parsed.data !== 0 && parsed.data < MIN_EPOCH_MS) {
          ctx.addIssue({ code: 'custom', message: SECONDS_HINT });
          return z.NEVER;
        }
        if (parsed.data <= MAX_TIME) return parsed.data;
        ctx.addIssue({ code: 'custom', message: 'past the largest time a date can hold' });
        return z.NEVER;
      }
    }
    // One message for the three forms (a union would name the first form's pattern).
    ctx.addIssue({ code: 'custom', message: "expected a day (2026-12-01, in the tenant's time zone), RFC 3339 with a zone (2026-12-01T09:30:00Z) or epoch ms" });
    return z.NEVER;
  })
  .openapi({ type: 'string', description: "RFC 3339, a day (YYYY-MM-DD, in the tenant's time zone) or epoch ms; reports count whole days of the tenant's time zone (UTC unless set)." });

const rangeQuery = z
  .object({
    from: queryTime.optional(),
    to: queryTime.optional(),
    model: z.string().min(1).optional(),
    format: FormatQuery,
    bom: BomQuery,
  });

/** A handle type in a query string, refused with one message naming the parameter. */
const handleType = (name: string) => z.enum(HANDLE_TYPES, { error: `${name} must be artifact, bundle or session` }).optional();

const TenantReportQuery = rangeQuery.extend({
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(100_000)
    .optional()
    .openapi({ description: 'Only the first `limit` handles by leaked money (`handles_total` says how many there are); all of them when absent.' }),
  type: handleType('type').openapi({
    description:
      'Only handles of this type in `handles` and `handles_total` (an agent with a session per conversation has hundreds: `type=session` ranks them apart). The totals and `no_handle` are the whole tenant\'s whatever it is. Named as the rows name it (`type`; `kind` is an artifact\'s kind).',
  }),
  kind: handleType('kind').openapi({ param: { deprecated: true }, description: 'The older name of `type`, kept as an alias (it means the handle type here, not an artifact\'s kind): the same values; with `type` too, both must agree.' }),
  days: z
    .enum(['true', 'false'], { error: 'days must be true or false' })
    .transform((v) => v === 'true')
    .optional()
    .openapi({ type: 'boolean', description: "With `true`, `days` gives the totals of each day (in the tenant's time zone) of the range that has figures (read from the same daily totals, one row a day and model)." }),
  by_type: z
    .enum(['true', 'false'], { error: 'by_type must be true or false' })
    .transform((v) => v === 'true')
    .optional()
    .openapi({ type: 'boolean', description: "With `true`, `by_type` gives each handle type's figures summed: how many of its handles have figures, and their rows added up (every handle of the type, whatever `type` and `limit` list)." }),
});

/** A whole number from 1 to `max` in a query string, refused with one message saying so. */
const wholeNumber = (name: string, max: number) => {
  const message = `${name} must be a whole number from 1 to ${max.toLocaleString('en-US')}`;
  return z
    .string()
    .regex(/^[0-9]{1,7}$/, message)
    .transform(Number)
    .pipe(z.number().int().min(1, message).max(max, message));
};

const HandleReportQuery = rangeQuery.extend({
  versions: wholeNumber('versions', VERSIONS_LISTED_MAX)
    .default(VERSIONS_LISTED)
    .openapi({
      type: 'integer',
      minimum: 1,
      maximum: VERSIONS_LISTED_MAX,
      default: VERSIONS_LISTED,
      description: 'How many versions `versions` lists, the newest first (a session has one per turn). The totals and `models` are over every version whatever this is; `versions_total` and `versions_listed` say which are listed.',
    }),
  versions_through: wholeNumber('versions_through', 1_000_000)
    .optional()
    .openapi({
      type: 'integer',
      minimum: 1,
      description: 'The newest version to list (the latest when absent, or when past it): `versions_listed.from - 1` of one answer lists the versions before it.',
    }),
});

// A parameter it does not take (a status filter) is refused, as on every route (query-params.ts).
const ListRequestsQuery = z.object({
  from: queryTime.optional().openapi({ description: "Only requests whose call started on or after this day of the tenant's time zone (RFC 3339, a day or epoch ms; whole days, as reports read their range and count a request on the day it started: a call imported from a log is listed on its own day). A call not reported yet starts at its render time." }),
  to: queryTime.optional().openapi({ description: "Only requests whose call started on or before this day of the tenant's time zone (its whole day)." }),
  handle: z
    .string()
    .regex(handleIdPattern(), 'expected a handle id (art_, bnd_ or ses_ and 21 letters or digits)')
    .optional()
    .openapi({ description: 'Only requests that referenced this handle (a bundle covers its members; a session, also turns sent while it was empty).' }),
  class: z
    .enum(CLASSES, { error: `class must be one of ${CLASSES.join(', ')}` })
    .optional()
    .openapi({
      description: `Only reconciled requests with tokens of this waterfall class: on the segments of \`handle\` when it is given, else on any handle's segment (inline content is no handle's). Each line then has \`class_tokens\`. Every class but \`captured\` and \`cold\` is read from an index (with \`handle\` or \`type\` too): its page is exact, \`limit\` lines or the last page, without \`scanned\`. \`captured\` and \`cold\` (most requests have them), and \`model\`, are read from the list (or the index) in its order, at most ${LIST_SCAN_BUDGET.toLocaleString('en-US')} requests of it a page; one that reads them all first says \`scan_budget_spent\` and may be short, even empty, its \`next_cursor\` going on from there. Follow \`next_cursor\` until it is null to see every match.`,
    }),
  type: handleType('type').openapi({
    description:
      "With `class`, and without `handle`: only reconciled requests with tokens of that class on the segments of handles of this type (`session`: the overview's sessions row), `class_tokens` and `classes` being those handles' tokens, added up as `GET /v1/reports?by_type=true` adds up their rows. Read as `class` is: from its index, but for `captured` and `cold`.",
  }),
  model: z.string().min(1).optional().openapi({ description: 'Only requests sent to this model (its name as sent, as reports count it). No index holds a model: read from the list (or the index of `class` or `no_handle` beside it) in its order, within the scan budget, as `class` says of `captured`.' }),
  // A boolean as days, by_type and bom are (the document says so): a client that sends false gets every request.
  no_handle: z
    .enum(['true', 'false'], { error: 'no_handle must be true or false' })
    .transform((v) => v === 'true')
    .optional()
    .openapi({
      type: 'boolean',
      description:
        "With `true`: only the calls the reports count in `no_handle`, reconciled with their whole prompt inline and no handle named (what to mint a handle for); with `model`, that model's (a row of the overview's calls through no handle). Not with `handle`, `type` or `class`; `false` is no filter. Read from an index: an exact page (with `model`, that index read within the scan budget).",
    }),
  limit: Limit,
  cursor: z
    .string()
    .regex(/^\d{1,16}_req_[0-9A-Za-z]{21}$/, 'cursor must be a next_cursor value')
    .transform((v) => {
      const at = v.indexOf('_');
      return { startedAt: Number(v.slice(0, at)), id: v.slice(at + 1) };
    })
    .optional()
    .openapi({ type: 'string', description: "The previous page's `next_cursor`: the page after it." }),
  format: FormatQuery,
  bom: BomQuery,
});

const json = (schema: z.ZodType, description: string) => ({ content: { 'application/json': { schema } }, description });

/**
 * The range in the tenant's days: a day given by name (`2026-11-30`) is that day in its time zone (the query parsed
 * it as UTC's), an instant is where it is. `from` on a day after `to` (today, when `to` is left out) is refused.
 */
function inRange<R extends { from?: number; to?: number }>(c: Context, range: R, now: number, zone: string): R {
  const named = (end: 'from' | 'to') => zone !== UTC && DAY_NAME.test(c.req.query(end) ?? '');
  // The day each end is on: a named day is itself (one the zone skipped too: a range of it alone is empty, not refused).
  const dayAt = (end: 'from' | 'to', v: number) => (named(end) ? v / DAY_MS : dayOf(v, zone));
  if (range.from !== undefined && dayAt('from', range.from) > (range.to === undefined ? dayOf(now, zone) : dayAt('to', range.to)))
    throw invalid('query:from', range.to === undefined ? 'from is after to (today, when to is not given)' : 'from is after to');
  // `to` by the day's last instant: a day the zone skipped (Pacific/Apia's 2011-12-30) has none, and its first is the next day's.
  const local = { ...range };
  if (local.from !== undefined && named('from')) local.from = dayStart(local.from / DAY_MS, zone);
  if (local.to !== undefined && named('to')) local.to = dayEnd(local.to / DAY_MS, zone);
  return local;
}

const DAY_NAME = /^\d{4}-\d{2}-\d{2}$/;

/** A CSV file's name: the range's first and last day, named in the tenant's zone. */
function rangeDays(range: { from: string | null; to: string }, zone: string) {
  const name = (iso: string) => new Date(dayOf(Date.parse(iso), zone) * DAY_MS).toISOString();
  return { from: range.from === null ? null : name(range.from), to: name(range.to) };
}

/** A CSV page's next page: this query with the cursor after it (RFC 8288; a reference relative to this URL's origin). */
function nextLink(url: string, next: string | null): Record<string, string> {
  if (!next) return {};
  const u = new URL(url);
  u.searchParams.set('cursor', next);
  return { link: `<${u.pathname}${u.search}>; rel="next"` };
}

/** A page that read the list in its order (see ListRequestsQuery's `class`): what the JSON's `scanned` and `scan_budget_spent` say. */
function scanHeaders(page: { scanned?: number; budgetSpent?: boolean }): Record<string, string> {
  return page.scanned === undefined ? {} : { 'x-ph-scanned': String(page.scanned), 'x-ph-scan-budget-spent': String(page.budgetSpent) };
}

export const USAGE_PATH = '/v1/usage';

/**
 * POST /v1/usage, the ingestion hot path: one report per model call. It runs
 * ahead of the global middleware with the same checks in the same order
 * (size, content type, key, JSON, schema) and the same problems.
 */
export function usageRoute(deps: FastPostDeps & { reconciler: Reconciler; traces?: TraceExport }): Handler<AppEnv> {
  return fastPost(deps, USAGE_PATH, async (c, auth) => {
    const parsed = UsageRecord.safeParse(await readJson(c, deps.maxBodyBytes));
    if (!parsed.success) throw invalidInput(parsed.error, 'json');
    // The trace export (when on): the report's span goes into the caller's trace, as a proxied call's does.
    deps.traces?.parent(auth.tenantId, parsed.data.request_id, c.req.header('traceparent'), c.req.header('tracestate'));
    // A report reconciled has made its span by now (after its commit); any other leaves the parent to forget.
    let result;
    try {
      result = await deps.reconciler.ingest(auth.tenantId, parsed.data);
    } finally {
      deps.traces?.forget(auth.tenantId, [parsed.data.request_id]);
    }
    return c.json({ ...result, outcome: outcomeView(result.outcome) } as Record<string, unknown>, result.duplicate ? 200 : 201, requestIdHeader(c));
  });
}

export function usageRoutes(deps: { reconciler: Reconciler; reports: Reports; requests: RequestService; tenants: Pick<TenantService, 'zoneOf'>; clock: Clock; batchMax: number; traces?: TraceExport }) {
  const app = newRouter();
  // Each record is checked on its own (a bad one does not sink the batch), so the schema takes any; the
  // document names the shape each record must have.
  const Batch = z
    .strictObject({
      records: z
        .array(z.unknown())
        .min(1)
        .max(deps.batchMax)
        .openapi({ items: { $ref: '#/components/schemas/UsageReport' }, description: 'Usage reports, each accepted or rejected on its own.' }),
    })
    .openapi('UsageBatch');

  const routes = {
    usage: createRoute({
      operationId: 'reportUsage', method: 'post', path: USAGE_PATH, tags: ['usage'], summary: 'Reconcile a provider usage report against a rendered request',
      description: 'Idempotent by request_id: the same report again answers 200 with the stored result; a different one 409.',
      request: { body: { content: { 'application/json': { schema: UsageRecord } }, required: true } },
      responses: { 200: json(UsageResultSchema, 'Already reconciled with this report'), 201: json(UsageResultSchema, 'Reconciled'), ...commonErrors, 409: conflictErrors[409] },
    }),
    batch: createRoute({
      operationId: 'reportUsageBatch', method: 'post', path: '/v1/usage/batch', tags: ['usage'], summary: 'Import many usage reports; each accepted or rejected on its own',
      request: { body: { content: { 'application/json': { schema: Batch } }, required: true } },
      responses: { 200: json(UsageBatchResultSchema, 'One result per record, in order'), ...commonErrors },
    }),
    handleReport: createRoute({
      operationId: 'getHandleReport', method: 'get', path: '/v1/reports/handles/{id}', tags: ['reports'], summary: 'Reuse waterfall and money for one handle',
      request: { params: z.object({ id: IdParam }), query: HandleReportQuery },
      responses: { 200: jsonOrCsv(HandleReportSchema, 'The report'), ...readErrors },
    }),
    tenantReport: createRoute({
      operationId: 'getTenantReport', method: 'get', path: '/v1/reports', tags: ['reports'], summary: "The tenant's totals and one row per handle, by leaked money",
      request: { query: TenantReportQuery },
      responses: { 200: jsonOrCsv(TenantReportSchema, 'The report'), 401: readErrors[401], 422: readErrors[422] },
    }),
    list: createRoute({
      operationId: 'listRequests', method: 'get', path: '/v1/requests', tags: ['reports'], summary: 'Recorded requests, newest first by when the call started; with `handle`, those that referenced it',
      request: { query: ListRequestsQuery },
      responses: { 200: jsonOrCsv(RequestListSchema, 'A page of requests (as CSV, the next page in a `Link: <…>; rel="next"` header)'), 401: readErrors[401], 404: readErrors[404], 422: readErrors[422] },
    }),
    request: createRoute({
      operationId: 'getRequest', method: 'get', path: '/v1/requests/{id}', tags: ['reports'], summary: 'A recorded request: segments with outcomes, usage, diagnostics',
      request: { params: z.object({ id: z.string().regex(REQUEST_ID, 'expected a request id (req_ and 21 letters or digits)').openapi({ param: { name: 'id', in: 'path' } }) }) },
      responses: { 200: json(RequestViewSchema, 'The request'), ...readErrors, 404: problemResponse('not_found: no such request for this tenant; request_pruned: rendered before the retention horizon (PH_REQUEST_RETENTION_DAYS, POST /v1/prune), its detail deleted') },
    }),
  };

  // Served by usageRoute(), mounted ahead of the global middleware in app.ts; documented here.
  app.openAPIRegistry.registerPath(routes.usage);

  app.openapi(routes.batch, async (c) => {
    const records = c.req.valid('json').records;
    // Each record is validated and reconciled on its own: one bad record does not sink the batch.
    const parsed = records.map((r) => UsageRecord.safeParse(r));
    const valid = parsed.flatMap((p, i) => (p.success ? [{ i, r: p.data }] : []));
    // The trace export (when on): each record's span a child of the batch request's caller span, as a report's is.
    deps.traces?.parent(c.get('auth').tenantId, valid.map((v) => v.r.request_id), c.req.header('traceparent'), c.req.header('tracestate'));
    const outcomes = await deps.reconciler.ingestMany(
      c.get('auth').tenantId,
      valid.map((v) => v.r),
      valid.map((v) => v.i),
    );
    // The records reconciled have made their spans (after their commit); the refused and duplicates leave theirs.
    deps.traces?.forget(c.get('auth').tenantId, valid.map((v) => v.r.request_id));
    const results: unknown[] = parsed.map((p, i) => (p.success ? null : { index: i, status: 422, problem: problemBody(c, 'invalid_request', 'invalid record', zodIssues(p.error, `/records/${i}`)) }));
    valid.forEach(({ i }, k) => {
      const o = outcomes[k]!;
      if (o.ok)
        results[i] = { index: i, status: o.result.duplicate ? 200 : 201, request_id: o.result.request_id, capture: o.result.outcome.capture, ...(o.result.outcome.applied_late ? { applied_late: true } : {}) };
      // The status its problem says, as a report alone is answered (a pruned request's is a 404, not a 422).
      else if ('error' in o) results[i] = { index: i, status: statusOf(o.error.code), problem: problemBody(c, o.error.code, o.error.message, o.error.errors) };
      else {
        // Ours, not the record's: logged as any unhandled error is, and answered as one for this record alone.
        logUnhandled(c, o.internal);
        results[i] = { index: i, status: 500, problem: problemBody(c, 'internal', 'An internal error occurred reconciling this record; quote the requestId when reporting it.', []) };
      }
    });
    const accepted = results.filter((r) => (r as { status: number }).status < 300).length;
    return c.json({ accepted, rejected: results.length - accepted, results }, 200);
  });

  app.openapi(routes.handleReport, (c) => {
    const now = deps.clock.now();
    const { versions, versions_through: through, format, bom, ...range } = c.req.valid('query');
    const zone = deps.tenants.zoneOf(c.get('auth').tenantId);
    const report = deps.reports.handle(c.get('auth').tenantId, c.req.valid('param').id, inRange(c, range, now, zone), now, { versions, through });
    c.header('vary', 'Accept');
    if (wantsCsv(c, format)) return csvAnswer(c, handleReportCsv(report), csvFilename(`report_${report.handle.id}`, rangeDays(report.range, zone)), { bom });
    return c.json(report as unknown as Record<string, unknown>, 200);
  });

  app.openapi(routes.tenantReport, (c) => {
    const now = deps.clock.now();
    const { limit, type: given, kind, days, by_type: byType, format, bom, ...range } = c.req.valid('query');
    // kind= is type='s older name: either, or both when they agree.
    if (given && kind && given !== kind) throw invalid('query:kind', `kind is the older name of type: type=${given} and kind=${kind} disagree (give type alone)`);
    const type = given ?? kind;
    const tenantId = c.get('auth').tenantId;
    const zone = deps.tenants.zoneOf(tenantId);
    const local = inRange(c, range, now, zone);
    const report = deps.reports.tenant(tenantId, local, now, limit, type && [type]);
    const extra = { ...(days ? { days: deps.reports.tenantDaysOf(tenantId, local, now) } : {}), ...(byType ? { by_type: deps.reports.byType(tenantId, local, now) } : {}) };
    const body = { ...report, ...extra } as unknown as Record<string, unknown>;
    c.header('vary', 'Accept');
    if (wantsCsv(c, format)) return csvAnswer(c, tenantReportCsv(body), csvFilename('report', rangeDays(report.range, zone)), { bom });
    return c.json(body, 200);
  });

  app.openapi(routes.list, (c) => {
    const q = c.req.valid('query');
    const range = inRange(c, { from: q.from, to: q.to }, deps.clock.now(), deps.tenants.zoneOf(c.get('auth').tenantId));
    const page = deps.requests.list(c.get('auth').tenantId, { handleId: q.handle, cursor: q.cursor, limit: q.limit, range, tokenClass: q.class, handleType: q.type, model: q.model, noHandle: q.no_handle });
    const next = page.next ? `${page.next.startedAt}_${page.next.id}` : null;
    const cls = q.class;
    const requests = page.rows.map((row) => ({ ...requestSummaryView(row, q.handle, q.type), ...(cls ? { class_tokens: listedClassTokens(row, cls, q.handle, q.type) } : {}) }));
    const scan = page.scanned === undefined ? {} : { scanned: page.scanned, scan_budget_spent: page.budgetSpent };
    c.header('vary', 'Accept');
    if (wantsCsv(c, q.format)) return csvAnswer(c, requestListCsv(requests), 'requests.csv', { bom: q.bom, headers: { ...nextLink(c.req.url, next), ...scanHeaders(page) } });
    return c.json({ requests, next_cursor: next, ...scan } as Record<string, unknown>, 200);
  });

  app.openapi(routes.request, (c) => {
    const row = deps.requests.get(c.get('auth').tenantId, c.req.valid('param').id);
    return c.json(
      {
        id: row.id,
        status: row.status,
        format: row.format,
        model: row.model,
        catalog_entry: row.catalogEntry,
        catalog_fallback: row.catalogFallback,
        rendered_at: new Date(row.renderedAt).toISOString(),
        started_at: row.startedAt ? new Date(row.startedAt).toISOString() : null,
        // A first byte the report did not give is unknown (simulated as such): null, not the time stored in its place.
        first_byte_at: row.firstByteAt && (row.outcome as { sim?: { firstByteAt?: number | null } } | null)?.sim?.firstByteAt !== null ? new Date(row.firstByteAt).toISOString() : null,
        finished_at: row.finishedAt ? new Date(row.finishedAt).toISOString() : null,
        segments: segmentsView(row.segments as RenderedSegment[]),
        breakpoints: row.breakpoints,
        prompt_cache_key: row.promptCacheKey ?? null,
        cache_ttl: row.cacheTtl ?? null,
        prediction: row.prediction,
        outcome: outcomeView(row.outcome),
        usage: row.usage ?? null,
        usage_raw: row.status === 'failed' ? null : (row.usageRaw ?? null),
        // A provider that refused: its status and error body (null status: it could not be reached).
        error: row.status === 'failed' ? failureView(row.usageRaw) : null,
        diagnostics: row.diagnostics ?? null,
      } as Record<string, unknown>,
      200,
    );
  });

  return app;
}
