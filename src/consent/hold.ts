/** One message from the voice-agent runtime, as it arrived. */
export interface HeldMessage {
  data: Buffer;
  isBinary: boolean;
}

export interface HoldLimits {
  /** Most messages held (default 3000: a minute of 20 ms audio). */
  maxMessages?: number;
  /** Most bytes held (default 4 MiB). */
  maxBytes?: number;
}

/**
 * Runtime messages kept back, in order, while the caller must hear the consent prompt (and,
 * two-party, answer it) first. Bounded: past either limit a message is dropped and counted.
 */
export class RuntimeHold {
  readonly messages: HeldMessage[] = [];
  #bytes = 0;
  #dropped = 0;
  readonly #maxMessages: number;
  readonly #maxBytes: number;

  constructor(limits: HoldLimits = {}) {
    this.#maxMessages = limits.maxMessages ?? 3000;
    this.#maxBytes = limits.maxBytes ?? 4 * 1024 * 1024;
  }

  /** Messages dropped because the hold was full. */
  get dropped(): number {
    return this.#dropped;
  }

  push(message: HeldMessage): void {
    if (this.messages.length >= this.#maxMessages || this.#bytes + message.data.length > this.#maxBytes) {
      this.#dropped++;
      return;
    }
    this.#bytes += message.data.length;
    this.messages.push(message);
  }
}
