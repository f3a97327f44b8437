// What the domain needs from storage. One interface, so a PostgreSQL store
// can follow; every method that changes more than one row is atomic.

export type HandleType = 'artifact' | 'bundle' | 'session';
export type ArtifactKindRow = 'system' | 'tools' | 'document' | 'messages';

export interface TenantRow {
  id: string;
  /** DELETING_NAME while the tenant is being deleted (see Store.markTenantDeleting). */
  name: string;
  createdAt: number;
  /** The IANA zone its days are counted in ('UTC' unless set; see domain/time-zone.ts). */
  timeZone: string;
}

/**
 * The name of a tenant being deleted: its keys are gone and its rows are deleted a batch at a time, resumed at start.
 * Never a tenant's name (names are 1 to 200 characters), so it marks the state without a column of its own.
 */
export const DELETING_NAME = '';

/** What renameTenant did: renamed (with the row before), refused for a name `taken` by another tenant, or no such tenant. */
export type RenameResult = { renamed: TenantRow } | { taken: TenantRow } | { missing: true } | { zoneFixed: TenantRow };

export interface ApiKeyRow {
  id: string;
  tenantId: string;
  keyHash: string;
  hint: string;
  createdAt: number;
  revokedAt: number | null;
}

export interface HandleRow {
  id: string;
  tenantId: string;
  type: HandleType;
  kind: ArtifactKindRow | null;
  name: string | null;
  metadata: unknown;
  latestVersion: number;
  createdAt: number;
  deletedAt: number | null;
}

export interface VersionRow {
  handleId: string;
  version: number;
  createdAt: number;
  digest: string;
  size: number;
  contentDigest: string | null;
  members: string[] | null;
  base: string | null;
  messageCount: number | null;
  meta: unknown;
}

export interface BlobInput {
  digest: string;
  bytes: Buffer;
}

export interface PinInput {
  toId: string;
  toVersion: number;
}

export interface NewVersion {
  version: VersionRow;
  blobs: BlobInput[];
  pins: PinInput[];
}

export type AppendResult = { ok: true } | { ok: false; latestVersion: number };

export interface HandleListQuery {
  tenantId: string;
  type?: HandleType;
  kind?: ArtifactKindRow;
  /** Exclusive lower bound on id (cursor pagination in id order). */
  after?: string;
  limit: number;
}

export interface RequestRow {
  id: string;
  tenantId: string;
  scope: string;
  format: string;
  model: string;
  catalogEntry: string;
  catalogFallback: boolean;
  renderedAt: number;
  segments: unknown;
  breakpoints: unknown;
  promptCacheKey: string | null;
  /** The cache lifetime the request asked for (a TTL name of its model), or null: the model's default. */
  cacheTtl?: string | null;
  /**
   * Anthropic: the request's tool_choice and thinking as canonical JSON, under which its messages are cached; OpenAI
   * Responses: its `reasoning.context` (`{"reasoning.context": …}`), which turns' reasoning items it reads (`{}`: none
   * set; null: another format, or recorded before they were kept).
   */
  messageSettings?: string | null;
  /** OpenAI Responses: `previous_response_id` or `conversation` when the request had one (the provider adds the conversation it keeps); else null. */
  providerHistory?: string | null;
  prediction: unknown;
  status?: 'rendered' | 'reconciled' | 'failed';
  startedAt?: number | null;
  firstByteAt?: number | null;
  finishedAt?: number | null;
  reportHash?: string | null;
  usageRaw?: unknown;
  usage?: unknown;
  diagnostics?: unknown;
  outcome?: unknown;
  /** Listed rows only (listRequests): what a list shows of the outcome (see request-summary.ts); null for a request reconciled before it was kept. */
  summary?: unknown;
  /** Listed rows only: its place in the list, the start it is listed by (a cursor's `startedAt`). */
  listedAt?: number;
  /** Listed rows only, not reconciled: the handle ids on its segments' paths, kept at render; null for one recorded before they were. */
  handles?: string[] | null;
  /** In memory from its render (not stored): whether it named a handle, also one that rendered nothing; else `requestNamesHandle` says. */
  namesHandle?: boolean;
  writePremium?: unknown;
  writeRead?: boolean | null;
}

