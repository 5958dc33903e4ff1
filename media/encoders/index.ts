import { registerMp3Encoder } from '@mediabunny/mp3-encoder';
import {
  AudioSample,
  AudioSampleSource,
  EncodedAudioPacketSource,
  Mp3OutputFormat,
  OggOutputFormat,
  Output,
  Quality,
  StreamTarget,
  WavOutputFormat,
} from 'mediabunny';
import type { StreamTargetChunk } from 'mediabunny';
import { CallrecError } from '../../src/errors.js';
import type { RecordingFormat } from '../types.js';
import { addOpusPackets } from './opus.js';

/** Content types of finished recordings, by format. */
export const MIME_TYPES: Record<RecordingFormat, string> = {
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  ogg: 'audio/ogg',
};

/** Interleaved 16-bit PCM to encode. */
export interface PcmSource {
  sampleRate: number;
  channels: 1 | 2;
  /** Interleaved samples; each array must stay untouched until the next one is requested. */
  chunks: AsyncIterable<Int16Array>;
}

/** Bytes to write at `position` in the output file. Later chunks may overwrite earlier bytes (header patches). */
export interface EncodedChunk {
  position: number;
  data: Uint8Array;
}

/**
 * Samples of silence LAME puts before the audio at 8/16 kHz (as mpg123 decodes it). mediabunny
 * writes no LAME gapless tag, so players cannot trim it: MP3 recordings start this much late.
 */
export const MP3_ENCODER_DELAY_SAMPLES = 576;

/** MP3 bits per second per channel: 8 kHz is MPEG-2.5 and 16 kHz MPEG-2, both plenty for speech at these rates. */
const MP3_BITRATE_PER_CHANNEL: Record<number, number> = { 8000: 16_000, 16000: 24_000 };

let mp3EncoderRegistered = false;

async function addPcm(target: AudioSampleSource, source: PcmSource): Promise<void> {
  let frames = 0;
  for await (const chunk of source.chunks) {
    const sample = new AudioSample({
      data: chunk,
      format: 's16',
      numberOfChannels: source.channels,
      sampleRate: source.sampleRate,
      timestamp: frames / source.sampleRate,
    });
    frames += chunk.length / source.channels;
    try {
      await target.add(sample);
    } finally {
      sample.close();
    }
  }
}

async function produce(output: Output, format: RecordingFormat, source: PcmSource): Promise<void> {
  if (format === 'ogg') {
    const packets = new EncodedAudioPacketSource('opus');
    output.addAudioTrack(packets);
    await output.start();
    await addOpusPackets(packets, source.sampleRate, source.channels, source.chunks);
  } else {
    const samples = new AudioSampleSource(
      format === 'wav'
        ? { codec: 'pcm-s16' }
        : { codec: 'mp3', quality: new Quality({ bitrate: MP3_BITRATE_PER_CHANNEL[source.sampleRate] * source.channels }) },
    );
    output.addAudioTrack(samples);
    await output.start();
    await addPcm(samples, source);
  }
  await output.finalize();
}

function outputFormat(format: RecordingFormat) {
  switch (format) {
    case 'wav':
      return new WavOutputFormat();
    case 'mp3':
      if (!mp3EncoderRegistered) {
        // Node has no native MP3 encoder for mediabunny to prefer, so LAME (WASM) is always the one.
        registerMp3Encoder();
        mp3EncoderRegistered = true;
      }
      return new Mp3OutputFormat();
    case 'ogg':
      return new OggOutputFormat();
  }
}

/**
 * Encodes PCM into a recording file, yielding positioned writes as they are produced: containers
 * patch their headers at the end, so the consumer must write each chunk at its `position`.
 * Encoding advances only as fast as the consumer pulls, so memory stays bounded.
 * @throws CallrecError `ERR_UNSUPPORTED_RATE` (on first pull) unless the rate is 8000 or 16000 Hz.
 */
export async function* encodeRecording(format: RecordingFormat, source: PcmSource): AsyncGenerator<EncodedChunk> {
  // Bitrates (and the Opus frame size) are chosen for the two rates a call stream can have.
  if (source.sampleRate !== 8000 && source.sampleRate !== 16000) {
    throw new CallrecError('ERR_UNSUPPORTED_RATE', `cannot encode ${source.sampleRate} Hz audio; expected 8000 or 16000`);
  }
  let fail!: (reason: unknown) => void;
  // The TransformStream turns mediabunny's push-style target into a pull-style iterable, and carries
  // the consumer's pace back to the encoder as WritableStream backpressure.
  const pipe = new TransformStream<StreamTargetChunk, EncodedChunk>({
    start(controller) {
      fail = (reason) => controller.error(reason);
    },
    transform(chunk, controller) {
      controller.enqueue({ position: chunk.position, data: chunk.data });
    },
  });
  const output = new Output({ format: outputFormat(format), target: new StreamTarget(pipe.writable) });
  const production = produce(output, format, source).catch(async (error: unknown) => {
    fail(error);
    await output.cancel().catch(() => {});
  });
  try {
    yield* pipe.readable;
  } finally {
    await production;
  }
}
