import { randomBytes } from 'node:crypto';
import type dgram from 'node:dgram';
import type { MediaContext } from '../calls/live-call.js';
import { StateMachine, type Transitions } from '../calls/machine.js';
import { CallSession } from '../calls/session.js';
import { CallrecError, sipStatus, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { parseNameAddr, responseTo, SipHeaders, type SipRequest } from './message.js';
import { MediaPort, siprecAdapter } from './media-port.js';
import { answerSdp, type RecordingOffer, type RecordedStream } from './offer.js';
import { parseRtp, parseTelephoneEvent, RtpLossCounter, RtpTimeline } from './rtp.js';
import { ALLOW, localTag, withHeader } from './server.js';
import type { ServerTransaction } from './transaction.js';
import type { SipSource } from './transport.js';

/** Whether an SDP offer (a re-INVITE's, plain or multipart) holds no audio stream that is not inactive. */
function isInactiveOffer(body: string): boolean {
  const audio = body
    .split(/^m=/m)
    .slice(1)
    .filter((m) => m.startsWith('audio') && !/^audio 0 /.test(m));
  return audio.length > 0 && audio.every((m) => /^a=inactive\r?$/m.test(m));
}

/** See `#onRtp`: one 20 ms packet. */
const START_WINDOW_MS = 20;

/** What a recording session needs from the SIPREC server. */
export interface RecordingSessionContext {
  media: MediaContext;
  log: Logger;
  /** `SIP_PUBLIC_ADDRESS`, and the port of the listener the INVITE came in on, for Contact, Via and the SDP. */
  publicAddress: string;
  contactPort: number;
  /** Sends a request in a client transaction (`SipServer.send`). */
  send(request: SipRequest, peer: SipSource): void;
}

/** One received RTP stream: its socket, its leg, its timeline. */
interface RtpReceiver {
  stream: RecordedStream;
  socket: dgram.Socket;
  timeline: RtpTimeline;
  /** Its sequence numbers never received, for `callrec_rtp_packets_lost_total`. */
  loss: RtpLossCounter;
  /** Timestamp of the last telephone-event reported, so an event's three end packets count once. */
  lastEvent: number;
}

export type RecordingSessionState =
  /** INVITE received; the call session authenticates the agent and claims the call. */
  | { status: 'offered'; invite: ServerTransaction }
  /** 200 sent, retransmitted until the ACK. */
  | { status: 'answered'; invite: ServerTransaction }
  | { status: 'confirmed' }
  | { status: 'ended'; reason: string };

const TRANSITIONS: Transitions<RecordingSessionState> = {
  offered: ['answered', 'ended'],
  answered: ['confirmed', 'ended'],
  confirmed: ['ended'],
  ended: [],
};

/**
 * One SIPREC recording session (RFC 7866): the dialog its INVITE made, and the RTP streams it
 * receives, fed through a `CallSession` as the call's media (`MediaPort`). The INVITE is
 * answered once that call session is live (200 with `a=recvonly` on every recorded stream),
 * or refused with the status its error maps to (`sipStatus`); a BYE or CANCEL ends it.
 */
export class RecordingSession extends StateMachine<RecordingSessionState> {
  readonly callId: string;
  readonly localTag = localTag();
  readonly call: CallSession;
  readonly #ctx: RecordingSessionContext;
  readonly #invite: SipRequest;
  readonly #source: SipSource;
  readonly #offer: RecordingOffer;
  readonly #receivers: RtpReceiver[];
  readonly #port: MediaPort;
  readonly #answer: Buffer;
  /** The session's clock zero: the first RTP packet's arrival (performance.now), -1 before it. */
  #zero = -1;
  #localCSeq = 1;
  /** The SRC's latest offer held every stream inactive: the recording is paused. */
  #paused = false;

  constructor(
    ctx: RecordingSessionContext,
    invite: ServerTransaction,
    source: SipSource,
    offer: RecordingOffer,
    sockets: ReadonlyMap<number, dgram.Socket>,
    identity: { tenantId: string; agentId: string; callId: string },
  ) {
    super({ status: 'offered', invite }, TRANSITIONS);
    this.callId = invite.request.headers.get('call-id')!;
    this.#ctx = ctx;
    this.#invite = invite.request;
    this.#source = source;
    this.#offer = offer;
    this.#receivers = offer.streams.map((stream) => ({
      stream,
      socket: sockets.get(stream.index)!,
      timeline: new RtpTimeline(8000),
      loss: new RtpLossCounter(),
      lastEvent: -1,
    }));
    const ports = new Map([...sockets].map(([index, socket]) => [index, socket.address().port]));
    this.#answer = Buffer.from(
      answerSdp(offer, ctx.publicAddress, ports, Number.parseInt(randomBytes(4).toString('hex'), 16)),
    );
    this.#port = new MediaPort((code, reason) => this.#onCallClosed(code, reason));
    this.call = new CallSession(
      this.#port,
      siprecAdapter(),
      { headers: {}, query: {}, address: source.address, tenantId: identity.tenantId },
      ctx.media,
    );
    this.call.on('stateChange', (_, next) => {
      if (next.status === 'live') this.#accept();
    });
    void this.call.ended.then(() => this.#end('call ended'));
    for (const receiver of this.#receivers) receiver.socket.on('message', (data) => this.#onRtp(receiver, data));
    // Each participant with the leg of the stream it sends (null: it sends none callrec records).
    const participants = offer.participants.map((p) => ({
      ...p,
      leg: offer.streams.find((s) => s.participant?.id === p.id)?.leg ?? null,
    }));
    this.#port.start(identity.agentId, identity.callId, { codec: offer.codec, sampleRate: 8000 }, participants);
  }

  /** The dialog's remote tag (the SRC's From tag). */
  get remoteTag(): string {
    return parseNameAddr(this.#invite.headers.get('from')!)?.params.get('tag') ?? '';
  }

  get participants(): RecordingOffer['participants'] {
    return this.#offer.participants;
  }

  /** The ACK of our 2xx. */
  ack(): void {
    const s = this.stateIf('answered');
    if (!s) return;
    s.invite.ack();
    this.state = { status: 'confirmed' };
  }

  /**
   * A re-INVITE: a session refresh is answered with the same answer; an offer whose audio is all
   * `a=inactive` pauses the recording (as `POST …/recording {"action":"pause"}` does) and is
   * answered inactive, and an active offer after it resumes the recording.
   */
  reinvite(transaction: ServerTransaction): void {
    const inactive = isInactiveOffer(transaction.request.body.toString('utf8'));
    const action = inactive ? 'pause' : 'resume';
    if (inactive !== this.#paused) {
      this.#paused = inactive;
      // A transition the recorder cannot take now (no recording, already there) changes nothing.
      this.call
        .control(action)
        .catch((err: Error) =>
          this.#ctx.log.info({ action, reason: err.message }, 're-INVITE pause/resume not applied'),
        );
    }
    const ok = this.#ok(transaction.request);
    if (inactive) ok.body = Buffer.from(this.#answer.toString('utf8').replace(/^a=recvonly$/gm, 'a=inactive'));
    transaction.respond(ok);
  }

  /** BYE from the SRC: 200, and the recording finalizes. */
  bye(transaction: ServerTransaction): void {
    transaction.respond(responseTo(transaction.request, 200));
    this.#port.hangUp('BYE');
  }

  /** CANCEL of the INVITE before it was answered: 487, nothing recorded. */
  cancel(): void {
    const s = this.stateIf('offered');
    if (!s) return;
    s.invite.respond(responseTo(this.#invite, 487, this.localTag));
    this.#port.hangUp('CANCEL');
  }

  protected onTransition(_prev: RecordingSessionState, next: RecordingSessionState): void {
    if (next.status !== 'ended') return;
    let lost = 0;
    for (const { socket, loss } of this.#receivers) {
      socket.close();
      lost += loss.settle();
    }
    if (lost > 0) this.#ctx.media.metrics.rtpPacketsLostTotal.inc(lost);
  }

  /** The call session is live: the INVITE is answered. */
  #accept(): void {
    const s = this.stateIf('offered');
    if (!s) return;
    s.invite.respond(this.#ok(this.#invite));
    this.state = { status: 'answered', invite: s.invite };
  }

  #ok(request: SipRequest) {
    const ok = responseTo(request, 200, this.localTag);
    for (const route of request.headers.getAll('record-route')) ok.headers.add('record-route', route);
    withHeader(
      ok,
      'Contact',
      `<sip:${this.#ctx.publicAddress}:${this.#ctx.contactPort}${this.#source.reliable ? ';transport=tcp' : ''}>;+sip.srs`,
    );
    withHeader(ok, 'Allow', ALLOW);
    withHeader(ok, 'Content-Type', 'application/sdp');
    ok.body = this.#answer;
    return ok;
  }

  /**
   * The call session closed the port: it refused the call (answer the INVITE with the status
   * its error code maps to) or ended it (a BYE to the SRC).
   */
  #onCallClosed(_code: number, reason: string): void {
    const code = /^ERR_[A-Z_]+/.exec(reason)?.[0] as ErrorCode | undefined;
    const s = this.state;
    if (s.status === 'offered') {
      const status = sipStatus(code ? new CallrecError(code, reason) : null);
      s.invite.respond(responseTo(this.#invite, status, this.localTag, reason.slice(0, 120)));
    } else if (s.status === 'answered' || s.status === 'confirmed') {
      this.#sendBye(reason);
    }
    this.#end(reason);
  }

  /** A BYE to the SRC, in a client transaction (resent over UDP until answered). */
  #sendBye(reason: string): void {
    const headers = new SipHeaders();
    const transport = this.#source.protocol.toUpperCase();
    headers.add(
      'via',
      `SIP/2.0/${transport} ${this.#ctx.publicAddress}:${this.#ctx.contactPort};branch=z9hG4bK${randomBytes(8).toString('hex')};rport`,
    );
    headers.add('max-forwards', '70');
    const to = this.#invite.headers.get('to')!;
    headers.add('from', parseNameAddr(to)?.params.has('tag') ? to : `${to};tag=${this.localTag}`);
    headers.add('to', this.#invite.headers.get('from')!);
    headers.add('call-id', this.callId);
    headers.add('cseq', `${this.#localCSeq++} BYE`);
    for (const route of this.#invite.headers.getAll('record-route')) headers.add('route', route);
    headers.add('reason', `Q.850;cause=16;text="${reason.replace(/["\\\r\n]/g, '').slice(0, 100)}"`);
    const target =
      parseNameAddr(this.#invite.headers.get('contact') ?? '')?.uri ??
      parseNameAddr(this.#invite.headers.get('from')!)!.uri;
    this.#ctx.send({ kind: 'request', method: 'BYE', uri: target, headers, body: Buffer.alloc(0) }, this.#source);
  }

  #end(reason: string): void {
    if (this.status !== 'ended') this.state = { status: 'ended', reason };
  }

  /** One datagram on a stream's port: audio to its leg at its RTP position, telephone-events as DTMF. */
  #onRtp(receiver: RtpReceiver, data: Buffer): void {
    if (this.status === 'ended') return;
    const packet = parseRtp(data);
    if (!packet) return;
    const { stream } = receiver;
    const lost = receiver.loss.packet(packet.ssrc, packet.sequence);
    if (lost > 0) this.#ctx.media.metrics.rtpPacketsLostTotal.inc(lost);
    const now = performance.now();
    if (this.#zero < 0) this.#zero = now;
    // Streams whose first packets arrive within a packet time of the session's first started
    // with it: an SRC starts them together, and what is measured between them is the order in
    // which this process handled the datagrams.
    const arrivalMs = now - this.#zero < START_WINDOW_MS ? 0 : now - this.#zero;
    // G.711: one sample a byte.
    const positionMs = receiver.timeline.position(
      packet.ssrc,
      packet.timestamp,
      arrivalMs,
      packet.payloadType === stream.payloadType ? packet.payload.length : 0,
    );
    if (packet.payloadType === stream.payloadType) {
      if (packet.payload.length > 0) this.#port.media(stream.leg, positionMs, packet.payload);
    } else if (packet.payloadType === stream.eventPayloadType) {
      const event = parseTelephoneEvent(packet.payload);
      if (event?.end && packet.timestamp !== receiver.lastEvent) {
        receiver.lastEvent = packet.timestamp;
        this.#port.dtmf(event.digit);
      }
    }
    // Anything else (comfort noise, a payload type not answered) is silence: the leg buffer fills the gap.
  }
}
