// The model catalog: bundled dated data (catalog.json), an optional operator override
// merged over it, and name -> entry lookup. Figures live in the data, never here.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { Catalog, ModelEntry, ModelLookup, ProviderFamily } from './types';

export { costOf, pricesFor, type TokenCounts } from './pricing';

const BUNDLED_CATALOG_URL = new URL('./catalog.json', import.meta.url);

const PROVIDERS = ['anthropic', 'openai', 'gemini', 'vllm'] as const satisfies readonly ProviderFamily[];

// ---------------------------------------------------------------- schemas

const providerSchema = z.enum(PROVIDERS);
const tokenizerSchema = z.enum(['o200k_base', 'cl100k_base', 'anthropic', 'gemini']);
// Lookup lower-cases names, so patterns are lower-case; "*" only as the last character.
const patternSchema = z
  .string()
  .regex(/^[^*\sA-Z]+\*?$/, 'must be a lower-case model name, optionally ending in a single "*"');

const ttlSchema = z.strictObject({
  name: z.string().min(1),
  seconds: z.number().nonnegative(),
  writeMultiplier: z.number().nonnegative(),
});

const cacheRulesShape = {
  mode: z.enum(['explicit', 'automatic']),
  minTokens: z.int().nonnegative(),
  ttls: z.array(ttlSchema).min(1),
  defaultTtl: z.string().min(1),
  refreshOnHit: z.boolean(),
  readMultiplier: z.number().nonnegative(),
  maxBreakpoints: z.int().positive().nullable(),
  lookbackBlocks: z.int().positive().nullable(),
  granularity: z.strictObject({ first: z.int().positive(), step: z.int().positive() }).nullable(),
  writesBilled: z.boolean(),
  acceptsBreakpoints: z.boolean(),
  implicitBreakpoint: z.boolean().optional(),
  supported: z.boolean().optional(),
  lastTokenComputed: z.boolean().optional(),
};

const cacheRulesSchema = z.strictObject(cacheRulesShape).superRefine((rules, ctx) => {
  const names = rules.ttls.map((t) => t.name);
  names.forEach((name, i) => {
    if (names.indexOf(name) !== i) ctx.addIssue({ code: 'custom', path: ['ttls', i, 'name'], message: `duplicate TTL name "${name}"` });
  });
  if (!names.includes(rules.defaultTtl)) {
    ctx.addIssue({ code: 'custom', path: ['defaultTtl'], message: `"${rules.defaultTtl}" is not one of the ttls (${names.join(', ')})` });
  }
});

const priceShape = {
  currency: z.literal('USD'),
  inputPerMTok: z.number().nonnegative(),
  outputPerMTok: z.number().nonnegative(),
  cacheStoragePerMTokHour: z.number().nonnegative().optional(),
  longContext: z.strictObject({ aboveTokens: z.int().positive(), inputPerMTok: z.number().nonnegative(), outputPerMTok: z.number().nonnegative() }).optional(),
};

const entryShape = {
  id: z.string().min(1),
  provider: providerSchema,
  match: z.array(patternSchema).min(1),
  tokenizer: tokenizerSchema,
  cache: cacheRulesSchema,
  price: z.strictObject(priceShape),
  toolUseSystemPrompt: z.strictObject({ auto: z.int().nonnegative(), any: z.int().nonnegative() }).optional(),
  // Keyed by a tool version as the API names it: a name and its date.
  definedToolTokens: z.record(z.string().regex(/^[a-z][a-z0-9_]*_\d{8}$/, 'must be a tool type such as "bash_20250124"'), z.int().nonnegative()).optional(),
  thinking: z
    .strictObject({ earlierTurns: z.enum(['kept', 'stripped']), readsFrom: z.array(z.string().min(1)).optional(), source: z.url({ protocol: /^https?$/ }) })
    .optional(),
  reasoningContext: z.strictObject({ default: z.enum(['current_turn', 'all_turns']), source: z.url({ protocol: /^https?$/ }) }).optional(),
  source: z.url({ protocol: /^https?$/ }),
  checked: z.iso.date(),
  notes: z.string().optional(),
};

