/**
 * Failed authentications per key (AUTH_FAILURES_PER_IP), per node, in memory. The key says whose
 * budget a failure spends: a client address for API keys and playback tokens over HTTP; an
 * address and token prefix for stream tokens (see `authenticateStream`); an address's auth
 * timeouts (see `StreamAdmission`). Fixed windows: a key's window opens with its first failure
 * and its count resets when the window ends.
 */
export class AuthFailures {
  readonly #max: number;
  readonly #windowMs: number;
  /** Address → failures in its window and when the window ends (performance.now), oldest window first. */
  readonly #windows = new Map<string, { count: number; endsAt: number }>();

  /** Addresses tracked at most; past it the oldest windows are forgotten first (a flood of addresses cannot grow memory without bound). */
  static readonly MAX_ADDRESSES = 100_000;

  constructor(max: number, windowMs = 60_000) {
    this.#max = max;
    this.#windowMs = windowMs;
  }

  /** How long, ms, `address` must wait before it may try again: 0 while it is within its budget. */
  retryAfterMs(address: string): number {
    const window = this.#windows.get(address);
    if (!window) return 0;
    const left = window.endsAt - performance.now();
    if (left <= 0) {
      this.#windows.delete(address);
      return 0;
    }
    return window.count > this.#max ? left : 0;
  }

  /** Counts one failure of `address`; returns `retryAfterMs` after it (non-zero once the budget is spent). */
  fail(address: string): number {
    const now = performance.now();
    let window = this.#windows.get(address);
    if (!window || window.endsAt <= now) {
      this.#windows.delete(address);
      this.#forgetOldest(now);
      window = { count: 0, endsAt: now + this.#windowMs };
      this.#windows.set(address, window);
    }
    window.count++;
    return window.count > this.#max ? window.endsAt - now : 0;
  }

  /** Drops ended windows from the oldest on, and past MAX_ADDRESSES the oldest whatever their state. */
  #forgetOldest(now: number): void {
    for (const [address, window] of this.#windows) {
      if (window.endsAt > now && this.#windows.size < AuthFailures.MAX_ADDRESSES) return;
      this.#windows.delete(address);
    }
  }
}
