// One handle: its waterfall, capture rate per day, versions and what each
// change invalidated, volatile values inside its content, recent drift.

import { html } from 'hono/html';
import type { Reports } from '../../../domain/reconcile/reports';
import type { VersionRow } from '../../../store/store';
import type { ModelEntry } from '../../../domain/catalog/types';
import type { requestSummaryView } from '../../views';
import { captureTrendChart, CLASS_INFO, LEAK_ROWS, legend, waterfallChart, type DayPoint } from '../charts';
import { diffPair, markFindings, type Finding } from '../content';
import { bytes, dayIn, pct, tok, tokens, usd, when, type Span, type SpanChoice } from '../format';
import { biggestLeak, filterHeading, filterQuery, filterWords, formatsNote, leakedByClass, liveStatus, periodChooser, rateBar, requestLink, requestsLink, requestsTable, settingsNote, sourceLink, spanLine, startedWords, summary, thinkingNote, type Html } from './parts';

export type HandleReport = ReturnType<Reports['handleOverview']>;

/** A piece of content (an artifact version or a session batch) with its volatile values. */
export interface ContentSource {
  ref: string;
  label: string;
  text: string;
  findings: Finding[];
  /** All findings at mint; more than `findings.length` when the stored list was cut. */
  count: number;
}

export interface HandleView {
  report: HandleReport;
  /** The span shown, as the page's form asked it. */
  choice: SpanChoice;
  span: Span;
  days: DayPoint[];
  daysLabel: string;
  /** The newest `VERSIONS_SHOWN` versions, oldest first. */
  versions: VersionRow[];
  /** How many versions the handle has in all. */
  versionCount: number;
  /** Content to show with marks; for bundles and sessions, only sources with volatile values. */
  sources: ContentSource[];
  /**
   * Every source of the latest version with its volatility count and its place in render order (bundles), or a
   * session's base sources and the batches of one page (`batches`).
   */
  composition: { ref: string; count: number; label: string; index: number }[];
  /** A session's batches: how many in all, and how many come before and after the ones listed. */
  batches?: BatchPage;
  deleted: boolean;
  /** Whether a request its drift findings name was pruned (no page to link to). */
  pruned?: (id: string) => boolean;
  /** The latest requests that referenced it started in the period, newest start first (not re-read by the live view). */
  recent: ReturnType<typeof requestSummaryView>[];
  /**
   * `?class=` and `?model=`: `recent` are those with its tokens of the class, sent to the model; `more`, the API's next
   * page has more to read; `budgetSpent`, this one stopped at the scan budget, after `scanned` requests.
   */
  recentFilter?: { cls?: string; model?: string; more: boolean; budgetSpent: boolean; scanned: number };
  /** The tokenizer families whose counts the versions table shows: those of the models its requests used. */
  families: Family[];
  /** The catalog entries of its latest requests, whose rules the legend explains; undefined when it has none. */
  entries?: ModelEntry[];
}

/** Versions the table lists, newest first (a 2,000-turn session has 2,000). */
export const VERSIONS_SHOWN = 50;
/** A session's batches the content table lists on one page (`?batches=`), as many as versions: the newest page is those versions' batches. */
export const BATCHES_SHOWN = VERSIONS_SHOWN;

export interface BatchPage {
  /** The base's sources, listed before the batches. */
  baseCount: number;
  total: number;
  /** Batches before the first listed, and after the last. */
  before: number;
  after: number;
  /** `?batches=` of the page before (older), when there is one. */
  olderThrough: number | null;
  /** `?batches=` of the page after (newer); null: the newest page. Used when `after` > 0. */
  newerThrough: number | null;
  /** Volatile batches on this page whose content is not shown (past the cards' limit). */
  volatileNotShown: number;
}

export type Family = 'anthropic' | 'o200k_base' | 'cl100k_base' | 'gemini';
/** How a version's token counts are labelled: estimated families with ≈ (Anthropic's and Gemini's tokenizers are not public). */
const FAMILY: Record<Family, { short: string; name: string; estimated: boolean }> = {
  anthropic: { short: 'anth.', name: 'Anthropic', estimated: true },
  o200k_base: { short: 'o200k', name: 'OpenAI o200k', estimated: false },
  cl100k_base: { short: 'cl100k', name: 'cl100k', estimated: false },
  gemini: { short: 'gemini', name: 'Gemini', estimated: true },
};
interface Meta {
  tokens?: Partial<Record<Family, number>>;
  volatility?: { count: number };
  change?: { first_diff_byte: number | null; first_diff_segment?: string | null; invalidated_tokens: Partial<Record<Family, number>> };
}

