import { StateMachine, type Transitions } from '../calls/machine.js';
import { serialize, type SipRequest, type SipResponse } from './message.js';

/** RFC 3261 §17.1.1.1 / Table 4 timer values, ms. */
export interface SipTimers {
  t1: number;
  t2: number;
  t4: number;
}

export const DEFAULT_TIMERS: SipTimers = { t1: 500, t2: 4_000, t4: 5_000 };

/** Where a transaction's responses go: the transport and address its request came from. */
export interface SipPeer {
  /** Whether the transport is reliable (TCP): no retransmissions, no wait for them. */
  readonly reliable: boolean;
  send(data: Buffer): void;
}

export type ServerTransactionState =
  /** INVITE: answered with nothing final yet (100 Trying sent). Non-INVITE: nothing sent, or a provisional. */
  | { status: 'proceeding'; last: Buffer | null }
  /** INVITE answered 2xx (RFC 6026 Accepted): 2xx retransmitted until the ACK; INVITE retransmissions absorbed. */
  | { status: 'accepted'; last: Buffer; retransmit: NodeJS.Timeout | null; interval: number; expire: NodeJS.Timeout }
  /** A final answer sent: request retransmissions get it again (INVITE non-2xx: until the ACK). */
  | { status: 'completed'; last: Buffer; retransmit: NodeJS.Timeout | null; interval: number; expire: NodeJS.Timeout }
  /** INVITE non-2xx acknowledged: stray ACKs absorbed for T4. */
  | { status: 'confirmed'; expire: NodeJS.Timeout }
  | { status: 'terminated' };

const TRANSITIONS: Transitions<ServerTransactionState> = {
  proceeding: ['accepted', 'completed', 'terminated'],
  accepted: ['terminated'],
  completed: ['confirmed', 'terminated'],
  confirmed: ['terminated'],
  terminated: [],
};

/**
 * A server transaction (RFC 3261 §17.2, with RFC 6026's Accepted state), INVITE or not: it
 * answers the request's retransmissions with the last response, retransmits a final INVITE
 * response over UDP until the ACK (Timer G, or for 2xx the TU's retransmission of §13.3.1.4
 * kept here), and lives on after it for the timers H/I/J/L so late copies are absorbed.
 */
export class ServerTransaction extends StateMachine<ServerTransactionState> {
  readonly request: SipRequest;
  readonly #peer: SipPeer;
  readonly #timers: SipTimers;
  readonly #invite: boolean;
  /** The final response's status, once sent. */
  finalStatus: number | null = null;

  constructor(request: SipRequest, peer: SipPeer, timers: SipTimers = DEFAULT_TIMERS) {
    super({ status: 'proceeding', last: null }, TRANSITIONS);
    this.request = request;
    this.#peer = peer;
    this.#timers = timers;
    this.#invite = request.method === 'INVITE';
  }

  /** Whether the transaction still holds its key (a retransmitted request is absorbed by it). */
  get alive(): boolean {
    return this.status !== 'terminated';
  }

  /** Sends a response; a final one moves the transaction on. Responses after the final one are ignored. */
  respond(response: SipResponse): void {
    const proceeding = this.stateIf('proceeding');
    if (!proceeding) return;
    const data = serialize(response);
    this.#peer.send(data);
    if (response.status < 200) {
      proceeding.last = data;
      return;
    }
    this.finalStatus = response.status;
    const { t1 } = this.#timers;
    const reliable = this.#peer.reliable;
    if (!this.#invite) {
      // Timer J: 64*T1 over UDP for request retransmissions, none over TCP.
      if (reliable) this.state = { status: 'terminated' };
      else
        this.state = {
          status: 'completed',
          last: data,
          retransmit: null,
          interval: 0,
          expire: this.#after(64 * t1, () => this.#terminate()),
        };
      return;
    }
    const retransmit = reliable ? null : this.#after(t1, () => this.#retransmit());
    // Timer L (2xx) / Timer H (non-2xx): how long to wait for the ACK.
    const expire = this.#after(64 * t1, () => this.#terminate());
    this.state =
      response.status < 300
        ? { status: 'accepted', last: data, retransmit, interval: t1, expire }
        : { status: 'completed', last: data, retransmit, interval: t1, expire };
  }

