import { randomBytes } from 'node:crypto';
import * as sdpTransform from 'sdp-transform';
import type { MediaContext } from '../calls/live-call.js';
import { StateMachine, type Transitions } from '../calls/machine.js';
import { CallSession } from '../calls/session.js';
import { CallrecError, sipStatus, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { Leg } from '../../media/types.js';
import { LOST } from '../recording/lost-spans.js';
import { parseCSeq, parseNameAddr, responseTo, SipHeaders, type SipRequest } from './message.js';
import { MediaPort, mediaMessage, mediaPosition, siprecAdapter } from './media-port.js';
import { ParticipantRoster, readMetadata, type RecordingMetadata } from './metadata.js';
import { addedStream, answerSdp, readBody, type RecordingOffer, type RecordedStream } from './offer.js';
import { isRtcp, parseSenderReports, SenderReportAligner } from './rtcp.js';
import { parseRtp, parseTelephoneEvent, RtpLossCounter, RtpTimeline, type RtpSockets } from './rtp.js';
import { rtpDecoder, type RtpDecoder } from './rtp-decoders.js';
import { ALLOW, localTag, withHeader } from './server.js';
import {
  allowsUpdate,
  negotiateSessionTimer,
  SessionTimer,
  withSessionTimer,
  type SessionTimerState,
  type SessionTimerTerms,
} from './session-timer.js';
import { SrtpReceiver } from './srtp.js';
import type { ClientTransaction, ServerTransaction } from './transaction.js';
import { contactUri, type SipSource } from './transport.js';

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

/** What a delivered slot of a stream's media queue holds, so the queue keeps no datagram's memory. */
const DELIVERED = Buffer.alloc(0);

/** What a recording session needs from the SIPREC server. */
export interface RecordingSessionContext {
  media: MediaContext;
  log: Logger;
  /** `SIP_PUBLIC_ADDRESS`, and the port of the listener the INVITE came in on, for Contact, Via and the SDP. */
  publicAddress: string;
  contactPort: number;
  /** Sends a request in a client transaction (`SipServer.send`). */
  send(request: SipRequest, peer: SipSource): ClientTransaction;
  /** `SIP_MIN_SE`: the shortest session interval (s) callrec takes (RFC 4028 `Min-SE`). */
  minSessionExpires: number;
  /** Opens an RTP port pair of `RTP_PORTS` for a stream a re-INVITE or UPDATE adds. */
  openRtp(): Promise<RtpSockets>;
  /** The agent's `siprec_agent_aor`, as a matcher (null: not set). */
  isAgent: ((aor: string) => boolean) | null;
}

/** One received RTP stream: its sockets, its leg, its timeline, its decoder. */
interface RtpReceiver {
  stream: RecordedStream;
  sockets: RtpSockets;
  timeline: RtpTimeline;
  decoder: RtpDecoder;
  /** The SSRC and sequence number of the last payload decoded (a stateful decoder's order). */
  ssrc: number;
  sequence: number;
  /** Its sequence numbers never received, for `callrec_rtp_packets_lost_total`. */
  loss: RtpLossCounter;
  /** Timestamp of the last telephone-event reported, so an event's three end packets count once. */
  lastEvent: number;
  /** An SRTP stream's crypto context: each datagram is authenticated and decrypted before it is read. */
  srtp: SrtpReceiver | null;
  /** Media messages not yet in the call, in arrival order: the first `queued` (see `#deliverMedia`). */
  queue: Buffer[];
  queued: number;
  /** Whether it read media in this turn of the event loop. */
  read: boolean;
}

export type RecordingSessionState =
  /** INVITE received; the call session authenticates the agent and claims the call. */
  | { status: 'offered'; invite: ServerTransaction }
  /** 200 sent, retransmitted until the ACK. */
  | { status: 'answered'; invite: ServerTransaction }
  | { status: 'confirmed' }
  /** BYE answered: RTP still in flight is received until `timer` ends the session (`BYE_GRACE_MS`). */
  | { status: 'closing'; timer: NodeJS.Timeout }
  | { status: 'ended'; reason: string };

const TRANSITIONS: Transitions<RecordingSessionState> = {
  offered: ['answered', 'ended'],
  answered: ['confirmed', 'closing', 'ended'],
  confirmed: ['closing', 'ended'],
  closing: ['ended'],
  ended: [],
};

/**
 * After a BYE, how long RTP is still received (packets the SRC sent just before it may arrive
 * after it): the jitter window, within which such packets still go in place, at most 1 s.
 */
const byeGraceMs = (jitterMs = 300) => Math.min(jitterMs, 1000);

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
  /** The streams received now: a re-INVITE or UPDATE adds and removes some. */
  readonly #receivers: RtpReceiver[] = [];
  readonly #port: MediaPort;
  #answer: Buffer;
  readonly #sessionId = Number.parseInt(randomBytes(4).toString('hex'), 16);
  /** The answer's `o=` version, one more for each answer that changes the streams (RFC 3264 §8). */
  #sessionVersion = 1;
  /** The m-lines of the latest offer answered (RFC 3264 §8: a later one keeps them, in order, and may add some). */
  #offered: sdpTransform.MediaDescription[];
  /** An offer that adds streams is opening their ports: another offer meanwhile is 491. */
  #restreaming = false;
  readonly #aligner = new SenderReportAligner();
  /** The session's clock zero: the first RTP packet's arrival (performance.now), -1 before it. */
  #zero = -1;
  /** When handling the first RTP packet, and what it set off, ended (performance.now); +∞ until then. */
  #firstHandled = Number.POSITIVE_INFINITY;
  #localCSeq = 1;
  /** The SRC's latest offer held every stream inactive: the recording is paused. */
  #paused = false;
  readonly #identity: { tenantId: string; callId: string };
  /** The participants as the metadata (the INVITE's, then its updates') names them. */
  readonly #roster: ParticipantRoster;
  /** The session timer the INVITE asked for (null: none), started by the 200. */
  readonly #timerTerms: SessionTimerTerms | null;
  readonly #timer = new SessionTimer(
    (s) => this.#expired(s),
    (terms) => this.#refresh(terms),
  );
  /** Whether the SRC takes UPDATE (its Allow), so callrec can refresh the session when asked to. */
  #peerAllowsUpdate: boolean;
  /** The latest re-INVITE answered 2xx, until its ACK. */
  #reinvite: ServerTransaction | null = null;
  /** The CSeq of the SRC's latest request in the dialog (RFC 3261 §12.2.2: each one higher). */
  #remoteCSeq: number;
  /** Where the audio received so far ends, ms of the session's clock. */
  #audioEndMs = 0;
  /** Whether `#deliverMedia` is due at the end of this turn of the event loop. */
  #deliveryDue = false;
  readonly #deliverQueued = (): void => this.#deliverMedia();
  /** `#deliverMedia`'s read position in each stream's queue. */
  readonly #heads: number[] = [];

  constructor(
    ctx: RecordingSessionContext,
    invite: ServerTransaction,
    source: SipSource,
    offer: RecordingOffer,
    sockets: ReadonlyMap<number, RtpSockets>,
    identity: { tenantId: string; agentId: string; callId: string },
    timerTerms: SessionTimerTerms | null,
  ) {
    super({ status: 'offered', invite }, TRANSITIONS);
    this.callId = invite.request.headers.get('call-id')!;
    this.#identity = identity;
    this.#timerTerms = timerTerms;
    this.#remoteCSeq = parseCSeq(invite.request.headers.get('cseq'))?.seq ?? 0;
    this.#peerAllowsUpdate = allowsUpdate(invite.request.headers);
    this.#ctx = ctx;
    this.#invite = invite.request;
    this.#source = source;
    this.#offer = offer;
    this.#offered = offer.sdp.media;
    this.#answer = Buffer.from(answerSdp(offer, ctx.publicAddress, this.#rtpPorts(sockets), this.#sessionId));
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
    for (const stream of offer.streams) this.#receive(stream, sockets.get(stream.index)!);
    // Each participant with the leg of the stream it sends (null: it sends none callrec records).
    this.#roster = new ParticipantRoster(new Map(offer.streams.map((s) => [s.label, s.leg])), offer.metadata);
    this.#port.start(identity.agentId, identity.callId, this.#receivers[0].decoder.format, this.#roster.list());
  }

  /** The dialog's remote tag (the SRC's From tag). */
  get remoteTag(): string {
    return parseNameAddr(this.#invite.headers.get('from')!)?.params.get('tag') ?? '';
  }

  /** The participants as the INVITE's metadata named them (its updates change the call's row). */
  get participants(): RecordingOffer['participants'] {
    return this.#offer.participants;
  }

  /** The ACK of our 2xx: the INVITE's, or a re-INVITE's. */
  ack(): void {
    this.#reinvite?.ack();
    this.#reinvite = null;
    const s = this.stateIf('answered');
    if (!s) return;
    s.invite.ack();
    this.state = { status: 'confirmed' };
  }

  /**
   * A re-INVITE or an UPDATE (RFC 3311) in the dialog, one code path. Its SDP offer is answered
   * with the session's answer (a refresh); one whose audio is all `a=inactive` pauses the
   * recording (as `POST …/recording {"action":"pause"}` does) and is answered inactive, and an
   * active offer after it resumes it. Its recording metadata (RFC 7866 §8.2) updates the
   * call's participants. It refreshes the session timer (RFC 4028), or stops it when it asks
   * for none; an interval under `SIP_MIN_SE` is answered 422. An UPDATE without an offer is
   * answered without a body.
   */
  modify(transaction: ServerTransaction): void {
    const { request } = transaction;
    // RFC 3264 §4: no new offer while one is still being answered (the INVITE's, or one opening ports).
    if (this.status === 'offered' || this.#restreaming)
      return transaction.respond(withHeader(responseTo(request, 491, this.localTag), 'Retry-After', '1'));
    if (this.status === 'ended' || this.status === 'closing')
      return transaction.respond(responseTo(request, 481, this.localTag));
    // An older request than one already taken (reordered over UDP) would undo a later update.
    const cseq = parseCSeq(request.headers.get('cseq'))?.seq ?? 0;
    if (cseq <= this.#remoteCSeq)
      return transaction.respond(responseTo(request, 500, this.localTag, 'CSeq out of order'));
    this.#remoteCSeq = cseq;
    if (request.headers.has('allow')) this.#peerAllowsUpdate = allowsUpdate(request.headers);
    const terms = negotiateSessionTimer(request.headers, this.#ctx.minSessionExpires, this.#peerAllowsUpdate);
    if (terms === 'too small')
      return transaction.respond(
        withHeader(responseTo(request, 422, this.localTag), 'Min-SE', String(this.#ctx.minSessionExpires)),
      );
    let body: { sdp: string | null; metadata: RecordingMetadata | null };
    try {
      const parts = readBody(request.headers, request.body);
      body = { sdp: parts.sdp, metadata: parts.metadata === null ? null : readMetadata(parts.metadata) };
    } catch (err) {
      return transaction.respond(responseTo(request, 400, this.localTag, (err as Error).message.slice(0, 120)));
    }
    const inactive = body.sdp !== null ? isInactiveOffer(body.sdp) : this.#paused;
    if (inactive !== this.#paused) {
      this.#paused = inactive;
      this.#deliverMedia(true); // the audio queued this turn came before the pause or resume
      const action = inactive ? 'pause' : 'resume';
      // A transition the recorder cannot take now (no recording, already there) changes nothing.
      this.call
        .control(action)
        .catch((err: Error) => this.#ctx.log.info({ action, reason: err.message }, 'SDP pause/resume not applied'));
    }
    if (body.metadata) this.#updateParticipants(body.metadata);
    const restreamed = body.sdp !== null && !inactive ? this.#restream(body.sdp) : null;
    if (!restreamed) return this.#answerModify(transaction, body.sdp !== null, inactive, terms);
    this.#restreaming = true;
    restreamed
      .then(
        () => this.#answerModify(transaction, true, false, terms),
        (err: Error) => {
          this.#ctx.log.warn({ err }, 'could not change the streams');
          transaction.respond(responseTo(request, sipStatus(err), this.localTag, err.message.slice(0, 120)));
        },
      )
      .finally(() => (this.#restreaming = false));
  }

  /** The 200 to a re-INVITE or UPDATE (`modify`), with the session's answer when it carried an offer. */
  #answerModify(
    transaction: ServerTransaction,
    offered: boolean,
    inactive: boolean,
    terms: SessionTimerTerms | null,
  ): void {
    const { request } = transaction;
    if (this.status === 'ended') return transaction.respond(responseTo(request, 481, this.localTag));
    const ok = this.#ok(request);
    if (request.method === 'UPDATE' && !offered) {
      ok.headers.delete('content-type');
      ok.body = Buffer.alloc(0);
    } else if (inactive) ok.body = Buffer.from(this.#answer.toString('utf8').replace(/^a=recvonly$/gm, 'a=inactive'));
    transaction.respond(terms ? withSessionTimer(ok, terms) : ok);
    if (request.method === 'INVITE') this.#reinvite = transaction;
    this.#timer.refreshed(terms);
  }

  /**
   * BYE from the SRC: 200 at once, and the dialog is over (a later request in it is 481). RTP is
   * received for `byeGraceMs` more, so what the SRC sent just before the BYE is recorded; then
   * the recording finalizes.
   */
  bye(transaction: ServerTransaction): void {
    if (this.status === 'closing' || this.status === 'ended')
      return transaction.respond(responseTo(transaction.request, 481, this.localTag));
    transaction.respond(responseTo(transaction.request, 200));
    const finish = () => {
      this.#deliverMedia(true);
      this.#port.hangUp('BYE');
      this.#end('BYE');
    };
    if (this.status === 'offered') return finish();
    this.state = { status: 'closing', timer: setTimeout(finish, byeGraceMs(this.#ctx.media.jitterMs)) };
  }

  /** CANCEL of the INVITE before it was answered: 487, nothing recorded. */
  cancel(): void {
    const s = this.stateIf('offered');
    if (!s) return;
    s.invite.respond(responseTo(this.#invite, 487, this.localTag));
    this.#port.hangUp('CANCEL');
  }

  protected onTransition(prev: RecordingSessionState, next: RecordingSessionState): void {
    if (prev.status === 'closing') clearTimeout(prev.timer);
    if (next.status === 'closing') this.#timer.stop();
    if (next.status !== 'ended') return;
    this.#timer.stop();
    for (const receiver of this.#receivers) this.#closeReceiver(receiver);
  }

  /** Receives `stream` on `sockets`: its RTP and RTCP to `#onRtp` and `#onRtcp`. */
  #receive(stream: RecordedStream, sockets: RtpSockets): void {
    const codec = this.#offer.codec;
    const receiver: RtpReceiver = {
      stream,
      sockets,
      timeline: new RtpTimeline(codec.clockRate),
      decoder: rtpDecoder(codec),
      ssrc: -1,
      sequence: 0,
      loss: new RtpLossCounter(),
      lastEvent: -1,
      srtp: stream.srtp && new SrtpReceiver(stream.srtp),
      queue: [],
      queued: 0,
      read: false,
    };
    this.#receivers.push(receiver);
    sockets.rtp.on('message', (data) => this.#onRtp(receiver, data));
    sockets.rtcp.on('message', (data) => this.#onRtcp(receiver, data));
  }

  /** The RTP port of each received stream, by its m-line's index. */
  #rtpPorts(sockets?: ReadonlyMap<number, RtpSockets>): Map<number, number> {
    const pairs = sockets ? [...sockets] : this.#receivers.map((r) => [r.stream.index, r.sockets] as const);
    return new Map(pairs.map(([index, { rtp }]) => [index, rtp.address().port]));
  }

  /**
   * An offer that adds or removes streams (RFC 7866 §8, RFC 3264 §8): a stream it sets to port 0
   * stops being received (its sockets closed, its port pair back in `RTP_PORTS`); an m-line after
   * the previous offer's (or one that was port 0 there) is a new stream, recorded on an RTP port
   * pair of its own when it offers the session's codec (and a usable key, for SRTP), else refused
   * with port 0; the others keep their ports. Resolves once the answer (`#answer`) is rebuilt;
   * null when the offer changes no stream (the answer stands).
   */
  #restream(sdpText: string): Promise<void> | null {
    let sdp: sdpTransform.SessionDescription;
    try {
      sdp = sdpTransform.parse(sdpText);
    } catch {
      return null;
    }
    const media = sdp.media ?? [];
    const previous = this.#offered;
    const removed = this.#receivers.filter(({ stream }) => media[stream.index]?.port === 0 || !media[stream.index]);
    const added = media
      .map((_, index) => index)
      .filter(
        (index) =>
          (index >= previous.length || previous[index].port === 0) &&
          !this.#receivers.some((r) => r.stream.index === index),
      )
      .map((index) => addedStream(sdp, index, this.#offer.codec))
      .filter((stream) => stream !== null);
    if (removed.length === 0 && added.length === 0 && media.length === previous.length) return null;
    return (async () => {
      const opened: [Omit<RecordedStream, 'leg' | 'participant'>, RtpSockets][] = [];
      try {
        for (const stream of added) opened.push([stream, await this.#ctx.openRtp()]);
      } catch (err) {
        for (const [, sockets] of opened) sockets.rtp.close();
        throw err;
      }
      if (this.status === 'ended') {
        for (const [, sockets] of opened) sockets.rtp.close();
        return;
      }
      // What the removed streams queued this turn goes into the call before they leave it.
      if (removed.length > 0) this.#deliverMedia(true);
      for (const receiver of removed) {
        this.#receivers.splice(this.#receivers.indexOf(receiver), 1);
        this.#closeReceiver(receiver);
      }
      let participantsChanged = false;
      for (const [stream, sockets] of opened) {
        const sender = this.#roster.sender(stream.label);
        const leg = this.#legOf(sender);
        participantsChanged = this.#roster.addStream(stream.label, leg) || participantsChanged;
        this.#receive(
          { ...stream, leg, participant: sender && { id: sender.id, aor: sender.aor, name: sender.name } },
          sockets,
        );
      }
      if (participantsChanged) this.#saveParticipants();
      this.#offered = media;
      this.#ctx.log.info(
        { added: opened.map(([s]) => s.label), removed: removed.map((r) => r.stream.label) },
        'SIPREC streams changed',
      );
      this.#answer = Buffer.from(
        answerSdp(
          { ...this.#offer, sdp, streams: this.#receivers.map((r) => r.stream) },
          this.#ctx.publicAddress,
          this.#rtpPorts(),
          this.#sessionId,
          ++this.#sessionVersion,
        ),
      );
    })();
  }

  /**
   * The leg of a stream added mid-session: its sender's leg when the sender already has one
   * (a participant's second stream); else, with `siprec_agent_aor` set and the sender's AOR
   * known, the agent's when it matches and the caller's when not; else the caller's (a
   * participant joining a call, a transfer's new leg, is most often on the far side of the agent).
   */
  #legOf(sender: { aor: string; leg: Leg | null } | null): Leg {
    if (sender?.leg) return sender.leg;
    if (sender?.aor && this.#ctx.isAgent) return this.#ctx.isAgent(sender.aor) ? 'agent' : 'caller';
    return 'caller';
  }

  /** Stops receiving a stream: its sockets closed (the port pair goes back), its losses and SRTP drops counted. */
  #closeReceiver({ sockets, srtp, stream, loss }: RtpReceiver): void {
    sockets.rtp.close();
    const lost = loss.settle();
    if (lost > 0) this.#ctx.media.metrics.rtpPacketsLostTotal.inc(lost);
    if (srtp && srtp.authFailures + srtp.replays + srtp.rtcpDropped > 0)
      this.#ctx.log.warn(
        { label: stream.label, authFailures: srtp.authFailures, replays: srtp.replays, rtcpDropped: srtp.rtcpDropped },
        'SRTP packets dropped',
      );
  }

  /** The call session is live: the INVITE is answered, and the session timer it asked for starts. */
  #accept(): void {
    const s = this.stateIf('offered');
    if (!s) return;
    const ok = this.#ok(this.#invite);
    s.invite.respond(this.#timerTerms ? withSessionTimer(ok, this.#timerTerms) : ok);
    this.state = { status: 'answered', invite: s.invite };
    this.#timer.refreshed(this.#timerTerms);
  }

  /** A metadata update: the participants change, and the call's row with them (`GET /api/calls/{id}`). */
  #updateParticipants(metadata: RecordingMetadata): void {
    if (this.#roster.apply(metadata, new Date().toISOString())) this.#saveParticipants();
  }

  /** The participants as they are now, to the call's row. */
  #saveParticipants(): void {
    const participants = this.#roster.list();
    this.#ctx.log.info({ participants: participants.length }, 'SIPREC metadata update');
    const { tenantId, callId } = this.#identity;
    this.persist(() => this.#ctx.media.store.calls.update(tenantId, callId, { participants })).catch((err: Error) =>
      this.#ctx.log.warn({ err }, 'could not save the participants'),
    );
  }

  /**
   * No refresh came within the session interval (RFC 4028 §10): the audio that would have come
   * since the last received is a lost span, callrec sends the SRC a BYE and the recording is
   * finalized.
   */
  #expired(timer: Extract<SessionTimerState, { status: 'expired' }>): void {
    if (this.status !== 'answered' && this.status !== 'confirmed') return;
    const reason = `ERR_SIP_SESSION_EXPIRED: no session refresh within ${timer.terms.expires} s`;
    this.#deliverMedia(true);
    if (this.#zero >= 0) this.#port.lost(this.#audioEndMs, performance.now() - this.#zero, LOST.sessionExpired);
    this.#sendBye(reason);
    this.#port.hangUp(reason);
  }

  #ok(request: SipRequest) {
    const ok = responseTo(request, 200, this.localTag);
    for (const route of request.headers.getAll('record-route')) ok.headers.add('record-route', route);
    // SIPS when the INVITE was for a SIPS URI: its Request-URI, else its top Record-Route, else its Contact (RFC 3261 §12.1.1).
    const route = this.#invite.headers.getAll('record-route')[0] ?? this.#invite.headers.get('contact') ?? '';
    const sips = /^sips:/i.test(this.#invite.uri) || /^sips:/i.test(parseNameAddr(route)?.uri ?? '');
    const contact = contactUri(this.#ctx.publicAddress, this.#ctx.contactPort, this.#source.protocol, sips);
    withHeader(ok, 'Contact', `<${contact}>;+sip.srs`);
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

  /**
   * callrec is the refresher (RFC 4028 §7.4): an UPDATE at half the interval, whose 2xx starts
   * the interval over. Any other answer leaves the timer to expire (and the session to end).
   */
  #refresh(terms: SessionTimerTerms): void {
    if (this.status !== 'answered' && this.status !== 'confirmed') return;
    const update = this.#sendRequest('UPDATE', [
      ['session-expires', `${terms.expires};refresher=uas`],
      ['supported', 'timer'],
      ...(terms.uacSupports ? [['require', 'timer'] as [string, string]] : []),
    ]);
    update.on('stateChange', (_, next) => {
      if (next.status === 'terminated' && next.response >= 200 && next.response < 300 && this.status !== 'ended')
        this.#timer.refreshed(terms);
    });
  }

  /** A BYE to the SRC, in a client transaction (resent over UDP until answered). */
  #sendBye(reason: string): void {
    this.#sendRequest('BYE', [['reason', `Q.850;cause=16;text="${reason.replace(/["\\\r\n]/g, '').slice(0, 100)}"`]]);
  }

  /** A request in the dialog to the SRC, in a client transaction (resent over UDP until answered). */
  #sendRequest(method: string, extra: [name: string, value: string][]): ClientTransaction {
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
    headers.add('cseq', `${this.#localCSeq++} ${method}`);
    for (const route of this.#invite.headers.getAll('record-route')) headers.add('route', route);
    for (const [name, value] of extra) headers.add(name, value);
    const target =
      parseNameAddr(this.#invite.headers.get('contact') ?? '')?.uri ??
      parseNameAddr(this.#invite.headers.get('from')!)!.uri;
    return this.#ctx.send({ kind: 'request', method, uri: target, headers, body: Buffer.alloc(0) }, this.#source);
  }

  #end(reason: string): void {
    if (this.status !== 'ended') this.state = { status: 'ended', reason };
  }

  /**
   * One datagram on a stream's RTP port: audio, decoded, to its leg at its RTP position;
   * telephone-events as DTMF; RTCP multiplexed on the port (RFC 5761) to `#onRtcp`.
   */
  #onRtp(receiver: RtpReceiver, data: Buffer): void {
    if (this.status === 'ended') return;
    if (isRtcp(data)) return this.#onRtcp(receiver, data);
    const clear = receiver.srtp ? receiver.srtp.unprotect(data) : data;
    const packet = clear && parseRtp(clear);
    if (!packet) return;
    const { stream, timeline } = receiver;
    const lost = receiver.loss.packet(packet.ssrc, packet.sequence);
    if (lost > 0) this.#ctx.media.metrics.rtpPacketsLostTotal.inc(lost);
    const now = performance.now();
    if (this.#zero < 0) {
      this.#zero = now;
      this.#deliverLater(); // it dates `#firstHandled`
    }
    // Streams whose first packets arrive within a packet time of the session's first started
    // with it: an SRC starts them together, and what is measured between them is the order in
    // which this process handled the datagrams. Handling the session's first packet sets the
    // call's recording up (and may take a while on a busy host): a datagram handled during that,
    // or just after it, may have arrived at any time during it.
    const arrivalMs =
      now - this.#zero < START_WINDOW_MS || now - this.#firstHandled < START_WINDOW_MS ? 0 : now - this.#zero;
    let audio: Buffer | null = null;
    if (packet.payloadType === stream.payloadType && packet.payload.length > 0) audio = this.#decode(receiver, packet);
    const started = packet.ssrc !== timeline.ssrc;
    // Anything but audio (comfort noise, telephone-events, a payload type not answered) carries
    // none: the timeline advances and the leg buffer fills the span with silence.
    let positionMs = timeline.position(packet.ssrc, packet.timestamp, arrivalMs, audio ? receiver.decoder.ticks : 0);
    if (started) {
      const correctionMs = this.#aligner.started(timeline);
      if (correctionMs !== 0) this.#logAlignment(receiver, correctionMs);
      if (correctionMs > 0) positionMs += correctionMs;
    }
    if (audio) {
      if (audio.length > 0) {
        this.#media(receiver, positionMs - receiver.decoder.lagMs, audio);
        this.#audioEndMs = Math.max(
          this.#audioEndMs,
          positionMs + (receiver.decoder.ticks * 1000) / this.#offer.codec.clockRate,
        );
      }
    } else if (packet.payloadType === stream.eventPayloadType) {
      const event = parseTelephoneEvent(packet.payload);
      if (event?.end && packet.timestamp !== receiver.lastEvent) {
        receiver.lastEvent = packet.timestamp;
        this.#port.dtmf(event.digit);
      }
    }
  }

  /**
   * Decoded audio to its leg. A codec's delay taken off the session's first packet would place
   * it before the session's start: the output up to the start is what the codec's delay
   * added, and is left out.
   */
  #media(receiver: RtpReceiver, positionMs: number, audio: Buffer): void {
    if (positionMs < 0) {
      const { sampleRate } = receiver.decoder.format;
      const skip = Math.ceil((-positionMs * sampleRate) / 1000);
      audio = audio.subarray(2 * skip); // only the L16 decoders have a delay
      positionMs += (skip * 1000) / sampleRate;
      if (audio.length === 0) return;
    }
    if (receiver.queued === receiver.queue.length) receiver.queue.push(DELIVERED);
    receiver.queue[receiver.queued++] = mediaMessage(receiver.stream.leg, positionMs, audio);
    receiver.read = true;
    this.#deliverLater();
  }

  #deliverLater(): void {
    if (this.#deliveryDue) return;
    this.#deliveryDue = true;
    setImmediate(this.#deliverQueued);
  }

  /**
   * The media of this turn of the event loop into the call, in position order across the
   * session's streams (a merge: each stream's queue is in its own order already); with `all`
   * false, only up to where every stream that read media this turn has come.
   *
   * Each stream has its own socket, and after a stall libuv reads every readable socket in turn,
   * up to 32 datagrams each per poll round, so one stream's backlog comes in before the other's:
   * handed on as read, the first stream's newer audio would move the capture's clock past the
   * jitter window and the other's older audio would be dropped as too late. Queued for the turn
   * (the check phase runs after each poll round) and merged, both streams' audio arrives in
   * order, round after round, however many rounds a backlog of seconds takes. Streams of
   * different packet times cover different spans in those 32 datagrams (20 against 40 ms: 640
   * against 1280 ms a round): what is past the slowest stream still reading waits for the next
   * turn, and goes then unless that stream read more. A stream that read nothing this turn
   * holds nothing back, so audio waits at most as long as a backlog takes to read.
   *
   * This is done here rather than by holding the capture's horizon back to its slowest leg: the
   * capture and the WebSocket providers stay as they are, and no ring grows by the seconds a
   * stall may last. What it cannot undo: legs the SRC itself sends further apart than the jitter window.
   */
  #deliverMedia(all = false): void {
    this.#deliveryDue = false;
    const receivers = this.#receivers;
    let upTo = Number.POSITIVE_INFINITY;
    for (let i = 0; i < receivers.length && !all; i++) {
      const r = receivers[i];
      if (r.read) upTo = Math.min(upTo, mediaPosition(r.queue[r.queued - 1]));
    }
    for (let i = 0; i < receivers.length; i++) this.#heads[i] = 0;
    for (;;) {
      let next = -1;
      let at = Number.POSITIVE_INFINITY;
      for (let i = 0; i < receivers.length; i++) {
        const r = receivers[i];
        const head = this.#heads[i];
        const position = head < r.queued ? mediaPosition(r.queue[head]) : at;
        if (position <= upTo && position < at) {
          next = i;
          at = position;
        }
      }
      if (next < 0) break;
      this.#port.media(receivers[next].queue[this.#heads[next]++]);
    }
    let held = false;
    for (let i = 0; i < receivers.length; i++) {
      const r = receivers[i];
      const head = this.#heads[i];
      r.queue.copyWithin(0, head, r.queued);
      r.queue.fill(DELIVERED, r.queued - head, r.queued);
      r.queued -= head;
      r.read = false;
      held ||= r.queued > 0;
    }
    if (held) this.#deliverLater();
    // The session's first media is in the call now, with what it set off (see `#onRtp`).
    if (this.#firstHandled === Number.POSITIVE_INFINITY && this.#zero >= 0) this.#firstHandled = performance.now();
  }

  /**
   * A payload in the call's format, or null when it is not decoded: a stateful decoder takes
   * packets in order (a late or repeated one stays silence), and starts afresh with a new SSRC.
   */
  #decode(receiver: RtpReceiver, packet: { ssrc: number; sequence: number; payload: Buffer }): Buffer | null {
    if (receiver.decoder.stateful) {
      if (packet.ssrc === receiver.ssrc && ((packet.sequence - receiver.sequence) << 16) >> 16 <= 0) return null;
      if (packet.ssrc !== receiver.ssrc && receiver.ssrc !== -1) receiver.decoder = rtpDecoder(this.#offer.codec);
      receiver.ssrc = packet.ssrc;
      receiver.sequence = packet.sequence;
    }
    return receiver.decoder.decode(packet.payload);
  }

  /** RTCP for a stream (SRTCP, authenticated and decrypted, for an SRTP one): its sender reports align the session's streams (rtcp.ts). */
  #onRtcp(receiver: RtpReceiver, data: Buffer): void {
    if (this.status === 'ended') return;
    const clear = receiver.srtp ? receiver.srtp.unprotectRtcp(data) : data;
    if (!clear) return;
    for (const report of parseSenderReports(clear)) {
      const correctionMs = this.#aligner.report(receiver.timeline, report);
      if (correctionMs !== 0) this.#logAlignment(receiver, correctionMs);
    }
  }

  #logAlignment(receiver: RtpReceiver, correctionMs: number): void {
    this.#ctx.log.info(
      { leg: receiver.stream.leg, label: receiver.stream.label, correctionMs: Math.round(correctionMs * 10) / 10 },
      correctionMs > 0
        ? 'stream delayed to align with the others by RTCP sender reports'
        : 'the other streams delayed to align with this one by RTCP sender reports',
    );
  }
}
