import { describe, expect, it } from 'vitest';
import { belowMinimumHelp, CLASS_HELP, driftAdvice, expiredUnderMinimum, keepLongerText, longerLifetime, requestWhys, type WhyInput } from '../../src/domain/reconcile/explain';
import { CLASS_INFO } from '../../src/http/ui/charts';

const sonnet: WhyInput['entry'] = { id: 'claude-sonnet-4-5', provider: 'anthropic', cache: { minTokens: 1024, granularity: null, lookbackBlocks: 20 } };
const gpt: WhyInput['entry'] = { id: 'gpt-4.1', provider: 'openai', cache: { minTokens: 1024, granularity: { first: 1024, step: 128 }, lookbackBlocks: null } };
const seg = (start: number, end: number, classes: Record<string, number>) => ({ start, end, classes });
const base = { breakpoints: [], predicted_read: 0, predicted_write: 0, provider_read: 0, provider_write: 0, complete: true };

describe('why a request is in each class', () => {
  it('the dashboard legend says each class in the same words', () => {
    for (const [c, help] of Object.entries(CLASS_HELP)) expect(CLASS_INFO[c]!.help).toBe(help);
  });

  it('below_minimum: under the minimum, with the prefix and the minimum; past a step, with the step; a model with no cache', () => {
    const under = requestWhys({ ...base, entry: sonnet, segments: [seg(0, 400, { below_minimum: 400 }), seg(400, 812, { below_minimum: 300, cold: 112 })] });
    expect(under).toEqual([
      'cold 112 tokens in #2: first sent in this cache scope: nothing earlier to read; none of them was written to the cache',
      "below_minimum 700 tokens in #1–#2: the prefix is shorter than the model's minimum cacheable length: through #2 it is 812 tokens, under claude-sonnet-4-5's minimum of 1,024; no breakpoint or longer lifetime caches it: more of what every call sends the same (tools, documents, in one bundle before what changes) to clear the minimum, or a model with a lower one, would",
    ]);
    const tail = requestWhys({ ...base, entry: gpt, predicted_read: 2048, provider_read: 2048, segments: [seg(0, 2048, { captured: 2048 }), seg(2048, 2124, { below_minimum: 76 })] });
    expect(tail).toEqual([
      "below_minimum 76 tokens in #2: past its last whole cache step (OpenAI caches in 128-token steps: up to 127 tokens at a prompt's end are never read): the prompt through #2 is 2,124 tokens, its last whole step ends at 2,048",
    ]);
    const none = requestWhys({ ...base, entry: { ...gpt!, id: 'gpt-4', cache: { ...gpt!.cache, minTokens: 0, supported: false } }, segments: [seg(0, 90, { below_minimum: 90 })] });
    expect(none).toEqual(['below_minimum 90 tokens in #1: the model has no prompt cache: gpt-4 caches nothing']);
    // Without the catalog entry at hand: the legend's line, no figures it cannot back.
    expect(requestWhys({ ...base, segments: [seg(0, 90, { below_minimum: 90 })] })).toEqual([`below_minimum 90 tokens in #1: ${belowMinimumHelp(null)}`]);
  });

  it("cold: on the caller's inline content, that its bytes were new, and what makes them new on every call", () => {
    const segments = [{ ...seg(0, 63, { below_minimum: 63 }), source: 'inline' }, { ...seg(63, 1296, { cold: 1233 }), source: 'inline' }, { ...seg(1296, 1400, { cold: 104 }), source: 'art_x@1' }];
    expect(requestWhys({ ...base, entry: gpt, segments })[0]).toBe(
      "cold 1,337 tokens in #2–#3: first sent in this cache scope: nothing earlier to read; none of them was written to the cache; #2 is the caller's inline content, whose bytes were not sent before: if the agent sends the same content on every call, a value in it changes each time (a timestamp, an id; 'prefix-handles suggest' on a log of the calls names it)",
    );
  });

  it("cold on the scope's first call: the first send and what was written, no word on inline content (all of it is new)", () => {
    // The segments above without the flag are a later call's: inline content cold there was new when it was expected again.
    const segments = [{ ...seg(0, 63, { below_minimum: 63 }), source: 'inline' }, { ...seg(63, 1296, { cold: 1233 }), source: 'inline', section: 'system' }, { ...seg(1296, 1400, { cold: 104 }), source: 'art_x@1', section: 'system' }];
    expect(requestWhys({ ...base, entry: gpt, segments, first_in_scope: true })[0]).toBe(
      "cold 1,337 tokens in #2–#3: first sent in this cache scope, on the scope's first call: nothing earlier to read; none of them was written to the cache",
    );
    // The caller's messages too: nothing to tell apart on a call whose every byte is new.
    const turn = [{ ...seg(0, 1200, { cold: 1200 }), source: 'art_x@1', section: 'system', read: 0, write: 1200 }, { ...seg(1200, 1240, { cold: 40 }), source: 'inline', section: 'messages', read: 0, write: 0 }];
    expect(requestWhys({ ...base, entry: sonnet, segments: turn, provider_write: 1200, first_in_scope: true })).toEqual([
      "cold 1,240 tokens in #1–#2: first sent in this cache scope, on the scope's first call: nothing earlier to read; the provider wrote 1,200 of them to the cache (#1); 40 in #2 were sent, not written",
    ]);
    // first_in_scope false (or absent, as on outcomes recorded before it was kept): as before.
    expect(requestWhys({ ...base, entry: gpt, segments, first_in_scope: false })[0]).toContain("#2 is the caller's inline content, whose bytes were not sent before: if the agent sends the same content on every call");
  });

  it("cold: the caller's new messages are new on every call by nature, and say so, not that a value in them changes", () => {
    const segments = [{ ...seg(0, 1200, { captured: 1200 }), source: 'art_x@1', section: 'system' }, { ...seg(1200, 1240, { cold: 40 }), source: 'inline', section: 'messages' }];
    expect(requestWhys({ ...base, entry: sonnet, segments })).toEqual([
      "cold 40 tokens in #2: first sent in this cache scope: nothing earlier to read; none of them was written to the cache; #2 is the caller's messages of this call, new as a call's question or tool result is",
    ]);
    // Inline system content beside them still gets the hint: a value written into it makes it new on every call.
    const both = [{ ...seg(0, 900, { cold: 900 }), source: 'inline', section: 'system' }, ...segments.slice(1)];
    expect(requestWhys({ ...base, entry: sonnet, segments: both })[0]).toContain("#1 is the caller's inline content, whose bytes were not sent before");
  });

  it('cold: a write only where the request wrote it, by the provider\'s write or, where it reports none, the simulation\'s', () => {
    // A bundle written up to its breakpoint (after #2), then the caller's question: sent, never written.
    const segments = [
      { ...seg(0, 1500, { cold: 1500 }), read: 0, write: 1500, source: 'art_a@1', section: 'system' },
      { ...seg(1500, 1700, { cold: 200 }), read: 0, write: 100, source: 'art_b@1', section: 'system' },
      { ...seg(1700, 1740, { cold: 40 }), read: 0, write: 0, source: 'inline', section: 'messages' },
    ];
    expect(requestWhys({ ...base, entry: sonnet, segments, provider_write: 1600, predicted_write: 1600 })).toEqual([
      "cold 1,740 tokens in #1–#3: first sent in this cache scope: nothing earlier to read; the provider wrote 1,600 of them to the cache (#1–#2); 140 in #2–#3 were sent, not written; #3 is the caller's messages of this call, new as a call's question or tool result is",
    ]);
    // All of them written: no segment named twice.
    expect(requestWhys({ ...base, entry: sonnet, segments: segments.slice(0, 1), provider_write: 1500 })[0]).toBe('cold 1,500 tokens in #1: first sent in this cache scope: nothing earlier to read; the provider wrote all of them to the cache');
    // A segment read in part: its cold tokens are its last, written as far as the write after the read reaches.
    const partly = [{ ...seg(0, 1000, { captured: 600, cold: 400 }), read: 600, write: 300 }];
    expect(requestWhys({ ...base, entry: sonnet, segments: partly, predicted_read: 600, provider_read: 600, provider_write: 300 })[0]).toBe(
      'cold 400 tokens in #1: first sent in this cache scope: nothing earlier to read; the provider wrote 300 of them to the cache (#1); 100 in #1 were sent, not written',
    );
    // OpenAI reports no write: the simulation's, from the predicted read on (its last whole 128-token step).
    const open = [{ ...seg(0, 1100, { cold: 1100 }), read: 0, write: null }, { ...seg(1100, 1180, { cold: 80 }), read: 0, write: null }];
    expect(requestWhys({ ...base, entry: gpt, segments: open, provider_write: null, predicted_write: 1152 })[0]).toBe(
      'cold 1,180 tokens in #1–#2: first sent in this cache scope: nothing earlier to read; the simulation wrote 1,152 of them to the cache (the provider reports no writes) (#1–#2); 28 in #2 were sent, not written',
    );
  });

  it("vLLM's last block: the prompt's last token is computed, so its last whole block ends a block sooner; not on an earlier segment", () => {
    const vllm: WhyInput['entry'] = { id: 'vllm', provider: 'vllm', cache: { minTokens: 16, granularity: { first: 16, step: 16 }, lookbackBlocks: null, lastTokenComputed: true } };
    const at = (segments: ReturnType<typeof seg>[]) => requestWhys({ ...base, entry: vllm, predicted_read: 32, provider_read: 32, provider_write: null, segments });
    expect(at([seg(0, 20, { captured: 20 }), seg(20, 48, { captured: 12, below_minimum: 16 })])).toEqual([
      "below_minimum 16 tokens in #2: past its last whole cache step (vLLM caches in 16-token blocks: up to 15 tokens at a prompt's end are never read; it computes a prompt's last token for its logits, so a prompt cached whole reads up to its length − 1, in whole blocks): the prompt through #2 is 48 tokens, its last whole step ends at 32",
    ]);
    // The same tail without the rule (another block size, an override): its last whole block is the length's.
    const plain = { ...vllm!, cache: { ...vllm!.cache, lastTokenComputed: false } };
    expect(requestWhys({ ...base, entry: plain, predicted_read: 48, provider_read: 48, provider_write: null, segments: [seg(0, 20, { captured: 20 }), seg(20, 50, { captured: 28, below_minimum: 2 })] })).toEqual([
      "below_minimum 2 tokens in #2: past its last whole cache step (vLLM caches in 16-token blocks: up to 15 tokens at a prompt's end are never read): the prompt through #2 is 50 tokens, its last whole step ends at 48",
    ]);
  });

  it('unconfirmed on an OpenAI burst past ~15 a minute: the overflow and what to do; absent without it', () => {
    const segments = [seg(0, 2176, { unconfirmed: 2176 }), seg(2176, 2177, { below_minimum: 1 })];
    const lines = (overflow?: WhyInput['overflow']) => requestWhys({ ...base, entry: gpt, predicted_read: 2176, provider_read: 0, provider_write: null, segments, ...(overflow ? { overflow } : {}) }).find((l) => l.startsWith('unconfirmed'));
    expect(lines({ prompt_cache_key: null, starts: 21 })).toBe(
      'unconfirmed 2,176 tokens in #1: predicted, but the provider did not report it as read: predicted read 2,176, the provider read 0 (eviction, another account, or a concurrent first write); 21 calls with no prompt_cache_key and this prefix started in the minute through this one, past the ~15 a minute OpenAI serves from one machine: it routes the rest to other machines, whose caches do not hold the prefix yet; keep each prefix and key under ~15 a minute — a prompt_cache_key per conversation (the service\'s is one when the prompt starts with a session: a session with the shared bundle as its base, sent with x-ph-session alone) or per shard of the traffic',
    );
    expect(lines()).toBe('unconfirmed 2,176 tokens in #1: predicted, but the provider did not report it as read: predicted read 2,176, the provider read 0 (eviction, another account, or a concurrent first write)');
  });

  it('unconfirmed and bonus: predicted against read; unknown: why it is unknown', () => {
    const segments = [seg(0, 1500, { captured: 1000, unconfirmed: 500 }), seg(1500, 1600, { cold: 100 }), seg(1600, 1700, { cold: 100 }), seg(1700, 1800, { unconfirmed: 100 })];
    expect(requestWhys({ ...base, entry: sonnet, segments, predicted_read: 1600, provider_read: 1000 })).toEqual([
      'cold 200 tokens in #2–#3: first sent in this cache scope: nothing earlier to read; none of them was written to the cache',
      'unconfirmed 600 tokens in #1, #4: predicted, but the provider did not report it as read: predicted read 1,600, the provider read 1,000 (eviction, another account, or a concurrent first write)',
    ]);
    expect(requestWhys({ ...base, segments: [seg(0, 3000, { captured: 2048, bonus: 952 })], predicted_read: 2048, provider_read: 3000 })).toEqual([
      'bonus 952 tokens in #1: read beyond our prediction (a cache warmed by traffic we did not see): the provider read 3,000, 952 more than the 2,048 predicted',
    ]);
    const unknown = { ...base, segments: [seg(0, 2048, { unknown: 2048 })], predicted_read: 2048, provider_read: null };
    expect(requestWhys(unknown)).toEqual(['unknown 2,048 tokens in #1: the provider reported no cache fields: not counted as a miss (predicted read 2,048)']);
    expect(requestWhys({ ...unknown, complete: false })).toEqual(['unknown 2,048 tokens in #1: the answer ended before its usage: not counted as a miss (predicted read 2,048)']);
  });

  it('no_breakpoint, lookback and concurrent: with the request marks and the provider lookback', () => {
    const segments = [seg(0, 2000, { lookback: 2000 }), seg(2000, 3000, { no_breakpoint: 1000 }), seg(3000, 3500, { concurrent: 500 })];
    expect(requestWhys({ ...base, entry: sonnet, segments, breakpoints: [{ segment: 2 }, { segment: 1 }, { segment: 2 }] })).toEqual([
      'concurrent 500 tokens in #3: a parallel request was still writing the same prefix: it had not started answering when this one started, and the provider did not read it',
      'no_breakpoint 1,000 tokens in #2: no cache breakpoint covered it: the scope sent this prefix before, but no breakpoint ended there, so the provider kept none of it (this request marks after #2–#3); a cache_control mark on the last block of every call\'s newest message (a tool result too) has the next call read all of it',
      "lookback 2,000 tokens in #1: the nearest breakpoint was beyond the provider's lookback: it marks after #2, and the provider looks back 20 blocks from a breakpoint for an earlier entry",
    ]);
    expect(requestWhys({ ...base, segments: [seg(0, 10, { no_breakpoint: 10 })] })).toEqual([
      'no_breakpoint 10 tokens in #1: no cache breakpoint covered it: the scope sent this prefix before, but no breakpoint ended there, so the provider kept none of it (this request marks none)',
    ]);
  });

  it('no_breakpoint: what to change is said only where the caller places the marks (Anthropic)', () => {
    const segments = [seg(0, 1500, { no_breakpoint: 1500 })];
    expect(requestWhys({ ...base, entry: sonnet, segments })[0]).toContain("a cache_control mark on the last block of every call's newest message (a tool result too)");
    expect(requestWhys({ ...base, entry: gpt, segments })[0]).not.toContain('cache_control');
  });

  it('expired under the minimum: had it been fresh it would not have been read, so keeping it alive is no remedy', () => {
    const haiku: WhyInput['entry'] = { id: 'claude-haiku-4-5', provider: 'anthropic', cache: { minTokens: 4096, granularity: null, lookbackBlocks: 20 } };
    const segments = [seg(0, 790, { expired: 790 }), seg(790, 1927, { expired: 1137 }), seg(1927, 1965, { cold: 38 })];
    expect(expiredUnderMinimum({ entry: haiku, segments })).toBe(
      "had it been fresh, the provider would not have read it either: through #2 the prefix is 1,927 tokens, under claude-haiku-4-5's minimum of 4,096 (keeping it alive or a longer lifetime would not help; a prefix over the minimum, or a model with a lower one, would)",
    );
    // Over the minimum, keeping it alive is the remedy: nothing to add; nor without the rules, or with nothing expired.
    expect(expiredUnderMinimum({ entry: sonnet, segments })).toBeNull();
    expect(expiredUnderMinimum({ segments })).toBeNull();
    expect(expiredUnderMinimum({ entry: haiku, segments: [seg(0, 100, { cold: 100 })] })).toBeNull();
  });

  it('says nothing of drift, expired and captured (they have findings of their own, or need none)', () => {
    expect(requestWhys({ ...base, entry: sonnet, segments: [seg(0, 10, { drift: 4, expired: 3, captured: 3 })] })).toEqual([]);
  });

  it('a drift says what to change, by what changed before the handle; a model rule, nothing', () => {
    const finding = (now: string, before: string) => ({ handle: 'art_s@1', now: { source: now }, before: { source: before } });
    expect(driftAdvice(finding('inline', 'inline'))).toMatch(/^keep what changes from call to call .* put it after them, in the newest message/);
    expect(driftAdvice(finding('art_t@2', 'art_t@1'))).toBe('art_t@2 stands where art_t@1 stood: everything after it is written again once; put content that changes often after the handles that stay the same');
    expect(driftAdvice({ ...finding('art_s@1', 'art_s@1'), formats: { now: 'openai-responses', before: 'openai-chat' } })).toMatch(/^send one model's calls in one API format/);
    expect(driftAdvice({ ...finding('inline', 'inline'), settings: [{ name: 'tool_choice', now: { type: 'any' }, before: null }] })).toMatch(/^keep tool_choice and thinking the same/);
    expect(driftAdvice({ ...finding('inline', 'inline'), thinking: 'earlier_turn' })).toBeNull();
  });

  it("an expired prefix: how that provider keeps one longer, never another provider's setting", () => {
    expect(keepLongerText('anthropic', '5m', true)).toContain('"ttl": "1h"');
    expect(keepLongerText('openai', '5m', true)).toContain('prompt_cache_retention: "24h"');
    expect(keepLongerText('openai', '24h', true)).toContain('a day is the longest');
    expect(keepLongerText('gemini', '1h', false)).toMatch(/^on this model a hit does not renew it.*explicit cache/);
    expect(keepLongerText('vllm', 'lru', true)).toContain('evicts by memory pressure');
  });

  it('the CLI says what the request page says (one text: the CLI had dropped "only a call within the day keeps it")', () => {
    expect(keepLongerText('openai', '24h', true)).toBe('a call within the lifetime keeps it alive; a day is the longest OpenAI keeps a prefix (prompt_cache_retention: "24h"): only a call within the day keeps it');
    for (const provider of ['anthropic', 'openai', 'gemini', 'vllm'] as const) expect(keepLongerText(provider, '5m', true)).toContain(longerLifetime(provider, '5m').replaceAll('`', ''));
    // The page's code spans are the backticked parts, balanced.
    for (const provider of ['anthropic', 'openai', 'gemini', 'vllm'] as const) expect(longerLifetime(provider, '5m').split('`').length % 2).toBe(1);
  });
});
