// One recorded request: its segments along the prompt coloured by outcome,
// the provider's usage as received, and the provider's own diagnostics.

import { html } from 'hono/html';
import type { ModelEntry, ProviderFamily } from '../../../domain/catalog/types';
import type { RequestOutcome } from '../../../domain/reconcile/reconciler';
import type { Breakpoint, RenderedSegment } from '../../../domain/render/request';
import type { NormalizedUsage } from '../../../domain/usage/types';
import type { RequestRow } from '../../../store/store';
import { CLASS_INFO, legend, SEGMENT_ORDER, segmentBar, swatch, type BarSegment } from '../charts';
import { diffPair } from '../content';
import { shortSpan, span, tok, tokens, usd, when } from '../format';
import { failureView } from '../../views';
import { formatsNote, metric, requestLink, settingsNote, sourceLink, thinkingNote, type Html } from './parts';
import { shownRuns, sumClasses, SESSION_BATCHES_SHOWN } from '../../../domain/session-runs';
import { unknownModel } from '../../../domain/requests';
import { parseRef } from '../../../domain/ids';
import { driftAdvice, expiredUnderMinimum, lifetimeName, longerLifetime, requestWhyItems, type RequestWhy } from '../../../domain/reconcile/explain';
import { leakedByClass } from '../../../domain/reconcile/waterfall';

const json = (v: unknown) => JSON.stringify(v, null, 2);

