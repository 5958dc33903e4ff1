import { MediaError } from './errors.js';

export interface PlayoutQueueOptions {
  /** Most samples that may wait unplayed; `push` beyond it throws `ERR_PLAYOUT_OVERFLOW`. */
  maxQueuedSamples: number;
}

interface Chunk {
  start: number;
  pcm: Int16Array;
}

/**
 * Bridge-mode model of the provider's playback: audio sent back plays in order, each chunk
 * starting when the stream clock reaches it or when the previously queued audio ends,
 * whichever is later. Positions are sample positions on the stream clock.
 */
export class PlayoutQueue {
  private readonly maxQueuedSamples: number;
  private readonly chunks: Chunk[] = [];
  private queued = 0;
  private tail = 0;

  constructor(options: PlayoutQueueOptions) {
    this.maxQueuedSamples = options.maxQueuedSamples;
  }

  /** Samples queued and not yet released. */
  get queuedSamples(): number {
    return this.queued;
  }

  /** Position where the last queued sample ends (where an immediate push would start at the earliest). */
  get end(): number {
    return this.tail;
  }

  /**
   * Queues `pcm` to play from `max(now, end)`; returns that start position. Takes ownership of
   * `pcm` (no copy): the caller must not reuse the array.
   * @throws MediaError `ERR_PLAYOUT_OVERFLOW` if the queue would exceed `maxQueuedSamples`;
   * nothing is queued then.
   */
  push(now: number, pcm: Int16Array): number {
    const start = Math.max(now, this.tail);
    if (this.queued + pcm.length > this.maxQueuedSamples) {
      throw new MediaError(
        'ERR_PLAYOUT_OVERFLOW',
        `playout queue holds ${this.queued} samples; ${pcm.length} more would exceed ${this.maxQueuedSamples}`,
      );
    }
    if (pcm.length === 0) return start;
    this.chunks.push({ start, pcm });
    this.queued += pcm.length;
    this.tail = start + pcm.length;
    return start;
  }

  /** Hands `sink` every queued sample at a position before `upTo`, in order, splitting a chunk that straddles it. */
  release(upTo: number, sink: (position: number, pcm: Int16Array) => void): void {
    while (this.chunks.length > 0 && this.chunks[0].start < upTo) {
      const chunk = this.chunks[0];
      const playable = upTo - chunk.start;
      if (playable >= chunk.pcm.length) {
        this.chunks.shift();
        this.queued -= chunk.pcm.length;
        sink(chunk.start, chunk.pcm);
      } else {
        const head = chunk.pcm.subarray(0, playable);
        chunk.pcm = chunk.pcm.subarray(playable);
        chunk.start = upTo;
        this.queued -= playable;
        sink(upTo - playable, head);
      }
    }
  }

  /** Drops all queued audio at positions ≥ `now` (barge-in); returns the samples dropped. */
  clear(now: number): number {
    let dropped = 0;
    while (this.chunks.length > 0) {
      const last = this.chunks[this.chunks.length - 1];
      if (last.start >= now) {
        this.chunks.pop();
        dropped += last.pcm.length;
        continue;
      }
      const keep = now - last.start;
      if (keep < last.pcm.length) {
        dropped += last.pcm.length - keep;
        last.pcm = last.pcm.subarray(0, keep);
      }
      break;
    }
    this.queued -= dropped;
    this.tail = Math.min(this.tail, now);
    return dropped;
  }
}
