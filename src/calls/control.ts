/** Recording control for live calls (SPEC §3 `POST /api/calls/{id}/recording`). */
export type ControlAction = 'start' | 'stop' | 'pause' | 'resume';

export const CONTROL_ACTIONS: readonly ControlAction[] = ['start', 'stop', 'pause', 'resume'];

/** What a control action left the call's recording as. */
export interface ControlResult {
  recordingStatus: 'none' | 'consent' | 'recording' | 'paused' | 'processing' | 'failed';
}

/**
 * Applies a control action to a live call, whichever media node holds its socket.
 * Rejects with a `CallrecError`: `ERR_NOT_FOUND` (no live call with that id for the tenant),
 * `ERR_CONFLICT` (the transition is impossible now; the message says why), `ERR_UNAVAILABLE`
 * (no node answered in time).
 */
export interface CallControl {
  control(tenantId: string, callId: string, action: ControlAction): Promise<ControlResult>;
}
