import { describe, expect, it } from 'vitest';
import { captureTrendChart, leakedTrendChart, waterfallRows } from '../../src/http/ui/charts';
import { diffPair, markFindings } from '../../src/http/ui/content';
import { usd, usdTick } from '../../src/http/ui/format';

const str = async (h: unknown) => String(await h);

describe('markFindings', () => {
  it('marks by UTF-8 byte offset, escaping the text around and inside marks', async () => {
    const text = 'é🙂 <b>at 2026-01-01</b>';
    const offset = Buffer.from(text).indexOf('2026');
    expect(offset).not.toBe(text.indexOf('2026')); // bytes, not UTF-16 indices
    const out = markFindings(text, [{ kind: 'date', offset, text: '2026-01-01' }]);
    expect(await str(out.body)).toBe('é🙂 &lt;b&gt;at <mark title="date at byte 13" data-kind="date" data-offset="13">2026-01-01</mark>&lt;/b&gt;');
    expect(out.shown).toBe(1);
  });

  it('skips findings that do not sit on the bytes they name, and overlapping ones', async () => {
    const out = markFindings('abc 123 def', [
      { kind: 'x', offset: 4, text: '123' },
      { kind: 'x', offset: 5, text: '23' },
      { kind: 'x', offset: 0, text: 'zzz' },
    ]);
    expect(out.shown).toBe(1);
  });

  it('cuts long text at a character boundary and says so', async () => {
    const out = markFindings('ab€€€', [], 4); // € is 3 bytes: 4 would split the second
    expect(out.cut).toBe(true);
    expect(await str(out.body)).toBe('ab');
  });
});

describe('diffPair', () => {
  it('marks only what differs between the common start and end', async () => {
    const { before, now } = diffPair('time: 10:05:00', 'time: 10:06:00');
    expect(await str(before)).toBe('<span class="same">time: 10:0</span><mark class="diff">5</mark><span class="same">:00</span>');
    expect(await str(now)).toBe('<span class="same">time: 10:0</span><mark class="diff">6</mark><span class="same">:00</span>');
  });
});

describe('waterfall rows', () => {
  it('step from referenced through each leak down to captured (+ bonus)', () => {
    const t = { referenced: 100, cold: 20, opportunity: 80, drift: 10, expired: 5, unconfirmed: 5, unknown: 10, captured: 48, bonus: 2 };
    const rows = Object.fromEntries(waterfallRows(t).map((r) => [r.cls, [r.start, r.end]]));
    expect(rows.cold).toEqual([80, 100]);
    expect(rows.drift).toEqual([70, 80]);
    expect(rows.expired).toEqual([65, 70]);
    expect(rows.unknown).toEqual([50, 60]);
    expect(rows.captured).toEqual([0, 48]);
    expect(rows.bonus).toEqual([48, 50]);
  });
});

describe('usd', () => {
  it('keeps small amounts readable', () => {
    expect(usd(0)).toBe('$0.00');
    expect(usd(1234.5)).toBe('$1,234.50');
    expect(usd(0.0123)).toBe('$0.0123');
    expect(usd(0.000159)).toBe('$0.000159');
    expect(usd(-0.5)).toBe('−$0.50');
    expect(usd(0.00844)).toBe('$0.00844');
  });
});

describe('captureTrendChart', () => {
  it('labels days far enough apart not to overlap, always the last one', async () => {
    for (const n of [7, 13, 25, 40, 62]) {
      const days = Array.from({ length: n }, (_, i) => ({ day: new Date(Date.UTC(2026, 9, 1) + i * 86_400_000).toISOString().slice(0, 10), opportunity: 1, captured: 1, unknown: 0, rate: 1, money: 0 }));
      // The desktop's drawing and the phone's, each labelled on its own.
      const svgs = (await str(captureTrendChart(days, 't'))).split('</svg>').filter((x) => x.includes('<svg'));
      expect(svgs.length).toBe(2);
      for (const svg of svgs) {
        const xs = [...svg.matchAll(/<text x="([\d.]+)" y="[\d.]+" text-anchor="middle" class="tick">(\d\d-\d\d)</g)].map((m) => ({ x: Number(m[1]), day: m[2] }));
        expect(xs.at(-1)!.day, String(n)).toBe(days.at(-1)!.day.slice(5));
        // A label is 5 characters, about 34 units at this size, in either drawing.
        for (let i = 1; i < xs.length; i++) expect(xs[i]!.x - xs[i - 1]!.x, `${n} days`).toBeGreaterThan(34);
      }
    }
  });
});

describe('leakedTrendChart', () => {
  // The axis' top is 1, 2, 2.5 or 5 times a power of ten, so its middle gridline can be $0.125: labelled as usd() rounds
  // it, it read "$0.13" (and $0.05 read "$0.0500"), a figure no gridline was at.
  it('labels each gridline with its own amount, to the digit', async () => {
    const axis = async (top: number) => {
      const days = [top / 10, top].map((money, i) => ({ day: `2026-12-0${i + 1}`, opportunity: 1, captured: 0, unknown: 0, rate: 0, money }));
      const svgs = (await str(leakedTrendChart(days, 't'))).split('</svg>').filter((x) => x.includes('<svg'));
      expect(svgs.length).toBe(2);
      return svgs.map((svg) => [...svg.matchAll(/text-anchor="end" class="tick">([^<]*)</g)].map((m) => m[1]));
    };
    expect(await axis(0.191255)).toEqual([['$0.00', '$0.125', '$0.25'], ['$0.00', '$0.125', '$0.25']]);
    expect(await axis(0.0731)).toEqual([['$0.00', '$0.05', '$0.10'], ['$0.00', '$0.05', '$0.10']]);
    expect(await axis(0.0023)).toEqual([['$0.00', '$0.00125', '$0.0025'], ['$0.00', '$0.00125', '$0.0025']]);
  });

  it('usdTick keeps cents, and every digit a round amount has', () => {
    expect(usdTick(0)).toBe('$0.00');
    expect(usdTick(0.125)).toBe('$0.125');
    expect(usdTick(0.05)).toBe('$0.05');
    expect(usdTick(0.1)).toBe('$0.10');
    expect(usdTick(12.5)).toBe('$12.50');
    expect(usdTick(1250)).toBe('$1,250.00');
    expect(usdTick(0.0125)).toBe('$0.0125');
  });
});
