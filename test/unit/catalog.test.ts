import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CatalogError,
  ModelCatalog,
  catalogOverrideSchema,
  catalogSchema,
  costOf,
  guessProvider,
  loadCatalog,
  mergeCatalog,
} from '../../src/domain/catalog/catalog';
import type { Catalog, ModelEntry } from '../../src/domain/catalog/types';

const bundledJson = (): unknown =>
  JSON.parse(readFileSync(new URL('../../src/domain/catalog/catalog.json', import.meta.url), 'utf8'));

const tempDirs: string[] = [];
afterEach(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function writeOverride(content: unknown, name = 'ops-override.json'): string {
  const dir = mkdtempSync(join(tmpdir(), 'catalog-test-'));
  tempDirs.push(dir);
  const file = join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

function catchCatalogError(fn: () => unknown): CatalogError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CatalogError);
    return err as CatalogError;
  }
  throw new Error('expected a CatalogError');
}

/** A complete entry to build small catalogs from. */
function entry(id: string, match: string[], overrides: Partial<ModelEntry> = {}): ModelEntry {
  const base = new ModelCatalog(loadCatalog()).byId('claude-sonnet-4-5')!;
  return { ...structuredClone(base), id, match, ...overrides };
}

describe('bundled catalog.json', () => {
  it('validates against catalogSchema and loads with its version', () => {
    const result = catalogSchema.safeParse(bundledJson());
    expect(result.success, result.success ? '' : JSON.stringify(result.error.issues, null, 2)).toBe(true);
    expect(loadCatalog().version).toBe('2026-12-06.2');
  });

  it("carries Anthropic's tool-use system prompt per model as 'Tool use with Claude' tabulates it, and none elsewhere", () => {
    const catalog = new ModelCatalog(loadCatalog());
    const prompt = (model: string) => catalog.lookup(model).entry.toolUseSystemPrompt ?? null;
    expect(prompt('claude-sonnet-4-6')).toEqual({ auto: 497, any: 589 });
    expect(prompt('claude-opus-4-8')).toEqual({ auto: 290, any: 410 });
    expect(prompt('claude-sonnet-4-20250514')).toEqual({ auto: 313, any: 315 });
    expect(prompt('claude-3-5-haiku-latest')).toEqual({ auto: 264, any: 355 });
    expect(prompt('claude-sonnet-5')).toEqual({ auto: 354, any: 474 });
    // From catalog 2026-12-04.3 (the pricing page's table).
    expect(prompt('claude-opus-5')).toEqual({ auto: 286, any: 406 });
    // Not in the table: not modelled rather than guessed.
    expect(prompt('claude-fable-5')).toBeNull();
    expect(prompt('claude-sonnet-5-5')).toBeNull();
    for (const m of catalog.entries()) if (m.provider !== 'anthropic') expect(m.toolUseSystemPrompt, m.id).toBeUndefined();
    // A count is a whole number of tokens.
    const broken = structuredClone(bundledJson()) as { models: Array<Record<string, unknown>> };
    broken.models[0]!.toolUseSystemPrompt = { auto: 1.5, any: 2 };
    expect(catalogSchema.safeParse(broken).success).toBe(false);
  });

  it("carries Anthropic-defined tools' figures per model and tool version as Anthropic's tool pages give them, and none elsewhere", () => {
    const catalog = new ModelCatalog(loadCatalog());
    const defined = (model: string) => catalog.lookup(model).entry.definedToolTokens ?? null;
    const claude4 = { bash_20250124: 244, text_editor_20250429: 700, computer_20250124: 1201, computer_20251124: 1201 };
    for (const model of ['claude-sonnet-4-6', 'claude-opus-4-6', 'claude-sonnet-4-5', 'claude-haiku-4-5', 'claude-opus-4-1', 'claude-sonnet-4-20250514']) expect(defined(model), model).toEqual(claude4);
    for (const model of ['claude-opus-4-7', 'claude-opus-4-8']) expect(defined(model), model).toEqual({ ...claude4, bash_20250124: 325 });
    expect(defined('claude-opus-5')).toEqual({ bash_20250124: 325 });
    for (const model of ['claude-fable-5', 'claude-sonnet-5', 'claude-opus-5-5', 'claude-3-5-haiku-latest']) expect(defined(model), model).toBeNull();
    for (const m of catalog.entries()) if (m.provider !== 'anthropic') expect(m.definedToolTokens, m.id).toBeUndefined();
    // Keyed by a tool version, a whole number of tokens; an operator's override adds one (text_editor_20250728, say).
    const broken = structuredClone(bundledJson()) as { models: Array<Record<string, unknown>> };
    broken.models[0]!.definedToolTokens = { bash: 244 };
    expect(catalogSchema.safeParse(broken).success).toBe(false);
    broken.models[0]!.definedToolTokens = { bash_20250124: 244.5 };
    expect(catalogSchema.safeParse(broken).success).toBe(false);
    const merged = mergeCatalog(loadCatalog(), catalogOverrideSchema.parse({ models: [{ id: 'claude-sonnet-4-6', definedToolTokens: { text_editor_20250728: 700 } }] }), 'ops');
    const entry = new ModelCatalog(catalogSchema.parse(merged)).lookup('claude-sonnet-4-6').entry;
    expect(entry.definedToolTokens).toEqual({ ...claude4, text_editor_20250728: 700 });
  });

  it('gives every entry a documentation source and an ISO check date', () => {
    const models = loadCatalog().models;
    expect(models.length).toBeGreaterThan(20);
    for (const m of models) {
      expect(m.source, m.id).toMatch(/^https:\/\/\S+$/);
      expect(m.checked, m.id).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(Number.isNaN(Date.parse(m.checked)), m.id).toBe(false);
    }
  });

  it('covers each provider family named in the design', () => {
    const catalog = new ModelCatalog(loadCatalog());
    const providers = new Set(catalog.entries().map((e) => e.provider));
    expect([...providers].sort()).toEqual(['anthropic', 'gemini', 'openai', 'vllm']);
  });

  it('carries the documented Anthropic cache rules', () => {
    const catalog = new ModelCatalog(loadCatalog());
    const sonnet = catalog.lookup('claude-sonnet-4-5').entry;
    expect(sonnet.cache).toMatchObject({
      mode: 'explicit',
      maxBreakpoints: 4,
      lookbackBlocks: 20,
      readMultiplier: 0.1,
      refreshOnHit: true,
      writesBilled: true,
      defaultTtl: '5m',
    });
    expect(sonnet.cache.ttls).toEqual([
      { name: '5m', seconds: 300, writeMultiplier: 1.25 },
      { name: '1h', seconds: 3600, writeMultiplier: 2 },
    ]);
    expect(catalog.lookup('claude-opus-4-1-20250805').entry.cache.minTokens).toBe(1024);
    expect(catalog.lookup('claude-opus-4-5-20251101').entry.cache.minTokens).toBe(4096);
    expect(catalog.lookup('claude-haiku-4-5-20251001').entry.cache.minTokens).toBe(4096);
    expect(catalog.lookup('claude-3-5-haiku-20241022').entry.cache.minTokens).toBe(2048);
  });
});

