// Pieces several pages share: the period chooser, the live status line,
// metric cards, and the money/token summary of a report.

import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { Totals } from '../../../domain/reconcile/reports';
import { CLASSES, type MoneyLeak } from '../../../domain/reconcile/waterfall';
import { parseRef, type HandleType } from '../../../domain/ids';
import { earlierReasoningAdvice, earlierReasoningDropped, REASONING_CONTEXT_RULE, reasoningContextChanged } from '../../../domain/thinking';
import { DAY_MS, FIRST_DAY, PERIODS, day, daysIn, pct, periodSpan, ratio, tok, tokens, usd, when, type Period, type Span, type SpanChoice } from '../format';
import { dayOf as localDay } from '../../../domain/time-zone';
import type { requestSummaryView } from '../../views';
import { CLASS_INFO, LEAK_ROWS, swatch, type ClassLink } from '../charts';

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/**
 * The periods as links, the ranges a user reaches for (this month, last month), and a form of two days (the tenant's) for any
 * other range; a refused range's reason at the form. `keep`: the page's list filter (`&class=drift`), kept as the span
 * changes; `hash`: where the page opens.
 */
export function periodChooser(path: string, choice: SpanChoice, keep: ListFilter = {}, hash = ''): Html {
  const current = choice.error ? null : choice.span;
  const query = `${filterQuery(keep)}${hash}`;
  const link = (span: Span, text: string, title: string) =>
    html`<a href="${path}?${span.query}${query}" ${current?.query === span.query ? html`aria-current="page"` : ''} title="${title}">${text}</a>`;
  const invalid = (field: 'from' | 'to') => (choice.error?.field === field ? html` aria-invalid="true" aria-describedby="range-error"` : '');
  const hidden: Array<[string, string | undefined]> = [['no_handle', keep.noHandle ? 'true' : undefined], ['type', keep.type], ['class', keep.cls], ['model', keep.model]];
  return html`<nav class="periods" aria-label="Period">${(Object.keys(PERIODS) as Period[]).map((p) => link(periodSpan(p, 0), p, PERIODS[p].label))}</nav>
<nav class="periods" aria-label="Months">${choice.presets.map((x) => link(x.span, x.label, `${x.span.label} (${daysIn(x.span.zone)})`))}</nav>
<form class="range" method="get" action="${path}${hash}" aria-label="Range of ${daysIn(choice.span.zone)}">${hidden.map(([name, value]) => (value === undefined ? '' : html`<input type="hidden" name="${name}" value="${value}">`))}
<label for="range-from">From</label><input type="date" id="range-from" name="from" value="${choice.from}" min="${FIRST_DAY}" max="${choice.today}"${invalid('from')}>
<label for="range-to">to</label><input type="date" id="range-to" name="to" value="${choice.to}" min="${FIRST_DAY}" max="${choice.today}"${invalid('to')}>
<button type="submit">Show</button><small class="muted">${capitalized(daysIn(choice.span.zone))}, both included</small></form>
${choice.error ? html`<p class="error" id="range-error" role="alert" data-range-error="${choice.error.field}">${choice.error.message}.</p>` : ''}${choice.note ? html`<p class="notice" data-range-note>${choice.note}.</p>` : ''}`;
}

/** When a list's requests started: "since 2026-11-01", "from 2026-11-01 to 2026-11-30", "at any time". */
export const startedWords = (from: string | undefined, to: string | undefined): string =>
  from ? (to ? `from ${from} to ${to}` : `since ${from}`) : to ? `up to ${to}` : 'at any time';

/**
 * A span's days as a page says them: "Last 7 days (whole UTC days from 2026-11-30 to 2026-12-06)", or "(whole days in
 * America/Los_Angeles from …)": the report's range named by the days of the tenant's zone.
 */
export const spanLine = (span: Span, range: { from: string | null; to: string }): string => {
  const name = (iso: string) => day(localDay(Date.parse(iso), span.zone) * DAY_MS);
  return `${span.label} (whole ${daysIn(span.zone)} from ${range.from ? name(range.from) : 'the start'} to ${name(range.to)})`;
};

const capitalized = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

