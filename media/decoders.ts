import { Readable, pipeline } from 'node:stream';
import opus from '@discordjs/opus';
import { MPEGDecoder } from 'mpg123-decoder';
import prism from 'prism-media';
import { MediaError } from './errors.js';
import type { PcmStream, RecordingFormat } from './types.js';
import { parseWavHeader, type WavHeader } from './wav.js';

/** Container headers bigger than this are not ours: give up rather than buffer an unbounded prefix. */
const MAX_HEADER_BYTES = 1 << 20;
/** Opus granule positions and pre-skip count in 48 kHz samples, whatever the decoding rate. */
const OPUS_RATE = 48_000;
/** Rates libopus can decode to directly. */
const OPUS_DECODE_RATES = new Set([8000, 12000, 16000, 24000, 48000]);
/** Largest possible Ogg page: 27-byte header, 255 lacing values, 255 × 255 bytes of data. */
const MAX_OGG_PAGE_BYTES = 27 + 255 + 255 * 255;

function badRecording(message: string): MediaError {
  return new MediaError('ERR_BAD_RECORDING', message);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function checkChannels(channels: number, format: string): 1 | 2 {
  if (channels !== 1 && channels !== 2) throw badRecording(`${format} has ${channels} channels; expected 1 or 2`);
  return channels;
}

/**
 * Reads `input` until `parse` recognises a header in what has arrived. Returns the header and
 * every byte read so far (the header's own bytes included), which the decoder must consume first.
 */
async function readHeader<T>(
  input: AsyncIterator<Uint8Array>,
  format: string,
  parse: (buf: Buffer) => T | null,
): Promise<{ header: T; head: Buffer }> {
  let head: Buffer = Buffer.alloc(0);
  try {
    for (;;) {
      const next = await input.next();
      if (next.done) throw badRecording(`${format} ended before its header`);
      head = head.length === 0 ? asBuffer(next.value) : Buffer.concat([head, next.value]);
      const header = parse(head);
      if (header) return { header, head };
      if (head.length > MAX_HEADER_BYTES)
        throw badRecording(`no ${format} header in the first ${MAX_HEADER_BYTES} bytes`);
    }
  } catch (err) {
    await input.return?.();
    throw err;
  }
}

/** Yields `head`, then the rest of `input`; closes `input` if the consumer stops early. */
async function* resume(head: Buffer, input: AsyncIterator<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    if (head.length > 0) yield head;
    for (let next = await input.next(); !next.done; next = await input.next()) yield next.value;
  } finally {
    await input.return?.();
  }
}

/** A WAV header whose channels this module decodes (1 or 2). */
function parseStereoWavHeader(buf: Buffer): (WavHeader & { channels: 1 | 2 }) | null {
  const header = parseWavHeader(buf);
  return header && { ...header, channels: checkChannels(header.channels, 'WAV') };
}

/** Passes WAV samples through as whole frames, however the input bytes are split. */
async function* wavSamples(
  bytes: AsyncIterable<Uint8Array>,
  frameBytes: number,
  dataBytes: number,
): AsyncGenerator<Int16Array> {
  const carry = new Uint8Array(frameBytes);
  let carried = 0;
  let left = dataBytes;
  for await (const chunk of bytes) {
    const take = Math.min(chunk.length, left);
    left -= take;
    const frames = Math.floor((carried + take) / frameBytes);
    if (frames > 0) {
      // A copy, not a view: input chunks may sit at odd offsets, and this also frees the chunk.
      const pcm = new Int16Array((frames * frameBytes) / 2);
      const out = new Uint8Array(pcm.buffer);
      out.set(carry.subarray(0, carried));
      const used = out.length - carried;
      out.set(chunk.subarray(0, used), carried);
      carried = take - used;
      carry.set(chunk.subarray(used, take));
      yield pcm;
    } else {
      carry.set(chunk.subarray(0, take), carried);
      carried += take;
    }
    if (left === 0) break;
  }
}

