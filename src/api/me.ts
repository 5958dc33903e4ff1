import { Type } from 'typebox';
import { StringEnum } from '../schemas.js';
import { SCOPES } from '../auth/scopes.js';
import { principalOf } from '../auth/plugin.js';
import { notFound } from './errors.js';
import type { ApiDeps, ApiInstance } from './types.js';

const MeResponse = Type.Object({
  tenant_id: Type.String(),
  key: Type.Object({
    id: Type.String(),
    name: Type.String(),
    scopes: Type.Array(StringEnum(SCOPES)),
  }),
  operator: Type.Boolean({ description: "The operator's key (CALLREC_API_KEY): manages every tenant" }),
  features: Type.Object({
    test_call: Type.Boolean({
      description: 'Telnyx credentials are configured and this is the operator key: POST /api/test-call/token works',
    }),
  }),
});

/** `GET /api/me`: who the key is and what it may do, so the dashboard can sign in and hide what its scopes forbid. */
export function meRoutes(app: ApiInstance, { store, telnyx }: ApiDeps): void {
  app.get(
    '/api/me',
    {
      schema: {
        operationId: 'getMe',
        summary: 'The calling API key, its tenant and scopes, and the optional features configured',
        response: { 200: MeResponse },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const key = await store.keys.get(principal.tenantId, principal.keyId);
      // Verified a moment ago; gone now only if deleted in between.
      if (!key) throw notFound(`key ${principal.keyId}`);
      return {
        tenant_id: principal.tenantId,
        key: { id: key.id, name: key.name, scopes: key.scopes },
        operator: principal.operator,
        features: { test_call: telnyx !== undefined && principal.operator },
      };
    },
  );
}
