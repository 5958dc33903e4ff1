import { NO_POOL, type BufferPool } from '../../media/buffer-pool.js';
import { decoderFor, samplesIn, type Decoder } from '../../media/codec.js';
import { LegBuffer } from '../../media/leg-buffer.js';
import { interleave } from '../../media/mix.js';
import { PlayoutQueue } from '../../media/playout-queue.js';
import type { Leg, MediaFormat } from '../../media/types.js';
import { LOST } from './lost-spans.js';
import type { SpoolWriter } from './spool.js';

/** How well the legs lined up; saved with the call (SPEC §3 "alignment figures"). */
export interface AlignmentReport {
  /** Silence filled where no frame arrived, per leg, in ms. */
  gapMs: Record<Leg, number>;
  framesPlaced: number;
  /** Frames that arrived out of order but within the jitter window, and were put in place. */
  framesLate: number;
  framesDuplicate: number;
  /** Frames too late for the jitter window, or implausibly far ahead of the stream clock or of the wall clock. */
  framesDropped: number;
  /** Of those, frames that would have run the recording more than `maxLeadMs` ahead of the wall clock. */
  framesAhead: number;
  /** Of those, frames that arrived after the jitter window had spooled their place. */
  framesTooLate: number;
  /** Largest distance between the two legs' newest audio, in ms (both legs from the provider only). */
  maxLegSkewMs: number;
  /** Bridge mode: runtime audio that never played (removed by `clear`, or still queued at hang-up), in ms. */
  agentAudioUnplayedMs: number;
}

export interface CaptureOptions {
  format: MediaFormat;
  spool: SpoolWriter;
  /** Whether the agent leg comes from a voice-agent runtime (bridge) rather than the provider. */
  bridged: boolean;
  /** How long a frame may arrive after later ones and still be put in place. */
  jitterMs?: number;
  /** Stream time (ms) at which capture starts; earlier frames are not recorded. */
  startMs?: number;
  /** A frame further ahead of the stream clock than this is taken for a broken timestamp and dropped. */
  maxJumpMs?: number;
  /**
   * How far the stream may run ahead of the wall clock since capture started, in ms (default: no
   * bound): a frame ending later than wall time plus this is dropped, so the recording is never
   * longer than the call. Audio held up by a network stall still fits when it arrives.
   */
  maxLeadMs?: number;
  /** Bridge mode: most runtime audio held ahead of the caller's playback, in ms. */
  maxQueuedMs?: number;
  /** Where the rings and work buffers come from; they go back when `finish` is done. */
  pool?: BufferPool;
}

const BLOCK = 1024;
const MAX_FRAME_MS = 200;

/**
 * Work memory all captures share: each use lies inside one synchronous `pushFrame` or drain, so
 * one set per process serves every call, where one set per call held 11 KiB per 8 kHz call
 * (19 KiB at 16 kHz) for nothing between frames.
 */
const work = {
  scratch: new Int16Array(0),
  left: new Int16Array(BLOCK),
  right: new Int16Array(BLOCK),
  stereo: new Int16Array(2 * BLOCK),
};

/** The shared scratch, grown to hold a frame of `samples`. */
function scratch(samples: number): Int16Array {
  if (work.scratch.length < samples) work.scratch = new Int16Array(samples);
  return work.scratch;
}

/**
 * One call's capture: decodes each leg's frames, places them by stream time in per-leg ring
 * buffers, and once the jitter window has passed writes the aligned legs to the spool as
 * stereo (left = caller, right = agent). Memory is fixed per call; nothing here allocates per frame.
 *
 * Both legs run on the provider stream's clock. In bridge mode the runtime's audio has no
 * timestamps: it is placed where the caller heard it, queued after the runtime's earlier audio
 * from the stream time at which it arrived (see `PlayoutQueue`).
 */
