import { and, asc, desc, eq, gt, gte, isNull, lt, lte, sql } from 'drizzle-orm';
import { statSync, type Stats } from 'node:fs';
import type { Db, WalSync } from './db';
import { DELETING_NAME } from './store';
import { BatchMissingError, batchVariant, compactOutcome, compactSegments, expandOutcome, expandSegments, type ReadBatches } from './compact';
import { apiKeys, blobs, calibration, driftFindings, handlePins, handles, handleVersions, requestInline, requests, rollups, tenants } from './schema';
import { DAY_MS, type Clock } from '../domain/clock';
import { classMarks, pathHandles, SUMMARY_VERSION, type RequestSummary } from '../domain/reconcile/request-summary';
import { NO_HANDLE, ROLLUP_VALUE_COLUMNS } from '../domain/reconcile/waterfall';
import { ID_PREFIX, type HandleType } from '../domain/ids';
import type {
  ApiKeyRow,
  AppendResult,
  HandleListQuery,
  HandleRollupQuery,
  CalibrationRow,
  DayRollupRow,
  ModelRollupRow,
  DriftRow,
  ArtifactKindRow,
  HandleRow,
  IngestWrite,
  HandleSums,
  InlineRow,
  WriteOp,
  RollupDelta,
  RollupQuery,
  ScopeSnapshotRow,
  RollupRow,
  NewVersion,
  PruneCandidate,
  SnapshotCoverage,
  RequestCursor,
  RequestListCursor,
  RequestListQuery,
  RequestRow,
  RenameResult,
  Store,
  TenantRow,
  UnreadWrite,
  VersionRow,
} from './store';

type Statement = ReturnType<Db['$client']['prepare']>;

const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));
const parse = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : (v ?? null));

function requestParams(r: RequestRow, segments: unknown) {
  return {
    id: r.id,
    tenantId: r.tenantId,
    scope: r.scope,
    format: r.format,
    model: r.model,
    catalogEntry: r.catalogEntry,
    catalogFallback: r.catalogFallback ? 1 : 0,
    renderedAt: r.renderedAt,
    segments: json(segments),
    breakpoints: json(r.breakpoints),
    promptCacheKey: r.promptCacheKey,
    cacheTtl: r.cacheTtl ?? null,
    messageSettings: r.messageSettings ?? null,
    providerHistory: r.providerHistory ?? null,
    prediction: json(r.prediction),
  };
}

/**
 * A request with its reconciliation, if any. Rows are read raw (arrays, in this order; see requestFromRow): a row of
 * 28 named columns built as an object cost more than the select itself.
 */
const REQUEST_SELECT = `select r.id, r.tenant_id, r.scope, r.format, r.model, r.catalog_entry, r.catalog_fallback, r.rendered_at, r.segments,
  r.breakpoints, r.prompt_cache_key, r.cache_ttl, r.message_settings, r.provider_history, r.prediction, r.status, r.started_at, r.finished_at, r.usage_raw,
  c.started_at, c.first_byte_at, c.finished_at, c.report_hash, c.usage_raw, c.usage, c.diagnostics, c.outcome, c.write_premium, c.write_read
  from requests r left join reconciliations c on c.seq = r.reconciled_seq`;

/**
 * A request as the domain sees it (JSON parsed, its segments and outcome expanded from their compact form: see
 * compact.ts), from a raw row of REQUEST_SELECT (its columns in that order; a list's adds the summary and handles).
 */
function requestFromRow(row: unknown[], batches: (tenantId: string) => ReadBatches): RequestRow {
  const [id, tenantId, scope, format, model, catalogEntry, catalogFallback, renderedAt, segments, breakpoints, promptCacheKey, cacheTtl, messageSettings, providerHistory, prediction, status, startedAt, finishedAt, usageRaw] = row;
  const [cStartedAt, cFirstByteAt, cFinishedAt, cReportHash, cUsageRaw, cUsage, cDiagnostics, cOutcome, cWritePremium, cWriteRead, summary, handleIds] = row.slice(19);
  const reconciled = cReportHash !== null && cReportHash !== undefined;
  return {
    id: id as string,
    tenantId: tenantId as string,
    scope: scope as string,
    format: format as string,
    model: model as string,
    catalogEntry: catalogEntry as string,
    catalogFallback: catalogFallback === 1,
    renderedAt: renderedAt as number,
    segments: expandSegments(parse(segments), batches(tenantId as string)),
    breakpoints: parse(breakpoints),
    promptCacheKey: (promptCacheKey as string | null) ?? null,
    cacheTtl: (cacheTtl as string | null) ?? null,
    messageSettings: (messageSettings as string | null) ?? null,
    providerHistory: (providerHistory as string | null) ?? null,
    prediction: parse(prediction),
    status: status as RequestRow['status'],
    // A failed request keeps its times and error body on its own row.
    startedAt: ((reconciled ? cStartedAt : startedAt) as number | null) ?? null,
    firstByteAt: ((reconciled ? cFirstByteAt : null) as number | null) ?? null,
    finishedAt: ((reconciled ? cFinishedAt : finishedAt) as number | null) ?? null,
    reportHash: (cReportHash as string | null) ?? null,
    usageRaw: parse(reconciled ? cUsageRaw : usageRaw),
    usage: parse(cUsage),
    diagnostics: parse(cDiagnostics),
    outcome: expandOutcome(parse(cOutcome)),
    summary: parse(summary),
    handles: parse(handleIds),
    writePremium: parse(cWritePremium),
    writeRead: cWriteRead === 1,
  };
}

/** A rollup row's key columns (upsertRollup's first parameters), and its values at 0. */
const ROLLUP_KEYS = 5;
const ROLLUP_ZEROS: number[] = ROLLUP_VALUE_COLUMNS.map(() => 0);

/** Spans (rollups_span): a month's is named by its first day; every day's by this, below any day a Date holds (±1e8). */
const ALL_DAYS = -1e9;

// Rollup columns: request count, then each class's tokens and requests, then money.

// The group commit's statements.
const SQL = {
  insertRequest: `insert into requests (id, tenant_id, scope, format, model, catalog_entry, catalog_fallback, rendered_at, segments, breakpoints, prompt_cache_key, cache_ttl, message_settings, provider_history, prediction, status)
    values (@id, @tenantId, @scope, @format, @model, @catalogEntry, @catalogFallback, @renderedAt, @segments, @breakpoints, @promptCacheKey, @cacheTtl, @messageSettings, @providerHistory, @prediction, 'rendered')`,
  insertLine: 'insert into request_lines (request_id, handles) values (@id, @handles)',
  insertInline: 'insert into request_inline (request_id, segment, text, truncated, expires_at) values (@requestId, @segment, @text, @truncated, @expiresAt)',
  markFailed: `update requests set status = 'failed', started_at = @startedAt, finished_at = @finishedAt, usage_raw = @usageRaw where id = @id and status = 'rendered'`,
  // As markFailed: only a request neither failed nor reconciled (which its row's status says, past its segments).
  markLineFailed: `update request_lines set failed_started_at = @startedAt where request_id = @id and failed_started_at is null
    and not exists (select 1 from reconciliations where request_id = @id)`,
  // A report appends its results and marks the request (a few bytes: the rendered row keeps its size).
  reconcile: `insert into reconciliations (seq, request_id, started_at, first_byte_at, finished_at, report_hash, usage_raw, usage, diagnostics, outcome, write_premium)
    values (@seq, @id, @startedAt, @firstByteAt, @finishedAt, @reportHash, @usageRaw, @usage, @diagnostics, @outcome, @writePremium)`,
  markReconciled: `update requests set status = 'reconciled', reconciled_seq = @seq where id = @id`,
  insertSummary: 'insert into request_summaries (seq, version, summary) values (@seq, @version, @summary)',
  insertDrift: 'insert into drift_findings (tenant_id, handle_id, request_id, previous_request_id, at, model, finding) values (@tenantId, @handleId, @requestId, @previousRequestId, @at, @model, @finding)',
  calibrate: `insert into calibration (tenant_id, model, family, provider_tokens, estimated_tokens, reports) values (@tenantId, @model, @family, @providerTokens, @estimatedTokens, @reports)
    on conflict (tenant_id, model) do update set
    provider_tokens = case when family = excluded.family then provider_tokens + excluded.provider_tokens else excluded.provider_tokens end,
    estimated_tokens = case when family = excluded.family then estimated_tokens + excluded.estimated_tokens else excluded.estimated_tokens end,
    reports = case when family = excluded.family then reports + excluded.reports else excluded.reports end, family = excluded.family`,
  insertRequestHandle: 'insert or ignore into request_handles (tenant_id, handle_id, rendered_at, request_id, started_at) values (@tenantId, @handleId, @renderedAt, @requestId, @renderedAt)',
  // A request is listed by its start: the render time until its report or its failure gives the call's own.
  insertStart: 'insert into request_starts (request_id, tenant_id, started_at) values (@id, @tenantId, @startedAt)',
  setStart: 'update request_starts set started_at = @startedAt where request_id = @id',
  setHandlesStart: 'update request_handles set started_at = @startedAt where request_id = @id',
  // A failure's start places the request only as markFailed records it: neither reconciled (its report's start stays,
  // where the index of rare classes has it too) nor failed before. Run before markFailed, which changes the status.
  setFailedStart: `update request_starts set started_at = @startedAt where request_id = @id and exists (select 1 from requests where id = @id and status = 'rendered')`,
  setFailedHandlesStart: `update request_handles set started_at = @startedAt where request_id = @id and exists (select 1 from requests where id = @id and status = 'rendered')`,
  // A reconciled call with no handle on its paths is counted in `no_handle` unless it named one (a session with no turns yet).
  setNoHandle: 'update request_starts set no_handle = 1 where request_id = @id and not exists (select 1 from request_handles where request_id = @id)',
  // Its rare classes (classMarks), at its start: written only for a request that has one.
  insertClass: 'insert or ignore into request_classes (tenant_id, class, within, started_at, request_id) values (@tenantId, @cls, @within, @startedAt, @id)',
  // What a later read left of a write's premium: the parts still unread (none: read whole).
  markRead: 'update reconciliations set write_premium = @left, write_read = @read where seq = (select reconciled_seq from requests where id = @id)',
  // A write to a day a span holds: that span (its month's, and every day's) is made again when next read.
  dropSpans: `delete from rollups_span_through where tenant_id = @tenantId and span in (@month, ${ALL_DAYS}) and through >= @day`,
  // A scope's snapshot replaces its last; its entries are a chain of parts (see ScopeStates).
  upsertSnapshot: `insert into scope_snapshots (scope, seq, rows, version, rules, chain, parts, state) values (@scope, @seq, @rows, @version, @rules, @chain, @parts, @state)
    on conflict (scope) do update set seq = excluded.seq, rows = excluded.rows, version = excluded.version, rules = excluded.rules,
    chain = excluded.chain, parts = excluded.parts, state = excluded.state`,
  dropOtherChains: 'delete from scope_snapshot_changes where scope = @scope and chain != @chain',
  appendSnapshotChanges: 'insert into scope_snapshot_changes (scope, chain, part, entries) values (@scope, @chain, @part, @entries)',
  // One upsert adds to every counter of a rollup row. Its parameters by position (a row's key, then its values in
  // ROLLUP_VALUE_COLUMNS' order): a long session's call writes a row per version, ~600, and binding each by name cost
  // a third of running them.
  upsertRollup: `insert into rollups (tenant_id, handle_id, version, day, model, ${ROLLUP_VALUE_COLUMNS.join(', ')})
    values (?, ?, ?, ?, ?, ${ROLLUP_VALUE_COLUMNS.map(() => '?').join(', ')})
    on conflict (tenant_id, handle_id, version, day, model) do update set
    ${ROLLUP_VALUE_COLUMNS.map((c) => `${c} = ${c} + excluded.${c}`).join(', ')}`,
};

