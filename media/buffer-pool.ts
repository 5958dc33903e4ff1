export interface BufferPoolOptions {
  /** Most memory kept for reuse, in bytes; buffers handed back beyond it are left to the GC. Default 32 MiB. */
  maxFreeBytes?: number;
}

/**
 * Keeps the fixed buffers of ended calls (rings, spool buffers) for the calls that start after them.
 *
 * A call's buffers are old-generation objects by the time it ends and their memory lies outside
 * V8's heap, so it comes back only at the next full collection, which external memory triggers
 * only once tens of MB have piled up. A node whose calls end and begin all day would hold dead
 * calls' buffers beside its live ones (the bench saw RSS per call rise by half after the first
 * round of calls). Handed back here, they are reused at once, and memory follows the live calls.
 */
export class BufferPool {
  readonly maxFreeBytes: number;
  readonly #free = new Map<number, ArrayBuffer[]>();
  #freeBytes = 0;

  constructor(options: BufferPoolOptions = {}) {
    this.maxFreeBytes = options.maxFreeBytes ?? 32 * 2 ** 20;
  }

  /** Bytes held for reuse. */
  get freeBytes(): number {
    return this.#freeBytes;
  }

  /** An `ArrayBuffer` of `bytes` bytes, all zero: a reused one never shows its last owner's audio. */
  take(bytes: number): ArrayBuffer {
    const buffer = this.#free.get(bytes)?.pop();
    if (!buffer) return new ArrayBuffer(bytes);
    this.#freeBytes -= bytes;
    new Uint8Array(buffer).fill(0);
    return buffer;
  }

  /** Hands `buffer` back. Its owner must not touch it again: the next `take` of its size may return it. */
  give(buffer: ArrayBuffer): void {
    const bytes = buffer.byteLength;
    if (bytes === 0 || this.#freeBytes + bytes > this.maxFreeBytes) return;
    let list = this.#free.get(bytes);
    if (!list) this.#free.set(bytes, (list = []));
    list.push(buffer);
    this.#freeBytes += bytes;
  }
}

/** Buffers of ended calls go to the GC, as without a pool: for code that owns its buffers outright (tests, tools). */
export const NO_POOL: BufferPool = new BufferPool({ maxFreeBytes: 0 });
