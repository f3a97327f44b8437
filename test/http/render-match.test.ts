import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type Client, type TestApp } from '../helpers/app';
import { mintArtifact, mintSystem } from '../helpers/factories';

// POST /v1/render with match_handles: the caller's own tools and system prompt recorded as the artifact versions they
// are, only where that version rendered in the format is the same prompt; the body comes back as sent.

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const LONG = 'Answer carefully and cite the handbook. '.repeat(300);
const TOOL = { name: 'get_weather', description: 'Weather for a city', input_schema: { properties: { city: { type: 'string' } }, required: ['city'], type: 'object' } };

interface Matched {
  status: number;
  text: string;
  json: { matched?: Array<{ segment: number; source: string; pointer: string }>; segments: Array<{ source: string }>; breakpoints: Array<{ set_by: string }>; prompt_cache_key: string | null };
}

async function render(client: Client, format: string, request: string | object, extra = ',"match_handles":true'): Promise<Matched> {
  const raw = typeof request === 'string' ? request : JSON.stringify(request);
  return client.post('/v1/render', `{"format":${JSON.stringify(format)},"request":${raw}${extra}}`) as Promise<Matched>;
}

/** The body text inside a render response, exactly as the service returned it. */
const bodyText = (responseText: string) => responseText.slice(responseText.indexOf('"body":') + 7, responseText.indexOf(',"segments":'));

