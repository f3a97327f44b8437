import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DAY_MS } from '../../src/domain/clock';
import { canonicalZone, dayEnd, dayOf, dayStart, offsetsRemembered, zoneRefusal } from '../../src/domain/time-zone';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../src/config';
import { bootstrapDefaultKey, timeZoneUnused } from '../../src/bootstrap';
import { createTestApp } from '../helpers/app';

const ZONES = ['America/Los_Angeles', 'Asia/Kolkata', 'Asia/Kathmandu', 'Australia/Lord_Howe', 'Pacific/Kiritimati', 'Pacific/Pago_Pago', 'America/Santiago', 'America/Sao_Paulo', 'Europe/London', 'Pacific/Apia', 'UTC'];
const zone = fc.constantFrom(...ZONES);
/** Days 1973–2100: tzdata's offsets change at quarter hours (local mean times before did not). */
const day = fc.integer({ min: 1096, max: 47_482 });
const instant = fc.integer({ min: 1096 * DAY_MS, max: 47_482 * DAY_MS });
const dayNumber = (iso: string) => Date.parse(iso) / DAY_MS;

/** The local day as Intl names it, with no cache. */
function intlDay(t: number, zone: string): number {
  const p = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: zone, year: 'numeric', month: 'numeric', day: 'numeric' }).formatToParts(t).map((x) => [x.type, x.value]));
  return Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day)) / DAY_MS;
}

/** Whether a local day holds any instant (Pacific/Apia skipped 2011-12-30). */
const exists = (d: number, z: string) => dayStart(d, z) < dayStart(d + 1, z);

