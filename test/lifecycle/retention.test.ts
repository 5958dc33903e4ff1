import fs from 'node:fs/promises';
import os from 'node:os';
import { loopbackEgress } from '../helpers/api-deps.js';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue, Worker } from 'bullmq';
import { CALL_RECORDING_DEFAULTS } from '../../src/agents/settings.js';
import { MasterKeyring } from '../../src/crypto/keys.js';
import { createLogger } from '../../src/log.js';
import { LocalObjectStore } from '../../src/storage/local.js';
import type { RecordingStatus } from '../../src/store/index.js';
import { applySettingsPatch } from '../../src/tenants/settings.js';
import { createWebhookQueue, type WebhookJobData } from '../../src/webhooks/index.js';
import {
  createMaintenanceQueue,
  createRetentionProcessor,
  scheduleRetention,
  startRetentionWorker,
  type RetentionDeps,
} from '../../workers/retention.js';
import { Evidence } from '../../src/evidence/index.js';
import { createTestStore, TEST_DB_KINDS, type TestStore } from '../helpers/db.js';
import { dropRedisPrefix, REDIS_URL, testPrefix } from '../helpers/redis.js';

const DAY = 24 * 3600 * 1000;

describe.each(TEST_DB_KINDS)('retention on %s', (kind) => {
  let db: TestStore;
  let dir: string;
  let storage: LocalObjectStore;
  let webhooks: Queue<WebhookJobData>;
  let deps: RetentionDeps;
  const prefix = testPrefix();
  const log = createLogger('silent');

  /** A call with a recording in `status` kept `storageDays`; a ready one has a real object. */
  async function addRecording(
    callId: string,
    storageDays: number,
    status: RecordingStatus = 'ready',
    tenantId = 't1',
  ): Promise<string | null> {
    await db.store.calls.create({
      tenantId,
      id: callId,
      agentId: 'agent-1',
      provider: 'twilio',
      mode: 'fork',
      sampleRate: 8000,
      legs: ['caller', 'agent'],
      settings: CALL_RECORDING_DEFAULTS,
    });
    const recording = await db.store.recordings.create({
      tenantId,
      callId,
      format: 'mp3',
      channels: 1,
      sampleRate: 8000,
      storageDays,
    });
    const objectKey = status === 'ready' ? `${tenantId}/${callId}/${recording.id}.mp3.enc` : null;
    if (objectKey) await storage.put(objectKey, Readable.from([Buffer.from(callId)]));
    await db.store.recordings.update(recording.id, { status, objectKey });
    return objectKey;
  }

  beforeAll(async () => {
    db = await createTestStore(kind);
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-retention-'));
    storage = new LocalObjectStore(path.join(dir, 'objects'));
    const keyring = await MasterKeyring.load({ dataDir: dir });
    await db.store.tenants.ensure('t1', 'One');
    await db.store.tenants.updateSettings('t1', (s) =>
      applySettingsPatch(keyring, 't1', s, { webhook_url: 'http://127.0.0.1:9/hooks' }, { operator: true }),
    );
    webhooks = createWebhookQueue({ url: REDIS_URL }, prefix);
    deps = {
      store: db.store,
      storageFor: () => storage,
      webhooks: { queue: webhooks, store: db.store, keyring, egress: loopbackEgress() },
      evidence: new Evidence(db.store, keyring),
      log,
      now: () => new Date(),
    };
  });

  afterAll(async () => {
    await webhooks.close();
    await db.cleanup();
    await fs.rm(dir, { recursive: true, force: true });
    await dropRedisPrefix(prefix);
  });

  test('deletes only expired recordings, leaves tombstones by retention, skips held calls, emits recording.deleted', async () => {
    const expiredA = await addRecording('old-a', 30);
    const expiredB = await addRecording('old-b', 10);
    const kept = await addRecording('young', 90);
    const held = await addRecording('held', 30);
    await db.store.calls.setLegalHold('t1', 'held', true, 'litigation', null);
    await addRecording('busy', 30, 'processing');

    // Today nothing is past its storage_days.
    expect(await createRetentionProcessor(deps)()).toEqual({ deleted: 0, failed: 0 });
    expect(await storage.exists(expiredA!)).toBe(true);

    const in31Days = createRetentionProcessor({ ...deps, now: () => new Date(Date.now() + 31 * DAY) });
    expect(await in31Days()).toEqual({ deleted: 2, failed: 0 });
    for (const [callId, objectKey] of [
      ['old-a', expiredA],
      ['old-b', expiredB],
    ] as const) {
      expect(await storage.exists(objectKey!)).toBe(false);
      expect((await db.store.recordings.getByCall('t1', callId))!.status).toBe('deleted');
      expect(await db.store.tombstones.list('t1', callId)).toEqual([
        expect.objectContaining({ objectKey, deletedBy: 'retention', reason: 'retention' }),
      ]);
    }
    for (const [callId, objectKey] of [
      ['young', kept],
      ['held', held],
    ] as const) {
      expect(await storage.exists(objectKey!)).toBe(true);
      expect((await db.store.recordings.getByCall('t1', callId))!.status).toBe('ready');
      expect(await db.store.tombstones.list('t1', callId)).toEqual([]);
    }
    expect((await db.store.recordings.getByCall('t1', 'busy'))!.status).toBe('processing');

    const events = (await webhooks.getJobs(['waiting'])).map((job) => JSON.parse(job.data.body));
    expect(events.map((e) => [e.type, e.data.call_id, e.data.status]).sort()).toEqual([
      ['recording.deleted', 'old-a', 'deleted'],
      ['recording.deleted', 'old-b', 'deleted'],
    ]);

    // A second run finds nothing left to do; releasing the hold lets the next one delete it.
    expect(await in31Days()).toEqual({ deleted: 0, failed: 0 });
    await db.store.calls.setLegalHold('t1', 'held', false, 'settled', null);
    expect(await in31Days()).toEqual({ deleted: 1, failed: 0 });
    expect(await storage.exists(held!)).toBe(false);
  });

  test("a recording whose object cannot be deleted is counted, kept deleting (recovery finishes it), and does not stop the run; its tenant's others wait for the next", async () => {
    const broken = await addRecording('broken', 1);
    const later = await addRecording('later', 1);
    const fine = await addRecording('fine', 1, 'ready', 't2');
    const flaky = {
      delete: async (key: string) =>
        key === broken ? Promise.reject(new Error('bucket says no')) : storage.delete(key),
    };
    const run = createRetentionProcessor({
      ...deps,
      storageFor: () => flaky,
      now: () => new Date(Date.now() + 2 * DAY),
    });
    expect(await run()).toEqual({ deleted: 1, failed: 2 });
    expect(await storage.exists(fine!)).toBe(false);
    expect(await storage.exists(broken!)).toBe(true);
    expect(await storage.exists(later!)).toBe(true);
    expect((await db.store.recordings.getByCall('t1', 'broken'))!.status).toBe('deleting');
    expect(await run()).toEqual({ deleted: 1, failed: 0 });
    expect(await storage.exists(later!)).toBe(false);
  });

  test('scheduleRetention runs the processor as a repeatable BullMQ job', async () => {
    const expired = await addRecording('scheduled', 1);
    const queue = createMaintenanceQueue({ url: REDIS_URL }, prefix);
    let worker: Worker | undefined;
    try {
      await scheduleRetention(queue, 3_600_000);
      await scheduleRetention(queue, 3_600_000);
      expect(await queue.getJobSchedulersCount()).toBe(1);
      worker = startRetentionWorker(
        { ...deps, now: () => new Date(Date.now() + 2 * DAY) },
        { connection: { url: REDIS_URL }, prefix },
      );
      for (let i = 0; i < 400 && (await storage.exists(expired!)); i++) await sleep(25);
      expect(await storage.exists(expired!)).toBe(false);
      expect(await db.store.tombstones.list('t1', 'scheduled')).toEqual([
        expect.objectContaining({ deletedBy: 'retention' }),
      ]);
    } finally {
      await worker?.close();
      await queue.close();
    }
  });
});
