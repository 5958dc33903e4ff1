/**
 * The adapter family of platforms that stream raw audio in binary frames after one opening text
 * frame, with no timestamps (a frame's position is the samples before it) and text frames for
 * control: Vonage's websocket, jambonz `listen`, FreeSWITCH `mod_audio_stream`, Asterisk
 * `chan_websocket`. One `BinaryStreamAdapter` holds the frame path, the rate conversion and the
 * runtime's audio; a `BinaryDialect` holds what each platform says in its text frames.
 */
import { PcmReader, PcmWriter, ReplyReader, wireFormat, type StreamOpening, type WireFormat } from './pcm.js';
import type { Provider, ProviderAdapter, ProviderEvent, RuntimeEvent, UpgradeInfo, WireMessage } from './types.js';
import { beforeStart, checkMessageSize, malformed, type JsonObject } from './wire.js';

/** What a platform's opening text frame says: the stream, and how its audio arrives. */
export interface BinaryOpening extends StreamOpening {
  /** Two for a stream of both legs interleaved, caller first. */
  channels: 1 | 2;
}

/** A rate sent as a number or a numeric string (jambonz, mod_audio_stream's `streamAudio`). */
export function rateField(o: JsonObject, name: string, path: string): number {
  const value = o[name];
  const rate = typeof value === 'string' && value !== '' ? Number(value) : value;
  if (typeof rate !== 'number' || !Number.isInteger(rate)) throw malformed(path);
  return rate;
}

/** `mono` and `mixed` are one channel (the caller's side, or both mixed); `stereo` both legs, caller first. */
export function mixChannels(mixType: string, path: string): 1 | 2 {
  if (mixType === 'mono' || mixType === 'mixed') return 1;
  if (mixType === 'stereo') return 2;
  throw malformed(path, `unknown mix type ${mixType.slice(0, 20)}`);
}

/** The opening of an L16 little-endian stream of one or two channels (jambonz, FreeSWITCH). */
export function l16Opening(
  providerCallId: string | undefined,
  params: Record<string, string>,
  rate: number,
  channels: 1 | 2,
): BinaryOpening {
  return {
    start: { providerCallId, params, legs: channels === 2 ? ['caller', 'agent'] : ['caller'] },
    wire: wireFormat('l16', rate, 'le', 'L16'),
    channels,
  };
}

/** A runtime's text frame: a `RuntimeEvent`, or audio in it (base64 JSON) at a rate it names. */
export type RuntimeText = Exclude<RuntimeEvent, { type: 'media' }> | { type: 'audio'; payload: Buffer; rate: number };

/** What one platform of the family does its own way. */
export interface BinaryDialect {
  readonly provider: Provider;
  /** The opening text frame. */
  parseStart(data: Buffer, upgrade: UpgradeInfo): BinaryOpening;
  /** A text frame after the opening one. */
  parseControl(data: Buffer): ProviderEvent;
  /** A text frame from a runtime speaking the platform's protocol. */
  parseRuntimeText(data: Buffer): RuntimeText;
  /** Audio callrec plays, already in the wire's format at `rate` Hz. */
  mediaMessage(wireAudio: Buffer, rate: number): WireMessage;
  markMessage(name: string): WireMessage | null;
  clearMessage(): WireMessage | null;
  /** The opening frame for a runtime, without callrec's credentials. */
  runtimeStartMessage(raw: Buffer, upgrade: UpgradeInfo): WireMessage;
}

export class BinaryStreamAdapter implements ProviderAdapter {
  readonly provider: Provider;
  #wire: WireFormat | undefined;
  #reader: PcmReader | undefined;
  #writer: PcmWriter | undefined;
  #reply: ReplyReader | undefined;
  #wireFrameBytes = 0;
  /** Sample frames received: the next frame's position. */
  #samples = 0;

  constructor(
    private readonly dialect: BinaryDialect,
    private readonly upgrade: UpgradeInfo,
  ) {
    this.provider = dialect.provider;
  }

  parseProviderMessage(data: Buffer, isBinary: boolean): ProviderEvent {
    checkMessageSize(data);
    if (isBinary) return this.#frame(data);
    if (this.#reader !== undefined) return this.dialect.parseControl(data);
    const { start, wire, channels } = this.dialect.parseStart(data, this.upgrade);
    this.#wire = wire;
    this.#reader = new PcmReader(wire, channels);
    this.#writer = new PcmWriter(this.#reader.format, wire);
    this.#reply = new ReplyReader(wire, this.#reader.format);
    this.#wireFrameBytes = (wire.codec === 'l16' ? 2 : 1) * channels;
    return { type: 'start', start: { ...start, format: this.#reader.format } };
  }

  flush(): ProviderEvent[] {
    const reader = this.#reader;
    return reader?.flush() ? [this.#event(reader)] : [];
  }

  #frame(data: Buffer): ProviderEvent {
    const reader = this.#reader;
    if (reader === undefined) throw beforeStart('audio');
    reader.read(data, (this.#samples * 1000) / this.#wire!.rate);
    this.#samples += data.length / this.#wireFrameBytes;
    return this.#event(reader);
  }

  /** What `reader` last produced, as one leg's frame or a stereo frame. */
  #event(reader: PcmReader): ProviderEvent {
    if (reader.out.length === 1)
      return { type: 'media', leg: 'caller', timestampMs: reader.timestampMs, payload: reader.out[0] };
    return { type: 'stereo', timestampMs: reader.timestampMs, caller: reader.out[0], agent: reader.out[1] };
  }

  parseRuntimeMessage(data: Buffer, isBinary: boolean): RuntimeEvent {
    const reply = this.#reply;
    if (reply === undefined) throw beforeStart('runtime message');
    if (isBinary) return { type: 'media', payload: reply.audio(data) };
    const text = this.dialect.parseRuntimeText(data);
    switch (text.type) {
      case 'audio':
        return { type: 'media', payload: reply.audio(text.payload, text.rate) };
      case 'mark':
        return reply.mark(text);
      case 'clear':
        reply.clear();
        return text;
      default:
        return text;
    }
  }

  mediaMessage(payload: Buffer): WireMessage {
    if (this.#writer === undefined) throw beforeStart('send');
    return this.dialect.mediaMessage(this.#writer.write(payload), this.#wire!.rate);
  }

  markMessage(name: string): WireMessage | null {
    return this.dialect.markMessage(name);
  }

  clearMessage(): WireMessage | null {
    return this.dialect.clearMessage();
  }

  runtimeStartMessage(raw: Buffer, isBinary: boolean): WireMessage {
    if (isBinary) throw malformed('message', 'binary frame');
    return this.dialect.runtimeStartMessage(raw, this.upgrade);
  }
}

/** Removes callrec's credentials from an opening frame's objects: `token`, and any value equal to the URL's token. */
export function dropCredentials(upgrade: UpgradeInfo, ...objects: unknown[]): void {
  const secret = upgrade.query.token;
  for (const o of objects) {
    if (typeof o !== 'object' || o === null) continue;
    for (const [key, value] of Object.entries(o))
      if (key === 'token' || (secret !== undefined && value === secret)) delete (o as JsonObject)[key];
  }
}
