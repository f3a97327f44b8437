// SVG charts drawn on the server. Every mark carries a <title> and a text
// label, so nothing is told by colour alone; every number carries its unit.

import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import { pct, ratio, tok, tokens, usd, usdTick } from './format';
import type { ModelEntry } from '../../domain/catalog/types';
import { belowMinimumHelp, CLASS_HELP } from '../../domain/reconcile/explain';

type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/**
 * Waterfall classes: how each is named, coloured and explained (the words: domain/reconcile/explain.ts, which the CLI
 * says too). `color` is the light scheme's, drawn as the marks' fill attribute; `dark` the dark scheme's (layout.ts
 * sets it by the mark's k-<class> class): the same hue a step lighter, each leak, captured and bonus a 3:1 contrast or
 * more on the dark card (not reconciled and call failed stay a faint grey, 1.9:1, as light's are 1.5:1 on white), the
 * leaks further apart from each other than in the light scheme (test/ui/dark-scheme.test.ts measures both).
 */
export const CLASS_INFO: Record<string, { label: string; color: string; dark: string; help: string }> = {
  referenced: { label: 'referenced', color: '#475569', dark: '#94a3b8', help: CLASS_HELP.referenced },
  cold: { label: 'cold', color: '#94a3b8', dark: '#64748b', help: CLASS_HELP.cold },
  opportunity: { label: 'opportunity', color: '#334155', dark: '#cbd5e1', help: CLASS_HELP.opportunity },
  drift: { label: 'drift', color: '#dc2626', dark: '#f87171', help: CLASS_HELP.drift },
  expired: { label: 'expired', color: '#ea580c', dark: '#fb923c', help: CLASS_HELP.expired },
  concurrent: { label: 'concurrent', color: '#ca8a04', dark: '#facc15', help: CLASS_HELP.concurrent },
  below_minimum: { label: 'below minimum', color: '#a16207', dark: '#ca8a04', help: CLASS_HELP.below_minimum },
  no_breakpoint: { label: 'no breakpoint', color: '#9333ea', dark: '#c084fc', help: CLASS_HELP.no_breakpoint },
  lookback: { label: 'lookback', color: '#6d28d9', dark: '#8b5cf6', help: CLASS_HELP.lookback },
  unconfirmed: { label: 'unconfirmed', color: '#db2777', dark: '#f472b6', help: CLASS_HELP.unconfirmed },
  unknown: { label: 'unknown', color: '#9ca3af', dark: '#9ca3af', help: CLASS_HELP.unknown },
  captured: { label: 'captured', color: '#16a34a', dark: '#4ade80', help: CLASS_HELP.captured },
  bonus: { label: 'bonus', color: '#65a30d', dark: '#a3e635', help: CLASS_HELP.bonus },
  pending: { label: 'not reconciled', color: '#cbd5e1', dark: '#475569', help: CLASS_HELP.pending },
  failed: { label: 'call failed', color: '#cbd5e1', dark: '#475569', help: CLASS_HELP.failed },
};

/** Leaks between opportunity and captured, in gate order. */
export const LEAK_ROWS = ['drift', 'expired', 'concurrent', 'below_minimum', 'no_breakpoint', 'lookback', 'unconfirmed', 'unknown'] as const;

/** Class order inside a request segment bar: what was read first, then why the rest was not. */
export const SEGMENT_ORDER = ['captured', 'bonus', 'unconfirmed', 'unknown', 'cold', 'drift', 'expired', 'concurrent', 'below_minimum', 'no_breakpoint', 'lookback'];

// Shared pattern so "unknown" reads as hatched, not as just another grey.
// Defined once per page (layout.ts), so chart fragments can be swapped in live.
export const SVG_DEFS = html`<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect class="hatch-bg" width="6" height="6" fill="#e5e7eb"/><line class="hatch-line" x1="0" y1="0" x2="0" y2="6" stroke="#9ca3af" stroke-width="3"/></pattern></defs></svg>`;

