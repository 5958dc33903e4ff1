import { MediaError } from '../errors.js';

/**
 * The MPEG-2 and MPEG-2.5 Layer III frames callrec writes (8 and 16 kHz are "low sampling
 * frequency" rates): one granule of 576 samples per channel, side information of 9 bytes
 * (mono) or 17 (stereo), and a bit reservoir of up to 255 bytes that a frame's main data may
 * borrow from the frames before it.
 */

/** Samples per channel in one frame. */
export const MP3_FRAME_SAMPLES = 576;
/** The largest `main_data_begin` (8 bits in LSF side information). */
export const MAX_RESERVOIR_BYTES = 255;

// ISO/IEC 13818-3 tables for Layer III at the low sampling frequencies.
const LSF_KBPS = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
// Header version bits: 0 = MPEG-2.5, 2 = MPEG-2; sampling frequency index 2 is 8000 / 16000 Hz.
const VERSION_FOR_RATE: Record<number, number> = { 8000: 0, 16000: 2 };
const RATE_INDEX = 2;
const MODE_JOINT_STEREO = 1;
const MODE_MONO = 3;

/** The shape every frame of one encoding shares. */
export interface Mp3Layout {
  sampleRate: number;
  channels: 1 | 2;
  /** Bytes per frame: constant, since 72 × bitrate / rate is whole at these rates (no padding). */
  frameBytes: number;
  /** Header plus side information: where a frame's main-data payload starts. */
  payloadOffset: number;
}

/** The layout of CBR frames at `bitrate` bits/s. @throws MediaError `ERR_UNSUPPORTED_RATE` */
export function mp3Layout(sampleRate: number, channels: 1 | 2, bitrate: number): Mp3Layout {
  const frameBytes = (72 * bitrate) / sampleRate;
  if (VERSION_FOR_RATE[sampleRate] === undefined || !Number.isInteger(frameBytes)) {
    throw new MediaError(
      'ERR_UNSUPPORTED_RATE',
      `no constant-size MP3 frames at ${sampleRate} Hz and ${bitrate} bit/s`,
    );
  }
  return { sampleRate, channels, frameBytes, payloadOffset: 4 + (channels === 1 ? 9 : 17) };
}

/**
 * Checks that `frame` is one of `layout`'s (sync, version, layer, rate, no CRC, size) so the
 * side information can be read at fixed offsets.
 * @throws MediaError `ERR_MP3_FRAME`
 */
export function checkFrame(frame: Uint8Array, layout: Mp3Layout): void {
  const ok =
    frame.length === layout.frameBytes &&
    frame[0] === 0xff &&
    frame[1] === (0xe0 | (VERSION_FOR_RATE[layout.sampleRate] << 3) | (1 << 1) | 1) && // Layer III, no CRC
    (frame[2] & 0x0f) === RATE_INDEX << 2 && // rate index, padding 0
    (frame[3] >> 6 === MODE_MONO) === (layout.channels === 1);
  if (!ok) {
    const head = Buffer.from(frame.subarray(0, 4)).toString('hex');
    throw new MediaError(
      'ERR_MP3_FRAME',
      `unexpected MP3 frame (header ${head}, ${frame.length} bytes; expected ${layout.frameBytes})`,
    );
  }
}

/** How many payload bytes before its own header a frame's main data begins. */
export function mainDataBegin(frame: Uint8Array): number {
  return frame[4];
}

/** `n` bits of `bytes` from bit `at`, most significant first. */
function readBits(bytes: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) v = (v << 1) | ((bytes[i >> 3] >> (7 - (i & 7))) & 1);
  return v;
}

/**
 * The window shape of each channel's granule, packed into one number: 0 for a normal long
 * block, otherwise 1 + (block_type << 1 | mixed_block_flag). Two frames whose codes match end
 * with the same window half, so the next frame overlaps either of them alike.
 */
export function blockShape(frame: Uint8Array, channels: 1 | 2): number {
  let shape = 0;
  // main_data_begin (8) and private bits (1 or 2), then per channel: part2_3_length 12,
  // big_values 9, global_gain 8, scalefac_compress 9, window_switching_flag 1, then 22 bits
  // (block_type 2 and mixed_block_flag 1 first when switching), scalefac_scale 1, count1table 1.
  let bit = 4 * 8 + 8 + channels;
  for (let ch = 0; ch < channels; ch++, bit += 63) {
    const code = readBits(frame, bit + 38, 1) === 1 ? 1 + readBits(frame, bit + 39, 3) : 0;
    shape = shape * 9 + code;
  }
  return shape;
}

/**
 * Where two encodings of the same audio can be joined: the index `i` (into `left` and `right`,
 * which hold the frames of both encodings at the same positions) from which `right`'s frames
 * replace `left`'s, or -1 if none of `candidates` (indices ≥ 1) works. A join needs
 * - room: `right[i]` borrows `main_data_begin` bytes from the frames before it, and `left`'s
 *   frames before `i` must leave at least that many unused at their end (which is what
 *   `left[i]`'s own `main_data_begin` counts), so those bytes can be carried over;
 * - the same window: `left[i - 1]` must end with the window half `right[i]` was coded against.
 */
export function findJoin(
  left: readonly Uint8Array[],
  right: readonly Uint8Array[],
  candidates: Iterable<number>,
  channels: 1 | 2,
): number {
  for (const i of candidates) {
    if (
      mainDataBegin(left[i]) >= mainDataBegin(right[i]) &&
      blockShape(left[i - 1], channels) === blockShape(right[i - 1], channels)
    )
      return i;
  }
  return -1;
}

