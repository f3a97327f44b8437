// Two documented cache behaviours, over real HTTP on loopback with a fake clock: vLLM computes a prompt's last token
// (so a prompt cached whole reads its length − 1, cut to full blocks), and OpenAI spreads a prefix and prompt_cache_key
// past ~15 starts a minute over more machines, each with its own cache. The OpenAI calls go through the official SDK;
// the vLLM ones are raw bodies, as any OpenAI-compatible client sends them.

import fc from 'fast-check';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import type { CacheRules } from '../../src/domain/catalog/types';
import { CacheSimulator, readCap, stepFloor } from '../../src/domain/simulator/cache';
import { machineOf, StartWindow } from '../../src/domain/simulator/overflow';
import { startSimulator, type RunningSimulator } from '../../src/simulator/server';

const catalog = new ModelCatalog(loadCatalog());
const clock = {
  t: Date.UTC(2026, 0, 1, 12, 0, 0),
  now() {
    return this.t;
  },
};

let sim: RunningSimulator;
let unbounded: RunningSimulator;
let off: RunningSimulator;
beforeAll(async () => {
  [sim, unbounded, off] = await Promise.all([startSimulator({ catalog, clock }), startSimulator({ catalog, clock, overflowRate: 1e9 }), startSimulator({ catalog, clock, overflowRate: null })]);
});
afterAll(async () => {
  await Promise.all([sim.close(), unbounded.close(), off.close()]);
});

let keys = 0;
const newKey = () => `sk-fidelity-${++keys}-${Math.random().toString(36).slice(2)}`;

// ── vLLM: the last token ────────────────────────────────────────────────────

const SYSTEM = 'You are a support bot for the billing team. Answer briefly and politely.';
const QUESTION = 'My invoice shows two charges for the same plan in March; please refund one of them today, thanks a lot. I have been a customer for many years and never had this problem with billing';

