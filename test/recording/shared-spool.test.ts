import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { BufferPool } from '../../media/buffer-pool.js';
import { MasterKeyring } from '../../src/crypto/keys.js';
import { createLogger } from '../../src/log.js';
import { MediaMetrics } from '../../src/metrics.js';
import {
  openShippedSpool,
  openSpoolSource,
  ShippedSpoolWriter,
  spoolObjects,
  type SpoolShipping,
} from '../../src/recording/shared-spool.js';
import { GcsObjectStore } from '../../src/storage/gcs.js';
import { LocalObjectStore } from '../../src/storage/local.js';
import type { ObjectStore } from '../../src/storage/types.js';
import type { Recording } from '../../src/store/index.js';
import { collectPcm, positionPattern } from '../helpers/audio.js';
import { GcsTestServer } from '../helpers/gcs-server.js';

const RATE = 8000;
/** Half a second per segment: 4000 frames. */
const SEGMENT_SECONDS = 0.5;
const SEGMENT_FRAMES = RATE * SEGMENT_SECONDS;
const BUCKET = 'spools';

interface Bucket {
  store: ObjectStore;
  /** Every object name in the bucket. */
  names(): Promise<string[]>;
  gcs?: GcsTestServer;
  close(): Promise<void>;
}

const BUCKETS: Record<string, () => Promise<Bucket>> = {
  async local() {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-spool-bucket-'));
    return {
      store: new LocalObjectStore(dir),
      names: async () =>
        (await fs.readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name),
      close: () => fs.rm(dir, { recursive: true, force: true }),
    };
  },
  async gcs() {
    const gcs = await GcsTestServer.start([BUCKET]);
    return {
      store: new GcsObjectStore(`gs://${BUCKET}/spool`, { endpoint: gcs.endpoint, maxRetries: 1, timeoutMs: 2000 }),
      names: async () => gcs.objectNames(BUCKET),
      gcs,
      close: () => gcs.close(),
    };
  },
};

let dir: string;
let keyring: MasterKeyring;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-shipped-'));
  keyring = await MasterKeyring.load({ dataDir: dir, masterKey: randomBytes(32).toString('base64') });
});
afterEach(() => fs.rm(dir, { recursive: true, force: true }));

function shipping(store: ObjectStore): SpoolShipping {
  return {
    store,
    keyring,
    segmentSeconds: SEGMENT_SECONDS,
    log: createLogger('silent'),
    metrics: new MediaMetrics(),
    retryMs: { first: 50, max: 200, closeTimeout: 5000 },
  };
}

/** Spools `frames` frames as a call does: appends of 20 ms, a flush every 100 ms of audio. */
async function spoolAudio(spool: ShippedSpoolWriter, from: number, frames: number): Promise<void> {
  for (let f = from; f < from + frames; f += 160) {
    const n = Math.min(160, from + frames - f);
    spool.append(positionPattern(f, n), n);
    if ((f / 160) % 5 === 4) await spool.flush();
  }
  await spool.flush();
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let tries = 0; !ok(); tries++) {
    if (tries > 400) throw new Error(`timed out waiting until ${what}`);
    await sleep(25);
  }
}

for (const [name, open] of Object.entries(BUCKETS)) {
  describe(`shipped spool on ${name}`, () => {
    let bucket: Bucket;
    beforeEach(async () => {
      bucket = await open();
    });
    afterEach(() => bucket.close());

    test('the bytes round-trip exactly, ranged reads cross segment boundaries, and no plain audio is in the bucket', async () => {
      const file = path.join(dir, 'spool', `${randomUUID()}.wav`);
      const spool = new ShippedSpoolWriter(
        file,
        { sampleRate: RATE, channels: 2, flushMs: 100 },
        shipping(bucket.store),
      );
      const frames = 3 * SEGMENT_FRAMES + 1234;
      await spoolAudio(spool, 0, frames);
      expect(await spool.close()).toBe(frames);
      expect(spool.shipped).toBe(true);
      expect(spool.segments).toBe(4);

      const shipped = await openShippedSpool(bucket.store, keyring, spool.id);
      expect(shipped).toMatchObject({ frames, sampleRate: RATE, channels: 2, closed: true, segments: 4 });
      expect(await collectPcm(shipped.read(0, frames))).toEqual(positionPattern(0, frames));
      for (const [start, end] of [
        [SEGMENT_FRAMES - 7, SEGMENT_FRAMES + 9],
        [1, 3 * SEGMENT_FRAMES + 2],
        [2 * SEGMENT_FRAMES, 2 * SEGMENT_FRAMES + 1],
        [frames - 5, frames],
      ]) {
        expect(await collectPcm(shipped.read(start, end))).toEqual(positionPattern(start, end - start));
      }
      // Each segment is opaque: no stretch of its audio appears in the stored bytes.
      const first = Buffer.from((await collectPcm(shipped.read(100, 108))).buffer);
      const stored = await readAll(await bucket.store.get(spoolObjects.segment(spool.id, 1)));
      expect(stored.includes(first)).toBe(false);
    });

    test('a spool whose node died (no manifest) reads its segments up to the first missing one', async () => {
      const file = path.join(dir, 'spool', `${randomUUID()}.wav`);
      const spool = new ShippedSpoolWriter(
        file,
        { sampleRate: RATE, channels: 2, flushMs: 100 },
        shipping(bucket.store),
      );
      await spoolAudio(spool, 0, 2 * SEGMENT_FRAMES + 999);
      await until('two segments are shipped', () => spool.segments === 2);
      const shipped = await openShippedSpool(bucket.store, keyring, spool.id);
      expect(shipped).toMatchObject({ frames: 2 * SEGMENT_FRAMES, closed: false, segments: 2 });
      expect(await collectPcm(shipped.read(0, shipped.frames))).toEqual(positionPattern(0, 2 * SEGMENT_FRAMES));

      // The worker's view: the lost span runs from the shipped audio's end to when the node was last seen.
      const recording = {
        spoolPath: file,
        spoolUrl: bucket.store.url,
        createdAt: '2026-01-01T00:00:00.000Z',
      } as Recording;
      const source = (await openSpoolSource(recording, '2026-01-01T00:00:03.000Z', {
        keyring,
        storeAt: () => bucket.store,
        workDir: dir,
      }))!;
      // The local file is on this disk: it is read, whole.
      expect(source.info.frames).toBe(2 * SEGMENT_FRAMES + 999);
      await spool.close();
      await fs.rm(file);
      await bucket.store.delete(spoolObjects.manifest(spool.id));
      await bucket.store.delete(spoolObjects.segment(spool.id, 3));
      const remote = (await openSpoolSource(recording, '2026-01-01T00:00:03.000Z', {
        keyring,
        storeAt: () => bucket.store,
        workDir: dir,
      }))!;
      expect(remote.info.frames).toBe(2 * SEGMENT_FRAMES);
      expect(remote.lostSpans).toEqual([{ start_ms: 1000, end_ms: 3000, reason: 'media node lost' }]);
      await remote.remove();
      expect(await bucket.names()).toEqual([]);
    });
  });
}

