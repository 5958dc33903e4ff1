import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { TRANSCODE_LIMIT_DEFAULTS, type TranscodeLimits } from '../config.js';
import { EncryptedScratchFile } from '../crypto/scratch-file.js';
import { HttpError } from '../errors.js';
import type { PositionedSink } from './transcode.js';

interface Entry {
  recordingId: string;
  file: string;
  ready: Promise<{ size: number }>;
  timer: NodeJS.Timeout | null;
}

/** A transcoded copy, readable by range. */
export interface CachedAudio {
  size: number;
  read(start: number, end: number): Readable;
}

/** What a client refused for a transcode limit is told to wait: a transcode of a long call takes seconds. */
export const TRANSCODE_RETRY_AFTER_SECONDS = 5;

/**
 * Transcoded copies of recordings, kept for a few minutes after their last use so that a
 * player's successive range requests see the same bytes: an encode is not byte-for-byte
 * repeatable (Ogg picks a random stream serial number). Files under one private directory,
 * encrypted under a key that only this process holds (`EncryptedScratchFile`): decrypted
 * audio never rests on disk. Removed on expiry, when their recording is deleted (`evict`), and
 * on close; `open` clears what a previous process left.
 *
 * Transcodes run on the node's CPU: at most `limits.perNode` at once (else `503
 * ERR_TRANSCODE_BUSY`), `limits.perTenant` of them one tenant's (else `429 ERR_RATE_LIMITED`),
 * both with `Retry-After`. A copy already made or being made is shared and counts nothing.
 */
export class TranscodeCache {
  readonly #dir: string;
  readonly #ttlMs: number;
  readonly #key = randomBytes(32);
  readonly #entries = new Map<string, Entry>();
  readonly #limits: TranscodeLimits;
  /** Transcodes running, in all and per tenant. */
  #running = 0;
  readonly #runningOf = new Map<string, number>();

  private constructor(dir: string, ttlMs: number, limits: TranscodeLimits) {
    this.#dir = dir;
    this.#ttlMs = ttlMs;
    this.#limits = limits;
  }

  /** The cache in `dir`, emptied first: files from before a crash are unreadable without their key, and only take space. */
  static async open(dir: string, opts: { ttlMs?: number; limits?: TranscodeLimits } = {}): Promise<TranscodeCache> {
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    return new TranscodeCache(dir, opts.ttlMs ?? 10 * 60_000, opts.limits ?? TRANSCODE_LIMIT_DEFAULTS);
  }

  /**
   * The recording's copy in `format`, made with `make(sink)` if absent; concurrent callers share
   * one make. A new make counts against `tenantId`'s limit and the node's; throws `HttpError`
   * `ERR_RATE_LIMITED` (429) or `ERR_TRANSCODE_BUSY` (503) past them.
   */
  async get(
    recordingId: string,
    format: string,
    tenantId: string,
    make: (out: PositionedSink) => Promise<void>,
  ): Promise<CachedAudio> {
    const key = `${recordingId}.${format}`;
    let entry = this.#entries.get(key);
    if (!entry) {
      this.#admit(tenantId);
      const file = path.join(this.#dir, `${encodeURIComponent(key)}-${randomBytes(6).toString('hex')}`);
      const ready = this.#make(file, make);
      void ready.then(
        () => this.#release(tenantId),
        () => this.#release(tenantId),
      );
      entry = { recordingId, file, ready, timer: null };
      this.#entries.set(key, entry);
      const made = entry;
      made.ready.catch(() => this.#entries.get(key) === made && this.#entries.delete(key));
    }
    const { size } = await entry.ready;
    this.#expireLater(key, entry);
    const { file } = entry;
    return { size, read: (start, end) => EncryptedScratchFile.read(file, this.#key, start, end) };
  }

  #admit(tenantId: string): void {
    const headers = { 'Retry-After': String(TRANSCODE_RETRY_AFTER_SECONDS) };
    const { perNode, perTenant } = this.#limits;
    if ((this.#runningOf.get(tenantId) ?? 0) >= perTenant) {
      throw new HttpError(
        'ERR_RATE_LIMITED',
        `this tenant has ${perTenant} recordings being transcoded (MAX_TRANSCODES_PER_TENANT); retry in ${TRANSCODE_RETRY_AFTER_SECONDS} s`,
        { headers },
      );
    }
    if (this.#running >= perNode)
      throw new HttpError(
        'ERR_TRANSCODE_BUSY',
        `this node is transcoding ${perNode} recordings (MAX_TRANSCODES); retry in ${TRANSCODE_RETRY_AFTER_SECONDS} s`,
        { headers },
      );
    this.#running++;
    this.#runningOf.set(tenantId, (this.#runningOf.get(tenantId) ?? 0) + 1);
  }

  #release(tenantId: string): void {
    this.#running--;
    const left = (this.#runningOf.get(tenantId) ?? 1) - 1;
    if (left > 0) this.#runningOf.set(tenantId, left);
    else this.#runningOf.delete(tenantId);
  }

  async #make(file: string, make: (out: PositionedSink) => Promise<void>): Promise<{ size: number }> {
    const out = await EncryptedScratchFile.create(file, this.#key);
    try {
      await make(out);
      await out.finish();
    } catch (err) {
      await out.abandon();
      await fs.rm(file, { force: true });
      throw err;
    }
    return { size: out.size };
  }

  #expireLater(key: string, entry: Entry): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => this.#remove(key, entry), this.#ttlMs);
    entry.timer.unref();
  }

  #remove(key: string, entry: Entry): Promise<void> {
    if (entry.timer) clearTimeout(entry.timer);
    if (this.#entries.get(key) === entry) this.#entries.delete(key);
    // A copy still being made is removed once made (or failed).
    return entry.ready.then(
      () => fs.rm(entry.file, { force: true }),
      () => {},
    );
  }

  /** Removes every copy of the recording (it was deleted). */
  async evict(recordingId: string): Promise<void> {
    const mine = [...this.#entries].filter(([, entry]) => entry.recordingId === recordingId);
    await Promise.all(mine.map(([key, entry]) => this.#remove(key, entry)));
  }

  async close(): Promise<void> {
    for (const entry of this.#entries.values()) if (entry.timer) clearTimeout(entry.timer);
    this.#entries.clear();
    await fs.rm(this.#dir, { recursive: true, force: true });
  }
}
