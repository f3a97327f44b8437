// A self-hosted OpenAI-compatible server (vLLM) behind the proxy, driven with the official OpenAI SDK: the model named
// for the catalog's vLLM entry (`vllm/<served name>`), its usage in vLLM's own shape, and a server started without
// --enable-prompt-tokens-details, whose usage says nothing of its cache: capture unknown, never a 0% hit.

import type OpenAI from 'openai';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mintSystem, startSession } from '../helpers/factories';
import { LONG_SYSTEM } from '../helpers/scenario';
import { committed, startHarness, type Harness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const MINUTE = 60_000;

async function loop(sdk: OpenAI, stream: boolean, turns = 3): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 1; i <= turns; i++) {
    const messages = [{ role: 'user' as const, content: `Question ${i}: where is order ${i}?` }];
    if (stream) {
      const { data, response } = await sdk.chat.completions.create({ model: 'vllm/support-bot', messages, stream: true }).withResponse();
      for await (const _ of data);
      ids.push(response.headers.get('x-ph-request-id')!);
    } else {
      const { response } = await sdk.chat.completions.create({ model: 'vllm/support-bot', messages }).withResponse();
      ids.push(response.headers.get('x-ph-request-id')!);
    }
    h.clock.advance(MINUTE);
  }
  await committed(h);
  return ids;
}

describe('a vLLM server behind the proxy', () => {
  it.each([false, true])('stream=%s: vLLM usage shape, no prompt_cache_key, cold then captured on the vLLM entry', async (stream) => {
    const client = h.tenant.client;
    const sys = await mintSystem(client, LONG_SYSTEM);
    const session = await startSession(client, {});
    const ids = await loop(h.openai({ headers: { 'x-ph-prefix': sys.id, 'x-ph-session': session.id } }), stream);

    const calls = h.tap.filter((e) => e.method === 'POST');
    // vLLM's UsageInfo: cached_tokens only, no OpenAI audio or completion details.
    const answer = calls[1]!.response;
    expect(answer).toContain('"prompt_tokens_details":{"cached_tokens":');
    expect(answer).not.toContain('audio_tokens');
    // A self-hosted server gets no prompt_cache_key (OpenAI's routing hint).
    for (const c of calls) expect(JSON.parse(c.body)).not.toHaveProperty('prompt_cache_key');

    const first = (await client.get(`/v1/requests/${ids[0]}`)).json;
    expect(first).toMatchObject({ catalog_entry: 'vllm', catalog_fallback: false, usage: { provider: 'vllm', cache_read_tokens: 0, cache_write_tokens: null } });
    const later = (await client.get(`/v1/requests/${ids[2]}`)).json;
    expect(later.outcome.capture).toBe('reported');
    expect(later.usage.cache_read_tokens).toBeGreaterThan(0);

    const rep = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
    expect(rep.requests_with.cold).toBe(1);
    expect(rep.tokens.captured).toBeGreaterThan(rep.tokens.cold);
    expect(rep.tokens).toMatchObject({ unknown: 0, unconfirmed: 0, drift: 0, expired: 0 });
    // Self-hosted: free by the catalog's entry, so no money is invented.
    expect(rep.money.actual_input_cost).toBe(0);
  });

  it.each([false, true])('stream=%s: without --enable-prompt-tokens-details ("prompt_tokens_details": null) capture is unknown, never a zero hit rate', async (stream) => {
    const client = h.tenant.client;
    const sys = await mintSystem(client, LONG_SYSTEM);
    const ids = await loop(h.openai({ headers: { 'x-ph-prefix': sys.id, 'x-simulator-prompt-tokens-details': 'off' } }), stream);

    const answer = h.tap.filter((e) => e.method === 'POST')[1]!.response;
    expect(answer).toContain('"prompt_tokens_details":null');
    for (const id of ids) {
      const r = (await client.get(`/v1/requests/${id}`)).json;
      expect(r.outcome.capture).toBe('unknown');
      expect(r.usage).toMatchObject({ provider: 'vllm', cache_read_tokens: null, cache_fields_reported: false });
      for (const s of r.outcome.segments) expect(s.read).toBeNull();
    }
    const rep = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
    // The repeats are unknown, not misses: no capture rate, nothing leaked, nothing counted as unconfirmed.
    expect(rep.capture_rate).toBeNull();
    expect(rep.tokens.unknown).toBeGreaterThan(0);
    expect(rep.tokens).toMatchObject({ captured: 0, unconfirmed: 0 });
    expect(rep.money.leaked_savings).toBe(0);
  });
});