/** One model entry, as `GET /v1/models` serves it (and its OpenAPI schema). */
export const modelEntrySchema = z.strictObject(entryShape);
const defaultsSchema = z.partialRecord(providerSchema, z.string().min(1));

/** A complete catalog: the bundled file, or the result of merging an override over it. */
export const catalogSchema = z
  .strictObject({
    version: z.string().min(1),
    defaults: defaultsSchema.optional(),
    models: z.array(modelEntrySchema).min(1),
  })
  .superRefine((catalog, ctx) => {
    const ids = new Map<string, number>();
    const patterns = new Map<string, string>();
    catalog.models.forEach((entry, i) => {
      if (ids.has(entry.id)) ctx.addIssue({ code: 'custom', path: ['models', i, 'id'], message: `duplicate id "${entry.id}"` });
      ids.set(entry.id, i);
      entry.match.forEach((pattern, j) => {
        const owner = patterns.get(pattern);
        // Two entries claiming one pattern would make lookup depend on file order.
        if (owner !== undefined && owner !== entry.id) {
          ctx.addIssue({ code: 'custom', path: ['models', i, 'match', j], message: `pattern "${pattern}" is also claimed by "${owner}"` });
        }
        patterns.set(pattern, entry.id);
      });
    });
    catalog.models.forEach((entry, i) => {
      entry.thinking?.readsFrom?.forEach((id, j) => {
        if (!ids.has(id)) ctx.addIssue({ code: 'custom', path: ['models', i, 'thinking', 'readsFrom', j], message: `no model entry with id "${id}"` });
      });
    });
    for (const [provider, id] of Object.entries(catalog.defaults ?? {})) {
      const i = ids.get(id);
      if (i === undefined) {
        ctx.addIssue({ code: 'custom', path: ['defaults', provider], message: `no model entry with id "${id}"` });
      } else if (catalog.models[i]?.provider !== provider) {
        ctx.addIssue({ code: 'custom', path: ['defaults', provider], message: `"${id}" is not a ${provider} entry` });
      }
    }
  });

/**
 * An operator override file: the catalog's shape, but every field optional except each
 * entry's `id`. An entry with a known id is deep-merged over the bundled one (arrays such
 * as `match` and `ttls` are replaced whole); an entry with a new id must be complete.
 */
export const catalogOverrideSchema = z.strictObject({
  version: z.string().min(1).optional(),
  defaults: defaultsSchema.optional(),
  models: z
    .array(
      z.strictObject({
        ...entryShape,
        provider: providerSchema.optional(),
        match: entryShape.match.optional(),
        tokenizer: tokenizerSchema.optional(),
        cache: z.strictObject(cacheRulesShape).partial().optional(),
        price: z.strictObject(priceShape).partial().optional(),
        source: entryShape.source.optional(),
        checked: entryShape.checked.optional(),
      }),
    )
    .default([]),
});

export type CatalogOverride = z.output<typeof catalogOverrideSchema>;

// The schema and the shared types must describe the same data.
type Assert<T extends true> = T;
export type _CatalogSchemaMatchesTypes = Assert<
  z.output<typeof catalogSchema> extends Catalog ? (Catalog extends z.input<typeof catalogSchema> ? true : false) : false
>;

// ---------------------------------------------------------------- loading

export interface CatalogIssue {
  /** e.g. `models[3] (gpt-4o).price.inputPerMTok` */
  path: string;
  message: string;
}

export class CatalogError extends Error {
  constructor(
    readonly file: string,
    readonly issues: CatalogIssue[],
  ) {
    super(`Invalid model catalog ${file}:\n${issues.map((i) => `  - ${i.path || '(root)'}: ${i.message}`).join('\n')}`);
    this.name = 'CatalogError';
  }
}

/**
 * The bundled catalog, with the operator override at `overridePath` (JSON) merged over it.
 * Throws a CatalogError naming the file and every failing path.
 */
