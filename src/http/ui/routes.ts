import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { html } from 'hono/html';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import type { AppDeps, Services } from '../../app';
import { DomainError, invalid } from '../../domain/errors';
import { CLASSES, type TokenClass } from '../../domain/reconcile/waterfall';
import { HANDLE_TYPES, parseRef, type HandleType } from '../../domain/ids';
import { refuseFilterCombination } from '../../domain/requests';
import type { DayPoint } from './charts';
import type { Finding } from './content';
import { DAY_MS, day, parseSpan, type Span, type SpanChoice } from './format';
import { dayOf } from '../../domain/time-zone';
import { fragment, page, SECURITY_HEADERS } from './layout';
import { BATCHES_SHOWN, handleLive, handlePage, VERSIONS_SHOWN, type ContentSource, type Family, type HandleView } from './pages/handle';
import type { HandleRow, RequestRow, VersionRow } from '../../store/store';
import type { ModelEntry } from '../../domain/catalog/types';
import { MAX_ROWS, overviewLive, overviewPage, sessionsLive, sessionsPage, type SessionsReport, type TenantReport } from './pages/overview';
import type { ReportRange, Totals } from '../../domain/reconcile/reports';
import { requestPage } from './pages/request';
import { requestsPage } from './pages/requests';
import { filterWords } from './pages/parts';
import { requestSummaryView } from '../views';
import { csvAnswer, csvFilename, handleReportCsv, tenantReportCsv } from '../csv';
import { requireSignIn, safeNext, signIn, signInPage, signOut, type UiEnv } from './session';

/** Requests shown on a handle's page, newest first (the API lists the rest). */
const RECENT_REQUESTS = 10;
/** Requests shown on a handle's page filtered by class (`?class=`): those behind a leak figure, the API's page. */
const CLASS_REQUESTS = 50;

/** Days on the capture-rate chart for "all": older days are in the waterfall, not drawn per day. */
const ALL_DAYS = 90;
/** Days the per-day charts draw at most: a year, each day a bar (a chosen range can span decades). */
const MAX_CHART_DAYS = 366;
/** Sources of a bundle or session shown with their content. */
const MAX_SOURCES = 20;
/** A comment line now and then keeps proxies from closing an idle event stream. */
const KEEPALIVE_MS = 15_000;

/**
 * The dashboard at /ui: server-rendered pages over the same domain services
 * as the JSON API (so the figures are the API's), and an event stream that
 * tells an open page to re-fetch its figures when usage is reconciled.
 */