const title = (r: HandleReport) => r.handle.name ?? r.handle.id;

export function handlePage(v: HandleView): Html {
  const h = v.report.handle;
  const path = `/ui/handles/${h.id}`;
  // <bdi>: a name's direction controls (U+202E…) stay inside it, off the id beside it.
  return html`<h1><bdi>${title(v.report)}</bdi> ${h.name ? html`<code>${h.id}</code>` : ''}</h1>
<p class="sub">${h.kind ? `${h.kind} artifact` : h.type} · ${tokens(v.versionCount)} version${v.versionCount === 1 ? '' : 's'}${v.deleted ? ' · deleted: its reports remain' : ''}</p>
<div class="toolbar">${periodChooser(path, v.choice, v.recentFilter, v.recentFilter ? '#recent-requests' : '')} ${liveStatus()}</div>
<section data-live data-fragment="/ui/fragments/handles/${h.id}?${v.span.query}" data-events="/ui/events?handle=${h.id}">${handleLive(v)}</section>
${recentSection(v)}
${contentSection(v)}`;
}

/** The part the live view re-fetches: every figure that a new usage report can change. */
export function handleLive(v: HandleView): Html {
  const r = v.report;
  // Each leak's bar and row lead to this handle's requests with it, in this period.
  const link = requestsLink(v.span, { handle: r.handle.id });
  return html`<p class="muted" data-span>${spanLine(v.span, r.range)}.</p>
${summary(r)}
<div class="card"><h2 style="margin-top:0">Reuse waterfall</h2>
${r.tokens.referenced ? '' : html`<p class="empty">No reconciled request used this handle in this period.</p>`}
${waterfallChart(r.tokens, `Reuse waterfall of ${title(r)}`, link)}
${legend(['cold', ...LEAK_ROWS, 'captured', 'bonus'], { entries: v.entries })}
${leakedByClass(r, link)}</div>
${modelsTable(r.models, v.span, r.handle.id)}
<div class="card"><h2 style="margin-top:0">Capture rate per day <small class="muted">(the capture rate above, per ${dayIn(v.span.zone)}, ${v.daysLabel}; hatched: a day with unknown capture)</small></h2>
${captureTrendChart(v.days, `Capture rate per day of ${title(r)}`)}${
  (r.tokens.opportunity ?? 0) + (r.tokens.unknown ?? 0) > 0 && v.days.every((d) => d.opportunity === 0 && d.unknown === 0)
    ? html`<p class="muted" data-notice="no-days">No reuse on these days: the figures above come from older days (imported history), which the chart does not draw.</p>`
    : ''
}</div>
${versionsTable(v)}
${driftSection(v)}`;
}

/**
 * The waterfall per model, the most leaked first: the same prefix is cached on one model and under another's minimum,
 * and each model has its own cache (the API's `models`).
 */
function modelsTable(models: HandleReport['models'], span: Span, handle: string): Html | '' {
  if (!models.length) return '';
  return html`<h2>By model</h2>
<table data-table="models" tabindex="0" data-scroll><thead><tr><th>Model</th><th class="num">Leaked</th><th>Biggest leak</th><th>Capture rate</th><th class="num">Requests</th><th class="num">Opportunity</th><th class="num">Captured</th></tr></thead><tbody>
${models.map(
    (m) => html`<tr data-model="${m.model}"><td data-model><bdi>${m.model}</bdi></td><td class="num" data-value="${m.money.leaked_savings}">${usd(m.money.leaked_savings)}</td><td>${biggestLeak(m, requestsLink(span, { handle, model: m.model }))}</td>
<td class="rate-cell">${rateBar(m.capture_rate)}</td><td class="num">${tokens(m.requests)}</td><td class="num">${tok(m.tokens.opportunity ?? 0)}</td><td class="num">${tok(m.tokens.captured ?? 0)}</td></tr>`,
  )}</tbody></table>`;
}

function invalidated(meta: Meta | null, version: number, families: Family[]): Html {
  if (version === 1) return html`<span class="muted">first version</span>`;
  const ch = meta?.change;
  if (!ch) return html`<span class="muted">—</span>`;
  if (ch.first_diff_byte === null) return html`identical bytes: nothing invalidated`;
  const inv = ch.invalidated_tokens;
  const at = html`first differing byte <b>${tokens(ch.first_diff_byte)}</b>${ch.first_diff_segment ? html` (in ${sourceLink(ch.first_diff_segment)})` : ''}`;
  const shown = families.flatMap((f) => (inv[f] === undefined ? [] : [[f, inv[f]] as const]));
  if (shown.every(([, n]) => !n)) return html`${at}; a pure append: <b>nothing invalidated</b>`;
  return html`${at}; invalidates ${shown.map(([f, n], i) => html`${i ? ' · ' : ''}<b data-family="${f}" data-invalidated="${n}">${FAMILY[f].estimated ? '≈' : ''}${tok(n)}</b> (${FAMILY[f].name})`)} of cached prefix`;
}

