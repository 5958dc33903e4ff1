import fs from 'node:fs/promises';
import os from 'node:os';
import { loopbackEgress } from '../helpers/api-deps.js';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CALL_RECORDING_DEFAULTS } from '../../src/agents/settings.js';
import { MasterKeyring } from '../../src/crypto/keys.js';
import { createLogger } from '../../src/log.js';
import { MediaMetrics } from '../../src/metrics.js';
import { RecordingQueues, recordingJobId } from '../../src/queue/recordings.js';
import { OUTAGE_RETRY_WINDOW_MS, recoverSpools, type RecoveryOptions } from '../../src/recovery.js';
import { ShippedSpoolWriter, shippedSpoolStores } from '../../src/recording/shared-spool.js';
import { SpoolWriter } from '../../src/recording/spool.js';
import { GcsObjectStore } from '../../src/storage/gcs.js';
import { StorageResolver } from '../../src/storage/resolver.js';
import { applySettingsPatch } from '../../src/tenants/settings.js';
import type { Recording } from '../../src/store/index.js';
import { createWebhookQueue } from '../../src/webhooks/index.js';
import { startWorkers } from '../../workers/index.js';
import { createTestStore, type TestStore } from '../helpers/db.js';
import { GcsTestServer } from '../helpers/gcs-server.js';
import { dropRedisPrefix, REDIS_URL, testPrefix } from '../helpers/redis.js';

/*
 * A recording job that fails because a bucket does not answer (the recordings bucket on upload,
 * or the spool bucket a shipped spool is read from) ends `failed` with an outage code; the
 * recovery sweep queues it again once that bucket answers, and it ends `ready`. The bucket is a
 * real HTTP server (the GCS JSON API) that the test stops and starts.
 */

const SELF = 'outage-node';
const RATE = 8000;

let db: TestStore;
let dir: string;
let gcs: GcsTestServer;
let queues: RecordingQueues;
let keyring: MasterKeyring;
let metrics: MediaMetrics;
let workers: { close(): Promise<void> };
let webhooks: ReturnType<typeof createWebhookQueue>;
let recovery: RecoveryOptions;
const prefix = testPrefix();
const spools = () => shippedSpoolStores({ endpoint: gcs.endpoint, workDir: path.join(dir, 'spool') });

beforeAll(async () => {
  db = await createTestStore('sqlite');
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-outage-'));
  gcs = await GcsTestServer.start(['recordings', 'spools']);
  keyring = await MasterKeyring.load({ dataDir: dir, masterKey: randomBytes(32).toString('base64') });
  await db.store.tenants.ensure('t', 'T');
  const storage = new StorageResolver({
    defaultStore: new GcsObjectStore('gs://recordings/audio', {
      endpoint: gcs.endpoint,
      maxRetries: 1,
      timeoutMs: 2000,
    }),
    endpoint: gcs.endpoint,
    timeouts: { connectMs: 2000, requestMs: 2000 },
    store: db.store,
    keyring,
    egress: loopbackEgress(),
  });
  queues = new RecordingQueues({ url: REDIS_URL }, prefix);
  webhooks = createWebhookQueue({ url: REDIS_URL }, prefix);
  metrics = new MediaMetrics();
  const log = createLogger('silent');
  workers = startWorkers(
    {
      store: db.store,
      storage,
      log,
      keyring,
      webhooks: { queue: webhooks, store: db.store, keyring, egress: loopbackEgress() },
      spools: spools(),
    },
    { connection: { url: REDIS_URL }, prefix, nodeId: SELF, metrics },
  );
  // As a media node runs it (src/server.ts); the spool bucket is probed by a client that does not
  // retry for seconds after the test (the probe itself gives up after 800 ms).
  const spoolProbe = new GcsObjectStore('gs://spools/calls', {
    endpoint: gcs.endpoint,
    maxRetries: 1,
    timeoutMs: 2000,
  });
  recovery = {
    nodeId: SELF,
    isNodeAlive: async () => true,
    buckets: {
      storageFor: (recording) => storage.forTenant(recording.tenantId),
      spoolAt: (url) => (url === spoolProbe.url ? spoolProbe : spools().storeAt(url)),
    },
  };
});

