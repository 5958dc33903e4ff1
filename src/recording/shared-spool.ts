import type { RemoteTimeouts } from '../config.js';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { NO_POOL, type BufferPool } from '../../media/buffer-pool.js';
import { WAV_HEADER_BYTES } from '../../media/wav.js';
import { encryptStream, openEncrypted } from '../crypto/chunked.js';
import { newDataKey, type MasterKeyring, type WrappedKey } from '../crypto/keys.js';
import { CallrecError } from '../errors.js';
import type { Logger } from '../log.js';
import type { MediaMetrics } from '../metrics.js';
import { openObjectStore } from '../storage/index.js';
import type { ObjectStore } from '../storage/types.js';
import type { LostSpan, Recording } from '../store/index.js';
import { LOST } from './lost-spans.js';
import type { SpoolBytes } from './spool-bytes.js';
import {
  readSpool,
  readSpoolInfo,
  SpoolWriter,
  type SpoolInfo,
  type SpoolObserver,
  type SpoolWriterOptions,
} from './spool.js';

/*
 * Stateless media nodes (issue 12): with SPOOL_URL set, a call's spool is still written to the
 * local disk once a second, and shipped as it grows to object storage in encrypted segments:
 *
 *   <spool id>/key.json           the spool's data key wrapped by the master keyring, and its format
 *   <spool id>/seg-000001.pcm.enc SPOOL_SEGMENT_SECONDS of interleaved PCM each (the last may be short),
 *                                 chunked AES-GCM whose header names the object, binding it to its place
 *   <spool id>/manifest.json      {segments, frames, sampleRate, channels}, once the spool is closed
 *
 * so any worker can finalize it, and a node that dies loses at most the segment it had not
 * shipped plus the second not yet written. The spool id is the local file's uuid (`<uuid>.wav`).
 */

/** Object names of a shipped spool. */
export const spoolObjects = {
  key: (id: string) => `${id}/key.json`,
  manifest: (id: string) => `${id}/manifest.json`,
  segment: (id: string, n: number) => `${id}/seg-${String(n).padStart(6, '0')}.pcm.enc`,
};

/** A spool's id: its local file's name without `.wav`. */
export function spoolIdOf(file: string): string {
  return path.basename(file, '.wav');
}

type SpoolKey = WrappedKey & Pick<SpoolInfo, 'sampleRate' | 'channels'>;

interface SpoolManifest extends SpoolInfo {
  segments: number;
}

/** Segments a shipper may fall behind before it says so (log, metric); the local file stays the record meanwhile. */
const MAX_SEGMENTS_BEHIND = 3;
const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;
/** How long a closing spool keeps retrying its last uploads before leaving the local file the only record. */
const CLOSE_TIMEOUT_MS = 30_000;

export interface SpoolShipping {
  /** The store `SPOOL_URL` names. */
  store: ObjectStore;
  keyring: MasterKeyring;
  segmentSeconds: number;
  log: Logger;
  metrics: Pick<MediaMetrics, 'spoolSegmentsBehind' | 'spoolUploadRetries'>;
  /** Retry delays: tests shorten them. */
  retryMs?: { first: number; max: number; closeTimeout: number };
}

function jsonBody(value: unknown): Readable {
  return Readable.from([Buffer.from(JSON.stringify(value))]);
}

async function readJson<T>(store: ObjectStore, key: string): Promise<T | null> {
  let stream: Readable;
  try {
    stream = await store.get(key);
  } catch (err) {
    if ((err as CallrecError).code === 'ERR_NOT_FOUND') return null;
    throw err;
  }
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return JSON.parse(Buffer.concat(parts).toString('utf8')) as T;
}

/** Deletes a shipped spool's objects: its key, manifest and segments 1..`segments` (default: up to the first missing). */
async function deleteSpoolObjects(store: ObjectStore, id: string, segments = Infinity): Promise<void> {
  for (let n = 1; n <= segments; n++) {
    if (segments === Infinity && !(await store.exists(spoolObjects.segment(id, n)))) break;
    await store.delete(spoolObjects.segment(id, n));
  }
  await store.delete(spoolObjects.manifest(id));
  await store.delete(spoolObjects.key(id));
}

