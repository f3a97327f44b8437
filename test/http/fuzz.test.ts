import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import { PROBLEM_CODES } from '../../src/http/problem';
import { createSimulatorApp } from '../../src/simulator/server';
import { ADMIN_KEY, clientFor, createTestApp, listen, type TestApp } from '../helpers/app';
import { FakeClock } from '../helpers/clock';
import { fingerprint as dbFingerprint, tableNames } from '../helpers/fingerprint';
import { mintBundle, mintDocument, mintSystem, startSession } from '../helpers/factories';

// Every route, over real HTTP, with arbitrary input: malformed JSON, a valid body changed at one place (a path from
// the example or from the route's schema) to any JSON value, huge strings, deep nesting, bytes that are not UTF-8,
// odd path parameters and query strings, wrong content types, every kind of key. No answer is a 5xx, every refusal
// of ours is problem+json with a stable code (a 422 names where), and a refusal changes nothing in the database.
// The routes come from the service's own OpenAPI document plus the dashboard's: a route the app serves that is in
// neither list fails the first test. FUZZ_SEED and FUZZ_RUNS (per route) for a longer hunt.

const SEED = Number(process.env.FUZZ_SEED ?? 20261203);
const RUNS = Number(process.env.FUZZ_RUNS ?? 30);
const MAX_BODY = 256 * 1024;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Auth = 'tenant' | 'admin' | 'proxy' | 'cookie' | 'none';

interface Route {
  method: string;
  /** OpenAPI form: /v1/handles/{ref}. */
  path: string;
  auth: Auth;
  query: string[];
  /** Values a query parameter's schema names (its enum, its bounds). */
  valid: string[];
  headers: string[];
  /** The request body's schema (JSON Schema from the document), when the route takes one. */
  schema?: unknown;
  /** The body is a form (the dashboard's sign-in). */
  form?: boolean;
}

/** Served, but neither documented nor taking input beyond the query: asked with odd queries and keys only. */
const PLAIN: Array<[string, string, Auth]> = [
  ['GET', '/openapi.json', 'none'],
  ['GET', '/docs/init.js', 'none'],
  ['GET', '/docs/swagger-ui.css', 'none'],
  ['GET', '/favicon.ico', 'none'],
];
/** The dashboard (HTML pages, forms and fragments): not in the API's document. */
const DASHBOARD: Array<[string, string]> = [
  ['GET', '/ui/sign-in'],
  ['POST', '/ui/sign-in'],
  ['POST', '/ui/sign-out'],
  ['GET', '/ui'],
  ['GET', '/ui/'],
  ['GET', '/ui/fragments/overview'],
  ['GET', '/ui/sessions'],
  ['GET', '/ui/fragments/sessions'],
  ['GET', '/ui/handles/{id}'],
  ['GET', '/ui/fragments/handles/{id}'],
  ['GET', '/ui/reports.csv'],
  ['GET', '/ui/handles/{id}/report.csv'],
  ['GET', '/ui/requests'],
  ['GET', '/ui/requests/{id}'],
  ['GET', '/ui/events'],
];
/** Served and left out on purpose: a 1.5 MB static script, fetched once per run it would be the whole test's time. */
const SKIPPED = ['GET /docs/swagger-ui-bundle.js'];

let t: TestApp;
let base: string;
let closers: Array<() => Promise<void>> = [];
let routes: Route[] = [];
let ids!: Record<string, string[]>;
let keys!: { own: string; stranger: string; revoked: string };
let examples!: Record<string, Json>;
/** Other valid bodies of a route (other formats, richer shapes), mutated as its example is. */
let moreExamples!: Record<string, Json[]>;
let tables: string[] = [];

