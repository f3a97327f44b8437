import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encode as o200k } from 'gpt-tokenizer/encoding/o200k_base';
import { createTestApp, type TestApp } from '../helpers/app';
import { mintArtifact, mintBundle, mintSystem, startSession } from '../helpers/factories';
import { volatilityNote } from '../../src/cli/table';
import { VOLATILE_SOURCES_LISTED } from '../../src/domain/handle-meta';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

describe('reuse metadata at mint', () => {
  it('counts tokens (exact for OpenAI, estimates flagged), finds volatile values, and says which models it clears', async () => {
    const { client } = t.tenant();
    const text = `Generated at 2026-11-21T09:30:00Z for trace 550e8400-e29b-41d4-a716-446655440000.\n${'Reference material. '.repeat(400)}`;
    const res = await client.post('/v1/artifacts', { kind: 'system', content: text });
    const meta = res.json.meta;
    expect(meta.tokens.o200k_base).toBe(o200k(text).length);
    expect(meta.estimated).toEqual(['anthropic', 'gemini']);
    expect(meta.volatility.count).toBe(2);
    expect(meta.volatility.findings.map((f: { kind: string; offset: number }) => [f.kind, f.offset])).toEqual([
      ['iso_timestamp', 13],
      ['uuid', 44],
    ]);
    expect(meta.clears_minimum['claude-sonnet-4-5']).toBe(meta.tokens.anthropic >= 1024);
    expect(meta.clears_minimum['gpt-4o']).toBe(true);
    // Models without prompt caching never clear it, whatever the length.
    expect(meta.clears_minimum['gpt-4']).toBe(false);
    expect(meta.clears_minimum['gpt-3.5-turbo']).toBe(false);
    const small = await mintSystem(client, 'tiny');
    const smallMeta = (await client.get(`/v1/handles/${small.id}`)).json.version.meta;
    expect(smallMeta.clears_minimum['gpt-4o']).toBe(false);
    expect(smallMeta.volatility.count).toBe(0);
  });

  it('for a new version, gives the first differing byte and token and the tokens the change invalidates', async () => {
    const { client } = t.tenant();
    const a = await mintSystem(client, 'Stable introduction. '.repeat(50) + 'tail one');
    const v2 = await client.post(`/v1/artifacts/${a.id}/versions`, { content: 'Stable introduction. '.repeat(50) + 'tail two!' });
    const change = v2.json.meta.change;
    expect(change.first_diff_byte).toBe('Stable introduction. '.length * 50 + 'tail '.length);
    const before = o200k('Stable introduction. '.repeat(50) + 'tail ').length;
    expect(change.first_diff_token.o200k_base).toBeLessThanOrEqual(before);
    expect(change.first_diff_token.o200k_base).toBeGreaterThan(before - 3);
    expect(change.invalidated_tokens.o200k_base).toBe(v2.json.meta.tokens.o200k_base - change.first_diff_token.o200k_base);
    const described = await client.get(`/v1/handles/${a.id}`);
    expect(described.json.versions[1].meta.change).toEqual(change);
  });

  it('adds up bundle and session metadata from their segments', async () => {
    const { client } = t.tenant();
    const s1 = await mintSystem(client, 'first system text');
    const d1 = await mintArtifact(client, 'document', 'a document with id 550e8400-e29b-41d4-a716-446655440000');
    const b = await mintBundle(client, [s1.id, d1.id]);
    const meta = (await client.get(`/v1/handles/${b.id}`)).json.version.meta;
    const t1 = (await client.get(`/v1/handles/${s1.id}`)).json.version.meta.tokens;
    const t2 = (await client.get(`/v1/handles/${d1.id}`)).json.version.meta.tokens;
    expect(meta.tokens.o200k_base).toBe(t1.o200k_base + t2.o200k_base);
    expect(meta.volatility).toEqual({ count: 1, sources: 1, by_source: { [`${d1.id}@1`]: 1 } });

    const s = await startSession(client, { base: b.id, messages: [{ role: 'user', content: 'hello' }] });
    const appended = await client.post(`/v1/sessions/${s.id}/messages`, { messages: [{ role: 'assistant', content: 'hi there' }] });
    const m = appended.json.meta;
    expect(m.change.invalidated_tokens.o200k_base).toBe(0);
    expect(m.tokens.o200k_base).toBe(meta.tokens.o200k_base + (await client.get(`/v1/handles/${s.id}@1`)).json.version.meta.batch.tokens.o200k_base + m.batch.tokens.o200k_base);

    const s2 = await mintSystem(client, 'second system text');
    const bv2 = await client.post(`/v1/bundles/${b.id}/versions`, { members: [s2.id, d1.id] });
    expect(bv2.json.meta.change.first_diff_segment).toBe(`${s2.id}@1`);
    expect(bv2.json.meta.change.invalidated_tokens.o200k_base).toBe(bv2.json.meta.tokens.o200k_base);
  });

  it("names a session's first 50 volatile sources in prompt order and counts them all: its versions' meta stays bounded", async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, 'Built 2026-01-02T03:04:05Z from 550e8400-e29b-41d4-a716-446655440000.');
    const base = await mintBundle(client, [sys.id]);
    const s = await startSession(client, { base: base.id, messages: [{ role: 'user', content: 'hello' }] });
    // Two turns in three carry a timestamp (every sixth, two): 60 volatile batches of 90, and every version of the
    // session stores its meta, so a list of them all would grow with the square of the turns.
    const findings = (k: number) => (k % 3 === 0 ? 0 : k % 6 === 1 ? 2 : 1);
    const turn = (k: number) => (findings(k) === 0 ? `turn ${k}` : `at 2026-03-04T05:06:07Z${findings(k) === 2 ? ' and 2026-03-04T05:06:08Z' : ''} turn ${k}`);
    for (let k = 1; k <= 90; k++) {
      const res = await client.post(`/v1/sessions/${s.id}/messages`, { messages: [{ role: k % 2 ? 'assistant' : 'user', content: turn(k) }] });
      expect(res.status, res.text).toBe(201);
    }
    const versions = (await client.get(`/v1/handles/${s.id}`)).json.versions as Array<{ version: number; meta: { volatility: { count: number; sources: number; by_source: Record<string, number> } } }>;
    expect(versions).toHaveLength(91);
    for (const { version, meta } of versions) {
      // Version v appended turn v-1 (version 1: the first message, without a timestamp): the base's, then its batches'.
      const volatile: Array<[string, number]> = [[`${sys.id}@1`, 2]];
      for (let v = 2; v <= version; v++) if (findings(v - 1)) volatile.push([`${s.id}@${v}`, findings(v - 1)]);
      expect(meta.volatility, `@${version}`).toEqual({
        count: volatile.reduce((n, [, c]) => n + c, 0),
        sources: volatile.length,
        by_source: Object.fromEntries(volatile.slice(0, VOLATILE_SOURCES_LISTED)),
      });
      expect(Object.keys(meta.volatility.by_source)).toEqual(volatile.slice(0, 50).map(([ref]) => ref));
    }
    const latest = versions.at(-1)!.meta.volatility;
    expect(latest.sources).toBe(61);
    expect(Object.keys(latest.by_source)).toHaveLength(50);
    expect(latest.count).toBe(2 + 60 + 15);

    // The CLI names the first three and says there are more, in either shape (a version minted before listed them all).
    expect(volatilityNote(latest)).toBe(`77 volatile values: 2 in ${sys.id}@1, 2 in ${s.id}@2, 1 in ${s.id}@3, …`);
    expect(volatilityNote({ count: 3, sources: 3, by_source: { a: 1, b: 1, c: 1 } })).toBe('3 volatile values: 1 in a, 1 in b, 1 in c');
    expect(volatilityNote({ count: 4, by_source: { a: 1, b: 1, c: 1, d: 1 } })).toBe('4 volatile values: 1 in a, 1 in b, 1 in c, …');
    expect(volatilityNote({ count: 3, by_source: { a: 1, b: 1, c: 1 } })).toBe('3 volatile values: 1 in a, 1 in b, 1 in c');
  });

  it("a bundle's page counts each of its sources' volatile values, also past the 50 its meta names", async () => {
    const { client, key } = t.tenant();
    // 54 volatile documents of 60, some with two values.
    const volatile = (i: number) => (i % 10 === 0 ? 0 : i % 3 === 1 ? 2 : 1);
    const members: string[] = [];
    for (let i = 0; i < 60; i++) members.push((await mintArtifact(client, 'document', `doc ${i}${' at 2026-01-01T00:00:00Z'.repeat(volatile(i))}`)).id);
    const b = await mintBundle(client, members);
    expect((await client.get(`/v1/handles/${b.id}`)).json.version.meta.volatility).toMatchObject({ count: 54 + 18, sources: 54 });
    const page = await (await t.app.request(`/ui/handles/${b.id}`, { headers: { cookie: `ph_ui_key=${key}` } })).text();
    const table = /<table data-table="composition"[^>]*>[\s\S]*?<\/table>/.exec(page)![0];
    const rows = [...table.matchAll(/<tr><td class="num">(\d+)<\/td><td><a [^>]*>([^<]+)<\/a><\/td><td>[^<]*<\/td><td class="num">(\d+)<\/td>/g)].map((m) => [m[2], Number(m[3])]);
    expect(rows).toEqual(members.map((id, i) => [`${id}@1`, volatile(i)]));
  });
});
