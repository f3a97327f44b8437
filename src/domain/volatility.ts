// Volatility findings: values in prompt text that tend to change on every
// render (timestamps, epochs, request ids). One of them near the start of a
// prefix moves the first differing byte there and invalidates everything
// after it, so mint reports where they are.
//
// Runs on artifacts of up to ~400 KB: every pattern is a single pass with
// bounded backtracking (fixed-width lookarounds, no nested quantifiers), and
// the judgement calls that would need backtracking (is this id random? is
// this date valid?) are plain code on the matched text.

export const VOLATILITY_KINDS = ['iso_timestamp', 'date', 'unix_seconds', 'unix_millis', 'uuid', 'ulid', 'random_id', 'hex_id'] as const;
export type VolatilityKind = (typeof VOLATILITY_KINDS)[number];

export interface VolatilityFinding {
  kind: VolatilityKind;
  /** UTF-8 byte offset of the match in the text. */
  offset: number;
  text: string;
}

interface Candidate {
  kind: VolatilityKind;
  start: number; // UTF-16 index
  end: number;
}

interface Detector {
  kind: VolatilityKind;
  pattern: RegExp;
  /** Trims or rejects a raw match; returns [start, end) in the text or null. */
  accept?: (match: string, index: number) => readonly [number, number] | null;
}

// Most specific first: when two candidates cover the same span, the earlier kind wins.
const SPECIFICITY: readonly VolatilityKind[] = [
  'uuid',
  'ulid',
  'iso_timestamp',
  'date',
  'unix_millis',
  'unix_seconds',
  'hex_id',
  'random_id',
];

// Plausible epoch range: 2001-09-09 (first 10-digit second) to 2100-01-01.
const EPOCH_MIN_S = 1_000_000_000;
const EPOCH_MAX_S = 4_102_444_800;
// Longer runs of hex or id characters are payloads (base64 blobs, hex dumps), not identifiers.
const MAX_ID_LENGTH = 256;
// The longest run of id characters (separators included) read as a candidate at all.
const MAX_RUN = 4096;

const MONTH = String.raw`(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)`;
const WEEKDAY = String.raw`(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]{0,6},?[ \t])?`;
const DAY = String.raw`(?:0?[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?`;
const YMD = String.raw`[12]\d{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])`;
const HMS = String.raw`(?:[01]\d|2[0-3]):[0-5]\d(?::(?:[0-5]\d|60)(?:[.,]\d{1,9})?)?`;
const ZONE = String.raw`(?:[zZ]|[+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?)?`;
// A number stands alone: not glued to letters, digits, a decimal point, a
// sign, a currency or a digit group (phone numbers, prices, versions).
const NUM_BEFORE = String.raw`(?<![0-9A-Za-z.+$€£¥#])(?<!\d[-,/])`;
const NUM_AFTER = String.raw`(?![0-9A-Za-z])(?![.,/]\d)(?!-\d)`;
const ALNUM_BEFORE = String.raw`(?<![0-9A-Za-z])`;
const ALNUM_AFTER = String.raw`(?![0-9A-Za-z])`;

