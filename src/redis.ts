import { Redis } from 'ioredis';
import { CallrecError } from './errors.js';

/**
 * Checks that Redis answers, failing fast with advice instead of retrying forever: a newcomer
 * without Redis gets a sentence, not a stack of reconnect errors.
 */
export async function checkRedis(url: string, timeoutMs = 2000): Promise<void> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  let cause: Error | undefined; // connect() rejects with "Connection is closed"; the 'error' event says why
  client.on('error', (err: Error) => (cause ??= err));
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    throw new CallrecError(
      'ERR_REDIS_UNAVAILABLE',
      `Redis does not answer at ${url} (${(cause ?? (err as Error)).message}). callrec needs Redis for its job queues: ` +
        `start one (e.g. "redis-server --daemonize yes", or "docker run -d -p 6379:6379 redis:7") or set REDIS_URL.`,
    );
  } finally {
    client.disconnect();
  }
}

/** Whether Redis answers at `url` within `timeoutMs`. */
export function redisAnswers(url: string, timeoutMs = 500): Promise<boolean> {
  return checkRedis(url, timeoutMs).then(
    () => true,
    () => false,
  );
}
