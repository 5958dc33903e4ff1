import { samplesIn } from '../../media/codec.js';
import type { MediaFormat } from '../../media/types.js';

/** A call's stream clock: the end of the newest provider frame, in ms of stream time (never arrival time). */
export class StreamClock {
  readonly #format: MediaFormat;
  #ms = 0;

  constructor(format: MediaFormat) {
    this.#format = format;
  }

  get ms(): number {
    return this.#ms;
  }

  /** A frame of `bytes` wire-encoded bytes at `timestampMs`; the clock only moves forward. */
  advance(timestampMs: number, bytes: number): void {
    const end = timestampMs + (samplesIn(this.#format, bytes) * 1000) / this.#format.sampleRate;
    if (end > this.#ms) this.#ms = end;
  }
}
