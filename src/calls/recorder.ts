import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { BufferPool } from '../../media/buffer-pool.js';
import { bytesPerSample, samplesIn } from '../../media/codec.js';
import type { Leg, MediaFormat } from '../../media/types.js';
import type { CallRecordingSettings } from '../agents/settings.js';
import type { PromptCache } from '../consent/prompts.js';
import { CallrecError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ProviderAdapter, WireMessage } from '../protocols/types.js';
import type { RecordingJobData } from '../queue/recordings.js';
import { Capture, type AlignmentReport } from '../recording/capture.js';
import type { SpoolOpener } from '../recording/shared-spool.js';
import type { Store } from '../store/index.js';
import type { ControlAction, ControlResult } from './control.js';

/** The consent record kept with every call (SPEC §5), stored and served as is. */
export interface ConsentRecord {
  mode: CallRecordingSettings['consent_mode'];
  outcome: 'pending' | 'announced' | 'agreed' | 'declined' | 'timeout' | 'not_required' | 'failed';
  reason: string | null;
  message: string | null;
  message_sha256: string | null;
  engine: string | null;
  voice: string | null;
  /** Prompt start and end on the call's stream clock, ms. */
  prompt_started_ms: number | null;
  prompt_ended_ms: number | null;
  digit: string | null;
}

/** Where a pause sits: on the call's clock and in the recording file. */
export interface PauseRecord {
  paused_at_ms: number;
  resumed_at_ms: number | null;
  behavior: CallRecordingSettings['pause_behavior'];
  recording_offset_ms: number;
}

export interface RecorderContext {
  store: Store;
  log: Logger;
  dataDir: string;
  prompts: PromptCache;
  /** Opens the call's spool: on this disk, and shipped to `SPOOL_URL` when set. */
  spools: SpoolOpener;
  /** Queues the finalize job: on the shared queue when the spool is in object storage, else on this node's. */
  enqueue(job: RecordingJobData, shared: boolean): Promise<unknown>;
  jitterMs?: number;
  buffers: BufferPool;
  tenantId: string;
  callId: string;
  settings: CallRecordingSettings;
  format: MediaFormat;
  /** The agent leg comes from a runtime callrec relays (bridge mode). */
  bridged: boolean;
  /** The provider plays audio we send back on this stream (bidirectional). */
  canPlayAudio: boolean;
  adapter: ProviderAdapter;
  /** Sends a message to the provider. */
  send(message: WireMessage): void;
  /** The prompt has finished playing (or was abandoned): runtime audio may flow again. */
  promptDone(): void;
}

/** Mark names callrec uses for its own prompts; the provider's echo of them is not relayed. */
const PROMPT_MARK = 'callrec-consent';
/** How long after the prompt should have finished its mark may take to come back. */
const MARK_GRACE_MS = 10_000;
const FRAME_MS = 20;

/**
 * One call's recording: consent prompt → (DTMF gate) → recording ⇄ paused → stopped. Exactly
 * one transition setter, `#set`, leaves a state and releases what it held (timers, capture).
 */
type RecorderState =
  | { status: 'idle' }
  /** Prompt sent, waiting for the provider to confirm it played (its mark coming back). */
  | { status: 'prompting'; mark: string; timer: NodeJS.Timeout }
  /** Two-party: prompt played, waiting for the caller's digit. */
  | { status: 'awaiting_digit'; timer: NodeJS.Timeout }
  | { status: 'recording'; capture: Capture; recordingId: Promise<string> }
  | { status: 'paused'; capture: Capture; recordingId: Promise<string> }
  /** Done: finalized, declined or failed. One recording per call. */
  | { status: 'stopped' };

/** Drives a call's recording from the stream's events; the session owns the sockets. */
export class CallRecorder {
  readonly #ctx: RecorderContext;
  #state: RecorderState = { status: 'idle' };
  /** Stream clock: end of the newest provider frame, ms. */
  #clockMs = 0;
  #consent: ConsentRecord | null = null;
  readonly #pauses: PauseRecord[] = [];
  #alignment: AlignmentReport | null = null;
  /** Serializes store writes and transitions that await (start, stop, finish). */
  #busy: Promise<unknown> = Promise.resolve();

  constructor(ctx: RecorderContext) {
    this.#ctx = ctx;
  }

  get consent(): ConsentRecord | null {
    return this.#consent;
  }

  get pauses(): PauseRecord[] {
    return this.#pauses;
  }