export interface RequestCursor {
  renderedAt: number;
  id: string;
}

/** A place in the list of requests (GET /v1/requests): by when the call started, then id. */
export interface RequestListCursor {
  startedAt: number;
  id: string;
}

export interface RequestListQuery {
  tenantId: string;
  handleId?: string;
  before?: RequestListCursor;
  /**
   * Start times to list, both included (epoch ms): read as a range of the same index, never a scan. A call's start is
   * its report's or failure's, the render time until one comes.
   */
  startedFrom?: number;
  startedTo?: number;
  limit: number;
  /** The index read instead of the tenant's or the handle's list: a page of it is a page of matches. */
  via?: RequestListIndex;
}

/**
 * The list's other indexes: the calls through no handle; the requests with tokens of a rare class (INDEXED_CLASSES)
 * `within` '*' (any handle's segment), a handle id or a handle type.
 */
export type RequestListIndex = 'no_handle' | { tokenClass: string; within: string };

/** Additions to one rollup row: class tokens, class requests (`req_<class>`), money, request count. */
export interface RollupDelta {
  tenantId: string;
  handleId: string;
  version: number;
  day: number;
  model: string;
  values: Record<string, number>;
}

export interface DriftRow {
  tenantId: string;
  handleId: string;
  requestId: string;
  previousRequestId: string;
  at: number;
  /** The request's model (null: a finding whose request was gone before 0015 kept it). */
  model?: string | null;
  finding: unknown;
}

export interface CalibrationDelta {
  tenantId: string;
  model: string;
  family: string;
  providerTokens: number;
  estimatedTokens: number;
}

export interface CalibrationRow extends CalibrationDelta {
  reports: number;
}

/** One write of a group commit: a rendered request, a reconciled report, or an upstream failure. */
export type WriteOp =
  /** `handles`: every handle the request named (the index of requests by handle), beyond those its segments show. */
  | { kind: 'request'; row: RequestRow; inline: InlineRow[]; handles?: string[] }
  | { kind: 'ingest'; write: IngestWrite }
  | { kind: 'failed'; requestId: string; detail: { startedAt: number; finishedAt: number; usageRaw: unknown } }
  /** Covers the reconciliations written before it (its batch's and earlier ones): its seq is the last of them. */
  | { kind: 'snapshot'; snapshot: ScopeSnapshotWrite };

/** A cache scope's snapshot as stored (see ScopeStates): its state as of reconciliation `seq`. */
export interface ScopeSnapshotRow {
  scope: string;
  seq: number;
  /** How many reconciled requests of the scope it covers. */
  rows: number;
  version: number;
  rules: string;
  /** Its simulated caches' entries: the first `parts` changes of this chain. */
  chain: string;
  parts: number;
  /** Everything but its simulated caches' entries (JSON-able). */
  state: unknown;
}

export interface ScopeSnapshotWrite {
  scope: string;
  /**
   * A part appended to a chain (JSON-able): its simulated caches' entries changed since the chain's last part, or (a
   * new chain's first parts, written over several group commits) a share of every one.
   */
  part?: { chain: string; index: number; changes: unknown };
  /**
   * The snapshot, replacing the scope's: its entries are the first `parts` parts of `chain`. None: a part of a new
   * chain that no snapshot reads yet (the scope's snapshot stays the one before until one completes it).
   */
  row?: Omit<ScopeSnapshotRow, 'scope' | 'seq'>;
  /** With `row`, a new chain: the scope's parts of every other chain are deleted (the one it replaces, any left unfinished). */
  replaces?: boolean;
}

