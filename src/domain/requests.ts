import type { InlineRow, RequestListCursor, RequestListIndex, RequestListQuery, RequestRow, Store } from '../store/store';
import { INDEXED_CLASSES, listedClassTokens } from './reconcile/request-summary';
import type { TokenClass } from './reconcile/waterfall';
import type { RequestRetention } from './retention';
import type { ModelCatalog } from './catalog/catalog';
import type { ModelLookup, ProviderFamily } from './catalog/types';
import type { Clock } from './clock';
import { dayEnd, dayOf, dayStart, UTC } from './time-zone';
import { findInvalidJson } from './canonical-json';
import { invalid, notFound, tenantDeleted, withPointer } from './errors';
import type { HandleService } from './handles';
import { newRequestId, type HandleType } from './ids';
import { findVolatility } from './volatility';
import { estimatedToolWarning } from './estimated-tools';
import type { Reconciler } from './reconcile/reconciler';
import type { WriteQueue } from './write-queue';
import { RequestRenderer, type Breakpoint, type MatchedContent, type RenderedRequest, type RenderedSegment, type RequestFormat } from './render/request';
import { droppedDetail } from './thinking-prefix';

/** The most rows of the list one filtered page reads when no index holds its filters (`class=captured` or `cold`; `model` beside `handle` or `class`). */
export const LIST_SCAN_BUDGET = 2_000;

/** A page of the list; `scanned` and `budgetSpent` when it read the list to filter it (see RequestService.filtered). */
export interface RequestPage {
  rows: RequestRow[];
  next: RequestListCursor | null;
  scanned?: number;
  budgetSpent?: boolean;
}

export interface RequestPolicy {
  /** Inline segment bytes kept per segment (longer ones are cut, and flagged). */
  inlineKeepBytes: number;
  inlineRetentionMs: number;
  /** TTL for breakpoints the service places, when the model offers it. */
  cacheTtl: string;
  /** The most rows of the list a filtered page reads (LIST_SCAN_BUDGET when absent). */
  listScanBudget?: number;
}

export interface RenderCall {
  tenantId: string;
  format: RequestFormat;
  bodyText: string;
  /** True when the caller has already parsed bodyText with JSON.parse: it is not validated again. */
  bodyIsJson?: boolean;
  pointer: string;
  /** Overrides the body's `model` (Gemini bodies have none). */
  model?: string;
  extraPrefix?: Array<{ ref: string; pointer: string }>;
  /** Short fingerprint of the provider credential (proxy), part of the cache scope. */
  credentialFingerprint?: string;
  /** Record the caller's own tools and system prompt as the artifact versions they are (render.ts matchInline). */
  matchHandles?: boolean;
}

export interface RenderResult {
  requestId: string;
  bodyText: string;
  model: ModelLookup;
  scope: string;
  segments: RenderedSegment[];
  breakpoints: Breakpoint[];
  promptCacheKey: string | null;
  prediction: unknown;
  renderedAt: number;
  /** Volatile values in the caller's content before a handle (they change the prefix on every call), handles sent twice. */
  warnings: RenderWarning[];
  /** Resolves once the recorded request is durably committed (group commit). */
  committed: Promise<void>;
  /** With matchHandles: the caller's content recorded as a handle's. */
  matched: MatchedContent[];
}

export const RENDER_WARNINGS = ['volatile_before_handle', 'repeated_handle', 'prefix_after_history', 'system_after_session', 'thinking_not_read', 'thinking_dropped', 'unknown_model', 'tool_tokens_estimated'] as const;

export interface RenderWarning {
  code: (typeof RENDER_WARNINGS)[number];
  /** The segment it concerns; null for the request as a whole (its model). */
  segment: number | null;
  kind: string;
  text: string;
  detail: string;
}

/** A high surrogate escape not followed by a low one, or a low one not after a high one. */
const LONE_SURROGATE_ESCAPE = /\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}/;