export function uiRoutes(deps: AppDeps, services: Services) {
  const ui = new Hono<UiEnv>();
  const now = () => deps.clock.now();

  // Every dashboard answer carries the pages' headers, not only the HTML ones: the CSV downloads (a tenant's figures
  // and handle names, behind its cookie: never stored by a shared cache, never sniffed as HTML), the event stream,
  // the sign-in refusals and redirects. An answer that set its own (the stream's Cache-Control) keeps it.
  const headersOnEveryAnswer: MiddlewareHandler = async (c, next) => {
    await next();
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) if (!c.res.headers.has(k)) c.res.headers.set(k, v);
  };
  ui.use('/ui', headersOnEveryAnswer);
  ui.use('/ui/*', headersOnEveryAnswer);

  ui.get('/ui/sign-in', (c) => signInPage(c, { next: safeNext(c.req.query('next')) }));
  ui.post('/ui/sign-in', (c) => signIn(c, services.tenants));
  ui.post('/ui/sign-out', (c) => signOut(c));

  ui.use('/ui/fragments/*', requireSignIn(services.tenants, 'api'));
  ui.use('/ui/events', requireSignIn(services.tenants, 'api'));
  ui.use('/ui', requireSignIn(services.tenants, 'page'));
  ui.use('/ui/sessions', requireSignIn(services.tenants, 'page'));
  ui.use('/ui/reports.csv', requireSignIn(services.tenants, 'page'));
  ui.use('/ui/handles/*', requireSignIn(services.tenants, 'page'));
  ui.use('/ui/requests', requireSignIn(services.tenants, 'page'));
  ui.use('/ui/requests/*', requireSignIn(services.tenants, 'page'));

  /**
   * The overview's figures: artifacts and bundles ranked (the state a team curates), the sessions as one row (an agent
   * has one per conversation: hundreds would push the rest off the ranking), and the tenant's totals per day.
   */
  const tenantReport = (c: Context<UiEnv>, span: Span): TenantReport => {
    const t = now();
    const range = span.range;
    const tenantId = c.get('tenantId');
    const { perDay, label } = chartDays(range, t, span.zone);
    return {
      ...services.reports.tenant(tenantId, range, t, MAX_ROWS, ['artifact', 'bundle']),
      no_handle_models: services.reports.noHandleByModel(tenantId, range, t),
      sessions: services.reports.typeTotals(tenantId, range, t, 'session'),
      days: dayPoints(services.reports.tenantDays(tenantId, perDay, undefined, t), perDay),
      daysLabel: label,
    };
  };
  /** The sessions' page: their figures summed, then each by leaked money. */
  const sessionsReport = (c: Context<UiEnv>, span: Span): SessionsReport => {
    const t = now();
    const range = span.range;
    return { ...services.reports.tenant(c.get('tenantId'), range, t, MAX_ROWS, ['session']), sessions: services.reports.typeTotals(c.get('tenantId'), range, t, 'session') };
  };
  /** The catalog entries of the tenant's latest requests in the period: whose rules the overview's legend explains. */
  const tenantEntries = (c: Context<UiEnv>, span: Span) => entriesOf(services.requests.list(c.get('tenantId'), { limit: RECENT_REQUESTS, range: span.range }).rows);
  /**
   * The span a page's query asks (`?period=` or `?from=&to=`): a refused one is the default period, the page saying
   * why at its form, as a 400 (as a refused `?class=` is one).
   */
  const choiceOf = (c: Context<UiEnv>): SpanChoice =>
    parseSpan({ period: c.req.query('period'), from: c.req.query('from'), to: c.req.query('to') }, now(), services.tenants.zoneOf(c.get('tenantId')));
  const statusOf = (choice: SpanChoice) => (choice.error ? 400 : 200);
  /** A page's title names a chosen range (a bookmark's name: "Overview, 1–30 Nov 2026", "Overview, through 30 Nov 2026"), not a period counted from today. */
  const titled = (title: string, choice: SpanChoice) => (choice.span.period ? title : `${title}, ${choice.span.label.replace(/^Through /, 'through ')}`);
  /** The same for a fragment or a download, whose links the pages build from a span they accepted: a refused one is a 400 page. */
  const acceptedChoice = (c: Context<UiEnv>): SpanChoice => {
    const choice = choiceOf(c);
    if (choice.error) throw invalid(`query:${choice.error.field}`, choice.error.message.replace(/\. Showing .*$/, ''));
    return choice;
  };
  const spanOf = (c: Context<UiEnv>): Span => acceptedChoice(c).span;
  /** The catalog entries these requests were priced as, each once; undefined when there are none (no rules to name). */
  const entriesOf = (rows: RequestRow[]): ModelEntry[] | undefined => {
    const entries = [...new Set(rows.map((r) => r.catalogEntry))].flatMap((id) => deps.catalog.byId(id) ?? []);
    return entries.length ? entries : undefined;
  };

  ui.get('/ui', (c) => {
    const choice = choiceOf(c);
    return page(c, { tenantId: c.get('tenantId'), body: overviewPage(tenantReport(c, choice.span), choice, tenantEntries(c, choice.span)), status: statusOf(choice), title: titled('Overview', choice) });
  });
  ui.get('/ui/', (c) => c.redirect('/ui', 301));
  ui.get('/ui/fragments/overview', (c) => {
    const span = spanOf(c);
    return fragment(c, overviewLive(tenantReport(c, span), span, tenantEntries(c, span)));
  });

  ui.get('/ui/sessions', (c) => {
    const choice = choiceOf(c);
    return page(c, { tenantId: c.get('tenantId'), body: sessionsPage(sessionsReport(c, choice.span), choice), status: statusOf(choice), title: titled('Sessions', choice) });
  });
  ui.get('/ui/fragments/sessions', (c) => {
    const span = spanOf(c);
    return fragment(c, sessionsLive(sessionsReport(c, span), span));
  });

  ui.get('/ui/handles/:id', (c) => {
    // A ref (art_…@2, as the API and the CLI print them): its handle's page, which breaks the figures down by version.
    const ref = /^((?:art|bnd|ses)_[0-9A-Za-z]+)@\d+$/.exec(c.req.param('id'));
    if (ref) return c.redirect(`/ui/handles/${ref[1]}${new URL(c.req.url).search}`, 303);
    const filter = { cls: parseClass(c.req.query('class')), model: parseModel(c, c.req.query('model')) };
    const choice = choiceOf(c);
    const view = handleView(c.get('tenantId'), c.req.param('id'), choice, true, parseThrough(c.req.query('batches')), filter);
    return page(c, { tenantId: c.get('tenantId'), body: handlePage(view), status: statusOf(choice), title: titled(view.report.handle.name ?? view.report.handle.id, choice) });
  });
  // The period's reports as the API exports them (GET /v1/reports?format=csv&bom=true with the period's range: every
  // handle). A download from here is opened by a double click, in Excel as often as not: with the byte-order mark it
  // reads UTF-8 names as written.
  ui.get('/ui/reports.csv', (c) => {
    const span = spanOf(c);
    const report = services.reports.tenant(c.get('tenantId'), span.range, now());
    return csvAnswer(c, tenantReportCsv(report as unknown as Record<string, unknown>), csvFilename('report', { from: span.from ?? null, to: span.to }), { bom: true });
  });
  ui.get('/ui/handles/:id/report.csv', (c) => {
    const span = spanOf(c);
    const report = services.reports.handle(c.get('tenantId'), c.req.param('id'), span.range, now());
    return csvAnswer(c, handleReportCsv(report as unknown as Record<string, unknown>), csvFilename(`report_${report.handle.id}`, { from: span.from ?? null, to: span.to }), { bom: true });
  });
  ui.get('/ui/fragments/handles/:id', (c) => {
    return fragment(c, handleLive(handleView(c.get('tenantId'), c.req.param('id'), acceptedChoice(c), false)));
  });

  ui.get('/ui/requests', (c) => {
    const id = c.req.query('id')?.trim();
    if (id) return c.redirect(`/ui/requests/${encodeURIComponent(id)}`, 303);
    // A handle's requests are listed on its page (the API's ?handle= filter, as a page), for the period asked.
    const handle = c.req.query('handle')?.trim();
    const period = c.req.query('period');
    const [from, to] = [c.req.query('from'), c.req.query('to')];
    const cls = c.req.query('class');
    const model = c.req.query('model');
    const type = parseType(c.req.query('type'));
    const noHandle = parseNoHandle(c.req.query('no_handle'));
    // A blank handle is a mistake to say (as a blank x-ph-session is), never the tenant-wide list.
    if (handle === '') throw invalid('query:handle', 'handle must name a handle (art_…, bnd_…, ses_…)');
    // A type or no_handle with a handle is refused as the API refuses it, not dropped on the way to the handle's page.
    refuseFilterCombination({ handleId: handle, handleType: type, noHandle, tokenClass: parseClass(cls) });
    if (handle) {
      // The span as asked (the handle's page says why if it refuses it).
      const span = from || to ? `from=${encodeURIComponent(from ?? '')}&to=${encodeURIComponent(to ?? '')}` : period === undefined ? '' : `period=${parseSpan({ period }, now()).span.period}`;
      const query = [span, cls !== undefined ? `class=${encodeURIComponent(cls)}` : '', model !== undefined ? `model=${encodeURIComponent(model)}` : '']
        .filter(Boolean)
        .join('&');
      return c.redirect(`/ui/handles/${encodeURIComponent(handle)}${query ? `?${query}` : ''}#recent-requests`, 303);
    }
    if (cls === undefined && model === undefined && type === undefined && !noHandle) return c.redirect('/ui', 303);
    // The tenant's requests with a class (on one type's handles), of a model, through no handle (the overview's
    // figures): the API's filtered page, its scan bounded as there.
    const filter = { cls: parseClass(cls), type, model: parseModel(c, model), noHandle };
    const choice = choiceOf(c);
    const range = choice.span.range;
    const listed = services.requests.list(c.get('tenantId'), { limit: CLASS_REQUESTS, range, tokenClass: filter.cls, handleType: type, model: filter.model, noHandle });
    const view = { ...filter, choice, span: choice.span, range, rows: listed.rows.map((row) => requestSummaryView(row, undefined, type)), more: listed.next !== null, budgetSpent: !!listed.budgetSpent, scanned: listed.scanned ?? 0 };
    return page(c, { tenantId: c.get('tenantId'), body: requestsPage(view), status: statusOf(choice), title: titled(`Requests ${filterWords(filter)}`, choice) });
  });
  ui.get('/ui/requests/:id', (c) => {
    const row = services.requests.get(c.get('tenantId'), c.req.param('id'));
    const entry = deps.catalog.byId(row.catalogEntry);
    // The names of the handles its segments came from, each read once (a long session's batches share one id).
    const names = new Map<string, string>();
    for (const id of new Set((row.segments as Array<{ source: string }>).flatMap((s) => parseRef(s.source)?.id ?? []))) {
      const h = deps.store.getHandle(id);
      if (h && h.tenantId === c.get('tenantId') && h.name) names.set(id, h.name);
    }
    return page(c, { title: `Request ${row.id}`, tenantId: c.get('tenantId'), body: requestPage(row, (rid) => services.retention.isPruned(rid), entry, names) });
  });

  ui.get('/ui/events', (c) => {
    const tenantId = c.get('tenantId');
    const handle = c.req.query('handle');
    return streamSSE(c, async (stream) => {
      // Subscribe before saying "ready": nothing reconciled after that is missed.
      const off = services.reconciler.onReconciled((e) => {
        if (e.tenantId !== tenantId || (handle && !e.handles.includes(handle))) return;
        void stream.writeSSE({ event: 'reconciled', data: JSON.stringify({ request_id: e.requestId }) });
      });
      const keepalive = setInterval(() => void stream.write(': keepalive\n\n'), KEEPALIVE_MS);
      // A stopping service ends the stream (the page reconnects elsewhere), rather than wait for its grace to cut it.
      const stopping = services.stopping.signal;
      let stop = () => {};
      const closed = new Promise<void>((resolve) => {
        stream.onAbort(resolve);
        c.req.raw.signal.addEventListener('abort', () => resolve(), { once: true });
        stop = resolve;
        if (stopping.aborted) resolve();
        else stopping.addEventListener('abort', stop, { once: true });
      });
      try {
        await stream.writeSSE({ event: 'ready', data: '{}', retry: 1000 });
        await closed;
      } finally {
        off();
        clearInterval(keepalive);
        // The signal lives as long as the process: a listener left on it would keep each closed stream's closure.
        stopping.removeEventListener('abort', stop);
      }
    });
  });

  ui.all('/ui/*', (c) => page(c, { title: 'Not found', body: html`<h1>Not found</h1><p><a href="/ui">Back to the overview</a></p>`, status: 404 }));

  // Domain errors become pages (a tenant never learns another tenant's handle exists: same 404).
  ui.onError((err, c) => {
    if (!(err instanceof DomainError)) throw err;
    const status = err.code === 'not_found' || err.code === 'request_pruned' ? 404 : err.code === 'gone' ? 410 : err.code === 'invalid_request' ? 400 : 409;
    const pruned = err.code === 'request_pruned';
    // The tab's title says what the heading says: a refused ?class= (400) or a deleted handle (410) was titled "Not found".
    const heading = pruned ? 'Pruned past retention' : status === 410 ? 'Deleted' : status === 404 ? 'Not found' : 'Cannot show this';
    return page(c, { title: heading, tenantId: c.get('tenantId'), body: html`<h1>${heading}</h1><p>${err.message}.</p><p><a href="/ui">Back to the overview</a></p>`, status });
  });

  /**
   * `through`: for a session, the newest batch its content table lists (`?batches=`; the latest when absent). `filter`:
   * its requests listed are those with its tokens of that class (`?class=`), sent to that model (`?model=`).
   */
  function handleView(tenantId: string, id: string, choice: SpanChoice, withContent = true, through?: number, filter: RequestsFilter = {}): HandleView {
    const t = now();
    const range = choice.span.range;
    const { perDay, label } = chartDays(range, t, choice.span.zone);
    // The table shows the newest versions only (a long session has one per turn), and the report gives figures for
    // those only, and the chart's days as sums by day: not a row per version and day. It 404s a handle not the tenant's.
    const versionCount = deps.store.getHandle(id)?.latestVersion ?? 1;
    const shown = { from: Math.max(1, versionCount - VERSIONS_SHOWN + 1), to: versionCount };
    const report = services.reports.handleOverview(tenantId, id, range, t, { versions: shown, perDay });
    const versions = services.handles.versions(id, VERSIONS_SHOWN);
    const deleted = report.handle.deleted;
    const days = report.days.map((r) => dayPoint(r.day, r));
    const content = withContent && !deleted ? contentOf(tenantId, id, versions, through) : { sources: [], composition: [] };
    // Read for the page only: the live fragment (refreshed on every reconciliation) leaves it out.
    // Those rendered in the period (the list's own index order: a range of it, not a scan).
    const listed = services.requests.list(tenantId, { handleId: id, limit: RECENT_REQUESTS, range }).rows;
    // A class or model: the API's filtered page (its scan bounded as there), each line with the handle's tokens by class.
    const { cls, model } = filter;
    const filtered = withContent && (cls || model) ? services.requests.list(tenantId, { handleId: id, limit: CLASS_REQUESTS, range, tokenClass: cls, model }) : undefined;
    const recent = withContent ? (filtered?.rows ?? listed).map((row) => requestSummaryView(row, id)) : [];
    const pruned = (rid: string) => services.retention.isPruned(rid);
    // Token counts in the tokenizers of the models its latest requests used (a Gemini user is not helped by Anthropic's
    // and o200k's); those two when it has none in the period.
    const used = [...new Set(listed.map((row) => deps.catalog.lookup(row.model).entry.tokenizer))];
    const families: Family[] = used.length ? used : ['anthropic', 'o200k_base'];
    const recentFilter = filtered ? { cls, model, more: filtered.next !== null, budgetSpent: !!filtered.budgetSpent, scanned: filtered.scanned ?? 0 } : undefined;
    return { report, choice, span: choice.span, days, daysLabel: label, versions, versionCount, ...content, deleted, recent, recentFilter, pruned, families, entries: entriesOf(listed) };
  }

  /**
   * `?model=`: a model the tenant's requests were sent to, its name as sent (the API's `model`); an empty one or one it
   * never used is refused (400), never read as no filter or as an empty list of a mistyped name.
   */
  function parseModel(c: Context<UiEnv>, value: string | undefined): string | undefined {
    if (value === undefined) return undefined;
    const parsed = ModelQuery.safeParse(value);
    if (!parsed.success) throw invalid('query:model', parsed.error.issues[0]!.message);
    if (!services.requests.usedModel(c.get('tenantId'), parsed.data)) throw invalid('query:model', `no request of this tenant was sent to the model ${JSON.stringify(parsed.data)}`);
    return parsed.data;
  }

  /**
   * The days (of the tenant's zone) the per-day charts draw: the span's, through its last day (today, or a chosen range's `to`); the last
   * ALL_DAYS of one from the start ("all"), the last MAX_CHART_DAYS of a longer one.
   */
  function chartDays(range: ReportRange, t: number, zone: string): { perDay: { fromDay: number; toDay: number }; label: string } {
    const last = dayOf(range.to ?? t, zone);
    const to = range.to === undefined ? '' : ` to ${day(last * DAY_MS)}`;
    if (range.from === undefined) return { perDay: { fromDay: last - ALL_DAYS + 1, toDay: last }, label: `last ${ALL_DAYS} days${to}` };
    const days = last - dayOf(range.from, zone) + 1;
    const first = last - Math.min(days, MAX_CHART_DAYS) + 1;
    return { perDay: { fromDay: first, toDay: last }, label: days > MAX_CHART_DAYS ? `the last ${MAX_CHART_DAYS} of its ${days} days` : `${days} day${days === 1 ? '' : 's'}` };
  }

  /**
   * The latest version's content with its volatility findings (byte offsets into the stored bytes). A session lists
   * its base and a window of its batches (`newest`: its newest versions, already read for the versions table).
   */
  function contentOf(tenantId: string, id: string, newest: VersionRow[], through: number | undefined): Pick<HandleView, 'sources' | 'composition' | 'batches'> {
    const { handle, version } = services.handles.resolve(tenantId, id);
    if (handle.type === 'artifact') {
      const source = sourceContent(tenantId, `${id}@${version.version}`);
      return { sources: source ? [source] : [], composition: [] };
    }
    if (handle.type === 'session') return sessionContent(tenantId, handle, version, newest, through);
    // Each source's count from its own meta, as the bundle's was made: the bundle's `by_source` lists the first 50 only.
    const counts = new Map(services.handles.segmentsOf(handle, version.version).map((s) => [s.source, s.volatility ?? 0]));
    const composition = [...counts].map(([ref, count], i) => ({ ref, count, label: sourceLabel(tenantId, ref), index: i + 1 }));
    const sources = composition
      .filter((s) => s.count > 0)
      .slice(0, MAX_SOURCES)
      .flatMap((s) => sourceContent(tenantId, s.ref) ?? []);
    return { sources, composition };
  }

  /**
   * A session's base sources and the newest BATCHES_SHOWN batches through version `through`: only those versions and
   * the blobs of the volatile ones are read, never every batch (a session of thousands of turns).
   */
  function sessionContent(tenantId: string, handle: HandleRow, latest: VersionRow, newest: VersionRow[], through: number | undefined): Pick<HandleView, 'sources' | 'composition' | 'batches'> {
    let last = Math.min(through ?? latest.version, latest.version);
    // A page through version 1 of a session started without messages, which appended no batch, is its first batch's.
    if (last === 1 && latest.version > 1 && deps.store.getVersion(handle.id, 1)?.messageCount === 0) last = 2;
    const rows = (last === latest.version && newest.at(-1)?.version === last ? newest : services.handles.versions(handle.id, BATCHES_SHOWN, last)).slice(-BATCHES_SHOWN);
    // Version 1 of a session started without messages appended no batch.
    const first = rows[0]?.version === 1 ? rows[0] : deps.store.getVersion(handle.id, 1);
    const skip = first?.messageCount === 0 ? 1 : 0;
    const batchRows = rows.filter((r) => r.version > skip);
    const base = [...new Map(services.handles.sessionBase(handle, latest).map((s) => [s.source, s])).values()];
    const composition = [
      ...base.map((s, i) => ({ ref: s.source, count: s.volatility ?? 0, label: sourceLabel(tenantId, s.source), index: i + 1 })),
      ...batchRows.map((r) => ({ ref: `${handle.id}@${r.version}`, count: batchVolatility(r)?.count ?? 0, label: BATCH_LABEL, index: base.length + r.version - skip })),
    ];
    const firstShown = batchRows[0]?.version ?? last + 1;
    const batches = {
      baseCount: base.length,
      total: latest.version - skip,
      before: Math.max(0, firstShown - 1 - skip),
      after: latest.version - last,
      olderThrough: firstShown - 1 > skip ? firstShown - 1 : null,
      newerThrough: last + BATCHES_SHOWN >= latest.version ? null : last + BATCHES_SHOWN,
    };
    // Content cards: the base's volatile sources, then the newest volatile batches on this page, up to MAX_SOURCES.
    const volatileBase = composition.slice(0, base.length).filter((s) => s.count > 0).slice(0, MAX_SOURCES);
    const volatileBatches = batchRows.filter((r) => (batchVolatility(r)?.count ?? 0) > 0);
    const cardBatches = volatileBatches.slice(Math.max(0, volatileBatches.length - (MAX_SOURCES - volatileBase.length)));
    const sources = [
      ...volatileBase.flatMap((s) => sourceContent(tenantId, s.ref) ?? []),
      ...cardBatches.flatMap((r) => {
        const blob = r.contentDigest ? deps.store.getBlob(r.contentDigest) : undefined;
        const vol = batchVolatility(r);
        return blob && vol ? [{ ref: `${handle.id}@${r.version}`, label: BATCH_LABEL, text: blob.toString('utf8'), findings: vol.findings ?? [], count: vol.count }] : [];
      }),
    ];
    return { sources, composition, batches: { ...batches, volatileNotShown: volatileBatches.length - cardBatches.length } };
  }

  function sourceContent(tenantId: string, ref: string): ContentSource | null {
    const parsed = parseRef(ref);
    if (!parsed) return null;
    const { handle, version } = services.handles.resolve(tenantId, ref);
    // An artifact's findings index its stored bytes; a session batch's, the batch's canonical JSON.
    const meta = version.meta as { volatility?: Vol; batch?: { volatility?: Vol } } | null;
    const vol = handle.type === 'artifact' ? meta?.volatility : meta?.batch?.volatility;
    const blob = version.contentDigest ? deps.store.getBlob(version.contentDigest) : undefined;
    if (!blob) return null;
    return { ref, label: sourceLabel(tenantId, ref), text: blob.toString('utf8'), findings: vol?.findings ?? [], count: vol?.count ?? 0 };
  }

  /** "system “name”", or what a session batch is. */
  function sourceLabel(tenantId: string, ref: string): string {
    const { handle } = services.handles.resolve(tenantId, ref);
    if (handle.type !== 'artifact') return BATCH_LABEL;
    return `${handle.kind} ${handle.name ? `“${handle.name}”` : ''}`.trim();
  }

  return ui;
}