export class Capture {
  readonly sampleRate: number;
  readonly #spool: SpoolWriter;
  readonly #format: MediaFormat;
  readonly #decode: Decoder;
  readonly #legs: Record<Leg, LegBuffer>;
  readonly #playout: PlayoutQueue | null;
  readonly #jitter: number;
  readonly #maxJump: number;
  readonly #maxFrame: number;
  /** Largest step the clock takes at once, so released runtime audio always fits the agent ring. */
  readonly #step: number;
  /** Stream clock: end of the newest provider frame, in samples. */
  #clock: number;
  #flushed: number;
  readonly #start: number;
  /** Pauses, in stream samples; `to` is Infinity while the pause lasts. */
  readonly #pauses: Array<{ from: number; to: number; skip: boolean }> = [];
  /** Samples that skip-pauses have removed (closed pauses only). */
  #skipped = 0;
  /** Frames longer than MAX_FRAME_MS or implausibly far ahead of the clock. */
  #rejected = 0;
  /** Frames past `#wallBound`. */
  #ahead = 0;
  readonly #maxLead: number;
  /** performance.now() when capture started. */
  readonly #wallStart = performance.now();
  /**
   * Furthest sample a frame may end at: start + wall time elapsed + maxLead, as of the last time it
   * was computed. It only grows, so the wall clock is read only for a frame beyond it (once every
   * `maxLead` for a real-time stream), not per frame.
   */
  #wallBound: number;
  #maxSkew = 0;
  #unplayed = 0;
  #finished = false;
  readonly #writeAgent = (position: number, pcm: Int16Array): void => {
    this.#legs.agent.write(position, pcm);
  };

  constructor(opts: CaptureOptions) {
    this.sampleRate = opts.format.sampleRate;
    this.#spool = opts.spool;
    this.#format = opts.format;
    this.#decode = decoderFor(opts.format);
    const perMs = this.sampleRate / 1000;
    this.#jitter = Math.round((opts.jitterMs ?? 300) * perMs);
    this.#maxJump = Math.round((opts.maxJumpMs ?? 60_000) * perMs);
    this.#maxFrame = MAX_FRAME_MS * perMs;
    const start = Math.round((opts.startMs ?? 0) * perMs);
    const capacity = this.#jitter + 2 * this.#maxFrame + 2 * BLOCK;
    const pool = opts.pool ?? NO_POOL;
    this.#legs = { caller: new LegBuffer({ capacity, start, pool }), agent: new LegBuffer({ capacity, start, pool }) };
    this.#step = this.#legs.caller.capacity - this.#jitter - this.#maxFrame - BLOCK;
    scratch(this.#maxFrame);
    this.#playout = opts.bridged ? new PlayoutQueue({ maxQueuedSamples: (opts.maxQueuedMs ?? 120_000) * perMs }) : null;
    this.#clock = this.#flushed = this.#start = start;
    this.#maxLead = (opts.maxLeadMs ?? Infinity) * perMs;
    this.#wallBound = start + this.#maxLead;
  }

  /** A provider frame of one leg at its stream timestamp (ms). */
  pushFrame(leg: Leg, timestampMs: number, payload: Uint8Array): void {
    if (this.#finished) return;
    // Named loads, not `this.#legs[leg]`: a keyed load by two names is megamorphic in V8.
    const { caller, agent } = this.#legs;
    const buffer = leg === 'caller' ? caller : agent;
    const n = samplesIn(this.#format, payload.length);
    const position = Math.round((timestampMs * this.sampleRate) / 1000);
    if (position + n <= this.#start) return; // before capture started (e.g. during the consent prompt)
    if (n > this.#maxFrame || position + n - this.#clock > this.#maxJump) {
      this.#rejected++;
      return;
    }
    if (position + n > this.#wallBound && position + n > this.#updateWallBound()) {
      this.#ahead++;
      this.#lost(position, n, LOST.aheadOfWallClock);
      return;
    }
    if (position + n > this.#clock) this.#advance(position + n);
    if (buffer.writeEncoded(position, n, payload, this.#decode, work.scratch) === 'dropped')
      this.#lost(position, n, LOST.lateFrames);
    const other = buffer === caller ? agent : caller;
    if (!this.#playout && other.stats.framesPlaced > 0) {
      this.#maxSkew = Math.max(this.#maxSkew, Math.abs(buffer.highWater - other.highWater));
    }
  }

  /** Bridge mode: audio the runtime sent now; it plays after the runtime's earlier audio. */
  pushRuntimeAudio(payload: Uint8Array): void {
    if (!this.#playout || this.#finished) return;
    // The playout queue keeps the samples until the caller has heard them: its own copy.
    const pcm = new Int16Array(samplesIn(this.#format, payload.length));
    this.#decode(payload, pcm);
    try {
      this.#playout.push(this.#clock, pcm);
    } catch {
      this.#unplayed += pcm.length; // ERR_PLAYOUT_OVERFLOW: the runtime ran more than maxQueuedMs ahead
    }
  }

  /** Bridge mode: the runtime emptied the provider's playback queue; what was queued never plays. */
  clearRuntimeAudio(): void {
    if (this.#playout) this.#unplayed += this.#playout.clear(this.#clock);
  }

  /** The spool this capture writes to. */
  get spool(): SpoolWriter {
    return this.#spool;
  }

  /** Stream time now (end of the newest provider frame), ms. */
  get clockMs(): number {
    return (this.#clock * 1000) / this.sampleRate;
  }

  /**
   * Pauses from the current stream time: until `resume`, both legs are written as silence
   * (`skip` false: the recording keeps the call's duration) or left out (`skip` true).
   * Returns the pause's position in the recording, ms.
   */
  pause(skip: boolean): number {
    this.#pauses.push({ from: this.#clock, to: Infinity, skip });
    return ((this.#clock - this.#start - this.#skipped) * 1000) / this.sampleRate;
  }

  /**
   * Ends the pause at `atMs` of stream time: its clock, or later where the provider says the
   * stream was paused for longer than its audio shows (AudioHook). Returns where it ended, ms.
   */
  resume(atMs = this.clockMs): number {
    const pause = this.#pauses.at(-1);
    const at = Math.max(this.#clock, Math.round((atMs * this.sampleRate) / 1000));
    if (pause && pause.to === Infinity) {
      pause.to = at;
      if (pause.skip) this.#skipped += pause.to - pause.from;
    }
    return (at * 1000) / this.sampleRate;
  }

  /** `[fromMs, toMs)` of stream time will never arrive (the provider dropped it): a lost span, outside pauses. */
  markLost(fromMs: number, toMs: number, reason: string): void {
    this.#markLost(Math.round((fromMs * this.sampleRate) / 1000), Math.round((toMs * this.sampleRate) / 1000), reason);
  }

  /** Stream samples `[from, to)` as lost in the recording, unless a pause silenced or skipped them anyway. */
  #markLost(from: number, to: number, reason: string): void {
    if (to <= from || this.#pauses.some((p) => from < p.to && to > p.from)) return;
    const at = from - this.#start - this.#skipped;
    this.#spool.markLost(at, at + to - from, reason);
  }

  /** Writes everything that has left the jitter window to disk. */
  flush(): Promise<void> {
    if (!this.#finished) this.#drain(this.#clock - this.#jitter);
    return this.#spool.flush();
  }

  /** The call ended: writes out every placed sample, closes the spool, returns frames spooled. */
  async finish(): Promise<number> {
    if (!this.#finished) {
      this.#finished = true;
      this.#drain(this.#clock);
      if (this.#playout) this.#unplayed += this.#playout.clear(this.#clock);
      this.#release();
    }
    return this.#spool.close();
  }

  /** Every sample is in the spool now: the rings go back to the pool. */
  #release(): void {
    this.#legs.caller.release();
    this.#legs.agent.release();
  }

  get alignment(): AlignmentReport {
    const { caller, agent } = this.#legs;
    const ms = (samples: number) => Math.round((samples * 1000) / this.sampleRate);
    return {
      gapMs: { caller: ms(caller.stats.gapSamples), agent: ms(agent.stats.gapSamples) },
      framesPlaced: caller.stats.framesPlaced + agent.stats.framesPlaced,
      framesLate: caller.stats.framesLate + agent.stats.framesLate,
      framesDuplicate: caller.stats.framesDuplicate + agent.stats.framesDuplicate,
      framesDropped: caller.stats.framesDropped + agent.stats.framesDropped + this.#rejected + this.#ahead,
      framesAhead: this.#ahead,
      framesTooLate: caller.stats.framesDropped + agent.stats.framesDropped,
      maxLegSkewMs: ms(this.#maxSkew),
      agentAudioUnplayedMs: ms(this.#unplayed),
    };
  }

  /**
   * A frame dropped: too late for the jitter window (its place is in the spool already, as
   * silence) or ahead of the wall clock. Either way that stretch of the call is lost audio
   * (unless a pause silenced or skipped it anyway).
   */
  #lost(position: number, n: number, reason: string): void {
    this.#markLost(position, position + n, reason);
  }

  #updateWallBound(): number {
    this.#wallBound =
      this.#start + Math.floor((performance.now() - this.#wallStart) * (this.sampleRate / 1000)) + this.#maxLead;
    return this.#wallBound;
  }

  /** Moves the stream clock to `to`, releasing runtime audio the caller has now heard and spooling what left the jitter window. */
  #advance(to: number): void {
    while (this.#clock < to) {
      this.#clock = Math.min(to, this.#clock + this.#step);
      this.#playout?.release(this.#clock, this.#writeAgent);
      // Spooled a block at a time rather than a frame at a time: one read, interleave and
      // append per 1024 samples instead of per 160. The ring has room for the extra block.
      const horizon = this.#clock - this.#jitter;
      if (horizon - this.#flushed >= BLOCK) this.#drain(horizon);
    }
  }

  #drain(upTo: number): void {
    const { caller, agent } = this.#legs;
    while (this.#flushed < upTo) {
      const n = Math.min(BLOCK, upTo - this.#flushed);
      this.#flushed += n;
      caller.read(this.#flushed, work.left);
      agent.read(this.#flushed, work.right);
      interleave(work.left, work.right, work.stereo, n);
      const kept = this.#pauses.length ? this.#applyPauses(this.#flushed - n, n) : n;
      this.#spool.append(work.stereo, kept);
    }
  }

  /** Silences or removes the paused part of the stereo block at `from`; returns the frames kept. */
  #applyPauses(from: number, n: number): number {
    let kept = n;
    // Walk backwards so removing a span does not move the spans still to be handled.
    for (let i = this.#pauses.length - 1; i >= 0; i--) {
      const { from: p0, to: p1, skip } = this.#pauses[i];
      const a = Math.max(p0, from) - from;
      const b = Math.min(p1, from + n) - from;
      if (a >= b) continue;
      if (skip) {
        work.stereo.copyWithin(2 * a, 2 * b, 2 * kept);
        kept -= b - a;
      } else {
        work.stereo.fill(0, 2 * a, 2 * b);
      }
    }
    while (this.#pauses.length && this.#pauses[0].to <= from + n) this.#pauses.shift();
    return kept;
  }
}
