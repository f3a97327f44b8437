// The dashboard in headless Chromium (Debian's package, driven by playwright-core)
// against the app served on a loopback port. Screenshots go to test-output/screenshots/.

import type { ServerType } from '@hono/node-server';
import { mkdirSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pct, tokens, usd } from '../../src/http/ui/format';
import { createTestApp, type TestApp } from '../helpers/app';
import { chromiumMissing as missing, closeServer, launchChromium, serveApp } from '../helpers/browser';
import { mintSystem } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, renderAnthropic, report } from '../helpers/scenario';
import { agentWeek, anotherTurn, seed, sessionsAndInline, type Seeded } from './seed';

const SHOTS = 'test-output/screenshots';
const DAY = 86_400_000;
const since = (ms: number) => `from=${new Date(ms).toISOString()}`;

let t: TestApp;
let server: ServerType | undefined;
let browser: Browser | undefined;
let base = '';

beforeAll(async () => {
  if (missing) return;
  mkdirSync(SHOTS, { recursive: true });
  t = createTestApp();
  ({ server, base } = await serveApp(t));
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await closeServer(server);
  t?.close();
});

/** A page that records script errors, CSP violations and any request leaving the app. */
async function newPage() {
  if (missing) throw new Error(missing);
  const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('request', (r) => !r.url().startsWith(base) && problems.push(`external request: ${r.url()}`));
  return { page, problems };
}

async function signIn(page: Page, key: string, path = '/ui') {
  await page.goto(`${base}${path}`);
  expect(new URL(page.url()).pathname).toBe('/ui/sign-in');
  await page.fill('#key', key);
  await Promise.all([page.waitForURL((u) => u.pathname !== '/ui/sign-in'), page.click('button[type=submit]')]);
}

