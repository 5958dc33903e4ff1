import { samplesIn } from '../../media/codec.js';
import type { MediaFormat } from '../../media/types.js';

/**
 * A call's stream clock: the end of the newest provider frame, in ms of stream time (never
 * arrival time), held to at most `maxLeadMs` ahead of the wall time elapsed since the clock
 * started. Consent timing (prompt start and end, where capture begins) reads it, so one frame
 * with a far-future timestamp must not move it further than Capture would place audio
 * (STREAM_AUDIO_LEAD_SECONDS).
 */
export class StreamClock {
  readonly #format: MediaFormat;
  readonly #maxLeadMs: number;
  /** performance.now() when the clock started (stream time 0). */
  readonly #wallStart = performance.now();
  /**
   * The furthest the clock may stand: wall time elapsed plus the lead, as of the last time it was
   * computed. It only grows, so the wall clock is read only when a frame ends past it (once every
   * `maxLeadMs` for a real-time stream), not per frame.
   */
  #wallBoundMs: number;
  #ms = 0;

  constructor(format: MediaFormat, maxLeadMs = Infinity) {
    this.#format = format;
    this.#maxLeadMs = maxLeadMs;
    this.#wallBoundMs = maxLeadMs;
  }

  get ms(): number {
    return this.#ms;
  }

  /** A frame of `bytes` wire-encoded bytes at `timestampMs`; the clock only moves forward, and never past the wall bound. */
  advance(timestampMs: number, bytes: number): void {
    let end = timestampMs + (samplesIn(this.#format, bytes) * 1000) / this.#format.sampleRate;
    if (end > this.#wallBoundMs) {
      this.#wallBoundMs = performance.now() - this.#wallStart + this.#maxLeadMs;
      if (end > this.#wallBoundMs) end = this.#wallBoundMs;
    }
    if (end > this.#ms) this.#ms = end;
  }
}
