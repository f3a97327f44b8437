// The tenant's requests with tokens of one class, or sent to one model, in a period: where the overview's leak figures lead.

import { html } from 'hono/html';
import type { ReportRange } from '../../../domain/reconcile/reports';
import { CLASS_INFO } from '../charts';
import { PERIODS, tokens, type Period } from '../format';
import { filterHeading, filterQuery, filterWords, periodChooser, requestsTable, type Html, type RequestLine } from './parts';

export interface RequestsView {
  /** The filter: a class, a model, or both (at least one). */
  cls?: string;
  model?: string;
  period: Period;
  range: ReportRange;
  rows: RequestLine[];
  /** The API's next page has more to read; `budgetSpent`: this one stopped at the scan budget, after `scanned` requests. */
  more: boolean;
  budgetSpent: boolean;
  scanned: number;
}

export function requestsPage(v: RequestsView): Html {
  const words = filterWords(v);
  const from = v.range.from === undefined ? undefined : new Date(v.range.from).toISOString().slice(0, 10);
  const api = `GET /v1/requests?${filterQuery(v).slice(1)}${from ? `&from=${from}` : ''}`;
  const holding = [v.cls ? `with tokens of ${CLASS_INFO[v.cls]?.label ?? v.cls} on a handle's segments (inline content is no handle's)` : '', v.model === undefined ? '' : `sent to ${v.model}`].filter(Boolean).join(', ');
  return html`<h1>Requests ${filterHeading(v)}</h1>
<p class="sub">The ${v.cls ? 'reconciled requests' : 'recorded requests (reconciled, not yet reported, or failed)'} ${holding}, newest start first${v.cls ? ": those the overview's figures count" : ''}. <a href="/ui?period=${v.period}">Back to the overview</a></p>
<div class="toolbar">${periodChooser('/ui/requests', v.period, filterQuery(v))}</div>
<p class="muted">${PERIODS[v.period].label}: started ${from ? `since ${from}` : 'at any time'}, as of this page load (all of them: <code>${api}</code>).</p>
${v.more ? html`<p class="muted" data-class-more>${v.budgetSpent ? `The page read the latest ${tokens(v.scanned)} requests (the most one page reads) and lists ${tokens(v.rows.length)} ${words}; older ones` : `The latest ${tokens(v.rows.length)}; more`}: the API's <code>next_cursor</code>.</p>` : ''}
${v.rows.length === 0
    ? v.more
      ? ''
      : html`<p class="muted" data-requests-none>No ${v.cls ? 'reconciled ' : ''}request ${words}${v.cls ? ' on a handle' : ''} ${from ? 'in this period' : 'yet'}.</p>`
    : requestsTable(v.rows, html`Tokens by class (every handle's)`)}`;
}
