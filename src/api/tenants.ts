import { Type } from 'typebox';
import { Nullable } from '../schemas.js';
import { principalOf } from '../auth/plugin.js';
import { applySettingsPatch, checkSettingsEgress, TenantSettingsPatchSchema, tenantView } from '../tenants/settings.js';
import { HttpError } from '../errors.js';
import { notFound } from './errors.js';
import { SafeId } from '../ids.js';
import type { ApiDeps, ApiInstance } from './types.js';

const CreateTenantBody = Type.Object(
  { id: SafeId(), name: Type.String({ minLength: 1, maxLength: 200 }) },
  { additionalProperties: false },
);

const TenantParams = Type.Object({ tenantId: SafeId() });

const TenantView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  created_at: Type.String({ format: 'date-time' }),
  webhook_url: Nullable(Type.String()),
  webhook_secret_set: Type.Boolean({ description: 'secrets are never shown, only whether one is set' }),
  storage_url: Nullable(Type.String()),
  storage_credentials_set: Type.Boolean(),
  public_key: Nullable(
    Type.String({ description: "PEM (SPKI) of the RSA key that wraps this tenant's recording keys" }),
  ),
  sip_sources: Type.Array(Type.String(), {
    description: "SIPREC: the SBCs' addresses or CIDRs this tenant's recording sessions come from",
  }),
});

/**
 * `POST /api/tenants` (the operator's key creates tenants), and a tenant's settings:
 * `GET`/`PATCH /api/tenants/{id}` for that tenant's admins or the operator; secrets are
 * sealed with the master keyring and never shown.
 */
export function tenantRoutes(app: ApiInstance, { store, keyring, egress }: ApiDeps): void {
  app.post(
    '/api/tenants',
    {
      schema: {
        operationId: 'createTenant',
        body: CreateTenantBody,
        response: { 201: Type.Pick(TenantView, ['id', 'name', 'created_at']) },
      },
      config: { scopes: ['admin'] },
    },
    async (request, reply) => {
      if (!principalOf(request).operator)
        throw new HttpError('ERR_FORBIDDEN', 'only the operator key may create tenants');
      const { id, name } = request.body;
      if (await store.tenants.get(id))
        throw new HttpError('ERR_CONFLICT', `tenant ${id} already exists`, { field: 'id' });
      const tenant = await store.tenants.ensure(id, name);
      reply.code(201);
      return { id: tenant.id, name: tenant.name, created_at: tenant.createdAt };
    },
  );

  app.get(
    '/api/tenants/:tenantId',
    {
      schema: { operationId: 'getTenant', params: TenantParams, response: { 200: TenantView } },
      config: { scopes: ['admin'] },
    },
    async (request) => {
      const { tenantId } = request.params;
      const principal = principalOf(request);
      // Another tenant's settings are not forbidden but absent (SPEC §3: another tenant's resource is a 404).
      const tenant = principal.operator || principal.tenantId === tenantId ? await store.tenants.get(tenantId) : null;
      if (!tenant) throw notFound(`tenant ${tenantId}`);
      return tenantView(tenant);
    },
  );

  app.patch(
    '/api/tenants/:tenantId',
    {
      schema: {
        operationId: 'updateTenant',
        params: TenantParams,
        body: TenantSettingsPatchSchema,
        response: { 200: TenantView },
      },
      config: { scopes: ['admin'] },
    },
    async (request) => {
      const { tenantId } = request.params;
      const principal = principalOf(request);
      if (!principal.operator && principal.tenantId !== tenantId) throw notFound(`tenant ${tenantId}`);
      await checkSettingsEgress(egress, request.body);
      const tenant = await store.tenants.updateSettings(tenantId, (current) =>
        applySettingsPatch(keyring, tenantId, current, request.body, { operator: principal.operator }),
      );
      if (!tenant) throw notFound(`tenant ${tenantId}`);
      return tenantView(tenant);
    },
  );
}
