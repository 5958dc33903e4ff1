/** A waveform needs no finer detail than this: 10 ms per bucket. */
export const MAX_BUCKETS_PER_SECOND = 100;
/** Nor more buckets per channel than a wide screen has pixels, however long the call. */
export const MAX_BUCKETS = 4000;

/** A recording's waveform: per channel, the peak |amplitude| of each bucket in [0, 1]. */
export interface Waveform {
  /** Seconds of audio the buckets cover. */
  duration: number;
  /** `peaks[c][b]`: channel `c`, bucket `b`, rounded to 3 decimals. */
  peaks: number[][];
}

const round3 = (value: number) => Math.round(value * 1000) / 1000;

/**
 * Reduces interleaved 16-bit PCM to waveform peaks as it streams past, in memory that does not
 * grow with the call: at most `MAX_BUCKETS_PER_SECOND` buckets per second and `MAX_BUCKETS`
 * per channel, each bucket the same number of frames (the last may be shorter).
 */
export class WaveformPeaks {
  readonly #channels: number;
  readonly #sampleRate: number;
  readonly #framesPerBucket: number;
  /** Peak |sample| per bucket, channel-major; 32768 (for -32768) fits a Uint16. */
  readonly #peaks: Uint16Array[];
  #frame = 0;

  /** `frames` is the recording's length in frames: it fixes the bucket width before any audio arrives. */
  constructor(channels: number, sampleRate: number, frames: number) {
    this.#channels = channels;
    this.#sampleRate = sampleRate;
    this.#framesPerBucket = Math.max(
      Math.ceil(sampleRate / MAX_BUCKETS_PER_SECOND),
      Math.ceil(frames / MAX_BUCKETS),
      1,
    );
    const buckets = Math.ceil(frames / this.#framesPerBucket);
    this.#peaks = Array.from({ length: channels }, () => new Uint16Array(buckets));
  }

  /** Takes the next interleaved frames; frames beyond the length given to the constructor count in the last bucket. */
  push(pcm: Int16Array): void {
    const channels = this.#channels;
    const last = this.#peaks[0].length - 1;
    const end = pcm.length - (pcm.length % channels);
    // A bucket's run of frames at a time: one comparison per sample in the inner loop.
    for (let i = 0; i < end && last >= 0; ) {
      const bucket = Math.min(Math.floor(this.#frame / this.#framesPerBucket), last);
      const bucketEnd = bucket === last ? Infinity : (bucket + 1) * this.#framesPerBucket;
      const frames = Math.min((end - i) / channels, bucketEnd - this.#frame);
      const runEnd = i + frames * channels;
      for (let c = 0; c < channels; c++) {
        let peak = this.#peaks[c][bucket];
        for (let j = i + c; j < runEnd; j += channels) {
          const magnitude = pcm[j] < 0 ? -pcm[j] : pcm[j];
          if (magnitude > peak) peak = magnitude;
        }
        this.#peaks[c][bucket] = peak;
      }
      i = runEnd;
      this.#frame += frames;
    }
  }

  /** The waveform of everything pushed so far. */
  result(): Waveform {
    return {
      duration: round3(this.#frame / this.#sampleRate),
      peaks: this.#peaks.map((channel) => Array.from(channel, (peak) => round3(peak / 32768))),
    };
  }
}