beforeAll(async () => {
  const clock = new FakeClock();
  const sim = await listen(createSimulatorApp({ catalog: new ModelCatalog(loadCatalog()), clock }));
  t = createTestApp({ clock, config: { anthropicBaseUrl: sim.base, openaiBaseUrl: sim.base, geminiBaseUrl: sim.base, maxBodyBytes: MAX_BODY, usageBatchMax: 50 } });
  const app = await listen(t.app);
  base = app.base;
  closers = [app.close, sim.close];

  const owner = t.tenant('owner');
  const stranger = t.tenant('stranger');
  const sys = await mintSystem(owner.client);
  const doc = await mintDocument(owner.client);
  const bnd = await mintBundle(owner.client, [sys.id, doc.id]);
  const ses = await startSession(owner.client, { base: bnd.id, messages: [{ role: 'user', content: 'hi' }] });
  const spare = await Promise.all([1, 2, 3].map(() => mintDocument(owner.client)));
  // Pinned by a bundle no other route is given: deleting it is always a 409.
  const pinned = await mintDocument(owner.client);
  await mintBundle(owner.client, [pinned.id]);
  const foreign = await mintSystem(stranger.client);
  const rendered = await owner.client.post('/v1/render', { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 16, prefix: [bnd.id], messages: [{ role: 'user', content: 'hi' }] } });
  expect(rendered.status, rendered.text).toBe(200);
  const reqId = rendered.json.request_id as string;
  // Requests without usage yet, for reports that are not the example's duplicate or conflict.
  const fresh: string[] = [];
  for (const model of ['claude-sonnet-4-5', 'claude-haiku-4-5', 'claude-opus-4-1'])
    fresh.push((await owner.client.post('/v1/render', { format: 'anthropic', request: { model, max_tokens: 16, prefix: [sys.id], messages: [{ role: 'user', content: 'hi' }] } })).json.request_id as string);
  const foreignReq = await stranger.client.post('/v1/render', { format: 'openai-chat', request: { model: 'gpt-4.1', prefix: [foreign.id], messages: [{ role: 'user', content: 'hi' }] } });
  const admin = clientFor(t.app, ADMIN_KEY);
  const victim = (await admin.post('/v1/tenants', { name: 'victim' })).json as { id: string; tenant: string; api_key: string };
  const rotated = await admin.post(`/v1/keys/${victim.id}/rotate`);
  // Renamed and deleted in the owner's place: its data must stay for the other routes.
  const spareTenant = (await admin.post('/v1/tenants', { name: 'spare' })).json as { tenant: string };
  keys = { own: owner.key, stranger: stranger.key, revoked: victim.api_key };

  const unknown = (p: string) => `${p}_${'Z'.repeat(21)}`;
  // Path parameter values by kind: the owner's, another tenant's, unknown, malformed.
  ids = {
    handle: [sys.id, doc.id, bnd.id, ses.id, `${sys.id}@1`, `${ses.id}@2`, `${bnd.id}@9`, foreign.id, unknown('art'), unknown('ses'), unknown('xyz')],
    // Only spare or pinned handles and strangers' may be deleted: the session and bundle stay for the other routes.
    deletable: [...spare.map((s) => s.id), pinned.id, foreign.id, unknown('bnd')],
    artifact: [sys.id, doc.id, foreign.id, unknown('art'), bnd.id],
    bundle: [bnd.id, foreign.id, unknown('bnd'), ses.id],
    session: [ses.id, foreign.id, unknown('ses'), sys.id],
    request: [reqId, ...fresh, foreignReq.json.request_id as string, unknown('req')],
    tenant: [owner.id, victim.tenant, 'ten_nope'],
    spareTenant: [spareTenant.tenant, 'ten_nope'],
    key: [victim.id, rotated.json.id as string, 'key_nope'],
  };
  examples = {
    'POST /v1/tenants': { name: 'fuzz' },
    'POST /v1/tenants/{id}/keys': {},
    'PATCH /v1/tenants/{id}': { name: 'fuzz renamed' },
    'POST /v1/keys/{id}/rotate': {},
    'POST /v1/prune': { older_than_days: 30 },
    'POST /v1/artifacts': { kind: 'system', content: 'You are terse.', name: 'sys' },
    'POST /v1/artifacts/{id}/versions': { content: 'You are terse, again.' },
    'POST /v1/bundles': { members: [sys.id, doc.id], name: 'b' },
    'POST /v1/bundles/{id}/versions': { members: [doc.id] },
    'POST /v1/sessions': { base: bnd.id, messages: [{ role: 'user', content: 'hi' }] },
    'POST /v1/sessions/{id}/messages': { messages: [{ role: 'assistant', content: 'ok' }, { role: 'user', content: [{ type: 'text', text: 'more' }] }] },
    'POST /v1/render': { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 16, prefix: [bnd.id], system: [{ type: 'text', text: 's' }], messages: [{ role: 'user', content: [{ type: 'handle', ref: doc.id }, { type: 'text', text: 'hi' }] }] }, model: 'claude-sonnet-4-5' },
    'POST /v1/usage': { request_id: reqId, usage: { input_tokens: 10, cache_read_input_tokens: 0, cache_creation_input_tokens: 0, output_tokens: 1 } },
    'POST /v1/usage/batch': { records: [{ request_id: reqId, response: { usage: { input_tokens: 10, output_tokens: 1 } } }] },
    'POST /proxy/anthropic/v1/messages': { model: 'claude-sonnet-4-5', max_tokens: 16, prefix: [bnd.id], messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', cache_control: { type: 'ephemeral' } }] }] },
    'POST /proxy/openai/v1/chat/completions': { model: 'gpt-4.1', prefix: [sys.id], messages: [{ role: 'user', content: 'hi' }], stream: false },
    'POST /proxy/openai/v1/responses': { model: 'gpt-4.1', prefix: [sys.id], input: [{ role: 'user', content: 'hi' }] },
    'POST /proxy/anthropic/v1/messages/count_tokens': { model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'hi' }] },
    // Gemini: the model in the path, the body a GenerateContentRequest (handle blocks where /v1/render takes them).
    ...Object.fromEntries(
      ['v1', 'v1beta'].flatMap((v) =>
        ['generateContent', 'streamGenerateContent', 'countTokens'].map((m) => [
          `POST /proxy/gemini/${v}/models/{model}:${m}`,
          { prefix: [sys.id], systemInstruction: { parts: [{ text: 's' }] }, contents: [{ role: 'user', parts: [{ text: 'hi' }, { type: 'handle', ref: doc.id }] }], generationConfig: { maxOutputTokens: 16 } },
        ]),
      ),
    ),
  };

  const tools: Json = [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];
  const toolTurn: Json[] = [
    { role: 'user', content: 'weather?' },
    { role: 'assistant', content: [{ type: 'text', text: 'checking' }, { type: 'tool_use', id: 'toolu_1', name: 'get_weather', input: { city: 'Oslo' } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'sunny' }] }] },
  ];
  const chatTurn: Json[] = [
    { role: 'system', content: [{ type: 'handle', ref: sys.id }] },
    { role: 'user', content: [{ type: 'text', text: 'weather?' }] },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
  ];
  const chatTools: Json = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  const responsesInput: Json = [
    { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'weather?' }] },
    { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Oslo"}' },
    { type: 'function_call_output', call_id: 'call_1', output: 'sunny' },
  ];
  const anthropicRich: Json = { model: 'claude-sonnet-4-5', max_tokens: 16, tools, tool_choice: { type: 'auto' }, system: [{ type: 'handle', ref: sys.id }, { type: 'text', text: 'now', cache_control: { type: 'ephemeral', ttl: '1h' } }], messages: [...toolTurn, { role: 'assistant', content: [{ type: 'handle', ref: doc.id }] }], cache_control: { type: 'ephemeral' } };
  const chatRich: Json = { model: 'gpt-4.1', prefix: [bnd.id], tools: chatTools, messages: chatTurn, stream: true, stream_options: { include_usage: true } };
  const responsesRich: Json = { model: 'gpt-4.1', prefix: [doc.id], instructions: 'be brief', tools: [{ type: 'function', name: 'get_weather', parameters: { type: 'object' } }], input: responsesInput, stream: true };
  const gemini: Json = { contents: [{ role: 'user', parts: [{ text: 'hi' }, { type: 'handle', ref: doc.id }] }], system_instruction: { parts: [{ text: 's' }] }, prefix: [sys.id] };
  moreExamples = {
    'POST /v1/render': [
      { format: 'anthropic', request: anthropicRich },
      { format: 'openai-chat', request: chatRich },
      { format: 'openai-responses', request: responsesRich },
      { format: 'gemini', request: gemini, model: 'gemini-2.5-flash' },
    ],
    'POST /proxy/anthropic/v1/messages': [{ ...(anthropicRich as Record<string, Json>), stream: true }],
    'POST /proxy/openai/v1/chat/completions': [chatRich],
    'POST /proxy/openai/v1/responses': [responsesRich],
    'POST /v1/artifacts': [
      { kind: 'tools', content: tools },
      { kind: 'messages', content: toolTurn.slice(0, 2) },
      { kind: 'document', content: 'It is 2026-11-20T09:00:00Z; request 3f2b6c1e-1d2a-4c4b-9a57-0e1f2a3b4c5d.', name: 'doc' },
    ],
    'POST /v1/sessions/{id}/messages': [{ messages: toolTurn }],
    'POST /v1/usage': [{ request_id: fresh[0]!, response: { id: 'msg_1', model: 'claude-sonnet-4-5', usage: { input_tokens: 5, cache_creation_input_tokens: 3, cache_read_input_tokens: 2, cache_creation: { ephemeral_5m_input_tokens: 3 }, output_tokens: 1 } }, first_byte_at: 1767268800500, finished_at: 1767268801000, diagnostics: { cache_miss_reason: 'x' } }],
  };
  const doc31 = (await (await fetch(`${base}/openapi.json`)).json()) as OpenApi;
  routes = fromDocument(doc31);
  for (const [method, path, auth] of PLAIN) routes.push({ method, path, auth, query: [], valid: [], headers: [] });
  for (const [method, path] of DASHBOARD) routes.push({ method, path, auth: 'cookie', query: ['period', 'next', 'batches', 'id', 'handle'], valid: ['24h', '7d', '30d', 'all', '1', '2'], headers: [], form: path === '/ui/sign-in' && method === 'POST' });
  tables = tableNames(t.sqlite);
});

