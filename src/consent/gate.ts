import { bytesPerSample } from '../../media/codec.js';
import type { MediaFormat } from '../../media/types.js';
import type { CallRecordingSettings } from '../agents/settings.js';
import { StateMachine, type Transitions } from '../calls/machine.js';
import { CallrecError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/index.js';
import { RuntimeHold, type HeldMessage, type HoldLimits } from './hold.js';
import type { PromptCache, RenderedPrompt } from './prompts.js';

export type ConsentOutcome = 'announced' | 'agreed' | 'declined' | 'timeout' | 'not_required' | 'failed';

/** The consent record kept with every call (SPEC §5), stored and served as is. */
export interface ConsentRecord {
  mode: CallRecordingSettings['consent_mode'];
  outcome: 'pending' | ConsentOutcome;
  reason: string | null;
  message: string | null;
  message_sha256: string | null;
  /** SHA-256 of the prompt audio as sent into the call, in the stream's codec and rate (an adapter may resample it to a 24/48 kHz wire). */
  prompt_audio_sha256: string | null;
  engine: string | null;
  voice: string | null;
  /** Prompt start and end on the call's stream clock, ms. */
  prompt_started_ms: number | null;
  prompt_ended_ms: number | null;
  digit: string | null;
}

/** Prompt hashes this process has stored: most calls play a prompt already kept, and skip the write. Bounded. */
const KEPT_PROMPTS = new Set<string>();
const KEPT_PROMPTS_MAX = 1024;
function rememberKept(sha256: string): void {
  if (KEPT_PROMPTS.size >= KEPT_PROMPTS_MAX) KEPT_PROMPTS.delete(KEPT_PROMPTS.values().next().value!);
  KEPT_PROMPTS.add(sha256);
}

/** What the gate needs from the call's provider stream. */
export interface PromptPort {
  /** Whether the provider plays audio sent back on this stream. */
  readonly canPlayAudio: boolean;
  /** Sends one frame of prompt audio, wire-encoded. */
  sendAudio(frame: Buffer): void;
  /** How long each frame of the prompt is, ms: 20 unless the provider plays longer pieces best (Exotel). */
  readonly frameMs?: number;
  /** Sends a mark the provider echoes once playback reaches it; false where the provider has none. */
  sendMark(name: string): boolean;
  /** The stream clock: end of the newest provider frame, ms. */
  clockMs(): number;
  /** A runtime message the hold kept back, released to the caller (in order). */
  release(message: HeldMessage): void;
}

export interface ConsentGateOptions {
  store: Store;
  log: Logger;
  prompts: PromptCache;
  tenantId: string;
  callId: string;
  settings: CallRecordingSettings;
  format: MediaFormat;
  port: PromptPort;
  hold?: HoldLimits;
  /** How long after the prompt should have finished its mark may take to come back (default 10 s). */
  markGraceMs?: number;
  /** Where each settled outcome is counted (a media node's `/metrics`). */
  metrics?: { consentOutcomes: { inc(labels: { outcome: ConsentOutcome }): void } };
}

/** Mark names callrec uses for its own prompts; the provider's echo of them is not relayed. */
export const PROMPT_MARK = 'callrec-consent';
const DEFAULT_FRAME_MS = 20;

/**
 * The consent gate's states. Each state that holds the runtime back carries the hold; `settled`
 * carries the final record, and entering it saves the record.
 */
export type ConsentGateState =
  /** Nothing asked of the gate yet. */
  | { status: 'idle' }
  /** The prompt is being rendered (cold cache: synthesized). The runtime is already held. */
  | { status: 'synthesizing'; consent: ConsentRecord; hold: RuntimeHold }
  /** Prompt and mark sent; waiting for the provider to echo the mark. */
  | { status: 'playing'; consent: ConsentRecord; hold: RuntimeHold; mark: string; timer: NodeJS.Timeout }
  /** Two-party: the prompt played; waiting for the caller's digit. */
  | { status: 'awaiting_digit'; consent: ConsentRecord; hold: RuntimeHold; timer: NodeJS.Timeout }
  | { status: 'settled'; consent: ConsentRecord & { outcome: ConsentOutcome } };

const TRANSITIONS: Transitions<ConsentGateState> = {
  idle: ['synthesizing', 'settled'],
  synthesizing: ['playing', 'settled'],
  playing: ['awaiting_digit', 'settled'],
  awaiting_digit: ['settled'],
  // Only from `not_required` (auto_record off), when a `start` action asks for a recording after all.
  settled: ['synthesizing', 'settled'],
};

/**
 * Decides whether a call may be recorded (SPEC §5): plays the consent prompt into the call,
 * waits for the provider to confirm it played and, two-party, for the caller's digit. While it
 * decides, it holds the voice-agent runtime's messages back, so the caller hears the prompt
 * (and answers it) before the agent; a failed prompt releases them and the call goes on.
 */
export class ConsentGate extends StateMachine<ConsentGateState> {
  readonly #opts: ConsentGateOptions;

  constructor(opts: ConsentGateOptions) {
    super({ status: 'idle' }, TRANSITIONS);
    this.#opts = opts;
  }

  /** The consent record as it stands; null until the gate was asked anything. */
  get record(): ConsentRecord | null {
    return this.state.status === 'idle' ? null : this.state.consent;
  }

  /** Whether runtime messages must wait now. */
  get holding(): boolean {
    return 'hold' in this.state;
  }

  /** Keeps a runtime message back if the gate is holding; false when it may go to the caller now. */
  hold(message: HeldMessage): boolean {
    const s = this.state;
    if (!('hold' in s)) return false;
    s.hold.push(message);
    return true;
  }

  /** No prompt is due: records `not_required` with why. */
  notRequired(reason: string): void {
    this.#assertCanBegin('record not_required');
    this.#settle('not_required', reason);
  }

  /** Plays the prompt: holds the runtime at once, then renders, sends and awaits its mark. */
  prompt(): void {
    this.#assertCanBegin('prompt');
    const { settings, port } = this.#opts;
    const consent = this.#record('pending', null);
    consent.message = settings.consent_message;
    if (!port.canPlayAudio) {
      this.state = {
        status: 'settled',
        consent: {
          ...consent,
          outcome: 'failed',
          reason: 'the stream is one-way: the consent prompt cannot be played, so nothing is recorded',
        },
      };
      return;
    }
    const state: ConsentGateState = { status: 'synthesizing', consent, hold: new RuntimeHold(this.#opts.hold) };
    this.state = state;
    this.#opts.prompts.render(settings.consent_message, this.#opts.format, this.#opts.tenantId).then(
      (prompt) => {
        if (this.state === state) this.#play(state, prompt);
      },
      (err: Error) => {
        if (this.state === state) this.#settle('failed', `the consent prompt could not be synthesized: ${err.message}`);
      },
    );
  }

  /** A mark came back from the provider; true when it was callrec's own (not to be relayed). */
  mark(name: string): boolean {
    if (!name.startsWith(PROMPT_MARK)) return false;
    const s = this.state;
    if (s.status === 'playing' && s.mark === name) this.#played(s);
    return true;
  }

  /** A digit the caller pressed; it answers the prompt only while the gate awaits one. */
  dtmf(digit: string): void {
    const s = this.state;
    if (s.status !== 'awaiting_digit') return;
    const expected = this.#opts.settings.consent_digit;
    const consent = { ...s.consent, digit };
    if (digit === expected)
      this.state = { status: 'settled', consent: { ...consent, outcome: 'agreed', reason: null } };
    else
      this.state = {
        status: 'settled',
        consent: { ...consent, outcome: 'declined', reason: `caller pressed ${digit}, not ${expected}` },
      };
  }

  /** Gives up before the gate decided (`why`: "call ended (…)", "recording stopped"); settled stays as is. */
  cancel(why: string): void {
    switch (this.state.status) {
      case 'idle':
      case 'settled':
        return;
      case 'awaiting_digit':
        this.#settle('timeout', `${why} before the caller pressed a digit`);
        return;
      default:
        this.#settle('failed', `${why} before the prompt finished playing`);
    }
  }

  protected onTransition(prev: ConsentGateState, next: ConsentGateState): void {
    if ((prev.status === 'playing' || prev.status === 'awaiting_digit') && prev !== next) clearTimeout(prev.timer);
    if ('hold' in prev && !('hold' in next)) this.#release(prev.hold);
    if (next.status === 'playing' || next.status === 'settled') this.#save(next.consent);
    if (next.status === 'settled') {
      this.#opts.log.info({ outcome: next.consent.outcome, reason: next.consent.reason }, 'consent');
      this.#opts.metrics?.consentOutcomes.inc({ outcome: next.consent.outcome });
    }
  }

  #assertCanBegin(what: string): void {
    const s = this.state;
    if (s.status === 'idle' || (s.status === 'settled' && s.consent.outcome === 'not_required')) return;
    throw new CallrecError(
      'ERR_ILLEGAL_TRANSITION',
      `ConsentGate: cannot ${what} once consent is ${s.status === 'settled' ? s.consent.outcome : s.status}`,
    );
  }

  /** Sends the prompt in 20 ms messages (or the port's `frameMs`), as providers stream audio, all at once (the provider queues them), then its mark. */
  #play(state: Extract<ConsentGateState, { status: 'synthesizing' }>, prompt: RenderedPrompt): void {
    const { port, format } = this.#opts;
    const consent = {
      ...state.consent,
      message_sha256: prompt.textSha256,
      prompt_audio_sha256: prompt.audioSha256,
      engine: prompt.engine,
      voice: prompt.voice,
    };
    const frameBytes = (bytesPerSample(format) * format.sampleRate * (port.frameMs ?? DEFAULT_FRAME_MS)) / 1000;
    for (let offset = 0; offset < prompt.payload.length; offset += frameBytes)
      port.sendAudio(prompt.payload.subarray(offset, offset + frameBytes));
    const mark = `${PROMPT_MARK}-${Date.now().toString(36)}`;
    if (!port.sendMark(mark)) {
      this.state = {
        status: 'settled',
        consent: {
          ...consent,
          outcome: 'failed',
          reason: 'the provider cannot confirm playback, so the prompt cannot be known to have played',
        },
      };
      return;
    }
    consent.prompt_started_ms = Math.round(port.clockMs());
    this.#keepPromptAudio(prompt);
    const limitMs = Math.round(prompt.durationMs + (this.#opts.markGraceMs ?? 10_000));
    const timer = setTimeout(
      () => this.#settle('failed', `the provider did not confirm the prompt played within ${limitMs} ms`),
      limitMs,
    );
    timer.unref();
    this.state = { status: 'playing', consent, hold: state.hold, mark, timer };
  }

  /** The provider played the whole prompt. */
  #played(state: Extract<ConsentGateState, { status: 'playing' }>): void {
    const consent = { ...state.consent, prompt_ended_ms: Math.round(this.#opts.port.clockMs()) };
    const { consent_mode, consent_timeout_seconds: seconds } = this.#opts.settings;
    if (consent_mode === 'one_party') {
      this.state = { status: 'settled', consent: { ...consent, outcome: 'announced', reason: null } };
      return;
    }
    const timer = setTimeout(() => this.#settle('timeout', `no digit within ${seconds} s`), seconds * 1000);
    timer.unref();
    this.state = { status: 'awaiting_digit', consent, hold: state.hold, timer };
  }

  #settle(outcome: ConsentOutcome, reason: string | null): void {
    const base = this.record ?? this.#record(outcome, reason);
    this.state = { status: 'settled', consent: { ...base, outcome, reason } };
  }

  #record(outcome: ConsentRecord['outcome'], reason: string | null): ConsentRecord {
    const { settings } = this.#opts;
    return {
      mode: settings.consent_mode,
      outcome,
      reason,
      message: null,
      message_sha256: null,
      prompt_audio_sha256: null,
      engine: null,
      voice: null,
      prompt_started_ms: null,
      prompt_ended_ms: null,
      digit: null,
    };
  }

  /** What the runtime sent meanwhile goes to the caller now, in order. */
  #release(hold: RuntimeHold): void {
    if (hold.dropped)
      this.#opts.log.warn(
        { dropped: hold.dropped },
        'runtime messages dropped: more than the hold keeps arrived during consent',
      );
    for (const message of hold.messages) this.#opts.port.release(message);
  }

  /**
   * The prompt's audio as played goes to the database under the hash the consent record (and so
   * the manifest) names, for the evidence package. Not on the call's path: a failure is logged.
   */
  #keepPromptAudio(prompt: RenderedPrompt): void {
    const { store, format, log } = this.#opts;
    if (KEPT_PROMPTS.has(prompt.audioSha256)) return;
    const wire = `${format.codec === 'l16' ? `l16${format.byteOrder ?? 'le'}` : format.codec}/${format.sampleRate}`;
    store.evidence.keepPromptAudio(prompt.audioSha256, wire, prompt.payload).then(
      () => rememberKept(prompt.audioSha256),
      (err: Error) => log.warn({ err }, 'could not keep the consent prompt audio for evidence'),
    );
  }

  #save(consent: ConsentRecord): void {
    const { store, tenantId, callId, log } = this.#opts;
    this.persist(() => store.calls.update(tenantId, callId, { consent: { ...consent } })).catch((err: Error) =>
      log.error({ err }, 'could not save the consent record'),
    );
  }
}
