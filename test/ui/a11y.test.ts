// The dashboard for everyone: axe-core (WCAG 2.0/2.1 A and AA, and its best practices) in Debian's Chromium on every
// page a signed-in user can reach by following links from the overview and on the error pages, at 1280 and 390 px, in
// the light scheme and (a representative subset) the dark one; the keyboard's path, and which boxes are Tab stops.

import type { ServerType } from '@hono/node-server';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERIODS } from '../../src/http/ui/format';
import { createTestApp, type TestApp } from '../helpers/app';
import { chromiumMissing, closeServer, launchChromium, serveApp } from '../helpers/browser';
import { mintSystem } from '../helpers/factories';
import { seed, sessionsAndInline, type Seeded } from './seed';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const SHOTS = 'test-output/screenshots/a11y';
const WIDTHS = [
  { name: 'desktop', width: 1280, height: 900 },
  { name: 'phone', width: 390, height: 844 },
] as const;

let t: TestApp;
let s: Seeded;
let server: ServerType | undefined;
let browser: Browser | undefined;
let base = '';
/**
 * The pages no link leads to, with the status each answers: a missing page and request, another tenant's handle (the
 * same 404), a refused filter (400), and a handle deleted before any request used it (its page stays, its reports
 * remain: 200, saying it was deleted).
 */
let errorPages: Record<string, number> = {};

beforeAll(async () => {
  if (chromiumMissing) return;
  mkdirSync(SHOTS, { recursive: true });
  t = createTestApp();
  // The dashboard's test data (handles of each kind, drift, a hostile name, no cache fields), then sessions and
  // calls through no handle on the same tenant: every kind of page and link has something to show.
  s = await seed(t);
  await sessionsAndInline(t, s.client);
  const foreign = await mintSystem(t.tenant('other').client, 'another tenant\'s prompt');
  const deleted = await mintSystem(s.client, 'a prompt deleted before any request used it');
  expect((await s.client.delete(`/v1/handles/${deleted.id}`)).status).toBe(204);
  errorPages = { '/ui/nothing-here': 404, [`/ui/handles/${foreign.id}`]: 404, [`/ui/handles/${deleted.id}`]: 200, '/ui/requests?class=bogus': 400, '/ui?from=2026-01-10&to=2026-01-02': 400, '/ui/requests/req_0000000000000000000000': 404 };
  ({ server, base } = await serveApp(t));
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await closeServer(server);
  t?.close();
});

/** A signed-in tab of `width`; axe is injected past the page's CSP (which lets only the dashboard's own script run). */
async function signedIn(width: (typeof WIDTHS)[number]): Promise<{ context: BrowserContext; page: Page }> {
  if (chromiumMissing) throw new Error(chromiumMissing);
  const context = await browser!.newContext({ viewport: { width: width.width, height: width.height }, bypassCSP: true, colorScheme: 'light' });
  const page = await context.newPage();
  await page.goto(`${base}/ui`);
  await page.fill('#key', s.key);
  await Promise.all([page.waitForURL((u) => u.pathname !== '/ui/sign-in'), page.click('button[type=submit]')]);
  return { context, page };
}

interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: unknown[]; any: Array<{ message: string }> }>;
}

/** axe's violations on the page shown, one line each: rule, impact, the first elements; in each colour scheme when `schemes` names both. */
async function violations(page: Page, schemes: ReadonlyArray<'light' | 'dark'> = ['light']): Promise<Record<string, string[]>> {
  await page.addScriptTag({ path: AXE });
  const found: Record<string, string[]> = {};
  // The dark scheme on the same page load: the media query switched, axe run again (a page load for each took twice as long).
  for (const scheme of schemes) {
    await page.emulateMedia({ colorScheme: scheme });
    found[scheme] = await axeRun(page);
  }
  await page.emulateMedia({ colorScheme: 'light' });
  return found;
}

