import { randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { MediaMetrics } from '../metrics.js';
import {
  parseCSeq,
  parseNameAddr,
  parseVia,
  responseTo,
  type SipMessage,
  type SipRequest,
  type SipResponse,
} from './message.js';
import { ClientTransaction, DEFAULT_TIMERS, ServerTransaction, type SipPeer, type SipTimers } from './transaction.js';
import type { SipSource, SipTransport } from './transport.js';

/** What the server's user (the recording server) does with the requests the transaction layer lets through. */
export interface SipHandler {
  /** A new request in a new server transaction (anything but ACK, CANCEL and OPTIONS); an INVITE has had its 100 Trying. */
  request(request: SipRequest, transaction: ServerTransaction, source: SipSource): void;
  /** An ACK no INVITE transaction took: the ACK of a 2xx, for the dialog. */
  ack(request: SipRequest, source: SipSource): void;
  /** A CANCEL matched the INVITE of `transaction` (already answered 200). */
  cancel(transaction: ServerTransaction): void;
}

export interface SipServerOptions {
  transport: SipTransport;
  handler: SipHandler;
  log: Logger;
  /** True while the node drains: OPTIONS is answered 503 (an SBC's keep-alive then routes elsewhere). */
  draining(): boolean;
  timers?: SipTimers;
  /** `callrec_sip_requests_total` is counted here when given. */
  metrics?: MediaMetrics;
}

/** Methods callrec's user agent server takes (the Allow header). */
export const ALLOW = 'INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE';
const METHODS: ReadonlySet<string> = new Set(ALLOW.split(', '));

/**
 * The transaction layer of a user agent server (RFC 3261 §17.2.3): matches each request to its
 * server transaction (retransmissions absorbed there), answers OPTIONS and CANCEL itself, and
 * hands new requests, and the ACKs of 2xx, to its handler.
 */
export class SipServer {
  readonly #options: SipServerOptions;
  readonly #transactions = new Map<string, ServerTransaction>();
  /** Client transactions (callrec's BYEs) by their branch. */
  readonly #clients = new Map<string, ClientTransaction>();

  constructor(options: SipServerOptions) {
    this.#options = options;
    options.transport.on('message', (message, source) => this.#onMessage(message, source));
  }

  /** Live server transactions (for tests and shutdown). */
  get transactions(): number {
    return this.#transactions.size;
  }

  close(): void {
    for (const transaction of this.#transactions.values()) transaction.terminate();
    for (const transaction of this.#clients.values()) transaction.terminate();
  }

  /** Sends a request (the BYE of a session callrec ends) in a client transaction; its top Via's branch matches the answers. */
  send(request: SipRequest, peer: SipPeer): ClientTransaction {
    const branch = parseVia(request.headers.getAll('via')[0] ?? '')?.params.get('branch') ?? '';
    const transaction = new ClientTransaction(request, peer, this.#options.timers ?? DEFAULT_TIMERS);
    this.#clients.set(branch, transaction);
    transaction.on('stateChange', () => this.#clients.delete(branch));
    return transaction;
  }

  #onMessage(message: SipMessage, source: SipSource): void {
    if (message.kind === 'response') {
      const branch = parseVia(message.headers.getAll('via')[0] ?? '')?.params.get('branch');
      if (branch) this.#clients.get(branch)?.response(message);
      return;
    }
    try {
      this.#onRequest(message, source);
    } catch (err) {
      this.#options.log.error({ err, method: message.method }, 'SIP request failed');
    }
  }

  #onRequest(request: SipRequest, source: SipSource): void {
    const { method } = request;
    if (method === 'ACK') {
      const invite = this.#transactions.get(transactionKey(request, 'INVITE'));
      if (invite?.status === 'completed' || invite?.status === 'confirmed') invite.ack();
      else this.#options.handler.ack(request, source);
      return;
    }
    const key = transactionKey(request, method);
    const existing = this.#transactions.get(key);
    if (existing) return existing.retransmission();
    const transaction = new ServerTransaction(request, source, this.#options.timers ?? DEFAULT_TIMERS);
    this.#transactions.set(key, transaction);
    transaction.on('stateChange', (prev, next) => {
      if (prev.status === 'proceeding' && transaction.finalStatus !== null) {
        // Methods callrec does not take are counted as one label: the label set stays bounded.
        this.#options.metrics?.sipRequestsTotal.inc({
          method: METHODS.has(method) ? method : 'other',
          status: transaction.finalStatus,
        });
      }
      if (next.status === 'terminated' && this.#transactions.get(key) === transaction) this.#transactions.delete(key);
    });
    switch (method) {
      case 'OPTIONS':
        return transaction.respond(
          this.#options.draining()
            ? withHeader(responseTo(request, 503, localTag()), 'Retry-After', '60')
            : withHeader(responseTo(request, 200, localTag()), 'Allow', ALLOW),
        );
      case 'CANCEL': {
        const invite = this.#transactions.get(transactionKey(request, 'INVITE'));
        if (invite?.status !== 'proceeding') return transaction.respond(responseTo(request, 481, localTag()));
        transaction.respond(responseTo(request, 200, localTag()));
        return this.#options.handler.cancel(invite);
      }
      case 'INVITE':
        transaction.respond(responseTo(request, 100));
        return this.#options.handler.request(request, transaction, source);
      default:
        return this.#options.handler.request(request, transaction, source);
    }
  }
}

/** Adds a header field to a response and returns it. */
export function withHeader(response: SipResponse, name: string, value: string): SipResponse {
  response.headers.add(name, value);
  return response;
}

/** A fresh To tag. */
export function localTag(): string {
  return randomBytes(6).toString('hex');
}

/**
 * RFC 3261 §17.2.3: the top Via's branch (with the magic cookie), its sent-by and the method
 * (ACK and CANCEL match their INVITE by passing `INVITE`); for an RFC 2543 client without the
 * cookie, Call-ID, CSeq number, From tag and the top Via.
 */
function transactionKey(request: SipRequest, method: string): string {
  const topVia = request.headers.getAll('via')[0] ?? '';
  const via = parseVia(topVia);
  const branch = via?.params.get('branch') ?? '';
  if (branch.startsWith('z9hG4bK') && via) return `${branch}|${via.host}:${via.port ?? ''}|${method}`;
  const fromTag = parseNameAddr(request.headers.get('from') ?? '')?.params.get('tag') ?? '';
  return `${request.headers.get('call-id')}|${parseCSeq(request.headers.get('cseq'))?.seq}|${fromTag}|${topVia}|${method}`;
}
