import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

/** The Redis every development and CI machine runs. */
export const REDIS_URL = 'redis://127.0.0.1:6379';

/** A key prefix no other test run uses. */
export function testPrefix(): string {
  return `callrec-test-${randomBytes(4).toString('hex')}`;
}

/** Deletes every key under `prefix` (a test run's queues), leaving other runs' alone. */
export async function dropRedisPrefix(prefix: string, url = REDIS_URL): Promise<void> {
  const redis = new Redis(url);
  try {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}
