// Built from: Bandwidth Programmable Voice docs, the `<StartStream>` BXML verb (`tracks`, `mode`,
// `<StreamParam>`) and its WebSocket messages (`start`, `media`, `stop`; `playAudio` and `clear`
// back on a `mode="bidirectional"` stream), and how pipecat's `BandwidthFrameSerializer` writes them.
import { CallrecError } from '../errors.js';
import { bytesPerSample } from '../../media/codec.js';
import type { Leg, MediaFormat } from '../../media/types.js';
import { MediaMessageScan } from './media-scan.js';
import type {
  AdapterFactory,
  ProviderAdapter,
  ProviderEvent,
  RuntimeEvent,
  StreamStart,
  WireMessage,
} from './types.js';
import {
  beforeStart,
  checkMessageSize,
  eventName,
  flattenParams,
  legOfTrack,
  malformed,
  mediaFormat,
  objectField,
  optionalString,
  parseJsonObject,
  ScratchDecoder,
  stringField,
  textMessage,
  unknownEvent,
  type JsonObject,
} from './wire.js';

/** PCM is 16-bit signed little-endian. */
const ENCODINGS = { pcmu: 'audio/PCMU', l16: 'audio/PCM' };

/** `playAudio`'s content type for the stream's format. */
function contentType(format: MediaFormat): string {
  return format.codec === 'pcmu'
    ? 'audio/pcmu'
    : `audio/pcm;rate=${format.sampleRate};channels=1;bit-depth=16;endian=little;encoding=signed`;
}

/** `metadata.tracks`: `[{ name, mediaFormat: { encoding, sampleRate } }]`, one format for all. */
function parseTracks(metadata: JsonObject): { legs: Leg[]; format: MediaFormat } {
  const tracks = metadata.tracks;
  if (!Array.isArray(tracks) || tracks.length === 0) throw malformed('metadata.tracks');
  const legs: Leg[] = [];
  let format: MediaFormat | undefined;
  for (const track of tracks) {
    if (typeof track !== 'object' || track === null) throw malformed('metadata.tracks');
    legs.push(legOfTrack(stringField(track as JsonObject, 'name', 'metadata.tracks.name'), 'metadata.tracks.name'));
    const mf = objectField(track as JsonObject, 'mediaFormat', 'metadata.tracks.mediaFormat');
    if (typeof mf.sampleRate !== 'number') throw malformed('metadata.tracks.mediaFormat.sampleRate');
    const own = mediaFormat(
      stringField(mf, 'encoding', 'metadata.tracks.mediaFormat.encoding'),
      mf.sampleRate,
      ENCODINGS,
      'le',
    );
    if (format !== undefined && (own.codec !== format.codec || own.sampleRate !== format.sampleRate))
      throw malformed('metadata.tracks', 'tracks in different formats');
    format = own;
  }
  return { legs, format: format! };
}

function parseStart(message: JsonObject): StreamStart {
  const metadata = objectField(message, 'metadata', 'metadata');
  const { legs, format } = parseTracks(metadata);
  const params: Record<string, string> = {};
  flattenParams(message.streamParams, params);
  return {
    providerCallId:
      optionalString(metadata, 'callId', 'metadata.callId') ?? optionalString(message, 'callId', 'callId'),
    streamId: optionalString(metadata, 'streamId', 'metadata.streamId'),
    params,
    format,
    legs,
    // `mode` is not in the start: a `bidirectional` `<StreamParam>` or the session's rule decides (SPEC §4).
  };
}

class BandwidthAdapter implements ProviderAdapter {
  readonly provider = 'bandwidth' as const;
  #format: MediaFormat | undefined;
  /** Samples received per leg: media frames carry no timestamp, so each track's position is counted. */
  readonly #samples: Record<Leg, number> = { caller: 0, agent: 0 };
  readonly #providerAudio = new ScratchDecoder();
  readonly #runtimeAudio = new ScratchDecoder();
  /** The frame path, as for the Twilio family (`media-scan.ts`): Bandwidth's flat media message read from its bytes. */
  readonly #scan = new MediaMessageScan('flat');

