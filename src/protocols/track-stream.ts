/**
 * The adapter family of providers that speak the protocol Twilio defined and Telnyx, SignalWire,
 * Plivo and Exotel adopted: JSON text frames `connected`, `start`, `media` (`media.track`,
 * `.payload`, `.timestamp`, `.chunk`), `dtmf`, `mark`, `stop` from the provider, and `media`,
 * `mark`, `clear` back to it (Plivo renames the last three: `TrackPlayback`).
 * One `TrackStreamAdapter` holds the message switch, the frame path and the builders; a
 * `TrackDialect` holds only what differs between the providers.
 */
import { bytesPerSample } from '../../media/codec.js';
import type { Leg } from '../../media/types.js';
import { MediaMessageScan } from './media-scan.js';
import { LegReaders, PcmWriter, ReplyReader, type StreamOpening, type WireFormat } from './pcm.js';
import type {
  Provider,
  ProviderAdapter,
  ProviderEvent,
  RuntimeEvent,
  StreamStart,
  UpgradeInfo,
  WireMessage,
} from './types.js';
import {
  beforeStart,
  checkMessageSize,
  eventName,
  frameTimestampMs,
  legOfTrack,
  malformed,
  NOTHING,
  objectField,
  optionalCount,
  parseJsonObject,
  ScratchDecoder,
  stringField,
  textMessage,
  unknownEvent,
  type JsonObject,
} from './wire.js';

/**
 * The messages that play audio into the call: their event names and bodies (after `event` and
 * the stream's address). Twilio's (`TRACK_PLAYBACK`) unless the provider renamed them.
 */
export interface TrackPlayback {
  /** Events a runtime sends (and callrec sends) to play audio, set a mark, empty the queue. */
  readonly media: string;
  readonly mark: string;
  readonly clear: string;
  /** The event the provider sends once playback reaches a mark. */
  readonly markEcho: string;
  /** Other events a runtime may send; they carry nothing for the recording (Plivo `sendDTMF`). */
  readonly runtimeQuiet: readonly string[];
  mediaBody(payload: string, wire: WireFormat): JsonObject;
  markBody(name: string): JsonObject;
  /** A mark's name, in a runtime's mark or the provider's echo of one. */
  markName(message: JsonObject): string;
  /** Throws `ERR_UNSUPPORTED_CODEC` when a runtime's audio message names another format than the stream's. */
  checkMedia(message: JsonObject, wire: WireFormat | undefined): void;
}

/** `media {payload}`, `mark {name}`, `clear`: Twilio's playback messages. */
export const TRACK_PLAYBACK: TrackPlayback = {
  media: 'media',
  mark: 'mark',
  clear: 'clear',
  markEcho: 'mark',
  runtimeQuiet: [],
  mediaBody: (payload) => ({ media: { payload } }),
  markBody: (name) => ({ mark: { name } }),
  markName: (message) => stringField(objectField(message, 'mark', 'mark'), 'name', 'mark.name'),
  // Twilio's media message names no format: it is the stream's.
  checkMedia: () => {},
};

/** `TrackDialect.runtimeSampleBytes` where a runtime plays the stream's own format only. */
export const streamSampleBytes = (wire: WireFormat | undefined): number =>
  wire === undefined ? 1 : bytesPerSample(wire);

/** `TrackDialect.scrubStart` for a start whose parameters are one object in `start`: drops its `token`. */
export const scrubStartParam =
  (key: string) =>
  (message: JsonObject): void => {
    const params = objectField(message, 'start', 'start')[key];
    if (typeof params === 'object' && params !== null) delete (params as JsonObject).token;
  };

/** What one provider of the family does its own way. */
export interface TrackDialect {
  readonly provider: Provider;
  /** The stream's description from a `start` message, and its audio as the wire carries it. */
  parseStart(message: JsonObject, upgrade: UpgradeInfo): StreamOpening;
  /** Fields every message to the provider carries after `event` (Twilio: `streamSid`). */
  address(start: StreamStart): JsonObject;
  /** Removes callrec's credentials from a start message, in place. */
  scrubStart(message: JsonObject, upgrade: UpgradeInfo): void;
  /** Events that carry nothing for the recording and go on to a runtime as they are (Telnyx `error`). */
  readonly quietEvents: readonly string[];
  /**
   * What a runtime's audio must be whole multiples of, in bytes: the stream's sample size, or
   * 1 where the provider also plays other payloads (Telnyx's MP3) and nothing can be checked.
   */
  runtimeSampleBytes(wire: WireFormat | undefined): number;
  /**
   * What places a frame: its `timestamp` (ms since the stream began), or only its 1-based
   * `chunk` count where `timestamp` is wall-clock time (Plivo).
   */
  readonly clock: 'timestamp' | 'chunk';
  /** The leg of a media frame that names no track (Exotel's caller-only stream); undefined where `track` is required. */
  readonly untrackedLeg?: Leg;
  readonly playback: TrackPlayback;
  /** `ProviderAdapter.playbackFrameMs`. */
  readonly playbackFrameMs?: number;
}

