// The typed client (src/client/: openapi-fetch over the types openapi-typescript generates from /openapi.json) over
// real HTTP on a database file: every call's answer typed from the document and held to its zod schema, refusals as
// ProblemError, CSV as bytes; the README's example run as written, its Anthropic call through the official SDK
// against the provider simulator. The type assertions are checked by `tsc --noEmit` (npm test runs it first).
import Anthropic from '@anthropic-ai/sdk';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, expectTypeOf, it } from 'vitest';
import type { z } from 'zod';
import { createClient, NotModified, ProblemError, type Problem, type Schemas } from '../../src/client';
import { loadCatalog, ModelCatalog } from '../../src/domain/catalog/catalog';
import { HandleReportSchema, RequestViewSchema, UsageResultSchema } from '../../src/http/report-schemas';
import { HandleSchema, MintResultSchema } from '../../src/http/schemas';
import { createSimulatorApp } from '../../src/simulator/server';
import { createTestApp, listen, type TestApp } from '../helpers/app';
import { FakeClock } from '../helpers/clock';
import { LONG_SYSTEM } from '../helpers/scenario';

let dir: string;
let t: TestApp;
let service: { base: string; close: () => Promise<void> };
let simulator: { base: string; close: () => Promise<void> };
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ph-typed-client-'));
  const clock = new FakeClock();
  t = createTestApp({ databasePath: join(dir, 'db.sqlite'), clock });
  service = await listen(t.app);
  simulator = await listen(createSimulatorApp({ catalog: new ModelCatalog(loadCatalog()), clock }));
});
afterEach(async () => {
  await service.close();
  await simulator.close();
  t.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The documented shape holds the answer whole: zod drops keys it does not know, so an undocumented field fails here. */
function expectDocumented(schema: z.ZodType, answer: unknown) {
  const parsed = schema.safeParse(answer);
  expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
  expect(parsed.data).toEqual(answer);
}

/** The ProblemError a call rejects with. */
async function refusal(call: Promise<unknown>): Promise<ProblemError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProblemError);
  return err as ProblemError;
}

// README example start
export async function supportTurn(url: string, key: string, anthropic: Anthropic) {
  const ph = createClient({ url, key });
  const system = await ph.post('/v1/artifacts', { body: { kind: 'system', content: 'You are the support agent of Acme. Cite the policy.' } });
  const bundle = await ph.post('/v1/bundles', { body: { members: [system.id] } });
  const session = await ph.post('/v1/sessions', { body: { base: bundle.id } });
  // At the version this writer saw: had another appended first, a ProblemError with code 'version_conflict'.
  await ph.post('/v1/sessions/{id}/messages', {
    params: { path: { id: session.id }, header: { 'if-match': `"${session.latest_version}"` } },
    body: { messages: [{ role: 'user', content: 'Where is my order?' }] },
  });
  const rendered = await ph.post('/v1/render', {
    body: { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 256, prefix: [session.id], messages: [] } },
  });
  const answer = await anthropic.messages.create(rendered.body as unknown as Anthropic.MessageCreateParamsNonStreaming);
  const { outcome } = await ph.post('/v1/usage', { body: { request_id: rendered.request_id, usage: { ...answer.usage } } });
  const report = await ph.get('/v1/reports/handles/{id}', { params: { path: { id: session.id } } });
  return { capture: outcome.capture, requests: report.requests, leaked: report.money.leaked_savings };
}
// README example end