function familyCounts(counts: Partial<Record<Family, number>>, families: Family[]): Html {
  const shown = families.filter((f) => counts[f] !== undefined);
  return html`${shown.map((f, i) => html`${i ? html`<br>` : ''}${FAMILY[f].estimated ? '≈' : ''}${tokens(counts[f]!)} <small class="muted">${FAMILY[f].short}</small>`)}`;
}

function versionsTable(v: HandleView): Html {
  const byVersion = new Map(v.report.versions.map((x) => [x.version, x]));
  const rows = [...v.versions].reverse().slice(0, VERSIONS_SHOWN);
  return html`<h2>Versions <small><a href="/ui/handles/${v.report.handle.id}/report.csv?${v.span.query}" data-csv download>Download CSV</a></small></h2>
<table data-table="versions" tabindex="0" data-scroll><thead><tr><th>Version</th><th>Created</th><th class="num">Size</th><th class="num">Tokens</th><th>What the change invalidated</th><th class="num">Volatile</th><th class="num">Sent in</th><th class="num">As newest</th><th class="num">Capture</th><th class="num">Leaked</th></tr></thead><tbody>
${rows.map((row) => {
    const meta = row.meta as Meta | null;
    const rep = byVersion.get(row.version);
    return html`<tr data-version="${row.version}"><td class="mono">@${row.version}</td><td>${when(row.createdAt)}</td><td class="num">${bytes(row.size)}</td>
<td class="num">${meta?.tokens ? familyCounts(meta.tokens, v.families) : '—'}</td>
<td>${invalidated(meta, row.version, v.families)}</td>
<td class="num">${meta?.volatility?.count ?? '—'}</td>
<td class="num" data-sent-in>${rep ? tokens(rep.requests_including) : 0}</td><td class="num" data-as-newest>${rep ? tokens(rep.requests) : 0}</td><td class="num">${rep ? pct(rep.capture_rate) : '—'}</td><td class="num">${rep ? usd(rep.money.leaked_savings) : '—'}</td></tr>`;
  })}</tbody></table>
<p class="muted">Requests: <b>sent in</b>, those whose prompt had the version's content (its capture and leak are over them); <b>as newest</b>, those that used it as the handle's newest version${
    v.report.handle.type === 'session'
      ? ` (rendered the session at it): the messages a version appended are sent again by every later turn${v.batches?.baseCount ? ", and the base bundle is @1's content" : ''}`
      : ''
  }.</p>${v.versionCount > rows.length ? html`<p class="muted" data-versions-shown="${rows.length}" data-versions="${v.versionCount}">The latest ${rows.length} of ${tokens(v.versionCount)} versions (all of them: <code>GET /v1/handles/${v.report.handle.id}</code>).</p>` : ''}`;
}

interface DriftView {
  request_id: string;
  previous_request_id: string;
  at: string;
  segment?: number;
  byte_offset?: number;
  now?: { source: string; digest: string; excerpt?: string };
  before?: { source: string; digest: string; excerpt?: string };
  formats?: { now: string; before: string };
  settings?: Array<{ name: string; now: unknown; before: unknown }>;
  thinking?: 'earlier_turn' | 'earlier_reasoning';
  reasoning_context?: 'all_turns';
}