export function loadCatalog(overridePath?: string): Catalog {
  const bundledFile = fileURLToPath(BUNDLED_CATALOG_URL);
  const bundled = parseAs(catalogSchema, readJson(bundledFile), bundledFile);
  if (overridePath === undefined) return bundled;

  const override = parseAs(catalogOverrideSchema, readJson(overridePath), overridePath);
  const merged = mergeCatalog(bundled, override, basename(overridePath));
  return parseAs(catalogSchema, merged, `${overridePath} (merged over ${bundledFile})`);
}

/**
 * Merges an override over a catalog. The result is not validated: a new entry may still be
 * incomplete, so run it through catalogSchema. Its version cites the override.
 */
export function mergeCatalog(base: Catalog, override: CatalogOverride, label: string): unknown {
  const models: unknown[] = base.models.map((entry) => structuredClone(entry));
  const index = new Map(base.models.map((entry, i) => [entry.id, i]));
  for (const patch of override.models) {
    const at = index.get(patch.id);
    if (at === undefined) {
      index.set(patch.id, models.length);
      models.push(structuredClone(patch));
    } else {
      models[at] = deepMerge(models[at], patch);
    }
  }
  return {
    version: `${base.version}+${override.version ?? label}`,
    defaults: { ...base.defaults, ...override.defaults },
    models,
  };
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CatalogError(file, [{ path: '', message: `cannot read file: ${(err as Error).message}` }]);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CatalogError(file, [{ path: '', message: `not valid JSON: ${(err as Error).message}` }]);
  }
}

function parseAs<S extends z.ZodType>(schema: S, data: unknown, file: string): z.output<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  throw new CatalogError(
    file,
    result.error.issues.map((issue) => ({ path: formatPath(issue.path, data), message: issue.message })),
  );
}

/** `['models', 3, 'price']` -> `models[3] (gpt-4o).price`: the id says which entry without counting. */
function formatPath(path: readonly PropertyKey[], data: unknown): string {
  let out = '';
  let node: unknown = data;
  for (const key of path) {
    if (typeof key === 'number') {
      out += `[${key}]`;
      node = Array.isArray(node) ? node[key] : undefined;
      const id = isPlainObject(node) ? node['id'] : undefined;
      if (typeof id === 'string') out += ` (${id})`;
    } else {
      out += `${out ? '.' : ''}${String(key)}`;
      node = isPlainObject(node) ? node[String(key)] : undefined;
    }
  }
  return out;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepMerge(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(target) || !isPlainObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    out[key] = deepMerge(target[key], value);
  }
  return out;
}

// ---------------------------------------------------------------- lookup

/** Open-weight model families: a name starting so is a self-hosted server's, also without a repository prefix. */
const OPEN_WEIGHT = /^(gpt-oss|qwen|llama|meta-llama|mistral|mixtral|codestral|deepseek|gemma|phi-?\d|yi-|granite|olmo|falcon|internlm|glm-|kimi|nemotron)/;

/** Which provider an unknown model name most likely belongs to. */
export function guessProvider(model: string): ProviderFamily {
  const name = candidateNames(model).at(-1) ?? '';
  if (name.includes('claude')) return 'anthropic';
  // OpenAI's open-weight models are served by others (vLLM serves `openai/gpt-oss-20b` under its repository id).
  if (OPEN_WEIGHT.test(name)) return 'vllm';
  if (/^(gpt|chatgpt|o\d)/.test(name)) return 'openai';
  if (name.startsWith('gemini')) return 'gemini';
  return 'vllm';
}

/**
 * Spellings of one model name to try, most literal first. Gateways and SDKs prefix a vendor
 * ("models/gemini-2.5-pro", "anthropic/claude-…"); Bedrock uses "us.anthropic.claude-…-v1:0".
 * Vertex's "claude-sonnet-4-5@20250929" is left to prefix patterns.
 */
function candidateNames(model: string): string[] {
  const lower = model.trim().toLowerCase();
  const names = [lower];
  const afterSlash = lower.slice(lower.lastIndexOf('/') + 1);
  if (afterSlash !== lower) names.push(afterSlash);
  const bedrock = afterSlash.replace(/^(?:[a-z]{2,6}\.)?anthropic\./, '');
  if (bedrock !== afterSlash) names.push(bedrock);
  return names;
}

