import { createRoute, z } from '@hono/zod-openapi';
import type { TenantService } from '../../domain/tenants';
import { newRouter } from '../router';
import { IssuedKeySchema, Label, TenantListSchema, commonErrors, problemResponse, readErrors } from '../schemas';

const issued = (description: string) => ({ content: { 'application/json': { schema: IssuedKeySchema } }, description });
/** These routes take no fields: a body, when one is sent, must be `{}` (a field a caller expects kept, a key's name, is refused, not dropped). */
const noFields = { content: { 'application/json': { schema: z.strictObject({}) } }, required: false };
const security = [{ adminKey: [] }];

const routes = {
  createTenant: createRoute({
    method: 'post', path: '/v1/tenants', tags: ['admin'], summary: 'Create a tenant and its first API key', security,
    request: { body: { content: { 'application/json': { schema: z.strictObject({ name: Label }) } }, required: true } },
    responses: { 201: issued('The tenant and its key (shown once)'), ...commonErrors },
  }),
  listTenants: createRoute({
    method: 'get', path: '/v1/tenants', tags: ['admin'], summary: 'List the tenants and their keys (ids and hints, never a secret)', security,
    responses: { 200: { content: { 'application/json': { schema: TenantListSchema } }, description: 'Every tenant, oldest first, with its keys' }, 401: readErrors[401] },
  }),
  issueKey: createRoute({
    method: 'post', path: '/v1/tenants/{id}/keys', tags: ['admin'], summary: 'Issue another API key for a tenant', security,
    request: { params: z.object({ id: z.string().min(1) }), body: noFields },
    responses: { 201: issued('The new key (shown once)'), ...commonErrors },
  }),
  rotateKey: createRoute({
    method: 'post', path: '/v1/keys/{id}/rotate', tags: ['admin'], summary: 'Replace a key: issue a new one, revoke the old', security,
    request: { params: z.object({ id: z.string().min(1) }), body: noFields },
    responses: { 201: issued('The new key (shown once)'), ...commonErrors, 409: problemResponse('conflict: the key was revoked') },
  }),
  revokeKey: createRoute({
    method: 'delete', path: '/v1/keys/{id}', tags: ['admin'], summary: 'Revoke a key', security,
    request: { params: z.object({ id: z.string().min(1) }) },
    responses: { 204: { description: 'Revoked' }, 401: readErrors[401], 404: readErrors[404] },
  }),
};

export function adminRoutes(tenants: TenantService) {
  const app = newRouter();
  app.openapi(routes.createTenant, (c) => c.json(tenants.createTenant(c.req.valid('json').name), 201));
  app.openapi(routes.listTenants, (c) => c.json({ tenants: tenants.list() }, 200));
  app.openapi(routes.issueKey, (c) => c.json(tenants.issueKey(c.req.valid('param').id), 201));
  app.openapi(routes.rotateKey, (c) => c.json(tenants.rotateKey(c.req.valid('param').id), 201));
  app.openapi(routes.revokeKey, (c) => {
    tenants.revokeKey(c.req.valid('param').id);
    return c.body(null, 204);
  });
  return app;
}
