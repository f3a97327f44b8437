// The page shell: inline CSS, the one inline script, and headers that keep
// untrusted content inert even if an escape were ever missed.

import { createHash } from 'node:crypto';
import type { Context } from 'hono';
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { CLASS_INFO, SVG_DEFS } from './charts';
import { LIVE_SCRIPT } from './live-script';

type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

const CSS = `
:root { color-scheme: light; --ink:#0f172a; --muted:#64748b; --line:#e2e8f0; --bg:#f8fafc; --card:#fff; --accent:#1d4ed8; --good:#15803d; --bad:#b91c1c;
  --on-ink:#fff; --head:#0f172a; --th:#475569; --th-bg:#f1f5f9; --field:#cbd5e1; --faint:#94a3b8; --chart-ink:#1e293b; --rate:#16a34a; --dot:#cbd5e1;
  --mark:#fde68a; --mark-edge:#f59e0b; --diff:#fecaca; --diff-edge:#ef4444; --notice:#fff7ed; --notice-edge:#fed7aa; --error:#fef2f2; --error-edge:#fecaca; --error-ink:#991b1b; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color:var(--ink); background:var(--bg); }
header.top { display:flex; align-items:center; gap:16px; padding:10px 24px; background:var(--head); color:#e2e8f0; }
header.top a { color:#e2e8f0; text-decoration:none; }
header.top .brand { font-weight:700; letter-spacing:.02em; }
header.top .who { margin-left:auto; color:#94a3b8; font-size:12px; }
header.top form { margin:0; }
header.top button { background:transparent; color:#e2e8f0; border:1px solid #475569; border-radius:4px; padding:3px 10px; cursor:pointer; }
main { max-width:1120px; margin:0 auto; padding:20px 24px 48px; }
h1 { font-size:22px; margin:4px 0 4px; }
h1 code { font-size:15px; color:var(--muted); font-weight:400; }
h2 { font-size:16px; margin:28px 0 8px; }
.sub { color:var(--muted); margin:0 0 12px; }
a { color:var(--accent); }
/* Where the keyboard is, on every link and control (and a table or text box that scrolls): a ring the pointer never draws. */
:focus-visible { outline:2px solid var(--accent); outline-offset:2px; }
header.top :focus-visible { outline-color:#93c5fd; }
/* A chart row's ring is its bar's stroke; not its unseen hit area's, which spans the chart: stroked, it drew a second box
   around the row, cut at the chart's edges, through the row's name on a phone. */
svg.chart a:focus-visible { outline:none; } svg.chart a:focus-visible rect:not(.hit) { stroke:var(--ink); stroke-width:2px; } svg.chart a:focus-visible text.lbl { font-weight:700; }
main:focus { outline:none; }
/* The first Tab stop: past the header to the page's content. Off screen until focused. */
a.skip { position:absolute; left:8px; top:-48px; padding:6px 12px; background:var(--card); color:var(--accent); border-radius:4px; z-index:10; }
a.skip:focus { top:8px; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:12.5px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 16px; margin:12px 0; }
.periods { display:inline-flex; border:1px solid var(--line); border-radius:6px; overflow:hidden; background:var(--card); }
.periods a { padding:5px 12px; text-decoration:none; color:var(--ink); border-right:1px solid var(--line); }
.periods a:last-child { border-right:0; }
.periods a[aria-current="page"] { background:var(--ink); color:var(--on-ink); }
/* The chooser clips what is outside it (its rounded corners): the ring is drawn inside each link. */
.periods a:focus-visible { outline-offset:-4px; } .periods a[aria-current="page"]:focus-visible { outline-color:var(--on-ink); }
.toolbar { display:flex; align-items:center; gap:16px; flex-wrap:wrap; margin:8px 0 4px; }
/* A chosen range: two days and a button, wrapping on a phone (never wider than the screen); a refused one's reason below. */
form.range { display:inline-flex; flex-wrap:wrap; align-items:center; gap:6px; margin:0; }
form.range input { padding:4px 6px; font:inherit; border:1px solid var(--field); border-radius:6px; background:var(--card); color:var(--ink); max-width:100%; }
form.range input[aria-invalid="true"] { border-color:var(--bad); }
form.range button { padding:5px 12px; font-size:14px; background:var(--ink); color:var(--on-ink); border:0; border-radius:6px; cursor:pointer; }
.toolbar > p.error, .toolbar > p.notice { flex-basis:100%; margin:0; }
.live { font-size:12px; color:var(--muted); }
.live .dot { display:inline-block; width:8px; height:8px; border-radius:50%; background:var(--dot); margin-right:4px; vertical-align:middle; }
[data-live-state="open"] .live .dot, .live.open .dot { background:var(--rate); }
.metrics { display:grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap:10px; margin:12px 0; }
.metric { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:10px 12px; }
.metric dt { font-size:12px; color:var(--muted); }
.metric dd { margin:2px 0 0; font-size:20px; font-weight:650; font-variant-numeric: tabular-nums; }
.metric dd small { display:block; font-size:12px; color:var(--muted); font-weight:400; }
.metric.good dd { color:var(--good); } .metric.bad dd { color:var(--bad); }
table { border-collapse:collapse; width:100%; background:var(--card); }
th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-size:12px; color:var(--th); font-weight:600; background:var(--th-bg); }
td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; white-space:nowrap; }
td.rate-cell, td[data-model], [data-biggest-leak] small { white-space:nowrap; }
/* A cause's swatch and name are one line (on a phone they wrapped apart). */
td.cause { white-space:nowrap; }
/* Download CSV is one link on one line (on a phone it broke between its two words, after a heading). */
a[data-csv] { white-space:nowrap; }
.rate { display:inline-block; width:60px; height:8px; background:var(--line); border-radius:4px; margin-right:6px; vertical-align:middle; overflow:hidden; }
.rate i { display:block; height:100%; background:var(--rate); }
svg.chart { display:block; max-width:100%; height:auto; }
svg.chart text { font-size:12px; fill:var(--chart-ink); }
svg.chart .lbl.total { font-weight:700; }
svg.chart .pct, svg.chart .tick { fill:var(--muted); font-size:11px; }
svg.chart .val { font-variant-numeric: tabular-nums; font-weight:600; }
svg.chart .barlbl { font-size:11px; font-weight:600; fill:var(--ink); paint-order:stroke; stroke:var(--card); stroke-width:3px; }
svg.chart .seglbl { font-size:12px; font-weight:600; fill:var(--ink); paint-order:stroke; stroke:var(--card); stroke-width:3px; }
svg.chart .zero text { fill:var(--faint); }
/* A waterfall row that leads to its requests: its name reads as a link. */
svg.chart a text.lbl { fill:var(--accent); text-decoration:underline; } svg.chart a:hover rect { opacity:.8; }
svg.chart .connector { stroke:var(--faint); stroke-dasharray:2 2; }
svg.chart.wf-narrow { display:none; max-width:420px; }
/* A phone draws the waterfall with its text above the bars (charts.ts): the wide one's would shrink to 5 px. */
@media (max-width: 700px) { svg.chart[data-chart="waterfall"] { display:none; } svg.chart.wf-narrow { display:block; } }
/* The same for the capture rate per day: the phone's chart is drawn 360 wide, its text 9–11 px instead of 4. */
svg.chart.ct-narrow { display:none; }
@media (max-width: 700px) { svg.chart[data-chart="capture-trend"] { display:none; } svg.chart.ct-narrow { display:block; } }
svg.chart.lt-narrow { display:none; }
@media (max-width: 700px) { svg.chart[data-chart="leaked-trend"] { display:none; } svg.chart.lt-narrow { display:block; } }
/* And a request's segment bar: the phone's is drawn 320 wide, its names and numbers only where they fit (charts.ts). */
svg.chart.sb-narrow { display:none; max-width:420px; }
@media (max-width: 700px) { svg.chart[data-chart="segments"] { display:none; } svg.chart.sb-narrow { display:block; } }
svg.chart .axis { stroke:var(--faint); } svg.chart .grid { stroke:var(--line); } svg.chart .sep { stroke:var(--card); stroke-width:2; }
.legend { list-style:none; padding:0; margin:8px 0 0; display:grid; grid-template-columns: repeat(auto-fit, minmax(320px, 1fr)); gap:2px 16px; font-size:12px; }
.legend li span { color:var(--muted); }
.legend svg { vertical-align:-2px; }
.whys { list-style:none; padding:0; margin:0; display:grid; gap:6px; }
.whys svg { vertical-align:-2px; }
.whys li span { color:var(--muted); overflow-wrap:anywhere; }
pre.content { white-space:pre-wrap; word-break:break-word; max-height:420px; overflow:auto; background:var(--card); border:1px solid var(--line); border-radius:6px; padding:10px; margin:6px 0; }
mark { background:var(--mark); color:inherit; border-radius:2px; padding:0 1px; outline:1px solid var(--mark-edge); }
mark.diff { background:var(--diff); outline-color:var(--diff-edge); }
.pair { display:grid; grid-template-columns:1fr 1fr; gap:10px; }
.pair pre { white-space:pre-wrap; word-break:break-all; background:var(--card); border:1px solid var(--line); border-radius:6px; padding:8px; margin:4px 0 0; }
.pair .same { color:var(--muted); }
.muted { color:var(--muted); }
.empty { padding:24px; text-align:center; color:var(--muted); }
.notice { background:var(--notice); border:1px solid var(--notice-edge); border-radius:6px; padding:8px 12px; }
.error { background:var(--error); border:1px solid var(--error-edge); color:var(--error-ink); border-radius:6px; padding:8px 12px; }
form.signin { max-width:420px; margin:80px auto; }
form.signin label { display:block; font-weight:600; margin-bottom:6px; }
form.signin input[type=password] { width:100%; padding:8px 10px; font-size:14px; border:1px solid var(--field); border-radius:6px; }
form.signin button, form.inline button { margin-top:12px; padding:7px 16px; font-size:14px; background:var(--ink); color:var(--on-ink); border:0; border-radius:6px; cursor:pointer; }
form.inline { display:flex; gap:8px; align-items:center; } form.inline input { padding:5px 8px; border:1px solid var(--field); border-radius:6px; width:260px; } form.inline button { margin:0; padding:5px 12px; }
dl.kv { display:grid; grid-template-columns: max-content 1fr; gap:4px 16px; margin:0; }
dl.kv dt { color:var(--muted); } dl.kv dd { margin:0; font-variant-numeric: tabular-nums; }
.cols { display:grid; grid-template-columns: 1fr 1fr; gap:16px; }
/* A phone: wide tables scroll on their own, not the whole page, and the header wraps to keep Sign out on screen; a
   caption is a block of the table's visible width, wrapped there (as a table caption it was as wide as the columns,
   past the scroll box's right edge). An API call named in a muted line (GET /v1/requests?handle=…&class=…&from=…)
   wraps where it must: one word of no spaces, it ran 40 px past a 390 px screen and the page scrolled sideways. */
@media (max-width: 800px) { .cols, .pair { grid-template-columns: 1fr; } table { display:block; overflow-x:auto; } caption { display:block; text-align:left; } header.top { flex-wrap:wrap; } h1 { overflow-wrap:anywhere; } p.muted > code, small.muted > code { overflow-wrap:anywhere; } form.inline input { width:auto; flex:1; min-width:0; } }
`;

