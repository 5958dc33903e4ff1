import { Type } from '@sinclair/typebox';
import { SCOPES, scopesBeyond, type Principal } from '../auth/scopes.js';
import { principalOf } from '../auth/plugin.js';
import type { ApiKey } from '../store/index.js';
import { HttpError } from '../errors.js';
import { notFound } from './errors.js';
import { SafeId } from '../ids.js';
import { sealDigest } from '../sip/digest.js';
import type { ApiDeps, ApiInstance } from './types.js';

const TenantQuery = Type.Object({ tenant_id: Type.Optional(SafeId()) });

const CreateKeyBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    scopes: Type.Array(Type.Union(SCOPES.map((scope) => Type.Literal(scope))), { minItems: 1, maxItems: SCOPES.length }),
    tenant_id: Type.Optional(SafeId()),
    // SIPREC: the key may also authenticate an SBC by SIP digest (username = key id, password = secret).
    sip_digest: Type.Optional(Type.Boolean()),
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
    sip_digest: key.sipDigest,
    created_at: key.createdAt,
    last_used_at: key.lastUsedAt,
    revoked_at: key.revokedAt,
  };
}

/** An admin key manages its own tenant; only the operator's key may name another. */
function targetTenant(principal: Principal, requested: string | undefined): string {
  if (requested === undefined || requested === principal.tenantId) return principal.tenantId;
  if (!principal.operator) throw new HttpError('ERR_FORBIDDEN', 'only the operator key may manage another tenant');
  return requested;
}

/**
 * Where a key look-up may reach: an admin's own tenant; for the operator, the tenant it names
 * or (null) every tenant, since key ids are unique and the operator revokes any key by its id.
 */
function keyReach(principal: Principal, requested: string | undefined): string | null {
  return principal.operator && requested === undefined ? null : targetTenant(principal, requested);
}

const KeyParams = Type.Object({ keyId: SafeId() });

/**
 * API keys: `POST /api/keys` (the secret is shown once), `GET /api/keys`, `GET /api/keys/{id}`,
 * `DELETE /api/keys/{id}` (revokes). The operator reaches every tenant's keys by id.
 */
export function keyRoutes(app: ApiInstance, { store, keyring }: ApiDeps): void {
  app.post('/api/keys', { schema: { body: CreateKeyBody }, config: { scopes: ['admin'] } }, async (request, reply) => {
    const principal = principalOf(request);
    const tenantId = targetTenant(principal, request.body.tenant_id);
    const beyond = scopesBeyond(principal, request.body.scopes);
    if (beyond.length > 0) {
      throw new HttpError('ERR_FORBIDDEN', `a key cannot grant scopes it does not hold: ${beyond.join(', ')}`, { field: 'scopes' });
    }
    if (!(await store.tenants.get(tenantId))) throw notFound(`tenant ${tenantId}`);
    const sipDigest = request.body.sip_digest ? (keyId: string, secret: string) => sealDigest(keyring, keyId, secret) : undefined;
    const { key, secret } = await store.keys.create({ tenantId, name: request.body.name, scopes: request.body.scopes, sipDigest });
    reply.code(201);
    return { ...keyView(key), secret };
  });

  app.get('/api/keys', { schema: { querystring: TenantQuery }, config: { scopes: ['admin'] } }, async (request) => {
    return { data: (await store.keys.list(keyReach(principalOf(request), request.query.tenant_id))).map(keyView) };
  });

  app.get('/api/keys/:keyId', { schema: { params: KeyParams, querystring: TenantQuery }, config: { scopes: ['admin'] } }, async (request) => {
    const key = await store.keys.get(keyReach(principalOf(request), request.query.tenant_id), request.params.keyId);
    if (!key) throw notFound(`key ${request.params.keyId}`);
    return keyView(key);
  });

  app.delete(
    '/api/keys/:keyId',
    { schema: { params: KeyParams, querystring: TenantQuery }, config: { scopes: ['admin'] } },
    async (request, reply) => {
      const principal = principalOf(request);
      const key = await store.keys.get(keyReach(principal, request.query.tenant_id), request.params.keyId);
      if (!key || key.revokedAt !== null) throw notFound(`key ${request.params.keyId}`);
      // The operator key lives in tenant `default`; that tenant's own admins must not lock the operator out.
      if (key.operator && !principal.operator) throw new HttpError('ERR_FORBIDDEN', 'only the operator key may revoke the operator key');
      if (!(await store.keys.revoke(key.tenantId, key.id))) throw notFound(`key ${key.id}`);
      reply.code(204);
    },
  );
}