/**
 * Joins two encodings of the same audio at `i` (see {@link findJoin}) into `out`: `left`'s
 * frames before `i`, then `right`'s, with the reservoir bytes `right[i]` borrows copied into
 * the unused end of `left`'s payloads. `out` receives `left.length` frames back to back.
 */
export function joinAt(
  left: readonly Uint8Array[],
  right: readonly Uint8Array[],
  i: number,
  layout: Mp3Layout,
  out: Uint8Array,
): void {
  const { frameBytes, payloadOffset } = layout;
  for (let j = 0; j < left.length; j++) out.set(j < i ? left[j] : right[j], j * frameBytes);
  // Walk back from frame i's header through the payloads before it, in both encodings at once.
  let borrowed = mainDataBegin(right[i]);
  for (let j = i - 1; borrowed > 0; j--) {
    if (j < 0) throw new MediaError('ERR_MP3_FRAME', 'a join point borrows from before the frames held for it');
    const n = Math.min(borrowed, frameBytes - payloadOffset);
    out.set(right[j].subarray(frameBytes - n), j * frameBytes + frameBytes - n);
    borrowed -= n;
  }
}

/** Frames needed before a join point to carry over the most it can borrow. */
export function reservoirFrames(layout: Mp3Layout): number {
  return Math.ceil(MAX_RESERVOIR_BYTES / (layout.frameBytes - layout.payloadOffset));
}

/** Size of the Info frame {@link infoFrame} writes for `layout`. */
export function infoFrameBytes(layout: Mp3Layout): number {
  return (72 * 1000 * LSF_KBPS[infoBitrateIndex(layout)]) / layout.sampleRate;
}

/** Samples LAME puts before the audio; the LAME tag tells decoders to skip them (and the decoder's own 529). */
export const LAME_ENCODER_DELAY = 576;

// The Xing fields (tag, flags, frame count, byte count, seek table, quality: 120 bytes) and the
// LAME tag after them (36 bytes), as LAME writes them.
const INFO_TAG_BYTES = 120 + 36;

/** The lowest bitrate whose frame holds the Info tag after the side information. */
function infoBitrateIndex(layout: Mp3Layout): number {
  const index = LSF_KBPS.findIndex(
    (kbps) => (72 * 1000 * kbps) / layout.sampleRate >= layout.payloadOffset + INFO_TAG_BYTES,
  );
  if (index < 0)
    throw new MediaError('ERR_UNSUPPORTED_RATE', `no MP3 frame at ${layout.sampleRate} Hz holds an Info tag`);
  return index;
}

/**
 * CRC-16/ARC (polynomial 0x8005, reflected), the LAME tag's checksum. Hand-written: eight lines,
 * and Node has no CRC-16.
 */
function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

/**
 * The leading Info frame of a CBR file, as LAME writes it: a silent frame whose Xing fields
 * give players the frame count, byte count and a seek table (duration and seeking without a
 * scan), and whose LAME tag gives the encoder delay and end padding, so decoders play exactly
 * `samples` samples from the first one (gapless). `frames` excludes this frame.
 * @throws MediaError `ERR_MP3_FRAME` if `frames` cannot hold `samples` as LAME lays them out.
 */
export function infoFrame(layout: Mp3Layout, frames: number, samples: number): Uint8Array {
  // An empty recording has no frames, so no delay either.
  const delay = frames > 0 ? LAME_ENCODER_DELAY : 0;
  const padding = frames * MP3_FRAME_SAMPLES - delay - samples;
  if (padding < 0 || padding > 0xfff)
    throw new MediaError('ERR_MP3_FRAME', `${frames} MP3 frames cannot hold ${samples} samples`);
  const size = infoFrameBytes(layout);
  const frame = Buffer.alloc(size);
  frame[0] = 0xff;
  frame[1] = 0xe0 | (VERSION_FOR_RATE[layout.sampleRate] << 3) | (1 << 1) | 1;
  frame[2] = (infoBitrateIndex(layout) << 4) | (RATE_INDEX << 2);
  frame[3] = (layout.channels === 1 ? MODE_MONO : MODE_JOINT_STEREO) << 6;
  const totalBytes = size + frames * layout.frameBytes;
  let at = layout.payloadOffset;
  at += frame.write('Info', at, 'latin1');
  at = frame.writeUInt32BE(0xf, at); // frame count, byte count, seek table and quality present
  at = frame.writeUInt32BE(frames, at);
  at = frame.writeUInt32BE(totalBytes, at);
  // Seek table: entry p is where p% of the frames have gone by, as a 256th of the file.
  for (let p = 0; p < 100; p++)
    frame[at++] = Math.floor((256 * (size + Math.floor((frames * p) / 100) * layout.frameBytes)) / totalBytes);
  at = frame.writeUInt32BE(0, at); // quality: not meaningful for CBR
  // LAME tag, revision 0. Replay gain, flags, presets: none; music CRC: not kept (parts are written
  // out of order), and decoders do not check it.
  at += frame.write('LAME3.100', at, 'latin1'); // the LAME in @mediabunny/mp3-encoder
  frame[at] = 0x01; // revision 0, constant bitrate
  at += 1 + 1 + 8 + 1; // lowpass, replay gain, encoding flags
  frame[at++] = Math.min(255, (layout.frameBytes * layout.sampleRate) / 72 / 1000); // kbit/s
  frame[at++] = delay >> 4;
  frame[at++] = ((delay & 0xf) << 4) | (padding >> 8);
  frame[at++] = padding & 0xff;
  at += 1 + 1 + 2; // misc, MP3 gain, preset and surround
  at = frame.writeUInt32BE(totalBytes, at); // music length: from this frame to the last audio byte
  at += 2; // music CRC
  frame.writeUInt16BE(crc16(frame.subarray(0, at)), at);
  return frame;
}
