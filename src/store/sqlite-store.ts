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
  RollupDelta,
  RollupQuery,
  RollupRow,
  NewVersion,
  RequestRow,
  Store,
  TenantRow,
  VersionRow,
} from './store';

// Rollup columns: request count, then each class's tokens and requests, then money.
const ROLLUP_VALUE_COLUMNS = ['requests', ...ROLLUP_CLASSES.flatMap((c) => [c, `req_${c}`]), ...ROLLUP_MONEY];

export class SqliteStore implements Store {
  private readonly upsertRollup;
  // The expand path reads a handle and a version on every call: prepare those once.
  private readonly handleById;
  private readonly versionByKey;
  private readonly sumRollupsStmt = new Map<string, ReturnType<Db['$client']['prepare']>>();

  constructor(private readonly db: Db) {
    this.handleById = db.select().from(handles).where(eq(handles.id, sql.placeholder('id'))).prepare();
    this.versionByKey = db
      .select()
      .from(handleVersions)
      .where(and(eq(handleVersions.handleId, sql.placeholder('id')), eq(handleVersions.version, sql.placeholder('version'))))
      .prepare();
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

  insertRequest(row: RequestRow, inline: InlineRow[]): void {
    this.db.transaction((tx) => {
      tx.insert(requests).values(row).run();
      for (const i of inline) tx.insert(requestInline).values(i).run();
    });
  }

  getRequest(id: string): RequestRow | undefined {
    return this.db.select().from(requests).where(eq(requests.id, id)).get() as RequestRow | undefined;
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

  commitIngestions(writes: IngestWrite[]): void {
    this.db.transaction((tx) => {
      for (const w of writes) {
        tx.update(requests)
          .set({ ...w.request, reconciledSeq: sql`(select coalesce(max(${requests.reconciledSeq}), 0) + 1 from ${requests})` })
          .where(eq(requests.id, w.request.id))
          .run();
        for (const r of w.rollups) this.addRollup(r);
        for (const d of w.drift) tx.insert(driftFindings).values(d).run();
        if (w.calibration)
          tx.insert(calibration)
            .values({ ...w.calibration, reports: 1 })
            .onConflictDoUpdate({
              target: [calibration.tenantId, calibration.model],
              set: {
                providerTokens: sql`${calibration.providerTokens} + ${w.calibration.providerTokens}`,
                estimatedTokens: sql`${calibration.estimatedTokens} + ${w.calibration.estimatedTokens}`,
                reports: sql`${calibration.reports} + 1`,
                family: w.calibration.family,
              },
            })
            .run();
        if (w.markWriteRead) {
          tx.update(requests).set({ writeRead: true }).where(eq(requests.id, w.markWriteRead.requestId)).run();
          for (const r of w.markWriteRead.rollups) this.addRollup(r);
        }
      }
    }, { behavior: 'immediate' });
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

  markFailed(requestId: string, detail: { startedAt: number; finishedAt: number; usageRaw: unknown }): void {
    this.db
      .update(requests)
      .set({ status: 'failed', startedAt: detail.startedAt, finishedAt: detail.finishedAt, usageRaw: detail.usageRaw })
      .where(and(eq(requests.id, requestId), eq(requests.status, 'rendered')))
      .run();
  }
}
