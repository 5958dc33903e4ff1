import type { AuthFailures } from '../auth/failures.js';
import { HttpError } from '../errors.js';

/**
 * Who may open a media socket before it has authenticated: each client address may hold
 * MAX_PENDING_STREAMS_PER_IP sockets that have not yet sent a valid start, and an address whose
 * sockets kept timing out (STREAM_AUTH_TIMEOUT_SECONDS; each one spends its AUTH_FAILURES_PER_IP
 * budget) is refused until its window ends. So one keyless client cannot fill the node's
 * MAX_STREAMS_PER_NODE with silent sockets and lock out every other address; a provider's
 * media server, which sends its start at once, is never near either limit.
 */
export class StreamAdmission {
  readonly #failures: AuthFailures;
  readonly #maxPending: number;
  /** Address → its sockets not yet authenticated. */
  readonly #pending = new Map<string, number>();

  readonly #authTimeoutMs: number;

  /** `authTimeoutMs`: how soon a pending socket is settled at the latest, what a refused client is told to wait. */
  constructor(failures: AuthFailures, maxPendingPerAddress: number, authTimeoutMs: number) {
    this.#failures = failures;
    this.#maxPending = maxPendingPerAddress;
    this.#authTimeoutMs = authTimeoutMs;
  }

  /** The budget an address's auth timeouts spend: apart from its token failures, which are per token (see `authenticateStream`). */
  static timeoutKey(address: string): string {
    return `${address} auth-timeout`;
  }

  /** Throws `ERR_RATE_LIMITED` or `ERR_PENDING_STREAM_LIMIT` (429, with `Retry-After`) when an upgrade from `address` must be refused now. */
  check(address: string): void {
    const retryAfterMs = this.#failures.retryAfterMs(StreamAdmission.timeoutKey(address));
    if (retryAfterMs > 0) {
      const seconds = Math.ceil(retryAfterMs / 1000);
      throw new HttpError(
        'ERR_RATE_LIMITED',
        `too many streams from this address sent no valid start in time; retry in ${seconds} s`,
        { headers: { 'Retry-After': String(seconds) } },
      );
    }
    if ((this.#pending.get(address) ?? 0) >= this.#maxPending) {
      const seconds = Math.ceil(this.#authTimeoutMs / 1000);
      throw new HttpError(
        'ERR_PENDING_STREAM_LIMIT',
        `this address holds ${this.#maxPending} streams that have not authenticated (MAX_PENDING_STREAMS_PER_IP)`,
        { headers: { 'Retry-After': String(seconds) } },
      );
    }
  }

  /** One more socket of `address` waits for its start. */
  opened(address: string): void {
    this.#pending.set(address, (this.#pending.get(address) ?? 0) + 1);
  }

  /** A socket of `address` authenticated, or closed before it did. */
  settled(address: string): void {
    const left = (this.#pending.get(address) ?? 0) - 1;
    if (left > 0) this.#pending.set(address, left);
    else this.#pending.delete(address);
  }

  /** A socket of `address` sent no valid start in time: a failure against its address. */
  timedOut(address: string): void {
    this.#failures.fail(StreamAdmission.timeoutKey(address));
  }
}
