// The tenant's overview: the waterfall for a period, money, and handles by leaked money.

import { html } from 'hono/html';
import type { NoHandleFigures, Reports, Totals } from '../../../domain/reconcile/reports';
import type { ModelEntry } from '../../../domain/catalog/types';
import { captureTrendChart, leakedTrendChart, LEAK_ROWS, legend, waterfallChart, type DayPoint } from '../charts';
import { dayIn, tok, tokens, usd, type Span, type SpanChoice } from '../format';
import { biggestLeak, costNote, leakedByClass, liveStatus, noHandleLink, periodChooser, rateBar, requestsLink, spanLine, summary, type Html } from './parts';

/** The sessions of a period as one: how many, and their own reports added up. */
type SessionTotals = ReturnType<Reports['typeTotals']>;

/**
 * The tenant report ranking artifacts and bundles, its calls through no handle per model (which agent sends its prompt
 * inline), its sessions as one, and its totals per day of `daysLabel`.
 */
export type TenantReport = ReturnType<Reports['tenant']> & { no_handle_models: ReturnType<Reports['noHandleByModel']>; sessions: SessionTotals; days: DayPoint[]; daysLabel: string };

/** The tenant report ranking sessions only, and their figures summed. */
export type SessionsReport = ReturnType<Reports['tenant']> & { sessions: SessionTotals };

/** Rows shown in the handle ranking; the API has them all. */
export const MAX_ROWS = 200;

/** `entries`: the catalog entries of the tenant's latest requests, whose rules the legend explains. */
export function overviewPage(report: TenantReport, choice: SpanChoice, entries?: ModelEntry[]): Html {
  const span = choice.span;
  return html`<h1>Reuse overview</h1>
<p class="sub">How much prompt-cache reuse your handles made possible (opportunity), how much the provider confirmed (captured), and where the rest leaked.</p>
<div class="toolbar">${periodChooser('/ui', choice)} ${liveStatus()}</div>
<section data-live data-fragment="/ui/fragments/overview?${span.query}" data-events="/ui/events">${overviewLive(report, span, entries)}</section>
<h2>Open a request</h2>
<form class="inline" method="get" action="/ui/requests"><label for="rid" class="muted">Request id</label><input id="rid" name="id" placeholder="req_…" required><button type="submit">Open</button></form>`;
}