export function liveStatus(): Html {
  return html`<span class="live" aria-live="polite"><span class="dot" aria-hidden="true"></span><span data-live-status>Connecting to live updates…</span> <span data-live-last class="mono"></span></span>`;
}

/** One figure with its exact value in data attributes (the tests compare them with the API). */
export function metric(key: string, label: string, value: number | null, shown: string, opts: { tone?: 'good' | 'bad'; note?: Html | string } = {}): Html {
  return html`<div class="metric ${opts.tone ?? ''}" data-metric="${key}" data-value="${value ?? ''}"><dt>${label}</dt><dd>${shown}${opts.note ? html` <small>${opts.note}</small>` : ''}</dd></div>`;
}

/** The headline figures of a report: tokens, capture and money. */
export function summary(t: Totals): Html {
  const m = t.money;
  return html`<dl class="metrics">
${metric('requests', 'Requests', t.requests, tokens(t.requests), {
  // Those with tokens of the unknown class: not every call without cache fields (one whose tokens were all cold or
  // expired has none), so not called that (it read "4 without cache fields" where 6 were).
  note: t.requests_with.unknown ? html`<span data-note="unknown" title="requests with tokens of unknown capture: their provider reported no cache fields (a call without them whose tokens were all cold or expired is not counted here)">${tokens(t.requests_with.unknown!)} with unknown tokens (no cache fields)</span>` : '',
})}
${metric('tokens.referenced', 'Referenced', t.tokens.referenced ?? 0, tok(t.tokens.referenced ?? 0), { note: 'sent from handles' })}
${metric('tokens.opportunity', 'Opportunity', t.tokens.opportunity ?? 0, tok(t.tokens.opportunity ?? 0), { note: 'sent before in the same cache scope: could be read from cache (the rest is cold, a first send)' })}
${metric('tokens.captured', 'Captured', t.tokens.captured ?? 0, tok(t.tokens.captured ?? 0), { note: 'read from cache, as the provider confirmed' })}
${metric('capture_rate', 'Capture rate', t.capture_rate, pct(t.capture_rate), {
  // The denominator is named when it is not the opportunity shown beside it (some requests had no cache report).
  note:
    (t.tokens.reported_opportunity ?? 0) !== (t.tokens.opportunity ?? 0)
      ? `captured ÷ the ${tok(t.tokens.reported_opportunity ?? 0)} of opportunity with a cache report`
      : 'captured ÷ opportunity',
})}
</dl>
<dl class="metrics">
${metric('money.realised_savings', 'Realised savings (USD)', m.realised_savings, usd(m.realised_savings), {
  // Below zero, caching cost more than it saved: write premiums that no read paid back.
  tone: m.realised_savings < 0 ? 'bad' : 'good',
  note: m.realised_savings < 0 ? 'vs. no caching: the write premiums cost more than the reads saved' : 'vs. no caching',
})}
${metric('money.leaked_savings', 'Leaked savings (USD)', m.leaked_savings, usd(m.leaked_savings), { tone: 'bad', note: 'vs. perfect capture' })}
${metric('money.actual_input_cost', 'Input cost paid', m.actual_input_cost, usd(m.actual_input_cost), { note: costNote(m.actual_input_cost, m.cost_without_caching) })}
${metric('money.cost_at_perfect_capture', 'At perfect capture', m.cost_at_perfect_capture, usd(m.cost_at_perfect_capture))}
${metric('money.unknown_capture_input_cost', 'Unknown capture', m.unknown_capture_input_cost, usd(m.unknown_capture_input_cost), { note: 'paid without cache fields; not in leaked' })}
${metric('money.write_premiums_unread', 'Unread write premiums', m.write_premiums_unread, usd(m.write_premiums_unread), { note: `of ${usd(m.write_premiums_paid)} paid${m.write_premiums_pending ? `; ${usd(m.write_premiums_pending)} more still within TTL` : ''}` })}
</dl>`;
}

/**
 * Where a leak figure leads: the requests holding that class in the period shown, the tenant's (`/ui/requests?class=`),
 * one handle's (`handle`, of `model` when given) or those on the segments of the handles of one type (`type`: the
 * overview's sessions row). Only the classes the list filters by (not the totals, referenced and opportunity), and
 * none for 0 tokens.
 */
