import { Type } from 'typebox';
import { StringEnum } from '../schemas.js';
import { principalOf } from '../auth/plugin.js';
import { CONTROL_ACTIONS } from '../calls/control.js';
import { CallParams } from './calls.js';
import { HttpError } from '../errors.js';
import { notFound } from './errors.js';
import type { ApiDeps, ApiInstance } from './types.js';

const ControlBody = Type.Object({ action: StringEnum(CONTROL_ACTIONS) }, { additionalProperties: false });

const ControlResponse = Type.Object({
  call_id: Type.String(),
  action: ControlBody.properties.action,
  recording_status: StringEnum(['none', 'consent', 'recording', 'paused', 'processing', 'failed'], {
    description: 'after the action',
  }),
});

/** `POST /api/calls/{id}/recording` `{"action": "start"|"stop"|"pause"|"resume"}`: recording control of a live call. */
export function controlRoutes(app: ApiInstance, { store, control }: ApiDeps): void {
  app.post(
    '/api/calls/:callId/recording',
    {
      schema: {
        operationId: 'controlRecording',
        params: CallParams,
        body: ControlBody,
        response: { 200: ControlResponse },
      },
      config: { scopes: ['calls:control'] },
    },
    async (request) => {
      const { tenantId } = principalOf(request);
      const { callId } = request.params;
      const { action } = request.body;
      // The database answers for the tenant's calls, so another tenant's call id never reaches the control bus.
      const call = await store.calls.get(tenantId, callId);
      if (!call) throw notFound(`call ${callId}`);
      if (call.status === 'ended') throw new HttpError('ERR_CONFLICT', `call ${callId} has ended`);
      const result = await control.control(tenantId, callId, action);
      return { call_id: callId, action, recording_status: result.recordingStatus };
    },
  );
}