const DETECTORS: readonly Detector[] = [
  {
    kind: 'iso_timestamp',
    pattern: new RegExp(String.raw`(?<!\d)${YMD}[Tt ]${HMS}${ZONE}(?![\d:])`, 'g'),
  },
  {
    // ISO 8601 basic format, as in file names and S3 keys: 20261121T100000Z.
    kind: 'iso_timestamp',
    pattern: new RegExp(
      String.raw`${ALNUM_BEFORE}[12]\d{3}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3])[0-5]\d(?:[0-5]\d)?(?:\.\d{1,9})?Z?${ALNUM_AFTER}`,
      'g',
    ),
  },
  // Dates may be glued to names (backup_2026-11-21.tar): only digits must not touch them.
  { kind: 'date', pattern: new RegExp(String.raw`(?<!\d)${YMD}(?!\d)`, 'g') },
  {
    kind: 'date',
    pattern: new RegExp(String.raw`(?<![\d/.])[12]\d{3}/(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])(?![\d/])`, 'g'),
  },
  {
    // 21/11/2026, 11/21/2026, 21.11.2026, 21-11-2026: validated in code.
    kind: 'date',
    pattern: /(?<![\d/.\-])\d{1,2}([/.\-])\d{1,2}\1[12]\d{3}(?![\d/]|[.\-]\d)/g,
    accept: (match, index) => (isDayMonthPair(match) ? [index, index + match.length] : null),
  },
  {
    // Nov 21, 2026 · Sat, November 21st 2026 · Nov. 21 2026
    kind: 'date',
    pattern: new RegExp(String.raw`(?<![A-Za-z])${WEEKDAY}${MONTH}\.?[ \t]${DAY},?[ \t][12]\d{3}(?!\d)`, 'gi'),
  },
  {
    // 21 November 2026 · Sat, 21 Nov 2026 · 21-Nov-2026
    kind: 'date',
    pattern: new RegExp(String.raw`(?<![A-Za-z\d])${WEEKDAY}${DAY}([ \t-])${MONTH}\.?,?\1[12]\d{3}(?!\d)`, 'gi'),
  },
  {
    kind: 'unix_seconds',
    pattern: new RegExp(String.raw`${NUM_BEFORE}\d{10}(?:\.\d{1,9})?${NUM_AFTER}`, 'g'),
    accept: (match, index) => (inEpochRange(Number(match.slice(0, 10)), 1) ? [index, index + match.length] : null),
  },
  {
    kind: 'unix_millis',
    pattern: new RegExp(String.raw`${NUM_BEFORE}\d{13}${NUM_AFTER}`, 'g'),
    accept: (match, index) => (inEpochRange(Number(match), 1000) ? [index, index + match.length] : null),
  },
  {
    kind: 'uuid',
    pattern: new RegExp(
      String.raw`${ALNUM_BEFORE}[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}${ALNUM_AFTER}`,
      'g',
    ),
  },
  {
    // 48-bit time (first char 0-7) + 80 random bits, Crockford base32 (no I, L, O, U).
    kind: 'ulid',
    pattern: new RegExp(String.raw`${ALNUM_BEFORE}[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}${ALNUM_AFTER}`, 'g'),
    accept: (match, index) => (/[A-Za-z]/.test(match) && /\d/.test(match.slice(1)) ? [index, index + match.length] : null),
  },
  {
    kind: 'hex_id',
    // Bounded: a longer run is refused below anyway, and one match over a run of millions overflows V8's regex stack.
    pattern: new RegExp(String.raw`${ALNUM_BEFORE}(?:0x)?[0-9a-fA-F]{16,${MAX_ID_LENGTH}}${ALNUM_AFTER}`, 'g'),
    accept: (match, index) => {
      const hex = match.startsWith('0x') ? match.slice(2) : match;
      return hex.length <= MAX_ID_LENGTH && /\d/.test(hex) && /[a-fA-F]/.test(hex) ? [index, index + match.length] : null;
    },
  },
  {
    kind: 'random_id',
    // Bounded for the same reason: past MAX_RUN the run is a payload whatever its edges (an id is at most
    // MAX_ID_LENGTH once its leading and trailing separators are trimmed).
    pattern: new RegExp(String.raw`(?<![A-Za-z0-9_\-])[A-Za-z0-9_\-]{16,${MAX_RUN}}(?![A-Za-z0-9_\-])`, 'g'),
    accept: acceptRandomId,
  },
];

/** Volatile values in `text`, sorted by byte offset, non-overlapping. */
export function findVolatility(text: string): VolatilityFinding[] {
  const candidates: Candidate[] = [];
  for (const { kind, pattern, accept } of DETECTORS) {
    pattern.lastIndex = 0;
    for (const m of text.matchAll(pattern)) {
      const span = accept ? accept(m[0], m.index) : ([m.index, m.index + m[0].length] as const);
      if (span) candidates.push({ kind, start: span[0], end: span[1] });
    }
  }
  return toFindings(text, resolveOverlaps(candidates, text.length));
}

