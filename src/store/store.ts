// What the domain needs from storage. One interface, so a PostgreSQL store
// can follow; every method that changes more than one row is atomic.

export type HandleType = 'artifact' | 'bundle' | 'session';
export type ArtifactKindRow = 'system' | 'tools' | 'document' | 'messages';

export interface TenantRow {
  id: string;
  name: string;
  createdAt: number;
}

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
  prediction: unknown;
}

export interface InlineRow {
  requestId: string;
  segment: number;
  text: string;
  truncated: boolean;
  expiresAt: number;
}

export interface Store {
  createTenant(tenant: TenantRow, key: ApiKeyRow): void;
  getTenant(id: string): TenantRow | undefined;
  countApiKeys(): number;
  insertApiKey(key: ApiKeyRow): void;
  findApiKeyByHash(hash: string): ApiKeyRow | undefined;
  getApiKey(id: string): ApiKeyRow | undefined;
  revokeApiKey(id: string, at: number): void;

  /** Inserts a new handle with its first version, blobs and pins, atomically. */
  insertHandle(handle: HandleRow, first: NewVersion): void;
  /**
   * Adds the next version if the handle's latest version is still `expectedLatest`;
   * otherwise changes nothing and reports the current latest.
   */
  appendVersion(handleId: string, expectedLatest: number, next: NewVersion): AppendResult;
  getHandle(id: string): HandleRow | undefined;
  getVersion(handleId: string, version: number): VersionRow | undefined;
  listVersions(handleId: string): VersionRow[];
  listHandles(query: HandleListQuery): HandleRow[];
  getBlob(digest: string): Buffer | undefined;
  /** Live handles that pin any version of `handleId`. */
  referrersOf(handleId: string): string[];
  /** Marks deleted if nothing live pins it; returns the referrers otherwise. */
  deleteHandle(handleId: string, at: number): { ok: true } | { ok: false; referrers: string[] };

  /** Records a rendered request and its kept inline bytes, atomically. */
  insertRequest(row: RequestRow, inline: InlineRow[]): void;
  getRequest(id: string): RequestRow | undefined;
  getInline(requestId: string, segment: number, now: number): InlineRow | undefined;
  /** Drops inline bytes past their retention; returns how many. */
  purgeInline(now: number): number;
}