describe('the typed client', () => {
  it("the README's example runs as written: mint, session, append with If-Match, render, the SDK's call, usage, report", async () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const block = /### Typed client\n[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    const source = readFileSync(new URL(import.meta.url), 'utf8');
    const example = /\/\/ README example start\n([\s\S]*?)\/\/ README example end\n/.exec(source)![1]!;
    expect(block).toBe(`${README_IMPORTS}\n\n${example}`);

    const tenant = t.tenant();
    const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: simulator.base, maxRetries: 0 });
    const first = await supportTurn(service.base, tenant.key, anthropic);
    expect(first).toEqual({ capture: 'reported', requests: 1, leaked: 0 });
  });

  it('mints, appends with If-Match, renders, reports usage and reads the report and the request, each answer as its schema types it', async () => {
    const key = t.tenant().key;
    // A base URL with a trailing slash works as one without.
    const ph = createClient({ url: `${service.base}/`, key });
    const system = await ph.post('/v1/artifacts', { body: { kind: 'system', content: LONG_SYSTEM, name: 'handbook', metadata: { team: 'support' } } });
    expectDocumented(MintResultSchema, system);
    expect(system).toMatchObject({ type: 'artifact', kind: 'system', name: 'handbook', created: true, latest_version: 1, version: 1 });
    expect(system.meta?.clears_minimum['claude-sonnet-4-5']).toBe(true);
    const tools = await ph.post('/v1/artifacts', {
      body: { kind: 'tools', content: [{ name: 'lookup', description: 'Find an order', input_schema: { type: 'object', properties: { id: { type: 'string' } } } }] },
    });
    // The next version's content is typed by the artifact's kind: text, tools or messages.
    const system2 = await ph.post('/v1/artifacts/{id}/versions', { params: { path: { id: system.id } }, body: { content: `${LONG_SYSTEM} Be brief.` } });
    expect(system2.version).toBe(2);
    expect(system2.meta?.change?.first_diff_byte).toBe(Buffer.byteLength(LONG_SYSTEM));
    expectDocumented(MintResultSchema, system2);
    const bundle = await ph.post('/v1/bundles', { body: { members: [tools.id, system.id] } });
    expect(bundle.members).toEqual([tools.ref, system2.ref]);
    expectDocumented(MintResultSchema, bundle);

    const session = await ph.post('/v1/sessions', { body: { base: bundle.id, messages: [{ role: 'user', content: 'Hello' }] } });
    const appended = await ph.post('/v1/sessions/{id}/messages', {
      params: { path: { id: session.id }, header: { 'if-match': `"${session.latest_version}"` } },
      body: { messages: [{ role: 'assistant', content: 'Hi, how can I help?' }, { role: 'user', content: 'My order is late.' }] },
    });
    expect(appended).toMatchObject({ version: 2, message_count: 3 });
    // The stale version again: the typed error, with the session's current version.
    const stale = await refusal(
      ph.post('/v1/sessions/{id}/messages', {
        params: { path: { id: session.id }, header: { 'if-match': `"${session.latest_version}"` } },
        body: { messages: [{ role: 'user', content: 'again' }] },
      }),
    );
    expect(stale).toMatchObject({ status: 409, code: 'version_conflict' });
    expect(stale.problem?.current_version).toBe(2);
    expect(stale.errors.map((e) => e.pointer)).toEqual(['header:if-match']);

    const handle = await ph.get('/v1/handles/{ref}', { params: { path: { ref: `${session.id}@1` }, query: { versions: 5 } } });
    expect(handle).toMatchObject({ id: session.id, type: 'session', latest_version: 2, version: { version: 1, message_count: 1 } });
    expect(handle.versions.map((v) => v.version)).toEqual([1, 2]);
    expectDocumented(HandleSchema, handle);
    expect((await ph.get('/v1/handles/{ref}', { params: { path: { ref: system.id } } })).metadata).toEqual({ team: 'support' });

    const rendered = await ph.post('/v1/render', { body: { format: 'anthropic', request: { model: 'claude-sonnet-4-5', max_tokens: 100, prefix: [session.id], messages: [] } } });
    expect(rendered.segments.map((s) => s.source)).toEqual([tools.ref, system2.ref, `${session.id}@1`, appended.ref]);
    expect(rendered.prediction).toEqual({ read_tokens: 0, write_tokens: expect.any(Number) });
    const total = rendered.segments.at(-1)!.token_end;
    const usage = await ph.post('/v1/usage', {
      body: { request_id: rendered.request_id, usage: { input_tokens: 10, cache_creation_input_tokens: total - 10, cache_read_input_tokens: 0, output_tokens: 5 } },
    });
    expectDocumented(UsageResultSchema, usage);
    expect(usage.outcome.capture).toBe('reported');
    expect(usage.usage.cache_write_tokens).toBe(total - 10);

    const report = await ph.get('/v1/reports/handles/{id}', { params: { path: { id: bundle.id }, query: { model: 'claude-sonnet-4-5' } } });
    expectDocumented(HandleReportSchema, report);
    expect(report.requests).toBe(1);
    expect(report.tokens.cold).toBeGreaterThan(0);
    const request = await ph.get('/v1/requests/{id}', { params: { path: { id: rendered.request_id } } });
    expectDocumented(RequestViewSchema, request);
    expect(request.status).toBe('reconciled');
    expect(request.outcome?.segments.length).toBe(rendered.segments.length);
    const tenant = await ph.get('/v1/reports', { params: { query: { type: 'session', by_type: true } } });
    expect(tenant.handles.map((h) => h.id)).toEqual([session.id]);
    expect(tenant.by_type?.session.requests).toBe(1);
    await t.services.writes.idle();
    const list = await ph.get('/v1/requests', { params: { query: { handle: session.id, class: 'cold' } } });
    expect(list.requests.map((r) => [r.id, r.classes.cold, r.class_tokens])).toEqual([[rendered.request_id, expect.any(Number), expect.any(Number)]]);

    // CSV exports as their bytes: what the route sends, byte for byte, and the next page's cursor.
    const csv = await ph.csv('/v1/requests', { params: { query: { limit: 1 } } });
    const direct = await fetch(`${service.base}/v1/requests?limit=1&format=csv`, { headers: { authorization: `Bearer ${key}` } });
    expect(Buffer.from(csv.bytes)).toEqual(Buffer.from(await direct.arrayBuffer()));
    expect(Buffer.from(csv.bytes).toString('utf8').split('\r\n')[0]).toMatch(/^id,status,format,model,/);
    expect(csv.nextCursor).toBeNull();
    // Asked of get, CSV is refused before any request, naming ph.csv (it was a SyntaxError on the CSV's first row).
    await expect(ph.get('/v1/reports', { params: { query: { format: 'csv' } } })).rejects.toThrow(new TypeError("GET /v1/reports as CSV: ph.csv('/v1/reports', …) answers its bytes; ph.get answers JSON"));
    await expect(ph.get('/v1/requests', { headers: { Accept: 'text/csv' } })).rejects.toThrow(TypeError);
    const reportCsv = await ph.csv('/v1/reports/handles/{id}', { params: { path: { id: session.id }, query: { bom: true } } });
    expect([...reportCsv.bytes.slice(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);

    const removed = await ph.delete('/v1/handles/{ref}', { params: { path: { ref: session.id } } });
    expect(removed).toBeUndefined();
    const gone = await refusal(ph.get('/v1/handles/{ref}/expand', { params: { path: { ref: session.id } } }));
    expect(gone).toMatchObject({ status: 410, code: 'gone' });
  });

  it("another tenant's handle is the same 404 as a missing one; a bad query a 422 naming it; a status without a problem still a ProblemError", async () => {
    const owner = createClient({ url: service.base, key: t.tenant().key });
    const other = createClient({ url: service.base, key: t.tenant().key });
    const art = await owner.post('/v1/artifacts', { body: { kind: 'document', content: 'Returns are accepted within 30 days.' } });
    const foreign = await refusal(other.get('/v1/handles/{ref}', { params: { path: { ref: art.id } } }));
    const missing = await refusal(other.get('/v1/handles/{ref}', { params: { path: { ref: `art_${'x'.repeat(21)}` } } }));
    expect(foreign).toMatchObject({ status: 404, code: 'not_found', errors: [{ pointer: 'path:ref', detail: expect.any(String) }] });
    expect(foreign.detail.replace(art.id, 'ID')).toBe(missing.detail.replace(`art_${'x'.repeat(21)}`, 'ID'));
    expect((await refusal(other.get('/v1/reports/handles/{id}', { params: { path: { id: art.id } } }))).code).toBe('not_found');

    const bad = await refusal(owner.get('/v1/handles', { params: { query: { limit: 0 } } }));
    expect(bad).toMatchObject({ status: 422, code: 'invalid_request' });
    expect(bad.errors.map((e) => e.pointer)).toEqual(['query:limit']);
    // Its message, what a log of it uncaught shows, names the place and why (not only "1 invalid field in the query").
    expect(bad.message).toBe(`invalid_request: ${bad.detail} [query:limit: ${bad.errors[0]!.detail}]`);
    const body = await refusal(owner.post('/v1/artifacts', { body: { kind: 'document', content: 5 as unknown as string } }));
    expect(body.message).toMatch(/^invalid_request: .* \[\/content: .+\]$/);
    // A place whose detail is the problem's own is named once.
    const member = await refusal(owner.post('/v1/bundles', { body: { members: ['nope'] } }));
    expect(member.message).toBe(`invalid_request: ${member.detail} [/members/0]`);
    const unauthorized = await refusal(createClient({ url: service.base, key: 'phk_wrong' }).get('/v1/handles'));
    expect(unauthorized).toMatchObject({ status: 401, code: 'unauthorized' });

    // A conditional expansion: through ph.raw, its 304 and the ETag; ph.get answers NotModified, a result to test, not
    // a refusal (it threw a ProblemError with status 304 before), and the body when the ETag is not current.
    const first = await owner.raw.GET('/v1/handles/{ref}/expand', { params: { path: { ref: art.id } } });
    const etag = first.response.headers.get('etag')!;
    const again = await owner.raw.GET('/v1/handles/{ref}/expand', { params: { path: { ref: art.id } }, headers: { 'if-none-match': etag } });
    expect([again.response.status, again.data]).toEqual([304, undefined]);
    const notModified = await owner.get('/v1/handles/{ref}/expand', { params: { path: { ref: art.id } }, headers: { 'if-none-match': etag } });
    expect(notModified).toBeInstanceOf(NotModified);
    expect(notModified).toMatchObject({ status: 304, etag });
    const changed = await owner.get('/v1/handles/{ref}/expand', { params: { path: { ref: art.id } }, headers: { 'if-none-match': '"another"' } });
    expect(changed).not.toBeInstanceOf(NotModified);
    if (changed instanceof NotModified) throw new Error('unreachable');
    expect(changed).toEqual(first.data);

    // Not the service (a page in front of it): the status and the start of its text, no code.
    const page = createClient({ url: service.base, key: 'k', fetch: async () => new Response('<html>Bad gateway</html>', { status: 502, headers: { 'content-type': 'text/html' } }) });
    const notOurs = await refusal(page.get('/v1/handles'));
    expect(notOurs).toMatchObject({ status: 502, code: undefined, problem: null, errors: [] });
    expect(notOurs.message).toBe('HTTP 502: <html>Bad gateway</html>');
  });

  it('types each answer from the document: no field is any or unknown where the service knows its shape', () => {
    type Ph = ReturnType<typeof createClient>;
    type Answer<K extends keyof Ph> = Ph[K] extends (...a: never[]) => Promise<infer R> ? R : never;
    expectTypeOf<Answer<'get'>>().not.toBeAny();
    expectTypeOf<Schemas['MintResult']['id']>().toEqualTypeOf<string>();
    expectTypeOf<Schemas['MintResult']['type']>().toEqualTypeOf<'artifact' | 'bundle' | 'session'>();
    expectTypeOf<NonNullable<Schemas['MintResult']['meta']>['tokens']['anthropic']>().toEqualTypeOf<number>();
    expectTypeOf<NonNullable<Schemas['MintResult']['meta']>['clears_minimum']>().toEqualTypeOf<Record<string, boolean>>();
    expectTypeOf<Schemas['Handle']['metadata']>().toEqualTypeOf<Record<string, unknown> | null>();
    expectTypeOf<Schemas['RenderResult']['prediction']>().toEqualTypeOf<Schemas['Prediction'] | null>();
    expectTypeOf<Schemas['Request']['prediction']>().toEqualTypeOf<Schemas['Prediction'] | null>();
    expectTypeOf<Schemas['Request']['outcome']>().toEqualTypeOf<Schemas['Outcome'] | null>();
    expectTypeOf<Schemas['Outcome']['capture']>().toEqualTypeOf<'reported' | 'unknown'>();
    expectTypeOf<Schemas['HandleReport']['money']['leaked_savings']>().toEqualTypeOf<number>();
    expectTypeOf<Schemas['HandleReport']['capture_rate']>().toEqualTypeOf<number | null>();
    expectTypeOf<Schemas['TenantReport']['handles'][number]['money']['leaked_by_class']['expired']>().toEqualTypeOf<number>();
    expectTypeOf<Schemas['RequestSummary']['classes']['cold']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<NonNullable<Schemas['UsageBatchResult']['results'][number]['problem']>>().toMatchTypeOf<Problem>();
    expectTypeOf<Schemas['ModelCatalog']['models'][number]['price']['inputPerMTok']>().toEqualTypeOf<number>();
    expectTypeOf<Schemas['NewArtifactVersion']['content']>().toEqualTypeOf<string | Schemas['Tools'] | Schemas['Message'][]>();
    // The codes a client branches on, and the members some carry.
    expectTypeOf<'version_conflict'>().toMatchTypeOf<Problem['code']>();
    expectTypeOf<'no_such_code'>().not.toMatchTypeOf<Problem['code']>();
    expectTypeOf<ProblemError['code']>().toEqualTypeOf<Problem['code'] | undefined>();
    expectTypeOf<Problem['current_version']>().toEqualTypeOf<number | undefined>();
    // The calls themselves: each path's answer, and its parameters checked.
    const ph = createClient({ url: 'http://127.0.0.1:1', key: 'k' });
    type Get = typeof ph.get;
    expectTypeOf<Awaited<ReturnType<typeof ph.csv>>['bytes']>().toEqualTypeOf<Uint8Array>();
    const typed = async () => {
      const r = await ph.get('/v1/requests/{id}', { params: { path: { id: 'req_x' } } });
      expectTypeOf(r.usage).toEqualTypeOf<Schemas['NormalizedUsage'] | null>();
      expectTypeOf(r.status).toEqualTypeOf<'rendered' | 'reconciled' | 'failed'>();
      const rendered = await ph.post('/v1/render', { body: { format: 'anthropic', request: {} } });
      expectTypeOf(rendered.request_id).toEqualTypeOf<string>();
      expectTypeOf(rendered.warnings).toEqualTypeOf<Schemas['Warning'][]>();
      // @ts-expect-error: a path the service does not serve
      await ph.get('/v1/nothing');
      // @ts-expect-error: a query parameter the route does not take (the service answers 422)
      await ph.get('/v1/handles', { params: { query: { form: 'x' } } });
      // @ts-expect-error: the path parameter is required
      await ph.get('/v1/handles/{ref}', {});
      return r;
    };
    expectTypeOf<Get>().not.toBeAny();
    expect(typeof typed).toBe('function');
  });
});

/** The README example's imports: a copy of src/client/ beside the agent's code (see README, Typed client). */
const README_IMPORTS = `import Anthropic from '@anthropic-ai/sdk';
import { createClient } from './prefix-handles-client/index.js'; // a copy of src/client/`;
