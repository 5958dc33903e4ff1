/**
 * Audio as the platforms send it (jambonz, FreeSWITCH, Asterisk, Azure, and the JSON platforms
 * that stream L16 at 24 kHz: Bandwidth, Exotel): G.711 or L16 at 8 to 48 kHz in either byte
 * order, one channel or two interleaved, turned into what the recording takes: the same bytes
 * where the rate is 8 or 16 kHz, else L16 resampled to 16 kHz.
 */
import { endianness } from 'node:os';
import { CallrecError } from '../errors.js';
import { bytesPerSample } from '../../media/codec.js';
import { StreamResampler } from '../../media/resample.js';
import type { Leg, MediaFormat } from '../../media/types.js';
import type { ProviderEvent, RuntimeEvent, StreamStart } from './types.js';

/** Rates a platform may send L16 at; above 16 kHz the recording gets 16 kHz. */
const L16_RATES = new Set([8000, 16000, 24000, 48000]);
const HOST_ORDER = endianness() === 'LE' ? 'le' : 'be';

/** How audio arrives on the wire, before any conversion. */
export interface WireFormat {
  codec: MediaFormat['codec'];
  /** Samples a second on the wire. */
  rate: number;
  byteOrder: 'be' | 'le';
}

/** What a platform's start says: the stream, and how its audio arrives (the adapter fills in the recording's `format`). */
export interface StreamOpening {
  start: Omit<StreamStart, 'format'>;
  wire: WireFormat;
}

export function unsupportedCodec(name: string, rate: number): CallrecError {
  return new CallrecError('ERR_UNSUPPORTED_CODEC', `unsupported codec ${name.slice(0, 40)} at ${rate} Hz`);
}

/** Checks a wire format: G.711 at 8 kHz, L16 at 8, 16, 24 or 48 kHz; `name` is the platform's spelling, for the error. */
export function wireFormat(
  codec: MediaFormat['codec'] | null,
  rate: number,
  byteOrder: 'be' | 'le',
  name: string,
): WireFormat {
  const ok = codec === 'l16' ? L16_RATES.has(rate) : codec !== null && rate === 8000;
  if (!ok) throw unsupportedCodec(name, rate);
  return { codec: codec!, rate, byteOrder };
}

/** The recording's format for `wire`: itself at 8 or 16 kHz, else L16 at 16 kHz in this host's byte order. */
export function recordedFormat(wire: WireFormat): MediaFormat {
  if (wire.codec !== 'l16') return { codec: wire.codec, sampleRate: 8000 };
  if (wire.rate === 8000 || wire.rate === 16000)
    return { codec: 'l16', sampleRate: wire.rate, byteOrder: wire.byteOrder };
  return { codec: 'l16', sampleRate: 16000, byteOrder: HOST_ORDER };
}

/** Reused memory for one channel's converted audio: a view of the size asked for, regrown rarely. */
class Scratch {
  #bytes = Buffer.allocUnsafeSlow(1024);
  #view = this.#bytes.subarray(0, 0);
  #samples = new Int16Array(512);
  #sampleView = this.#samples.subarray(0, 0);

