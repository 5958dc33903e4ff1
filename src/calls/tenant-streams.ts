import { Redis } from 'ioredis';
import type { Logger } from '../log.js';

/**
 * Sums the tenant's streams on every node whose heartbeat (`<prefix>:node:<id>`, see NodeHeartbeat) is alive and, under the cap, counts one
 * more on this node. KEYS: the set of node ids. ARGV: prefix, tenant, this node, cap. (It reads
 * keys it is not given, so it needs one Redis, not a Redis Cluster, as callrec's queues do.)
 */
const ADMIT = `
local total = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. ':node:' .. id) == 1 then
    total = total + tonumber(redis.call('HGET', ARGV[1] .. ':streams:' .. id, ARGV[2]) or '0')
  end
end
if total >= tonumber(ARGV[4]) then return 0 end
redis.call('HINCRBY', ARGV[1] .. ':streams:' .. ARGV[3], ARGV[2], 1)
return 1
`;

/**
 * MAX_STREAMS_PER_TENANT across the cluster. Each media node counts its tenants' streams in a
 * Redis hash of its own (`<prefix>:streams:<node id>`, emptied when it starts and stops), and a
 * new stream is admitted by one script over the hashes of the nodes whose heartbeat is alive:
 * a node that dies takes its counts with it once its heartbeat expires. If Redis does not answer,
 * the stream is let through uncounted (the node's own count still caps it): streams are not
 * refused for want of Redis.
 */
export class TenantStreams {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #nodeId: string;
  readonly #log: Logger;

  constructor(opts: { redisUrl: string; prefix: string; nodeId: string; log: Logger }) {
    this.#redis = new Redis(opts.redisUrl, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 1000,
    });
    this.#redis.on('error', (err: Error) => opts.log.debug({ err }, 'tenant streams: redis error'));
    this.#prefix = opts.prefix;
    this.#nodeId = opts.nodeId;
    this.#log = opts.log;
  }

  get #nodes(): string {
    return `${this.#prefix}:stream-nodes`;
  }

  get #mine(): string {
    return `${this.#prefix}:streams:${this.#nodeId}`;
  }

  /** Joins the count; what this node's previous life counted is gone with its calls. */
  async start(): Promise<void> {
    await this.#redis.connect();
    await this.#redis.multi().del(this.#mine).sadd(this.#nodes, this.#nodeId).exec();
  }

  /** Counts one more stream of `tenantId` if the cluster holds fewer than `cap`: true; false at the cap; null when Redis did not answer (not counted). */
  async admit(tenantId: string, cap: number): Promise<boolean | null> {
    try {
      return (await this.#redis.eval(ADMIT, 1, this.#nodes, this.#prefix, tenantId, this.#nodeId, cap)) === 1;
    } catch (err) {
      this.#log.warn(
        { tenantId, err },
        'cannot count the stream against MAX_STREAMS_PER_TENANT in Redis; capped on this node only',
      );
      return null;
    }
  }

  /** One stream counted by `admit` has ended. */
  release(tenantId: string): void {
    this.#redis.hincrby(this.#mine, tenantId, -1).catch(() => {});
  }

  async close(): Promise<void> {
    await this.#redis
      .multi()
      .del(this.#mine)
      .srem(this.#nodes, this.#nodeId)
      .exec()
      .catch(() => {});
    this.#redis.disconnect();
  }
}
