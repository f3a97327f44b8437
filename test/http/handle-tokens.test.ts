// A handle version's meta.tokens is counted as a request's estimate counts the same
// content (the text the model reads and its framing, prompt-tokens.ts), so the figure
// a user sees on the handle, its calibrated figure and a request's segments agree.
// Versions minted before on the JSON basis keep their meta; calibrated_tokens counts
// them again on the text basis, and a session is recounted whole at its next append.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { countTokens } from '../../src/domain/tokens';
import { clientFor, createTestApp, type Client, type TestApp } from '../helpers/app';
import { mintArtifact, mintBundle, startSession } from '../helpers/factories';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

type Tokens = Record<'o200k_base' | 'cl100k_base' | 'anthropic' | 'gemini', number>;

const TOOLS = [
  { name: 'read_file', description: 'Read a file.', input_schema: { type: 'object', properties: { path: { type: 'string', description: 'a "relative" path' } }, required: ['path'] } },
  { name: 'list_dir', input_schema: { type: 'object', properties: { dir: { type: 'string' } } } },
];
const FEW_SHOT = [
  { role: 'user', content: 'Show me a.ts' },
  { role: 'assistant', content: [{ type: 'text', text: 'Reading it.' }, { type: 'tool_use', id: 'toolu_0', name: 'read_file', input: { path: 'a.ts' } }] },
  { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_0', content: 'export const a = "x";\n' }] },
  { role: 'assistant', content: 'It exports `a`.' },
];
const call = (id: string, path: string) => ({ role: 'assistant', content: [{ type: 'tool_use', id, name: 'read_file', input: { path } }] });
const result = (id: string, text: string) => ({ role: 'user', content: [{ type: 'tool_result', tool_use_id: id, content: text }] });
const BATCHES = [
  [{ role: 'user', content: 'What is in "src/b.ts"?\nBe brief.' }, call('toolu_1', 'src/b.ts')],
  // Answers the previous batch's call: Gemini names the call it answers, learned from the batch before.
  [result('toolu_1', 'function f(s: string) {\n  return `${s}\\n`;\n}\n'), { role: 'assistant', content: 'It defines `f`.' }],
  [{ role: 'user', content: [{ type: 'text', text: 'and c?' }] }, { role: 'assistant', content: 'There is no c.' }],
];

async function meta(client: Client, ref: string) {
  const res = await client.get(`/v1/handles/${ref}`);
  expect(res.status, res.text).toBe(200);
  return res.json.version.meta as { tokens: Tokens; tokens_basis?: string; batch?: { tokens: Tokens }; change?: { first_diff_token: Tokens; invalidated_tokens: Tokens } };
}

async function session(client: Client) {
  const tools = await mintArtifact(client, 'tools', TOOLS);
  const shots = await mintArtifact(client, 'messages', FEW_SHOT);
  const base = await mintBundle(client, [tools.id, shots.id]);
  const s = await startSession(client, { base: base.id, messages: BATCHES[0] });
  for (const batch of BATCHES.slice(1)) expect((await client.post(`/v1/sessions/${s.id}/messages`, { messages: batch })).status).toBe(201);
  return s.id;
}

/** Tokens of the handle's segments in a request that names it first and adds one message of its own. */
async function renderedHandleTokens(client: Client, format: string, model: string, ref: string) {
  const request =
    format === 'gemini'
      ? { contents: [{ role: 'user', parts: [{ text: 'next' }] }] }
      : { ...(format === 'anthropic' ? { max_tokens: 64 } : {}), model, messages: [{ role: 'user', content: 'next' }] };
  const res = await client.post('/v1/render', { format, ...(format === 'gemini' ? { model } : {}), request: { prefix: [ref], ...request } });
  expect(res.status, res.text).toBe(200);
  const segments = res.json.segments as Array<{ source: string; token_start: number; token_end: number }>;
  expect(segments.filter((s) => s.source === 'inline')).toHaveLength(1);
  return segments.filter((s) => s.source !== 'inline').reduce((n, s) => n + s.token_end - s.token_start, 0);
}

const FAMILIES = [
  ['anthropic', 'anthropic', 'claude-sonnet-4-6'],
  ['o200k_base', 'openai-chat', 'gpt-4.1'],
  ['cl100k_base', 'openai-chat', 'gpt-4'],
  ['gemini', 'gemini', 'gemini-2.5-flash'],
] as const;

/**
 * What a request adds once for its tools, in its first tools segment but in no handle's meta (it is the model's, and
 * the request's tool_choice's): Claude Sonnet 4.6's tool-use system prompt with tool_choice auto ("Tool use with
 * Claude", Pricing), OpenAI's func_end (the cookbook's num_tokens_for_tools); Gemini documents none.
 */
const TOOL_PROMPT: Tokens = { anthropic: 497, o200k_base: 12, cl100k_base: 12, gemini: 0 };

/** A handle's tokens in a request: its meta's, and the request's tool prompt when the handle brings the tools. */
const inRequest = (m: { tokens: Tokens }, family: keyof Tokens, tools: boolean) => m.tokens[family] + (tools ? TOOL_PROMPT[family] : 0);

describe("a handle version's meta.tokens is on the basis of request estimates", () => {
  it('a session (tools and few-shot base, tool calls across batches): meta.tokens is its segments in a request, in every family', async () => {
    const { client } = t.tenant();
    const id = await session(client);
    const m = await meta(client, id);
    expect(m.tokens_basis).toBe('text+tools+refs');
    for (const [family, format, model] of FAMILIES) expect([family, inRequest(m, family, true)]).toEqual([family, await renderedHandleTokens(client, format, model, id)]);
    // Each artifact on its own too, and the bundle adds them up.
    const base = (await client.get(`/v1/handles/${id}`)).json.version.base as string;
    const members = (await client.get(`/v1/handles/${base}`)).json.version.members as string[];
    for (const [i, ref] of [base, ...members].entries()) {
      const mm = await meta(client, ref);
      expect(mm.tokens_basis).toBe('text+tools+refs');
      // The base and its first member (the tools) bring the tools.
      for (const [family, format, model] of FAMILIES) expect([ref, family, inRequest(mm, family, i < 2)]).toEqual([ref, family, await renderedHandleTokens(client, format, model, ref)]);
    }
  });

  it("counts what the model reads, not the stored JSON: a chatty session's count is well under its JSON's", async () => {
    const { client } = t.tenant();
    const s = await startSession(client, {});
    const turns = Array.from({ length: 20 }, (_, i) => [{ role: 'user', content: `ok ${i}` }, call(`toolu_${i}`, `f${i}.ts`), result(`toolu_${i}`, 'done'), { role: 'assistant', content: 'fine' }]).flat();
    expect((await client.post(`/v1/sessions/${s.id}/messages`, { messages: turns })).status).toBe(201);
    const m = await meta(client, s.id);
    expect(m.tokens.o200k_base).toBeLessThan(0.75 * countTokens(JSON.stringify(turns), 'o200k_base'));
    expect(m.batch!.tokens).toEqual(m.tokens);
  });

  it("a tools artifact's new version: first_diff_token is the tools before the first that changed", async () => {
    const { client } = t.tenant();
    const a = await mintArtifact(client, 'tools', TOOLS);
    const changed = [TOOLS[0], { ...TOOLS[1], description: 'List a directory.' }];
    const v2 = await client.post(`/v1/artifacts/${a.id}/versions`, { content: changed });
    expect(v2.status, v2.text).toBe(201);
    const first = await meta(client, (await mintArtifact(client, 'tools', [TOOLS[0]])).id);
    const m = await meta(client, `${a.id}@2`);
    expect(m.change!.first_diff_token).toEqual(first.tokens);
    for (const [family] of FAMILIES) expect(m.change!.invalidated_tokens[family]).toBe(m.tokens[family] - first.tokens[family]);
    expect(m.change!.invalidated_tokens.anthropic).toBeGreaterThan(0);
  });

  it('property: appending batches one by one stores the same meta.tokens as the whole session at once', async () => {
    const { client } = t.tenant();
    const text = fc.string({ minLength: 1, maxLength: 30 }).filter((s) => /\S/.test(s));
    const exchange = fc.oneof(
      fc.tuple(text, text).map(([q, a]) => [{ role: 'user', content: q }, { role: 'assistant', content: a }]),
      fc.tuple(text, text, text).map(([q, path, out]) => [{ role: 'user', content: q }, call('toolu_x', path), result('toolu_x', out), { role: 'assistant', content: [{ type: 'text', text: out }] }]),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(exchange, { minLength: 1, maxLength: 5 }), fc.array(fc.nat(), { maxLength: 4 }), async (exchanges, cuts) => {
        const messages = exchanges.flat();
        const at = [...new Set(cuts.map((c) => 1 + (c % messages.length)))].filter((c) => c < messages.length).sort((x, y) => x - y);
        const whole = await startSession(client, { messages });
        const parts = await startSession(client, {});
        const bounds = [0, ...at, messages.length];
        for (let i = 0; i + 1 < bounds.length; i++) {
          const res = await client.post(`/v1/sessions/${parts.id}/messages`, { messages: messages.slice(bounds[i], bounds[i + 1]) });
          expect(res.status, res.text).toBe(201);
        }
        expect((await meta(client, parts.id)).tokens).toEqual((await meta(client, whole.id)).tokens);
      }),
      { numRuns: 25 },
    );
  });
});