async function vllm(key: string, question: string): Promise<{ prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } | null }> {
  const res = await fetch(`${sim.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: 'vllm/support-bot', messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content: question }] }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } | null } }).usage;
}

describe('vLLM: the last prompt token is computed, not read', () => {
  it('a 64-token prompt sent again reads 48 tokens (63 cut to 16-token blocks), not 64', async () => {
    const key = newKey();
    expect(await vllm(key, QUESTION)).toMatchObject({ prompt_tokens: 64, prompt_tokens_details: { cached_tokens: 0 } });
    clock.t += 1000;
    expect(await vllm(key, QUESTION)).toMatchObject({ prompt_tokens: 64, prompt_tokens_details: { cached_tokens: 48 } });
  });

  it('a 65-token prompt sent again reads 64: its reply header is cached with it, all but the last token', async () => {
    const key = newKey();
    const question = `${QUESTION} before`;
    expect(await vllm(key, question)).toMatchObject({ prompt_tokens: 65, prompt_tokens_details: { cached_tokens: 0 } });
    clock.t += 1000;
    expect(await vllm(key, question)).toMatchObject({ prompt_tokens: 65, prompt_tokens_details: { cached_tokens: 64 } });
  });

  it('the cap never reads more than the prompt length − 1, and is the uncapped read otherwise (property)', () => {
    const rules: CacheRules = { ...catalog.byId('vllm')!.cache };
    const uncapped: CacheRules = { ...rules, lastTokenComputed: false };
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 }), fc.integer({ min: 0, max: 5 }), (sizes, extra) => {
        let end = 0;
        const blocks = sizes.map((s, i) => ({ key: `b${i}`, endToken: (end += s) }));
        const promptTokens = end + extra;
        const capped = new CacheSimulator(rules);
        const plain = new CacheSimulator(uncapped);
        for (const s of [capped, plain]) s.apply({ id: 'a', startedAt: 0, firstByteAt: 1, blocks, promptTokens });
        const a = capped.apply({ id: 'b', startedAt: 10, firstByteAt: 11, blocks, promptTokens });
        const b = plain.apply({ id: 'b', startedAt: 10, firstByteAt: 11, blocks, promptTokens });
        expect(a.readTokens).toBeLessThanOrEqual(promptTokens - 1);
        expect(a.readTokens).toBe(stepFloor(rules.granularity, Math.min(b.readTokens, readCap(rules, promptTokens))));
        // What was matched but not read is the uncachable tail (`granularity`), never a miss of another gate.
        expect(a.blocks.filter((x, i) => x.read < b.blocks[i]!.read).every((x) => x.reason === 'granularity')).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});

// ── OpenAI: overflow past ~15 starts a minute ───────────────────────────────

const LONG_SYSTEM = Array.from({ length: 150 }, (_, i) => `Guideline ${i + 1}: answer precisely, cite the relevant section, and keep a calm tone.`).join(' ');

function openai(url: string, key: string, headers: Record<string, string> = {}): OpenAI {
  return new OpenAI({ apiKey: key, baseURL: `${url}/v1`, maxRetries: 0, defaultHeaders: headers });
}

/** `n` calls of one prompt on one key, `gapMs` apart: each call's cached tokens. */
async function burst(client: OpenAI, n: number, gapMs: number, promptCacheKey: string | undefined = 'ph-bnd_support'): Promise<number[]> {
  const cached: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await client.chat.completions.create({
      model: 'gpt-4.1',
      messages: [
        { role: 'system', content: LONG_SYSTEM },
        { role: 'user', content: 'Where is my invoice?' },
      ],
      ...(promptCacheKey ? { prompt_cache_key: promptCacheKey } : {}),
    });
    cached.push(r.usage?.prompt_tokens_details?.cached_tokens ?? -1);
    clock.t += gapMs;
  }
  return cached;
}

describe('OpenAI: a prefix and prompt_cache_key past ~15 starts a minute overflows to more machines', () => {
  it('40 calls in a minute: the 16th goes to a second machine and the 33rd to a third, each a miss there, the rest hits', async () => {
    const cached = await burst(openai(sim.url, newKey()), 40, 1000);
    const hit = cached[1]!;
    expect(hit).toBeGreaterThan(1024);
    const misses = cached.flatMap((c, i) => (c === 0 ? [i + 1] : []));
    expect(misses).toEqual([1, 16, 33]);
    expect(cached.filter((c) => c === hit)).toHaveLength(37);
  });

  it('the same 40 calls over four minutes (10 a minute) stay on one machine: one miss', async () => {
    const cached = await burst(openai(sim.url, newKey()), 40, 6000);
    expect(cached.filter((c) => c === 0)).toHaveLength(1);
  });

  it('another prompt_cache_key is another route: two keys of 10 calls each, 20 starts in 30 s, neither route past 15', async () => {
    const key = newKey();
    const a = await burst(openai(sim.url, key), 10, 1500, 'ph-bnd_support#a');
    const b = await burst(openai(sim.url, key), 10, 1500, 'ph-bnd_support#b');
    // One machine's cache per API key and model: the second key's first call reads what the first key wrote.
    expect([...a, ...b].filter((c) => c === 0)).toHaveLength(1);
  });

  it('x-simulator-overflow-rate drives the threshold per call: at 3 a minute the 4th call goes to a second machine, the 9th to a third', async () => {
    const cached = await burst(openai(sim.url, newKey(), { 'x-simulator-overflow-rate': '3' }), 9, 1000);
    // Call 4: rate 4, 2 machines, 3 sent before → machine 1, first there. Call 9: rate 9, 3 machines, 8 sent → machine 2.
    expect(cached.map((c) => c === 0)).toEqual([true, false, false, true, false, false, false, false, true]);
  });

  it('a vLLM model never overflows: it is not OpenAI', async () => {
    const key = newKey();
    const figures = [];
    for (let i = 0; i < 20; i++) {
      figures.push((await vllm(key, QUESTION)).prompt_tokens_details!.cached_tokens);
      clock.t += 500;
    }
    expect(figures).toEqual([0, ...Array<number>(19).fill(48)]);
  });

  it('with the threshold set very high the simulator answers as with no overflow at all (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ gap: fc.integer({ min: 0, max: 8000 }), question: fc.constantFrom('a?', 'b?'), cacheKey: fc.constantFrom('k1', 'k2', undefined) }), { minLength: 1, maxLength: 25 }),
        async (calls) => {
          const key = newKey();
          const [high, none] = [openai(unbounded.url, key), openai(off.url, key)];
          for (const c of calls) {
            const body = { model: 'gpt-4.1', messages: [{ role: 'system' as const, content: LONG_SYSTEM }, { role: 'user' as const, content: c.question }], ...(c.cacheKey ? { prompt_cache_key: c.cacheKey } : {}) };
            const [x, y] = await Promise.all([high.chat.completions.create(body), none.chat.completions.create(body)]);
            expect(x.usage).toEqual(y.usage);
            clock.t += c.gap;
          }
        },
      ),
      { numRuns: 15 },
    );
  });

  it("the overflow machines' caches (and any other) are dropped once idle past the model's longest TTL: counted", async () => {
    const own = { t: Date.UTC(2026, 0, 2, 12, 0, 0), now() { return this.t; } };
    const s = await startSimulator({ catalog, clock: own });
    try {
      const call = (key: string) => openai(s.url, key).chat.completions.create({ model: 'gpt-4.1', messages: [{ role: 'system', content: LONG_SYSTEM }, { role: 'user', content: 'Where is my invoice?' }], prompt_cache_key: 'ph-bnd_support' });
      const [a, b] = [newKey(), newKey()];
      // 40 calls in 40 s: three machines, each its cache.
      for (let i = 0; i < 40; i++, own.t += 1000) await call(a);
      expect(s.caches()).toBe(3);
      // An hour later, another key: its cache beside them (gpt-4.1 keeps a prefix up to 24 h with prompt_cache_retention).
      own.t += 3_600_000;
      await call(b);
      expect(s.caches()).toBe(4);
      // 24 h after the first key's last call: its three are dropped; the second key's, idle 23 h, is kept.
      own.t += 86_400_000 - 3_600_000 - 1000 + 1;
      const late = await call(b);
      expect(s.caches()).toBe(1);
      expect(late.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
      // The first key's next call starts a fresh cache, a miss as its expired one would have been; then read.
      expect((await call(a)).usage?.prompt_tokens_details?.cached_tokens).toBe(0);
      expect((await call(a)).usage?.prompt_tokens_details?.cached_tokens).toBeGreaterThan(1024);
      expect(s.caches()).toBe(2);
    } finally {
      await s.close();
    }
  });

  it('the router: machine 0 up to the threshold, then round-robin over ceil(rate / threshold) machines', () => {
    expect(machineOf(15, 14, 15)).toBe(0);
    expect(machineOf(16, 15, 15)).toBe(1);
    expect(machineOf(16, 16, 15)).toBe(0);
    expect(machineOf(31, 32, 15)).toBe(2);
    expect(machineOf(1e6, 7, null)).toBe(0);
    const w = new StartWindow();
    expect([0, 1000, 59_999, 60_000, 60_001].map((t) => w.add('r', t))).toEqual([1, 2, 3, 3, 4]);
    // A start reported out of order is counted in its own window.
    expect(w.add('r', 30_000)).toBe(3);
    expect(w.add('other', 30_000)).toBe(1);
  });
});