async function decodeWav(input: AsyncIterator<Uint8Array>): Promise<PcmStream> {
  const { header, head } = await readHeader(input, 'WAV', parseStereoWavHeader);
  const { sampleRate, channels, dataStart, dataBytes } = header;
  return { sampleRate, channels, chunks: wavSamples(resume(head.subarray(dataStart), input), channels * 2, dataBytes) };
}

/** Sample rates by MPEG version bits (0 = 2.5, 2 = 2, 3 = 1) and rate index. */
const MPEG_RATES: Record<number, number[]> = {
  0: [11025, 12000, 8000],
  2: [22050, 24000, 16000],
  3: [44100, 48000, 32000],
};

/**
 * Samples of LAME's delay that mpg123 leaves at the start of a file whose Info frame has no LAME
 * tag, as callrec wrote them before it wrote one (mpg123 then trims only its own 529).
 */
const UNTAGGED_MP3_DELAY = 576;

interface Mp3Header extends Pick<PcmStream, 'sampleRate' | 'channels'> {
  /** Samples to drop from mpg123's output before the audio starts. */
  skip: number;
}

/** Whether the Xing/Info frame at `tag` (its "Xing"/"Info" bytes) carries a LAME tag; null until enough bytes arrived. */
function hasLameTag(buf: Buffer, tag: number): boolean | null {
  if (buf.length < tag + 8) return null;
  const id = buf.toString('latin1', tag, tag + 4);
  if (id !== 'Xing' && id !== 'Info') return false;
  const flags = buf.readUInt32BE(tag + 4);
  // Frame count, byte count, seek table and quality come first, each only if flagged.
  const lame = tag + 8 + (flags & 1 ? 4 : 0) + (flags & 2 ? 4 : 0) + (flags & 4 ? 100 : 0) + (flags & 8 ? 4 : 0);
  if (buf.length < lame + 4) return null;
  return buf.toString('latin1', lame, lame + 4) === 'LAME';
}

/**
 * Rate and channel count from the first MPEG audio frame header (mpg123 always outputs two
 * channels, so this is the only way to know), and how much of the start to drop.
 */
function parseMp3Header(buf: Buffer): Mp3Header | null {
  let from = 0;
  if (buf.toString('latin1', 0, 3) === 'ID3') {
    if (buf.length < 10) return null;
    // The ID3v2 tag size is "syncsafe": 7 bits per byte, so it cannot contain a frame sync.
    from = 10 + ((buf[6] << 21) | (buf[7] << 14) | (buf[8] << 7) | buf[9]);
  }
  for (let i = from; i + 3 < buf.length; i++) {
    if (buf[i] !== 0xff || (buf[i + 1] & 0xe0) !== 0xe0) continue;
    const version = (buf[i + 1] >> 3) & 3;
    const layer = (buf[i + 1] >> 1) & 3;
    const bitrate = buf[i + 2] >> 4;
    const rate = MPEG_RATES[version]?.[(buf[i + 2] >> 2) & 3];
    if (layer === 0 || bitrate === 15 || rate === undefined) continue; // reserved values: not a header
    const channels = buf[i + 3] >> 6 === 3 ? 1 : 2;
    // The Xing/Info tag follows the side information (MPEG-1: 17 or 32 bytes; MPEG-2/2.5: 9 or 17).
    const tagged = hasLameTag(buf, i + 4 + (version === 3 ? (channels === 1 ? 17 : 32) : channels === 1 ? 9 : 17));
    if (tagged === null) return null;
    // With a LAME tag mpg123 trims the encoder's delay and padding itself.
    return { sampleRate: rate, channels, skip: tagged ? 0 : UNTAGGED_MP3_DELAY };
  }
  return null;
}

/** Float (-1…1) to 16-bit, clamped: MP3 decoding can overshoot full scale slightly. */
function toInt16(x: number): number {
  const s = Math.round(x * 32768);
  return Math.min(32767, Math.max(-32768, s));
}

