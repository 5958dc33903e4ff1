import { createRequire } from 'node:module';
import type { TtsEngine } from '../../src/consent/tts/types.js';

// node-wav ships no types; this is the part of its API we use.
export const wav = createRequire(import.meta.url)('node-wav') as {
  encode(channelData: Float32Array[], opts: { sampleRate: number; float?: boolean; bitDepth?: number }): Buffer;
};

/** A sine tone as floats (-1…1), for node-wav. */
export function floatTone(freqHz: number, amplitude: number, seconds: number, sampleRate: number): Float32Array {
  return Float32Array.from(
    { length: Math.round(seconds * sampleRate) },
    (_, i) => amplitude * Math.sin((2 * Math.PI * freqHz * i) / sampleRate),
  );
}

/** Amplitude (0…1 of full scale) of the `freqHz` component over a stretch of PCM. */
export function amplitudeAt(pcm: Int16Array, freqHz: number, sampleRate: number): number {
  let re = 0;
  let im = 0;
  for (let i = 0; i < pcm.length; i++) {
    const angle = (2 * Math.PI * freqHz * i) / sampleRate;
    re += pcm[i] * Math.cos(angle);
    im += pcm[i] * Math.sin(angle);
  }
  return (2 * Math.hypot(re, im)) / pcm.length / 32768;
}

/** How much of a signal is sound: 20 ms windows louder than -40 dBFS RMS, and the span from the first to the last. */
export function soundStats(
  pcm: Int16Array,
  sampleRate: number,
): { loudWindows: number; soundMs: number; peak: number } {
  const window = sampleRate / 50;
  let loudWindows = 0;
  let firstLoud = -1;
  let lastLoud = -1;
  let peak = 0;
  for (let w = 0; (w + 1) * window <= pcm.length; w++) {
    let sum = 0;
    for (let i = w * window; i < (w + 1) * window; i++) {
      sum += pcm[i] * pcm[i];
      peak = Math.max(peak, Math.abs(pcm[i]));
    }
    if (Math.sqrt(sum / window) > 328) {
      loudWindows++;
      if (firstLoud < 0) firstLoud = w;
      lastLoud = w;
    }
  }
  return { loudWindows, soundMs: firstLoud < 0 ? 0 : (lastLoud - firstLoud + 1) * 20, peak };
}

/** Signal-to-noise ratio of `actual` against `reference`, dB. */
export function snrDb(reference: Int16Array, actual: Int16Array): number {
  let signal = 0;
  let noise = 0;
  for (let i = 0; i < reference.length; i++) {
    signal += reference[i] ** 2;
    noise += (reference[i] - actual[i]) ** 2;
  }
  return 10 * Math.log10(signal / noise);
}

/** Wraps a real engine and counts the syntheses that reach it. */
export class CountingEngine implements TtsEngine {
  calls = 0;
  constructor(readonly inner: TtsEngine) {}
  get name(): string {
    return this.inner.name;
  }
  get voice(): string {
    return this.inner.voice;
  }
  synthesize(text: string, sampleRate: 8000 | 16000): Promise<{ pcm: Int16Array; sampleRate: number }> {
    this.calls++;
    return this.inner.synthesize(text, sampleRate);
  }
}

/** A TTS engine whose syntheses finish when the test says: a 1 kHz tone, or the error given. */
export class HeldEngine implements TtsEngine {
  readonly name = 'held';
  readonly voice = 'tone';
  #pending: Array<{ resolve: (pcm: Int16Array) => void; reject: (err: Error) => void; sampleRate: number }> = [];

  /** Syntheses asked for and not yet finished. */
  get pending(): number {
    return this.#pending.length;
  }

  synthesize(_text: string, sampleRate: 8000 | 16000): Promise<{ pcm: Int16Array; sampleRate: number }> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve: (pcm) => resolve({ pcm, sampleRate }), reject, sampleRate });
    });
  }

  /** Finishes every pending synthesis with `ms` of tone. */
  finish(ms: number): void {
    for (const p of this.#pending.splice(0)) {
      const pcm = new Int16Array((ms * p.sampleRate) / 1000);
      for (let i = 0; i < pcm.length; i++)
        pcm[i] = Math.round(8000 * Math.sin((2 * Math.PI * 1000 * i) / p.sampleRate));
      p.resolve(pcm);
    }
  }

  fail(err: Error): void {
    for (const p of this.#pending.splice(0)) p.reject(err);
  }
}
