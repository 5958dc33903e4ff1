import { Redis } from 'ioredis';
import type { Logger } from '../log.js';

const BEAT_MS = 1000;

/**
 * Each media node keeps `<prefix>:node:<id>` alive in Redis while it runs. A call row names the
 * node holding it, so recovery can tell a call whose node is gone (crashed, killed) from one
 * that is merely quiet, without waiting for its spool to age. Each beat is also kept in the hash
 * `<prefix>:nodes:last_seen`, which outlives the key: it dates what a dead node's calls lost.
 */
export class NodeHeartbeat {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #prefix: string;
  readonly #nodeId: string;
  readonly #ttlMs: number;
  #timer: NodeJS.Timeout | null = null;
  #lastBeatAt = Date.now();

  constructor(opts: { redisUrl: string; prefix: string; nodeId: string; log: Logger; ttlMs?: number }) {
    this.#redis = new Redis(opts.redisUrl, { lazyConnect: true });
    this.#redis.on('error', (err: Error) => opts.log.warn({ err }, 'heartbeat: redis error'));
    this.#prefix = opts.prefix;
    this.#nodeId = opts.nodeId;
    this.#key = NodeHeartbeat.#keyOf(opts.prefix, opts.nodeId);
    this.#ttlMs = opts.ttlMs ?? 15_000;
  }

  static #keyOf(prefix: string, nodeId: string): string {
    return `${prefix}:node:${nodeId}`;
  }

  /** Starts beating; resolves with when this node id last beat before (a previous process on its `DATA_DIR`), if ever. */
  async start(): Promise<Date | null> {
    await this.#redis.connect();
    const previous = await this.lastSeen(this.#nodeId);
    const beat = () => {
      const now = Date.now();
      return this.#redis
        .multi()
        .set(this.#key, now, 'PX', this.#ttlMs)
        .hset(this.#lastSeenKey, this.#nodeId, now)
        .exec()
        .then(() => (this.#lastBeatAt = now));
    };
    await beat();
    // Every second (well within the TTL), so the last beat dates a crash to the second.
    this.#timer = setInterval(() => void beat().catch(() => {}), Math.min(BEAT_MS, this.#ttlMs / 3));
    this.#timer.unref();
    return previous;
  }

  /** When this node's last beat reached Redis (epoch ms): a TTL past it, other nodes take it for dead. */
  get lastBeatAt(): number {
    return this.#lastBeatAt;
  }

  /** Whether the node `nodeId` has beaten within its time to live. */
  async isAlive(nodeId: string): Promise<boolean> {
    return (await this.#redis.exists(NodeHeartbeat.#keyOf(this.#prefix, nodeId))) === 1;
  }

  get #lastSeenKey(): string {
    return `${this.#prefix}:nodes:last_seen`;
  }

  /** When the node `nodeId` last beat, or null if it never did. */
  async lastSeen(nodeId: string): Promise<Date | null> {
    const at = await this.#redis.hget(this.#lastSeenKey, nodeId);
    return at === null ? null : new Date(Number(at));
  }

  /** Stops beating and says so at once (a clean shutdown is not a crash). */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#redis.del(this.#key).catch(() => {});
    this.#redis.disconnect();
  }
}
