import { sqliteTable, text, integer, real, blob, primaryKey, index, uniqueIndex } from 'drizzle-orm/sqlite-core';
import { sql } from 'drizzle-orm';
import { requestsColumn, ROLLUP_CLASSES, ROLLUP_LEAKED, ROLLUP_MONEY } from '../domain/reconcile/waterfall';

// Times are epoch milliseconds from the injected clock, never SQL defaults.

export const tenants = sqliteTable('tenants', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  createdAt: integer('created_at').notNull(),
  /** The IANA zone its days are counted in (reports, rollups, the dashboard); fixed once a request is reconciled. */
  timeZone: text('time_zone').notNull().default('UTC'),
});

export const apiKeys = sqliteTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull().references(() => tenants.id),
    /** sha256 of the secret; the secret itself is shown once and never stored. */
    keyHash: text('key_hash').notNull(),
    /** First characters of the secret, so an operator can tell keys apart. */
    hint: text('hint').notNull(),
    createdAt: integer('created_at').notNull(),
    revokedAt: integer('revoked_at'),
  },
  (t) => [uniqueIndex('api_keys_hash').on(t.keyHash), index('api_keys_tenant').on(t.tenantId)],
);

/** Content-addressed bytes: two handle versions with the same bytes share one row. */
export const blobs = sqliteTable('blobs', {
  digest: text('digest').primaryKey(),
  bytes: blob('bytes', { mode: 'buffer' }).notNull(),
  size: integer('size').notNull(),
});

export const handles = sqliteTable(
  'handles',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull().references(() => tenants.id),
    type: text('type', { enum: ['artifact', 'bundle', 'session'] }).notNull(),
    /** Artifact kind; null for bundles and sessions. */
    kind: text('kind', { enum: ['system', 'tools', 'document', 'messages'] }),
    name: text('name'),
    metadata: text('metadata', { mode: 'json' }),
    latestVersion: integer('latest_version').notNull(),
    createdAt: integer('created_at').notNull(),
    deletedAt: integer('deleted_at'),
  },
  (t) => [index('handles_tenant_list').on(t.tenantId, t.id)],
);

export const handleVersions = sqliteTable(
  'handle_versions',
  {
    handleId: text('handle_id').notNull().references(() => handles.id),
    version: integer('version').notNull(),
    createdAt: integer('created_at').notNull(),
    /** sha256 of the version's neutral expansion (artifacts: of their stored content). */
    digest: text('digest').notNull(),
    size: integer('size').notNull(),
    /** Artifact content, or the batch of messages a session version appended. */
    contentDigest: text('content_digest').references(() => blobs.digest),
    /** Bundle: pinned member refs, in order. */
    members: text('members', { mode: 'json' }).$type<string[]>(),
    /** Session: pinned base bundle ref. */
    base: text('base'),
    /** Session: messages in the session through this version. */
    messageCount: integer('message_count'),
    /** Reuse metadata computed at mint (tokens, volatility, change against the previous version). */
    meta: text('meta', { mode: 'json' }),
  },
  (t) => [primaryKey({ columns: [t.handleId, t.version] })],
);

/** Which handle versions pin which: answers "who still uses this?" on delete. */
export const handlePins = sqliteTable(
  'handle_pins',
  {
    fromId: text('from_id').notNull(),
    fromVersion: integer('from_version').notNull(),
    toId: text('to_id').notNull(),
    toVersion: integer('to_version').notNull(),
  },
  (t) => [primaryKey({ columns: [t.fromId, t.fromVersion, t.toId, t.toVersion] }), index('handle_pins_to').on(t.toId)],
);

