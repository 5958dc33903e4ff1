import type http from 'node:http';
import WebSocket from 'ws';
import { CallrecError, errorCode } from '../errors.js';
import type { WireMessage } from '../protocols/types.js';

export interface RuntimeLinkOptions {
  /** Give up on a runtime that has not answered the WebSocket handshake by then. */
  connectTimeoutMs?: number;
  /** Runtimes may send long stretches of audio in one message. */
  maxPayload?: number;
  /** What connects (the egress policy's pinned agent); default Node's. */
  agent?: http.Agent;
}

/**
 * The upstream leg of bridge mode: callrec's WebSocket to the voice-agent runtime, speaking
 * the provider's protocol. Messages sent before the handshake completes are queued in order.
 */
export class RuntimeLink {
  readonly url: string;
  readonly ws: WebSocket;
  #queue: WireMessage[] | null = [];
  readonly #opened: Promise<void>;
  /** Whether the handshake completed: a runtime that never opened fails through `opened`, with its reason. */
  wasOpened = false;

  constructor(url: string, opts: RuntimeLinkOptions = {}) {
    this.url = url;
    // Redirects are not followed (ws's default): a runtime cannot send the node elsewhere.
    this.ws = new WebSocket(url, { handshakeTimeout: opts.connectTimeoutMs ?? 5000, maxPayload: opts.maxPayload ?? 8 * 1024 * 1024, perMessageDeflate: false, agent: opts.agent });
    this.#opened = new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        this.ws.off('open', onOpen);
        // Refused by the egress policy: the stream is closed 1008 saying so, not as an outage.
        reject(errorCode(err) === 'ERR_EGRESS_REFUSED' ? err : new CallrecError('ERR_AGENT_UNREACHABLE', `agent runtime unreachable: ${err.message}`));
      };
      const onOpen = () => {
        this.wasOpened = true;
        this.ws.off('error', onError);
        for (const m of this.#queue ?? []) this.ws.send(m.data, { binary: m.binary });
        this.#queue = null;
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

  send(data: Buffer | string, binary: boolean): void {
    if (this.#queue) this.#queue.push({ data, binary });
    else if (this.ws.readyState === WebSocket.OPEN) this.ws.send(data, { binary });
  }

  close(code = 1000, reason = ''): void {
    this.#queue = null;
    if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    else if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
  }
}