/** A day's figures as the charts draw them (no figures: nothing that day). */
const dayPoint = (d: number, r: Totals | undefined): DayPoint => ({
  day: day(d * DAY_MS),
  opportunity: r?.tokens.opportunity ?? 0,
  captured: r?.tokens.captured ?? 0,
  unknown: r?.tokens.unknown ?? 0,
  rate: r?.capture_rate ?? null,
  money: r?.money.leaked_savings ?? 0,
});

/** Every day of `span`, from the days that have figures. */
function dayPoints(rows: Array<{ day: number } & Totals>, span: { fromDay: number; toDay: number }): DayPoint[] {
  const byDay = new Map(rows.map((r) => [r.day, r]));
  const out: DayPoint[] = [];
  for (let d = span.fromDay; d <= span.toDay; d++) out.push(dayPoint(d, byDay.get(d)));
  return out;
}

interface Vol {
  count: number;
  findings: Finding[];
}

const BATCH_LABEL = 'messages appended to the session (canonical JSON)';

/** The volatile values found in the batch a session version appended. */
const batchVolatility = (row: VersionRow) => (row.meta as { batch?: { volatility?: Vol } } | null)?.batch?.volatility;

/** The requests a list shows: those with tokens of a class, sent to a model, or both. */
export interface RequestsFilter {
  cls?: TokenClass;
  model?: string;
}

