import { encodeRecording, MIME_TYPES } from '../../media/encoders/index.js';
import type { EncodedChunk, PcmFile, PcmSource } from '../../media/types.js';
import type { RecordingFormat } from '../../media/types.js';
import {
  CALL_TONES,
  CALL_TONES_SECONDS,
  decodeAudio,
  findBursts,
  synthesizeTones,
  type ToneBurst,
} from '../helpers/audio.js';

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
    const source: PcmSource = {
      sampleRate: rate,
      channels: channelCount,
      chunks: chunked(synthesize(rate, channelCount)),
    };
    const decoded = await decodeAudio(await assemble(encodeRecording(format, source)), format);
    expect(decoded.sampleRate).toBe(format === 'ogg' ? 48000 : rate);
    expect(decoded.channels).toHaveLength(channelCount);
    // Every format says what to trim (MP3 in its LAME tag), so every one plays the input's length.
    const durationMs = (decoded.channels[0].length * 1000) / decoded.sampleRate;
    expect(durationMs).toBeGreaterThanOrEqual(SECONDS * 1000 - 20);
    expect(durationMs).toBeLessThanOrEqual(SECONDS * 1000 + 20);
    if (format === 'mp3') expect(decoded.channels[0].length).toBe(rate * SECONDS);
    for (const freq of [1000, 1500]) {
      const expected = TONES.filter(([, f]) => f === freq);
      const channel = decoded.channels[Math.min(expected[0][0], channelCount - 1)];
      const bursts = findBursts(channel, decoded.sampleRate, freq);
      expect(bursts).toHaveLength(expected.length);
      bursts.forEach((burst, i) => {
        expect(Math.abs(burst.startMs - expected[i][2])).toBeLessThan(1);
        expect(Math.abs(burst.endMs - expected[i][3])).toBeLessThan(1.5);
      });
    }
    if (channelCount === 2) {
      // The caller's tone must not leak into the agent's channel, nor the agent's into the caller's.
      expect(findBursts(decoded.channels[1], decoded.sampleRate, 1000)).toEqual([]);
      expect(findBursts(decoded.channels[0], decoded.sampleRate, 1500)).toEqual([]);
    }
  });
});

test.each(['wav', 'mp3', 'ogg'] as const)(
  '%s encoding pulls input only as fast as output is consumed',
  async (format) => {
    const pulled = { count: 0 };
    const pcm = new Int16Array(8000 * 2 * 60); // a minute of stereo: far more than any internal buffering
    const output = encodeRecording(format, { sampleRate: 8000, channels: 2, chunks: chunked(pcm, pulled) });
    const first = await output.next();
    expect(first.done).toBe(false);
    // One consumed write must not have drained the whole source (309 chunks) into memory.
    expect(pulled.count).toBeLessThan(100);
    await output.return(undefined);
  },
);

test('a failing source fails the encoding with its error', async () => {
  async function* broken(): AsyncGenerator<Int16Array> {
    yield new Int16Array(1600);
    throw new Error('spool is corrupt');
  }
  await expect(assemble(encodeRecording('mp3', { sampleRate: 8000, channels: 2, chunks: broken() }))).rejects.toThrow(
    'spool is corrupt',
  );
});

