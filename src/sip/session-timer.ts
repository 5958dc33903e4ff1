import { StateMachine, type Transitions } from '../calls/machine.js';
import { parseParams, type SipHeaders, type SipResponse } from './message.js';

/** RFC 4028 §4: the floor of `Min-SE`, and the interval callrec asks for when the UAC names none (its recommended 30 min). */
export const RFC_MIN_SE = 90;
const DEFAULT_SE = 1800;

/** What a request and callrec agreed for the session timer: the interval (s), who refreshes, whether the UAC takes `timer`. */
export interface SessionTimerTerms {
  expires: number;
  refresher: 'uac' | 'uas';
  uacSupports: boolean;
}

/**
 * RFC 4028 §9, as a UAS that leaves the refreshing to the UAC: the terms of an INVITE, re-INVITE
 * or UPDATE. `too small` when its `Session-Expires` is under `minSe` (answer 422 with `Min-SE`);
 * null when no session timer runs: the UAC neither asked for one nor supports `timer` (so it
 * could not refresh), or asked callrec to refresh (callrec sends no refreshes). An interval
 * callrec picks (the request named none) respects the request's own `Min-SE`.
 */
export function negotiateSessionTimer(headers: SipHeaders, minSe: number): SessionTimerTerms | 'too small' | null {
  const uacSupports = [...headers.getAll('supported'), ...headers.getAll('require')].some(
    (t) => t.trim().toLowerCase() === 'timer',
  );
  const field = headers.get('session-expires');
  const m = field === undefined ? null : /^\s*(\d{1,10})\s*(;.*)?$/.exec(field);
  if (!m) {
    const asked = Number(/^\s*(\d{1,10})/.exec(headers.get('min-se') ?? '')?.[1] ?? 0);
    return uacSupports ? { expires: Math.max(DEFAULT_SE, minSe, asked), refresher: 'uac', uacSupports } : null;
  }
  const expires = Number(m[1]);
  if (expires < minSe) return 'too small';
  const refresher = parseParams(m[2] ?? '')
    ?.get('refresher')
    ?.toLowerCase();
  if (!uacSupports || refresher === 'uas') return null;
  return { expires, refresher: 'uac', uacSupports };
}

/** A 2xx's session-timer header fields (RFC 4028 §9): `Session-Expires` with its refresher, `Require: timer`. */
export function withSessionTimer(response: SipResponse, terms: SessionTimerTerms): SipResponse {
  response.headers.add('Session-Expires', `${terms.expires};refresher=${terms.refresher}`);
  if (terms.uacSupports) response.headers.add('Require', 'timer');
  return response;
}

/** RFC 4028 §10: the session is over when no refresh came within the interval less min(32 s, a third of it). */
export function expiryMs(expires: number): number {
  return (expires - Math.min(32, expires / 3)) * 1000;
}

export type SessionTimerState =
  | { status: 'off' }
  /** Started by the 2xx that agreed `expires` (s), at `refreshedAt` (performance.now); fires `expiry` unless refreshed. */
  | { status: 'running'; expires: number; refreshedAt: number; expiry: NodeJS.Timeout }
  /** No refresh came in time. */
  | { status: 'expired'; expires: number; refreshedAt: number };

const TRANSITIONS: Transitions<SessionTimerState> = {
  off: ['running', 'off'],
  running: ['running', 'off', 'expired'],
  expired: [],
};

/**
 * One dialog's session timer (RFC 4028) at the UAS: each 2xx that carries `Session-Expires`
 * (re)starts it, one without stops it, and without a refresh it expires: `onExpire` ends the
 * session.
 */
export class SessionTimer extends StateMachine<SessionTimerState> {
  readonly #onExpire: (state: Extract<SessionTimerState, { status: 'expired' }>) => void;

  constructor(onExpire: (state: Extract<SessionTimerState, { status: 'expired' }>) => void) {
    super({ status: 'off' }, TRANSITIONS);
    this.#onExpire = onExpire;
  }

  /** A 2xx agreed these terms (null: none): the timer starts over, or stops. */
  refreshed(terms: SessionTimerTerms | null): void {
    if (this.status === 'expired') return;
    if (!terms) {
      this.state = { status: 'off' };
      return;
    }
    const expiry = setTimeout(() => this.#expire(), expiryMs(terms.expires));
    expiry.unref();
    this.state = { status: 'running', expires: terms.expires, refreshedAt: performance.now(), expiry };
  }

  /** The dialog ended. */
  stop(): void {
    if (this.status === 'running') this.state = { status: 'off' };
  }

  protected onTransition(prev: SessionTimerState, next: SessionTimerState): void {
    if (prev.status === 'running') clearTimeout(prev.expiry);
    if (next.status === 'expired') this.#onExpire(next);
  }

  #expire(): void {
    const s = this.stateIf('running');
    if (s) this.state = { status: 'expired', expires: s.expires, refreshedAt: s.refreshedAt };
  }
}
