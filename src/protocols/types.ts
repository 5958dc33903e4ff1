import type { IncomingHttpHeaders } from 'node:http';
import type { Leg, MediaFormat } from '../../media/types.js';

export type Provider = 'twilio' | 'telnyx' | 'vonage';

/** Where a call's media comes from: a provider's WebSocket, or a SIPREC session's RTP (`src/sip/`). */
export type CallSource = Provider | 'siprec';

/** What a provider's start message (Vonage: `websocket:connected`) tells us about the stream. */
export interface StreamStart {
  /** The provider's call id (Twilio CallSid, Telnyx call_control_id, Vonage uuid), when it sends one. */
  providerCallId?: string;
  /** The provider's id for this stream (Twilio streamSid, Telnyx stream_id), when it has one. */
  streamId?: string;
  /** Custom parameters of the stream, flattened to strings (Twilio customParameters, Telnyx
   * custom_parameters and JSON client_state, Vonage headers, the auth token header). */
  params: Record<string, string>;
  format: MediaFormat;
  /** Legs this socket carries: both for a forked `both_tracks` stream, else just the caller. */
  legs: Leg[];
  /**
   * Whether the provider plays audio sent back on this socket, as its start message says: true
   * for a two-way stream (Twilio `<Connect><Stream>`, whose start lists only the inbound track;
   * Vonage always), false for a one-way fork (Twilio `<Start><Stream>` with the outbound or both
   * tracks), undefined where the start does not say (Telnyx: bidirectional mode is set on the
   * Call Control command, not echoed), leaving the mode to the session's rule (SPEC §4).
   */
  canSendAudio?: boolean;
  /** SIPREC: the participants the recording metadata named, kept with the call. */
  participants?: Record<string, unknown>[];
}

/** One message from the provider, in callrec's internal model. */
export type ProviderEvent =
  | { type: 'connected' }
  | { type: 'start'; start: StreamStart }
  /**
   * Audio of one leg. `timestampMs` is the frame's position on the provider stream's clock
   * (ms since the stream began), derived from the provider's timestamp/sequence/frame count,
   * never from arrival time. `payload` is wire-encoded audio in the stream's format; it may be
   * a view into the adapter's scratch memory, valid only until the next parse call.
   */
  | { type: 'media'; leg: Leg; timestampMs: number; payload: Buffer }
  | { type: 'dtmf'; digit: string }
  /** The provider finished playing audio up to a mark we (or the runtime) sent. */
  | { type: 'mark'; name: string }
  | { type: 'stop' }
  /** A message that carries nothing for the recording (Vonage `websocket:cleared`, Telnyx `error`); relayed to a runtime as is. */
  | { type: 'other' };

/** One message from a voice-agent runtime that speaks the provider's protocol (bridge mode). */
export type RuntimeEvent =
  /** Audio the runtime plays into the call; `payload` may be adapter scratch memory, valid until the next parse call. */
  | { type: 'media'; payload: Buffer }
  | { type: 'mark'; name: string }
  | { type: 'clear' }
  /** A message the provider accepts but that carries nothing for the recording; forwarded as is. */
  | { type: 'other' };

/** A message ready for `ws.send(data, { binary })`. */
export interface WireMessage {
  data: Buffer | string;
  binary: boolean;
}

/** What the WebSocket upgrade request told us, before any message arrived. */
export interface UpgradeInfo {
  headers: IncomingHttpHeaders;
  query: Record<string, string>;
}

/**
 * Per-connection translator between one provider's wire protocol and callrec's model.
 * Stateful (stream ids, Vonage frame counting), so one instance per socket.
 *
 * Parse methods throw a `CallrecError` whose code says what was wrong:
 * `ERR_MALFORMED_MESSAGE`, `ERR_UNKNOWN_EVENT`, `ERR_BAD_PAYLOAD`, `ERR_UNSUPPORTED_CODEC`.
 */
export interface ProviderAdapter {
  readonly provider: CallSource;
  /** Parse one message the provider sent us. */
  parseProviderMessage(data: Buffer, isBinary: boolean): ProviderEvent;
  /** Parse one message a voice-agent runtime sent (it is in the provider's "to provider" format). */
  parseRuntimeMessage(data: Buffer, isBinary: boolean): RuntimeEvent;
  /** Audio callrec itself plays into the call (consent prompt), in the stream's format. */
  mediaMessage(payload: Buffer): WireMessage;
  /** A mark the provider echoes back once playback reaches it; null where it has none. */
  markMessage(name: string): WireMessage | null;
  /** Empties the provider's playback queue; null where it has none. */
  clearMessage(): WireMessage | null;
  /**
   * The provider's start message (the raw bytes it arrived as) rewritten for the runtime:
   * identical but for callrec's own credentials (`token`, the auth-token header value) removed.
   */
  runtimeStartMessage(raw: Buffer, isBinary: boolean): WireMessage;
}

export type AdapterFactory = (upgrade: UpgradeInfo) => ProviderAdapter;
