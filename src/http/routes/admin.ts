import { createRoute, z } from '@hono/zod-openapi';
import type { TenantService } from '../../domain/tenants';
import type { TenantDeletion } from '../../domain/tenant-deletion';
import { DAY_MS } from '../../domain/clock';
import { pruneAnswer, type RequestRetention } from '../../domain/retention';
import { newRouter } from '../router';
import { IssuedKeySchema, Label, TenantListSchema, TenantSchema, TimeZoneName, commonErrors, problemResponse, readErrors } from '../schemas';

const issued = (description: string) => ({ content: { 'application/json': { schema: IssuedKeySchema } }, description });
/** These routes take no fields: a body, when one is sent, must be `{}` (a field a caller expects kept, a key's name, is refused, not dropped). */
const noFields = { content: { 'application/json': { schema: z.strictObject({}) } }, required: false };
const security = [{ adminKey: [] }];

const PruneBody = z.strictObject({
  older_than_days: z.number().int().min(1).max(36_500).openapi({ description: 'Requests rendered more than this many days ago are deleted (at least 1).', example: 30 }),
});
const PruneResultSchema = z
  .object({
    before: z.string().openapi({ description: 'Requests rendered before this moment were considered (never within twice the catalog\'s longest cache TTL of now).' }),
    pruned: z.number().int().openapi({ description: 'Requests deleted, with their reconciliation, summary, line, inline texts and index by handle.' }),
    kept: z.number().int().openapi({ description: 'Old enough, but kept: the sum of kept_for_replay, kept_for_drift and kept_started_late.' }),
    kept_for_replay: z.number().int().openapi({ description: 'Reconciled after their cache scope\'s latest snapshot: a restart replays them.' }),
    kept_for_drift: z.number().int().openapi({ description: 'Started within the catalog\'s longest cache TTL of their scope\'s latest call: a drift is located against them.' }),
    kept_started_late: z.number().int().openapi({ description: 'Rendered before `before`, but their call started after it.' }),
    floor_hours: z.number().openapi({ description: 'Nothing rendered within this many hours of now is pruned, whatever the age asked: twice the catalog\'s longest cache TTL (48), so a write premium still to be read, or a late report, finds its request.' }),
    batches: z.number().int().openapi({ description: 'Transactions of at most 1,000 requests each.' }),
  })
  .openapi('PruneResult');

const TenantDeletedSchema = z
  .object({
    id: z.string(),
    name: z.string().nullable().openapi({ description: 'Its name (null: a deletion resumed, its name already gone).' }),
    rows: z.number().int().openapi({ description: 'Rows deleted, in every table: its keys, handles and versions, requests and all their rows, reports, cache scopes.' }),
    batches: z.number().int().openapi({ description: 'Short transactions they took (the service answered between them).' }),
  })
  .openapi('TenantDeleted');

const TenantChange = z
  .strictObject({ name: Label.optional(), time_zone: TimeZoneName.optional() })
  .refine((b) => b.name !== undefined || b.time_zone !== undefined, { error: 'give name, time_zone or both', path: ['name'] });

const TenantIdParam = z.object({ id: z.string().min(1) });
// zod's own words for a missing parameter ("Invalid input: expected string, received undefined") said nothing of what to give.
const CONFIRM_REQUIRED = "confirm is required: the tenant's name, as GET /v1/tenants lists it (compared ignoring case and extra whitespace), to delete it and all its data";

