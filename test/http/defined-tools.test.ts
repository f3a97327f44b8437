// Anthropic-defined tools (`{"type": "bash_20250124", "name": "bash"}`) carry no schema: the API writes its own
// definition, a fixed count per tool version and model (catalog `definedToolTokens`, from Anthropic's tool pages).
// Counted as their few bytes of JSON, an agent's bash tool was 225 tokens short on every request, and a text editor
// 675: reconciliation then scaled every handle beside them up to the provider's total.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import { toolCosts, unitTokens } from '../../src/domain/prompt-tokens';
import { blocksFromRequest } from '../../src/domain/simulator/blocks';
import { countTokens } from '../../src/domain/tokens';
import { createTestApp, type TestApp } from '../helpers/app';
import { mintArtifact, mintBundle, mintSystem } from '../helpers/factories';
import { LONG_SYSTEM, report } from '../helpers/scenario';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const catalog = new ModelCatalog(loadCatalog());
const BASH = { type: 'bash_20250124', name: 'bash' };
const EDITOR = { type: 'text_editor_20250429', name: 'str_replace_based_edit_tool' };
const COMPUTER = { type: 'computer_20250124', name: 'computer', display_width_px: 1024, display_height_px: 768, display_number: 1 };
const QUESTION = [{ role: 'user', content: 'List the files.' }];

type Segment = { source: string; section: string; token_start: number; token_end: number };
const span = (s: Segment) => s.token_end - s.token_start;

async function render(client: ReturnType<TestApp['tenant']>['client'], request: object) {
  const res = await client.post('/v1/render', { format: 'anthropic', request: { max_tokens: 64, messages: QUESTION, ...request } });
  expect(res.status, res.text).toBe(200);
  const segments = res.json.segments as Segment[];
  return { json: res.json, body: res.json.body as object, segments, total: segments.at(-1)!.token_end };
}

/** What the simulated provider counts for a rendered body, with the catalog's figures for its model. */
function simulated(model: string, body: object): number {
  const entry = catalog.lookup(model, 'anthropic').entry;
  return blocksFromRequest('anthropic', body, (s) => countTokens(s, entry.tokenizer), toolCosts('anthropic', entry.tokenizer, entry)).totalTokens;
}

/** A tool counted as its JSON text, as before (and still for a version without a figure). */
const asJson = (tool: object) => unitTokens('anthropic', 'tools', tool, (s) => countTokens(s, 'anthropic'));

