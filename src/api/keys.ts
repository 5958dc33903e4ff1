import { Type, type Static } from 'typebox';
import { Nullable, StringEnum } from '../schemas.js';
import { SCOPES, scopesBeyond, type Principal } from '../auth/scopes.js';
import { audiohookSecretIssuer } from '../auth/audiohook.js';
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
    scopes: Type.Array(StringEnum(SCOPES), { minItems: 1, maxItems: SCOPES.length }),
    tenant_id: Type.Optional(SafeId()),
    audiohook: Type.Optional(
      Type.Boolean({
        description:
          'also issue a Genesys AudioHook client secret (`audiohook_client_secret`, shown once): upgrades with this key must then carry an HTTP Message Signature made with it',
      }),
    ),
    sip_digest: Type.Optional(
      Type.Boolean({
        description:
          'SIPREC: the key may also authenticate an SBC by SIP digest (username = key id, password = secret)',
      }),
    ),
  },
  { additionalProperties: false },
);

const KeyView = Type.Object({
  id: Type.String(),
  tenant_id: Type.String(),
  name: Type.String(),
  prefix: Type.String({ description: 'the first characters of the secret, to tell keys apart' }),
  scopes: Type.Array(StringEnum(SCOPES)),
  operator: Type.Boolean(),
  sip_digest: Type.Boolean({ description: 'SIPREC: whether the key authenticates SIP by digest' }),
  created_at: Type.String({ format: 'date-time' }),
  last_used_at: Nullable(Type.String({ format: 'date-time' })),
  revoked_at: Nullable(Type.String({ format: 'date-time' })),
});

const CreatedKey = Type.Intersect([
  KeyView,
  Type.Object({
    secret: Type.String({ description: 'shown this once: Authorization: Bearer <secret>' }),
    audiohook_client_secret: Type.Optional(
      Type.String({
        description: 'with `audiohook: true`, shown this once: the Genesys AudioHook client secret (base64)',
      }),
    ),
  }),
]);

function keyView(key: ApiKey): Static<typeof KeyView> {
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
  app.post(
    '/api/keys',
    {
      schema: { operationId: 'createKey', body: CreateKeyBody, response: { 201: CreatedKey } },
      config: { scopes: ['admin'] },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const tenantId = targetTenant(principal, request.body.tenant_id);
      const beyond = scopesBeyond(principal, request.body.scopes);
      if (beyond.length > 0) {
        throw new HttpError('ERR_FORBIDDEN', `a key cannot grant scopes it does not hold: ${beyond.join(', ')}`, {
          field: 'scopes',
        });
      }
      if (!(await store.tenants.get(tenantId))) throw notFound(`tenant ${tenantId}`);
      const issuer = request.body.audiohook ? audiohookSecretIssuer(keyring) : null;
      const sipDigest = request.body.sip_digest
        ? (keyId: string, secret: string) => sealDigest(keyring, keyId, secret)
        : undefined;
      const { key, secret } = await store.keys.create({
        tenantId,
        name: request.body.name,
        scopes: request.body.scopes,
        audiohookSecret: issuer?.seal,
        sipDigest,
      });
      reply.code(201);
      // Both shown once: the key's secret is kept as a hash, the client secret sealed.
      return { ...keyView(key), secret, ...(issuer ? { audiohook_client_secret: issuer.secret } : {}) };
    },
  );

  app.get(
    '/api/keys',
    {
      schema: {
        operationId: 'listKeys',
        querystring: TenantQuery,
        response: { 200: Type.Object({ data: Type.Array(KeyView) }) },
      },
      config: { scopes: ['admin'] },
    },
    async (request) => {
      return { data: (await store.keys.list(keyReach(principalOf(request), request.query.tenant_id))).map(keyView) };
    },
  );

  app.get(
    '/api/keys/:keyId',
    {
      schema: { operationId: 'getKey', params: KeyParams, querystring: TenantQuery, response: { 200: KeyView } },
      config: { scopes: ['admin'] },
    },
    async (request) => {
      const key = await store.keys.get(keyReach(principalOf(request), request.query.tenant_id), request.params.keyId);
      if (!key) throw notFound(`key ${request.params.keyId}`);
      return keyView(key);
    },
  );

  app.delete(
    '/api/keys/:keyId',
    {
      schema: {
        operationId: 'revokeKey',
        params: KeyParams,
        querystring: TenantQuery,
        response: { 204: Type.Null({ description: 'revoked' }) },
      },
      config: { scopes: ['admin'] },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const key = await store.keys.get(keyReach(principal, request.query.tenant_id), request.params.keyId);
      if (!key || key.revokedAt !== null) throw notFound(`key ${request.params.keyId}`);
      // The operator key lives in tenant `default`; that tenant's own admins must not lock the operator out.
      if (key.operator && !principal.operator)
        throw new HttpError('ERR_FORBIDDEN', 'only the operator key may revoke the operator key');
      if (!(await store.keys.revoke(key.tenantId, key.id))) throw notFound(`key ${key.id}`);
      reply.code(204);
    },
  );
}
