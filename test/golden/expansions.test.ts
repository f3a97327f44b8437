import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createTestApp, type Client, type TestApp } from '../helpers/app';
import { expansionFormats } from '../../src/domain/render/prompt';
import { RENDERER_VERSION } from '../../src/domain/render/formats';
import { corpus } from './corpus';

// Run with UPDATE_GOLDEN=1 only together with a RENDERER_VERSION bump.
const FILE = new URL('./expansions.json', import.meta.url);

let t: TestApp;
let client: Client;
const refs: Record<string, string> = {};

beforeAll(async () => {
  t = createTestApp();
  client = t.tenant().client;
  const mint = async (kind: string, content: unknown) => (await client.post('/v1/artifacts', { kind, content })).json.id as string;
  refs.tools = await mint('tools', corpus.tools);
  refs.system = await mint('system', corpus.system);
  refs.document = await mint('document', corpus.document);
  refs.messages = await mint('messages', corpus.messages);
  const inner = (await client.post('/v1/bundles', { members: [refs.document, refs.system] })).json.id;
  refs.bundle = (await client.post('/v1/bundles', { members: [refs.messages, inner, refs.tools] })).json.id;
  const [first, ...rest] = corpus.sessionBatches;
  const ses = (await client.post('/v1/sessions', { base: refs.bundle, messages: first })).json.id;
  for (const batch of rest) await client.post(`/v1/sessions/${ses}/messages`, { messages: batch });
  refs['session@1'] = `${ses}@1`;
  refs.session = ses;
});
afterAll(() => t.close());

// Caller fields the service does not know, in an order and spelling JSON.parse would not keep.
const CALLER_EXTRAS = '"x_unknown":{"z":1.50,"a":"\\u00e9","10":[1e2]},"temperature":  0.0';

function requestFor(format: string): string {
  const prefix = JSON.stringify([refs.bundle]);
  switch (format) {
    case 'anthropic':
      return `{"model":"claude-sonnet-4-5","max_tokens":512,"prefix":${prefix},${CALLER_EXTRAS},"system":"Inline system","messages":[{"role":"user","content":"Hello"}]}`;
    case 'openai-chat':
      return `{"model":"gpt-4o","prompt_cache_key":"golden","prefix":${prefix},${CALLER_EXTRAS},"messages":[{"role":"user","content":"Hello"}]}`;
    case 'openai-responses':
      return `{"model":"gpt-4.1","prompt_cache_key":"golden","prefix":${prefix},${CALLER_EXTRAS},"input":"Hello"}`;
    default:
      return `{"prefix":${prefix},${CALLER_EXTRAS},"contents":[{"role":"user","parts":[{"text":"Hello"}]}]}`;
  }
}

async function renderDigests() {
  const out: Record<string, string> = {};
  for (const format of ['anthropic', 'openai-chat', 'openai-responses', 'gemini']) {
    const model = format === 'gemini' ? ',"model":"gemini-2.5-flash"' : '';
    const res = await client.post('/v1/render', `{"format":"${format}"${model},"request":${requestFor(format)}}`);
    expect(res.status, res.text).toBe(200);
    const body = res.text.slice(res.text.indexOf('"body":') + 7, res.text.indexOf(',"segments":'));
    expect(body, format).toContain(CALLER_EXTRAS);
    out[format] = createHash('sha256').update(body).digest('hex');
  }
  return out;
}

async function digests() {
  const out: Record<string, Record<string, string>> = {};
  for (const [name, ref] of Object.entries(refs)) {
    out[name] = {};
    for (const format of expansionFormats) {
      const res = await client.get(`/v1/handles/${ref}/expand?format=${format}`);
      expect(res.status).toBe(200);
      out[name][format] = createHash('sha256').update(res.text).digest('hex');
    }
  }
  return { renderer: RENDERER_VERSION, digests: out, requests: await renderDigests() };
}

describe('golden expansions', () => {
  it('match the pinned digests in every format', async () => {
    const actual = await digests();
    if (process.env.UPDATE_GOLDEN === '1' || !existsSync(FILE)) {
      if (process.env.CI) throw new Error('expansions.json is missing: golden digests must be committed');
      writeFileSync(FILE, `${JSON.stringify(actual, null, 2)}\n`);
    }
    const pinned = JSON.parse(readFileSync(FILE, 'utf8'));
    expect(actual).toEqual(pinned);
  });

  it('render the pinned corpus to the exact expected anthropic bytes for one artifact', async () => {
    const res = await client.get(`/v1/handles/${refs.system}/expand?format=anthropic`);
    expect(res.text).toBe(`{"system":[{"type":"text","text":${JSON.stringify(corpus.system)}}],"messages":[]}`);
  });

  it('answers Gemini tool results by the function name of the earlier call', async () => {
    const res = await client.get(`/v1/handles/${refs.messages}/expand?format=gemini`);
    expect(res.text).toContain('{"functionResponse":{"name":"get_weather","response":{"content":"12°C, cloudy"}}}');
    expect(res.text).toContain('{"functionResponse":{"name":"search_docs"');
  });

  it('puts type first in Anthropic blocks and keeps tool input canonical', async () => {
    const res = await client.get(`/v1/handles/${refs.messages}/expand?format=anthropic`);
    expect(res.text).toContain('{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Zürich","days":2}}');
    expect(res.text).toContain('{"type":"tool_result","tool_use_id":"toolu_02","content":"no results","is_error":true}');
  });
});