  bytes(length: number): Buffer {
    if (length === this.#view.length) return this.#view;
    if (length > this.#bytes.length) this.#bytes = Buffer.allocUnsafeSlow(Math.max(length, this.#bytes.length * 2));
    this.#view = this.#bytes.subarray(0, length);
    return this.#view;
  }

  samples(length: number): Int16Array {
    if (length === this.#sampleView.length) return this.#sampleView;
    if (length > this.#samples.length) this.#samples = new Int16Array(Math.max(length, this.#samples.length * 2));
    this.#sampleView = this.#samples.subarray(0, length);
    return this.#sampleView;
  }
}

/** One channel's conversion: its scratch memory and, where the rate needs it, its resampler. */
class Channel {
  readonly scratch = new Scratch();
  /** The last output's bytes, kept while the resampler hands back the same view. */
  #pcm: Int16Array | null = null;
  #pcmBytes: Buffer = Buffer.alloc(0);

  constructor(readonly resampler: StreamResampler | null) {}

  /** `pcm`'s bytes, in this host's order (a view, made once per output size). */
  bytesOf(pcm: Int16Array): Buffer {
    if (pcm !== this.#pcm) {
      this.#pcm = pcm;
      this.#pcmBytes = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
    }
    return this.#pcmBytes;
  }
}

/** How far a resampler's output trails its input, ms: its next output sample is that much before the input's end. */
function lagMs(resampler: StreamResampler): number {
  return (resampler.received / resampler.fromRate - resampler.emitted / resampler.toRate) * 1000;
}

/**
 * Converts a stream's wire frames, one or two interleaved channels (caller first), into the
 * recording's format. Results are views of its scratch memory, valid until the next `read`.
 */
export class PcmReader {
  readonly format: MediaFormat;
  readonly #wire: WireFormat;
  readonly #channels: Channel[];
  readonly #frameBytes: number;
  /** The last read's audio per channel, in `format`, and where it starts on the stream's clock. */
  readonly out: Buffer[] = [];
  timestampMs = 0;
  /** Where the last frame read ends on the stream's clock. */
  #endMs = 0;

  /** `format`: what to convert to; by default the recording's format for `wire` (a runtime's audio: its stream's). */
  constructor(wire: WireFormat, channels: 1 | 2, format = recordedFormat(wire)) {
    this.#wire = wire;
    this.format = format;
    const resample = this.format.sampleRate !== wire.rate;
    this.#channels = Array.from(
      { length: channels },
      () => new Channel(resample ? new StreamResampler(wire.rate, this.format.sampleRate) : null),
    );
    this.#frameBytes = bytesPerSample(this.format) * channels;
  }

  /** Reads one frame whose first sample is at `inputMs`; throws `ERR_BAD_PAYLOAD` unless it holds whole sample frames. */
  read(payload: Buffer, inputMs: number): void {
    if (payload.length % this.#frameBytes !== 0)
      throw new CallrecError('ERR_BAD_PAYLOAD', 'frame: not a whole number of samples');
    const channels = this.#channels;
    this.timestampMs = inputMs;
    if (channels[0].resampler === null) {
      if (channels.length === 1) this.out[0] = payload;
      else this.#deinterleave(payload);
      return;
    }
    const n = payload.length / this.#frameBytes;
    this.#endMs = inputMs + (n * 1000) / this.#wire.rate;
    const hi = this.#wire.byteOrder === 'be' ? 0 : 1;
    const stride = 2 * channels.length;
    for (let c = 0; c < channels.length; c++) {
      const channel = channels[c];
      const resampler = channel.resampler!;
      const pcm = channel.scratch.samples(n);
      for (let i = 0, b = 2 * c; i < n; i++, b += stride) pcm[i] = (payload[b + hi] << 8) | payload[b + 1 - hi];
      if (c === 0) this.timestampMs = inputMs - lagMs(resampler);
      this.out[c] = channel.bytesOf(resampler.push(pcm));
    }
  }

  /**
   * What the resamplers still hold back of the audio read so far, as `read` leaves it (`out`,
   * `timestampMs`), then a fresh start: at the end of a stream, or of a runtime's reply. False
   * where nothing is held (no resampling, or nothing read since the last flush).
   */
  flush(): boolean {
    const first = this.#channels[0].resampler;
    if (first === null || first.received === 0) return false;
    this.timestampMs = this.#endMs - lagMs(first);
    this.#channels.forEach((channel, c) => {
      this.out[c] = channel.bytesOf(channel.resampler!.flush());
    });
    return true;
  }

  /** Two interleaved L16 channels at the recording's rate, split byte for byte. */
  #deinterleave(payload: Buffer): void {
    const half = payload.length / 2;
    const caller = this.#channels[0].scratch.bytes(half);
    const agent = this.#channels[1].scratch.bytes(half);
    for (let i = 0, o = 0; i < payload.length; i += 4, o += 2) {
      caller[o] = payload[i];
      caller[o + 1] = payload[i + 1];
      agent[o] = payload[i + 2];
      agent[o + 1] = payload[i + 3];
    }
    this.out[0] = caller;
    this.out[1] = agent;
  }
}

/**
 * Audio in the recording's format (a consent prompt) rewritten in the wire's, for platforms that
 * play back only what they stream (Asterisk's channel format). Allocates: prompts only, never the
 * frame path.
 */
export class PcmWriter {
  readonly #resampler: StreamResampler | null;
  readonly #bigEndian: boolean;
  readonly #from: MediaFormat;

