import { NO_POOL, type BufferPool } from './buffer-pool.js';
import type { Decoder } from './codec.js';
import type { LegStats } from './types.js';

/** What `LegBuffer.write` did with a frame. */
export type WriteOutcome = 'placed' | 'late' | 'duplicate' | 'dropped';

export interface LegBufferOptions {
  /** Samples the ring holds; rounded up to a power of two so positions map to slots with a mask. */
  capacity: number;
  /** Absolute position of the first sample `read` will emit (default 0). */
  start?: number;
  /** Where the ring's memory comes from, and goes back to on `release`. */
  pool?: BufferPool;
}

/**
 * One leg's PCM, placed by absolute sample position into a fixed ring, so memory is bounded
 * however long the call runs. Positions in `[flushed, flushed + capacity)` can be written in any
 * order; `read` emits them in order, with silence where nothing was written.
 *
 * Which positions hold a sample: every one in `[flushed, filledTo)`, the unbroken run from the
 * read position; past it, those whose `written` flag is set. Flags are kept only past the run
 * (inside it they are all 0), so in-order frames, nearly all of them, never touch the flags:
 * setting and clearing them was a third of the ring's memory traffic and of the capture's cost
 * at 500 calls (bench, `npm run bench`: callrec's fork CPU over the bare sink's, 1.35× before).
 */
export class LegBuffer {
  /** Slots in the ring (a power of two). */
  readonly capacity: number;
  readonly stats: LegStats = { framesPlaced: 0, framesLate: 0, framesDuplicate: 0, framesDropped: 0, gapSamples: 0 };

  private samples: Int16Array;
  // One byte per sample rather than one bit: it costs 1 byte per slot against 2 for the sample
  // itself, and keeps the per-sample test a plain load instead of shift-and-mask arithmetic.
  /** Set for written positions at or past `filledTo`; 0 everywhere else. */
  private written: Uint8Array;
  private readonly slotMask: number;
  private readonly pool: BufferPool;
  private flushedAt: number;
  private highWaterAt: number;
  /** Every position in `[flushedAt, filledTo)` has been written: `read` copies it in bulk. */
  private filledTo: number;

  constructor(options: LegBufferOptions) {
    if (!(options.capacity >= 1)) throw new RangeError(`capacity must be at least 1, got ${options.capacity}`);
    this.capacity = 2 ** Math.ceil(Math.log2(options.capacity));
    this.slotMask = this.capacity - 1;
    this.pool = options.pool ?? NO_POOL;
    this.samples = new Int16Array(this.pool.take(this.capacity * 2));
    this.written = new Uint8Array(this.pool.take(this.capacity));
    this.flushedAt = this.highWaterAt = this.filledTo = options.start ?? 0;
  }

  /** Position of the next sample `read` will emit; everything before it is gone. */
  get flushed(): number {
    return this.flushedAt;
  }

  /** End (exclusive) of the furthest sample written so far, never before `flushed`. */
  get highWater(): number {
    return this.highWaterAt;
  }

  /** Samples that can still be written past `highWater` before the ring must be read. */
  get room(): number {
    return this.flushedAt + this.capacity - this.highWaterAt;
  }

  /**
   * Places `length` samples of `pcm` (from `offset`) at absolute `position`. Samples already
   * written keep their first value. The part of a frame before `flushed` is discarded.
   * @throws RangeError if the frame ends beyond `flushed + capacity` (read first), or if
   * `offset`/`length` fall outside `pcm`.
   */
  write(position: number, pcm: Int16Array, offset = 0, length = pcm.length - offset): WriteOutcome {
    if (offset < 0 || length < 0 || offset + length > pcm.length) {
      throw new RangeError(`samples [${offset}, ${offset + length}) are outside a frame of ${pcm.length}`);
    }
    const end = position + length;
    if (end <= this.flushedAt) {
      this.stats.framesDropped++;
      return 'dropped';
    }
    if (end > this.flushedAt + this.capacity) {
      throw new RangeError(`frame [${position}, ${end}) is beyond the ring's end ${this.flushedAt + this.capacity}`);
    }
    const start = Math.max(position, this.flushedAt);
    const source = offset + (start - position);
    let fresh = 0;
    const late = end <= this.highWaterAt;
    if (start >= this.highWaterAt) {
      // In order (the common case): nothing at or past high water is written yet, so the frame
      // is copied whole, in at most two runs around the ring's end.
      fresh = end - start;
      this.copyIn(start, pcm, source, fresh);
      this.highWaterAt = end;
    } else {
      for (let at = Math.max(start, this.filledTo); at < end; at++) {
        const slot = at & this.slotMask;
        if (this.written[slot] === 0) {
          this.samples[slot] = pcm[source + (at - start)];
          this.written[slot] = 1;
          fresh++;
        }
      }
      if (end > this.highWaterAt) this.highWaterAt = end;
      if (start <= this.filledTo) this.extendFilled();
    }
    if (fresh === 0) {
      this.stats.framesDuplicate++;
      return 'duplicate';
    }
    this.stats.framesPlaced++;
    if (late) {
      this.stats.framesLate++;
      return 'late';
    }
    return 'placed';
  }