/**
 * GET /v1/requests: newest first by start after a cursor, the tenant's requests (request_starts_tenant) or those that
 * referenced a handle (request_handles_started), each a range of its index read in its order (a test explains them).
 */
export const LIST_SQL = {
  tenant: `select request_id as id, started_at from request_starts where tenant_id = @tenantId and started_at >= @from
    and (started_at < @at or (started_at = @at and request_id < @id)) order by started_at desc, request_id desc limit @limit`,
  handle: `select request_id as id, started_at from request_handles where tenant_id = @tenantId and handle_id = @handle
    and started_at >= @from and (started_at < @at or (started_at = @at and request_id < @id)) order by started_at desc, request_id desc limit @limit`,
  // `no_handle=true` (request_starts_no_handle, a partial index of those calls only), a rare `class=` (request_classes,
  // on '*', a handle or a type): each a range of its index, as the two above.
  noHandle: `select request_id as id, started_at from request_starts where tenant_id = @tenantId and no_handle = 1 and started_at >= @from
    and (started_at < @at or (started_at = @at and request_id < @id)) order by started_at desc, request_id desc limit @limit`,
  class: `select request_id as id, started_at from request_classes where tenant_id = @tenantId and class = @cls and within = @within
    and started_at >= @from and (started_at < @at or (started_at = @at and request_id < @id)) order by started_at desc, request_id desc limit @limit`,
};

/** Pruning's statements: a batch's ids are a JSON array (`@ids`). */
const IN_BATCH = 'in (select value from json_each(@ids))';
const PRUNE_SQL = {
  // By requests_tenant, oldest first after the cursor. The reconciliation is found by its request_id (the request's
  // own reconciled_seq sits after its segments: reading it walks their overflow pages, as for a list).
  candidates: `select r.id, r.rendered_at, r.scope, c.seq, c.started_at from requests r left join reconciliations c on c.request_id = r.id
    where r.tenant_id = @tenantId and r.rendered_at < @before and r.rendered_at >= @at and (r.rendered_at > @at or r.id > @id)
    order by r.rendered_at, r.id limit @limit`,
  // Children first (foreign keys).
  summaries: `delete from request_summaries where seq in (select seq from reconciliations where request_id ${IN_BATCH})`,
  reconciliations: `delete from reconciliations where request_id ${IN_BATCH}`,
  lines: `delete from request_lines where request_id ${IN_BATCH}`,
  classes: `delete from request_classes where request_id ${IN_BATCH}`,
  starts: `delete from request_starts where request_id ${IN_BATCH}`,
  inline: `delete from request_inline where request_id ${IN_BATCH}`,
  handles: `delete from request_handles where request_id ${IN_BATCH}`,
  requests: `delete from requests where id ${IN_BATCH}`,
  // The sessions a batch's requests name, read before their rows go: a session no request names any more has its
  // stored batches deleted (every request of a session refers to its batches from the first on).
  sessionsOf: `select distinct handle_id from request_handles where request_id ${IN_BATCH} and handle_id like 'ses\\_%' escape '\\'`,
  unusedBatches: `delete from session_batches where tenant_id = @tenantId and session_id = @session
    and not exists (select 1 from request_handles where tenant_id = @tenantId and handle_id = @session)`,
  countScope: 'insert into scope_pruned (scope, rows) values (@scope, @rows) on conflict (scope) do update set rows = rows + excluded.rows',
  setBefore: `insert into request_retention (id, pruned_before) values (1, @before)
    on conflict (id) do update set pruned_before = max(pruned_before, excluded.pruned_before)`,
};

/** A request's rows, children first (foreign keys): pruning's statements, by the same `@ids`. */
const REQUEST_ROWS = ['summaries', 'reconciliations', 'lines', 'classes', 'starts', 'inline', 'handles', 'requests'] as const;

/**
 * A tenant's deletion (deleteTenantBatch). Its tables keyed by tenant, then by its cache scopes (`<tenant>|provider|…`:
 * the range from `<tenant>|` up to `<tenant>}`, '}' following '|'), each `@n` rows at a time by rowid; its requests and
 * handles with their children (`@ids`).
 */
const TENANT_TABLES = ['session_batches', 'request_handles', 'request_classes', 'request_starts', 'drift_findings', 'rollups', 'rollups_span', 'rollups_span_through', 'calibration'];
const SCOPE_TABLES = ['scope_snapshot_changes', 'scope_snapshots', 'scope_pruned'];
const TENANT_SQL = {
  requestIds: 'select id from requests where tenant_id = @t limit @n',
  // A handle's versions counted by the key: a long session's thousands are a batch of their own.
  handleIds: 'select h.id, (select count(*) from handle_versions v where v.handle_id = h.id) as versions from handles h where h.tenant_id = @t limit @n',
  digests: `select distinct content_digest from handle_versions where handle_id ${IN_BATCH} and content_digest is not null`,
  pinsFrom: `delete from handle_pins where from_id ${IN_BATCH}`,
  pinsTo: `delete from handle_pins where to_id ${IN_BATCH}`,
  versions: `delete from handle_versions where handle_id ${IN_BATCH}`,
  handles: `delete from handles where id ${IN_BATCH}`,
  // Content-addressed: another tenant's version may hold the same bytes, and keeps them.
  blobs: `delete from blobs where digest in (select value from json_each(@digests))
    and digest not in (select content_digest from handle_versions where content_digest is not null)`,
  keys: 'delete from api_keys where tenant_id = @t',
  tenant: 'delete from tenants where id = @t',
};

/**
 * Spans hold days at least this many before today: reports for yesterday still come after midnight (a request started
 * before it, a write read within its TTL), and each would undo the spans that held it.
 *
 * Today is UTC's, for every tenant: a tenant's days are of its own time zone (domain/time-zone.ts), and its today is
 * within a day of UTC's (offsets run from -12 to +14 hours). So no span holds a day a tenant still writes ahead of UTC
 * (Pacific/Kiritimati's today is UTC's tomorrow half the day), and a write to a day a span may hold (any before UTC's
 * today: a tenant behind UTC writes its yesterday two UTC days back) undoes the span as any late write does.
 */
const SPAN_LAG_DAYS = 2;
/** A span more days behind than this is made again (the months', then every day's from them), not caught up day by day. */
const SPAN_CATCH_UP_DAYS = 31;

const valueSums = ROLLUP_VALUE_COLUMNS.map((c) => `sum(${c}) as ${c}`).join(', ');

/** The first and last day of the UTC month a day is in. */
function monthOf(day: number): [number, number] {
  const d = new Date(day * DAY_MS);
  return [Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) / DAY_MS, Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) / DAY_MS - 1];
}