function recentSection(v: HandleView): Html {
  const h = v.report.handle.id;
  // The span's first day (the tenant's, as the list reads a day), not the UTC date of its first instant.
  const from = v.report.range.from === null ? undefined : v.span.from;
  const to = v.span.period ? undefined : v.span.to;
  const f = v.recentFilter;
  const words = f ? filterWords(f) : '';
  const api = `GET /v1/requests?handle=${h}${f ? filterQuery(f) : ''}${from ? `&from=${from}` : ''}${to ? `&to=${to}` : ''}`;
  // By start, the list's order: an imported call is listed on its log line's day, as reports count it.
  return html`<h2 id="recent-requests">${f ? html`Requests ${filterHeading(f)} on this handle` : 'Recent requests'} <small class="muted">(started ${startedWords(from, to)}, as of this page load; all of them: <code>${api}</code>)</small></h2>
${classFilter(v)}
${f?.more ? html`<p class="muted" data-class-more>${f.budgetSpent ? `The page read the latest ${tokens(f.scanned)} requests of this handle (the most one page reads) and lists ${tokens(v.recent.length)} ${words}; older ones` : `The latest ${tokens(v.recent.length)}; more`}: the API's <code>next_cursor</code>.</p>` : ''}
${v.recent.length === 0
    ? f?.more
      ? ''
      : html`<p class="muted">No recorded request ${f ? `${words} on this handle` : 'referenced this handle'} ${from ? 'in this period' : 'yet'}.</p>`
    : requestsTable(v.recent, html`This handle's tokens by class`)}`;
}

/** Above the list: each leak of the period (the waterfall's figures) as a link to the requests that had it. */
function classFilter(v: HandleView): Html | '' {
  const r = v.report;
  const leaks = ['cold', ...LEAK_ROWS].filter((c) => (r.requests_with[c] ?? 0) > 0);
  if (!leaks.length) return '';
  const href = (cls?: string) => `/ui/handles/${r.handle.id}?${v.span.query}${cls ? `&class=${cls}` : ''}#recent-requests`;
  // The leak figures are the handle's over every model: a link here lists them all (a model's are its by-model row's).
  const current = (cls?: string) => (v.recentFilter?.model === undefined && v.recentFilter?.cls === cls ? html` aria-current="true"` : '');
  return html`<p class="muted" data-class-filter>List the requests with: ${leaks.map(
    (c) => html`<a href="${href(c)}" data-class-link="${c}" data-requests="${r.requests_with[c]}"${current(c)}>${CLASS_INFO[c]!.label}: ${tok(r.tokens[c] ?? 0)} in ${tokens(r.requests_with[c]!)} request${r.requests_with[c] === 1 ? '' : 's'}</a> · `,
  )}<a href="${href()}"${current()}>all recent requests</a></p>`;
}

function driftSection(v: HandleView): Html {
  const findings = v.report.drift as DriftView[];
  return html`<h2>Recent drift</h2>
${findings.length === 0
    ? html`<p class="muted">No drift: whenever this handle repeated, the bytes before it were the same.</p>`
    : findings.map((d) => {
        const pair = d.now?.excerpt !== undefined && d.before?.excerpt !== undefined ? diffPair(d.before.excerpt, d.now.excerpt) : null;
        if (d.settings?.length)
          return html`<div class="card" data-drift="${d.request_id}">
<p style="margin-top:0">${when(d.at)}: ${requestLink(d.request_id, v.pruned)} missed the prefix ${requestLink(d.previous_request_id, v.pruned)} had written: ${settingsNote(d.settings, d.segment ?? 0)}.</p></div>`;
        if (d.thinking)
          return html`<div class="card" data-drift="${d.request_id}">
<p style="margin-top:0">${when(d.at)}: ${requestLink(d.request_id, v.pruned)} missed the prefix ${requestLink(d.previous_request_id, v.pruned)} had written: ${thinkingNote(d.segment ?? 0, d.thinking, d.reasoning_context)}.</p></div>`;
        return html`<div class="card" data-drift="${d.request_id}">
<p style="margin-top:0">${when(d.at)}: ${requestLink(d.request_id, v.pruned)} missed the prefix ${requestLink(d.previous_request_id, v.pruned)} had written.
Segment <b>#${(d.segment ?? 0) + 1}</b> changed${d.byte_offset !== undefined ? html`, first at byte <b>${tokens(d.byte_offset)}</b>` : ''}:
${d.before ? sourceLink(d.before.source) : ''} → ${d.now ? sourceLink(d.now.source) : ''}${formatsNote(d.formats)}.</p>
${pair
  ? html`<div class="pair"><div><b>Before</b> <small class="muted">(${d.previous_request_id})</small><pre data-side="before">${pair.before}</pre></div><div><b>Now</b> <small class="muted">(${d.request_id})</small><pre data-side="now">${pair.now}</pre></div></div>`
  : html`<p class="muted">The changed bytes were not retained (only inline content is kept, for a while); digests ${d.before?.digest.slice(0, 12) ?? '?'}… → ${d.now?.digest.slice(0, 12) ?? '?'}…</p>`}
</div>`;
      })}`;
}

