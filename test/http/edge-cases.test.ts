import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_KEY, clientFor, createTestApp, type TestApp } from '../helpers/app';
import { mintArtifact, mintBundle, mintSystem, startSession } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM } from '../helpers/scenario';
import { FakeClock } from '../helpers/clock';
import { SqliteStore } from '../../src/store/sqlite-store';

// Edge cases found in review: each once answered 5xx, wrote invalid JSON, or miscounted.

let t: TestApp;
afterEach(() => t?.close());

const render = (me: ReturnType<TestApp['tenant']>, request: object, format = 'anthropic', extra: object = {}) =>
  me.client.post('/v1/render', { format, request, ...extra });

describe('rendering edge cases', () => {
  it('an empty session in place of a message, next to a prefix, still gives valid JSON', async () => {
    t = createTestApp();
    const me = t.tenant();
    const doc = await mintArtifact(me.client, 'document', 'doc');
    const empty = await startSession(me.client);
    const one = await render(me, { model: 'claude-sonnet-4-5', prefix: [doc.id], messages: [{ type: 'handle', ref: empty.id }, { role: 'user', content: 'hi' }] });
    expect(one.status, one.text).toBe(200);
    const two = await render(me, { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'hi' }, { type: 'handle', ref: empty.id }, { type: 'handle', ref: empty.id }] });
    expect(two.status, two.text).toBe(200);
    const body = (text: string) => JSON.parse(text.slice(text.indexOf('"body":') + 7, text.indexOf(',"segments":')));
    expect(body(one.text).messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'doc' }] }, { role: 'user', content: 'hi' }]);
    expect(body(two.text).messages).toEqual([{ role: 'user', content: 'hi' }]);
  });

  it('a system prompt handle standing as a chat message: the 422 names the system-message form that keeps its place, which renders', async () => {
    t = createTestApp();
    const me = t.tenant();
    const sys = await mintSystem(me.client, 'You are terse.');
    const bare = await render(me, { model: 'gpt-4.1', messages: [{ role: 'user', content: 'a' }, { type: 'handle', ref: sys.id }, { role: 'user', content: 'b' }] }, 'openai-chat');
    expect(bare.status).toBe(422);
    expect(bare.json.errors[0]).toEqual({ pointer: '/request/messages/1', detail: expect.stringContaining(`keep its place in a system message: {"role":"system","content":[{"type":"handle","ref":"${sys.id}"}]}`) });
    const wrapped = await render(me, { model: 'gpt-4.1', messages: [{ role: 'user', content: 'a' }, { role: 'system', content: [{ type: 'handle', ref: sys.id }] }, { role: 'user', content: 'b' }] }, 'openai-chat');
    expect(wrapped.status, wrapped.text).toBe(200);
  });

  it('prompt_cache_key is added for OpenAI models only, never for a self-hosted server', async () => {
    t = createTestApp();
    const me = t.tenant();
    const sys = await mintSystem(me.client, 'You are terse.');
    const body = async (model: string) => {
      const res = await render(me, { model, prefix: [sys.id], messages: [{ role: 'user', content: 'a' }] }, 'openai-chat');
      expect(res.status, res.text).toBe(200);
      return JSON.parse(res.text.slice(res.text.indexOf('"body":') + 7, res.text.indexOf(',"segments":'))) as Record<string, unknown>;
    };
    expect((await body('gpt-4.1')).prompt_cache_key).toBe(`ph-${sys.id}`);
    for (const model of ['vllm/x', 'Qwen/Qwen2.5-7B-Instruct', 'openai/gpt-oss-20b']) expect(await body(model), model).not.toHaveProperty('prompt_cache_key');
  });

  it('a Gemini content without a role may hold a handle block', async () => {
    t = createTestApp();
    const me = t.tenant();
    const doc = await mintArtifact(me.client, 'document', 'doc');
    const res = await render(me, { contents: [{ parts: [{ text: 'Summarise' }, { type: 'handle', ref: doc.id }] }] }, 'gemini', { model: 'gemini-2.5-flash' });
    expect(res.status, res.text).toBe(200);
  });

  it('Gemini system_instruction is the system node, not a second one', async () => {
    t = createTestApp();
    const me = t.tenant();
    const sys = await mintSystem(me.client, 'stable');
    const res = await render(me, { prefix: [sys.id], system_instruction: { parts: [{ text: 'mine' }] }, contents: [{ role: 'user', parts: [{ text: 'x' }] }] }, 'gemini', { model: 'gemini-2.5-flash' });
    const body = res.text.slice(res.text.indexOf('"body":') + 7, res.text.indexOf(',"segments":'));
    expect(JSON.parse(body)).toMatchObject({ system_instruction: { parts: [{ text: 'stable' }, { text: 'mine' }] } });
    expect(body).not.toContain('systemInstruction');
  });

  it('malformed JSON on /v1/render is 400 malformed_json', async () => {
    t = createTestApp();
    const res = await t.tenant().client.post('/v1/render', '{"format":');
    expect(res.status).toBe(400);
    expect(res.json.code).toBe('malformed_json');
  });

  it('a member name twice in one object is a 422 at the second one: edited, the other would stay behind', async () => {
    t = createTestApp();
    const me = t.tenant();
    const sys = await mintSystem(me.client, LONG_SYSTEM);
    const twice = await me.client.post('/v1/render', `{"format":"anthropic","request":{"model":"claude-sonnet-4-5","max_tokens":5,"prefix":["${sys.id}"],"prefix":[],"messages":[{"role":"user","content":"hi"}]}}`);
    expect(twice.status, twice.text).toBe(422);
    expect(twice.json.errors).toEqual([{ pointer: '/request/prefix', detail: expect.stringContaining('"prefix" appears twice') }]);
    const deep = await me.client.post('/v1/render', `{"format":"anthropic","request":{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"a"},{"role":"user","content":"b","content":"c"}]}}`);
    expect(deep.json.errors[0].pointer).toBe('/request/messages/1/content');
    // Twelve members, one repeated at the end (the larger objects are checked another way), and nothing recorded.
    const many = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, i]));
    const wide = await me.client.post('/v1/render', `{"format":"anthropic","request":{"model":"claude-sonnet-4-5","max_tokens":5,"metadata":${JSON.stringify(many).slice(0, -1)},"k3":0},"messages":[{"role":"user","content":"a"}]}}`);
    expect(wide.json.errors[0].pointer).toBe('/request/metadata/k3');
    expect((await me.client.get('/v1/requests')).json.requests).toEqual([]);
  });

  it('a model that is not a string is named as such, not as missing', async () => {
    t = createTestApp();
    const res = await t.tenant().client.post('/v1/render', { format: 'anthropic', request: { model: 5, max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] } });
    expect(res.status).toBe(422);
    expect(res.json.errors).toEqual([{ pointer: '/request/model', detail: 'must be a string (the model name)' }]);
  });

  it('breakpoints the service adds never put a 1h entry after a 5m one', async () => {
    t = createTestApp({ config: { cacheTtl: '1h' } });
    const me = t.tenant();
    const doc = await mintArtifact(me.client, 'document', LONG_SYSTEM);
    const res = await render(me, { model: 'claude-sonnet-4-5', system: [{ type: 'text', text: 'x', cache_control: { type: 'ephemeral' } }], prefix: [doc.id], messages: [{ role: 'user', content: 'q' }] });
    expect(res.status).toBe(200);
    expect(res.text).not.toContain('"ttl":"1h"');
    expect(res.json.breakpoints.find((b: { set_by: string }) => b.set_by === 'caller').ttl).toBe('5m');
  });

  it("a top-level 1h cache_control (automatic caching) makes the service's marks 1h, and is listed as the caller's mark on the last segment", async () => {
    t = createTestApp();
    const me = t.tenant();
    const sys = await mintSystem(me.client, LONG_SYSTEM);
    const res = await render(me, { model: 'claude-sonnet-4-5', max_tokens: 16, cache_control: { type: 'ephemeral', ttl: '1h' }, prefix: [sys.id], messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status, res.text).toBe(200);
    expect(res.text).not.toMatch(/"cache_control":\{"type":"ephemeral"\}/);
    const last = res.json.segments.length - 1;
    expect(res.json.breakpoints.map((b: { segment: number; ttl: string; set_by: string }) => [b.segment, b.ttl, b.set_by])).toEqual([
      [0, '1h', 'service'],
      [last, '1h', 'caller'],
    ]);
    // The provider simulator, as Anthropic, takes the body: no 1h mark after a 5m one.
    const body = JSON.parse(res.text.slice(res.text.indexOf('"body":') + 7, res.text.indexOf(',"segments":')));
    const ttls = JSON.stringify(body).match(/"cache_control":\{[^}]*\}/g)!;
    expect(ttls.every((m) => m.includes('"ttl":"1h"'))).toBe(true);
    // A top-level null is no mark, as the provider reads it.
    const none = await render(me, { model: 'claude-sonnet-4-5', max_tokens: 16, cache_control: null, prefix: [sys.id], messages: [{ role: 'user', content: 'hi' }] });
    expect(none.json.breakpoints.map((b: { set_by: string }) => b.set_by)).toEqual(['service']);
  });
});