export const requestsLink =
  (span: Span, on: { handle?: string; model?: string; type?: HandleType } = {}): ClassLink =>
  (cls, n) =>
    n > 0 && (CLASSES as readonly string[]).includes(cls)
      ? `/ui/requests?${on.handle ? `handle=${on.handle}&` : ''}${on.type ? `type=${on.type}&` : ''}class=${cls}&${span.query}${filterQuery({ model: on.model })}`
      : undefined;

/** The calls through no handle in the period shown (of `model` when given): the overview's "Calls through no handle". */
export const noHandleLink = (span: Span, model?: string) => `/ui/requests?no_handle=true&${span.query}${filterQuery({ model })}`;

/** A list's filter: a class (on one type's handles with `type`), a model, the calls through no handle. */
export interface ListFilter {
  cls?: string;
  type?: HandleType;
  model?: string;
  noHandle?: boolean;
}

/** A list's filter as query parameters (`&type=session&class=drift&model=…`), kept as its period changes. */
export const filterQuery = (f: ListFilter) =>
  `${f.noHandle ? '&no_handle=true' : ''}${f.type ? `&type=${f.type}` : ''}${f.cls ? `&class=${f.cls}` : ''}${f.model === undefined ? '' : `&model=${encodeURIComponent(f.model)}`}`;

/** Handles of a type, as a list names them ("on sessions"). */
export const TYPE_PLURAL: Record<HandleType, string> = { artifact: 'artifacts', bundle: 'bundles', session: 'sessions' };

const classWords = (f: ListFilter) => [f.cls ? `with ${CLASS_INFO[f.cls]?.label ?? f.cls}` : '', f.type ? `on ${TYPE_PLURAL[f.type]}` : '', f.noHandle ? 'through no handle' : ''].filter(Boolean).join(' ');

/** What a filtered list holds, "with drift on sessions sent to claude-sonnet-4-6", as text (a title). */
export const filterWords = (f: ListFilter) => [classWords(f), f.model === undefined ? '' : `sent to ${f.model}`].filter(Boolean).join(' ');

/** The same in a heading: the model's name isolated (<bdi>), as the by-model table shows it. */
export const filterHeading = (f: ListFilter): Html => {
  const words = classWords(f);
  return html`${words}${words && f.model !== undefined ? ' ' : ''}${f.model === undefined ? '' : html`sent to <bdi data-filter-model>${f.model}</bdi>`}`;
};

/** A class's name, a link to its requests where `link` gives one. */
const className = (cls: string, n: number, link?: ClassLink): Html => {
  const href = link?.(cls, n);
  return href ? html`<a href="${href}" data-requests-link="${cls}">${CLASS_INFO[cls]!.label}</a>` : html`${CLASS_INFO[cls]!.label}`;
};

/** The leaks that are misses (unknown is not one: the provider said nothing), in gate order. */
const MISSES = LEAK_ROWS.filter((c): c is MoneyLeak => c !== 'unknown');

/**
 * Where most of a report's money leaked: the miss class that cost most (by tokens when nothing was priced: calls
 * without cache fields), its tokens and their share of the opportunity, so a ranking says what to change and not
 * only how much leaked; "none" when nothing did. The first in gate order on a tie.
 */
export function biggestLeak(t: Pick<Totals, 'tokens' | 'money'>, link?: ClassLink): Html {
  const by = (value: (cls: string) => number) => MISSES.reduce<string | null>((best, cls) => (value(cls) > (best ? value(best) : 0) ? cls : best), null);
  const cls = by((c) => t.money.leaked_by_class[c as MoneyLeak] ?? 0) ?? by((c) => t.tokens[c] ?? 0);
  if (!cls) return html`<span class="muted" data-biggest-leak="">none</span>`;
  const n = t.tokens[cls] ?? 0;
  const money = t.money.leaked_by_class[cls as MoneyLeak] ?? 0;
  // Its name, then its figures: one line of both made the ranking wider than a 1280 px page (so did the money beside
  // the tokens: those are in its title when it has money).
  const share = `${pct(ratio(n, t.tokens.opportunity ?? 0), 0)} of opp.`;
  return html`<span data-biggest-leak="${cls}" data-tokens="${n}" data-usd="${money}" title="${tokens(n)} tokens">${swatch(cls)} ${className(cls, n, link)}<br><small class="muted">${money ? usd(money) : `${tok(n)} tok`} · ${share}</small></span>`;
}

