import { DAY_MS as DAY, MAX_TIME } from './clock';
import { nearest } from './nearest';

/**
 * A tenant's days, in its time zone (an IANA name; `UTC` unless set). A day is numbered as the days since 1970-01-01
 * of the local calendar, so the calendar math on day numbers (months, `YYYY-MM-DD` from `new Date(day * DAY_MS)`)
 * is the same for every zone; only the instants a day starts and ends at differ.
 *
 * Offsets come from the built-in Intl (full ICU in Node 20), remembered by quarter hour: tzdata changes an offset at a
 * quarter-hour UTC boundary but for a few (America/St_Johns, Goose_Bay and Moncton at 00:01 local until 2011, whose
 * clocks went back to 23:01 of the day before; Asia/Gaza, Pacific/Guam, Africa/Monrovia at 00:44:30 UTC in 1972 and
 * local mean times before): a quarter hour whose end has another offset than its start is not remembered by one, and
 * its instants are asked of Intl each. `UTC` is the fast path: exactly `Math.floor(t / DAY_MS)`, no Intl call.
 */
export const UTC = 'UTC';

const QUARTER = 900_000;
/**
 * Quarter hours remembered, over every zone, before the cache starts again (about 0.5 MB; a limit per zone would allow
 * 190 MB for the 418 zones). A tenant's calls need a quarter hour or two at a time, a report's days a few each.
 */
const CACHE_LIMIT = 10_000;
let remembered = 0;

const formatters = new Map<string, Intl.DateTimeFormat>();
const offsets = new Map<string, Map<number, number>>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(zone, f);
  }
  return f;
}

/** The zone's offset from UTC at an instant, in ms, as Intl computes it (local wall time minus UTC, to the second). */
export function intlOffset(t: number, zone: string): number {
  // Past a Date's range (a day's end near it) Intl has no local time to give.
  if (!(Math.abs(t) <= MAX_TIME)) return 0;
  const p: Record<string, string> = {};
  for (const { type, value } of formatter(zone).formatToParts(t)) p[type] = value;
  // setUTCFullYear, not Date.UTC: that reads years 0–99 as 1900–1999.
  const wall = new Date(0);
  wall.setUTCFullYear(Number(p.year), Number(p.month) - 1, Number(p.day));
  wall.setUTCHours(Number(p.hour), Number(p.minute), Number(p.second));
  const off = wall.getTime() - (t - (((t % 1000) + 1000) % 1000));
  // At the ends of a Date's range (a local time past 275760, or before year 1, shown without its era) UTC's.
  return Math.abs(off) < DAY ? off : 0;
}

/** The offset at an instant, remembered for the zone's quarter hour it is in when it holds for all of it (see the module's comment). */
function offsetAt(t: number, zone: string): number {
  const q = Math.floor(t / QUARTER);
  let byQuarter = offsets.get(zone);
  if (!byQuarter) offsets.set(zone, (byQuarter = new Map()));
  let off = byQuarter.get(q);
  if (off === undefined) {
    if (remembered >= CACHE_LIMIT) {
      for (const m of offsets.values()) m.clear();
      remembered = 0;
    }
    remembered++;
    off = intlOffset(q * QUARTER, zone);
    // NaN: the offset changed within this quarter hour.
    if (intlOffset((q + 1) * QUARTER - 1, zone) !== off) off = NaN;
    byQuarter.set(q, off);
  }
  return Number.isNaN(off) ? intlOffset(t, zone) : off;
}

/** How many quarter hours' offsets are remembered, over every zone (tests check the bound). */
export function offsetsRemembered(): number {
  let n = 0;
  for (const byQuarter of offsets.values()) n += byQuarter.size;
  return n;
}

/** The local day (days since 1970-01-01 of the zone's calendar) an instant is in. */
export function dayOf(t: number, zone: string): number {
  if (zone === UTC) return Math.floor(t / DAY);
  return Math.floor((t + offsetAt(t, zone)) / DAY);
}

/**
 * The first instant of a local day. A day whose midnight a DST change skipped (America/Santiago's in September: 24:00
 * became 01:00) starts at its first instant, 01:00. A day the zone skipped whole (Pacific/Apia's 2011-12-30, when it
 * crossed the date line) starts where the next day does: it holds no instant, and a range of it is empty.
 */
export function dayStart(day: number, zone: string): number {
  if (zone === UTC) return day * DAY;
  // Offsets lie within ±16 hours: the day starts in these quarter hours. Within one the offset is constant, so the
  // first quarter that ends in the day (or after it) holds the start: its own start, or where its offset puts midnight.
  let lo = Math.floor((day * DAY - 16 * 3_600_000) / QUARTER);
  let hi = Math.floor((day * DAY + 16 * 3_600_000) / QUARTER);
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (dayOf((mid + 1) * QUARTER - 1, zone) >= day) hi = mid;
    else lo = mid + 1;
  }
  return Math.max(lo * QUARTER, day * DAY - offsetAt(lo * QUARTER, zone));
}

/** The last millisecond of a local day (before the next day's first instant). */
export function dayEnd(day: number, zone: string): number {
  return dayStart(day + 1, zone) - 1;
}

let known: Map<string, string> | undefined;
const knownZones = () => (known ??= new Map([...Intl.supportedValuesOf('timeZone'), UTC].map((z) => [z.toLowerCase(), z])));

/** The zone Intl reads a name as (its own spelling), or undefined when it reads none. */
function intlReads(name: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

/**
 * The name a zone is stored by, or undefined when it is none Intl knows: an IANA name (compared ignoring case; spelled
 * as the IANA list does), `UTC` (and its aliases: `Etc/UTC`, `GMT`), or a link Intl resolves to one (`Asia/Kolkata`,
 * `US/Pacific`: kept as written in IANA's case, else as Intl names it). A name without a `/` that is not UTC's is
 * refused: ICU reads abbreviations as some zone (`PST` as Los Angeles, `IST` as Kolkata, `BST` as Dhaka, `EST` as
 * Panama, which keeps no summer time), and which one a team meant is not for us to guess.
 */
export function canonicalZone(name: string): string | undefined {
  const listed = knownZones().get(name.toLowerCase());
  if (listed) return listed;
  const resolved = intlReads(name);
  if (resolved === undefined) return undefined;
  if (resolved === UTC) return UTC;
  if (!name.includes('/') || !knownZones().has(resolved.toLowerCase())) return undefined;
  // A link written in IANA's case is kept (Asia/Kolkata, which ICU resolves to its older name); else Intl's name.
  return /^[A-Z][A-Za-z_-]*(\/[A-Z][A-Za-z_-]*)*$/.test(name) ? name : resolved;
}

/** What a refused zone is told. */
export const ZONE_HINT = 'an IANA time zone name, such as America/Los_Angeles, Europe/London, Asia/Kolkata or UTC';

/**
 * Why a name canonicalZone refuses is no zone, after the name itself: an abbreviation with the zone Intl would have
 * read it as, a misspelt name with the nearest one (`America/Los_Angles`).
 */
export function zoneRefusal(name: string): string {
  const read = name.includes('/') ? undefined : intlReads(name);
  if (read !== undefined)
    return `is an abbreviation or an old alias, not a region's zone: Intl would read it as ${read}, maybe not the one meant (IST is India's, Ireland's or Israel's; BST Britain's summer or Bangladesh; EST keeps no summer time): give the region's name, ${ZONE_HINT}`;
  const near = nearest(name.trim(), [...knownZones().values()]);
  return `is not a time zone: give ${ZONE_HINT}${near ? ` (did you mean ${near}?)` : ''}`;
}