/** `entry`: the catalog entry the request was priced as, whose rules its notices explain; `names`: its handles' names by id. */
export function requestPage(row: RequestRow, pruned?: (id: string) => boolean, entry?: ModelEntry, names?: ReadonlyMap<string, string>): Html {
  // Whether a hit renews the model's cache entries (Anthropic, most OpenAI models; not Gemini's).
  const refreshes = entry?.cache.refreshOnHit ?? true;
  const provider = entry?.provider;
  const segments = row.segments as RenderedSegment[];
  const outcome = (row.outcome ?? null) as RequestOutcome | null;
  const usage = (row.usage ?? null) as NormalizedUsage | null;
  const unclassified = row.status === 'failed' ? 'failed' : 'pending';
  // A long session's older batches are one entry, in the bar and the table: summed, not a row each.
  const runs = shownRuns(segments.map((s) => s.source));
  const bar: BarSegment[] = runs.map(([from, to]) => {
    const first = segments[from]!;
    const o = outcome?.segments[from];
    if (from === to) return { index: from, source: first.source, section: first.section, start: o ? o.start : first.token_start, end: o ? o.end : first.token_end, classes: o ? o.classes : null, unclassified };
    const last = segments[to]!;
    const os = outcome?.segments.slice(from, to + 1);
    return {
      index: from,
      count: to - from + 1,
      source: `${first.source} … ${last.source}`,
      section: first.section,
      start: os ? os[0]!.start : first.token_start,
      end: os ? os.at(-1)!.end : last.token_end,
      classes: os ? sumClasses(os.map((x) => x.classes)) : null,
      unclassified,
    };
  });
  // Breakpoints are placed in estimated tokens; scale them like the segments were.
  const estimated = segments.at(-1)?.token_end ?? 0;
  const total = bar.at(-1)?.end ?? 0;
  const breakpoints = (row.breakpoints as Breakpoint[]).map((b) => ({
    at: estimated ? (b.token_end / estimated) * total : 0,
    label: `cache breakpoint after segment #${b.segment + 1} (${b.ttl}, set by ${b.set_by})`,
  }));
  // The legend names only what this request's bar shows.
  const present = new Set(bar.flatMap((s) => (s.classes ? Object.keys(s.classes).filter((c) => s.classes![c]! > 0) : [unclassified])));
  // Input billed outside the segments (Gemini's tool-use prompts) is in the request's input cost, at full price either way.
  const unrendered = outcome?.tool_use_prompt?.cost ?? 0;
  const cost = outcome ? outcome.segments.reduce((a, s) => ({ actual: a.actual + s.cost.actual, perfect: a.perfect + s.cost.perfect }), { actual: unrendered, perfect: unrendered }) : null;
  // Each class's why with this request's figures, as `prefix-handles request` says it (domain/reconcile/explain.ts).
  const whys = outcome
    ? requestWhyItems({
        entry: entry && { id: entry.id, provider: entry.provider, cache: entry.cache },
        segments: outcome.segments.map((o, i) => ({ ...o, section: segments[i]?.section })),
        breakpoints: row.breakpoints as Breakpoint[],
        predicted_read: outcome.predicted.read,
        predicted_write: outcome.predicted.write,
        provider_read: outcome.capture === 'unknown' ? null : outcome.provider.read,
        provider_write: outcome.provider.write,
        complete: usage?.complete ?? true,
        first_in_scope: outcome.first_in_scope,
        overflow: outcome.overflow,
      })
    : [];
  // The legend keys the bar's colours; a class explained below with this request's figures needs no general words there.
  const explained = new Set<string>([...whys.map((w) => w.cls), ...(outcome?.drift ? ['drift'] : []), ...(outcome?.expired ? ['expired'] : [])]);

  return html`<h1>Request <code>${row.id}</code></h1>
<p class="sub">${row.model}${row.catalogFallback ? html` <span class="muted">(priced as ${row.catalogEntry})</span>` : ''} · ${row.format} · ${row.status ?? 'rendered'} · rendered ${when(row.renderedAt)}${row.startedAt ? ` · started ${when(row.startedAt)}` : ''}</p>
<dl class="metrics">
${metric('total_prompt_tokens', 'Prompt tokens (provider)', outcome?.total_prompt_tokens ?? null, outcome?.total_prompt_tokens == null ? 'not reported' : tok(outcome.total_prompt_tokens), { note: `≈${tokens(segments.at(-1)?.token_end ?? 0)} estimated` })}
${metric('provider.read', 'Read from cache (provider)', outcome?.provider.read ?? null, outcome ? (outcome.provider.read === null ? 'unknown' : tok(outcome.provider.read)) : '—')}
${metric('provider.write', 'Written to cache (provider)', outcome?.provider.write ?? null, outcome ? (outcome.provider.write === null ? 'not reported' : tok(outcome.provider.write)) : '—')}
${metric('predicted.read', 'Predicted read', outcome?.predicted.read ?? null, outcome ? tok(outcome.predicted.read) : '—', { note: 'by the cache simulation' })}
${cost && outcome?.capture !== 'unknown' ? metric('cost.leaked', 'Leaked on this request', cost.actual - cost.perfect, usd(cost.actual - cost.perfect), { tone: 'bad', note: `of ${usd(cost.actual)} input cost${leakedNote(outcome!.segments)}` }) : ''}
</dl>
${row.catalogFallback ? html`<p class="notice" data-warning="unknown_model">${unknownModel(row.model, row.catalogEntry).detail}.</p>` : ''}
${outcome?.capture === 'unknown' ? unknownNotice(usage) : ''}
${outcome?.total_mismatch ? mismatchNotice(outcome.total_mismatch) : ''}${outcome?.provider_history ? historyNotice(outcome.provider_history) : ''}
${outcome?.applied_late ? html`<p class="notice" data-notice="applied-late">Reported after calls of its cache scope that started later: simulated at ${when(outcome.applied_late.applied_at)}, not at its start (${when(outcome.applied_late.started_at)}), so a read the provider confirmed may show as <b>bonus</b> and a prefix as expired. Report calls as they finish, or import them in start order (<code>POST /v1/usage/batch</code> orders a batch by start).</p>` : ''}
${outcome ? '' : row.status === 'failed' ? html`<p class="notice" data-notice="failed">The provider call failed: there is no usage to reconcile (its error is below). The bar shows the rendered segments only.</p>` : html`<p class="notice">No usage report yet: the bar shows the rendered segments only.</p>`}
<div class="card"><h2 style="margin-top:0">The prompt, segment by segment</h2>
${segmentBar(bar, breakpoints, `Segments of ${row.id} coloured by outcome`)}
${legend([...SEGMENT_ORDER, 'pending', 'failed'].filter((c) => present.has(c)), { breakpoint: breakpoints.length > 0, entries: entry ? [entry] : undefined, explained })}</div>
<table data-table="segments" tabindex="0" data-scroll><thead><tr><th>#</th><th>Source</th><th>Section</th><th class="num">Tokens</th><th>Outcome</th><th class="num">Read</th><th class="num">Written</th><th class="num">Cost</th></tr></thead><tbody>
${bar.map((s) => {
    const os = outcome?.segments.slice(s.index, s.index + (s.count ?? 1));
    const o = os?.length ? { read: os.reduce((a, x) => a + x.read, 0), write: os.reduce((a, x) => a + x.write, 0), cost: os.reduce((a, x) => a + x.cost.actual, 0) } : null;
    const classes = Object.entries(s.classes ?? {}).filter(([, n]) => n > 0);
    const last = s.index + (s.count ?? 1) - 1;
    return html`<tr ${s.count ? html`data-segments="${s.index}-${last}"` : html`data-segment="${s.index}"`}><td class="num">${s.count ? `${s.index + 1}–${last + 1}` : s.index + 1}</td><td>${
      s.count ? html`${sourceLink(segments[s.index]!.source)} … ${sourceLink(segments[last]!.source)} <small class="muted">(${tokens(s.count)} earlier batches of the session, summed)</small>` : html`${sourceLink(s.source)}${nameOf(s.source, names)}`
    }</td><td>${s.section}</td><td class="num">${tok(s.end - s.start)}</td>
<td>${classes.length ? classes.map(([c, n], k) => html`${k ? ' · ' : ''}<span data-class="${c}" data-tokens="${n}">${CLASS_INFO[c]?.label ?? c} ${tokens(n)}</span>`) : html`<span class="muted">${row.status === 'failed' ? 'the call failed' : 'not reconciled'}</span>`}</td>
<td class="num">${o ? (outcome!.provider.read === null ? html`<span class="muted">unknown</span>` : tokens(o.read)) : '—'}</td><td class="num">${o ? (outcome!.provider.write === null ? html`<span class="muted">not reported</span>` : tokens(o.write)) : '—'}</td><td class="num">${o ? usd(o.cost) : '—'}</td></tr>`;
  })}</tbody></table>
${bar.some((s) => s.count) ? html`<p class="muted" data-segments-summed="${segments.length - bar.length + bar.filter((s) => s.count).length}">A session's batches before its newest ${tokens(SESSION_BATCHES_SHOWN)} are summed in one row here and one piece of the bar (${tokens(segments.length)} segments in all; each one: <code>GET /v1/requests/${row.id}</code>).</p>` : ''}
${outcome?.drift ? driftBlock(outcome.drift, pruned) : ''}
${outcome?.expired ? expiredBlock(outcome.expired, outcome.applied_late !== undefined, refreshes, provider, expiredUnderMinimum({ entry: entry && { id: entry.id, provider: entry.provider, cache: entry.cache }, segments: outcome.segments }), entry?.cache.ttls) : ''}
${outcome?.concurrent ? concurrentBlock(outcome.concurrent, outcome.applied_late?.applied_at ?? row.startedAt ?? row.renderedAt, entry?.cache.writesBilled, pruned) : ''}
${whys.length ? whysBlock(whys) : ''}
<div class="cols">
${row.status === 'failed'
    ? html`<div><h2>Provider error</h2><p class="muted">The call failed: its status and the provider's error body, as sent (status null: the provider could not be reached or did not answer in time).</p><pre class="content" data-raw="error" tabindex="0" data-scroll>${json(failureView(row.usageRaw))}</pre></div>`
    : html`<div><h2>Provider usage</h2>${usage ? usageTable(usage) : html`<p class="muted">None yet.</p>`}
${row.usageRaw !== undefined && row.usageRaw !== null ? html`<details><summary>As received</summary><pre class="content" data-raw="usage" tabindex="0" data-scroll>${json(row.usageRaw)}</pre></details>` : ''}</div>`}
<div><h2>Provider diagnostics</h2>${row.diagnostics !== undefined && row.diagnostics !== null
    ? html`<p class="muted">The provider's own explanation, shown beside ours.</p><pre class="content" data-raw="diagnostics" tabindex="0" data-scroll>${json(row.diagnostics)}</pre>`
    : html`<p class="muted">The provider sent no cache diagnostics.</p>`}</div>
</div>`;
}

/** A segment's handle by the name the team gave it, under its id (ids alone did not say which prompt it was). */
function nameOf(source: string, names?: ReadonlyMap<string, string>): Html | '' {
  const name = names?.get(parseRef(source)?.id ?? '');
  return name ? html`<br><small class="muted" data-source-name><bdi>${name}</bdi></small>` : '';
}

/** Every other class's tokens on this request, and why they are there with its own figures. */
function whysBlock(whys: RequestWhy[]): Html {
  return html`<h2>Why the tokens are in each class</h2><div class="card"><ul class="whys" data-whys>${whys.map(
    (w) => html`<li data-why="${w.cls}" data-tokens="${w.tokens}">${swatch(w.cls)} <b>${CLASS_INFO[w.cls]?.label ?? w.cls}</b> ${tokens(w.tokens)} tokens in ${w.segments}: <span data-why-text>${w.why}</span></li>`,
  )}</ul></div>`;
}

/** Why a request's capture is unknown: the provider said nothing of its cache, or the answer ended before its usage came. */
function unknownNotice(usage: NormalizedUsage | null): Html {
  const why = usage?.complete === false
    ? 'The answer ended before the provider reported its usage (a stream cut off or abandoned)'
    : 'The provider reported no cache fields for this request';
  return html`<p class="notice" data-notice="unknown">${why}: its capture is <b>unknown</b>, not 0%.</p>`;
}

/** `underMinimum`: why a fresh prefix would not have been read either (explain.ts), in place of the advice to keep it alive. */
function expiredBlock(e: NonNullable<RequestOutcome['expired']>, late: boolean, refreshes: boolean, provider: ProviderFamily | undefined, underMinimum: string | null, ttls?: ModelEntry['cache']['ttls']): Html {
  return html`<h2>Expired</h2><div class="card" data-expired><p style="margin:0">The prefix this call missed was last used (written or read) by a call that started at ${when(e.last_used_at)}:
<b data-gap="${e.gap_ms}">${span(e.gap_ms)}</b> ${late ? 'before this call was applied to its scope (it was reported after later calls)' : 'before this one'}, longer than its cache lifetime of <b>${lifetimeName(e.ttl, ttls)}</b>. ${
    underMinimum
      ? html`<span data-expired-under-minimum>But ${underMinimum}.</span>`
      : html`${refreshes ? 'A call within the lifetime keeps it alive' : 'On this model a hit does not renew it: it lives its lifetime from when it was written'}. ${longerLifetimeHtml(provider, e.ttl)}`
  }</p></div>`;
}

/** A prefix written again while the call that first wrote it had not started answering: that call, and by how much. */
function concurrentBlock(c: NonNullable<RequestOutcome['concurrent']>, startedAt: number, writesBilled: boolean | undefined, pruned?: (id: string) => boolean): Html {
  return html`<h2>Concurrent</h2><div class="card" data-concurrent><p style="margin:0">${requestLink(c.writer, pruned)} wrote this prefix: it started <b data-after="${startedAt - c.writer_started_at}">${shortSpan(startedAt - c.writer_started_at)}</b> before this call, and its write was readable only <b data-wait="${c.readable_at - startedAt}">${shortSpan(c.readable_at - startedAt)}</b> after this call started (from its first byte, or its end when that was not reported): ${writesBilled === false ? 'the provider had not cached it yet, so this call missed it and paid the full input price for it (this provider bills no cache write)' : 'the provider wrote the prefix again, and this call paid its write again'}.
Calls sent in parallel over one prefix all pay for it: send one first and the rest once it has started answering (a call with <code>max_tokens: 1</code> warms the cache), and they read it.</p></div>`;
}

/** longerLifetime's advice as a sentence, its `backticked` parts as code. */
function longerLifetimeHtml(provider: ProviderFamily | undefined, ttl: string): Html {
  const text = longerLifetime(provider, ttl);
  const parts = `${text[0]!.toUpperCase()}${text.slice(1)}.`.split('`');
  return html`${parts.map((part, i) => (i % 2 ? html`<code>${part}</code>` : part))}`;
}

