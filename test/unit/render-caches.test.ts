// The renderer's caches (render/request.ts, segments.ts, units.ts): a render that reuses what earlier calls computed —
// a long session's unit keys under the request's settings, its chain of digests, its items' texts and counts — is the
// render from scratch, byte for byte and segment for segment, and never answers for another tenant's handle, a
// deleted one or an older version.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
// First: the app's modules extend zod (its schemas' .openapi) before the domain's are read.
import { createTestApp } from '../helpers/app';
import type { Message } from '../../src/domain/content';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import { DomainError } from '../../src/domain/errors';
import { RequestRenderer, type RenderRequestInput, type RequestFormat } from '../../src/domain/render/request';

const t = createTestApp();
afterAll(() => t.close());
const { handles } = t.services;
const catalog = new ModelCatalog(loadCatalog());
const tenantA = t.services.tenants.createTenant('render caches A').tenant;
const tenantB = t.services.tenants.createTenant('render caches B').tenant;

const TOOLS = [{ name: 'read_file', description: 'Reads a file.', input_schema: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] } }];
function bundleOf(tenantId: string): string {
  const tools = handles.mintArtifact(tenantId, { kind: 'tools', content: TOOLS }).handle.id;
  const system = handles.mintArtifact(tenantId, { kind: 'system', content: 'You are a careful coding agent. '.repeat(40) }).handle.id;
  return handles.createBundle(tenantId, { members: [tools, system] }).handle.id;
}
const bundles = new Map([tenantA, tenantB].map((id) => [id, bundleOf(id)]));

const PROVIDER: Record<RequestFormat, string> = { anthropic: 'anthropic', 'openai-chat': 'openai', 'openai-responses': 'openai', gemini: 'gemini' } as Record<RequestFormat, string>;

/** What the proxy hands the renderer for a call on `session` (x-ph-session), the caller's body as given. */
function input(tenantId: string, format: RequestFormat, session: string, body: Record<string, unknown>): RenderRequestInput {
  const provider = PROVIDER[format] as Parameters<typeof catalog.lookup>[1];
  return {
    tenantId,
    format,
    bodyText: JSON.stringify(body),
    pointer: '/request',
    resolveModel: (name) => catalog.lookup(name ?? '', provider).entry,
    extraPrefix: [{ ref: session, pointer: 'header:x-ph-session' }],
    cacheTtl: '1h',
    producerOf: (name) => {
      const found = catalog.lookup(name, 'anthropic');
      return found.fallback ? null : found.entry.id;
    },
  };
}

/** The render's result, or the refusal it ends in (a render that fails must fail the same way from scratch). */
function outcome(renderer: RequestRenderer, call: RenderRequestInput): unknown {
  try {
    return renderer.render(call);
  } catch (err) {
    if (err instanceof DomainError) return { refused: err.code, message: err.message };
    throw err;
  }
}

// Rounds of a coding agent: a question answered by a tool call, its result answered in text; thinking or not, by
// the model under test or another one (which Claude models do not read back).
const round = fc.record({
  lines: fc.integer({ min: 1, max: 30 }),
  thinking: fc.constantFrom(null, 'claude-sonnet-4-6', 'claude-sonnet-4-5', 'claude-opus-4-1'),
  tool: fc.boolean(),
});
const call = fc.record({
  format: fc.constantFrom<RequestFormat>('anthropic', 'anthropic', 'openai-chat', 'openai-responses', 'gemini'),
  model: fc.constantFrom('claude-sonnet-4-6', 'claude-sonnet-4-5', 'claude-haiku-4-5'),
  thinking: fc.boolean(),
  toolChoice: fc.constantFrom(undefined, { type: 'auto' }, { type: 'any' }),
  marked: fc.boolean(),
});

