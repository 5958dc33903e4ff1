import type { Call, LostSpan, Recording } from '../store/index.js';
import { CALLREC_VERSION } from '../version.js';
import type { LedgerPlace } from './ledger.js';

/** What a recording's signed manifest says (SPEC §9): enough for a third party to know what the audio holds. */
export interface RecordingManifest {
  type: 'callrec.recording-manifest';
  v: 1;
  recording_id: string;
  call_id: string;
  tenant_id: string;
  agent_id: string;
  provider: string;
  mode: string;
  started_at: string;
  ended_at: string | null;
  duration_ms: number;
  channels: number;
  /** Which party each channel holds, left first. */
  channel_parties: string[];
  sample_rate: number;
  /** The stored original, exactly as `GET …/recording` serves it without `?format=`. */
  audio: { format: string; sha256: string; byte_size: number };
  /** The consent record: mode, message and its hash, the prompt audio's hash, prompt times on the call's clock, digit, outcome, reason. */
  consent: Record<string, unknown> | null;
  pauses: Record<string, unknown>[];
  complete: boolean;
  lost_spans: LostSpan[];
  alignment: Record<string, unknown> | null;
  media_node: string | null;
  callrec_version: string;
  signed_at: string;
  /** Set when the recording was finalized before it could be signed (signed by a later migration or sweep). */
  signed_later: boolean;
  /** The manifest's place in its tenant's ledger: the hash of the entry before it binds the chain up to here. */
  ledger: LedgerPlace;
}

/** The manifest of a ready recording. */
export function buildManifest(
  recording: Recording,
  call: Call,
  place: LedgerPlace,
  signedAt: string,
  signedLater: boolean,
): RecordingManifest {
  if (recording.sha256 === null || recording.byteSize === null || recording.durationMs === null) {
    throw new TypeError(`recording ${recording.id} is not finalized: no audio hash to sign`);
  }
  return {
    type: 'callrec.recording-manifest',
    v: 1,
    recording_id: recording.id,
    call_id: recording.callId,
    tenant_id: recording.tenantId,
    agent_id: call.agentId,
    provider: call.provider,
    mode: call.mode,
    started_at: call.startedAt,
    ended_at: call.endedAt,
    duration_ms: recording.durationMs,
    channels: recording.channels,
    channel_parties: recording.channels === 2 ? ['caller', 'agent'] : ['caller+agent'],
    sample_rate: recording.sampleRate,
    audio: { format: recording.format, sha256: recording.sha256, byte_size: recording.byteSize },
    consent: call.consent,
    pauses: call.pauses,
    complete: recording.complete,
    lost_spans: recording.lostSpans,
    alignment: call.alignment,
    media_node: call.nodeId,
    callrec_version: CALLREC_VERSION,
    signed_at: signedAt,
    signed_later: signedLater,
    ledger: place,
  };
}