function mismatchNotice(m: NonNullable<RequestOutcome['total_mismatch']>): Html {
  return html`<p class="notice" data-warning="total_mismatch">The provider counted <b>${tok(m.reported)}</b> prompt tokens where the rendered request holds about ${tok(m.estimated)}${m.ratio === null ? '' : ` (×${m.ratio})`}:
this may not be the request that was rendered (a usage report sent for another request, a body changed after rendering), or it holds images, estimated as text.
The segments are scaled to the provider's total; this report is left out of calibration.</p>`;
}

function historyNotice(p: NonNullable<RequestOutcome['provider_history']>): Html {
  if (p.field === 'cachedContent')
    return html`<p class="notice" data-warning="provider_history">This call reads a Gemini explicit cache (<code>cachedContent</code>): about <b>${tok(p.tokens)}</b> of the provider's prompt tokens
are that cache's content, never rendered here${p.read === null ? '' : html` (${tok(p.read)} of them read from it)`}. It stands before everything in the request: the segments show the provider's figures over the rendered part only, and this report is left out of calibration.</p>`;
  return html`<p class="notice" data-warning="provider_history">This call continues a conversation the provider keeps (<code>${p.field}</code>): about <b>${tok(p.tokens)}</b> of the provider's prompt tokens
are that history, never rendered here${p.read === null ? '' : html` (${tok(p.read)} of them read from its cache)`}. It stands after the tools and instructions and before this call's input: the segments show the provider's figures over the rendered part only, and this report is left out of calibration.</p>`;
}

