import { Type } from '@sinclair/typebox';
import { principalOf } from '../auth/plugin.js';
import { HttpError } from './errors.js';
import { TENANT_ID_PATTERN, type ApiDeps, type ApiInstance } from './types.js';

const CreateTenantBody = Type.Object(
  { id: Type.String({ pattern: TENANT_ID_PATTERN }), name: Type.String({ minLength: 1, maxLength: 200 }) },
  { additionalProperties: false },
);

/** `POST /api/tenants`: the operator's key creates tenants. */
export function tenantRoutes(app: ApiInstance, { store }: ApiDeps): void {
  app.post('/api/tenants', { schema: { body: CreateTenantBody }, config: { scopes: ['admin'] } }, async (request, reply) => {
    if (!principalOf(request).operator) throw new HttpError(403, 'ERR_FORBIDDEN', 'only the operator key may create tenants');
    const { id, name } = request.body;
    if (await store.tenants.get(id)) throw new HttpError(409, 'ERR_CONFLICT', `tenant ${id} already exists`, { field: 'id' });
    const tenant = await store.tenants.ensure(id, name);
    reply.code(201);
    return { id: tenant.id, name: tenant.name, created_at: tenant.createdAt };
  });
}