/**
 * The dark scheme, chosen by the system or browser (prefers-color-scheme): the light scheme's variables above, other
 * values, and each class's mark its dark colour (charts.ts: same hue, lighter; `unknown` stays hatched, its pattern
 * darker). Nothing above changes, so the light scheme is drawn as before, pixel for pixel. `color-scheme` makes the
 * browser draw form fields and scroll bars dark too.
 */
const DARK = `
@media (prefers-color-scheme: dark) {
:root { color-scheme: dark; --ink:#e2e8f0; --muted:#94a3b8; --line:#334155; --bg:#0f172a; --card:#1e293b; --accent:#93c5fd; --good:#4ade80; --bad:#f87171;
  --on-ink:#0f172a; --head:#020617; --th:#cbd5e1; --th-bg:#0f172a; --field:#64748b; --faint:#64748b; --chart-ink:#e2e8f0; --rate:#4ade80; --dot:#475569;
  --mark:#854d0e; --mark-edge:#f59e0b; --diff:#7f1d1d; --diff-edge:#ef4444; --notice:#431407; --notice-edge:#9a3412; --error:#450a0a; --error-edge:#991b1b; --error-ink:#fecaca; }
header.top { border-bottom:1px solid var(--line); }
${Object.entries(CLASS_INFO)
  .filter(([c]) => c !== 'unknown')
  .map(([c, i]) => `.k-${c} { fill:${i.dark}; }`)
  .join(' ')}
svg.chart .nil { fill:#475569; } .bp-mark { fill:#e2e8f0; } .hatch-bg { fill:#374151; } .hatch-line { stroke:#9ca3af; }
}
`;

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('base64');