describe("Anthropic-defined tools count the model's documented figure", () => {
  it('through /v1/render: the bash tool, the text editor and computer use, by model, in the tools segment with the tool-use system prompt', async () => {
    const { client } = t.tenant();
    const question = span((await render(client, { model: 'claude-sonnet-4-6' })).segments[0]!);
    for (const [model, tools, expected] of [
      // 244 for the bash tool on Sonnet 4.6 and earlier, with the tool-use system prompt (auto: 497).
      ['claude-sonnet-4-6', [BASH], 244 + 497],
      // 325 on Opus 4.7, 4.8 and 5 (their newer tokenizer); Opus 5's tool-use prompt (286) is in the catalog from 2026-12-04.3.
      ['claude-opus-4-8', [BASH], 325 + 290],
      ['claude-opus-5', [BASH], 325 + 286],
      // text_editor_20250429: 700 on Claude 4.x.
      ['claude-sonnet-4-5', [EDITOR], 700 + 496],
      // computer use: 735 per tool definition and 466, the low end of its 466-499 system prompt.
      ['claude-haiku-4-5', [COMPUTER], 735 + 466 + 496],
      // A coding agent's three: one inline segment.
      ['claude-opus-4-6', [BASH, EDITOR, COMPUTER], 244 + 700 + 1201 + 497],
    ] as const) {
      const r = await render(client, { model, tools });
      expect(r.segments.map((s) => [s.source, s.section]), model).toEqual([
        ['inline', 'tools'],
        ['inline', 'messages'],
      ]);
      expect(span(r.segments[0]!), model).toBe(expected);
      expect(span(r.segments[1]!), model).toBe(question);
      // The simulated provider counts the same.
      expect(simulated(model, r.body), model).toBe(r.total);
    }
  });

  it('a mark on the tool, tool_choice any and a custom tool beside it: the figure stays the figure', async () => {
    const { client } = t.tenant();
    const custom = { name: 'get_weather', description: 'Weather of a city.', input_schema: { type: 'object', properties: { city: { type: 'string' } } } };
    const question = span((await render(client, { model: 'claude-sonnet-4-6' })).segments[0]!);
    const r = await render(client, { model: 'claude-sonnet-4-6', tools: [custom, { ...BASH, cache_control: { type: 'ephemeral' } }], tool_choice: { type: 'any' } });
    expect(span(r.segments[0]!)).toBe(asJson(custom) + 244 + 497);
    // What any adds to auto (589 - 497) counts with the first message, as for any tool.
    expect(span(r.segments[1]!)).toBe(question + 92);
    expect(simulated('claude-sonnet-4-6', r.body)).toBe(r.total);
  });

  it('a tool version or model without a documented figure is counted as its JSON, as before', async () => {
    const { client } = t.tenant();
    for (const [model, tool] of [
      // The pricing tables name text_editor_20250429 (Claude 4.x) only, not the later 20250728.
      ['claude-sonnet-4-6', { type: 'text_editor_20250728', name: 'str_replace_based_edit_tool', max_characters: 10000 }],
      ['claude-sonnet-4-6', { type: 'memory_20250818', name: 'memory' }],
      ['claude-sonnet-4-6', { type: 'web_search_20250305', name: 'web_search', max_uses: 5 }],
      ['claude-sonnet-4-6', { type: 'web_fetch_20250910', name: 'web_fetch' }],
      ['claude-sonnet-4-6', { type: 'code_execution_20250825', name: 'code_execution' }],
      // Claude Fable 5 is in no table: not even its tool-use system prompt is modelled.
      ['claude-fable-5', BASH],
      // The text editor's and computer use's figures are Claude 4.x's, not Opus 5's.
      ['claude-opus-5', EDITOR],
    ] as const) {
      const r = await render(client, { model, tools: [tool] });
      const systemPrompt = catalog.lookup(model, 'anthropic').entry.toolUseSystemPrompt?.auto ?? 0;
      expect(span(r.segments[0]!), `${model} ${tool.type}`).toBe(asJson(tool) + systemPrompt);
      expect(simulated(model, r.body), `${model} ${tool.type}`).toBe(r.total);
    }
  });

  it("reconciled against the provider's total, the system handle beside the bash tool keeps its own span", async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG_SYSTEM);
    const r = await render(client, { model: 'claude-sonnet-4-6', tools: [BASH], prefix: [sys.id] });
    expect(r.segments.map((s) => s.source)).toEqual(['inline', `${sys.id}@1`, 'inline']);
    const own = span(r.segments[1]!);
    // What Anthropic bills: the request without tools, and the bash tool's 244 with the tool-use system prompt's 497.
    const bare = await render(client, { model: 'claude-sonnet-4-6', prefix: [sys.id] });
    const billed = bare.total + 244 + 497;
    expect(r.total).toBe(billed);
    expect(simulated('claude-sonnet-4-6', r.body)).toBe(billed);
    const { outcome } = await report(client, t, { request_id: r.json.request_id } as never, {
      input_tokens: billed,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      output_tokens: 5,
    });
    const seg = outcome.segments.find((s) => s.source === `${sys.id}@1`)!;
    expect(seg.end - seg.start).toBe(own);
    // Counted as its JSON, the bash tool was 225 tokens short: the provider's total, scaled over the spans, made the
    // handle longer than it is.
    expect(244 - asJson(BASH)).toBeGreaterThan(200);
    const spans = outcome.segments.map((s) => s.end - s.start);
    expect(spans.reduce((a, b) => a + b, 0)).toBe(billed);
  });
});