/**
 * Every JSON number that can overflow a double matches (a superset: a match is only parsed again): one with an
 * exponent of two digits or more, or with 300 digits before its point (its magnitude is its digits plus a one-digit
 * exponent, and a double ends past 308). Only where a number can stand (after `:`, `,` or `[`), and each run of
 * digits tried once, so the scan stays linear.
 */
const HUGE_NUMBER = /[:,[]\s*-?(?:\d+(?:\.\d+)?[eE][+-]?\d{2}|\d{300})/;

/**
 * A body JSON cannot carry faithfully is refused before anything is recorded or sent: a lone surrogate, stored,
 * would come back as replacement characters, and its report could never be reconciled; a number past a double's
 * range (1e309) parses to Infinity, which no key or canonical form can hold. A lone surrogate can only arrive as a
 * `\u` escape that looks lone (not a pair, as ASCII-only JSON writes every emoji), an overflow only as a number
 * HUGE_NUMBER matches: only a body with one of those is parsed again.
 */
function refuseUnfaithfulJson(bodyText: string, pointer: string): void {
  if (!LONE_SURROGATE_ESCAPE.test(bodyText) && !HUGE_NUMBER.test(bodyText)) return;
  let value: unknown;
  try {
    value = JSON.parse(bodyText);
  } catch {
    return; // not JSON: the renderer says so
  }
  const bad = findInvalidJson(value, pointer);
  if (bad !== null) throw invalid(bad.pointer, bad.detail);
}

const PROVIDER_OF: Record<RequestFormat, ProviderFamily> = {
  anthropic: 'anthropic',
  'openai-chat': 'openai',
  'openai-responses': 'openai',
  gemini: 'gemini',
};
/** The providers a request's scope can name (its key's second part). */
const PROVIDERS = [...new Set(Object.values(PROVIDER_OF))];

/** What a list of requests keeps (GET /v1/requests' `handle`, `class`, `type`, `model`, `no_handle`). */
export interface RequestListFilter {
  handleId?: string;
  tokenClass?: TokenClass;
  /** With `tokenClass`: its tokens on the segments of handles of this type (the sessions' row of the overview). */
  handleType?: HandleType;
  model?: string;
  /** The calls counted in the reports' `no_handle`: reconciled, their whole prompt inline, no handle named. */
  noHandle?: boolean;
}

/**
 * The filters that cannot go together, refused naming the one that narrows what the other says: a type is of the
 * tenant's handles (a handle is of one type already), and says where a class's tokens are counted; the calls through
 * no handle have no handle's tokens of any class (their report, `no_handle`, has none).
 */
export function refuseFilterCombination(q: RequestListFilter): void {
  if (q.handleType !== undefined) {
    if (q.handleId !== undefined) throw invalid('query:type', 'type is for the tenant\'s requests, not with handle (a handle is of one type already)');
    if (q.tokenClass === undefined) throw invalid('query:type', 'type needs class: it lists the requests with tokens of that class on handles of this type');
  }
  if (q.noHandle) {
    const other = q.handleId !== undefined ? 'handle' : q.handleType !== undefined ? 'type' : q.tokenClass !== undefined ? 'class' : null;
    if (other) throw invalid('query:no_handle', `no_handle lists the calls that named no handle, so not with ${other}${other === 'class' ? ' (their whole prompt is inline: no handle\'s tokens of any class)' : ''}`);
  }
}

/**
 * The index a filtered list reads: the calls through no handle; a rare class's requests on the handle, the type or any
 * handle. None: the tenant's or the handle's list. (No index holds a model: one would be written again by every
 * report, whose start moves the request in the list — see the README's Benchmarks.)
 */
function listIndex(q: RequestListFilter): RequestListIndex | undefined {
  if (q.noHandle) return 'no_handle';
  if (q.tokenClass !== undefined && INDEXED_CLASSES.has(q.tokenClass)) return { tokenClass: q.tokenClass, within: q.handleId ?? q.handleType ?? '*' };
  return undefined;
}

/** Renders agent requests that reference handles, and records them for reconciliation. */
export class RequestService {
  private readonly renderer: RequestRenderer;
  private lastPurge = -Infinity;

  constructor(
    private readonly deps: {
      store: Store;
      clock: Clock;
      handles: HandleService;
      catalog: ModelCatalog;
      reconciler: Reconciler;
      writes: WriteQueue;
      retention?: RequestRetention;
      policy: RequestPolicy;
      /** Tenants being deleted (TenantDeletion): a render of theirs still under way records nothing. */
      deleted?: (tenantId: string) => boolean;
      /** A tenant's time zone (TenantService.zoneOf): the list's `range` is of its whole days. UTC when not given. */
      zoneOf?: (tenantId: string) => string;
    },
  ) {
    this.renderer = new RequestRenderer(deps.handles);
  }

  /**
   * The body as render() sends it, its handles expanded, refused for the same reasons, but nothing recorded: for a
   * call that is not a model call (the proxy's count_tokens).
   */
  expand(call: RenderCall): { bodyText: string } {
    return { bodyText: this.renderBody(call).rendered.bodyText };
  }

  private renderBody(call: RenderCall): { rendered: RenderedRequest; model: ModelLookup; modelName: string } {
    refuseUnfaithfulJson(call.bodyText, call.pointer);
    const provider = PROVIDER_OF[call.format];
    let lookup: ModelLookup | undefined;
    let modelName = '';
    const rendered = this.renderer.render({
      tenantId: call.tenantId,
      format: call.format,
      bodyText: call.bodyText,
      bodyIsJson: call.bodyIsJson,
      pointer: call.pointer,
      resolveModel: (inBody) => {
        modelName = call.model ?? inBody ?? '';
        if (!modelName) throw invalid(`${call.pointer}/model`, 'model is required (in the body, or as "model" beside it)');
        lookup = this.deps.catalog.lookup(modelName, provider);
        return lookup.entry;
      },
      extraPrefix: call.extraPrefix,
      cacheTtl: this.deps.policy.cacheTtl,
      // The model that produced a kept thinking block, as the catalog knows it (an unknown one: not known).
      producerOf: (name) => {
        const found = this.deps.catalog.lookup(name, provider);
        return found.fallback ? null : found.entry.id;
      },
      matchHandles: call.matchHandles,
    });
    return { rendered, model: lookup!, modelName };
  }

  render(call: RenderCall): RenderResult {
    if (this.deps.deleted?.(call.tenantId)) throw tenantDeleted();
    const { rendered, model, modelName } = this.renderBody(call);
    const provider = PROVIDER_OF[call.format];
    const now = this.deps.clock.now();
    const scope = [call.tenantId, provider, modelName, call.credentialFingerprint ?? '-'].join('|');
    const requestId = newRequestId(now);
    const { inlineKeepBytes, inlineRetentionMs } = this.deps.policy;
    const prediction = this.deps.reconciler.predict(scope, model.entry, rendered.segments, rendered.breakpoints, now, rendered.cacheTtl);
    const inline: InlineRow[] = [...rendered.inlineText].map(([segment, text]) => {
      const cut = Buffer.byteLength(text) > inlineKeepBytes;
      return {
        requestId,
        segment,
        text: cut ? Buffer.from(text).subarray(0, inlineKeepBytes).toString('utf8') : text,
        truncated: cut,
        expiresAt: now + inlineRetentionMs,
      };
    });
    const row: RequestRow = {
      id: requestId,
      tenantId: call.tenantId,
      scope,
      format: call.format,
      model: modelName,
      catalogEntry: model.entry.id,
      catalogFallback: model.fallback,
      renderedAt: now,
      segments: rendered.segments,
      breakpoints: rendered.breakpoints,
      promptCacheKey: rendered.promptCacheKey,
      cacheTtl: rendered.cacheTtl,
      messageSettings: rendered.messageSettings,
      providerHistory: rendered.providerHistory,
      prediction,
      namesHandle: rendered.handles.length > 0,
    };
    const committed = this.deps.writes.enqueue({ kind: 'request', row, inline, handles: rendered.handles });
    // Inline bytes past their retention are dropped as we go, at most once a minute.
    if (now - this.lastPurge > 60_000) {
      this.lastPurge = now;
      this.deps.store.purgeInline(now);
    }
    return {
      requestId,
      bodyText: rendered.bodyText,
      model,
      scope,
      segments: rendered.segments,
      breakpoints: rendered.breakpoints,
      promptCacheKey: rendered.promptCacheKey,
      prediction,
      renderedAt: now,
      warnings: [
        ...volatileBeforeHandles(rendered.segments, rendered.inlineText),
        ...repeatedHandles(rendered.segments),
        ...handlesAfterHistory(rendered),
        ...instructionAfterSession(rendered),
        ...thinkingNotRead(rendered, model.entry.id),
        ...thinkingDropped(rendered),
        ...(model.fallback ? [unknownModel(modelName, model.entry.id)] : []),
        ...rendered.estimatedTools.map((t) => estimatedToolWarning(t, model.entry.id)),
      ],
      committed,
      matched: rendered.matched,
    };
  }

  /** After a tenant's deletion: the renderer's caches of callers' content are dropped whole. */
  forgetCaches(): void {
    this.renderer.forgetCaches();
  }

  /** Records that the provider refused the request (no usage; nothing to reconcile). */
  markFailed(requestId: string, detail: { startedAt: number; finishedAt: number; usageRaw: unknown }): Promise<void> {
    return this.deps.writes.enqueue({ kind: 'failed', requestId, detail });
  }

  /** Whether the tenant recorded any request sent to `model` (its name as sent, as `list` filters by it): reconciled or not. */
  usedModel(tenantId: string, model: string): boolean {
    return this.deps.store.hasRequestOfModel(tenantId, model, PROVIDERS);
  }

  /**
   * A tenant's recorded requests, newest first by when the call started (its report's or failure's start; the render
   * time until one comes), a page at a time; with `handleId`, those that referenced it (its id on a segment's path: a
   * bundle's requests include those of sessions based on it). `range`: those started on its whole days (in the tenant's
   * time zone: see time-zone.ts), both ends
   * included, as reports count a request on the day it started (a range of the list's own index).
   *
   * `tokenClass` and `noHandle` filter it by an index where one holds the matches (see listIndex()): a page of it is
   * exact. What no index holds — `captured` or `cold` (most requests have them), `model` — is read in the order of the
   * nearest index, keeping the matches (see filtered()), at most the scan budget of rows a page; `scanned` says how
   * many it read.
   */
  list(tenantId: string, q: RequestListFilter & { cursor?: RequestListCursor; limit: number; range?: { from?: number; to?: number } }): RequestPage {
    refuseFilterCombination(q);
    if (q.handleId !== undefined) {
      const handle = this.deps.store.getHandle(q.handleId);
      // A deleted handle's requests are still listed, as its reports still are.
      if (!handle || handle.tenantId !== tenantId) throw withPointer(notFound(`handle ${q.handleId}`), 'query:handle');
    }
    const { from, to } = q.range ?? {};
    const zone = this.deps.zoneOf?.(tenantId) ?? UTC;
    const query: RequestListQuery = {
      tenantId,
      handleId: q.handleId,
      before: q.cursor,
      limit: q.limit,
      startedFrom: from === undefined ? undefined : dayStart(dayOf(from, zone), zone),
      startedTo: to === undefined ? undefined : dayEnd(dayOf(to, zone), zone),
    };
    const { tokenClass: cls, model, handleType: type } = q;
    const via = listIndex(q);
    // The index read holds every filter given: its page is the answer.
    if (model === undefined && (cls === undefined || via !== undefined)) return this.deps.store.listRequests({ ...query, via });
    return this.filtered({ ...query, via }, (row) => (model === undefined || row.model === model) && (cls === undefined || listedClassTokens(row, cls, q.handleId, type) > 0));
  }

  /**
   * A page of the list's rows that match, read in the list's order in batches (the first of `limit + 1` rows, each
   * next twice the last, up to 500), at most the scan budget of rows per call. The page ends at a match past its
   * `limit` (`next` just before that match); at the list's end (`next` null); or when the budget is spent first, full,
   * short or empty (`budgetSpent`, `next` after the last row read). So only a page that spent the budget, or the
   * last, is short, and following `next` until it is null lists every match once, in order, whatever the budget.
   */
  private filtered(query: RequestListQuery, matches: (row: RequestRow) => boolean): RequestPage {
    const budget = Math.max(1, this.deps.policy.listScanBudget ?? LIST_SCAN_BUDGET);
    const at = (row: RequestRow): RequestListCursor => ({ startedAt: row.listedAt!, id: row.id });
    const rows: RequestRow[] = [];
    let before = query.before;
    let last: RequestRow | undefined;
    let scanned = 0;
    let batch = query.limit + 1;
    for (;;) {
      const page = this.deps.store.listRequests({ ...query, before, limit: Math.min(batch, budget - scanned) });
      for (const row of page.rows) {
        scanned++;
        if (matches(row)) {
          // A match past the page: the next page starts with it (only rows that do not match lie between).
          if (rows.length === query.limit) return { rows, next: at(last!), scanned, budgetSpent: false };
          rows.push(row);
        }
        last = row;
      }
      if (!page.next) return { rows, next: null, scanned, budgetSpent: false };
      if (scanned >= budget) return { rows, next: page.next, scanned, budgetSpent: true };
      before = page.next;
      batch = Math.min(batch * 2, 500);
    }
  }

  get(tenantId: string, id: string): RequestRow {
    const row = this.deps.store.getRequest(id) ?? this.deps.writes.pendingRequest(id);
    // Gone: said to be pruned when it is older than what was pruned (its id carries its render time).
    if (!row) throw this.deps.retention?.missing(id) ?? notFound(`request ${id}`);
    if (row.tenantId !== tenantId) throw notFound(`request ${id}`);
    return row;
  }
}

/**
 * The same handle version in two segments: its content is sent (and billed) twice, and a provider refuses
 * tools named twice. Typically a bundle named beside a session based on it (the session expands it already).
 */
function repeatedHandles(segments: RenderedSegment[]): RenderWarning[] {
  const first = new Map<string, number>();
  const out: RenderWarning[] = [];
  segments.forEach((s, i) => {
    if (s.source === 'inline') return;
    const at = first.get(s.source);
    if (at === undefined) first.set(s.source, i);
    else
      out.push({
        code: 'repeated_handle',
        segment: i,
        kind: 'handle',
        text: s.source,
        detail: `${s.source} is also segment ${at}: its content is sent twice (named twice, or inside two of the handles named: a session already expands its base bundle)`,
      });
  });
  return out;
}

/**
 * A Responses call continuing a conversation OpenAI keeps: the provider puts that history after the tools and
 * before the input, so a prefix's handle (placed in the input) is sent again on every turn after it — never read
 * from the cache, and kept in the history once more each turn. A session keeps the conversation as a cached prefix
 * instead.
 */
function handlesAfterHistory({ segments, providerHistory, prefixAfterHistory: i }: Pick<RenderedRequest, 'segments' | 'providerHistory' | 'prefixAfterHistory'>): RenderWarning[] {
  if (providerHistory === null || i === null) return [];
  const source = segments[i]!.source;
  return [
    {
      code: 'prefix_after_history',
      segment: i,
      kind: 'handle',
      text: source,
      detail: `${source} stands after the conversation OpenAI keeps (${providerHistory}): sent again on every turn, where the cache cannot read it, and added to that history each time; keep the conversation in a session (x-ph-session) instead`,
    },
  ];
}

/**
 * OpenAI: a system or developer message after a session's messages. A session does not keep it, so it is sent again
 * on every turn after the growing history, where no turn's cache read reaches it; a fixed system prompt belongs in
 * the prefix, before the session (x-ph-prefix on the proxy). A session that does not grow (a branch named as a
 * fixed prefix) is warned of too: the render cannot tell. The proxy's x-ph-warnings names it too.
 */
function instructionAfterSession({ instructionAfterSession: found }: Pick<RenderedRequest, 'instructionAfterSession'>): RenderWarning[] {
  if (!found) return [];
  return [
    {
      code: 'system_after_session',
      segment: found.segment,
      kind: 'message',
      text: found.role,
      detail: `a ${found.role} message after the session's messages: a session does not keep it, so as the session grows (a turn appended after each call, as x-ph-session does) it stands after the history, where no turn's cache read reaches it; put a fixed ${found.role} prompt in the prefix before the session (a system artifact; x-ph-prefix on the proxy)`,
    },
  ];
}

/**
 * Anthropic: thinking blocks of the conversation (a session continued on another model) that another model produced and
 * this one does not read. The API drops them without an error (preserved thinking's model check): the request is
 * answered, without that reasoning, and the estimate does not count them. Sent all the same: the session's bytes do not
 * depend on the model, and the model that wrote them reads them again if the conversation goes back to it.
 */
function thinkingNotRead({ thinkingNotRead: found }: Pick<RenderedRequest, 'thinkingNotRead'>, model: string): RenderWarning[] {
  if (!found) return [];
  const by = found.models.join(', ');
  return [
    {
      code: 'thinking_not_read',
      segment: found.segment,
      kind: 'thinking',
      text: by,
      detail: `thinking blocks produced by ${by}, which ${model} does not read: Anthropic drops them from the request without an error (preserved thinking ties a thinking block to the model that produced it), so the model answers without that reasoning; they are not counted in the estimate, and stay in the conversation for the model that wrote them`,
    },
  ];
}

/**
 * Anthropic: thinking blocks that fail preserved thinking's prefix check, sent with `drop_block`: the API drops them
 * without an error and bills the request without them, so the estimate leaves them out as it does blocks not read.
 * `text` names them (`messages.i.content.j`), `segment` the first one's.
 */
function thinkingDropped({ thinkingDropped: found, model }: Pick<RenderedRequest, 'thinkingDropped' | 'model'>): RenderWarning[] {
  if (!found) return [];
  return [{ code: 'thinking_dropped', segment: found.segment, kind: 'thinking', text: found.blocks.map((b) => b.path).join(', '), detail: droppedDetail(model, found.blocks) }];
}

/**
 * A model the catalog does not know: priced and ruled (minimum, lifetime, breakpoints) as its provider's default
 * entry, which is likely not its own. The one wording of it: /v1/render's warnings, the proxy's x-ph-warnings (by
 * code), the dashboard's request page and the CLI's import summary.
 */
export function unknownModel(model: string, entry: string): RenderWarning {
  return {
    code: 'unknown_model',
    segment: null,
    kind: 'model',
    text: model,
    detail: `the catalog does not know ${model}: it is priced and its cache ruled as ${entry} (the prices, minimum cacheable tokens and lifetime of that entry); name it as the catalog does (GET /v1/models), or give it an entry with PH_CATALOG_FILE`,
  };
}

function volatileBeforeHandles(segments: RenderedSegment[], inline: Map<number, string>): RenderWarning[] {
  const lastHandle = segments.findLastIndex((s) => s.source !== 'inline');
  const out: RenderWarning[] = [];
  for (const [i, text] of inline) {
    if (i > lastHandle) continue;
    for (const f of findVolatility(text).slice(0, 10))
      out.push({
        code: 'volatile_before_handle',
        segment: i,
        kind: f.kind,
        text: f.text,
        detail: `inline content before ${segments[lastHandle]!.source} holds a value that differs from call to call (${f.kind} "${f.text}"): the cached prefix will not match on the next call`,
      });
  }
  return out;
}

