import { Redis } from 'ioredis';
import type { Logger } from '../log.js';

/**
 * Bytes of shipped spool segments in `SPOOL_URL` that are not finalized yet, counted cluster-wide
 * in one Redis counter (`<prefix>:spool:bytes_in_storage`): whoever puts a segment adds its size,
 * whoever deletes one takes it off, so `/metrics` reads one key instead of listing the bucket.
 * An estimate: a node killed between an upload and its count, or Redis away at that moment,
 * leaves it off by that segment.
 */
export class SpoolBytes {
  readonly #redis: Redis;
  readonly #key: string;

  constructor(opts: { redisUrl: string; prefix: string; log: Logger }) {
    // Counting must never hold up shipping or finalizing: no queue of commands while Redis is away.
    this.#redis = new Redis(opts.redisUrl, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    this.#redis.on('error', (err: Error) => opts.log.debug({ err }, 'spool bytes: redis error'));
    this.#key = `${opts.prefix}:spool:bytes_in_storage`;
  }

  async connect(): Promise<void> {
    await this.#redis.connect();
  }

  /** Adds (or with a negative number takes off) segment bytes; a failure is dropped. */
  add(bytes: number): void {
    if (bytes !== 0) this.#redis.incrby(this.#key, bytes).catch(() => {});
  }

  async total(): Promise<number> {
    return Number((await this.#redis.get(this.#key)) ?? 0);
  }

  close(): void {
    this.#redis.disconnect();
  }
}