// Longest span wins, then the most specific kind; a candidate overlapping an
// accepted one is dropped. Accepted spans are disjoint, so marking them in a
// mask keeps each check proportional to the candidate's own length.
function resolveOverlaps(candidates: Candidate[], length: number): Candidate[] {
  candidates.sort(
    (a, b) =>
      b.end - b.start - (a.end - a.start) ||
      SPECIFICITY.indexOf(a.kind) - SPECIFICITY.indexOf(b.kind) ||
      a.start - b.start,
  );
  const taken = new Uint8Array(length);
  const accepted: Candidate[] = [];
  for (const c of candidates) {
    if (taken[c.start] || taken[c.end - 1] || taken.subarray(c.start, c.end).includes(1)) continue;
    taken.fill(1, c.start, c.end);
    accepted.push(c);
  }
  return accepted.sort((a, b) => a.start - b.start);
}

// One forward walk converts UTF-16 indexes to UTF-8 byte offsets (surrogate
// pairs are 4 bytes; a lone surrogate is written as U+FFFD, 3 bytes).
function toFindings(text: string, spans: Candidate[]): VolatilityFinding[] {
  const findings: VolatilityFinding[] = [];
  let index = 0;
  let bytes = 0;
  for (const span of spans) {
    while (index < span.start) {
      const code = text.charCodeAt(index);
      if (code < 0x80) bytes += 1;
      else if (code < 0x800) bytes += 2;
      else if (code >= 0xd800 && code <= 0xdbff && isLowSurrogate(text.charCodeAt(index + 1))) {
        bytes += 4;
        index++;
      } else bytes += 3;
      index++;
    }
    findings.push({ kind: span.kind, offset: bytes, text: text.slice(span.start, span.end) });
  }
  return findings;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

// 2147483647 (INT32_MAX) falls in range but is a sentinel, not a moment.
function inEpochRange(value: number, unit: 1 | 1000): boolean {
  return value >= EPOCH_MIN_S * unit && value < EPOCH_MAX_S * unit && value !== 2_147_483_647;
}

// Either order (day/month or month/day) must make a calendar date.
function isDayMonthPair(match: string): boolean {
  const [a, b] = match.split(/[/.\-]/).map(Number) as [number, number];
  const valid = (day: number, month: number) => day >= 1 && day <= 31 && month >= 1 && month <= 12;
  return valid(a, b) || valid(b, a);
}

/**
 * A token of [A-Za-z0-9_-] is a random id when its longest segment (between
 * `_`/`-`, so `req_`, `msg_`, `chatcmpl-` prefixes are set aside) is at
 * least 12 chars, mixes letters and digits, and does not read like words:
 * mostly one- or two-char case/digit pieces (8fK2xQ9m), few vowels, or a
 * run of five consonants. Identifiers such as utf8ToBase64String or
 * get_weather_forecast_for_city fail all three.
 */
function acceptRandomId(match: string, index: number): readonly [number, number] | null {
  // Separators at the edges belong to the surrounding text, not the id.
  const lead = match.length - match.replace(/^[_\-]+/, '').length;
  const trimmed = match.replace(/^[_\-]+/, '').replace(/[_\-]+$/, '');
  if (trimmed.length < 16 || trimmed.length > MAX_ID_LENGTH) return null;
  let body = '';
  for (const segment of trimmed.split(/[_\-]/)) if (segment.length > body.length) body = segment;
  if (body.length < 12 || !/\d/.test(body) || !/[A-Za-z]/.test(body)) return null;
  if (!looksRandom(body)) return null;
  return [index + lead, index + lead + trimmed.length];
}

function looksRandom(body: string): boolean {
  const pieces = body.match(/[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+/g) ?? [];
  const short = pieces.filter((p) => p.length <= 2).length;
  if (pieces.length >= 4 && short / pieces.length > 0.5) return true;
  const letters = body.replace(/[^A-Za-z]/g, '');
  const vowels = letters.replace(/[^aeiouAEIOU]/g, '').length;
  if (letters.length >= 6 && vowels / letters.length < 0.2) return true;
  return /[b-df-hj-np-tv-xzB-DF-HJ-NP-TV-XZ]{5}/.test(body);
}