const SPAN_SQL = {
  firstDay: 'select min(day) from rollups where tenant_id = ?',
  through: 'select through from rollups_span_through where tenant_id = @tenantId and span = @span',
  setThrough: `insert into rollups_span_through (tenant_id, span, through) values (@tenantId, @span, @through)
    on conflict (tenant_id, span) do update set through = excluded.through`,
  clear: 'delete from rollups_span where tenant_id = @tenantId and span = @span',
  // Days' rows added to a span: a new span's days, or those since it was last made.
  addDays: `insert into rollups_span (tenant_id, handle_id, model, span, ${ROLLUP_VALUE_COLUMNS.join(', ')})
    select @tenantId, handle_id, model, @span, ${valueSums} from rollups
    where tenant_id = @tenantId and day between @fromDay and @toDay and handle_id not in ('*', '${NO_HANDLE}') group by handle_id, model
    on conflict (tenant_id, handle_id, model, span) do update set ${ROLLUP_VALUE_COLUMNS.map((c) => `${c} = ${c} + excluded.${c}`).join(', ')}`,
  // Every day's span from the months' spans.
  addMonths: `insert into rollups_span (tenant_id, handle_id, model, span, ${ROLLUP_VALUE_COLUMNS.join(', ')})
    select @tenantId, handle_id, model, ${ALL_DAYS}, ${valueSums} from rollups_span
    where tenant_id = @tenantId and span between @fromSpan and @toSpan group by handle_id, model`,
};

export class SqliteStore implements Store {
  // The expand path reads a handle and a version on every call: prepare those once.
  private readonly handleById;
  private readonly versionByKey;
  private readonly sumRollupsStmt = new Map<string, Statement>();
  private readonly sumHandlesStmt = new Map<string, Statement>();
  private readonly span: Record<keyof typeof SPAN_SQL, Statement>;
  /** Makes a span hold the days through a day, in a transaction of its own (see makeSpan). */
  private readonly spanOps: import('better-sqlite3').Transaction<(tenantId: string, span: number, through: number) => void>;
  /** Today's day number, never going back (see today()). */
  private lastDay = -Infinity;
  private readonly requestById: Statement;
  private readonly requestSummaryById: Statement;
  private readonly blobByDigest: Statement;
  private readonly requestsInScope: import('better-sqlite3').Statement<[string, number]>;
  private readonly countInScope: import('better-sqlite3').Statement<[string, number]>;
  private readonly snapshotOf: Statement;
  private readonly snapshotChanges: import('better-sqlite3').Statement<[string, string]>;
  private readonly unreadWrites: Statement;
  /** The list's reads, by the index each reads (LIST_SQL). */
  private readonly listScan: Record<keyof typeof LIST_SQL, Statement>;
  /** hasRequestOfModel's lookups, by how many providers they range over. */
  private readonly modelLookups = new Map<number, Statement>();
  /** tenantLeft's counts, by the tenant indexes. */
  private readonly tenantLeftCounts: Statement;
  /** The group commit's statements, prepared once. */
  private readonly write: Record<keyof typeof SQL, Statement>;
  private lastSeq: number;
  private readonly maxSeq: { get(): unknown };
  /** A group commit's transaction, made once: better-sqlite3 builds four wrapped functions per transaction(), ~10 µs. */
  private readonly commitOps: import('better-sqlite3').Transaction<(ops: WriteOp[]) => void>;
  /** The health check's read: one row of a small table, by its first page (never a scan). */
  private readonly healthRead: { get(): unknown };
  /** The database file and its WAL as opened (device and inode): the health check finds them at their paths still. */
  private readonly files: Array<{ path: string; dev: number; ino: number }> = [];

  constructor(
    private readonly db: Db,
    /** Group commits skip SQLite's own fsync and are synced off the event loop by this instead. */
    private readonly walSync: WalSync,
    /** Which days may be in a span (rollups_span) is decided by today's date. */
    private readonly clock: Clock,
  ) {
    this.handleById = db.select().from(handles).where(eq(handles.id, sql.placeholder('id'))).prepare();
    this.versionByKey = db
      .select()
      .from(handleVersions)
      .where(and(eq(handleVersions.handleId, sql.placeholder('id')), eq(handleVersions.version, sql.placeholder('version'))))
      .prepare();
    const client = db.$client;
    this.requestById = client.prepare(`${REQUEST_SELECT} where r.id = ?`).raw();
    // A listed request is summarised: a reconciled one by its summary (its outcome only when it has none of this
    // version: reconciled before summaries were kept, or of another shape), one not reconciled by its line (written
    // at render; its segments only when it has none: recorded before lines were kept). Of the request's own row only
    // the columns before its segments are read: SQLite reaches a later column (status, started_at, reconciled_seq)
    // by walking the segments' overflow pages, megabytes on a long session. So a reconciliation is found by its
    // request_id, and its status is derived: reconciled with one, else failed when its line says so. Nor is
    // write_read read: stored after the outcome, it is reached through the outcome's pages.
    this.requestSummaryById = client
      .prepare(
        `select r.id, r.tenant_id, r.scope, r.format, r.model, r.catalog_entry, r.catalog_fallback, r.rendered_at,
         case when c.report_hash is null and l.request_id is null then r.segments end, null, null, null, null, null, null,
         case when c.report_hash is not null then 'reconciled' when l.request_id is null then r.status when l.failed_started_at is not null then 'failed' else 'rendered' end,
         case when c.report_hash is not null then null when l.request_id is null then r.started_at else l.failed_started_at end, null, null,
         c.started_at, c.first_byte_at, c.finished_at, c.report_hash, null, c.usage, null,
         case when s.version is not ${SUMMARY_VERSION} then c.outcome end, null, null, case when s.version = ${SUMMARY_VERSION} then s.summary end,
         case when c.report_hash is null then l.handles end
         from requests r left join reconciliations c on c.request_id = r.id left join request_summaries s on s.seq = c.seq
         left join request_lines l on l.request_id = r.id where r.id = ?`,
      )
      .raw();
    this.blobByDigest = client.prepare('select bytes from blobs where digest = ?').pluck();
    this.selectBatches = client.prepare('select version, entry from session_batches where tenant_id = ? and session_id = ? and variant = ? and version between ? and ?').raw();
    this.insertBatch = client.prepare('insert or ignore into session_batches (tenant_id, session_id, variant, version, entry) values (@tenantId, @sessionId, @variant, @version, @entry)');
    this.listScan = Object.fromEntries(Object.entries(LIST_SQL).map(([name, text]) => [name, client.prepare(text)])) as Record<keyof typeof LIST_SQL, Statement>;
    this.tenantLeftCounts = client.prepare('select (select count(*) from requests where tenant_id = @t) as requests, (select count(*) from handles where tenant_id = @t) as handles');
    // requests_scope_reconciled walks the scope in replay order (no sort of its whole history), and only what a replay
    // reads is fetched (the other columns of REQUEST_SELECT are null in their places): the rows are streamed one at a
    // time, never held all at once.
    this.requestsInScope = client
      .prepare<[string, number]>(
        `select r.id, r.tenant_id, r.scope, r.format, r.model, r.catalog_entry, r.catalog_fallback, r.rendered_at, r.segments, r.breakpoints,
         r.prompt_cache_key, r.cache_ttl, r.message_settings, r.provider_history, null, r.status, null, null, null,
         c.started_at, c.first_byte_at, c.finished_at, c.report_hash, null, null, null, c.outcome, null, null
         from requests r join reconciliations c on c.seq = r.reconciled_seq
         where r.scope = ? and r.reconciled_seq > ? and r.status = 'reconciled' order by r.reconciled_seq`,
      )
      .raw();
    // The same index, its entries only: a snapshot's row count is checked without reading the rows.
    this.countInScope = client.prepare<[string, number]>('select count(*) from requests where scope = ? and reconciled_seq is not null and reconciled_seq <= ?').pluck();
    this.snapshotOf = client.prepare('select scope, seq, rows, version, rules, chain, parts, state from scope_snapshots where scope = ?');
    this.snapshotChanges = client.prepare<[string, string]>('select entries from scope_snapshot_changes where scope = ? and chain = ? order by part').pluck();
    // reconciliations_unread (started_at where write_read = 0) keeps this to the recent rows.
    this.unreadWrites = client.prepare(
      `select c.request_id, r.tenant_id, r.model, c.started_at, c.write_premium from reconciliations c join requests r on r.id = c.request_id
       where c.write_read = 0 and c.started_at >= ? and c.write_premium != '{}'`,
    );
    this.write = Object.fromEntries(Object.entries(SQL).map(([name, text]) => [name, client.prepare(text)])) as Record<keyof typeof SQL, Statement>;
    this.span = Object.fromEntries(Object.entries(SPAN_SQL).map(([name, text]) => [name, client.prepare(text)])) as Record<keyof typeof SPAN_SQL, Statement>;
    this.span.firstDay.pluck();
    this.span.through.pluck();
    this.spanOps = client.transaction((tenantId: string, span: number, through: number) => this.makeSpan(tenantId, span, through));
    // Today is never before a day a span already holds could have been made on (by an earlier start, its clock ahead
    // of this one's): a write to a day a span holds then always undoes it, whatever the clock says now.
    const held = client.prepare('select max(through) from rollups_span_through').pluck().get() as number | null;
    if (held !== null) this.lastDay = held + SPAN_LAG_DAYS;
    // The reconciliation counter lives here and numbers reports as their batch is built (see writeBatch).
    this.maxSeq = client.prepare('select max(seq) from reconciliations').pluck();
    this.healthRead = client.prepare('select 1 from tenants limit 1').pluck();
    // '' for an in-memory database, which has no file to lose.
    const main = (client.pragma('database_list') as Array<{ name: string; file: string }>).find((d) => d.name === 'main')?.file;
    for (const path of main ? [main, `${main}-wal`] : []) {
      const st = statSync(path, { throwIfNoEntry: false });
      if (st) this.files.push({ path, dev: st.dev, ino: st.ino });
    }
    this.lastSeq = (this.maxSeq.get() as number | null) ?? 0;
    this.commitOps = client.transaction((ops: WriteOp[]) => {
      // Numbered under the write lock, after the file's last: another service process on the same file
      // may have reconciled since this one last wrote (a counter kept from start collided with its rows).
      this.lastSeq = Math.max(this.lastSeq, (this.maxSeq.get() as number | null) ?? 0);
      for (const [statement, params] of this.statementsFor(ops)) statement.run(params);
    });
  }

