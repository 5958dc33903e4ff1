import type { MediaFormat } from './types.js';

/** Decodes one wire payload into `out` starting at `outOffset`; returns the number of samples written. */
export type Decoder = (payload: Uint8Array, out: Int16Array, outOffset?: number) => number;

/** Encodes PCM into a fresh wire payload. */
export type Encoder = (pcm: Int16Array) => Buffer;

/** Bytes one sample occupies on the wire: 1 for G.711, 2 for L16 (of any format that names its codec, a wire's too). */
export function bytesPerSample(format: Pick<MediaFormat, 'codec'> & Partial<MediaFormat>): 1 | 2 {
  return format.codec === 'l16' ? 2 : 1;
}

/** Samples contained in a payload of `byteLength` bytes (a trailing odd L16 byte is ignored). */
export function samplesIn(format: MediaFormat, byteLength: number): number {
  return format.codec === 'l16' ? byteLength >>> 1 : byteLength;
}

// ITU-T G.711 expansion, per the reference algorithm (Sun's public-domain g711.c).
function ulawToLinear(u: number): number {
  u = ~u & 0xff;
  const t = (((u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
  return u & 0x80 ? 0x84 - t : t - 0x84;
}

function alawToLinear(a: number): number {
  a ^= 0x55;
  let t = (a & 0x0f) << 4;
  const segment = (a & 0x70) >> 4;
  if (segment === 0) t += 8;
  else t = (t + 0x108) << (segment - 1);
  return a & 0x80 ? t : -t;
}

const ULAW_SEGMENT_END = [0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff];
const ALAW_SEGMENT_END = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];

function segmentOf(value: number, ends: number[]): number {
  let segment = 0;
  while (segment < 8 && value > ends[segment]) segment++;
  return segment;
}

function linearToUlaw(pcm: number): number {
  let value = pcm >> 2; // G.711 μ-law is defined on 14-bit samples
  let mask = 0xff;
  if (value < 0) {
    value = -value;
    mask = 0x7f;
  }
  value = Math.min(value, 8159) + (0x84 >> 2);
  const segment = segmentOf(value, ULAW_SEGMENT_END);
  if (segment >= 8) return 0x7f ^ mask;
  return ((segment << 4) | ((value >> (segment + 1)) & 0x0f)) ^ mask;
}

function linearToAlaw(pcm: number): number {
  let value = pcm >> 3; // G.711 A-law is defined on 13-bit samples
  let mask = 0xd5;
  if (value < 0) {
    value = -value - 1;
    mask = 0x55;
  }
  const segment = segmentOf(value, ALAW_SEGMENT_END);
  if (segment >= 8) return 0x7f ^ mask;
  const mantissa = segment < 2 ? (value >> 1) & 0x0f : (value >> segment) & 0x0f;
  return ((segment << 4) | mantissa) ^ mask;
}

function expansionTable(expand: (byte: number) => number): Int16Array {
  const table = new Int16Array(256);
  for (let byte = 0; byte < 256; byte++) table[byte] = expand(byte);
  return table;
}

/** Indexed by the sample's 16-bit two's-complement pattern (`sample & 0xffff`). */
function compressionTable(compress: (pcm: number) => number): Uint8Array {
  const table = new Uint8Array(65536);
  for (let pattern = 0; pattern < 65536; pattern++) table[pattern] = compress((pattern << 16) >> 16);
  return table;
}

// Built on first use: a process that only ever sees L16 never pays for the 64K tables.
let ulawDecodeTable: Int16Array | undefined;
let alawDecodeTable: Int16Array | undefined;
let ulawEncodeTable: Uint8Array | undefined;
let alawEncodeTable: Uint8Array | undefined;

function checkRoom(out: Int16Array, outOffset: number, samples: number): void {
  if (outOffset < 0 || outOffset + samples > out.length) {
    throw new RangeError(`decode of ${samples} samples at offset ${outOffset} overruns output of ${out.length}`);
  }
}

function tableDecoder(table: Int16Array): Decoder {
  return (payload, out, outOffset = 0) => {
    const n = payload.length;
    checkRoom(out, outOffset, n);
    for (let i = 0; i < n; i++) out[outOffset + i] = table[payload[i]];
    return n;
  };
}

function l16Decoder(bigEndian: boolean): Decoder {
  // Byte arithmetic instead of a DataView: no per-payload allocation, and payloads may sit at odd offsets.
  const hi = bigEndian ? 0 : 1;
  const lo = 1 - hi;
  return (payload, out, outOffset = 0) => {
    const n = payload.length >>> 1;
    checkRoom(out, outOffset, n);
    for (let i = 0, b = 0; i < n; i++, b += 2) out[outOffset + i] = (payload[b + hi] << 8) | payload[b + lo];
    return n;
  };
}

/** Returns the decoder for a wire format. L16 defaults to little-endian when `byteOrder` is absent. */
export function decoderFor(format: MediaFormat): Decoder {
  switch (format.codec) {
    case 'pcmu':
      return tableDecoder((ulawDecodeTable ??= expansionTable(ulawToLinear)));
    case 'pcma':
      return tableDecoder((alawDecodeTable ??= expansionTable(alawToLinear)));
    case 'l16':
      return l16Decoder(format.byteOrder === 'be');
  }
}

function tableEncoder(table: Uint8Array): Encoder {
  return (pcm) => {
    const out = Buffer.allocUnsafe(pcm.length);
    for (let i = 0; i < pcm.length; i++) out[i] = table[pcm[i] & 0xffff];
    return out;
  };
}

function l16Encoder(bigEndian: boolean): Encoder {
  return (pcm) => {
    const out = Buffer.allocUnsafe(pcm.length * 2);
    for (let i = 0; i < pcm.length; i++) {
      if (bigEndian) out.writeInt16BE(pcm[i], i * 2);
      else out.writeInt16LE(pcm[i], i * 2);
    }
    return out;
  };
}

/** Returns the encoder for a wire format. L16 defaults to little-endian when `byteOrder` is absent. */
export function encoderFor(format: MediaFormat): Encoder {
  switch (format.codec) {
    case 'pcmu':
      return tableEncoder((ulawEncodeTable ??= compressionTable(linearToUlaw)));
    case 'pcma':
      return tableEncoder((alawEncodeTable ??= compressionTable(linearToAlaw)));
    case 'l16':
      return l16Encoder(format.byteOrder === 'be');
  }
}