  constructor(from: MediaFormat, wire: WireFormat) {
    this.#from = from;
    this.#resampler = from.sampleRate === wire.rate ? null : new StreamResampler(from.sampleRate, wire.rate);
    this.#bigEndian = wire.byteOrder === 'be';
  }

  write(payload: Buffer): Buffer {
    if (this.#resampler === null) return payload;
    const pcm = new Int16Array(payload.length >>> 1);
    const big = this.#from.byteOrder === 'be';
    for (let i = 0; i < pcm.length; i++) pcm[i] = big ? payload.readInt16BE(2 * i) : payload.readInt16LE(2 * i);
    const out = this.#resampler.push(pcm);
    const bytes = Buffer.allocUnsafe(out.length * 2);
    for (let i = 0; i < out.length; i++) {
      if (this.#bigEndian) bytes.writeInt16BE(out[i], 2 * i);
      else bytes.writeInt16LE(out[i], 2 * i);
    }
    return bytes;
  }
}

/**
 * A stream whose legs arrive in frames of their own (Azure, Bandwidth, the Twilio family): one
 * reader per leg, each with its own resampler state and scratch. At 8 or 16 kHz a frame passes
 * as it came, no copy.
 */
export class LegReaders {
  readonly format: MediaFormat;
  readonly #readers: Record<Leg, PcmReader>;

  constructor(wire: WireFormat) {
    this.#readers = { caller: new PcmReader(wire, 1), agent: new PcmReader(wire, 1) };
    this.format = this.#readers.caller.format;
  }

  /** One leg's frame whose first sample is at `inputMs`, in the recording's format. */
  read(leg: Leg, payload: Buffer, inputMs: number): ProviderEvent {
    const reader = this.#readers[leg];
    reader.read(payload, inputMs);
    return { type: 'media', leg, timestampMs: Math.max(0, reader.timestampMs), payload: reader.out[0] };
  }

  /** At the stream's end: what each leg's resampler still holds, as frames. */
  flush(): ProviderEvent[] {
    const events: ProviderEvent[] = [];
    for (const leg of ['caller', 'agent'] as const) {
      const reader = this.#readers[leg];
      if (reader.flush())
        events.push({ type: 'media', leg, timestampMs: Math.max(0, reader.timestampMs), payload: reader.out[0] });
    }
    return events;
  }
}

/**
 * A runtime's audio back into the call, in the wire's codec at the stream's rate or another it
 * names, converted to the recording's format as the provider's audio is (where no conversion is
 * needed, the same bytes once checked to hold whole samples). A reply ends at a mark (the
 * resampler's look-ahead is played before it) or a clear (it is dropped).
 */
export class ReplyReader {
  readonly #wire: WireFormat;
  readonly #format: MediaFormat;
  /** One reader per rate the runtime sends at (its own scratch, apart from the provider's). */
  readonly #readers = new Map<number, PcmReader>();
  #last: PcmReader | undefined;

  constructor(wire: WireFormat, format: MediaFormat) {
    this.#wire = wire;
    this.#format = format;
  }

  /** `payload` in the recording's format: a view of scratch memory, valid until the next call. */
  audio(payload: Buffer, rate = this.#wire.rate): Buffer {
    let reader = this.#readers.get(rate);
    if (reader === undefined) {
      // Bounded: a runtime names a handful of rates at most, and an unsupported one throws here.
      reader = new PcmReader(
        wireFormat(this.#wire.codec, rate, this.#wire.byteOrder, 'runtime audio'),
        1,
        this.#format,
      );
      this.#readers.set(rate, reader);
    }
    reader.read(payload, 0);
    this.#last = reader;
    return reader.out[0];
  }

  /** A runtime's mark, carrying the end of the reply before it where the resampler held some back. */
  mark<T extends Extract<RuntimeEvent, { type: 'mark' }>>(event: T): T {
    const reader = this.#last;
    return reader?.flush() ? { ...event, payload: reader.out[0] } : event;
  }

  /** The rest of the reply is dropped: so is what the resampler held of it. */
  clear(): void {
    this.#last?.flush();
  }
}
