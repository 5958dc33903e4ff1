import path from 'node:path';
import type { ConnectionOptions, Queue } from 'bullmq';
import { passesInTime } from './api/health.js';
import type { Config } from './config.js';
import { MasterKeyring } from './crypto/keys.js';
import { Evidence } from './evidence/index.js';
import { EvidenceSweep } from './evidence/sweep.js';
import type { Logger } from './log.js';
import { RecordingQueues } from './queue/recordings.js';
import { shippedSpoolStores, type SpoolSourceOptions } from './recording/shared-spool.js';
import { SpoolBytes } from './recording/spool-bytes.js';
import { checkRedis } from './redis.js';
import { openObjectStore } from './storage/index.js';
import { StorageResolver } from './storage/resolver.js';
import { EgressPolicy } from './net/egress.js';
import { createStore, type Store } from './store/index.js';
import { createWebhookQueue, type WebhookContext } from './webhooks/index.js';
import { createMaintenanceQueue, keepRetentionScheduled } from '../workers/retention.js';

/** Retention runs hourly: recordings expire by the day, so finer gains nothing. */
const RETENTION_EVERY_MS = 3_600_000;

/** How often recordings left unsigned are signed, and manifests without a time-stamp token sent to `TSA_URL`. */
const EVIDENCE_SWEEP_EVERY_MS = 5_000;

/** What both a media node (`serve`) and a worker node (`worker`) build from the configuration. */
export interface Services {
  store: Store;
  keyring: MasterKeyring;
  storage: StorageResolver;
  /** Where tenants' and streams' URLs may lead (`EGRESS_ALLOW`). */
  egress: EgressPolicy;
  connection: ConnectionOptions;
  recordings: RecordingQueues;
  webhooks: WebhookContext;
  /** Where workers read spools shipped to object storage (and media nodes ship them), their segments counted in `spoolBytes`. */
  spools: Omit<SpoolSourceOptions, 'keyring'>;
  spoolBytes: SpoolBytes;
  /** `/readyz`'s checks: whether what this node's workers need answers, each within `READINESS_CHECK_TIMEOUT_MS`. */
  readiness(): Promise<Record<string, boolean>>;
  close(): Promise<void>;
}

/**
 * Connects to Redis (failing fast with advice if it is down), opens and migrates the database,
 * loads the master keys and opens the queues; schedules retention.
 */
export async function openServices(config: Config, log: Logger): Promise<Services> {
  await checkRedis(config.redisUrl);
  const store = await createStore(config.databaseUrl, { log });
  try {
    await store.migrate();
    if (config.apiKey) await store.keys.ensureOperatorKey(config.apiKey);
  } catch (err) {
    await store.close();
    throw err;
  }
  const keyring = await MasterKeyring.load({ dataDir: config.dataDir, masterKey: config.masterKey });
  const egress = new EgressPolicy({ allow: config.egressAllow });
  const timeouts = config.remoteTimeouts;
  const storage = new StorageResolver({
    defaultStore: openObjectStore(config.storageUrl, { endpoint: config.storageEndpoint, timeouts }),
    endpoint: config.storageEndpoint,
    store,
    keyring,
    egress,
    timeouts,
  });
  const connection = { url: config.redisUrl };
  const onQueueError = (err: Error, queue: string) => log.error({ err, queue }, 'queue error');
  const recordings = new RecordingQueues(connection, config.queuePrefix, onQueueError);
  const webhookQueue = createWebhookQueue(connection, config.queuePrefix);
  const maintenance = createMaintenanceQueue(connection, config.queuePrefix);
  for (const queue of [webhookQueue, maintenance] as Queue[]) queue.on('error', (err) => onQueueError(err, queue.name));
  const retentionSchedule = await keepRetentionScheduled(maintenance, RETENTION_EVERY_MS, { log });
  const spoolBytes = new SpoolBytes({ redisUrl: config.redisUrl, prefix: config.queuePrefix, log });
  await spoolBytes.connect();
  // The key set is published from the first start, before any recording is signed with it.
  const evidence = new Evidence(store, keyring);
  await evidence.keys.ensure();
  // Signing that failed at finalize (or predates manifests) and time-stamps, apart from finalizing.
  const evidenceSweep = new EvidenceSweep({
    store,
    evidence,
    tsa: config.tsaUrl ? { url: config.tsaUrl, timeoutMs: config.tsaTimeoutMs } : null,
    log,
  });
  evidenceSweep.start(EVIDENCE_SWEEP_EVERY_MS);
  const spools = shippedSpoolStores({
    endpoint: config.storageEndpoint,
    workDir: path.join(config.dataDir, 'spool'),
    bytes: spoolBytes,
    timeouts,
  });
  return {
    store,
    keyring,
    storage,
    egress,
    connection,
    recordings,
    webhooks: { queue: webhookQueue, store, keyring, egress },
    spools,
    spoolBytes,
    // The database, Redis, the bucket, and the spool bucket if spools are shipped.
    async readiness() {
      const spoolStore = config.spoolUrl ? spools.storeAt(config.spoolUrl) : null;
      const [database, redis, objects, spool] = await Promise.all([
        passesInTime(store.ping()),
        passesInTime(recordings.queue(null).count()),
        passesInTime(storage.default.exists('.readyz')),
        spoolStore ? passesInTime(spoolStore.exists('.readyz')) : null,
      ]);
      return { database, redis, storage: objects, ...(spool === null ? {} : { spool }) };
    },
    async close() {
      retentionSchedule.stop();
      await evidenceSweep.stop();
      spoolBytes.close();
      await Promise.all([recordings.close(), webhookQueue.close(), maintenance.close()]);
      await store.close();
    },
  };
}
