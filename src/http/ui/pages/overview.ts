// The tenant's overview: the waterfall for a period, money, and handles by leaked money.

import { html } from 'hono/html';
import type { NoHandleFigures, Reports } from '../../../domain/reconcile/reports';
import type { ModelEntry } from '../../../domain/catalog/types';
import { LEAK_ROWS, legend, waterfallChart } from '../charts';
import { PERIODS, tok, tokens, usd, type Period } from '../format';
import { biggestLeak, costNote, leakedByClass, liveStatus, periodChooser, rateBar, summary, type Html } from './parts';

/** The tenant report, and its calls through no handle per model (which agent sends its prompt inline). */
export type TenantReport = ReturnType<Reports['tenant']> & { no_handle_models: ReturnType<Reports['noHandleByModel']> };

/** Rows shown in the handle ranking; the API has them all. */
export const MAX_ROWS = 200;

/** `entries`: the catalog entries of the tenant's latest requests, whose rules the legend explains. */
export function overviewPage(report: TenantReport, period: Period, entries?: ModelEntry[]): Html {
  return html`<h1>Reuse overview</h1>
<p class="sub">How much prompt-cache reuse your handles made possible (opportunity), how much the provider confirmed (captured), and where the rest leaked.</p>
<div class="toolbar">${periodChooser('/ui', period)} ${liveStatus()}</div>
<section data-live data-fragment="/ui/fragments/overview?period=${period}" data-events="/ui/events">${overviewLive(report, period, entries)}</section>
<h2>Open a request</h2>
<form class="inline" method="get" action="/ui/requests"><label for="rid" class="muted">Request id</label><input id="rid" name="id" placeholder="req_…" required><button type="submit">Open</button></form>`;
}

