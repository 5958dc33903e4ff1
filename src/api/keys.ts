import { Type } from '@sinclair/typebox';
import { SCOPES, scopesBeyond, type Principal } from '../auth/scopes.js';
import { principalOf } from '../auth/plugin.js';
import type { ApiKey } from '../store/index.js';
import { HttpError, notFound } from './errors.js';
import { SafeId } from '../ids.js';
import type { ApiDeps, ApiInstance } from './types.js';

const TenantQuery = Type.Object({ tenant_id: Type.Optional(SafeId()) });

const CreateKeyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    scopes: Type.Array(Type.Union(SCOPES.map((scope) => Type.Literal(scope))), { minItems: 1, maxItems: SCOPES.length }),
    tenant_id: Type.Optional(SafeId()),
  },
  { additionalProperties: false },
);

function keyView(key: ApiKey) {
  return {
    id: key.id,
    tenant_id: key.tenantId,
    name: key.name,
    prefix: key.prefix,
    scopes: key.scopes,
    operator: key.operator,
    created_at: key.createdAt,
    last_used_at: key.lastUsedAt,
    revoked_at: key.revokedAt,
  };
}

/** An admin key manages its own tenant; only the operator's key may name another. */
export function targetTenant(principal: Principal, requested: string | undefined): string {
  if (requested === undefined || requested === principal.tenantId) return principal.tenantId;
  if (!principal.operator) throw new HttpError(403, 'ERR_FORBIDDEN', 'only the operator key may manage another tenant');
  return requested;
}

/** API keys: `POST /api/keys` (the secret is shown once), `GET /api/keys`, `DELETE /api/keys/{id}` (revokes). */
export function keyRoutes(app: ApiInstance, { store }: ApiDeps): void {
  app.post('/api/keys', { schema: { body: CreateKeyBody }, config: { scopes: ['admin'] } }, async (request, reply) => {
    const principal = principalOf(request);
    const tenantId = targetTenant(principal, request.body.tenant_id);
    const beyond = scopesBeyond(principal, request.body.scopes);
    if (beyond.length > 0) {
      throw new HttpError(403, 'ERR_FORBIDDEN', `a key cannot grant scopes it does not hold: ${beyond.join(', ')}`, { field: 'scopes' });
    }
    if (!(await store.tenants.get(tenantId))) throw notFound(`tenant ${tenantId}`);
    const { key, secret } = await store.keys.create({ tenantId, name: request.body.name, scopes: request.body.scopes });
    reply.code(201);
    return { ...keyView(key), secret };
  });

  app.get('/api/keys', { schema: { querystring: TenantQuery }, config: { scopes: ['admin'] } }, async (request) => {
    const tenantId = targetTenant(principalOf(request), request.query.tenant_id);
    return { data: (await store.keys.list(tenantId)).map(keyView) };
  });

  app.delete(
    '/api/keys/:keyId',
    { schema: { params: Type.Object({ keyId: SafeId() }), querystring: TenantQuery }, config: { scopes: ['admin'] } },
    async (request, reply) => {
      const principal = principalOf(request);
      const tenantId = targetTenant(principal, request.query.tenant_id);
      const key = await store.keys.get(tenantId, request.params.keyId);
      if (!key || key.revokedAt !== null) throw notFound(`key ${request.params.keyId}`);
      // The operator key lives in tenant `default`; that tenant's own admins must not lock the operator out.
      if (key.operator && !principal.operator) throw new HttpError(403, 'ERR_FORBIDDEN', 'only the operator key may revoke the operator key');
      if (!(await store.keys.revoke(tenantId, key.id))) throw notFound(`key ${key.id}`);
      reply.code(204);
    },
  );
}