export class ModelCatalog {
  readonly version: string;
  readonly #entries: readonly ModelEntry[];
  readonly #byId = new Map<string, ModelEntry>();
  readonly #exact = new Map<string, ModelEntry>();
  /** Prefix patterns, longest first, so the first hit is the most specific. */
  readonly #prefixes: { prefix: string; entry: ModelEntry }[] = [];
  readonly #fallbacks = new Map<ProviderFamily, ModelEntry>();

  constructor(catalog: Catalog) {
    const valid = deepFreeze(parseAs(catalogSchema, catalog, `catalog ${catalog.version}`)) as Catalog;
    this.version = valid.version;
    this.#entries = valid.models;
    for (const entry of valid.models) {
      this.#byId.set(entry.id, entry);
      for (const pattern of entry.match) {
        if (pattern.endsWith('*')) this.#prefixes.push({ prefix: pattern.slice(0, -1), entry });
        else this.#exact.set(pattern, entry);
      }
    }
    this.#prefixes.sort((a, b) => b.prefix.length - a.prefix.length);

    for (const provider of PROVIDERS) {
      const id = valid.defaults?.[provider];
      const entry = id === undefined ? valid.models.find((m) => m.provider === provider) : this.#byId.get(id);
      if (entry) this.#fallbacks.set(provider, entry);
    }
  }

  /**
   * The entry for a model name: an exact pattern wins, then the longest matching prefix
   * pattern. With `provider`, only that provider's entries are considered — for `openai`, also
   * those of the servers that speak its API (vLLM, SGLang: `vllm/…`). An unknown name gets the
   * provider's default entry with `fallback: true`; on OpenAI's API, a name with a slash (a
   * Hugging Face repository id, `Qwen/Qwen2.5-7B-Instruct`) whose last part names no provider's
   * family, or a name of an open-weight family (`qwen2.5-7b-instruct`, `openai/gpt-oss-20b`), is a self-hosted
   * server's (a gateway's `openai/gpt-5.1` stays OpenAI's). A Gemini model on OpenAI's API (Gemini's OpenAI
   * compatibility endpoint, a gateway's `google/gemini-2.5-pro`) is Gemini's entry: its implicit cache and prices
   * are the same whatever API shape the call has.
   */
  lookup(model: string, provider?: ProviderFamily): ModelLookup {
    const families: Array<ProviderFamily | undefined> = provider === 'openai' ? ['openai', 'vllm', 'gemini'] : [provider];
    for (const name of candidateNames(model)) {
      for (const family of families) {
        const entry = this.#match(name, family);
        if (entry) return { model, entry, fallback: false };
      }
    }
    const selfHosted = guessProvider(model) === 'vllm' && (model.includes('/') || OPEN_WEIGHT.test(candidateNames(model).at(-1) ?? ''));
    const family = provider === 'openai' && selfHosted ? 'vllm' : provider === 'openai' && guessProvider(model) === 'gemini' ? 'gemini' : (provider ?? guessProvider(model));
    const fallback = this.#fallbacks.get(family);
    // Unknown names resolve to something flagged or to an error, never silently to nothing.
    if (!fallback) throw new Error(`model "${model}" is not in catalog ${this.version}, which has no ${family} entry to fall back to`);
    return { model, entry: fallback, fallback: true };
  }

  entries(): ModelEntry[] {
    return [...this.#entries];
  }

  byId(id: string): ModelEntry | undefined {
    return this.#byId.get(id);
  }

  #match(name: string, provider: ProviderFamily | undefined): ModelEntry | undefined {
    const ok = (entry: ModelEntry) => provider === undefined || entry.provider === provider;
    const exact = this.#exact.get(name);
    if (exact && ok(exact)) return exact;
    return this.#prefixes.find((p) => name.startsWith(p.prefix) && ok(p.entry))?.entry;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
