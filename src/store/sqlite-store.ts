import { and, asc, desc, eq, gt, isNull, lte, sql } from 'drizzle-orm';
import type { Db } from './db';
import { apiKeys, blobs, calibration, driftFindings, handlePins, handles, handleVersions, requestInline, requests, ROLLUP_CLASSES, ROLLUP_MONEY, tenants } from './schema';
import type {
  ApiKeyRow,
  AppendResult,
  HandleListQuery,
  CalibrationRow,
  DriftRow,
  HandleRow,
  IngestWrite,
  InlineRow,
  WriteOp,
  RollupDelta,
  RollupQuery,
  RollupRow,
  NewVersion,
  RequestRow,
  Store,
  TenantRow,
  VersionRow,
} from './store';

type Statement = ReturnType<Db['$client']['prepare']>;

const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));
const parse = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : (v ?? null));

function requestParams(r: RequestRow) {
  return {
    id: r.id,
    tenantId: r.tenantId,
    scope: r.scope,
    format: r.format,
    model: r.model,
    catalogEntry: r.catalogEntry,
    catalogFallback: r.catalogFallback ? 1 : 0,
    renderedAt: r.renderedAt,
    segments: json(r.segments),
    breakpoints: json(r.breakpoints),
    promptCacheKey: r.promptCacheKey,
    prediction: json(r.prediction),
  };
}

/** A requests row as the domain sees it (snake_case columns, JSON parsed). */
function requestFromRow(row: Record<string, unknown>): RequestRow {
  return {
    id: row.id as string,
    tenantId: row.tenant_id as string,
    scope: row.scope as string,
    format: row.format as string,
    model: row.model as string,
    catalogEntry: row.catalog_entry as string,
    catalogFallback: row.catalog_fallback === 1,
    renderedAt: row.rendered_at as number,
    segments: parse(row.segments),
    breakpoints: parse(row.breakpoints),
    promptCacheKey: (row.prompt_cache_key as string | null) ?? null,
    prediction: parse(row.prediction),
    status: row.status as RequestRow['status'],
    startedAt: (row.started_at as number | null) ?? null,
    firstByteAt: (row.first_byte_at as number | null) ?? null,
    finishedAt: (row.finished_at as number | null) ?? null,
    reportHash: (row.report_hash as string | null) ?? null,
    usageRaw: parse(row.usage_raw),
    usage: parse(row.usage),
    diagnostics: parse(row.diagnostics),
    outcome: parse(row.outcome),
    writePremium: parse(row.write_premium),
    writeRead: row.write_read === 1,
  };
}

// Rollup columns: request count, then each class's tokens and requests, then money.
const ROLLUP_VALUE_COLUMNS = ['requests', ...ROLLUP_CLASSES.flatMap((c) => [c, `req_${c}`]), ...ROLLUP_MONEY];

export class SqliteStore implements Store {
  private readonly upsertRollup;
  // The expand path reads a handle and a version on every call: prepare those once.
  private readonly handleById;
  private readonly versionByKey;
  private readonly sumRollupsStmt = new Map<string, Statement>();
  private readonly requestById: Statement;
  private readonly insertRequestStmt: Statement;
  private readonly insertInlineStmt: Statement;
  private readonly markFailedStmt: Statement;
  private readonly reconcileStmt: Statement;
  private readonly insertDriftStmt: Statement;
  private readonly calibrateStmt: Statement;
  private readonly markReadStmt: Statement;
  private lastSeq: number;

