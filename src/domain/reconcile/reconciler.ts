import canonicalize from 'canonicalize';
import type { DriftRow, IngestWrite, RequestRow, RollupDelta, Store } from '../../store/store';
import type { ModelCatalog } from '../catalog/catalog';
import { pricesFor } from '../catalog/pricing';
import type { ModelEntry } from '../catalog/types';
import type { Clock } from '../clock';
import { dayOf, UTC } from '../time-zone';
import { sha256Hex } from '../digest';
import type { WriteQueue } from '../write-queue';
import { findInvalidJson } from '../canonical-json';
import { DomainError, invalid, notFound, withPointer } from '../errors';
import { handleTypeOf, parseRef } from '../ids';
import { Lru } from '../lru';
import type { Breakpoint, RenderedSegment } from '../render/request';
import { OVERFLOW_RATE } from '../simulator/overflow';
import { readCap, stepFloor, type SimBlock, type SimOutcome, type SimPlan, type SimRequest } from '../simulator/cache';
import { MESSAGE_CACHE_SETTINGS } from '../simulator/semantic';
import { extractDiagnostics, normalizeUsage, usageObjectOf, usageProviderOf, UsageShapeError } from '../usage/normalize';
import { listedStreamUsage, type ListedStream } from '../usage/stream';
import type { NormalizedUsage } from '../usage/types';
import { anchorLengths, fitLengths, overlap, type Pin } from './attribution';
import { calibrationFamily, calibrationRatio, currentBasis } from './reports';
import { summarizeOutcome } from './request-summary';
import { PendingPremiums, partsOf, readUpTo, type PremiumPart, type StoredPremium } from './write-premiums';
import { advance, blocksFor, hasUnits, knownEnds, lastUnits, learnExactEnds, measuresPrefixes, noteRewrites, noteStart, ScopeStates, segmentLengths, unitLengths, type RecordedOutcome, type ScopeState, type SimTimes } from './scopes';
import { earlierTurnsUnread, REASONING_CONTEXT, recordedReasoning } from '../thinking';
import { CLASSES, classifySegment, leakedByClass, leakedColumn, MONEY_LEAKS, NO_HANDLE, requestsColumn, ROLLUP_CLASSES, ROLLUP_VALUE_COLUMNS, type ClassCounts } from './waterfall';

export interface UsageReport {
  request_id: string;
  /** The provider's usage object, or `response`: the whole response body. */
  usage?: unknown;
  response?: unknown;
  model?: string;
  started_at?: number;
  first_byte_at?: number;
  finished_at?: number;
  diagnostics?: unknown;
  /** Usage already normalised (the proxy's stream accumulator; an interrupted stream is `complete: false`, capture unknown). */
  normalized?: NormalizedUsage;
}

export interface SegmentOutcome {
  source: string;
  path: string[];
  section: string;
  start: number;
  end: number;
  read: number;
  write: number;
  predicted: number;
  /** Tokens that passed the opportunity gate: the same content was referenced earlier in the scope. */
  opportunity: number;
  classes: ClassCounts;
  cost: { actual: number; no_cache: number; perfect: number; write_premium: number };
}

export interface RequestOutcome extends RecordedOutcome {
  capture: 'reported' | 'unknown';
  total_prompt_tokens: number | null;
  estimated_prompt_tokens: number;
  predicted: { read: number; write: number };
  provider: { read: number | null; write: number | null };
  segments: SegmentOutcome[];
  drift: DriftFinding | null;
  /**
   * Input billed outside the prompt and every segment: Gemini's tool-use prompts (`toolUsePromptTokenCount`), at the
   * input price (no cache reads them: actual, without caching and at perfect capture alike). Absent when none.
   */
  tool_use_prompt?: { tokens: number; cost: number };
  /** With no prompt total from the provider: the model's calibration ratio the estimates were scaled by (absent: none, or a total). */
  calibrated_by?: number;
  /** Set when the provider's prompt total is far from the rendered estimate (absent otherwise, and on older outcomes). */
  total_mismatch?: TotalMismatch;
  /**
   * Set on an OpenAI Responses call with `previous_response_id` or `conversation`: the provider put the conversation
   * it keeps before this call's input. Its tokens (the provider's total less the rendered estimate) and the part of
   * the provider's read within it are told apart here; the segments carry the provider's figures over the rendered
   * part (tools and instructions before the history, the input after it).
   */
  provider_history?: ProviderHistory;
  /**
   * Set when the call was applied to its scope's simulated cache later than it started, because a call of the scope
   * that started after it had been reconciled first (a report sent late, logs imported out of order).
   */
  applied_late?: { started_at: number; applied_at: number };
  /**
   * Set when tokens were `expired`: the start of the last call that used (wrote or read) the expired prefix, the
   * gap from then to this call's start as simulated (applied_late.applied_at when set), and the lifetime it had.
   */
  expired?: { last_used_at: number; gap_ms: number; ttl: string };
  /**
   * Set when tokens were `concurrent`: the earlier call that wrote the prefix (`writer`), its start, and when its write
   * became readable (its first byte; its end when that is unknown) — after this call started, so this call wrote it again.
   */
  concurrent?: { writer: string; writer_started_at: number; readable_at: number };
  /**
   * Set on the first call applied to its cache scope's simulation (of calls imported from before the live traffic, the
   * first of them): nothing earlier could be read, so every token it sent was cold, inline or not. Absent otherwise,
   * and on outcomes recorded before it was kept.
   */
  first_in_scope?: true;
  /**
   * Set on an OpenAI call with `unconfirmed` tokens whose prompt_cache_key (null: none) and leading prefix started more
   * than ~15 calls in the minute through its start, this one included (`starts`): OpenAI sends some of such a burst to
   * other machines, whose caches do not hold the prefix.
   */
  overflow?: { prompt_cache_key: string | null; starts: number };
}

/**
 * The provider counted a prompt far from the one rendered: the request sent may not be the one rendered (a
 * report for the wrong request id, a body changed after rendering), or holds images, estimated as text.
 */
export interface TotalMismatch {
  estimated: number;
  reported: number;
  /** reported / estimated, 4 decimals (null for an empty estimate). */
  ratio: number | null;
}

export interface ProviderHistory {
  /** The request's field that names it: `previous_response_id` or `conversation`. */
  field: string;
  tokens: number;
  /** Of those, read from the provider's cache (null: the provider reported no cache fields). */
  read: number | null;
}

/**
 * The provider's figures over the rendered part of a request whose prompt the provider extended with a history it
 * keeps (OpenAI Responses `previous_response_id`, `conversation`): that history stands after the tools and the
 * instructions and before the input, and is as long as the provider's total exceeds the rendered estimate. A read
 * (then a write) covers the prompt from its start: over the history it is the history's, past it the input's.
 */
export function providerHeld(field: string, segments: RenderedSegment[], usage: NormalizedUsage): { usage: NormalizedUsage; history: ProviderHistory } {
  const estimated = segments.reduce((n, s) => n + (s.token_end - s.token_start), 0);
  const total = usage.total_prompt_tokens;
  if (total === null) return { usage, history: { field, tokens: 0, read: null } };
  const tokens = Math.max(0, total - estimated);
  // Before the history: the tools, and the instructions (the first system segment, when inline: a system handle on
  // the Responses API is a message of the input). Gemini's cachedContent comes before everything: Gemini refuses
  // tools and a systemInstruction beside it (they belong in the cache).
  let before = 0;
  if (field !== 'cachedContent')
    for (const [i, s] of segments.entries()) {
      const instructions = s.section === 'system' && s.source === 'inline' && !segments.slice(0, i).some((p) => p.section === 'system');
      if (s.section !== 'tools' && !instructions) break;
      before += s.token_end - s.token_start;
    }
  const at = (x: number) => (x <= before ? x : x <= before + tokens ? before : x - tokens);
  const read = usage.cache_fields_reported ? (usage.cache_read_tokens ?? 0) : null;
  const write = usage.cache_write_tokens;
  const readHere = read === null ? null : at(read);
  const writeHere = write === null || read === null ? write : at(read + write) - at(read);
  const rendered = total - tokens;
  return {
    usage: {
      ...usage,
      total_prompt_tokens: rendered,
      cache_read_tokens: readHere === null ? usage.cache_read_tokens : readHere,
      cache_write_tokens: writeHere,
      // A split by TTL holds for the write as a whole only.
      cache_write_by_ttl: writeHere === write ? usage.cache_write_by_ttl : null,
      uncached_tokens: usage.uncached_tokens === null ? null : Math.max(0, rendered - (readHere ?? 0) - (writeHere ?? 0)),
    },
    history: { field, tokens, read: read === null ? null : read - (readHere ?? 0) },
  };
}

