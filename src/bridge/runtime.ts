import type http from 'node:http';
import WebSocket from 'ws';
import { CallrecError, errorCode } from '../errors.js';
import type { RelayLimits } from '../config.js';
import { BoundedSender } from './bounded-sender.js';

export interface RuntimeLinkOptions {
  /** Give up on a runtime that has not answered the WebSocket handshake by then. */
  connectTimeoutMs?: number;
  /** What connects (the egress policy's pinned agent); default Node's. */
  agent?: http.Agent;
  /** What may wait for the runtime, before its handshake and after; its largest message is the cap too. */
  relay: RelayLimits;
  /** Called once what waited for the runtime past the high-water mark has been written: resume the source. */
  onDrain: () => void;
}

/**
 * The upstream leg of bridge mode: callrec's WebSocket to the voice-agent runtime, speaking
 * the provider's protocol. Messages sent before the handshake completes are queued in order;
 * before and after, `send` says when the runtime is not keeping up (see `BoundedSender`).
 */
export class RuntimeLink {
  readonly url: string;
  readonly ws: WebSocket;
  readonly #sender: BoundedSender;
  readonly #opened: Promise<void>;
  /** Whether the handshake completed: a runtime that never opened fails through `opened`, with its reason. */
  wasOpened = false;

  constructor(url: string, opts: RuntimeLinkOptions) {
    this.url = url;
    // Redirects are not followed (ws's default): a runtime cannot send the node elsewhere. Runtimes
    // may send long stretches of audio in one message, up to what may wait for the provider.
    this.ws = new WebSocket(url, {
      handshakeTimeout: opts.connectTimeoutMs ?? 5000,
      maxPayload: opts.relay.maxBytes,
      perMessageDeflate: false,
      agent: opts.agent,
    });
    this.#sender = new BoundedSender(this.ws, opts.relay, {
      side: 'agent runtime',
      onDrain: opts.onDrain,
      queueUntilOpen: true,
    });
    this.#opened = new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        this.ws.off('open', onOpen);
        // Refused by the egress policy: the stream is closed 1008 saying so, not as an outage.
        reject(
          errorCode(err) === 'ERR_EGRESS_REFUSED'
            ? err
            : new CallrecError('ERR_AGENT_UNREACHABLE', `agent runtime unreachable: ${err.message}`),
        );
      };
      const onOpen = () => {
        this.wasOpened = true;
        this.ws.off('error', onError);
        this.#sender.open();
        resolve();
      };
      this.ws.once('open', onOpen).once('error', onError);
    });
    // Failures surface as `opened` rejecting and as the socket's 'close'; an 'error' event with
    // no listener would crash the process.
    this.ws.on('error', () => {});
    // Until someone awaits `opened`, a failure must not become an unhandled rejection.
    this.#opened.catch(() => {});
  }

  /** Resolves once the runtime accepted the connection and the queue was sent; rejects with `ERR_AGENT_UNREACHABLE` or `ERR_EGRESS_REFUSED`. */
  get opened(): Promise<void> {
    return this.#opened;
  }

  /** Bytes waiting for the runtime (queued before its handshake, or not yet written). */
  get bufferedAmount(): number {
    return this.#sender.bufferedAmount;
  }

  /** False once past the high-water mark: pause the source until `onDrain`. Throws `ERR_RELAY_OVERFLOW` past the cap. */
  send(data: Buffer | string, binary: boolean): boolean {
    return this.#sender.send(data, binary);
  }

  close(code = 1000, reason = ''): void {
    this.#sender.discard();
    if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    else if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
  }
}
