import fs from 'node:fs/promises';
import path from 'node:path';

interface Entry {
  ready: Promise<{ file: string; size: number }>;
  timer: NodeJS.Timeout | null;
}

/**
 * Transcoded copies of recordings, kept for a few minutes after their last use so that a
 * player's successive range requests see the same bytes: an encode is not byte-for-byte
 * repeatable (Ogg picks a random stream serial number). Private files under one directory,
 * removed on expiry and on close.
 */
export class TranscodeCache {
  readonly #dir: string;
  readonly #ttlMs: number;
  readonly #entries = new Map<string, Entry>();

  constructor(dir: string, opts: { ttlMs?: number } = {}) {
    this.#dir = dir;
    this.#ttlMs = opts.ttlMs ?? 10 * 60_000;
  }

  /** The cached file for `key`, made with `make(file)` if absent; concurrent callers share one make. */
  async get(key: string, make: (file: string) => Promise<{ size: number }>): Promise<{ file: string; size: number }> {
    let entry = this.#entries.get(key);
    if (!entry) {
      const file = path.join(this.#dir, `${encodeURIComponent(key)}-${Date.now().toString(36)}`);
      const ready = fs
        .mkdir(this.#dir, { recursive: true, mode: 0o700 })
        .then(() => make(file))
        .then(({ size }) => ({ file, size }));
      entry = { ready, timer: null };
      this.#entries.set(key, entry);
      ready.catch(() => this.#entries.delete(key));
    }
    const result = await entry.ready;
    this.#expireLater(key, entry, result.file);
    return result;
  }

  #expireLater(key: string, entry: Entry, file: string): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      this.#entries.delete(key);
      void fs.rm(file, { force: true });
    }, this.#ttlMs);
    entry.timer.unref();
  }

  async close(): Promise<void> {
    for (const entry of this.#entries.values()) if (entry.timer) clearTimeout(entry.timer);
    this.#entries.clear();
    await fs.rm(this.#dir, { recursive: true, force: true });
  }
}
