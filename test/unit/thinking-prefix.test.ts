// Preserved thinking's prefix check as the service sees it coming (src/domain/thinking-prefix.ts): what counts as a
// change agrees with the simulator's check, and which blocks a render that fails it names.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
// First: the app's zod, with its OpenAPI extension, before the domain's schemas are built.
import { createTestApp } from '../helpers/app';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import type { Message } from '../../src/domain/content';
import { DomainError } from '../../src/domain/errors';
import { changedPrefixes, recordedThinking, refuseChangedPrefixes, thinkingKey, thinkingPrefixes, withPrefixes, type RecordedThinking } from '../../src/domain/thinking-prefix';
import { readsProducer } from '../../src/domain/thinking';
import { anthropicPrefixes } from '../../src/simulator/reasoning';

const catalog = new ModelCatalog(loadCatalog());
const entry = (name: string) => catalog.lookup(name, 'anthropic').entry;

type Json = Record<string, unknown>;
const TOOL = { name: 'get_weather', description: 'Weather.', input_schema: { type: 'object', properties: { city: { type: 'string' } } } };
const thinking = (n: number) => ({ type: 'thinking', thinking: `t${n}`, signature: `sig${n}` });
const call = (n: number) => ({ type: 'tool_use', id: `toolu_${n}`, name: 'get_weather', input: { city: 'Oslo' } });
const result = (n: number) => ({ role: 'user', content: [{ type: 'tool_result', tool_use_id: `toolu_${n}`, content: 'cold' }] });
/** A tool loop of two rounds: thinking blocks at messages.1.content.0 and messages.3.content.0. */
const base = (): Json => ({
  model: 'claude-fable-5-1',
  tools: [TOOL],
  system: 'Be brief.',
  messages: [{ role: 'user', content: 'Weather?' }, { role: 'assistant', content: [thinking(1), call(1)] }, result(1), { role: 'assistant', content: [thinking(3), call(3)] }, result(3)],
});
/** The blocks of `body` as a session would have recorded them, produced under it. */
function recorded(body: Json, producer: string | null = 'claude-fable-5-1'): Map<string, RecordedThinking> {
  const at = thinkingPrefixes(body);
  return new Map([
    ['s:sig1', { prefix: at(1, []), producer, source: 'ses_a@2' }],
    ['s:sig3', { prefix: at(3, []), producer, source: 'ses_a@3' }],
  ]);
}
const readsAll = () => true;

describe('what counts as a change: the prompt, as the simulator checks it', () => {
  const cases: Array<[string, (b: Json) => void, string[]]> = [
    ['the system prompt', (b) => (b.system = 'Be thorough.'), ['system']],
    ['the tools', (b) => (b.tools = [{ ...TOOL, description: 'The weather.' }]), ['tools']],
    ['an earlier message', (b) => ((b.messages as Json[])[0] = { role: 'user', content: 'Weather now?' }), ['messages']],
    ['the system prompt as a text block: the same prompt', (b) => (b.system = [{ type: 'text', text: 'Be brief.' }]), []],
    ['a cache mark on it: not the conversation', (b) => (b.system = [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }]), []],
    ['a message after the block', (b) => ((b.messages as Json[])[2] = result(9)), []],
    ['the question as a text block', (b) => ((b.messages as Json[])[0] = { role: 'user', content: [{ type: 'text', text: 'Weather?' }] }), []],
  ];
  it.each(cases)('%s', (_, change, parts) => {
    const before = base();
    const after = base();
    change(after);
    // The first block (messages.1.content.0): ours names the parts; the simulator's digest moves alike.
    const ours = changedPrefixes(after, new Map([...recorded(before)].slice(0, 1)), readsAll);
    expect(ours[0]?.changed ?? []).toEqual(parts);
    expect(anthropicPrefixes(after)(1, 0) !== anthropicPrefixes(before)(1, 0)).toBe(parts.length > 0);
  });
});

