// What each waterfall class means, in the words the dashboard's legends and the CLI both use, and for one request
// why its tokens are in each class, with that request's own figures.

import type { CacheRules, ProviderFamily } from '../catalog/types';
import { readCap, stepFloor } from '../simulator/cache';
import { overlap } from './attribution';
import { REASONING_CONTEXT_ADVICE, reasoningContextChanged } from '../thinking';

const n = (x: number) => Math.round(x).toLocaleString('en-US');

const PROVIDER_NAMES: Record<ProviderFamily, string> = { anthropic: 'Anthropic', openai: 'OpenAI', gemini: 'Gemini', vllm: 'vLLM' };
const UNDER_MINIMUM = "the prefix is shorter than the model's minimum cacheable length";
const PAST_STEP = 'past its last whole cache step';
const NO_CACHE = 'the model has no prompt cache';
const LAST_TOKEN = "it computes a prompt's last token for its logits, so a prompt cached whole reads up to its length − 1, in whole blocks";
/** What helps a prefix under the minimum: neither a mark nor a lifetime does. */
const UNDER_MINIMUM_FIX =
  'no breakpoint or longer lifetime caches it: more of what every call sends the same (tools, documents, in one bundle before what changes) to clear the minimum, or a model with a lower one, would';

/**
 * A cache lifetime as the request pages name it: the catalog's TTL option by its name where that is a duration
 * (`5m`, `1h`, `24h`), else the duration the catalog gives it beside the name (a vLLM server's `lru`, which evicts by
 * memory, not time: `24h (nominal: lru)`; the name alone read as if it were a length of time). An option the
 * entry does not list (or no entry): the name as stored.
 */
export function lifetimeName(ttl: string, ttls: ReadonlyArray<{ name: string; seconds: number }> | undefined): string {
  if (/^\d+[smhd]$/.test(ttl)) return ttl;
  const seconds = ttls?.find((t) => t.name === ttl)?.seconds;
  if (seconds === undefined || seconds <= 0) return ttl;
  const length = seconds % 3600 === 0 ? `${seconds / 3600}h` : seconds % 60 === 0 ? `${seconds / 60}m` : `${seconds}s`;
  return `${length} (nominal: ${ttl})`;
}

/**
 * Why tokens are below_minimum, for the rules of these entries: the minimum, each provider's cache steps (OpenAI's
 * 128 tokens, a vLLM server's blocks; Anthropic and Gemini read any length), a model without a cache. null: for no
 * provider in particular.
 */
export function belowMinimumHelp(entries: ReadonlyArray<{ provider: ProviderFamily; cache: Pick<CacheRules, 'granularity' | 'supported'> }> | null): string {
  if (entries === null) return `${UNDER_MINIMUM}, or ${PAST_STEP} (where a provider caches in steps of tokens), or ${NO_CACHE}`;
  const steps = new Map<string, string>();
  for (const e of entries) {
    const step = e.cache.granularity?.step;
    if (step === undefined || step <= 1) continue;
    steps.set(`${e.provider} ${step}`, stepsNote(e.provider, step));
  }
  const noCache = entries.some((e) => e.cache.supported === false);
  return `${UNDER_MINIMUM}${steps.size ? `, or ${PAST_STEP} (${[...steps.values()].join('; ')})` : ''}${noCache ? `, or ${NO_CACHE}` : ''}`;
}

function stepsNote(provider: ProviderFamily, step: number): string {
  return `${PROVIDER_NAMES[provider]} caches in ${n(step)}-token ${provider === 'vllm' ? 'blocks' : 'steps'}: up to ${n(step - 1)} tokens at a prompt's end are never read`;
}

