import { randomUUID } from 'node:crypto';
import type WebSocket from 'ws';
import type { RawData } from 'ws';
import type { BufferPool } from '../../media/buffer-pool.js';
import { resolveCallRecording, type CallRecordingSettings } from '../agents/settings.js';
import { hasScope } from '../auth/scopes.js';
import { RuntimeLink } from '../bridge/runtime.js';
import { CallrecError, errorCode, wsCloseCode } from '../errors.js';
import type { Logger } from '../log.js';
import type { MediaMetrics } from '../metrics.js';
import type { PromptCache } from '../consent/prompts.js';
import type { ProviderAdapter, ProviderEvent, StreamStart, UpgradeInfo, WireMessage } from '../protocols/types.js';
import type { RecordingJobData } from '../queue/recordings.js';
import type { CallMode, Store } from '../store/index.js';
import type { ControlAction, ControlResult } from './control.js';
import { CallRecorder } from './recorder.js';
import type { CallRegistry } from './registry.js';

/** What a call session needs from the node it runs on. */
export interface MediaContext {
  store: Store;
  registry: CallRegistry;
  log: Logger;
  /** Spool files go under `<dataDir>/spool`. */
  dataDir: string;
  nodeId: string;
  enqueue(job: RecordingJobData): Promise<unknown>;
  metrics: MediaMetrics;
  /** Consent prompts, rendered once per text and stream format. */
  prompts: PromptCache;
  /** Jitter window for frame placement, ms. */
  jitterMs?: number;
  /** The node's pool of call buffers (see `BufferPool`). */
  buffers: BufferPool;
}

/** `code: message`, cut to the 123 bytes a close frame's reason may hold. */
function closeReason(code: string, message: string): string {
  const text = message.startsWith(code) ? message : `${code}: ${message}`;
  const bytes = Buffer.from(text);
  return bytes.length <= 123 ? text : bytes.subarray(0, 120).toString('utf8').replace(/\uFFFD*$/, '') + '...';
}

/** Largest message a provider sends: a start message with parameters; media frames are < 2 KB. */
export const MAX_MESSAGE_BYTES = 64 * 1024;

/** Messages already parsed when the socket was paused for set-up may still arrive; a bound, in case. */
const MAX_HELD = 512;

interface Held {
  data: Buffer;
  isBinary: boolean;
}

interface LiveCall {
  tenantId: string;
  callId: string;
  mode: CallMode;
  settings: CallRecordingSettings;
  runtimeUrl: string | null;
  /** Whether the provider plays audio sent back on this stream. */
  canPlayAudio: boolean;
}

/** Runtime messages held back while the consent prompt plays: about a minute of 20 ms audio. */
const MAX_HELD_RUNTIME = 3000;

/**
 * A call's session moves through these states; `#setState` is the one place that leaves a
 * state, and it releases what that state held (timers, the runtime socket).
 */
type SessionState =
  /** Socket open; waiting for the provider's start message. `held` keeps what the runtime must see first. */
  | { status: 'awaiting_start'; held: Held[] }
  /** Start received; checking token and agent, setting up. Messages wait in `held`, in order.
   * `claimed`: the call row exists, so ending now must still finalize it (setup does, once done). */
  | { status: 'identifying'; held: Held[]; claimed: boolean }
  | {
      status: 'live';
      call: LiveCall;
      recorder: CallRecorder;
      runtime: RuntimeLink | null;
      /** Runtime messages waiting for the consent prompt to finish, in order. */
      heldRuntime: Held[];
      flushTimer: NodeJS.Timeout;
    }
  | { status: 'ending' }
  | { status: 'ended' };

/**
 * One provider media stream: identifies the call, records it (fork: both tracks from the
 * provider; bridge: caller from the provider, agent from the voice-agent runtime we connect
 * to and relay), and on hang-up finalizes the spool and queues the recording job.
 */
export class CallSession {
  readonly #ws: WebSocket;
  readonly #adapter: ProviderAdapter;
  readonly #upgrade: UpgradeInfo;
  readonly #ctx: MediaContext;
  #log: Logger;
  #state: SessionState = { status: 'awaiting_start', held: [] };
  #endReason = '';
  /** Provider messages since the stream went live, and media frames not yet added to the metrics. */
  #messages = 0;
  #frames = 0;
  /** Resolves when the session has ended and its recording (if any) is queued. */
  readonly ended: Promise<void>;
  #resolveEnded!: () => void;

