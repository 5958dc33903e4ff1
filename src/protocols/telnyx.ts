// Built from: Telnyx Developer Docs, "Stream call media over WebSocket" (Media Streaming AsyncAPI).
import type { MediaFormat } from '../../media/types.js';
import type {
  AdapterFactory,
  ProviderAdapter,
  ProviderEvent,
  RuntimeEvent,
  StreamStart,
  UpgradeInfo,
  WireMessage,
} from './types.js';
import {
  eventName,
  flattenParams,
  headerValue,
  malformed,
  mediaFormat,
  NOTHING,
  objectField,
  optionalString,
  parseJsonObject,
  TrackMediaReader,
  stringField,
  textMessage,
  unknownEvent,
  type JsonObject,
  parseTrackMedia,
  parseTrackRuntimeMessage,
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

/**
 * `custom_parameters` arrive as an object; the Call Control command takes them as a list of
 * `{name, value}`, so that shape is accepted too.
 */
function customParams(value: unknown, into: Record<string, string>): void {
  if (!Array.isArray(value)) return flattenParams(value, into);
  for (const item of value) {
    if (typeof item === 'object' && item !== null && typeof item.name === 'string' && typeof item.value === 'string') {
      into[item.name] = item.value;
    }
  }
}

class TelnyxAdapter implements ProviderAdapter {
  readonly provider = 'telnyx' as const;
  private format: MediaFormat | undefined;
  /** One reader per direction: provider frames and runtime audio each keep their own scratch. */
  private readonly providerMedia = new TrackMediaReader();
  private readonly runtimeMedia = new TrackMediaReader();

  constructor(private readonly authToken: string | undefined) {}

  parseProviderMessage(data: Buffer, isBinary: boolean): ProviderEvent {
    if (isBinary) throw malformed('message', 'binary frame');
    // The frame path: media messages are read from their bytes; everything else is parsed.
    const media = this.providerMedia.fastMedia(data, this.format);
    if (media !== null) return media;
    const message = parseJsonObject(data);
    const event = eventName(message);
    switch (event) {
      case 'media':
        return parseTrackMedia(message, this.format, this.providerMedia);
      case 'connected':
        return { type: 'connected' };
      case 'start': {
        const start = this.parseStart(message);
        this.format = start.format;
        return { type: 'start', start };
      }
      case 'dtmf':
        return { type: 'dtmf', digit: stringField(objectField(message, 'dtmf', 'dtmf'), 'digit', 'dtmf.digit') };
      case 'mark':
        return { type: 'mark', name: stringField(objectField(message, 'mark', 'mark'), 'name', 'mark.name') };
      case 'stop':
        return { type: 'stop' };
      case 'error':
        // Telnyx reports rejected playback commands this way; the stream itself goes on.
        return NOTHING;
      default:
        throw unknownEvent(event);
    }
  }

  private parseStart(message: JsonObject): StreamStart {
    const start = objectField(message, 'start', 'start');
    const mf = objectField(start, 'media_format', 'start.media_format');
    const sampleRate = mf.sample_rate;
    if (typeof sampleRate !== 'number') throw malformed('start.media_format.sample_rate');
    // Telnyx sends L16 in network byte order.
    const format = mediaFormat(stringField(mf, 'encoding', 'start.media_format.encoding'), sampleRate, ENCODINGS, 'be');

    const params: Record<string, string> = {};
    flattenParams(decodeClientState(optionalString(start, 'client_state', 'start.client_state')), params);
    customParams(start.custom_parameters, params);
    if (params.token === undefined && this.authToken !== undefined) params.token = this.authToken;

    return {
      providerCallId: optionalString(start, 'call_control_id', 'start.call_control_id'),
      streamId: optionalString(message, 'stream_id', 'stream_id'),
      params,
      format,
      // The start frame does not say which `stream_track` was requested; media frames name their
      // track, so both legs are declared and a caller-only stream simply never fills the agent leg.
      legs: ['caller', 'agent'],
      // `canSendAudio` stays unset: whether `stream_bidirectional_mode` was requested is not in
      // the start either, so the session's rule decides the mode (SPEC §4).
    };
  }

  parseRuntimeMessage(data: Buffer, isBinary: boolean): RuntimeEvent {
    // MP3 playback frames are `media` too, so no sample-size check is possible here.
    return parseTrackRuntimeMessage(data, isBinary, 1, this.runtimeMedia);
  }

  mediaMessage(payload: Buffer): WireMessage {
    return textMessage({ event: 'media', media: { payload: payload.toString('base64') } });
  }

  markMessage(name: string): WireMessage {
    return textMessage({ event: 'mark', mark: { name } });
  }

  clearMessage(): WireMessage {
    return textMessage({ event: 'clear' });
  }

  runtimeStartMessage(raw: Buffer, isBinary: boolean): WireMessage {
    if (isBinary) throw malformed('message', 'binary frame');
    const message = parseJsonObject(raw);
    const start = objectField(message, 'start', 'start');
    const params = start.custom_parameters;
    if (Array.isArray(params)) {
      start.custom_parameters = params.filter((p) => !(typeof p === 'object' && p !== null && p.name === 'token'));
    } else if (typeof params === 'object' && params !== null) {
      delete (params as JsonObject).token;
    }
    const state = decodeClientState(optionalString(start, 'client_state', 'start.client_state'));
    if (state !== undefined && 'token' in state) {
      delete state.token;
      start.client_state = Buffer.from(JSON.stringify(state)).toString('base64');
    }
    return textMessage(message);
  }
}

/** Telnyx media streaming; the auth token header, if any, becomes `params.token`. */
export const telnyx: AdapterFactory = (upgrade: UpgradeInfo) =>
  new TelnyxAdapter(headerValue(upgrade.headers, TELNYX_AUTH_HEADER));
