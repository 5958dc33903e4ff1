import path from 'node:path';
import { MasterKeyring } from '../../src/crypto/keys.js';
import { TranscodeCache } from '../../src/recording/transcode-cache.js';
import { LocalObjectStore } from '../../src/storage/local.js';
import { StorageResolver } from '../../src/storage/resolver.js';
import type { Store } from '../../src/store/index.js';
import { createWebhookQueue, type WebhookContext } from '../../src/webhooks/index.js';
import { EgressPolicy } from '../../src/net/egress.js';
import { dropRedisPrefix, REDIS_URL, testPrefix } from './redis.js';

/** The egress policy of tests whose receivers and runtimes listen on loopback: as `EGRESS_ALLOW=127.0.0.1,::1`. */
export function loopbackEgress(): EgressPolicy {
  return new EgressPolicy({ allow: ['127.0.0.1', '::1'] });
}

export interface ApiServices {
  /** The server's own object store: a real directory. */
  objects: LocalObjectStore;
  storage: StorageResolver;
  keyring: MasterKeyring;
  webhooks: WebhookContext;
  transcodes: TranscodeCache;
  close(): Promise<void>;
}

/** A real webhook queue (under a Redis prefix of its own) with a keyring under `dir`; `close` drops both. */
export async function webhookContext(store: Store, dir: string): Promise<WebhookContext & { close(): Promise<void> }> {
  const keyring = await MasterKeyring.load({ dataDir: dir });
  const prefix = testPrefix();
  const queue = createWebhookQueue({ url: REDIS_URL }, prefix);
  return {
    queue,
    store,
    keyring,
    egress: loopbackEgress(),
    async close() {
      await queue.close();
      await dropRedisPrefix(prefix);
    },
  };
}

/** The storage, keys and webhook queue the API plugin depends on, real and under `dir`, for API tests. */
export async function apiServices(store: Store, dir: string): Promise<ApiServices> {
  const objects = new LocalObjectStore(path.join(dir, 'objects'));
  const { close: closeWebhooks, ...webhooks } = await webhookContext(store, dir);
  const { keyring } = webhooks;
  const transcodes = await TranscodeCache.open(path.join(dir, 'transcoded'));
  return {
    objects,
    storage: new StorageResolver({ defaultStore: objects, store, keyring, egress: webhooks.egress }),
    keyring,
    webhooks,
    transcodes,
    async close() {
      await transcodes.close();
      await closeWebhooks();
    },
  };
}
