/**
 * The adapter family of providers that speak the protocol Twilio defined and Telnyx adopted:
 * JSON text frames `connected`, `start`, `media` (`media.track`, `.payload`, `.timestamp`,
 * `.chunk`), `dtmf`, `mark`, `stop` from the provider, and `media`, `mark`, `clear` back to it.
 * One `TrackStreamAdapter` holds the message switch, the frame path and the builders; a
 * `TrackDialect` holds only what differs between the providers.
 */
import { bytesPerSample } from '../../media/codec.js';
import type { MediaFormat } from '../../media/types.js';
import { MediaMessageScan } from './media-scan.js';
import type { Provider, ProviderAdapter, ProviderEvent, RuntimeEvent, StreamStart, UpgradeInfo, WireMessage } from './types.js';
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

/** What one provider of the family does its own way. */
export interface TrackDialect {
  readonly provider: Provider;
  /** The stream's description from a `start` message. */
  parseStart(message: JsonObject, upgrade: UpgradeInfo): StreamStart;
  /** Fields every message to the provider carries after `event` (Twilio: `streamSid`). */
  address(start: StreamStart): JsonObject;
  /** Removes callrec's credentials from a start message's `start` object, in place. */
  scrubStart(start: JsonObject, upgrade: UpgradeInfo): void;
  /** Events that carry nothing for the recording and go on to a runtime as they are (Telnyx `error`). */
  readonly quietEvents: readonly string[];
  /**
   * What a runtime's audio must be whole multiples of, in bytes: the stream's sample size, or
   * 1 where the provider also plays other payloads (Telnyx's MP3) and nothing can be checked.
   */
  runtimeSampleBytes(format: MediaFormat | undefined): number;
}

/**
 * Reads `media` messages, decoding payloads into its own scratch memory. An adapter keeps one
 * per direction, so a payload read from one side is never overwritten by the other.
 */
class TrackMediaReader {
  readonly decoder = new ScratchDecoder();
  readonly #scan = new MediaMessageScan();

  /**
   * A provider frame read straight from the message bytes (see `MediaMessageScan`); null when
   * the message is anything else, or anything but plain, and `JSON.parse` must read it.
   */
  fastMedia(data: Buffer, format: MediaFormat | undefined): ProviderEvent | null {
    const scan = this.#scan;
    if (format === undefined || !scan.scan(data) || scan.leg === null || scan.payloadStart < 0) return null;
    if (scan.timestamp < 0 && scan.chunk < 1) return null;
    const payload = this.decoder.decodeBytes(data, scan.payloadStart, scan.payloadEnd, bytesPerSample(format));
    if (payload === null) return null;
    const timestampMs = frameTimestampMs(scan.timestamp < 0 ? undefined : scan.timestamp, scan.chunk < 0 ? undefined : scan.chunk, payload.length, format, 'media');
    return { type: 'media', leg: scan.leg, timestampMs, payload };
  }

  /** A provider `media` message, after `JSON.parse`. */
  media(message: JsonObject, format: MediaFormat | undefined): ProviderEvent {
    if (format === undefined) throw beforeStart('media');
    const media = objectField(message, 'media', 'media');
    const leg = legOfTrack(stringField(media, 'track', 'media.track'), 'media.track');
    const payload = this.decoder.decode(stringField(media, 'payload', 'media.payload'), bytesPerSample(format), 'media.payload');
    const timestampMs = frameTimestampMs(
      optionalCount(media, 'timestamp', 'media.timestamp'),
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
    if (!scan.scan(data) || scan.payloadStart < 0) return null;
    return this.decoder.decodeBytes(data, scan.payloadStart, scan.payloadEnd, sampleBytes);
  }
}

function markName(message: JsonObject): string {
  return stringField(objectField(message, 'mark', 'mark'), 'name', 'mark.name');
}

export class TrackStreamAdapter implements ProviderAdapter {
  readonly provider: Provider;
  #format: MediaFormat | undefined;
  /** `dialect.address` of the started stream; undefined until then, when nothing can be sent. */
  #address: JsonObject | undefined;
  /** One reader per direction: provider frames and runtime audio each keep their own scratch. */
  readonly #providerMedia = new TrackMediaReader();
  readonly #runtimeMedia = new TrackMediaReader();

  constructor(
    private readonly dialect: TrackDialect,
    private readonly upgrade: UpgradeInfo,
  ) {
    this.provider = dialect.provider;
  }

  parseProviderMessage(data: Buffer, isBinary: boolean): ProviderEvent {
    checkMessageSize(data);
    if (isBinary) throw malformed('message', 'binary frame');
    // The frame path: media messages are read from their bytes; everything else is parsed.
    const media = this.#providerMedia.fastMedia(data, this.#format);
    if (media !== null) return media;
    const message = parseJsonObject(data);
    const event = eventName(message);
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
      case 'mark':
        return { type: 'mark', name: markName(message) };
      case 'stop':
        return { type: 'stop' };
      default:
        if (this.dialect.quietEvents.includes(event)) return NOTHING;
        throw unknownEvent(event);
    }
  }

  /**
   * What a voice-agent runtime sends "to the provider": `media`, `mark`, `clear`. Media
   * payloads are in the runtime reader's scratch memory, valid until its next read.
   */
  parseRuntimeMessage(data: Buffer, isBinary: boolean): RuntimeEvent {
    if (isBinary) throw malformed('message', 'binary frame');
    const sampleBytes = this.dialect.runtimeSampleBytes(this.#format);
    const fast = this.#runtimeMedia.fastPayload(data, sampleBytes);
    if (fast !== null) return { type: 'media', payload: fast };
    const message = parseJsonObject(data);
    const event = eventName(message);
    switch (event) {
      case 'media': {
        const media = objectField(message, 'media', 'media');
        return { type: 'media', payload: this.#runtimeMedia.decoder.decode(stringField(media, 'payload', 'media.payload'), sampleBytes, 'media.payload') };
      }
      case 'mark':
        return { type: 'mark', name: markName(message) };
      case 'clear':
        return { type: 'clear' };
      default:
        throw unknownEvent(event);
    }
  }

  /** `{ event, ...address, ...body }`: the provider's message to this stream. */
  #message(event: string, body?: JsonObject): WireMessage {
    if (this.#address === undefined) throw beforeStart('send');
    return textMessage({ event, ...this.#address, ...body });
  }

  mediaMessage(payload: Buffer): WireMessage {
    return this.#message('media', { media: { payload: payload.toString('base64') } });
  }

  markMessage(name: string): WireMessage {
    return this.#message('mark', { mark: { name } });
  }

  clearMessage(): WireMessage {
    return this.#message('clear');
  }

  runtimeStartMessage(raw: Buffer, isBinary: boolean): WireMessage {
    if (isBinary) throw malformed('message', 'binary frame');
    const message = parseJsonObject(raw);
    this.dialect.scrubStart(objectField(message, 'start', 'start'), this.upgrade);
    return textMessage(message);
  }
}