/**
 * The leaked savings by the class that missed them, the costliest first: what each cause cost against perfect
 * capture (cold tokens are no miss: perfect capture pays a first send as the call did, written or not; unknown ones are priced apart).
 */
export function leakedByClass(t: Pick<Totals, 'tokens' | 'requests_with' | 'money' | 'capture_rate'>, link?: ClassLink): Html {
  const m = t.money;
  const rows = MISSES.filter((c) => (t.tokens[c] ?? 0) > 0 || m.leaked_by_class[c] > 0).sort((a, b) => m.leaked_by_class[b] - m.leaked_by_class[a]);
  if (!rows.length) return html``;
  // Calls without cache fields miss tokens too, but their money is not known (their input is counted apart): with no
  // call that reported cache fields (no capture rate: a reported miss is opportunity), no cause's money is known, not $0.
  const known = t.capture_rate !== null;
  const apart = m.unknown_capture_input_cost ? `; the tokens count calls without cache fields too, whose ${usd(m.unknown_capture_input_cost)} of input is counted apart` : '';
  return html`<table data-table="leaked-by-class" tabindex="0" data-scroll><caption>Leaked savings by cause <small class="muted">(${usd(m.leaked_savings)} against perfect capture, divided among the tokens each cause missed${apart})</small></caption>
<thead><tr><th>Cause</th><th class="num">Leaked</th><th class="num">Share</th><th class="num">Tokens</th><th class="num">Requests</th></tr></thead><tbody>
${rows.map(
    (c) => html`<tr data-class="${c}"><td class="cause">${swatch(c)} ${className(c, t.tokens[c] ?? 0, link)}</td>${
      known
        ? html`<td class="num" data-value="${m.leaked_by_class[c]}">${usd(m.leaked_by_class[c])}</td><td class="num">${pct(ratio(m.leaked_by_class[c], m.leaked_savings), 0)}</td>`
        : html`<td class="num" data-value=""><span class="muted">unknown</span></td><td class="num">—</td>`
    }<td class="num">${tok(t.tokens[c] ?? 0)}</td><td class="num">${tokens(t.requests_with[c] ?? 0)}</td></tr>`,
  )}</tbody></table>`;
}

/**
 * An input cost against what it would have cost uncached: "of $0.36 uncached" read as a part of that when it was more
 * (writes cost more than plain input, and calls that write and never read pay it on every call).
 */
export const costNote = (actual: number, uncached: number): string =>
  actual > uncached ? `${usd(actual - uncached)} more than the ${usd(uncached)} it would cost uncached: the write premiums cost more than the reads saved` : `of ${usd(uncached)} uncached`;

export function rateBar(rate: number | null): Html {
  return html`<span class="rate" aria-hidden="true"><i style="width:${rate === null ? 0 : Math.round(Math.min(1, rate) * 100)}%"></i></span>${pct(rate)}`;
}

/** A link to a handle's page for `art_x`, `art_x@2` or a session batch; other sources as plain text. */
export function sourceLink(source: string, span?: Span): Html {
  const ref = parseRef(source);
  if (!ref) return html`<span class="muted">${source}</span>`;
  return html`<a href="/ui/handles/${ref.id}${span ? `?${span.query}` : ''}" class="mono">${source}</a>`;
}

/** A link to a request's page; a pruned one (past retention: no page) says so instead. */
export const requestLink = (id: string, pruned?: (id: string) => boolean) =>
  pruned?.(id) ? html`<span class="mono" data-pruned="${id}">${id}</span> <small class="muted">(pruned past retention)</small>` : html`<a class="mono" href="/ui/requests/${id}">${id}</a>`;

/** A request as a list's line (GET /v1/requests). */
export type RequestLine = ReturnType<typeof requestSummaryView>;

/**
 * Requests as lines, the list's order; `classes`: the heading of their tokens by class (one handle's, or every
 * handle's), or `'prompt'` for their prompt tokens instead (calls through no handle have no handle's tokens).
 */