  parseProviderMessage(data: Buffer, isBinary: boolean): ProviderEvent {
    checkMessageSize(data);
    if (isBinary) throw malformed('message', 'binary frame');
    const fast = this.#fastMedia(data);
    if (fast !== null) return fast;
    const message = parseJsonObject(data);
    const event = eventName(message, 'eventType');
    switch (event) {
      case 'media':
        return this.#media(message);
      case 'start': {
        const start = parseStart(message);
        this.#format = start.format;
        return { type: 'start', start };
      }
      case 'stop':
        return { type: 'stop' };
      default:
        throw unknownEvent(event);
    }
  }

  /** A media frame read by the scan; null when it is anything else, or not plain, and `JSON.parse` must read it. */
  #fastMedia(data: Buffer): ProviderEvent | null {
    const format = this.#format;
    const scan = this.#scan;
    if (format === undefined || !scan.scan(data) || scan.leg === null || scan.payloadStart < 0) return null;
    const payload = this.#providerAudio.decodeBytes(data, scan.payloadStart, scan.payloadEnd, bytesPerSample(format));
    return payload === null ? null : this.#place(scan.leg, payload, format);
  }

  #media(message: JsonObject): ProviderEvent {
    const format = this.#format;
    if (format === undefined) throw beforeStart('media');
    const leg = legOfTrack(stringField(message, 'track', 'track'), 'track');
    return this.#place(
      leg,
      this.#providerAudio.decode(stringField(message, 'payload', 'payload'), bytesPerSample(format), 'payload'),
      format,
    );
  }

  /** The frame after the samples its track has sent so far. */
  #place(leg: Leg, payload: Buffer, format: MediaFormat): ProviderEvent {
    const timestampMs = (this.#samples[leg] * 1000) / format.sampleRate;
    this.#samples[leg] += payload.length / bytesPerSample(format);
    return { type: 'media', leg, timestampMs, payload };
  }

  parseRuntimeMessage(data: Buffer, isBinary: boolean): RuntimeEvent {
    if (isBinary) throw malformed('message', 'binary frame');
    const message = parseJsonObject(data);
    const event = eventName(message, 'eventType');
    switch (event) {
      case 'playAudio': {
        const media = objectField(message, 'media', 'media');
        const format = this.#format;
        const type = stringField(media, 'contentType', 'media.contentType');
        if (format !== undefined && type.toLowerCase().replace(/\s/g, '') !== contentType(format)) {
          throw new CallrecError(
            'ERR_UNSUPPORTED_CODEC',
            `playAudio in ${type.slice(0, 80)}; the stream is ${contentType(format)}`,
          );
        }
        const sampleBytes = format === undefined ? 1 : bytesPerSample(format);
        return {
          type: 'media',
          payload: this.#runtimeAudio.decode(
            stringField(media, 'payload', 'media.payload'),
            sampleBytes,
            'media.payload',
          ),
        };
      }
      case 'clear':
        return { type: 'clear' };
      default:
        throw unknownEvent(event);
    }
  }

  mediaMessage(payload: Buffer): WireMessage {
    if (this.#format === undefined) throw beforeStart('send');
    return textMessage({
      eventType: 'playAudio',
      media: { contentType: contentType(this.#format), payload: payload.toString('base64') },
    });
  }

  /** Bandwidth confirms no playback position, so a consent prompt cannot be known to have played. */
  markMessage(): null {
    return null;
  }

  clearMessage(): WireMessage {
    return textMessage({ eventType: 'clear' });
  }

  runtimeStartMessage(raw: Buffer, isBinary: boolean): WireMessage {
    if (isBinary) throw malformed('message', 'binary frame');
    const message = parseJsonObject(raw);
    const params = message.streamParams;
    if (typeof params === 'object' && params !== null) delete (params as JsonObject).token;
    return textMessage(message);
  }
}

/** Bandwidth `<StartStream>` (one-way, or `mode="bidirectional"`); `<StreamParam>`s become params. */
export const bandwidth: AdapterFactory = () => new BandwidthAdapter();
