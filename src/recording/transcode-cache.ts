import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { EncryptedScratchFile } from '../crypto/scratch-file.js';
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

/**
 * Transcoded copies of recordings, kept for a few minutes after their last use so that a
 * player's successive range requests see the same bytes: an encode is not byte-for-byte
 * repeatable (Ogg picks a random stream serial number). Files under one private directory,
 * encrypted under a key that only this process holds (`EncryptedScratchFile`): decrypted
 * audio never rests on disk. Removed on expiry, when their recording is deleted (`evict`), and
 * on close; `open` clears what a previous process left.
 */
export class TranscodeCache {
  readonly #dir: string;
  readonly #ttlMs: number;
  readonly #key = randomBytes(32);
  readonly #entries = new Map<string, Entry>();

  private constructor(dir: string, ttlMs: number) {
    this.#dir = dir;
    this.#ttlMs = ttlMs;
  }

  /** The cache in `dir`, emptied first: files from before a crash are unreadable without their key, and only take space. */
  static async open(dir: string, opts: { ttlMs?: number } = {}): Promise<TranscodeCache> {
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    return new TranscodeCache(dir, opts.ttlMs ?? 10 * 60_000);
  }

  /** The recording's copy in `format`, made with `make(sink)` if absent; concurrent callers share one make. */
  async get(recordingId: string, format: string, make: (out: PositionedSink) => Promise<void>): Promise<CachedAudio> {
    const key = `${recordingId}.${format}`;
    let entry = this.#entries.get(key);
    if (!entry) {
      const file = path.join(this.#dir, `${encodeURIComponent(key)}-${randomBytes(6).toString('hex')}`);
      entry = { recordingId, file, ready: this.#make(file, make), timer: null };
      this.#entries.set(key, entry);
      const made = entry;
      made.ready.catch(() => this.#entries.get(key) === made && this.#entries.delete(key));
    }
    const { size } = await entry.ready;
    this.#expireLater(key, entry);
    const { file } = entry;
    return { size, read: (start, end) => EncryptedScratchFile.read(file, this.#key, start, end) };
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
