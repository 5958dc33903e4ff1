import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.js';
import type { MediaMetrics } from '../metrics.js';
import type { SpoolObserver, SpoolWriter } from './spool.js';

/** Free space below which the spool disk counts as full: a new call would lose its audio at once. */
export const MIN_FREE_BYTES = 1024 * 1024;
/** What the probe writes to find out whether the disk takes writes again: about a spool write. */
const PROBE_BYTES = 64 * 1024;

export interface SpoolMonitorOptions {
  /** The node's spool directory (`$DATA_DIR/spool`). */
  dir: string;
  log: Logger;
  metrics: Pick<MediaMetrics, 'spoolWriteErrors' | 'spoolLostSeconds' | 'spoolWritable'>;
}

/**
 * A media node's watch over its calls' spools: bytes they hold that are not on disk yet, audio
 * they lost, and whether the spool disk takes writes. A spool's failed write marks the disk
 * unwritable at once; then new streams are refused and `/readyz` fails. A probe (`statfs`
 * every tick, and a probe write while unwritable; never per frame) marks it writable again
 * once space is back, without a restart.
 */
export class SpoolMonitor implements SpoolObserver {
  readonly #opts: SpoolMonitorOptions;
  readonly #open = new Set<SpoolWriter>();
  /** Why the disk takes no writes, or null while it does. */
  #unwritable: string | null = null;
  #timer: NodeJS.Timeout | null = null;
  #probing: Promise<void> | null = null;

  constructor(opts: SpoolMonitorOptions) {
    this.#opts = opts;
    opts.metrics.spoolWritable.set(1);
  }

  /** Whether new calls can be spooled. */
  get writable(): boolean {
    return this.#unwritable === null;
  }

  /** Why the spool disk takes no writes, or null. */
  get reason(): string | null {
    return this.#unwritable;
  }

  /** Bytes appended to open spools but not on disk yet, over all of them. */
  get pendingBytes(): number {
    let bytes = 0;
    for (const spool of this.#open) bytes += spool.pendingBytes;
    return bytes;
  }

  opened(spool: SpoolWriter): void {
    this.#open.add(spool);
  }

  closed(spool: SpoolWriter): void {
    this.#open.delete(spool);
  }

  writeFailed(err: Error): void {
    this.#opts.metrics.spoolWriteErrors.inc();
    this.#setUnwritable(
      `spool writes fail in ${this.#opts.dir} (${(err as NodeJS.ErrnoException).code ?? err.message})`,
    );
  }

  lost(reason: string, seconds: number): void {
    this.#opts.metrics.spoolLostSeconds.inc({ reason }, seconds);
  }

  /** Probes every `intervalMs` from now on. */
  start(intervalMs = 1000): void {
    this.#timer = setInterval(() => void this.probe(), intervalMs);
    this.#timer.unref();
  }

  stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    return this.#probing ?? Promise.resolve();
  }

  /** One probe now (or the one under way). */
  probe(): Promise<void> {
    this.#probing ??= this.#probe().finally(() => (this.#probing = null));
    return this.#probing;
  }

  async #probe(): Promise<void> {
    const { dir } = this.#opts;
    try {
      await fs.mkdir(dir, { recursive: true });
      const { bavail, bsize } = await fs.statfs(dir);
      if (bavail * bsize < MIN_FREE_BYTES)
        throw Object.assign(new Error(`less than ${MIN_FREE_BYTES} bytes free`), { code: 'ENOSPC' });
      if (this.writable) return;
      // Free space says little on its own (reserved blocks, quotas): a real write must succeed.
      const probe = path.join(dir, '.probe');
      try {
        await fs.writeFile(probe, Buffer.alloc(PROBE_BYTES), { mode: 0o600 });
      } finally {
        await fs.rm(probe, { force: true });
      }
      this.#unwritable = null;
      this.#opts.metrics.spoolWritable.set(1);
      this.#opts.log.info({ dir }, 'spool disk writable again: taking new streams');
    } catch (err) {
      this.#setUnwritable(
        `no room for spools in ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
  }

  #setUnwritable(reason: string): void {
    if (this.#unwritable !== null) return;
    this.#unwritable = reason;
    this.#opts.metrics.spoolWritable.set(0);
    this.#opts.log.error(
      { dir: this.#opts.dir, reason },
      'spool disk unwritable: refusing new streams until it takes writes again',
    );
  }
}
