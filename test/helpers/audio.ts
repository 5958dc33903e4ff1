import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import opus from '@discordjs/opus';
import { MPEGDecoder } from 'mpg123-decoder';
import prism from 'prism-media';
import type { RecordingFormat } from '../../media/types.js';
import { readSpool, readSpoolInfo } from '../../src/recording/spool.js';

/** Decoded audio, one Float32Array (-1…1) per channel. */
export interface DecodedAudio {
  sampleRate: number;
  channels: Float32Array[];
}

// node-wav ships no types; this is the part of its API we use.
const wav = createRequire(import.meta.url)('node-wav') as {
  decode(buffer: Buffer): { sampleRate: number; channelData: Float32Array[] };
};

/** Opus decodes at 48 kHz whatever rate was encoded (the OpusHead input rate is informational only). */
const OPUS_RATE = 48_000;

/** Reads the channel mode of the first MPEG audio frame header (mode 3 = single channel). */
function isMonoMp3(buf: Uint8Array): boolean {
  for (let i = 0; i + 3 < buf.length; i++) {
    if (buf[i] === 0xff && (buf[i + 1] & 0xe0) === 0xe0) return buf[i + 3] >> 6 === 3;
  }
  throw new Error('no MPEG audio frame found');
}

async function decodeMp3(buf: Uint8Array): Promise<DecodedAudio> {
  const decoder = new MPEGDecoder();
  await decoder.ready;
  try {
    const { channelData, sampleRate, samplesDecoded, errors } = decoder.decode(buf);
    if (errors.length > 0) throw new Error(`MP3 decode errors: ${errors.map((e) => e.message).join('; ')}`);
    // mpg123 always outputs two channels; keep one for a mono stream.
    const channelCount = isMonoMp3(buf) ? 1 : channelData.length;
    return {
      sampleRate,
      channels: channelData.slice(0, channelCount).map((channel) => channel.subarray(0, samplesDecoded)),
    };
  } finally {
    decoder.free();
  }
}

/** Granule position (48 kHz samples, including pre-skip) of the last Ogg page: where the stream ends. */
function finalGranule(buf: Buffer): number {
  const last = buf.lastIndexOf('OggS');
  if (last < 0) throw new Error('no Ogg page found');
  return Number(buf.readBigInt64LE(last + 6));
}

async function decodeOggOpus(buf: Buffer): Promise<DecodedAudio> {
  const demuxer = new prism.opus.OggDemuxer();
  let head: Buffer | undefined;
  demuxer.on('head', (h: Buffer) => (head = h));
  const packets: Buffer[] = [];
  for await (const packet of Readable.from([buf]).pipe(demuxer)) packets.push(packet as Buffer);
  if (!head) throw new Error('no OpusHead');
  const channelCount = head[9];
  const preSkip = head.readUInt16LE(10);
  const decoder = new opus.OpusEncoder(OPUS_RATE, channelCount);
  const pcm = Buffer.concat(packets.map((packet) => decoder.decode(packet)));
  const interleaved = new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length / 2);
  // RFC 7845 §4.2: drop the pre-skip, and stop at the last granule position (end trimming).
  const frames = Math.min(finalGranule(buf), interleaved.length / channelCount) - preSkip;
  const channels = Array.from({ length: channelCount }, () => new Float32Array(frames));
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < channelCount; c++) channels[c][i] = interleaved[(i + preSkip) * channelCount + c] / 32768;
  }
  return { sampleRate: OPUS_RATE, channels };
}

/**
 * Decodes a finished recording for inspection: WAV with node-wav, MP3 with mpg123 (WASM),
 * Ogg/Opus with prism-media's demuxer and libopus. Ogg/Opus comes back at 48 kHz; the others at
 * their own rate.
 */
export async function decodeAudio(buf: Uint8Array, format: RecordingFormat): Promise<DecodedAudio> {
  const buffer = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  switch (format) {
    case 'wav': {
      const { sampleRate, channelData } = wav.decode(buffer);
      return { sampleRate, channels: channelData };
    }
    case 'mp3':
      return decodeMp3(buf);
    case 'ogg':
      return decodeOggOpus(buffer);
  }
}

/** A spool's interleaved samples, bit for bit, as the worker reads them (closed or not). */
export async function readSpoolPcm(file: string): Promise<Int16Array> {
  return collectPcm(readSpool(file, await readSpoolInfo(file)));
}

