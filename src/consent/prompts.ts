import { createHash } from 'node:crypto';
import { encoderFor } from '../../media/codec.js';
import { resample } from '../../media/resample.js';
import type { MediaFormat } from '../../media/types.js';
import { CallrecError } from '../errors.js';
import type { TtsEngine } from './tts/types.js';

/** A consent prompt ready to send: the whole of it, in the stream's wire format. */
export interface RenderedPrompt {
  /** Wire-encoded audio, a whole number of 20 ms frames. Shared between renders: do not modify. */
  payload: Buffer;
  durationMs: number;
  /** SHA-256 of the message text, lowercase hex (for the consent record). */
  textSha256: string;
  /** SHA-256 of `payload`, the audio exactly as played (for the consent record and the manifest). */
  audioSha256: string;
  engine: string;
  voice: string;
  /** False when this render was served from the cache (or shared another render's synthesis). */
  synthesized: boolean;
}

/** Samples quieter than this (about -54 dBFS) count as silence when trimming. */
const SILENCE_THRESHOLD = 64;
/** Silence kept before the first and after the last sound. */
const KEEP_SILENCE_MS = 100;
/**
 * Silence added after the kept tail, so the last syllable has fully played out before the
 * provider echoes the mark that starts the recording.
 */
const TAIL_PAD_MS = 100;
/** Providers stream in 20 ms frames; a prompt is padded to a whole number of them. */
const FRAME_MS = 20;

/**
 * Trims leading and trailing silence to {@link KEEP_SILENCE_MS} and pads the end with
 * {@link TAIL_PAD_MS} more, to a whole number of frames.
 */
function shapePrompt(pcm: Int16Array, sampleRate: number): Int16Array {
  let first = 0;
  while (first < pcm.length && Math.abs(pcm[first]) <= SILENCE_THRESHOLD) first++;
  if (first === pcm.length) throw new CallrecError('ERR_TTS', 'the TTS engine produced only silence');
  let last = pcm.length - 1;
  while (Math.abs(pcm[last]) <= SILENCE_THRESHOLD) last--;
  const keep = (KEEP_SILENCE_MS * sampleRate) / 1000;
  const start = Math.max(0, first - keep);
  const end = Math.min(pcm.length, last + 1 + keep);
  const frame = (FRAME_MS * sampleRate) / 1000;
  const length = Math.ceil((end - start + (TAIL_PAD_MS * sampleRate) / 1000) / frame) * frame;
  const out = new Int16Array(length); // zero-filled: the padding is silence
  out.set(pcm.subarray(start, end));
  return out;
}

const HOUR_MS = 3_600_000;

/**
 * Consent prompts, synthesized once per (text, voice, rate, wire encoding) and kept in a
 * bounded LRU. Renders of the same prompt in flight at once share one synthesis; a failed
 * synthesis is forgotten, so the next render tries again. Each tenant may have at most
 * `maxTextsPerTenantPerHour` distinct texts synthesized per hour: distinct messages per agent
 * would otherwise defeat the cache and keep the node synthesizing for one tenant.
 */
export class PromptCache {
  readonly #engine: TtsEngine;
  readonly #maxEntries: number;
  readonly #maxTextsPerTenant: number;
  /** Insertion order is recency order: a hit is moved to the end, the first entry is evicted. */
  readonly #entries = new Map<string, Promise<Omit<RenderedPrompt, 'synthesized'>>>();
  /** Tenant → the distinct texts synthesized for it in its current hour, and when that hour ends (performance.now). */
  readonly #tenantTexts = new Map<string, { texts: Set<string>; endsAt: number }>();

  /** `maxEntries` (default 64) bounds how many rendered prompts are kept; `maxTextsPerTenantPerHour` (default 20), what one tenant may have synthesized. */
  constructor(engine: TtsEngine, opts: { maxEntries?: number; maxTextsPerTenantPerHour?: number } = {}) {
    this.#engine = engine;
    this.#maxEntries = Math.max(1, opts.maxEntries ?? 64);
    this.#maxTextsPerTenant = opts.maxTextsPerTenantPerHour ?? 20;
  }

  /**
   * The prompt for `text`, wire-encoded in `format`, for `tenantId` (whose budget a synthesis
   * spends). Rejects with the engine's error (`ERR_TTS`, `ERR_TTS_BUSY`), or `ERR_PROMPT_LIMIT`.
   */
  async render(text: string, format: MediaFormat, tenantId?: string): Promise<RenderedPrompt> {
    const encoding = format.codec === 'l16' ? `l16${format.byteOrder ?? 'le'}` : format.codec;
    const key = `${this.#engine.voice}\n${format.sampleRate}\n${encoding}\n${text}`;
    let entry = this.#entries.get(key);
    const synthesized = entry === undefined;
    if (entry) {
      this.#entries.delete(key);
    } else {
      const refund = tenantId === undefined ? null : this.#spend(tenantId, text);
      const pending = this.#synthesize(text, format);
      entry = pending;
      pending.catch(() => {
        refund?.();
        if (this.#entries.get(key) === pending) this.#entries.delete(key);
      });
    }
    this.#entries.set(key, entry);
    if (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
    return { ...(await entry), synthesized };
  }

  /**
   * Counts `text` against the tenant's hour unless it was counted already (then null); returns
   * how to take it back if the synthesis fails. Throws `ERR_PROMPT_LIMIT` past the budget.
   */
  #spend(tenantId: string, text: string): (() => void) | null {
    const now = performance.now();
    let hour = this.#tenantTexts.get(tenantId);
    if (!hour || hour.endsAt <= now) {
      hour = { texts: new Set(), endsAt: now + HOUR_MS };
      this.#tenantTexts.set(tenantId, hour);
    }
    if (hour.texts.has(text)) return null;
    if (hour.texts.size >= this.#maxTextsPerTenant) {
      const minutes = Math.ceil((hour.endsAt - now) / 60_000);
      throw new CallrecError(
        'ERR_PROMPT_LIMIT',
        `the tenant had ${this.#maxTextsPerTenant} distinct consent prompts synthesized this hour (CONSENT_PROMPTS_PER_TENANT_PER_HOUR); a new one may be in ${minutes} min`,
      );
    }
    hour.texts.add(text);
    const texts = hour.texts;
    return () => texts.delete(text);
  }

  async #synthesize(text: string, format: MediaFormat): Promise<Omit<RenderedPrompt, 'synthesized'>> {
    const spoken = await this.#engine.synthesize(text, format.sampleRate);
    const pcm = shapePrompt(resample(spoken.pcm, spoken.sampleRate, format.sampleRate), format.sampleRate);
    const payload = encoderFor(format)(pcm);
    return {
      payload,
      durationMs: (pcm.length * 1000) / format.sampleRate,
      textSha256: createHash('sha256').update(text).digest('hex'),
      audioSha256: createHash('sha256').update(payload).digest('hex'),
      engine: this.#engine.name,
      voice: this.#engine.voice,
    };
  }
}
