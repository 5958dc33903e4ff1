import { performance } from 'node:perf_hooks';
import { decoderFor, encoderFor } from '../media/codec.js';
import { encodeRecording } from '../media/encoders/index.js';
import { LegBuffer } from '../media/leg-buffer.js';
import { interleave } from '../media/mix.js';
import type { RecordingFormat } from '../media/types.js';

export interface BenchResult {
  name: string;
  value: number;
  unit: string;
}

const RATE = 8000;
const SECONDS = 60;

/** A minute of 8 kHz stereo speech-band tones, handed out in 100 ms chunks as the spool reader would. */
function stereoSignal(): Int16Array[] {
  const chunkFrames = RATE / 10;
  const chunks: Int16Array[] = [];
  for (let start = 0; start < RATE * SECONDS; start += chunkFrames) {
    const chunk = new Int16Array(chunkFrames * 2);
    for (let i = 0; i < chunkFrames; i++) {
      const t = (start + i) / RATE;
      chunk[2 * i] = Math.round(8000 * Math.sin(2 * Math.PI * 440 * t) * Math.sin(Math.PI * t));
      chunk[2 * i + 1] = Math.round(8000 * Math.sin(2 * Math.PI * 1300 * t) * Math.cos(Math.PI * t));
    }
    chunks.push(chunk);
  }
  return chunks;
}

async function benchEncode(format: RecordingFormat, signal: Int16Array[]): Promise<BenchResult> {
  async function* chunks() {
    yield* signal;
  }
  const started = performance.now();
  let bytes = 0;
  for await (const { data } of encodeRecording(format, { sampleRate: RATE, channels: 2, chunks: chunks() })) bytes += data.length;
  const seconds = (performance.now() - started) / 1000;
  if (bytes === 0) throw new Error(`${format} encoder produced nothing`);
  return { name: `encode ${format} (8 kHz stereo)`, value: SECONDS / seconds, unit: '× real time' };
}

/** The capture frame path for one call: μ-law decode → LegBuffer.write per leg → read both → interleave. */
function benchFramePath(): BenchResult[] {
  const format = { codec: 'pcmu', sampleRate: RATE } as const;
  const decode = decoderFor(format);
  const frameSamples = RATE / 50;
  const payload = encoderFor(format)(Int16Array.from({ length: frameSamples }, (_, i) => Math.round(8000 * Math.sin(i / 3))));
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

/** Media performance suite: encoder speed per format on a minute of 8 kHz stereo, and capture frame-path throughput. */
export async function benchMedia(): Promise<BenchResult[]> {
  const signal = stereoSignal();
  const results: BenchResult[] = [];
  for (const format of ['wav', 'mp3', 'ogg'] as const) results.push(await benchEncode(format, signal));
  results.push(...benchFramePath());
  return results;
}