describe('the blocks a render that fails the check names', () => {
  it('the first changed block with what changed, then every later thinking block, invalid with it', () => {
    const after = base();
    after.system = 'Be thorough.';
    expect(changedPrefixes(after, recorded(base()), readsAll)).toEqual([
      { path: 'messages.1.content.0', message: 1, block: 0, source: 'ses_a@2', changed: ['system'] },
      { path: 'messages.3.content.0', message: 3, block: 0, source: 'ses_a@3', changed: ['system'] },
    ]);
    // A change between the two blocks: only the later one, and it names the messages.
    const between = base();
    (between.messages as Json[])[2] = { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'warm' }] };
    expect(changedPrefixes(between, recorded(base()), readsAll)).toEqual([{ path: 'messages.3.content.0', message: 3, block: 0, source: 'ses_a@3', changed: ['messages'] }]);
  });

  it('refused on a model with the prefix check (Claude Fable 5.1), with pointers to what changed; not with drop_block, nor for blocks it does not read, nor on a model without the check', () => {
    const after = base();
    after.system = 'Be thorough.';
    const refusal = (() => {
      try {
        refuseChangedPrefixes(entry('claude-fable-5-1'), after, recorded(base()), '/request');
      } catch (e) {
        return e as DomainError;
      }
      return null;
    })();
    expect(refusal).toBeInstanceOf(DomainError);
    expect(refusal!.code).toBe('thinking_prefix_changed');
    expect(refusal!.errors).toEqual([{ pointer: '/request/system', detail: 'changed since the thinking block at messages.1.content.0 was produced' }]);
    expect(refusal!.extra.blocks).toHaveLength(2);
    expect(() => refuseChangedPrefixes(entry('claude-fable-5-1'), { ...after, thinking: { type: 'adaptive', block_binding: { prefix_mismatch_behavior: 'drop_block' } } }, recorded(base()), '')).not.toThrow();
    // Claude Sonnet 4.6's blocks: Fable 5.1 does not read them (dropped without an error), so they are not checked.
    expect(() => refuseChangedPrefixes(entry('claude-fable-5-1'), after, recorded(base(), 'claude-sonnet-4-6'), '')).not.toThrow();
    // Claude Opus 5 has no preserved thinking: no prefix check.
    expect(() => refuseChangedPrefixes(entry('claude-opus-5'), after, recorded(base()), '')).not.toThrow();
    // Nothing changed: nothing refused.
    expect(() => refuseChangedPrefixes(entry('claude-fable-5-1'), base(), recorded(base()), '')).not.toThrow();
  });
});

