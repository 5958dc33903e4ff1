import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { BufferPool } from '../../media/buffer-pool.js';
import type { Leg, MediaFormat } from '../../media/types.js';
import type { CallRecordingSettings } from '../agents/settings.js';
import type { ConsentGate, ConsentGateState } from '../consent/gate.js';
import type { StreamLimits } from '../config.js';
import { CallrecError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RecordingJobData } from '../queue/recordings.js';
import { Capture, type AlignmentReport } from '../recording/capture.js';
import type { SpoolOpener } from '../recording/shared-spool.js';
import type { Store } from '../store/index.js';
import { emitRecordingEvent, type WebhookContext } from '../webhooks/index.js';
import type { StreamClock } from './clock.js';
import type { ControlAction, ControlResult } from './control.js';
import { StateMachine, type Transitions } from './machine.js';

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
  /** Opens the call's spool: on this disk, and shipped to `SPOOL_URL` when set. */
  spools: SpoolOpener;
  /** `recording.audio_lost` goes out through it. */
  webhooks: WebhookContext;
  /** Queues the finalize job: on the shared queue when the spool is in object storage, else on this node's. */
  enqueue(job: RecordingJobData, shared: boolean): Promise<unknown>;
  jitterMs?: number;
  buffers: BufferPool;
  /** `audioLeadMs`: how far the recording may run ahead of the wall clock (STREAM_AUDIO_LEAD_SECONDS). */
  limits: Pick<StreamLimits, 'audioLeadMs'>;
  tenantId: string;
  callId: string;
  settings: CallRecordingSettings;
  format: MediaFormat;
  /** The agent leg comes from a runtime callrec relays (bridge mode). */
  bridged: boolean;
  /** Decides whether the call may be recorded; the recorder starts it and follows its outcome. */
  gate: ConsentGate;
  /** The call's stream clock; the recorder advances it with every provider frame. */
  clock: StreamClock;
}

type RecordingStatus = ControlResult['recordingStatus'];

/** A recording in progress: its capture, its row (created in the background) and its pauses so far. */
interface Take {
  capture: Capture;
  recordingId: Promise<string>;
  pauses: readonly PauseRecord[];
}

export type RecorderState =
  /** Not recording; a `start` action (or `begin`) may start. */
  | { status: 'idle' }
  /** The consent gate is deciding; the recorder follows its outcome. */
  | { status: 'consent' }
  | ({ status: 'recording' } & Take)
  | ({ status: 'paused' } & Take)
  /** Spool closing, recording row updating, job queueing. */
  | ({ status: 'finalizing'; reason: string; finished: Promise<RecordingStatus> } & Take)
  /** One recording per call: whatever happened, nothing more is recorded. */
  | {
      status: 'done';
      reason: string;
      result: RecordingStatus;
      alignment: AlignmentReport | null;
      pauses: readonly PauseRecord[];
    };

const TRANSITIONS: Transitions<RecorderState> = {
  idle: ['consent', 'recording', 'done'],
  consent: ['recording', 'done'],
  recording: ['paused', 'finalizing'],
  paused: ['recording', 'finalizing'],
  finalizing: ['done'],
  done: [],
};

/** Consent outcomes after which the call is recorded. */
const RECORDED: ReadonlySet<string> = new Set(['announced', 'agreed']);

/** Drives a call's recording from the stream's events and control actions; the session owns the sockets. */
export class CallRecorder extends StateMachine<RecorderState> {
  readonly #ctx: RecorderContext;
  /** Whether the spool's latest write failed, as last seen; the lost spans last saved; whether `recording.audio_lost` went out. */
  #failing = false;
  #lossesSaved = '';
  #announced = false;
  /** Who holds the recording paused: the control API, the provider's stream, or both. */
  #pausedByApi = false;
  #streamPaused = false;

