// A session's next version extends the one before: its digest, size and first differing byte are those of its whole
// neutral text (what `expand` sends), while an append serialises and hashes only its own batch, not the history again.

import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { clientFor, createTestApp, type Client } from '../helpers/app';
import { mintBundle, mintSystem, mintTools } from '../helpers/factories';
import { firstDifferingByte } from '../../src/domain/reuse-metadata';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

async function neutral(client: Client, ref: string): Promise<string> {
  const res = await client.get(`/v1/handles/${ref}/expand?format=neutral`);
  expect(res.status, res.text).toBe(200);
  return res.text;
}

/** The version an append or start answered agrees with its text, and with the version before's. */
async function expectWhole(client: Client, minted: { ref: string; version: number; digest: string; size: number; meta: { bytes: number; change?: { first_diff_byte: number | null } } }) {
  const text = await neutral(client, minted.ref);
  expect(minted.digest).toBe(sha(text));
  expect(minted.size).toBe(Buffer.byteLength(text));
  expect(minted.meta.bytes).toBe(minted.size);
  if (minted.version > 1) {
    const before = await neutral(client, `${minted.ref.split('@')[0]}@${minted.version - 1}`);
    expect(minted.meta.change?.first_diff_byte).toBe(firstDifferingByte(Buffer.from(text), Buffer.from(before)));
  }
}

const text = fc.string({ unit: fc.constantFrom('a', 'é', '✓', '"', '\\', ' ', '😀', '\n'), minLength: 1, maxLength: 12 }).filter((s) => s.trim() !== '');
const batch = fc.array(fc.record({ role: fc.constantFrom('user', 'assistant'), content: text }), { minLength: 1, maxLength: 3 });

describe('a session append', () => {
  it('answers the digest, size and first differing byte of the whole text, whatever was appended (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(batch, { maxLength: 2 }), fc.array(batch, { minLength: 1, maxLength: 5 }), async (withBase, start, appends) => {
        const t = createTestApp();
        try {
          const { client } = t.tenant();
          const base = withBase ? (await mintBundle(client, [(await mintTools(client)).id, (await mintSystem(client)).id])).id : undefined;
          const s = await client.post('/v1/sessions', { ...(base ? { base } : {}), messages: start.flat() });
          expect(s.status, s.text).toBe(201);
          await expectWhole(client, s.json);
          for (const messages of appends) {
            const a = await client.post(`/v1/sessions/${s.json.id}/messages`, { messages });
            expect(a.status, a.text).toBe(201);
            await expectWhole(client, a.json);
          }
        } finally {
          t.close();
        }
      }),
      { numRuns: 20 },
    );
  });

  it('after a restart, goes on from the stored versions with the same figures', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ph-append-'));
    const file = join(dir, 'db.sqlite');
    try {
      const first = createTestApp({ databasePath: file });
      const { key, client } = first.tenant();
      const s = (await client.post('/v1/sessions', { messages: [{ role: 'user', content: 'hi ✓' }] })).json;
      await client.post(`/v1/sessions/${s.id}/messages`, { messages: [{ role: 'assistant', content: 'hello' }] });
      first.close();
      const second = createTestApp({ databasePath: file });
      const again = clientFor(second.app, key);
      for (const content of ['next', 'and next']) {
        const a = await again.post(`/v1/sessions/${s.id}/messages`, { messages: [{ role: 'user', content }] });
        expect(a.status, a.text).toBe(201);
        await expectWhole(again, a.json);
      }
      second.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('goes on right when another writer appended (a second service on the same database) or an append was refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ph-append-'));
    const file = join(dir, 'db.sqlite');
    const a = createTestApp({ databasePath: file });
    const b = createTestApp({ databasePath: file });
    try {
      const { key, client } = a.tenant();
      const other = clientFor(b.app, key);
      const s = (await client.post('/v1/sessions', { messages: [{ role: 'user', content: 'hi' }] })).json;
      // Each service extends the version it wrote last: after the other's appends, that is not the latest one.
      let n = 0;
      for (const writer of [client, client, other, other, client, other, client]) {
        const r = await writer.post(`/v1/sessions/${s.id}/messages`, { messages: [{ role: n % 2 ? 'user' : 'assistant', content: `turn ${++n}` }] });
        expect(r.status, r.text).toBe(201);
        await expectWhole(writer, r.json);
      }
      // Refused appends (a stale If-Match, a tool result answering nothing) store nothing and leave nothing behind.
      const stale = await client.post(`/v1/sessions/${s.id}/messages`, { messages: [{ role: 'user', content: 'late' }] }, { 'if-match': '"2"' });
      expect(stale.status, stale.text).toBe(409);
      const unpaired = await client.post(`/v1/sessions/${s.id}/messages`, { messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_none', content: 'x' }] }] });
      expect(unpaired.status, unpaired.text).toBe(422);
      for (const writer of [client, other]) {
        const r = await writer.post(`/v1/sessions/${s.id}/messages`, { messages: [{ role: n % 2 ? 'user' : 'assistant', content: `turn ${++n}` }] });
        expect(r.status, r.text).toBe(201);
        await expectWhole(writer, r.json);
      }
    } finally {
      a.close();
      b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the work of a long session’s append', () => {
  afterEach(() => vi.restoreAllMocks());

  it('encodes and hashes its own batch, not the history: the 100th append no more than the 10th', async () => {
    const t = createTestApp();
    try {
      const { client } = t.tenant();
      const s = (await client.post('/v1/sessions', {})).json;
      // The text the service encodes (Buffer.from, Buffer.byteLength: what a sha256 or a byte comparison of it needs
      // first) and hashes through a Hash object, counted: real calls, the spies only add up their lengths.
      const spies = [vi.spyOn(Buffer, 'from'), vi.spyOn(Buffer, 'byteLength'), vi.spyOn(Object.getPrototypeOf(createHash('sha256')), 'update')];
      const length = (data: unknown) => (typeof data === 'string' ? data.length : ArrayBuffer.isView(data) ? data.byteLength : 0);
      const hashed = () => spies.reduce((n, spy) => n + spy.mock.calls.reduce((m, [data]) => m + length(data), 0), 0);
      const file = 'x'.repeat(4_000);
      const perAppend: number[] = [];
      let size = 0;
      for (let i = 1; i <= 100; i++) {
        for (const spy of spies) spy.mockClear();
        const a = await client.post(`/v1/sessions/${s.id}/messages`, { messages: [{ role: 'user', content: `step ${i}: ${file}` }, { role: 'assistant', content: `done ${i}` }] });
        expect(a.status, a.text).toBe(201);
        perAppend.push(hashed());
        size = a.json.size;
      }
      expect(size).toBeGreaterThan(400_000);
      // A batch is ~4 KB: its own text, a few times over, whatever the session's length (before: the whole history,
      // rendered and encoded three times on every append — 1.2 MB at the 100th).
      expect(perAppend[99]!).toBeLessThanOrEqual(perAppend[9]! + 64);
      expect(perAppend[99]!).toBeLessThan(8 * 4_100);
    } finally {
      t.close();
    }
  });
});