describe('a tools handle holding Anthropic-defined tools', () => {
  const CUSTOM = { name: 'get_weather', description: 'Weather of a city.', input_schema: { type: 'object', properties: { city: { type: 'string' } } } };

  it("is minted and expanded as stored for Anthropic, and its report counts the model's figure on its segment", async () => {
    const { client } = t.tenant();
    const tools = await mintArtifact(client, 'tools', [BASH, CUSTOM]);
    // Stored canonical (RFC 8785): the defined tool's keys sorted, as any JSON content.
    const expanded = await client.get(`/v1/handles/${tools.id}/expand?format=anthropic`);
    expect(expanded.status).toBe(200);
    expect(expanded.text.startsWith('{"tools":[{"name":"bash","type":"bash_20250124"},{"name":"get_weather",')).toBe(true);
    // meta.tokens are per tokenizer family, not per model: the defined tool as its JSON there (the figure is the model's).
    const meta = (await client.get(`/v1/handles/${tools.id}`)).json.version.meta;
    expect(meta.tokens.anthropic).toBe(asJson(BASH) + asJson(CUSTOM));

    const r = await render(client, { model: 'claude-sonnet-4-6', prefix: [tools.id] });
    expect(r.segments[0]!.source).toBe(`${tools.id}@1`);
    expect(span(r.segments[0]!)).toBe(244 + asJson(CUSTOM) + 497);
    expect(simulated('claude-sonnet-4-6', r.body)).toBe(r.total);
    // The same tools inline: the same estimate.
    const inline = await render(client, { model: 'claude-sonnet-4-6', tools: [BASH, CUSTOM] });
    expect(inline.total).toBe(r.total);

    await report(client, t, { request_id: r.json.request_id } as never, { input_tokens: r.total, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 5 });
    const rep = (await client.get(`/v1/reports/handles/${tools.id}`)).json;
    expect(rep.tokens.referenced).toBe(244 + asJson(CUSTOM) + 497);
    expect(rep.tokens.cold).toBe(244 + asJson(CUSTOM) + 497);
    // On Opus 4.8 the bash tool is 325 (and its tool-use prompt 290); in a bundle too.
    const bundle = await mintBundle(client, [tools.id]);
    const opus = await render(client, { model: 'claude-opus-4-8', prefix: [bundle.id] });
    expect(span(opus.segments[0]!)).toBe(325 + asJson(CUSTOM) + 290);
  });

  it('is refused (422) where another API would be sent it, and is validated as a tool version with a name', async () => {
    const { client } = t.tenant();
    const tools = await mintArtifact(client, 'tools', [CUSTOM, EDITOR]);
    for (const format of ['openai-chat', 'openai-responses', 'gemini']) {
      const expanded = await client.get(`/v1/handles/${tools.id}/expand?format=${format}`);
      expect(expanded.status, format).toBe(422);
      expect(expanded.headers.get('content-type')).toContain('application/problem+json');
      expect(expanded.json.code).toBe('invalid_request');
      expect(expanded.json.detail).toContain('text_editor_20250429');
    }
    const res = await client.post('/v1/render', { format: 'openai-chat', request: { model: 'gpt-4.1', prefix: [tools.id], messages: [{ role: 'user', content: 'hi' }] } });
    expect(res.status).toBe(422);
    expect(res.json.errors[0].pointer).toBe('/request/prefix/0');
    const before = (await client.get('/v1/requests')).json;

    const bad = await client.post('/v1/artifacts', {
      kind: 'tools',
      content: [{ ...BASH, cache_control: { type: 'ephemeral' } }, { type: 'function', name: 'f', input_schema: {} }, { type: 'bash_20250124' }, { name: 'bad name', input_schema: {} }],
    });
    expect(bad.status).toBe(422);
    expect(bad.json.errors.map((e: { pointer: string }) => e.pointer)).toEqual(['/content/0/cache_control', '/content/1/type', '/content/2/name', '/content/3/name']);
    // Nothing was recorded by the refused render.
    expect((await client.get('/v1/requests')).json).toEqual(before);
  });
});

