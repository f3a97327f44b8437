// Provider usage shapes → NormalizedUsage (the table in DESIGN.md, "Usage
// shapes differ"). Rules that matter for money:
//  - a field that is absent or null is unknown (null), never 0;
//  - Anthropic's input_tokens excludes cache reads and writes, while OpenAI's
//    prompt_tokens / input_tokens and Gemini's promptTokenCount include them.
// Each provider's rules are a module of providers/; this is the flow they share: which provider's shape an input is,
// where its usage is, and the provider's own rules on it.
// Paths in errors are JSON Pointers (RFC 6901) into the value that was passed in.

import type { NormalizedUsage, ProviderDiagnostics, UsageProvider } from './types';
import { isRecord, type Json } from '../records';
import { pointer, UsageShapeError } from './counts';
import { BODY_ORDER, CLAIM_ORDER, USAGE_PROVIDERS, type UsageRules } from './providers';

export { MAX_TOKEN_COUNT, pointer, readCount, unreportedUsage, UsageShapeError } from './counts';

interface Located {
  provider: UsageProvider;
  usage: Json;
  path: string;
  model: string | null;
}

const RULES: readonly UsageRules[] = Object.values(USAGE_PROVIDERS);
const RESPELLINGS = RULES.flatMap((r) => (r.respelling === undefined ? [] : [r.respelling]));

/** The usage shape a rendered request's format answers with (undefined for a format we do not know). */
export function usageProviderOf(format: string): UsageProvider | undefined {
  return Object.hasOwn(USAGE_PROVIDERS, format) && USAGE_PROVIDERS[format as UsageProvider].rendered ? (format as UsageProvider) : undefined;
}

/**
 * Normalises either a bare usage object or a whole non-streaming response body
 * (Anthropic message, OpenAI chat completion, OpenAI response, Gemini
 * generateContent response, vLLM completion). `hint` skips detection but the
 * shape must still fit the hinted provider.
 */
export function normalizeUsage(input: unknown, hint?: UsageProvider): NormalizedUsage {
  for (const respelling of RESPELLINGS) {
    const rest = respelling.toRest(input);
    if (rest === input) continue;
    try {
      return normalizeLocated(locateUsage(rest, hint));
    } catch (e) {
      throw e instanceof UsageShapeError ? respelling.errorAsSent(e, input) : e;
    }
  }
  return normalizeLocated(locateUsage(input, hint));
}

function normalizeLocated(located: Located): NormalizedUsage {
  return USAGE_PROVIDERS[located.provider].normalize(located.usage, located.path, located.model);
}

/** The provider's own cache-miss explanation on a response body (or a stream event), or null when it carries none. */
export function extractDiagnostics(response: unknown): ProviderDiagnostics | null {
  if (!isRecord(response)) return null;
  // Streams carry the same objects one level down.
  for (const rules of RULES) {
    const inner = rules.eventResponse?.(response);
    if (inner !== undefined) return extractDiagnostics(inner);
  }
  for (const rules of RULES) {
    const diagnostics = rules.diagnostics?.(response) ?? null;
    if (diagnostics !== null) return diagnostics;
  }
  return null;
}

// ── locating the usage object ───────────────────────────────────────────────

/** The usage object in a response body (or the object itself, when it is one), as normalizeUsage finds it. */
export function usageObjectOf(input: unknown, hint?: UsageProvider): Record<string, unknown> {
  for (const respelling of RESPELLINGS) {
    const asSent = isRecord(input) ? respelling.usageAsSent(input) : undefined;
    if (asSent !== undefined) return asSent;
  }
  return locateUsage(respelt(input), hint).usage;
}

function respelt(input: unknown): unknown {
  for (const respelling of RESPELLINGS) {
    const rest = respelling.toRest(input);
    if (rest !== input) return rest;
  }
  return input;
}

