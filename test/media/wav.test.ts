import { MediaError } from '../../media/errors.js';
import { parseWavHeader, WAV_HEADER_BYTES, WAV_UNKNOWN_SIZE, wavHeader } from '../../media/wav.js';

describe('wavHeader → parseWavHeader', () => {
  test.each([
    [8000, 1, 320],
    [16000, 2, 64_000],
  ])('%d Hz, %d channel(s), %d bytes round-trips', (sampleRate, channels, dataBytes) => {
    const header = wavHeader(sampleRate, channels, dataBytes);
    expect(header.length).toBe(WAV_HEADER_BYTES);
    expect(header.readUInt32LE(4)).toBe(36 + dataBytes);
    expect(header.readUInt32LE(28)).toBe(sampleRate * channels * 2); // byte rate
    expect(parseWavHeader(header)).toEqual({ sampleRate, channels, dataStart: WAV_HEADER_BYTES, dataBytes });
  });

  test('an open-ended size (a spool, a streaming writer) reads as Infinity', () => {
    const header = wavHeader(8000, 2, WAV_UNKNOWN_SIZE);
    expect(header.readUInt32LE(4)).toBe(WAV_UNKNOWN_SIZE);
    expect(parseWavHeader(header)?.dataBytes).toBe(Infinity);
  });

  test('a header cut short is not yet a header', () => {
    const header = wavHeader(8000, 1, 320);
    for (const n of [0, 11, 20, 40]) expect(parseWavHeader(header.subarray(0, n))).toBeNull();
  });

  test('chunks before data are skipped, odd sizes padded', () => {
    const plain = wavHeader(8000, 1, 4);
    const list = Buffer.concat([
      Buffer.from('LIST', 'latin1'),
      Buffer.from([3, 0, 0, 0]),
      Buffer.from('abc\0', 'latin1'),
    ]);
    const withList = Buffer.concat([plain.subarray(0, 36), list, plain.subarray(36)]);
    expect(parseWavHeader(withList)).toEqual({ sampleRate: 8000, channels: 1, dataStart: 36 + 12 + 8, dataBytes: 4 });
  });

  test.each([
    ['not RIFF', (h: Buffer) => h.write('RIFX', 0, 'latin1')],
    ['8-bit samples', (h: Buffer) => h.writeUInt16LE(8, 34)],
    ['IEEE float', (h: Buffer) => h.writeUInt16LE(3, 20)],
  ])('%s is ERR_BAD_RECORDING', (_, spoil) => {
    const header = wavHeader(8000, 1, 320);
    spoil(header);
    expect(() => parseWavHeader(header)).toThrow(MediaError);
    expect(() => parseWavHeader(header)).toThrow(expect.objectContaining({ code: 'ERR_BAD_RECORDING' }));
  });
});