function appendRound(tenantId: string, session: string, i: number, r: { lines: number; thinking: string | null; tool: boolean }): void {
  const thinking = (k: number) => (r.thinking ? [{ type: 'thinking', provider: 'anthropic', thinking: `Thinking ${k} about step ${i}.`, signature: `sig${i}_${k}`.padEnd(64, 'A'), model: r.thinking }] : []);
  const file = Array.from({ length: r.lines }, (_, k) => `export const line${k} = ${i * 100 + k};`).join('\n');
  if (!r.tool) {
    handles.appendMessages(tenantId, session, [
      { role: 'user', content: [{ type: 'text', text: `Step ${i}: explain src/f${i}.ts\n${file}` }] },
      { role: 'assistant', content: [...thinking(0), { type: 'text', text: `It declares ${r.lines} constants.` }] },
    ] as Message[]);
    return;
  }
  handles.appendMessages(tenantId, session, [
    { role: 'user', content: [{ type: 'text', text: `Step ${i}: use read_file on src/f${i}.ts` }] },
    { role: 'assistant', content: [...thinking(0), { type: 'tool_use', id: `toolu_${i}`, name: 'read_file', input: { path: `src/f${i}.ts` } }] },
  ] as Message[]);
  handles.appendMessages(tenantId, session, [
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: `toolu_${i}`, content: file }] },
    { role: 'assistant', content: [...thinking(1), { type: 'text', text: `Read src/f${i}.ts.` }] },
  ] as Message[]);
}

/** The next call's body in a format: a new question after the session's history. */
function body(c: { format: RequestFormat; model: string; thinking: boolean; toolChoice?: { type: string }; marked: boolean }, i: number): Record<string, unknown> {
  const text = `Step ${i}: what next?`;
  if (c.format === 'anthropic')
    return {
      model: c.model,
      max_tokens: 4096,
      ...(c.thinking ? { thinking: { type: 'enabled', budget_tokens: 1024 } } : {}),
      ...(c.toolChoice ? { tool_choice: c.toolChoice } : {}),
      messages: [{ role: 'user', content: [{ type: 'text', text, ...(c.marked ? { cache_control: { type: 'ephemeral', ttl: '1h' } } : {}) }] }],
    };
  if (c.format === 'openai-chat') return { model: 'gpt-4.1', messages: [{ role: 'user', content: text }] };
  if (c.format === 'openai-responses') return { model: 'gpt-5.4', input: text, ...(c.thinking ? { reasoning: { effort: 'low' } } : {}) };
  return { model: 'gemini-2.5-flash', contents: [{ role: 'user', parts: [{ text }] }] };
}

describe('a render that reuses earlier calls’ work', () => {
  // One renderer for every run, as the service keeps one: its caches carry over from session to session.
  const warm = new RequestRenderer(handles);

  it('is the render from scratch, byte for byte, segments, digests, chains and breakpoints included, as a session grows (property)', () => {
    let runs = 0;
    let rendered = 0;
    fc.assert(
      fc.property(fc.array(round, { minLength: 1, maxLength: 6 }), fc.array(call, { minLength: 1, maxLength: 3 }), (rounds, calls) => {
        runs++;
        const session = handles.createSession(tenantA, { base: bundles.get(tenantA)! }).handle.id;
        rounds.forEach((r, i) => {
          appendRound(tenantA, session, i, r);
          for (const [k, c] of calls.entries()) {
            const request = input(tenantA, c.format, session, body(c, i * 10 + k));
            const cached = [outcome(warm, request), outcome(warm, request)];
            // From scratch: a renderer of its own, every cache dropped (the handles' segments read again too).
            const fresh = new RequestRenderer(handles);
            fresh.forgetCaches();
            handles.forgetCaches();
            const scratch = outcome(fresh, request);
            expect(cached[0]).toEqual(scratch);
            expect(cached[1]).toEqual(scratch);
            if (!(scratch as { refused?: string }).refused) rendered++;
          }
        });
      }),
      { numRuns: 25, seed: 3207 },
    );
    expect(runs).toBe(25);
    // Most calls render (a refusal compared is a refusal, not bytes): the property is about bytes.
    expect(rendered).toBeGreaterThan(50);
  });

  it('renders a long session the same after 40 rounds of appends and calls with the thinking kept and stripped (the cached keys of earlier turns)', () => {
    const session = handles.createSession(tenantA, { base: bundles.get(tenantA)! }).handle.id;
    const c = { format: 'anthropic' as const, model: 'claude-sonnet-4-5', thinking: true, marked: true };
    for (let i = 0; i < 40; i++) {
      appendRound(tenantA, session, i, { lines: 5, thinking: 'claude-sonnet-4-5', tool: i % 3 !== 0 });
      outcome(warm, input(tenantA, 'anthropic', session, body(c, i)));
    }
    const request = input(tenantA, 'anthropic', session, body(c, 99));
    const cached = warm.render(request);
    const fresh = new RequestRenderer(handles);
    fresh.forgetCaches();
    handles.forgetCaches();
    const scratch = fresh.render(request);
    expect(cached).toEqual(scratch);
    // The history is the 40 rounds' batches, each its own segment (66 of them), after the bundle's two.
    expect(scratch.segments.filter((s) => s.source.startsWith(`${session}@`))).toHaveLength(66);
    expect(new Set(scratch.segments.map((s) => s.chain)).size).toBe(scratch.segments.length);
  });
});

