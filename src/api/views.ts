import { Type, type Static } from 'typebox';
import { LostSpanSchema, Nullable, StringEnum } from '../schemas.js';
import { CallRecordingPatchSchema, resolveCallRecording } from '../agents/settings.js';
import type { Agent, Call, Recording } from '../store/index.js';

/*
 * What the API answers with, as schemas: Fastify serializes responses by them, the OpenAPI
 * document (and so a generated client) carries them, and the view types are derived from
 * them, so the three cannot drift.
 */

const Time = Type.String({ format: 'date-time' });

/** A JSON object another module owns the shape of (consent record, alignment, pause spans), passed on verbatim. */
const JsonObject = Type.Unsafe<Record<string, unknown>>(Type.Object({}, { additionalProperties: true }));

export const AgentViewSchema = Type.Object({
  id: Type.String(),
  voice_tools: Type.Object({
    call_recording: Type.Required(CallRecordingPatchSchema, { description: 'every setting, defaults included' }),
  }),
  created_at: Time,
  updated_at: Time,
});
export type AgentView = Static<typeof AgentViewSchema>;

export function agentView(agent: Agent): AgentView {
  return {
    id: agent.id,
    voice_tools: { call_recording: resolveCallRecording(agent.settings) },
    created_at: agent.createdAt,
    updated_at: agent.updatedAt,
  };
}

const RECORDING_STATUSES = [
  'recording',
  'paused',
  'processing',
  'ready',
  'failed',
  'deleting',
  'deleted',
] as const satisfies readonly Recording['status'][];

export const RecordingViewSchema = Type.Object({
  id: Type.String(),
  status: StringEnum(RECORDING_STATUSES),
  format: StringEnum(['mp3', 'wav', 'ogg']),
  channels: Type.Integer(),
  duration_ms: Nullable(Type.Number()),
  byte_size: Nullable(Type.Integer()),
  sha256: Nullable(Type.String()),
  error: Nullable(Type.String()),
  created_at: Time,
  ready_at: Nullable(Time),
  retention_expires_at: Type.String({
    format: 'date-time',
    description: "when retention deletes it: created + the agent's storage_days at recording time",
  }),
  complete: Type.Boolean({ description: 'false when audio was lost; lost_spans says where' }),
  lost_spans: Type.Array(LostSpanSchema),
});

export const CallViewSchema = Type.Object({
  id: Type.String(),
  agent_id: Type.String(),
  provider: Type.String(),
  mode: StringEnum(['fork', 'bridge']),
  status: StringEnum(['live', 'ended']),
  started_at: Time,
  ended_at: Nullable(Time),
  end_reason: Nullable(Type.String()),
  legs: Type.Array(StringEnum(['caller', 'agent'])),
  sample_rate: Type.Integer(),
  recording: Nullable(RecordingViewSchema),
  recording_status: StringEnum(['none', ...RECORDING_STATUSES]),
  consent: Nullable(JsonObject),
  pauses: Type.Array(JsonObject),
  alignment: Nullable(JsonObject),
  participants: Type.Array(JsonObject, {
    description: 'SIPREC: who the recording metadata named, and which leg each sent (empty for other providers)',
  }),
  legal_hold: Type.Boolean({ description: 'while true the recording cannot be deleted' }),
  legal_hold_reason: Nullable(Type.String()),
});
export type CallView = Static<typeof CallViewSchema>;

export function callView(call: Call, recording: Recording | null): CallView {
  return {
    id: call.id,
    agent_id: call.agentId,
    provider: call.provider,
    mode: call.mode,
    status: call.status,
    started_at: call.startedAt,
    ended_at: call.endedAt,
    end_reason: call.endReason,
    legs: call.legs,
    sample_rate: call.sampleRate,
    recording: recording && {
      id: recording.id,
      status: recording.status,
      format: recording.format,
      channels: recording.channels,
      duration_ms: recording.durationMs,
      byte_size: recording.byteSize,
      sha256: recording.sha256,
      error: recording.error,
      created_at: recording.createdAt,
      ready_at: recording.readyAt,
      retention_expires_at: new Date(
        Date.parse(recording.createdAt) + recording.storageDays * 86_400_000,
      ).toISOString(),
      complete: recording.complete,
      lost_spans: recording.lostSpans,
    },
    recording_status: recording?.status ?? 'none',
    consent: call.consent,
    pauses: call.pauses,
    alignment: call.alignment,
    participants: call.participants,
    legal_hold: call.legalHold,
    legal_hold_reason: call.legalHoldReason,
  };
}