describe('ModelCatalog.lookup', () => {
  const catalog = new ModelCatalog(loadCatalog());

  it('resolves a dated Anthropic name to its own minor version, not the older family entry', () => {
    const lookup = catalog.lookup('claude-sonnet-4-5-20250929');
    expect(lookup).toMatchObject({ model: 'claude-sonnet-4-5-20250929', fallback: false });
    expect(lookup.entry.id).toBe('claude-sonnet-4-5');
    expect(catalog.lookup('claude-sonnet-4-20250514').entry.id).toBe('claude-sonnet-4');
  });

  it("on OpenAI's API, a self-hosted server's model is the vLLM entry (free, 16-token blocks), not priced as GPT", () => {
    expect(catalog.lookup('vllm/meta-llama/Llama-3.1-8B-Instruct', 'openai')).toMatchObject({ fallback: false, entry: { id: 'vllm', price: { inputPerMTok: 0 } } });
    // A Hugging Face repository id is no OpenAI model: flagged, and given the self-hosted server's rules.
    expect(catalog.lookup('Qwen/Qwen2.5-7B-Instruct', 'openai')).toMatchObject({ fallback: true, entry: { id: 'vllm', cache: { granularity: { step: 16 } } } });
    // OpenAI's open-weight models under their repository id, and open-weight names a server serves without one.
    for (const name of ['openai/gpt-oss-20b', 'gpt-oss-120b', 'qwen2.5-7b-instruct', 'llama-3.1-8b', 'deepseek-r1-distill'])
      expect(catalog.lookup(name, 'openai'), name).toMatchObject({ fallback: true, entry: { id: 'vllm' } });
    // OpenAI's own names stay OpenAI's, gateway-prefixed or not, known or not.
    expect(catalog.lookup('openai/gpt-4.1', 'openai').entry.id).toBe('gpt-4.1');
    expect(catalog.lookup('gpt-9-preview', 'openai')).toMatchObject({ fallback: true, entry: { provider: 'openai' } });
    for (const name of ['openai/gpt-5.1', 'azure/gpt-9-preview', 'openai/o3', 'anthropic/claude-sonnet-4-5', 'openrouter/anthropic/claude-3.5-sonnet'])
      expect(catalog.lookup(name, 'openai').entry.provider, name).toBe('openai');
    // A Gemini model on OpenAI's API (Gemini's OpenAI compatibility endpoint, a gateway) is Gemini's entry, not GPT-5
    // at four times the price and flagged unknown; an unknown Gemini name falls back to Gemini's default.
    expect(catalog.lookup('gemini-2.5-flash', 'openai')).toMatchObject({ fallback: false, entry: { id: 'gemini-2.5-flash', price: { inputPerMTok: 0.3 } } });
    expect(catalog.lookup('google/gemini-2.5-pro', 'openai')).toMatchObject({ fallback: false, entry: { id: 'gemini-2.5-pro' } });
    expect(catalog.lookup('gemini-9-ultra', 'openai')).toMatchObject({ fallback: true, entry: { provider: 'gemini' } });
    expect(catalog.lookup('vllm/x', 'anthropic').entry.provider).toBe('anthropic');
  });

  it("resolves the Gemini 3 models by the caching page's minimums and the pricing page's rates, not as the 2.5 Flash default", () => {
    const gemini = (name: string, provider?: 'openai') => {
      const { entry, fallback } = catalog.lookup(name, provider);
      return { id: entry.id, fallback, minTokens: entry.cache.minTokens, input: entry.price.inputPerMTok, read: entry.cache.readMultiplier };
    };
    expect(gemini('gemini-3.1-pro-preview')).toEqual({ id: 'gemini-3.1-pro', fallback: false, minTokens: 4096, input: 2, read: 0.1 });
    // Shut down, and pointing to 3.1 Pro: an old log's name is priced as what answered it.
    expect(gemini('gemini-3-pro-preview').id).toBe('gemini-3.1-pro');
    expect(gemini('models/gemini-3.1-pro-preview-customtools').id).toBe('gemini-3.1-pro');
    expect(gemini('google/gemini-3.1-pro-preview', 'openai').id).toBe('gemini-3.1-pro');
    expect(gemini('gemini-3-flash-preview')).toEqual({ id: 'gemini-3-flash', fallback: false, minTokens: 1024, input: 0.5, read: 0.1 });
    expect(gemini('gemini-3.5-flash')).toEqual({ id: 'gemini-3.5-flash', fallback: false, minTokens: 4096, input: 1.5, read: 0.1 });
    expect(gemini('gemini-3.8-flash')).toEqual({ id: 'gemini-3.8-flash', fallback: false, minTokens: 4096, input: 0.75, read: 0.1 });
    expect(gemini('gemini-3.6-flash')).toEqual({ id: 'gemini-3.6-flash', fallback: false, minTokens: 4096, input: 1.5, read: 0.1 });
    // Deprecated and routed to 3.8 Flash by Google: priced as what answers it.
    expect(gemini('gemini-3.7-flash')).toEqual({ id: 'gemini-3.8-flash', fallback: false, minTokens: 4096, input: 0.75, read: 0.1 });
    // Flash-Lite is its own entry, not 3.5 Flash at five times the price.
    expect(gemini('gemini-3.5-flash-lite')).toEqual({ id: 'gemini-3.5-flash-lite', fallback: false, minTokens: 4096, input: 0.3, read: 0.1 });
    expect(catalog.lookup('gemini-3.5-flash-lite').entry.price.outputPerMTok).toBe(2.5);
    // 3.1 Flash-Lite (and its shut-down preview's name) is its own entry from 2026-12-05.2, not 2.5 Flash flagged.
    for (const name of ['gemini-3.1-flash-lite', 'gemini-3.1-flash-lite-preview', 'models/gemini-3.1-flash-lite'])
      expect(gemini(name), name).toEqual({ id: 'gemini-3.1-flash-lite', fallback: false, minTokens: 4096, input: 0.25, read: 0.1 });
    expect(gemini('google/gemini-3.1-flash-lite', 'openai').id).toBe('gemini-3.1-flash-lite');
    expect(catalog.lookup('gemini-3.1-flash-lite').entry.price).toEqual({ currency: 'USD', inputPerMTok: 0.25, outputPerMTok: 1.5 });
    // Its neighbours keep theirs: 3.1 Pro is not captured, nor 3.5 Flash-Lite.
    expect(gemini('gemini-3.1-pro').id).toBe('gemini-3.1-pro');
    expect(gemini('gemini-3.5-flash-lite').id).toBe('gemini-3.5-flash-lite');
    // 2.0 Flash-Lite has no entry (no price read): it still matches 2.0 Flash's prefix pattern.
    expect(gemini('gemini-2.0-flash-lite').id).toBe('gemini-2.0-flash');
  });

  it("resolves the GPT-5.x models by their own entries, each id to its model and not a broader pattern's, the rest still flagged as gpt-5", () => {
    const g = (name: string, provider?: 'openai') => {
      const { entry, fallback } = catalog.lookup(name, provider);
      return { id: entry.id, fallback, input: entry.price.inputPerMTok, output: entry.price.outputPerMTok, read: entry.cache.readMultiplier, ttls: entry.cache.ttls.map((t) => t.name), defaultTtl: entry.cache.defaultTtl };
    };
    const both = ['5m', '24h'];
    // $ per million: input, cached input, output; the retentions the prompt caching guide gives each (checked 2026-12-05).
    const table: Array<[string[], string, number, number, number, string[]]> = [
      [['gpt-5-pro', 'gpt-5-pro-2025-10-06'], 'gpt-5-pro', 15, 15, 120, ['5m']],
      [['gpt-5.1', 'gpt-5.1-2025-11-13', 'openai/gpt-5.1'], 'gpt-5.1', 1.25, 0.125, 10, both],
      [['gpt-5.2', 'gpt-5.2-2025-12-11', 'gpt-5.2-codex'], 'gpt-5.2', 1.75, 0.175, 14, both],
      [['gpt-5.3-codex'], 'gpt-5.3-codex', 1.75, 0.175, 14, both],
      [['gpt-5.4', 'gpt-5.4-2026-03-05'], 'gpt-5.4', 2.5, 0.25, 15, both],
      [['gpt-5.4-mini', 'gpt-5.4-mini-2026-03-17', 'openai/gpt-5.4-mini'], 'gpt-5.4-mini', 0.75, 0.075, 4.5, ['5m']],
      [['gpt-5.4-nano', 'gpt-5.4-nano-2026-03-17'], 'gpt-5.4-nano', 0.2, 0.02, 1.25, ['5m']],
      [['gpt-5.4-pro', 'gpt-5.4-pro-2026-03-05'], 'gpt-5.4-pro', 30, 30, 180, ['5m']],
      [['gpt-5.5', 'gpt-5.5-2026-04-23'], 'gpt-5.5', 5, 0.5, 30, ['24h']],
      [['gpt-5.5-pro', 'gpt-5.5-pro-2026-04-23'], 'gpt-5.5-pro', 30, 30, 180, ['24h']],
    ];
    for (const [names, id, input, cached, output, ttls] of table) {
      for (const name of names) {
        for (const provider of [undefined, 'openai'] as const) {
          const got = g(name, provider);
          expect(got, name).toMatchObject({ id, fallback: false, input, output, ttls, defaultTtl: ttls[0] });
          expect(got.read * input, name).toBeCloseTo(cached, 12);
        }
        const entry = catalog.lookup(name).entry;
        expect(entry, name).toMatchObject({
          provider: 'openai',
          tokenizer: 'o200k_base',
          cache: { mode: 'automatic', minTokens: 1024, granularity: { first: 1024, step: 128 }, refreshOnHit: true, writesBilled: false, acceptsBreakpoints: false },
          checked: '2026-12-05',
          source: `https://developers.openai.com/api/docs/models/${id}`,
        });
        // A million of each below the long-context threshold: the cached rate, the input rate, the output rate.
        expect(costOf(entry, { uncached: 100_000, cacheRead: 100_000, cacheWrite: {}, output: 1_000_000 }), name).toBeCloseTo((input + cached) / 10 + output, 9);
      }
    }
    // gpt-5.4 and gpt-5.5 bill a prompt over 272K tokens whole at the long-context rates; one token less at the base.
    const long = (id: string, prompt: number) => costOf(catalog.byId(id)!, { uncached: prompt, cacheRead: 0, cacheWrite: {}, output: 1_000_000 });
    expect(long('gpt-5.4', 272_000)).toBeCloseTo(0.272 * 2.5 + 15, 9);
    expect(long('gpt-5.4', 272_001)).toBeCloseTo(0.272001 * 5 + 22.5, 9);
    expect(long('gpt-5.5', 272_001)).toBeCloseTo(0.272001 * 10 + 45, 9);
    // The pro models have no cached-input price: a read is billed as plain input, and the notes say so.
    for (const id of ['gpt-5-pro', 'gpt-5.4-pro', 'gpt-5.5-pro']) expect(catalog.byId(id)!.notes, id).toMatch(/No cached-input price/);
    // The old entries next to them keep their names: gpt-5 and its snapshot, chat and codex names; mini, nano; 5.6.
    for (const [name, id] of [['gpt-5', 'gpt-5'], ['gpt-5-2025-08-07', 'gpt-5'], ['gpt-5-chat-latest', 'gpt-5'], ['gpt-5-codex', 'gpt-5'], ['gpt-5-mini', 'gpt-5-mini'], ['gpt-5-nano-2025-08-07', 'gpt-5-nano'], ['gpt-5.6', 'gpt-5.6-sol'], ['gpt-5.6-luna', 'gpt-5.6-luna']] as const)
      expect(g(name), name).toMatchObject({ id, fallback: false });
    expect(catalog.byId('gpt-5')!.notes).toMatch(/shuts down 2026-12-11/);
    // Names with no price read stay the flagged default, not captured by a neighbour's pattern.
    for (const name of ['gpt-5.1-codex', 'gpt-5.1-codex-mini', 'gpt-5.1-chat-latest', 'gpt-5.2-pro', 'gpt-5.2-chat-latest', 'gpt-5.3-codex-spark', 'gpt-5.5-cyber-preview', 'gpt-5.7'])
      expect(g(name, 'openai'), name).toMatchObject({ id: 'gpt-5', fallback: true });
  });

  it("resolves OpenAI's o-series by the pricing page's rates and the prompt caching guide's rules, not as the gpt-5 default", () => {
    const o = (name: string, provider?: 'openai') => {
      const { entry, fallback } = catalog.lookup(name, provider);
      return { id: entry.id, fallback, input: entry.price.inputPerMTok, output: entry.price.outputPerMTok, read: entry.cache.readMultiplier };
    };
    // $ per million: input, cached input, output (developers.openai.com/api/docs/pricing, checked 2026-12-05).
    const table: Array<[string[], string, number, number, number]> = [
      [['o3', 'o3-2025-04-16', 'openai/o3'], 'o3', 2, 0.5, 8],
      [['o3-pro', 'o3-pro-2025-06-10'], 'o3-pro', 20, 20, 80],
      [['o3-mini', 'o3-mini-2025-01-31', 'o3-mini-high'], 'o3-mini', 1.1, 0.55, 4.4],
      [['o4-mini', 'o4-mini-2025-04-16'], 'o4-mini', 1.1, 0.275, 4.4],
      [['o3-deep-research', 'o3-deep-research-2025-06-26'], 'o3-deep-research', 10, 2.5, 40],
      [['o4-mini-deep-research', 'o4-mini-deep-research-2025-06-26'], 'o4-mini-deep-research', 2, 0.5, 8],
      [['o1', 'o1-2024-12-17', 'o1-preview', 'o1-preview-2024-09-12'], 'o1', 15, 7.5, 60],
      [['o1-mini', 'o1-mini-2024-09-12'], 'o1-mini', 1.1, 0.55, 4.4],
      [['o1-pro', 'o1-pro-2025-03-19'], 'o1-pro', 150, 150, 600],
    ];
    for (const [names, id, input, cached, output] of table) {
      for (const name of names) {
        for (const provider of [undefined, 'openai'] as const) expect(o(name, provider), name).toEqual({ id, fallback: false, input, output, read: cached / input });
        // A million of each: the cached rate, the input rate, the output rate (reasoning tokens are inside output).
        const entry = catalog.lookup(name).entry;
        expect(costOf(entry, { uncached: 1_000_000, cacheRead: 1_000_000, cacheWrite: { '5m': 0 }, output: 1_000_000 }), name).toBeCloseTo(input + cached + output, 9);
        expect(entry, name).toMatchObject({
          provider: 'openai',
          tokenizer: 'o200k_base',
          // Automatic caching from 1,024 tokens in 128-token steps, in-memory retention only (no 24h), writes not billed.
          cache: { mode: 'automatic', minTokens: 1024, granularity: { first: 1024, step: 128 }, ttls: [{ name: '5m', seconds: 300, writeMultiplier: 1 }], defaultTtl: '5m', refreshOnHit: true, writesBilled: false, acceptsBreakpoints: false },
          checked: '2026-12-05',
          source: `https://developers.openai.com/api/docs/models/${id}`,
        });
        expect(entry.cache.supported, name).toBeUndefined();
        expect(entry.notes, name).toMatch(/reasoning tokens are billed as output/);
      }
    }
    // The pro models have no cached-input price: a read is billed as plain input, and the notes say so.
    for (const id of ['o3-pro', 'o1-pro']) expect(catalog.byId(id)!.notes).toMatch(/No cached-input price/);
    // Another o-name is still flagged, priced as the default.
    expect(o('o5')).toMatchObject({ id: 'gpt-5', fallback: true });
    expect(o('o3-turbo')).toMatchObject({ id: 'gpt-5', fallback: true });
  });

  it("resolves Claude Sonnet 5 and 5.5 and Fable 5.2 by their model pages, not as the Sonnet 4.5 default or as Fable 5", () => {
    const claude = (name: string) => {
      const { entry, fallback } = catalog.lookup(name);
      return { id: entry.id, fallback, minTokens: entry.cache.minTokens, input: entry.price.inputPerMTok, output: entry.price.outputPerMTok, read: entry.cache.readMultiplier };
    };
    const sonnet5 = { id: 'claude-sonnet-5', fallback: false, minTokens: 1024, input: 2, output: 10, read: 0.1 };
    // The alias is the model id (no dated snapshot); Bedrock's, Vertex's and a gateway's spellings reach it too.
    for (const name of ['claude-sonnet-5', 'anthropic.claude-sonnet-5', 'claude-sonnet-5@default', 'anthropic/claude-sonnet-5']) expect(claude(name), name).toEqual(sonnet5);
    // Exact patterns: Sonnet 5.5 is its own entry, and an unknown Sonnet 5.x stays flagged.
    expect(claude('claude-sonnet-5-5')).toEqual({ ...sonnet5, id: 'claude-sonnet-5-5' });
    expect(catalog.lookup('claude-sonnet-5-9')).toMatchObject({ fallback: true, entry: { id: 'claude-sonnet-4-5' } });
    // Fable 5.2 reads at 0.025x like 5.1, at $8 rather than Fable 5's $10 and 0.1x.
    expect(claude('claude-fable-5-2')).toEqual({ id: 'claude-fable-5-2', fallback: false, minTokens: 512, input: 8, output: 40, read: 0.025 });
    // The pricing page's cache columns: 1M written for an hour on Sonnet 5 costs $4, on Fable 5.2 $16; 1M read, $0.20 on both.
    const sonnet = catalog.lookup('claude-sonnet-5').entry;
    const fable = catalog.lookup('claude-fable-5-2').entry;
    expect(costOf(sonnet, { uncached: 0, cacheRead: 0, cacheWrite: { '1h': 1_000_000 } })).toBeCloseTo(4, 9);
    expect(costOf(fable, { uncached: 0, cacheRead: 0, cacheWrite: { '1h': 1_000_000 } })).toBeCloseTo(16, 9);
    expect(costOf(sonnet, { uncached: 0, cacheRead: 1_000_000, cacheWrite: {} })).toBeCloseTo(0.2, 9);
    expect(costOf(fable, { uncached: 0, cacheRead: 1_000_000, cacheWrite: {} })).toBeCloseTo(0.2, 9);
  });

  it("prices by the pricing pages' columns: Sonnet 4/4.5 and Gemini Pro past 200K prompt tokens, Haiku 3's own cache rates", () => {
    const cost = (name: string, tokens: Parameters<typeof costOf>[1]) => costOf(catalog.lookup(name).entry, tokens);
    // Anthropic, "Long context pricing": over 200K input tokens (cache reads and writes included) the whole request is
    // $6 / $22.50 on Sonnet 4 and 4.5, the cache multipliers on $6; at 200K exactly, the base $3.
    expect(cost('claude-sonnet-4-5', { uncached: 200_000, cacheRead: 0, cacheWrite: {} })).toBeCloseTo(0.6, 9);
    expect(cost('claude-sonnet-4-5', { uncached: 1, cacheRead: 200_000, cacheWrite: {} })).toBeCloseTo((1 * 6 + 200_000 * 0.6) / 1e6, 12);
    expect(cost('claude-sonnet-4-20250514', { uncached: 0, cacheRead: 100_000, cacheWrite: { '5m': 100_000, '1h': 100_000 }, output: 1_000 })).toBeCloseTo((100_000 * (0.6 + 7.5 + 12) + 1_000 * 22.5) / 1e6, 12);
    // Sonnet 4.6 and 5 have no long-context price: $3 and $2 at any length.
    expect(cost('claude-sonnet-4-6', { uncached: 300_000, cacheRead: 0, cacheWrite: {} })).toBeCloseTo(0.9, 9);
    expect(cost('claude-sonnet-5', { uncached: 300_000, cacheRead: 0, cacheWrite: {} })).toBeCloseTo(0.6, 9);
    // Google: 2.5 Pro $1.25 up to 200K prompt tokens, $2.50 (cached $0.25) past them; 3.1 Pro $2 and $4 (cached $0.40).
    expect(cost('gemini-2.5-pro', { uncached: 150_000, cacheRead: 50_000, cacheWrite: {} })).toBeCloseTo((150_000 * 1.25 + 50_000 * 0.125) / 1e6, 12);
    expect(cost('gemini-2.5-pro', { uncached: 150_000, cacheRead: 50_001, cacheWrite: {} })).toBeCloseTo((150_000 * 2.5 + 50_001 * 0.25) / 1e6, 12);
    expect(cost('gemini-3.1-pro-preview', { uncached: 250_000, cacheRead: 50_000, cacheWrite: {}, output: 1_000 })).toBeCloseTo((250_000 * 4 + 50_000 * 0.4 + 1_000 * 18) / 1e6, 12);
    // Claude Haiku 3: 5m writes $0.30, 1h writes $0.50, hits $0.03 on $0.25 (1.2x, 2x, 0.12x — not 1.25x and 0.1x).
    expect(cost('claude-3-haiku-20240307', { uncached: 0, cacheRead: 1_000_000, cacheWrite: { '5m': 1_000_000, '1h': 1_000_000 } })).toBeCloseTo(0.03 + 0.3 + 0.5, 9);
  });

  it('prefers the longest matching prefix pattern', () => {
    expect(catalog.lookup('gpt-4.1-mini-2025-04-14').entry.id).toBe('gpt-4.1-mini');
    expect(catalog.lookup('gpt-4.1-2025-04-14').entry.id).toBe('gpt-4.1');
    // Flash-Lite costs a third of Flash: priced as Flash, every figure of its reports would triple.
    expect(catalog.lookup('gemini-2.5-flash-lite').entry).toMatchObject({ id: 'gemini-2.5-flash-lite', price: { inputPerMTok: 0.1 } });
    expect(catalog.lookup('gemini-2.5-flash-preview-09-2025').entry.id).toBe('gemini-2.5-flash');
    // The 5 series by the pricing page: Opus 5.5 and Fable 5.1 are their own entries (reads at 0.05x and 0.025x),
    // not priced as Opus 5 / Fable 5 (0.1x) or as the default Sonnet 4.5 ($3).
    expect(catalog.lookup('claude-opus-5-5').entry).toMatchObject({ id: 'claude-opus-5-5', price: { inputPerMTok: 4 }, cache: { readMultiplier: 0.05 } });
    expect(catalog.lookup('claude-opus-5').entry).toMatchObject({ id: 'claude-opus-5', price: { inputPerMTok: 5 }, cache: { readMultiplier: 0.1, minTokens: 512 } });
    expect(catalog.lookup('claude-fable-5-1').entry).toMatchObject({ id: 'claude-fable-5-1', price: { inputPerMTok: 10 }, cache: { readMultiplier: 0.025 } });
    expect(catalog.lookup('claude-fable-5').entry).toMatchObject({ id: 'claude-fable-5', cache: { readMultiplier: 0.1 } });
    expect(catalog.lookup('claude-fable-5-2').entry.id).toBe('claude-fable-5-2');

    const overlapping: Catalog = {
      version: 'test',
      models: [entry('sonnet-4', ['claude-sonnet-4*']), entry('sonnet-4-5', ['claude-sonnet-4-5*'])],
    };
    const small = new ModelCatalog(overlapping);
    expect(small.lookup('claude-sonnet-4-5-20250929').entry.id).toBe('sonnet-4-5');
    expect(small.lookup('claude-sonnet-4-20250514').entry.id).toBe('sonnet-4');
    // A catalog without any openai entry cannot flag a fallback, so it says so.
    expect(() => small.lookup('gpt-4o')).toThrow(/no openai entry to fall back to/);
  });

  it('lets an exact pattern beat any prefix', () => {
    // gpt-4o-2024-05-13 predates prompt caching; the other snapshots do not.
    const first = catalog.lookup('gpt-4o-2024-05-13').entry;
    expect(first.id).toBe('gpt-4o-2024-05-13');
    expect(first.cache.supported).toBe(false);
    expect(catalog.lookup('gpt-4o-2024-08-06').entry.id).toBe('gpt-4o');
  });

  it('understands vendor-prefixed spellings', () => {
    expect(catalog.lookup('models/gemini-2.5-pro').entry.id).toBe('gemini-2.5-pro');
    expect(catalog.lookup('anthropic/claude-haiku-4-5').entry.id).toBe('claude-haiku-4-5');
    expect(catalog.lookup('us.anthropic.claude-opus-4-1-20250805-v1:0').entry.id).toBe('claude-opus-4-1');
    expect(catalog.lookup('claude-opus-4@20250514').entry.id).toBe('claude-opus-4');
    expect(catalog.lookup('GPT-4o-Mini').entry.id).toBe('gpt-4o-mini');
  });

  it('flags an unknown model as a fallback from the provider guessed from its name', () => {
    const cases = [
      ['claude-opus-9', 'anthropic'],
      ['o9-mini', 'openai'],
      ['gpt-7-hypothetical', 'openai'],
      ['gemini-9-ultra', 'gemini'],
      ['meta-llama/Llama-3.1-8B-Instruct', 'vllm'],
    ] as const;
    for (const [model, provider] of cases) {
      const lookup = catalog.lookup(model);
      expect(lookup.fallback, model).toBe(true);
      expect(lookup.entry.provider, model).toBe(provider);
      expect(lookup.model).toBe(model);
      expect(guessProvider(model)).toBe(provider);
    }
    expect(catalog.lookup('claude-opus-9').entry.id).toBe('claude-sonnet-4-5');
  });

  it('restricts matching to the given provider and falls back within it', () => {
    expect(catalog.lookup('claude-sonnet-4-5', 'anthropic')).toMatchObject({ fallback: false });
    const served = catalog.lookup('gpt-4o', 'vllm');
    expect(served.fallback).toBe(true);
    expect(served.entry.id).toBe('vllm');
    expect(catalog.lookup('my-finetune', 'openai')).toMatchObject({ fallback: true, entry: { provider: 'openai' } });
  });

  it('falls back to the first entry of a provider without a declared default', () => {
    const small = new ModelCatalog({
      version: 'test',
      models: [
        entry('a', ['claude-a*']),
        entry('o', ['gpt-o*'], { provider: 'openai' }),
        entry('g', ['gemini-g*'], { provider: 'gemini' }),
        entry('v', ['vllm'], { provider: 'vllm' }),
      ],
    });
    expect(small.lookup('gpt-zzz')).toMatchObject({ fallback: true, entry: { id: 'o' } });
  });

  it('refuses a catalog where two entries claim the same pattern', () => {
    const err = catchCatalogError(
      () => new ModelCatalog({ version: 't', models: [entry('x', ['claude-x*']), entry('y', ['claude-x*'])] }),
    );
    expect(err.message).toContain('models[1] (y).match[0]');
    expect(err.message).toContain('also claimed by "x"');
  });

  it('hands out frozen entries so one caller cannot change another caller\'s prices', () => {
    const e = catalog.lookup('gpt-4o').entry;
    expect(() => {
      (e.price as { inputPerMTok: number }).inputPerMTok = 0;
    }).toThrow(TypeError);
  });
});