const routes = {
  createTenant: createRoute({
    operationId: 'createTenant', method: 'post', path: '/v1/tenants', tags: ['admin'], summary: 'Create a tenant and its first API key', security,
    request: { body: { content: { 'application/json': { schema: z.strictObject({ name: Label, time_zone: TimeZoneName.optional() }) } }, required: true } },
    responses: { 201: issued('The tenant and its key (shown once)'), ...commonErrors, 409: problemResponse('tenant_name_taken: another tenant has this name (compared ignoring case and extra whitespace); `tenant` names it') },
  }),
  listTenants: createRoute({
    operationId: 'listTenants', method: 'get', path: '/v1/tenants', tags: ['admin'], summary: 'List the tenants and their keys (ids and hints, never a secret)', security,
    responses: { 200: { content: { 'application/json': { schema: TenantListSchema } }, description: 'Every tenant, oldest first, with its keys; and the deletions not finished, with what is left of each' }, 401: readErrors[401], 422: readErrors[422] },
  }),
  renameTenant: createRoute({
    operationId: 'renameTenant', method: 'patch', path: '/v1/tenants/{id}', tags: ['admin'], summary: 'Rename a tenant (names unique, as on creation), or set its time zone (until it has a reconciled request)', security,
    request: { params: TenantIdParam, body: { content: { 'application/json': { schema: TenantChange } }, required: true } },
    responses: {
      200: { content: { 'application/json': { schema: TenantSchema } }, description: 'The tenant with its new name or zone, as GET /v1/tenants lists it' },
      ...commonErrors,
      409: problemResponse('tenant_name_taken: another tenant has this name (compared ignoring case and extra whitespace); `tenant` names it. time_zone_fixed: the tenant has reconciled requests, whose days are counted in its zone (create a new tenant for another zone)'),
    },
  }),
  deleteTenant: createRoute({
    operationId: 'deleteTenant', method: 'delete', path: '/v1/tenants/{id}', tags: ['admin'], summary: 'Delete a tenant and every row of its data (its keys first)', security,
    request: {
      params: TenantIdParam,
      query: z.object({
        confirm: z.string({ error: CONFIRM_REQUIRED }).min(1, { error: CONFIRM_REQUIRED }).openapi({ description: "The tenant's name (compared ignoring case and extra whitespace): a wrong id is refused, not a team's history deleted." }),
      }),
    },
    responses: { 200: { content: { 'application/json': { schema: TenantDeletedSchema } }, description: 'Deleted: no row of it is left' }, ...readErrors },
  }),
  issueKey: createRoute({
    operationId: 'issueKey', method: 'post', path: '/v1/tenants/{id}/keys', tags: ['admin'], summary: 'Issue another API key for a tenant', security,
    request: { params: z.object({ id: z.string().min(1) }), body: noFields },
    responses: { 201: issued('The new key (shown once)'), ...commonErrors },
  }),
  rotateKey: createRoute({
    operationId: 'rotateKey', method: 'post', path: '/v1/keys/{id}/rotate', tags: ['admin'], summary: 'Replace a key: issue a new one, revoke the old', security,
    request: { params: z.object({ id: z.string().min(1) }), body: noFields },
    responses: { 201: issued('The new key (shown once)'), ...commonErrors, 409: problemResponse('conflict: the key was revoked') },
  }),
  revokeKey: createRoute({
    operationId: 'revokeKey', method: 'delete', path: '/v1/keys/{id}', tags: ['admin'], summary: 'Revoke a key', security,
    request: { params: z.object({ id: z.string().min(1) }) },
    responses: { 204: { description: 'Revoked' }, 401: readErrors[401], 404: readErrors[404], 422: readErrors[422] },
  }),
  prune: createRoute({
    operationId: 'pruneRequests', method: 'post', path: '/v1/prune', tags: ['admin'], summary: 'Delete requests rendered more than N days ago, with their detail (reports keep their figures)', security,
    request: { body: { content: { 'application/json': { schema: PruneBody } }, required: true } },
    responses: { 200: { content: { 'application/json': { schema: PruneResultSchema } }, description: 'What was removed, and what was kept' }, ...commonErrors },
  }),
};

export function adminRoutes(tenants: TenantService, retention: RequestRetention, deletion: TenantDeletion) {
  const app = newRouter();
  app.openapi(routes.renameTenant, (c) => c.json(tenants.renameTenant(c.req.valid('param').id, c.req.valid('json')), 200));
  app.openapi(routes.deleteTenant, async (c) => c.json(await deletion.delete(c.req.valid('param').id, c.req.valid('query').confirm), 200));
  app.openapi(routes.createTenant, (c) => c.json(tenants.createTenant(c.req.valid('json').name, c.req.valid('json').time_zone), 201));
  app.openapi(routes.listTenants, (c) => c.json({ tenants: tenants.list(), deleting: deletion.progress() }, 200));
  app.openapi(routes.issueKey, (c) => c.json(tenants.issueKey(c.req.valid('param').id), 201));
  app.openapi(routes.rotateKey, (c) => c.json(tenants.rotateKey(c.req.valid('param').id), 201));
  app.openapi(routes.prune, async (c) => {
    const r = await retention.prune(c.req.valid('json').older_than_days * DAY_MS);
    return c.json(pruneAnswer(r), 200);
  });
  app.openapi(routes.revokeKey, (c) => {
    tenants.revokeKey(c.req.valid('param').id);
    return c.body(null, 204);
  });
  return app;
}