async function* mp3Samples(
  bytes: AsyncIterable<Uint8Array>,
  channels: 1 | 2,
  skip: number,
): AsyncGenerator<Int16Array> {
  const decoder = new MPEGDecoder();
  try {
    await decoder.ready;
    for await (const chunk of bytes) {
      const { channelData, samplesDecoded, errors } = decoder.decode(chunk);
      if (errors.length > 0) throw badRecording(`MP3 decode error: ${errors[0].message}`);
      const from = Math.min(skip, samplesDecoded);
      skip -= from;
      if (from === samplesDecoded) continue;
      const pcm = new Int16Array((samplesDecoded - from) * channels);
      for (let c = 0; c < channels; c++) {
        const samples = channelData[c];
        for (let i = from, o = c; i < samplesDecoded; i++, o += channels) pcm[o] = toInt16(samples[i]);
      }
      yield pcm;
    }
  } finally {
    decoder.free();
  }
}

async function decodeMp3(input: AsyncIterator<Uint8Array>): Promise<PcmStream> {
  const { header, head } = await readHeader(input, 'MP3', parseMp3Header);
  return {
    sampleRate: header.sampleRate,
    channels: header.channels,
    chunks: mp3Samples(resume(head, input), header.channels, header.skip),
  };
}

/**
 * Remembers the last `MAX_OGG_PAGE_BYTES` or more of a byte stream, so that at its end the final
 * Ogg page, whose granule position says where the audio ends, can be read. prism-media's demuxer
 * does not expose granule positions, and this avoids parsing every page a second time.
 */
class OggTail {
  #chunks: Buffer[] = [];
  #bytes = 0;

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    while (this.#bytes - this.#chunks[0].length >= MAX_OGG_PAGE_BYTES) this.#bytes -= this.#chunks.shift()!.length;
  }

