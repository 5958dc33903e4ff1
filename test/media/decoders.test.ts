import { decodeRecording } from '../../media/decoders.js';
import { encodeRecording } from '../../media/encoders/index.js';
import type { EncodedChunk } from '../../media/types.js';
import type { RecordingFormat } from '../../media/types.js';
import { findBursts, synthesizeTones } from '../helpers/audio.js';

const SECONDS = 2;
/** [channel, frequency, startMs, endMs]; a mono signal gets both on its one channel. */
const TONES = [
  [0, 1000, 300, 700],
  [1, 1500, 1000, 1600],
] as const;

function synthesize(sampleRate: number, channels: 1 | 2): Int16Array {
  return synthesizeTones(sampleRate, channels, SECONDS, TONES);
}

/** Full-band noise: silence would compress to almost nothing and hide how far ahead input is read. */
function noise(samples: number): Int16Array {
  let seed = 1;
  return Int16Array.from({ length: samples }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) - 32768);
}

async function* once(pcm: Int16Array): AsyncGenerator<Int16Array> {
  yield pcm;
}

async function encode(format: RecordingFormat, sampleRate: number, channels: 1 | 2, pcm: Int16Array): Promise<Buffer> {
  const parts: EncodedChunk[] = [];
  for await (const chunk of encodeRecording(format, { sampleRate, channels, chunks: once(pcm) }))
    parts.push({ position: chunk.position, data: chunk.data.slice() });
  const file = Buffer.alloc(Math.max(...parts.map((p) => p.position + p.data.length)));
  for (const { position, data } of parts) file.set(data, position);
  return file;
}

/** Yields `bytes` in `size`-byte pieces (odd sizes split headers and samples anywhere), counting pulls. */
async function* pieces(bytes: Uint8Array, size: number, pulled = { count: 0 }): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) {
    pulled.count++;
    yield bytes.subarray(i, i + size);
  }
}

async function collect(chunks: AsyncIterable<Int16Array>): Promise<Int16Array> {
  const parts: Int16Array[] = [];
  for await (const chunk of chunks) parts.push(chunk.slice());
  const all = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) all.set(p, at), (at += p.length);
  return all;
}

function channel(pcm: Int16Array, channels: number, c: number): Float32Array {
  const out = new Float32Array(pcm.length / channels);
  for (let i = 0; i < out.length; i++) out[i] = pcm[i * channels + c] / 32768;
  return out;
}

describe.each([
  ['wav', 8000, 2],
  ['wav', 16000, 1],
  ['mp3', 8000, 2],
  ['mp3', 16000, 1],
  ['ogg', 8000, 2],
  ['ogg', 16000, 1],
] as const)('%s at %i Hz, %i channel(s)', (format: RecordingFormat, rate, channels) => {
  test('decodes incrementally to the encoded signal, in time', async () => {
    const pcm = synthesize(rate, channels);
    const file = await encode(format, rate, channels, pcm);
    const source = await decodeRecording(format, pieces(file, 1001));
    expect(source.sampleRate).toBe(rate);
    expect(source.channels).toBe(channels);
    const decoded = await collect(source.chunks);
    if (format === 'wav') expect(decoded).toEqual(pcm);
    // Ogg and MP3 (its LAME tag) both say where the audio ends.
    expect(decoded.length).toBe(pcm.length);
    for (const [c, freq, startMs, endMs] of TONES) {
      const bursts = findBursts(channel(decoded, channels, Math.min(c, channels - 1)), rate, freq);
      expect(bursts).toHaveLength(1);
      // No delay left at the start: the encoder delay and Opus pre-skip were dropped.
      expect(Math.abs(bursts[0].startMs - startMs)).toBeLessThan(1);
      expect(Math.abs(bursts[0].endMs - endMs)).toBeLessThan(1.5);
    }
  });

  test('resolves after the header, pulling input only as chunks are pulled', async () => {
    const file = await encode(format, rate, channels, noise(rate * channels * 60));
    const pulled = { count: 0 };
    const source = await decodeRecording(format, pieces(file, 4096, pulled));
    // Ogg reads through a stream pipeline, whose buffers (16 KiB into the demuxer) read a few chunks ahead.
    expect(pulled.count).toBeLessThanOrEqual(format === 'ogg' ? 8 : 1);
    const chunks = source.chunks[Symbol.asyncIterator]();
    expect((await chunks.next()).done).toBe(false);
    expect(pulled.count).toBeLessThan(Math.ceil(file.length / 4096) / 2);
    await chunks.return?.(undefined);
  });

  test('a consumer that stops early closes the input', async () => {
    const file = await encode(format, rate, channels, new Int16Array(rate * channels * 5));
    let closed = false;
    async function* input(): AsyncGenerator<Uint8Array> {
      try {
        yield* pieces(file, 2048);
      } finally {
        closed = true;
      }
    }
    const source = await decodeRecording(format, input());
    for await (const chunk of source.chunks) {
      expect(chunk.length).toBeGreaterThan(0);
      break;
    }
    expect(closed).toBe(true);
  });

  test('an input error fails decoding with that error', async () => {
    const file = await encode(format, rate, channels, noise(rate * channels * 5));
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield* pieces(file.subarray(0, 16384), 4096);
      throw new Error('decryption failed');
    }
    // Depending on how far ahead the format reads, the error comes from the header read or from chunks.
    const decode = async () => collect((await decodeRecording(format, failing())).chunks);
    await expect(decode()).rejects.toThrow('decryption failed');
  });
});