async function axeRun(page: Page): Promise<string[]> {
  const found = (await page.evaluate(async () => {
    const { axe, document } = globalThis as unknown as { axe: { run(ctx: unknown, opts: unknown): Promise<{ violations: unknown[] }> }; document: unknown };
    return (await axe.run(document, { resultTypes: ['violations'] })).violations;
  })) as Violation[];
  return found.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.length} × ${v.nodes
    .slice(0, 6)
    .map((n) => `${JSON.stringify(n.target)} ${n.any[0]?.message ?? ''}`)
    .join('; ')}`);
}

const BOTH = ['light', 'dark'] as const;

/** Tabs visiting pages side by side: enough to keep both cores of a CI machine busy while one tab waits on the server. */
const TABS = 3;

/**
 * Visits `queue` from its entry `from` on with every tab, each taking the next entry when done with one, until none is
 * left and no visit is under way (a visit may add entries).
 */
async function drain(queue: string[], from: number, tabs: Page[], visit: (tab: Page, path: string) => Promise<void>): Promise<void> {
  let next = from;
  let busy = 0;
  let waiting: Array<() => void> = [];
  const run = async (tab: Page): Promise<void> => {
    for (;;) {
      if (next < queue.length) {
        const path = queue[next++]!;
        busy++;
        try {
          await visit(tab, path);
        } finally {
          busy--;
          // The visit may have added entries, or been the last one: the idle tabs look again.
          for (const wake of waiting.splice(0)) wake();
        }
      } else if (busy === 0) return;
      else await new Promise<void>((ok) => waiting.push(ok));
    }
  };
  await Promise.all(tabs.map(run));
}

/**
 * A page's shape: the overview of each period; every handle and request (each kind shows its own sections); a list
 * of each filter combination (class, type, model, handle, through no handle). Further periods or values of the same
 * filters render the same template with other figures: visiting each of the ~600 links would take minutes.
 */
const shape = (u: URL) =>
  u.pathname === '/ui'
    ? `/ui?period=${u.searchParams.get('period')}`
    : `${u.pathname}?${[...new Set(u.searchParams.keys())].filter((k) => k !== 'period').sort().join('&')}`;

/** The parts of a page that set colours of their own (layout.ts), each checked in the dark scheme where first shown. */
const COLOURED = ['.notice', '.error', 'mark', 'mark.diff', '.pair', 'th', '.metric.good', '.metric.bad', '.periods', 'pre.content', 'details', '.legend', 'svg.chart', 'form.inline', 'form.range', 'dl.kv', '.empty', '.rate', '[data-live-status]'];

/** A page's kind: its shape without its period, or which handle (but its type) or request it shows. */
const kind = (u: URL) => shape(u).replace(/^\/ui\?period=.*/, '/ui').replace(/\/(art|bnd|ses|req)_[0-9A-Za-z]+/, '/$1');

/** The dashboard's pages a link leads to: same origin, under /ui, not a download, a fragment or the event stream. */
const followable = (u: URL) =>
  u.origin === base && u.pathname.startsWith('/ui') && !u.pathname.endsWith('.csv') && !u.pathname.startsWith('/ui/fragments') && u.pathname !== '/ui/events';

/** The little of the DOM the in-page functions use (the project's TypeScript has no DOM library). */
interface El {
  dataset: Record<string, string | undefined>;
  textContent: string | null;
  getAttribute(name: string): string | null;
  getClientRects(): { length: number };
  getBoundingClientRect(): { left: number; top: number; width: number; height: number };
  closest(selector: string): El | null;
  querySelector(selector: string): El | null;
  matches(selector: string): boolean;
}
type Style = Record<'outlineStyle' | 'outlineWidth' | 'outlineColor' | 'stroke' | 'strokeWidth', string>;
interface Stop {
  stop: string;
  focused: boolean;
  text: string;
  /** The ring as drawn: the element's outline, or an SVG link's bar's stroke. */
  ring: string;
  /** An SVG link's unseen hit area's stroke (the whole row's width): none, focused or not. */
  hit: string;
  box: { x: number; y: number; width: number; height: number };
  /** A date input: one stop the keyboard goes through field by field (month, day, year) and to its picker's button. */
  date?: boolean;
}

/** Each Tab stop (marked `data-stop`) in the page: whether it has focus, its name, its ring as drawn, where it is. */
const stopsOf = (els: unknown[]): Stop[] =>
  (els as El[]).map((el) => {
    const view = (el as unknown as { ownerDocument: { defaultView: { getComputedStyle(e: El): Style } } }).ownerDocument.defaultView;
    const bar = el.closest('svg') && el.querySelector('rect:not(.hit)');
    const hit = el.closest('svg') && el.querySelector('rect.hit');
    const st = view.getComputedStyle(bar ?? el);
    return {
      stop: el.dataset.stop!,
      focused: el.matches(':focus'),
      text: (el.getAttribute('aria-label') ?? el.textContent ?? '').trim().slice(0, 40),
      ring: bar ? `${st.stroke} ${st.strokeWidth}` : `${st.outlineStyle} ${st.outlineWidth} ${st.outlineColor}`,
      hit: hit ? view.getComputedStyle(hit).stroke : 'none',
      box: (({ left, top, width, height }) => ({ x: left, y: top, width, height }))(el.getBoundingClientRect()),
      date: el.matches('input[type=date]'),
    };
  });

/** The `data-stop` of the element that has focus (a date input's, while one of its fields or its button has it). */
const activeStop = (page: Page) => page.evaluate(() => (globalThis as unknown as { document: { activeElement: El | null } }).document.activeElement?.dataset.stop);

/** How many of the first Tab stops are compared pixel by pixel, focused and not; the margin around each for its ring. */
const FIRST = 8;
const around = (b: Stop['box']) => ({ x: Math.max(0, b.x - 4), y: Math.max(0, b.y - 4), width: b.width + 8, height: b.height + 8 });

describe('dashboard accessibility (axe-core in headless Chromium)', () => {
  it('every page reachable from the overview and each error page, at 1280 and 390 px, in the light and the dark scheme, has no axe violation', async () => {
    const found: Record<string, string[]> = {};
    const add = (name: string, byScheme: Record<string, string[]>) => Object.entries(byScheme).forEach(([scheme, v]) => (found[`${name} ${scheme}`] = v));
    // The pages saved as screenshots (by shape): one of each kind, at each width and in each scheme, to compare the look before and after a change.
    const shots: Record<string, string> = {
      '/ui?period=7d': 'overview',
      '/ui/sessions?': 'sessions',
      '/ui/requests?class&handle': 'requests',
      [`/ui/handles/${s.sys.id}?`]: 'handle',
      [`/ui/requests/${s.driftRequest.request_id}?`]: 'request',
      '/ui/nothing-here?': 'not-found',
    };
    const shoot = async (page: Page, name: string) => {
      for (const scheme of ['light', 'dark'] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        await page.screenshot({ path: `${SHOTS}/${name}${scheme === 'dark' ? '-dark' : ''}.png`, fullPage: true });
      }
      await page.emulateMedia({ colorScheme: 'light' });
    };
    let pages: string[] = [];
    let darkSeen = new Set<string>();
    for (const width of WIDTHS) {
      // The sign-in page, fresh and after a refused key.
      const context = await browser!.newContext({ viewport: { width: width.width, height: width.height }, bypassCSP: true, colorScheme: 'light' });
      const anon = await context.newPage();
      await anon.goto(`${base}/ui/sign-in`);
      add(`${width.name} /ui/sign-in`, await violations(anon, BOTH));
      await shoot(anon, `${width.name}-sign-in`);
      await anon.fill('#key', 'phk_wrong');
      await Promise.all([anon.waitForSelector('[role=alert]'), anon.click('button[type=submit]')]);
      add(`${width.name} /ui/sign-in (refused)`, await violations(anon, BOTH));
      await context.close();

      const { context: signed, page } = await signedIn(width);
      // A few tabs of the signed-in context visit the pages side by side (one tab took over a minute).
      const tabs = [page, ...(await Promise.all(Array.from({ length: TABS - 1 }, () => signed.newPage())))];
      darkSeen = new Set();
      // The first width crawls (breadth first, each page once), then visits the error pages no link leads to; the
      // second visits the same pages.
      const queue = width === WIDTHS[0] ? (Object.keys(PERIODS) as string[]).map((p) => `/ui?period=${p}`) : [...pages];
      const seen = new Set(queue.map((p) => shape(new URL(p, base))));
      const visit = async (page: Page, path: string): Promise<void> => {
        const res = await page.goto(`${base}${path}`);
        expect(res?.status(), path).toBe(errorPages[path] ?? 200);
        // The dark scheme, on the same load: a page of each kind at each width, the error pages, and a page that shows
        // a coloured part its width has not yet checked in the dark (a notice, drift's pair, a highlight, …). Other
        // pages are the same colours around other figures.
        const k = kind(new URL(path, base));
        const parts = await page.evaluate((sels) => sels.filter((sel) => (globalThis as unknown as { document: { querySelector(s: string): unknown } }).document.querySelector(sel)), COLOURED);
        const dark = !darkSeen.has(k) || errorPages[path] !== undefined || parts.some((p) => !darkSeen.has(p));
        if (dark) [k, ...parts].forEach((x) => darkSeen.add(x));
        add(`${width.name} ${path}`, await violations(page, dark ? BOTH : ['light']));
        const shot = shots[shape(new URL(path, base))];
        if (shot) await shoot(page, `${width.name}-${shot}`);
        if (width !== WIDTHS[0]) return;
        // The charts' links are SVG <a>s: their href attribute, resolved against the page.
        for (const href of await page.$$eval('a[href]', (as) => as.map((a) => a.getAttribute('href')!))) {
          const u = new URL(href, page.url());
          if (!followable(u)) continue;
          const next = `${u.pathname}${u.search}`;
          if (!seen.has(shape(u))) (seen.add(shape(u)), queue.push(next));
        }
      };
      await drain(queue, 0, tabs, visit);
      if (width === WIDTHS[0]) {
        const crawled = queue.length;
        queue.push(...Object.keys(errorPages));
        await drain(queue, crawled, tabs, visit);
      }
      if (width === WIDTHS[0]) pages = queue;
      await signed.close();
    }
    // Every kind of page was reached: the crawl followed the links; each error page was visited, and each page in the dark scheme too.
    for (const kind of ['/ui/handles/', '/ui/sessions', '/ui/requests?', '/ui/requests/']) expect(pages.some((p) => p.startsWith(kind)), kind).toBe(true);
    for (const path of Object.keys(errorPages)) expect(found[`phone ${path} dark`], path).toBeDefined();
    const darkPages = (w: string) => Object.keys(found).filter((k) => k.startsWith(w) && k.endsWith(' dark'));
    expect(darkPages('desktop').length, 'a subset in the dark').toBeLessThan(pages.length);
    for (const [w, shown] of [['desktop', 'handles'], ['desktop', 'requests'], ['phone', 'handles/ses'], ['phone', 'requests?']] as const) expect(darkPages(w).some((k) => k.includes(`/ui/${shown}`)), `${w} ${shown} dark`).toBe(true);
    expect(Object.fromEntries(Object.entries(found).filter(([, v]) => v.length))).toEqual({});
  }, 600_000);

  it('a table or text box is a Tab stop only while it scrolls: no table on a desktop, those wider than a phone there', async () => {
    const { context, page } = await signedIn(WIDTHS[0]);
    type Box = { tagName: string; clientWidth: number; scrollWidth: number; clientHeight: number; scrollHeight: number; getAttribute(n: string): string | null };
    // Each box served focusable (data-scroll): whether it scrolls, and whether it is a Tab stop (the page's script decides).
    const boxes = () =>
      page.$$eval('[data-scroll]', (els) =>
        (els as unknown as Box[]).map((e) => ({ box: e.tagName.toLowerCase(), stop: e.getAttribute('tabindex') === '0', scrolls: e.scrollWidth > e.clientWidth || e.scrollHeight > e.clientHeight })),
      );
    const wrong = async () => (await boxes()).filter((b) => b.stop !== b.scrolls);
    // The document's page: its versions, models and cause tables, and its content (a long text box on a phone).
    await page.goto(`${base}/ui/handles/${s.doc.id}?period=7d`);
    const desktop = await boxes();
    expect(desktop.filter((b) => b.box === 'table').length).toBeGreaterThan(0);
    expect(desktop.filter((b) => b.box === 'table' && b.stop), 'a table on a desktop fits: no Tab stop').toEqual([]);
    expect(await wrong()).toEqual([]);
    await page.setViewportSize({ width: 390, height: 844 });
    await expect.poll(wrong).toEqual([]);
    const phone = await boxes();
    expect(phone.filter((b) => b.box === 'table' && b.stop).length, 'a table wider than the phone: a Tab stop').toBeGreaterThan(0);
    expect(phone.filter((b) => b.box === 'pre' && b.stop).length, 'the content, longer than its box there').toBeGreaterThan(0);
    await page.setViewportSize({ width: 1280, height: 900 });
    await expect.poll(wrong).toEqual([]);
    expect((await boxes()).filter((b) => b.box === 'table' && b.stop)).toEqual([]);
    // A request's raw usage, folded in a <details>: a stop once opened, only if it scrolls then.
    await page.goto(`${base}/ui/requests/${s.driftRequest.request_id}`);
    expect(await wrong()).toEqual([]);
    await page.click('details summary');
    await expect.poll(wrong).toEqual([]);
    await context.close();
  });

  it('Tab reaches every link and control in page order, Skip to content first, each with a focus ring it lacks unfocused', async () => {
    const { context, page } = await signedIn(WIDTHS[0]);
    let chartStops = 0;
    for (const path of ['/ui?period=7d', `/ui/handles/${s.sys.id}?period=7d`]) {
      await page.goto(`${base}${path}`);
      // What a keyboard should reach: every visible link, button, field and scrolling box, in document order.
      const expected = await page.$$eval('a[href], button, input:not([type=hidden]), [tabindex="0"]', (els) =>
        (els as unknown as El[]).filter((e) => e.getClientRects().length > 0).map((e, i) => (e.dataset.stop = String(i))),
      );
      expect(expected.length, path).toBeGreaterThanOrEqual(10);
      const stops: Stop[] = [];
      const pixels: Buffer[] = [];
      for (let i = 0; i < expected.length; i++) {
        await page.keyboard.press('Tab');
        // Within a date input, Tab goes to its next field, then its picker's button: the browser's own, one stop here.
        for (let n = 0; n < 4 && stops.at(-1)?.date && (await activeStop(page)) === stops.at(-1)!.stop; n++) await page.keyboard.press('Tab');
        const focused = (await page.$$eval('[data-stop]', stopsOf)).find((f) => f.focused);
        stops.push(focused ?? { stop: 'none', focused: true, text: '', ring: '', hit: 'none', box: { x: 0, y: 0, width: 0, height: 0 } });
        // The first stops as drawn, with a margin for the ring: compared below with the same pixels unfocused.
        if (i < FIRST) pixels.push(await page.screenshot({ clip: around(stops[i]!.box) }));
      }
      expect(stops.map((f) => f.stop), path).toEqual(expected);
      // The first stops: past the header to the content, then the header's links and Sign out, then the period chooser.
      expect(stops.slice(0, 8).map((f) => f.text), path).toEqual(['Skip to content', 'prefix-handles', 'Overview', 'Sign out', '24h', '7d', '30d', 'all']);
      expect(stops[0]!.box.y, 'Skip to content shows when focused').toBeGreaterThanOrEqual(0);
      // Unfocused, the same elements draw no ring: the focused style is the indicator.
      await page.click('h1');
      const unfocused = await page.$$eval('[data-stop]', stopsOf);
      expect(unfocused.some((f) => f.focused)).toBe(false);
      // The ring is seen, not only styled: nothing clips it (the period chooser's rounded box hid an outline outside its links).
      for (const [i, shot] of pixels.entries()) expect(shot.equals(await page.screenshot({ clip: around(stops[i]!.box) })), `${path} stop ${i} ${stops[i]!.text} looks the same focused`).toBe(false);
      for (const [i, f] of stops.entries()) {
        expect(f.ring, `${path} stop ${i} ${f.text}`).not.toBe(unfocused[i]!.ring);
        expect(f.ring, `${path} stop ${i} ${f.text}`).not.toMatch(/^none /);
        // One ring, the bar's: the row's hit area, as wide as the chart, stroked too drew a second box around the
        // row, cut at the chart's edges (the hit area came after the focus ring, in another change).
        expect(f.hit, `${path} stop ${i} ${f.text}: the hit area draws no ring`).toBe('none');
      }
      chartStops += stops.filter((f) => f.ring.startsWith('rgb')).length;
      // Skip to content moves focus to the page's content: the next Tab is the content's first link.
      await page.goto(`${base}${path}`);
      await page.keyboard.press('Tab');
      await page.keyboard.press('Enter');
      await expect(page.$eval('main', (m) => m.matches(':focus'))).resolves.toBe(true);
      await page.keyboard.press('Tab');
      await expect(page.$eval('a:focus', (a) => a.textContent)).resolves.toBe('24h');
    }
    expect(chartStops, "the waterfall rows' links are reached").toBeGreaterThan(0);
    await page.goto(`${base}/ui?period=7d`);
    for (let i = 0; i < 5; i++) await page.keyboard.press('Tab');
    await page.screenshot({ path: `${SHOTS}/desktop-focus-period.png`, clip: { x: 0, y: 0, width: 1280, height: 200 } });
    await context.close();
    // About 4 s on a machine at a load of 6 (a Tab and a read of every stop's style per stop): the default 30 s is too
    // close for a loaded CI machine.
  }, 120_000);
});
