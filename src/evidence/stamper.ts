import type { Logger } from '../log.js';
import type { Store } from '../store/index.js';
import { requestTimestamp } from './timestamp.js';

/** Manifests stamped per pass: a pass against a slow authority stays bounded. */
const BATCH = 50;

/**
 * Fetches RFC 3161 time-stamp tokens for signed manifests that have none, apart from finalizing:
 * an authority that is slow or down delays no recording; its manifests stay unstamped (shown as
 * pending) and are tried again each pass until it answers.
 */
export class TimestampSweep {
  readonly #store: Store;
  readonly #tsaUrl: string;
  readonly #timeoutMs: number;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<number> | null = null;

  constructor(opts: { store: Store; tsaUrl: string; timeoutMs: number; log: Logger }) {
    this.#store = opts.store;
    this.#tsaUrl = opts.tsaUrl;
    this.#timeoutMs = opts.timeoutMs;
    this.#log = opts.log;
  }

  /** One pass; returns how many manifests were stamped. Stops at the first failure (the authority is down: the rest would fail too). */
  async stampPending(): Promise<number> {
    let stamped = 0;
    for (const manifest of await this.#store.evidence.unstamped(BATCH)) {
      try {
        const token = await requestTimestamp(this.#tsaUrl, Buffer.from(manifest.jws), this.#timeoutMs);
        await this.#store.evidence.setTimestampToken(manifest.recording_id, token.toString('base64'));
        stamped++;
      } catch (err) {
        this.#log.warn({ err, tsa: this.#tsaUrl }, 'time-stamping authority did not stamp; manifests stay pending until it does');
        break;
      }
    }
    return stamped;
  }

  start(everyMs: number): void {
    const tick = () => {
      this.#running ??= this.stampPending().finally(() => (this.#running = null));
    };
    this.#timer = setInterval(tick, everyMs);
    this.#timer.unref();
    tick();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running?.catch(() => {});
  }
}