/**
 * Reads `media` messages, decoding payloads into its own scratch memory. An adapter keeps one
 * per direction, so a payload read from one side is never overwritten by the other.
 */
class TrackMediaReader {
  readonly decoder = new ScratchDecoder();
  readonly #scan = new MediaMessageScan();

  constructor(private readonly dialect: TrackDialect) {}

  /**
   * A provider frame read straight from the message bytes (see `MediaMessageScan`); null when
   * the message is anything else, or anything but plain, and `JSON.parse` must read it.
   */
  fastMedia(data: Buffer, wire: WireFormat | undefined, legs: LegReaders): ProviderEvent | null {
    const scan = this.#scan;
    if (wire === undefined || !scan.scan(data) || scan.payloadStart < 0) return null;
    const leg = scan.leg ?? this.dialect.untrackedLeg;
    const timestamp = this.dialect.clock === 'timestamp' && scan.timestamp >= 0 ? scan.timestamp : undefined;
    if (leg === undefined || (timestamp === undefined && scan.chunk < 1)) return null;
    const payload = this.decoder.decodeBytes(data, scan.payloadStart, scan.payloadEnd, bytesPerSample(wire));
    if (payload === null) return null;
    const timestampMs = frameTimestampMs(
      timestamp,
      scan.chunk < 0 ? undefined : scan.chunk,
      payload.length,
      wire,
      'media',
    );
    return legs.read(leg, payload, timestampMs);
  }

  /** A provider `media` message, after `JSON.parse`. */
  media(message: JsonObject, wire: WireFormat | undefined, legs: LegReaders | undefined): ProviderEvent {
    if (wire === undefined || legs === undefined) throw beforeStart('media');
    const media = objectField(message, 'media', 'media');
    const untracked = this.dialect.untrackedLeg;
    const leg =
      untracked !== undefined && media.track === undefined
        ? untracked
        : legOfTrack(stringField(media, 'track', 'media.track'), 'media.track');
    const payload = this.decoder.decode(
      stringField(media, 'payload', 'media.payload'),
      bytesPerSample(wire),
      'media.payload',
    );
    const timestamp = optionalCount(media, 'timestamp', 'media.timestamp');
    const timestampMs = frameTimestampMs(
      this.dialect.clock === 'timestamp' ? timestamp : undefined,
      optionalCount(media, 'chunk', 'media.chunk'),
      payload.length,
      wire,
      'media',
    );
    return legs.read(leg, payload, timestampMs);
  }

  /** A runtime's `media` payload read straight from the message bytes; null as for `fastMedia`. */
  fastPayload(data: Buffer, sampleBytes: number): Buffer | null {
    const scan = this.#scan;
    // The scan reads Twilio's `media` only; a provider that plays another event parses each.
    if (this.dialect.playback.media !== 'media' || !scan.scan(data) || scan.payloadStart < 0) return null;
    return this.decoder.decodeBytes(data, scan.payloadStart, scan.payloadEnd, sampleBytes);
  }
}

export class TrackStreamAdapter implements ProviderAdapter {
  readonly provider: Provider;
  readonly playbackFrameMs: number | undefined;
  /** The stream's audio as the wire carries it; undefined until the start. */
  #wire: WireFormat | undefined;
  /** Each leg's frames in the recording's format (resampled to 16 kHz from a 24 kHz wire). */
  #legs: LegReaders | undefined;
  /** Audio callrec plays, from the recording's format to the wire's. */
  #writer: PcmWriter | undefined;
  /** A runtime's audio in the recording's format; null where the wire's needs no conversion. */
  #reply: ReplyReader | null = null;
  /** `dialect.address` of the started stream; undefined until then, when nothing can be sent. */
  #address: JsonObject | undefined;
  /** One reader per direction: provider frames and runtime audio each keep their own scratch. */
  readonly #providerMedia: TrackMediaReader;
  readonly #runtimeMedia: TrackMediaReader;

