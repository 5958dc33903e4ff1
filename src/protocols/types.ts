import type { IncomingHttpHeaders } from 'node:http';
import type { Leg, MediaFormat } from '../../media/types.js';

export type Provider =
  | 'twilio'
  | 'telnyx'
  | 'vonage'
  | 'signalwire'
  | 'plivo'
  | 'exotel'
  | 'bandwidth'
  | 'jambonz'
  | 'freeswitch'
  | 'asterisk'
  | 'azure'
  | 'genesys';

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
  /**
   * The provider streams one call in several sessions (AudioHook: a new session after a
   * transfer): a later session is recorded as call `<id>-2`, `-3`, … rather than refused.
   */
  manySessions?: boolean;
  /** SIPREC: the participants the recording metadata named, kept with the call. */
  participants?: Record<string, unknown>[];
}

/**
 * One message from the provider, in callrec's internal model. `reply`: what a session protocol
 * (AudioHook) must answer it with (`opened`, `pong`, `closed`); the session sends it at once.
 */
export type ProviderEvent = ProviderEventBody & { reply?: WireMessage };

type ProviderEventBody =
  | { type: 'connected' }
  | { type: 'start'; start: StreamStart }
  /**
   * Audio of one leg. `timestampMs` is the frame's position on the provider stream's clock
   * (ms since the stream began), derived from the provider's timestamp/sequence/frame count,
   * never from arrival time. `payload` is wire-encoded audio in the stream's format; it may be
   * a view into the adapter's scratch memory, valid only until the next parse call.
   */
  | { type: 'media'; leg: Leg; timestampMs: number; payload: Buffer }
  /** Audio of both legs from one interleaved frame (jambonz and FreeSWITCH `stereo`, AudioHook stereo), split by the adapter; payloads as for `media`. */
  | { type: 'stereo'; timestampMs: number; caller: Buffer; agent: Buffer }
  | { type: 'dtmf'; digit: string }
  /** The provider paused or resumed the stream (AudioHook `paused`/`resumed`; audio goes on from `atMs` of its clock): the recording's pauses. */
  | { type: 'pause' }
  | { type: 'resume'; atMs: number }
  /** Audio the provider dropped (AudioHook `discarded`): `[fromMs, toMs)` of its clock is lost; `reason` defaults to `LOST.discarded`. */
  | { type: 'lost'; fromMs: number; toMs: number; reason?: string }
  /**
   * The provider's flow control (Asterisk `MEDIA_XOFF`/`MEDIA_XON`): its playback queue is full,
   * send it nothing more until `paused` is false again. Relayed to a runtime as it came.
   */
  | { type: 'flow'; paused: boolean }
  /** The provider finished playing audio up to a mark we (or the runtime) sent. */
  | { type: 'mark'; name: string }
  | { type: 'stop' }
  /** A message that carries nothing for the recording (Vonage `websocket:cleared`, Telnyx `error`); relayed to a runtime as is. */
  | { type: 'other' };

/** One message from a voice-agent runtime that speaks the provider's protocol (bridge mode). */
export type RuntimeEvent =
  /** Audio the runtime plays into the call; `payload` may be adapter scratch memory, valid until the next parse call. */
  | { type: 'media'; payload: Buffer }
  /**
   * `payload`: the end of the runtime's audio before the mark, where the adapter held it back
   * (a resampler's look-ahead, on platforms streaming above the recording's rate).
   */
  | { type: 'mark'; name: string; payload?: Buffer }
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
  /** How long a piece of audio sent back should be, ms, where the provider plays short ones poorly (Exotel: 200). */
  readonly playbackFrameMs?: number;
  /** Parse one message the provider sent us. */
  parseProviderMessage(data: Buffer, isBinary: boolean): ProviderEvent;
  /**
   * At the stream's end: audio the adapter still holds (a resampler's look-ahead, on platforms
   * streaming above the recording's rate), as frames to record; absent or empty where none.
   */
  flush?(): ProviderEvent[];
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
  /** Asks the provider to stop (or restart) streaming while the recording is paused (AudioHook `pause`/`resume`); absent where it cannot. */
  pauseMessage?(paused: boolean): WireMessage;
  /** What tells the provider why callrec ends the stream before the socket closes (AudioHook `disconnect`); absent where the close frame says it all. */
  failMessage?(reason: string): WireMessage | null;
}

export type AdapterFactory = (upgrade: UpgradeInfo) => ProviderAdapter;