  get alignment(): AlignmentReport | null {
    return this.#alignment ?? (this.#capture?.alignment ?? null);
  }

  /** Runtime audio must wait: the caller hears the consent prompt first. */
  get holdingRuntime(): boolean {
    return this.#state.status === 'prompting';
  }

  get #capture(): Capture | null {
    const s = this.#state;
    return s.status === 'recording' || s.status === 'paused' ? s.capture : null;
  }

  get recordingStatus(): ControlResult['recordingStatus'] {
    switch (this.#state.status) {
      case 'idle':
      case 'stopped':
        return 'none';
      case 'prompting':
      case 'awaiting_digit':
        return 'consent';
      default:
        return this.#state.status;
    }
  }

  #set(next: RecorderState): void {
    const prev = this.#state;
    if ((prev.status === 'prompting' || prev.status === 'awaiting_digit') && prev.status !== next.status) clearTimeout(prev.timer);
    if (prev.status === 'prompting' && next.status !== 'prompting') this.#ctx.promptDone();
    this.#state = next;
  }

  // --- stream events (per frame: no allocation, no awaiting) ---

  frame(leg: Leg, timestampMs: number, payload: Uint8Array): void {
    const end = timestampMs + (samplesIn(this.#ctx.format, payload.length) * 1000) / this.#ctx.format.sampleRate;
    if (end > this.#clockMs) this.#clockMs = end;
    this.#capture?.pushFrame(leg, timestampMs, payload);
  }

  runtimeAudio(payload: Uint8Array): void {
    this.#capture?.pushRuntimeAudio(payload);
  }

  runtimeClear(): void {
    this.#capture?.clearRuntimeAudio();
  }

  /** A mark came back from the provider; true when it was callrec's own (not to be relayed). */
  mark(name: string): boolean {
    if (!name.startsWith(PROMPT_MARK)) return false;
    const s = this.#state;
    if (s.status === 'prompting' && s.mark === name) this.#promptPlayed();
    return true;
  }

  dtmf(digit: string): void {
    if (this.#state.status !== 'awaiting_digit') return;
    const consent = this.#consent!;
    consent.digit = digit;
    if (digit === this.#ctx.settings.consent_digit) {
      this.#startCapture('agreed', null);
    } else {
      this.#set({ status: 'stopped' });
      this.#settle('declined', `caller pressed ${digit}, not ${this.#ctx.settings.consent_digit}`);
    }
  }

  /** Flushes the spool (once a second). */
  flush(): void {
    this.#capture?.flush().catch((err: Error) => this.#ctx.log.error({ err: err.message }, 'spool write failed'));
  }

  // --- control ---

  /** Starts recording as the call begins, when the agent records whole calls. */
  begin(): Promise<void> {
    const { settings } = this.#ctx;
    if (!settings.enabled) {
      this.#consent = this.#record('not_required', 'recording is disabled for this agent');
      return this.#saveConsent();
    }
    if (!settings.auto_record) {
      this.#consent = this.#record('not_required', 'not recorded unless started (auto_record is off)');
      return this.#saveConsent();
    }
    // Without a prompt the whole call is recorded, from the stream's first sample.
    if (!settings.consent_prompt) {
      this.#startCapture('not_required', 'consent_prompt is off', 0);
      return Promise.resolve();
    }
    return this.#run(() => this.#start());
  }

  /** A control action (API `POST /api/calls/{id}/recording`); rejects `ERR_CONFLICT` when impossible now. */
  control(action: ControlAction): Promise<ControlResult> {
    return this.#run(async (): Promise<ControlResult> => {
      const s = this.#state;
      const conflict = (why: string) => new CallrecError('ERR_CONFLICT', `cannot ${action}: ${why}`);
      switch (action) {
        case 'start':
          if (!this.#ctx.settings.enabled) throw conflict('recording is disabled for this agent');
          if (s.status === 'stopped') throw conflict('this call was already recorded (one recording per call)');
          if (s.status !== 'idle') throw conflict('the call is already being recorded');
          await this.#start();
          return { recordingStatus: this.recordingStatus };
        case 'stop':
          if (s.status === 'prompting' || s.status === 'awaiting_digit') {
            this.#set({ status: 'stopped' });
            this.#settle('failed', 'recording stopped during consent');
            return { recordingStatus: 'none' };
          }
          if (s.status !== 'recording' && s.status !== 'paused') throw conflict('the call is not being recorded');
          return { recordingStatus: await this.#finalize('stopped') };
        case 'pause': {
          if (s.status !== 'recording') throw conflict(`the recording is ${this.recordingStatus}`);
          const behavior = this.#ctx.settings.pause_behavior;
          const offset = s.capture.pause(behavior === 'skip');
          this.#pauses.push({ paused_at_ms: Math.round(s.capture.clockMs), resumed_at_ms: null, behavior, recording_offset_ms: Math.round(offset) });
          this.#set({ status: 'paused', capture: s.capture, recordingId: s.recordingId });
          await this.#ctx.store.recordings.update(await s.recordingId, { status: 'paused' });
          await this.#savePauses();
          return { recordingStatus: 'paused' };
        }
        case 'resume': {
          if (s.status !== 'paused') throw conflict(`the recording is ${this.recordingStatus}`);
          this.#resume(s.capture);
          this.#set({ status: 'recording', capture: s.capture, recordingId: s.recordingId });
          await this.#ctx.store.recordings.update(await s.recordingId, { status: 'recording' });
          await this.#savePauses();
          return { recordingStatus: 'recording' };
        }
      }
    });
  }

  #resume(capture: Capture): void {
    capture.resume();
    this.#pauses.at(-1)!.resumed_at_ms = Math.round(capture.clockMs);
  }

  /** The call ended: a prompt in progress fails closed, a recording is finalized and queued. */
  finish(reason: string): Promise<void> {
    return this.#run(async () => {
      const s = this.#state;
      if (s.status === 'prompting' || s.status === 'awaiting_digit') {
        this.#set({ status: 'stopped' });
        const outcome = s.status === 'awaiting_digit' ? 'timeout' : 'failed';
        this.#settle(outcome, s.status === 'prompting' ? `call ended before the prompt finished playing (${reason})` : `call ended before the caller pressed a digit (${reason})`);
        await this.#saveConsent();
      } else if (s.status === 'recording' || s.status === 'paused') {
        if (s.status === 'paused') this.#resume(s.capture);
        await this.#finalize(reason);
      }
    });
  }

  // --- internals ---

  /** Runs `fn` after whatever transition is in flight, so they never interleave. */
  #run<T>(fn: () => Promise<T> | T): Promise<T> {
    const next = this.#busy.then(fn);
    this.#busy = next.catch(() => {});
    return next;
  }

  #record(outcome: ConsentRecord['outcome'], reason: string | null): ConsentRecord {
    const { settings } = this.#ctx;
    return {
      mode: settings.consent_mode,
      outcome,
      reason,
      message: null,
      message_sha256: null,
      engine: null,
      voice: null,
      prompt_started_ms: null,
      prompt_ended_ms: null,
      digit: null,
    };
  }

  /** Records the consent outcome (and persists it, in the background of the frame path). */
  #settle(outcome: ConsentRecord['outcome'], reason: string | null): void {
    const consent = (this.#consent ??= this.#record(outcome, reason));
    consent.outcome = outcome;
    consent.reason = reason;
    this.#ctx.log.info({ outcome, reason }, 'consent');
    this.#saveConsent().catch((err: Error) => this.#ctx.log.error({ err: err.message }, 'could not save the consent record'));
  }

  #saveConsent(): Promise<void> {
    return this.#ctx.store.calls.update(this.#ctx.tenantId, this.#ctx.callId, { consent: { ...this.#consent } }).then(() => {});
  }

  #savePauses(): Promise<void> {
    return this.#ctx.store.calls.update(this.#ctx.tenantId, this.#ctx.callId, { pauses: this.#pauses.map((p) => ({ ...p })) }).then(() => {});
  }

  /** Plays the consent prompt if the agent asks for one, else starts capturing now. */
  async #start(): Promise<void> {
    const { settings, canPlayAudio, adapter, prompts } = this.#ctx;
    if (!settings.consent_prompt) return this.#startCapture('not_required', 'consent_prompt is off');
    const consent = (this.#consent = this.#record('pending', null));
    consent.message = settings.consent_message;
    const fail = (reason: string) => {
      this.#set({ status: 'stopped' });
      this.#settle('failed', reason);
    };
    if (!canPlayAudio) return fail('the stream is one-way: the consent prompt cannot be played, so nothing is recorded');
    let prompt;
    try {
      prompt = await prompts.render(settings.consent_message, this.#ctx.format);
    } catch (err) {
      return fail(`the consent prompt could not be synthesized: ${(err as Error).message}`);
    }
    if (this.#state.status !== 'idle') return; // the call ended while synthesizing
    Object.assign(consent, { message_sha256: prompt.textSha256, engine: prompt.engine, voice: prompt.voice });
    const mark = `${PROMPT_MARK}-${Date.now().toString(36)}`;
    const markMessage = adapter.markMessage(mark);
    if (!markMessage) return fail('the provider cannot confirm playback, so the prompt cannot be known to have played');
    // 20 ms messages, as providers stream audio; sent at once: the provider queues and plays them in order.
    const frameBytes = (bytesPerSample(this.#ctx.format) * this.#ctx.format.sampleRate * FRAME_MS) / 1000;
    for (let offset = 0; offset < prompt.payload.length; offset += frameBytes) {
      this.#ctx.send(adapter.mediaMessage(prompt.payload.subarray(offset, offset + frameBytes)));
    }
    this.#ctx.send(markMessage);
    consent.prompt_started_ms = Math.round(this.#clockMs);
    const timer = setTimeout(() => {
      if (this.#state.status === 'prompting') fail(`the provider did not confirm the prompt played within ${Math.round(prompt.durationMs + MARK_GRACE_MS)} ms`);
    }, prompt.durationMs + MARK_GRACE_MS);
    timer.unref();
    this.#set({ status: 'prompting', mark, timer });
    await this.#saveConsent();
  }

  /** The provider played the whole prompt. */
  #promptPlayed(): void {
    const consent = this.#consent!;
    consent.prompt_ended_ms = Math.round(this.#clockMs);
    if (this.#ctx.settings.consent_mode === 'one_party') {
      this.#startCapture('announced', null);
      return;
    }
    const seconds = this.#ctx.settings.consent_timeout_seconds;
    const timer = setTimeout(() => {
      if (this.#state.status !== 'awaiting_digit') return;
      this.#set({ status: 'stopped' });
      this.#settle('timeout', `no digit within ${seconds} s`);
    }, seconds * 1000);
    timer.unref();
    this.#set({ status: 'awaiting_digit', timer });
  }

  /**
   * Captures from `startMs` (default: the current stream time) on. Synchronous, so the very next frame is recorded:
   * the spool file and the recording row are created in the background.
   */
  #startCapture(outcome: ConsentRecord['outcome'], reason: string | null, startMs = this.#clockMs): void {
    const { store, settings, format, tenantId, callId, log } = this.#ctx;
    const spoolPath = path.join(this.#ctx.dataDir, 'spool', `${randomUUID()}.wav`);
    const pool = this.#ctx.buffers;
    const spool = this.#ctx.spools.open(spoolPath, { sampleRate: format.sampleRate, channels: 2, pool });
    const capture = new Capture({ format, spool, bridged: this.#ctx.bridged, jitterMs: this.#ctx.jitterMs, startMs, pool });
    const recordingId = store.recordings
      .create({ tenantId, callId, format: settings.format, channels: settings.dual_channel ? 2 : 1, sampleRate: format.sampleRate, storageDays: settings.storage_days, status: 'recording', spoolPath, spoolUrl: this.#ctx.spools.url })
      .then((recording) => recording.id);
    recordingId.catch((err: Error) => log.error({ err: err.message }, 'could not create the recording'));
    this.#set({ status: 'recording', capture, recordingId });
    this.#settle(outcome, reason);
  }

  /** Closes the spool and hands the recording to the worker; returns what the recording became. */
  async #finalize(reason: string): Promise<ControlResult['recordingStatus']> {
    const s = this.#state;
    if (s.status !== 'recording' && s.status !== 'paused') return this.recordingStatus;
    this.#set({ status: 'stopped' });
    const { store } = this.#ctx;
    const frames = await s.capture.finish();
    this.#alignment = s.capture.alignment;
    const recordingId = await s.recordingId;
    // A spool that could not be shipped whole is this node's to finalize, from its file.
    const shared = s.capture.spool.shipped;
    if (!shared && this.#ctx.spools.url !== null) await store.recordings.update(recordingId, { spoolUrl: null });
    if (this.#pauses.length) await this.#savePauses();
    if (frames === 0) {
      await store.recordings.update(recordingId, { status: 'failed', error: 'no audio was captured' });
      return 'failed';
    }
    await store.recordings.update(recordingId, { status: 'processing' });
    await this.#ctx.enqueue({ tenantId: this.#ctx.tenantId, callId: this.#ctx.callId, recordingId }, shared);
    this.#ctx.log.info({ frames, reason }, 'recording queued');
    return 'processing';
  }
}