describe('loadCatalog with an operator override', () => {
  it('deep-merges a changed price over an existing entry and appends a new model', () => {
    const newModel = entry('acme-large', ['acme-large*'], { provider: 'vllm', tokenizer: 'cl100k_base' });
    const file = writeOverride({
      models: [{ id: 'claude-sonnet-4-5', price: { inputPerMTok: 2.5 } }, newModel],
    });

    const merged = loadCatalog(file);
    expect(merged.version).toBe(`2026-12-06.2+${basename(file)}`);

    const catalog = new ModelCatalog(merged);
    const sonnet = catalog.lookup('claude-sonnet-4-5-20250929').entry;
    // Siblings are kept, the long-context price too (an override that changes the base price names it as well).
    expect(sonnet.price).toEqual({ currency: 'USD', inputPerMTok: 2.5, outputPerMTok: 15, longContext: { aboveTokens: 200_000, inputPerMTok: 6, outputPerMTok: 22.5 } });
    expect(sonnet.cache.minTokens).toBe(1024); // untouched siblings survive the merge
    expect(catalog.lookup('acme-large-v2')).toMatchObject({ fallback: false, entry: { id: 'acme-large' } });
    expect(catalog.entries()).toHaveLength(loadCatalog().models.length + 1);
  });

  it('uses the override version when the file declares one', () => {
    const file = writeOverride({ version: 'ops-7', models: [] });
    expect(loadCatalog(file).version).toBe('2026-12-06.2+ops-7');
  });

  it('throws naming the file and every failing path', () => {
    const file = writeOverride({
      models: [
        { id: 'gpt-4o', price: { inputPerMTok: 'cheap' } },
        { id: 'claude-haiku-4-5', cache: { minTokns: 10 } },
      ],
    });
    const err = catchCatalogError(() => loadCatalog(file));
    expect(err.file).toBe(file);
    expect(err.message).toContain(file);
    expect(err.issues.map((i) => i.path)).toEqual(['models[0] (gpt-4o).price.inputPerMTok', 'models[1] (claude-haiku-4-5).cache']);
    expect(err.message).toMatch(/minTokns/);
  });

  it('rejects a new model that is incomplete once merged', () => {
    const file = writeOverride({ models: [{ id: 'half-a-model', provider: 'openai', match: ['half*'] }] });
    const err = catchCatalogError(() => loadCatalog(file));
    expect(err.file).toContain(file);
    const paths = err.issues.map((i) => i.path);
    expect(paths.every((p) => p.includes('(half-a-model)'))).toBe(true);
    expect(paths).toEqual(expect.arrayContaining([expect.stringMatching(/\(half-a-model\)\.cache$/), expect.stringMatching(/\.price$/)]));
  });

  it('rejects a cache rule whose default TTL is not offered, and a default pointing nowhere', () => {
    const file = writeOverride({ defaults: { openai: 'nope' }, models: [{ id: 'gpt-5', cache: { defaultTtl: '1h' } }] });
    const err = catchCatalogError(() => loadCatalog(file));
    expect(err.issues.map((i) => i.path)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^models\[\d+\] \(gpt-5\)\.cache\.defaultTtl$/), 'defaults.openai']),
    );
  });

  it('names the file when it is not JSON or does not exist', () => {
    const file = writeOverride('{ "models": [', 'broken.json');
    expect(catchCatalogError(() => loadCatalog(file)).message).toMatch(/broken\.json[\s\S]*not valid JSON/);
    expect(catchCatalogError(() => loadCatalog('/nonexistent/catalog.json')).message).toContain('/nonexistent/catalog.json');
  });
});