test('an MP3 whose Info frame has no LAME tag (as callrec wrote them before) still starts on time', async () => {
  const file = await encode('mp3', 8000, 2, synthesize(8000, 2));
  // Strip the tag to what the Xing frame held then: frame count, bytes and seek table, nothing after.
  const tag = file.indexOf('Info');
  file.writeUInt32BE(0x7, tag + 4);
  file.fill(0, tag + 116, tag + 116 + 4 + 36); // quality and LAME tag
  const decoded = await collect((await decodeRecording('mp3', pieces(file, 1001))).chunks);
  // Without a tag nothing says where the audio ends: the last frame's padding stays.
  expect(decoded.length / 2).toBeGreaterThanOrEqual(8000 * SECONDS);
  for (const [c, freq, startMs, endMs] of TONES) {
    const [burst] = findBursts(channel(decoded, 2, c), 8000, freq);
    expect(Math.abs(burst.startMs - startMs)).toBeLessThan(1);
    expect(Math.abs(burst.endMs - endMs)).toBeLessThan(1.5);
  }
});

test('WAV: extra chunks are skipped, open-ended sizes read to the end, a partial last frame is dropped', async () => {
  const header = Buffer.alloc(44 + 12);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(0xffffffff, 4);
  header.write('WAVE', 8, 'latin1');
  header.write('LIST', 12, 'latin1');
  header.writeUInt32LE(3, 16); // odd size: padded to 4
  header.write('fmt ', 24, 'latin1');
  header.writeUInt32LE(16, 28);
  header.writeUInt16LE(1, 32);
  header.writeUInt16LE(2, 34);
  header.writeUInt32LE(16000, 36);
  header.writeUInt32LE(64000, 40);
  header.writeUInt16LE(4, 44);
  header.writeUInt16LE(16, 46);
  header.write('data', 48, 'latin1');
  header.writeUInt32LE(0xffffffff, 52); // as a spool leaves it until closed
  const pcm = Int16Array.from({ length: 1000 }, (_, i) => i * 31 - 15000);
  const file = Buffer.concat([header, Buffer.from(pcm.buffer), Buffer.from([1, 2, 3])]);
  const source = await decodeRecording('wav', pieces(file, 3));
  expect([source.sampleRate, source.channels]).toEqual([16000, 2]);
  expect(await collect(source.chunks)).toEqual(pcm);
});

test('WAV: bytes after the data chunk are not samples', async () => {
  const pcm = synthesize(8000, 1);
  const file = Buffer.concat([await encode('wav', 8000, 1, pcm), Buffer.from('LIST\x04\x00\x00\x00abcd', 'latin1')]);
  const source = await decodeRecording('wav', pieces(file, 777));
  expect(await collect(source.chunks)).toEqual(pcm);
});

test.each([
  ['wav', Buffer.from('RIFF\0\0\0\0AVI LIST', 'latin1')],
  ['mp3', Buffer.alloc(2 << 20, 0x41)],
  ['ogg', Buffer.from('not an ogg stream at all, just text that is long enough')],
  ['mp3', Buffer.alloc(0)],
] as const)('%s: bytes that are not a recording fail with ERR_BAD_RECORDING', async (format, bytes) => {
  await expect(decodeRecording(format, pieces(bytes, 65536))).rejects.toMatchObject({ code: 'ERR_BAD_RECORDING' });
});

test('WAV: only 16-bit PCM is accepted', async () => {
  const file = await encode('wav', 8000, 1, new Int16Array(800));
  file.writeUInt16LE(24, 34); // bits per sample
  await expect(decodeRecording('wav', pieces(file, 100))).rejects.toMatchObject({ code: 'ERR_BAD_RECORDING' });
});