/** Each class in a line: the dashboard's legends and the CLI's `request` say it so. */
export const CLASS_HELP = {
  referenced: 'tokens expanded from handles',
  cold: 'first sent in this cache scope: nothing earlier to read; written to the cache only where the request wrote it',
  opportunity: 'the same content was referenced before in the same cache scope',
  drift: 'the handle repeated but bytes before it changed',
  expired: 'last read or written longer ago than the cache TTL',
  concurrent: 'a parallel request was still writing the same prefix',
  below_minimum: belowMinimumHelp(null),
  no_breakpoint: 'no cache breakpoint covered it',
  lookback: "the nearest breakpoint was beyond the provider's lookback",
  unconfirmed: 'predicted, but the provider did not report it as read',
  unknown: 'the provider reported no cache fields: not counted as a miss',
  captured: 'the provider confirmed it as a cache read',
  bonus: 'read beyond our prediction (a cache warmed by traffic we did not see)',
  pending: 'no usage report yet',
  failed: 'the provider call failed: it has no usage to reconcile',
} satisfies Record<string, string>;

/** The classes `requestWhys` explains, in gate order (drift and expired have findings of their own; captured needs none). */
export const WHY_CLASSES = ['cold', 'concurrent', 'below_minimum', 'no_breakpoint', 'lookback', 'unconfirmed', 'unknown', 'bonus'] as const;

/** One reconciled request, as GET /v1/requests/{id} shows it, and the catalog entry it was priced as (when at hand). */
export interface WhyInput {
  /** The catalog entry's id, `provider` and cache rules; absent: the figures that need them are left out. */
  entry?: { id: string; provider: ProviderFamily; cache: Pick<CacheRules, 'minTokens' | 'granularity' | 'lookbackBlocks' | 'supported' | 'lastTokenComputed'> };
  /**
   * The outcome's segments: provider-scaled token spans (those the simulation compared), their classes, and the
   * provider's read and write within each (null or absent: not reported).
   */
  segments: ReadonlyArray<{ start: number; end: number; classes: Partial<Record<string, number>>; source?: string; section?: string; read?: number | null; write?: number | null }>;
  breakpoints: ReadonlyArray<{ segment: number }>;
  predicted_read: number;
  /** The simulation's write, from predicted_read on: what tells written cold tokens where the provider reports no write. */
  predicted_write: number;
  /** The provider's read; null when it reported no cache fields. */
  provider_read: number | null;
  /** The provider's write (Anthropic's cache-creation tokens); null when it reports none (OpenAI, Gemini, vLLM). */
  provider_write: number | null;
  /** false: the answer ended before its usage (a stream cut off). */
  complete: boolean;
  /** The first call of its cache scope (the outcome's `first_in_scope`): all of it was new, inline content too. */
  first_in_scope?: boolean;
  /** The outcome's `overflow`: an OpenAI call of a prefix and prompt_cache_key past ~15 starts a minute. */
  overflow?: { prompt_cache_key: string | null; starts: number };
}

/** "#1", "#2–#4, #7": segments numbered from 1, runs joined. */
function segmentList(indexes: number[]): string {
  const runs: Array<[number, number]> = [];
  for (const i of indexes) {
    const last = runs.at(-1);
    if (last && last[1] === i - 1) last[1] = i;
    else runs.push([i, i]);
  }
  return runs.map(([a, b]) => (a === b ? `#${a + 1}` : `#${a + 1}–#${b + 1}`)).join(', ');
}

const marksText = (marks: number[]) => (marks.length ? `this request marks after ${segmentList(marks)}` : 'this request marks none');

/** One class's explanation for one request: its tokens, the segments holding them ("#1–#2"), and why. */
export interface RequestWhy {
  cls: (typeof WHY_CLASSES)[number];
  tokens: number;
  segments: string;
  why: string;
}

/**
 * One line per class the request's tokens are in (of WHY_CLASSES): its tokens, the segments holding them, the class's
 * meaning as the legend says it, and the request's own figures where its record has them. The CLI prints these lines.
 */
export function requestWhys(r: WhyInput): string[] {
  return requestWhyItems(r).map((w) => `${w.cls} ${n(w.tokens)} tokens in ${w.segments}: ${w.why}`);
}