describe('costOf', () => {
  const catalog = new ModelCatalog(loadCatalog());

  it('prices an Anthropic request with reads, both TTL writes and output', () => {
    // claude-sonnet-4-5: $3 in, $15 out per MTok.
    // input-equivalent = 1000 + 10000*0.1 + 2000*1.25 + 1000*2 = 6500 tokens -> $0.0195
    // output = 500 * $15/M = $0.0075
    const cost = costOf(catalog.lookup('claude-sonnet-4-5').entry, {
      uncached: 1000,
      cacheRead: 10_000,
      cacheWrite: { '5m': 2000, '1h': 1000 },
      output: 500,
    });
    expect(cost).toBeCloseTo(0.027, 12);
  });

  it('bills writes as plain input where the provider does not charge for them', () => {
    // gpt-4o: $2.50 in. (100 + 2048*0.5 + 1000) = 2124 tokens -> $0.00531
    const cost = costOf(catalog.lookup('gpt-4o').entry, { uncached: 100, cacheRead: 2048, cacheWrite: { '5m': 1000 } });
    expect(cost).toBeCloseTo(0.00531, 12);
  });

  it('applies the 1.25x write premium on GPT-5.6', () => {
    // gpt-5.6-terra: $2 in, $12 out. (1000*1.25 + 4000*0.1) = 1650 tokens -> $0.0033; 100 out -> $0.0012
    const cost = costOf(catalog.lookup('gpt-5.6-terra').entry, { uncached: 0, cacheRead: 4000, cacheWrite: { '30m': 1000 }, output: 100 });
    expect(cost).toBeCloseTo(0.0045, 12);
  });

  it('refuses a write under a TTL the model does not have, and bad counts', () => {
    const gpt4o = catalog.lookup('gpt-4o').entry;
    expect(() => costOf(gpt4o, { uncached: 0, cacheRead: 0, cacheWrite: { '1h': 5 } })).toThrow(/no cache TTL "1h"/);
    expect(costOf(gpt4o, { uncached: 0, cacheRead: 0, cacheWrite: { '1h': 0 } })).toBe(0);
    expect(() => costOf(gpt4o, { uncached: -1, cacheRead: 0, cacheWrite: {} })).toThrow(RangeError);
  });
});
