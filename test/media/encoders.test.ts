import { encodeRecording, MIME_TYPES, MP3_ENCODER_DELAY_SAMPLES } from '../../media/encoders/index.js';
import type { EncodedChunk, PcmSource } from '../../media/encoders/index.js';
import type { RecordingFormat } from '../../media/types.js';
import { CALL_TONES, CALL_TONES_SECONDS, decodeAudio, findBursts, synthesizeTones } from '../helpers/audio.js';

const SECONDS = CALL_TONES_SECONDS;
const TONES = CALL_TONES;

/** Interleaved PCM with the TONES (a mono source gets all of them on its one channel). */
function synthesize(sampleRate: number, channels: 1 | 2): Int16Array {
  return synthesizeTones(sampleRate, channels, SECONDS, TONES);
}

/** Yields `pcm` in odd-sized chunks (1554 samples: whole frames for mono and stereo, not 20 ms aligned). */
async function* chunked(pcm: Int16Array, pulled?: { count: number }): AsyncGenerator<Int16Array> {
  for (let i = 0; i < pcm.length; i += 1554) {
    if (pulled) pulled.count++;
    yield pcm.slice(i, i + 1554);
  }
}

/** Applies positioned writes the way the worker does against a file. */
async function assemble(chunks: AsyncIterable<EncodedChunk>): Promise<Uint8Array> {
  let file = new Uint8Array(1 << 16);
  let size = 0;
  for await (const { position, data } of chunks) {
    const end = position + data.length;
    if (end > file.length) {
      const grown = new Uint8Array(Math.max(end, file.length * 2));
      grown.set(file);
      file = grown;
    }
    file.set(data, position);
    size = Math.max(size, end);
  }
  return file.subarray(0, size);
}

test('MIME types', () => {
  expect(MIME_TYPES).toEqual({ mp3: 'audio/mpeg', wav: 'audio/wav', ogg: 'audio/ogg' });
});

test('WAV is lossless: the decoded samples are the input', async () => {
  const pcm = synthesize(8000, 2);
  const file = await assemble(encodeRecording('wav', { sampleRate: 8000, channels: 2, chunks: chunked(pcm) }));
  expect(Buffer.from(file.subarray(0, 4)).toString('latin1')).toBe('RIFF');
  const { sampleRate, channels } = await decodeAudio(file, 'wav');
  expect(sampleRate).toBe(8000);
  expect(channels).toHaveLength(2);
  for (let i = 0; i < pcm.length; i++) {
    if (Math.round(channels[i % 2][i >> 1] * 32768) !== pcm[i]) throw new Error(`sample ${i} differs`);
  }
});

describe.each([
  ['wav', 8000, 2],
  ['wav', 16000, 1],
  ['mp3', 8000, 2], // MPEG-2.5
  ['mp3', 8000, 1],
  ['mp3', 16000, 2], // MPEG-2
  ['ogg', 8000, 2],
  ['ogg', 16000, 1],
] as const)('%s at %i Hz, %i channel(s)', (format: RecordingFormat, rate, channelCount) => {
  test('round-trips with the tones where they were, on their channel', async () => {
    const source: PcmSource = { sampleRate: rate, channels: channelCount, chunks: chunked(synthesize(rate, channelCount)) };
    const decoded = await decodeAudio(await assemble(encodeRecording(format, source)), format);
    expect(decoded.sampleRate).toBe(format === 'ogg' ? 48000 : rate);
    expect(decoded.channels).toHaveLength(channelCount);
    // LAME's leading delay is not signalled in the file (see MP3_ENCODER_DELAY_SAMPLES), so MP3 plays that much late.
    const delayMs = format === 'mp3' ? (MP3_ENCODER_DELAY_SAMPLES * 1000) / rate : 0;
    const durationMs = (decoded.channels[0].length * 1000) / decoded.sampleRate - delayMs;
    // MP3 also pads the end to whole 576-sample frames.
    const slackMs = format === 'mp3' ? (576 * 1000) / rate + 20 : 20;
    expect(durationMs).toBeGreaterThanOrEqual(SECONDS * 1000 - 20);
    expect(durationMs).toBeLessThanOrEqual(SECONDS * 1000 + slackMs);
    for (const freq of [1000, 1500]) {
      const expected = TONES.filter(([, f]) => f === freq);
      const channel = decoded.channels[Math.min(expected[0][0], channelCount - 1)];
      const bursts = findBursts(channel, decoded.sampleRate, freq);
      expect(bursts).toHaveLength(expected.length);
      bursts.forEach((burst, i) => {
        expect(Math.abs(burst.startMs - delayMs - expected[i][2])).toBeLessThan(1);
        expect(Math.abs(burst.endMs - delayMs - expected[i][3])).toBeLessThan(1.5);
      });
    }
    if (channelCount === 2) {
      // The caller's tone must not leak into the agent's channel, nor the agent's into the caller's.
      expect(findBursts(decoded.channels[1], decoded.sampleRate, 1000)).toEqual([]);
      expect(findBursts(decoded.channels[0], decoded.sampleRate, 1500)).toEqual([]);
    }
  });
});

test.each(['wav', 'mp3', 'ogg'] as const)('%s encoding pulls input only as fast as output is consumed', async (format) => {
  const pulled = { count: 0 };
  const pcm = new Int16Array(8000 * 2 * 60); // a minute of stereo: far more than any internal buffering
  const output = encodeRecording(format, { sampleRate: 8000, channels: 2, chunks: chunked(pcm, pulled) });
  const first = await output.next();
  expect(first.done).toBe(false);
  // One consumed write must not have drained the whole source (309 chunks) into memory.
  expect(pulled.count).toBeLessThan(100);
  await output.return(undefined);
});

test('a failing source fails the encoding with its error', async () => {
  async function* broken(): AsyncGenerator<Int16Array> {
    yield new Int16Array(1600);
    throw new Error('spool is corrupt');
  }
  await expect(assemble(encodeRecording('mp3', { sampleRate: 8000, channels: 2, chunks: broken() }))).rejects.toThrow('spool is corrupt');
});

test('a consumer that stops early stops reading the source', async () => {
  let finished = false;
  async function* endless(): AsyncGenerator<Int16Array> {
    try {
      for (;;) yield new Int16Array(1600);
    } finally {
      finished = true;
    }
  }
  for await (const chunk of encodeRecording('wav', { sampleRate: 8000, channels: 2, chunks: endless() })) {
    expect(chunk.data.length).toBeGreaterThan(0);
    break;
  }
  expect(finished).toBe(true);
});

test('only call-stream rates are accepted', async () => {
  const source: PcmSource = { sampleRate: 44100, channels: 1, chunks: chunked(new Int16Array(10)) };
  await expect(assemble(encodeRecording('ogg', source))).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_RATE' });
});