  constructor(
    private readonly dialect: TrackDialect,
    private readonly upgrade: UpgradeInfo,
  ) {
    this.provider = dialect.provider;
    this.playbackFrameMs = dialect.playbackFrameMs;
    this.#providerMedia = new TrackMediaReader(dialect);
    this.#runtimeMedia = new TrackMediaReader(dialect);
  }

  parseProviderMessage(data: Buffer, isBinary: boolean): ProviderEvent {
    checkMessageSize(data);
    if (isBinary) throw malformed('message', 'binary frame');
    // The frame path: media messages are read from their bytes; everything else is parsed.
    const media = this.#legs && this.#providerMedia.fastMedia(data, this.#wire, this.#legs);
    if (media) return media;
    const message = parseJsonObject(data);
    const event = eventName(message);
    const { playback } = this.dialect;
    if (event === playback.markEcho) return { type: 'mark', name: playback.markName(message) };
    switch (event) {
      case 'media':
        return this.#providerMedia.media(message, this.#wire, this.#legs);
      case 'connected':
        return { type: 'connected' };
      case 'start': {
        const { start: opening, wire } = this.dialect.parseStart(message, this.upgrade);
        const legs = new LegReaders(wire);
        const start = { ...opening, format: legs.format };
        this.#wire = wire;
        this.#legs = legs;
        this.#writer = new PcmWriter(legs.format, wire);
        this.#reply = wire.rate === legs.format.sampleRate ? null : new ReplyReader(wire, legs.format);
        this.#address = this.dialect.address(start);
        return { type: 'start', start };
      }
      case 'dtmf':
        return { type: 'dtmf', digit: stringField(objectField(message, 'dtmf', 'dtmf'), 'digit', 'dtmf.digit') };
      case 'stop':
        return { type: 'stop' };
      default:
        if (this.dialect.quietEvents.includes(event)) return NOTHING;
        throw unknownEvent(event);
    }
  }

  /**
   * What a voice-agent runtime sends "to the provider": `media`, `mark`, `clear` (as the dialect's
   * playback names them). Media payloads are in the runtime reader's scratch memory, valid until its next read.
   */
  parseRuntimeMessage(data: Buffer, isBinary: boolean): RuntimeEvent {
    if (isBinary) throw malformed('message', 'binary frame');
    const sampleBytes = this.dialect.runtimeSampleBytes(this.#wire);
    const fast = this.#runtimeMedia.fastPayload(data, sampleBytes);
    if (fast !== null) return this.#runtimeAudio(fast);
    const message = parseJsonObject(data);
    const event = eventName(message);
    const { playback } = this.dialect;
    if (event === playback.media) {
      playback.checkMedia(message, this.#wire);
      const media = objectField(message, 'media', 'media');
      return this.#runtimeAudio(
        this.#runtimeMedia.decoder.decode(stringField(media, 'payload', 'media.payload'), sampleBytes, 'media.payload'),
      );
    }
    if (event === playback.mark) {
      const mark = { type: 'mark' as const, name: playback.markName(message) };
      return this.#reply?.mark(mark) ?? mark;
    }
    if (event === playback.clear) {
      this.#reply?.clear();
      return { type: 'clear' };
    }
    if (playback.runtimeQuiet.includes(event)) return { type: 'other' };
    throw unknownEvent(event);
  }

  #runtimeAudio(payload: Buffer): RuntimeEvent {
    return { type: 'media', payload: this.#reply?.audio(payload) ?? payload };
  }

  /** At the stream's end: what the legs' resamplers still hold. */
  flush(): ProviderEvent[] {
    return this.#legs?.flush() ?? [];
  }

  /** `{ event, ...address, ...body }`: the provider's message to this stream. */
  #message(event: string, body?: JsonObject): WireMessage {
    if (this.#address === undefined) throw beforeStart('send');
    return textMessage({ event, ...this.#address, ...body });
  }

  mediaMessage(payload: Buffer): WireMessage {
    const { playback } = this.dialect;
    if (this.#wire === undefined || this.#writer === undefined) throw beforeStart('send');
    return this.#message(
      playback.media,
      playback.mediaBody(this.#writer.write(payload).toString('base64'), this.#wire),
    );
  }

  markMessage(name: string): WireMessage {
    const { playback } = this.dialect;
    return this.#message(playback.mark, playback.markBody(name));
  }

  clearMessage(): WireMessage {
    return this.#message(this.dialect.playback.clear);
  }

  runtimeStartMessage(raw: Buffer, isBinary: boolean): WireMessage {
    if (isBinary) throw malformed('message', 'binary frame');
    const message = parseJsonObject(raw);
    this.dialect.scrubStart(message, this.upgrade);
    return textMessage(message);
  }
}
