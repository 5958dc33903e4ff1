import {
  blockShape,
  checkFrame,
  findJoin,
  infoFrame,
  infoFrameBytes,
  joinAt,
  LAME_ENCODER_DELAY,
  mainDataBegin,
  mp3Layout,
  reservoirFrames,
} from '../../media/encoders/mp3-frame.js';
import type { Mp3Layout } from '../../media/encoders/mp3-frame.js';

const STEREO_8K = mp3Layout(8000, 2, 32_000); // 288-byte frames, 21 bytes of header and side information
const MONO_16K = mp3Layout(16000, 1, 24_000); // 108-byte frames, 13 bytes

/** Window of one channel's granule in a test frame. */
type Window = 'long' | 'start' | 'short';

/**
 * A frame as LAME writes them for `layout`: header, side information with `mdb` and each
 * channel's window, and a payload of `fill` bytes (so where bytes came from can be told).
 */
function frame(layout: Mp3Layout, mdb: number, fill: number, windows: Window[] = ['long', 'long']): Uint8Array {
  const bytes = new Uint8Array(layout.frameBytes).fill(fill);
  const version = layout.sampleRate === 8000 ? 0 : 2;
  bytes.set([0xff, 0xe0 | (version << 3) | 0b011, (4 << 4) | (2 << 2), layout.channels === 1 ? 0xc4 : 0x44]);
  bytes.fill(0, 4, layout.payloadOffset);
  bytes[4] = mdb;
  const setBits = (at: number, n: number, value: number) => {
    for (let i = 0; i < n; i++) {
      const bit = (value >> (n - 1 - i)) & 1;
      const pos = at + i;
      bytes[pos >> 3] = (bytes[pos >> 3] & ~(0x80 >> (pos & 7))) | (bit << (7 - (pos & 7)));
    }
  };
  for (let ch = 0; ch < layout.channels; ch++) {
    const at = 4 * 8 + 8 + layout.channels + ch * 63 + 38;
    const window = windows[ch];
    if (window === 'long') continue;
    setBits(at, 1, 1); // window_switching_flag
    setBits(at + 1, 2, window === 'start' ? 1 : 2); // block_type
  }
  return bytes;
}

test('layouts: constant frame sizes at the call rates, and room for the reservoir before a join', () => {
  expect(STEREO_8K).toEqual({ sampleRate: 8000, channels: 2, frameBytes: 288, payloadOffset: 21 });
  expect(MONO_16K).toEqual({ sampleRate: 16000, channels: 1, frameBytes: 108, payloadOffset: 13 });
  // 255 bytes of reservoir span 1 stereo payload of 267 bytes, or 3 mono ones of 95.
  expect(reservoirFrames(STEREO_8K)).toBe(1);
  expect(reservoirFrames(MONO_16K)).toBe(3);
  expect(() => mp3Layout(44100, 2, 128_000)).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED_RATE' }));
  expect(() => mp3Layout(16000, 1, 25_000)).toThrow(expect.objectContaining({ code: 'ERR_UNSUPPORTED_RATE' }));
});

test('checkFrame accepts the layout’s frames and names what else it got', () => {
  expect(() => checkFrame(frame(STEREO_8K, 0, 0), STEREO_8K)).not.toThrow();
  expect(() => checkFrame(frame(MONO_16K, 0, 0), MONO_16K)).not.toThrow();
  expect(() => checkFrame(frame(STEREO_8K, 0, 0), MONO_16K)).toThrow(
    expect.objectContaining({ code: 'ERR_MP3_FRAME' }),
  );
  const padded = frame(STEREO_8K, 0, 0);
  padded[2] |= 0x02;
  expect(() => checkFrame(padded, STEREO_8K)).toThrow(/header ffe34a44, 288 bytes/);
  const withCrc = frame(STEREO_8K, 0, 0);
  withCrc[1] &= 0xfe;
  expect(() => checkFrame(withCrc, STEREO_8K)).toThrow(expect.objectContaining({ code: 'ERR_MP3_FRAME' }));
  expect(() => checkFrame(frame(STEREO_8K, 0, 0).subarray(0, 200), STEREO_8K)).toThrow(
    expect.objectContaining({ code: 'ERR_MP3_FRAME' }),
  );
});

