import { resolveCallRecording, type CallRecordingSettings } from '../agents/settings.js';
import type { Agent, Call, JsonObject, LostSpan, Recording } from '../store/index.js';

/** An agent as the API shows it: every recording setting resolved, defaults included. */
export interface AgentView {
  id: string;
  voice_tools: { call_recording: CallRecordingSettings };
  created_at: string;
  updated_at: string;
}

export function agentView(agent: Agent): AgentView {
  return {
    id: agent.id,
    voice_tools: { call_recording: resolveCallRecording(agent.settings) },
    created_at: agent.createdAt,
    updated_at: agent.updatedAt,
  };
}

export interface RecordingView {
  id: string;
  status: Recording['status'];
  format: Recording['format'];
  channels: number;
  duration_ms: number | null;
  byte_size: number | null;
  sha256: string | null;
  error: string | null;
  created_at: string;
  ready_at: string | null;
  /** When retention deletes it: created + the agent's `storage_days` at recording time (SPEC §6). */
  retention_expires_at: string;
  /** False when audio was lost; `lost_spans` says where. */
  complete: boolean;
  lost_spans: LostSpan[];
}

export interface CallView {
  id: string;
  agent_id: string;
  provider: string;
  mode: Call['mode'];
  status: Call['status'];
  started_at: string;
  ended_at: string | null;
  end_reason: string | null;
  legs: Call['legs'];
  sample_rate: number;
  recording: RecordingView | null;
  recording_status: Recording['status'] | 'none';
  consent: JsonObject | null;
  pauses: JsonObject[];
  alignment: JsonObject | null;
  /** SIPREC: who the recording metadata named, and which leg each sent (empty for other providers). */
  participants: JsonObject[];
  /** While true the recording cannot be deleted (SPEC §3 legal hold). */
  legal_hold: boolean;
  legal_hold_reason: string | null;
}

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
      retention_expires_at: new Date(Date.parse(recording.createdAt) + recording.storageDays * 86_400_000).toISOString(),
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