describe('time zones: local days', () => {
  it('a day starts at its first instant: dayOf(dayStart(d)) is d, and the millisecond before is the day before', () => {
    fc.assert(
      fc.property(zone, day, (z, d) => {
        fc.pre(exists(d, z));
        expect(dayOf(dayStart(d, z), z)).toBe(d);
        expect(dayOf(dayStart(d, z) - 1, z)).toBe(exists(d - 1, z) ? d - 1 : d - 2);
        expect(dayOf(dayEnd(d, z), z)).toBe(d);
      }),
      { numRuns: 2000 },
    );
  });

  it('dayOf is monotone', () => {
    fc.assert(
      fc.property(zone, instant, fc.integer({ min: 0, max: 3 * DAY_MS }), (z, t, dt) => {
        expect(dayOf(t + dt, z)).toBeGreaterThanOrEqual(dayOf(t, z));
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees with Intl.DateTimeFormat for any instant (the cache of offsets never gives another day)', () => {
    fc.assert(
      fc.property(zone, instant, (z, t) => {
        expect(dayOf(t, z)).toBe(intlDay(t, z));
      }),
      { numRuns: 3000 },
    );
    // Either side of a quarter hour, where offsets change.
    fc.assert(
      fc.property(zone, fc.integer({ min: 1096 * 96, max: 47_482 * 96 }), fc.constantFrom(-1, 0), (z, q, dt) => {
        expect(dayOf(q * 900_000 + dt, z)).toBe(intlDay(q * 900_000 + dt, z));
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees with Intl for any zone Intl knows and any instant 1970–2100', () => {
    const everyZone = fc.constantFrom(...Intl.supportedValuesOf('timeZone'));
    fc.assert(
      fc.property(everyZone, fc.integer({ min: 0, max: 47_482 * DAY_MS }), (z, t) => {
        expect(dayOf(t, z)).toBe(intlDay(t, z));
      }),
      { numRuns: 5000 },
    );
  });

  it('agrees with Intl within a quarter hour an offset changed in (at 00:01 local: St Johns, Goose Bay, Moncton until 2011; Monrovia at 00:44:30 UTC)', () => {
    // Each such change (found by scanning every zone 1970–2100), and every minute and second of its quarter hour.
    const changes: Array<[string, string]> = [
      ['America/Goose_Bay', '1987-10-25T03:01:00Z'],
      ['America/Goose_Bay', '1987-04-05T04:01:00Z'],
      ['America/Moncton', '2006-10-29T03:01:00Z'],
      ['America/St_Johns', '1988-10-30T01:31:00Z'],
      ['America/St_Johns', '2010-11-07T02:31:00Z'],
      ['Asia/Gaza', '2011-03-31T22:01:00Z'],
      ['Africa/Monrovia', '1972-01-07T00:44:30Z'],
      ['Pacific/Kiritimati', '1979-10-01T10:40:00Z'],
      ['Pacific/Guam', '1976-08-21T15:01:00Z'],
    ];
    for (const [z, iso] of changes) {
      const quarter = Math.floor(Date.parse(iso) / 900_000) * 900_000;
      for (let t = quarter; t < quarter + 900_000; t += 15_000) expect([z, new Date(t).toISOString(), dayOf(t, z)]).toEqual([z, new Date(t).toISOString(), intlDay(t, z)]);
    }
    // Goose Bay's clocks went from 00:01 back to 23:01 of the day before: its 2010-11-07 starts at the second midnight.
    expect(new Date(dayStart(dayNumber('2010-11-07'), 'America/Goose_Bay')).toISOString()).toBe('2010-11-07T04:00:00.000Z');
    // Kiritimati went from -10:40 to -10 at its 1979-10-01 00:00 (00:40 then); Monrovia from -0:44:30 to UTC at its 1972-01-07 00:00.
    expect(new Date(dayStart(dayNumber('1979-10-01'), 'Pacific/Kiritimati')).toISOString()).toBe('1979-10-01T10:40:00.000Z');
    expect(new Date(dayStart(dayNumber('1972-01-07'), 'Africa/Monrovia')).toISOString()).toBe('1972-01-07T00:44:30.000Z');
  });

  it('remembers at most 10,000 quarter hours over all zones (each zone its own would be 190 MB for the 418 zones), and stays right past the bound', () => {
    const zones = Intl.supportedValuesOf('timeZone').slice(0, 40);
    for (const z of zones) for (let q = 0; q < 400; q++) dayOf(Date.parse('2026-01-01') + q * 900_000, z);
    expect(offsetsRemembered()).toBeLessThanOrEqual(10_000);
    expect(offsetsRemembered()).toBeGreaterThan(0);
    for (const z of zones) expect(dayOf(Date.parse('2026-01-01T12:00:00Z'), z)).toBe(intlDay(Date.parse('2026-01-01T12:00:00Z'), z));
  });

  it('UTC is whole days of Math.floor', () => {
    fc.assert(fc.property(fc.integer({ min: -8.64e15, max: 8.64e15 }), (t) => dayOf(t, 'UTC') === Math.floor(t / DAY_MS) && dayStart(dayOf(t, 'UTC'), 'UTC') <= t));
  });

  it('days of 23 and 25 hours at DST changes; a day whose midnight was skipped starts at 01:00; a skipped day is empty', () => {
    const hours = (iso: string, z: string) => (dayStart(dayNumber(iso) + 1, z) - dayStart(dayNumber(iso), z)) / 3_600_000;
    expect(hours('2026-03-08', 'America/Los_Angeles')).toBe(23);
    expect(hours('2026-11-01', 'America/Los_Angeles')).toBe(25);
    expect(hours('2026-04-05', 'Australia/Lord_Howe')).toBe(24.5);
    expect(hours('2026-12-01', 'Asia/Kolkata')).toBe(24);
    // Santiago's clocks went from 24:00 to 01:00 on 2022-09-11 (-04 to -03): that day starts at 01:00 -03.
    expect(new Date(dayStart(dayNumber('2022-09-11'), 'America/Santiago')).toISOString()).toBe('2022-09-11T04:00:00.000Z');
    expect(new Date(dayStart(dayNumber('2018-11-04'), 'America/Sao_Paulo')).toISOString()).toBe('2018-11-04T03:00:00.000Z');
    // Apia crossed the date line: 2011-12-29 24:00 (-10) was 2011-12-31 00:00 (+14).
    expect(hours('2011-12-30', 'Pacific/Apia')).toBe(0);
    expect(dayOf(dayStart(dayNumber('2011-12-30'), 'Pacific/Apia'), 'Pacific/Apia')).toBe(dayNumber('2011-12-31'));
    expect(new Date(dayStart(dayNumber('2026-11-30'), 'America/Los_Angeles')).toISOString()).toBe('2026-11-30T08:00:00.000Z');
    expect(new Date(dayStart(dayNumber('2026-12-01'), 'Pacific/Kiritimati')).toISOString()).toBe('2026-11-30T10:00:00.000Z');
  });

  it('a zone is stored by its IANA name; one Intl does not know is refused', () => {
    expect(canonicalZone('america/los_angeles')).toBe('America/Los_Angeles');
    expect(canonicalZone('Asia/Kolkata')).toBe('Asia/Kolkata');
    expect(canonicalZone('utc')).toBe('UTC');
    expect(canonicalZone('Etc/UTC')).toBe('UTC');
    for (const bad of ['Mars/Olympus', '', '+05:30', 'Los Angeles', 'America/'] as const) expect(canonicalZone(bad)).toBeUndefined();
  });

  it("an abbreviation is refused, naming what Intl would read it as; a misspelt name is refused naming the nearest", () => {
    // ICU reads these as some zone: PST as Los Angeles, but EST as Panama (no summer time), BST as Dhaka, IST as Kolkata.
    for (const [abbr, read] of [['PST', 'America/Los_Angeles'], ['pst', 'America/Los_Angeles'], ['EST', 'America/Panama'], ['BST', 'Asia/Dhaka'], ['IST', 'Asia/Calcutta'], ['Japan', 'Asia/Tokyo'], ['PST8PDT', 'America/Los_Angeles']] as const) {
      expect(canonicalZone(abbr), abbr).toBeUndefined();
      expect(zoneRefusal(abbr), abbr).toMatch(new RegExp(`^is an abbreviation or an old alias, not a region's zone: Intl would read it as ${read}, .*give the region's name, an IANA time zone name, such as America/Los_Angeles`));
    }
    // UTC's aliases are UTC; a region's link still counts.
    for (const utc of ['GMT', 'Zulu', 'UCT']) expect(canonicalZone(utc), utc).toBe('UTC');
    expect(canonicalZone('US/Pacific')).toBe('US/Pacific');
    expect(zoneRefusal('America/Los_Angles')).toMatch(/^is not a time zone: give .* \(did you mean America\/Los_Angeles\?\)$/);
    expect(zoneRefusal('America/Los_Angeles ')).toMatch(/\(did you mean America\/Los_Angeles\?\)$/);
    // A city that names no zone: the example, nothing guessed.
    expect(zoneRefusal('America/San_Francisco')).toBe('is not a time zone: give an IANA time zone name, such as America/Los_Angeles, Europe/London, Asia/Kolkata or UTC');
  });
});

describe('PH_TIME_ZONE', () => {
  it("sets the zone of the default tenant the first start makes (UTC unless set); a bad one is refused with the other variables", () => {
    expect(loadConfig({}).timeZone).toBe('UTC');
    expect(loadConfig({ PH_TIME_ZONE: 'europe/london' }).timeZone).toBe('Europe/London');
    expect(() => loadConfig({ PH_TIME_ZONE: 'Mars/Olympus', PORT: 'x' })).toThrow(ConfigError);
    try {
      loadConfig({ PH_TIME_ZONE: 'Mars/Olympus', PORT: 'x' });
    } catch (err) {
      expect((err as Error).message).toMatch(/PH_TIME_ZONE: is not a time zone: give an IANA time zone name, such as America\/Los_Angeles.*\(got "Mars\/Olympus"\)/);
      expect((err as Error).message).toMatch(/PORT/);
    }
    expect(() => loadConfig({ PH_TIME_ZONE: 'PST' })).toThrow(/PH_TIME_ZONE: is an abbreviation or an old alias, not a region's zone: Intl would read it as America\/Los_Angeles.*\(got "PST"\)/);
    const t = createTestApp({ config: { adminKey: undefined } });
    const made = bootstrapDefaultKey(t.services.tenants, join(mkdtempSync(join(tmpdir(), 'ph-tz-')), 'api-key'), undefined, loadConfig({ PH_TIME_ZONE: 'Asia/Kolkata' }).timeZone);
    expect(t.services.tenants.list().find((x) => x.id === made?.tenant)?.time_zone).toBe('Asia/Kolkata');
    t.close();
  });

  it('set on a start that makes no tenant (an existing database, PH_ADMIN_KEY) and naming no tenant\'s zone: the start says it changed nothing and how a zone is set', () => {
    const t = createTestApp({ config: { adminKey: undefined } });
    // PH_ADMIN_KEY's database: no tenant made, none there.
    expect(timeZoneUnused(t.services.tenants, 'America/Los_Angeles', false)).toMatch(/^PH_TIME_ZONE=America\/Los_Angeles set no tenant's zone: .* none is made with PH_ADMIN_KEY set; .*`prefix-handles tenants rename <tenant-id> --time-zone America\/Los_Angeles`/);
    // A database made before zones: its default tenant is UTC.
    const made = bootstrapDefaultKey(t.services.tenants, join(mkdtempSync(join(tmpdir(), 'ph-tz-')), 'api-key'), undefined)!;
    expect(timeZoneUnused(t.services.tenants, 'America/Los_Angeles', false)).toContain(`this database has its tenants already: ${made.tenant} (default) in UTC; a tenant's zone is set by`);
    // The start that made the tenant in it, and a later start naming the zone it has: nothing to say.
    expect(timeZoneUnused(t.services.tenants, 'America/Los_Angeles', true)).toBeUndefined();
    expect(timeZoneUnused(t.services.tenants, 'UTC', false)).toBeUndefined();
    t.close();
  });
});