  constructor(ctx: RecorderContext) {
    super({ status: 'idle' }, TRANSITIONS);
    this.#ctx = ctx;
    ctx.gate.on('stateChange', (_prev, next) => this.#onConsent(next));
  }

  get alignment(): AlignmentReport | null {
    const s = this.state;
    if (s.status === 'done') return s.alignment;
    return 'capture' in s ? s.capture.alignment : null;
  }

  get pauses(): readonly PauseRecord[] {
    const s = this.state;
    return 'pauses' in s ? s.pauses : [];
  }

  /** The provider says its stream is paused (no audio comes, and none is missing). */
  get streamPaused(): boolean {
    return this.#streamPaused;
  }

  get recordingStatus(): RecordingStatus {
    switch (this.state.status) {
      case 'idle':
      case 'done':
        return 'none';
      case 'consent':
        return 'consent';
      case 'finalizing':
        return 'processing';
      default:
        return this.state.status;
    }
  }

  // --- stream events (per frame: no allocation, no awaiting) ---

  frame(leg: Leg, timestampMs: number, payload: Uint8Array): void {
    this.#ctx.clock.advance(timestampMs, payload.length);
    const s = this.state;
    if (s.status === 'recording' || s.status === 'paused') s.capture.pushFrame(leg, timestampMs, payload);
  }

  runtimeAudio(payload: Uint8Array): void {
    const s = this.state;
    if (s.status === 'recording' || s.status === 'paused') s.capture.pushRuntimeAudio(payload);
  }

  runtimeClear(): void {
    const s = this.state;
    if (s.status === 'recording' || s.status === 'paused') s.capture.clearRuntimeAudio();
  }

  /** Flushes the spool (once a second), then saves and reports audio it lost since. */
  flush(): void {
    const s = this.state;
    if (s.status === 'recording' || s.status === 'paused') void s.capture.flush().then(() => this.#noteLosses(s));
  }

  // --- control ---

  /** As the call begins: records whole calls when the agent says so, else notes why not. */
  begin(): void {
    const { settings, gate } = this.#ctx;
    if (!settings.enabled) gate.notRequired('recording is disabled for this agent');
    else if (!settings.auto_record) gate.notRequired('not recorded unless started (auto_record is off)');
    // Without a prompt the whole call is recorded, from the stream's first sample.
    else this.#start(0);
  }

  /** A control action (API `POST /api/calls/{id}/recording`); rejects `ERR_CONFLICT` when impossible now. */
  async control(action: ControlAction): Promise<ControlResult> {
    const s = this.state;
    const conflict = (why: string) => new CallrecError('ERR_CONFLICT', `cannot ${action}: ${why}`);
    switch (action) {
      case 'start':
        if (!this.#ctx.settings.enabled) throw conflict('recording is disabled for this agent');
        if (s.status === 'done') throw conflict('this call was already recorded (one recording per call)');
        if (s.status !== 'idle') throw conflict('the call is already being recorded');
        this.#start(this.#ctx.clock.ms);
        return { recordingStatus: this.recordingStatus };
      case 'stop':
        if (s.status === 'consent') {
          this.state = { status: 'done', reason: 'recording stopped', result: 'none', alignment: null, pauses: [] };
          return { recordingStatus: 'none' };
        }
        if (s.status !== 'recording' && s.status !== 'paused') throw conflict('the call is not being recorded');
        return { recordingStatus: await this.#finalize(s, 'stopped') };
      case 'pause':
        if (s.status !== 'recording' && !(s.status === 'paused' && !this.#pausedByApi))
          throw conflict(`the recording is ${this.recordingStatus}`);
        this.#pausedByApi = true;
        if (s.status === 'recording') await this.#pause(s);
        return { recordingStatus: 'paused' };
      case 'resume':
        if (s.status !== 'paused' || !this.#pausedByApi)
          throw conflict(`the recording is ${this.recordingStatus}${s.status === 'paused' ? ' by the provider' : ''}`);
        this.#pausedByApi = false;
        // A stream the provider paused resumes the recording when it resumes, where its audio goes on.
        if (!this.#streamPaused) await this.#resume(s, s.capture.clockMs);
        return { recordingStatus: this.recordingStatus };
    }
  }

  /**
   * The provider paused its stream (AudioHook `paused`, on its own or asked by callrec): the
   * recording is paused while either the API or the provider holds it paused.
   */
  streamPause(): void {
    this.#streamPaused = true;
    const s = this.state;
    if (s.status === 'recording')
      this.#pause(s).catch((err: Error) => this.#ctx.log.warn({ err }, 'could not save a pause'));
  }

  /** The provider resumed its stream; its audio goes on from `atMs` of the call's clock. */
  streamResume(atMs: number): void {
    this.#streamPaused = false;
    const s = this.state;
    if (s.status === 'paused' && !this.#pausedByApi)
      this.#resume(s, atMs).catch((err: Error) => this.#ctx.log.warn({ err }, 'could not save a resume'));
  }

  /** `[fromMs, toMs)` of the call's clock will never arrive (the provider dropped it). */
  lost(fromMs: number, toMs: number, reason: string): void {
    const s = this.state;
    if (s.status === 'recording' || s.status === 'paused') s.capture.markLost(fromMs, toMs, reason);
  }

  #pause(s: Extract<RecorderState, { status: 'recording' }>): Promise<unknown> {
    const behavior = this.#ctx.settings.pause_behavior;
    const offset = s.capture.pause(behavior === 'skip');
    const pause = {
      paused_at_ms: Math.round(s.capture.clockMs),
      resumed_at_ms: null,
      behavior,
      recording_offset_ms: Math.round(offset),
    };
    const paused = { ...s, status: 'paused' as const, pauses: [...s.pauses, pause] };
    this.state = paused;
    return this.#saveTake(paused, 'paused');
  }

  #resume(s: Extract<RecorderState, { status: 'paused' }>, atMs: number): Promise<unknown> {
    const recording = { ...s, status: 'recording' as const, pauses: resumed(s, atMs) };
    this.state = recording;
    return this.#saveTake(recording, 'recording');
  }

  /** The call ended: consent in progress gives up, a recording is finalized and queued. Resolves once all is saved. */
  async finish(reason: string): Promise<void> {
    const s = this.state;
    if (s.status === 'idle' || s.status === 'consent')
      this.state = { status: 'done', reason: `call ended (${reason})`, result: 'none', alignment: null, pauses: [] };
    else if (s.status === 'recording' || s.status === 'paused') await this.#finalize(s, reason);
    else if (s.status === 'finalizing') await s.finished;
    await Promise.all([this.saved, this.#ctx.gate.saved]);
  }

  protected onTransition(prev: RecorderState, next: RecorderState): void {
    // The one place consent is given up: leaving it for anything but a recording.
    if (prev.status === 'consent' && next.status === 'done') this.#ctx.gate.cancel(next.reason);
  }

  // --- internals ---

  /**
   * Saves the spool's lost spans once they change (the recording is partial from then on), and
   * says so when its writes start failing: logged with the call (each failing stretch), counted
   * (see `SpoolMonitor`), and sent to the tenant's webhook as `recording.audio_lost` (the first
   * time). The call itself goes on.
   */
  #noteLosses(take: Take): void {
    // Once finalizing, `#complete` saves the spans itself: a late save here could land after the worker's.
    if (this.state.status !== 'recording' && this.state.status !== 'paused') return;
    const { spool } = take.capture;
    const failing = spool.failure !== null;
    if (failing !== this.#failing) {
      this.#failing = failing;
      if (failing)
        this.#ctx.log.error(
          { err: spool.failure, spool: spool.path },
          'spool write failed: the recording loses audio while the call goes on',
        );
      else this.#ctx.log.info({ spool: spool.path }, 'spool writes resumed; the gap is a lost span');
    }
    const last = spool.lostSpans.at(-1);
    const seen = last ? `${spool.lostSpans.length}:${last.start_ms}:${last.end_ms}` : '';
    if (seen === this.#lossesSaved) return;
    const announce = failing && !this.#announced;
    this.#lossesSaved = seen;
    this.#announced ||= announce;
    const error = spool.failure ? `spool write failed: ${spool.failure.message}` : null;
    const saved = this.persist(async () => {
      const recording = await this.#ctx.store.recordings.update(await take.recordingId, {
        complete: false,
        lostSpans: [...spool.lostSpans],
        ...(error ? { error } : {}),
      });
      if (announce && recording) await emitRecordingEvent(this.#ctx.webhooks, 'recording.audio_lost', recording);
    });
    saved.catch((err: Error) => this.#ctx.log.warn({ err }, 'could not save the audio the recording lost'));
  }

  /** Asks the gate for consent, or (no prompt) records from `startMs` on. */
  #start(startMs: number): void {
    const { settings, gate } = this.#ctx;
    if (!settings.consent_prompt) {
      gate.notRequired('consent_prompt is off');
      this.#capture(startMs);
      return;
    }
    this.state = { status: 'consent' };
    gate.prompt();
  }

  #onConsent(next: ConsentGateState): void {
    if (next.status !== 'settled' || this.state.status !== 'consent') return;
    const { outcome } = next.consent;
    if (RECORDED.has(outcome)) this.#capture(this.#ctx.clock.ms);
    else this.state = { status: 'done', reason: `consent ${outcome}`, result: 'none', alignment: null, pauses: [] };
  }

  /**
   * Captures from `startMs` on. Synchronous, so the very next frame is recorded: the spool
   * file and the recording row are created in the background.
   */
  #capture(startMs: number): void {
    const { store, settings, format, tenantId, callId, log, buffers: pool } = this.#ctx;
    const spoolPath = path.join(this.#ctx.dataDir, 'spool', `${randomUUID()}.wav`);
    const spool = this.#ctx.spools.open(spoolPath, { sampleRate: format.sampleRate, channels: 2, pool }, log);
    const capture = new Capture({
      format,
      spool,
      bridged: this.#ctx.bridged,
      jitterMs: this.#ctx.jitterMs,
      maxLeadMs: this.#ctx.limits.audioLeadMs,
      startMs,
      pool,
    });
    const recordingId = store.recordings
      .create({
        tenantId,
        callId,
        format: settings.format,
        channels: settings.dual_channel ? 2 : 1,
        sampleRate: format.sampleRate,
        storageDays: settings.storage_days,
        status: 'recording',
        spoolPath,
        spoolUrl: this.#ctx.spools.url,
      })
      .then((recording) => recording.id);
    recordingId.catch((err: Error) => log.error({ err }, 'could not create the recording'));
    this.state = { status: 'recording', capture, recordingId, pauses: [] };
  }

  /** Closes the spool and hands the recording to the worker; resolves to what the recording became. */
  #finalize(s: Extract<RecorderState, { status: 'recording' | 'paused' }>, reason: string): Promise<RecordingStatus> {
    const take: Take = {
      capture: s.capture,
      recordingId: s.recordingId,
      pauses: s.status === 'paused' ? resumed(s) : s.pauses,
    };
    const finished = this.#complete(take, reason);
    this.state = { status: 'finalizing', ...take, reason, finished };
    return finished;
  }

  async #complete(take: Take, reason: string): Promise<RecordingStatus> {
    const { store, tenantId, callId } = this.#ctx;
    let result: RecordingStatus = 'failed';
    try {
      const frames = await take.capture.finish();
      const recordingId = await take.recordingId;
      await this.saved;
      // A spool that could not be shipped whole is this node's to finalize, from its file.
      const shared = take.capture.spool.shipped;
      if (!shared && this.#ctx.spools.url !== null) await store.recordings.update(recordingId, { spoolUrl: null });
      if (take.pauses.length) await this.#savePauses(take.pauses);
      const { lostSpans, failure } = take.capture.spool;
      if (frames === 0) {
        await store.recordings.update(recordingId, {
          status: 'failed',
          error: failure ? `no audio could be spooled: ${failure.message}` : 'no audio was captured',
        });
        return result;
      }
      await store.recordings.update(recordingId, {
        status: 'processing',
        ...(lostSpans.length ? { complete: false, lostSpans: [...lostSpans] } : {}),
      });
      await this.#ctx.enqueue({ tenantId, callId, recordingId }, shared);
      this.#ctx.log.info({ frames, reason }, 'recording queued');
      return (result = 'processing');
    } finally {
      this.state = { status: 'done', reason, result, alignment: take.capture.alignment, pauses: take.pauses };
    }
  }

  /** Saves a pause or resume: the recording's status and the call's pauses, after earlier writes. */
  #saveTake(take: Take, status: 'paused' | 'recording'): Promise<unknown> {
    return this.persist(async () => {
      await this.#ctx.store.recordings.update(await take.recordingId, { status });
      await this.#savePauses(take.pauses);
    });
  }

  #savePauses(pauses: readonly PauseRecord[]): Promise<unknown> {
    return this.#ctx.store.calls.update(this.#ctx.tenantId, this.#ctx.callId, {
      pauses: pauses.map((p) => ({ ...p })),
    });
  }
}

/** Resumes a paused capture at `atMs` (its clock, or later); its pauses with the last one closed there. */
function resumed(s: Extract<RecorderState, { status: 'paused' }>, atMs = s.capture.clockMs): PauseRecord[] {
  const at = s.capture.resume(atMs);
  return [...s.pauses.slice(0, -1), { ...s.pauses.at(-1)!, resumed_at_ms: Math.round(at) }];
}
