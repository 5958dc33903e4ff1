import { PcmReader, recordedFormat, wireFormat } from '../../src/protocols/pcm.js';
import { code } from './kits.js';

/** 20 ms of a 1 kHz tone at `rate`, 16-bit in `order`. */
function tone(rate: number, order: 'le' | 'be', frame: number): Buffer {
  const n = rate / 50;
  const out = Buffer.alloc(2 * n);
  for (let i = 0; i < n; i++) {
    const s = Math.round(8000 * Math.sin((2 * Math.PI * 1000 * (frame * n + i)) / rate));
    if (order === 'le') out.writeInt16LE(s, 2 * i);
    else out.writeInt16BE(s, 2 * i);
  }
  return out;
}

describe('wire formats', () => {
  test('G.711 at 8 kHz and L16 at 8, 16, 24, 48 kHz; anything else refused naming it', () => {
    expect(recordedFormat(wireFormat('pcmu', 8000, 'le', 'ulaw'))).toEqual({ codec: 'pcmu', sampleRate: 8000 });
    expect(recordedFormat(wireFormat('pcma', 8000, 'le', 'alaw'))).toEqual({ codec: 'pcma', sampleRate: 8000 });
    expect(recordedFormat(wireFormat('l16', 16000, 'be', 'L16'))).toEqual({
      codec: 'l16',
      sampleRate: 16000,
      byteOrder: 'be',
    });
    for (const rate of [24000, 48000])
      expect(recordedFormat(wireFormat('l16', rate, 'be', 'L16')).sampleRate).toBe(16000);
    expect(code(() => wireFormat('pcma', 16000, 'le', 'alaw'))).toBe('ERR_UNSUPPORTED_CODEC');
    expect(code(() => wireFormat('l16', 22050, 'le', 'L16'))).toBe('ERR_UNSUPPORTED_CODEC');
    expect(() => wireFormat(null, 8000, 'le', 'g729')).toThrow('unsupported codec g729 at 8000 Hz');
  });

  test('48 kHz big- and little-endian read to the same 16 kHz audio', () => {
    const le = new PcmReader(wireFormat('l16', 48000, 'le', 'L16'), 1);
    const be = new PcmReader(wireFormat('l16', 48000, 'be', 'L16'), 1);
    for (let f = 0; f < 5; f++) {
      le.read(tone(48000, 'le', f), f * 20);
      const fromLe = Buffer.from(le.out[0]);
      be.read(tone(48000, 'be', f), f * 20);
      expect(be.out[0].equals(fromLe)).toBe(true);
      expect(be.timestampMs).toBe(le.timestampMs);
    }
  });

  test('8 and 16 kHz pass through untouched: the frame itself, no copy', () => {
    const reader = new PcmReader(wireFormat('l16', 16000, 'be', 'L16'), 1);
    const frame = tone(16000, 'be', 0);
    reader.read(frame, 40);
    expect(reader.out[0]).toBe(frame);
    expect(reader.timestampMs).toBe(40);
  });
});
