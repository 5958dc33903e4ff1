// Built from: Bandwidth Programmable Voice docs, the `<StartStream>` BXML verb (`tracks`, `mode`,
// `<StreamParam>`) and its WebSocket messages (`start`, `media`, `stop`; `playAudio` and `clear`
// back on a `mode="bidirectional"` stream), and how pipecat's `BandwidthFrameSerializer` writes them.
import { CallrecError } from '../errors.js';
import { bytesPerSample } from '../../media/codec.js';
import type { Leg } from '../../media/types.js';
import { MediaMessageScan } from './media-scan.js';
import { LegReaders, PcmWriter, ReplyReader, type StreamOpening, type WireFormat } from './pcm.js';
import type { AdapterFactory, ProviderAdapter, ProviderEvent, RuntimeEvent, WireMessage } from './types.js';
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

/** PCM is 16-bit signed little-endian, at 8, 16 or 24 kHz (24 recorded at 16). */
const ENCODINGS = { pcmu: 'audio/PCMU', l16: 'audio/PCM', l16Rates: [8000, 16000, 24000] };

/** `playAudio`'s content type for audio in `codec` at `rate`. */
function contentType(codec: WireFormat['codec'], rate: number): string {
  return codec === 'pcmu'
    ? 'audio/pcmu'
    : `audio/pcm;rate=${rate};channels=1;bit-depth=16;endian=little;encoding=signed`;
}

/**
 * The rate of a runtime's `playAudio`: Bandwidth plays PCM at 8, 16 or 24 kHz into any stream
 * and resamples it (as pipecat's `BandwidthFrameSerializer` relies on, sending 24 kHz by
 * default), so on a PCM stream any of them is recorded, converted to the stream's rate. μ-law
 * into a PCM stream, or PCM into a μ-law one, is refused: the recording holds one codec.
 */
function playAudioRate(type: string, wire: WireFormat): number {
  const normal = type.toLowerCase().replace(/\s/g, '');
  const rate = wire.codec === 'pcmu' ? 8000 : Number(/;rate=(\d+);/.exec(normal)?.[1]);
  if (PLAY_RATES.includes(rate) && normal === contentType(wire.codec, rate)) return rate;
  throw new CallrecError(
    'ERR_UNSUPPORTED_CODEC',
    `playAudio in ${type.slice(0, 80)}; the stream is ${contentType(wire.codec, wire.rate)}`,
  );
}
const PLAY_RATES = [8000, 16000, 24000];

/** `metadata.tracks`: `[{ name, mediaFormat: { encoding, sampleRate } }]`, one format for all. */
function parseTracks(metadata: JsonObject): { legs: Leg[]; wire: WireFormat } {
  const tracks = metadata.tracks;
  if (!Array.isArray(tracks) || tracks.length === 0) throw malformed('metadata.tracks');
  const legs: Leg[] = [];
  let wire: WireFormat | undefined;
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
    if (wire !== undefined && (own.codec !== wire.codec || own.rate !== wire.rate))
      throw malformed('metadata.tracks', 'tracks in different formats');
    wire = own;
  }
  return { legs, wire: wire! };
}

function parseStart(message: JsonObject): StreamOpening {
  const metadata = objectField(message, 'metadata', 'metadata');
  const { legs, wire } = parseTracks(metadata);
  const params: Record<string, string> = {};
  flattenParams(message.streamParams, params);
  return {
    start: {
      providerCallId:
        optionalString(metadata, 'callId', 'metadata.callId') ?? optionalString(message, 'callId', 'callId'),
      streamId: optionalString(metadata, 'streamId', 'metadata.streamId'),
      params,
      legs,
      // `mode` is not in the start: a `bidirectional` `<StreamParam>` or the session's rule decides (SPEC §4).
    },
    wire,
  };
}

class BandwidthAdapter implements ProviderAdapter {
  readonly provider = 'bandwidth' as const;
  /** The stream's audio as the wire carries it, each leg's in the recording's format, and callrec's own back. */
  #wire: WireFormat | undefined;
  #legs: LegReaders | undefined;
  #writer: PcmWriter | undefined;
  /** A runtime's audio in the recording's format (at 24 kHz resampled, as the stream's). */
  #reply: ReplyReader | undefined;
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
        const { start, wire } = parseStart(message);
        const legs = new LegReaders(wire);
        this.#wire = wire;
        this.#legs = legs;
        this.#writer = new PcmWriter(legs.format, wire);
        this.#reply = new ReplyReader(wire, legs.format);
        return { type: 'start', start: { ...start, format: legs.format } };
      }
      case 'stop':
        return { type: 'stop' };
      default:
        throw unknownEvent(event);
    }
  }

  /** A media frame read by the scan; null when it is anything else, or not plain, and `JSON.parse` must read it. */
  #fastMedia(data: Buffer): ProviderEvent | null {
    const wire = this.#wire;
    const scan = this.#scan;
    if (wire === undefined || !scan.scan(data) || scan.leg === null || scan.payloadStart < 0) return null;
    const payload = this.#providerAudio.decodeBytes(data, scan.payloadStart, scan.payloadEnd, bytesPerSample(wire));
    return payload === null ? null : this.#place(scan.leg, payload, wire);
  }

  #media(message: JsonObject): ProviderEvent {
    const wire = this.#wire;
    if (wire === undefined) throw beforeStart('media');
    const leg = legOfTrack(stringField(message, 'track', 'track'), 'track');
    return this.#place(
      leg,
      this.#providerAudio.decode(stringField(message, 'payload', 'payload'), bytesPerSample(wire), 'payload'),
      wire,
    );
  }

  /** The frame after the samples its track has sent so far, in the recording's format. */
  #place(leg: Leg, payload: Buffer, wire: WireFormat): ProviderEvent {
    const timestampMs = (this.#samples[leg] * 1000) / wire.rate;
    this.#samples[leg] += payload.length / bytesPerSample(wire);
    return this.#legs!.read(leg, payload, timestampMs);
  }

  /** At the stream's end: what the legs' resamplers still hold. */
  flush(): ProviderEvent[] {
    return this.#legs?.flush() ?? [];
  }

  parseRuntimeMessage(data: Buffer, isBinary: boolean): RuntimeEvent {
    if (isBinary) throw malformed('message', 'binary frame');
    const message = parseJsonObject(data);
    const event = eventName(message, 'eventType');
    switch (event) {
      case 'playAudio': {
        const media = objectField(message, 'media', 'media');
        const wire = this.#wire;
        const reply = this.#reply;
        if (wire === undefined || reply === undefined) throw beforeStart('playAudio');
        const rate = playAudioRate(stringField(media, 'contentType', 'media.contentType'), wire);
        const payload = stringField(media, 'payload', 'media.payload');
        return {
          type: 'media',
          payload: reply.audio(this.#runtimeAudio.decode(payload, bytesPerSample(wire), 'media.payload'), rate),
        };
      }
      case 'clear':
        this.#reply?.clear();
        return { type: 'clear' };
      default:
        throw unknownEvent(event);
    }
  }

  mediaMessage(payload: Buffer): WireMessage {
    if (this.#wire === undefined || this.#writer === undefined) throw beforeStart('send');
    return textMessage({
      eventType: 'playAudio',
      media: {
        contentType: contentType(this.#wire.codec, this.#wire.rate),
        payload: this.#writer.write(payload).toString('base64'),
      },
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
