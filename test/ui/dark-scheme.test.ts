// The dashboard in the dark colour scheme (prefers-color-scheme: dark), as Chromium computes it: the page, its cards,
// tables, links and form fields dark, and each class's mark its dark colour, still telling the classes apart and
// meaning what it meant. A change that drops the dark rules (or one class's) fails here; axe's contrast check in the
// dark scheme is test/ui/a11y.test.ts.

import type { ServerType } from '@hono/node-server';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLASS_INFO, LEAK_ROWS } from '../../src/http/ui/charts';
import { createTestApp, type TestApp } from '../helpers/app';
import { chromiumMissing, closeServer, launchChromium, serveApp } from '../helpers/browser';
import { seed, type Seeded } from './seed';

let t: TestApp;
let s: Seeded;
let server: ServerType | undefined;
let browser: Browser | undefined;
let context: BrowserContext | undefined;
let page: Page;
let base = '';

beforeAll(async () => {
  if (chromiumMissing) return;
  t = createTestApp();
  s = await seed(t);
  ({ server, base } = await serveApp(t));
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'dark' });
  page = await context.newPage();
}, 120_000);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await closeServer(server);
  t?.close();
});

// Colour arithmetic on the computed "rgb(r, g, b)" and on the palette's "#rrggbb": WCAG's relative luminance and
// contrast, CIELAB for how far apart two colours look (CIE76 ΔE) and a colour's hue.
type Rgb = [number, number, number];
const rgb = (c: string): Rgb =>
  (c.startsWith('#') ? [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)) : c.match(/\d+/g)!.slice(0, 3).map(Number)) as Rgb;