/** A rendered request, recorded for reconciliation against the provider's usage report. */
export const requests = sqliteTable(
  'requests',
  {
    id: text('id').primaryKey(),
    tenantId: text('tenant_id').notNull().references(() => tenants.id),
    /** Where a provider cache can be shared: tenant + provider + model (+ credential fingerprint). */
    scope: text('scope').notNull(),
    format: text('format').notNull(),
    model: text('model').notNull(),
    /** Catalog entry used for the model's rules and prices, and whether it was a flagged fallback. */
    catalogEntry: text('catalog_entry').notNull(),
    catalogFallback: integer('catalog_fallback', { mode: 'boolean' }).notNull(),
    renderedAt: integer('rendered_at').notNull(),
    segments: text('segments', { mode: 'json' }).notNull(),
    breakpoints: text('breakpoints', { mode: 'json' }).notNull(),
    promptCacheKey: text('prompt_cache_key'),
    /** The cache lifetime the request asked for (OpenAI `prompt_cache_retention`), when the model has it; else the default. */
    cacheTtl: text('cache_ttl'),
    /** Anthropic's messages are cached under the request's tool_choice and thinking: those set, as canonical JSON (null: none). */
    messageSettings: text('message_settings'),
    /** OpenAI Responses: the field (`previous_response_id`, `conversation`) by which the provider adds a conversation it keeps to the prompt. */
    providerHistory: text('provider_history'),
    prediction: text('prediction', { mode: 'json' }),
    /** rendered → reconciled (usage received) or failed (the provider answered with an error). */
    status: text('status', { enum: ['rendered', 'reconciled', 'failed'] }).notNull().default('rendered'),
    /** The request's row in `reconciliations`, once its usage is in. */
    reconciledSeq: integer('reconciled_seq'),
    /** A failed request's times and the provider's error body (a reconciled one has them in `reconciliations`). */
    startedAt: integer('started_at'),
    finishedAt: integer('finished_at'),
    usageRaw: text('usage_raw', { mode: 'json' }),
  },
  (t) => [
    index('requests_scope').on(t.scope, t.renderedAt),
    index('requests_tenant').on(t.tenantId, t.renderedAt),
    // A scope's reconciled requests in replay order, read row by row: no sort of the scope's whole history.
    index('requests_scope_reconciled').on(t.scope, t.reconciledSeq).where(sql`${t.reconciledSeq} is not null`),
  ],
);

/**
 * A session batch's segment as requests through the session render it (src/store/compact.ts): written once per
 * session, rendering variant and version, and referenced by a version range from each request's segments, instead of
 * each request keeping a copy of every batch before it.
 */
export const sessionBatches = sqliteTable(
  'session_batches',
  {
    tenantId: text('tenant_id')
      .notNull()
      .references(() => tenants.id),
    sessionId: text('session_id').notNull(),
    /**
     * What besides its bytes shapes the segment: the request's format, catalog entry and message settings (batchVariant);
     * `<variant>.<n>` for the batch's form n > 0, as rendered another way under that variant (compact.ts, BATCH_FORMS).
     */
    variant: text('variant').notNull(),
    version: integer('version').notNull(),
    /** JSON: the segment less what its place in a request sets (section, bytes, whether estimated, digest, units). */
    entry: text('entry').notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.sessionId, t.variant, t.version] })],
);

/** Which handles each recorded request referenced (every id on its segments' paths): lists requests by handle. */
export const requestHandles = sqliteTable(
  'request_handles',
  {
    tenantId: text('tenant_id').notNull(),
    handleId: text('handle_id').notNull(),
    renderedAt: integer('rendered_at').notNull(),
    requestId: text('request_id').notNull(),
    /** The request's place in a list, as request_starts.started_at (null only in a row no migration filled). */
    startedAt: integer('started_at'),
  },
  // By request too: a pruned request's rows are deleted by its id, a reported one's start set by it.
  (t) => [
    primaryKey({ columns: [t.tenantId, t.handleId, t.renderedAt, t.requestId] }),
    index('request_handles_request').on(t.requestId),
    index('request_handles_started').on(t.tenantId, t.handleId, t.startedAt, t.requestId),
  ],
);

/**
 * When each recorded request's call started, by tenant: GET /v1/requests lists by it (newest first, `from`/`to` a
 * range of it), as reports count a request on the day it started. The render time until a report or a failure gives
 * the call's own start (an imported call's is its log line's, days before its render). A table of its own: the
 * request's row holds its start past its segments, which SQLite reaches by walking their overflow pages.
 */