const fill = (cls: string) => (cls === 'unknown' ? 'url(#hatch)' : (CLASS_INFO[cls]?.color ?? '#999'));
/** A class's mark: its light colour as the fill attribute, its class for the dark scheme's (layout.ts). */
const paint = (cls: string) => html`fill="${fill(cls)}" class="k-${cls}"`;
const px = (n: number) => Math.round(n * 10) / 10;

interface WaterfallRow {
  cls: string;
  kind: 'total' | 'loss' | 'gain';
  start: number;
  end: number;
  value: number;
  base: 'referenced' | 'opportunity';
}

/**
 * referenced → −cold → opportunity → −each leak → captured (+bonus).
 * Percentages are of referenced for the first three rows, of opportunity after (captured: of the opportunity
 * with a cache report, the capture rate).
 */
export function waterfallRows(t: Record<string, number>): WaterfallRow[] {
  const v = (k: string) => t[k] ?? 0;
  const ref = v('referenced');
  const opp = v('opportunity');
  const rows: WaterfallRow[] = [
    { cls: 'referenced', kind: 'total', start: 0, end: ref, value: ref, base: 'referenced' },
    { cls: 'cold', kind: 'loss', start: ref - v('cold'), end: ref, value: v('cold'), base: 'referenced' },
    { cls: 'opportunity', kind: 'total', start: 0, end: opp, value: opp, base: 'referenced' },
  ];
  let cursor = opp;
  for (const cls of LEAK_ROWS) {
    rows.push({ cls, kind: 'loss', start: cursor - v(cls), end: cursor, value: v(cls), base: 'opportunity' });
    cursor -= v(cls);
  }
  const captured = v('captured');
  rows.push({ cls: 'captured', kind: 'total', start: 0, end: captured, value: captured, base: 'opportunity' });
  rows.push({ cls: 'bonus', kind: 'gain', start: captured, end: captured + v('bonus'), value: v('bonus'), base: 'opportunity' });
  return rows;
}

/** What a waterfall row says, whichever layout draws it: its share, sign, name and basis. */
function rowFacts(r: WaterfallRow, t: Record<string, number>) {
  const ref = t.referenced ?? 0;
  const opp = t.opportunity ?? 0;
  // The captured row's share is the capture rate the summary shows: of the opportunity with a cache report (the
  // `unknown` row above it could have been read or not). Said so when that differs from the whole opportunity.
  const reported = t.reported_opportunity ?? opp;
  const info = CLASS_INFO[r.cls]!;
  const share = ratio(r.value, r.base === 'referenced' ? ref : r.cls === 'captured' ? reported : opp);
  return {
    share,
    sign: r.kind === 'loss' && r.value > 0 ? '−' : r.kind === 'gain' && r.value > 0 ? '+' : '',
    name: `${r.kind === 'loss' ? '− ' : r.kind === 'gain' ? '+ ' : ''}${info.label}`,
    baseName: r.base === 'referenced' ? 'ref.' : r.cls === 'captured' ? (reported !== opp ? 'opp. reported' : 'opp.') : 'opp.',
    title: `${info.label}: ${tokens(r.value)} tokens (${pct(share)} of ${r.cls === 'captured' && reported !== opp ? 'the opportunity with a cache report' : r.base}) — ${info.help}`,
  };
}

/**
 * The waterfall twice: one row a line for a wide screen, and for a phone (CSS shows one: layout.ts) the name and
 * figures above each bar, so its text is drawn near its own size rather than shrunk with an 820-wide drawing.
 */
export function waterfallChart(t: Record<string, number>, title: string, link?: ClassLink): Html {
  const rows = waterfallRows(t);
  return html`${wideWaterfall(rows, t, title, link)}${narrowWaterfall(rows, t, title, link)}`;
}

/** Where a class's figure leads (the requests holding it), or undefined: no link for that class or that many tokens. */
export type ClassLink = (cls: string, tokens: number) => string | undefined;

/**
 * A waterfall row, a link to its requests where `link` gives one (the whole row: its name, bar and figures). A chart
 * with links is a group, not an image: an image's content is hidden from assistive technology, links with it. The
 * link's name starts with the row's text as drawn (a speech user says what they see: WCAG 2.5.3), then the exact count.
 */