afterAll(async () => {
  // The GCS client retries the probes the sweep sent while the bucket was down (the sweep stopped
  // waiting for them after 800 ms): two then, two once it was back.
  await until(
    'the probes sent while the bucket was down are retried',
    async () => gcs.requests.filter((r) => r.includes('.readyz')).length >= 4,
    30_000,
  );
  await workers?.close();
  await webhooks?.close();
  await queues?.close();
  await gcs?.close();
  await db?.cleanup();
  await fs.rm(dir, { recursive: true, force: true });
  await dropRedisPrefix(prefix);
});

/** Two seconds of a tone, as a finished call's spool: on this disk, or shipped to `gs://spools/calls` (its local file gone, as on another node). */
async function spooledRecording(callId: string, shipped: boolean, tenantId = 't'): Promise<Recording> {
  await db.store.calls.create({
    tenantId,
    id: callId,
    agentId: 'a',
    provider: 'twilio',
    mode: 'fork',
    sampleRate: RATE,
    legs: ['caller', 'agent'],
    settings: CALL_RECORDING_DEFAULTS,
    nodeId: shipped ? 'another-node' : SELF,
  });
  await db.store.calls.update(tenantId, callId, { status: 'ended', endedAt: new Date().toISOString() });
  const spoolPath = path.join(dir, 'spool', `${randomUUID()}.wav`);
  const options = { sampleRate: RATE, channels: 2 as const };
  const store = spools().storeAt('gs://spools/calls');
  const spool = shipped
    ? new ShippedSpoolWriter(spoolPath, options, {
        store,
        keyring,
        segmentSeconds: 1,
        log: createLogger('silent'),
        metrics,
      })
    : new SpoolWriter(spoolPath, options);
  const pcm = new Int16Array(2 * RATE * 2).map((_, i) => Math.round(8000 * Math.sin(i / 3)));
  for (let at = 0; at < pcm.length; at += 2 * RATE) {
    spool.append(pcm.subarray(at, at + 2 * RATE), RATE);
    await spool.flush();
  }
  await spool.close();
  if (shipped) {
    expect(spool.shipped).toBe(true);
    await fs.rm(spoolPath);
  }
  return db.store.recordings.create({
    tenantId,
    callId,
    format: 'wav',
    channels: 2,
    sampleRate: RATE,
    storageDays: 90,
    status: 'processing',
    spoolPath,
    spoolUrl: shipped ? store.url : null,
  });
}

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

const status = async (recording: Recording) => (await db.store.recordings.get(recording.id))!;
const bucketErrors = async (bucket: string) =>
  (await metrics.recordingBucketErrors.get()).values.find((v) => v.labels.bucket === bucket)?.value;