  createTenant(tenant: Omit<TenantRow, 'timeZone'> & { timeZone?: string }, key: ApiKeyRow, sameName: (name: string) => boolean): TenantRow | undefined {
    // better-sqlite3 transactions must be synchronous: no awaits inside. Immediate: the write lock is taken before the
    // names are read, so no other connection inserts one between the check and the insert. (No unique index: names
    // are compared as people read them, and tenants duplicated by earlier versions must go on working.)
    return this.db.transaction(
      (tx) => {
        const taken = tx.select().from(tenants).orderBy(asc(tenants.createdAt), sql`rowid`).all().find((t) => sameName(t.name));
        if (taken) return taken;
        tx.insert(tenants).values(tenant).run();
        tx.insert(apiKeys).values(key).run();
        return undefined;
      },
      { behavior: 'immediate' },
    );
  }

  renameTenant(id: string, change: { name?: string; timeZone?: string }, conflict: (tenant: TenantRow, others: TenantRow[]) => TenantRow | undefined): RenameResult {
    // Immediate, as createTenant: no other connection inserts or renames a tenant between the check and the update.
    return this.db.transaction(
      (tx): RenameResult => {
        const all = tx.select().from(tenants).orderBy(asc(tenants.createdAt), sql`rowid`).all();
        const tenant = all.find((t) => t.id === id);
        if (!tenant || tenant.name === DELETING_NAME) return { missing: true };
        const taken = change.name === undefined ? undefined : conflict(tenant, all.filter((t) => t !== tenant));
        if (taken) return { taken };
        // Days already counted in one zone are not counted again in another: the zone is fixed at its first rollup row.
        if (change.timeZone !== undefined && change.timeZone !== tenant.timeZone && tx.select({ one: sql`1` }).from(rollups).where(eq(rollups.tenantId, id)).limit(1).get())
          return { zoneFixed: tenant };
        tx.update(tenants).set(change).where(eq(tenants.id, id)).run();
        return { renamed: tenant };
      },
      { behavior: 'immediate' },
    );
  }

  markTenantDeleting(id: string, confirm: (tenant: TenantRow) => boolean): { tenant: TenantRow; marked: boolean; keys: number } | undefined {
    return this.db.transaction(
      (tx) => {
        const tenant = tx.select().from(tenants).where(eq(tenants.id, id)).get();
        if (!tenant) return undefined;
        if (tenant.name === DELETING_NAME) return { tenant, marked: true, keys: 0 };
        if (!confirm(tenant)) return { tenant, marked: false, keys: 0 };
        const keys = tx.delete(apiKeys).where(eq(apiKeys.tenantId, id)).run().changes;
        tx.update(tenants).set({ name: DELETING_NAME }).where(eq(tenants.id, id)).run();
        return { tenant, marked: true, keys };
      },
      { behavior: 'immediate' },
    );
  }

  deletingTenants(): string[] {
    return this.db.select({ id: tenants.id }).from(tenants).where(eq(tenants.name, DELETING_NAME)).all().map((t) => t.id);
  }

  private readonly selectBatches: { all(...params: unknown[]): unknown[] };
  private readonly insertBatch: Statement;

  /** A tenant's stored session batches (compact.ts), as a request's segments reference them. */
  private readonly batchesOf = (tenantId: string): ReadBatches => (session, variant, from, to) =>
    new Map((this.selectBatches.all(tenantId, session, variant, from, to) as Array<[number, string]>).map(([v, e]) => [v, e]));

  private tenantStmts?: { sql: Record<keyof typeof TENANT_SQL, Statement>; byTenant: Statement[]; byScope: Statement[] };

  deleteTenantBatch(id: string, limit: number): { rows: number; done: boolean } {
    const client = this.db.$client;
    const prune = (this.pruneStmts ??= Object.fromEntries(Object.entries(PRUNE_SQL).map(([name, text]) => [name, client.prepare(text)])) as Record<keyof typeof PRUNE_SQL, Statement>);
    const s = (this.tenantStmts ??= {
      sql: Object.fromEntries(Object.entries(TENANT_SQL).map(([name, text]) => [name, client.prepare(text)])) as Record<keyof typeof TENANT_SQL, Statement>,
      byTenant: TENANT_TABLES.map((t) => client.prepare(`delete from ${t} where rowid in (select rowid from ${t} where tenant_id = @t limit @n)`)),
      byScope: SCOPE_TABLES.map((t) => client.prepare(`delete from ${t} where rowid in (select rowid from ${t} where scope >= @lo and scope < @hi limit @n)`)),
    });
    // Its requests with their rows, then the tables keyed by it and by its scopes, in table order: `more` while a
    // step may have rows left. (Every statement is chosen again from the start each batch: a row written meanwhile is found.)
    const data = client.transaction((): { rows: number; more: boolean } => {
      const perRequest = REQUEST_ROWS.length + 1;
      const n = Math.max(1, Math.floor(limit / perRequest));
      const requestIds = s.sql.requestIds.pluck().all({ t: id, n }) as string[];
      let rows = 0;
      if (requestIds.length) {
        const ids = JSON.stringify(requestIds);
        for (const name of REQUEST_ROWS) rows += prune[name].run({ ids }).changes;
        if (requestIds.length === n) return { rows, more: true };
      }
      for (const stmt of [...s.byTenant, ...s.byScope]) {
        const left = limit - rows;
        if (left <= 0) return { rows, more: true };
        const deleted = stmt.run({ t: id, lo: `${id}|`, hi: `${id}}`, n: left }).changes;
        rows += deleted;
        if (deleted === left) return { rows, more: true };
      }
      return { rows, more: false };
    }).immediate();
    if (data.more) return { rows: data.rows, done: false };
    // Its handles, a transaction apart: deleting a blob row makes SQLite look for versions that reference it, and
    // handle_versions has no index on content_digest (a scan of every version per blob). With foreign keys off for it
    // (never inside a transaction, and nothing else runs on the connection meanwhile), the statement checks the
    // references itself, with one pass over the versions.
    client.pragma('foreign_keys = OFF');
    let handles: { rows: number; more: boolean };
    try {
      handles = client.transaction((): { rows: number; more: boolean } => {
        const found = s.sql.handleIds.all({ t: id, n: limit }) as Array<{ id: string; versions: number }>;
        let versions = 0;
        const chosen = found.filter((h) => (versions += h.versions) - h.versions < limit);
        if (chosen.length === 0) return { rows: 0, more: false };
        const ids = JSON.stringify(chosen.map((h) => h.id));
        const digests = JSON.stringify(s.sql.digests.pluck().all({ ids }));
        let rows = 0;
        for (const name of ['pinsFrom', 'pinsTo', 'versions', 'handles'] as const) rows += s.sql[name].run({ ids }).changes;
        rows += s.sql.blobs.run({ digests }).changes;
        return { rows, more: true };
      }).immediate();
    } finally {
      client.pragma('foreign_keys = ON');
    }
    if (handles.more) return { rows: data.rows + handles.rows, done: false };
    // Nothing of it is left: its row goes, foreign keys on (a table that still references it fails this, not silently).
    const last = client.transaction(() => s.sql.keys.run({ t: id }).changes + s.sql.tenant.run({ t: id }).changes).immediate();
    return { rows: data.rows + last, done: true };
  }

  tenantLeft(id: string): { requests: number; handles: number } {
    return this.tenantLeftCounts.get({ t: id }) as { requests: number; handles: number };
  }

  tenantHasRollups(id: string): boolean {
    return this.span.firstDay.get(id) !== null;
  }

  getTenant(id: string): TenantRow | undefined {
    return this.db.select().from(tenants).where(eq(tenants.id, id)).get();
  }

  listTenants(): Array<{ tenant: TenantRow; keys: ApiKeyRow[] }> {
    const out = new Map<string, { tenant: TenantRow; keys: ApiKeyRow[] }>();
    // In the order they were made (ids are random; several can share a millisecond).
    for (const tenant of this.db.select().from(tenants).orderBy(asc(tenants.createdAt), sql`rowid`).all()) out.set(tenant.id, { tenant, keys: [] });
    for (const key of this.db.select().from(apiKeys).orderBy(asc(apiKeys.createdAt), sql`rowid`).all()) out.get(key.tenantId)?.keys.push(key);
    return [...out.values()];
  }

  countApiKeys(): number {
    return this.db.select({ n: sql<number>`count(*)` }).from(apiKeys).get()?.n ?? 0;
  }

  insertApiKey(key: ApiKeyRow): void {
    this.db.insert(apiKeys).values(key).run();
  }

  findApiKeyByHash(hash: string): ApiKeyRow | undefined {
    return this.db.select().from(apiKeys).where(eq(apiKeys.keyHash, hash)).get();
  }

