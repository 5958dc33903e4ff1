/**
 * The adapter family of providers that speak the protocol Twilio defined and Telnyx, SignalWire,
 * Plivo and Exotel adopted: JSON text frames `connected`, `start`, `media` (`media.track`,
 * `.payload`, `.timestamp`, `.chunk`), `dtmf`, `mark`, `stop` from the provider, and `media`,
 * `mark`, `clear` back to it (Plivo renames the last three: `TrackPlayback`).
 * One `TrackStreamAdapter` holds the message switch, the frame path and the builders; a
 * `TrackDialect` holds only what differs between the providers.
 */
import { bytesPerSample } from '../../media/codec.js';
import type { Leg, MediaFormat } from '../../media/types.js';
import { MediaMessageScan } from './media-scan.js';
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
  mediaBody(payload: string, format: MediaFormat): JsonObject;
  markBody(name: string): JsonObject;
  /** A mark's name, in a runtime's mark or the provider's echo of one. */
  markName(message: JsonObject): string;
  /** Throws `ERR_UNSUPPORTED_CODEC` when a runtime's audio message names another format than the stream's. */
  checkMedia(message: JsonObject, format: MediaFormat | undefined): void;
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
export const streamSampleBytes = (format: MediaFormat | undefined): number =>
  format === undefined ? 1 : bytesPerSample(format);

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
  /** The stream's description from a `start` message. */
  parseStart(message: JsonObject, upgrade: UpgradeInfo): StreamStart;
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
  runtimeSampleBytes(format: MediaFormat | undefined): number;
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
  fastMedia(data: Buffer, format: MediaFormat | undefined): ProviderEvent | null {
    const scan = this.#scan;
    if (format === undefined || !scan.scan(data) || scan.payloadStart < 0) return null;
    const leg = scan.leg ?? this.dialect.untrackedLeg;
    const timestamp = this.dialect.clock === 'timestamp' && scan.timestamp >= 0 ? scan.timestamp : undefined;
    if (leg === undefined || (timestamp === undefined && scan.chunk < 1)) return null;
    const payload = this.decoder.decodeBytes(data, scan.payloadStart, scan.payloadEnd, bytesPerSample(format));
    if (payload === null) return null;
    const timestampMs = frameTimestampMs(
      timestamp,
      scan.chunk < 0 ? undefined : scan.chunk,
      payload.length,
      format,
      'media',
    );
    return { type: 'media', leg, timestampMs, payload };
  }

  /** A provider `media` message, after `JSON.parse`. */
  media(message: JsonObject, format: MediaFormat | undefined): ProviderEvent {
    if (format === undefined) throw beforeStart('media');
    const media = objectField(message, 'media', 'media');
    const untracked = this.dialect.untrackedLeg;
    const leg =
      untracked !== undefined && media.track === undefined
        ? untracked
        : legOfTrack(stringField(media, 'track', 'media.track'), 'media.track');
    const payload = this.decoder.decode(
      stringField(media, 'payload', 'media.payload'),
      bytesPerSample(format),
      'media.payload',
    );
    const timestamp = optionalCount(media, 'timestamp', 'media.timestamp');
    const timestampMs = frameTimestampMs(
      this.dialect.clock === 'timestamp' ? timestamp : undefined,
      optionalCount(media, 'chunk', 'media.chunk'),
      payload.length,
      format,
      'media',
    );
    return { type: 'media', leg, timestampMs, payload };
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
  #format: MediaFormat | undefined;
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
    const media = this.#providerMedia.fastMedia(data, this.#format);
    if (media !== null) return media;
    const message = parseJsonObject(data);
    const event = eventName(message);
    const { playback } = this.dialect;
    if (event === playback.markEcho) return { type: 'mark', name: playback.markName(message) };
    switch (event) {
      case 'media':
        return this.#providerMedia.media(message, this.#format);
      case 'connected':
        return { type: 'connected' };
      case 'start': {
        const start = this.dialect.parseStart(message, this.upgrade);
        this.#format = start.format;
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
    const sampleBytes = this.dialect.runtimeSampleBytes(this.#format);
    const fast = this.#runtimeMedia.fastPayload(data, sampleBytes);
    if (fast !== null) return { type: 'media', payload: fast };
    const message = parseJsonObject(data);
    const event = eventName(message);
    const { playback } = this.dialect;
    if (event === playback.media) {
      playback.checkMedia(message, this.#format);
      const media = objectField(message, 'media', 'media');
      return {
        type: 'media',
        payload: this.#runtimeMedia.decoder.decode(
          stringField(media, 'payload', 'media.payload'),
          sampleBytes,
          'media.payload',
        ),
      };
    }
    if (event === playback.mark) return { type: 'mark', name: playback.markName(message) };
    if (event === playback.clear) return { type: 'clear' };
    if (playback.runtimeQuiet.includes(event)) return { type: 'other' };
    throw unknownEvent(event);
  }

  /** `{ event, ...address, ...body }`: the provider's message to this stream. */
  #message(event: string, body?: JsonObject): WireMessage {
    if (this.#address === undefined) throw beforeStart('send');
    return textMessage({ event, ...this.#address, ...body });
  }

  mediaMessage(payload: Buffer): WireMessage {
    const { playback } = this.dialect;
    if (this.#format === undefined) throw beforeStart('send');
    return this.#message(playback.media, playback.mediaBody(payload.toString('base64'), this.#format));
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