  constructor(private readonly db: Db) {
    this.handleById = db.select().from(handles).where(eq(handles.id, sql.placeholder('id'))).prepare();
    this.versionByKey = db
      .select()
      .from(handleVersions)
      .where(and(eq(handleVersions.handleId, sql.placeholder('id')), eq(handleVersions.version, sql.placeholder('version'))))
      .prepare();
    const client = db.$client;
    this.requestById = client.prepare('select * from requests where id = ?');
    this.insertRequestStmt = client.prepare(
      `insert into requests (id, tenant_id, scope, format, model, catalog_entry, catalog_fallback, rendered_at, segments, breakpoints, prompt_cache_key, prediction, status)
       values (@id, @tenantId, @scope, @format, @model, @catalogEntry, @catalogFallback, @renderedAt, @segments, @breakpoints, @promptCacheKey, @prediction, 'rendered')`,
    );
    this.insertInlineStmt = client.prepare(
      'insert into request_inline (request_id, segment, text, truncated, expires_at) values (@requestId, @segment, @text, @truncated, @expiresAt)',
    );
    this.markFailedStmt = client.prepare(
      `update requests set status = 'failed', started_at = @startedAt, finished_at = @finishedAt, usage_raw = @usageRaw where id = @id and status = 'rendered'`,
    );
    // The reconciliation order is the live order a scope's simulation is replayed in.
    this.reconcileStmt = client.prepare(
      `update requests set status = 'reconciled', started_at = @startedAt, first_byte_at = @firstByteAt, finished_at = @finishedAt,
       report_hash = @reportHash, usage_raw = @usageRaw, usage = @usage, diagnostics = @diagnostics, outcome = @outcome,
       write_premium = @writePremium, reconciled_seq = @seq where id = @id`,
    );
    this.insertDriftStmt = client.prepare(
      'insert into drift_findings (tenant_id, handle_id, request_id, previous_request_id, at, finding) values (@tenantId, @handleId, @requestId, @previousRequestId, @at, @finding)',
    );
    this.calibrateStmt = client.prepare(
      `insert into calibration (tenant_id, model, family, provider_tokens, estimated_tokens, reports) values (@tenantId, @model, @family, @providerTokens, @estimatedTokens, 1)
       on conflict (tenant_id, model) do update set provider_tokens = provider_tokens + excluded.provider_tokens,
       estimated_tokens = estimated_tokens + excluded.estimated_tokens, reports = reports + 1, family = excluded.family`,
    );
    this.markReadStmt = client.prepare('update requests set write_read = 1 where id = @id');
    // The reconciliation counter lives here: a max() per report would scan the table (SQLite's
    // min/max shortcut does not apply inside coalesce()).
    this.lastSeq = (client.prepare('select max(reconciled_seq) from requests').pluck().get() as number | null) ?? 0;
    const cols = ROLLUP_VALUE_COLUMNS;
    // Hot path of ingestion: one prepared upsert that adds to every counter.
    this.upsertRollup = db.$client.prepare(
      `insert into rollups (tenant_id, handle_id, version, day, model, ${cols.join(', ')})
       values (@tenantId, @handleId, @version, @day, @model, ${cols.map((c) => `@${c}`).join(', ')})
       on conflict (tenant_id, handle_id, version, day, model) do update set
       ${cols.map((c) => `${c} = ${c} + excluded.${c}`).join(', ')}`,
    );
  }

  createTenant(tenant: TenantRow, key: ApiKeyRow): void {
    // better-sqlite3 transactions must be synchronous: no awaits inside.
    this.db.transaction((tx) => {
      tx.insert(tenants).values(tenant).run();
      tx.insert(apiKeys).values(key).run();
    });
  }