  /** The granule position of the page that ends the stream, or null if there is no such page. */
  finalGranule(): number | null {
    const tail = Buffer.concat(this.#chunks);
    // 'OggS' can also occur inside packet data; the real last page is the one whose length reaches the end exactly.
    for (let at = tail.lastIndexOf('OggS'); at >= 0; at = at > 0 ? tail.lastIndexOf('OggS', at - 1) : -1) {
      if (at + 27 > tail.length) continue;
      const segments = tail[at + 26];
      let end = at + 27 + segments;
      if (end > tail.length) continue;
      for (let i = 0; i < segments; i++) end += tail[at + 27 + i];
      if (end === tail.length) return Number(tail.readBigInt64LE(at + 6));
    }
    return null;
  }
}

/** A view of a decoded packet as samples (libopus returns fresh, normally aligned, buffers). */
function int16View(buf: Buffer): Int16Array {
  if (buf.byteOffset % 2 === 0) return new Int16Array(buf.buffer, buf.byteOffset, buf.length / 2);
  return new Int16Array(Uint8Array.from(buf).buffer);
}

async function* opusSamples(
  packets: AsyncIterable<Buffer>,
  tail: OggTail,
  decoder: opus.OpusEncoder,
  sampleRate: number,
  channels: 1 | 2,
  preSkip: number,
): AsyncGenerator<Int16Array> {
  const toRate = (granule: number) => Math.round((granule * sampleRate) / OPUS_RATE);
  // RFC 7845 §4.2: the first pre-skip samples are encoder warm-up.
  let skip = toRate(preSkip) * channels;
  let emitted = 0;
  // The last packet is held back until the stream ends, for end trimming (§4.4) from the final granule.
  let held: Int16Array | null = null;
  for await (const packet of packets) {
    let pcm = int16View(decoder.decode(packet));
    if (skip > 0) {
      const dropped = Math.min(skip, pcm.length);
      skip -= dropped;
      pcm = pcm.subarray(dropped);
    }
    if (pcm.length === 0) continue;
    if (held) {
      emitted += held.length;
      yield held;
    }
    held = pcm;
  }
  if (held) {
    const granule = tail.finalGranule();
    const total = granule === null ? Infinity : (toRate(granule) - toRate(preSkip)) * channels;
    const keep = Math.max(0, Math.min(held.length, total - emitted));
    if (keep > 0) yield held.subarray(0, keep);
  }
}

async function decodeOgg(input: AsyncIterator<Uint8Array>): Promise<PcmStream> {
  const tail = new OggTail();
  let inputFailed = false;
  async function* tapped(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of resume(Buffer.alloc(0), input)) {
        const buf = asBuffer(chunk);
        tail.push(buf);
        yield buf;
      }
    } catch (err) {
      inputFailed = true;
      throw err;
    }
  }
  // 16 KiB of input buffered ahead at most: Node ≥ 22's default (64 KiB) would read four times as far.
  const demuxer = new prism.opus.OggDemuxer({ writableHighWaterMark: 16 * 1024 });
  let opusHead: Buffer | undefined;
  demuxer.once('head', (h: Buffer) => (opusHead = h));
  // pipeline, unlike pipe, carries an input error into the demuxer, and an early stop back to the
  // input. highWaterMark 1: read ahead one input chunk, not Readable.from's default of 16.
  pipeline(Readable.from(tapped(), { highWaterMark: 1 }), demuxer, () => {});
  async function* packets(): AsyncGenerator<Buffer> {
    try {
      for await (const packet of demuxer) yield packet as Buffer;
    } catch (err) {
      // prism-media throws plain Errors on malformed pages; the input's own errors pass through as they are.
      if (inputFailed) throw err;
      throw new MediaError('ERR_BAD_RECORDING', `Ogg demux failed: ${(err as Error).message}`, { cause: err });
    }
  }
  const all = packets();
  // The head comes on the first page, so it has been seen by the time the first packet (or the end) arrives.
  const first = await all.next();
  if (!opusHead || opusHead.length < 19) {
    await all.return(undefined);
    throw badRecording('no OpusHead in the Ogg stream');
  }
  const channels = checkChannels(opusHead[9], 'Ogg/Opus');
  const inputRate = opusHead.readUInt32LE(12);
  // The input rate is what the recording was made at; decode straight to it when libopus can.
  const sampleRate = OPUS_DECODE_RATES.has(inputRate) ? inputRate : OPUS_RATE;
  const decoder = new opus.OpusEncoder(sampleRate, channels);
  async function* rest(): AsyncGenerator<Buffer> {
    try {
      if (!first.done) yield first.value;
      yield* all;
    } finally {
      await all.return(undefined);
    }
  }
  return {
    sampleRate,
    channels,
    chunks: opusSamples(rest(), tail, decoder, sampleRate, channels, opusHead.readUInt16LE(10)),
  };
}

/**
 * Decodes a stored recording incrementally. Resolves once the header is read (so the rate and
 * channel count are known) to a {@link PcmStream} whose `chunks` go on reading `bytes` only as
 * they are pulled: memory stays bounded whatever the length. MP3 output starts where the
 * encoder's input did (LAME's delay is dropped); Ogg/Opus honours pre-skip and end trimming and
 * decodes at the recording's own rate (OpusHead input rate). Iterate `chunks` to the end or stop
 * early (break/return) to release `bytes`; if `chunks` is never iterated, closing `bytes` is the
 * caller's job.
 * @throws MediaError `ERR_BAD_RECORDING` when the bytes are not a 16-bit mono/stereo recording
 *   of `format` (also from `chunks`, for corruption found later).
 */
export async function decodeRecording(format: RecordingFormat, bytes: AsyncIterable<Uint8Array>): Promise<PcmStream> {
  const input = bytes[Symbol.asyncIterator]();
  switch (format) {
    case 'wav':
      return decodeWav(input);
    case 'mp3':
      return decodeMp3(input);
    case 'ogg':
      return decodeOgg(input);
  }
}
