import type { HandleRow, VersionRow } from '../store/store';
import { formatRef } from '../domain/ids';

const iso = (ms: number) => new Date(ms).toISOString();

export function versionView(v: VersionRow) {
  return {
    version: v.version,
    ref: formatRef(v.handleId, v.version),
    digest: v.digest,
    size: v.size,
    created_at: iso(v.createdAt),
    ...(v.members ? { members: v.members } : {}),
    ...(v.base !== null || v.messageCount !== null ? { base: v.base, message_count: v.messageCount ?? 0 } : {}),
    ...(v.meta !== null && v.meta !== undefined ? { meta: v.meta } : {}),
  };
}

export function handleSummaryView(h: HandleRow) {
  return {
    id: h.id,
    type: h.type,
    kind: h.kind,
    name: h.name,
    metadata: h.metadata ?? null,
    latest_version: h.latestVersion,
    created_at: iso(h.createdAt),
  };
}

export function handleView(h: HandleRow, focus: VersionRow, versions: VersionRow[]) {
  return { ...handleSummaryView(h), version: versionView(focus), versions: versions.map(versionView) };
}

export function mintView(r: { created: boolean; handle: HandleRow; version: VersionRow }) {
  return {
    id: r.handle.id,
    type: r.handle.type,
    kind: r.handle.kind,
    name: r.handle.name,
    created: r.created,
    latest_version: r.handle.latestVersion,
    ...versionView(r.version),
  };
}

/** A request's outcome as the API shows it: without the state kept to replay its scope's simulation (`lengths`, `sim`). */
export function outcomeView(outcome: unknown): unknown {
  if (outcome === null || typeof outcome !== 'object') return outcome ?? null;
  const { lengths: _lengths, sim: _sim, ...shown } = outcome as Record<string, unknown>;
  return shown;
}

/** A failed request's provider answer, kept as `{ status, error }`: shown as its status and the provider's body. */
export function failureView(raw: unknown): { status: number | null; body: unknown } {
  const r = (raw ?? {}) as { status?: number | null; error?: unknown };
  return { status: r.status ?? null, body: r.error ?? null };
}
