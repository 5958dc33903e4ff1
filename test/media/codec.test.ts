import { bytesPerSample, decoderFor, encoderFor, samplesIn } from '../../media/codec.js';

const ULAW = { codec: 'pcmu', sampleRate: 8000 } as const;
const ALAW = { codec: 'pcma', sampleRate: 8000 } as const;

function decodeAll(format: Parameters<typeof decoderFor>[0], bytes: number[]): number[] {
  const out = new Int16Array(bytes.length);
  const n = decoderFor(format)(Uint8Array.from(bytes), out);
  return Array.from(out.subarray(0, n));
}

describe('G.711 μ-law', () => {
  test('decodes the reference values', () => {
    expect(decodeAll(ULAW, [0xff, 0x7f, 0x00, 0x80, 0xfe, 0x7e])).toEqual([0, 0, -32124, 32124, 8, -8]);
  });

  test('encodes silence and full scale to the reference codes', () => {
    expect(Array.from(encoderFor(ULAW)(Int16Array.from([0, 32767, -32768])))).toEqual([0xff, 0x80, 0x00]);
  });

  test('every code survives decode → encode unchanged (except −0, which is +0)', () => {
    const all = Array.from({ length: 256 }, (_, i) => i);
    const reencoded = Array.from(encoderFor(ULAW)(Int16Array.from(decodeAll(ULAW, all))));
    expect(reencoded).toEqual(all.map((code) => (code === 0x7f ? 0xff : code)));
  });
});

describe('G.711 A-law', () => {
  test('decodes the reference values', () => {
    expect(decodeAll(ALAW, [0xd5, 0x55, 0xaa, 0x2a])).toEqual([8, -8, 32256, -32256]);
  });

  test('every code survives decode → encode unchanged', () => {
    const all = Array.from({ length: 256 }, (_, i) => i);
    expect(Array.from(encoderFor(ALAW)(Int16Array.from(decodeAll(ALAW, all))))).toEqual(all);
  });
});

describe.each([
  ['μ-law', ULAW],
  ['A-law', ALAW],
] as const)('%s round trip', (_name, format) => {
  test('error stays within about half a quantisation step (the step is ~1/16 of the magnitude)', () => {
    const pcm = new Int16Array(65536);
    for (let i = 0; i < 65536; i++) pcm[i] = i - 32768;
    const back = new Int16Array(65536);
    decoderFor(format)(encoderFor(format)(pcm), back);
    for (let i = 0; i < 65536; i++) {
      const error = Math.abs(back[i] - pcm[i]);
      // Half a step is ~1/32 of the magnitude, a bit more just above a segment start; μ-law also
      // clips at ±32124 (the largest code), so the top of the range may be off by up to 644.
      const magnitude = Math.abs(pcm[i]);
      const bound = magnitude / 30 + 16 + (magnitude > 32124 ? magnitude - 32124 : 0);
      if (error > bound) throw new Error(`sample ${pcm[i]} came back as ${back[i]}`);
    }
  });
});

describe('L16', () => {
  const samples = Int16Array.from([0, 1, -1, 0x1234, -32768, 32767]);

  test('big-endian bytes are most significant first', () => {
    const be = encoderFor({ codec: 'l16', sampleRate: 16000, byteOrder: 'be' })(samples);
    expect(Array.from(be.subarray(6, 8))).toEqual([0x12, 0x34]);
    expect(decodeAll({ codec: 'l16', sampleRate: 16000, byteOrder: 'be' }, Array.from(be))).toEqual(
      Array.from(samples),
    );
  });

  test('little-endian is the default', () => {
    const le = encoderFor({ codec: 'l16', sampleRate: 8000 })(samples);
    expect(Array.from(le.subarray(6, 8))).toEqual([0x34, 0x12]);
    expect(decodeAll({ codec: 'l16', sampleRate: 8000 }, Array.from(le))).toEqual(Array.from(samples));
    expect(decodeAll({ codec: 'l16', sampleRate: 8000, byteOrder: 'be' }, Array.from(le))[3]).toBe(0x3412);
  });

  test('decodes at an offset, ignores a trailing odd byte', () => {
    const out = new Int16Array(4);
    const n = decoderFor({ codec: 'l16', sampleRate: 8000 })(Uint8Array.from([1, 0, 2, 0, 9]), out, 2);
    expect(n).toBe(2);
    expect(Array.from(out)).toEqual([0, 0, 1, 2]);
  });
});

test('decoding past the end of the output throws instead of silently truncating', () => {
  expect(() => decoderFor(ULAW)(new Uint8Array(160), new Int16Array(100))).toThrow(RangeError);
});

test('sizes', () => {
  expect(bytesPerSample(ULAW)).toBe(1);
  expect(bytesPerSample({ codec: 'l16', sampleRate: 8000 })).toBe(2);
  expect(samplesIn({ codec: 'l16', sampleRate: 8000 }, 321)).toBe(160);
  expect(samplesIn(ALAW, 160)).toBe(160);
});