export interface DriftFinding {
  handle: string;
  previous_request: string;
  segment: number;
  now: { source: string; digest: string; excerpt?: string };
  before: { source: string; digest: string; excerpt?: string };
  byte_offset?: number;
  /** Set when the two requests used different API formats: the same handles serialise to other bytes. */
  formats?: { now: string; before: string };
  /**
   * Set when a message referenced before (with the same content before it) could not be read because a setting
   * Anthropic caches the messages under (tool_choice, thinking) changed: they were sent again uncached. A setting not
   * sent is null. Also a Responses request's `reasoning.context`, when it reads every turn's reasoning items where the
   * previous request with the same bytes dropped the earlier turns' (the items its cached prefix held differ).
   */
  settings?: SettingChange[];
  /**
   * Set when the bytes through the drifting segment are those the previous request sent, but the model reads them
   * otherwise once a new question followed the tool loop: a Claude model strips earlier turns' thinking
   * (`earlier_turn`), OpenAI drops earlier turns' reasoning items (`earlier_reasoning`), so the prefix through the
   * first message or item that held some was never cached in the form it reads now.
   */
  thinking?: 'earlier_turn' | 'earlier_reasoning';
  /**
   * Set with `earlier_reasoning` when the model accepts `reasoning.context` (GPT-5.6 and newer): sending `all_turns`
   * keeps earlier turns' reasoning items read, in the cached prefix.
   */
  reasoning_context?: 'all_turns';
}

export interface SettingChange {
  name: string;
  now: unknown;
  before: unknown;
}

export interface ReconciledEvent {
  tenantId: string;
  requestId: string;
  format: string;
  model: string;
  /** The catalog entry the request was priced as; null for a model the catalog does not know (priced as a fallback). */
  catalogModel: string | null;
  /** The provider of the catalog entry it was priced as: `vllm` for a self-hosted server, though it answers in OpenAI's shape. */
  provider: string;
  /** Handles whose rollups changed. */
  handles: string[];
  outcome: RequestOutcome;
  /** The call's start and end (ms), and its usage as reconciled (the trace export's span: src/otlp.ts). */
  startedAt: number | null;
  finishedAt: number | null;
  usage: NormalizedUsage;
}

/** One record of a batch: reconciled, refused (`error`), or failed by a fault of ours (`internal`, logged by the caller). */
export type IngestManyResult = { ok: true; result: IngestResult } | { ok: false; error: DomainError } | { ok: false; internal: unknown };

export interface IngestResult {
  request_id: string;
  duplicate: boolean;
  outcome: RequestOutcome;
  usage: NormalizedUsage;
}

/**
 * Reconciles provider usage reports against recorded requests: attribution,
 * the simulated cache, the waterfall per segment, money, and rollups. Writes
 * are group-committed: many reports share one transaction, and none is
 * acknowledged before its transaction commits.
 */
export class Reconciler {
  readonly scopes: ScopeStates;
  private readonly inFlight = new Map<string, { hash: string; result: IngestResult; committed: Promise<void> }>();
  /** Writes whose premium may still be read (unread, within their TTL): reports count them apart. */
  readonly pendingPremiums = new PendingPremiums();
  /** Writers read whole: the later readers of an agent loop's cached prefix need not look them up again. */
  private readonly readWhole = new Lru<string, true>(50_000);
  private readonly listeners = new Set<(event: ReconciledEvent) => void>();

  /**
   * `missing`: the error for a request id not found (retention: `request_pruned` for one pruned), else not_found.
   * `deleted`: tenants being deleted (TenantDeletion), whose reports are not found.
   */
  constructor(
    private readonly deps: {
      store: Store;
      clock: Clock;
      catalog: ModelCatalog;
      writes: WriteQueue;
      scopeSnapshotEvery?: number;
      scopeSnapshotPart?: number;
      missing?: (id: string) => DomainError;
      deleted?: (tenantId: string) => boolean;
      /** A tenant's time zone (TenantService.zoneOf): rollups are written by its local day. UTC when not given. */
      zoneOf?: (tenantId: string) => string;
    },
  ) {
    this.scopes = new ScopeStates(deps.store, deps.catalog, deps.scopeSnapshotEvery, deps.scopeSnapshotPart);
    deps.writes.listen(this.scopes);
    this.rebuildPending();
  }

  /** The tenant's local day an instant is in: its rollup rows' day. */
  private dayOf(tenantId: string, t: number): number {
    return dayOf(t, this.deps.zoneOf?.(tenantId) ?? UTC);
  }

  /** Pending premiums from the database: the unread writes of the longest TTL the catalog knows. */
  private rebuildPending(): void {
    this.pendingPremiums.clear();
    const now = this.deps.clock.now();
    const longest = Math.max(0, ...this.deps.catalog.entries().flatMap((m) => m.cache.ttls.map((t) => t.seconds)));
    for (const w of this.deps.store.unreadWritesSince(now - longest * 1000)) {
      const stored = w.writePremium as Partial<StoredPremium>;
      if (stored.v !== 2 || !stored.parts || !(stored.expires_at! > now)) continue;
      this.pendingPremiums.set(w.requestId, { tenantId: w.tenantId, model: w.model, day: this.dayOf(w.tenantId, w.startedAt), expiresAt: stored.expires_at!, parts: stored.parts }, now);
    }
  }

  /** A tenant deleted: its cache scopes and pending premiums are dropped from memory (its reports are refused from now on). */
  forgetTenant(tenantId: string): void {
    this.scopes.forgetTenant(tenantId);
    this.pendingPremiums.forgetTenant(tenantId);
    this.readWhole.clear();
  }