afterAll(async () => {
  for (const close of closers) await close();
  t?.close();
});

// ---- the document ----

interface OpenApi {
  paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string; schema?: { enum?: unknown[]; minimum?: number; maximum?: number; default?: unknown } }>; requestBody?: { content?: Record<string, { schema?: unknown }> }; security?: Array<Record<string, unknown>> }>>;
  components?: { schemas?: Record<string, unknown> };
}

function fromDocument(doc: OpenApi): Route[] {
  const out: Route[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const security = Object.keys(op.security?.[0] ?? { apiKey: [] })[0];
      // `security: []`: no key (the probes, /docs).
      const auth: Auth = op.security?.length === 0 ? 'none' : security === 'adminKey' ? 'admin' : security === 'proxyKey' ? 'proxy' : 'tenant';
      const params = op.parameters ?? [];
      const schema = op.requestBody?.content?.['application/json']?.schema;
      out.push({
        method: method.toUpperCase(),
        path,
        auth,
        query: params.filter((p) => p.in === 'query').map((p) => p.name),
        valid: params.flatMap((p) => [...(p.schema?.enum ?? []), p.schema?.minimum, p.schema?.maximum, p.schema?.default].filter((v) => v !== undefined).map(String)),
        headers: params.filter((p) => p.in === 'header').map((p) => p.name),
        schema: schema === undefined ? undefined : resolve(schema, doc),
      });
    }
  }
  return out;
}