/** A model as the API's `model` takes it: its name as sent. */
const ModelQuery = z.string().min(1, 'model must name a model');

/** `?class=`: a waterfall class (the API's `class`); another is refused (400), never read as no filter. */
function parseClass(value: string | undefined): TokenClass | undefined {
  if (value === undefined) return undefined;
  if (!(CLASSES as readonly string[]).includes(value)) throw invalid('query:class', `class must be one of ${CLASSES.join(', ')}`);
  return value as TokenClass;
}

/** `?type=`: a handle type (the API's `type`); another is refused (400), never read as no filter. */
function parseType(value: string | undefined): HandleType | undefined {
  if (value === undefined) return undefined;
  if (!(HANDLE_TYPES as readonly string[]).includes(value)) throw invalid('query:type', 'type must be artifact, bundle or session');
  return value as HandleType;
}

/** `?no_handle=true` (the API's `no_handle`: `false` is no filter); any other value is refused (400), never read as no filter. */
function parseNoHandle(value: string | undefined): true | undefined {
  if (value === undefined || value === 'false') return undefined;
  if (value !== 'true') throw invalid('query:no_handle', 'no_handle must be true or false');
  return true;
}

/** `?batches=N`: a version number (the newest batch listed); anything else is the latest. */
function parseThrough(value: string | undefined): number | undefined {
  return value !== undefined && /^[1-9]\d{0,9}$/.test(value) ? Number(value) : undefined;
}