test('side information: main_data_begin and each channel’s window', () => {
  expect(mainDataBegin(frame(STEREO_8K, 201, 0))).toBe(201);
  const long = blockShape(frame(STEREO_8K, 0, 0xff, ['long', 'long']), 2);
  const leftShort = blockShape(frame(STEREO_8K, 0, 0xff, ['short', 'long']), 2);
  const rightShort = blockShape(frame(STEREO_8K, 0, 0xff, ['long', 'short']), 2);
  const rightStart = blockShape(frame(STEREO_8K, 0, 0xff, ['long', 'start']), 2);
  expect(new Set([long, leftShort, rightShort, rightStart]).size).toBe(4);
  // Payload bytes (all ones here) are not side information.
  expect(long).toBe(blockShape(frame(STEREO_8K, 0, 0x00), 2));
  expect(blockShape(frame(MONO_16K, 0, 0, ['start']), 1)).not.toBe(blockShape(frame(MONO_16K, 0, 0, ['long']), 1));
});

describe('findJoin', () => {
  const at = (mdbs: number[], windows: Window[][] = []) => mdbs.map((mdb, i) => frame(STEREO_8K, mdb, 0, windows[i]));

  test('takes the first candidate where the left leaves room for what the right borrows', () => {
    const left = at([0, 10, 40, 90, 90]);
    const right = at([0, 50, 60, 80, 95]);
    expect(findJoin(left, right, [1, 2, 3, 4], 2)).toBe(3);
    expect(findJoin(left, right, [4], 2)).toBe(-1);
  });

  test('needs the frames before the join to end with the same window', () => {
    const left = at(
      [0, 0, 0],
      [
        ['long', 'long'],
        ['long', 'start'],
        ['long', 'long'],
      ],
    );
    const right = at(
      [0, 0, 0],
      [
        ['long', 'long'],
        ['long', 'long'],
        ['long', 'long'],
      ],
    );
    expect(findJoin(left, right, [1, 2], 2)).toBe(1);
    expect(findJoin(left, right, [2], 2)).toBe(-1);
  });
});

describe('joinAt', () => {
  test('takes the left frames before the join, the right ones from it, and carries over what the join frame borrows', () => {
    const left = [frame(STEREO_8K, 0, 1), frame(STEREO_8K, 0, 2), frame(STEREO_8K, 100, 3), frame(STEREO_8K, 0, 4)];
    const right = [frame(STEREO_8K, 0, 11), frame(STEREO_8K, 0, 12), frame(STEREO_8K, 40, 13), frame(STEREO_8K, 0, 14)];
    const out = new Uint8Array(4 * 288);
    joinAt(left, right, 2, STEREO_8K, out);
    const frames = [0, 1, 2, 3].map((j) => out.subarray(j * 288, (j + 1) * 288));
    expect(frames[0]).toEqual(left[0]);
    expect(frames[2]).toEqual(right[2]);
    expect(frames[3]).toEqual(right[3]);
    // Frame 1 keeps its own header, side information and main data, and ends with the 40 bytes frame 2 borrows.
    expect(frames[1].subarray(0, 288 - 40)).toEqual(left[1].subarray(0, 288 - 40));
    expect(frames[1].subarray(288 - 40)).toEqual(right[1].subarray(288 - 40));
  });

  test('borrowed bytes may span several payloads, skipping their headers', () => {
    const payload = MONO_16K.frameBytes - MONO_16K.payloadOffset; // 95
    const left = [1, 2, 3, 4].map((fill) => frame(MONO_16K, 0, fill, ['long']));
    const right = [11, 12, 13, 14].map((fill, j) => frame(MONO_16K, j === 3 ? 2 * payload + 10 : 0, fill, ['long']));
    const out = new Uint8Array(4 * 108);
    joinAt(left, right, 3, MONO_16K, out);
    const frames = [0, 1, 2, 3].map((j) => out.subarray(j * 108, (j + 1) * 108));
    expect(frames[0].subarray(0, 108 - 10)).toEqual(left[0].subarray(0, 108 - 10));
    expect(frames[0].subarray(108 - 10)).toEqual(right[0].subarray(108 - 10));
    for (const j of [1, 2]) {
      expect(frames[j].subarray(0, 13)).toEqual(left[j].subarray(0, 13));
      expect(frames[j].subarray(13)).toEqual(right[j].subarray(13));
    }
    expect(frames[3]).toEqual(right[3]);
  });

  test('refuses a join that borrows from before the frames it was given', () => {
    const left = [frame(MONO_16K, 0, 1, ['long']), frame(MONO_16K, 0, 2, ['long'])];
    const right = [frame(MONO_16K, 0, 1, ['long']), frame(MONO_16K, 200, 2, ['long'])];
    expect(() => joinAt(left, right, 1, MONO_16K, new Uint8Array(2 * 108))).toThrow(
      expect.objectContaining({ code: 'ERR_MP3_FRAME' }),
    );
  });
});