/** The schema with its $refs replaced (to a small depth: the paths to mutate, not a validator). */
function resolve(schema: unknown, doc: OpenApi, depth = 0): unknown {
  if (depth > 8 || typeof schema !== 'object' || schema === null) return schema;
  if (Array.isArray(schema)) return schema.map((s) => resolve(s, doc, depth + 1));
  const ref = (schema as { $ref?: string }).$ref;
  if (ref) return resolve(doc.components?.schemas?.[ref.replace('#/components/schemas/', '')], doc, depth + 1);
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, resolve(v, doc, depth + 1)]));
}

/** JSON pointers a schema names (properties, array items, union members), as lists of tokens. */
function schemaPaths(schema: unknown, at: string[] = [], out: string[][] = [], depth = 0): string[][] {
  if (depth > 6 || typeof schema !== 'object' || schema === null) return out;
  const s = schema as { properties?: Record<string, unknown>; items?: unknown; anyOf?: unknown[]; oneOf?: unknown[]; allOf?: unknown[] };
  for (const [name, sub] of Object.entries(s.properties ?? {})) {
    out.push([...at, name]);
    schemaPaths(sub, [...at, name], out, depth + 1);
  }
  if (s.items) {
    out.push([...at, '0']);
    schemaPaths(s.items, [...at, '0'], out, depth + 1);
  }
  for (const sub of [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.allOf ?? [])]) schemaPaths(sub, at, out, depth + 1);
  return out;
}

function examplePaths(value: Json, at: string[] = [], out: string[][] = []): string[][] {
  if (typeof value !== 'object' || value === null) return out;
  for (const [k, v] of Object.entries(value)) {
    out.push([...at, k]);
    examplePaths(v, [...at, k], out);
  }
  return out;
}

