import { AudioSample, type AudioSampleSource } from 'mediabunny';

/**
 * Adds interleaved 16-bit PCM chunks to `target` as mediabunny samples, each timed by the samples
 * before it, and yields after each one is in (so a caller can take the encoder's output as it
 * comes). Each chunk is released to its producer once the next one is pulled.
 */
export async function* addPcm(
  target: AudioSampleSource,
  sampleRate: number,
  channels: 1 | 2,
  chunks: AsyncIterable<Int16Array>,
): AsyncGenerator<void> {
  let frames = 0;
  for await (const chunk of chunks) {
    const sample = new AudioSample({
      data: chunk,
      format: 's16',
      numberOfChannels: channels,
      sampleRate,
      timestamp: frames / sampleRate,
    });
    frames += chunk.length / channels;
    try {
      await target.add(sample);
    } finally {
      sample.close();
    }
    yield;
  }
}