/** A list is a streamed answer's chunks or events (Gemini's streamGenerateContent array): read where a response is. */
export const STREAMED_LIST = 'a list (a streamed answer\'s chunks or events, as Gemini\'s streamGenerateContent returns them) is read as "response", not as a usage object';

// A response trimmed to its usage (`{"usage": {…}}`, no envelope fields): the member that may hold it, in the order
// tried, and the provider it says (undefined: several keep their usage there, told apart by its keys).
const TRIMMED: ReadonlyArray<{ key: string; provider: UsageProvider | undefined }> = [...new Set(BODY_ORDER.map((r) => r.body.usageKey))].map((key) => {
  const owners = BODY_ORDER.filter((r) => r.body.usageKey === key);
  return { key, provider: owners.length === 1 ? owners[0]!.provider : undefined };
});
const MODEL_KEYS = [...new Set(BODY_ORDER.map((r) => r.body.modelKey))];
const COUNT_KEYS = [...new Set(RULES.map((r) => r.countKey))];

function locateUsage(input: unknown, hint: UsageProvider | undefined): Located {
  if (!isRecord(input))
    throw new UsageShapeError(
      '',
      Array.isArray(input) ? STREAMED_LIST : 'expected a usage object or a response body',
    );

  const body = bodyOf(input);
  if (body !== undefined) {
    const provider = reconcileHint(body.provider, hint);
    const key = body.body.usageKey;
    const usage = input[key];
    if (!isRecord(usage)) {
      throw new UsageShapeError(pointer('', key), `${body.provider} response carries no usage`);
    }
    const model = input[body.body.modelKey];
    return { provider, usage, path: pointer('', key), model: typeof model === 'string' ? model : null };
  }

  for (const { key, provider } of TRIMMED) {
    const usage = input[key];
    // A member shared by several providers is a usage only beside no counts (a bare usage object may have a field so named).
    if (!isRecord(usage) || (provider === undefined && hasCounts(input))) continue;
    const model = firstModel(input);
    return { provider: provider !== undefined ? reconcileHint(provider, hint) : (hint ?? classifyBareUsage(usage, `/${key}`)), usage, path: `/${key}`, model: typeof model === 'string' ? model : null };
  }
  const provider = hint ?? classifyBareUsage(input);
  return { provider, usage: input, path: '', model: null };
}

function bodyOf(input: Json): UsageRules | undefined {
  for (const rules of BODY_ORDER) if (rules.body.matches(input)) return rules;
  return undefined;
}

function firstModel(input: Json): unknown {
  for (const key of MODEL_KEYS) if (input[key] !== undefined && input[key] !== null) return input[key];
  return undefined;
}

/** Whether an object holds token counts itself (a bare usage object), rather than a usage member. */
function hasCounts(input: Json): boolean {
  return COUNT_KEYS.some((k) => k in input);
}

function reconcileHint(detected: UsageProvider, hint: UsageProvider | undefined): UsageProvider {
  if (hint === undefined || hint === detected) return detected;
  // vLLM speaks the chat completion shape; only the caller can always tell them apart.
  if ((USAGE_PROVIDERS[hint].speaks ?? hint) === (USAGE_PROVIDERS[detected].speaks ?? detected)) return hint;
  throw new UsageShapeError('', `response body looks like ${detected}, not ${hint}`);
}

function classifyBareUsage(usage: Json, path = ''): UsageProvider {
  const families: UsageProvider[] = [];
  for (const rules of CLAIM_ORDER) if (rules.claimsUsage?.(usage, path)) families.push(rules.provider);
  const [only, ...rest] = families;
  if (only === undefined) {
    throw new UsageShapeError(
      path,
      'not a recognisable usage: expected input_tokens (Anthropic, OpenAI Responses), prompt_tokens (OpenAI chat, vLLM) or promptTokenCount (Gemini)',
    );
  }
  if (rest.length > 0) {
    throw new UsageShapeError(path, `usage matches several providers (${families.join(', ')}); pass a provider hint`);
  }
  return only;
}
