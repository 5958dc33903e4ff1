import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { CallrecError } from '../../errors.js';
import type { TtsEngine } from './types.js';

// node-wav ships no types; this is the part of its API we use.
const wav = createRequire(import.meta.url)('node-wav') as {
  decode(buffer: Buffer): { sampleRate: number; channelData: Float32Array[] };
};

/** Mixes node-wav's float channels to mono 16-bit, inverting its int→float scaling (÷32768 below zero, ÷32767 above). */
function toMonoPcm16(channels: Float32Array[]): Int16Array {
  const pcm = new Int16Array(channels[0]?.length ?? 0);
  for (let i = 0; i < pcm.length; i++) {
    let sum = 0;
    for (const channel of channels) sum += channel[i];
    const v = Math.max(-1, Math.min(1, sum / channels.length));
    pcm[i] = Math.round(v < 0 ? v * 32768 : v * 32767);
  }
  return pcm;
}

/**
 * `TTS_ENGINE=file:<dir>`: prerecorded prompts. The prompt for a message is
 * `<dir>/<SHA-256 of the exact message text, lowercase hex>.wav`, else `<dir>/default.wav`.
 * Any WAV node-wav reads will do (8–32-bit integer or float, any rate, stereo is mixed down).
 */
export class FileTtsEngine implements TtsEngine {
  readonly name = 'file';
  readonly voice = 'prerecorded';

  constructor(readonly dir: string) {}

  async synthesize(text: string): Promise<{ pcm: Int16Array; sampleRate: number }> {
    const tried = [
      path.join(this.dir, `${createHash('sha256').update(text).digest('hex')}.wav`),
      path.join(this.dir, 'default.wav'),
    ];
    for (const file of tried) {
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw new CallrecError('ERR_TTS', `cannot read prompt ${file}: ${(err as Error).message}`, { cause: err });
      }
      let decoded: { sampleRate: number; channelData: Float32Array[] };
      try {
        // readFile's buffer owns its ArrayBuffer from offset 0, which node-wav assumes.
        decoded = wav.decode(bytes);
      } catch (err) {
        throw new CallrecError('ERR_TTS', `prompt ${file} is not a readable WAV: ${(err as Error).message}`, {
          cause: err,
        });
      }
      return { pcm: toMonoPcm16(decoded.channelData), sampleRate: decoded.sampleRate };
    }
    throw new CallrecError('ERR_TTS', `no prerecorded prompt: tried ${tried.join(', ')}`);
  }
}
