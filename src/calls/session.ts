import { WebSocket, type RawData } from 'ws';
import { REMOTE_TIMEOUT_DEFAULTS } from '../config.js';
import { BoundedSender } from '../bridge/bounded-sender.js';
import { RuntimeLink } from '../bridge/runtime.js';
import type { ConsentGate } from '../consent/gate.js';
import type { HeldMessage } from '../consent/hold.js';
import { CallrecError, closeReason, errorCode, wsCloseCode, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { LOST } from '../recording/lost-spans.js';
import type { ProviderAdapter, ProviderEvent, StreamStart, WireMessage } from '../protocols/types.js';
import type { ControlAction, ControlResult } from './control.js';
import { wireCall, type MediaContext } from './live-call.js';
import { StateMachine, type Transitions } from './machine.js';
import type { CallRecorder } from './recorder.js';
import { authenticateStream, claimCall, type CallClaim, type StreamUpgrade } from './stream-auth.js';

/** The provider's socket as a session uses it: a `ws` WebSocket (a fake one in unit tests). */
export interface ProviderSocket {
  on(event: 'message', listener: (data: RawData, isBinary: boolean) => void): unknown;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  send(data: Buffer | string, options: { binary: boolean }, cb?: (err?: Error) => void): void;
  close(code: number, reason: string): void;
  pause(): void;
  resume(): void;
  readonly readyState: number;
  readonly bufferedAmount: number;
}

/** Largest message a provider sends: a start message with parameters; media frames are < 2 KB. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/**
 * How often a live call writes its spool (and counts its frames, and checks it is not idle): a
 * `kill -9` loses at most this plus the capture's jitter window. One write a tick: when the
 * spool also wrote whenever its buffer held 500 ms, a call made three writes a second, and the
 * extra writes' hand-offs to the thread pool cost about 2% of the fork path's CPU (perf).
 */
const TICK_MS = 500;

/** Codes that say a stream hit one of the media endpoints' limits: counted in `/metrics` by code. */
const LIMIT_CODES: ReadonlySet<ErrorCode> = new Set([
  'ERR_AUTH_TIMEOUT',
  'ERR_PRESTART_LIMIT',
  'ERR_TENANT_STREAM_LIMIT',
  'ERR_STREAM_IDLE',
  'ERR_RATE_LIMITED',
  'ERR_RELAY_OVERFLOW',
]);

/** Provider messages kept for the runtime (which must see them first) and for after set-up. */
interface Opening {
  /** Messages before the start (Twilio `connected`), relayed to a runtime first. */
  connected: HeldMessage[];
  start: HeldMessage;
  /** Messages after the start that arrived during set-up, handled once live, in order. */
  held: HeldMessage[];
}

export type SessionState =
  /** Socket open; waiting for the provider's start message, until `authDeadline` fires. */
  | { status: 'connecting'; connected: HeldMessage[]; authDeadline: NodeJS.Timeout }
  /** Start received; checking token and agent. The socket is paused; what still arrives waits. */
  | ({ status: 'authenticating'; authDeadline: NodeJS.Timeout } & Opening)
  /** The call is this node's and its row is being created; ending now must finalize it. */
  | ({ status: 'claimed'; claim: CallClaim } & Opening)
  | {
      status: 'live';
      claim: CallClaim;
      gate: ConsentGate;
      recorder: CallRecorder;
      /** Bridge mode: the voice-agent runtime's socket. */
      runtime: RuntimeLink | null;
      flushTimer: NodeJS.Timeout;
      /** Wall time (performance.now) of the latest tick that saw a media frame, for the idle timeout. */
      mediaSeenAt: number;
    }
  /** Finalizing: the recording queued, the call row marked ended. */
  | { status: 'ending'; reason: string }
  | { status: 'ended'; reason: string };

const TRANSITIONS: Transitions<SessionState> = {
  connecting: ['authenticating', 'ending'],
  authenticating: ['claimed', 'ending'],
  claimed: ['live', 'ending'],
  live: ['ending'],
  ending: ['ended'],
  ended: [],
};

/**
 * One provider media stream: identifies the call, records it (fork: both tracks from the
 * provider; bridge: caller from the provider, agent from the voice-agent runtime we connect
 * to and relay), and on hang-up finalizes the spool and queues the recording job.
 */
export class CallSession extends StateMachine<SessionState> {
  readonly #ws: ProviderSocket;
  /** What callrec sends the provider (the runtime's messages, prompts): bounded like the runtime's side. */
  readonly #toProvider: BoundedSender;
  readonly #adapter: ProviderAdapter;
  readonly #upgrade: StreamUpgrade;
  readonly #ctx: MediaContext;
  #log: Logger;
  /** Provider messages since the stream went live, and media frames not yet added to the metrics. */
  #messages = 0;
  #frames = 0;
  /** Frames dropped for running ahead of the wall clock, already added to the metrics. */
  #framesAheadCounted = 0;
  #framesLateCounted = 0;
  /** Messages and bytes held before the stream went live (STREAM_PRESTART_*). */
  #heldMessages = 0;
  #heldBytes = 0;
  /** When (performance.now) the socket opened, then the set-up phase now timed began: `callrec_stream_setup_seconds`. */
  #phaseAt = performance.now();
  /** Resolves when the session has ended and its recording (if any) is queued. */
  readonly ended: Promise<void>;
  #resolveEnded!: () => void;

  constructor(ws: ProviderSocket, adapter: ProviderAdapter, upgrade: StreamUpgrade, ctx: MediaContext) {
    const authDeadline = setTimeout(() => {
      // Holding a socket open without authenticating is a failure of its address, like a bad token.
      ctx.admission.timedOut(upgrade.address);
      this.#fail(new CallrecError('ERR_AUTH_TIMEOUT', `no valid start within ${ctx.limits.authTimeoutMs / 1000} s`));
    }, ctx.limits.authTimeoutMs);
    authDeadline.unref();
    ctx.admission.opened(upgrade.address);
    super({ status: 'connecting', connected: [], authDeadline }, TRANSITIONS);
    this.#ws = ws;
    // A provider that does not read pauses the runtime, whose messages are most of what it is sent.
    this.#toProvider = new BoundedSender(ws, ctx.limits.relay, {
      side: 'provider',
      onDrain: () => this.stateIf('live')?.runtime?.ws.resume(),
    });
    this.#adapter = adapter;
    this.#upgrade = upgrade;
    this.#ctx = ctx;
    this.#log = ctx.log.child({ provider: adapter.provider });
    this.ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    ws.on('message', (data: RawData, isBinary: boolean) => this.#onProviderMessage(data as Buffer, isBinary));
    ws.on('close', (code: number, reason: Buffer) =>
      this.#end(`provider closed (${code}${reason.length ? ` ${reason}` : ''})`),
    );
    ws.on('error', (err: Error) => this.#log.warn({ err }, 'provider socket error'));
  }

  /** Ends the call as a node shutting down would: closes the provider socket and finalizes. */
  shutdown(): Promise<void> {
    this.#fail(new CallrecError('ERR_SHUTTING_DOWN', 'media node shutting down'));
    return this.ended;
  }

  /**
   * Applies a recording control action (start/stop/pause/resume) to this live call.
   * Rejects `ERR_NOT_FOUND` once the call is no longer live, `ERR_CONFLICT` for an impossible transition.
   */
  control(action: ControlAction): Promise<ControlResult> {
    const s = this.state;
    if (s.status !== 'live') return Promise.reject(new CallrecError('ERR_NOT_FOUND', 'the call is not live'));
    const result = s.recorder.control(action);
    if (action !== 'pause' && action !== 'resume') return result;
    // A provider that can stop streaming while the recording is paused is asked to (AudioHook `pause`/`resume`).
    return result.then((done) => {
      const ask = this.#adapter.pauseMessage?.(action === 'pause');
      if (ask) this.#sendToProvider(ask.data, ask.binary);
      return done;
    });
  }

  protected onTransition(prev: SessionState, next: SessionState): void {
    if ('authDeadline' in prev && !('authDeadline' in next)) {
      clearTimeout(prev.authDeadline);
      this.#ctx.admission.settled(this.#upgrade.address);
    }
    if (prev.status === 'live') {
      clearInterval(prev.flushTimer);
      this.#countFrames(prev.recorder);
      prev.runtime?.close(1000, 'call ended');
    }
    if (next.status === 'ending') this.#closeProvider(1000, 'call ended');
  }

  /** Frames are counted per session and added to the shared counters once a tick, not per frame. */
  #countFrames(recorder: CallRecorder): void {
    const alignment = recorder.alignment;
    const ahead = alignment?.framesAhead ?? 0;
    if (ahead > this.#framesAheadCounted) this.#ctx.metrics.framesAheadTotal.inc(ahead - this.#framesAheadCounted);
    this.#framesAheadCounted = ahead;
    // A SIPREC session's frames are its RTP packets, one each: its late frames are late packets.
    const late = alignment?.framesTooLate ?? 0;
    if (late > this.#framesLateCounted && this.#adapter.provider === 'siprec')
      this.#ctx.metrics.rtpPacketsLateTotal.inc(late - this.#framesLateCounted);
    this.#framesLateCounted = late;
    if (this.#frames === 0) return;
    this.#ctx.metrics.framesTotal.inc({ provider: this.#adapter.provider }, this.#frames);
    this.#frames = 0;
  }

  #onProviderMessage(data: Buffer, isBinary: boolean): void {
    try {
      if (data.length > MAX_MESSAGE_BYTES)
        throw new CallrecError(
          'ERR_MESSAGE_TOO_LARGE',
          `${data.length}-byte message; the limit is ${MAX_MESSAGE_BYTES}`,
        );
      const live = this.stateIf('live');
      if (live) {
        // Every 32nd message is timed: at 100 messages a second per call the histogram's
        // quantiles hold, and each timed message costs two clock reads and a histogram observe
        // (1% of the fork path's CPU when every 8th was timed, perf).
        const timed = (++this.#messages & 31) === 0;
        const started = timed ? performance.now() : 0;
        const event = this.#adapter.parseProviderMessage(data, isBinary);
        if (event.reply) this.#sendToProvider(event.reply.data, event.reply.binary);
        this.#onLiveMessage(live, event, data, isBinary);
        if (timed) this.#ctx.metrics.frameSeconds.observe((performance.now() - started) / 1000);
        return;
      }
      const s = this.state;
      switch (s.status) {
        case 'connecting':
          return this.#onOpeningMessage(s, data, isBinary);
        case 'authenticating':
        case 'claimed':
          // Messages already parsed when the socket was paused for set-up may still arrive.
          return this.#hold(s.held, data, isBinary);
        default:
          return;
      }
    } catch (err) {
      this.#fail(err as Error);
    }
  }

  #onOpeningMessage(s: Extract<SessionState, { status: 'connecting' }>, data: Buffer, isBinary: boolean): void {
    const event = this.#adapter.parseProviderMessage(data, isBinary);
    if (event.reply) this.#sendToProvider(event.reply.data, event.reply.binary);
    if (event.type === 'other' && event.reply) {
      // A session protocol's exchange before the stream (an AudioHook probe's `open`, a `ping`): answered, nothing else.
    } else if (event.type === 'stop') {
      // The provider ended a stream that never started (an AudioHook probe): nothing to record.
      this.#end('provider stop');
    } else if (event.type === 'connected') {
      this.#hold(s.connected, data, isBinary);
    } else if (event.type === 'start') {
      // Stop reading while set-up queries run: TCP holds the provider's frames for us.
      this.#ws.pause();
      this.#setUpPhase('start');
      const next = {
        status: 'authenticating' as const,
        connected: s.connected,
        start: { data, isBinary },
        held: [],
        authDeadline: s.authDeadline,
      };
      this.state = next;
      void this.#setUp(next, event.start);
    } else {
      throw new CallrecError('ERR_UNEXPECTED_MESSAGE', `"${event.type}" before the stream started`);
    }
  }

  /** Keeps a message until the stream is live, within the pre-start budget (an unauthenticated socket's memory). */
  #hold(list: HeldMessage[], data: Buffer, isBinary: boolean): void {
    const { preStartMessages, preStartBytes } = this.#ctx.limits;
    this.#heldBytes += data.length;
    if (++this.#heldMessages > preStartMessages || this.#heldBytes > preStartBytes) {
      throw new CallrecError(
        'ERR_PRESTART_LIMIT',
        `more than ${preStartMessages} messages or ${preStartBytes} bytes before the stream was live`,
      );
    }
    list.push({ data, isBinary });
  }

  #onLiveMessage(
    s: Extract<SessionState, { status: 'live' }>,
    event: ProviderEvent,
    data: Buffer,
    isBinary: boolean,
  ): void {
    switch (event.type) {
      case 'media':
      case 'stereo':
        this.#frames++;
        // Relayed before it is recorded: the runtime is waiting for it, the spool is not.
        if (event.type === 'stereo' || event.leg === 'caller') this.#toRuntime(s, data, isBinary);
        this.#recordFrame(s, event);
        return;
      case 'pause':
        s.recorder.streamPause();
        return;
      case 'resume':
        s.recorder.streamResume(event.atMs);
        // The pause was no silence of the stream's: the idle timeout counts from now.
        s.mediaSeenAt = performance.now();
        return;
      case 'lost':
        s.recorder.lost(event.fromMs, event.toMs, event.reason ?? LOST.discarded);
        return;
      case 'mark':
        // callrec's own prompt marks end here; the runtime's go back to it.
        if (!s.gate.mark(event.name)) this.#toRuntime(s, data, isBinary);
        return;
      case 'dtmf':
        s.gate.dtmf(event.digit);
        this.#toRuntime(s, data, isBinary);
        return;
      case 'flow':
        // The provider's queue is full: callrec's prompt and the runtime's audio wait (bounded)
        // until it drains; the runtime is told as the provider told it.
        if (event.paused) this.#toProvider.hold();
        else this.#toProvider.resume();
        this.#toRuntime(s, data, isBinary);
        return;
      case 'other':
        this.#toRuntime(s, data, isBinary);
        return;
      case 'stop':
        this.#toRuntime(s, data, isBinary);
        this.#end('provider stop');
        return;
      default:
        throw new CallrecError('ERR_UNEXPECTED_MESSAGE', `"${event.type}" after the stream started`);
    }
  }

  /**
   * Records a provider frame: one leg's, or both of a stereo frame. In a bridge the agent is what
   * the runtime says, never the provider's agent track or second channel (Telnyx may send one).
   */
  #recordFrame(s: Extract<SessionState, { status: 'live' }>, event: ProviderEvent): void {
    if (event.type === 'media') {
      if (event.leg === 'caller' || !s.runtime) s.recorder.frame(event.leg, event.timestampMs, event.payload);
    } else if (event.type === 'stereo') {
      s.recorder.frame('caller', event.timestampMs, event.caller);
      if (!s.runtime) s.recorder.frame('agent', event.timestampMs, event.agent);
    }
  }

  /**
   * Relays a provider message to the runtime, if any. A runtime that does not keep up pauses the
   * provider's socket until what waits for it is written (TCP then holds the provider's frames);
   * past BRIDGE_RELAY_MAX_BYTES this throws `ERR_RELAY_OVERFLOW`.
   */
  #toRuntime(s: Extract<SessionState, { status: 'live' }>, data: Buffer, isBinary: boolean): void {
    if (s.runtime && !s.runtime.send(data, isBinary)) {
      this.#ctx.metrics.relayPausesTotal.inc({ paused: 'provider' });
      this.#ws.pause();
    }
  }

  /** Bytes waiting for each side of a bridged call (0 toward the runtime in fork mode). */
  get relayBufferedBytes(): { runtime: number; provider: number } {
    return { runtime: this.stateIf('live')?.runtime?.bufferedAmount ?? 0, provider: this.#toProvider.bufferedAmount };
  }

  /** Authenticates the stream, claims its call, and goes live once the call row exists. */
  async #setUp(authenticating: Extract<SessionState, { status: 'authenticating' }>, start: StreamStart): Promise<void> {
    try {
      const identity = await authenticateStream(this.#ctx, this.#upgrade, start);
      if (this.state !== authenticating) return;
      this.#setUpPhase('auth');
      const claim = claimCall(this.#ctx, this, this.#adapter.provider, start, identity);
      const { tenantId, callId, agentId, mode } = identity;
      this.#log = this.#log.child({ tenantId, callId, agentId, mode });
      const { authDeadline: _, ...opening } = authenticating;
      const claimed = { ...opening, status: 'claimed' as const, claim };
      this.state = claimed;
      await claim.created;
      if (this.state !== claimed) return;
      this.#setUpPhase('claim');
      this.#goLive(claimed, start);
    } catch (err) {
      this.#fail(err as Error);
    }
  }

  /** Observes the set-up phase that ends now, once per call; the next one starts. */
  #setUpPhase(phase: 'start' | 'auth' | 'claim' | 'live'): void {
    const now = performance.now();
    this.#ctx.metrics.streamSetupSeconds.observe({ phase }, (now - this.#phaseAt) / 1000);
    this.#phaseAt = now;
  }

  /** Builds the live call in one step (consent gate, recorder, runtime link), then handles what waited. */
  #goLive(claimed: Extract<SessionState, { status: 'claimed' }>, start: StreamStart): void {
    const { claim } = claimed;
    const { identity } = claim;
    const send = (message: WireMessage) => this.#sendToProvider(message.data, message.binary);
    const { gate, recorder } = wireCall(this.#ctx, identity, start.format, this.#log, {
      canPlayAudio: identity.canPlayAudio,
      sendAudio: (frame) => send(this.#adapter.mediaMessage(frame)),
      frameMs: this.#adapter.playbackFrameMs,
      sendMark: (name) => {
        const mark = this.#adapter.markMessage(name);
        if (mark) send(mark);
        return mark !== null;
      },
      release: (message) => this.#relayRuntime(message.data, message.isBinary),
    });
    const flushTimer = setInterval(() => this.#tick(), TICK_MS);
    flushTimer.unref();
    const runtime = identity.runtimeUrl ? this.#connectRuntime(identity.runtimeUrl, claimed) : null;
    this.state = { status: 'live', claim, gate, recorder, runtime, flushTimer, mediaSeenAt: performance.now() };
    this.#log.info('call started');
    // Synchronous: a prompt that is due holds the runtime before its first message can arrive.
    recorder.begin();
    this.#setUpPhase('live');
    const take = recorder.state;
    if (take.status === 'recording') {
      const begun = performance.now();
      take.recordingId.then(
        () =>
          this.#ctx.metrics.streamSetupSeconds.observe({ phase: 'recording_row' }, (performance.now() - begun) / 1000),
        () => {}, // logged by the recorder
      );
    }
    // Resumed first: no message arrives before the held ones are handled (it takes a turn of the
    // event loop), and one of them may pause the socket again for a runtime that is not reading.
    this.#ws.resume();
    for (const m of claimed.held) this.#onProviderMessage(m.data, m.isBinary);
  }

  /** Every `TICK_MS` while live: counts frames, flushes the spool, ends a stream idle for too long. */
  #tick(): void {
    const s = this.state;
    if (s.status !== 'live') return;
    const now = performance.now();
    if (this.#frames > 0) s.mediaSeenAt = now;
    this.#countFrames(s.recorder);
    s.recorder.flush();
    const idleMs = this.#ctx.limits.idleTimeoutMs;
    if (now - s.mediaSeenAt >= idleMs && !s.recorder.streamPaused)
      this.#fail(new CallrecError('ERR_STREAM_IDLE', `no media for ${idleMs / 1000} s`));
  }

  #connectRuntime(url: string, opening: Opening): RuntimeLink {
    // Runtimes are reached through the egress policy; a stream's agent_url was held to the agent's list already.
    // What waits for the runtime resumes the provider once written (not while set-up holds it paused).
    const runtime = new RuntimeLink(url, {
      agent: this.#ctx.egress.agent('agent_ws_url', new URL(url).protocol),
      connectTimeoutMs: (this.#ctx.remoteTimeouts ?? REMOTE_TIMEOUT_DEFAULTS).connectMs,
      relay: this.#ctx.limits.relay,
      onDrain: () => {
        if (this.stateIf('live')) this.#ws.resume();
      },
    });
    // Far below the cap: a stream's opening is bounded by STREAM_PRESTART_BYTES.
    for (const m of opening.connected) runtime.send(m.data, m.isBinary);
    const start = this.#adapter.runtimeStartMessage(opening.start.data, opening.start.isBinary);
    runtime.send(start.data, start.binary);
    runtime.opened.catch((err: Error) => this.#fail(err));
    runtime.ws.on('message', (data: RawData, isBinary: boolean) => this.#onRuntimeMessage(data as Buffer, isBinary));
    runtime.ws.on('close', (code: number) => {
      const s = this.state;
      if (s.status === 'live' && s.runtime === runtime && runtime.wasOpened) {
        this.#closeProvider(1000, `agent runtime closed (${code})`);
        this.#end('agent runtime closed');
      }
    });
    return runtime;
  }

  #onRuntimeMessage(data: Buffer, isBinary: boolean): void {
    const s = this.state;
    // The caller hears the consent prompt (and answers it) first; the runtime's messages wait, in order.
    if (s.status === 'live' && !s.gate.hold({ data, isBinary })) this.#relayRuntime(data, isBinary);
  }

  #relayRuntime(data: Buffer, isBinary: boolean): void {
    const s = this.state;
    if (s.status !== 'live') return;
    let event;
    try {
      event = this.#adapter.parseRuntimeMessage(data, isBinary);
    } catch (err) {
      // The runtime is the customer's code: a bad message is dropped, not relayed (the provider
      // would hang up on it), and does not end the caller's call.
      this.#log.warn({ err }, 'dropped a bad message from the agent runtime');
      return;
    }
    if (event.type === 'clear' && this.#toProvider.holding) {
      // A clear empties the provider's full queue, the reason it asked for a pause: it goes at
      // once, and the audio held for after the pause would have been cleared with the rest.
      this.#toProvider.dropHeldAudio();
      this.#toProvider.resume();
    }
    if (!this.#sendToProvider(data, isBinary)) return;
    if (event.type === 'media' || (event.type === 'mark' && event.payload)) s.recorder.runtimeAudio(event.payload!);
    else if (event.type === 'clear') s.recorder.runtimeClear();
  }

  /**
   * Sends the provider a message; a provider that does not keep up pauses the runtime until
   * what waits for it is written. False when the stream failed `ERR_RELAY_OVERFLOW` instead.
   */
  #sendToProvider(data: Buffer | string, binary: boolean): boolean {
    try {
      if (!this.#toProvider.send(data, binary)) {
        const runtime = this.stateIf('live')?.runtime;
        if (runtime) {
          this.#ctx.metrics.relayPausesTotal.inc({ paused: 'runtime' });
          runtime.ws.pause();
        }
      }
      return true;
    } catch (err) {
      this.#fail(err as Error);
      return false;
    }
  }

  #closeProvider(code: number, reason: string): void {
    // A socket paused for set-up must read again, or the provider's close frame is never seen
    // and the closing handshake waits for its timeout.
    this.#ws.resume();
    if (this.#ws.readyState === WebSocket.OPEN || this.#ws.readyState === WebSocket.CONNECTING)
      this.#ws.close(code, reason);
  }

  /** Closes the provider socket with the error's code and reason, then ends the call. */
  #fail(err: Error): void {
    const code = errorCode(err) ?? 'ERR_INTERNAL';
    const wsCode = wsCloseCode(err);
    if (LIMIT_CODES.has(code)) this.#ctx.metrics.streamLimitsTotal.inc({ limit: code });
    if (wsCode === 1011) this.#log.error({ err }, 'call failed');
    else this.#log.info({ code, reason: err.message }, 'closing stream');
    const reason = closeReason(code, wsCode === 1011 ? 'internal error' : err.message);
    const said = this.#adapter.failMessage?.(reason);
    if (said) this.#sendToProvider(said.data, said.binary);
    this.#closeProvider(wsCode, reason);
    this.#end(`${code}: ${err.message}`);
  }

  /** The one way a call ends, from any state: finalize what the state held, then `ended`. */
  #end(reason: string): void {
    const prev = this.state;
    if (prev.status === 'ending' || prev.status === 'ended') return;
    const outcome = /^ERR_[A-Z_]+/.exec(reason)?.[0] ?? 'ended';
    this.#ctx.metrics.callsTotal.inc({ provider: this.#adapter.provider, outcome });
    this.state = { status: 'ending', reason };
    this.#finalize(prev, reason)
      .catch((err: Error) => this.#log.error({ err }, 'could not finalize call'))
      .finally(() => {
        this.state = { status: 'ended', reason };
        this.#resolveEnded();
      });
  }

  /** Finishes the recording (queueing it), marks the call ended with its figures, and releases its claim. */
  async #finalize(prev: SessionState, reason: string): Promise<void> {
    if (prev.status !== 'claimed' && prev.status !== 'live') return;
    const { tenantId, callId } = prev.claim.identity;
    try {
      if (prev.status === 'live') {
        // The last few ms of audio an adapter held back (resampling) belong to the recording too.
        for (const event of this.#adapter.flush?.() ?? []) this.#recordFrame(prev, event);
        await prev.recorder.finish(reason);
      }
      const created = await prev.claim.created.then(
        () => true,
        () => false,
      );
      if (!created) return;
      const alignment = prev.status === 'live' ? prev.recorder.alignment : null;
      await this.#ctx.store.calls.update(tenantId, callId, {
        status: 'ended',
        endedAt: new Date().toISOString(),
        endReason: reason,
        alignment: alignment ? { ...alignment } : null,
      });
      this.#log.info({ reason }, 'call ended');
    } finally {
      this.#ctx.registry.delete(tenantId, callId, this);
    }
  }
}