export function requestsTable(rows: RequestLine[], classes: Html | 'prompt'): Html {
  const last = (r: RequestLine) =>
    classes === 'prompt'
      ? html`<td class="num" data-prompt-tokens="${r.prompt_tokens ?? ''}">${r.prompt_tokens === null ? '—' : tok(r.prompt_tokens)}</td>`
      : html`<td>${Object.entries(r.classes)
          .sort(([, a], [, b]) => b - a)
          .map(([c, n]) => `${CLASS_INFO[c]?.label ?? c} ${tok(n)}`)
          .join(' · ') || '—'}</td>`;
  return html`<table data-table="recent"><thead><tr><th>Rendered</th><th>Started</th><th>Request</th><th>Model</th><th>Status</th><th class="num">Read / written</th>${classes === 'prompt' ? html`<th class="num">Prompt tokens</th>` : html`<th>${classes}</th>`}</tr></thead><tbody>${rows.map(
    (r) => html`<tr data-request="${r.id}"><td>${when(r.rendered_at)}</td><td>${r.started_at ? when(r.started_at) : '—'}</td><td>${requestLink(r.id)}${r.drift ? html` <small class="muted" data-drift-flag>· drift</small>` : ''}</td><td data-model>${r.model}</td><td>${r.status}${r.capture === 'unknown' ? ' (capture unknown)' : ''}</td><td class="num">${r.cache_read_tokens === null ? '—' : tokens(r.cache_read_tokens)} / ${r.cache_write_tokens === null ? '—' : tokens(r.cache_write_tokens)}</td>${last(r)}</tr>`,
  )}</tbody></table>`;
}

/**
 * A setting Anthropic caches the messages under changed, or a Responses request's `reasoning.context` (the drift
 * finding's `settings`): the messages' bytes are the same, their cache entry is not.
 */
export const settingsNote = (changes: Array<{ name: string; now: unknown; before: unknown }>, segment: number): Html => {
  const shown = (v: unknown) => (v === null ? 'not sent' : JSON.stringify(v));
  return html`the request's ${changes.map((c, i) => html`${i ? ' and ' : ''}<code>${c.name}</code> changed (<code data-setting-before="${c.name}">${shown(c.before)}</code> → <code data-setting-now="${c.name}">${shown(c.now)}</code>)`)}.
${reasoningContextChanged(changes) ? REASONING_CONTEXT_RULE : html`Anthropic caches the messages under <code>tool_choice</code> and <code>thinking</code>`}: from segment <b>#${segment + 1}</b> on, the same messages could not be read from it, and were sent again uncached`;
};

/**
 * A Claude model that strips earlier turns' thinking, OpenAI dropping earlier turns' reasoning items (the drift
 * finding's `thinking`: `earlier_turn`, `earlier_reasoning`): the bytes are the same, what the model reads of them is not.
 * `reasoningContext`: the finding's, set when the model accepts `reasoning.context` (the advice is then to send it).
 */
export const thinkingNote = (segment: number, kind: 'earlier_turn' | 'earlier_reasoning' = 'earlier_turn', reasoningContext?: 'all_turns'): Html =>
  kind === 'earlier_reasoning'
    ? html`the bytes are the same, but ${earlierReasoningDropped(reasoningContext !== undefined)} once a new question follows a tool loop: from segment <b>#${segment + 1}</b> on, the prefix the loop wrote with its reasoning was not what the model read now, and was sent again uncached (${earlierReasoningAdvice(reasoningContext !== undefined)})`
    : html`the bytes are the same, but the model strips earlier turns' thinking once a new question follows a tool loop: from segment <b>#${segment + 1}</b> on, the prefix the loop wrote with its thinking was not what the model read now, and was sent again uncached (the model's rule, nothing in the agent to change: a model that keeps earlier turns' thinking, Sonnet 4.6 or Opus 4.5 and later, reads it)`;

/** Same handles, other API format: the bytes differ because the format does (chat and Responses share a cache). */
export const formatsNote = (f: { now: string; before: string } | undefined): Html | string =>
  f ? html` — the API format changed (${f.before} → ${f.now}), so the same handles were serialised to other bytes` : '';