const linear = (v: number) => ((v /= 255) <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
const luminance = (c: Rgb) => 0.2126 * linear(c[0]) + 0.7152 * linear(c[1]) + 0.0722 * linear(c[2]);
const contrast = (a: Rgb, b: Rgb) => {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
};
function lab(c: Rgb): Rgb {
  const [r, g, b] = c.map(linear) as Rgb;
  const f = (v: number) => (v > 0.008856 ? Math.cbrt(v) : 7.787 * v + 16 / 116);
  const [x, y, z] = [(0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047, 0.2126 * r + 0.7152 * g + 0.0722 * b, (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883].map(f) as Rgb;
  return [116 * y - 16, 500 * (x - y), 200 * (y - z)];
}
const deltaE = (a: Rgb, b: Rgb) => Math.hypot(...lab(a).map((v, i) => v - lab(b)[i]!));
const hue = (c: Rgb) => ((Math.atan2(lab(c)[2], lab(c)[1]) * 180) / Math.PI + 360) % 360;
const hueGap = (a: Rgb, b: Rgb) => Math.abs(((hue(a) - hue(b) + 540) % 360) - 180);

/** Computed styles of the first element matching each selector, in the scheme `scheme`. */
async function styles(scheme: 'light' | 'dark', selectors: Record<string, string>, props: string[]) {
  await page.emulateMedia({ colorScheme: scheme });
  return page.evaluate(
    ({ selectors, props }) => {
      const { document, getComputedStyle } = globalThis as unknown as { document: { querySelector(s: string): unknown }; getComputedStyle(e: unknown): Record<string, string> };
      return Object.fromEntries(
        Object.entries(selectors).map(([name, sel]) => {
          const el = document.querySelector(sel);
          if (!el) return [name, null];
          const st = getComputedStyle(el);
          return [name, Object.fromEntries(props.map((p) => [p, st[p]!]))];
        }),
      );
    },
    { selectors, props },
  );
}

const SIGNED_IN = { root: ':root', body: 'body', card: '.card', th: 'th', link: 'main a[href]', current: '.periods a[aria-current="page"]', header: 'header.top' };

describe('the dark colour scheme', () => {
  it('the page follows prefers-color-scheme: dark, its light scheme as before; form fields follow too', async () => {
    await page.goto(`${base}/ui/sign-in`);
    const dark = await styles('dark', { root: ':root', body: 'body', field: '#key', button: 'form.signin button' }, ['colorScheme', 'backgroundColor', 'color']);
    const light = await styles('light', { root: ':root', body: 'body', field: '#key', button: 'form.signin button' }, ['colorScheme', 'backgroundColor', 'color']);
    expect(dark.root!.colorScheme).toBe('dark');
    expect(light.root!.colorScheme).toBe('light');
    expect(light.body).toEqual({ colorScheme: 'light', backgroundColor: 'rgb(248, 250, 252)', color: 'rgb(15, 23, 42)' });
    expect(dark.body).toEqual({ colorScheme: 'dark', backgroundColor: 'rgb(15, 23, 42)', color: 'rgb(226, 232, 240)' });
    // The key's field is drawn by the browser in its dark colours (color-scheme), its text readable on it.
    expect(luminance(rgb(dark.field!.backgroundColor!))).toBeLessThan(0.1);
    expect(contrast(rgb(dark.field!.color!), rgb(dark.field!.backgroundColor!))).toBeGreaterThanOrEqual(4.5);
    expect(contrast(rgb(dark.button!.color!), rgb(dark.button!.backgroundColor!))).toBeGreaterThanOrEqual(4.5);

    await page.fill('#key', s.key);
    await page.emulateMedia({ colorScheme: 'dark' });
    await Promise.all([page.waitForURL((u) => u.pathname !== '/ui/sign-in'), page.click('button[type=submit]')]);
    for (const path of ['/ui?period=7d', `/ui/handles/${s.sys.id}?period=7d`, `/ui/requests/${s.driftRequest.request_id}`, '/ui/requests?class=bogus', '/ui/nothing-here']) {
      await page.goto(`${base}${path}`);
      const d = await styles('dark', SIGNED_IN, ['backgroundColor', 'color']);
      expect(d.body, path).toEqual({ backgroundColor: 'rgb(15, 23, 42)', color: 'rgb(226, 232, 240)' });
      // The header stands apart from the page (it is the page's colour in light's dark header otherwise).
      expect(d.header!.backgroundColor, path).not.toBe(d.body!.backgroundColor);
      expect(contrast(rgb(d.link!.color!), rgb(d.body!.backgroundColor!)), `${path} link`).toBeGreaterThanOrEqual(4.5);
      if (d.card) expect(d.card.backgroundColor, path).toBe('rgb(30, 41, 59)');
      if (d.th) expect(contrast(rgb(d.th.color!), rgb(d.th.backgroundColor!)), `${path} th`).toBeGreaterThanOrEqual(7);
      if (d.current) expect(contrast(rgb(d.current.color!), rgb(d.current.backgroundColor!)), `${path} period`).toBeGreaterThanOrEqual(7);
    }
  });

  it("the waterfall's classes: their dark colours, apart from each other at least as much as in light, each its own hue, 3:1 on the card", async () => {
    await page.goto(`${base}/ui/handles/${s.sys.id}?period=7d`);
    const drawn = ['referenced', 'cold', 'opportunity', ...LEAK_ROWS, 'captured', 'bonus'];
    const bars = Object.fromEntries(drawn.map((c) => [c, `svg[data-chart="waterfall"] g[data-class="${c}"] rect:not(.hit)`]));
    const dark = await styles('dark', { ...bars, card: '.card', hatch: '#hatch rect', swatch: '.legend rect.k-drift' }, ['fill', 'backgroundColor']);
    const light = await styles('light', { ...bars, card: '.card', hatch: '#hatch rect', swatch: '.legend rect.k-drift' }, ['fill', 'backgroundColor']);
    // Unknown is hatched in both (its pattern darker in the dark scheme); the rest are their palette's colours.
    expect(dark.unknown!.fill).toBe('url("#hatch")');
    expect(light.unknown!.fill).toBe('url("#hatch")');
    expect(luminance(rgb(dark.hatch!.fill!))).toBeLessThan(luminance(rgb(light.hatch!.fill!)));
    const solid = drawn.filter((c) => c !== 'unknown');
    for (const c of solid) {
      expect(rgb(light[c]!.fill!), `${c} light`).toEqual(rgb(CLASS_INFO[c]!.color));
      expect(rgb(dark[c]!.fill!), `${c} dark`).toEqual(rgb(CLASS_INFO[c]!.dark));
    }
    expect(dark.swatch!.fill, 'the legend keys the same colour').toBe(dark.drift!.fill);

    const card = rgb(dark.card!.backgroundColor!);
    expect(card).toEqual([30, 41, 59]);
    const leaks = LEAK_ROWS.filter((c) => c !== 'unknown');
    for (const c of [...leaks, 'captured', 'bonus']) {
      // Seen on the card (WCAG 1.4.11's 3:1 for a graphic), and the same family of colour: drift is red in both.
      expect(contrast(rgb(dark[c]!.fill!), card), `${c} on the card`).toBeGreaterThanOrEqual(3);
      expect(hueGap(rgb(dark[c]!.fill!), rgb(light[c]!.fill!)), `${c}'s hue`).toBeLessThanOrEqual(20);
    }
    // Told apart: the closest two leaks (and captured and bonus) in the dark scheme are no closer than in the light one.
    const closest = (fills: Record<string, { fill?: string } | null>) => {
      const cs = [...leaks, 'captured', 'bonus'];
      return Math.min(...cs.flatMap((a, i) => cs.slice(i + 1).map((b) => deltaE(rgb(fills[a]!.fill!), rgb(fills[b]!.fill!)))));
    };
    expect(closest(dark)).toBeGreaterThanOrEqual(closest(light));
  });

  it("a request's segment bar and breakpoints, and the capture rate per day, in their dark colours", async () => {
    await page.goto(`${base}/ui/requests/${s.driftRequest.request_id}`);
    const sel = { drift: 'svg[data-chart="segments"] rect.k-drift', mark: 'svg[data-chart="segments"] .bp-mark', sep: 'svg[data-chart="segments"] .sep', text: 'svg[data-chart="segments"] text.tick' };
    const dark = await styles('dark', sel, ['fill', 'stroke']);
    const light = await styles('light', sel, ['fill', 'stroke']);
    expect(rgb(dark.drift!.fill!)).toEqual(rgb(CLASS_INFO.drift!.dark));
    expect(rgb(light.drift!.fill!)).toEqual(rgb(CLASS_INFO.drift!.color));
    // The breakpoint's mark, dark on light, light on dark; the separators the card's colour; the text readable.
    expect(luminance(rgb(dark.mark!.fill!))).toBeGreaterThan(0.5);
    expect(luminance(rgb(light.mark!.fill!))).toBeLessThan(0.05);
    expect(dark.sep!.stroke).toBe('rgb(30, 41, 59)');
    expect(contrast(rgb(dark.text!.fill!), [30, 41, 59])).toBeGreaterThanOrEqual(4.5);

    await page.goto(`${base}/ui/handles/${s.bundle.id}?period=7d`);
    const trend = await styles('dark', { bar: 'svg[data-chart="capture-trend"] rect.k-captured', grid: 'svg[data-chart="capture-trend"] .grid' }, ['fill', 'stroke']);
    expect(rgb(trend.bar!.fill!)).toEqual(rgb(CLASS_INFO.captured!.dark));
    expect(trend.grid!.stroke).toBe('rgb(51, 65, 85)');
  });

  it('the live status dot: faint while connecting or reconnecting, brighter once live, in both schemes', async () => {
    await page.goto(`${base}/ui/handles/${s.bundle.id}?period=7d`);
    // The page's own stream sets the state once it opens: wait for that, or it can overwrite the state set below
    // (on a loaded machine both readings came out 'open').
    await page.waitForFunction(() => (globalThis as unknown as { document: { body: { dataset: Record<string, string> } } }).document.body.dataset.liveState === 'open');
    const dot = async (scheme: 'light' | 'dark', state: string) => {
      await page.evaluate((st) => ((globalThis as unknown as { document: { body: { dataset: Record<string, string> } } }).document.body.dataset.liveState = st), state);
      const d = await styles(scheme, { dot: '.live .dot', body: 'body' }, ['backgroundColor']);
      return contrast(rgb(d.dot!.backgroundColor!), rgb(d.body!.backgroundColor!));
    };
    for (const scheme of ['light', 'dark'] as const) {
      const [reconnecting, open] = [await dot(scheme, 'reconnecting'), await dot(scheme, 'open')];
      // Lit is live: a dot brighter off than on (the light scheme's pale grey on the dark page) read as the reverse.
      expect(reconnecting, `${scheme}: reconnecting ${reconnecting.toFixed(2)}, open ${open.toFixed(2)}`).toBeLessThan(open);
      expect(open, scheme).toBeGreaterThanOrEqual(3);
    }
  });
});
