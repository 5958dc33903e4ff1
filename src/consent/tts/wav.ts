import { parseWavHeader } from '../../../media/wav.js';
import { CallrecError } from '../../errors.js';

/**
 * The samples and rate of a mono 16-bit PCM WAV, exactly as stored. Read directly rather than
 * through node-wav, which converts to float and back: Flite's and Google's output is always
 * this one layout, and the fixtures rely on Flite's exact samples.
 */
export function readPcm16Wav(wav: Uint8Array, source: string): { pcm: Int16Array; sampleRate: number } {
  let header;
  try {
    header = parseWavHeader(wav);
  } catch (err) {
    throw new CallrecError(
      'ERR_TTS',
      `${source} returned audio that is not a 16-bit PCM WAV: ${(err as Error).message}`,
      { cause: err },
    );
  }
  if (!header) throw new CallrecError('ERR_TTS', `${source} returned a WAV without a format and data chunk`);
  if (header.channels !== 1)
    throw new CallrecError('ERR_TTS', `${source} returned a WAV with ${header.channels} channels; expected mono`);
  // Streamed WAVs may carry a placeholder size; never read past the buffer.
  const data = Buffer.from(wav.buffer, wav.byteOffset, wav.byteLength).subarray(
    header.dataStart,
    header.dataStart + Math.min(header.dataBytes, wav.byteLength),
  );
  const pcm = new Int16Array(data.length >> 1);
  for (let i = 0; i < pcm.length; i++) pcm[i] = data.readInt16LE(i * 2);
  return { pcm, sampleRate: header.sampleRate };
}