/** Everything one reconciled usage report changes, written in one transaction with others. */
export interface IngestWrite {
  request: Required<Pick<RequestRow, 'id' | 'tenantId' | 'status' | 'startedAt' | 'firstByteAt' | 'finishedAt' | 'reportHash' | 'usageRaw' | 'usage' | 'diagnostics' | 'outcome' | 'summary' | 'writePremium'>>;
  rollups: RollupDelta[];
  drift: DriftRow[];
  calibration: CalibrationDelta | null;
  /**
   * An earlier request whose cache write this one read: the premium of what it read was not wasted.
   * `left`: the stored premium still unread (null: none left).
   */
  markWriteRead: { requestId: string; rollups: RollupDelta[]; left: unknown } | null;
  /** The cache read multiplier and input price per token the outcome was priced at: its batches read whole are stored as runs (compact.ts). */
  prices?: { read: number; input: number };
}

/** A reconciliation whose write premium is not all read yet. */
export interface UnreadWrite {
  requestId: string;
  tenantId: string;
  model: string;
  startedAt: number;
  writePremium: unknown;
}

export interface RollupQuery {
  tenantId: string;
  /** One handle, or '*': the tenant's totals. */
  handleId: string;
  fromDay: number;
  toDay: number;
  model?: string;
}

export type RollupRow = { handle_id: string; version: number; model: string } & Record<string, number>;

/** Rollup values of one handle summed per model, over all its versions or some of them. */
export type ModelRollupRow = { handle_id: string; model: string } & Record<string, number>;

/** Rollup values of one handle, every version and model of it together. */
export type HandleSums = { handle_id: string } & Record<string, number>;

/** One handle's rows over a day range (`sumVersionRollups`, `sumDayRollups`). */
export interface HandleRollupQuery {
  tenantId: string;
  handleId: string;
  fromDay: number;
  toDay: number;
  model?: string;
}

/** Rollup values summed over every version and model of one day (the tenant's: see domain/time-zone.ts). */
export type DayRollupRow = { day: number } & Record<string, number>;

export interface InlineRow {
  requestId: string;
  segment: number;
  text: string;
  truncated: boolean;
  expiresAt: number;
}

/** A request old enough to prune, as a batch reads it: when it was rendered, its scope, and its reconciliation if any. */
export interface PruneCandidate {
  id: string;
  renderedAt: number;
  scope: string;
  /** Its reconciliation's seq and start (null: not reconciled). */
  seq: number | null;
  startedAt: number | null;
}

/** A scope's snapshot as pruning sees it: the last reconciliation it covers, its format, and its states' latest starts. */
export interface SnapshotCoverage {
  scope: string;
  seq: number;
  version: number;
  liveLastStart: number | null;
  historyLastStart: number | null;
  /** The start of the scope's latest reconciliation (it may be after the snapshot). */
  latestStart: number | null;
}

export interface Store {
  /**
   * Inserts the tenant and its first key, unless a tenant `sameName` accepts the name of exists: that tenant (the
   * oldest such) is returned and nothing is written. Checked and inserted in one immediate transaction.
   */
  createTenant(tenant: Omit<TenantRow, 'timeZone'> & { timeZone?: string }, key: ApiKeyRow, sameName: (name: string) => boolean): TenantRow | undefined;
  getTenant(id: string): TenantRow | undefined;
  /** Whether the tenant has a rollup row (a reconciled request): its time zone can no longer change (see renameTenant). */
  tenantHasRollups(id: string): boolean;
  /** Every tenant, oldest first, with its keys (oldest first). */
  listTenants(): Array<{ tenant: TenantRow; keys: ApiKeyRow[] }>;
  countApiKeys(): number;
  insertApiKey(key: ApiKeyRow): void;
  findApiKeyByHash(hash: string): ApiKeyRow | undefined;
  getApiKey(id: string): ApiKeyRow | undefined;
  revokeApiKey(id: string, at: number): void;
  /**
   * Rotation, atomically: revokes the active key `oldId` and inserts `next`. False, with nothing written, when
   * `oldId` is not an active key (absent, or revoked meanwhile).
   */
  rotateApiKey(oldId: string, next: ApiKeyRow, at: number): boolean;