// Only the one known script may run, and nothing may load from elsewhere.
const CSP = [
  "default-src 'none'",
  "style-src 'unsafe-inline'",
  `script-src 'sha256-${sha256(LIVE_SCRIPT)}'`,
  "connect-src 'self'",
  "img-src 'self' data:",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** On every dashboard answer (pages, fragments, CSV downloads, the event stream, sign-in refusals): routes.ts sets them. */
export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export interface PageOptions {
  title: string;
  body: Html;
  /** The signed-in tenant (omitted on the sign-in page). */
  tenantId?: string;
  status?: ContentfulStatusCode;
}

export function page(c: Context, o: PageOptions) {
  const doc = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<title>${o.title} · prefix-handles</title><style>${raw(CSS + DARK)}</style></head>
<body>${SVG_DEFS}
<a class="skip" href="#main">Skip to content</a>
<header class="top"><a class="brand" href="/ui">prefix-handles</a>${o.tenantId ? html`<a href="/ui">Overview</a><span class="who">tenant <code>${o.tenantId}</code></span><form method="post" action="/ui/sign-out"><button type="submit">Sign out</button></form>` : ''}</header>
<main id="main" tabindex="-1">${o.body}</main>
${o.tenantId ? html`<script>${raw(LIVE_SCRIPT)}</script>` : ''}
</body></html>`;
  return c.html(doc, o.status ?? 200);
}

/** Just the HTML of a fragment, for the live view to swap in. */
export function fragment(c: Context, body: Html) {
  return c.html(body);
}