test('Ogg encodes that fail midway end their encoder threads, and the process lives on', async () => {
  // Stopping the Opus thread with terminate() while libopus was encoding aborted the whole
  // process (FATAL ERROR: napi_throw), within a few tries of this.
  for (let run = 0; run < 20; run++) {
    async function* failsMidway(): AsyncGenerator<Int16Array> {
      for (let i = 0; i < 5 + (run % 7); i++)
        yield Int16Array.from({ length: 16384 }, (_, j) => (j * 131 + run) & 0x3fff);
      throw new Error('spool is corrupt');
    }
    await expect(
      assemble(encodeRecording('ogg', { sampleRate: 8000, channels: 2, chunks: failsMidway() })),
    ).rejects.toThrow('spool is corrupt');
  }
  // And the next encode still works.
  expect(
    (await assemble(encodeRecording('ogg', { sampleRate: 8000, channels: 2, chunks: chunked(new Int16Array(16000)) })))
      .length,
  ).toBeGreaterThan(0);
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

describe.each([
  [8000, 2],
  [16000, 1],
] as const)('MP3 from a file in parallel parts, %i Hz, %i channel(s)', (rate, channelCount) => {
  // 95 s make three parts of 30 s or more, joined near 31.7 s and 63.4 s (frames 440 and 880).
  const seconds = 95;
  // Turns as in a call, several across a part boundary and the frames after it where the join may fall.
  const tones: ToneBurst[] = [
    [0, 1000, 10_000, 10_500],
    [0, 1000, 30_800, 32_200],
    [1, 1500, 32_400, 34_500],
    [0, 1000, 62_500, 63_600],
    [1, 1500, 63_800, 65_500],
    [1, 1500, 80_000, 80_600],
  ];
  /** The tones over faint noise, so that separately encoded parts cannot come out bit-identical. */
  function signal(): Int16Array {
    const pcm = synthesizeTones(rate, channelCount, seconds, tones);
    let seed = 1;
    for (let i = 0; i < pcm.length; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      pcm[i] += (seed >>> 24) - 128;
    }
    return pcm;
  }
  const pcm = signal();
  const file: PcmFile = {
    sampleRate: rate,
    channels: channelCount,
    frames: pcm.length / channelCount,
    async *read(start, end) {
      for (let f = start; f < end; f += 4000) yield pcm.slice(f * channelCount, Math.min(end, f + 4000) * channelCount);
    },
  };

  test('join into one stream that decodes like one encoder’s', async () => {
    const single = await assemble(encodeRecording('mp3', file));
    const parallel = await assemble(encodeRecording('mp3', file, { threads: 3 }));
    expect(parallel.length).toBe(single.length);
    expect(Buffer.compare(parallel, single)).not.toBe(0);
    const [one, parts] = [await decodeAudio(single, 'mp3'), await decodeAudio(parallel, 'mp3')];
    expect(parts.channels[0].length).toBe(pcm.length / channelCount);
    for (const [channel, freq] of [
      [0, 1000],
      [1, 1500],
    ] as const) {
      const expected = tones.filter(([c, f]) => f === freq && (c === channel || channelCount === 1));
      // LAME leaves faint tails (about -30 dBFS) after a hard tone stop, in one encoder's file as in parts'.
      const bursts = findBursts(parts.channels[Math.min(channel, channelCount - 1)], rate, freq, {
        minAmplitude: 0.05,
      });
      expect(bursts).toHaveLength(expected.length);
      bursts.forEach((burst, i) => {
        expect(Math.abs(burst.startMs - expected[i][2])).toBeLessThan(1);
        expect(Math.abs(burst.endMs - expected[i][3])).toBeLessThan(1.5);
      });
    }
    // A bad join clicks: its error against the input would stand out from the coding noise.
    const worstError = ({ channels }: { channels: Float32Array[] }) => {
      let worst = 0;
      for (let c = 0; c < channelCount; c++) {
        for (let i = 0; i < pcm.length / channelCount; i++)
          worst = Math.max(worst, Math.abs(channels[c][i] - pcm[i * channelCount + c] / 32768));
      }
      return worst;
    };
    expect(worstError(parts)).toBeLessThan(worstError(one) * 1.5);
  });
});

describe('MP3 parts', () => {
  /** Ten minutes of 8 kHz stereo silence as a file, counting chunks read and readers still open. */
  function tenMinutes(failAt?: number) {
    const stats = { pulled: 0, open: 0 };
    const file: PcmFile = {
      sampleRate: 8000,
      channels: 2,
      frames: 8000 * 600,
      async *read(start, end) {
        stats.open++;
        try {
          for (let f = start; f < end; f += 1600) {
            if (failAt !== undefined && f >= failAt) throw new Error('spool is corrupt');
            stats.pulled++;
            yield new Int16Array(Math.min(1600, end - f) * 2);
          }
        } finally {
          stats.open--;
        }
      },
    };
    return { file, stats };
  }

  test('read their ranges only as fast as output is consumed', async () => {
    const { file, stats } = tenMinutes();
    const output = encodeRecording('mp3', file, { threads: 2 });
    expect((await output.next()).done).toBe(false);
    expect(stats.open).toBe(2);
    // Give unchecked parts time to run on (LAME does a minute of audio in well under this).
    await new Promise((resolve) => setTimeout(resolve, 500));
    // 3000 chunks in all; each part may run a few writes ahead, not through its half.
    expect(stats.pulled).toBeLessThan(200);
    await output.return(undefined);
    expect(stats.open).toBe(0);
  });

  test('a part that fails fails the encoding with its error, and the others stop reading', async () => {
    const { file, stats } = tenMinutes(8000 * 400);
    await expect(assemble(encodeRecording('mp3', file, { threads: 2 }))).rejects.toThrow('spool is corrupt');
    expect(stats.open).toBe(0);
  });
});
