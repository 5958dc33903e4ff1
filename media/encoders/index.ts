import {
  AudioSampleSource,
  EncodedAudioPacketSource,
  OggOutputFormat,
  Output,
  StreamTarget,
  WavOutputFormat,
} from 'mediabunny';
import type { StreamTargetChunk } from 'mediabunny';
import { MediaError } from '../errors.js';
import type { EncodedChunk, PcmSource, RecordingFormat } from '../types.js';
import { encodeMp3 } from './mp3.js';
import { addOpusPackets } from './opus.js';
import { addPcm } from './pcm-samples.js';

/** Content types of finished recordings, by format. */
export const MIME_TYPES: Record<RecordingFormat, string> = {
  mp3: 'audio/mpeg',
  wav: 'audio/wav',
  ogg: 'audio/ogg',
};

export interface EncodeOptions {
  /** Encoders to run at once where a format can split the work (MP3 from a file); default 1. */
  threads?: number;
}

/** Muxes WAV or Ogg/Opus with mediabunny (MP3 has its own path, {@link encodeMp3}). */
async function produce(output: Output, format: 'wav' | 'ogg', source: PcmSource): Promise<void> {
  const chunks = 'chunks' in source ? source.chunks : source.read(0, source.frames);
  if (format === 'ogg') {
    const packets = new EncodedAudioPacketSource('opus');
    output.addAudioTrack(packets);
    await output.start();
    await addOpusPackets(packets, source.sampleRate, source.channels, chunks);
  } else {
    const samples = new AudioSampleSource({ codec: 'pcm-s16' });
    output.addAudioTrack(samples);
    await output.start();
    for await (const _ of addPcm(samples, source.sampleRate, source.channels, chunks));
  }
  await output.finalize();
}

/**
 * Encodes PCM into a recording file, yielding positioned writes as they are produced: containers
 * patch their headers at the end, so the consumer must write each chunk at its `position`.
 * Encoding advances only as fast as the consumer pulls, so memory stays bounded.
 * @throws MediaError `ERR_UNSUPPORTED_RATE` (on first pull) unless the rate is 8000 or 16000 Hz;
 * for MP3 in parallel, `ERR_MP3_JOIN` when the parts could not be joined seamlessly (rare: encode
 * again with `threads` 1).
 */
export async function* encodeRecording(
  format: RecordingFormat,
  source: PcmSource,
  opts: EncodeOptions = {},
): AsyncGenerator<EncodedChunk> {
  // Bitrates (and the Opus frame size) are chosen for the two rates a call stream can have.
  if (source.sampleRate !== 8000 && source.sampleRate !== 16000) {
    throw new MediaError('ERR_UNSUPPORTED_RATE', `cannot encode ${source.sampleRate} Hz audio; expected 8000 or 16000`);
  }
  if (format === 'mp3') {
    yield* encodeMp3(source, opts.threads ?? 1);
    return;
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
  const output = new Output({
    format: format === 'wav' ? new WavOutputFormat() : new OggOutputFormat(),
    target: new StreamTarget(pipe.writable),
  });
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