describe('POST /v1/render match_handles', () => {
  it("Anthropic: a string system prompt and a defined tool matched; the body's bytes come back as sent, its spacing too", async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG);
    const tools = await mintArtifact(client, 'tools', [TOOL, { type: 'bash_20250124', name: 'bash' }]);
    const raw = `{ "model": "claude-sonnet-4-6", "max_tokens": 64,\n  "tools": [${JSON.stringify(TOOL)}, {"name": "bash", "type": "bash_20250124"}],\n  "system": ${JSON.stringify(LONG)},\n  "messages": [{"role": "user", "content": "hi"}] }`;
    const res = await render(client, 'anthropic', raw);
    expect(res.status, res.text).toBe(200);
    expect(bodyText(res.text)).toBe(raw);
    expect(res.json.matched).toEqual([
      { segment: 0, source: tools.ref, pointer: '/request/tools' },
      { segment: 1, source: sys.ref, pointer: '/request/system' },
    ]);
    // No mark of the service's on the caller's content: the provider got none.
    expect(res.json.breakpoints).toEqual([]);
    // Without the option: no "matched", nothing matched.
    const plain = await render(client, 'anthropic', raw, '');
    expect(plain.json.matched).toBeUndefined();
    expect(plain.json.segments.map((s) => s.source)).toEqual(['inline', 'inline', 'inline']);
  });

  it('Anthropic: each system block on its own; a block with a field the artifact renders without is another prompt; the oldest live version of equal content wins', async () => {
    const { client } = t.tenant();
    const first = await mintSystem(client, LONG);
    t.clock.advance(1000);
    const second = await mintSystem(client, LONG);
    const other = await mintSystem(client, `${LONG} Other.`);
    const request = (blocks: object[]) => ({ model: 'claude-sonnet-4-6', max_tokens: 64, system: blocks, messages: [{ role: 'user', content: 'hi' }] });
    const res = await render(client, 'anthropic', request([{ type: 'text', text: 'Today is 2026-12-04.' }, { type: 'text', text: LONG }, { type: 'text', text: `${LONG} Other.`, cache_control: { type: 'ephemeral' } }]));
    expect(res.json.matched).toEqual([
      { segment: 1, source: first.ref, pointer: '/request/system/1' },
      { segment: 2, source: other.ref, pointer: '/request/system/2' },
    ]);
    expect(res.json.segments.map((s) => s.source)).toEqual(['inline', first.ref, other.ref, 'inline']);
    // The caller's mark stays the only one (the service places none on matched content).
    expect(res.json.breakpoints.map((b) => b.set_by)).toEqual(['caller']);
    const cited = await render(client, 'anthropic', request([{ type: 'text', text: LONG, citations: { enabled: true } }]));
    expect(cited.json.matched).toEqual([]);
    // The oldest deleted: the next one holding the same content.
    expect((await client.delete(`/v1/handles/${first.id}`)).status).toBe(204);
    expect((await render(client, 'anthropic', request([{ type: 'text', text: LONG }]))).json.matched).toEqual([{ segment: 0, source: second.ref, pointer: '/request/system/0' }]);
    // Another tenant's artifact is never matched.
    const stranger = t.tenant();
    expect((await render(stranger.client, 'anthropic', request([{ type: 'text', text: LONG }]))).json.matched).toEqual([]);
  });

  it('OpenAI Responses: a leading system item and strict: false tools matched; instructions and strict tools are another prompt', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG);
    const tools = await mintArtifact(client, 'tools', [TOOL]);
    const fn = (strict?: boolean) => ({ type: 'function', name: TOOL.name, description: TOOL.description, parameters: TOOL.input_schema, ...(strict === undefined ? {} : { strict }) });
    const res = await render(client, 'openai-responses', { model: 'gpt-4.1', tools: [fn(false)], input: [{ role: 'system', content: LONG }, { role: 'user', content: 'hi' }] });
    expect(res.json.matched).toEqual([
      { segment: 0, source: tools.ref, pointer: '/request/tools' },
      { segment: 1, source: sys.ref, pointer: '/request/input/0' },
    ]);
    expect(res.json.prompt_cache_key).toBeNull();
    // A system artifact renders as a system input item, never as instructions; the Responses API reads a tool without
    // strict as strict, which the artifact renders false.
    const other = await render(client, 'openai-responses', { model: 'gpt-4.1', tools: [fn()], instructions: LONG, input: 'hi' });
    expect(other.json.matched).toEqual([]);
  });

  it('Gemini: system parts matched; tools (one unit inline, one per declaration from a handle) are not', async () => {
    const { client } = t.tenant();
    const sys = await mintSystem(client, LONG);
    await mintArtifact(client, 'tools', [TOOL]);
    const decl = { name: TOOL.name, description: TOOL.description, parametersJsonSchema: TOOL.input_schema };
    const res = await render(client, 'gemini', { tools: [{ functionDeclarations: [decl] }], systemInstruction: { parts: [{ text: LONG }] }, contents: [{ role: 'user', parts: [{ text: 'hi' }] }] }, ',"model":"gemini-2.5-flash","match_handles":true');
    expect(res.status, res.text).toBe(200);
    expect(res.json.matched).toEqual([{ segment: 1, source: sys.ref, pointer: '/request/systemInstruction/parts/0' }]);
  });

  it('beside handles in the body: theirs are rendered and marked as ever, the matched content left as sent', async () => {
    const { client } = t.tenant();
    const tools = await mintArtifact(client, 'tools', [TOOL]);
    const sys = await mintSystem(client, LONG);
    const res = await render(client, 'anthropic', { model: 'claude-sonnet-4-6', max_tokens: 64, prefix: [sys.id], tools: [TOOL], messages: [{ role: 'user', content: 'hi' }] });
    expect(res.json.matched).toEqual([{ segment: 0, source: tools.ref, pointer: '/request/tools' }]);
    expect(res.json.segments.map((s) => s.source)).toEqual([tools.ref, sys.ref, 'inline']);
    // The service's mark on its own handle, as without the option; the caller's tools as sent.
    expect(res.json.breakpoints).toEqual([expect.objectContaining({ segment: 1, source: sys.ref, set_by: 'service' })]);
    expect(res.text).toContain(`"tools":[${JSON.stringify(TOOL)}]`);
  });

  it('refuses a match_handles that is not a boolean, naming it, recording nothing', async () => {
    const { client } = t.tenant();
    const res = await render(client, 'anthropic', { model: 'claude-sonnet-4-6', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] }, ',"match_handles":"yes"');
    expect(res.status).toBe(422);
    expect(res.json).toMatchObject({ code: 'invalid_request', errors: [expect.objectContaining({ pointer: '/match_handles' })] });
    expect(t.sqlite.prepare('select count(*) from requests').pluck().get()).toBe(0);
  });
});
