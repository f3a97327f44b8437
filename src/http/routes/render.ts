import { segmentsView } from '../views';
import { createRoute, z } from '@hono/zod-openapi';
import { modelEntrySchema, type ModelCatalog } from '../../domain/catalog/catalog';
import type { RequestService } from '../../domain/requests';
import { requestFormats } from '../../domain/render/request';
import { parseJsonTree, property, textOf } from '../../domain/render/json-text';
import type { Handler } from 'hono';
import { headerOf } from '../auth';
import { parseBody, readText } from '../body';
import { fastPost, requestIdHeader, type FastPostDeps } from '../fast-route';
import { newRouter, type AppEnv } from '../router';
import { validationError } from '../../domain/validation';
import { commonErrors, conflictErrors, Label, problemResponse, readErrors, RenderWarningSchema } from '../schemas';

const RenderBody = z
  .strictObject({
    format: z.enum(requestFormats),
    request: z.record(z.string(), z.unknown()).openapi({
      description:
        'The provider request body. Handles appear as a top-level "prefix": [refs] (tools into tools, system into system, messages first), or as {"type":"handle","ref":…} wherever a tool, system block, message or content block may stand. Every other field comes through byte for byte.',
    }),
    model: Label.optional().openapi({ description: "Model name when the body has none (Gemini); beside a body's own, the name the catalog and the cache scope use, the body keeping its own (a vLLM server's --served-model-name as vllm/<name>)." }),
    match_handles: z.boolean().optional().openapi({
      description:
        "Record the body's own tools and system prompt that are, as the provider reads them, an artifact version of the tenant as that version's segments (on its report). The body is not changed: no breakpoint or prompt_cache_key is added for them. For logs that carry the prompt inline (prefix-handles import --match-handles).",
    }),
  })
  .openapi('RenderRequest');

export const SegmentSchema = z
  .object({
    source: z.string(),
    path: z.array(z.string()),
    section: z.enum(['tools', 'system', 'messages']),
    byte_start: z.number().int(),
    byte_end: z.number().int(),
    token_start: z.number().int(),
    token_end: z.number().int(),
    tokens_estimated: z.boolean(),
    blocks: z.number().int(),
    digest: z.string(),
    chain: z.string(),
  })
  .openapi('Segment');

export const BreakpointSchema = z
  .object({ segment: z.number().int(), source: z.string(), token_end: z.number().int(), ttl: z.string(), set_by: z.enum(['caller', 'service', 'provider']) })
  .openapi('Breakpoint');

export const PredictionSchema = z
  .object({ read_tokens: z.number().int(), write_tokens: z.number().int() })
  .openapi('Prediction', { description: "The simulated cache's read and write for the request at render time." });

const RenderResponse = z
  .object({
    request_id: z.string(),
    model: z.object({ name: z.string(), catalog_entry: z.string(), fallback: z.boolean() }),
    body: z.record(z.string(), z.unknown()).openapi({ description: 'Ready to send to the provider; byte-exact caller fields.' }),
    segments: z.array(SegmentSchema),
    breakpoints: z.array(BreakpointSchema),
    prompt_cache_key: z.string().nullable(),
    prediction: z.union([PredictionSchema, z.null()]),
    matched: z
      .array(z.object({ segment: z.number().int(), source: z.string(), pointer: z.string().openapi({ description: 'Where the content stood in the API request (/request/tools, /request/system/0, /request/messages/0).' }) }))
      .optional()
      .openapi({ description: 'With match_handles: the content recorded as an artifact version, in prompt order.' }),
    warnings: z.array(RenderWarningSchema),
  })
  .openapi('RenderResult');

const routes = {
  render: createRoute({
    operationId: 'render',
    method: 'post',
    path: '/v1/render',
    tags: ['render'],
    summary: 'Render a provider request that references handles, and record it for reconciliation',
    request: { body: { content: { 'application/json': { schema: RenderBody } }, required: true } },
    responses: { 200: { content: { 'application/json': { schema: RenderResponse } }, description: 'The rendered request' }, ...commonErrors, ...conflictErrors, 409: problemResponse("version_conflict; or thinking_prefix_changed: a session's thinking blocks would go under another system, tools or earlier messages than they were produced under, on a model with preserved thinking's prefix check (without drop_block)") },
  }),
  models: createRoute({
    operationId: 'listModels',
    method: 'get',
    path: '/v1/models',
    tags: ['render'],
    summary: 'The model catalog: cache rules and prices per model family, with sources',
    responses: { 200: { content: { 'application/json': { schema: z.object({ version: z.string(), models: z.array(modelEntrySchema) }).openapi('ModelCatalog') } }, description: 'The catalog' }, 401: readErrors[401], 422: readErrors[422] },
  }),
};

export const RENDER_PATH = '/v1/render';

/**
 * POST /v1/render, run ahead of the global middleware like /v1/usage (the same
 * checks in the same order, the same problems). Handled by hand because the
 * caller's bytes must come through exactly: the body is read as text and the
 * rendered body spliced into the response as text.
 */
export function renderRoute(deps: FastPostDeps & { requests: RequestService }): Handler<AppEnv> {
  return fastPost(deps, RENDER_PATH, async (c, auth) => {
    const raw = await readText(c, deps.maxBodyBytes);
    // No body at all (`curl -X POST`) is a missing document, as on every route: the schema names what is missing.
    if (raw === '' && headerOf(c, 'content-type') === undefined) throw validationError(RenderBody.safeParse(undefined).error!, '', 'the render request is not valid');
    const json = parseBody(raw);
    // JSON.parse has validated the text: the tree need not validate it again.
    const tree = parseJsonTree(raw, '', true);
    const parsed = RenderBody.safeParse(json);
    if (!parsed.success) throw validationError(parsed.error, '', 'the render request is not valid');
    const input = parsed.data;
    const requestNode = property(tree, 'request')!;
    const result = deps.requests.render({
      tenantId: auth.tenantId,
      format: input.format,
      bodyText: textOf(raw, requestNode),
      pointer: '/request',
      bodyIsJson: true,
      model: input.model,
      matchHandles: input.match_handles,
    });
    // Acknowledge only a durably recorded request (its usage will be reconciled against it).
    await result.committed;
    const head = JSON.stringify({
      request_id: result.requestId,
      model: { name: result.model.model, catalog_entry: result.model.entry.id, fallback: result.model.fallback },
    });
    const tail = JSON.stringify({
      segments: segmentsView(result.segments),
      breakpoints: result.breakpoints,
      prompt_cache_key: result.promptCacheKey,
      prediction: result.prediction,
      warnings: result.warnings,
      ...(input.match_handles ? { matched: result.matched } : {}),
    });
    // The body is spliced in as text, so its bytes are exactly what the provider will get.
    const text = `${head.slice(0, -1)},"body":${result.bodyText},${tail.slice(1)}`;
    return new Response(text, { status: 200, headers: { 'content-type': 'application/json', 'x-ph-request-id': result.requestId, ...requestIdHeader(c) } });
  });
}

/** The render route's OpenAPI entry (it is served by renderRoute, ahead of the middleware) and the model catalog. */
export function renderRoutes(catalog: ModelCatalog) {
  const app = newRouter();
  app.openAPIRegistry.registerPath(routes.render);
  app.openapi(routes.models, (c) => c.json({ version: catalog.version, models: catalog.entries() }, 200));
  return app;
}
