import type { HandleRow, RequestRow, VersionRow } from '../store/store';
import { formatRef, type HandleType } from '../domain/ids';
import { leakedByClass, type ClassCounts } from '../domain/reconcile/waterfall';
import { listedSummary, pathHandles, summaryClasses } from '../domain/reconcile/request-summary';
import type { RenderedSegment } from '../domain/render/request';
import type { NormalizedUsage } from '../domain/usage/types';
import type { RenderWarning } from '../domain/requests';

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

export function mintView(r: { created: boolean; handle: HandleRow; version: VersionRow; warnings?: RenderWarning[] }) {
  return {
    id: r.handle.id,
    type: r.handle.type,
    kind: r.handle.kind,
    name: r.handle.name,
    created: r.created,
    latest_version: r.handle.latestVersion,
    ...versionView(r.version),
    // A tools artifact's Anthropic-defined tools no catalog model has a figure for (see estimated-tools.ts).
    ...(r.warnings?.length ? { warnings: r.warnings } : {}),
  };
}

/** A request's outcome as the API shows it: without the state kept to replay its scope's simulation (`lengths`, `sim`). */
export function outcomeView(outcome: unknown): unknown {
  if (outcome === null || typeof outcome !== 'object') return outcome ?? null;
  const { lengths: _lengths, unit_lengths: _unitLengths, sim: _sim, ...shown } = outcome as Record<string, unknown>;
  // Money in billionths of a cent: float noise (7.500000000000001e-05) is not shown; the rollups keep full precision.
  const money = (v: number) => Math.round(v * 1e11) / 1e11;
  // Unknown is not zero: a segment's share of a count the provider did not report (no cache fields: the read; OpenAI,
  // Gemini, vLLM: the write) is unknown too, not the 0 the outcome keeps for its arithmetic.
  const provider = shown.provider as { read: number | null; write: number | null } | undefined;
  const reported = shown.capture === 'reported';
  if (Array.isArray(shown.segments))
    shown.segments = shown.segments.map((s: { cost?: Record<string, number>; classes?: ClassCounts; read?: number; write?: number }) => ({
      ...s,
      ...(s.cost ? { cost: segmentCost(s.cost, s.classes, reported, money) } : {}),
      ...(provider?.read === null ? { read: null } : {}),
      ...(provider?.write === null ? { write: null } : {}),
    }));
  const toolUse = shown.tool_use_prompt as { tokens: number; cost: number } | undefined;
  if (toolUse) shown.tool_use_prompt = { ...toolUse, cost: money(toolUse.cost) };
  return shown;
}

/** A segment's costs, with its leaked money (actual − perfect) by the classes that missed it, those above 0 only. */
function segmentCost(cost: Record<string, number>, classes: ClassCounts | undefined, reported: boolean, money: (v: number) => number) {
  const shown: Record<string, unknown> = Object.fromEntries(Object.entries(cost).map(([k, v]) => [k, money(v)]));
  const leaked = classes && leakedByClass(classes, cost as { actual: number; perfect: number }, reported);
  if (leaked) shown.leaked = Object.fromEntries(Object.entries(leaked).flatMap(([c, v]) => (v > 0 ? [[c, money(v)]] : [])));
  return shown;
}

/** A failed request's provider answer, kept as `{ status, error }`: shown as its status and the provider's body. */
export function failureView(raw: unknown): { status: number | null; body: unknown } {
  const r = (raw ?? {}) as { status?: number | null; error?: unknown };
  return { status: r.status ?? null, body: r.error ?? null };
}

/**
 * A request as one line of a list (GET /v1/requests); `handleId`: its classes count that handle's segments only; `type`:
 * those of the handles of that type.
 */
export function requestSummaryView(row: RequestRow, handleId?: string, type?: HandleType) {
  // A reconciled request is listed by its summary (see the store's listRequests); one without a summary of this
  // version (reconciled before they were kept, or of another shape), by its outcome, summarised the same way.
  const summary = listedSummary(row);
  const usage = row.usage as NormalizedUsage | null;
  // Not reconciled: the handles on its segments' paths, kept at render (or, recorded before, read from its segments).
  const handles = summary?.handles ?? row.handles ?? pathHandles(row.segments as Array<Pick<RenderedSegment, 'path'>>);
  return {
    id: row.id,
    status: row.status,
    format: row.format,
    model: row.model,
    rendered_at: iso(row.renderedAt),
    started_at: row.startedAt ? iso(row.startedAt) : null,
    capture: summary?.capture ?? null,
    prompt_tokens: summary?.prompt_tokens ?? null,
    cache_read_tokens: usage?.cache_read_tokens ?? null,
    cache_write_tokens: usage?.cache_write_tokens ?? null,
    handles,
    classes: summary ? summaryClasses(summary, handleId, type) : {},
    drift: summary?.drift ?? false,
  };
}

/** Segments as the API shows them: the units reconciliation keys its cache on stay with the stored request. */
export function segmentsView(segments: RenderedSegment[]): Array<Omit<RenderedSegment, 'units'>> {
  return segments.map(({ units: _units, ...shown }) => shown);
}