/** PCM chunks joined into one array. */
export async function collectPcm(chunks: AsyncIterable<Int16Array>): Promise<Int16Array> {
  const parts: Int16Array[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  const all = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

/** `frames` stereo frames from frame `from` on whose every sample says where it is (frame index, channel), so a misplaced byte shows. */
export function positionPattern(from: number, frames: number): Int16Array {
  const pcm = new Int16Array(frames * 2);
  for (let f = 0; f < frames; f++) {
    pcm[2 * f] = (from + f) % 30_000;
    pcm[2 * f + 1] = -((from + f) % 30_000);
  }
  return pcm;
}

/** Options for {@link findBursts}. */
export interface FindBurstsOptions {
  /** Analysis window (Hann). Longer separates nearby frequencies better. Default 10 ms (±200 Hz main lobe). */
  windowMs?: number;
  /** Weakest tone amplitude (full scale = 1) that counts as present. Default 0.02 (-34 dBFS). */
  minAmplitude?: number;
  /** Shorter bursts are ignored. Default 15 ms. */
  minDurationMs?: number;
}

/** A span where a tone is present: onset and offset in ms from the start of the signal. */
export interface Burst {
  startMs: number;
  endMs: number;
}

/**
 * Finds bursts of a `freqHz` tone in `samples`. The signal is demodulated at `freqHz` and
 * smoothed with a Hann window, giving the tone's amplitude around every sample regardless of
 * other frequencies in the mix. Bursts are found on a coarse grid; each edge is then placed
 * at the sample where the amplitude crosses half the burst's level: the window is symmetric,
 * so that is where the window's centre meets the tone's edge, i.e. the edge itself.
 */
export function findBursts(
  samples: Float32Array,
  sampleRate: number,
  freqHz: number,
  opts: FindBurstsOptions = {},
): Burst[] {
  const { windowMs = 10, minAmplitude = 0.02, minDurationMs = 15 } = opts;
  // An odd width puts the window's centre on a sample, so edges land on samples without bias.
  const half = Math.max(1, Math.round((windowMs * sampleRate) / 2000));
  const width = 2 * half + 1;
  const window = new Float32Array(width);
  let windowSum = 0;
  for (let n = 0; n < width; n++) windowSum += window[n] = 0.5 - 0.5 * Math.cos((2 * Math.PI * (n + 1)) / (width + 1));

  const omega = (2 * Math.PI * freqHz) / sampleRate;
  const inPhase = new Float32Array(samples.length);
  const quadrature = new Float32Array(samples.length);
  for (let m = 0; m < samples.length; m++) {
    inPhase[m] = samples[m] * Math.cos(omega * m);
    quadrature[m] = -samples[m] * Math.sin(omega * m);
  }
  /** Amplitude of the tone in the window centred on sample `centre`. */
  const amplitude = (centre: number): number => {
    let re = 0;
    let im = 0;
    const from = centre - half;
    for (let n = Math.max(0, -from); n < width && from + n < samples.length; n++) {
      re += window[n] * inPhase[from + n];
      im += window[n] * quadrature[from + n];
    }
    return (2 * Math.hypot(re, im)) / windowSum;
  };

  const hop = Math.max(1, width >> 2);
  const bursts: Burst[] = [];
  let centre = 0;
  while (centre < samples.length) {
    if (amplitude(centre) < minAmplitude) {
      centre += hop;
      continue;
    }
    const levels: number[] = [];
    let last = centre;
    for (; last < samples.length; last += hop) {
      const level = amplitude(last);
      if (level < minAmplitude) break;
      levels.push(level);
    }
    levels.sort((a, b) => a - b);
    const edge = levels[levels.length >> 1] / 2;
    // Half the burst's level may lie above or below `minAmplitude`, so the exact edges may sit on
    // either side of where the coarse scan crossed it.
    let start = Math.max(0, centre - hop);
    while (start < last && amplitude(start) < edge) start++;
    let end = last - hop;
    if (amplitude(end) >= edge) while (end < samples.length && amplitude(end) >= edge) end++;
    else while (end > start && amplitude(end - 1) < edge) end--;
    if (((end - start) * 1000) / sampleRate >= minDurationMs) {
      bursts.push({ startMs: (start * 1000) / sampleRate, endMs: (end * 1000) / sampleRate });
    }
    centre = Math.max(last, end) + hop;
  }
  return bursts;
}

/** A synthetic tone burst: channel, frequency, start and end (ms). A mono signal gets every burst. */
export type ToneBurst = readonly [channel: number, freqHz: number, startMs: number, endMs: number];

/** Interleaved 16-bit PCM of `seconds`, silent but for `tones` (each starting at zero phase). */
export function synthesizeTones(
  sampleRate: number,
  channels: 1 | 2,
  seconds: number,
  tones: readonly ToneBurst[],
): Int16Array {
  const pcm = new Int16Array(sampleRate * seconds * channels);
  for (const [channel, freq, startMs, endMs] of tones) {
    const from = (startMs * sampleRate) / 1000;
    for (let m = from; m < (endMs * sampleRate) / 1000; m++) {
      pcm[m * channels + Math.min(channel, channels - 1)] = Math.round(
        12000 * Math.sin((2 * Math.PI * freq * (m - from)) / sampleRate),
      );
    }
  }
  return pcm;
}

/** Three seconds of a call in tones: the caller (left, 1 kHz), the agent answering (right, 1.5 kHz), the caller again. */
export const CALL_TONES_SECONDS = 3;
export const CALL_TONES: readonly ToneBurst[] = [
  [0, 1000, 500, 900],
  [1, 1500, 1200, 1700],
  [0, 1000, 2000, 2500],
];
