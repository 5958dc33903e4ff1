// Built from: Telnyx Developer Docs, "Stream call media over WebSocket" (Media Streaming AsyncAPI),
// and how pipecat's `TelnyxFrameSerializer` (a Telnyx-speaking runtime) reads and writes it.
import { TRACK_PLAYBACK, TrackStreamAdapter, type TrackDialect } from './track-stream.js';
import type { StreamOpening } from './pcm.js';
import type { AdapterFactory, UpgradeInfo } from './types.js';
import {
  flattenParams,
  headerValue,
  malformed,
  mediaFormat,
  objectField,
  optionalString,
  stringField,
  type JsonObject,
} from './wire.js';

/** Where Telnyx puts the call's `stream_auth_token` (SPEC §4). */
export const TELNYX_AUTH_HEADER = 'x-telnyx-streaming-auth-token';

const ENCODINGS = { pcmu: 'PCMU', pcma: 'PCMA', l16: 'L16' };

/** `client_state` is base64 text the application chose; only a JSON object in it is read. */
function decodeClientState(clientState: string | undefined): JsonObject | undefined {
  if (clientState === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(clientState, 'base64').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as JsonObject) : undefined;
  } catch {
    return undefined;
  }
}

/** A `{name, value}` entry of the list form of `custom_parameters`. */
function isNamedParam(item: unknown): item is { name: string; value: string } {
  return (
    typeof item === 'object' &&
    item !== null &&
    typeof (item as JsonObject).name === 'string' &&
    typeof (item as JsonObject).value === 'string'
  );
}

/**
 * `custom_parameters` arrive as an object; the Call Control command takes them as a list of
 * `{name, value}`, so that shape is accepted too.
 */
function customParams(value: unknown, into: Record<string, string>): void {
  if (!Array.isArray(value)) return flattenParams(value, into);
  for (const item of value) if (isNamedParam(item)) into[item.name] = item.value;
}

function authToken(upgrade: UpgradeInfo): string | undefined {
  return headerValue(upgrade.headers, TELNYX_AUTH_HEADER);
}

function parseStart(message: JsonObject, upgrade: UpgradeInfo): StreamOpening {
  const start = objectField(message, 'start', 'start');
  const mf = objectField(start, 'media_format', 'start.media_format');
  const sampleRate = mf.sample_rate;
  if (typeof sampleRate !== 'number') throw malformed('start.media_format.sample_rate');
  // Telnyx sends L16 in network byte order.
  const wire = mediaFormat(stringField(mf, 'encoding', 'start.media_format.encoding'), sampleRate, ENCODINGS, 'be');

  const params: Record<string, string> = {};
  flattenParams(decodeClientState(optionalString(start, 'client_state', 'start.client_state')), params);
  customParams(start.custom_parameters, params);
  const header = authToken(upgrade);
  if (params.token === undefined && header !== undefined) params.token = header;

  return {
    start: {
      providerCallId: optionalString(start, 'call_control_id', 'start.call_control_id'),
      streamId: optionalString(message, 'stream_id', 'stream_id'),
      params,
      // The start frame does not say which `stream_track` was requested; media frames name their
      // track, so both legs are declared and a caller-only stream simply never fills the agent leg.
      legs: ['caller', 'agent'],
      // `canSendAudio` stays unset: whether `stream_bidirectional_mode` was requested is not in
      // the start either, so the session's rule decides the mode (SPEC §4).
    },
    wire,
  };
}

/**
 * Drops callrec's credentials from a start for the runtime: the `token` parameter (either form
 * of `custom_parameters`, and inside a JSON `client_state`) and any parameter carrying the auth
 * header's value under another name. Everything else stays as Telnyx sent it.
 */
function scrubStart(message: JsonObject, upgrade: UpgradeInfo): void {
  const start = objectField(message, 'start', 'start');
  const secret = authToken(upgrade);
  const isCredential = (name: string, value: unknown) => name === 'token' || (secret !== undefined && value === secret);
  const params = start.custom_parameters;
  if (Array.isArray(params)) {
    start.custom_parameters = params.filter((p) => !(isNamedParam(p) && isCredential(p.name, p.value)));
  } else if (typeof params === 'object' && params !== null) {
    for (const [name, value] of Object.entries(params))
      if (isCredential(name, value)) delete (params as JsonObject)[name];
  }
  const state = decodeClientState(optionalString(start, 'client_state', 'start.client_state'));
  if (state === undefined) return;
  const credentials = Object.entries(state).filter(([name, value]) => isCredential(name, value));
  if (credentials.length === 0) return;
  for (const [name] of credentials) delete state[name];
  start.client_state = Buffer.from(JSON.stringify(state)).toString('base64');
}

const dialect: TrackDialect = {
  provider: 'telnyx',
  parseStart,
  // Messages to Telnyx need no stream id: the socket is the stream.
  address: () => ({}),
  scrubStart,
  // Telnyx reports rejected playback commands this way; the stream itself goes on.
  quietEvents: ['error'],
  // MP3 playback frames are `media` too, so no sample-size check is possible.
  runtimeSampleBytes: () => 1,
  clock: 'timestamp',
  playback: TRACK_PLAYBACK,
};

/** Telnyx media streaming; the auth token header, if any, becomes `params.token`. */
export const telnyx: AdapterFactory = (upgrade) => new TrackStreamAdapter(dialect, upgrade);