  /** Inserts a new handle with its first version, blobs and pins, atomically. */
  insertHandle(handle: HandleRow, first: NewVersion): void;
  /**
   * Adds the next version if the handle's latest version is still `expectedLatest`;
   * otherwise changes nothing and reports the current latest.
   */
  appendVersion(handleId: string, expectedLatest: number, next: NewVersion): AppendResult;
  getHandle(id: string): HandleRow | undefined;
  getVersion(handleId: string, version: number): VersionRow | undefined;
  /**
   * Oldest first; with `newest`, only the newest N of them (read by the key, not every version then cut); with
   * `through`, only versions up to it.
   */
  listVersions(handleId: string, newest?: number, through?: number): VersionRow[];
  listHandles(query: HandleListQuery): HandleRow[];
  getBlob(digest: string): Buffer | undefined;
  /**
   * A tenant's live artifact versions of a kind whose stored content has this sha256, oldest first (by creation,
   * then handle id and version): the handles inline content is found to be (render's match_handles).
   */
  artifactVersionsWithContent(tenantId: string, kind: ArtifactKindRow, contentDigest: string): Array<{ handleId: string; version: number }>;
  /** Live handles that pin any version of `handleId`. */
  referrersOf(handleId: string): string[];
  /** Marks deleted if nothing live pins it; returns the referrers otherwise. */
  deleteHandle(handleId: string, at: number): { ok: true } | { ok: false; referrers: string[] };

  getRequest(id: string): RequestRow | undefined;
  /**
   * A tenant's requests, newest rendered first, after `before`; with `handleId`, those whose segments name it.
   * `next` is where the next page starts (null: there is no more). Rows to summarise: a reconciled request comes with
   * its summary, without its segments and outcome (the outcome only when it has no summary of SUMMARY_VERSION:
   * reconciled before they were kept, or of another shape); one not reconciled with its handles, without its segments
   * (the segments only when it has no handles: recorded before they were kept); and every row with only what a list
   * shows (the rest null: breakpoints, prediction, prompt cache key and settings, raw usage, diagnostics, write
   * premium, a failure's finish).
   */
  listRequests(q: RequestListQuery): { rows: RequestRow[]; next: RequestListCursor | null };
  /**
   * Whether the tenant recorded any request sent to `model` (its name as sent; reconciled, unreported or failed): one
   * lookup of the scope index, whose keys begin with `${tenant}|${provider}|${model}|` for each of `providers`.
   */
  hasRequestOfModel(tenantId: string, model: string, providers: readonly string[]): boolean;
  /** Reconciliations started at or after `since` with a write premium not all read (to rebuild pending premiums). */
  unreadWritesSince(since: number): UnreadWrite[];
  getInline(requestId: string, segment: number, now: number): InlineRow | undefined;
  /** Drops inline bytes past their retention; returns how many. */
  purgeInline(now: number): number;