function usageTable(u: NormalizedUsage): Html {
  const n = (v: number | null) => (v === null ? html`<span class="muted">not reported</span>` : tok(v));
  return html`<dl class="kv" data-usage>
<dt>Provider shape</dt><dd>${u.provider}${u.model ? ` (${u.model})` : ''}</dd>
<dt>Total prompt tokens</dt><dd data-value="${u.total_prompt_tokens ?? ''}">${n(u.total_prompt_tokens)}</dd>
<dt>Cache read</dt><dd data-value="${u.cache_read_tokens ?? ''}">${n(u.cache_read_tokens)}</dd>
<dt>Cache write</dt><dd data-value="${u.cache_write_tokens ?? ''}">${n(u.cache_write_tokens)}${u.cache_write_by_ttl ? ` (${Object.entries(u.cache_write_by_ttl).map(([k, v]) => `${k}: ${tokens(v)}`).join(', ')})` : ''}</dd>
<dt>Uncached</dt><dd data-value="${u.uncached_tokens ?? ''}">${n(u.uncached_tokens)}</dd>
${u.tool_use_prompt_tokens !== undefined ? html`<dt>Tool-use prompt tokens</dt><dd data-value="${u.tool_use_prompt_tokens ?? ''}">${n(u.tool_use_prompt_tokens)} <small class="muted">(input, outside the prompt total)</small></dd>` : ''}
<dt>Output tokens</dt><dd>${n(u.output_tokens)}</dd>
<dt>Cache fields reported</dt><dd>${u.cache_fields_reported ? 'yes' : 'no: capture unknown'}</dd>
<dt>Complete</dt><dd>${u.complete ? 'yes' : 'no: the stream ended before its final usage'}</dd>
</dl>`;
}