describe('handle edge cases', () => {
  it('a member named __proto__ (spelt out or escaped) is a 422 naming it on every route, never dropped from what is stored', async () => {
    t = createTestApp();
    const me = t.tenant();
    const { client } = me;
    const r = (await render(me, { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'a' }] })).json;
    for (const [path, body, pointer] of [
      ['/v1/artifacts', '{"kind":"tools","content":[{"name":"f","input_schema":{"type":"object","__proto__":{"a":1}}}]}', '/content/0/input_schema/__proto__'],
      ['/v1/artifacts', '{"kind":"tools","content":[{"name":"f","input_schema":{"type":"object","\\u005f_proto__":{"a":1}}}]}', '/content/0/input_schema/__proto__'],
      ['/v1/sessions', '{"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"f","input":{"__proto__":{"x":1},"a":2}}]}]}', '/messages/0/content/0/input/__proto__'],
      ['/v1/usage', `{"request_id":"${r.request_id}","usage":{"input_tokens":5,"output_tokens":1,"__proto__":{"x":1}}}`, '/usage/__proto__'],
    ] as const) {
      const bad = await client.post(path, body);
      expect(bad.status, `${path} ${bad.text}`).toBe(422);
      expect(bad.json.errors, path).toEqual([{ pointer, detail: expect.stringContaining('"__proto__" cannot be stored') }]);
    }
    expect(t.sqlite.prepare('select count(*) as n from handles').get()).toEqual({ n: 0 });
    // Escapes elsewhere are nothing to refuse.
    expect((await client.post('/v1/artifacts', '{"kind":"system","content":"caf\\u00e9"}')).status).toBe(201);
    // A rendered body goes on byte for byte, nothing built from it: a tool parameter named __proto__ stays.
    const tool = '{"name":"f","input_schema":{"type":"object","properties":{"__proto__":{"type":"string"}}}}';
    const rendered = await client.post('/v1/render', `{"format":"anthropic","request":{"model":"claude-sonnet-4-5","max_tokens":5,"tools":[${tool}],"messages":[{"role":"user","content":"a"}]}}`);
    expect(rendered.status, rendered.text).toBe(200);
    expect(rendered.text).toContain(tool);
  });

  it('what would be stored other than sent is a 422 at its pointer: an integer past 2^53 a double changes, a member name twice', async () => {
    t = createTestApp();
    const { client } = t.tenant();
    for (const [path, body, pointer, detail] of [
      ['/v1/artifacts', '{"kind":"tools","content":[{"name":"f","input_schema":{"type":"object","maximum":9007199254740993}}]}', '/content/0/input_schema/maximum', 'stored as 9007199254740992'],
      ['/v1/artifacts', '{"kind":"messages","content":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{"ids":[1,-123456789012345678901234567890]}}]}]}', '/content/1/content/0/input/ids/1', 'cannot be kept exactly'],
      ['/v1/sessions', '{"metadata":{"n":18446744073709551615}}', '/metadata/n', 'send it as a string'],
      ['/v1/artifacts', '{"kind":"system","kind":"document","content":"dup"}', '/kind', 'appears twice'],
      ['/v1/sessions', '{"messages":[{"role":"user","content":"a","content":"b"}]}', '/messages/0/content', 'appears twice'],
    ] as const) {
      const bad = await client.post(path, body);
      expect(bad.status, `${path} ${bad.text}`).toBe(422);
      expect(bad.json.errors, body).toEqual([{ pointer, detail: expect.stringContaining(detail) }]);
    }
    expect(t.sqlite.prepare('select count(*) as n from handles').get()).toEqual({ n: 0 });
    // Integers a double holds exactly, however long, and long decimals (a provider reads them as doubles too) are kept.
    const kept = await client.post('/v1/artifacts', '{"kind":"tools","content":[{"name":"f","input_schema":{"type":"object","maximum":9007199254740992,"minimum":-100000000000000000000,"multipleOf":0.10000000000000000555}}]}');
    expect(kept.status, kept.text).toBe(201);
    const bytes = (await client.get(`/v1/handles/${kept.json.id}/expand?format=anthropic`)).text;
    expect(bytes).toContain('9007199254740992');
    expect(bytes).toContain('-100000000000000000000');
  });

  it('refuses numbers JSON cannot carry, and empty text', async () => {
    t = createTestApp();
    const { client } = t.tenant();
    const res = await client.post('/v1/artifacts', '{"kind":"tools","content":[{"name":"f","input_schema":{"maximum":1e400}}]}');
    expect(res.status).toBe(422);
    expect(res.json.errors[0].pointer).toBe('/content/0/input_schema/maximum');
    expect((await client.post('/v1/artifacts', { kind: 'system', content: '' })).status).toBe(422);
    // Free-form metadata is kept as it came: what JSON cannot carry is refused there too, never stored repaired.
    for (const [path, body] of [
      ['/v1/artifacts', '{"kind":"system","content":"x","metadata":{"team":"a","limits":[1,-1e309]}}'],
      ['/v1/sessions', '{"metadata":{"owner":"a\\ud800"}}'],
    ] as const) {
      const bad = await client.post(path, body);
      expect(bad.status, path).toBe(422);
      expect(bad.json.errors[0].pointer, path).toBe(path === '/v1/sessions' ? '/metadata/owner' : '/metadata/limits/1');
    }
    expect(t.sqlite.prepare('select count(*) as n from handles').get()).toEqual({ n: 0 });
    // In a rendered body, wherever it stands (the caller's own content, a block's field, an inline tool's schema):
    // a 422 naming it, before anything is keyed or recorded; never a 500.
    for (const [request, pointer] of [
      ['{"model":"claude-sonnet-4-6","max_tokens":64,"messages":[{"role":"user","content":1e309}]}', '/request/messages/0/content'],
      ['{"model":"claude-sonnet-4-6","max_tokens":64,"messages":[{"role":"user","content":[{"type":"text","text":"hi","citations":-1e309}]}]}', '/request/messages/0/content/0/citations'],
      ['{"model":"claude-sonnet-4-6","max_tokens":64,"tools":[{"name":"f","input_schema":{"maximum":1E400}}],"messages":[{"role":"user","content":"hi"}]}', '/request/tools/0/input_schema/maximum'],
    ] as const) {
      const bad = await client.post('/v1/render', `{"format":"anthropic","request":${request}}`);
      expect(bad.status, request).toBe(422);
      expect(bad.json.errors[0], request).toMatchObject({ pointer, detail: expect.stringContaining('out of range') });
    }
    // Long exponents and digit runs inside strings, and numbers in range, are nothing to refuse.
    const fine = await client.post('/v1/render', `{"format":"anthropic","request":{"model":"claude-sonnet-4-6","max_tokens":64,"temperature":1e-300,"messages":[{"role":"user","content":"1e999 ${'9'.repeat(400)}"}]}}`);
    expect(fine.status, fine.text).toBe(200);
    expect(t.sqlite.prepare('select count(*) as n from requests').get()).toEqual({ n: 1 });
  });

  it('a lone surrogate is a 422 naming it, in a label and in a rendered body, and nothing is stored', async () => {
    t = createTestApp();
    const me = t.tenant();
    const sys = await mintSystem(me.client, 'kept');
    const lone = 'a\ud800b';
    for (const [path, body] of [
      ['/v1/artifacts', { kind: 'system', content: 'x', name: lone }],
      ['/v1/bundles', { members: [sys.id], name: lone }],
      ['/v1/sessions', { name: lone }],
    ] as const) {
      const res = await me.client.post(path, body);
      expect(res.status, path).toBe(422);
      expect(res.json.errors[0], path).toMatchObject({ pointer: '/name', detail: expect.stringContaining('lone UTF-16 surrogate') });
    }
    const admin = clientFor(t.app, ADMIN_KEY);
    expect((await admin.post('/v1/tenants', { name: lone })).json.errors[0].pointer).toBe('/name');
    // A key with one is named with U+FFFD in its place: the answer is text any client can decode.
    const keyed = await me.client.post('/v1/artifacts', { kind: 'tools', content: [{ name: 'f', input_schema: { type: 'object', properties: { [lone]: { type: 'string' } } } }] });
    expect(keyed.status).toBe(422);
    expect(keyed.json.errors[0].pointer).toBe('/content/0/input_schema/properties/a\ufffdb');
    expect(keyed.text).not.toMatch(/\\ud800/i);
    const res = await render(me, { model: `claude${lone}`, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBe(422);
    expect(res.json.errors[0].pointer).toBe('/request/model');
    // The model beside the body (Gemini's) too: it would be stored as replacement characters.
    const beside = await me.client.post('/v1/render', { format: 'gemini', model: `gemini-2.5-flash${lone}`, request: { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] } });
    expect(beside.status).toBe(422);
    expect(beside.json.errors[0]).toMatchObject({ pointer: '/model', detail: expect.stringContaining('lone UTF-16 surrogate') });
    expect(t.sqlite.prepare('select count(*) as n from handles').get()).toEqual({ n: 1 });
    expect(t.sqlite.prepare('select count(*) as n from requests').get()).toEqual({ n: 0 });
  });

  it('a versioned ref reports the current latest version after an append', async () => {
    t = createTestApp();
    const { client } = t.tenant();
    const s = await startSession(client, { messages: [{ role: 'user', content: 'a' }] });
    await client.get(`/v1/handles/${s.id}@1`);
    await client.post(`/v1/sessions/${s.id}/messages`, { messages: [{ role: 'assistant', content: 'b' }] });
    expect((await client.get(`/v1/handles/${s.id}@1`)).json.latest_version).toBe(2);
  });

  it('refuses nesting deeper than 32 when the bundle is made, not at expand time', async () => {
    t = createTestApp();
    const { client } = t.tenant();
    let ref = (await mintSystem(client, 'leaf')).id;
    for (let i = 0; i < 32; i++) ref = (await mintBundle(client, [ref])).id;
    const deeper = await client.post('/v1/bundles', { members: [ref] });
    expect(deeper.status).toBe(422);
    expect((await client.get(`/v1/handles/${ref}/expand`)).status).toBe(200);
  });
});

