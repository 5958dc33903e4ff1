import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { MasterKeyring } from '../../src/crypto/keys.js';
import { createLogger } from '../../src/log.js';
import { createRecordingsQueue, recordingJobId } from '../../src/queue/recordings.js';
import { SpoolWriter } from '../../src/recording/spool.js';
import { LocalObjectStore } from '../../src/storage/local.js';
import { StorageResolver } from '../../src/storage/resolver.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { createWebhookQueue } from '../../src/webhooks/index.js';
import { CALL_RECORDING_DEFAULTS } from '../../src/agents/settings.js';
import { startWorkers } from '../../workers/index.js';
import { createTestStore, type TestStore } from '../helpers/db.js';
import { dropRedisPrefix, REDIS_URL, testPrefix } from '../helpers/redis.js';


/** A local store whose uploads fail the first `failures` times, as a bucket that is down would. */
class FlakyStore extends LocalObjectStore {
  puts = 0;
  constructor(dir: string, private failures: number) {
    super(dir);
  }
  override async put(key: string, body: Readable): Promise<{ size: number }> {
    this.puts++;
    if (this.failures-- > 0) {
      body.resume();
      throw new Error('bucket unavailable (503)');
    }
    return super.put(key, body);
  }
}

describe('recordings worker', () => {
  let db: TestStore;
  let dir: string;
  const prefix = testPrefix();

  beforeAll(async () => {
    db = await createTestStore('sqlite');
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-worker-'));
  });
  afterAll(async () => {
    await db.cleanup();
    await fs.rm(dir, { recursive: true, force: true });
    await dropRedisPrefix(prefix);
  });

  /** A finished call with one second of spooled stereo audio, as a session leaves it. */
  async function spooledRecording(callId: string): Promise<{ recordingId: string; spoolPath: string }> {
    const { store } = db;
    await store.calls.create({ tenantId: 't', id: callId, agentId: 'a', provider: 'twilio', mode: 'fork', sampleRate: 8000, legs: ['caller', 'agent'], settings: CALL_RECORDING_DEFAULTS });
    const spoolPath = path.join(dir, 'spool', `${callId}.wav`);
    const spool = new SpoolWriter(spoolPath, { sampleRate: 8000, channels: 2 });
    const pcm = new Int16Array(16000).map((_, i) => Math.round(8000 * Math.sin(i / 3)));
    spool.append(pcm, 8000);
    await spool.close();
    const rec = await store.recordings.create({ tenantId: 't', callId, format: 'wav', channels: 2, sampleRate: 8000, storageDays: 90, status: 'processing', spoolPath });
    return { recordingId: rec.id, spoolPath };
  }

  async function waitFor(recordingId: string, status: string) {
    for (let i = 0; i < 200; i++) {
      const rec = await db.store.recordings.get(recordingId);
      if (rec?.status === status) return rec;
      await sleep(25);
    }
    throw new Error(`recording never became ${status}`);
  }

  async function run(objects: ObjectStore, callId: string, attempts: number) {
    const keyring = await MasterKeyring.load({ dataDir: dir });
    const queue = createRecordingsQueue({ url: REDIS_URL }, prefix);
    const storage = new StorageResolver({ defaultStore: objects, store: db.store, keyring });
    const webhooks = { queue: createWebhookQueue({ url: REDIS_URL }, prefix), store: db.store, keyring };
    const workers = startWorkers({ store: db.store, storage, log: createLogger('silent'), keyring, webhooks }, { connection: { url: REDIS_URL }, prefix });
    const { recordingId, spoolPath } = await spooledRecording(callId);
    // Short backoff so the test does not wait out production's schedule.
    await queue.add('finalize', { tenantId: 't', callId, recordingId }, { jobId: recordingJobId('t', callId), attempts, backoff: { type: 'fixed', delay: 10 } });
    const close = async () => {
      await workers.close();
      await webhooks.queue.close();
      await queue.close();
    };
    return { close, queue, recordingId, spoolPath };
  }

  test('an upload that keeps failing marks the recording failed with the reason and keeps the spool', async () => {
    const storage = new FlakyStore(path.join(dir, 'objects-a'), Infinity);
    const { close, recordingId, spoolPath } = await run(storage, 'always-failing', 3);
    const rec = await waitFor(recordingId, 'failed');
    expect(rec.error).toContain('bucket unavailable');
    expect(rec.attempts).toBe(3);
    expect(storage.puts).toBe(3);
    await expect(fs.stat(spoolPath)).resolves.toBeDefined();
    await close();
  });

  test('a failure then success: ready, one object, spool deleted', async () => {
    const storage = new FlakyStore(path.join(dir, 'objects-b'), 1);
    const { close, queue, recordingId, spoolPath } = await run(storage, 'fails-once', 3);
    const rec = await waitFor(recordingId, 'ready');
    expect(storage.puts).toBe(2);
    expect(await storage.exists(rec.objectKey!)).toBe(true);
    const files = await fs.readdir(path.join(dir, 'objects-b'), { recursive: true });
    expect(files.filter((f) => f.endsWith('.enc'))).toHaveLength(1);
    await expect(fs.stat(spoolPath)).rejects.toMatchObject({ code: 'ENOENT' });
    // A duplicate job for the same call is not added again: the id is the call's.
    await queue.add('finalize', { tenantId: 't', callId: 'fails-once', recordingId }, { jobId: recordingJobId('t', 'fails-once') });
    await sleep(200);
    expect(storage.puts).toBe(2);
    await close();
  });
});
