import { WebSocket } from 'ws';
import { CallrecError } from '../errors.js';
import type { RelayLimits } from '../config.js';
import type { WireMessage } from '../protocols/types.js';

/** The sending side of a `ws` WebSocket (a fake one in unit tests). */
export interface SendingSocket {
  readonly bufferedAmount: number;
  readonly readyState: number;
  send(data: Buffer | string, options: { binary: boolean }, cb?: (err?: Error) => void): void;
}

/**
 * One direction of bridge relaying, with backpressure as a Node `Writable` has it: `send`
 * returns false once more than the high-water mark waits for the socket (queued before its
 * handshake, or in `ws`'s buffer after), and the caller pauses the socket it relays from until
 * `onDrain`. The message that crossed the mark carries a write callback; when it is written,
 * everything before it is too. `ws` emits no 'drain' of its own, hence this class.
 */
export class BoundedSender {
  readonly #ws: SendingSocket;
  readonly #limits: RelayLimits;
  /** Who is not reading, for the overflow's reason. */
  readonly #side: string;
  readonly #onDrain: () => void;
  /** Messages waiting for the handshake, and their bytes; null once the socket is open. */
  #queue: WireMessage[] | null;
  #queuedBytes = 0;
  /** A message in flight carries `#drained`: the caller's source is paused until it is written. */
  #waiting = false;
  readonly #drained = (): void => {
    this.#waiting = false;
    this.#onDrain();
  };

  constructor(
    ws: SendingSocket,
    limits: RelayLimits,
    opts: { side: string; onDrain: () => void; queueUntilOpen?: boolean },
  ) {
    this.#ws = ws;
    this.#limits = limits;
    this.#side = opts.side;
    this.#onDrain = opts.onDrain;
    this.#queue = opts.queueUntilOpen ? [] : null;
  }

  /** Bytes sent but not yet handed to the OS: queued before the handshake, then `ws`'s buffer. */
  get bufferedAmount(): number {
    return this.#queuedBytes + this.#ws.bufferedAmount;
  }

  /**
   * Sends `data` (queues it before the handshake); false once the high-water mark is passed:
   * pause the source until `onDrain`. Throws `ERR_RELAY_OVERFLOW`, sending nothing, past the cap.
   * A socket that is closing takes nothing and says go on.
   */
  send(data: Buffer | string, binary: boolean): boolean {
    if (!this.#queue && this.#ws.readyState !== WebSocket.OPEN) return true;
    // A string's length is its byte count for the ASCII JSON relayed here; close enough for a cap.
    const waiting = this.bufferedAmount + data.length;
    const { highWaterBytes, maxBytes } = this.#limits;
    if (waiting > maxBytes)
      throw new CallrecError(
        'ERR_RELAY_OVERFLOW',
        `${this.#side} not reading: ${waiting} bytes would wait, over BRIDGE_RELAY_MAX_BYTES (${maxBytes})`,
      );
    const full = waiting > highWaterBytes;
    const cb = full && !this.#waiting ? this.#drained : undefined;
    if (cb) this.#waiting = true;
    if (this.#queue) {
      this.#queue.push({ data, binary });
      this.#queuedBytes += data.length;
    } else {
      this.#ws.send(data, { binary }, cb);
    }
    return !full;
  }

  /** The handshake is done: sends what was queued, in order. */
  open(): void {
    const queue = this.#queue ?? [];
    this.#queue = null;
    this.#queuedBytes = 0;
    const last = queue.length - 1;
    queue.forEach((m, i) => {
      this.#ws.send(m.data, { binary: m.binary }, i === last && this.#waiting ? this.#drained : undefined);
    });
    // A source paused for what a clear then dropped (`dropHeldAudio`) has nothing left to wait for.
    if (last < 0 && this.#waiting) this.#drained();
  }

  /**
   * The receiver asks for nothing more for now (Asterisk `MEDIA_XOFF`, on an open socket): what
   * is sent waits here, in order, under the same limits (past the high-water mark `send` says
   * pause the source; past the cap it throws `ERR_RELAY_OVERFLOW`, nothing dropped unsaid),
   * until `resume`.
   */
  hold(): void {
    this.#queue ??= [];
  }

  /** Whether messages wait (held, or before the handshake). */
  get holding(): boolean {
    return this.#queue !== null;
  }

  /** The receiver takes messages again: what `hold` kept is sent, in order. */
  resume(): void {
    if (this.#queue !== null && this.#ws.readyState === WebSocket.OPEN) this.open();
  }

  /** Drops the held binary messages (audio, on Asterisk, the one platform with flow control: a clear empties it anyway), keeping the rest in order. */
  dropHeldAudio(): void {
    if (this.#queue === null) return;
    this.#queue = this.#queue.filter((m) => !m.binary);
    this.#queuedBytes = this.#queue.reduce((n, m) => n + m.data.length, 0);
  }

  /** Drops what waits for the handshake. */
  discard(): void {
    this.#queue = null;
    this.#queuedBytes = 0;
  }
}