test.each([
  ['8 kHz stereo', STEREO_8K],
  ['16 kHz mono', MONO_16K],
])('the Info frame (%s) carries frame count, byte count, seek table and the gapless delay and padding', (_, layout) => {
  const frames = 1000;
  const samples = frames * 576 - 576 - 300;
  const info = infoFrame(layout, frames, samples);
  expect(info.length).toBe(infoFrameBytes(layout));
  expect(info[0]).toBe(0xff);
  expect(info[1]).toBe(layout.sampleRate === 8000 ? 0xe3 : 0xf3);
  expect(info[3] >> 6).toBe(layout.channels === 1 ? 3 : 1);
  // Players look for the tag right after the side information, which must be all zero.
  expect(info.subarray(4, layout.payloadOffset).every((b) => b === 0)).toBe(true);
  const tag = Buffer.from(info.subarray(layout.payloadOffset));
  expect(tag.toString('latin1', 0, 4)).toBe('Info');
  expect(tag.readUInt32BE(4)).toBe(0xf);
  expect(tag.readUInt32BE(8)).toBe(frames);
  const total = info.length + frames * layout.frameBytes;
  expect(tag.readUInt32BE(12)).toBe(total);
  const toc = [...tag.subarray(16, 116)];
  expect(toc[0]).toBe(Math.floor((256 * info.length) / total));
  expect(toc[50]).toBe(Math.floor((256 * (info.length + 500 * layout.frameBytes)) / total));
  expect(toc.every((v, i) => i === 0 || v >= toc[i - 1])).toBe(true);
  // The LAME tag: encoder, then 12 bits of delay and 12 of padding, and a CRC-16 of all before it.
  const lame = tag.subarray(120);
  expect(lame.toString('latin1', 0, 9)).toBe('LAME3.100');
  expect(lame[20]).toBe((layout.frameBytes * layout.sampleRate) / 72 / 1000);
  expect((lame[21] << 4) | (lame[22] >> 4)).toBe(LAME_ENCODER_DELAY);
  expect(((lame[22] & 0xf) << 8) | lame[23]).toBe(300);
  expect(lame.readUInt32BE(28)).toBe(total);
  let crc = 0;
  for (const byte of info.subarray(0, layout.payloadOffset + 120 + 34)) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  expect(lame.readUInt16BE(34)).toBe(crc);
});

test('the Info frame of an empty recording, and sample counts frames cannot hold', () => {
  const lame = infoFrame(STEREO_8K, 0, 0).subarray(STEREO_8K.payloadOffset + 120);
  expect([...lame.subarray(21, 24)]).toEqual([0, 0, 0]); // no delay, no padding
  expect(() => infoFrame(STEREO_8K, 10, 10 * 576)).toThrow(expect.objectContaining({ code: 'ERR_MP3_FRAME' }));
  expect(() => infoFrame(STEREO_8K, 10, 100)).toThrow(expect.objectContaining({ code: 'ERR_MP3_FRAME' }));
});