function linkedRow(r: WaterfallRow, f: ReturnType<typeof rowFacts>, row: Html, link?: ClassLink): Html {
  const href = link?.(r.cls, r.value);
  return href
    ? html`<a href="${href}" data-requests-link="${r.cls}" aria-label="${f.name} ${f.sign}${tok(r.value)} · ${pct(f.share)} of ${f.baseName}: ${tokens(r.value)} tokens, list the requests">${row}</a>`
    : row;
}
/**
 * The whole row, unseen, under its name, bar and figures: a tap or click anywhere on a row reaches its link and its
 * tooltip. Without it only the painted parts did — on a phone a 12 px name and a 12 px bar, with nothing between
 * them: a tap in the row's middle reached nothing (a user's trial).
 */
const hitArea = (x: number, y: number, w: number, h: number) => html`<rect class="hit" x="${x}" y="${y}" width="${w}" height="${h}" fill="transparent"/>`;
const chartRole = (rows: WaterfallRow[], link?: ClassLink) => (rows.some((r) => link?.(r.cls, r.value)) ? 'group' : 'img');

function wideWaterfall(rows: WaterfallRow[], t: Record<string, number>, title: string, link?: ClassLink): Html {
  const W = 820;
  const labelW = 120;
  // Room for a 10-digit figure and "100.0% of opp. reported" apart: at 230 a 9-digit captured row ran into its share.
  const valueW = 290;
  const barW = W - labelW - valueW - 12;
  const rowH = 26;
  const H = rows.length * rowH + 30;
  const max = Math.max(1, ...rows.map((r) => r.end));
  const x = (n: number) => labelW + (Math.max(0, n) / max) * barW;
  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" width="100%" role="${chartRole(rows, link)}" aria-labelledby="wf-t wf-d" data-chart="waterfall">
<title id="wf-t">${title}</title><desc id="wf-d">${waterfallDesc(t)}</desc>
${rows.map((r, i) => {
    const y = 6 + i * rowH;
    const f = rowFacts(r, t);
    const x0 = x(r.start);
    const w = r.value > 0 ? Math.max(1.5, x(r.end) - x0) : 0;
    const next = rows[i + 1];
    // Dashed connector from where this row ends to where the next one starts: the "waterfall".
    const joinX = r.kind === 'total' ? x(r.end) : x(r.start);
    const connector = next && next.kind !== 'total' && r.cls !== 'captured' ? html`<line x1="${px(joinX)}" y1="${y + 19}" x2="${px(joinX)}" y2="${y + rowH + 3}" class="connector"/>` : '';
    return linkedRow(r, f, html`<g data-class="${r.cls}" data-tokens="${r.value}" class="${r.value === 0 ? 'zero' : ''}">
<title>${f.title}</title>
${hitArea(0, y, W, rowH)}
<text x="${labelW - 8}" y="${y + 15}" text-anchor="end" class="${r.kind === 'total' ? 'lbl total' : 'lbl'}">${f.name}</text>
<rect x="${px(x0)}" y="${y + 3}" width="${px(w)}" height="16" rx="2" ${paint(r.cls)}/>
${connector}
<text x="${W - valueW}" y="${y + 15}" class="val">${f.sign}${tok(r.value)}</text>
<text x="${W - 8}" y="${y + 15}" text-anchor="end" class="pct">${pct(f.share)} of ${f.baseName}</text>
</g>`, link);
  })}
<line x1="${labelW}" y1="${H - 22}" x2="${labelW + barW}" y2="${H - 22}" class="axis"/>
<text x="${labelW}" y="${H - 8}" class="tick">0</text><text x="${labelW + barW}" y="${H - 8}" text-anchor="end" class="tick">${rows.some((r) => r.end > 0) ? tok(max) : 'no tokens yet'}</text>
</svg>`;
}

/** The phone's waterfall: 320 wide (a 390 px phone's card is about 310), each row's name and figures on a line above its bar. */
function narrowWaterfall(rows: WaterfallRow[], t: Record<string, number>, title: string, link?: ClassLink): Html {
  const W = 320;
  const rowH = 36;
  const H = rows.length * rowH + 26;
  const max = Math.max(1, ...rows.map((r) => r.end));
  const x = (n: number) => (Math.max(0, n) / max) * (W - 2) + 1;
  return html`<svg class="chart wf-narrow" viewBox="0 0 ${W} ${H}" width="100%" role="${chartRole(rows, link)}" aria-labelledby="wfn-t wfn-d" data-chart="waterfall-narrow">
<title id="wfn-t">${title}</title><desc id="wfn-d">${waterfallDesc(t)}</desc>
${rows.map((r, i) => {
    const y = 4 + i * rowH;
    const f = rowFacts(r, t);
    const x0 = x(r.start);
    const w = r.value > 0 ? Math.max(1.5, x(r.end) - x0) : 0;
    const next = rows[i + 1];
    const joinX = r.kind === 'total' ? x(r.end) : x(r.start);
    const connector = next && next.kind !== 'total' && r.cls !== 'captured' ? html`<line x1="${px(joinX)}" y1="${y + 30}" x2="${px(joinX)}" y2="${y + rowH + 18}" class="connector"/>` : '';
    return linkedRow(r, f, html`<g data-row="${r.cls}" class="${r.value === 0 ? 'zero' : ''}">
<title>${f.title}</title>
${hitArea(0, y, W, rowH)}
<text x="0" y="${y + 13}" class="${r.kind === 'total' ? 'lbl total' : 'lbl'}">${f.name}</text>
<text x="${W}" y="${y + 13}" text-anchor="end"><tspan class="val">${f.sign}${tok(r.value)}</tspan><tspan class="pct"> · ${pct(f.share)} of ${f.baseName}</tspan></text>
<rect x="${px(x0)}" y="${y + 18}" width="${px(w)}" height="12" rx="2" ${paint(r.cls)}/>
${connector}
</g>`, link);
  })}
<line x1="1" y1="${H - 20}" x2="${W - 1}" y2="${H - 20}" class="axis"/>
<text x="1" y="${H - 6}" class="tick">0</text><text x="${W - 1}" y="${H - 6}" text-anchor="end" class="tick">${rows.some((r) => r.end > 0) ? tok(max) : 'no tokens yet'}</text>
</svg>`;
}

function waterfallDesc(t: Record<string, number>): string {
  const opp = t.opportunity ?? 0;
  const reported = t.reported_opportunity ?? opp;
  return `${tok(t.referenced ?? 0)} referenced, ${tok(opp)} opportunity, ${tok(t.captured ?? 0)} captured (${pct(ratio(t.captured ?? 0, reported))} of ${reported !== opp ? 'the opportunity with a cache report' : 'opportunity'}).`;
}

export interface DayPoint {
  day: string;
  opportunity: number;
  captured: number;
  unknown: number;
  rate: number | null;
  money: number;
}

/**
 * The API's capture rate per day (the tenant's) as bars. Unknown capture is never drawn as a
 * miss: a day with unknown tokens gets a hatched column behind its bar ("?" when
 * nothing on that day was reported).
 */
export function captureTrendChart(days: DayPoint[], title: string): Html {
  return html`${trendChart(days, title, false)}${trendChart(days, title, true)}`;
}

/** A per-day bar chart's frame, wide (820) or a phone's (360): its plot area, a slot and bar per day, a label every few days. */
function dayFrame(days: DayPoint[], narrow: boolean, H: number, left: number) {
  const W = narrow ? 360 : 820;
  const right = narrow ? 6 : 12;
  const top = 18;
  const bottom = 36;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const n = Math.max(1, days.length);
  const slot = plotW / n;
  return { W, H, left, right, top, bottom, plotW, plotH, n, slot, barW: Math.max(2, Math.min(36, slot * 0.7)), every: Math.ceil(n / (narrow ? 5 : 12)) };
}

/**
 * `narrow`: the phone's drawing (layout.ts shows one of the two), 360 units wide so its text stays 9–11 px at 390 px;
 * the wide one shrunk there was 4 px. Its marks carry no data-day (the wide one's are the figures tests read).
 */
function trendChart(days: DayPoint[], title: string, narrow: boolean): Html {
  const { W, H, left, right, top, bottom, plotW, plotH, n, slot, barW, every } = dayFrame(days, narrow, 220, narrow ? 36 : 48);
  const y = (f: number) => top + plotH * (1 - Math.min(1, Math.max(0, f)));
  const id = narrow ? 'ctn' : 'ct';
  const measured = days.filter((d) => d.rate !== null);
  const desc = measured.length
    ? `Capture rate on ${measured.length} of ${days.length} days; latest ${measured.at(-1)!.day}: ${pct(measured.at(-1)!.rate)}.`
    : `No measured capture in these ${days.length} days.`;
  return html`<svg class="chart${narrow ? ' ct-narrow' : ''}" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-labelledby="${id}-t ${id}-d" data-chart="${narrow ? 'capture-trend-narrow' : 'capture-trend'}">
<title id="${id}-t">${title}</title><desc id="${id}-d">${desc}</desc>
${[0, 0.5, 1].map((f) => html`<line x1="${left}" y1="${px(y(f))}" x2="${W - right}" y2="${px(y(f))}" class="grid"/><text x="${left - 6}" y="${px(y(f)) + 4}" text-anchor="end" class="tick">${f * 100}%</text>`)}
${days.map((d, i) => {
    const cx = left + slot * i + slot / 2;
    const x0 = px(cx - barW / 2);
    // Every `every`th day and the last; a tick too close before the last one gives way (labels would overlap).
    const last = days.length - 1;
    const label = i === last || (i % every === 0 && last - i >= Math.ceil(every / 2)) ? html`<text x="${px(cx)}" y="${H - bottom + 16}" text-anchor="middle" class="tick">${d.day.slice(5)}</text>` : '';
    if (d.opportunity === 0)
      return html`<g ${narrow ? '' : html`data-day="${d.day}" data-rate=""`}><title>${d.day}: no opportunity (no repeated handle content)</title><rect x="${x0}" y="${y(0) - 2}" width="${px(barW)}" height="2" fill="#cbd5e1" class="nil"/>${label}</g>`;
    const unknown = d.unknown ? `; ${tok(d.unknown)} with unknown capture (no cache fields), left out of the rate` : '';
    const tip = `${d.day}: ${d.rate === null ? 'capture unknown' : `${pct(d.rate)} captured`} — ${tok(d.captured)} captured of ${tok(d.opportunity)} opportunity${unknown}; ${usd(d.money)} leaked`;
    const barTop = d.rate === null ? y(1) : y(d.rate);
    return html`<g ${narrow ? '' : html`data-day="${d.day}" data-rate="${d.rate ?? ''}"`}><title>${tip}</title>
${d.unknown ? html`<rect x="${x0}" y="${y(1)}" width="${px(barW)}" height="${plotH}" fill="url(#hatch)" opacity="0.6"/>` : ''}
${d.rate !== null ? html`<rect x="${x0}" y="${px(barTop)}" width="${px(barW)}" height="${px(y(0) - barTop)}" ${paint('captured')}/>` : ''}
${n <= (narrow ? 10 : 31) ? html`<text x="${px(cx)}" y="${px(Math.max(top + 10, barTop - 4))}" text-anchor="middle" class="barlbl">${d.rate === null ? '?' : pct(d.rate, 0)}</text>` : ''}${label}</g>`;
  })}
<line x1="${left}" y1="${y(0)}" x2="${W - right}" y2="${y(0)}" class="axis"/>
</svg>`;
}

/**
 * Leaked money per day (the tenant's) as bars (the overview's, beside its capture rate per day): what the misses cost that day
 * against perfect capture. Unknown capture is not in it (it is not a miss), as in the summary's leaked figure.
 */
export function leakedTrendChart(days: DayPoint[], title: string): Html {
  return html`${leakedChart(days, title, false)}${leakedChart(days, title, true)}`;
}

/** The axis' top: 1, 2, 2.5 or 5 times a power of ten at or above `x`, so its ticks are round and the tallest bar's label fits under it. */
function niceCeil(x: number): number {
  if (x <= 0) return 0;
  const p = 10 ** Math.floor(Math.log10(x));
  return ([1, 2, 2.5, 5, 10, 20].find((m) => m * p >= x * 1.08) ?? 20) * p;
}

/** `narrow`: the phone's drawing, as trendChart's; only the wide one carries the figures (data-leaked-day, data-value). */
function leakedChart(days: DayPoint[], title: string, narrow: boolean): Html {
  // Room for dollar labels on the left: 64 (52 on a phone) where the rate chart's percentages take 48 (36).
  const { W, H, left, right, top, bottom, plotW, plotH, n, slot, barW, every } = dayFrame(days, narrow, 200, narrow ? 52 : 64);
  // A day whose capture beat prediction (bonus) can leak less than nothing: drawn as none, its figure in its title.
  const max = niceCeil(Math.max(0, ...days.map((d) => d.money)));
  const y = (v: number) => top + plotH * (1 - (max > 0 ? Math.min(1, Math.max(0, v / max)) : 0));
  const id = narrow ? 'ltn' : 'lt';
  const leaky = days.filter((d) => d.money > 0);
  const total = days.reduce((a, d) => a + Math.round(d.money * 1e6), 0) / 1e6;
  const desc = leaky.length ? `${usd(total)} leaked over ${days.length} days; the most on ${leaky.reduce((a, b) => (b.money > a.money ? b : a)).day}.` : `Nothing leaked in these ${days.length} days.`;
  // Figures on the bars only while they fit their slot ("$0.0123" is about 45 px).
  const barLabels = slot >= 48;
  return html`<svg class="chart${narrow ? ' lt-narrow' : ''}" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-labelledby="${id}-t ${id}-d" data-chart="${narrow ? 'leaked-trend-narrow' : 'leaked-trend'}">
<title id="${id}-t">${title}</title><desc id="${id}-d">${desc}</desc>
${(max > 0 ? [0, 0.5, 1] : [0]).map((f) => html`<line x1="${left}" y1="${px(y(f * max))}" x2="${W - right}" y2="${px(y(f * max))}" class="grid"/><text x="${left - 6}" y="${px(y(f * max)) + 4}" text-anchor="end" class="tick">${usdTick(f * max)}</text>`)}
${days.map((d, i) => {
    const cx = left + slot * i + slot / 2;
    const x0 = px(cx - barW / 2);
    const last = days.length - 1;
    const label = i === last || (i % every === 0 && last - i >= Math.ceil(every / 2)) ? html`<text x="${px(cx)}" y="${H - bottom + 16}" text-anchor="middle" class="tick">${d.day.slice(5)}</text>` : '';
    const barTop = y(d.money);
    const tip = `${d.day}: ${usd(d.money)} leaked against perfect capture${d.unknown ? `; ${tok(d.unknown)} with unknown capture (no cache fields), not counted` : ''}`;
    return html`<g ${narrow ? '' : html`data-leaked-day="${d.day}" data-value="${d.money}"`}><title>${tip}</title>
${d.money > 0 ? html`<rect x="${x0}" y="${px(barTop)}" width="${px(barW)}" height="${px(y(0) - barTop)}" ${paint('drift')}/>` : ''}
${barLabels && d.money !== 0 ? html`<text x="${px(cx)}" y="${px(Math.max(top + 10, barTop - 4))}" text-anchor="middle" class="barlbl">${usd(d.money)}</text>` : ''}${label}</g>`;
  })}
<line x1="${left}" y1="${y(0)}" x2="${W - right}" y2="${y(0)}" class="axis"/>
</svg>`;
}

export interface BarSegment {
  index: number;
  /** Several segments drawn as one (a long session's earlier batches), from `index` on. */
  count?: number;
  source: string;
  section: string;
  start: number;
  end: number;
  classes: Record<string, number> | null;
  /** Why a segment without classes has none: no report yet (the default), or the call failed. */
  unclassified?: 'pending' | 'failed';
}

/** Narrow segments get this many px at least (taken from the wide ones), so a 10-token segment stays visible. */
const MIN_SEGMENT_PX = 8;

/** Widths per segment: proportional to tokens, except that none is narrower than MIN_SEGMENT_PX. */
function segmentWidths(lengths: number[], width: number): number[] {
  const total = lengths.reduce((a, b) => a + b, 0) || 1;
  const raw = lengths.map((n) => (n / total) * width);
  const narrow = raw.map((w) => w < MIN_SEGMENT_PX);
  const extra = raw.reduce((a, w, i) => a + (narrow[i] ? MIN_SEGMENT_PX - w : 0), 0);
  const wide = raw.reduce((a, w, i) => a + (narrow[i] ? 0 : w), 0);
  if (extra === 0 || wide <= extra) return raw;
  return raw.map((w, i) => (narrow[i] ? MIN_SEGMENT_PX : w * ((wide - extra) / wide)));
}

/**
 * The prompt as one bar, tokens left to right; each segment stacked by outcome class. Drawn twice, as the waterfall is
 * (CSS shows one: layout.ts): 820 wide, and 320 for a phone, whose text an 820-wide drawing shrank to 4–5 px.
 */
export function segmentBar(segments: BarSegment[], breakpoints: { at: number; label: string }[], title: string): Html {
  return html`${segmentDrawing(segments, breakpoints, title, false)}${segmentDrawing(segments, breakpoints, title, true)}`;
}

/**
 * `narrow`: the phone's drawing. A segment's name is inside it where it fits, else its number (#3) inside, else under
 * it, and only where it fits its own width (neighbours' labels never overlap); the widened note gets a line of its own.
 * Only the wide drawing carries the figures (data-tokens) tests read against the API.
 */
function segmentDrawing(segments: BarSegment[], breakpoints: { at: number; label: string }[], title: string, narrow: boolean): Html {
  const W = narrow ? 320 : 820;
  const left = narrow ? 1 : 8;
  const barW = W - 2 * left;
  const top = 16;
  const barH = narrow ? 32 : 40;
  const total = segments.at(-1)?.end ?? 0;
  const widths = segmentWidths(segments.map((s) => s.end - s.start), barW);
  const widened = widths.some((w) => w === MIN_SEGMENT_PX);
  const H = top + barH + (narrow && widened ? 58 : 42);
  const starts = widths.map((_, i) => left + widths.slice(0, i).reduce((a, b) => a + b, 0));
  // Token position → x, linear inside each segment.
  const x = (t: number) => {
    const i = Math.max(0, segments.findIndex((s) => t <= s.end));
    const s = segments[i];
    if (!s) return left;
    const len = s.end - s.start;
    return starts[i]! + (len ? ((t - s.start) / len) * widths[i]! : 0);
  };
  const id = narrow ? 'sbn' : 'sb';
  return html`<svg class="chart${narrow ? ' sb-narrow' : ''}" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-labelledby="${id}-t ${id}-d" data-chart="${narrow ? 'segments-narrow' : 'segments'}">
<title id="${id}-t">${title}</title><desc id="${id}-d">${segments.reduce((a, s) => a + (s.count ?? 1), 0)} segments, ${tok(total)} in all. Numbers in and under the bar match the segment table.</desc>
${segments.map((s, i) => {
    const len = s.end - s.start;
    const x0 = starts[i]!;
    const w = widths[i]!;
    let at = x0;
    const parts = (s.classes ? SEGMENT_ORDER.filter((c) => (s.classes![c] ?? 0) > 0).map((c) => ({ cls: c, n: s.classes![c]! })) : [{ cls: s.unclassified ?? 'pending', n: len }]).map((p) => {
      const pw = len ? (p.n / len) * w : w;
      const part = { ...p, x: at, w: pw };
      at += pw;
      return part;
    });
    const name = s.count ? `#${s.index + 1}–#${s.index + s.count} ${s.source}` : `#${s.index + 1} ${s.source}`;
    const number = s.count ? `${s.index + 1}–${s.index + s.count}` : `${s.index + 1}`;
    // A segment wide enough carries its name (with its number) inside; a narrower one its number underneath.
    const named = w >= name.length * 7 + 12;
    const label = named ? name : narrow && w >= number.length * 7 + 16 ? `#${number}` : null;
    const under = !label && (narrow ? w >= number.length * 6.2 + 1 : w >= 14);
    const rects = parts.map((p) => html`<rect x="${px(p.x)}" y="${top}" width="${px(Math.max(0.5, p.w))}" height="${barH}" ${paint(p.cls)} data-class="${p.cls}"${narrow ? '' : html` data-tokens="${p.n}"`}><title>${name} (${s.section}): ${tokens(p.n)} of ${tokens(len)} tokens ${CLASS_INFO[p.cls]!.label} — ${CLASS_INFO[p.cls]!.help}</title></rect>`);
    return html`<g ${s.count ? html`data-segments="${s.index}-${s.index + s.count - 1}"` : html`data-segment="${s.index}"`} data-source="${s.source}">
${rects}
<line x1="${px(x0)}" y1="${top - 4}" x2="${px(x0)}" y2="${top + barH + 4}" class="sep"/>
${label ? html`<text x="${px(x0 + 6)}" y="${top + barH / 2 + 4}" class="seglbl">${label}</text>` : ''}
${under ? html`<text x="${px(x0 + w / 2)}" y="${top + barH + 16}" text-anchor="middle" class="tick">${number}</text>` : ''}
</g>`;
  })}
${breakpoints.map((b) => html`<g class="bp"><title>${b.label}</title><path d="M ${px(x(b.at) - 5)} ${top - 12} L ${px(x(b.at) + 5)} ${top - 12} L ${px(x(b.at))} ${top - 2} Z" fill="#0f172a" class="bp-mark"/></g>`)}
${narrow
    ? html`<text x="${left}" y="${top + barH + 36}" class="tick">token 0</text><text x="${W - left}" y="${top + barH + 36}" text-anchor="end" class="tick">${tok(total)}</text>${widened ? html`<text x="${W - left}" y="${H - 6}" text-anchor="end" class="tick">the narrowest widened to stay visible</text>` : ''}`
    : html`<text x="${left}" y="${H - 6}" class="tick">token 0</text><text x="${W - left}" y="${H - 6}" text-anchor="end" class="tick">${tok(total)}${widened ? ' (the narrowest segments are widened to stay visible)' : ''}</text>`}
</svg>`;
}

/** Colour key with names and meanings (the charts also label every bar in text). */
/**
 * `entries`: the catalog entries of the requests on the page, whose rules the legend explains (below_minimum: the
 * cache steps of those providers only); the rules of no provider in particular when not known.
 */
/** A class's colour, as the charts and the legend draw it. */
export const swatch = (c: string): Html => html`<svg width="14" height="14" aria-hidden="true"><rect width="14" height="14" rx="2" ${paint(c)}/></svg>`;

/** `explained`: classes the page explains elsewhere with its own figures (a request's): their colour and name only. */
export function legend(classes: readonly string[], opts: { breakpoint?: boolean; entries?: ReadonlyArray<Pick<ModelEntry, 'provider' | 'cache'>>; explained?: ReadonlySet<string> } = {}): Html {
  const help = (c: string) => (c === 'below_minimum' && opts.entries ? belowMinimumHelp(opts.entries) : CLASS_INFO[c]!.help);
  return html`<ul class="legend">${classes.map((c) => html`<li>${swatch(c)} <b>${CLASS_INFO[c]!.label}</b>${opts.explained?.has(c) ? '' : html` <span data-help="${c}">${help(c)}</span>`}</li>`)}${
    opts.breakpoint ? html`<li><svg width="14" height="14" aria-hidden="true"><path d="M 2 3 L 12 3 L 7 12 Z" fill="#0f172a" class="bp-mark"/></svg> <b>cache breakpoint</b> <span>where the request marks the end of a cacheable prefix</span></li>` : ''
  }</ul>`;
}