/**
 * A spool file that is also shipped to object storage as it grows. Uploads run one at a time in
 * the background, off the frame path: each segment is read back from the file once it is on
 * disk, so memory holds at most one segment whatever the bucket does. A failing bucket is retried
 * with backoff for as long as the call runs; on close the tail and the manifest get
 * `closeTimeout` more, after which `shipped` stays false and the local file is the only record.
 */
export class ShippedSpoolWriter extends SpoolWriter {
  readonly id: string;
  readonly #ship: SpoolShipping;
  readonly #retry: { first: number; max: number; closeTimeout: number };
  readonly #segmentFrames: number;
  /** Where each segment's read-back buffer comes from and goes back to: the node's call buffers. */
  readonly #pool: BufferPool;
  readonly #dataKey = newDataKey();
  #keyStored = false;
  /** Frames known to be on disk, and frames shipped in whole segments. */
  #durable = 0;
  #shippedFrames = 0;
  #segments = 0;
  /** Set on close: the tail then ships however short, and the manifest follows. */
  #closed = false;
  #deadline = Infinity;
  #manifestStored = false;
  #gaveUp = false;
  #behind = 0;
  #pumping: Promise<void> | null = null;

  constructor(file: string, options: SpoolWriterOptions, shipping: SpoolShipping) {
    super(file, options);
    this.id = spoolIdOf(file);
    this.#ship = shipping;
    this.#retry = shipping.retryMs ?? { first: FIRST_RETRY_MS, max: MAX_RETRY_MS, closeTimeout: CLOSE_TIMEOUT_MS };
    this.#segmentFrames = Math.max(1, Math.round(shipping.segmentSeconds * this.sampleRate));
    this.#pool = options.pool ?? NO_POOL;
    this.#pump(); // the key first, so even a spool that dies in its first segment can be read
  }

  override get shipped(): boolean {
    return this.#manifestStored;
  }

  /** Segments shipped so far. */
  get segments(): number {
    return this.#segments;
  }

  override flush(): Promise<void> {
    return super.flush().then(() => {
      // What is on disk, holes of lost audio included (they read as silence); not audio lost at the end.
      this.#durable = Math.max(this.#durable, this.framesOnDisk);
      this.#pump();
    });
  }

  override async close(): Promise<number> {
    const frames = await super.close();
    this.#durable = frames;
    this.#closed = true;
    this.#deadline = Date.now() + this.#retry.closeTimeout;
    while (!this.#manifestStored && !this.#gaveUp) {
      this.#pump();
      await this.#pumping;
    }
    this.#setBehind(0);
    if (this.#gaveUp) {
      this.#ship.log.warn(
        { spool: this.id, segments: this.#segments },
        'spool could not be shipped; the local file is its record',
      );
      // What did reach the bucket is of no use now; best effort, the bucket is failing.
      deleteSpoolObjects(this.#ship.store, this.id, this.#segments).catch(() => {});
    }
    return frames;
  }

  #pump(): void {
    this.#pumping ??= this.#run().finally(() => (this.#pumping = null));
  }