describe('a render checks the prefixes on its parts, as the straightforward check on its whole body does', () => {
  const SYSTEMS: unknown[] = [undefined, 'Be brief.', 'Be thorough.', [{ type: 'text', text: 'Be brief.' }], [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }], ['Be brief.'], 'handle', ['handle', { type: 'text', text: 'Be brief.' }]];
  const TOOLSETS: unknown[] = [undefined, [TOOL], [{ ...TOOL, description: 'The weather.' }], [{ ...TOOL, cache_control: { type: 'ephemeral' } }], 'handle'];
  const PLACES = ['header', 'prefix', 'messages', 'after a message'] as const;
  const PRODUCERS = ['claude-fable-5-1', 'claude-sonnet-4-6', undefined];
  /** A request's variant: its system, tools, where the session goes, what the caller adds (a thinking block: inline, or one of the session's again). */
  const variant = fc.record({
    system: fc.nat(SYSTEMS.length - 1),
    tools: fc.nat(TOOLSETS.length - 1),
    place: fc.constantFrom(...PLACES),
    inlineThinking: fc.option(fc.nat(5), { nil: undefined }),
    // A question with a handle block in it: the body is parsed whole (its message is no unit).
    mixed: fc.constantFrom(false, false, true),
  });
  const reply = fc.record({ textFirst: fc.boolean(), redacted: fc.boolean(), producer: fc.nat(PRODUCERS.length - 1) });

  it('the same refusal (detail, blocks, pointers) or none, on random sessions and requests, renders after renders (the digests kept per batch); with drop_block, the same blocks named and left out of the estimate', async () => {
    const t = createTestApp();
    try {
      const tenant = t.tenant().id;
      const h = t.services.handles;
      const tools = h.mintArtifact(tenant, { kind: 'tools', content: [{ name: 'lookup', description: 'Looks up.', input_schema: { type: 'object' } }] }).handle.id;
      const system = h.mintArtifact(tenant, { kind: 'system', content: 'You answer questions about the weather.' }).handle.id;
      const base = h.createBundle(tenant, { members: [tools, system] }).handle.id;
      // The request's own handles: tools and a system prompt of their own (a tool named twice is refused).
      const moreTools = h.mintArtifact(tenant, { kind: 'tools', content: [{ name: 'get_time', description: 'The time.', input_schema: { type: 'object' } }] }).handle.id;
      const moreSystem = h.mintArtifact(tenant, { kind: 'system', content: 'Answer in Norwegian.' }).handle.id;
      const greeting = h.mintArtifact(tenant, { kind: 'messages', content: [{ role: 'user', content: 'Hello.' }, { role: 'assistant', content: 'Hi.' }] }).handle.id;
      const fable = entry('claude-fable-5-1');
      let n = 0;
      await fc.assert(
        fc.asyncProperty(fc.boolean(), fc.array(fc.tuple(variant, reply), { minLength: 1, maxLength: 4 }), fc.array(variant, { minLength: 1, maxLength: 3 }), fc.boolean(), async (withBase, turns, finals, drop) => {
          const session = h.createSession(tenant, withBase ? { base } : {}).handle.id;
          const signatures: string[] = [];
          const body = (v: { system: number; tools: number; place: (typeof PLACES)[number]; inlineThinking?: number; mixed: boolean }, question: string, thinking?: unknown): string => {
            const sys = SYSTEMS[v.system] === 'handle' ? [{ type: 'handle', ref: moreSystem }] : Array.isArray(SYSTEMS[v.system]) ? (SYSTEMS[v.system] as unknown[]).map((b) => (b === 'handle' ? { type: 'handle', ref: moreSystem } : b)) : SYSTEMS[v.system];
            const tls = TOOLSETS[v.tools] === 'handle' ? [{ type: 'handle', ref: moreTools }] : TOOLSETS[v.tools];
            // A session on a bundle stands only in the prefix: the messages before it are a messages handle's there.
            const inMessages = !withBase && (v.place === 'messages' || v.place === 'after a message');
            const prefix = v.place === 'prefix' || (withBase && v.place !== 'header') ? [...(v.place === 'after a message' ? [greeting] : []), session] : [];
            const before = inMessages && v.place === 'after a message' ? [{ role: 'user', content: 'Hello.' }, { role: 'assistant', content: 'Hi.' }] : [];
            const ses = inMessages ? [{ type: 'handle', ref: session }] : [];
            // The caller's own assistant message with a thinking block: a fresh one, or one of the session's (its key) again.
            const own = v.inlineThinking === undefined ? [] : [{ role: 'user', content: 'And?' }, { role: 'assistant', content: [{ type: 'thinking', thinking: 'mine', signature: signatures[v.inlineThinking] ?? `own-${n}` }, { type: 'text', text: 'So.' }] }];
            const last = v.mixed ? { role: 'user', content: [{ type: 'text', text: question }, { type: 'handle', ref: moreSystem }] } : { role: 'user', content: question };
            return JSON.stringify({
              model: 'claude-fable-5-1',
              max_tokens: 1024,
              ...(prefix.length ? { prefix } : {}),
              thinking: thinking ?? { type: 'adaptive' },
              ...(sys === undefined ? {} : { system: sys }),
              ...(tls === undefined ? {} : { tools: tls }),
              messages: [...before, ...ses, ...own, last],
            });
          };
          const render = (text: string, place: string) =>
            t.services.requests.expand({ tenantId: tenant, format: 'anthropic', bodyText: text, pointer: '/request', ...(place === 'header' ? { extraPrefix: [{ ref: session, pointer: 'header:x-ph-session' }] } : {}) });
          const outcome = (f: () => unknown) => {
            try {
              f();
              return null;
            } catch (e) {
              if (!(e instanceof DomainError)) throw e;
              return { code: e.code, detail: e.message, extra: e.extra, errors: e.errors };
            }
          };
          // Each turn sent under its variant, as the proxy keeps it: the reply's blocks with the prefix of the body sent (none refused: drop_block).
          for (const [v, r] of turns) {
            const question = `Question ${++n}?`;
            const sent = render(body(v, question, { type: 'adaptive', block_binding: { prefix_mismatch_behavior: 'drop_block' } }), v.place).bodyText;
            const model = PRODUCERS[r.producer];
            const mark = (b: Json) => ({ ...b, provider: 'anthropic', ...(model ? { model } : {}) });
            const sig = `sig-${n}`;
            signatures.push(sig);
            const blocks: Json[] = [mark({ type: 'thinking', thinking: `About ${question}`, signature: sig })];
            if (r.redacted) {
              blocks.push(mark({ type: 'redacted_thinking', data: `data-${n}` }));
              signatures.push(`data-${n}`);
            }
            const content = r.textFirst ? [{ type: 'text', text: 'First,' }, ...blocks, { type: 'text', text: 'Cold.' }] : [...blocks, { type: 'text', text: 'Cold.' }];
            h.appendMessages(tenant, session, [{ role: 'user', content: question }, withPrefixes({ role: 'assistant', content } as Message, sent)]);
          }
          const resolved = h.resolve(tenant, session);
          const recorded = recordedThinking(h.segmentsOf(resolved.handle, resolved.version.version), (name) => entry(name).id);
          for (const v of finals) {
            const question = `Question ${++n}?`;
            const thinking = drop ? { type: 'adaptive', block_binding: { prefix_mismatch_behavior: 'drop_block' } } : { type: 'adaptive' };
            // The body the render sends, from the same request with drop_block (its check skips): the straightforward check on it.
            const sent = JSON.parse(render(body(v, question, { type: 'adaptive', block_binding: { prefix_mismatch_behavior: 'drop_block' } }), v.place).bodyText) as Json;
            const expected = outcome(() => refuseChangedPrefixes(fable, { ...sent, thinking }, recorded, '/request'));
            expect(outcome(() => render(body(v, question, thinking), v.place))).toEqual(expected);
            if (!drop) continue;
            // With drop_block: the blocks the check fails are named, and counted as not there — the estimate is the
            // same body's with them (and those of a model Fable 5.1 does not read) left out, sent inline.
            const failed = changedPrefixes(sent, recorded, (p) => readsProducer(fable, p));
            const result = t.services.requests.render({ tenantId: tenant, format: 'anthropic', bodyText: body(v, question, thinking), pointer: '/request', ...(v.place === 'header' ? { extraPrefix: [{ ref: session, pointer: 'header:x-ph-session' }] } : {}) });
            expect(result.warnings.find((w) => w.code === 'thinking_dropped')?.text ?? null).toBe(failed.length ? failed.map((f) => f.path).join(', ') : null);
            const first = failed[0];
            const kept = (sent.messages as Json[]).map((m, i) =>
              Array.isArray(m.content)
                ? {
                    ...m,
                    content: (m.content as Json[]).filter((b, j) => {
                      if (b.type !== 'thinking' && b.type !== 'redacted_thinking') return true;
                      const producer = recorded.get(thinkingKey(b) ?? '')?.producer;
                      return !(first && (i > first.message || (i === first.message && j >= first.block))) && (producer === undefined || readsProducer(fable, producer));
                    }),
                  }
                : m,
            );
            const { prefix: _prefix, ...bare } = sent;
            const inline = t.services.requests.render({ tenantId: tenant, format: 'anthropic', bodyText: JSON.stringify({ ...bare, thinking, messages: kept }), pointer: '/request' });
            // (A message mixing a handle block into the caller's is counted a block at a time: not the same estimate
            // inline. The caller's own copy of a session block of a model Fable 5.1 does not read is counted, its
            // producer unknown there, as thinking_not_read takes the caller's blocks.)
            const own = v.inlineThinking === undefined ? undefined : recorded.get(`s:${signatures[v.inlineThinking] ?? ''}`);
            if (!v.mixed && !(own && !readsProducer(fable, own.producer))) expect(result.segments.at(-1)!.token_end).toBe(inline.segments.at(-1)!.token_end);
          }
        }),
        { numRuns: 60 },
      );
    } finally {
      await t.services.writes.idle();
      t.close();
    }
  });
});