function contentSection(v: HandleView): Html {
  const composite = v.report.handle.type !== 'artifact';
  return html`<h2 id="content">Content and volatile values</h2>
<p class="muted">Highlighted: values that tend to change on every render (timestamps, epochs, ids). One near the start of a prefix breaks the cache for everything after it.</p>
${v.report.handle.type === 'session' ? html`<p class="muted" data-note="session-volatility">A session's batches are kept as appended and sent again byte for byte on every later turn: a value in them (a tool call's id, a time in a message) does not break the cache of the turns after it. Those in its base, and in content sent before the session, do.</p>` : ''}
${composite && v.composition.length
    ? html`${batchesNote(v)}<table data-table="composition" tabindex="0" data-scroll><thead><tr><th>#</th><th>Source in render order</th><th>What</th><th class="num">Volatile values</th></tr></thead><tbody>${v.composition.map(
        (s, i) => html`${v.batches && i === v.batches.baseCount ? gapRow(v, 'before') : ''}<tr><td class="num">${s.index}</td><td>${sourceLink(s.ref, v.span)}</td><td>${s.label}</td><td class="num">${s.count}</td></tr>`,
      )}${v.batches && v.composition.length === v.batches.baseCount ? gapRow(v, 'before') : ''}${v.batches ? gapRow(v, 'after') : ''}</tbody></table>`
    : ''}
${v.deleted ? html`<p class="notice">This handle was deleted; its content is no longer shown.</p>` : ''}
${v.sources.map((s) => {
    const marked = markFindings(s.text, s.findings);
    return html`<div class="card" data-content="${s.ref}"><b class="mono">${s.ref}</b> <span class="muted">${s.label} · ${s.count} volatile value${s.count === 1 ? '' : 's'}${
      s.count > marked.shown ? ` (${marked.shown} marked)` : ''
    }${marked.cut ? ' · showing the first 64 KiB' : ''}</span>
<pre class="content" tabindex="0" data-scroll>${marked.body}</pre></div>`;
  })}
${v.batches?.volatileNotShown ? html`<p class="muted" data-volatile-not-shown="${v.batches.volatileNotShown}">${tokens(v.batches.volatileNotShown)} more listed batch${v.batches.volatileNotShown === 1 ? ' holds' : 'es hold'} volatile values (counted in the table): the content of ${v.sources.length} sources is shown, the base's, then the newest batches'.</p>` : ''}
${composite && !v.deleted && v.sources.length === 0 ? html`<p class="muted">No source of the latest version holds volatile values.</p>` : ''}`;
}

/** Where a page of a session's batches is: its `?batches=` link (the period kept), or the newest page. */
const batchesHref = (v: HandleView, through: number | null) => `/ui/handles/${v.report.handle.id}?${v.span.query}${through === null ? '' : `&batches=${through}`}#content`;

/** Above a session's table when it lists only some of its batches: which ones, of how many. */
function batchesNote(v: HandleView): Html | string {
  const b = v.batches;
  if (!b || (b.before === 0 && b.after === 0)) return '';
  const shown = b.total - b.before - b.after;
  const range = shown === 1 ? `batch ${tokens(b.before + 1)}` : `batches ${tokens(b.before + 1)}–${tokens(b.before + shown)}`;
  const links = [
    b.olderThrough !== null ? html`<a href="${batchesHref(v, b.olderThrough)}" data-batches-link="older">Older batches</a>` : null,
    b.after ? html`<a href="${batchesHref(v, b.newerThrough)}" data-batches-link="newer">Newer batches</a>` : null,
    b.after && b.newerThrough !== null ? html`<a href="${batchesHref(v, null)}" data-batches-link="newest">The newest</a>` : null,
  ].filter((l) => l !== null);
  return html`<p class="muted" data-batches-shown="${shown}" data-batches="${b.total}" data-batches-before="${b.before}">Listed: ${b.baseCount ? html`the session's base, then ` : ''}${range} of ${tokens(b.total)}${
    b.after ? '' : ', the newest'
  } (one batch per append, ${BATCHES_SHOWN} a page). ${links.map((l, i) => html`${i ? ' · ' : ''}${l}`)}</p>`;
}

/** The batches a session's table leaves out, before or after the ones it lists, as one row with its link. */
function gapRow(v: HandleView, side: 'before' | 'after'): Html | string {
  const b = v.batches!;
  const n = side === 'before' ? b.before : b.after;
  if (!n) return '';
  return side === 'before'
    ? html`<tr data-batches-gap="before"><td class="num">…</td><td colspan="3" class="muted">${tokens(n)} earlier batch${n === 1 ? '' : 'es'}${b.olderThrough !== null ? html` · <a href="${batchesHref(v, b.olderThrough)}">show the older ones</a>` : ''}</td></tr>`
    : html`<tr data-batches-gap="after"><td class="num">…</td><td colspan="3" class="muted">${tokens(n)} later batch${n === 1 ? '' : 'es'} · <a href="${batchesHref(v, b.newerThrough)}">show the newer ones</a></td></tr>`;
}