  /**
   * `write` for a frame still in its wire encoding, `length` samples long: a frame that extends
   * the leg in order (nearly every frame) is decoded straight into the ring, with no copy between;
   * any other is decoded into `scratch` and written as `write` writes it.
   */
  writeEncoded(
    position: number,
    length: number,
    payload: Uint8Array,
    decode: Decoder,
    scratch: Int16Array,
  ): WriteOutcome {
    const slot = position & this.slotMask;
    const end = position + length;
    const inOrder = length > 0 && position >= this.highWaterAt && end <= this.flushedAt + this.capacity;
    if (!inOrder || slot + length > this.capacity) {
      decode(payload, scratch);
      return this.write(position, scratch, 0, length);
    }
    decode(payload, this.samples, slot);
    if (position === this.filledTo) this.filledTo = end;
    else this.written.fill(1, slot, slot + length);
    this.stats.framesPlaced++;
    this.highWaterAt = end;
    return 'placed';
  }

  /**
   * Emits samples `[flushed, upTo)` into `out` (as many as fit after `outOffset`), silence where
   * nothing was written, and frees their slots. Returns the count emitted.
   */
  read(upTo: number, out: Int16Array, outOffset = 0): number {
    const count = Math.max(0, Math.min(upTo - this.flushedAt, out.length - outOffset));
    if (this.flushedAt + count <= this.filledTo) {
      // All written (the common case): bulk copies instead of a per-sample test.
      this.copyOut(this.flushedAt, out, outOffset, count);
      this.advance(count);
      return count;
    }
    let gaps = 0;
    for (let i = 0, at = this.flushedAt; i < count; i++, at++) {
      const slot = at & this.slotMask;
      if (at < this.filledTo) {
        out[outOffset + i] = this.samples[slot];
      } else if (this.written[slot] === 0) {
        out[outOffset + i] = 0;
        gaps++;
      } else {
        out[outOffset + i] = this.samples[slot];
        this.written[slot] = 0;
      }
    }
    this.stats.gapSamples += gaps;
    this.advance(count);
    return count;
  }

  /** Discards samples `[flushed, upTo)` without emitting them (e.g. a skipped pause); returns the count. */
  skip(upTo: number): number {
    const count = Math.max(0, upTo - this.flushedAt);
    this.forget(this.flushedAt, Math.min(upTo, this.highWaterAt));
    this.advance(count);
    return count;
  }

  /** Forgets unread samples at positions ≥ `position`; `highWater` moves back to it. */
  truncate(position: number): void {
    const from = Math.max(position, this.flushedAt);
    if (from >= this.highWaterAt) return;
    this.forget(from, this.highWaterAt);
    this.highWaterAt = from;
  }

  /**
   * Gives the ring's memory back to its pool. The buffer holds nothing afterwards: a stray write
   * or read cannot reach the memory's next owner.
   */
  release(): void {
    this.pool.give(this.samples.buffer as ArrayBuffer);
    this.pool.give(this.written.buffer as ArrayBuffer);
    this.samples = new Int16Array(0);
    this.written = new Uint8Array(0);
  }

  /** Unwrites `[from, to)`; what stays written past it keeps its flags, since the run ends at `from`. */
  private forget(from: number, to: number): void {
    if (this.filledTo > from) {
      for (let at = to; at < this.filledTo; at++) this.written[at & this.slotMask] = 1;
      this.filledTo = Math.max(from, this.flushedAt);
    }
    for (let at = from; at < to; at++) this.written[at & this.slotMask] = 0;
  }

  private advance(count: number): void {
    this.flushedAt += count;
    if (this.highWaterAt < this.flushedAt) this.highWaterAt = this.flushedAt;
    if (this.filledTo < this.flushedAt) {
      this.filledTo = this.flushedAt;
      this.extendFilled();
    }
  }

  /** Moves `filledTo` over written slots, e.g. past a late frame that closed a hole; their flags go, the run implies them. */
  private extendFilled(): void {
    while (this.filledTo < this.highWaterAt && this.written[this.filledTo & this.slotMask] === 1) {
      this.written[this.filledTo & this.slotMask] = 0;
      this.filledTo++;
    }
  }

  /** Copies a frame in at `position` (at or past high water); flags it unless it extends the run. */
  private copyIn(position: number, pcm: Int16Array, source: number, length: number): void {
    const slot = position & this.slotMask;
    const first = Math.min(length, this.capacity - slot);
    const extendsRun = position === this.filledTo;
    this.samples.set(pcm.subarray(source, source + first), slot);
    if (!extendsRun) this.written.fill(1, slot, slot + first);
    if (first < length) {
      this.samples.set(pcm.subarray(source + first, source + length), 0);
      if (!extendsRun) this.written.fill(1, 0, length - first);
    }
    if (extendsRun) this.filledTo = position + length;
  }

  /** Copies out part of the run (no flags there to clear). */
  private copyOut(position: number, out: Int16Array, outOffset: number, length: number): void {
    const slot = position & this.slotMask;
    const first = Math.min(length, this.capacity - slot);
    out.set(this.samples.subarray(slot, slot + first), outOffset);
    if (first < length) out.set(this.samples.subarray(0, length - first), outOffset + first);
  }
}