  /** The next upload, or null when there is nothing to ship yet. */
  #next(): (() => Promise<void>) | null {
    if (!this.#keyStored) return () => this.#putKey();
    const unshipped = this.#durable - this.#shippedFrames;
    if (unshipped >= this.#segmentFrames) return () => this.#putSegment(this.#shippedFrames + this.#segmentFrames);
    if (!this.#closed) return null;
    if (unshipped > 0) return () => this.#putSegment(this.#durable);
    return this.#manifestStored ? null : () => this.#putManifest();
  }

  async #run(): Promise<void> {
    let delay = this.#retry.first;
    for (let step = this.#next(); step; step = this.#next()) {
      this.#setBehind(Math.floor((this.#durable - this.#shippedFrames) / this.#segmentFrames));
      try {
        await step();
        delay = this.#retry.first;
      } catch (err) {
        this.#ship.metrics.spoolUploadRetries.inc();
        if (delay === this.#retry.first) this.#ship.log.warn({ spool: this.id, err }, 'spool upload failed; retrying');
        if (Date.now() + delay > this.#deadline) {
          this.#gaveUp = true;
          return;
        }
        await sleep(delay);
        delay = Math.min(2 * delay, this.#retry.max);
      }
    }
  }

  #setBehind(behind: number): void {
    if (behind > MAX_SEGMENTS_BEHIND && this.#behind <= MAX_SEGMENTS_BEHIND) {
      this.#ship.log.warn(
        { spool: this.id, behind },
        'spool shipping is falling behind; the local file holds the rest',
      );
    }
    this.#ship.metrics.spoolSegmentsBehind.inc(behind - this.#behind);
    this.#behind = behind;
  }

  async #putKey(): Promise<void> {
    const key: SpoolKey = {
      ...this.#ship.keyring.wrap(this.#dataKey),
      sampleRate: this.sampleRate,
      channels: this.channels,
    };
    await this.#ship.store.put(spoolObjects.key(this.id), jsonBody(key));
    this.#keyStored = true;
  }

