import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { encodeRecording } from '../../media/encoders/index.js';
import type { RecordingFormat } from '../../media/types.js';
import { transcode } from '../../src/recording/transcode.js';
import { CALL_TONES, CALL_TONES_SECONDS, decodeAudio, findBursts, synthesizeTones } from '../helpers/audio.js';

const SECONDS = CALL_TONES_SECONDS;
const TONES = CALL_TONES;

function synthesize(sampleRate: number, channels: 1 | 2, seconds = SECONDS): Int16Array {
  return synthesizeTones(sampleRate, channels, seconds, TONES);
}

/** `seconds` of the tones, repeated every SECONDS, in one-second chunks: never all in memory at once. */
async function* tones(sampleRate: number, channels: 1 | 2, seconds: number): AsyncGenerator<Int16Array> {
  const period = synthesize(sampleRate, channels);
  for (let s = 0; s < seconds; s++)
    yield period.slice(((s % SECONDS) * period.length) / SECONDS, (((s % SECONDS) + 1) * period.length) / SECONDS);
}

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-transcode-'));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

let files = 0;
/** Encodes into a file the way the recording worker does, returning its path. */
async function encodeFile(
  format: RecordingFormat,
  sampleRate: number,
  channels: 1 | 2,
  chunks: AsyncIterable<Int16Array>,
): Promise<string> {
  const file = path.join(dir, `source-${files++}.${format}`);
  const out = await fs.open(file, 'w');
  try {
    for await (const { position, data } of encodeRecording(format, { sampleRate, channels, chunks }))
      await out.write(data, 0, data.length, position);
  } finally {
    await out.close();
  }
  return file;
}

/** Transcodes into a plain file (the server's sink is an encrypted one, tested with the cache). */
async function transcodeToFile(
  from: RecordingFormat,
  bytes: AsyncIterable<Uint8Array>,
  to: RecordingFormat,
  file: string,
): Promise<{ size: number }> {
  const out = await fs.open(file, 'w');
  let size = 0;
  try {
    await transcode(from, bytes, to, {
      async write(data, position) {
        await out.write(data, 0, data.length, position);
        size = Math.max(size, position + data.length);
      },
    });
  } finally {
    await out.close();
  }
  return { size };
}

/** The OpusHead input sample rate: decodeAudio reports 48 kHz for any Ogg/Opus. */
function opusInputRate(file: Buffer): number {
  return file.readUInt32LE(file.indexOf('OpusHead') + 12);
}

const FORMATS = ['wav', 'mp3', 'ogg'] as const;
const PAIRS = FORMATS.flatMap((from) => FORMATS.map((to) => [from, to] as const));

describe.each([
  [8000, 2],
  [16000, 1],
] as const)('%i Hz, %i channel(s)', (rate, channelCount) => {
  test.each(PAIRS)('%s → %s keeps duration, rate, channels and timing', async (from, to) => {
    const source = await encodeFile(from, rate, channelCount, tones(rate, channelCount, SECONDS));
    const target = path.join(dir, `${path.basename(source)}-to.${to}`);
    // Small read chunks split every header and frame somewhere.
    const { size } = await transcodeToFile(from, createReadStream(source, { highWaterMark: 1000 }), to, target);
    expect((await fs.stat(target)).size).toBe(size);

    const file = await fs.readFile(target);
    const decoded = await decodeAudio(file, to);
    expect(to === 'ogg' ? opusInputRate(file) : decoded.sampleRate).toBe(rate);
    expect(decoded.channels).toHaveLength(channelCount);
    // Every format says what to trim (MP3 in its LAME tag), so the length survives any chain.
    const durationMs = (decoded.channels[0].length * 1000) / decoded.sampleRate;
    expect(durationMs).toBeGreaterThanOrEqual(SECONDS * 1000 - 30);
    expect(durationMs).toBeLessThanOrEqual(SECONDS * 1000 + 30);

    const toleranceMs = from === 'wav' && to === 'wav' ? 1.5 : 5;
    for (const freq of [1000, 1500]) {
      const expected = TONES.filter(([, f]) => f === freq);
      const bursts = findBursts(decoded.channels[Math.min(expected[0][0], channelCount - 1)], decoded.sampleRate, freq);
      expect(bursts).toHaveLength(expected.length);
      bursts.forEach((burst, i) => {
        expect(Math.abs(burst.startMs - expected[i][2])).toBeLessThan(toleranceMs);
        expect(Math.abs(burst.endMs - expected[i][3])).toBeLessThan(toleranceMs);
      });
    }
    if (channelCount === 2) {
      expect(findBursts(decoded.channels[1], decoded.sampleRate, 1000)).toEqual([]);
      expect(findBursts(decoded.channels[0], decoded.sampleRate, 1500)).toEqual([]);
    }
  });
});

describe('a 10-minute 8 kHz stereo recording', () => {
  // Its PCM is 600 s × 8000 × 2 channels × 2 bytes = 19.2 MB. Live memory is measured after a full
  // GC at every 8th input chunk (512 KiB), so garbage not yet collected does not count. (Not at every
  // chunk: a full GC takes longer the larger the jest worker's heap has grown on earlier suites.) Holding the decoded
  // audio, or a WAV input or output (each 19.2 MB), exceeds the bound; what stays under it is the
  // codecs' own state (the WASM heaps of mpg123 and LAME: about 6 MB seen for MP3 → WAV, under
  // 1 MB for WAV → Ogg) and a few chunks in flight.
  const MINUTES = 10;
  const BOUND = 12 << 20;
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const live = () => {
    // Twice: V8 frees dead ArrayBuffers' memory on a background sweep that a collection's start
    // waits for, so only after the second does `arrayBuffers` hold live buffers alone.
    gc();
    gc();
    const { heapUsed, arrayBuffers } = process.memoryUsage();
    return heapUsed + arrayBuffers;
  };

  test.each([
    ['mp3', 'wav'],
    ['wav', 'ogg'],
    ['ogg', 'mp3'],
  ] as const)(
    '%s → %s transcodes in bounded memory',
    async (from, to) => {
      const source = await encodeFile(from, 8000, 2, tones(8000, 2, MINUTES * 60));
      const baseline = live();
      let peak = 0;
      async function* measured(): AsyncGenerator<Uint8Array> {
        let chunks = 0;
        for await (const chunk of createReadStream(source)) {
          if (chunks++ % 8 === 0) peak = Math.max(peak, live() - baseline);
          yield chunk as Buffer;
        }
      }
      const target = path.join(dir, `long-${from}-to.${to}`);
      const { size } = await transcodeToFile(from, measured(), to, target);
      expect(size).toBeGreaterThan(0);
      // The whole recording came through, to 30 ms.
      const decoded = await decodeAudio(await fs.readFile(target), to);
      const seconds = decoded.channels[0].length / decoded.sampleRate;
      expect(Math.abs(seconds - MINUTES * 60)).toBeLessThan(0.03);
      expect(peak).toBeLessThan(BOUND);
      // Generous: a 10-minute encode and a full GC every 8th chunk took over 120 s on a loaded CI machine.
    },
    300_000,
  );
});

test('input that is not a recording fails with ERR_BAD_RECORDING before writing anything', async () => {
  const writes: number[] = [];
  const sink = { write: async (_data: Uint8Array, position: number) => void writes.push(position) };
  await expect(
    transcode('wav', Readable.from([Buffer.from('this is not a WAV file')]), 'ogg', sink),
  ).rejects.toMatchObject({ code: 'ERR_BAD_RECORDING' });
  expect(writes).toEqual([]);
});
