import { Type } from 'typebox';
import { Nullable } from '../schemas.js';
import { AgentSettingsPatchSchema, checkRuntimeUrls } from '../agents/settings.js';
import { principalOf } from '../auth/plugin.js';
import { notFound } from './errors.js';
import { SafeId } from '../ids.js';
import type { ApiDeps, ApiInstance } from './types.js';
import { agentView, AgentViewSchema } from './views.js';

const AgentParams = Type.Object({ agentId: SafeId() });

const AuditResponse = Type.Object({
  data: Type.Array(
    Type.Object({
      at: Type.String({ format: 'date-time' }),
      key_id: Nullable(Type.String(), { description: 'the API key that made the change' }),
      before: AgentSettingsPatchSchema,
      after: AgentSettingsPatchSchema,
    }),
    { description: 'newest first' },
  ),
});

/** `/api/agents/{id}` is named by what it does; the seed's `/agents/{id}` by that and where it is. */
const operationIds = {
  '': { update: 'updateAgentAtRoot', get: 'getAgentAtRoot' },
  '/api': { update: 'updateAgent', get: 'getAgent' },
} as const;

/**
 * Per-agent Voice Settings: `PATCH`/`GET /agents/{id}` (also under `/api`), `GET /api/agents`,
 * and each agent's change history, newest first: `GET /api/agents/{id}/audit`.
 */
export function agentRoutes(app: ApiInstance, { store, egress }: ApiDeps): void {
  // The seed documents `/agents/{id}`; `/api/agents/{id}` keeps the API under one prefix.
  for (const prefix of ['', '/api'] as const) {
    app.patch(
      `${prefix}/agents/:agentId`,
      {
        schema: {
          operationId: operationIds[prefix].update,
          params: AgentParams,
          body: AgentSettingsPatchSchema,
          response: { 200: AgentViewSchema },
        },
        config: { scopes: ['agents:write'] },
      },
      async (request) => {
        const principal = principalOf(request);
        await checkRuntimeUrls(egress, request.body);
        const agent = await store.agents.patch(
          principal.tenantId,
          request.params.agentId,
          request.body,
          principal.keyId,
        );
        return agentView(agent);
      },
    );

    app.get(
      `${prefix}/agents/:agentId`,
      {
        schema: { operationId: operationIds[prefix].get, params: AgentParams, response: { 200: AgentViewSchema } },
        config: { scopes: ['agents:write', 'recordings:read'] },
      },
      async (request) => {
        const agent = await store.agents.get(principalOf(request).tenantId, request.params.agentId);
        if (!agent) throw notFound(`agent ${request.params.agentId}`);
        return agentView(agent);
      },
    );
  }

  app.get(
    '/api/agents/:agentId/audit',
    {
      schema: { operationId: 'listAgentAudit', params: AgentParams, response: { 200: AuditResponse } },
      config: { scopes: ['agents:write'] },
    },
    async (request) => {
      const { tenantId } = principalOf(request);
      const { agentId } = request.params;
      if (!(await store.agents.get(tenantId, agentId))) throw notFound(`agent ${agentId}`);
      const entries = await store.agents.audit(tenantId, agentId);
      return { data: entries.reverse().map(({ at, keyId, before, after }) => ({ at, key_id: keyId, before, after })) };
    },
  );

  app.get(
    '/api/agents',
    {
      schema: { operationId: 'listAgents', response: { 200: Type.Object({ data: Type.Array(AgentViewSchema) }) } },
      config: { scopes: ['agents:write', 'recordings:read'] },
    },
    async (request) => {
      const agents = await store.agents.list(principalOf(request).tenantId);
      return { data: agents.map(agentView) };
    },
  );
}
