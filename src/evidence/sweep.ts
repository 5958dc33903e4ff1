import type { Logger } from '../log.js';
import type { Store } from '../store/index.js';
import type { Evidence } from './index.js';
import { requestTimestamp } from './timestamp.js';

/** Manifests stamped per pass: a pass against a slow authority stays bounded. */
const STAMP_BATCH = 50;
/** How far back each pass looks for recordings whose signing failed at finalize (the full backlog is signed at start). */
const RECENT_MS = 24 * 3_600_000;

/**
 * What finalizing leaves to later, on every node: signing the manifest of a recording whose
 * signing failed when it was made ready (and, at start, of every recording made before manifests
 * existed), and fetching RFC 3161 tokens from `TSA_URL`, apart from finalizing, so an authority
 * that is slow or down delays no recording: its manifests stay unstamped (shown as pending) and
 * are tried again each pass until it answers.
 */
export class EvidenceSweep {
  readonly #store: Store;
  readonly #evidence: Evidence;
  readonly #tsa: { url: string; timeoutMs: number } | null;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  constructor(opts: { store: Store; evidence: Evidence; tsa: { url: string; timeoutMs: number } | null; log: Logger }) {
    this.#store = opts.store;
    this.#evidence = opts.evidence;
    this.#tsa = opts.tsa;
    this.#log = opts.log;
  }

  /** Time-stamps pending manifests; returns how many. Stops at the first failure (the authority is down: the rest would fail too). */
  async stampPending(): Promise<number> {
    if (!this.#tsa) return 0;
    let stamped = 0;
    for (const manifest of await this.#store.evidence.unstamped(STAMP_BATCH)) {
      try {
        const token = await requestTimestamp(this.#tsa.url, Buffer.from(manifest.jws), this.#tsa.timeoutMs);
        await this.#store.evidence.setTimestampToken(manifest.recording_id, token.toString('base64'));
        stamped++;
      } catch (err) {
        this.#log.warn(
          { err, tsa: this.#tsa.url },
          'time-stamping authority did not stamp; manifests stay pending until it does',
        );
        break;
      }
    }
    return stamped;
  }

  async #pass(readySince?: string): Promise<void> {
    try {
      const signed = await this.#evidence.signBacklog(readySince);
      if (signed > 0) this.#log.info({ signed }, 'signed the manifests of recordings made ready unsigned');
    } catch (err) {
      this.#log.error({ err }, 'could not sign the manifests of recordings made ready unsigned');
    }
    await this.stampPending();
  }

  /** The first pass takes the whole backlog; later ones the last day's recordings. */
  start(everyMs: number): void {
    const tick = (readySince?: string) => {
      this.#running ??= this.#pass(readySince).finally(() => (this.#running = null));
    };
    this.#timer = setInterval(() => tick(new Date(Date.now() - RECENT_MS).toISOString()), everyMs);
    this.#timer.unref();
    tick();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }
}