test('segments are read back into one buffer of the node pool, reused from segment to segment', async () => {
  const bucket = await BUCKETS.local();
  try {
    const segmentBytes = SEGMENT_FRAMES * 2 * 2;
    let taken = 0;
    let allocated = 0;
    const pool = new (class extends BufferPool {
      override take(bytes: number): ArrayBuffer {
        if (bytes === segmentBytes) {
          taken++;
          // A buffer the pool did not hold is a fresh allocation.
          if (this.freeBytes < bytes) allocated++;
        }
        return super.take(bytes);
      }
    })();
    const file = path.join(dir, 'spool', `${randomUUID()}.wav`);
    const spool = new ShippedSpoolWriter(
      file,
      { sampleRate: RATE, channels: 2, flushMs: 100, pool },
      shipping(bucket.store),
    );
    const frames = 5 * SEGMENT_FRAMES + 321;
    await spoolAudio(spool, 0, frames);
    expect(await spool.close()).toBe(frames);
    expect(spool.segments).toBe(6);
    // Every segment, the short tail too, went through the pool; only the first needed a new buffer.
    expect(taken).toBe(6);
    expect(allocated).toBe(1);
    const shipped = await openShippedSpool(bucket.store, keyring, spool.id);
    expect(await collectPcm(shipped.read(0, frames))).toEqual(positionPattern(0, frames));
  } finally {
    await bucket.close();
  }
});

test('a bucket outage mid-call loses nothing once the bucket is back', async () => {
  const bucket = await BUCKETS.gcs();
  try {
    const file = path.join(dir, 'spool', `${randomUUID()}.wav`);
    const spool = new ShippedSpoolWriter(file, { sampleRate: RATE, channels: 2, flushMs: 100 }, shipping(bucket.store));
    await spoolAudio(spool, 0, SEGMENT_FRAMES + 10);
    await until('the first segment is shipped', () => spool.segments === 1);
    bucket.gcs!.fail('503');
    await spoolAudio(spool, SEGMENT_FRAMES + 10, 3 * SEGMENT_FRAMES);
    // Audio went on spooling while nothing could be shipped.
    await sleep(300);
    expect(spool.segments).toBe(1);
    await bucket.gcs!.recover();
    const frames = 4 * SEGMENT_FRAMES + 10;
    expect(await spool.close()).toBe(frames);
    expect(spool.shipped).toBe(true);
    const shipped = await openShippedSpool(bucket.store, keyring, spool.id);
    expect(shipped.frames).toBe(frames);
    expect(await collectPcm(shipped.read(0, frames))).toEqual(positionPattern(0, frames));
  } finally {
    await bucket.close();
  }
});

test('a bucket down past the close timeout leaves the spool local: not shipped, and the local file whole', async () => {
  const bucket = await BUCKETS.gcs();
  try {
    const file = path.join(dir, 'spool', `${randomUUID()}.wav`);
    const spool = new ShippedSpoolWriter(
      file,
      { sampleRate: RATE, channels: 2, flushMs: 100 },
      { ...shipping(bucket.store), retryMs: { first: 20, max: 50, closeTimeout: 300 } },
    );
    bucket.gcs!.fail('503');
    await spoolAudio(spool, 0, SEGMENT_FRAMES + 10);
    expect(await spool.close()).toBe(SEGMENT_FRAMES + 10);
    expect(spool.shipped).toBe(false);
    const source = (await openSpoolSource({ spoolPath: file, spoolUrl: null } as Recording, null, {
      keyring,
      storeAt: () => bucket.store,
      workDir: dir,
    }))!;
    expect(await collectPcm(source.read(0, source.info.frames))).toEqual(positionPattern(0, SEGMENT_FRAMES + 10));
  } finally {
    await bucket.close();
  }
});

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}
