import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { decoderFor, encoderFor } from '../media/codec.js';
import { encodeRecording } from '../media/encoders/index.js';
import type { PcmFile } from '../media/types.js';
import { LegBuffer } from '../media/leg-buffer.js';
import { interleave } from '../media/mix.js';
import type { RecordingFormat } from '../media/types.js';

export interface BenchResult {
  name: string;
  value: number;
  unit: string;
}

const RATE = 8000;
/** Length of the signal each format is timed on, s. */
const SECONDS = 60;
/** The time-to-ready call's length, s: what parallel MP3 encoding is for. */
const LONG_CALL_SECONDS = 600;

/** `seconds` of 8 kHz stereo speech-band tones, interleaved. */
function stereoSignal(seconds: number): Int16Array {
  const pcm = new Int16Array(RATE * seconds * 2);
  for (let i = 0; i < RATE * seconds; i++) {
    const t = i / RATE;
    pcm[2 * i] = Math.round(8000 * Math.sin(2 * Math.PI * 440 * t) * Math.sin(Math.PI * t));
    pcm[2 * i + 1] = Math.round(8000 * Math.sin(2 * Math.PI * 1300 * t) * Math.cos(Math.PI * t));
  }
  return pcm;
}

/** `pcm` as a spool reads: chunks of 8192 frames from any frame, the event loop getting a turn before each as a file read gives it. */
function asFile(pcm: Int16Array): PcmFile {
  return {
    sampleRate: RATE,
    channels: 2,
    frames: pcm.length / 2,
    async *read(start, end) {
      for (let f = start; f < end; f += 8192) {
        await nextTurn();
        yield pcm.subarray(2 * f, 2 * Math.min(end, f + 8192));
      }
    },
  };
}

/** A 1 ms timer's tick that comes this late, ms, is a stall: the event loop was held. */
const STALL_MS = 2;

/**
 * Encodes `pcm`; returns its speed (× real time) and how the event loop fared meanwhile: the
 * stalls of a 1 ms timer, and the longest. An encode inside `callrec serve` holds up every live
 * call's media for as long.
 */
async function benchEncode(
  format: RecordingFormat,
  pcm: Int16Array,
  threads: number,
): Promise<{ speed: number; stalls: number; longestMs: number }> {
  let stalls = 0;
  let longestMs = 0;
  let tick = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    if (now - tick > STALL_MS) stalls++;
    longestMs = Math.max(longestMs, now - tick);
    tick = now;
  }, 1);
  const started = performance.now();
  let bytes = 0;
  try {
    for await (const { data } of encodeRecording(format, asFile(pcm), { threads })) bytes += data.length;
  } finally {
    clearInterval(timer);
  }
  const seconds = (performance.now() - started) / 1000;
  if (bytes === 0) throw new Error(`${format} encoder produced nothing`);
  return { speed: pcm.length / 2 / RATE / seconds, stalls, longestMs };
}

/** The capture frame path for one call: μ-law decode → LegBuffer.write per leg → read both → interleave. */
function benchFramePath(): BenchResult[] {
  const format = { codec: 'pcmu', sampleRate: RATE } as const;
  const decode = decoderFor(format);
  const frameSamples = RATE / 50;
  const payload = encoderFor(format)(
    Int16Array.from({ length: frameSamples }, (_, i) => Math.round(8000 * Math.sin(i / 3))),
  );
  const caller = new LegBuffer({ capacity: RATE * 2 });
  const agent = new LegBuffer({ capacity: RATE * 2 });
  const pcm = new Int16Array(frameSamples);
  const flushSamples = RATE / 10; // read both legs every 100 ms
  const left = new Int16Array(flushSamples);
  const right = new Int16Array(flushSamples);
  const stereo = new Int16Array(flushSamples * 2);
  const frames = 50 * 3600; // one hour of call

  const started = performance.now();
  for (let f = 0; f < frames; f++) {
    const position = f * frameSamples;
    decode(payload, pcm);
    caller.write(position, pcm);
    decode(payload, pcm);
    agent.write(position, pcm);
    const horizon = position + frameSamples;
    if (horizon - caller.flushed >= flushSamples) {
      const n = caller.read(horizon, left);
      agent.read(horizon, right);
      interleave(left, right, stereo, n);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  return [
    { name: 'frame path (decode+LegBuffer+interleave)', value: (2 * frames) / seconds, unit: 'frames/s' },
    { name: 'frame path (decode+LegBuffer+interleave)', value: 3600 / seconds, unit: '× real time per call' },
  ];
}

/**
 * Media performance suite: encoder speed per format on a minute of 8 kHz stereo (one encoder),
 * MP3 on a 10-minute call in as many parts as there are CPUs, how long each format's encode of
 * that call holds the event loop, and capture frame-path throughput.
 */
export async function benchMedia(): Promise<BenchResult[]> {
  const formats = ['wav', 'mp3', 'ogg'] as const;
  const minute = stereoSignal(SECONDS);
  const results: BenchResult[] = [];
  for (const format of formats) {
    results.push({
      name: `encode ${format} (8 kHz stereo)`,
      value: (await benchEncode(format, minute, 1)).speed,
      unit: '× real time',
    });
  }
  const threads = os.availableParallelism();
  const call = stereoSignal(LONG_CALL_SECONDS);
  const minutes = LONG_CALL_SECONDS / 60;
  for (const format of formats) {
    const { speed, stalls, longestMs } = await benchEncode(format, call, threads);
    if (format === 'mp3')
      results.push({ name: `encode mp3, ${minutes}-min call in ${threads} parts`, value: speed, unit: '× real time' });
    results.push({
      name: `event-loop stalls over ${STALL_MS} ms while a ${minutes}-min call encodes to ${format}`,
      value: stalls,
      unit: `(longest ${longestMs.toFixed(1)} ms)`,
    });
  }
  results.push(...benchFramePath());
  return results;
}