describe('reconciliation edge cases', () => {
  async function reconciled(me: ReturnType<TestApp['tenant']>, started: number, usage: (total: number, predicted: number) => object) {
    const r = (await render(me, { model: 'claude-sonnet-4-5', prefix: [(await mintSystem(me.client, LONG_SYSTEM)).id], messages: [{ role: 'user', content: 'q' }] })).json;
    const total = r.segments[r.segments.length - 1].token_end;
    const res = await me.client.post('/v1/usage', { request_id: r.request_id, usage: usage(total, r.prediction.read_tokens), started_at: started, first_byte_at: started + 100, finished_at: started + 200 });
    expect(res.status, res.text).toBe(201);
    return r;
  }

  it('a request of 150,000 messages is rendered and reconciled (no argument list that long is spread)', async () => {
    t = createTestApp();
    const me = t.tenant();
    const messages = Array.from({ length: 150_001 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: 'm' }));
    const r = await render(me, { model: 'claude-sonnet-4-5', max_tokens: 5, messages });
    expect(r.status, r.text.slice(0, 300)).toBe(200);
    const total = r.json.segments.at(-1).token_end;
    const res = await me.client.post('/v1/usage', { request_id: r.json.request_id, usage: anthropicUsage(total, 0, 0) });
    expect(res.status, res.text.slice(0, 300)).toBe(201);
    const batch = await me.client.post('/v1/usage/batch', { records: [{ request_id: (await render(me, { model: 'claude-sonnet-4-5', max_tokens: 5, messages })).json.request_id, usage: anthropicUsage(total, 0, 0) }] });
    expect(batch.json.results[0].status, JSON.stringify(batch.json.results[0])).toBe(201);
  }, 60_000);

  it('150,000 invalid content blocks are a 422 listing the first hundred, not a 500', async () => {
    t = createTestApp();
    const { client } = t.tenant();
    const res = await client.post('/v1/sessions', { messages: [{ role: 'user', content: Array.from({ length: 150_000 }, () => ({ type: 'text' })) }] });
    expect(res.status, res.text.slice(0, 300)).toBe(422);
    expect(res.json.errors).toHaveLength(101);
    expect(res.json.errors[0].pointer).toBe('/messages/0/content/0/text');
    expect(res.json.errors[100]).toEqual({ pointer: '', detail: 'and 149900 more failing places, not listed' });
  }, 60_000);

  it('a late report followed by a restart replays without error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ph-late-'));
    const file = join(dir, 'db.sqlite');
    try {
      t = createTestApp({ databasePath: file });
      const me = t.tenant();
      const base = t.clock.now();
      await reconciled(me, base + 1000, (n) => anthropicUsage(n, 0, 0));
      await reconciled(me, base + 5000, (n) => anthropicUsage(n, 0, 0));
      await reconciled(me, base + 100, (n) => anthropicUsage(n, 0, 0));
      t.close();
      t = createTestApp({ databasePath: file });
      const again = clientFor(t.app, me.key);
      const sys = await mintSystem(again, LONG_SYSTEM);
      const res = await again.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', prefix: [sys.id], messages: [{ role: 'user', content: 'q' }] } });
      expect(res.status, res.text).toBe(200);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses non-finite numbers in a usage report; a bad batch record is that record\'s alone', async () => {
    t = createTestApp();
    const me = t.tenant();
    const r1 = (await render(me, { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'a' }] })).json;
    const r2 = (await render(me, { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'b' }] })).json;
    const bad = await me.client.post('/v1/usage', `{"request_id":"${r1.request_id}","usage":{"input_tokens":1e400,"output_tokens":1}}`);
    expect(bad.status).toBe(422);
    const batch = await me.client.post('/v1/usage/batch', `{"records":[{"request_id":"${r1.request_id}","usage":{"input_tokens":5,"output_tokens":1}},{"request_id":"${r2.request_id}","usage":{"input_tokens":1e400,"output_tokens":1}}]}`);
    expect(batch.status).toBe(200);
    expect(batch.json.results.map((x: { status: number }) => x.status)).toEqual([201, 422]);
  });

  it('a usage batch is read as /v1/usage reads each record: an integer past 2^53 or a name twice in a logged response does not refuse the whole batch', async () => {
    t = createTestApp();
    const me = t.tenant();
    const [r1, r2] = [(await render(me, { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'a' }] })).json, (await render(me, { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'b' }] })).json];
    // A gateway's log of the provider's answer, with a numeric 64-bit trace id and a header name twice.
    const record = (id: string) => `{"request_id":"${id}","response":{"type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"usage":{"input_tokens":5,"output_tokens":1},"trace_id":12345678901234567890,"x":1,"x":2}}`;
    expect((await me.client.post('/v1/usage', record(r1.request_id))).status).toBe(201);
    const batch = await me.client.post('/v1/usage/batch', `{"records":[${record(r2.request_id)}]}`);
    expect(batch.status, batch.text).toBe(200);
    expect(batch.json.results.map((x: { status: number }) => x.status)).toEqual([201]);
  });

  it('a fault of ours in one batch record is a logged 500 for that record, not a 422 blamed on it', async () => {
    t = createTestApp();
    const me = t.tenant();
    const [r1, r2] = [(await render(me, { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'a' }] })).json, (await render(me, { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'b' }] })).json];
    // Fault injection: the scope lookup fails for the second record only.
    const scopes = t.services.reconciler.scopes;
    const forStart = scopes.forStart.bind(scopes);
    let calls = 0;
    scopes.forStart = (...args) => (++calls === 2 ? (() => { throw new TypeError('injected fault'); })() : forStart(...args));
    const logged: string[] = [];
    const error = console.error;
    console.error = (line: string) => void logged.push(line);
    try {
      const batch = await me.client.post('/v1/usage/batch', { records: [r1, r2].map((r) => ({ request_id: r.request_id, usage: anthropicUsage(5, 0, 0) })) });
      expect(batch.status).toBe(200);
      expect(batch.json.results.map((x: { status: number }) => x.status)).toEqual([201, 500]);
      expect(batch.json.results[1].problem).toMatchObject({ code: 'internal', requestId: batch.headers.get('x-request-id') });
      expect(logged).toHaveLength(1);
      // With its time, as every other line: a log shipper without its own timestamps dated it nowhere.
      expect(JSON.parse(logged[0]!)).toMatchObject({ level: 'error', time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), msg: 'unhandled error', requestId: batch.headers.get('x-request-id'), error: expect.stringContaining('injected fault') });
    } finally {
      console.error = error;
    }
  });

  it("a record whose write fails (the database's fault) is a logged 500 in a batch as on /v1/usage, not a 409 blamed on the record", async () => {
    t = createTestApp();
    const me = t.tenant();
    const [r1, r2, r3] = [
      (await render(me, { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'a' }] })).json,
      (await render(me, { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'b' }] })).json,
      (await render(me, { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'c' }] })).json,
    ];
    await t.services.writes.idle();
    // Fault injection: the write of r2's and r3's reconciliations fails (a full disk, an I/O error).
    const failing = new Set([r2.request_id, r3.request_id]);
    const writeBatch = SqliteStore.prototype.writeBatch;
    const spy = vi.spyOn(SqliteStore.prototype, 'writeBatch').mockImplementation(function (this: SqliteStore, ops) {
      if (ops.some((op) => op.kind === 'ingest' && failing.has(op.write.request.id))) throw new Error('injected: disk I/O error');
      return writeBatch.call(this, ops);
    });
    const logged: string[] = [];
    const error = console.error;
    console.error = (line: string) => void logged.push(line);
    try {
      const batch = await me.client.post('/v1/usage/batch', { records: [r1, r2].map((r) => ({ request_id: r.request_id, usage: anthropicUsage(5, 0, 0) })) });
      expect(batch.status).toBe(200);
      expect(batch.json.results.map((x: { status: number }) => x.status)).toEqual([201, 500]);
      expect(batch.json.results[1].problem).toMatchObject({ code: 'internal', requestId: batch.headers.get('x-request-id') });
      const single = await me.client.post('/v1/usage', { request_id: r3.request_id, usage: anthropicUsage(5, 0, 0) });
      expect(single.status).toBe(500);
      expect(single.json.code).toBe('internal');
      expect(logged.map((l) => JSON.parse(l))).toEqual([
        expect.objectContaining({ msg: 'unhandled error', requestId: batch.headers.get('x-request-id'), error: expect.stringContaining('injected: disk I/O error') }),
        expect.objectContaining({ msg: 'unhandled error', requestId: single.headers.get('x-request-id'), error: expect.stringContaining('injected: disk I/O error') }),
      ]);
    } finally {
      console.error = error;
      spy.mockRestore();
    }
    // Nothing was stored for them: sent again once the database is back, they are reconciled.
    const again = await me.client.post('/v1/usage/batch', { records: [r2, r3].map((r) => ({ request_id: r.request_id, usage: anthropicUsage(5, 0, 0) })) });
    expect(again.json.results.map((x: { status: number }) => x.status)).toEqual([201, 201]);
  });

  it('a session counts one request, whatever number of its batches the request held', async () => {
    t = createTestApp();
    const me = t.tenant();
    const s = await startSession(me.client, { messages: [{ role: 'user', content: 'a' }] });
    for (const text of ['b', 'c']) await me.client.post(`/v1/sessions/${s.id}/messages`, { messages: [{ role: 'user', content: text }] });
    const r = (await render(me, { model: 'claude-sonnet-4-5', prefix: [s.id], messages: [{ role: 'user', content: 'q' }] })).json;
    await me.client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(r.segments[r.segments.length - 1].token_end, 0, 0) });
    const rep = (await me.client.get(`/v1/reports/handles/${s.id}`)).json;
    expect(rep.requests).toBe(1);
    expect(rep.requests_with.referenced).toBe(1);
    expect((await me.client.get('/v1/reports')).json.handles.find((h: { id: string }) => h.id === s.id).requests).toBe(1);
  });

  it('unknown capture is left out of the capture rate and counted apart in money', async () => {
    t = createTestApp();
    const me = t.tenant();
    const sys = await mintSystem(me.client, LONG_SYSTEM);
    const turn = async (usage: (total: number, predicted: number) => object) => {
      t.clock.advance(60_000);
      const r = (await render(me, { model: 'claude-sonnet-4-5', prefix: [sys.id], messages: [{ role: 'user', content: 'q' }] })).json;
      const total = r.segments[r.segments.length - 1].token_end;
      await me.client.post('/v1/usage', { request_id: r.request_id, usage: usage(total, r.prediction.read_tokens) });
    };
    await turn((n) => anthropicUsage(n, 0, n - 10));
    await turn((n, p) => anthropicUsage(n, p, 0));
    const before = (await me.client.get(`/v1/reports/handles/${sys.id}`)).json;
    expect(before.capture_rate).toBe(1);
    await turn((n) => ({ input_tokens: n, output_tokens: 3 }));
    const after = (await me.client.get(`/v1/reports/handles/${sys.id}`)).json;
    expect(after.capture_rate).toBe(1);
    expect(after.money.leaked_savings).toBe(before.money.leaked_savings);
    expect(after.money.unknown_capture_input_cost).toBeGreaterThan(0);
    expect(after.tokens.unknown).toBeGreaterThan(0);
  });

  it('a write counts as read only when the provider confirmed a read', async () => {
    t = createTestApp();
    const me = t.tenant();
    const sys = await mintSystem(me.client, LONG_SYSTEM);
    for (const read of [false, false]) {
      t.clock.advance(60_000);
      const r = (await render(me, { model: 'claude-sonnet-4-5', prefix: [sys.id], messages: [{ role: 'user', content: 'q' }] })).json;
      const total = r.segments[r.segments.length - 1].token_end;
      const cached = r.breakpoints[0].token_end;
      await me.client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(total, read ? cached : 0, cached) });
    }
    // The second write is still within its 5-minute TTL: it may be read yet.
    const rep = (await me.client.get(`/v1/reports/handles/${sys.id}`)).json;
    expect(rep.money.write_premiums_pending).toBeGreaterThan(0);
    expect(rep.money.write_premiums_unread + rep.money.write_premiums_pending).toBeCloseTo(rep.money.write_premiums_paid, 9);
    t.clock.advance(5 * 60_000);
    const later = (await me.client.get(`/v1/reports/handles/${sys.id}`)).json;
    expect([later.money.write_premiums_unread, later.money.write_premiums_pending]).toEqual([later.money.write_premiums_paid, 0]);
  });

  /** Two renders of the same long system prompt: the first's usage writes it, the second's reads it. */
  const twoCalls = async () => {
    t = createTestApp();
    const me = t.tenant();
    const sys = await mintSystem(me.client, LONG_SYSTEM);
    const renderAt = async () => (await render(me, { model: 'claude-sonnet-4-5', prefix: [sys.id], messages: [{ role: 'user', content: 'q' }] })).json;
    const r1 = await renderAt();
    const r2 = await renderAt();
    return { me, sys, r1, r2, total: r1.segments[r1.segments.length - 1].token_end as number, cached: r1.breakpoints[0].token_end as number, start: t.clock.now() };
  };

  it('a write pending at a restart is still pending after it, and a read after the restart marks it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ph-pending-'));
    const clock = new FakeClock();
    try {
      t = createTestApp({ databasePath: join(dir, 'db.sqlite'), clock });
      const me = t.tenant();
      const sys = await mintSystem(me.client, LONG_SYSTEM);
      const turn = async () => (await render(me, { model: 'claude-sonnet-4-5', prefix: [sys.id], messages: [{ role: 'user', content: 'q' }] })).json;
      const r1 = await turn();
      const cached = r1.breakpoints[0].token_end;
      const total = r1.segments[r1.segments.length - 1].token_end;
      await me.client.post('/v1/usage', { request_id: r1.request_id, usage: anthropicUsage(total, 0, cached) });
      const paid = (await me.client.get(`/v1/reports/handles/${sys.id}`)).json.money.write_premiums_paid;
      t.close();
      clock.advance(60_000);
      t = createTestApp({ databasePath: join(dir, 'db.sqlite'), clock });
      const client = clientFor(t.app, me.key);
      expect((await client.get(`/v1/reports/handles/${sys.id}`)).json.money).toMatchObject({ write_premiums_pending: paid, write_premiums_unread: 0 });
      const r2 = (await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', prefix: [sys.id], messages: [{ role: 'user', content: 'q' }] } })).json;
      await client.post('/v1/usage', { request_id: r2.request_id, usage: anthropicUsage(total, cached, 0) });
      clock.advance(10 * 60_000);
      expect((await client.get(`/v1/reports/handles/${sys.id}`)).json.money).toMatchObject({ write_premiums_paid: paid, write_premiums_pending: 0, write_premiums_unread: 0 });
    } finally {
      t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a write the provider made again after an eviction, read by the next call, is read: its premium is not unread (a restart between them too)", async () => {
    // Four calls a minute apart: the first writes, the second reads, the third finds the entry evicted and writes it again
    // (unconfirmed: the simulation still held it), the fourth reads that second write. Both premiums were worth paying.
    // Before, the fourth's read was credited to the first write (read already) and the second showed as unread.
    const dir = mkdtempSync(join(tmpdir(), 'ph-rewrite-'));
    const clock = new FakeClock();
    try {
      t = createTestApp({ databasePath: join(dir, 'db.sqlite'), clock });
      const me = t.tenant();
      const sys = await mintSystem(me.client, LONG_SYSTEM);
      let client = me.client;
      const turn = async (read: boolean) => {
        clock.advance(60_000);
        const r = (await client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 64, prefix: [sys.id], messages: [{ role: 'user', content: 'q' }] } })).json;
        const cached = r.breakpoints[0].token_end as number;
        const total = r.segments[r.segments.length - 1].token_end as number;
        const res = await client.post('/v1/usage', { request_id: r.request_id, usage: anthropicUsage(total, read ? cached : 0, read ? 0 : cached) });
        expect(res.status, res.text).toBe(201);
        return { cached, outcome: res.json.outcome };
      };
      const { cached } = await turn(false);
      await turn(true);
      const again = await turn(false);
      expect(again.outcome.segments[0].classes.unconfirmed).toBe(cached);
      t.close();
      t = createTestApp({ databasePath: join(dir, 'db.sqlite'), clock });
      client = clientFor(t.app, me.key);
      await turn(true);
      clock.advance(10 * 60_000);
      const money = (await client.get(`/v1/reports/handles/${sys.id}`)).json.money;
      // Sonnet 4.5: $3/M, 5-minute writes 1.25×: a premium of $0.75/M on each of the two writes, both read.
      expect(money).toMatchObject({ write_premiums_paid: Math.round(2 * cached * 0.75) / 1e6, write_premiums_unread: 0, write_premiums_pending: 0 });
    } finally {
      t.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a group commit that fails while later reads of the same write wait behind it: the write is never counted read twice', async () => {
    t = createTestApp();
    const me = t.tenant();
    const sys = await mintSystem(me.client, LONG_SYSTEM);
    const doc = await mintArtifact(me.client, 'document', 'Document A body. '.repeat(400));
    const b = await mintBundle(me.client, [sys.id, doc.id]);
    const turn = async (q: string) => (await render(me, { model: 'claude-sonnet-4-5', prefix: [b.id], messages: [{ role: 'user', content: q }] })).json;
    const w = await turn('q0');
    const all = w.breakpoints[w.breakpoints.length - 1].token_end;
    const sysEnd = w.segments.find((s: { source: string }) => s.source === `${sys.id}@1`).token_end;
    const total = (r: { segments: Array<{ token_end: number }> }) => r.segments[r.segments.length - 1]!.token_end;
    const at = (dt: number) => ({ started_at: t.clock.now() + dt, first_byte_at: t.clock.now() + dt + 10, finished_at: t.clock.now() + dt + 20 });
    expect((await me.client.post('/v1/usage', { request_id: w.request_id, usage: anthropicUsage(total(w), 0, all), ...at(0) })).status).toBe(201);
    t.clock.advance(30_000);
    const [r1, r2, r3] = [await turn('q1'), await turn('q2'), await turn('q3')];
    await t.services.writes.idle();
    // The first reader's commit is not made durable; the second reader's batch waits behind it.
    const store = (t.services.writes as unknown as { store: { durable: () => Promise<void> } }).store;
    const durable = store.durable.bind(store);
    // Ordered by events, not timers (a loaded machine stretched 10 ms and 50 ms until both reports shared a batch):
    // the first reader's sync starts, the second reader's write queues behind it, then that sync fails.
    let failSync: (e: Error) => void = () => undefined;
    let syncStarted: () => void = () => undefined;
    const started = new Promise<void>((r) => (syncStarted = r));
    let fail = true;
    store.durable = () => (fail ? ((fail = false), syncStarted(), new Promise<void>((_, reject) => (failSync = reject))) : durable());
    const p1 = me.client.post('/v1/usage', { request_id: r1.request_id, usage: anthropicUsage(total(r1), sysEnd, 0), ...at(0) });
    await started;
    const p2 = me.client.post('/v1/usage', { request_id: r2.request_id, usage: anthropicUsage(total(r2), all, 0), ...at(1) });
    const queue = t.services.writes as unknown as { pending: unknown[] };
    while (queue.pending.length === 0) await new Promise((r) => setTimeout(r, 1));
    failSync(new Error('fsync failed'));
    expect([(await p1).status, (await p2).status]).toEqual([500, 201]);
    await me.client.post('/v1/usage', { request_id: r3.request_id, usage: anthropicUsage(total(r3), all, 0), ...at(2) });
    const money = (await me.client.get('/v1/reports')).json.money;
    expect(money.write_premiums_paid).toBeGreaterThan(0);
    const read = t.sqlite.prepare("select sum(write_premium_read) from rollups where handle_id = '*'").pluck().get() as number;
    expect(read).toBeLessThanOrEqual(money.write_premiums_paid + 1e-9);
  });

  it('a write read by a later record of the same batch is counted as read', async () => {
    const { me, sys, r1, r2, total, cached, start } = await twoCalls();
    const res = await me.client.post('/v1/usage/batch', {
      records: [
        { request_id: r1.request_id, usage: anthropicUsage(total, 0, cached), started_at: start, first_byte_at: start + 100, finished_at: start + 200 },
        { request_id: r2.request_id, usage: anthropicUsage(total, cached, 0), started_at: start + 60_000, first_byte_at: start + 60_100, finished_at: start + 60_200 },
      ],
    });
    expect(res.json.accepted).toBe(2);
    const rep = (await me.client.get(`/v1/reports/handles/${sys.id}`)).json;
    expect(rep.money.write_premiums_paid).toBeGreaterThan(0);
    expect(rep.money.write_premiums_unread).toBe(0);
  });

  it('a report from the future is refused (it would move its scope\'s simulated clock there for good)', async () => {
    const { me, r1, total, cached } = await twoCalls();
    const future = await me.client.post('/v1/usage', { request_id: r1.request_id, usage: anthropicUsage(total, 0, cached), started_at: '2099-01-01T00:00:00Z' });
    expect(future.status).toBe(422);
    expect(future.json.errors).toEqual([{ pointer: '/started_at', detail: 'is in the future' }]);
    const late = await me.client.post('/v1/usage', { request_id: r1.request_id, usage: anthropicUsage(total, 0, cached), finished_at: t.clock.now() + 3600_000 });
    expect(late.json.errors).toEqual([{ pointer: '/finished_at', detail: 'is in the future' }]);
    // A client clock a little ahead is fine.
    const ahead = await me.client.post('/v1/usage', { request_id: r1.request_id, usage: anthropicUsage(total, 0, cached), started_at: t.clock.now() + 60_000 });
    expect(ahead.status).toBe(201);
  });

  it('records imported with a start only, a day later: their other times are the start, and the later one is not "concurrent"', async () => {
    const { me, r1, r2, total, cached, start } = await twoCalls();
    // Imported a day after the calls: the receipt time must not stand in for their first byte or end.
    t.clock.advance(24 * 3600_000);
    const res = await me.client.post('/v1/usage/batch', {
      records: [
        { request_id: r1.request_id, usage: anthropicUsage(total, 0, cached), started_at: start },
        { request_id: r2.request_id, usage: anthropicUsage(total, cached, 0), started_at: start + 60_000 },
      ],
    });
    expect(res.json.accepted).toBe(2);
    const first = (await me.client.get(`/v1/requests/${r1.request_id}`)).json;
    // Its first byte was not given: unknown (null), not a time stood in for it.
    expect([first.first_byte_at, first.finished_at]).toEqual([null, first.started_at]);
    const second = (await me.client.get(`/v1/requests/${r2.request_id}`)).json;
    expect(second.outcome.segments[0].classes).toMatchObject({ captured: cached, concurrent: 0 });
  });
});