describe('an Anthropic-defined tool version the catalog has no figure for', () => {
  const FUTURE = { type: 'bash_20990101', name: 'bash' };
  const LATER_EDITOR = { type: 'text_editor_20250728', name: 'str_replace_based_edit_tool' };
  const CUSTOM = { name: 'get_weather', input_schema: { type: 'object' } };
  const warned = (model: string, t: { type: string; name: string }, segment: number | null) => ({
    code: 'tool_tokens_estimated',
    segment,
    kind: 'tool',
    text: t.type,
    detail: `the catalog has no token figure for the Anthropic-defined tool "${t.name}" (${t.type}) ${model === '' ? 'on any model' : `on ${model}`}: it is sent as given, and its tokens are estimated from its JSON (the API adds its own definition, often hundreds of tokens); a measured figure goes in PH_CATALOG_FILE as the model's definedToolTokens`,
  });

  it('renders, counted as its JSON, with a warning naming the tool and its segment; a known version or a custom tool has none', async () => {
    const { client } = t.tenant();
    const r = await render(client, { model: 'claude-sonnet-4-6', tools: [CUSTOM, FUTURE, COMPUTER, LATER_EDITOR] });
    expect(r.json.body.tools).toEqual([CUSTOM, FUTURE, COMPUTER, LATER_EDITOR]);
    expect(span(r.segments[0]!)).toBe(asJson(CUSTOM) + asJson(FUTURE) + 1201 + asJson(LATER_EDITOR) + 497);
    expect(r.json.warnings).toEqual([warned('claude-sonnet-4-6', FUTURE, 0), warned('claude-sonnet-4-6', LATER_EDITOR, 0)]);
    // Known on one model, not on another: the text editor's 20250429 is Claude 4.x's, not Opus 5's.
    expect((await render(client, { model: 'claude-sonnet-4-6', tools: [EDITOR] })).json.warnings).toEqual([]);
    expect((await render(client, { model: 'claude-opus-5', tools: [EDITOR] })).json.warnings).toEqual([warned('claude-opus-5', EDITOR, 0)]);
    // From a tools handle, after a system handle: its own segment is named.
    const sys = await mintSystem(client, 'You run commands.');
    const tools = await mintArtifact(client, 'tools', [FUTURE]);
    const viaHandle = await render(client, { model: 'claude-sonnet-4-6', system: [{ type: 'handle', ref: sys.id }], tools: [COMPUTER, { type: 'handle', ref: tools.id }] });
    expect(viaHandle.segments.map((s) => s.source)).toEqual(['inline', `${tools.id}@1`, `${sys.id}@1`, 'inline']);
    expect(viaHandle.json.warnings).toEqual([warned('claude-sonnet-4-6', FUTURE, 1)]);
  });

  it('mints with the warning (no model has a figure for it); a version some model has a figure for mints without one', async () => {
    const { client } = t.tenant();
    const minted = await client.post('/v1/artifacts', { kind: 'tools', content: [CUSTOM, FUTURE, COMPUTER] });
    expect(minted.status, minted.text).toBe(201);
    expect(minted.json.warnings).toEqual([warned('', FUTURE, null)]);
    const known = await client.post('/v1/artifacts', { kind: 'tools', content: [BASH, EDITOR] });
    expect([known.status, 'warnings' in known.json]).toEqual([201, false]);
    // Its next version, and the same content again (the latest returned): said again, as the content still holds it.
    const next = await client.post(`/v1/artifacts/${known.json.id}/versions`, { content: [BASH, LATER_EDITOR] });
    expect([next.status, next.json.warnings]).toEqual([201, [warned('', LATER_EDITOR, null)]]);
    const same = await client.post(`/v1/artifacts/${known.json.id}/versions`, { content: [BASH, LATER_EDITOR] });
    expect([same.status, same.json.warnings]).toEqual([200, [warned('', LATER_EDITOR, null)]]);
  });
});