export const requestStarts = sqliteTable(
  'request_starts',
  {
    requestId: text('request_id')
      .primaryKey()
      .references(() => requests.id),
    tenantId: text('tenant_id').notNull(),
    startedAt: integer('started_at').notNull(),
    /** A call the reports count in `no_handle` (reconciled, every segment inline, no handle named): `?no_handle=true` lists by it. */
    noHandle: integer('no_handle', { mode: 'boolean' }).notNull().default(false),
  },
  (t) => [
    index('request_starts_tenant').on(t.tenantId, t.startedAt, t.requestId),
    // Entries for the calls through no handle only: nothing on a request that named one.
    index('request_starts_no_handle').on(t.tenantId, t.startedAt, t.requestId).where(sql`${t.noHandle} = 1`),
  ],
);

/**
 * The reconciled requests with tokens of a rare waterfall class (INDEXED_CLASSES: every class but `captured` and
 * `cold`, which most requests have and a read of the list finds at once), by where the tokens are: `within` '*' (any
 * handle's segment), a handle id (its segments) or a handle type (its handles' segments). `GET /v1/requests?class=`
 * reads a range of it, in the list's order. Written with the reconciliation (a healthy request writes none), deleted
 * with the request.
 */
export const requestClasses = sqliteTable(
  'request_classes',
  {
    tenantId: text('tenant_id').notNull(),
    class: text('class').notNull(),
    within: text('within').notNull(),
    /** The request's place in the list (request_starts.started_at: its report's start). */
    startedAt: integer('started_at').notNull(),
    requestId: text('request_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.class, t.within, t.startedAt, t.requestId] }), index('request_classes_request').on(t.requestId)],
);

/**
 * One row per reconciled request, appended in reconciliation order: the order
 * a scope's simulation is replayed in. Kept apart from `requests` so a report
 * appends densely packed pages instead of growing a rendered row in place.
 */
export const reconciliations = sqliteTable(
  'reconciliations',
  {
  seq: integer('seq').primaryKey(),
  /** One reconciliation per request, whichever process reports it. */
  requestId: text('request_id')
    .notNull()
    .references(() => requests.id),
  startedAt: integer('started_at').notNull(),
  firstByteAt: integer('first_byte_at').notNull(),
  finishedAt: integer('finished_at').notNull(),
  /** sha256 of the usage report as received: the same report twice is accepted once. */
  reportHash: text('report_hash').notNull(),
  usageRaw: text('usage_raw', { mode: 'json' }).notNull(),
  usage: text('usage', { mode: 'json' }).notNull(),
  diagnostics: text('diagnostics', { mode: 'json' }),
  /** Per segment: how its tokens were classified (captured, cold, drift, …) and priced. */
  outcome: text('outcome', { mode: 'json' }).notNull(),
  /** Write premium paid by this request per handle, and whether a later request read what it wrote. */
  writePremium: text('write_premium', { mode: 'json' }).notNull(),
  writeRead: integer('write_read', { mode: 'boolean' }).notNull().default(false),
  },
  // The writes that may still be read: rebuilt into memory at start, from the last TTL's rows only.
  (t) => [uniqueIndex('reconciliations_request').on(t.requestId), index('reconciliations_unread').on(t.startedAt).where(sql`${t.writeRead} = 0`)],
);

/**
 * What a list of requests shows of each reconciled one (a handle page's recent requests, GET /v1/requests): its
 * capture, drift and tokens by class per handle, a few hundred bytes where its outcome lists every segment. Written
 * with the reconciliation it summarises; a request reconciled before this table has none (its outcome is read).
 */
export const requestSummaries = sqliteTable('request_summaries', {
  seq: integer('seq')
    .primaryKey()
    .references(() => reconciliations.seq),
  /** JSON (see request-summary.ts). */
  summary: text('summary', { mode: 'json' }).notNull(),
  /** The summary's shape (SUMMARY_VERSION when written): a row of another is not read, the outcome is (rows before 0014: 1). */
  version: integer('version').notNull().default(1),
});

/**
 * What a list shows of a request before its reconciliation, written with it: a table of its own, as the list must not
 * read the request's row past its segments (a long session's, megabytes: SQLite walks their overflow pages to reach
 * any later column). A request recorded before this table has none (its row is read).
 */
export const requestLines = sqliteTable('request_lines', {
  requestId: text('request_id')
    .primaryKey()
    .references(() => requests.id),
  /** JSON: every handle id on its segments' paths, in order of first appearance. */
  handles: text('handles', { mode: 'json' }).notNull(),
  /** When a failed request started (null: not failed); the request's row has the rest of its failure. */
  failedStartedAt: integer('failed_started_at'),
});

/**
 * A cache scope's state as of one of its reconciliations (see ScopeStates): after a start the scope is replayed from
 * here, not from its first request. One per scope, replaced in the group commit of the reconciliations it covers.
 */
export const scopeSnapshots = sqliteTable('scope_snapshots', {
  scope: text('scope').primaryKey(),
  /** The last reconciliation it covers: the scope's requests reconciled up to it are in it, none after. */
  seq: integer('seq').notNull(),
  /** How many reconciled requests of the scope it covers (a count of the rows up to `seq` checks it). */
  rows: integer('rows').notNull(),
  /** Its format: a snapshot of a format this code does not know is not read. */
  version: integer('version').notNull(),
  /** sha256 of the cache rules it was simulated by: if the catalog's changed since, it is not read. */
  rules: text('rules').notNull(),
  /** Its entries: the first `parts` rows of this chain in scope_snapshot_changes (begun by every entry, in parts). */
  chain: text('chain').notNull(),
  parts: integer('parts').notNull(),
  /** Everything but the simulated caches' entries, as JSON. */
  state: text('state').notNull(),
});

/**
 * The simulated caches' entries of each scope snapshot: each snapshot appends those changed since the last (a long
 * history's entries are far more than one snapshot's requests touch), read back in order; once they add up to more
 * than twice the entries, a new chain is written, every entry a part at a time over several group commits (the
 * snapshot reads the old chain until the new one is complete; then the old one is deleted). Two processes
 * snapshotting one scope would append to one chain: the snapshot's part count no longer matches, and it is not read.
 */
export const scopeSnapshotChanges = sqliteTable(
  'scope_snapshot_changes',
  {
    scope: text('scope').notNull(),
    chain: text('chain').notNull(),
    part: integer('part').notNull(),
    /** JSON (see scope-snapshot.ts). */
    entries: text('entries').notNull(),
  },
  (t) => [primaryKey({ columns: [t.scope, t.chain, t.part] })],
);

/**
 * How many reconciled requests of a scope were pruned (see RequestRetention): a scope snapshot covers its rows still
 * stored plus these, so it is still read after its oldest requests are gone.
 */
export const scopePruned = sqliteTable('scope_pruned', {
  scope: text('scope').primaryKey(),
  rows: integer('rows').notNull(),
});

/** One row: requests rendered before `before` may have been pruned (a missing id older than it is said to be). */
export const requestRetention = sqliteTable('request_retention', {
  id: integer('id').primaryKey(),
  prunedBefore: integer('pruned_before').notNull(),
});

/** Inline (caller) segment bytes, kept for a while so a drift can be located to the byte. */
export const requestInline = sqliteTable(
  'request_inline',
  {
    requestId: text('request_id').notNull().references(() => requests.id),
    segment: integer('segment').notNull(),
    text: text('text').notNull(),
    truncated: integer('truncated', { mode: 'boolean' }).notNull(),
    expiresAt: integer('expires_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.requestId, t.segment] }), index('request_inline_expiry').on(t.expiresAt)],
);

export { ROLLUP_CLASSES, ROLLUP_MONEY };

// Generated columns are typed loosely: the store reads and writes rollups with prepared SQL.
const classColumns = Object.fromEntries(
  ROLLUP_CLASSES.flatMap((c) => [
    [c, integer(c).notNull().default(0)],
    [requestsColumn(c), integer(requestsColumn(c)).notNull().default(0)],
  ]),
);
const moneyColumns = Object.fromEntries(ROLLUP_MONEY.map((m) => [m, real(m).notNull().default(0)]));
const leakedColumns = Object.fromEntries(ROLLUP_LEAKED.map((m) => [m, real(m).notNull().default(0)]));

/**
 * Per handle (and version), day (of the tenant's time zone) and model: the waterfall's tokens and
 * requests and its money, kept up to date on ingestion so reports never scan
 * requests. handle_id '*' holds the tenant's totals (each segment once).
 */
export const rollups = sqliteTable(
  'rollups',
  {
    tenantId: text('tenant_id').notNull(),
    handleId: text('handle_id').notNull(),
    version: integer('version').notNull(),
    day: integer('day').notNull(),
    model: text('model').notNull(),
    requests: integer('requests').notNull().default(0),
    ...(classColumns as {}),
    ...(moneyColumns as {}),
    /** Requests that had content of this version (`requests` counts a request on its newest version's row only). */
    requestsIncluding: integer('requests_including').notNull().default(0),
    /** Leaked money by class (`leaked_drift`…): cost_actual - cost_perfect divided among the classes that missed. */
    ...(leakedColumns as {}),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.handleId, t.version, t.day, t.model] }),
    // The tenant report over a period (the dashboard's 24h, 7d, 30d) reads those days' rows, not every day of every handle.
    index('rollups_tenant_day').on(t.tenantId, t.day),
  ],
);

/**
 * Rollup rows summed over a span of days — a calendar month (named by its first day) or every day (ALL_DAYS, -1) —
 * per tenant, handle and model (every version together: the tenant report shows handles). Long and all-time tenant
 * reports read these, not every day of every handle. Made by the report that first needs one; a span is valid only
 * through the day in rollups_span_through, and a write to a day it covers deletes that row (see SqliteStore).
 */
export const rollupsSpan = sqliteTable(
  'rollups_span',
  {
    tenantId: text('tenant_id').notNull(),
    handleId: text('handle_id').notNull(),
    model: text('model').notNull(),
    span: integer('span').notNull(),
    requests: integer('requests').notNull().default(0),
    ...(classColumns as {}),
    ...(moneyColumns as {}),
    requestsIncluding: integer('requests_including').notNull().default(0),
    ...(leakedColumns as {}),
  },
  // Handle first: a report's sum over several spans is grouped by handle in key order, without a sort.
  (t) => [primaryKey({ columns: [t.tenantId, t.handleId, t.model, t.span] })],
);

/** The last day a tenant's span holds (no row: not made, or a later write reached a day in it). */
export const rollupsSpanThrough = sqliteTable(
  'rollups_span_through',
  {
    tenantId: text('tenant_id').notNull(),
    span: integer('span').notNull(),
    through: integer('through').notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.span] })],
);

/** Where a handle's prefix drifted: the earliest changed segment against the last request that had it. */
export const driftFindings = sqliteTable(
  'drift_findings',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    tenantId: text('tenant_id').notNull(),
    handleId: text('handle_id').notNull(),
    requestId: text('request_id').notNull(),
    previousRequestId: text('previous_request_id').notNull(),
    at: integer('at').notNull(),
    /** The request's model, kept here: a report filtered by model reads it after the request is pruned (null: none). */
    model: text('model'),
    finding: text('finding', { mode: 'json' }).notNull(),
  },
  (t) => [index('drift_findings_handle').on(t.tenantId, t.handleId, t.at)],
);

/** Running ratio of provider-reported prompt tokens to our estimate, per tenant and model. */
export const calibration = sqliteTable(
  'calibration',
  {
    tenantId: text('tenant_id').notNull(),
    model: text('model').notNull(),
    family: text('family').notNull(),
    providerTokens: integer('provider_tokens').notNull(),
    estimatedTokens: integer('estimated_tokens').notNull(),
    reports: integer('reports').notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.model] })],
);
