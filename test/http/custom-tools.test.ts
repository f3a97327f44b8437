// Anthropic's Messages API takes a user-defined tool with an explicit `"type": "custom"` beside the untyped form
// (the SDK's `Tool.type?: 'custom' | null`). It is the same tool: accepted inline and in a tools artifact, counted as
// an untyped one, and sent as given.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../helpers/app';
import { mintArtifact } from '../helpers/factories';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

const UNTYPED = { name: 'get_weather', description: 'Weather of a city.', input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
const CUSTOM = { type: 'custom', ...UNTYPED };
const QUESTION = [{ role: 'user', content: 'Weather in Oslo?' }];

type Segment = { source: string; section: string; token_start: number; token_end: number };
const span = (s: Segment) => s.token_end - s.token_start;

describe('a "type": "custom" tool', () => {
  it('inline: rendered byte for byte as sent, counted as the untyped tool, with no warning', async () => {
    const { client } = t.tenant();
    for (const model of ['claude-sonnet-4-6', 'claude-opus-4-8']) {
      const text = `{"format":"anthropic","request":{"model":"${model}","max_tokens":64,"tools":[ {"type" : "custom","name":"get_weather","description":"Weather of a city.","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}} ],"messages":${JSON.stringify(QUESTION)}}}`;
      const typed = await client.post('/v1/render', JSON.parse(text));
      const untyped = await client.post('/v1/render', { format: 'anthropic', request: { model, max_tokens: 64, tools: [UNTYPED], messages: QUESTION } });
      expect([typed.status, untyped.status], typed.text).toEqual([200, 200]);
      expect(typed.json.body.tools).toEqual([CUSTOM]);
      expect(typed.json.segments.map(span)).toEqual(untyped.json.segments.map(span));
      expect(typed.json.warnings).toEqual([]);
    }
  });

  it('in a tools artifact: minted, expanded for Anthropic with its type, as the untyped tool elsewhere, and counted alike', async () => {
    const { client } = t.tenant();
    const typed = await mintArtifact(client, 'tools', [CUSTOM]);
    const untyped = await mintArtifact(client, 'tools', [UNTYPED]);
    const meta = async (id: string) => (await client.get(`/v1/handles/${id}`)).json.version.meta;
    expect((await meta(typed.id)).tokens).toEqual((await meta(untyped.id)).tokens);
    const expand = async (id: string, format: string) => {
      const res = await client.get(`/v1/handles/${id}/expand?format=${format}`);
      expect(res.status, res.text).toBe(200);
      return res.text;
    };
    // Anthropic and neutral: the tool as given, its type first, then the untyped tool's fields in their order.
    expect(await expand(typed.id, 'anthropic')).toBe((await expand(untyped.id, 'anthropic')).replace('{"name":"get_weather"', '{"type":"custom","name":"get_weather"'));
    expect(await expand(typed.id, 'neutral')).toBe((await expand(untyped.id, 'neutral')).replace('{"name":"get_weather"', '{"type":"custom","name":"get_weather"'));
    // Other APIs have no such mark (OpenAI's own "custom" tools are free-form, not schema'd): the same function.
    for (const format of ['openai-chat', 'openai-responses', 'gemini']) expect(await expand(typed.id, format), format).toBe(await expand(untyped.id, format));

    const render = (id: string) => client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-6', max_tokens: 64, prefix: [id], messages: QUESTION } });
    const [a, b] = [await render(typed.id), await render(untyped.id)];
    expect([a.status, b.status], a.text).toEqual([200, 200]);
    expect(a.json.body.tools).toEqual([CUSTOM]);
    expect(a.json.segments.map(span)).toEqual(b.json.segments.map(span));
    expect(a.json.warnings).toEqual([]);
    // A new version that only adds the type is a new version (its bytes differ), and the same one again is that version.
    const again = await client.post(`/v1/artifacts/${untyped.id}/versions`, { content: [CUSTOM] });
    expect([again.status, again.json.version]).toEqual([201, 2]);
    expect((await client.post(`/v1/artifacts/${untyped.id}/versions`, { content: [CUSTOM] })).status).toBe(200);
  });

  it('another type is still refused naming it; a custom tool keeps the rules of one (a schema, a name)', async () => {
    const { client } = t.tenant();
    const bad = await client.post('/v1/artifacts', {
      kind: 'tools',
      content: [{ ...UNTYPED, type: 'Custom' }, { type: 'custom', name: 'no_schema' }, { type: 'custom', name: 'x y', input_schema: {} }],
    });
    expect(bad.status).toBe(422);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    expect(bad.json.errors.map((e: { pointer: string }) => e.pointer)).toEqual(['/content/0/type', '/content/1/input_schema', '/content/2/name']);
    expect((await client.get('/v1/handles?kind=tools')).json.handles).toEqual([]);
  });
});