/** The part the live view re-fetches when a report is reconciled. */
export function overviewLive(report: TenantReport, span: Span, entries?: ModelEntry[]): Html {
  const rows = report.handles.slice(0, MAX_ROWS);
  return html`<p class="muted" data-span>${spanLine(span, report.range)}.</p>
${summary(report)}
<div class="card"><h2 style="margin-top:0">Reuse waterfall</h2>
${report.tokens.referenced ? '' : html`<p class="empty">${noHandleYet(report.no_handle.requests, span)} Call your model through the proxy with a handle (<code>x-ph-prefix</code>, <code>x-ph-session</code>), or render a request with one and report its usage (<code>POST /v1/usage</code>): the README's “Your agent through the proxy, in five steps” shows how.</p>`}
${waterfallChart(report.tokens, `Reuse waterfall, ${span.period ? span.label.toLowerCase() : span.label}`, requestsLink(span))}
${legend(['cold', ...LEAK_ROWS, 'captured', 'bonus'], { entries })}
${leakedByClass(report, requestsLink(span))}</div>
${perDayCard(report, span.zone)}
${noHandleSection(report.no_handle, report.no_handle_models, span)}
<h2>Handles by leaked money <small><a href="/ui/reports.csv?${span.query}" data-csv download>Download CSV</a></small></h2>
${report.sessions.handles_total ? html`<p class="muted">Artifacts and bundles, each on its own row; sessions (one per conversation) summed into one, whose link ranks them.</p>` : ''}
${rows.length || report.sessions.handles_total
    ? html`${ranking(rows, span, report.sessions)}${report.handles_total > rows.length ? html`<p class="muted">Showing the ${rows.length} artifacts and bundles that leaked most of ${report.handles_total}.</p>` : ''}`
    : html`<p class="empty">No handle was used in a reconciled request in this period.</p>`}`;
}

/** The sessions' page: their figures summed, then each by leaked money. */
export function sessionsPage(report: SessionsReport, choice: SpanChoice): Html {
  const span = choice.span;
  return html`<h1>Sessions</h1>
<p class="sub">One handle per conversation: their figures summed (each session's own report, added up), then each session by leaked money. <a href="/ui?${span.query}">Back to the overview</a></p>
<div class="toolbar">${periodChooser('/ui/sessions', choice)} ${liveStatus()}</div>
<section data-live data-fragment="/ui/fragments/sessions?${span.query}" data-events="/ui/events">${sessionsLive(report, span)}</section>`;
}

/** The part of the sessions' page the live view re-fetches. */
export function sessionsLive(report: SessionsReport, span: Span): Html {
  const rows = report.handles.slice(0, MAX_ROWS);
  const n = report.sessions.handles_total;
  return html`<p class="muted" data-span>${spanLine(span, report.range)}: <b data-sessions-count="${n}">${tokens(n)} session${n === 1 ? '' : 's'}</b> with figures.</p>
${summary(report.sessions)}
<h2>Sessions by leaked money</h2>
${rows.length
    ? html`${ranking(rows, span)}${report.handles_total > rows.length ? html`<p class="muted">Showing the ${rows.length} sessions that leaked most of ${report.handles_total}; <code>GET /v1/reports?type=session</code> lists them all.</p>` : ''}`
    : html`<p class="empty">No session was used in a reconciled request in this period.</p>`}`;
}

/** The tenant's capture rate and leaked money per day (of its time zone): whether a change helped, and which day lost the most. */
function perDayCard(report: TenantReport, zone: string): Html {
  return html`<div class="card" data-per-day><h2 style="margin-top:0">Per day <small class="muted">(the figures above, per ${dayIn(zone)}, ${report.daysLabel}; hatched: a day with unknown capture)</small></h2>
<h3>Capture rate</h3>
${captureTrendChart(report.days, 'Capture rate per day, all handles')}
<h3>Leaked savings (USD)</h3>
${leakedTrendChart(report.days, 'Leaked savings per day, all handles')}${
    (report.tokens.opportunity ?? 0) + (report.tokens.unknown ?? 0) > 0 && report.days.every((d) => d.opportunity === 0 && d.unknown === 0)
      ? html`<p class="muted" data-notice="no-days">No reuse on these days: the figures above come from older days (imported history), which the charts do not draw.</p>`
      : ''
  }</div>`;
}

type RankedHandle = ReturnType<Reports['tenant']>['handles'][number];

const HEAD = html`<thead><tr><th>#</th><th>Handle</th><th class="num">Leaked</th><th>Biggest leak</th><th>Capture rate</th><th class="num">Requests</th><th class="num">Referenced</th><th class="num">Opportunity</th><th class="num">Captured</th><th class="num">Realised</th></tr></thead>`;

/**
 * Handles by leaked money, the API's order; with `sessions`, the sessions as one row at the rank their summed leak
 * takes (after handles that leaked as much), or last when every handle shown leaked more.
 */
function ranking(rows: RankedHandle[], span: Span, sessions?: SessionTotals): Html {
  const at = sessions?.handles_total ? rows.findIndex((h) => h.money.leaked_savings < sessions.money.leaked_savings) : -1;
  const groupAt = !sessions?.handles_total ? null : at === -1 ? rows.length : at;
  // A handle's biggest leak leads to its requests with it; the sessions' row's, to the requests with it on any session's segments.
  const cells = (t: Totals, handle?: string) => html`<td class="num" data-value="${t.money.leaked_savings}">${usd(t.money.leaked_savings)}</td><td>${biggestLeak(t, requestsLink(span, handle ? { handle } : { type: 'session' }))}</td>
<td class="rate-cell">${rateBar(t.capture_rate)}</td>
<td class="num">${tokens(t.requests)}</td><td class="num">${tok(t.tokens.referenced ?? 0)}</td><td class="num">${tok(t.tokens.opportunity ?? 0)}</td><td class="num">${tok(t.tokens.captured ?? 0)}</td>
<td class="num" data-value="${t.money.realised_savings}">${usd(t.money.realised_savings)}</td>`;
  const group = (rank: number) =>
    html`<tr data-group="session" data-count="${sessions!.handles_total}"><td class="num">${rank}</td>
<td><a href="/ui/sessions?${span.query}">${tokens(sessions!.handles_total)} session${sessions!.handles_total === 1 ? '' : 's'}</a><br><small class="muted">summed: each session's own report, added up</small></td>
${cells(sessions!)}</tr>`;
  const row = (h: RankedHandle, rank: number) => html`<tr data-handle="${h.id}"><td class="num">${rank}</td>
<td>${h.name
    ? html`<a href="/ui/handles/${h.id}?${span.query}"><bdi>${h.name}</bdi></a><br><small class="muted"><span class="mono">${h.id}</span> · `
    : html`<a href="/ui/handles/${h.id}?${span.query}" class="mono">${h.id}</a><br><small class="muted">`}${h.kind ?? h.type ?? 'unknown'}${h.deleted ? html` · <span class="notice" data-deleted>deleted</span>` : ''}</small></td>
${cells(h, h.id)}</tr>`;
  const rank = (i: number) => i + 1 + (groupAt !== null && i >= groupAt ? 1 : 0);
  return html`<table data-table="handles">${HEAD}<tbody>
${rows.map((h, i) => html`${groupAt === i ? group(i + 1) : ''}${row(h, rank(i))}`)}${groupAt === rows.length ? group(rows.length + 1) : ''}</tbody></table>`;
}

/**
 * Why the waterfall is empty: no call at all, or calls that all went through no handle (counted below it). A period
 * reaches today, so it may have calls later; a chosen range is said as what it was.
 */
const noHandleYet = (calls: number, span: Span): string => {
  const where = span.period ? 'this period' : 'this range';
  return calls
    ? `No reconciled request in ${where} referenced a handle: the ${tokens(calls)} call${calls === 1 ? '' : 's'} under “Calls through no handle” sent their whole prompt inline.`
    : `No reconciled requests in ${where}${span.period ? ' yet' : ''}.`;
};

/** One figure of the calls through no handle, its exact value in data attributes (the tests compare them with the API). */
const figure = (key: string, label: string, value: number, shown: Html | string, note?: string): Html =>
  html`<div class="metric" data-no-handle="${key}" data-value="${value}"><dt>${label}</dt><dd>${shown}${note ? html` <small>${note}</small>` : ''}</dd></div>`;

/** A count of calls through no handle, leading to those calls (of `model` when given) in the period shown. */
const callsLink = (n: number, span: Span, model?: string): Html => (n > 0 ? html`<a href="${noHandleLink(span, model)}" data-no-handle-link>${tokens(n)}</a>` : html`${tokens(n)}`);

/**
 * The calls that named no handle: on no handle's report and not in the figures above, but what they repeat is the reuse
 * a handle would let the provider read. Each count of calls links to those calls, to see what to mint.
 */
function noHandleSection(n: NoHandleFigures, models: TenantReport['no_handle_models'], span: Span): Html {
  if (!n.requests) return html`<h2>Calls through no handle</h2><p class="muted" data-no-handle="none">Every call reconciled in this period referenced a handle.</p>`;
  const m = n.money;
  return html`<h2>Calls through no handle</h2>
<p class="muted">Calls whose whole prompt was inline: on no handle's report and not in the figures above. What they repeat could be a handle's prefix (<code>prefix-handles suggest</code> on a log of them names it); each count of calls lists them.</p>
<dl class="metrics" data-no-handle-figures>
${figure('requests', 'Calls', n.requests, callsLink(n.requests, span))}
${figure('tokens.prompt', 'Prompt tokens', n.tokens.prompt, tok(n.tokens.prompt))}
${figure('tokens.repeated', 'Repeated', n.tokens.repeated, tok(n.tokens.repeated), 'a prefix the same cache scope was sent before')}
${figure('tokens.cache_read', 'Read from cache', n.tokens.cache_read, tok(n.tokens.cache_read), 'by the provider')}
${figure('money.actual_input_cost', 'Input cost', m.actual_input_cost, usd(m.actual_input_cost), m.unknown_capture_input_cost ? `and ${usd(m.unknown_capture_input_cost)} without cache fields` : costNote(m.actual_input_cost, m.cost_without_caching))}
${figure('money.write_premiums_unread', 'Unread write premiums', m.write_premiums_unread, usd(m.write_premiums_unread), `and ${usd(m.write_premiums_pending)} still within their TTL`)}
</dl>
<table data-table="no-handle-models"><thead><tr><th>Model</th><th class="num">Calls</th><th class="num">Prompt tokens</th><th class="num">Repeated</th><th class="num">Read from cache</th><th class="num">Input cost</th></tr></thead><tbody>
${models.map(
    (x) => html`<tr data-no-handle-model="${x.model}"><td data-model><bdi>${x.model}</bdi></td><td class="num">${callsLink(x.requests, span, x.model)}</td><td class="num">${tok(x.tokens.prompt)}</td><td class="num">${tok(x.tokens.repeated)}</td><td class="num">${tok(x.tokens.cache_read)}</td><td class="num" data-value="${x.money.actual_input_cost}">${usd(x.money.actual_input_cost)}</td></tr>`,
  )}</tbody></table>`;
}