describe('documents nested too deep', () => {
  // A 100,000-level document once overflowed the stack in canonical JSON or the tree walk: a 500.
  const deepArray = (n: number) => '['.repeat(n) + ']'.repeat(n);
  const deepObject = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);

  it('are a 422 naming the member, on every kind of body, and nothing is written', async () => {
    t = createTestApp();
    const me = t.tenant();
    const sys = await mintSystem(me.client);
    const handles = () => t.sqlite.prepare('select count(*) as n from handle_versions').get();
    const before = handles();
    const cases: [string, string, string][] = [
      ['/v1/artifacts', `{"kind":"tools","content":[{"name":"x","input_schema":${deepObject(100_000)}}]}`, '/content'],
      ['/v1/artifacts', `{"kind":"system","content":"x","metadata":${deepObject(600)}}`, '/metadata'],
      [`/v1/artifacts/${sys.id}/versions`, `{"content":${deepArray(100_000)}}`, '/content'],
      ['/v1/render', `{"format":"anthropic","request":{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":${deepArray(100_000)}}]}}`, '/request'],
      ['/v1/usage', `{"request_id":"req_x","response":{"type":"message","usage":{"input_tokens":1,"output_tokens":1},"content":${deepObject(100_000)}}}`, '/response'],
      ['/v1/usage/batch', `{"records":[{"request_id":"req_x","diagnostics":${deepArray(100_000)}}]}`, '/records'],
    ];
    for (const [path, body, pointer] of cases) {
      const res = await me.client.post(path, body);
      expect(res.status, `${path} ${res.text.slice(0, 200)}`).toBe(422);
      expect(res.json.errors).toEqual([{ pointer, detail: 'nested deeper than 512 levels' }]);
    }
    expect(handles()).toEqual(before);
  });

  it('up to the limit are served, one level more is refused: 512 levels below the document', async () => {
    t = createTestApp();
    const me = t.tenant();
    // The value 1 sits at depth 512 (metadata is at 1), then at 513.
    const artifact = (n: number) => me.client.post('/v1/artifacts', `{"kind":"system","content":"x","metadata":${deepObject(n)}}`);
    expect((await artifact(511)).status).toBe(201);
    expect((await artifact(512)).status).toBe(422);
    // Here metadata is at depth 2: the render's own JSON tree is checked at the same limit.
    const render = (n: number) =>
      me.client.post('/v1/render', `{"format":"anthropic","request":{"model":"claude-sonnet-4-5","metadata":${deepObject(n)},"messages":[{"role":"user","content":"hi"}]}}`);
    expect((await render(510)).status).toBe(200);
    const over = await render(511);
    expect(over.status).toBe(422);
    expect(over.json.errors).toEqual([{ pointer: '/request', detail: 'nested deeper than 512 levels' }]);
  });
});