/** requestWhys' lines in parts (the dashboard's request page sets the class and figures apart). */
export function requestWhyItems(r: WhyInput): RequestWhy[] {
  const out: RequestWhy[] = [];
  const rules = r.entry?.cache;
  const model = r.entry?.id;
  const marks = [...new Set(r.breakpoints.map((b) => b.segment))].sort((a, b) => a - b);
  for (const cls of WHY_CLASSES) {
    const held = r.segments.flatMap((s, i) => ((s.classes[cls] ?? 0) > 0 ? [i] : []));
    if (!held.length) continue;
    const count = held.reduce((a, i) => a + (r.segments[i]!.classes[cls] ?? 0), 0);
    const last = held.at(-1)!;
    const end = r.segments[last]!.end;
    let why: string = CLASS_HELP[cls];
    switch (cls) {
      case 'cold': {
        // The scope's first call: everything in it is new, so it says only that, and what it wrote. A value that changes
        // on every call can only show on a later call, where the same content was expected.
        if (r.first_in_scope) {
          why = `${COLD_FIRST}; ${coldWrites(r, held, count)}`;
          break;
        }
        why = `${COLD_SENT}; ${coldWrites(r, held, count)}`;
        // Inline content is cold whenever its bytes are new, which a value written into it on every call makes them.
        // The caller's new messages (a question, a tool result) are new on every call by nature: no value to hunt for.
        const inline = held.filter((i) => r.segments[i]!.source === 'inline');
        const fixed = inline.filter((i) => r.segments[i]!.section !== 'messages');
        const turn = inline.filter((i) => r.segments[i]!.section === 'messages');
        if (fixed.length)
          why += `; ${segmentList(fixed)} ${fixed.length === 1 ? 'is' : 'are'} the caller's inline content, whose bytes were not sent before: if the agent sends the same content on every call, a value in it changes each time (a timestamp, an id; 'prefix-handles suggest' on a log of the calls names it)`;
        else if (turn.length) why += `; ${segmentList(turn)} ${turn.length === 1 ? 'is' : 'are'} the caller's messages of this call, new as a call's question or tool result is`;
        break;
      }
      case 'concurrent':
        why += ': it had not started answering when this one started, and the provider did not read it';
        break;
      case 'below_minimum': {
        const step = rules?.granularity;
        if (!rules) why = belowMinimumHelp(null);
        else if (rules.supported === false) why = `${NO_CACHE}: ${model} caches nothing`;
        else if (step && step.step > 1 && end > rules.minTokens) {
          // At the prompt's end, a cache that computes the last token (vLLM) reads up to the length − 1 (readCap).
          const capped = rules.lastTokenComputed === true && last === r.segments.length - 1;
          const floor = stepFloor(step, capped ? readCap(rules, end) : end);
          const note = capped ? `; ${LAST_TOKEN}` : '';
          why = `${PAST_STEP} (${stepsNote(r.entry!.provider, step.step)}${note}): the prompt through ${segmentList([last])} is ${n(end)} tokens, its last whole step ends at ${n(floor)}`;
        } else why = `${UNDER_MINIMUM}: through ${segmentList([last])} it is ${n(end)} tokens, under ${model}'s minimum of ${n(rules.minTokens)}; ${UNDER_MINIMUM_FIX}`;
        break;
      }
      case 'no_breakpoint':
        why += `: the scope sent this prefix before, but no breakpoint ended there, so the provider kept none of it (${marksText(marks)})`;
        // What to change, where the caller places the marks: the unmarked end is most often a tool result sent bare.
        if (r.entry?.provider === 'anthropic') why += `; a cache_control mark on the last block of every call's newest message (a tool result too) has the next call read all of it`;
        break;
      case 'lookback': {
        const next = marks.find((m) => m >= last);
        const blocks = rules?.lookbackBlocks;
        why += `: ${next === undefined ? 'no breakpoint comes after it' : `it marks after ${segmentList([next])}`}${blocks ? `, and the provider looks back ${n(blocks)} blocks from a breakpoint for an earlier entry` : ''}`;
        break;
      }
      case 'unconfirmed':
        why += `: predicted read ${n(r.predicted_read)}, the provider read ${n(r.provider_read ?? 0)} (eviction, another account, or a concurrent first write)`;
        if (r.overflow) why += `; ${overflowText(r.overflow)}`;
        break;
      case 'unknown':
        why = `${r.complete ? 'the provider reported no cache fields' : 'the answer ended before its usage'}: not counted as a miss (predicted read ${n(r.predicted_read)})`;
        break;
      case 'bonus':
        why += `: the provider read ${n(r.provider_read ?? 0)}, ${n((r.provider_read ?? 0) - r.predicted_read)} more than the ${n(r.predicted_read)} predicted`;
        break;
    }
    out.push({ cls, tokens: count, segments: segmentList(held), why });
  }
  return out;
}

