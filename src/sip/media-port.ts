import { EventEmitter } from 'node:events';
import { WebSocket } from 'ws';
import type { Leg, MediaFormat } from '../../media/types.js';
import { CallrecError } from '../errors.js';
import type { ProviderAdapter, ProviderEvent, RuntimeEvent, WireMessage } from '../protocols/types.js';
import type { ProviderSocket } from '../calls/session.js';

/*
 * A SIPREC session feeds its RTP into a `CallSession` as a provider's socket would, so the
 * session's logic (authentication of the agent, the call's claim and row, consent, recorder,
 * idle timeout, finalizing) is the one the WebSocket providers run. `MediaPort` is that
 * socket, in process; `siprecAdapter` reads what it carries: a JSON start, dtmf or stop, and
 * media as `[leg (0 caller, 1 agent)] [position ms, float64 BE] [payload]`.
 */

const LEGS: readonly Leg[] = ['caller', 'agent'];
const HEAD = 9;

/** A media message: a copy of `payload` (it may be a decoder's scratch) for `MediaPort#media`, now or later. */
export function mediaMessage(leg: Leg, positionMs: number, payload: Buffer): Buffer {
  const data = Buffer.allocUnsafe(HEAD + payload.length);
  data[0] = leg === 'caller' ? 0 : 1;
  data.writeDoubleBE(positionMs, 1);
  payload.copy(data, HEAD);
  return data;
}

/** Where a media message's audio starts, ms of the session's clock. */
export function mediaPosition(message: Buffer): number {
  return message.readDoubleBE(1);
}

/** The in-process provider socket of one SIPREC session. */
export class MediaPort extends EventEmitter implements ProviderSocket {
  #readyState: number = WebSocket.OPEN;
  /** Why the call session closed it (`ERR_…: reason`), once it has. */
  closedWith: { code: number; reason: string } | null = null;
  readonly #onClose: (code: number, reason: string) => void;

  /** `onClose`: the call session closed the port (it ended the call, or refused it). */
  constructor(onClose: (code: number, reason: string) => void) {
    super();
    this.#onClose = onClose;
  }

  get readyState(): number {
    return this.#readyState;
  }

  start(agentId: string, callId: string, format: MediaFormat, participants: Record<string, unknown>[]): void {
    this.#deliver(Buffer.from(JSON.stringify({ event: 'start', agentId, callId, format, participants })), false);
  }

  /** A media message (`mediaMessage`) into the call session. */
  media(message: Buffer): void {
    this.#deliver(message, true);
  }

  dtmf(digit: string): void {
    this.#deliver(Buffer.from(JSON.stringify({ event: 'dtmf', digit })), false);
  }

  /** `[fromMs, toMs)` of the session's clock will never arrive, for `reason` (a `lost_spans[].reason`). */
  lost(fromMs: number, toMs: number, reason: string): void {
    this.#deliver(Buffer.from(JSON.stringify({ event: 'lost', fromMs, toMs, reason })), false);
  }

  /** The SRC ended the session (BYE, CANCEL): the call session ends as on a provider's close. */
  hangUp(reason: string): void {
    if (this.#readyState !== WebSocket.OPEN) return;
    this.#readyState = WebSocket.CLOSED;
    this.emit('close', 1000, Buffer.from(reason));
  }

  #deliver(data: Buffer, isBinary: boolean): void {
    if (this.#readyState === WebSocket.OPEN) this.emit('message', data, isBinary);
  }

  /** An SRS cannot play audio into the call: what the session would send is dropped. */
  send(): void {}

  close(code: number, reason: string): void {
    if (this.closedWith) return;
    this.closedWith = { code, reason };
    this.#readyState = WebSocket.CLOSED;
    this.#onClose(code, reason);
  }

  /** Nothing is ever queued toward the SRC (it takes no audio), so nothing waits to be written. */
  readonly bufferedAmount = 0;
  pause(): void {}
  resume(): void {}
}

/** Reads a `MediaPort`'s messages as a provider adapter reads its provider's. */
export function siprecAdapter(): ProviderAdapter {
  const none = (): RuntimeEvent => {
    throw new CallrecError('ERR_UNEXPECTED_MESSAGE', 'a SIPREC session has no agent runtime');
  };
  return {
    provider: 'siprec',
    parseProviderMessage(data: Buffer, isBinary: boolean): ProviderEvent {
      if (isBinary)
        return { type: 'media', leg: LEGS[data[0]], timestampMs: data.readDoubleBE(1), payload: data.subarray(HEAD) };
      const message = JSON.parse(data.toString()) as {
        event: string;
        agentId: string;
        callId: string;
        format: MediaFormat;
        digit: string;
        participants: Record<string, unknown>[];
        fromMs: number;
        toMs: number;
        reason: string;
      };
      if (message.event === 'dtmf') return { type: 'dtmf', digit: message.digit };
      if (message.event === 'lost')
        return { type: 'lost', fromMs: message.fromMs, toMs: message.toMs, reason: message.reason };
      return {
        type: 'start',
        // One-way: a due consent prompt fails closed, as on a one-way fork (SPEC §4b, §5).
        start: {
          providerCallId: message.callId,
          params: { agent_id: message.agentId, mode: 'fork' },
          format: message.format,
          legs: ['caller', 'agent'],
          canSendAudio: false,
          participants: message.participants,
        },
      };
    },
    parseRuntimeMessage: none,
    mediaMessage: (): WireMessage => ({ data: Buffer.alloc(0), binary: true }),
    markMessage: () => null,
    clearMessage: () => null,
    runtimeStartMessage: (raw: Buffer): WireMessage => ({ data: raw, binary: false }),
  };
}
