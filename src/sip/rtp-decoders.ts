import { endianness } from 'node:os';
import opus from '@discordjs/opus';
import { G722Decoder } from '../../media/g722.js';
import { StreamResampler } from '../../media/resample.js';
import type { MediaFormat } from '../../media/types.js';

/** An RTP audio format by its SDP rtpmap: encoding name (upper case), RTP clock rate, channels. */
export interface RtpFormat {
  name: string;
  clockRate: number;
  channels: number;
}

/** How callrec names what it takes, for a 488's reason. */
export const DECODABLE = 'PCMU, PCMA, G722, opus, L16 (mono, 8/16/24/48 kHz)';

const HOST_ORDER = endianness() === 'LE' ? 'le' : 'be';
/** L16 rates passed to the call as they are, and those resampled to 16 kHz. */
const L16_NATIVE = new Set([8000, 16000]);
const L16_RESAMPLED = new Set([24000, 48000]);

/** Whether callrec decodes `format`; a reason when it does not. */
export function refusal(format: RtpFormat): string | null {
  const { name, clockRate, channels } = format;
  switch (name) {
    case 'PCMU':
    case 'PCMA':
    case 'G722':
      return clockRate === 8000 && channels === 1 ? null : `${name} is 8000 Hz mono`;
    case 'OPUS':
      return clockRate === 48000 && channels <= 2 ? null : 'opus is opus/48000/2 (RFC 7587)';
    case 'L16':
      if (channels !== 1) return 'L16 is taken mono only (a SIPREC stream is one participant)';
      return L16_NATIVE.has(clockRate) || L16_RESAMPLED.has(clockRate) ? null : `L16 at ${clockRate} Hz`;
    default:
      return `${name || 'an unknown payload type'} is not decoded`;
  }
}

/**
 * Turns one RTP stream's payloads into the call's media format, at the edge: G.711 and L16 at
 * 8/16 kHz pass through, G.722 and Opus are decoded to 16 kHz L16, L16 at 24/48 kHz is
 * resampled to 16 kHz. One per received stream (the stateful codecs keep their state).
 */
export interface RtpDecoder {
  /** What the call receives. */
  readonly format: MediaFormat;
  /** Whether a packet must be decoded in order: a late or repeated one is skipped, not decoded (it would disturb the state). */
  readonly stateful: boolean;
  /**
   * The call's bytes for one payload (a view valid until the next call; may be empty), and in
   * `ticks` the RTP clock ticks the payload covers.
   */
  decode(payload: Buffer): Buffer;
  ticks: number;
  /**
   * How far the last output lags the payload's first sample, ms: the codec's delay (encoder and
   * decoder) or a resampler's look-ahead, taken off its position so the audio lands where the
   * talker's did.
   */
  lagMs: number;
}

/** The decoder for a format `refusal` accepts. */
export function rtpDecoder(format: RtpFormat): RtpDecoder {
  switch (format.name) {
    case 'PCMU':
    case 'PCMA':
      return passThrough({ codec: format.name === 'PCMU' ? 'pcmu' : 'pcma', sampleRate: 8000 }, 1);
    case 'G722':
      return new G722RtpDecoder();
    case 'OPUS':
      return new OpusRtpDecoder();
    default:
      return L16_NATIVE.has(format.clockRate)
        ? passThrough({ codec: 'l16', sampleRate: format.clockRate as 8000 | 16000, byteOrder: 'be' }, 2)
        : new L16ResamplingDecoder(format.clockRate);
  }
}

function passThrough(format: MediaFormat, bytesPerSample: number): RtpDecoder {
  return {
    format,
    stateful: false,
    ticks: 0,
    lagMs: 0,
    decode(payload) {
      this.ticks = Math.floor(payload.length / bytesPerSample);
      return payload;
    },
  };
}

const L16_16K: MediaFormat = { codec: 'l16', sampleRate: 16000, byteOrder: HOST_ORDER };

/** Scratch samples that grow to the largest payload seen, and their bytes. */
class Scratch {
  #samples = new Int16Array(0);
  #bytes: Buffer = Buffer.alloc(0);

  samples(n: number): Int16Array {
    if (n > this.#samples.length) {
      this.#samples = new Int16Array(Math.max(n, 2 * this.#samples.length));
      this.#bytes = Buffer.from(this.#samples.buffer);
    }
    return this.#samples;
  }

  bytes(n: number): Buffer {
    return this.#bytes.subarray(0, 2 * n);
  }
}

/** G.722: 16 kHz audio on an 8 kHz RTP clock (RFC 3551 §4.5.2), one byte per tick. */
class G722RtpDecoder implements RtpDecoder {
  readonly format = L16_16K;
  readonly stateful = true;
  ticks = 0;
  /** The QMF pair (the SRC's analysis, our synthesis) delays by 23 samples at 16 kHz. */
  readonly lagMs = 23 / 16;
  readonly #codec = new G722Decoder();
  readonly #scratch = new Scratch();

  decode(payload: Buffer): Buffer {
    this.ticks = payload.length;
    const n = this.#codec.decode(payload, this.#scratch.samples(2 * payload.length));
    return this.#scratch.bytes(n);
  }
}

/** Opus (RFC 7587): a 48 kHz RTP clock; libopus decodes straight to 16 kHz mono, a stereo stream downmixed. */
class OpusRtpDecoder implements RtpDecoder {
  readonly format = L16_16K;
  readonly stateful = true;
  ticks = 0;
  /**
   * libopus's encoder look-ahead (2.5 ms + 4 ms delay compensation; the pre-skip of Ogg Opus,
   * media/encoders/opus.ts): RTP does not signal it, and an SRC's encoder is libopus in practice.
   */
  readonly lagMs = 312 / 48;
  readonly #codec = new opus.OpusEncoder(16000, 1);

  decode(payload: Buffer): Buffer {
    try {
      // libopus returns a fresh buffer: one allocation a packet, the library's.
      const pcm = this.#codec.decode(payload);
      this.ticks = (pcm.length / 2) * 3;
      return pcm;
    } catch {
      this.ticks = 0; // a corrupt packet: its span stays silence
      return Buffer.alloc(0);
    }
  }
}

/** L16 (network byte order) at 24 or 48 kHz, resampled to 16 kHz. */
class L16ResamplingDecoder implements RtpDecoder {
  readonly format = L16_16K;
  readonly stateful = true;
  ticks = 0;
  lagMs = 0;
  readonly #resampler: StreamResampler;
  readonly #scratch = new Scratch();
  /** The resampled output's bytes, kept while the resampler hands back the same view. */
  #pcm: Int16Array | null = null;
  #bytes: Buffer = Buffer.alloc(0);

  constructor(rate: number) {
    this.#resampler = new StreamResampler(rate, 16000);
  }

  decode(payload: Buffer): Buffer {
    const n = payload.length >>> 1;
    this.ticks = n;
    const r = this.#resampler;
    this.lagMs = (r.received / r.fromRate - r.emitted / r.toRate) * 1000;
    const pcm = this.#scratch.samples(n).subarray(0, n);
    for (let i = 0, b = 0; i < n; i++, b += 2) pcm[i] = (payload[b] << 8) | payload[b + 1];
    const out = r.push(pcm);
    if (out !== this.#pcm) {
      this.#pcm = out;
      this.#bytes = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    }
    return this.#bytes;
  }
}