describe('versions minted on the JSON basis', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ph-basis-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Rewrites a session's stored meta as a version minted before the text basis had it: tokens of the JSON, no marker. */
  function asJsonBasis(app: TestApp, id: string) {
    const rows = app.sqlite.prepare('select version, meta from handle_versions where handle_id = ?').all(id) as Array<{ version: number; meta: string }>;
    for (const row of rows) {
      const m = JSON.parse(row.meta) as { tokens: Tokens; tokens_basis?: string; batch?: { tokens: Tokens } };
      delete m.tokens_basis;
      const inflate = (x: Tokens) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Math.round(v * 1.6)])) as Tokens;
      m.tokens = inflate(m.tokens);
      if (m.batch) m.batch.tokens = inflate(m.batch.tokens);
      app.sqlite.prepare('update handle_versions set meta = ? where handle_id = ? and version = ?').run(JSON.stringify(m), id, row.version);
    }
  }

  it.each(['text', 'text+tools'])("a tools version minted on an older basis (%s: before tools cost more than their text, or before their schemas' $ref and anyOf counted) keeps its meta, and is counted again where the current basis is needed; a messages version's stays current", async (basis) => {
    const path = join(dir, `${basis}.db`);
    const first = createTestApp({ databasePath: path });
    const tenant = first.tenant();
    const tools = await mintArtifact(tenant.client, 'tools', TOOLS);
    const shots = await mintArtifact(tenant.client, 'messages', FEW_SHOT);
    const current = { tools: await meta(tenant.client, tools.id), shots: await meta(tenant.client, shots.id) };
    // As an older service stored them: OpenAI's tool counts of the schema's JSON text (`text`), or of its members
    // without the types its $refs name (`text+tools`).
    const asText = (id: string, tokens: Tokens) => {
      const row = first.sqlite.prepare('select meta from handle_versions where handle_id = ?').get(id) as { meta: string };
      first.sqlite.prepare('update handle_versions set meta = ? where handle_id = ?').run(JSON.stringify({ ...JSON.parse(row.meta), tokens, tokens_basis: basis }), id);
    };
    const older = { ...current.tools.tokens, o200k_base: current.tools.tokens.o200k_base + 40 };
    asText(tools.id, older);
    asText(shots.id, current.shots.tokens);
    first.sqlite
      .prepare('insert into calibration (tenant_id, model, family, provider_tokens, estimated_tokens, reports) values (?, ?, ?, ?, ?, ?)')
      .run(tenant.id, 'gpt-4.1', 'o200k_base+text+tools', 1100, 1000, 2);
    first.close();
    const app = createTestApp({ databasePath: path });
    try {
      const client = clientFor(app.app, tenant.key);
      const calibrated = async (id: string) => (await client.get(`/v1/handles/${id}`)).json.calibrated_tokens[0].estimate as number;
      expect((await meta(client, tools.id)).tokens.o200k_base).toBe(older.o200k_base);
      expect(await calibrated(tools.id)).toBe(current.tools.tokens.o200k_base);
      expect(await calibrated(shots.id)).toBe(current.shots.tokens.o200k_base);
      // A bundle of them adds up the tools as counted now.
      const bundle = await meta(client, (await mintBundle(client, [tools.id, shots.id])).id);
      expect(bundle.tokens.o200k_base).toBe(current.tools.tokens.o200k_base + current.shots.tokens.o200k_base);
    } finally {
      app.close();
    }
  });

  it('calibrated_tokens counts them on the text basis; the next append recounts the session once, then adds up again', async () => {
    const path = join(dir, 'ph.db');
    const first = createTestApp({ databasePath: path });
    const tenant = first.tenant();
    const id = await session(tenant.client);
    const text = await meta(tenant.client, id);
    first.close();

    // The same database as an older service left it: the session's versions on the JSON basis.
    const old = createTestApp({ databasePath: path });
    asJsonBasis(old, id);
    old.close();
    const app = createTestApp({ databasePath: path });
    try {
      const client = clientFor(app.app, tenant.key);
      const stored = await meta(client, id);
      expect(stored.tokens_basis).toBeUndefined();
      expect(stored.tokens.anthropic).toBe(Math.round(text.tokens.anthropic * 1.6));
      // No ratio yet: nothing is counted, nothing shown.
      expect((await client.get(`/v1/handles/${id}`)).json.calibrated_tokens).toEqual([]);
      app.sqlite
        .prepare('insert into calibration (tenant_id, model, family, provider_tokens, estimated_tokens, reports) values (?, ?, ?, ?, ?, ?)')
        .run(tenant.id, 'claude-sonnet-4-6', 'anthropic+text+tools', 900, 1000, 3);
      expect((await client.get(`/v1/handles/${id}`)).json.calibrated_tokens).toEqual([
        { model: 'claude-sonnet-4-6', family: 'anthropic', ratio: 0.9, reports: 3, estimate: text.tokens.anthropic, calibrated: Math.round(text.tokens.anthropic * 0.9) },
      ]);
      // Its stored meta is never rewritten.
      expect((await meta(client, id)).tokens).toEqual(stored.tokens);

      const more = [{ role: 'user', content: 'And d.ts?' }, { role: 'assistant', content: 'Also nothing.' }];
      const appended = await client.post(`/v1/sessions/${id}/messages`, { messages: more });
      expect(appended.status, appended.text).toBe(201);
      const after = await meta(client, id);
      expect(after.tokens_basis).toBe('text+tools+refs');
      for (const [family] of FAMILIES) expect(after.tokens[family]).toBe(text.tokens[family] + after.batch!.tokens[family]);
      const last = [{ role: 'user', content: 'Thanks.' }];
      expect((await client.post(`/v1/sessions/${id}/messages`, { messages: last })).status).toBe(201);
      const next = await meta(client, id);
      for (const [family] of FAMILIES) expect(next.tokens[family]).toBe(after.tokens[family] + next.batch!.tokens[family]);
      // The same as a session minted whole on the text basis.
      for (const [family, format, model] of FAMILIES) expect([family, inRequest(next, family, true)]).toEqual([family, await renderedHandleTokens(client, format, model, id)]);
    } finally {
      app.close();
    }
  });
});