  /**
   * Ships frames [shipped, end) as the next segment, read back from the file into a buffer of the
   * node's pool (a whole segment's, the short tail's too, so one size goes round). A fresh buffer
   * per segment was the media node's largest allocation: hundreds of KB every few seconds per
   * call, freed whenever V8 collected it, which left glibc's heap holding ever more of them.
   */
  async #putSegment(end: number): Promise<void> {
    const frameBytes = 2 * this.channels;
    const buffer = this.#pool.take(this.#segmentFrames * frameBytes);
    try {
      const plain = Buffer.from(buffer, 0, (end - this.#shippedFrames) * frameBytes);
      const handle = await fs.open(this.path, 'r');
      try {
        const { bytesRead } = await handle.read(
          plain,
          0,
          plain.length,
          WAV_HEADER_BYTES + this.#shippedFrames * frameBytes,
        );
        if (bytesRead !== plain.length)
          throw new CallrecError('ERR_BAD_SPOOL', `${this.path} is shorter than the audio written to it`);
      } finally {
        await handle.close();
      }
      const name = spoolObjects.segment(this.id, this.#segments + 1);
      // The header's key id names the object, so a segment moved or renamed fails to read.
      const body = encryptStream(this.#dataKey, { keyId: name });
      body.end(plain);
      // Settled, the upload holds no more of `plain`: the encryption copied what it sealed.
      await this.#ship.store.put(name, body);
      this.#segments++;
      this.#shippedFrames = end;
    } finally {
      this.#pool.give(buffer);
    }
  }

  async #putManifest(): Promise<void> {
    const manifest: SpoolManifest = {
      segments: this.#segments,
      frames: this.#shippedFrames,
      sampleRate: this.sampleRate,
      channels: this.channels,
    };
    await this.#ship.store.put(spoolObjects.manifest(this.id), jsonBody(manifest));
    this.#manifestStored = true;
  }
}

/** A shipped spool opened for reading: its segments back to back, as one PCM stream. */
export interface ShippedSpool extends SpoolInfo {
  /** Whether the manifest was found, i.e. the spool was closed; else the segments up to the first missing one. */
  closed: boolean;
  segments: number;
  /** Interleaved PCM of frames [start, end), across segment boundaries. */
  read(start: number, end: number): AsyncGenerator<Int16Array>;
  /** Deletes every object of the spool. */
  remove(): Promise<void>;
}

/** Opens the spool `id` shipped to `store`; rejects `ERR_NO_SPOOL` when its key is not there. */
export async function openShippedSpool(store: ObjectStore, keyring: MasterKeyring, id: string): Promise<ShippedSpool> {
  const key = await readJson<SpoolKey>(store, spoolObjects.key(id));
  if (!key) throw new CallrecError('ERR_NO_SPOOL', `no spool ${id} in ${store.url}`);
  const dataKey = await keyring.unwrapFresh({ keyId: key.keyId, wrapped: key.wrapped });
  const manifest = await readJson<SpoolManifest>(store, spoolObjects.manifest(id));
  const frameBytes = 2 * key.channels;
  const segments: Array<{
    start: number;
    frames: number;
    read(plainStart: number, plainEnd: number): Promise<Readable>;
  }> = [];
  let frames = 0;
  // Without a manifest the node died: its segments are those up to the first missing one.
  for (let n = 1; manifest === null || n <= manifest.segments; n++) {
    const name = spoolObjects.segment(id, n);
    const size = await store.size(name);
    if (size === null) {
      if (manifest === null) break;
      throw new CallrecError('ERR_BAD_SPOOL', `spool ${id} lacks segment ${n} of ${manifest.segments}`);
    }
    const segment = await openEncrypted(dataKey, size, (range) => store.get(name, range));
    if (segment.header.keyId !== name)
      throw new CallrecError('ERR_DECRYPT', `${name} holds another segment (${segment.header.keyId})`);
    segments.push({ start: frames, frames: segment.plainLength / frameBytes, read: segment.read });
    frames += segment.plainLength / frameBytes;
  }
  if (manifest && manifest.frames !== frames)
    throw new CallrecError('ERR_BAD_SPOOL', `spool ${id} holds ${frames} frames, its manifest says ${manifest.frames}`);
  return {
    sampleRate: key.sampleRate,
    channels: key.channels,
    frames,
    closed: manifest !== null,
    segments: segments.length,
    async *read(start, end) {
      for (const segment of segments) {
        const from = Math.max(start, segment.start);
        const to = Math.min(end, segment.start + segment.frames);
        if (from >= to) continue;
        const plain = await segment.read((from - segment.start) * frameBytes, (to - segment.start) * frameBytes - 1);
        for await (const piece of plain as AsyncIterable<Buffer>) {
          // A copy of its own, aligned for Int16Array (a decrypted piece may sit at any offset).
          const pcm = new Int16Array(piece.length / 2);
          Buffer.from(pcm.buffer).set(piece);
          yield pcm;
        }
      }
    },
    remove: () => deleteSpoolObjects(store, id, segments.length),
  };
}

/** A recording's spool as the worker finalizes it. */
export interface SpoolSource {
  info: SpoolInfo;
  read(start: number, end: number): AsyncIterable<Int16Array>;
  /** A path on this disk for the worker's own files beside the spool (append an extension). */
  scratch: string;
  /** Audio the spool lacks: a shipped spool its node never closed ends where shipping stopped. */
  lostSpans: LostSpan[];
  /** Deletes the spool: the local file and the shipped objects. */
  remove(): Promise<void>;
}

export interface SpoolSourceOptions {
  keyring: MasterKeyring;
  /** The store a `spool_url` names. */
  storeAt(url: string): ObjectStore;
  /** Where this node keeps working files (its `DATA_DIR/spool`). */
  workDir: string;
}

/**
 * Opens a recording's spool: the local file when it is on this disk, else the segments shipped to
 * its `spool_url`; null when it is in neither place this node can reach. `callEndedAt` (when the
 * call's node was last seen alive, if it died) ends the span lost from a spool never closed.
 */
export async function openSpoolSource(
  recording: Recording,
  callEndedAt: string | null,
  opts: SpoolSourceOptions,
): Promise<SpoolSource | null> {
  const file = recording.spoolPath;
  const shippedTo = recording.spoolUrl === null ? null : opts.storeAt(recording.spoolUrl);
  const stat = file ? await fs.stat(file).catch(() => null) : null;
  if (file && stat?.isFile()) {
    const info = await readSpoolInfo(file);
    // Its last write dates the call too: the node was alive then, with the jitter window's audio still unwritten.
    const lastKnown =
      callEndedAt === null || stat.mtimeMs > Date.parse(callEndedAt) ? stat.mtime.toISOString() : callEndedAt;
    return {
      info,
      read: (start, end) => readSpool(file, info, start, end),
      scratch: file,
      lostSpans: info.closed ? [] : [crashTail(info, recording, lastKnown)],
      async remove() {
        if (shippedTo) await deleteSpoolObjects(shippedTo, spoolIdOf(file));
        await fs.rm(file, { force: true });
      },
    };
  }
  if (!file || !shippedTo) return null;
  const id = spoolIdOf(file);
  const spool = await openShippedSpool(shippedTo, opts.keyring, id).catch((err: CallrecError) => {
    if (err.code === 'ERR_NO_SPOOL') return null;
    throw err;
  });
  if (!spool) return null;
  await fs.mkdir(opts.workDir, { recursive: true });
  const lostSpans = spool.closed ? [] : [crashTail(spool, recording, callEndedAt)];
  return {
    info: spool,
    read: spool.read,
    scratch: path.join(opts.workDir, `${id}.wav`),
    lostSpans,
    remove: spool.remove,
  };
}

/**
 * What a spool its node never closed lacks: from its end to `lastKnown` (when the node was last
 * known alive, on the recording's clock, which started as its row was created).
 */
function crashTail(spool: SpoolInfo, recording: Recording, lastKnown: string | null): LostSpan {
  const start = Math.round((spool.frames * 1000) / spool.sampleRate);
  const end = lastKnown === null ? start : Math.max(start, Date.parse(lastKnown) - Date.parse(recording.createdAt));
  return { start_ms: start, end_ms: end, reason: LOST.nodeLost };
}

/** How a media node opens its calls' spools: local files, also shipped to `SPOOL_URL` when it is set. */
export class SpoolOpener {
  /** Where spools are shipped, or null (local only). */
  readonly url: string | null;
  readonly #shipping: SpoolShipping | null;
  /** The node's watch over its spools (their disk, their backlog), told of every spool opened here. */
  readonly monitor: SpoolObserver | null;

  constructor(shipping: SpoolShipping | null, monitor: SpoolObserver | null = null) {
    this.#shipping = shipping;
    this.url = shipping?.store.url ?? null;
    this.monitor = monitor;
  }

  /** Opens a call's spool; `log` is the call's, so what shipping logs names the call and tenant. */
  open(file: string, options: SpoolWriterOptions, log: Logger): SpoolWriter {
    const opts = this.monitor ? { ...options, observer: this.monitor } : options;
    return this.#shipping
      ? new ShippedSpoolWriter(file, opts, { ...this.#shipping, log })
      : new SpoolWriter(file, opts);
  }
}

const SEGMENT_NAME = /\/seg-\d+\.pcm\.enc$/;

/** `store`, with the size of every segment put into it added to `bytes`, and of every one deleted taken off. */
function countingSegments(store: ObjectStore, bytes: SpoolBytes): ObjectStore {
  return {
    url: store.url,
    get: (key, range) => store.get(key, range),
    size: (key) => store.size(key),
    exists: (key) => store.exists(key),
    async put(key, body) {
      const put = await store.put(key, body);
      if (SEGMENT_NAME.test(key)) bytes.add(put.size);
      return put;
    },
    async delete(key) {
      const size = SEGMENT_NAME.test(key) ? await store.size(key) : null;
      await store.delete(key);
      if (size !== null) bytes.add(-size);
    },
  };
}

/**
 * Shipped spools' stores, opened once per `spool_url` (SDK clients keep connection pools worth
 * reusing); with `bytes`, the segments they hold are counted there.
 */
export function shippedSpoolStores(opts: {
  endpoint: string | undefined;
  workDir: string;
  bytes?: SpoolBytes;
  timeouts?: RemoteTimeouts;
}): Omit<SpoolSourceOptions, 'keyring'> {
  const open = new Map<string, ObjectStore>();
  return {
    workDir: opts.workDir,
    storeAt(url) {
      let store = open.get(url);
      if (!store) {
        store = openObjectStore(url, { endpoint: opts.endpoint, timeouts: opts.timeouts });
        if (opts.bytes) store = countingSegments(store, opts.bytes);
        open.set(url, store);
      }
      return store;
    },
  };
}