/**
 * An OpenAI burst past its routing rate, and what to do: OpenAI's own advice, each prefix and key under the rate. The
 * service's key is `ph-<leading handle id>`: a prompt that starts with a session (one based on the shared bundle, sent
 * alone) has the session's already.
 */
export function overflowText(o: { prompt_cache_key: string | null; starts: number }): string {
  const key = o.prompt_cache_key === null ? 'no prompt_cache_key' : `prompt_cache_key ${o.prompt_cache_key}`;
  return `${n(o.starts)} calls with ${key} and this prefix started in the minute through this one, past the ~15 a minute OpenAI serves from one machine: it routes the rest to other machines, whose caches do not hold the prefix yet; keep each prefix and key under ~15 a minute — a prompt_cache_key per conversation (the service's is one when the prompt starts with a session: a session with the shared bundle as its base, sent with x-ph-session alone) or per shard of the traffic`;
}

const COLD_SENT = 'first sent in this cache scope: nothing earlier to read';
const COLD_FIRST = "first sent in this cache scope, on the scope's first call: nothing earlier to read";

/**
 * Which of the cold tokens this request wrote to the cache, and which it sent without writing (a question after the
 * last breakpoint, a tail past the last cache step): a cold token is a write only where the write covered it. A
 * segment's cold tokens are its last (the gates count the unseen tokens after any seen prefix), so they are written as
 * far as the write within the segment reaches them: the provider's write (its cache-creation tokens, which follow its
 * read) where it reports one, else the simulation's (from the predicted read on).
 */
function coldWrites(r: WhyInput, held: number[], count: number): string {
  // A write without a read (a stream cut off) is not placed: the provider's write follows its read.
  const byProvider = r.provider_write !== null && r.provider_read !== null;
  // The simulation's write runs to the prompt's end where the provider caches in steps (OpenAI: its write is all the
  // prompt after the read, as its figures count it), but what a later call can read of it ends at the last whole step:
  // the tail past it was sent, not written (only the explanation caps it; the predicted write the reports use stays).
  const granularity = r.entry?.cache.granularity;
  const simEnd = granularity ? stepFloor(granularity, r.predicted_read + r.predicted_write) : r.predicted_read + r.predicted_write;
  const written = held.map((i) => {
    const s = r.segments[i]!;
    const cold = s.classes.cold ?? 0;
    const [from, to] = byProvider ? [s.start + (s.read ?? 0), s.start + (s.read ?? 0) + (s.write ?? 0)] : [r.predicted_read, simEnd];
    return overlap(s.end - cold, s.end, from, to);
  });
  const total = written.reduce((a, b) => a + b, 0);
  const unwritten = held.filter((_, k) => written[k]! < (r.segments[held[k]!]!.classes.cold ?? 0));
  const [by, note] = byProvider ? ['the provider wrote', ''] : ['the simulation wrote', r.provider_read === null ? ' (capture unknown)' : ' (the provider reports no writes)'];
  if (total === 0) return byProvider ? 'none of them was written to the cache' : `the simulation wrote none of them to the cache${note}`;
  if (total === count) return `${by} all of them to the cache${note}`;
  const wrote = held.filter((_, k) => written[k]! > 0);
  return `${by} ${n(total)} of them to the cache${note} (${segmentList(wrote)}); ${n(count - total)} in ${segmentList(unwritten)} ${count - total === 1 ? 'was' : 'were'} sent, not written`;
}

/**
 * An expired prefix that would not have been read had it been fresh: it ends under the model's minimum cacheable length
 * (gates are applied in order, so its tokens count as expired, not below_minimum). Keeping it alive or a longer lifetime
 * would not help; a longer prefix, or another model, would. null when the prefix clears the minimum, or without rules.
 */
