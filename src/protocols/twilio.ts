// Built from: Twilio Docs, "Media Streams - WebSocket Messages".
import type { Leg, MediaFormat } from '../../media/types.js';
import type { AdapterFactory, ProviderAdapter, ProviderEvent, RuntimeEvent, StreamStart, WireMessage } from './types.js';
import {
  beforeStart,
  eventName,
  flattenParams,
  legOfTrack,
  malformed,
  mediaFormat,
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
import { bytesPerSample } from '../../media/codec.js';

const ENCODINGS = { pcmu: 'audio/x-mulaw', pcma: 'audio/x-alaw', l16: 'audio/l16' };

function parseStart(message: JsonObject): StreamStart {
  const start = objectField(message, 'start', 'start');
  const mediaFormatField = objectField(start, 'mediaFormat', 'start.mediaFormat');
  const sampleRate = mediaFormatField.sampleRate;
  if (typeof sampleRate !== 'number') throw malformed('start.mediaFormat.sampleRate');
  const format = mediaFormat(
    stringField(mediaFormatField, 'encoding', 'start.mediaFormat.encoding'),
    sampleRate,
    ENCODINGS,
    'le',
  );

  // `<Connect><Stream>` (bidirectional) lists only `inbound`; `<Start><Stream track="both_tracks">` both.
  const tracks = start.tracks ?? ['inbound'];
  if (!Array.isArray(tracks) || tracks.length === 0) throw malformed('start.tracks');
  const legs: Leg[] = tracks.map((track) => {
    if (typeof track !== 'string') throw malformed('start.tracks');
    return legOfTrack(track, 'start.tracks');
  });

  const params: Record<string, string> = {};
  flattenParams(start.customParameters, params);
  return {
    providerCallId: optionalString(start, 'callSid', 'start.callSid'),
    streamId: stringField(start, 'streamSid', 'start.streamSid'),
    params,
    format,
    legs,
    // Only `<Connect><Stream>` (bidirectional) sends the inbound track alone; a fork of the
    // outbound or both tracks is `<Start><Stream>`, which plays nothing sent back.
    canSendAudio: !legs.includes('agent'),
  };
}

class TwilioAdapter implements ProviderAdapter {
  readonly provider = 'twilio' as const;
  private streamSid: string | undefined;
  private format: MediaFormat | undefined;
  /** One reader per direction: provider frames and runtime audio each keep their own scratch. */
  private readonly providerMedia = new TrackMediaReader();
  private readonly runtimeMedia = new TrackMediaReader();

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
        const start = parseStart(message);
        this.streamSid = start.streamId;
        this.format = start.format;
        return { type: 'start', start };
      }
      case 'dtmf':
        return { type: 'dtmf', digit: stringField(objectField(message, 'dtmf', 'dtmf'), 'digit', 'dtmf.digit') };
      case 'mark':
        return { type: 'mark', name: stringField(objectField(message, 'mark', 'mark'), 'name', 'mark.name') };
      case 'stop':
        return { type: 'stop' };
      default:
        throw unknownEvent(event);
    }
  }

  parseRuntimeMessage(data: Buffer, isBinary: boolean): RuntimeEvent {
    return parseTrackRuntimeMessage(data, isBinary, this.format === undefined ? 1 : bytesPerSample(this.format), this.runtimeMedia);
  }

  private requireStreamSid(): string {
    if (this.streamSid === undefined) throw beforeStart('send');
    return this.streamSid;
  }

  mediaMessage(payload: Buffer): WireMessage {
    return textMessage({ event: 'media', streamSid: this.requireStreamSid(), media: { payload: payload.toString('base64') } });
  }

  markMessage(name: string): WireMessage {
    return textMessage({ event: 'mark', streamSid: this.requireStreamSid(), mark: { name } });
  }

  clearMessage(): WireMessage {
    return textMessage({ event: 'clear', streamSid: this.requireStreamSid() });
  }

  runtimeStartMessage(raw: Buffer, isBinary: boolean): WireMessage {
    if (isBinary) throw malformed('message', 'binary frame');
    const message = parseJsonObject(raw);
    const start = objectField(message, 'start', 'start');
    const params = start.customParameters;
    if (typeof params === 'object' && params !== null) delete (params as JsonObject).token;
    return textMessage(message);
  }
}

/** Twilio Media Streams (`<Start><Stream>` fork or `<Connect><Stream>` bidirectional). */
export const twilio: AdapterFactory = () => new TwilioAdapter();
