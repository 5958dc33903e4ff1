/** A speech synthesizer behind `TTS_ENGINE` (SPEC §2, §5). */
export interface TtsEngine {
  /** Engine name as configured: `flite`, `google` or `file`. */
  readonly name: string;
  /** The voice it speaks with; part of the prompt cache key and of the consent record. */
  readonly voice: string;
  /**
   * Speaks `text` as mono 16-bit PCM. `sampleRate` is the rate wanted; an engine may answer at
   * its own rate instead (the prompt cache resamples). Failures are `CallrecError('ERR_TTS')`.
   */
  synthesize(text: string, sampleRate: 8000 | 16000): Promise<{ pcm: Int16Array; sampleRate: number }>;
  /** Stops what the engine keeps running (Flite's worker threads); absent when it keeps nothing. */
  close?(): Promise<void>;
}