export function expiredUnderMinimum(r: Pick<WhyInput, 'entry' | 'segments'>): string | null {
  const rules = r.entry?.cache;
  const last = r.segments.findLastIndex((s) => (s.classes.expired ?? 0) > 0);
  if (!rules || rules.supported === false || last === -1) return null;
  const end = r.segments[last]!.end;
  if (end >= rules.minTokens) return null;
  return `had it been fresh, the provider would not have read it either: through ${segmentList([last])} the prefix is ${n(end)} tokens, under ${r.entry!.id}'s minimum of ${n(rules.minTokens)} (keeping it alive or a longer lifetime would not help; a prefix over the minimum, or a model with a lower one, would)`;
}

/** A drift finding's fields that say what changed (GET /v1/requests/{id}'s `outcome.drift`, a report's `drift` rows). */
export interface DriftCause {
  handle: string;
  now: { source: string };
  before: { source: string };
  formats?: unknown;
  settings?: ReadonlyArray<unknown>;
  thinking?: string;
}

/**
 * What to change so the prefix is read next time, by what changed before the handle; null where nothing in the agent
 * would (a model that strips earlier turns' thinking). The CLI's `request` and the dashboard's request page say it.
 */
export function driftAdvice(d: DriftCause): string | null {
  if (d.thinking) return null;
  if (d.settings?.length && reasoningContextChanged(d.settings as Array<{ name: string }>)) return REASONING_CONTEXT_ADVICE;
  if (d.settings?.length) return 'keep tool_choice and thinking the same on every call of a conversation: a change sends all its cached messages again';
  if (d.formats) return "send one model's calls in one API format (Chat Completions or Responses): the same handles are other bytes in each";
  if (d.now.source === 'inline' || d.before.source === 'inline')
    return 'keep what changes from call to call (a timestamp, a request id, the date) out of the bytes before the handles: put it after them, in the newest message, and everything before it is read';
  return `${d.now.source} stands where ${d.before.source} stood: everything after it is written again once; put content that changes often after the handles that stay the same`;
}

/**
 * How the request's provider keeps a prefix longer than the lifetime it missed (advice for another provider's API does
 * not help), with what to write in `backticks`: the dashboard's request page shows them as code, the CLI bare.
 */
export function longerLifetime(provider: ProviderFamily | undefined, ttl: string): string {
  switch (provider) {
    case 'anthropic':
      return 'Anthropic keeps a prefix an hour when its mark asks for `"ttl": "1h"` (`PH_CACHE_TTL=1h` for the service\'s marks)';
    case 'openai':
      // Already a day (gpt-5.5's only lifetime, or asked for): asking for "24h" again changes nothing.
      if (ttl === '24h') return 'a day is the longest OpenAI keeps a prefix (`prompt_cache_retention: "24h"`): only a call within the day keeps it';
      return 'OpenAI keeps it a day with `prompt_cache_retention: "24h"` on the models that offer it';
    case 'gemini':
      return `Gemini does not document how long its implicit cache keeps a prefix (a few minutes, by Google's word; the catalog assumes ${ttl}): an explicit cache (\`cachedContents\`, with a \`ttl\` of your choosing, billed per token-hour) keeps it as long as asked`;
    case 'vllm':
      return "a self-hosted server evicts by memory pressure, not time (the catalog's lifetime is nominal): more KV-cache memory, or fewer distinct prefixes, keeps it longer";
    default:
      return 'where the provider offers a longer lifetime, it can be asked for';
  }
}

/** The CLI's `request`: whether a hit renews the prefix, then how its provider keeps it longer (longerLifetime). */
export function keepLongerText(provider: ProviderFamily, ttl: string, refreshOnHit: boolean): string {
  const keep = refreshOnHit ? 'a call within the lifetime keeps it alive' : 'on this model a hit does not renew it: it lives its lifetime from when it was written';
  return `${keep}; ${longerLifetime(provider, ttl).replaceAll('`', '')}`;
}

/**
 * What a concurrent miss cost this call, by whether the provider bills cache writes: where it does (Anthropic), the
 * write again; where it does not (OpenAI, Gemini, vLLM), the prompt at the full input price — there is no write to pay.
 */
export function concurrentCost(writesBilled: boolean | undefined): string {
  return writesBilled === false ? 'so this call missed it and paid the full input price for it (this provider bills no cache write)' : 'so this call paid the write again';
}