/** The part the live view re-fetches when a report is reconciled. */
export function overviewLive(report: TenantReport, period: Period, entries?: ModelEntry[]): Html {
  const rows = report.handles.slice(0, MAX_ROWS);
  return html`<p class="muted">${PERIODS[period].label} (whole UTC days from ${report.range.from ? report.range.from.slice(0, 10) : 'the start'} to ${report.range.to.slice(0, 10)}).</p>
${summary(report)}
<div class="card"><h2 style="margin-top:0">Reuse waterfall</h2>
${report.tokens.referenced ? '' : html`<p class="empty">${noHandleYet(report.no_handle.requests)} Call your model through the proxy with a handle (<code>x-ph-prefix</code>, <code>x-ph-session</code>), or render a request with one and report its usage (<code>POST /v1/usage</code>): the README's “Your agent through the proxy, in five steps” shows how.</p>`}
${waterfallChart(report.tokens, `Reuse waterfall, ${PERIODS[period].label.toLowerCase()}`)}
${legend(['cold', ...LEAK_ROWS, 'captured', 'bonus'], { entries })}
${leakedByClass(report)}</div>
${noHandleSection(report.no_handle, report.no_handle_models)}
<h2>Handles by leaked money</h2>
${rows.length
    ? html`<table data-table="handles"><thead><tr><th>#</th><th>Handle</th><th class="num">Leaked</th><th>Biggest leak</th><th>Capture rate</th><th class="num">Requests</th><th class="num">Referenced</th><th class="num">Opportunity</th><th class="num">Captured</th><th class="num">Realised</th></tr></thead><tbody>
${rows.map(
        (h, i) => html`<tr data-handle="${h.id}"><td class="num">${i + 1}</td>
<td>${h.name
    ? html`<a href="/ui/handles/${h.id}?period=${period}"><bdi>${h.name}</bdi></a><br><small class="muted"><span class="mono">${h.id}</span> · `
    : html`<a href="/ui/handles/${h.id}?period=${period}" class="mono">${h.id}</a><br><small class="muted">`}${h.kind ?? h.type ?? 'unknown'}${h.deleted ? html` · <span class="notice" data-deleted>deleted</span>` : ''}</small></td>
<td class="num" data-value="${h.money.leaked_savings}">${usd(h.money.leaked_savings)}</td><td>${biggestLeak(h)}</td>
<td class="rate-cell">${rateBar(h.capture_rate)}</td>
<td class="num">${tokens(h.requests)}</td><td class="num">${tok(h.tokens.referenced ?? 0)}</td><td class="num">${tok(h.tokens.opportunity ?? 0)}</td><td class="num">${tok(h.tokens.captured ?? 0)}</td>
<td class="num" data-value="${h.money.realised_savings}">${usd(h.money.realised_savings)}</td></tr>`,
      )}</tbody></table>${report.handles_total > rows.length ? html`<p class="muted">Showing the ${rows.length} handles that leaked most of ${report.handles_total}.</p>` : ''}`
    : html`<p class="empty">No handle was used in a reconciled request in this period.</p>`}`;
}

/** Why the waterfall is empty: no call at all, or calls that all went through no handle (counted below it). */
const noHandleYet = (calls: number): string =>
  calls ? `No reconciled request in this period referenced a handle: the ${tokens(calls)} call${calls === 1 ? '' : 's'} under “Calls through no handle” sent their whole prompt inline.` : 'No reconciled requests in this period yet.';

/** One figure of the calls through no handle, its exact value in data attributes (the tests compare them with the API). */
const figure = (key: string, label: string, value: number, shown: string, note?: string): Html =>
  html`<div class="metric" data-no-handle="${key}" data-value="${value}"><dt>${label}</dt><dd>${shown}${note ? html` <small>${note}</small>` : ''}</dd></div>`;

/**
 * The calls that named no handle: on no handle's report and not in the figures above, but what they repeat is the reuse
 * a handle would let the provider read.
 */
function noHandleSection(n: NoHandleFigures, models: TenantReport['no_handle_models']): Html {
  if (!n.requests) return html`<h2>Calls through no handle</h2><p class="muted" data-no-handle="none">Every call reconciled in this period referenced a handle.</p>`;
  const m = n.money;
  return html`<h2>Calls through no handle</h2>
<p class="muted">Calls whose whole prompt was inline: on no handle's report and not in the figures above. What they repeat could be a handle's prefix (<code>prefix-handles suggest</code> on a log of them names it).</p>
<dl class="metrics" data-no-handle-figures>
${figure('requests', 'Calls', n.requests, tokens(n.requests))}
${figure('tokens.prompt', 'Prompt tokens', n.tokens.prompt, tok(n.tokens.prompt))}
${figure('tokens.repeated', 'Repeated', n.tokens.repeated, tok(n.tokens.repeated), 'a prefix the same cache scope was sent before')}
${figure('tokens.cache_read', 'Read from cache', n.tokens.cache_read, tok(n.tokens.cache_read), 'by the provider')}
${figure('money.actual_input_cost', 'Input cost', m.actual_input_cost, usd(m.actual_input_cost), m.unknown_capture_input_cost ? `and ${usd(m.unknown_capture_input_cost)} without cache fields` : costNote(m.actual_input_cost, m.cost_without_caching))}
${figure('money.write_premiums_unread', 'Unread write premiums', m.write_premiums_unread, usd(m.write_premiums_unread), `and ${usd(m.write_premiums_pending)} still within their TTL`)}
</dl>
<table data-table="no-handle-models"><thead><tr><th>Model</th><th class="num">Calls</th><th class="num">Prompt tokens</th><th class="num">Repeated</th><th class="num">Read from cache</th><th class="num">Input cost</th></tr></thead><tbody>
${models.map(
    (x) => html`<tr data-no-handle-model="${x.model}"><td data-model><bdi>${x.model}</bdi></td><td class="num">${tokens(x.requests)}</td><td class="num">${tok(x.tokens.prompt)}</td><td class="num">${tok(x.tokens.repeated)}</td><td class="num">${tok(x.tokens.cache_read)}</td><td class="num" data-value="${x.money.actual_input_cost}">${usd(x.money.actual_input_cost)}</td></tr>`,
  )}</tbody></table>`;
}