  /** A retransmission of the request: the last response goes out again. */
  retransmission(): void {
    const s = this.state;
    if (s.status === 'proceeding' || s.status === 'completed') {
      if (s.last) this.#peer.send(s.last);
    }
    // Accepted: INVITE retransmissions are absorbed (RFC 6026 §7.1); the 2xx is retransmitted on its timer.
  }

  /** The ACK to this INVITE's final response arrived. */
  ack(): void {
    const s = this.state;
    if (s.status === 'accepted') this.state = { status: 'terminated' };
    else if (s.status === 'completed' && this.#invite) {
      // Timer I: T4 over UDP to absorb ACK retransmissions, none over TCP.
      this.state = this.#peer.reliable
        ? { status: 'terminated' }
        : { status: 'confirmed', expire: this.#after(this.#timers.t4, () => this.#terminate()) };
    }
  }

  /** Ends the transaction now (node shutdown). */
  terminate(): void {
    this.#terminate();
  }

  protected onTransition(prev: ServerTransactionState): void {
    if ('retransmit' in prev && prev.retransmit) clearTimeout(prev.retransmit);
    if ('expire' in prev) clearTimeout(prev.expire);
  }

  #terminate(): void {
    if (this.status !== 'terminated') this.state = { status: 'terminated' };
  }

  /** Timer G (and the 2xx retransmission): T1, doubling up to T2. */
  #retransmit(): void {
    const s = this.state;
    if (s.status !== 'accepted' && s.status !== 'completed') return;
    this.#peer.send(s.last);
    s.interval = Math.min(s.interval * 2, this.#timers.t2);
    s.retransmit = this.#after(s.interval, () => this.#retransmit());
  }

  #after(ms: number, fn: () => void): NodeJS.Timeout {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return timer;
  }
}

export type ClientTransactionState =
  /** Sent; over UDP resent at T1, doubling to T2 (Timer E), until a final response or Timer F (64*T1). */
  | { status: 'trying'; retransmit: NodeJS.Timeout | null; interval: number; expire: NodeJS.Timeout }
  /** A final response arrived (`status`), or none did in time (`status` 408). */
  | { status: 'terminated'; response: number };

const CLIENT_TRANSITIONS: Transitions<ClientTransactionState> = { trying: ['terminated'], terminated: [] };

/**
 * A non-INVITE client transaction (RFC 3261 §17.1.2), for the one request a recording server
 * sends: the BYE of a session it ends. Responses reach it through `response()`; its end says
 * how the request fared (408 when nothing answered).
 */
export class ClientTransaction extends StateMachine<ClientTransactionState> {
  readonly #timers: SipTimers;
  readonly #data: Buffer;
  readonly #peer: SipPeer;

  constructor(request: SipRequest, peer: SipPeer, timers: SipTimers = DEFAULT_TIMERS) {
    const data = serialize(request);
    const expire = setTimeout(() => this.#end(408), 64 * timers.t1);
    expire.unref();
    super({ status: 'trying', retransmit: null, interval: timers.t1, expire }, CLIENT_TRANSITIONS);
    this.#timers = timers;
    this.#data = data;
    this.#peer = peer;
    peer.send(data);
    if (!peer.reliable) this.#schedule();
  }

  /** Ends the transaction now (node shutdown), as if nothing answered. */
  terminate(): void {
    this.#end(408);
  }

  /** A response to the request: a final one ends the transaction. */
  response(response: SipResponse): void {
    if (response.status >= 200) this.#end(response.status);
  }

  protected onTransition(prev: ClientTransactionState): void {
    if (prev.status === 'trying') {
      if (prev.retransmit) clearTimeout(prev.retransmit);
      clearTimeout(prev.expire);
    }
  }

  #schedule(): void {
    const s = this.stateIf('trying');
    if (!s) return;
    s.retransmit = setTimeout(() => {
      this.#peer.send(this.#data);
      s.interval = Math.min(s.interval * 2, this.#timers.t2);
      this.#schedule();
    }, s.interval);
    s.retransmit.unref();
  }

  #end(status: number): void {
    if (this.status === 'trying') this.state = { status: 'terminated', response: status };
  }
}
