import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findVolatility, type VolatilityKind } from '../../src/domain/volatility';

// "Größe → " is 8 UTF-16 units but 12 UTF-8 bytes: offsets below would be
// off by 4 if they were character offsets.
const PREFIX = 'Größe → ';
const PREFIX_BYTES = 12;

interface Positive {
  kind: VolatilityKind;
  value: string;
  /** Text around the value; `$` marks where it goes. */
  context: string;
  /** Expected UTF-8 byte offset of the value. */
  offset: number;
}

const p = (kind: VolatilityKind, value: string, context = `${PREFIX}$ ok`, offset = PREFIX_BYTES): Positive => ({
  kind,
  value,
  context,
  offset,
});

const POSITIVES: Positive[] = [
  // ISO 8601 / RFC 3339
  p('iso_timestamp', '2026-11-21T10:00:00Z'),
  p('iso_timestamp', '2026-11-21T10:00:00.123456+05:30'),
  p('iso_timestamp', '2026-11-21 10:00:00'),
  p('iso_timestamp', '2026-11-21t10:00:00z'),
  p('iso_timestamp', '2026-11-21T10:00-0800', '{"at":"$"}', 7),
  p('iso_timestamp', '20261121T100000Z', 's3://bucket/logs/$/part-0', 17),
  // dates
  p('date', '2026-11-21'),
  p('date', '21/11/2026'),
  p('date', '11/21/2026'),
  p('date', 'Nov 21, 2026'),
  p('date', '21 November 2026'),
  p('date', 'November 21st, 2026'),
  p('date', 'Sat, 21 Nov 2026'),
  p('date', '21.11.2026'),
  p('date', '2026/11/21'),
  p('date', '21-Nov-2026'),
  p('date', '2026-11-21', 'backup_$.tar.gz', 7),
  // unix epochs
  p('unix_seconds', '1732183200'),
  p('unix_seconds', '1732183200.123456', '{"ts":$}', 6),
  p('unix_seconds', '1000000000', '🦊 $', 5),
  p('unix_millis', '1732183200123'),
  p('unix_millis', '4102444799999', 'expires=$;', 8),
  // uuids, any version
  p('uuid', '550e8400-e29b-41d4-a716-446655440000'),
  p('uuid', 'F47AC10B-58CC-4372-A567-0E02B2C3D479'),
  p('uuid', '018f3c2a-7b1e-7cc0-9a4b-2f1d3e4c5b6a', '/v1/items/$', 10),
  // ulids
  p('ulid', '01ARZ3NDEKTSV4RRFFQ69G5FAV'),
  p('ulid', '01JDBR5ZK4QWXG7M8N2P3T6VYA', '"id": "$"', 7),
  // random ids
  p('random_id', 'req_8fK2xQ9mL3pZ7vR1'),
  p('random_id', 'msg_01XFDUDYJgAACzvnptvVoYEL'),
  p('random_id', 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT', 'id=$&x=1', 3),
  p('random_id', 'cus_NffrFeUfNV2Hib'),
  p('random_id', '8fK2xQ9mL3pZ7vR1wT5y', 'token: $', 7),
  // hex request ids
  p('hex_id', '4bf92f3577b34da6a3ce929d0e0e4736'),
  p('hex_id', '00f067aa0ba902b7', 'span=$', 5),
  p('hex_id', '0x1a2b3c4d5e6f7a8b9c'),
];

const NEGATIVES: string[] = [
  'version 1.2.3',
  'release v2.10.0 is out',
  'ISBN 978-3-16-148410-0',
  'ISBN-13 9783161484100',
  'ISBN 978-0-306-40615-7',
  'call +1 (415) 555-0132',
  'call 415-555-0132',
  'London +44 20 7946 0958',
  'E.164 +14155550132',
  'there are 42 items and 1000 more',
  'costs $19.99 or €1,299.00',
  'an ordinary sentence with English words only',
  'hash with sha256 and md5',
  'colour #ff00aa',
  'the year 2026 alone',
  'internationalization antidisestablishmentarianism',
  'call get_weather_forecast_for_city now',
  'utf8ToBase64String HelloWorld2024Greetings iPhone15ProMaxCase',
  'ThisIsAPascalCaseIdentifierName base64EncodedPayload2Json',
  'SGVsbG8gV29ybGQ= is short base64',
  'nine 999999999, out of range 5000000000, INT32_MAX 2147483647',
  '19 digits 1234567890123456789 and 16 digits 1234567890123456',
  'letters only hex deadbeefdeadbeefcafe',
  'invalid dates 2026-13-45 and 32/13/2026',
  'bare time 10:00:00 and pi 3.14159 and 2.5e10',
  'May the force be with you',
];

function expectedFinding(c: Positive) {
  return { kind: c.kind, offset: c.offset, text: c.value };
}

describe('findVolatility: labelled corpus', () => {
  it('the prefix really is multi-byte', () => {
    expect(Buffer.byteLength(PREFIX)).toBe(PREFIX_BYTES);
    expect(PREFIX.length).toBeLessThan(PREFIX_BYTES);
  });

  it('covers every kind with enough cases', () => {
    expect(POSITIVES.length).toBeGreaterThanOrEqual(25);
    expect(NEGATIVES.length).toBeGreaterThanOrEqual(20);
    const kinds = new Set(POSITIVES.map((c) => c.kind));
    expect([...kinds].sort()).toEqual(
      ['date', 'hex_id', 'iso_timestamp', 'random_id', 'ulid', 'unix_millis', 'unix_seconds', 'uuid'].sort(),
    );
  });

  it.each(POSITIVES.map((c) => [`${c.kind} ${c.value}`, c] as const))('finds %s', (_, c) => {
    const text = c.context.replace('$', c.value);
    expect(findVolatility(text)).toEqual([expectedFinding(c)]);
  });

  it.each(NEGATIVES)('does not flag %j', (text) => {
    expect(findVolatility(text)).toEqual([]);
  });

  it('reports several findings in one text with byte offsets', () => {
    const text = 'Ünïcödé 🦊 at 2026-11-21T10:00:00Z req_8fK2xQ9mL3pZ7vR1 ts=1732183200 v2.10.0 on Nov 21, 2026';
    expect(findVolatility(text)).toEqual([
      { kind: 'iso_timestamp', offset: 20, text: '2026-11-21T10:00:00Z' },
      { kind: 'random_id', offset: 41, text: 'req_8fK2xQ9mL3pZ7vR1' },
      { kind: 'unix_seconds', offset: 65, text: '1732183200' },
      { kind: 'date', offset: 87, text: 'Nov 21, 2026' },
    ]);
  });

  it('prefers the longest, most specific match at a position', () => {
    // The date is a prefix of the timestamp; the ULID and hex runs also pass the random-id test.
    expect(findVolatility('2026-11-21T10:00:00Z').map((f) => f.kind)).toEqual(['iso_timestamp']);
    expect(findVolatility('01ARZ3NDEKTSV4RRFFQ69G5FAV').map((f) => f.kind)).toEqual(['ulid']);
    expect(findVolatility('4bf92f3577b34da6a3ce929d0e0e4736').map((f) => f.kind)).toEqual(['hex_id']);
    expect(findVolatility('f47ac10b-58cc-4372-a567-0e02b2c3d479').map((f) => f.kind)).toEqual(['uuid']);
  });

  it('leaves blobs longer than an identifier alone', () => {
    expect(findVolatility('ab12'.repeat(100))).toEqual([]);
    expect(findVolatility('x8Fk2Lq9'.repeat(40))).toEqual([]);
  });

  it('stays fast on adversarial 400 KB inputs', () => {
    const size = 400_000;
    for (const unit of ['1', 'ab12', 'a1-', '2026-11-21 ', '1/1/', 'Nov 2', '1732183200.', '2026-11-21T10:00:00:']) {
      const text = unit.repeat(Math.ceil(size / unit.length));
      const started = performance.now();
      findVolatility(text);
      // Generous bound: a super-linear pattern takes seconds or more here.
      expect(performance.now() - started).toBeLessThan(1_000);
    }
  });
});

describe('findVolatility: properties', () => {
  const fragment = fc.oneof(
    fc.constantFrom(...POSITIVES.map((c) => c.value), ...NEGATIVES),
    fc.constantFrom(' ', '_', '-', '/', ':', '.', '"', '\n', 'é', '東', '🦊', '\uD800', '\uDC00'),
    fc.string({ unit: 'binary', maxLength: 8 }),
    fc.string({ unit: 'grapheme', maxLength: 8 }),
    fc.stringMatching(/^[0-9a-zA-Z_-]{1,30}$/),
  );
  const text = fc.array(fragment, { maxLength: 30 }).map((parts) => parts.join(''));

  it('findings are sorted, non-overlapping and sit at their byte offsets', () => {
    fc.assert(
      fc.property(text, (t) => {
        const bytes = Buffer.from(t);
        let end = 0;
        for (const f of findVolatility(t)) {
          const length = Buffer.byteLength(f.text);
          expect(length).toBeGreaterThan(0);
          expect(f.offset).toBeGreaterThanOrEqual(end);
          expect(bytes.subarray(f.offset, f.offset + length).toString()).toBe(f.text);
          end = f.offset + length;
        }
      }),
      { numRuns: 500 },
    );
  });
});