test('recordings failed because a bucket was down are retried by the sweep once it answers, on the queue their spool asks for, and end ready', async () => {
  const local = await spooledRecording('upload-outage', false);
  const shipped = await spooledRecording('spool-outage', true);
  gcs.fail('refuse');
  // One attempt each (production gives five, 30 s in all): the job is then out of attempts.
  await queues
    .queue(SELF)
    .add(
      'finalize',
      { tenantId: 't', callId: local.callId, recordingId: local.id },
      { jobId: recordingJobId(local.id), attempts: 1 },
    );
  await queues
    .queue(null)
    .add(
      'finalize',
      { tenantId: 't', callId: shipped.callId, recordingId: shipped.id },
      { jobId: recordingJobId(shipped.id), attempts: 1 },
    );
  await until(
    'both jobs failed',
    async () => (await status(local)).status === 'failed' && (await status(shipped)).status === 'failed',
  );
  expect((await status(local)).error).toMatch(/^ERR_STORAGE_UNREACHABLE: gs:\/\/recordings\/audio did not answer: /);
  expect((await status(shipped)).error).toMatch(/^ERR_SPOOL_UNREACHABLE: gs:\/\/spools\/calls did not answer: /);
  expect(await bucketErrors('storage')).toBe(1);
  expect(await bucketErrors('spool')).toBe(1);
  await expect(fs.stat(local.spoolPath!)).resolves.toBeTruthy();

  // While the bucket is down, sweeps leave them failed.
  const down = await recoverSpools(db.store, queues, dir, recovery);
  expect(down.outageRetried).toEqual([]);
  expect((await status(local)).status).toBe('failed');

  await gcs.recover();
  // Past the retry window, a recording is left to `callrec jobs retry`.
  const late = await recoverSpools(db.store, queues, dir, {
    ...recovery,
    now: () => new Date(Date.now() + OUTAGE_RETRY_WINDOW_MS + 60_000),
  });
  expect(late.outageRetried).toEqual([]);
  expect((await status(shipped)).status).toBe('failed');

  const back = await recoverSpools(db.store, queues, dir, recovery);
  expect(back.outageRetried.map((r) => r.callId).sort()).toEqual(['spool-outage', 'upload-outage']);
  // The local spool's job on this node's queue (only this disk holds it), the shipped one on the shared queue.
  expect(await queues.queue(SELF).getJobState(recordingJobId(local.id))).not.toBe('unknown');
  expect(await queues.queue(null).getJobState(recordingJobId(local.id))).toBe('unknown');
  expect(await queues.queue(null).getJobState(recordingJobId(shipped.id))).not.toBe('unknown');
  // A second sweep while they run adds nothing.
  expect((await recoverSpools(db.store, queues, dir, recovery)).outageRetried).toEqual([]);

  await until(
    'both recordings are ready',
    async () => (await status(local)).status === 'ready' && (await status(shipped)).status === 'ready',
  );
  for (const recording of [local, shipped])
    expect(await status(recording)).toMatchObject({ error: null, durationMs: 2000, complete: true, lostSpans: [] });
  // The worker removes the spool just after it marks the recording ready.
  await until('the local spool is deleted', () =>
    fs.stat(local.spoolPath!).then(
      () => false,
      (err: NodeJS.ErrnoException) => err.code === 'ENOENT',
    ),
  );
  // Audio and peaks of both in the recordings bucket; nothing left of the shipped spool.
  expect(gcs.objectNames('recordings').filter((name) => name.endsWith('.wav.enc'))).toHaveLength(2);
  await until(
    'the shipped spool is deleted (just after the recording is ready)',
    async () => gcs.objectNames('spools').length === 0,
  );
}, 120_000);

test('a bucket that refuses access fails the recording at once, naming the settings to fix, in the same words whether the bucket exists or not', async () => {
  const denied = await spooledRecording('upload-denied', false);
  gcs.fail('403');
  // The production job options: five attempts, of which one is used.
  await queues
    .queue(SELF)
    .add(
      'finalize',
      { tenantId: 't', callId: denied.callId, recordingId: denied.id },
      { jobId: recordingJobId(denied.id) },
    );
  await until('the job failed', async () => (await status(denied)).status === 'failed');
  await gcs.recover();
  const job = await queues.queue(SELF).getJob(recordingJobId(denied.id));
  expect(job?.attemptsMade).toBe(1);
  const { error } = await status(denied);
  expect(error).toBe(
    "ERR_STORAGE_REFUSED: gs://recordings/audio refused access (credentials, permissions or bucket name): check STORAGE_URL and the node's credentials",
  );
  // Not an outage: the sweep leaves it alone though the bucket answers.
  expect((await recoverSpools(db.store, queues, dir, recovery)).outageRetried).toEqual([]);

  // A tenant's bucket that does not exist reads the same, but for its URL and the settings named.
  await db.store.tenants.ensure('t2', 'T2');
  const credentials = {
    client_email: 'rec@t2.example',
    private_key: 'unused: the test server takes no credentials',
    project_id: 't2',
  };
  await db.store.tenants.updateSettings('t2', (current) =>
    applySettingsPatch(
      keyring,
      't2',
      current,
      { storage_url: 'gs://no-such-bucket/audio', storage_credentials: credentials },
      { operator: false },
    ),
  );
  const missing = await spooledRecording('upload-nowhere', false, 't2');
  await queues
    .queue(SELF)
    .add(
      'finalize',
      { tenantId: 't2', callId: missing.callId, recordingId: missing.id },
      { jobId: recordingJobId(missing.id) },
    );
  await until('the job failed', async () => (await status(missing)).status === 'failed');
  expect((await queues.queue(SELF).getJob(recordingJobId(missing.id)))?.attemptsMade).toBe(1);
  expect((await status(missing)).error).toBe(
    "ERR_STORAGE_REFUSED: gs://no-such-bucket/audio refused access (credentials, permissions or bucket name): check the tenant's storage_url and storage_credentials",
  );
}, 60_000);