  /** Called after each committed reconciliation (the dashboard's live view listens). Returns an unsubscribe. */
  onReconciled(listener: (event: ReconciledEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reconciles one report; resolves once it is durably committed. */
  ingest(tenantId: string, report: UsageReport, pointer = ''): Promise<IngestResult> {
    const prepared = this.prepare(tenantId, report, pointer);
    if ('duplicate' in prepared) return prepared.after.then(() => prepared.duplicate);
    return prepared.committed.then(() => prepared.result);
  }

  /**
   * Several reports, each accepted or rejected on its own, applied in start order. `indexes` are their
   * places in the caller's list (a batch whose invalid records were set aside), for the error pointers.
   */
  async ingestMany(tenantId: string, reports: UsageReport[], indexes?: number[]): Promise<IngestManyResult[]> {
    // A record without started_at starts at its render time (as prepare reads it), not at 0: sorted first, it was
    // applied before the records that started earlier, and they were applied late (a cold write shown concurrent).
    const startOf = (r: UsageReport) => {
      if (r.started_at !== undefined) return r.started_at;
      const row = this.requestRow(r.request_id);
      return row && row.tenantId === tenantId ? row.renderedAt : 0;
    };
    const order = reports.map((r, i) => ({ r, i, at: startOf(r) })).sort((a, b) => a.at - b.at || a.i - b.i);
    const results: IngestManyResult[] = new Array(reports.length);
    const waits: Promise<void>[] = [];
    for (const { r, i } of order) {
      try {
        const prepared = this.prepare(tenantId, r, `/records/${indexes?.[i] ?? i}`);
        const result = 'duplicate' in prepared ? prepared.duplicate : prepared.result;
        const committed = 'duplicate' in prepared ? prepared.after : prepared.committed;
        waits.push(
          committed.then(
            () => void (results[i] = { ok: true, result }),
            // As /v1/usage answers it: another writer first is a conflict (a DomainError); a write that failed is ours.
            (e: unknown) => void (results[i] = e instanceof DomainError ? { ok: false, error: e } : { ok: false, internal: e }),
          ),
        );
      } catch (e) {
        // One record's failure is that record's alone: the batch is answered, this record with its error (a fault of
        // ours too, as such: not passed off as the record's).
        results[i] = e instanceof DomainError ? { ok: false, error: e } : { ok: false, internal: e };
      }
    }
    await Promise.all(waits);
    return results;
  }

  /** What the simulated cache would read for a request rendered now (no state change). */
  predict(scope: string, model: ModelEntry, segments: RenderedSegment[], breakpoints: Breakpoint[], at: number, ttl: string | null = null): { read_tokens: number; write_tokens: number } {
    const state = this.scopes.get(scope, model);
    const { blocks } = blocksFor(segments, segments.map((s) => s.token_end - s.token_start), breakpoints, model);
    const outcome = state.sim.peek({ id: 'prediction', startedAt: Math.max(at, state.lastStart), firstByteAt: null, blocks, ttl });
    return { read_tokens: outcome.readTokens, write_tokens: outcome.writeTokens };
  }

  // ---------- preparation: pure computation plus in-memory scope state ----------

  private prepare(tenantId: string, report: UsageReport, pointer: string): { result: IngestResult; committed: Promise<void> } | { duplicate: IngestResult; after: Promise<void> } {
    const { store, clock } = this.deps;
    // A report of a tenant deleted while its call was under way (the proxy's, or one authenticated before): its request
    // is gone, or about to be, and nothing of it may be written again.
    if (this.deps.deleted?.(tenantId)) throw withPointer(notFound(`request ${report.request_id}`), `${pointer}/request_id`);
    const request = this.requestRow(report.request_id);
    // Another tenant's request is not found, never pruned: nothing is said of it.
    if (!request) throw withPointer(this.deps.missing?.(report.request_id) ?? notFound(`request ${report.request_id}`), `${pointer}/request_id`);
    if (request.tenantId !== tenantId) throw withPointer(notFound(`request ${report.request_id}`), `${pointer}/request_id`);
    const bad = findInvalidJson(report, pointer);
    if (bad) throw invalid(bad.pointer, bad.detail);
    // The report is read first: one that cannot be read is refused for what it is, reconciled request or not.
    // usage: null (from the proxy) says the provider carried none: kept as null, the figures from `normalized`.
    const source = report.response !== undefined ? report.response : report.usage !== undefined ? report.usage : report.normalized;
    if (source === undefined) throw invalid(pointer, 'send "usage" (the provider\'s usage object) or "response" (the whole response body)');
    let usage: NormalizedUsage;
    // A streamed answer's chunks or events, as a client kept them: read as the proxy reads the stream.
    let listed: ListedStream | null = null;
    try {
      if (report.normalized === undefined && Array.isArray(source)) listed = listedStreamUsage(source, usageProviderOf(request.format));
      usage = report.normalized ?? listed?.usage ?? normalizeUsage(source, usageProviderOf(request.format));
    } catch (e) {
      if (e instanceof UsageShapeError) throw invalid(`${pointer}/${report.response !== undefined ? 'response' : 'usage'}${e.path}`, e.detail);
      throw e;
    }
    // Its times too, before the idempotency check: an invalid report is a 422 whether the request was reconciled or not.
    const now = clock.now();
    const startedAt = report.started_at ?? request.renderedAt;
    // Given a start (an import), the missing times are the given ones, never the receipt time: a first byte a
    // day after the start would leave the call "still answering" for every later one (concurrent).
    const finishedAt = report.finished_at ?? (report.started_at !== undefined ? Math.max(report.first_byte_at ?? startedAt, startedAt) : Math.max(now, startedAt));
    const firstByteAt = report.first_byte_at ?? finishedAt;
    if (!(startedAt <= firstByteAt && firstByteAt <= finishedAt))
      throw invalid(`${pointer}/${report.first_byte_at === undefined && report.finished_at !== undefined ? 'finished_at' : 'first_byte_at'}`, 'times must satisfy started_at <= first_byte_at <= finished_at (started_at is the render time when not given)');
    // A call cannot end after its report arrives (give or take a client's clock): a time years ahead would
    // move its scope's simulated clock there, and every later report of the scope with it.
    if (finishedAt > now + CLOCK_SKEW_MS)
      throw invalid(`${pointer}/${report.finished_at !== undefined ? 'finished_at' : report.first_byte_at !== undefined ? 'first_byte_at' : 'started_at'}`, 'is in the future');

    const diagnostics = report.diagnostics ?? listed?.diagnostics ?? (report.response !== undefined ? extractDiagnostics(report.response) : null);
    // Of a whole response, only its usage object is kept (Gemini: usageMetadata), never the model's answer.
    const usageRaw = listed ? listed.raw : report.response !== undefined ? usageObjectOf(report.response, usageProviderOf(request.format)) : source;
    // The same report is the same usage object as kept, times and diagnostics as given, and model: sent again as the
    // usage object, the whole response or a stream's chunks, or with another answer text, it is a duplicate (each was
    // a 409 "a different usage report" when the bytes sent were hashed). Reports stored before keep the hash of their
    // bytes, still compared: one sent again as it was stays one.
    const hash = sha256Hex(canonicalize({ usage: usageRaw, diagnostics, model: report.model, started_at: report.started_at, first_byte_at: report.first_byte_at, finished_at: report.finished_at }) ?? '');
    const sent = () => sha256Hex(canonicalize({ ...report, request_id: undefined }) ?? '');
    // A stored report may be committed but not yet synced (by this process or another on the file):
    // the duplicate is answered once the WAL is on disk.
    // (Synced only for a duplicate: a sync started for a conflict would go unawaited, and its failure be unhandled.)
    const known = this.inFlight.get(request.id) ?? (request.reportHash ? { hash: request.reportHash, result: storedResult(request), committed: null } : undefined);
    if (known) {
      // A duplicate of a report still being committed is answered only once that commit succeeds.
      if (known.hash === hash || known.hash === sent()) return { duplicate: { ...known.result, duplicate: true }, after: known.committed ?? store.durable() };
      throw new DomainError('conflict', `request ${request.id} already has a different usage report`, {}, [{ pointer: `${pointer}/request_id`, detail: 'already reconciled with another report' }]);
    }
    if (request.status === 'failed')
      throw new DomainError('conflict', `request ${request.id} failed upstream; it has no usage to reconcile`, {}, [{ pointer: `${pointer}/request_id`, detail: 'recorded as failed (the provider answered with an error)' }]);

    const model = this.deps.catalog.byId(request.catalogEntry) ?? this.deps.catalog.lookup(request.model).entry;
    // vLLM answers in OpenAI's chat shape, read as that: named by the server its model resolved to (DESIGN.md's usage table).
    if (model.provider === 'vllm' && usage.provider === 'openai-chat') usage = { ...usage, provider: 'vllm' };
    const segments = request.segments as RenderedSegment[];
    // The scope's simulated cache, in start order (a late report is placed at the scope's latest start; one
    // older than the longest TTL goes to the scope's history, in its own start order).
    const { state, history } = this.scopes.forStart(request.scope, model, startedAt);

    const estimated = segments.map((s) => s.token_end - s.token_start);
    // A Responses call continuing a conversation OpenAI keeps, or a Gemini call on an explicit cache: the provider's
    // figures count that content too, which was never rendered here. Attribution takes them over the rendered part
    // only; the provider-held part is told apart.
    const kept = request.providerHistory ? providerHeld(request.providerHistory, segments, usage) : null;
    const seen = kept ? kept.usage : usage;
    const total = seen.total_prompt_tokens;
    // Handles under an OpenAI encoding were counted exactly at mint; the rest (inline text, other families) is estimated.
    // Artifacts counted exactly keep their size: a system prompt, a document, tools (the provider renders function
    // definitions its own way, but a size that moves from turn to turn would be worse). Messages — a session batch, a
    // messages artifact — carry the provider's framing per message: the difference is theirs, as the inline content's.
    const exact = segments.map((s) => s.tokens_estimated === false && s.source.startsWith('art_') && (s.section === 'tools' || s.blocks === 1));
    // No total from the provider: the estimates, by the model's calibration where there is one (Gemini's
    // estimates run ~1.5× the count; a report without promptTokenCount would otherwise add them as they are).
    const calibration = total === null ? this.calibrationRatio(request.tenantId, request.model) : null;
    const scaled = total !== null ? fitLengths(estimated, exact, total) : calibration === null ? estimated : calibrate(estimated, exact, calibration);
    // The same per unit: a unit of a segment counted exactly is.
    const read = seen.cache_fields_reported ? (seen.cache_read_tokens ?? 0) : null;
    const simStart = Math.max(startedAt, state.lastStart);
    // A first byte not reported is unknown, somewhere up to the end of the call (the report's receipt, for a
    // client that reports later): its write is readable for later requests from this start or from that end,
    // whichever the later request's provider receipt shows (see unknownFirstBytes below).
    // Its latest bound is at least 1 ms past its start: a provider answers after a call starts, never at that instant
    // (DESIGN.md: settled when the writer "had started answering before this one started"). A log that kept only
    // starts (first byte and end default to the start), or a first byte logged equal to it, would otherwise make its
    // write readable to a call started at the same instant — a parallel fan-out shown `unconfirmed`, not `concurrent`.
    // The bound is then [start, start + 1 ms]: a call at that instant is settled by its provider's receipt.
    const simAt: SimTimes =
      report.first_byte_at === undefined
        ? { startedAt: simStart, firstByteAt: null, finishedAt: Math.max(finishedAt, simStart + 1) }
        : { startedAt: simStart, firstByteAt: Math.max(firstByteAt, simStart + 1) };
    if (history) simAt.history = true;
    // An explicit cache's read and write end at breakpoints: breakpoint segment ends near them are moved onto them,
    // and the prefixes whose end an earlier report showed keep it. With units, the read's end is placed at the unit
    // the simulated cache reads up to, also inside a segment (a caller's mark on a message of an earlier turn).
    const breakpoints = request.breakpoints as Breakpoint[];
    let lengths = scaled;
    let unitLens: number[] | undefined;
    if (total !== null && measuresPrefixes(model)) {
      const anchors = read === null ? [] : [read, read + (seen.cache_write_tokens ?? 0)];
      const known = knownEnds(state, request.format, segments);
      if (hasUnits(segments)) {
        const last = lastUnits(segments);
        const units = unitLengths(segments, scaled);
        const hit = read ? readEnd(state, { id: request.id, ...simAt, ttl: request.cacheTtl }, segments, units, breakpoints, model, read) : null;
        const pins = [...known.segments.map((p) => ({ segment: last[p.segment]!, at: p.at })), ...known.units].filter((p) => !hit || (p.segment < hit.segment ? p.at < hit.at : p.segment > hit.segment && p.at > hit.at));
        unitLens = anchorLengths(units, breakpoints.map((b) => last[b.segment]!), hit ? anchors.slice(1) : anchors, hit ? [hit, ...pins] : pins, exactUnits(segments, exact));
        lengths = segmentLengths(segments, unitLens);
      } else lengths = anchorLengths(scaled, breakpoints.map((b) => b.segment), anchors, known.segments, exact);
    } else if (total !== null && read && hasUnits(segments)) {
      // An automatic cache's read is the shared prefix (rounded down to a step on OpenAI). One that reaches past where
      // our estimate ends the unit the simulated cache reads up to shows that unit ends there at least: it is moved,
      // so the read does not spill into the next unit (a reply never sent before).
      const units = unitLengths(segments, scaled);
      const hit = readEnd(state, { id: request.id, ...simAt, ttl: request.cacheTtl }, segments, units, breakpoints, model, read, true);
      if (hit) {
        unitLens = anchorLengths(units, [], [], [hit], exactUnits(segments, exact));
        lengths = segmentLengths(segments, unitLens);
      }
    }
    const { blocks, segmentOf, unitOf, seenKeys } = blocksFor(segments, lengths, breakpoints, model, unitLens);
    const seenBefore = segments.map((s) => s.source !== 'inline' && state.seenSources.has(s.source));
    // Before this request is applied: which of its prefixes the scope referenced already (remembered, bounded; as
    // they are cached, for rows recorded before keys without settings were; and, below, whatever the cache read).
    // With the request that last referenced each block's prefix (a drift of it is compared with that request).
    const referencedBy = (seenKeys ?? blocks.map((b) => b.key)).map((k, j) => state.seenKeys.get(k) ?? state.seenKeys.get(blocks[j]!.key));
    const seenBlock = referencedBy.map((r) => r !== undefined);
    const lastBySource = new Map(state.lastRequestBySource);
    const chosen = unknownFirstBytes(state, { id: request.id, ...simAt, blocks, ttl: request.cacheTtl }, seen.cache_fields_reported ? (seen.cache_read_tokens ?? 0) : null);
    simAt.unknownFirstBytes = chosen.mode;
    // Nothing applied to the scope before this call (advance sets its first and last start).
    const firstInScope = state.lastStart === -Infinity;
    const outcomeSim = advance(state, request, blocks, simAt, chosen.plan, seenKeys);
    this.scopes.applied(request);
    outcomeSim.blocks.forEach((b, j) => (seenBlock[j] ||= b.read > 0));
    // Whose write this request read: the simulated cache's writer of what it read; else, when the provider read what
    // the simulation had let expire (a `bonus`: its entry lived on), the request that last sent the longest prefix the
    // read covers — its write, if it made one, was read, and its premium not wasted (it was shown as unread).
    const bonusEnd = outcomeSim.hitBlock === null && read && model.cache.writesBilled ? blocks.findLastIndex((b, j) => b.endToken <= read && referencedBy[j] !== undefined) : -1;
    // A prefix the provider wrote again after an eviction the simulation did not see is that later write's (rewrittenBy).
    const hitKey = outcomeSim.hitBlock !== null ? blocks[outcomeSim.hitBlock]!.key : null;
    const readFrom = hitKey !== null ? state.rewrittenBy.get(hitKey) || state.sim.writerOf(hitKey) : bonusEnd >= 0 ? referencedBy[bonusEnd] : undefined;
    // The provider's read and the simulated one name the same prefix when they differ by no more than our token
    // estimate can err (readTolerance; without steps, only past the simulated end and short of the next unit's end):
    // the difference is ours, not a bonus or an unconfirmed read.
    const predictedRead = sameRead(model, outcomeSim.readTokens, read, blocks, unitOf) ? read! : outcomeSim.readTokens;

    const written = seen.cache_write_tokens ?? (read === null ? null : 0);
    // How the write divides by TTL: the provider's split, or the one TTL all of this request's marks asked for.
    const priced = { ...seen, cache_write_by_ttl: writeSplit(model, seen, breakpoints) };
    // The prompt's length sets the price tier (long context): the provider's count, else the attributed estimate, but
    // never under what the provider did count (an Anthropic report without cache_read_input_tokens still has
    // input_tokens): 205K uncached tokens are past 200K whatever our estimate says.
    const counted = (usage.uncached_tokens ?? 0) + (read ?? 0) + (usage.cache_write_tokens ?? 0);
    const money = prices(model, priced, read ?? 0, usage.total_prompt_tokens ?? Math.max(counted, lengths.reduce((a, b) => a + b, 0)));
    let offset = 0;
    const ends = blocks.map((b) => b.endToken);
    const stepEnd = lastStepEnd(model, ends.at(-1) ?? 0);
    // Each segment's blocks, in order: one pass over them, not one per segment (a long session has ~1,200 of each).
    const blocksOf: number[][] = segments.map(() => []);
    segmentOf.forEach((seg, j) => blocksOf[seg]?.push(j));
    const segOutcomes: SegmentOutcome[] = segments.map((seg, i) => {
      const start = offset;
      const end = (offset += lengths[i] ?? 0);
      const spans = blockSpans(outcomeSim, ends, blocksOf[i]!, predictedRead, seenBlock, stepEnd);
      const classes = classifySegment({ start, end, blocks: spans, seenBefore: seenBefore[i]! }, predictedRead, read);
      const segRead = read === null ? 0 : overlap(start, end, 0, read);
      const segWrite = written === null || read === null ? 0 : overlap(start, end, read, read + written);
      // The segment's written tokens in input-price units, each at its TTL's multiplier.
      const writeUnits = segWrite === 0 ? 0 : money.writeUnits(start, end);
      const len = end - start;
      // Perfect capture reads every token that was not cold; cold tokens cost what they did (written or not, at
      // the average price of this segment's unread tokens; any the provider read anyway, at the read price).
      // Leaked savings (actual − perfect) are then the price of the missed opportunity alone: never negative.
      const unread = len - segRead;
      const unreadCost = writeUnits + (unread - segWrite);
      const coldPaid = Math.min(classes.cold, unread);
      const coldCost = unread > 0 ? (coldPaid * unreadCost) / unread : 0;
      return {
        source: seg.source,
        path: seg.path,
        section: seg.section,
        start,
        end,
        read: segRead,
        write: segWrite,
        predicted: overlap(start, end, 0, predictedRead),
        // A handle seen before is an opportunity whole (a change before it is drift); other content, as far as the
        // same prefix was referenced before.
        opportunity: seenBefore[i] ? len : spans.reduce((n, b) => n + (b.seen ? overlap(start, end, b.start, b.end) : 0), 0),
        classes,
        cost: {
          // Without cache fields we cannot know the discount: price it in full, and say so (capture: unknown).
          actual: read === null ? len * money.input : (segRead * money.read + writeUnits + (len - segRead - segWrite)) * money.input,
          no_cache: len * money.input,
          perfect: ((len - coldPaid) * money.read + coldCost) * money.input,
          write_premium: (writeUnits - segWrite) * money.input,
        },
      };
    });

    noteRewrites(state, request.id, blocks, outcomeSim, segOutcomes);

    // The first message block the provider could not read that the scope had referenced: where a changed setting shows
    // (looked for only on a drift of a request whose settings are known).
    const firstMessage = request.messageSettings && segOutcomes.some((s) => s.classes.drift > 0) ? segments.findIndex((s) => s.section === 'messages') : -1;
    const missed = firstMessage < 0 ? -1 : blocks.findIndex((_, j) => segmentOf[j]! >= firstMessage && referencedBy[j] !== undefined && outcomeSim.blocks[j]!.reason !== null);
    const drift = this.locateDrift(request, segOutcomes, lastBySource, missed < 0 ? null : { segment: segmentOf[missed]!, previous: referencedBy[missed]! });
    const estimatedTotal = estimated.reduce((a, b) => a + b, 0);
    // A provider-held history explains a total over the estimate: it is reported as such, not as a mismatch. A total
    // under the estimate no history explains (another prompt was counted): flagged as any other.
    const mismatch = total === null || (kept && kept.history.tokens > 0) ? null : totalMismatch(estimatedTotal, total);
    // Outside promptTokenCount, so outside the total the segments are scaled to and the mismatch check.
    const toolUse = usage.tool_use_prompt_tokens ?? 0;
    const outcome: RequestOutcome = {
      lengths,
      sim: simAt,
      capture: read === null ? 'unknown' : 'reported',
      total_prompt_tokens: usage.total_prompt_tokens,
      estimated_prompt_tokens: estimatedTotal,
      ...(kept ? { provider_history: kept.history } : {}),
      ...(toolUse > 0 ? { tool_use_prompt: { tokens: toolUse, cost: toolUse * money.input } } : {}),
      // What the simulation would write past a read it placed short of the provider's is read.
      predicted: { read: predictedRead, write: Math.max(0, outcomeSim.writeTokens - Math.max(0, predictedRead - outcomeSim.readTokens)) },
      ...(unitLens ? { unit_lengths: unitLens } : {}),
      // A write the provider did not report is unknown (OpenAI reports none), not 0.
      // The provider's own figures (with a provider-held history, its read and write of that history included).
      provider: { read: usage.cache_fields_reported ? (usage.cache_read_tokens ?? 0) : null, write: usage.cache_write_tokens },
      ...(calibration !== null ? { calibrated_by: calibration } : {}),
      segments: segOutcomes,
      drift,
      ...(mismatch ? { total_mismatch: mismatch } : {}),
      ...(simStart > startedAt ? { applied_late: { started_at: startedAt, applied_at: simStart } } : {}),
      ...(firstInScope ? { first_in_scope: true as const } : {}),
    };
    // An `expired` leak says how long the prefix had been unused, against its lifetime.
    if (outcomeSim.expired && segOutcomes.some((s) => s.classes.expired > 0))
      outcome.expired = { last_used_at: outcomeSim.expired.lastUsedAt, gap_ms: simStart - outcomeSim.expired.lastUsedAt, ttl: outcomeSim.expired.ttl };
    // OpenAI past ~15 starts a minute of one prefix and prompt_cache_key: an `unconfirmed` read may be an overflow's.
    if (model.provider === 'openai') {
      const starts = noteStart(state, request.promptCacheKey, blocks, startedAt);
      if (starts > OVERFLOW_RATE && segOutcomes.some((s) => s.classes.unconfirmed > 0)) outcome.overflow = { prompt_cache_key: request.promptCacheKey, starts };
    }
    // A `concurrent` leak names the call whose write it paid again, and when that write became readable.
    if (outcomeSim.concurrent && segOutcomes.some((s) => s.classes.concurrent > 0))
      outcome.concurrent = { writer: outcomeSim.concurrent.writtenBy, writer_started_at: outcomeSim.concurrent.writerStartedAt, readable_at: outcomeSim.concurrent.readableAt };
    // The same step a replay takes from the stored outcome.
    learnExactEnds(state, model, request, outcome);

    const day = this.dayOf(tenantId, startedAt);
    // A call whose whole prompt was the caller's own (no handle named: a session with no turns yet was named) is counted
    // apart: the tenant sees what went through no handle. Looked up only for such a call.
    const noHandle = segOutcomes.every((s) => s.source === 'inline') && !(request.namesHandle ?? this.deps.store.requestNamesHandle(request.id));
    const rollups = noHandle ? noHandleDeltas(tenantId, day, request.model, segOutcomes, read !== null) : rollupDeltas(tenantId, day, request.model, segOutcomes, read !== null);
    // What this request's writes cost above the input price, by segment: a later read marks what it covers.
    // Written at several TTLs (Anthropic's 1h marks before 5m ones), a part is split by TTL and ends with its own.
    const parts: PremiumPart[] = segOutcomes.flatMap((seg) => {
      if (!(seg.cost.write_premium > 0 && read !== null && written !== null)) return [];
      // A call through no handle has its own row to count on: its premium is followed too.
      const keys = noHandle ? [`${NO_HANDLE}@0`] : rollupKeys(seg).map((k) => `${k.handleId}@${k.version}`);
      return money.premiumParts(Math.max(seg.start, read), Math.min(seg.end, read + written), startedAt).map((p) => ({ keys, ...p }));
    });
    const expiresAt = startedAt + writeTtlSeconds(model, priced) * 1000;
    const writePremium: StoredPremium | Record<string, never> = parts.length ? { v: 2, parts, expires_at: expiresAt } : {};
    const write: IngestWrite = {
      request: {
        id: request.id,
        tenantId: request.tenantId,
        status: 'reconciled',
        startedAt,
        firstByteAt,
        finishedAt,
        reportHash: hash,
        usageRaw,
        usage,
        diagnostics,
        outcome,
        summary: summarizeOutcome(outcome),
        writePremium,
      },
      rollups,
      // Dated by the request's start, as its rollups are: a report's range then finds both.
      drift: drift ? driftRows(tenantId, request, drift, segOutcomes, startedAt) : [],
      // A total far from the estimate says more about the request than about the tokenizer: not calibrated by.
      // Nor is a total that counts a history the service never rendered.
      calibration: total === null || mismatch || kept ? null : { tenantId, model: request.model, family: calibrationFamily(model.tokenizer), providerTokens: total, estimatedTokens: outcome.estimated_prompt_tokens },
      // Only a read the provider confirmed proves the earlier write was worth its premium.
      markWriteRead: readFrom && readFrom !== request.id && read !== null && read > 0 ? this.markRead(readFrom, read, now) : null,
      prices: { read: money.read, input: money.input },
    };
    const result: IngestResult = { request_id: request.id, duplicate: false, outcome, usage };
    // Pending from now: a reader in the same group commit finds it here. It and the write this one read stay here,
    // past their TTL too, until the database has them (a reader meanwhile would read the parts stored before).
    if (parts.length) this.pendingPremiums.set(request.id, { tenantId, model: request.model, day, expiresAt, parts }, now);
    const held = [...(parts.length ? [request.id] : []), ...(write.markWriteRead ? [write.markWriteRead.requestId] : [])];
    for (const id of held) this.pendingPremiums.hold(id);
    const committed = this.enqueue({ tenantId, requestId: request.id, format: request.format, model: request.model, catalogModel: request.catalogFallback ? null : request.catalogEntry, provider: model.provider, outcome }, write, held);
    this.inFlight.set(request.id, { hash, result, committed });
    return { result, committed };
  }

  /** The model's calibration ratio for the tenant (4 decimals, as reports show it), or null before its first total. */
  private calibrationRatio(tenantId: string, model: string): number | null {
    const row = this.deps.store.calibrations(tenantId).find((c) => c.model === model && currentBasis(c));
    const ratio = row ? calibrationRatio(row) : null;
    return ratio === null || ratio <= 0 ? null : Math.round(ratio * 1e4) / 1e4;
  }

  /**
   * The earlier request whose write this one read, over its first `readEnd` tokens: the premium of the parts
   * inside them was worth paying (once); the parts past them may be read by a later request still.
   */
  private markRead(writerId: string, readEnd: number, now: number): IngestWrite['markWriteRead'] {
    let writer = this.pendingPremiums.get(writerId);
    if (!writer) {
      if (this.readWhole.get(writerId)) return null;
      // Past its TTL here, or written by another process on the file.
      const row = this.deps.store.getRequest(writerId);
      if (!row || row.writeRead || !row.writePremium) return null;
      const stored = row.writePremium as Partial<StoredPremium>;
      writer = { tenantId: row.tenantId, model: row.model, day: this.dayOf(row.tenantId, row.startedAt ?? row.renderedAt), expiresAt: stored.expires_at ?? 0, parts: partsOf(row.writePremium) };
    }
    // A writer that paid no premium (or has none left) need not be looked up again.
    if (writer.parts.length === 0) {
      this.readWhole.set(writerId, true);
      return null;
    }
    const { read, left } = readUpTo(writer.parts, readEnd);
    if (read.size === 0) return null;
    this.pendingPremiums.set(writerId, { ...writer, parts: left }, now);
    if (left.length === 0) this.readWhole.set(writerId, true);
    const { tenantId, model, day } = writer;
    const rollups = [...read].map(([key, premium]) => {
      const at = key.lastIndexOf('@');
      return { tenantId, handleId: key.slice(0, at), version: Number(key.slice(at + 1)), day, model, values: { write_premium_read: premium } };
    });
    return { requestId: writerId, rollups, left: left.length ? { v: 2, parts: left, expires_at: writer.expiresAt } : null };
  }

  /**
   * A request's row: still in the write queue (a slow disk sync holds the next commit, and the calls after it can
   * be reconciled meanwhile), kept in memory awaiting its usage, or in the database.
   */
  private requestRow(id: string): RequestRow | undefined {
    return this.deps.writes.pendingRequest(id) ?? this.deps.store.getRequest(id);
  }

  /**
   * Why a prefix drifted. When the first message the provider could not read was referenced before with the same
   * content before it (`messages`: that block's segment and the request that last had it) and an Anthropic setting
   * the messages are cached under changed since, that setting. Otherwise, for a handle: compare with the last
   * request in the scope that had it, find the earliest segment whose bytes changed, and — where both inline texts
   * are still held — the first differing byte.
   */
  private locateDrift(request: RequestRow, segs: SegmentOutcome[], lastBySource: Map<string, string>, messages: { segment: number; previous: string } | null): DriftFinding | null {
    const handleDrift = segs.find((s) => s.source !== 'inline' && s.classes.drift > 0);
    const drifting = handleDrift ?? segs.find((s) => s.classes.drift > 0);
    if (!drifting) return null;
    const now = request.segments as RenderedSegment[];
    const lastHad = messages ? this.requestRow(messages.previous) : undefined;
    const settings = lastHad ? changedSettings(request, lastHad) : [];
    if (messages && lastHad && settings.length) {
      const theirs = (lastHad.segments as RenderedSegment[]).find((s) => s.section === 'messages') ?? now[messages.segment]!;
      return {
        handle: drifting.source,
        previous_request: lastHad.id,
        segment: messages.segment,
        now: { source: now[messages.segment]!.source, digest: now[messages.segment]!.digest },
        before: { source: theirs.source, digest: theirs.digest },
        settings,
      };
    }
    const previousId = handleDrift ? lastBySource.get(handleDrift.source) : undefined;
    const previous = previousId ? this.requestRow(previousId) : undefined;
    if (!previous) return null;
    const before = previous.segments as RenderedSegment[];
    let k = 0;
    while (k < now.length && k < before.length && now[k]!.digest === before[k]!.digest) k++;
    // The same bytes through the drifting handle, read otherwise: earlier turns' thinking (a Claude model that strips
    // it) or reasoning items (OpenAI Responses) no longer read once a new question followed the tool loop.
    const at = segs.indexOf(handleDrift ?? drifting);
    const model = this.deps.catalog.byId(request.catalogEntry);
    const unread = k > at ? earlierTurnsUnread(request.format, model, recordedReasoning(request.messageSettings)) : null;
    if (unread) {
      const seg = { source: now[at]!.source, digest: now[at]!.digest };
      const fix = unread === 'earlier_reasoning' && model?.reasoningContext ? { reasoning_context: 'all_turns' as const } : {};
      return { handle: drifting.source, previous_request: previous.id, segment: at, now: seg, before: seg, thinking: unread, ...fix };
    }
    // The same bytes read under another setting than the previous request's: a Responses request reading every turn's
    // reasoning (all_turns) after one that dropped the earlier turns' (current_turn) misses from the first it dropped.
    const changed = k > at ? changedSettings(request, previous) : [];
    if (changed.length) {
      const seg = { source: now[at]!.source, digest: now[at]!.digest };
      return { handle: drifting.source, previous_request: previous.id, segment: at, now: seg, before: seg, settings: changed };
    }
    const a = now[k];
    const b = before[k];
    if (!a || !b) return null;
    const finding: DriftFinding = {
      handle: drifting.source,
      previous_request: previous.id,
      segment: k,
      now: { source: a.source, digest: a.digest },
      before: { source: b.source, digest: b.digest },
    };
    // Only when the changed segment is the same content in both: then the format alone made the bytes differ.
    if (request.format !== previous.format && a.source === b.source) finding.formats = { now: request.format, before: previous.format };
    const t = this.deps.clock.now();
    const nowText = a.source === 'inline' ? this.deps.writes.inline(request.id, k, t)?.text : undefined;
    const beforeText = b.source === 'inline' ? this.deps.writes.inline(previous.id, k, t)?.text : undefined;
    // Two versions of one handle: their stored contents locate the edit (a bundle has none of its own: its changed member does).
    const versions = nowText === undefined ? this.versionContents(a.source, b.source) : undefined;
    if ((nowText !== undefined && beforeText !== undefined) || versions) {
      const x = versions ? versions.now : Buffer.from(nowText!);
      const y = versions ? versions.before : Buffer.from(beforeText!);
      let i = 0;
      while (i < x.length && i < y.length && x[i] === y[i]) i++;
      finding.byte_offset = i;
      finding.now.excerpt = excerpt(x, i);
      finding.before.excerpt = excerpt(y, i);
    } else if (a.source !== b.source) {
      // Other content took the place (a timestamp put before a handle, a handle for another): both beginnings, where
      // held — an inline segment's rendered text, a handle version's content. No byte offset: not the same form.
      const x = nowText !== undefined ? Buffer.from(nowText) : this.versionContent(a.source);
      const y = beforeText !== undefined ? Buffer.from(beforeText) : this.versionContent(b.source);
      if (x && y) {
        finding.now.excerpt = x.subarray(0, 80).toString('utf8');
        finding.before.excerpt = y.subarray(0, 80).toString('utf8');
      }
    }
    return finding;
  }

  /** The stored content of a handle version (an artifact's; a bundle has none of its own). */
  private versionContent(ref: string): Buffer | undefined {
    const r = parseRef(ref);
    const digest = r && r.version !== null ? this.deps.store.getVersion(r.id, r.version)?.contentDigest : undefined;
    return digest ? this.deps.store.getBlob(digest) : undefined;
  }

  /** The stored contents of two versions of the same handle, when both have one. */
  private versionContents(now: string, before: string): { now: Buffer; before: Buffer } | undefined {
    const [x, y] = [parseRef(now), parseRef(before)];
    if (!x || !y || x.id !== y.id || x.version === null || y.version === null || x.version === y.version) return undefined;
    const [a, b] = [this.versionContent(now), this.versionContent(before)];
    return a && b ? { now: a, before: b } : undefined;
  }

  // ---------- group commit ----------

  private enqueue(event: Omit<ReconciledEvent, 'handles' | 'startedAt' | 'finishedAt' | 'usage'>, write: IngestWrite, held: string[]): Promise<void> {
    const release = () => held.forEach((id) => this.pendingPremiums.release(id, this.deps.clock.now()));
    return this.deps.writes.enqueue({ kind: 'ingest', write }).then(
      () => {
        release();
        this.inFlight.delete(write.request.id);
        const handles = write.rollups.map((r) => r.handleId).filter((h) => h !== '*' && h !== NO_HANDLE);
        for (const listener of this.listeners) {
          try {
            listener({ ...event, handles, startedAt: write.request.startedAt, finishedAt: write.request.finishedAt, usage: write.request.usage as NormalizedUsage });
          } catch {
            // A listener's failure must not affect ingestion.
          }
        }
      },
      (e: unknown) => {
        // Memory is ahead of the database now: rebuild scopes from what was committed.
        this.scopes.reset();
        // Its own write never landed. A mark it made stays marked in memory: rebuilt from the database, the
        // marks of batches queued behind it would be forgotten and counted again. (The read it recorded is then
        // neither read nor pending: it shows as unread, never twice as read.)
        this.pendingPremiums.forget(write.request.id);
        release();
        this.readWhole.clear();
        this.inFlight.delete(write.request.id);
        // The database allows one reconciliation per request: another process (sharing the file) was first.
        if (isConstraint(e, 'reconciliations'))
          throw new DomainError('conflict', `request ${write.request.id} was reconciled meanwhile by another writer; send the report again to get the stored result`);
        throw e;
      },
    );
  }
}

/** Estimates scaled by a calibration ratio; counts made exactly keep theirs. */
function calibrate(estimated: number[], exact: boolean[], ratio: number): number[] {
  const counted = estimated.reduce((a, len, i) => a + (exact[i] ? len : 0), 0);
  const rest = estimated.reduce((a, b) => a + b, 0) - counted;
  return rest === 0 ? estimated : fitLengths(estimated, exact, counted + Math.round(rest * ratio));
}

/** A segment's blocks; simulated reads past `readTo` (a granular read a step short of ours) are its step's tail. */
function blockSpans(o: SimOutcome, ends: number[], blocksOf: number[], readTo: number, seen: boolean[], stepEnd: number) {
  const spans = [];
  for (const j of blocksOf) {
    const start = j === 0 ? 0 : ends[j - 1]!;
    const reason = o.blocks[j]!.reason ?? (ends[j]! > readTo && readTo < o.readTokens ? 'granularity' : null);
    const span = { start, end: ends[j]!, predicted: o.blocks[j]!.read, reason, seen: seen[j]! };
    // Past the prompt's last whole cache step no cache could have read it, live or expired: below the next step.
    if (reason !== null && span.end > stepEnd) {
      if (span.start < stepEnd) spans.push({ ...span, end: stepEnd });
      spans.push({ ...span, start: Math.max(span.start, stepEnd), reason: 'granularity' as const });
    } else spans.push(span);
  }
  return spans;
}

/**
 * Where a prompt of `total` tokens stops being readable in whole cache steps (no steps: nowhere); on vLLM, of its
 * tokens but the last, which it computes for its logits (readCap): the block holding it is such a tail too.
 */
function lastStepEnd(model: ModelEntry, total: number): number {
  return model.cache.granularity ? stepFloor(model.cache.granularity, readCap(model.cache, total)) : Infinity;
}

/** Whether a provider's read is the simulated one, give or take the error of our token positions (see predictedRead). */
function sameRead(model: ModelEntry, simulated: number, read: number | null, blocks: SimBlock[], unitOf?: number[]): boolean {
  if (read === null || simulated === 0 || read === 0 || read === simulated) return false;
  if (model.cache.granularity) return Math.abs(read - simulated) <= readTolerance(model, simulated);
  // A read ends at a block end: one at or before the provider's read, past ours, is another prefix (bonus).
  return read > simulated && read - simulated <= readTolerance(model, simulated) && !blocks.some((b, j) => b.endToken > simulated && b.endToken <= read && (unitOf === undefined || unitOf[j]! >= 0));
}

/** How far a provider's read may be from a simulated end and still be it: one hit step, else 10% (at least 16 tokens). */
function readTolerance(model: ModelEntry, end: number): number {
  return model.cache.granularity?.step ?? Math.max(16, 0.1 * end);
}

/**
 * Prices per token (input) and as multipliers of it. Writes follow the reads in prompt order; split by TTL
 * (Anthropic 5m / 1h), the longer TTL's tokens come first, as Anthropic requires longer-TTL breakpoints
 * before shorter ones, so each segment pays its own TTL's multiplier.
 */
function prices(model: ModelEntry, usage: NormalizedUsage, readEnd: number, promptTokens: number) {
  const input = pricesFor(model, promptTokens).inputPerMTok / 1_000_000;
  const ttls = new Map(model.cache.ttls.map((t) => [t.name, t]));
  const fallback = model.cache.writesBilled ? (ttls.get(model.cache.defaultTtl)?.writeMultiplier ?? 1) : 1;
  const byTtl = Object.entries(usage.cache_write_by_ttl ?? {}).filter(([, n]) => n > 0);
  byTtl.sort(([a], [b]) => (ttls.get(b)?.seconds ?? 0) - (ttls.get(a)?.seconds ?? 0));
  // Ranges [from, to) of the prompt written at one multiplier; writes past the split (or without one) at the default.
  const ranges: Array<{ from: number; to: number; rate: number; seconds: number }> = [];
  const defaultSeconds = ttls.get(model.cache.defaultTtl)?.seconds ?? 0;
  let at = readEnd;
  for (const [ttl, n] of byTtl) {
    const rate = model.cache.writesBilled ? (ttls.get(ttl)?.writeMultiplier ?? fallback) : 1;
    ranges.push({ from: at, to: (at += n), rate, seconds: ttls.get(ttl)?.seconds ?? defaultSeconds });
  }
  ranges.push({ from: at, to: Infinity, rate: fallback, seconds: defaultSeconds });
  const written = usage.cache_write_tokens ?? 0;
  return {
    input,
    read: model.cache.readMultiplier,
    /** Written tokens of [start, end) in input-price units (only the written part of it counts). */
    writeUnits(start: number, end: number): number {
      return writtenUnits(ranges, readEnd + written, start, end);
    },
    /**
     * The premium (USD) of the written tokens [from, to), as parts: one, or with writes at several TTLs one per TTL,
     * each with its own end (a 5m part is unread once its 5 minutes pass, though the 1h part beside it is pending).
     */
    premiumParts(from: number, to: number, startedAt: number): Array<{ from: number; to: number; premium: number; expires_at?: number }> {
      const premium = (a: number, b: number) => (writtenUnits(ranges, readEnd + written, a, b) - (b - a)) * input;
      if (byTtl.length < 2) return [{ from, to, premium: premium(from, to) }];
      return ranges
        .map((r) => ({ from: Math.max(from, r.from), to: Math.min(to, r.to, readEnd + written), seconds: r.seconds }))
        .filter((r) => r.to > r.from)
        .map((r) => ({ from: r.from, to: r.to, premium: premium(r.from, r.to), expires_at: startedAt + r.seconds * 1000 }))
        .filter((p) => p.premium > 0);
    },
  };
}

/**
 * Where the provider's read ended, as a pin on a unit end: the unit the simulated cache would read up to (planned,
 * nothing applied), when that is the nearest prefix the read could end at — of this request's breakpoints and the
 * entries the cache holds (a provider that read less, after an eviction, or more, from traffic we did not see,
 * ended at another one) — and its end is within a factor of 2 of the read.
 */
function readEnd(state: ScopeState, req: Omit<SimRequest, 'blocks'>, segments: RenderedSegment[], units: number[], breakpoints: Breakpoint[], model: ModelEntry, read: number, pastOnly = false): Pin | null {
  const total = units.reduce((a, b) => a + b, 0);
  const { blocks, unitOf } = blocksFor(segments, [], breakpoints, model, units);
  const peek = unknownFirstBytes(state, { ...req, blocks }, read);
  const plan = peek.plan ?? state.sim.plan({ ...req, blocks, unknownFirstBytes: peek.mode });
  const hit = plan.outcome.hitBlock;
  const unit = hit === null ? -1 : (unitOf?.[hit] ?? -1);
  // A pin at the last unit or past the prompt would not hold: the read then anchors as without units.
  if (unit < 0 || unit >= units.length - 1 || read >= total) return null;
  const end = blocks[hit!]!.endToken;
  if (!(read >= end / 2 && read <= end * 2)) return null;
  // Automatic caches: a read past our end, within the error sameRead allows, moves it there (the unit after it was
  // never sent before: no cache could hold it). One short of it is a read that ended inside the unit — a step's
  // rounding (OpenAI), or a partial read (Gemini reads part of a prefix it holds): the unit keeps its length, partly
  // read, rather than shrink onto the read and hand the difference to the content after it (a 5,391-token system
  // prompt read to 5,300 left its 91 tokens to a 9-token question, shown as 100 cold). DESIGN.md: spans scaled to the
  // provider's total, then read in prompt order.
  if (pastOnly && !(read > end && read - end <= readTolerance(model, end))) return null;
  // Another end the read could have: a prefix written before (an eviction ends the read there), or one of this
  // request's breakpoints (warmed by traffic we did not see) — the latter only when the simulated hit is farther from
  // the read than our estimate can err: a breakpoint on content never cached under these settings is not read.
  const near = Math.abs(read - end) <= readTolerance(model, end);
  const others = blocks.filter((b, j) => j !== hit && (unitOf?.[j] ?? -1) >= 0 && (state.sim.writerOf(b.key) !== undefined || (b.breakpoint && !near)));
  return others.some((b) => Math.abs(b.endToken - read) < Math.abs(end - read)) ? null : { segment: unit, at: read };
}

/**
 * How a request sees earlier writes whose writer's first byte is uncertain (unknown, or known only as a client
 * saw it): only from that first byte, or the call's end (`late`: a parallel fan-out pays the write twice,
 * `concurrent`), unless the provider read further than that allows — its receipt shows the write was readable
 * (`early`). Without a receipt, classified as `early` (the tokens are then `unknown`, not a leak we cannot show)
 * but applied as `late`: nothing shows the write was readable, and a later call that wrote it again is `concurrent`.
 */
function unknownFirstBytes(state: ScopeState, req: SimRequest, read: number | null): { mode: 'early' | 'late'; plan?: SimPlan } {
  if (!state.sim.hasUncertainWritesAt(req.startedAt)) return { mode: 'late' };
  const late = state.sim.plan({ ...req, unknownFirstBytes: 'late' });
  if (!late.outcome.blocks.some((b) => b.reason === 'concurrent')) return { mode: 'late', plan: late };
  if (read !== null && read <= late.outcome.readTokens) return { mode: 'late', plan: late };
  const early = state.sim.plan({ ...req, unknownFirstBytes: 'early' });
  if (early.outcome.readTokens <= late.outcome.readTokens) return { mode: 'late', plan: late };
  // No receipt shows the write was readable: `early` only explains this call (unknown, not a leak), and the cache
  // goes on as `late`, so a later call whose receipt shows the write made again is still `concurrent`.
  if (read === null) return { mode: 'late', plan: { outcome: early.outcome, commit: late.commit } };
  return { mode: 'early', plan: early };
}

/** How far ahead of our clock a report's times may be: client clocks drift. */
const CLOCK_SKEW_MS = 5 * 60_000;

/**
 * Estimates are within tens of percent of a provider's count, plus framing they may miss (a tool-use system prompt
 * the catalog has no figure for is a few hundred tokens): a total under half or over twice the estimate, and over
 * 1,024 tokens away, is another prompt than the one rendered.
 */
const MISMATCH_RATIO = 2;
const MISMATCH_MIN_TOKENS = 1024;

export function totalMismatch(estimated: number, reported: number): TotalMismatch | null {
  if (Math.abs(reported - estimated) <= MISMATCH_MIN_TOKENS) return null;
  if (reported * MISMATCH_RATIO >= estimated && reported <= estimated * MISMATCH_RATIO) return null;
  return { estimated, reported, ratio: estimated ? Math.round((reported / estimated) * 1e4) / 1e4 : null };
}

/**
 * Adds each handle segment to every handle on its path (by version), and to the
 * tenant's totals. A request counts once per handle, on the row of the latest
 * version it used, whatever number of that handle's segments it had (`requests`),
 * and once on each version's row it had content of (`requests_including`). Input billed
 * outside every segment (Gemini's tool-use prompts) is the request's alone, as its
 * inline content is: the totals count handle content.
 */
function rollupDeltas(tenantId: string, day: number, model: string, segs: SegmentOutcome[], reported: boolean): RollupDelta[] {
  const rows = new Map<string, { handleId: string; version: number; v: Record<string, number> }>();
  const perHandle = new Map<string, { version: number; v: Record<string, number> }>();
  for (const s of segs) {
    if (s.source === 'inline') continue;
    for (const { handleId, version } of rollupKeys(s)) {
      const key = `${handleId}@${version}`;
      let row = rows.get(key);
      if (!row) rows.set(key, (row = { handleId, version, v: zeroValues() }));
      row.v.requests_including = 1;
      addSegment(row.v, s, reported);
      let h = perHandle.get(handleId);
      if (!h) perHandle.set(handleId, (h = { version, v: zeroValues() }));
      h.version = Math.max(h.version, version);
      // Only its tokens by class are read (whether each is above 0): its money is not summed.
      addTokens(h.v, s, reported);
    }
  }
  for (const [handleId, h] of perHandle) {
    const row = rows.get(`${handleId}@${h.version}`)!;
    row.v.requests = 1;
    ROLLUP_CLASSES.forEach((c, i) => (row.v[REQUEST_COLUMNS[i]!] = h.v[c]! > 0 ? 1 : 0));
  }
  return [...rows.values()].map(({ handleId, version, v }) => ({ tenantId, handleId, version, day, model, values: v }));
}

/**
 * A request that referenced no handle: one row of its own (NO_HANDLE), its segments summed as a handle's are. Its write
 * premiums are followed as a handle's: its parts count on this row (`-@0`), and a later read marks them read there.
 */
function noHandleDeltas(tenantId: string, day: number, model: string, segs: SegmentOutcome[], reported: boolean): RollupDelta[] {
  const v = zeroValues();
  for (const s of segs) addSegment(v, s, reported);
  v.requests = 1;
  v.requests_including = 1;
  ROLLUP_CLASSES.forEach((c, i) => (v[REQUEST_COLUMNS[i]!] = v[c]! > 0 ? 1 : 0));
  return [{ tenantId, handleId: NO_HANDLE, version: 0, day, model, values: v }];
}

/** Adds a segment's tokens and money to rollup values. */
function addSegment(v: Record<string, number>, s: SegmentOutcome, reported: boolean): void {
  addTokens(v, s, reported);
  if (reported) {
    v.cost_actual! += s.cost.actual;
    v.cost_no_cache! += s.cost.no_cache;
    v.cost_perfect! += s.cost.perfect;
  } else v.cost_unknown! += s.cost.no_cache;
  v.write_premium_paid! += s.cost.write_premium;
  const leaked = leakedByClass(s.classes, s.cost, reported);
  if (leaked) for (const c of MONEY_LEAKS) v[leakedColumn(c)]! += leaked[c];
}

/** Adds a segment's tokens (ROLLUP_CLASSES) to rollup values. */
function addTokens(v: Record<string, number>, s: SegmentOutcome, reported: boolean): void {
  v.referenced! += s.end - s.start;
  v.opportunity! += s.opportunity;
  if (reported) v.reported_opportunity! += s.opportunity;
  v.predicted! += s.predicted;
  for (const c of CLASSES) v[c]! += s.classes[c];
}

/** Written tokens of [start, end) in input-price units, by `prices`' ranges: only the written part (up to `writtenTo`) counts. */
function writtenUnits(ranges: Array<{ from: number; to: number; rate: number }>, writtenTo: number, start: number, end: number): number {
  return ranges.reduce((sum, r) => sum + overlap(start, end, r.from, Math.min(r.to, writtenTo)) * r.rate, 0);
}

/** Each unit's `exact` flag: its segment's. */
function exactUnits(segments: RenderedSegment[], exact: boolean[]): boolean[] {
  return segments.flatMap((s, i) => s.units!.map(() => exact[i]!));
}

/**
 * The rollup rows a handle segment counts on: each handle on its path (once, at the version there), and the tenant's.
 * A session's base is on the path under the version the request used (`ses@5 → bnd@1 → art@1`), but it is version 1's
 * content, set when the session started and sent again by every later version as batch 1 is: it counts on version 1.
 */
function rollupKeys(s: Pick<SegmentOutcome, 'source' | 'path'>): Array<{ handleId: string; version: number }> {
  if (s.source === 'inline') return [];
  const out: Array<{ handleId: string; version: number }> = [];
  const seen = new Set<string>();
  for (const [i, ref] of s.path.entries()) {
    const r = parseRef(ref);
    if (!r || seen.has(r.id)) continue;
    seen.add(r.id);
    const base = i === 0 && s.path.length > 1 && handleTypeOf(r.id) === 'session';
    out.push({ handleId: r.id, version: base ? 1 : (r.version ?? 0) });
  }
  out.push({ handleId: '*', version: 0 });
  return out;
}

/**
 * How a request's write divides by TTL: the provider's own split when it gave one (Anthropic's `cache_creation`);
 * without it (a log or gateway that kept only `cache_creation_input_tokens`), the one TTL every breakpoint of the
 * request asked for — marks all `1h` wrote for an hour, billed at 2×, however the usage was logged; else unknown
 * (priced at the model's default TTL).
 */
function writeSplit(model: ModelEntry, usage: NormalizedUsage, breakpoints: Breakpoint[]): Record<string, number> | null {
  const given = usage.cache_write_by_ttl;
  if (given && Object.values(given).some((n) => n > 0)) return given;
  const written = usage.cache_write_tokens ?? 0;
  const ttls = new Set(breakpoints.map((b) => b.ttl));
  if (written === 0 || ttls.size !== 1) return given;
  const [ttl] = ttls as Set<string>;
  return model.cache.ttls.some((t) => t.name === ttl) ? { [ttl!]: written } : given;
}

/** How long a request's write lives unread: its longest TTL written (Anthropic says which), else the model's default. */
function writeTtlSeconds(model: ModelEntry, usage: NormalizedUsage): number {
  const ttls = new Map(model.cache.ttls.map((t) => [t.name, t.seconds]));
  const written = Object.entries(usage.cache_write_by_ttl ?? {}).filter(([, n]) => n > 0).map(([ttl]) => ttls.get(ttl) ?? 0);
  return written.length ? Math.max(...written) : (ttls.get(model.cache.defaultTtl) ?? 0);
}

const REQUEST_COLUMNS = ROLLUP_CLASSES.map(requestsColumn);
const ZERO_VALUES: Record<string, number> = Object.fromEntries(ROLLUP_VALUE_COLUMNS.map((k) => [k, 0]));
/**
 * Every rollup column at 0 (a zero adds nothing to the row): the deltas of a report share one shape, so
 * summing into them is plain property writes, not a dictionary built key by key (half the time here).
 */
const zeroValues = (): Record<string, number> => ({ ...ZERO_VALUES });

/** The message settings recorded: Anthropic's (MESSAGE_CACHE_SETTINGS), OpenAI Responses' `reasoning.context`. */
const SETTING_NAMES = [...MESSAGE_CACHE_SETTINGS, REASONING_CONTEXT];

/**
 * The message settings that differ between two requests; none when either request's are unknown (a format without
 * any, or recorded before they were kept).
 */
function changedSettings(now: RequestRow, before: RequestRow): SettingChange[] {
  const settingsOf = (r: RequestRow) => (r.messageSettings ? (JSON.parse(r.messageSettings) as Record<string, unknown>) : undefined);
  const [a, b] = [settingsOf(now), settingsOf(before)];
  if (!a || !b) return [];
  return SETTING_NAMES.filter((name) => canonicalize(a[name] ?? null) !== canonicalize(b[name] ?? null)).map((name) => ({ name, now: a[name] ?? null, before: b[name] ?? null }));
}

/**
 * The finding goes on the reports of the handles it explains: the drifting handle's path; for a changed setting,
 * every handle whose messages it cost (a document of the bundle and the session after it alike).
 */
function driftRows(tenantId: string, request: RequestRow, drift: DriftFinding, segs: SegmentOutcome[], at: number): DriftRow[] {
  const segments = request.segments as RenderedSegment[];
  // Every drifting handle the finding explains: a changed setting, all of them; a changed segment, those at or after it
  // (the first drifting handle and the ones behind it, whose prefix changed with it).
  const explained = segments.filter((s, i) => s.source !== 'inline' && (segs[i]?.classes.drift ?? 0) > 0 && (drift.settings !== undefined || i >= drift.segment || s.source === drift.handle));
  const paths = explained.length ? explained.map((s) => s.path) : [[drift.handle]];
  const ids = new Set(paths.flat().map((r) => parseRef(r)?.id).filter((x): x is string => !!x));
  return [...ids].map((handleId) => ({ tenantId, handleId, requestId: request.id, previousRequestId: drift.previous_request, at, model: request.model, finding: drift }));
}

function excerpt(bytes: Buffer, at: number): string {
  return bytes.subarray(Math.max(0, at - 32), Math.min(bytes.length, at + 48)).toString('utf8');
}

function storedResult(row: RequestRow): IngestResult {
  return { request_id: row.id, duplicate: true, outcome: row.outcome as RequestOutcome, usage: row.usage as NormalizedUsage };
}

/** A SQLite constraint failure on `table` (better-sqlite3 names the constraint in the message). */
function isConstraint(e: unknown, table: string): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT') && String((e as Error).message).includes(table);
}