  getTenant(id: string): TenantRow | undefined {
    return this.db.select().from(tenants).where(eq(tenants.id, id)).get();
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

  listVersions(handleId: string): VersionRow[] {
    return this.db
      .select()
      .from(handleVersions)
      .where(eq(handleVersions.handleId, handleId))
      .orderBy(asc(handleVersions.version))
      .all() as VersionRow[];
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

  getBlob(digest: string): Buffer | undefined {
    return this.db.select({ bytes: blobs.bytes }).from(blobs).where(eq(blobs.digest, digest)).get()?.bytes;
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
    const row = this.requestById.get(id) as Record<string, unknown> | undefined;
    return row ? requestFromRow(row) : undefined;
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
    // One synchronous transaction; hot statements are prepared once (drizzle's builder costs ~80 µs a query).
    const seqBefore = this.lastSeq;
    try {
      this.writeBatchInTransaction(ops);
    } catch (e) {
      // Nothing was written: the counter goes back with the rolled-back transaction.
      this.lastSeq = seqBefore;
      throw e;
    }
  }

  private writeBatchInTransaction(ops: WriteOp[]): void {
    this.db.$client
      .transaction(() => {
        for (const op of ops) {
          if (op.kind === 'request') {
            this.insertRequestStmt.run(requestParams(op.row));
            for (const i of op.inline) this.insertInlineStmt.run({ ...i, truncated: i.truncated ? 1 : 0 });
          } else if (op.kind === 'failed') {
            this.markFailedStmt.run({ id: op.requestId, startedAt: op.detail.startedAt, finishedAt: op.detail.finishedAt, usageRaw: JSON.stringify(op.detail.usageRaw) });
          } else this.applyIngestion(op.write);
        }
      })
      .immediate();
  }

  private applyIngestion(w: IngestWrite): void {
    const r = w.request;
    this.reconcileStmt.run({
      id: r.id,
      seq: ++this.lastSeq,
      startedAt: r.startedAt,
      firstByteAt: r.firstByteAt,
      finishedAt: r.finishedAt,
      reportHash: r.reportHash,
      usageRaw: JSON.stringify(r.usageRaw),
      usage: JSON.stringify(r.usage),
      diagnostics: JSON.stringify(r.diagnostics),
      outcome: JSON.stringify(r.outcome),
      writePremium: JSON.stringify(r.writePremium),
    });
    for (const roll of w.rollups) this.addRollup(roll);
    for (const d of w.drift) this.insertDriftStmt.run({ ...d, finding: JSON.stringify(d.finding) });
    if (w.calibration) this.calibrateStmt.run(w.calibration);
    if (w.markWriteRead) {
      this.markReadStmt.run({ id: w.markWriteRead.requestId });
      for (const roll of w.markWriteRead.rollups) this.addRollup(roll);
    }
  }

  private addRollup(r: RollupDelta): void {
    const row: Record<string, string | number> = { tenantId: r.tenantId, handleId: r.handleId, version: r.version, day: r.day, model: r.model };
    for (const c of ROLLUP_VALUE_COLUMNS) row[c] = r.values[c] ?? 0;
    this.upsertRollup.run(row);
  }

  reconciledInScope(scope: string): RequestRow[] {
    return this.db
      .select()
      .from(requests)
      .where(and(eq(requests.scope, scope), eq(requests.status, 'reconciled')))
      .orderBy(asc(requests.reconciledSeq))
      .all() as RequestRow[];
  }

  sumRollups(q: RollupQuery): RollupRow[] {
    const key = `${q.handleId === null ? 'all' : 'one'}:${q.model === undefined ? 'any' : 'model'}`;
    let stmt = this.sumRollupsStmt.get(key);
    if (!stmt) {
      const where = ['tenant_id = @tenantId', 'day between @fromDay and @toDay', q.handleId === null ? "handle_id != '*'" : 'handle_id = @handleId'];
      if (q.model !== undefined) where.push('model = @model');
      stmt = this.db.$client.prepare(
        `select handle_id, version, model, ${ROLLUP_VALUE_COLUMNS.map((c) => `sum(${c}) as ${c}`).join(', ')}
         from rollups where ${where.join(' and ')} group by handle_id, version, model`,
      );
      this.sumRollupsStmt.set(key, stmt);
    }
    return stmt.all({ tenantId: q.tenantId, fromDay: q.fromDay, toDay: q.toDay, handleId: q.handleId ?? '', model: q.model ?? '' }) as RollupRow[];
  }

  driftFindings(tenantId: string, handleId: string, limit: number): DriftRow[] {
    return this.db
      .select()
      .from(driftFindings)
      .where(and(eq(driftFindings.tenantId, tenantId), eq(driftFindings.handleId, handleId)))
      .orderBy(desc(driftFindings.at), desc(driftFindings.id))
      .limit(limit)
      .all();
  }

  calibrations(tenantId: string): CalibrationRow[] {
    return this.db.select().from(calibration).where(eq(calibration.tenantId, tenantId)).all();
  }


}
