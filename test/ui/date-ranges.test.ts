// The dashboard's chosen ranges (?from=&to=, whole UTC days): the figures, charts, links, downloads and the live
// fragment of the range asked, and a refused range said at the form (a 400 showing the last 7 days), never a 5xx.
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app';
import { daysLabel, parseSpan } from '../../src/http/ui/format';
import { anotherTurn, expectedMetrics, metricsOf, seed, signedInPage, type Seeded } from './seed';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const DAY = 86_400_000;
/** The seed's day (the fake clock starts 2026-01-01 12:00 UTC); two more turns on 2026-01-18; today is 2026-01-20. */
const SEED_DAY = '2026-01-01';
const RANGE = `from=${SEED_DAY}&to=${SEED_DAY}`;

async function seeded(): Promise<Seeded> {
  const s = await seed(t);
  t.clock.set(Date.UTC(2026, 0, 18, 9));
  await anotherTurn(t, s, 1);
  await anotherTurn(t, s, 2);
  t.clock.set(Date.UTC(2026, 0, 20, 15));
  return s;
}

const page = (path: string, s: Seeded) => signedInPage(t, path, s.key);
/** The page without its chooser's links (the periods and months, each its own span). */
const outsideChooser = (html: string) => html.replace(/<nav class="periods"[\s\S]*?<\/nav>/g, '');
/** The dashboard links of a page (href and the live fragment), but the header's overview link and request pages. */
const spanLinks = (html: string) =>
  [...outsideChooser(html).matchAll(/(?:href|data-fragment)="(\/ui[^"]*)"/g)].map((m) => m[1]!.replaceAll('&amp;', '&')).filter((h) => h !== '/ui' && !h.startsWith('/ui/requests/req_'));
const daysDrawn = (html: string) => [...(/<svg[^>]*data-chart="capture-trend"[\s\S]*?<\/svg>/.exec(html)?.[0] ?? '').matchAll(/data-day="([\d-]+)"/g)].map((m) => m[1]);
/** The line that names the span shown, to its first tag. */
const spanLine = (html: string) => /<p class="muted" data-span>([^<]*)/.exec(html)?.[1];