  getApiKey(id: string): ApiKeyRow | undefined {
    return this.db.select().from(apiKeys).where(eq(apiKeys.id, id)).get();
  }

  revokeApiKey(id: string, at: number): void {
    this.db.update(apiKeys).set({ revokedAt: at }).where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt))).run();
  }

  rotateApiKey(oldId: string, next: ApiKeyRow, at: number): boolean {
    // One transaction at synchronous=FULL, as every write outside the group commit: durable when it returns, and a
    // failure in either statement leaves neither (before, a crash between the two left the old key valid and an unused new one).
    return this.db.transaction((tx) => {
      const revoked = tx.update(apiKeys).set({ revokedAt: at }).where(and(eq(apiKeys.id, oldId), isNull(apiKeys.revokedAt))).run();
      if (revoked.changes === 0) return false;
      tx.insert(apiKeys).values(next).run();
      return true;
    }, { behavior: 'immediate' });
  }

  insertHandle(handle: HandleRow, first: NewVersion): void {
    this.db.transaction((tx) => {
      tx.insert(handles).values(handle).run();
      this.writeVersion(tx, first);
    }, { behavior: 'immediate' });
  }

  appendVersion(handleId: string, expectedLatest: number, next: NewVersion): AppendResult {
    return this.db.transaction((tx) => {
      const row = tx.select({ latest: handles.latestVersion }).from(handles).where(eq(handles.id, handleId)).get();
      if (!row || row.latest !== expectedLatest) return { ok: false, latestVersion: row?.latest ?? 0 };
      this.writeVersion(tx, next);
      tx.update(handles).set({ latestVersion: next.version.version }).where(eq(handles.id, handleId)).run();
      return { ok: true };
    }, { behavior: 'immediate' });
  }

  private writeVersion(tx: Pick<Db, 'insert'>, v: NewVersion): void {
    for (const b of v.blobs)
      tx.insert(blobs).values({ digest: b.digest, bytes: b.bytes, size: b.bytes.length }).onConflictDoNothing().run();
    tx.insert(handleVersions).values(v.version).run();
    for (const p of v.pins)
      tx.insert(handlePins)
        .values({ fromId: v.version.handleId, fromVersion: v.version.version, toId: p.toId, toVersion: p.toVersion })
        .onConflictDoNothing()
        .run();
  }

  getHandle(id: string): HandleRow | undefined {
    return this.handleById.get({ id }) as HandleRow | undefined;
  }

  getVersion(handleId: string, version: number): VersionRow | undefined {
    return this.versionByKey.get({ id: handleId, version }) as VersionRow | undefined;
  }

  listVersions(handleId: string, newest?: number, through?: number): VersionRow[] {
    const key = eq(handleVersions.handleId, handleId);
    const query = this.db.select().from(handleVersions).where(through === undefined ? key : and(key, lte(handleVersions.version, through)));
    if (newest === undefined) return query.orderBy(asc(handleVersions.version)).all() as VersionRow[];
    return (query.orderBy(desc(handleVersions.version)).limit(newest).all() as VersionRow[]).reverse();
  }

  listHandles(q: HandleListQuery): HandleRow[] {
    const conds = [eq(handles.tenantId, q.tenantId), isNull(handles.deletedAt)];
    if (q.type) conds.push(eq(handles.type, q.type));
    if (q.kind) conds.push(eq(handles.kind, q.kind));
    if (q.after) conds.push(gt(handles.id, q.after));
    return this.db
      .select()
      .from(handles)
      .where(and(...conds))
      .orderBy(asc(handles.id))
      .limit(q.limit)
      .all() as HandleRow[];
  }

  hasRequestOfModel(tenantId: string, model: string, providers: readonly string[]): boolean {
    // Each provider's range of scope keys '<tenant>|<provider>|<model>|…' ('}' is the character after '|'): the
    // requests_scope index answers each, and model = the name exactly (a name with a '|' in it cannot match another's).
    let found = this.modelLookups.get(providers.length);
    if (!found) {
      const ranges = providers.map((_, i) => `(scope >= @lo${i} and scope < @hi${i})`).join(' or ');
      found = this.db.$client.prepare(`select 1 from requests where (${ranges}) and model = @model limit 1`).pluck();
      this.modelLookups.set(providers.length, found);
    }
    const params: Record<string, string> = { model };
    providers.forEach((p, i) => {
      params[`lo${i}`] = `${tenantId}|${p}|${model}|`;
      params[`hi${i}`] = `${tenantId}|${p}|${model}}`;
    });
    return found.get(params) !== undefined;
  }

  listRequests(q: RequestListQuery): { rows: RequestRow[]; next: RequestListCursor | null } {
    // The end of the range is a place in the list as a cursor is (before anything started after it): the nearer wins.
    const end = q.startedTo === undefined ? undefined : { startedAt: q.startedTo + 1, id: '' };
    const before = !end || (q.before && q.before.startedAt <= q.startedTo!) ? q.before : end;
    // One row more than the page says whether there is a next one.
    const via = q.via;
    const read = via === 'no_handle' ? 'noHandle' : via ? 'class' : q.handleId ? 'handle' : 'tenant';
    const found = this.listScan[read].all({
      tenantId: q.tenantId,
      handle: q.handleId ?? '',
      cls: via && via !== 'no_handle' ? via.tokenClass : '',
      within: via && via !== 'no_handle' ? via.within : '',
      from: q.startedFrom ?? Number.MIN_SAFE_INTEGER,
      at: before?.startedAt ?? Number.MAX_SAFE_INTEGER,
      id: before?.id ?? '',
      limit: q.limit + 1,
    }) as Array<{ id: string; started_at: number }>;
    const page = found.slice(0, q.limit);
    const last = page.at(-1);
    return {
      rows: page.map((s) => Object.assign(requestFromRow(this.requestSummaryById.get(s.id) as unknown[], this.batchesOf), { listedAt: s.started_at })),
      next: found.length > q.limit && last ? { startedAt: last.started_at, id: last.id } : null,
    };
  }

  getBlob(digest: string): Buffer | undefined {
    // Prepared once: a long session's first expansion reads one blob per batch.
    return this.blobByDigest.get(digest) as Buffer | undefined;
  }

  artifactVersionsWithContent(tenantId: string, kind: ArtifactKindRow, contentDigest: string): Array<{ handleId: string; version: number }> {
    // No index on content_digest: the blob's key says first whether any handle holds these bytes at all (the usual
    // answer for content that matches nothing); only then are the tenant's artifacts of the kind read.
    if (this.blobByDigest.get(contentDigest) === undefined) return [];
    return this.db
      .select({ handleId: handleVersions.handleId, version: handleVersions.version })
      .from(handleVersions)
      .innerJoin(handles, eq(handles.id, handleVersions.handleId))
      .where(
        and(
          eq(handles.tenantId, tenantId),
          eq(handles.type, 'artifact'),
          eq(handles.kind, kind),
          isNull(handles.deletedAt),
          eq(handleVersions.contentDigest, contentDigest),
        ),
      )
      .orderBy(asc(handleVersions.createdAt), asc(handleVersions.handleId), asc(handleVersions.version))
      .all();
  }

  referrersOf(handleId: string): string[] {
    return this.db
      .selectDistinct({ id: handlePins.fromId })
      .from(handlePins)
      .innerJoin(handles, eq(handles.id, handlePins.fromId))
      .where(and(eq(handlePins.toId, handleId), isNull(handles.deletedAt)))
      .orderBy(asc(handlePins.fromId))
      .all()
      .map((r) => r.id);
  }

  deleteHandle(handleId: string, at: number): { ok: true } | { ok: false; referrers: string[] } {
    return this.db.transaction((tx) => {
      const referrers = this.referrersOf(handleId);
      if (referrers.length) return { ok: false, referrers };
      tx.update(handles).set({ deletedAt: at }).where(eq(handles.id, handleId)).run();
      return { ok: true };
    }, { behavior: 'immediate' });
  }

  getRequest(id: string): RequestRow | undefined {
    const row = this.requestById.get(id) as unknown[] | undefined;
    try {
      return row ? requestFromRow(row, this.batchesOf) : undefined;
    } catch (e) {
      // Its session batches removed from the table by hand (pruning and deletion keep a named session's): its detail
      // is gone, as a pruned request's, not a fault to answer with a 500.
      if (e instanceof BatchMissingError) return undefined;
      throw e;
    }
  }

  getInline(requestId: string, segment: number, now: number): InlineRow | undefined {
    return this.db
      .select()
      .from(requestInline)
      .where(and(eq(requestInline.requestId, requestId), eq(requestInline.segment, segment), gt(requestInline.expiresAt, now)))
      .get();
  }

  purgeInline(now: number): number {
    return this.db.delete(requestInline).where(lte(requestInline.expiresAt, now)).run().changes;
  }

  writeBatch(ops: WriteOp[]): void {
    const client = this.db.$client;
    const seqBefore = this.lastSeq;
    // NORMAL for this transaction only: its fsync is durable()'s, off the event loop. Every
    // other write on this connection stays FULL, and its fsync also covers earlier batches.
    // (exec, not a prepared statement: SQLite applies this pragma when it compiles it.)
    try {
      client.exec('pragma synchronous = NORMAL');
      this.commitOps.immediate(ops);
    } catch (e) {
      // Nothing was written: the counter goes back with the rolled-back transaction.
      this.lastSeq = seqBefore;
      this.restoreFull();
      throw e;
    }
    this.restoreFull();
  }

  /**
   * Back to FULL after a group commit. This cannot fail in practice (the schema
   * is loaded); if it did, every later write would silently be less durable
   * than promised, so the process stops rather than run on.
   */
  private restoreFull(): void {
    // A closed connection has no setting left to restore (a write queued past shutdown fails on its own).
    if (!this.db.$client.open) return;
    try {
      this.db.$client.exec('pragma synchronous = FULL');
    } catch (e) {
      setImmediate(() => {
        throw new Error(`could not restore synchronous=FULL after a group commit: ${e instanceof Error ? e.message : String(e)}`);
      });
    }
  }

  durable(): Promise<void> {
    return this.walSync.sync();
  }

  health(): string | null {
    const failed = this.walSync.failed;
    if (failed) return `${failed.message}; restart the service`;
    if (!this.db.$client.open) return 'the database connection is closed';
    try {
      this.healthRead.get();
    } catch (e) {
      return `the database does not answer a read (${e instanceof Error ? e.message : String(e)})`;
    }
    // The open connection goes on reading and writing a file removed or replaced at its path (SQLite keeps its
    // descriptor): every write from then on is lost at the next start, which opens whatever the path holds.
    for (const f of this.files) {
      const st = statAt(f.path);
      if (st === 'unknown') continue;
      if (!st) return `${f.path} was removed while the service runs: what it writes now goes to a file no path leads to, lost when it stops; restart the service`;
      if (st.dev !== f.dev || st.ino !== f.ino) return `${f.path} was replaced while the service runs: it still writes the file it opened, which the next start will not read; restart the service`;
    }
    return null;
  }

  /**
   * The statements of a group commit, in order. Rollups and calibration only
   * add up, so the batch's deltas are summed per row and written once at the end.
   */
  private statementsFor(ops: WriteOp[]): Array<[Statement, Record<string, unknown> | unknown[]]> {
    const out: Array<[Statement, Record<string, unknown> | unknown[]]> = [];
    // Each row's parameters (upsertRollup's, by position): its key, then its values summed, from 0, in column order.
    const rollups = new Map<string, Array<string | number>>();
    const calibrations = new Map<string, CalibrationRow>();
    const addRollup = (r: RollupDelta) => {
      const key = `${r.tenantId}\n${r.handleId}\n${r.version}\n${r.day}\n${r.model}`;
      let row = rollups.get(key);
      if (!row) rollups.set(key, (row = [r.tenantId, r.handleId, r.version, r.day, r.model, ...ROLLUP_ZEROS]));
      const v = r.values;
      for (let i = 0; i < ROLLUP_VALUE_COLUMNS.length; i++) row[ROLLUP_KEYS + i] = (row[ROLLUP_KEYS + i] as number) + (v[ROLLUP_VALUE_COLUMNS[i]!] ?? 0);
    };
    // Session batches this commit stores (a row read here does not hold them yet), by tenant, session, variant, version.
    const newBatches = new Map<string, string>();
    for (const op of ops) {
      if (op.kind === 'request') {
        const { tenantId } = op.row;
        const stored = this.batchesOf(tenantId);
        const segments = compactSegments(
          op.row.segments,
          batchVariant(op.row),
          (session, variant, from, to) => {
            const found = stored(session, variant, from, to);
            for (let v = from; v <= to; v++) {
              const entry = newBatches.get(`${tenantId}\n${session}\n${variant}\n${v}`);
              if (entry !== undefined) found.set(v, entry);
            }
            return found;
          },
          (session, variant, version, entry) => {
            newBatches.set(`${tenantId}\n${session}\n${variant}\n${version}`, entry);
            out.push([this.insertBatch, { tenantId, sessionId: session, variant, version, entry }]);
          },
        );
        out.push([this.write.insertRequest, requestParams(op.row, segments)]);
        const onPaths = pathHandles(op.row.segments as Array<{ path: string[] }>);
        out.push([this.write.insertLine, { id: op.row.id, handles: JSON.stringify(onPaths) }]);
        out.push([this.write.insertStart, { id: op.row.id, tenantId: op.row.tenantId, startedAt: op.row.renderedAt }]);
        for (const handleId of new Set([...onPaths, ...(op.handles ?? [])])) out.push([this.write.insertRequestHandle, { tenantId: op.row.tenantId, handleId, renderedAt: op.row.renderedAt, requestId: op.row.id }]);
        for (const i of op.inline) out.push([this.write.insertInline, { ...i, truncated: i.truncated ? 1 : 0 }]);
      } else if (op.kind === 'failed') {
        out.push([this.write.setFailedStart, { id: op.requestId, startedAt: op.detail.startedAt }]);
        out.push([this.write.setFailedHandlesStart, { id: op.requestId, startedAt: op.detail.startedAt }]);
        out.push([this.write.markFailed, { id: op.requestId, startedAt: op.detail.startedAt, finishedAt: op.detail.finishedAt, usageRaw: JSON.stringify(op.detail.usageRaw) }]);
        out.push([this.write.markLineFailed, { id: op.requestId, startedAt: op.detail.startedAt }]);
      } else if (op.kind === 'snapshot') {
        const { scope, part, row, replaces } = op.snapshot;
        if (part) out.push([this.write.appendSnapshotChanges, { scope, chain: part.chain, part: part.index, entries: JSON.stringify(part.changes) }]);
        if (row) {
          // Written after the reconciliations it covers, in this batch and before: the last seq is theirs.
          out.push([this.write.upsertSnapshot, { ...row, scope, seq: this.lastSeq, state: JSON.stringify(row.state) }]);
          if (replaces) out.push([this.write.dropOtherChains, { scope, chain: row.chain }]);
        }
      } else {
        const w = op.write;
        const r = w.request;
        // The reconciliation order is the live order a scope's simulation is replayed in.
        const seq = ++this.lastSeq;
        out.push([
          this.write.reconcile,
          {
            id: r.id,
            seq,
            startedAt: r.startedAt,
            firstByteAt: r.firstByteAt,
            finishedAt: r.finishedAt,
            reportHash: r.reportHash,
            usageRaw: JSON.stringify(r.usageRaw),
            usage: JSON.stringify(r.usage),
            diagnostics: JSON.stringify(r.diagnostics),
            outcome: JSON.stringify(compactOutcome(r.outcome, w.prices)),
            writePremium: JSON.stringify(r.writePremium),
          },
        ]);
        out.push([this.write.markReconciled, { id: r.id, seq }]);
        out.push([this.write.setStart, { id: r.id, startedAt: r.startedAt }]);
        out.push([this.write.setHandlesStart, { id: r.id, startedAt: r.startedAt }]);
        if (r.summary) {
          const summary = r.summary as RequestSummary;
          out.push([this.write.insertSummary, { seq, version: SUMMARY_VERSION, summary: JSON.stringify(summary) }]);
          for (const [cls, within] of classMarks(summary)) out.push([this.write.insertClass, { tenantId: r.tenantId, cls, within, startedAt: r.startedAt, id: r.id }]);
          if (summary.handles.length === 0) out.push([this.write.setNoHandle, { id: r.id }]);
        }
        for (const roll of w.rollups) addRollup(roll);
        for (const d of w.drift) out.push([this.write.insertDrift, { ...d, model: d.model ?? null, finding: JSON.stringify(d.finding) }]);
        if (w.calibration) {
          const key = `${w.calibration.tenantId}\n${w.calibration.model}`;
          const c = calibrations.get(key);
          if (c) calibrations.set(key, { ...w.calibration, providerTokens: c.providerTokens + w.calibration.providerTokens, estimatedTokens: c.estimatedTokens + w.calibration.estimatedTokens, reports: c.reports + 1 });
          else calibrations.set(key, { ...w.calibration, reports: 1 });
        }
        if (w.markWriteRead) {
          const { requestId, left } = w.markWriteRead;
          out.push([this.write.markRead, { id: requestId, left: JSON.stringify(left ?? {}), read: left ? 0 : 1 }]);
          for (const roll of w.markWriteRead.rollups) addRollup(roll);
        }
      }
    }
    // A day before today may be in a span (spans hold days two or more before it: one spare for clocks). Today's rows,
    // all of them but around midnight, cost nothing more.
    const today = this.today();
    const spans = new Map<string, { tenantId: string; month: number; day: number }>();
    for (const row of rollups.values()) {
      out.push([this.write.upsertRollup, row]);
      const [tenantId, , , day] = row as [string, string, number, number];
      if (day >= today) continue;
      const month = monthOf(day)[0];
      const key = `${tenantId}\n${month}`;
      if ((spans.get(key)?.day ?? Infinity) > day) spans.set(key, { tenantId, month, day });
    }
    for (const s of spans.values()) out.push([this.write.dropSpans, s]);
    for (const c of calibrations.values()) out.push([this.write.calibrate, { ...c }]);
    return out;
  }

  unreadWritesSince(since: number): UnreadWrite[] {
    return (this.unreadWrites.all(since) as Array<{ request_id: string; tenant_id: string; model: string; started_at: number; write_premium: string }>).map((r) => ({
      requestId: r.request_id,
      tenantId: r.tenant_id,
      model: r.model,
      startedAt: r.started_at,
      writePremium: JSON.parse(r.write_premium) as unknown,
    }));
  }

  *reconciledInScope(scope: string, afterSeq = 0): IterableIterator<RequestRow> {
    for (const row of this.requestsInScope.iterate(scope, afterSeq) as IterableIterator<unknown[]>) yield requestFromRow(row, this.batchesOf);
  }

  countReconciledInScope(scope: string, seq: number): number {
    return this.countInScope.get(scope, seq) as number;
  }

  scopeSnapshot(scope: string): ScopeSnapshotRow | undefined {
    const row = this.snapshotOf.get(scope) as (Omit<ScopeSnapshotRow, 'state'> & { state: string }) | undefined;
    return row && { ...row, state: JSON.parse(row.state) as unknown };
  }

  *scopeSnapshotChanges(scope: string, chain: string): IterableIterator<unknown> {
    for (const text of this.snapshotChanges.iterate(scope, chain) as IterableIterator<string>) yield JSON.parse(text) as unknown;
  }

  /** The statements a scope's load runs (their plans are tested: index ranges, no sort). */
  get scopeLoadSql(): string[] {
    return [this.requestsInScope.source, this.countInScope.source, this.snapshotOf.source, this.snapshotChanges.source];
  }

  /** The statement reconciledInScope runs (its plan is tested: it must not sort the scope's history). */
  get reconciledInScopeSql(): string {
    return this.requestsInScope.source;
  }

  sumRollups(q: RollupQuery): RollupRow[] {
    return this.sumRollupsStatement(q.model !== undefined).all({ tenantId: q.tenantId, fromDay: q.fromDay, toDay: q.toDay, handleId: q.handleId, model: q.model ?? '' }) as RollupRow[];
  }

  /**
   * The statement sumRollups runs: one handle's rows (or the tenant's '*' totals) by the primary key. `+day` keeps the
   * planner off the day index (it preferred it: a handle report took 1.4 s in a trial).
   */
  sumRollupsStatement(byModel: boolean): Statement {
    const key = String(byModel);
    let stmt = this.sumRollupsStmt.get(key);
    if (!stmt) {
      stmt = this.db.$client.prepare(
        `select handle_id, version, model, ${valueSums}
         from rollups where tenant_id = @tenantId and +day between @fromDay and @toDay and handle_id = @handleId${byModel ? ' and model = @model' : ''}
         group by handle_id, version, model`,
      );
      this.sumRollupsStmt.set(key, stmt);
    }
    return stmt;
  }

  /**
   * Every handle's sums over a range, from spans and the days around them (see spanCover): all time reads every
   * day's span and the last days; another range each month wholly in it and the days at its ends. The first report
   * to need a span makes it (a month of days, summed once); later ones read it.
   */
  sumHandles(q: Omit<RollupQuery, 'handleId'> & { handles?: string[]; types?: readonly HandleType[]; together?: boolean }, columns: readonly string[] = ROLLUP_VALUE_COLUMNS): HandleSums[] {
    const first = this.span.firstDay.get(q.tenantId) as number | null;
    if (first === null) return [];
    const cover = this.spanCover(q.tenantId, Math.max(q.fromDay, first), q.toDay, first);
    const shape = { byModel: q.model !== undefined, some: q.handles !== undefined, typed: q.types !== undefined, together: q.together === true, columns };
    const params = { tenantId: q.tenantId, model: q.model ?? '', handles: JSON.stringify(q.handles ?? []), ...typeRange(q.types) };
    // Rows as arrays (handle, then the columns): better-sqlite3 builds a row object of 38 columns at about the cost of
    // summing its rows (25 of 50 ms for 5,000 handles); these are built once, after the sums.
    const out = new Map<string, number[]>();
    const add = (rows: unknown[][]) => {
      for (const r of rows as Array<[string, ...number[]]>) {
        // Together, a statement that matched no row answers one of nulls.
        if (shape.together && r[1] === null) continue;
        const have = out.get(r[0]);
        if (!have) out.set(r[0], r.slice(1) as number[]);
        else for (let i = 1; i < r.length; i++) have[i - 1]! += r[i] as number;
      }
    };
    if (cover.spans) add(this.sumHandlesStatement('spans', shape).all({ ...params, fromSpan: cover.spans[0], toSpan: cover.spans[1] }) as unknown[][]);
    for (const [fromDay, toDay] of cover.days) add(this.sumHandlesStatement('days', shape).all({ ...params, fromDay, toDay }) as unknown[][]);
    return [...out].map(([handle, values]) => {
      const row = { handle_id: handle } as HandleSums;
      columns.forEach((c, i) => (row[c] = values[i]!));
      return row;
    });
  }

  /**
   * Which spans (a range of span names, each made first) and which days' rows add up to days [from, to]. From the
   * tenant's first day through at least the last day a span may hold: every day's span, then the days after it.
   * Otherwise each month wholly in the range, through the last day a span may hold (or its end), is a span; the
   * rest is days: the range's partial months and the days after the last span.
   */
  private spanCover(tenantId: string, from: number, to: number, first: number): { spans: [number, number] | null; days: Array<[number, number]> } {
    const last = this.today() - SPAN_LAG_DAYS;
    const days: Array<[number, number]> = [];
    const addDays = (a: number, b: number) => {
      if (a > b) return;
      const prev = days.at(-1);
      if (prev && prev[1] + 1 === a) prev[1] = b;
      else days.push([a, b]);
    };
    if (from === first && last >= first && to >= last) {
      this.ensureSpan(tenantId, ALL_DAYS, last);
      addDays(last + 1, to);
      return { spans: [ALL_DAYS, ALL_DAYS], days };
    }
    let spans: [number, number] | null = null;
    for (let day = from; day <= to; ) {
      const [start, end] = monthOf(day);
      const through = Math.min(end, last);
      if (day === start && through >= start && through <= to) {
        this.ensureSpan(tenantId, start, through);
        spans = [spans?.[0] ?? start, start];
        addDays(through + 1, Math.min(end, to));
      } else addDays(day, Math.min(end, to));
      day = end + 1;
    }
    return { spans, days };
  }

  /** Makes a span hold the days through `through` unless it does. Every day's span first makes the months' (each in a transaction of its own: one for them all could hold the write lock for seconds). */
  private ensureSpan(tenantId: string, span: number, through: number): void {
    const held = this.span.through.get({ tenantId, span }) as number | undefined;
    if (held === through) return;
    if (span === ALL_DAYS && !this.catchesUp(held, through))
      for (const [start, end] of this.months(tenantId, through)) this.ensureSpan(tenantId, start, end);
    this.spanOps.immediate(tenantId, span, through);
  }

  /** A span that held days through `held` is brought to `through` by adding the days since. */
  private catchesUp(held: number | undefined, through: number): held is number {
    return held !== undefined && held < through && through - held <= SPAN_CATCH_UP_DAYS;
  }

  /** Each month of a tenant's rollups through a day: its first day, and its last one up to that day. */
  private months(tenantId: string, through: number): Array<[number, number]> {
    const first = this.span.firstDay.get(tenantId) as number | null;
    const out: Array<[number, number]> = [];
    for (let day = first ?? through + 1; day <= through; ) {
      const [start, end] = monthOf(day);
      out.push([start, Math.min(end, through)]);
      day = end + 1;
    }
    return out;
  }

  /**
   * In a write transaction, so no write lands between reading a span's day and making it: a span holding the days
   * through `held` gains the days since; otherwise it is made again, a month from its days, every day's from the
   * months' spans (each made first, here too: a write may have undone one since ensureSpan made it).
   */
  private makeSpan(tenantId: string, span: number, through: number): void {
    const held = this.span.through.get({ tenantId, span }) as number | undefined;
    if (held === through) return;
    if (this.catchesUp(held, through)) this.span.addDays.run({ tenantId, span, fromDay: held + 1, toDay: through });
    else {
      this.span.clear.run({ tenantId, span });
      if (span !== ALL_DAYS) this.span.addDays.run({ tenantId, span, fromDay: span, toDay: through });
      else {
        const months = this.months(tenantId, through);
        for (const [start, end] of months) this.makeSpan(tenantId, start, end);
        if (months.length) this.span.addMonths.run({ tenantId, fromSpan: months[0]![0], toSpan: months.at(-1)![0] });
      }
    }
    this.span.setThrough.run({ tenantId, span, through });
  }

  /**
   * The statements sumHandles runs: every handle's sums from spans (in key order: grouped without a sort) or from
   * days' rows (by rollups_tenant_day); some handles' by the primary key, each handle's rows in turn.
   */
  sumHandlesStatement(from: 'spans' | 'days', shape: { byModel: boolean; some: boolean; typed?: boolean; together?: boolean; columns: readonly string[] }): Statement {
    const key = `${from}:${shape.byModel}:${shape.some}:${shape.typed === true}:${shape.together === true}:${shape.columns.join(',')}`;
    let stmt = this.sumHandlesStmt.get(key);
    if (!stmt) {
      // Column names go into the SQL: only the table's own.
      if (shape.columns.some((c) => !ROLLUP_VALUE_COLUMNS.includes(c))) throw new Error(`not a rollup column: ${shape.columns.join(', ')}`);
      const where = ['tenant_id = @tenantId'];
      if (shape.some) where.push('handle_id in (select value from json_each(@handles))');
      where.push(from === 'spans' ? 'span between @fromSpan and @toSpan' : `${shape.some ? '+day' : 'day'} between @fromDay and @toDay and handle_id not in ('*', '${NO_HANDLE}')`);
      if (shape.byModel) where.push('model = @model');
      // Handles of some types: those of their prefixes; from spans, the ids between them first (a range of the key). Not
      // from days' rows, which the day index finds (the key's range would be every day of those handles).
      if (shape.typed) where.push(`${from === 'spans' ? 'handle_id >= @idFrom and handle_id < @idTo and ' : ''}substr(handle_id, 1, 3) in (select value from json_each(@prefixes))`);
      stmt = this.db.$client
        .prepare(
          `select ${shape.together ? `'*'` : 'handle_id'}, ${shape.columns.map((c) => `sum(${c})`).join(', ')} from ${from === 'spans' ? 'rollups_span' : 'rollups'} where ${where.join(' and ')}${shape.together ? '' : ' group by handle_id'}`,
        )
        .raw();
      this.sumHandlesStmt.set(key, stmt);
    }
    return stmt;
  }

  /** Today's day number by the clock, never earlier than one this store has used: a span made today stays undone by every later write to its days. */
  private today(): number {
    return (this.lastDay = Math.max(this.lastDay, Math.floor(this.clock.now() / DAY_MS)));
  }

  sumVersionRollups(q: HandleRollupQuery & { versions: { from: number; to: number } }): RollupRow[] {
    const stmt = this.handleRollupsStatement('versions', q.model !== undefined);
    return stmt.all({ tenantId: q.tenantId, handleId: q.handleId, fromDay: q.fromDay, toDay: q.toDay, model: q.model ?? '', vFrom: q.versions.from, vTo: q.versions.to }) as RollupRow[];
  }

  sumDayRollups(q: HandleRollupQuery): DayRollupRow[] {
    const stmt = this.handleRollupsStatement('days', q.model !== undefined);
    return stmt.all({ tenantId: q.tenantId, handleId: q.handleId, fromDay: q.fromDay, toDay: q.toDay, model: q.model ?? '' }) as DayRollupRow[];
  }

  sumModelRollups(q: HandleRollupQuery): ModelRollupRow[] {
    const stmt = this.handleRollupsStatement('models', q.model !== undefined);
    return stmt.all({ tenantId: q.tenantId, handleId: q.handleId, fromDay: q.fromDay, toDay: q.toDay, model: q.model ?? '' }) as ModelRollupRow[];
  }

  /**
   * One handle's rows by the primary key, summed in SQL: some versions' per version and model (a version range of the
   * key), or all of them per day or per model (a long session has a row per version and day: thousands, where a page
   * needs one per day and a report's totals one per model). Public for its plan's test.
   */
  handleRollupsStatement(by: 'versions' | 'days' | 'models', byModel: boolean): Statement {
    const key = `handle-${by}:${byModel}`;
    let stmt = this.sumRollupsStmt.get(key);
    if (!stmt) {
      const where = ['tenant_id = @tenantId', 'handle_id = @handleId', '+day between @fromDay and @toDay'];
      if (by === 'versions') where.push('version between @vFrom and @vTo');
      if (byModel) where.push('model = @model');
      const sums = ROLLUP_VALUE_COLUMNS.map((c) => `sum(${c}) as ${c}`).join(', ');
      // `+day`: grouped by the day column, the planner walked the tenant's every row by rollups_tenant_day for its order
      // (94 ms against 0.4 ms for a session's 2,000 rows among 400,000 of the tenant's).
      const [columns, group] = by === 'versions' ? ['handle_id, version, model', 'handle_id, version, model'] : by === 'days' ? ['day', '+day'] : ['handle_id, model', 'model'];
      stmt = this.db.$client.prepare(`select ${columns}, ${sums} from rollups where ${where.join(' and ')} group by ${group}`);
      this.sumRollupsStmt.set(key, stmt);
    }
    return stmt;
  }

  driftFindings(tenantId: string, handleId: string, limit: number, within?: { fromMs: number; toMs: number; model?: string }): DriftRow[] {
    const where = [eq(driftFindings.tenantId, tenantId), eq(driftFindings.handleId, handleId)];
    if (within) where.push(gte(driftFindings.at, within.fromMs), lt(driftFindings.at, within.toMs));
    // The request's model, kept on the finding: its request may be pruned.
    if (within?.model !== undefined) where.push(eq(driftFindings.model, within.model));
    return this.db
      .select()
      .from(driftFindings)
      .where(and(...where))
      .orderBy(desc(driftFindings.at), desc(driftFindings.id))
      .limit(limit)
      .all();
  }

  calibrations(tenantId: string): CalibrationRow[] {
    return this.db.select().from(calibration).where(eq(calibration.tenantId, tenantId)).all();
  }

  tenantIds(): string[] {
    return this.db.select({ id: tenants.id }).from(tenants).all().map((t) => t.id);
  }

  snapshotCoverage(): SnapshotCoverage[] {
    const rows = this.db.$client
      .prepare(
        `select s.scope, s.seq, s.version, json_extract(s.state, '$.live.lastStart') as live, json_extract(s.state, '$.history.lastStart') as history,
         (select c.started_at from requests r join reconciliations c on c.seq = r.reconciled_seq where r.scope = s.scope and r.reconciled_seq is not null
          order by r.reconciled_seq desc limit 1) as latest
         from scope_snapshots s`,
      )
      .all() as Array<{ scope: string; seq: number; version: number; live: number | null; history: number | null; latest: number | null }>;
    return rows.map((r) => ({ scope: r.scope, seq: r.seq, version: r.version, liveLastStart: r.live, historyLastStart: r.history, latestStart: r.latest }));
  }

  private pruneStmts?: Record<keyof typeof PRUNE_SQL, Statement>;

  pruneBatch(
    q: { tenantId: string; before: number; after: RequestCursor | null; limit: number },
    prunable: (c: PruneCandidate) => boolean,
  ): { pruned: string[]; read: number; next: RequestCursor | null } {
    const client = this.db.$client;
    const s = (this.pruneStmts ??= Object.fromEntries(Object.entries(PRUNE_SQL).map(([name, text]) => [name, client.prepare(text)])) as Record<keyof typeof PRUNE_SQL, Statement>);
    // Read and deleted in one transaction: nothing is reconciled in between.
    return client.transaction(() => {
      const found = (s.candidates.all({ tenantId: q.tenantId, before: q.before, at: q.after?.renderedAt ?? Number.MIN_SAFE_INTEGER, id: q.after?.id ?? '', limit: q.limit }) as Array<{ id: string; rendered_at: number; scope: string; seq: number | null; started_at: number | null }>).map(
        (r): PruneCandidate => ({ id: r.id, renderedAt: r.rendered_at, scope: r.scope, seq: r.seq, startedAt: r.started_at }),
      );
      const chosen = found.filter(prunable);
      const last = found.at(-1);
      const next = found.length === q.limit && last ? { renderedAt: last.renderedAt, id: last.id } : null;
      s.setBefore.run({ before: q.before });
      if (chosen.length === 0) return { pruned: [], read: found.length, next };
      const ids = JSON.stringify(chosen.map((c) => c.id));
      const sessions = s.sessionsOf.pluck().all({ ids }) as string[];
      for (const name of REQUEST_ROWS) s[name].run({ ids });
      for (const session of sessions) s.unusedBatches.run({ tenantId: q.tenantId, session });
      const perScope = new Map<string, number>();
      for (const c of chosen) if (c.seq !== null) perScope.set(c.scope, (perScope.get(c.scope) ?? 0) + 1);
      for (const [scope, rows] of perScope) s.countScope.run({ scope, rows });
      return { pruned: chosen.map((c) => c.id), read: found.length, next };
    }).immediate();
  }

  requestNamesHandle(requestId: string): boolean {
    return (this.namesHandleStmt ??= this.db.$client.prepare('select 1 from request_handles where request_id = ? limit 1').pluck()).get(requestId) !== undefined;
  }

  private namesHandleStmt?: Statement;

  requestExists(id: string): boolean {
    return this.db.$client.prepare('select 1 from requests where id = ?').pluck().get(id) !== undefined;
  }

  prunedInScope(scope: string): number {
    return (this.db.$client.prepare('select rows from scope_pruned where scope = ?').pluck().get(scope) as number | undefined) ?? 0;
  }

  prunedBefore(): number | null {
    return (this.db.$client.prepare('select pruned_before from request_retention where id = 1').pluck().get() as number | undefined) ?? null;
  }


}

/**
 * The file at a path for the health check: undefined when no path leads to one (ENOENT, or ENOTDIR: a file now stands
 * where a directory on the path was), 'unknown' when the stat fails otherwise (a directory's permission changed: the
 * open connection is not affected). statSync's throwIfNoEntry spares ENOENT only: ENOTDIR made /healthz a 500.
 */
function statAt(path: string): Stats | undefined | 'unknown' {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOTDIR' ? undefined : 'unknown';
  }
}

/**
 * The ids of handles of `types` lie from the smallest prefix's `xxx_` to just past the largest's (ids are the prefix, `_`
 * and 21 letters or digits; '`' sorts right after '_'); `prefixes` picks them out exactly when the types are not
 * neighbours in id order.
 */
function typeRange(types: readonly HandleType[] | undefined): { idFrom: string; idTo: string; prefixes: string } {
  const prefixes = (types ?? []).map((t) => ID_PREFIX[t]).sort();
  return { idFrom: `${prefixes[0] ?? ''}_`, idTo: `${prefixes.at(-1) ?? ''}\``, prefixes: JSON.stringify(prefixes) };
}