/** Figures on the page: each metric's exact value and the text a person reads. */
const shownMetrics = (page: Page) =>
  page.$$eval('[data-metric]', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-metric')!, { value: e.getAttribute('data-value')!, text: e.querySelector('dd')!.textContent! }])));

type Report = { requests: number; tokens: Record<string, number>; capture_rate: number | null; money: Record<string, number> };

/** The page shows the API's numbers, in value and in the text a person reads. */
async function expectReportShown(page: Page, api: Report) {
  const m = await shownMetrics(page);
  const expectFigure = (key: string, value: number | null, text: string) => {
    expect(m[key]?.value, key).toBe(value === null ? '' : String(value));
    expect(m[key]?.text, key).toContain(text);
  };
  expectFigure('requests', api.requests, tokens(api.requests));
  for (const k of ['referenced', 'opportunity', 'captured']) expectFigure(`tokens.${k}`, api.tokens[k]!, `${tokens(api.tokens[k]!)} tok`);
  expectFigure('capture_rate', api.capture_rate, pct(api.capture_rate));
  for (const k of ['realised_savings', 'leaked_savings', 'actual_input_cost', 'write_premiums_unread', 'unknown_capture_input_cost']) expectFigure(`money.${k}`, api.money[k]!, usd(api.money[k]!));
  const bars = await page.$$eval('svg[data-chart="waterfall"] g[data-class]', (gs) => gs.map((g) => [g.getAttribute('data-class')!, g.getAttribute('data-tokens')!, g.querySelector('text.val')!.textContent!]));
  expect(bars.length).toBe(13);
  for (const [cls, n, text] of bars) {
    expect(Number(n), cls).toBe(api.tokens[cls!]);
    expect(text, cls).toContain(`${tokens(api.tokens[cls!]!)} tok`);
  }
}

describe('dashboard in headless Chromium', () => {
  it('signs in, shows each page with the API figures, and saves screenshots', async () => {
    const { page, problems } = await newPage();
    const s: Seeded = await seed(t);
    // Three calls with their system prompt inline: through no handle, counted apart on the overview.
    for (const q of ['a', 'b', 'c']) {
      const r = await renderAnthropic(s.client, { system: [{ type: 'text', text: LONG_SYSTEM, cache_control: { type: 'ephemeral' } }], messages: [{ role: 'user', content: q }] });
      const total = r.segments.at(-1)!.token_end;
      await report(s.client, t, r, anthropicUsage(total, r.prediction.read_tokens, r.prediction.write_tokens));
      t.clock.advance(60_000);
    }

    await page.goto(`${base}/ui`);
    await page.fill('#key', 'phk_wrong');
    await page.click('button[type=submit]');
    await expect(page.textContent('[role=alert]')).resolves.toContain('not valid');
    await page.screenshot({ path: `${SHOTS}/sign-in-error.png` });
    problems.length = 0; // the refused key's 401 is expected

    await signIn(page, s.key, '/ui?period=7d');
    const week = since(t.clock.now() - 6 * DAY);
    await expectReportShown(page, (await s.client.get(`/v1/reports?${week}`)).json);
    const api = (await s.client.get(`/v1/reports?${week}`)).json;
    const ranked = await page.$$eval('table[data-table="handles"] tr[data-handle]', (rows) => rows.map((r) => r.getAttribute('data-handle')));
    expect(ranked).toEqual(api.handles.map((h: { id: string }) => h.id));
    // The calls through no handle, as the API counts them, in value and in the text a person reads.
    const none = await page.$$eval('[data-no-handle][data-value]', (els) => Object.fromEntries(els.map((e) => [e.getAttribute('data-no-handle')!, { value: e.getAttribute('data-value')!, text: e.querySelector('dd')!.textContent! }])));
    const n = api.no_handle;
    expect(n.requests).toBe(3);
    expect(none.requests).toEqual({ value: '3', text: '3' });
    for (const k of ['prompt', 'repeated', 'cache_read']) {
      expect(none[`tokens.${k}`]!.value, k).toBe(String(n.tokens[k]));
      expect(none[`tokens.${k}`]!.text, k).toContain(`${tokens(n.tokens[k])} tok`);
    }
    expect(none['money.actual_input_cost']!.text).toContain(usd(n.money.actual_input_cost));
    // At 1280 px the five figures sit on one row.
    const tops = await page.$$eval('[data-no-handle-figures] .metric', (els) => els.map((e) => Math.round(e.getBoundingClientRect().top)));
    expect(new Set(tops).size).toBe(1);
    await page.screenshot({ path: `${SHOTS}/overview.png`, fullPage: true });

    // The handle link leads to its page, with the handle report's figures.
    await Promise.all([page.waitForURL(`**/ui/handles/${s.bundle.id}?period=7d`), page.click(`tr[data-handle="${s.bundle.id}"] a`)]);
    await expectReportShown(page, (await s.client.get(`/v1/reports/handles/${s.bundle.id}?${week}`)).json);
    await expect(page.locator('svg[data-chart="capture-trend"] g[data-day]').count()).resolves.toBe(7);
    await page.screenshot({ path: `${SHOTS}/handle-bundle.png`, fullPage: true });
    // At 1280 px each recent request's model is one line: a model id broke at its hyphens ("claude-sonnet-4-" / "5").
    const modelLines = await page.$$eval('table[data-table="recent"] td[data-model]', (tds) =>
      tds.map((td) => {
        const range = td.ownerDocument.createRange();
        range.selectNodeContents(td);
        return range.getClientRects().length;
      }),
    );
    expect(modelLines.length).toBeGreaterThan(0);
    expect(new Set(modelLines)).toEqual(new Set([1]));

    await page.goto(`${base}/ui/handles/${s.sys.id}?period=7d`);
    await expectReportShown(page, (await s.client.get(`/v1/reports/handles/${s.sys.id}?${week}`)).json);
    await expect(page.textContent('[data-side="before"] mark')).resolves.toBe('5');
    await expect(page.textContent('[data-side="now"] mark')).resolves.toBe('6');
    await page.screenshot({ path: `${SHOTS}/handle-drift.png`, fullPage: true });

    await page.goto(`${base}/ui/handles/${s.doc.id}`);
    const marks = await page.$$eval('pre.content mark', (ms) => ms.map((m) => m.textContent));
    expect(marks).toEqual(expect.arrayContaining(['2026-01-01T12:00:00Z', '123e4567-e89b-12d3-a456-426614174000']));
    // The hostile name is text on the page, not markup.
    await expect(page.locator('h1').textContent()).resolves.toContain('<script>alert("pwned")</script>');
    await expect(page.locator('img').count()).resolves.toBe(0);
    await page.screenshot({ path: `${SHOTS}/handle-volatility.png`, fullPage: true });

    // Request page, reached from a drift finding's link.
    await page.goto(`${base}/ui/handles/${s.sys.id}?period=7d`);
    await Promise.all([page.waitForURL(`**/ui/requests/${s.driftRequest.request_id}`), page.click(`[data-drift="${s.driftRequest.request_id}"] p a >> nth=0`)]);
    const req = (await s.client.get(`/v1/requests/${s.driftRequest.request_id}`)).json;
    const drawn = await page.$$eval('svg[data-chart="segments"] rect[data-class]', (rs) => rs.map((r) => [r.closest('g')!.getAttribute('data-segment'), r.getAttribute('data-class'), Number(r.getAttribute('data-tokens'))]));
    const expected = req.outcome.segments.flatMap((seg: { classes: Record<string, number> }, i: number) =>
      Object.entries(seg.classes)
        .filter(([, n]) => n > 0)
        .map(([c, n]) => [String(i), c, n]),
    );
    expect(drawn.sort()).toEqual(expected.sort());
    const usage = await page.$$eval('[data-usage] dd[data-value]', (dds) => dds.map((d) => d.getAttribute('data-value')));
    expect(usage).toEqual([req.usage.total_prompt_tokens, req.usage.cache_read_tokens, req.usage.cache_write_tokens, req.usage.uncached_tokens].map(String));
    // Each class's why, with this request's figures, inside its card and the page at 1280 px: nothing scrolls sideways.
    const whys = await page.$$eval('[data-whys] li', (lis) => lis.map((li) => ({ cls: li.getAttribute('data-why'), right: li.getBoundingClientRect().right, card: li.closest('.card')!.getBoundingClientRect().right })));
    expect(whys.length).toBeGreaterThan(0);
    for (const w of whys) expect(w.right, w.cls!).toBeLessThanOrEqual(w.card);
    await expect(page.$eval('html', (e) => e.scrollWidth)).resolves.toBeLessThanOrEqual(1280);
    await page.screenshot({ path: `${SHOTS}/request.png`, fullPage: true });

    expect(problems).toEqual([]);
    await page.close();
  });

  it('on a phone, no page scrolls sideways: wide tables scroll on their own, and Sign out stays on screen', async () => {
    const { page, problems } = await newPage();
    await page.setViewportSize({ width: 390, height: 844 });
    const s = await seed(t);
    await signIn(page, s.key, '/ui?period=7d');
    for (const [name, path] of [
      ['overview', '/ui?period=7d'],
      ['handle', `/ui/handles/${s.sys.id}?period=7d`],
      ['bundle', `/ui/handles/${s.bundle.id}?period=7d`],
      ['request', `/ui/requests/${s.driftRequest.request_id}`],
      // Filtered by class and model, the API call the list names (`GET /v1/requests?handle=…&class=…&model=…&from=…`)
      // is one word of no spaces: it ran past the screen's edge, and the page scrolled sideways (a user's trial).
      ['handle-class-model', `/ui/handles/${s.sys.id}?period=7d&class=cold&model=claude-sonnet-4-5`],
      ['requests-handle-class', `/ui/requests?handle=${s.sys.id}&class=cold&period=7d`],
    ] as const) {
      await page.goto(`${base}${path}`);
      const { scroll, client } = await page.$eval('html', (e) => ({ scroll: e.scrollWidth, client: e.clientWidth }));
      const signOut = await page.$eval('header.top button', (e) => e.getBoundingClientRect().right);
      expect(scroll, name).toBeLessThanOrEqual(client);
      expect(signOut, name).toBeLessThanOrEqual(client);
      await page.screenshot({ path: `${SHOTS}/phone-${name}.png`, fullPage: true });
    }
    // Download CSV is one line beside its heading (on the overview it broke into 'Download' and 'CSV'), on screen.
    for (const path of ['/ui?period=7d', `/ui/handles/${s.sys.id}?period=7d`]) {
      await page.goto(`${base}${path}`);
      const link = await page.$eval('a[data-csv]', (a) => ({ text: a.textContent, lines: a.getClientRects().length, right: a.getBoundingClientRect().right }));
      expect(link, path).toEqual({ text: 'Download CSV', lines: 1, right: expect.any(Number) });
      expect(link.right, path).toBeLessThanOrEqual(390);
    }
    // The tables are all there, each scrolling inside its own box.
    await page.goto(`${base}/ui?period=7d`);
    const table = await page.$eval('table[data-table="handles"]', (e) => ({ scroll: e.scrollWidth, client: e.clientWidth }));
    expect(table.scroll).toBeGreaterThan(table.client);
    // "Leaked savings by cause": its caption wraps on screen (it ran past the right edge of the table's scroll box, cut
    // off), and each cause's swatch and name are one line (they wrapped onto two).
    for (const path of ['/ui?period=7d', `/ui/handles/${s.sys.id}?period=7d`]) {
      await page.goto(`${base}${path}`);
      const causes = await page.$eval('table[data-table="leaked-by-class"]', (t) => {
        const caption = t.querySelector('caption')!;
        const range = t.ownerDocument.createRange();
        range.selectNodeContents(caption);
        const lines = [...range.getClientRects()];
        const box = t.getBoundingClientRect();
        return {
          caption: { text: caption.textContent!, left: Math.min(...lines.map((r) => r.left)), right: Math.max(...lines.map((r) => r.right)), box: { left: box.left, right: box.right } },
          rows: [...t.querySelectorAll('tbody tr')].map((tr) => {
            const swatch = tr.querySelector('td svg')!.getBoundingClientRect();
            // The name: its link, or (a class without tokens) the text after the swatch; one box per line it takes.
            const cell = tr.querySelector('td')!;
            const name = t.ownerDocument.createRange();
            name.selectNodeContents(cell.querySelector('a') ?? cell);
            if (!cell.querySelector('a')) name.setStartAfter(cell.querySelector('svg')!);
            const lines = [...name.getClientRects()].filter((r) => r.width > 0);
            const first = lines[0]!;
            return { cls: tr.getAttribute('data-class')!, nameLines: new Set(lines.map((r) => Math.round(r.top))).size, sameLine: swatch.top < first.bottom && first.top < swatch.bottom, gap: first.left - swatch.right };
          }),
        };
      });
      expect(causes.caption.text, path).toContain('Leaked savings by cause');
      // Every line of the caption inside the viewport and inside the table's own box (not scrolled out of it).
      expect(causes.caption.left, path).toBeGreaterThanOrEqual(Math.max(0, causes.caption.box.left));
      expect(causes.caption.right, path).toBeLessThanOrEqual(Math.min(390, causes.caption.box.right));
      expect(causes.rows.length, path).toBeGreaterThan(0);
      for (const r of causes.rows) {
        expect(r.nameLines, `${path} ${r.cls}`).toBe(1);
        expect(r.sameLine, `${path} ${r.cls}`).toBe(true);
        expect(r.gap, `${path} ${r.cls}`).toBeGreaterThanOrEqual(0);
      }
      const { scroll, client } = await page.$eval('html', (e) => ({ scroll: e.scrollWidth, client: e.clientWidth }));
      expect(scroll, path).toBeLessThanOrEqual(client);
      await page.locator('table[data-table="leaked-by-class"]').screenshot({ path: `${SHOTS}/phone-leaked-by-class-${path.startsWith('/ui?') ? 'overview' : 'handle'}.png` });
    }
    expect(problems).toEqual([]);
    await page.close();
  });

  it('on a phone, the waterfall is drawn with its text near its own size, each row’s name and figures apart; the wide one on a desktop', async () => {
    const { page, problems } = await newPage();
    const s = await seed(t);
    await signIn(page, s.key, `/ui/handles/${s.sys.id}?period=7d`);
    /** The waterfall on screen: which one, its smallest text's size as drawn (CSS px: its font size times the drawing's scale), rows whose texts overlap. */
    const shown = () =>
      page.$$eval('svg[data-chart^="waterfall"]', (svgs) => {
        const visible = svgs.filter((svg) => svg.getBoundingClientRect().width > 0);
        return visible.map((svg) => {
          const texts = [...svg.querySelectorAll('text')];
          // Without the DOM's types here: an SVG element's screen matrix, and the window's computed style.
          const scale = (svg as unknown as { getScreenCTM(): { a: number } }).getScreenCTM().a;
          const view = svg.ownerDocument.defaultView as unknown as { getComputedStyle(e: unknown): { fontSize: string } };
          const px = [...texts, ...svg.querySelectorAll('tspan')].map((el) => parseFloat(view.getComputedStyle(el).fontSize) * scale);
          const overlaps = [...svg.querySelectorAll('g')].filter((g) => {
            const boxes = [...g.querySelectorAll(':scope > text')].map((el) => el.getBoundingClientRect());
            return boxes.some((a, i) => boxes.some((b, j) => j > i && a.right > b.left && b.right > a.left && a.bottom > b.top && b.bottom > a.top));
          }).length;
          return { chart: svg.getAttribute('data-chart'), smallest: Math.min(...px), rows: svg.querySelectorAll('g').length, overlaps, right: svg.getBoundingClientRect().right };
        });
      });
    const desktop = await shown();
    expect(desktop.map((c) => c.chart)).toEqual(['waterfall']);
    await page.setViewportSize({ width: 390, height: 844 });
    for (const path of [`/ui/handles/${s.sys.id}?period=7d`, '/ui?period=7d']) {
      await page.goto(`${base}${path}`);
      const [phone, ...more] = await shown();
      expect([phone!.chart, more.length], path).toEqual(['waterfall-narrow', 0]);
      expect([phone!.rows, phone!.overlaps], path).toEqual([13, 0]);
      // 11 and 12 px type drawn at 10.5 px or more: the wide drawing's, scaled to the phone, at about 4.
      expect(phone!.smallest, path).toBeGreaterThanOrEqual(10.5);
      expect(phone!.right, path).toBeLessThanOrEqual(390);
      await page.locator('.card', { has: page.locator('svg[data-chart="waterfall-narrow"]') }).screenshot({ path: `${SHOTS}/phone-waterfall-${path.startsWith('/ui?') ? 'overview' : 'handle'}.png` });
    }

    expect(problems).toEqual([]);
    await page.close();
  });

  it('on a phone, the capture rate per day is drawn with readable text, and the handle ranking shows what leaked without scrolling', async () => {
    const { page, problems } = await newPage();
    const s = await seed(t);
    await signIn(page, s.key, `/ui/handles/${s.sys.id}?period=7d`);
    /** The capture-rate charts on screen: which, and their smallest text as drawn (font size times the drawing's scale). */
    const shown = () =>
      page.$$eval('svg[data-chart^="capture-trend"]', (svgs) =>
        svgs
          .filter((svg) => svg.getBoundingClientRect().width > 0)
          .map((svg) => {
            const scale = (svg as unknown as { getScreenCTM(): { a: number } }).getScreenCTM().a;
            const view = svg.ownerDocument.defaultView as unknown as { getComputedStyle(e: unknown): { fontSize: string } };
            const px = [...svg.querySelectorAll('text')].map((el) => parseFloat(view.getComputedStyle(el).fontSize) * scale);
            return { chart: svg.getAttribute('data-chart'), smallest: Math.min(...px), right: svg.getBoundingClientRect().right };
          }),
      );
    expect((await shown()).map((c) => c.chart)).toEqual(['capture-trend']);
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/ui/handles/${s.sys.id}?period=7d`);
    const [phone, ...more] = await shown();
    expect([phone!.chart, more.length]).toEqual(['capture-trend-narrow', 0]);
    // The wide drawing's 11 px ticks were 4.4 px here.
    expect(phone!.smallest).toBeGreaterThanOrEqual(9);
    expect(phone!.right).toBeLessThanOrEqual(390);
    await page.locator('.card', { has: page.locator('svg[data-chart="capture-trend-narrow"]') }).screenshot({ path: `${SHOTS}/phone-capture-trend.png` });
    // The overview's ranking: the Leaked figure it ranks by is on screen before the table is scrolled (it was its 8th column).
    await page.goto(`${base}/ui?period=7d`);
    const cells = await page.$$eval('table[data-table="handles"] tr[data-handle]:first-child td', (tds) => tds.slice(0, 3).map((td) => td.getBoundingClientRect().right));
    expect(cells.length).toBe(3);
    for (const right of cells) expect(right).toBeLessThanOrEqual(390);
    // On a desktop the ranking, with its biggest leak, fits the page's column.
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${base}/ui?period=7d`);
    const fit = await page.$eval('table[data-table="handles"]', (e) => ({ table: e.getBoundingClientRect().right, main: e.parentElement!.getBoundingClientRect().right }));
    expect(fit.table).toBeLessThanOrEqual(fit.main);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('on a desktop, a waterfall of hundreds of millions of tokens keeps each row’s figure clear of its share', async () => {
    const { page, problems } = await newPage();
    const { client, key } = t.tenant('big figures');
    const sys = await mintSystem(client, `${LONG_SYSTEM} big`);
    const total = 95_000_000;
    for (const n of [1, 2, 3, 4]) {
      const r = await renderAnthropic(client, { prefix: [sys.id], messages: [{ role: 'user', content: `turn ${n}` }] });
      // The 4th without cache fields: its capture unknown, so the captured row's share is "of opp. reported", the longest.
      await report(client, t, r, n === 4 ? { input_tokens: total, output_tokens: 1 } : anthropicUsage(total, n === 1 ? 0 : total - 10, n === 1 ? total - 10 : 0));
      t.clock.advance(60_000);
    }
    await signIn(page, key, '/ui?period=7d');
    const rows = await page.$$eval('svg[data-chart="waterfall"] g', (gs) =>
      gs.map((g) => {
        const [value, share] = [...g.querySelectorAll(':scope > text.val, :scope > text.pct')].map((el) => el.getBoundingClientRect());
        return { row: g.getAttribute('data-class'), text: g.querySelector('text.val')!.textContent, gap: Math.round(share!.left - value!.right) };
      }),
    );
    expect(rows.find((r) => r.row === 'captured')!.text).toMatch(/^\d{3},\d{3},\d{3} tok$/);
    // Before, the captured row's "190,000,000 tok" ran 10 px into "… of opp. reported".
    for (const r of rows) expect(r.gap, `${r.row} ${r.text}`).toBeGreaterThanOrEqual(4);
    await page.locator('.card', { has: page.locator('svg[data-chart="waterfall"]') }).screenshot({ path: `${SHOTS}/waterfall-big-figures.png` });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('overview of an agent with a session per conversation: per-day charts that fit, and one sessions row leading to their ranking', async () => {
    const { page, problems } = await newPage();
    const s = await agentWeek(t, { perDay: 3, days: 3 });
    await signIn(page, s.key, '/ui?period=7d');
    const week = since(t.clock.now() - 6 * DAY);
    const api = (await s.client.get(`/v1/reports?${week}&days=true`)).json;
    // Each day's leaked money as the API's days give it (a day without figures: none leaked).
    const byDay = new Map<string, number>(api.days.map((d: { day: string; money: { leaked_savings: number } }) => [d.day, d.money.leaked_savings]));
    const drawn = await page.$$eval('svg[data-chart="leaked-trend"] g[data-leaked-day]', (gs) => gs.map((g) => [g.getAttribute('data-leaked-day')!, Number(g.getAttribute('data-value'))] as const));
    expect(drawn.length).toBe(7);
    for (const [day, value] of drawn) expect(value, day).toBe(byDay.get(day) ?? 0);
    expect(drawn.filter(([, v]) => v > 0).length).toBe(3);
    const charts = () =>
      page.$$eval('[data-per-day] svg', (svgs) =>
        svgs
          .filter((svg) => svg.getBoundingClientRect().width > 0)
          .map((svg) => {
            const scale = (svg as unknown as { getScreenCTM(): { a: number } }).getScreenCTM().a;
            const view = svg.ownerDocument.defaultView as unknown as { getComputedStyle(e: unknown): { fontSize: string } };
            const px = [...svg.querySelectorAll('text')].map((el) => parseFloat(view.getComputedStyle(el).fontSize) * scale);
            return { chart: svg.getAttribute('data-chart'), smallest: Math.min(...px), right: svg.getBoundingClientRect().right, main: svg.closest('main')!.getBoundingClientRect().right };
          }),
      );
    const desktop = await charts();
    expect(desktop.map((c) => c.chart)).toEqual(['capture-trend', 'leaked-trend']);
    for (const c of desktop) expect(c.right, c.chart!).toBeLessThanOrEqual(c.main);
    await page.locator('[data-per-day]').screenshot({ path: `${SHOTS}/overview-per-day.png` });

    // The sessions are one row, ranked by their summed leak; its link ranks them, as GET /v1/reports?type=session does.
    const ranked = await page.$$eval('table[data-table="handles"] tbody tr', (rows) => rows.map((r) => r.getAttribute('data-handle') ?? r.getAttribute('data-group')));
    expect(ranked.filter((id) => id === 'session').length).toBe(1);
    expect(ranked.filter((id) => id!.startsWith('ses_'))).toEqual([]);
    const groupLeaked = await page.getAttribute('tr[data-group="session"] td[data-value]', 'data-value');
    await Promise.all([page.waitForURL((u) => u.pathname === '/ui/sessions'), page.click('tr[data-group="session"] a')]);
    expect(new URL(page.url()).search).toBe('?period=7d');
    const sessions = (await s.client.get(`/v1/reports?${week}&type=session`)).json;
    await expect(page.$$eval('table[data-table="handles"] tr[data-handle]', (rows) => rows.map((r) => r.getAttribute('data-handle')))).resolves.toEqual(sessions.handles.map((h: { id: string }) => h.id));
    await expect(page.getAttribute('[data-metric="money.leaked_savings"]', 'data-value')).resolves.toBe(groupLeaked);
    await page.screenshot({ path: `${SHOTS}/sessions.png`, fullPage: true });

    // On a phone: the narrow drawings, readable, and no page scrolls sideways.
    await page.setViewportSize({ width: 390, height: 844 });
    for (const path of ['/ui?period=7d', '/ui/sessions?period=7d']) {
      await page.goto(`${base}${path}`);
      const { scroll, client } = await page.$eval('html', (e) => ({ scroll: e.scrollWidth, client: e.clientWidth }));
      expect(scroll, path).toBeLessThanOrEqual(client);
    }
    await page.goto(`${base}/ui?period=7d`);
    const phone = await charts();
    expect(phone.map((c) => c.chart)).toEqual(['capture-trend-narrow', 'leaked-trend-narrow']);
    for (const c of phone) {
      expect(c.smallest, c.chart!).toBeGreaterThanOrEqual(9);
      expect(c.right, c.chart!).toBeLessThanOrEqual(390);
    }
    await page.locator('[data-per-day]').screenshot({ path: `${SHOTS}/phone-overview-per-day.png` });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('updates the overview and a handle page live as usage is reconciled', async () => {
    const { page, problems } = await newPage();
    const s = await seed(t);
    await signIn(page, s.key, '/ui?period=7d');
    const week = () => since(t.clock.now() - 6 * DAY);
    const valueOf = (key: string) => page.getAttribute(`[data-metric="${key}"]`, 'data-value');

    await page.waitForSelector('body[data-live-state="open"]');
    const before = await valueOf('tokens.captured');
    const r = await anotherTurn(t, s, 1);
    // Wait for the DOM to change (no wall-clock assertion), then compare with the API again.
    await page.waitForSelector(`[data-metric="tokens.captured"]:not([data-value="${before}"])`);
    await expectReportShown(page, (await s.client.get(`/v1/reports?${week()}`)).json);
    await page.waitForSelector(`[data-live-last] a[href="/ui/requests/${r.request_id}"]`);
    await page.screenshot({ path: `${SHOTS}/overview-live.png`, fullPage: true });

    await page.goto(`${base}/ui/handles/${s.bundle.id}?period=7d`);
    await page.waitForSelector('body[data-live-state="open"]');
    const requests = await valueOf('requests');
    await anotherTurn(t, s, 2);
    await page.waitForSelector(`[data-metric="requests"]:not([data-value="${requests}"])`);
    await expectReportShown(page, (await s.client.get(`/v1/reports/handles/${s.bundle.id}?${week()}`)).json);
    await page.screenshot({ path: `${SHOTS}/handle-live.png`, fullPage: true });

    expect(problems).toEqual([]);
    await page.close();
  });

  it("on a phone, a request's segment bar is drawn for the phone: every segment on screen, its labels readable and apart, nothing scrolling sideways", async () => {
    const { page, problems } = await newPage();
    const s = await seed(t);
    await signIn(page, s.key, `/ui/requests/${s.driftRequest.request_id}`);
    /** The segment bars on screen: which, each segment's box, the smallest text as drawn, texts that overlap. */
    const shown = () =>
      page.$$eval('svg[data-chart^="segments"]', (svgs) =>
        svgs
          .filter((svg) => svg.getBoundingClientRect().width > 0)
          .map((svg) => {
            const scale = (svg as unknown as { getScreenCTM(): { a: number } }).getScreenCTM().a;
            const view = svg.ownerDocument.defaultView as unknown as { getComputedStyle(e: unknown): { fontSize: string } };
            const texts = [...svg.querySelectorAll('text')];
            const boxes = texts.map((el) => el.getBoundingClientRect());
            const overlaps = boxes.filter((a, i) => boxes.some((b, j) => j > i && a.right > b.left && b.right > a.left && a.bottom > b.top && b.bottom > a.top)).length;
            const segments = [...svg.querySelectorAll('g[data-segment]')].map((g) => {
              const r = g.getBoundingClientRect();
              return { segment: g.getAttribute('data-segment'), left: r.left, right: r.right, width: [...g.querySelectorAll('rect')].reduce((a, rect) => a + rect.getBoundingClientRect().width, 0) };
            });
            return { chart: svg.getAttribute('data-chart'), segments, smallest: Math.min(...texts.map((el) => parseFloat(view.getComputedStyle(el).fontSize) * scale)), overlaps };
          }),
      );
    for (const r of [s.driftRequest, s.requests[1]!]) {
      const api = (await s.client.get(`/v1/requests/${r.request_id}`)).json;
      const expected = api.outcome.segments.map((_: unknown, i: number) => String(i));
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.goto(`${base}/ui/requests/${r.request_id}`);
      const desktop = await shown();
      expect(desktop.map((c) => c.chart)).toEqual(['segments']);
      expect(desktop[0]!.segments.map((g) => g.segment)).toEqual(expected);
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(`${base}/ui/requests/${r.request_id}`);
      const { scroll, client } = await page.$eval('html', (e) => ({ scroll: e.scrollWidth, client: e.clientWidth }));
      expect(scroll).toBeLessThanOrEqual(client);
      const [phone, ...more] = await shown();
      expect([phone!.chart, more.length]).toEqual(['segments-narrow', 0]);
      // Every segment drawn, at least a few px wide and inside the screen (the 8 px the narrowest are widened to, scaled).
      expect(phone!.segments.map((g) => g.segment)).toEqual(expected);
      for (const g of phone!.segments) {
        expect(g.width, g.segment!).toBeGreaterThanOrEqual(7);
        expect(g.left, g.segment!).toBeGreaterThanOrEqual(0);
        expect(g.right, g.segment!).toBeLessThanOrEqual(390);
      }
      // The wide drawing's labels were 4.5 px here, a segment's name over its neighbours'.
      expect(phone!.smallest).toBeGreaterThanOrEqual(10);
      expect(phone!.overlaps).toBe(0);
      await page.locator('.card', { has: page.locator('svg[data-chart="segments-narrow"]') }).screenshot({ path: `${SHOTS}/phone-segments-${api.outcome.segments.length}.png` });
    }
    expect(problems).toEqual([]);
    await page.close();
  });

  it("a waterfall bar leads to the requests with its class, on a desktop and on a phone", async () => {
    const { page, problems } = await newPage();
    const s = await seed(t);
    await signIn(page, s.key, `/ui/handles/${s.sys.id}?period=7d`);
    await Promise.all([page.waitForURL((u) => u.searchParams.get('class') === 'drift'), page.click('svg[data-chart="waterfall"] a[data-requests-link="drift"] rect')]);
    expect(`${new URL(page.url()).pathname}${new URL(page.url()).search}`).toBe(`/ui/handles/${s.sys.id}?period=7d&class=drift`);
    const listed = await page.$$eval('table[data-table="recent"] tr[data-request]', (rows) => rows.map((r) => r.getAttribute('data-request')));
    const week = since(t.clock.now() - 6 * DAY).replace(/T.*/, '');
    expect(listed).toEqual((await s.client.get(`/v1/requests?handle=${s.sys.id}&class=drift&${week}`)).json.requests.map((r: { id: string }) => r.id));
    expect(listed).toContain(s.driftRequest.request_id);
    // A model's biggest leak (the "By model" table) leads to the handle's requests of that model with that class.
    await page.goto(`${base}/ui/handles/${s.sys.id}?period=7d`);
    const [model, cls] = await page.$eval('table[data-table="models"] tbody tr', (tr) => [tr.getAttribute('data-model')!, tr.querySelector('[data-biggest-leak]')!.getAttribute('data-biggest-leak')!]);
    await Promise.all([page.waitForURL((u) => u.searchParams.get('model') === model), page.click('table[data-table="models"] tbody tr a[data-requests-link]')]);
    expect(`${new URL(page.url()).pathname}${new URL(page.url()).search}`).toBe(`/ui/handles/${s.sys.id}?period=7d&class=${cls}&model=${encodeURIComponent(model!)}`);
    const ofModel = await page.$$eval('table[data-table="recent"] tr[data-request]', (rows) => rows.map((r) => r.getAttribute('data-request')));
    expect(ofModel).toEqual((await s.client.get(`/v1/requests?handle=${s.sys.id}&class=${cls}&model=${encodeURIComponent(model!)}&${week}`)).json.requests.map((r: { id: string }) => r.id));
    expect(ofModel.length).toBeGreaterThan(0);
    await expect(page.textContent('#recent-requests')).resolves.toContain(`sent to ${model}`);
    await page.locator('#recent-requests').screenshot({ path: `${SHOTS}/handle-requests-by-model.png` });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/ui?period=7d`);
    // A tap in the row's middle, between its name and its bar (the link's centre), reaches the link: only the
    // painted text and bar did, 12 px each, and such a tap reached nothing.
    await Promise.all([page.waitForURL((u) => u.pathname === '/ui/requests'), page.click('svg[data-chart="waterfall-narrow"] a[data-requests-link="drift"]', { timeout: 5_000 })]);
    const tenantListed = await page.$$eval('table[data-table="recent"] tr[data-request]', (rows) => rows.map((r) => r.getAttribute('data-request')));
    expect(tenantListed).toEqual((await s.client.get(`/v1/requests?class=drift&${week}`)).json.requests.map((r: { id: string }) => r.id));
    expect(tenantListed).toContain(s.driftRequest.request_id);
    const { scroll, client } = await page.$eval('html', (e) => ({ scroll: e.scrollWidth, client: e.clientWidth }));
    expect(scroll).toBeLessThanOrEqual(client);
    await page.screenshot({ path: `${SHOTS}/phone-requests-by-class.png`, fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it("the sessions row's biggest leak and the counts of calls through no handle lead to their requests, on a desktop and on a phone", async () => {
    const { page, problems } = await newPage();
    const { key, client } = t.tenant();
    await sessionsAndInline(t, client);
    await signIn(page, key, '/ui?period=7d');
    const week = since(t.clock.now() - 6 * DAY).replace(/T.*/, '');
    const idsOf = async (query: string) => (await client.get(`/v1/requests?${query}&${week}`)).json.requests.map((r: { id: string }) => r.id);
    const listed = () => page.$$eval('table[data-table="recent"] tr[data-request]', (rows) => rows.map((r) => r.getAttribute('data-request')));
    const noSideways = async (what: string, width: number) => {
      const { scroll, client: shown } = await page.$eval('html', (e) => ({ scroll: e.scrollWidth, client: e.clientWidth }));
      expect(scroll, what).toBeLessThanOrEqual(shown);
      expect(shown, what).toBeLessThanOrEqual(width);
    };
    const cls = await page.getAttribute('tr[data-group="session"] [data-biggest-leak]', 'data-biggest-leak');
    await Promise.all([page.waitForURL((u) => u.pathname === '/ui/requests'), page.click('tr[data-group="session"] a[data-requests-link]')]);
    expect(new URL(page.url()).search).toBe(`?type=session&class=${cls}&period=7d`);
    const sessions = await listed();
    expect(sessions).toEqual(await idsOf(`type=session&class=${cls}`));
    expect(sessions.length).toBeGreaterThan(0);
    await noSideways('sessions list', 1280);
    await page.screenshot({ path: `${SHOTS}/requests-on-sessions.png`, fullPage: true });

    await page.goto(`${base}/ui?period=7d`);
    const model = await page.getAttribute('table[data-table="no-handle-models"] tbody tr', 'data-no-handle-model');
    await Promise.all([page.waitForURL((u) => u.searchParams.get('no_handle') === 'true'), page.click('table[data-table="no-handle-models"] tbody tr a[data-no-handle-link]')]);
    expect(new URL(page.url()).search).toBe(`?no_handle=true&period=7d&model=${model}`);
    expect(await listed()).toEqual(await idsOf(`no_handle=true&model=${model}`));
    await noSideways('no-handle list of a model', 1280);

    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/ui?period=7d`);
    await Promise.all([page.waitForURL((u) => u.pathname === '/ui/requests'), page.click('[data-no-handle="requests"] a[data-no-handle-link]')]);
    expect(new URL(page.url()).search).toBe('?no_handle=true&period=7d');
    expect(await listed()).toEqual(await idsOf('no_handle=true'));
    await noSideways('no-handle list', 390);
    await page.screenshot({ path: `${SHOTS}/phone-requests-through-no-handle.png`, fullPage: true });
    await page.goto(`${base}/ui/requests?type=session&class=${cls}&period=7d`);
    await noSideways('sessions list', 390);
    // Its table scrolls within its own box, not the page.
    const table = await page.$eval('table[data-table="recent"]', (e) => e.getBoundingClientRect().right);
    expect(table).toBeLessThanOrEqual(390);
    await page.screenshot({ path: `${SHOTS}/phone-requests-on-sessions.png`, fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('a range picked in the form (typed, then the button) opens its page, shareable by its URL; the live view keeps a past range\'s figures; a refused one says why at the form; on a phone the form fits', async () => {
    const { page, problems } = await newPage();
    const s = await seed(t);
    const seedDay = new Date(t.clock.now()).toISOString().slice(0, 10);
    // Two days on: the seed's day is a past range, and today's turns are no part of it.
    t.clock.advance(2 * DAY);
    await signIn(page, s.key, '/ui?period=7d');
    const range = `from=${seedDay}&to=${seedDay}`;
    const api = (await s.client.get(`/v1/reports?${range}`)).json as Report;
    // Each input is found by its label, as a screen reader names it; the days typed, then the button.
    await page.getByLabel('From', { exact: true }).fill(seedDay);
    await page.getByLabel('to', { exact: true }).fill(seedDay);
    await Promise.all([page.waitForURL((u) => u.searchParams.has('from')), page.getByRole('button', { name: 'Show' }).click()]);
    expect(new URL(page.url()).search).toBe(`?${range}`);
    const expected = (r: Report) => Object.fromEntries(Object.entries({ requests: r.requests, 'tokens.opportunity': r.tokens.opportunity, 'tokens.captured': r.tokens.captured, 'money.leaked_savings': r.money.leaked_savings }).map(([k, v]) => [k, String(v)]));
    const values = async () => Object.fromEntries(Object.entries(await shownMetrics(page)).filter(([k]) => k in expected(api)).map(([k, v]) => [k, (v as { value: string }).value]));
    expect(await values()).toEqual(expected(api));
    expect(await page.textContent('[data-span]')).toContain(`whole UTC days from ${seedDay} to ${seedDay}`);
    expect(await page.$$eval('svg[data-chart="capture-trend"] [data-day]', (els) => els.map((e) => e.getAttribute('data-day')))).toEqual([seedDay]);
    // A handle's link keeps the range: its page, the range's figures.
    await Promise.all([page.waitForURL((u) => u.pathname.startsWith('/ui/handles/')), page.click(`tr[data-handle="${s.bundle.id}"] a`)]);
    expect(new URL(page.url()).search).toBe(`?${range}`);
    expect(await page.inputValue('#range-from')).toBe(seedDay);

    // Live: a turn reconciled today re-fetches the overview's figures, still the range's.
    await page.goto(`${base}/ui?${range}`);
    await page.waitForSelector('body[data-live-state="open"]');
    await anotherTurn(t, s, 77);
    await page.waitForSelector('[data-live][data-updates="1"]');
    expect(await values()).toEqual(expected(api));
    expect(await page.textContent('[data-span]')).toContain(`to ${seedDay}`);

    // A range that ends before it starts: the page says why at the form (a 400), the last 7 days shown.
    await page.fill('#range-from', seedDay);
    await page.fill('#range-to', new Date(Date.parse(seedDay) - DAY).toISOString().slice(0, 10));
    const [refused] = await Promise.all([page.waitForResponse((r) => new URL(r.url()).searchParams.has('from')), page.click('form.range button')]);
    expect(refused.status()).toBe(400);
    expect(await page.textContent('[role=alert]')).toContain('after it ends');
    expect(await page.getAttribute('#range-from', 'aria-invalid')).toBe('true');
    expect(await page.textContent('[data-span]')).toMatch(/^Last 7 days/);

    // On a phone the chooser and the form wrap: nothing scrolls sideways, the button on screen.
    await page.setViewportSize({ width: 390, height: 844 });
    for (const path of [`/ui?${range}`, `/ui/handles/${s.sys.id}?${range}&class=cold`, `/ui/requests?class=cold&${range}`]) {
      await page.goto(`${base}${path}`);
      const { scroll, client } = await page.$eval('html', (e) => ({ scroll: e.scrollWidth, client: e.clientWidth }));
      expect(scroll, path).toBeLessThanOrEqual(client);
      expect(await page.$eval('form.range button', (b) => b.getBoundingClientRect().right), path).toBeLessThanOrEqual(390);
    }
    await page.screenshot({ path: `${SHOTS}/phone-range.png`, fullPage: true });
    // Filtered by class, the form keeps the class and opens at the list.
    const today = new Date(t.clock.now()).toISOString().slice(0, 10);
    await page.fill('#range-to', today);
    await Promise.all([page.waitForURL((u) => u.searchParams.get('to') === today), page.click('form.range button')]);
    expect(new URL(page.url()).search).toBe(`?class=cold&from=${seedDay}&to=${today}`);
    expect(await page.inputValue('#range-to')).toBe(today);
    // The refused range's load is the one error the console saw.
    expect(problems.filter((p) => !/status of 400/.test(p))).toEqual([]);
    await page.close();
  });
});