function driftBlock(d: NonNullable<RequestOutcome['drift']>, pruned?: (id: string) => boolean): Html {
  const subject = d.handle === 'inline' ? html`Content this scope had sent before` : html`${sourceLink(d.handle)}`;
  if (d.thinking) return html`<h2>Drift</h2><div class="card" data-drift-thinking><p style="margin-top:0">${subject} repeated since ${requestLink(d.previous_request, pruned)}: ${thinkingNote(d.segment, d.thinking, d.reasoning_context)}.</p></div>`;
  const advice = driftAdvice(d);
  const fix = advice === null ? '' : html`<p data-drift-advice>To be read: ${advice}.</p>`;
  if (d.settings?.length) return html`<h2>Drift</h2><div class="card" data-drift-settings><p style="margin-top:0">${subject} repeated, but since ${requestLink(d.previous_request, pruned)} ${settingsNote(d.settings, d.segment)}.</p>${fix}</div>`;
  const pair = d.now.excerpt !== undefined && d.before.excerpt !== undefined ? diffPair(d.before.excerpt, d.now.excerpt) : null;
  // The changed segment can be the handle's own (another API format serialises it to other bytes).
  const what = d.now.source === d.handle ? html`its own bytes (segment <b>#${d.segment + 1}</b>) changed` : html`segment <b>#${d.segment + 1}</b> before it changed`;
  return html`<h2>Drift</h2><div class="card"><p style="margin-top:0">${sourceLink(d.handle)} repeated, but ${what} since ${requestLink(d.previous_request, pruned)}${
    d.byte_offset !== undefined ? html`, first at byte <b>${tokens(d.byte_offset)}</b>` : ''
  }${formatsNote(d.formats)}.</p>
${pair ? html`<div class="pair"><div><b>Before</b><pre data-side="before">${pair.before}</pre></div><div><b>Now</b><pre data-side="now">${pair.now}</pre></div></div>` : html`<p class="muted">${d.before.source} → ${d.now.source}</p>`}${fix}</div>`;
}

/** The request's leaked money by cause, the costliest first ("": nothing leaked), as the reports divide it. */
function leakedNote(segments: RequestOutcome['segments']): string {
  const byClass = new Map<string, number>();
  for (const s of segments) for (const [c, v] of Object.entries(leakedByClass(s.classes, s.cost, true) ?? {}) as Array<[string, number]>) byClass.set(c, (byClass.get(c) ?? 0) + v);
  const shown = [...byClass].filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
  return shown.length ? `; ${shown.map(([c, v]) => `${CLASS_INFO[c]!.label} ${usd(v)}`).join(' · ')}` : '';
}