describe("the renderer's caches and tenants, deletion and versions", () => {
  const warm = new RequestRenderer(handles);
  const c = { format: 'anthropic' as const, model: 'claude-sonnet-4-6', thinking: true, marked: true };

  /** Two tenants, each with a session of the same messages on a bundle of the same content. */
  function twins() {
    const a = handles.createSession(tenantA, { base: bundles.get(tenantA)! }).handle.id;
    const b = handles.createSession(tenantB, { base: bundles.get(tenantB)! }).handle.id;
    for (let i = 0; i < 4; i++) for (const [tenant, s] of [[tenantA, a], [tenantB, b]] as const) appendRound(tenant, s, i, { lines: 3, thinking: 'claude-sonnet-4-6', tool: true });
    return { a, b };
  }

  it("never answers for another tenant's session, even one with the same content rendered just before", () => {
    const { a, b } = twins();
    const ofA = warm.render(input(tenantA, 'anthropic', a, body(c, 1)));
    // Tenant B naming A's session: not found, as if nothing were cached.
    expect(outcome(warm, input(tenantB, 'anthropic', a, body(c, 1)))).toMatchObject({ refused: 'not_found' });
    // B's own twin: the same bytes (the same content), but every segment B's own handles, chained the same.
    const ofB = warm.render(input(tenantB, 'anthropic', b, body(c, 1)));
    expect(ofB.bodyText).toBe(ofA.bodyText);
    expect(ofB.segments.map((s) => s.digest)).toEqual(ofA.segments.map((s) => s.digest));
    expect(ofB.segments.map((s) => s.chain)).toEqual(ofA.segments.map((s) => s.chain));
    const sessionSources = ofB.segments.filter((s) => s.source.startsWith('ses_')).map((s) => s.source);
    expect(sessionSources.length).toBe(8);
    expect(sessionSources.every((s) => s.startsWith(`${b}@`))).toBe(true);
    expect(ofB.handles).toContain(b);
    expect(ofB.handles).not.toContain(a);
  });

  it('refuses a deleted session after rendering it (gone), and renders a new version with its new batch, not the cached one', () => {
    const { a } = twins();
    const before = warm.render(input(tenantA, 'anthropic', a, body(c, 2)));
    appendRound(tenantA, a, 9, { lines: 2, thinking: null, tool: false });
    const after = warm.render(input(tenantA, 'anthropic', a, body(c, 2)));
    const latest = handles.getHandle(tenantA, a).latestVersion;
    expect(after.segments.at(-2)!.source).toBe(`${a}@${latest}`);
    expect(after.bodyText).toContain('Step 9: explain src/f9.ts');
    expect(before.bodyText).not.toContain('Step 9');
    // The earlier segments are the same bytes, chained the same (the version before's history is a prefix of this one).
    const history = before.segments.length - 1;
    expect(after.segments.slice(0, history).map((s) => [s.digest, s.chain])).toEqual(before.segments.slice(0, history).map((s) => [s.digest, s.chain]));
    // A pinned older version renders as it did.
    const pinned = warm.render(input(tenantA, 'anthropic', `${a}@${latest - 1}`, body(c, 2)));
    expect(pinned.bodyText).toBe(before.bodyText);
    handles.delete(tenantA, a);
    expect(outcome(warm, input(tenantA, 'anthropic', a, body(c, 2)))).toMatchObject({ refused: 'gone' });
  });
});
