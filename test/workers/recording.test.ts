import fs from 'node:fs/promises';
import os from 'node:os';
import { loopbackEgress } from '../helpers/api-deps.js';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { openEncrypted } from '../../src/crypto/chunked.js';
import { MasterKeyring } from '../../src/crypto/keys.js';
import { createLogger } from '../../src/log.js';
import { RecordingQueues, recordingJobId } from '../../src/queue/recordings.js';
import { readPeaks } from '../../src/recording/peaks.js';
import { SpoolWriter } from '../../src/recording/spool.js';
import { LocalObjectStore } from '../../src/storage/local.js';
import { StorageResolver } from '../../src/storage/resolver.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { createWebhookQueue } from '../../src/webhooks/index.js';
import { CALL_RECORDING_DEFAULTS } from '../../src/agents/settings.js';
import { startWorkers } from '../../workers/index.js';
import { decodeAudio, findBursts, synthesizeTones, type ToneBurst } from '../helpers/audio.js';
import { createTestStore, type TestStore } from '../helpers/db.js';
import { dropRedisPrefix, REDIS_URL, testPrefix } from '../helpers/redis.js';
import { shippedSpoolStores } from '../../src/recording/shared-spool.js';
import { GcsObjectStore } from '../../src/storage/gcs.js';
import { GcsTestServer } from '../helpers/gcs-server.js';

