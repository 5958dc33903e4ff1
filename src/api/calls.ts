import { Type } from 'typebox';
import { Nullable } from '../schemas.js';
import { principalOf } from '../auth/plugin.js';
import { CallrecError } from '../errors.js';
import { HttpError } from '../errors.js';
import { notFound } from './errors.js';
import { SafeId } from '../ids.js';
import type { ApiDeps, ApiInstance } from './types.js';
import { callView, CallViewSchema } from './views.js';

export const CallParams = Type.Object({ callId: SafeId() });

const LegalHoldBody = Type.Object(
  { hold: Type.Boolean(), reason: Type.String({ minLength: 1, maxLength: 500 }) },
  { additionalProperties: false },
);

const CallsPage = Type.Object({
  data: Type.Array(CallViewSchema),
  next_cursor: Nullable(Type.String(), { description: 'pass as cursor for the next page; null on the last' }),
});

/** Calls per page when `limit` is not given. */
const DEFAULT_PAGE_SIZE = 50;

const ListQuery = Type.Object({
  agent_id: Type.Optional(SafeId()),
  from: Type.Optional(Type.String({ minLength: 1 })),
  to: Type.Optional(Type.String({ minLength: 1 })),
  status: Type.Optional(CallViewSchema.properties.recording_status),
  has_recording: Type.Optional(Type.Boolean()),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: DEFAULT_PAGE_SIZE })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
});

/** Stored times are `toISOString()` strings, compared as text, so a filter must be in that exact form. */
function isoTime(value: string | undefined, field: string): string | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new HttpError('ERR_VALIDATION', `${field}: expected an ISO-8601 date-time`, { field });
  return new Date(ms).toISOString();
}

/** Call Logs (`GET /api/calls`), call metadata (`GET /api/calls/{id}`) and legal hold (`PUT /api/calls/{id}/legal-hold`). */
export function callRoutes(app: ApiInstance, { store }: ApiDeps): void {
  app.get(
    '/api/calls',
    {
      schema: { operationId: 'listCalls', querystring: ListQuery, response: { 200: CallsPage } },
      config: { scopes: ['recordings:read'] },
    },
    async (request) => {
      const { query } = request;
      const filters = {
        agentId: query.agent_id,
        from: isoTime(query.from, 'from'),
        to: isoTime(query.to, 'to'),
        status: query.status,
        hasRecording: query.has_recording,
      };
      try {
        const page = await store.calls.list(
          principalOf(request).tenantId,
          filters,
          query.cursor,
          query.limit ?? DEFAULT_PAGE_SIZE,
        );
        return {
          data: page.items.map(({ call, recording }) => callView(call, recording)),
          next_cursor: page.nextCursor,
        };
      } catch (err) {
        if (err instanceof CallrecError && err.code === 'ERR_INVALID_CURSOR') {
          throw new HttpError('ERR_VALIDATION', `cursor: ${err.message}`, { field: 'cursor' });
        }
        throw err;
      }
    },
  );

  app.get(
    '/api/calls/:callId',
    {
      schema: { operationId: 'getCall', params: CallParams, response: { 200: CallViewSchema } },
      config: { scopes: ['recordings:read'] },
    },
    async (request) => {
      const { tenantId } = principalOf(request);
      const call = await store.calls.get(tenantId, request.params.callId);
      if (!call) throw notFound(`call ${request.params.callId}`);
      return callView(call, await store.recordings.getByCall(tenantId, call.id));
    },
  );

  app.put(
    '/api/calls/:callId/legal-hold',
    {
      schema: {
        operationId: 'setLegalHold',
        params: CallParams,
        body: LegalHoldBody,
        response: { 200: CallViewSchema },
      },
      config: { scopes: ['admin'] },
    },
    async (request) => {
      const { tenantId, keyId } = principalOf(request);
      const { hold, reason } = request.body;
      const call = await store.calls.setLegalHold(tenantId, request.params.callId, hold, reason, keyId);
      if (!call) throw notFound(`call ${request.params.callId}`);
      return callView(call, await store.recordings.getByCall(tenantId, call.id));
    },
  );
}
