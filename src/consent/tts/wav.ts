import { CallrecError } from '../../errors.js';

/**
 * The samples and rate of a mono 16-bit PCM WAV, exactly as stored. Read directly rather than
 * through node-wav, which converts to float and back: Flite's and Google's output is always
 * this one layout, and the fixtures rely on Flite's exact samples.
 */
export function readPcm16Wav(wav: Uint8Array, source: string): { pcm: Int16Array; sampleRate: number } {
  const buf = Buffer.from(wav.buffer, wav.byteOffset, wav.byteLength);
  if (buf.length < 12 || buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new CallrecError('ERR_TTS', `${source} returned audio that is not a WAV file`);
  }
  let sampleRate: number | undefined;
  for (let offset = 12; offset + 8 <= buf.length; ) {
    const id = buf.toString('ascii', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    if (id === 'fmt ') {
      const format = buf.readUInt16LE(offset + 8);
      const channels = buf.readUInt16LE(offset + 10);
      const bits = buf.readUInt16LE(offset + 22);
      if (format !== 1 || channels !== 1 || bits !== 16) {
        throw new CallrecError('ERR_TTS', `${source} returned a WAV that is not mono 16-bit PCM (format ${format}, ${channels} channels, ${bits} bits)`);
      }
      sampleRate = buf.readUInt32LE(offset + 12);
    } else if (id === 'data') {
      if (sampleRate === undefined) break;
      // Streamed WAVs may carry a placeholder size; never read past the buffer.
      const data = buf.subarray(offset + 8, Math.min(buf.length, offset + 8 + size));
      const pcm = new Int16Array(data.length >> 1);
      for (let i = 0; i < pcm.length; i++) pcm[i] = data.readInt16LE(i * 2);
      return { pcm, sampleRate };
    }
    offset += 8 + size + (size & 1);
  }
  throw new CallrecError('ERR_TTS', `${source} returned a WAV without a format and data chunk`);
}