describe('a chosen range of UTC days', () => {
  it("the overview shows the range's figures, per-day charts of its days, and carries it on every link, the CSV and the live fragment", async () => {
    const s = await seeded();
    const api = (await s.client.get(`/v1/reports?${RANGE}`)).json;
    const res = await page(`/ui?${RANGE}`, s);
    expect(res.status).toBe(200);
    expect(metricsOf(res.text)).toEqual(expectedMetrics(api));
    // Not the default period's figures: those are the two turns of the 18th.
    const week = await page('/ui?period=7d', s);
    expect(metricsOf(week.text).requests).toBe(2);
    expect(api.requests).toBeGreaterThan(2);
    expect(spanLine(res.text)).toBe('1 Jan 2026 (whole UTC days from 2026-01-01 to 2026-01-01).');
    expect(daysDrawn(res.text)).toEqual([SEED_DAY]);
    expect(res.text).toContain('(the figures above, per UTC day, 1 day;');
    // Its title names the range (a bookmark's name); a period's does not change.
    expect(res.text).toContain('<title>Overview, 1 Jan 2026 · prefix-handles</title>');
    expect(week.text).toContain('<title>Overview · prefix-handles</title>');
    // The form shows the range, labelled, its days bounded to what reports count.
    expect(res.text).toContain(`<label for="range-from">From</label><input type="date" id="range-from" name="from" value="${SEED_DAY}" min="1970-01-01" max="2026-01-20">`);
    expect(res.text).toContain(`<label for="range-to">to</label><input type="date" id="range-to" name="to" value="${SEED_DAY}" min="1970-01-01" max="2026-01-20">`);
    expect(res.text).toContain('UTC days, both included');
    const links = spanLinks(res.text);
    expect(links.length).toBeGreaterThanOrEqual(6);
    for (const link of links) expect(link, link).toContain(RANGE);
    // Handles, the sessions' page is absent (no session), each leak's requests, the CSV, the fragment.
    expect(links).toEqual(expect.arrayContaining([`/ui/handles/${s.bundle.id}?${RANGE}`, `/ui/reports.csv?${RANGE}`, `/ui/fragments/overview?${RANGE}`, expect.stringMatching(/^\/ui\/requests\?class=[a-z_]+&from=2026-01-01&to=2026-01-01$/)]));

    const csv = Buffer.from(await (await t.app.request(`/ui/reports.csv?${RANGE}`, { headers: { cookie: `ph_ui_key=${s.key}` } })).arrayBuffer());
    const apiCsv = Buffer.from(await (await t.app.request(`/v1/reports?${RANGE}&bom=true`, { headers: { authorization: `Bearer ${s.key}`, accept: 'text/csv' } })).arrayBuffer());
    expect(csv.equals(apiCsv)).toBe(true);

    // A turn reconciled today: the live fragment of the range still has the range's figures, not today's.
    await anotherTurn(t, s, 3);
    const live = await page(`/ui/fragments/overview?${RANGE}`, s);
    expect(live.status).toBe(200);
    expect(metricsOf(live.text)).toEqual(metricsOf(res.text));
    expect(metricsOf((await page('/ui/fragments/overview?period=7d', s)).text).requests).toBe(3);
  });

  it("a handle's page, its requests list and the sessions' page keep the range in their figures, lists, forms and links", async () => {
    const s = await seeded();
    const api = (await s.client.get(`/v1/reports/handles/${s.bundle.id}?${RANGE}`)).json;
    const handle = await page(`/ui/handles/${s.bundle.id}?${RANGE}`, s);
    expect(handle.status).toBe(200);
    expect(metricsOf(handle.text)).toEqual(expectedMetrics(api));
    expect(daysDrawn(handle.text)).toEqual([SEED_DAY]);
    expect(handle.text).toContain('<title>support agent, 1 Jan 2026 · prefix-handles</title>');
    expect(spanLine(handle.text)).toBe('1 Jan 2026 (whole UTC days from 2026-01-01 to 2026-01-01).');
    // The recent requests are the range's, and the list names the API call with both ends.
    const listed = (await s.client.get(`/v1/requests?handle=${s.bundle.id}&${RANGE}`)).json.requests.map((r: { id: string }) => r.id);
    const shown = [...handle.text.matchAll(/<tr data-request="([^"]+)"/g)].map((m) => m[1]);
    expect(shown).toEqual(listed.slice(0, 10));
    expect(shown.length).toBeGreaterThan(0);
    expect(handle.text).toContain(`(started from ${SEED_DAY} to ${SEED_DAY}, as of this page load; all of them: <code>GET /v1/requests?handle=${s.bundle.id}&amp;from=${SEED_DAY}&amp;to=${SEED_DAY}</code>)`);
    const links = spanLinks(handle.text);
    expect(links).toEqual(expect.arrayContaining([`/ui/handles/${s.bundle.id}/report.csv?${RANGE}`, `/ui/fragments/handles/${s.bundle.id}?${RANGE}`, expect.stringMatching(new RegExp(`^/ui/handles/${s.bundle.id}\\?${RANGE}&class=cold#recent-requests$`))]));
    for (const link of links) expect(link, link).toContain(RANGE);

    // Filtered by class: the form keeps the class (a hidden field) and opens at the list, as the period links do.
    const cold = await page(`/ui/handles/${s.bundle.id}?${RANGE}&class=cold`, s);
    expect(cold.text).toContain(`<form class="range" method="get" action="/ui/handles/${s.bundle.id}#recent-requests" aria-label="Range of UTC days"><input type="hidden" name="class" value="cold">`);
    expect(cold.text).toContain(`href="/ui/handles/${s.bundle.id}?period=30d&amp;class=cold#recent-requests"`);

    // The tenant's requests with a class: the API's list of the range, its form keeping the class.
    const list = await page(`/ui/requests?class=cold&${RANGE}`, s);
    expect(list.status).toBe(200);
    const apiCold = (await s.client.get(`/v1/requests?class=cold&${RANGE}`)).json.requests.map((r: { id: string }) => r.id);
    expect([...list.text.matchAll(/<tr data-request="([^"]+)"/g)].map((m) => m[1])).toEqual(apiCold);
    expect(apiCold.length).toBeGreaterThan(0);
    expect(list.text).toContain('<input type="hidden" name="class" value="cold">');
    expect(list.text).toContain(`1 Jan 2026 (UTC days): started from ${SEED_DAY} to ${SEED_DAY}`);
    expect(list.text).toContain(`<a href="/ui?${RANGE.replace('&', '&amp;')}">Back to the overview</a>`);
    // The handle's list as asked of /ui/requests: its page, the range kept.
    const redirect = await page(`/ui/requests?handle=${s.bundle.id}&class=cold&${RANGE}`, s);
    expect([redirect.status, redirect.location]).toEqual([303, `/ui/handles/${s.bundle.id}?${RANGE}&class=cold#recent-requests`]);

    const sessions = await page(`/ui/sessions?${RANGE}`, s);
    expect(sessions.status).toBe(200);
    expect(spanLine(sessions.text)).toBe('1 Jan 2026 (whole UTC days from 2026-01-01 to 2026-01-01): ');
    expect(sessions.text).toContain(`data-fragment="/ui/fragments/sessions?${RANGE.replace('&', '&amp;')}"`);
  });

  it('offers this month and last month, marking the one shown; a range ending after today ends today, and says so', async () => {
    const s = await seeded();
    const month = await page('/ui?from=2026-01-01&to=2026-01-20', s);
    expect(month.text).toContain('<a href="/ui?from=2026-01-01&amp;to=2026-01-20" aria-current="page" title="1–20 Jan 2026 (UTC days)">This month</a>');
    expect(month.text).toContain('<a href="/ui?from=2025-12-01&amp;to=2025-12-31"  title="1–31 Dec 2025 (UTC days)">Last month</a>');
    expect(month.text).not.toMatch(/period=7d" aria-current/);
    expect((await page('/ui?period=7d', s)).text).toMatch(/period=7d" aria-current="page"/);

    const ahead = await page('/ui?from=2026-01-01&to=2026-03-31', s);
    expect(ahead.status).toBe(200);
    expect(ahead.text).toContain('<p class="notice" data-range-note>2026-03-31 is after today: the range ends today, 2026-01-20 (UTC).</p>');
    expect(spanLine(ahead.text)).toBe('1–20 Jan 2026 (whole UTC days from 2026-01-01 to 2026-01-20).');
    expect(daysDrawn(ahead.text)).toHaveLength(20);
    expect(metricsOf(ahead.text)).toEqual(expectedMetrics((await s.client.get('/v1/reports?from=2026-01-01&to=2026-01-20')).json));
    // From a day to today (an empty `to`), and neither: the default period.
    const since = await page('/ui?from=2026-01-15&to=', s);
    expect([since.status, spanLine(since.text)]).toEqual([200, '15–20 Jan 2026 (whole UTC days from 2026-01-15 to 2026-01-20).']);
    const neither = await page('/ui?from=&to=', s);
    expect([neither.status, spanLine(neither.text)]).toEqual([200, 'Last 7 days (whole UTC days from 2026-01-14 to 2026-01-20).']);
    // Up to a day, from the start: the chart draws the 90 days to it.
    const upTo = await page('/ui?from=&to=2026-01-10', s);
    expect(spanLine(upTo.text)).toBe('Through 10 Jan 2026 (whole UTC days from the start to 2026-01-10).');
    expect(upTo.text).toContain('<title>Overview, through 10 Jan 2026 · prefix-handles</title>');
    expect(daysDrawn(upTo.text).at(-1)).toBe('2026-01-10');
    expect(upTo.text).toContain('last 90 days to 2026-01-10;');
    // A past range with no call is said as it was, not as one that may have calls later.
    const last = await page('/ui?from=2025-12-01&to=2025-12-31', s);
    expect(last.text).toContain('No reconciled requests in this range.');
    expect(last.text).not.toContain('yet.');
  });

  it('refuses a day that is none, before 1970, after today, or a range that ends before it starts: a 400 page saying why at the form, showing the last 7 days', async () => {
    const s = await seeded();
    const week = metricsOf((await page('/ui?period=7d', s)).text);
    const cases: Array<[string, 'from' | 'to', string]> = [
      ['from=yesterday&to=2026-01-10', 'from', '“yesterday” is not a day: use YYYY-MM-DD'],
      ['from=2026-01-01&to=2026-02-30', 'to', '2026-02-30 is not a day of the calendar'],
      ['from=2026-13-01&to=2026-01-10', 'from', '2026-13-01 is not a day of the calendar'],
      ['from=2026-01-10&to=2026-01-02', 'from', 'The range starts (2026-01-10) after it ends (2026-01-02)'],
      ['from=2026-02-01&to=2026-02-10', 'from', '2026-02-01 is after today (2026-01-20, UTC): no figures yet'],
      ['from=0002-01-01&to=2026-01-10', 'from', '0002-01-01 is before 1970-01-01, where reports start'],
      ['from=2026-01-01&to=275760-09-13', 'to', '275760-09-13 is after today (2026-01-20, UTC)'],
      ['from=%3Cb%3E&to=', 'from', '“&lt;b&gt;” is not a day: use YYYY-MM-DD'],
    ];
    for (const [query, field, message] of cases) {
      for (const path of ['/ui', `/ui/handles/${s.bundle.id}`, '/ui/sessions', '/ui/requests?class=cold']) {
        const url = `${path}${path.includes('?') ? '&' : '?'}${query}`;
        const res = await page(url, s);
        expect(res.status, url).toBe(400);
        expect(res.text, url).toContain(`<p class="error" id="range-error" role="alert" data-range-error="${field}">${message}. Showing the last 7 days instead.</p>`);
        expect(res.text, url).toMatch(new RegExp(`id="range-${field}" name="${field}" value="[^"]*" min="1970-01-01" max="2026-01-20" aria-invalid="true" aria-describedby="range-error">`));
        expect(spanLine(res.text), url).toMatch(/^Last 7 days \((whole UTC days from 2026-01-14 to 2026-01-20|UTC days\): started since 2026-01-14)/);
        // Every link carries the period shown, not the refused range; no period link is marked current.
        for (const link of spanLinks(res.text)) expect(link, `${url} ${link}`).not.toMatch(/from=/);
        expect(res.text, url).not.toMatch(/<a [^>]*aria-current="page"/);
      }
      expect(metricsOf((await page(`/ui?${query}`, s)).text)).toEqual(week);
      // A fragment or download asked with it (no page links to one) is refused as a page.
      for (const path of [`/ui/fragments/overview?${query}`, `/ui/reports.csv?${query}`, `/ui/handles/${s.bundle.id}/report.csv?${query}`, `/ui/fragments/handles/${s.bundle.id}?${query}`]) {
        const res = await page(path, s);
        expect(res.status, path).toBe(400);
        expect(res.text, path).toContain(`<h1>Cannot show this</h1><p>${message}.</p>`);
      }
    }
  });
});

describe('parseSpan and daysLabel', () => {
  const day = (d: number) => new Date(d * DAY).toISOString().slice(0, 10);
  const now = Date.UTC(2026, 11, 6, 9, 30);
  const today = Math.floor(now / DAY);

  it('refuses a year written with more than four digits and a leading 0 as no day, not as one before 1970 or after today', () => {
    for (const value of ['02026-01-01', '002026-01-01', '09999-12-31']) {
      expect(parseSpan({ from: value }, now).error).toEqual({ field: 'from', message: `“${value}” is not a day: use YYYY-MM-DD. Showing the last 7 days instead` });
      expect(parseSpan({ to: value }, now).error?.message).toMatch(/^“.*” is not a day: use YYYY-MM-DD/);
    }
    expect(parseSpan({ from: '10000-01-01' }, now).error?.message).toMatch(/^10000-01-01 is after today/);
  });

  it('names a range as people write it', () => {
    const d = (s: string) => Date.parse(`${s}T00:00:00Z`) / DAY;
    expect(daysLabel(d('2026-11-01'), d('2026-11-30'))).toBe('1–30 Nov 2026');
    expect(daysLabel(d('2026-11-05'), d('2026-11-05'))).toBe('5 Nov 2026');
    expect(daysLabel(d('2026-10-28'), d('2026-11-03'))).toBe('28 Oct – 3 Nov 2026');
    expect(daysLabel(d('2025-12-28'), d('2026-01-03'))).toBe('28 Dec 2025 – 3 Jan 2026');
    expect(daysLabel(undefined, d('2026-11-30'))).toBe('Through 30 Nov 2026');
  });

  it('accepts any range of days from 1970 to today, and its link asks the same range again', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: today }), fc.integer({ min: 0, max: today }), (a, b) => {
        const [from, to] = [Math.min(a, b), Math.max(a, b)];
        const choice = parseSpan({ from: day(from), to: day(to) }, now);
        expect(choice.error).toBeUndefined();
        expect(choice.span.range).toEqual({ from: from * DAY, to: to * DAY });
        const again = parseSpan(Object.fromEntries(new URLSearchParams(choice.span.query)), now);
        expect(again.span).toEqual(choice.span);
      }),
    );
  });

  it('never throws on any input, and a range it accepts lies between 1970 and today', () => {
    const text = fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom('0', '1', '2', '9', '-') }), fc.integer({ min: -1e6, max: 1e6 }).map((n) => day(n).replace(/^\+0*/, '')));
    fc.assert(
      fc.property(fc.option(text, { nil: undefined }), fc.option(text, { nil: undefined }), fc.option(fc.string(), { nil: undefined }), (from, to, period) => {
        const choice = parseSpan({ from, to, period }, now);
        const { range } = choice.span;
        expect((range.from ?? 0) >= 0 && (range.to ?? now) <= now && (range.from ?? 0) <= (range.to ?? now)).toBe(true);
        if (choice.error) expect(choice.span.period).toBe('7d');
      }),
    );
  });
});
