import { StateMachine, type Transitions } from '../calls/machine.js';
import { parseParams, type SipHeaders, type SipResponse } from './message.js';

/** The interval callrec asks for when the UAC names none (RFC 4028 §4's recommended 30 min). */
const DEFAULT_SE = 1800;
/** The longest interval callrec agrees to (a UAS may lower the UAC's, §9): a day, as `SIP_MIN_SE` at most, and within a timer's range. */
const MAX_SE = 86_400;

/** What a request and callrec agreed for the session timer: the interval (s), who refreshes, whether the UAC takes `timer`. */
export interface SessionTimerTerms {
  expires: number;
  refresher: 'uac' | 'uas';
  uacSupports: boolean;
}

/** Whether a request's `Allow` lists UPDATE: callrec can then refresh the session with one. */
export function allowsUpdate(headers: SipHeaders): boolean {
  return headers.getAll('allow').some((m) => m.trim().toUpperCase() === 'UPDATE');
}

/**
 * RFC 4028 §9: the terms of an INVITE, re-INVITE or UPDATE. `too small` when its
 * `Session-Expires` is under `minSe` (answer 422 with `Min-SE`). The UAC refreshes unless it
 * asks callrec to (`refresher=uas`) or does not support `timer` (a proxy asked for the timer):
 * callrec then refreshes with UPDATE, and when the peer takes no UPDATE (`peerAllowsUpdate`)
 * no timer runs. Null too when the request neither asks for a timer nor supports one. An
 * interval callrec picks (the request named none) respects the request's own `Min-SE`.
 */
export function negotiateSessionTimer(
  headers: SipHeaders,
  minSe: number,
  peerAllowsUpdate: boolean,
): SessionTimerTerms | 'too small' | null {
  const uacSupports = [...headers.getAll('supported'), ...headers.getAll('require')].some(
    (t) => t.trim().toLowerCase() === 'timer',
  );
  const field = headers.get('session-expires');
  const m = field === undefined ? null : /^\s*(\d{1,10})\s*(;.*)?$/.exec(field);
  if (!m) {
    const asked = Number(/^\s*(\d{1,10})/.exec(headers.get('min-se') ?? '')?.[1] ?? 0);
    return uacSupports
      ? { expires: Math.min(Math.max(DEFAULT_SE, minSe, asked), MAX_SE), refresher: 'uac', uacSupports }
      : null;
  }
  if (Number(m[1]) < minSe) return 'too small';
  const expires = Math.min(Number(m[1]), MAX_SE);
  const refresher = parseParams(m[2] ?? '')
    ?.get('refresher')
    ?.toLowerCase();
  if (!uacSupports || refresher === 'uas') return peerAllowsUpdate ? { expires, refresher: 'uas', uacSupports } : null;
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
  /**
   * Started by the 2xx that agreed `terms`, at `refreshedAt` (performance.now); fires `expiry`
   * unless refreshed. When callrec is the refresher, `refresh` fires at half the interval.
   */
  | {
      status: 'running';
      terms: SessionTimerTerms;
      refreshedAt: number;
      expiry: NodeJS.Timeout;
      refresh: NodeJS.Timeout | null;
    }
  /** No refresh came in time. */
  | { status: 'expired'; terms: SessionTimerTerms; refreshedAt: number };

const TRANSITIONS: Transitions<SessionTimerState> = {
  off: ['running', 'off'],
  running: ['running', 'off', 'expired'],
  expired: [],
};

/**
 * One dialog's session timer (RFC 4028) at the UAS: each 2xx that carries `Session-Expires`
 * (re)starts it, one without stops it, and without a refresh it expires: `onExpire` ends the
 * session. When callrec is the refresher, `onRefresh` sends the refresh at half the interval.
 */
export class SessionTimer extends StateMachine<SessionTimerState> {
  readonly #onExpire: (state: Extract<SessionTimerState, { status: 'expired' }>) => void;
  readonly #onRefresh: (terms: SessionTimerTerms) => void;

  constructor(
    onExpire: (state: Extract<SessionTimerState, { status: 'expired' }>) => void,
    onRefresh: (terms: SessionTimerTerms) => void,
  ) {
    super({ status: 'off' }, TRANSITIONS);
    this.#onExpire = onExpire;
    this.#onRefresh = onRefresh;
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
    const refresh = terms.refresher === 'uas' ? setTimeout(() => this.#onRefresh(terms), terms.expires * 500) : null;
    refresh?.unref();
    this.state = { status: 'running', terms, refreshedAt: performance.now(), expiry, refresh };
  }

  /** The dialog ended. */
  stop(): void {
    if (this.status === 'running') this.state = { status: 'off' };
  }

  protected onTransition(prev: SessionTimerState, next: SessionTimerState): void {
    if (prev.status === 'running') {
      clearTimeout(prev.expiry);
      if (prev.refresh) clearTimeout(prev.refresh);
    }
    if (next.status === 'expired') this.#onExpire(next);
  }

  #expire(): void {
    const s = this.stateIf('running');
    if (s) this.state = { status: 'expired', terms: s.terms, refreshedAt: s.refreshedAt };
  }
}
