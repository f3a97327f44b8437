import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encode as o200k } from 'gpt-tokenizer/encoding/o200k_base';
import { createTestApp, type TestApp } from '../helpers/app';
import { mintArtifact, mintBundle, mintSystem, startSession } from '../helpers/factories';

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
    expect(meta.volatility).toEqual({ count: 1, by_source: { [`${d1.id}@1`]: 1 } });

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
});