  constructor(ws: WebSocket, adapter: ProviderAdapter, upgrade: UpgradeInfo, ctx: MediaContext) {
    this.#ws = ws;
    this.#adapter = adapter;
    this.#upgrade = upgrade;
    this.#ctx = ctx;
    this.#log = ctx.log.child({ provider: adapter.provider });
    this.ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    ws.on('message', (data: RawData, isBinary: boolean) => this.#onProviderMessage(data as Buffer, isBinary));
    ws.on('close', (code: number, reason: Buffer) => this.#end(`provider closed (${code}${reason.length ? ` ${reason}` : ''})`));
    ws.on('error', (err: Error) => this.#log.warn({ err: err.message }, 'provider socket error'));
  }

  get status(): SessionState['status'] {
    return this.#state.status;
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
    const state = this.#state;
    if (state.status !== 'live') return Promise.reject(new CallrecError('ERR_NOT_FOUND', 'the call is not live'));
    return state.recorder.control(action);
  }

  /** Frames are counted per session and added to the shared counter once a second, not per frame. */
  #countFrames(): void {
    if (this.#frames === 0) return;
    this.#ctx.metrics.framesTotal.inc({ provider: this.#adapter.provider }, this.#frames);
    this.#frames = 0;
  }

  #setState(next: SessionState): void {
    const prev = this.#state;
    if (prev.status === 'live' && next.status !== 'live') {
      clearInterval(prev.flushTimer);
      this.#countFrames();
      prev.runtime?.close(1000, 'call ended');
    }
    this.#state = next;
  }

  #onProviderMessage(data: Buffer, isBinary: boolean): void {
    const state = this.#state;
    try {
      if (data.length > MAX_MESSAGE_BYTES) throw new CallrecError('ERR_MESSAGE_TOO_LARGE', `${data.length}-byte message; the limit is ${MAX_MESSAGE_BYTES}`);
      switch (state.status) {
        case 'awaiting_start': {
          const event = this.#adapter.parseProviderMessage(data, isBinary);
          if (event.type === 'connected') {
            state.held.push({ data, isBinary });
          } else if (event.type === 'start') {
            const held = [...state.held];
            this.#setState({ status: 'identifying', held: [], claimed: false });
            // Stop reading while set-up queries run: TCP holds the provider's frames for us.
            this.#ws.pause();
            void this.#setUp(event.start, held, { data, isBinary });
          } else {
            throw new CallrecError('ERR_UNEXPECTED_MESSAGE', `"${event.type}" before the stream started`);
          }
          return;
        }
        case 'identifying':
          if (state.held.length >= MAX_HELD) throw new CallrecError('ERR_OVERLOADED', 'call setup took too long');
          state.held.push({ data, isBinary });
          return;
        case 'live': {
          // Every 8th message is timed: the histogram's quantiles hold, at an eighth of the cost.
          const timed = (++this.#messages & 7) === 0;
          const started = timed ? performance.now() : 0;
          this.#onLiveMessage(state, this.#adapter.parseProviderMessage(data, isBinary), data, isBinary);
          if (timed) this.#ctx.metrics.frameSeconds.observe((performance.now() - started) / 1000);
          return;
        }
        default:
          return;
      }
    } catch (err) {
      this.#fail(err as Error);
    }
  }

  #onLiveMessage(state: Extract<SessionState, { status: 'live' }>, event: ProviderEvent, data: Buffer, isBinary: boolean): void {
    switch (event.type) {
      case 'media':
        this.#frames++;
        // Relayed before it is recorded: the runtime is waiting for it, the spool is not.
        if (event.leg === 'caller') state.runtime?.send(data, isBinary);
        state.recorder.frame(event.leg, event.timestampMs, event.payload);
        return;
      case 'mark':
        // callrec's own prompt marks end here; the runtime's go back to it.
        if (!state.recorder.mark(event.name)) state.runtime?.send(data, isBinary);
        return;
      case 'dtmf':
        state.recorder.dtmf(event.digit);
        state.runtime?.send(data, isBinary);
        return;
      case 'other':
        state.runtime?.send(data, isBinary);
        return;
      case 'stop':
        state.runtime?.send(data, isBinary);
        this.#end('provider stop');
        return;
      default:
        throw new CallrecError('ERR_UNEXPECTED_MESSAGE', `"${event.type}" after the stream started`);
    }
  }

  /** Checks the stream's credentials and agent, creates the call, and goes live. */
  async #setUp(start: StreamStart, connected: Held[], startMessage: Held): Promise<void> {
    let call: LiveCall | null = null;
    try {
      call = await this.#claim(start);
    } catch (err) {
      this.#fail(err as Error);
    }
    const state = this.#state;
    if (!call) return;
    if (state.status !== 'identifying') {
      // The stream ended (or failed) during set-up, after the call was created: finish it here.
      await this.#ctx.store.calls
        .update(call.tenantId, call.callId, { status: 'ended', endedAt: new Date().toISOString(), endReason: this.#endReason })
        .catch((err: Error) => this.#log.error({ err }, 'could not finalize call'));
      this.#ctx.registry.delete(call.tenantId, call.callId, this);
      this.#setState({ status: 'ended' });
      this.#resolveEnded();
      return;
    }
    const recorder = new CallRecorder({
      ...this.#ctx,
      tenantId: call.tenantId,
      callId: call.callId,
      settings: call.settings,
      format: start.format,
      bridged: call.mode === 'bridge',
      canPlayAudio: call.canPlayAudio,
      adapter: this.#adapter,
      log: this.#log,
      send: (message: WireMessage) => this.#sendToProvider(message.data, message.binary),
      promptDone: () => this.#releaseRuntime(),
    });
    const flushTimer = setInterval(() => {
      this.#countFrames();
      recorder.flush();
    }, 1000);
    flushTimer.unref();
    this.#setState({ status: 'live', call, recorder, runtime: null, heldRuntime: [], flushTimer });
    const live = this.#state as Extract<SessionState, { status: 'live' }>;
    if (call.mode === 'bridge') live.runtime = this.#connectRuntime(call.runtimeUrl!, connected, startMessage);
    this.#log.info('call started');
    recorder.begin().catch((err: Error) => this.#fail(err));
    for (const m of state.held) this.#onProviderMessage(m.data, m.isBinary);
    this.#ws.resume();
  }

  /** Authenticates the stream and creates its call; null if the stream went away meanwhile. */
  async #claim(start: StreamStart): Promise<LiveCall | null> {
    const { store, registry } = this.#ctx;
    const params = { ...this.#upgrade.query, ...start.params };
    const agentId = params.agent_id;
    if (!agentId) throw new CallrecError('ERR_MISSING_AGENT', 'stream has no agent_id parameter');
    const principal = params.token ? await store.keys.verify(params.token) : null;
    if (!principal || !hasScope(principal, 'media:stream')) {
      throw new CallrecError('ERR_BAD_TOKEN', 'token missing, unknown, revoked or without media:stream scope');
    }
    const agent = await store.agents.get(principal.tenantId, agentId);
    if (!agent) throw new CallrecError('ERR_UNKNOWN_AGENT', `unknown agent_id "${agentId.slice(0, 64)}"`);
    const settings = resolveCallRecording(agent.settings);
    const callId = params.call_id || start.providerCallId || start.streamId || randomUUID();
    const runtimeUrl = params.agent_url || settings.agent_ws_url || null;
    if (runtimeUrl && !/^wss?:\/\//.test(runtimeUrl)) throw new CallrecError('ERR_MALFORMED_MESSAGE', 'agent_url must be a ws:// or wss:// URL');
    const mode: CallMode = runtimeUrl && !start.legs.includes('agent') ? 'bridge' : 'fork';
    const tenantId = principal.tenantId;

    const state = this.#state;
    if (state.status !== 'identifying') return null;
    if (!registry.add(tenantId, callId, this)) throw new CallrecError('ERR_CALL_EXISTS', `call "${callId.slice(0, 64)}" is already streaming`);
    try {
      await store.calls.create({
        tenantId,
        id: callId,
        agentId,
        provider: this.#adapter.provider,
        mode,
        sampleRate: start.format.sampleRate,
        legs: mode === 'bridge' ? ['caller', 'agent'] : start.legs,
        settings,
        streamId: start.streamId ?? null,
        nodeId: this.#ctx.nodeId,
      });
    } catch (err) {
      registry.delete(tenantId, callId, this);
      if ((err as CallrecError).code === 'ERR_CONFLICT') throw new CallrecError('ERR_CALL_EXISTS', `call "${callId.slice(0, 64)}" was already streamed`);
      throw err;
    }
    state.claimed = true;
    this.#log = this.#log.child({ tenantId, callId, agentId, mode });
    // Bridge streams carry audio both ways by definition. Otherwise a provider stream that carries
    // the agent track is a one-way fork (Twilio <Start><Stream>, Telnyx both_tracks) and one that
    // carries only the caller is taken as two-way (Twilio <Connect><Stream>, Vonage), unless the
    // stream's `bidirectional` parameter says otherwise.
    const canPlayAudio =
      mode === 'bridge' || (params.bidirectional !== undefined ? params.bidirectional === 'true' : !start.legs.includes('agent'));
    return { tenantId, callId, mode, settings, runtimeUrl, canPlayAudio };
  }

  #connectRuntime(url: string, connected: Held[], startMessage: Held): RuntimeLink {
    const runtime = new RuntimeLink(url);
    for (const m of connected) runtime.send(m.data, m.isBinary);
    const start = this.#adapter.runtimeStartMessage(startMessage.data, startMessage.isBinary);
    runtime.send(start.data, start.binary);
    runtime.opened.catch((err: Error) => this.#fail(err));
    runtime.ws.on('message', (data: RawData, isBinary: boolean) => this.#onRuntimeMessage(data as Buffer, isBinary));
    runtime.ws.on('close', (code: number) => {
      if (this.#state.status === 'live' && this.#state.runtime === runtime) {
        this.#closeProvider(1000, `agent runtime closed (${code})`);
        this.#end('agent runtime closed');
      }
    });
    return runtime;
  }

  #onRuntimeMessage(data: Buffer, isBinary: boolean): void {
    const state = this.#state;
    if (state.status !== 'live') return;
    if (state.recorder.holdingRuntime) {
      // The caller hears the consent prompt first; the runtime's audio waits, in order.
      if (state.heldRuntime.length < MAX_HELD_RUNTIME) state.heldRuntime.push({ data, isBinary });
      else this.#log.warn('runtime message dropped: too much held back during the consent prompt');
      return;
    }
    this.#relayRuntime(state, data, isBinary);
  }

  #relayRuntime(state: Extract<SessionState, { status: 'live' }>, data: Buffer, isBinary: boolean): void {
    let event;
    try {
      event = this.#adapter.parseRuntimeMessage(data, isBinary);
    } catch (err) {
      // The runtime is the customer's code: a bad message is dropped, not relayed (the provider
      // would hang up on it), and does not end the caller's call.
      this.#log.warn({ err: (err as Error).message }, 'dropped a bad message from the agent runtime');
      return;
    }
    this.#sendToProvider(data, isBinary);
    if (event.type === 'media') state.recorder.runtimeAudio(event.payload);
    else if (event.type === 'clear') state.recorder.runtimeClear();
  }

  /** The consent prompt is over: what the runtime sent meanwhile goes out now, in order. */
  #releaseRuntime(): void {
    const state = this.#state;
    if (state.status !== 'live') return;
    const held = state.heldRuntime;
    state.heldRuntime = [];
    for (const m of held) this.#relayRuntime(state, m.data, m.isBinary);
  }

  #sendToProvider(data: Buffer | string, binary: boolean): void {
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(data, { binary });
  }

  #closeProvider(code: number, reason: string): void {
    // A socket paused for set-up must read again, or the provider's close frame is never seen
    // and the closing handshake waits for its timeout.
    this.#ws.resume();
    if (this.#ws.readyState === this.#ws.OPEN || this.#ws.readyState === this.#ws.CONNECTING) this.#ws.close(code, reason);
  }

  /** Closes the provider socket with the error's code and reason, then ends the call. */
  #fail(err: Error): void {
    const code = errorCode(err) ?? 'ERR_INTERNAL';
    const wsCode = wsCloseCode(err);
    if (wsCode === 1011) this.#log.error({ err }, 'call failed');
    else this.#log.info({ code, reason: err.message }, 'closing stream');
    this.#closeProvider(wsCode, closeReason(code, wsCode === 1011 ? 'internal error' : err.message));
    this.#end(`${code}: ${err.message}`);
  }

  #end(reason: string): void {
    const state = this.#state;
    if (state.status === 'ending' || state.status === 'ended') return;
    this.#endReason = reason;
    const outcome = /^ERR_[A-Z_]+/.exec(reason)?.[0] ?? 'ended';
    this.#ctx.metrics.callsTotal.inc({ provider: this.#adapter.provider, outcome });
    this.#setState({ status: 'ending' });
    this.#closeProvider(1000, 'call ended');
    if (state.status === 'identifying' && state.claimed) return; // #setUp finalizes once done
    if (state.status !== 'live') {
      this.#setState({ status: 'ended' });
      this.#resolveEnded();
      return;
    }
    this.#finalize(state.call, state.recorder, reason)
      .catch((err: Error) => this.#log.error({ err }, 'could not finalize call'))
      .finally(() => {
        this.#ctx.registry.delete(state.call.tenantId, state.call.callId, this);
        this.#setState({ status: 'ended' });
        this.#resolveEnded();
      });
  }

  /** Finishes the recording (queueing it) and marks the call ended with its figures. */
  async #finalize(call: LiveCall, recorder: CallRecorder, reason: string): Promise<void> {
    await recorder.finish(reason);
    const alignment = recorder.alignment;
    await this.#ctx.store.calls.update(call.tenantId, call.callId, {
      status: 'ended',
      endedAt: new Date().toISOString(),
      endReason: reason,
      alignment: alignment ? { ...alignment } : null,
    });
    this.#log.info({ reason }, 'call ended');
  }
}