/** A local store whose uploads fail the first `failures` times, as a bucket that is down would. */
class FlakyStore extends LocalObjectStore {
  puts = 0;
  constructor(
    dir: string,
    private failures: number,
  ) {
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

  /** What a finished call leaves: a stereo spool (by default one second of a tone) and its recording. */
  interface Spooled {
    pcm?: Int16Array;
    format?: 'wav' | 'mp3';
    channels?: 1 | 2;
    /** The spool is gone before the job runs (a lost disk). */
    lost?: boolean;
  }

  async function spooledRecording(
    callId: string,
    opts: Spooled = {},
  ): Promise<{ recordingId: string; spoolPath: string }> {
    const { store } = db;
    await store.calls.create({
      tenantId: 't',
      id: callId,
      agentId: 'a',
      provider: 'twilio',
      mode: 'fork',
      sampleRate: 8000,
      legs: ['caller', 'agent'],
      settings: CALL_RECORDING_DEFAULTS,
    });
    const spoolPath = path.join(dir, 'spool', `${callId}.wav`);
    const spool = new SpoolWriter(spoolPath, { sampleRate: 8000, channels: 2 });
    const pcm = opts.pcm ?? new Int16Array(16000).map((_, i) => Math.round(8000 * Math.sin(i / 3)));
    // Appended a second at a time, each written before the next, as the capture flushes (the
    // spool drops what would queue for the disk past MAX_QUEUED_MS).
    for (let at = 0; at < pcm.length; at += 16000) {
      spool.append(pcm.subarray(at, at + 16000), Math.min(8000, (pcm.length - at) / 2));
      await spool.flush();
    }
    await spool.close();
    if (opts.lost) await fs.rm(spoolPath);
    const rec = await store.recordings.create({
      tenantId: 't',
      callId,
      format: opts.format ?? 'wav',
      channels: opts.channels ?? 2,
      sampleRate: 8000,
      storageDays: 90,
      status: 'processing',
      spoolPath,
    });
    return { recordingId: rec.id, spoolPath };
  }

  async function waitFor(recordingId: string, status: string, polls = 200) {
    for (let i = 0; i < polls; i++) {
      const rec = await db.store.recordings.get(recordingId);
      if (rec?.status === status) return rec;
      await sleep(25);
    }
    throw new Error(`recording never became ${status}`);
  }

  async function run(
    objects: ObjectStore,
    callId: string,
    attempts: number,
    spooled: Spooled & { encodeThreads?: number } = {},
  ) {
    const keyring = await MasterKeyring.load({ dataDir: dir });
    const queues = new RecordingQueues({ url: REDIS_URL }, prefix);
    const queue = queues.queue(null);
    const storage = new StorageResolver({ defaultStore: objects, store: db.store, keyring, egress: loopbackEgress() });
    const webhooks = {
      queue: createWebhookQueue({ url: REDIS_URL }, prefix),
      store: db.store,
      keyring,
      egress: loopbackEgress(),
    };
    const deps = {
      store: db.store,
      storage,
      log: createLogger('silent'),
      keyring,
      webhooks,
      encodeThreads: spooled.encodeThreads,
      spools: shippedSpoolStores({ endpoint: undefined, workDir: dir }),
    };
    const workers = startWorkers(deps, { connection: { url: REDIS_URL }, prefix });
    const { recordingId, spoolPath } = await spooledRecording(callId, spooled);
    // Short backoff so the test does not wait out production's schedule.
    await queue.add(
      'finalize',
      { tenantId: 't', callId, recordingId },
      { jobId: recordingJobId(recordingId), attempts, backoff: { type: 'fixed', delay: 10 } },
    );
    const close = async () => {
      await workers.close();
      await webhooks.queue.close();
      await queues.close();
    };
    return { close, queue, recordingId, spoolPath, keyring };
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

  test('uploads refused by the bucket leave no file descriptor open (20 attempts)', async () => {
    // The audio goes to a GCS server that refuses connections: the client gives up before it
    // reads the body. The peaks (uploaded first) go to a working disk so every attempt gets as
    // far as opening the encoded file.
    const server = await GcsTestServer.start(['down']);
    server.fail('refuse');
    const peaks = new LocalObjectStore(path.join(dir, 'objects-fd'));
    const bucket = new GcsObjectStore('gs://down/rec', { endpoint: server.endpoint });
    const storage: ObjectStore = Object.assign(Object.create(peaks) as LocalObjectStore, {
      put: (key: string, body: Readable) =>
        key.endsWith('.peaks.json.enc') ? peaks.put(key, body) : bucket.put(key, body),
    });
    const openFds = () => fs.readdir('/proc/self/fd').then((fds) => fds.length);
    // One failed recording first, so the worker's connections and lazily opened files exist.
    const { close, queue, recordingId } = await run(storage, 'fd-warm-up', 1);
    await waitFor(recordingId, 'failed');
    const before = await openFds();
    const leaky = await spooledRecording('fd-twenty');
    await queue.add(
      'finalize',
      { tenantId: 't', callId: 'fd-twenty', recordingId: leaky.recordingId },
      { jobId: recordingJobId(leaky.recordingId), attempts: 20, backoff: { type: 'fixed', delay: 10 } },
    );
    const rec = await waitFor(leaky.recordingId, 'failed', 2400);
    expect(rec.attempts).toBe(20);
    expect(rec.error).toContain('ECONNREFUSED');
    expect(await openFds()).toBeLessThanOrEqual(before);
    await close();
    await server.close();
  });

  test('a spool that is not on this disk fails the recording at once, saying so, without retries', async () => {
    const storage = new FlakyStore(path.join(dir, 'objects-lost'), 0);
    const { close, recordingId } = await run(storage, 'lost-spool', 5, { lost: true });
    const rec = await waitFor(recordingId, 'failed');
    expect(rec.error).toMatch(/^ERR_NO_SPOOL: the spool of recording .* is not on this node's disk/);
    expect(storage.puts).toBe(0);
    await close();
  });

  test('a failure then success: ready, one object and its peaks, spool deleted', async () => {
    const storage = new FlakyStore(path.join(dir, 'objects-b'), 1);
    const { close, queue, recordingId, spoolPath } = await run(storage, 'fails-once', 3);
    const rec = await waitFor(recordingId, 'ready');
    // The first attempt failed at its first upload (the peaks); the second stored peaks and audio.
    expect(storage.puts).toBe(3);
    expect(await storage.exists(rec.objectKey!)).toBe(true);
    const files = await fs.readdir(path.join(dir, 'objects-b'), { recursive: true });
    expect(
      files
        .filter((f) => f.endsWith('.enc'))
        .map((f) => path.basename(f))
        .sort(),
    ).toEqual([`${recordingId}.peaks.json.enc`, `${recordingId}.wav.enc`]);
    // The spool goes once the recording is stored and marked ready, a moment after.
    for (
      let i = 0;
      i < 200 &&
      (await fs.stat(spoolPath).then(
        () => true,
        () => false,
      ));
      i++
    )
      await sleep(25);
    await expect(fs.stat(spoolPath)).rejects.toMatchObject({ code: 'ENOENT' });
    // A duplicate job for the same call is not added again: the id is the call's.
    await queue.add(
      'finalize',
      { tenantId: 't', callId: 'fails-once', recordingId },
      { jobId: recordingJobId(recordingId) },
    );
    await sleep(200);
    expect(storage.puts).toBe(3);
    await close();
  });

  test.each([2, 1] as const)(
    'a long MP3 call is encoded in parts from the spool and plays whole (%i channel(s))',
    async (channels) => {
      // 65 s make two parts, joined near 32.5 s; each leg speaks across the boundary.
      const tones: ToneBurst[] = [
        [0, 1000, 5_000, 6_000],
        [0, 1000, 31_800, 33_000],
        [1, 1500, 33_200, 35_000],
        [1, 1500, 60_000, 61_000],
      ];
      const pcm = synthesizeTones(8000, 2, 65, tones);
      const objects = new LocalObjectStore(path.join(dir, `objects-parts-${channels}`));
      const { close, recordingId, keyring } = await run(objects, `long-mp3-${channels}`, 1, {
        pcm,
        format: 'mp3',
        channels,
        encodeThreads: 2,
      });
      const rec = await waitFor(recordingId, 'ready');
      await close();
      expect(rec.durationMs).toBe(65_000);
      const size = (await objects.size(rec.objectKey!))!;
      const dataKey = keyring.unwrap({ keyId: rec.keyId!, wrapped: rec.wrappedKey! });
      const stored = await openEncrypted(dataKey, size, (r) => objects.get(rec.objectKey!, r));
      const bytes: Buffer[] = [];
      for await (const part of await stored.read(0, stored.plainLength - 1)) bytes.push(part as Buffer);
      const decoded = await decodeAudio(Buffer.concat(bytes), 'mp3');
      expect(decoded.channels).toHaveLength(channels);
      expect(decoded.channels[0].length).toBe(65 * 8000);
      for (const [channel, freq] of [
        [0, 1000],
        [1, 1500],
      ] as const) {
        const expected = tones.filter(([c]) => c === channel);
        // LAME leaves faint tails after a hard tone stop; louder than them is a tone.
        const bursts = findBursts(decoded.channels[Math.min(channel, channels - 1)], 8000, freq, {
          minAmplitude: 0.05,
        });
        expect(bursts.map((b) => Math.round(b.startMs))).toEqual(expected.map(([, , start]) => start));
        expect(bursts.map((b) => Math.round(b.endMs))).toEqual(expected.map(([, , , end]) => end));
      }

      // The waveform beside it, under the same data key: 65 s at the 4000-bucket cap, 130 frames (16.25 ms) a bucket.
      const waveform = (await readPeaks(objects, rec.objectKey!, dataKey))!;
      expect(waveform.duration).toBe(65);
      expect(waveform.channels).toEqual(channels === 2 ? ['caller', 'agent'] : ['mix']);
      expect(waveform.peaks.map((lane) => lane.length)).toEqual(Array(channels).fill(4000));
      const at = (seconds: number) => Math.floor((seconds * 8000) / 130);
      // The tones peak at 12000 of 32768 (the mono mix adds them to silence, below the limiter's knee).
      const TONE = 0.366;
      expect(Math.max(...waveform.peaks.flat())).toBe(TONE);
      for (const lane of waveform.peaks) expect(lane[at(2)]).toBe(0); // silence before the first tone
      if (channels === 2) {
        // Each lane shows its own leg: the caller's tone at 5.5 s, the agent's at 60.5 s.
        expect([waveform.peaks[0][at(5.5)], waveform.peaks[1][at(5.5)]]).toEqual([TONE, 0]);
        expect([waveform.peaks[0][at(60.5)], waveform.peaks[1][at(60.5)]]).toEqual([0, TONE]);
      } else {
        expect([waveform.peaks[0][at(5.5)], waveform.peaks[0][at(60.5)]]).toEqual([TONE, TONE]);
      }
    },
  );
});