  /**
   * Applies writes in order, in one transaction (group commit): all of them or
   * none. Visible at once; on disk only once `durable()` resolves.
   */
  writeBatch(ops: WriteOp[]): void;
  /** Resolves once every batch written before the call is on disk. */
  durable(): Promise<void>;
  /**
   * Why the database cannot serve, or null while it can: a failed sync of the WAL (group commits are refused until a
   * restart), a closed connection, a read that fails, or the database file or its WAL removed or replaced at its path.
   * Cheap (one prepared read of one row, two stats): health checks call it every few seconds.
   */
  health(): string | null;
  /**
   * Reconciled requests of a cache scope in reconciliation order, after `afterSeq` (to rebuild the scope's simulation
   * from its snapshot, or from the start), streamed: a scope's history can be far larger than memory. Their usage, raw
   * usage, diagnostics, write premium and prediction are left out (null).
   * No other statement may run on the connection until the iteration ends.
   */
  reconciledInScope(scope: string, afterSeq?: number): Iterable<RequestRow>;
  /** How many of a scope's requests were reconciled at or before `seq`. */
  countReconciledInScope(scope: string, seq: number): number;
  scopeSnapshot(scope: string): ScopeSnapshotRow | undefined;
  /** The changes a scope's snapshots stored in a chain, oldest first, streamed (no other statement may run on the connection until the iteration ends). */
  scopeSnapshotChanges(scope: string, chain: string): Iterable<unknown>;
  /** Rollup rows summed per handle, version and model over a day range. */
  sumRollups(query: RollupQuery): RollupRow[];
  /** Whether a recorded request named a handle (its rows in request_handles, by request id). */
  requestNamesHandle(requestId: string): boolean;
  /**
   * Every handle's rollup rows (not the '*' totals, nor the NO_HANDLE rows) summed per handle over a day range: only
   * those of `handles` when given, only handles of `types` when given, and only `columns` (some of
   * ROLLUP_VALUE_COLUMNS; all of them by default). `together`: summed over all those handles as one row (handle_id
   * '*'; none when no row matched).
   */
  sumHandles(query: Omit<RollupQuery, 'handleId'> & { handles?: string[]; types?: readonly HandleType[]; together?: boolean }, columns?: readonly string[]): HandleSums[];
  /** One handle's rollup rows summed per version and model, for versions `from`..`to` only (by the key). */
  sumVersionRollups(query: HandleRollupQuery & { versions: { from: number; to: number } }): RollupRow[];
  /** One handle's rollup rows summed per day (the tenant's) over all its versions (a session has one per turn): one row a day. */
  sumDayRollups(query: HandleRollupQuery): DayRollupRow[];
  /** One handle's rollup rows summed per model over all its versions: one row a model. */
  sumModelRollups(query: HandleRollupQuery): ModelRollupRow[];
  /** The latest drift findings of a handle, among requests started within [fromMs, toMs) and of `model` when given. */
  driftFindings(tenantId: string, handleId: string, limit: number, within?: { fromMs: number; toMs: number; model?: string }): DriftRow[];
  calibrations(tenantId: string): CalibrationRow[];

  /**
   * Renames a tenant unless `conflict` (given the tenant and every other one) names one holding the name: checked and
   * written in one immediate transaction, as createTenant. A tenant being deleted is missing.
   */
  renameTenant(id: string, change: { name?: string; timeZone?: string }, conflict: (tenant: TenantRow, others: TenantRow[]) => TenantRow | undefined): RenameResult;
  /**
   * The first step of a tenant's deletion, in one immediate transaction: when `confirm` accepts the tenant (read in
   * it), its keys are deleted and its name set to DELETING_NAME. Returns the tenant as it was (marked already: as it
   * is; not accepted: nothing written) and how many keys were deleted, or undefined when there is none.
   */
  markTenantDeleting(id: string, confirm: (tenant: TenantRow) => boolean): { tenant: TenantRow; marked: boolean; keys: number } | undefined;
  /** Tenants being deleted (see markTenantDeleting). */
  deletingTenants(): string[];
  /**
   * One step of a marked tenant's deletion: deletes about `limit` rows of its data, children before parents, in one
   * short transaction (its handles' in one of their own), then, once none is left, its row. `done`: it is gone.
   */
  deleteTenantBatch(id: string, limit: number): { rows: number; done: boolean };
  /** What is left of a tenant being deleted: its requests and handles (each with its own rows), by their tenant indexes. */
  tenantLeft(id: string): { requests: number; handles: number };

  /** Every tenant's id. */
  tenantIds(): string[];
  /** Every scope snapshot's coverage (pruning keeps what a snapshot does not cover). */
  snapshotCoverage(): SnapshotCoverage[];
  /**
   * One batch of pruning, in one transaction: reads up to `limit` of a tenant's requests rendered before `before`,
   * after `after` (oldest first), and deletes those `prunable` accepts with every row of theirs (reconciliation,
   * summary, line, inline texts, index by handle; drift findings and rollups stay), counting the reconciled ones in
   * their scope's pruned rows, and records `before` as pruned. `next`: where the next batch starts (null: done).
   */
  pruneBatch(q: { tenantId: string; before: number; after: RequestCursor | null; limit: number }, prunable: (c: PruneCandidate) => boolean): { pruned: string[]; read: number; next: RequestCursor | null };
  /** Whether a request is stored (by its key alone: none of its row is read). */
  requestExists(id: string): boolean;
  /** How many reconciled requests of a scope were pruned. */
  prunedInScope(scope: string): number;
  /** The latest time before which requests were pruned (null: never). */
  prunedBefore(): number | null;
}
