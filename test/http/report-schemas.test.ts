import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { HandleReportSchema, RequestListSchema, RequestViewSchema, TenantReportSchema, UsageBatchResultSchema, UsageResultSchema } from '../../src/http/report-schemas';
import { createTestApp, type TestApp } from '../helpers/app';
import { mintBundle, mintSystem, mintTools } from '../helpers/factories';
import { anthropicUsage, LONG_SYSTEM, promptTokens, renderAnthropic, report } from '../helpers/scenario';

let t: TestApp;
beforeEach(() => {
  t = createTestApp();
});
afterEach(() => t.close());

/** The documented shape holds the answer whole: zod drops keys it does not know, so an undocumented field fails here. */
function expectDocumented(schema: z.ZodType, answer: unknown) {
  const parsed = schema.safeParse(answer);
  expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
  expect(parsed.data).toEqual(answer);
}

describe('the documented shapes of reconciliation answers', () => {
  it('a usage result, a request, the handle and tenant reports and a batch result match their OpenAPI schemas', async () => {
    const { client } = t.tenant();
    const tools = await mintTools(client);
    const sys = await mintSystem(client, LONG_SYSTEM);
    const bundle = await mintBundle(client, [tools.id, sys.id]);
    // A timestamp before the bundle: the second request drifts, located to the byte (the fullest finding).
    const at = (stamp: string) => ({ system: [{ type: 'text', text: `Now: ${stamp}` }, { type: 'handle', ref: sys.id }], messages: [{ role: 'user', content: 'hi' }] });
    const r1 = await renderAnthropic(client, at('10:00:00'));
    await report(client, t, r1, anthropicUsage(promptTokens(r1), 0, r1.breakpoints[0]!.token_end));
    t.clock.advance(60_000);
    const r2 = await renderAnthropic(client, at('10:01:00'));
    const usage = (await client.post('/v1/usage', { request_id: r2.request_id, usage: anthropicUsage(promptTokens(r2), 0, r2.breakpoints[0]!.token_end) })).json;
    expect(usage.outcome.drift.byte_offset).toBeGreaterThan(0);
    expectDocumented(UsageResultSchema, usage);
    // Money without float noise (7.500000000000001e-05): at most 11 decimals shown.
    for (const seg of usage.outcome.segments) for (const v of Object.values(seg.cost) as number[]) expect(String(v)).not.toMatch(/\d{12,}/);

    // Unknown capture (no cache fields) with a total far from the estimate, and a request not reconciled yet.
    const chat = await client.post('/v1/render', { format: 'openai-chat', request: { model: 'gpt-4o', prefix: [bundle.id], messages: [{ role: 'user', content: 'x' }] } });
    const r3 = chat.json as typeof r2;
    const r4 = await renderAnthropic(client, { prefix: [bundle.id], messages: [{ role: 'user', content: 'y' }] });
    const batch = (await client.post('/v1/usage/batch', { records: [{ request_id: r3.request_id, usage: { prompt_tokens: promptTokens(r3) * 5 } }, { request_id: 'req_nope' }] })).json;
    expect(batch.results.map((r: { status: number }) => r.status)).toEqual([201, 422]);
    expectDocumented(UsageBatchResultSchema, batch);

    expect((await client.get(`/v1/requests/${r3.request_id}`)).json.outcome.total_mismatch.ratio).toBe(5);
    for (const id of [r2.request_id, r3.request_id, r4.request_id]) {
      const view = (await client.get(`/v1/requests/${id}`)).json;
      expectDocumented(RequestViewSchema, view);
    }
    const handleReport = (await client.get(`/v1/reports/handles/${sys.id}`)).json;
    expect(handleReport.drift).toHaveLength(1);
    expectDocumented(HandleReportSchema, handleReport);
    expectDocumented(HandleReportSchema, (await client.get(`/v1/reports/handles/${bundle.id}?model=claude-sonnet-4-5`)).json);
    const tenantReport = (await client.get('/v1/reports')).json;
    expect(tenantReport.handles.length).toBeGreaterThan(1);
    expectDocumented(TenantReportSchema, tenantReport);
    // With its days and each type's figures, and of one type.
    const withDays = (await client.get('/v1/reports?days=true&type=artifact&by_type=true')).json;
    expect(withDays.days).toHaveLength(1);
    expect(withDays.by_type.artifact.handles_total).toBe(2);
    expect(withDays.by_type.artifact).not.toHaveProperty('handles');
    expectDocumented(TenantReportSchema, withDays);
    await t.services.writes.idle();
    const list = (await client.get('/v1/requests')).json;
    expect(list.requests).toHaveLength(4);
    expectDocumented(RequestListSchema, list);
  });

  it('the OpenAPI document names these shapes, and lists body errors only where there is a body', async () => {
    const doc = (await (await t.app.request('/openapi.json')).json()) as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }> }>> };
    const ref = (path: string, method: string, status: string) => doc.paths[path]![method]!.responses[status]!.content!['application/json']!.schema.$ref;
    expect(ref('/v1/reports/handles/{id}', 'get', '200')).toBe('#/components/schemas/HandleReport');
    expect(ref('/v1/reports', 'get', '200')).toBe('#/components/schemas/TenantReport');
    expect(ref('/v1/requests/{id}', 'get', '200')).toBe('#/components/schemas/Request');
    expect(ref('/v1/usage', 'post', '201')).toBe('#/components/schemas/UsageResult');
    expect(ref('/v1/usage/batch', 'post', '200')).toBe('#/components/schemas/UsageBatchResult');
    // A named shape that may be null is anyOf [shape, null]: an allOf with the $ref would refuse every null.
    const schemas = (doc as unknown as { components: { schemas: Record<string, { properties: Record<string, unknown> }> } }).components.schemas;
    for (const [name, field, target] of [['Request', 'outcome', 'Outcome'], ['Request', 'usage', 'NormalizedUsage'], ['Outcome', 'drift', 'DriftFinding']] as const)
      expect(schemas[name]!.properties[field], `${name}.${field}`).toMatchObject({ anyOf: [{ $ref: `#/components/schemas/${target}` }, { type: 'null' }] });
    for (const [path, methods] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(methods)) {
        const statuses = Object.keys(op.responses);
        if (method === 'get' || method === 'delete') expect(statuses.filter((s) => ['400', '413', '415'].includes(s)), `${method} ${path}`).toEqual([]);
        else if (path.startsWith('/v1/') && method === 'post') expect(statuses, `${method} ${path}`).toEqual(expect.arrayContaining(['400', '413', '415', '422']));
      }
  });
});