const pointer = (tokens: string[]) => tokens.map((x) => `/${x.replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');

// ---- inputs ----

/** Text spliced into the JSON as it is (numbers JSON.stringify cannot write, bytes that are not UTF-8). */
const RAW = '\u0001raw:';
const raw = (text: string) => `${RAW}${text}`;

const nastyString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  fc.constantFrom('', ' ', '\u0000', '\ud800', '\udfff x', 'art_', '@', '@0', '%', '../..', 'null', '__proto__', 'constructor', '\u202e', 'a'.repeat(5000)),
  fc.integer({ min: 10_000, max: 300_000 }).map((n) => 'x'.repeat(n)),
);
const nastyNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -1, 1.5, 2 ** 31, 2 ** 53, Number.MAX_SAFE_INTEGER, -Number.MAX_VALUE),
  fc.constantFrom(raw('1e999'), raw('-1e999'), raw('9007199254740993'), raw('-0'), raw('1E400'), raw('0.0000000000000000000000001e-400'), raw('123456789012345678901234567890')),
);
const deep = fc.tuple(fc.integer({ min: 50, max: 12_000 }), fc.boolean()).map(([n, arr]) => raw(arr ? `${'['.repeat(n)}${']'.repeat(n)}` : `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`));

/** Any value to put at a place: JSON of every shape, ids (ours, a stranger's, unknown), nasty strings and numbers. */
function value(): fc.Arbitrary<Json> {
  const id = fc.constantFrom(...Object.values(ids).flat());
  return fc.oneof(
    { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json> },
    { weight: 2, arbitrary: id },
    { weight: 2, arbitrary: nastyString },
    { weight: 2, arbitrary: nastyNumber },
    { weight: 1, arbitrary: deep },
    { weight: 1, arbitrary: fc.constantFrom<Json>(null, true, [], {}, [null], { type: 'handle', ref: ids.handle![0]! }, { type: 'handle', ref: ids.handle![7]! }) },
    { weight: 1, arbitrary: fc.constant(raw('"\\xff\\xfe"')) },
  );
}

function setAt(body: Json, path: string[], v: Json | undefined): Json {
  if (path.length === 0) return v === undefined ? null : v;
  const clone = structuredClone(body) as Json;
  let node: Json = clone;
  for (const token of path.slice(0, -1)) {
    if (typeof node !== 'object' || node === null) return clone;
    const next: Json | undefined = (node as Record<string, Json>)[token];
    if (next === undefined || typeof next !== 'object' || next === null) (node as Record<string, Json>)[token] = /^\d+$/.test(token) ? [] : {};
    node = (node as Record<string, Json>)[token]!;
  }
  if (typeof node !== 'object' || node === null) return clone;
  const last = path[path.length - 1]!;
  if (v === undefined) {
    if (Array.isArray(node)) node.splice(Number(last), 1);
    else delete (node as Record<string, Json>)[last];
  } else (node as Record<string, Json>)[last] = v;
  return clone;
}

/** Where setAt changes a body: the path, or the first member on it that it had to make. */
function madeAt(body: Json, path: string[]): string[] {
  let node: Json | undefined = body;
  for (let i = 0; i < path.length; i++) {
    if (typeof node !== 'object' || node === null || !(path[i]! in node)) return path.slice(0, i + 1);
    node = (node as Record<string, Json>)[path[i]!];
  }
  return path;
}

/** The JSON text, with the raw pieces spliced in; bytes that are not UTF-8 where `\xff` is written. */
function encode(body: Json): Uint8Array {
  const text = JSON.stringify(body).replace(/"\\u0001raw:((?:[^"\\]|\\.)*)"/g, (_, inner: string) => JSON.parse(`"${inner}"`) as string);
  if (!text.includes('\\xff')) return Buffer.from(text);
  return Buffer.concat(text.split('\\xff').flatMap((part, i) => (i === 0 ? [Buffer.from(part)] : [Buffer.from([0xff]), Buffer.from(part)])));
}

interface Body {
  kind: 'none' | 'mutated' | 'text' | 'any';
  bytes?: Uint8Array;
  /** Where a mutated body was changed. */
  at?: string[];
}

function bodyFor(route: Route): fc.Arbitrary<Body> {
  if (route.form)
    return fc.record({ key: fc.oneof(nastyString, fc.constantFrom(keys.own, keys.stranger, keys.revoked)), next: nastyString }).map((f) => ({ kind: 'text', bytes: Buffer.from(new URLSearchParams(f).toString()) }));
  const key = `${route.method} ${route.path}`;
  return fc.constantFrom(examples[key] ?? {}, ...(moreExamples[key] ?? [])).chain((example) => mutations(route, example));
}

function mutations(route: Route, example: Json): fc.Arbitrary<Body> {
  const paths = [...examplePaths(example), ...schemaPaths(route.schema), []];
  const text = JSON.stringify(example);
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant<Body>({ kind: 'none' }) },
    { weight: 1, arbitrary: fc.constant<Body>({ kind: 'text', bytes: Buffer.from(text) }) },
    {
      weight: 8,
      arbitrary: fc
        .tuple(fc.constantFrom(...paths), fc.option(value(), { nil: undefined, freq: 6 }), fc.boolean())
        .map(([path, v, extra]): Body => {
          const at = extra ? [...path, 'fuzz_extra'] : path;
          return { kind: 'mutated', at: madeAt(example, at), bytes: encode(setAt(example, at, v)) };
        }),
    },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.nat(text.length), fc.constantFrom('', '"', '{', ']', ',', '\u00e9', 'nul', '\ufeff'), fc.nat(3))
        .map(([cut, insert, drop]): Body => ({ kind: 'text', bytes: Buffer.from(text.slice(0, cut) + insert + text.slice(cut + drop)) })),
    },
    { weight: 1, arbitrary: fc.constantFrom<Body>({ kind: 'text', bytes: Buffer.from(`\ufeff${text}`) }, { kind: 'text', bytes: Buffer.from(`\ufeff\ufeff${text}`) }, { kind: 'text', bytes: Buffer.from('') }, { kind: 'text', bytes: Buffer.from([0x7b, 0xc3, 0x28, 0x7d]) }) },
    { weight: 1, arbitrary: value().map((v): Body => ({ kind: 'any', bytes: encode(v) })) },
    // Changed at two places (one may be inside what the other put there).
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(...paths), value(), fc.constantFrom(...paths), fc.option(value(), { nil: undefined, freq: 3 }))
        .map(([a, v, b, w]): Body => ({ kind: 'any', bytes: encode(setAt(setAt(example, a, v), b, w)) })),
    },
  );
}

const queryValue = fc.oneof(
  fc.constantFrom('', '0', '1', '-1', '1.5', '1e3', '99999999999999999999', 'NaN', 'all', '7d', '30d', 'anthropic', 'gemini', 'system', 'tools', '2026-12-01', '2026-12-01T09:00:00Z', '9999-12-31', '/ui', '//evil', '1_req_x'),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.constantFrom('%', '%ZZ', '%E0%A4%A', '%00', '%ff', '%2F..%2F'),
);

function queryFor(route: Route): fc.Arbitrary<string> {
  const name = fc.oneof({ weight: 4, arbitrary: route.query.length ? fc.constantFrom(...route.query) : fc.constant('q') }, { weight: 1, arbitrary: fc.constantFrom('x', 'format', 'limit', '', '%ZZ', 'é', 'a[b]') });
  // Repeated names, empty values, values as typed (a stray % kept) or encoded.
  const valid = route.valid.length ? fc.constantFrom(...route.valid) : queryValue;
  const param = fc.tuple(name, fc.option(fc.oneof(valid, queryValue, fc.constantFrom(...Object.values(ids).flat())), { nil: undefined }), fc.boolean());
  return fc.oneof(fc.constant([]), fc.array(param, { maxLength: 5 })).map((ps) => (ps.length ? `?${ps.map(([n, v, asTyped]) => (v === undefined ? n : `${n}=${asTyped || v.startsWith('%') ? v : encodeURIComponent(v)}`)).join('&')}` : ''));
}

const segment = fc.oneof(
  fc.constantFrom('%ZZ', '%2F', '..', '%00', '%F0%9F%98%80', 'art_%40', `art_${'a'.repeat(21)}@${'9'.repeat(30)}`, `ses_${'a'.repeat(21)}@0`, `bnd_${'a'.repeat(21)}@-1`, 'a'.repeat(3000), ' ', '@', 'art_x@1@2'),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }).map(encodeURIComponent),
);

function pathFor(route: Route): fc.Arbitrary<string> {
  const names = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  if (!names.length) return fc.constant(route.path);
  const pool = (name: string) => {
    const kind = route.method === 'DELETE' && route.path.startsWith('/v1/handles') ? 'deletable' : route.path === '/v1/tenants/{id}' ? 'spareTenant' : (/\/(requests|tenants|keys|artifacts|bundles|sessions)\//.exec(route.path)?.[1] ?? 'handles');
    const p = ids[{ requests: 'request', tenants: 'tenant', keys: 'key', artifacts: 'artifact', bundles: 'bundle', sessions: 'session' }[kind] ?? kind] ?? ids.handle!;
    // A Gemini model: a real one, or any segment (a handle id is a well-formed model name the catalog does not know).
    if (name === 'model') return fc.oneof({ weight: 3, arbitrary: fc.constantFrom('gemini-2.5-flash', 'gemini-2.0-flash') }, { weight: 1, arbitrary: fc.constantFrom(...Object.values(ids).flat()) }, { weight: 2, arbitrary: segment });
    return fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...p) }, { weight: 1, arbitrary: fc.constantFrom(...Object.values(ids).flat()) }, { weight: 2, arbitrary: segment });
  };
  return fc.tuple(...names.map(pool)).map((values) => names.reduce((p, n, i) => p.replace(`{${n}}`, values[i]!), route.path));
}

type Key = 'own' | 'stranger' | 'revoked' | 'wrong' | 'admin' | 'none' | 'odd';
const keyFor = (k: Key) => ({ own: keys.own, stranger: keys.stranger, revoked: keys.revoked, wrong: 'phk_not-a-key', admin: ADMIN_KEY, none: undefined, odd: `${keys.own} x` })[k];

function headersFor(route: Route): fc.Arbitrary<Record<string, string>> {
  const key = fc.oneof({ weight: 6, arbitrary: fc.constant<Key>(route.auth === 'admin' ? 'admin' : 'own') }, { weight: 3, arbitrary: fc.constantFrom<Key>('own', 'stranger', 'revoked', 'wrong', 'admin', 'none', 'odd') });
  const type = fc.oneof(
    { weight: 6, arbitrary: fc.constant(route.form ? 'application/x-www-form-urlencoded' : 'application/json') },
    { weight: 2, arbitrary: fc.constantFrom('', 'text/plain', 'application/json; charset=latin1', 'application/json;charset="utf-8"', 'application/merge-patch+json', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'application/jsonx', 'APPLICATION/JSON ; charset=UTF-8') },
  );
  const extra = fc.option(fc.record(
    {
      'if-match': fc.constantFrom('*', '"1"', '"2"', '3', '"x"', '"99999999999999999999"', '-1', ''),
      'x-ph-prefix': fc.array(fc.oneof(fc.constantFrom(...ids.handle!), fc.constantFrom('', ' ', 'art_x', 'ses_x@0', ',')), { maxLength: 3 }).map((a) => a.join(',')),
      'x-ph-session': fc.oneof(fc.constantFrom(...ids.handle!), fc.constantFrom('', 'ses_x', `${ids.handle![3]!}@1`)),
      'content-encoding': fc.constantFrom('gzip', 'identity', 'br'),
      'if-none-match': fc.constantFrom('*', 'W/"x"', '"', ''),
      'x-request-id': fc.oneof(fc.constantFrom('', 'a'.repeat(300), 'é'), fc.string({ maxLength: 8 })),
    },
    { requiredKeys: [] },
  ), { nil: {}, freq: 2 });
  return fc.tuple(key, type, extra).map(([k, contentType, more]) => {
    // The provider's own key, which the proxy passes on (the simulator wants one).
    const h: Record<string, string> = route.auth === 'proxy' ? { 'x-api-key': 'sk-ant-fuzz', authorization: 'Bearer sk-fuzz', 'x-goog-api-key': 'gemini-fuzz' } : {};
    for (const [name, v] of Object.entries(more)) if (/^[\x20-\x7e]*$/.test(v)) h[name] = v;
    if (contentType) h['content-type'] = contentType;
    const secret = keyFor(k);
    if (secret !== undefined) {
      if (route.auth === 'proxy') h['x-ph-key'] = secret;
      else if (route.auth === 'cookie') h.cookie = `ph_ui_key=${encodeURIComponent(secret)}`;
      else h.authorization = `Bearer ${secret}`;
    }
    // The dashboard's forms come from the dashboard.
    if (route.auth === 'cookie') h.origin = base;
    return h;
  });
}

// ---- the database ----

let hashedAt = -1;
let hashed = '';
/** A digest of every row of every table (recomputed only when this connection has changed rows since the last one). */
function fingerprint(): string {
  const changes = t.sqlite.prepare('select total_changes()').pluck().get() as number;
  if (changes === hashedAt) return hashed;
  hashedAt = changes;
  hashed = dbFingerprint(t.sqlite, tables);
  return hashed;
}

/** Until the writes a previous answer left behind (a proxied call's reconciliation, a group commit) are done. */
async function settle(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    await new Promise((resolve) => setImmediate(resolve));
    await t.services.writes.idle();
  }
}

// ---- the property ----

interface Sent {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Body;
  /** Sent chunked, with no length declared. */
  chunked?: boolean;
}

let previous = '';
const stats = new Map<string, number>();
async function send(s: Sent) {
  const bytes = s.method === 'GET' || s.method === 'HEAD' || s.body.kind === 'none' ? undefined : s.body.bytes;
  const res = await fetch(`${base}${s.url}`, {
    method: s.method,
    headers: s.headers,
    body: bytes && s.chunked ? new Blob([bytes]).stream() : bytes,
    duplex: 'half',
    redirect: 'manual',
  } as RequestInit).catch((e: Error & { cause?: Error }) => {
    throw new Error(`${describeSent(s)}\n→ ${e.message}: ${e.cause?.message ?? ''}\nafter ${previous}`);
  });
  previous = `${describeSent(s)} → ${res.status} ${res.headers.get('connection')}`;
  // An event stream never ends by itself: its status and type are the answer.
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    await res.body?.cancel();
    return { status: res.status, headers: res.headers, text: '' };
  }
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** The value at a pointer of a body sent as JSON; undefined when it is not JSON or has nothing there. */
function sentValue(body: Body, at: string): unknown {
  let node: unknown;
  try {
    node = JSON.parse(Buffer.from(body.bytes ?? []).toString('utf8'));
  } catch {
    return undefined;
  }
  for (const token of at.split('/').slice(1).map((x) => x.replace(/~1/g, '/').replace(/~0/g, '~')))
    node = typeof node === 'object' && node !== null && Object.hasOwn(node, token) ? (node as Record<string, unknown>)[token] : undefined;
  return node;
}

const isHandleBlock = (v: unknown) => typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'handle';

const describeSent = (s: Sent) => `${s.method} ${s.url.slice(0, 300)}${s.chunked ? ' (chunked)' : ''} ${JSON.stringify(s.headers)} ${s.body.bytes ? Buffer.from(s.body.bytes).toString('utf8').slice(0, 400) : '(no body)'}`;

async function check(route: Route, s: Sent): Promise<void> {
  await settle();
  const before = fingerprint();
  const res = await send(s);
  await settle();
  const label = `${describeSent(s)}\n→ ${res.status} ${res.text.slice(0, 600)}`;
  if (process.env.FUZZ_STATS) {
    const code = res.status >= 400 && res.text.startsWith('{') ? ((JSON.parse(res.text) as { code?: string }).code ?? '') : '';
    const k = `${route.method} ${route.path} ${res.status} ${code}`;
    stats.set(k, (stats.get(k) ?? 0) + 1);
  }
  expect(res.status, label).toBeLessThan(500);
  const type = res.headers.get('content-type') ?? '';
  // A provider's own refusal, passed through by the proxy: a model call's was recorded (x-ph-request-id names it),
  // a call that carries no prompt (count_tokens, models) is passed through as it is.
  const recorded = route.auth === 'proxy' && res.headers.get('x-ph-request-id') !== null;
  const upstreamAnswer = recorded || (route.auth === 'proxy' && type.startsWith('application/json'));
  if (res.status >= 400 && !upstreamAnswer) {
    // The dashboard answers with pages (and its script's fragments with text); the body limit is the app's.
    if (route.auth === 'cookie' && type !== 'application/problem+json') expect(type, label).toMatch(/^text\/(html|plain)/);
    else if (s.method === 'HEAD') expect(type, label).toBe('application/problem+json');
    else {
      expect(type, label).toBe('application/problem+json');
      const p = JSON.parse(res.text) as { code: string; status: number; type: string; requestId: string; errors?: Array<{ pointer: string; detail: string }> };
      expect(PROBLEM_CODES, label).toContain(p.code);
      // The id a client quotes: the one it sent when that is a sane one, ours otherwise; the header says the same.
      expect(p.requestId, label).toMatch(/^[\w\-=]{1,255}$/);
      expect(res.headers.get('x-request-id'), label).toBe(p.requestId);
      expect([p.status, p.type], label).toEqual([res.status, `urn:prefix-handles:problem:${p.code}`]);
      if (p.code === 'invalid_request') {
        expect(p.errors?.length, label).toBeGreaterThan(0);
        for (const e of p.errors!) expect(e.pointer, label).toMatch(/^(|\/.*|(query|path|header):.*)$/);
        // A body changed at one place is refused there: a pointer at that place, inside it, or around it.
        // The body's root is around everything, so it does not count as near a place inside it. A rule over two
        // members ("usage" or "response", not both) may name the other one: that sibling is near too.
        const at = s.body.kind === 'mutated' ? pointer(s.body.at!) : undefined;
        const parentOf = (q: string) => q.slice(0, q.lastIndexOf('/') + 1);
        const pair = /\/(usage|response)$/;
        const near = (p: string) =>
          at !== undefined &&
          ((p !== '' && at.startsWith(p)) || p.startsWith(at) || (pair.test(at) && pair.test(p) && parentOf(p) === parentOf(at)));
        // With x-ph-session, a handle block an example holds in its turn is refused whatever was changed (a session
        // keeps none): a refusal at one is not about the changed place.
        const turnHandle = (p: string) => s.headers['x-ph-session'] !== undefined && isHandleBlock(sentValue(s.body, p));
        if (at !== undefined && p.errors!.every((e) => e.pointer === '' || e.pointer.startsWith('/')) && !p.errors!.some((e) => turnHandle(e.pointer)))
          expect(p.errors!.some((e) => near(e.pointer)), `${label}\n: no pointer at ${at}`).toBe(true);
      }
    }
  }
  if (res.status >= 400 && !recorded) expect(fingerprint(), `${label}\n: a refusal changed the database`).toBe(before);
  if (res.status === 200 && route.path === '/v1/usage/batch') {
    const results = (JSON.parse(res.text) as { results: Array<{ status: number }> }).results;
    for (const r of results) expect(r.status, label).toBeLessThan(500);
  }
}

describe('fuzzing every route over HTTP', () => {
  it('covers every route the app serves (the document, the dashboard and the plain ones)', () => {
    // Gemini's model calls are documented one per method (`{model}:generateContent`) and served as one route whose last segment is read whole (`{call}`).
    const listed = new Set([...routes.map((r) => `${r.method} ${r.path.replace(/\{model\}:\w+$/, '{call}')}`), ...SKIPPED]);
    const served = new Set(t.app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`));
    expect([...served].filter((r) => !listed.has(r)), 'a route the fuzz does not know: add it to the document, DASHBOARD or PLAIN').toEqual([]);
    expect([...listed].filter((r) => !served.has(r)), 'listed but not served').toEqual([]);
    expect(routes.filter((r) => r.path.includes('{model}:')).map((r) => `${r.method} ${r.path}`)).toHaveLength(6);
    const withBody = routes.filter((r) => r.schema !== undefined).map((r) => `${r.method} ${r.path}`);
    expect(withBody.filter((r) => !(r in examples)), 'a route with a body and no valid example to mutate').toEqual([]);
  });

  it('answers no input with a 5xx; refuses with problem+json and a stable code; a refusal writes nothing', async () => {
    // Every route is tried, whatever an earlier one found: the failures are listed together.
    const failures: string[] = [];
    let seed = SEED;
    for (const route of routes) {
      const sent = fc.record({
        path: pathFor(route),
        query: queryFor(route),
        headers: headersFor(route),
        body: route.method === 'GET' || route.method === 'DELETE' ? fc.constant<Body>({ kind: 'none' }) : bodyFor(route),
        chunked: fc.boolean(),
        // Now and then a method the route does not take.
        method: fc.oneof({ weight: 9, arbitrary: fc.constant(route.method) }, { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD') }),
      });
      const runs = route.auth === 'none' || route.path.startsWith('/docs') ? 5 : RUNS;
      try {
        await fc.assert(
          fc.asyncProperty(sent, (r) => check(route, { method: r.method, url: `${r.path}${r.query}`, headers: r.headers, body: r.body, chunked: r.chunked })),
          { seed: seed++, numRuns: runs, endOnFailure: process.env.FUZZ_SHRINK === undefined },
        );
      } catch (e) {
        // The failing request as sent (the counterexample's bytes are unreadable), and the seed to replay it.
        const err = e as Error & { cause?: Error };
        failures.push(`${route.method} ${route.path} (${/\{ seed: .*?\}/.exec(err.message)?.[0]}): ${(err.cause?.message ?? err.message).slice(0, 2500)}`);
      }
    }
    if (process.env.FUZZ_STATS) console.log([...stats].sort().map(([k, n]) => `${k}: ${n}`).join('\n'));
    expect(failures.join('\n\n'), `${failures.length} routes failed`).toBe('');
  }, 600_000);
});
