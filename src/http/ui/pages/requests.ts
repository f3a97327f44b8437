// The tenant's requests with tokens of one class (on one type's handles), sent to one model, or through no handle, in a
// period: where the overview's leak figures and its calls through no handle lead.

import { html } from 'hono/html';
import type { ReportRange } from '../../../domain/reconcile/reports';
import { CLASS_INFO } from '../charts';
import { daysIn, tokens, type Span, type SpanChoice } from '../format';
import { filterHeading, filterQuery, filterWords, periodChooser, requestsTable, startedWords, TYPE_PLURAL, type Html, type ListFilter, type RequestLine } from './parts';

export interface RequestsView extends ListFilter {
  choice: SpanChoice;
  span: Span;
  range: ReportRange;
  rows: RequestLine[];
  /** The API's next page has more to read; `budgetSpent`: this one stopped at the scan budget, after `scanned` requests. */
  more: boolean;
  budgetSpent: boolean;
  scanned: number;
}

export function requestsPage(v: RequestsView): Html {
  const words = filterWords(v);
  const from = v.span.from;
  const to = v.span.period ? undefined : v.span.to;
  const api = `GET /v1/requests?${filterQuery(v).slice(1)}${from ? `&from=${from}` : ''}${to ? `&to=${to}` : ''}`;
  // A class or the calls through no handle: what the reports count, so reconciled requests only.
  const reconciled = !!v.cls || !!v.noHandle;
  const where = v.type ? `on the segments of ${TYPE_PLURAL[v.type]} (their tokens added up)` : "on a handle's segments (inline content is no handle's)";
  const holding = [
    v.cls ? `with tokens of ${CLASS_INFO[v.cls]?.label ?? v.cls} ${where}` : '',
    v.noHandle ? 'that named no handle, their whole prompt inline' : '',
    v.model === undefined ? '' : `sent to ${v.model}`,
  ]
    .filter(Boolean)
    .join(', ');
  return html`<h1>Requests ${filterHeading(v)}</h1>
<p class="sub">The ${reconciled ? 'reconciled requests' : 'recorded requests (reconciled, not yet reported, or failed)'} ${holding}, newest start first${reconciled ? `: those the overview's ${v.noHandle ? '“Calls through no handle”' : 'figures'} count` : ''}. <a href="/ui?${v.span.query}">Back to the overview</a></p>
<div class="toolbar">${periodChooser('/ui/requests', v.choice, v)}</div>
<p class="muted" data-span>${v.span.label} (${daysIn(v.span.zone)}): started ${startedWords(from, to)}, as of this page load (all of them: <code>${api}</code>).</p>
${v.more ? html`<p class="muted" data-class-more>${v.budgetSpent ? `The page read the latest ${tokens(v.scanned)} requests (the most one page reads) and lists ${tokens(v.rows.length)} ${words}; older ones` : `The latest ${tokens(v.rows.length)}; more`}: the API's <code>next_cursor</code>.</p>` : ''}
${v.rows.length === 0
    ? v.more
      ? ''
      : html`<p class="muted" data-requests-none>No ${reconciled ? 'reconciled ' : ''}request ${words}${v.cls && !v.type ? ' on a handle' : ''} ${from ? 'in this period' : 'yet'}.</p>`
    : requestsTable(v.rows, v.noHandle ? 'prompt' : html`Tokens by class (${v.type ? `${TYPE_PLURAL[v.type]}'` : "every handle's"})`)}`;
}
