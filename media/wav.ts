import { MediaError } from './errors.js';

/** Bytes of the canonical header callrec writes: RIFF, a 16-byte `fmt ` chunk, the `data` chunk header. */
export const WAV_HEADER_BYTES = 44;
/** What streaming writers leave as the RIFF and data sizes until they know them. */
export const WAV_UNKNOWN_SIZE = 0xffffffff;

const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

/** A canonical 16-bit PCM WAV header; `dataBytes` = `WAV_UNKNOWN_SIZE` leaves both sizes open. */
export function wavHeader(sampleRate: number, channels: number, dataBytes: number): Buffer {
  const h = Buffer.alloc(WAV_HEADER_BYTES);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(dataBytes === WAV_UNKNOWN_SIZE ? WAV_UNKNOWN_SIZE : 36 + dataBytes, 4);
  h.write('WAVE', 8, 'latin1');
  h.write('fmt ', 12, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(WAVE_FORMAT_PCM, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * channels * 2, 28);
  h.writeUInt16LE(channels * 2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/** Where a 16-bit PCM WAV's samples are and how they are laid out. */
export interface WavHeader {
  sampleRate: number;
  channels: number;
  /** Offset of the first sample in the file. */
  dataStart: number;
  /** Bytes of samples, or Infinity when the size is open-ended (a spool, or a streaming writer). */
  dataBytes: number;
}

function bad(message: string): MediaError {
  return new MediaError('ERR_BAD_RECORDING', message);
}

/**
 * Walks the RIFF chunks of a 16-bit PCM WAV up to `data`; null until enough bytes have arrived.
 * @throws MediaError `ERR_BAD_RECORDING` for anything else (not RIFF/WAVE, another sample format).
 */
export function parseWavHeader(bytes: Uint8Array): WavHeader | null {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 12) return null;
  if (buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE')
    throw bad('not a RIFF/WAVE file');
  let fmt: { sampleRate: number; channels: number } | null = null;
  for (let offset = 12; offset + 8 <= buf.length; ) {
    const id = buf.toString('latin1', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'data') {
      if (!fmt) throw bad('WAV data chunk before its fmt chunk');
      // 0 and 0xFFFFFFFF are what streaming writers leave when they never patch the size.
      return { ...fmt, dataStart: body, dataBytes: size === 0 || size === WAV_UNKNOWN_SIZE ? Infinity : size };
    }
    if (id === 'fmt ') {
      if (body + 16 > buf.length) return null;
      const tag = buf.readUInt16LE(body);
      if (tag === WAVE_FORMAT_EXTENSIBLE && body + 26 > buf.length) return null;
      const pcm =
        tag === WAVE_FORMAT_PCM || (tag === WAVE_FORMAT_EXTENSIBLE && buf.readUInt16LE(body + 24) === WAVE_FORMAT_PCM);
      const bits = buf.readUInt16LE(body + 14);
      if (!pcm || bits !== 16) throw bad(`WAV holds format ${tag} at ${bits} bits; expected 16-bit PCM`);
      fmt = { channels: buf.readUInt16LE(body + 2), sampleRate: buf.readUInt32LE(body + 4) };
    }
    offset = body + size + (size & 1); // chunks are padded to even sizes
  }
  return null;
}
