import { createHash } from 'node:crypto';
import { G722Decoder, G722Encoder } from '../../media/g722.js';
import { findBursts, synthesizeTones } from '../helpers/audio.js';

/** Three seconds at 16 kHz exercising both bands and the limiters: a 100 Hz → 9 kHz chirp, alternately loud and faint, over noise, then a clipped square wave. */
function referenceInput(): Int16Array {
  const pcm = new Int16Array(48_000);
  let seed = 1;
  const noise = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5;
  for (let i = 0; i < pcm.length; i++) {
    const t = i / 16000;
    const chirp = 20000 * Math.sin(2 * Math.PI * (100 + 1500 * t) * t) * (i % 8000 < 4000 ? 1 : 0.05);
    const square = i > 40_000 ? 40_000 * Math.sign(Math.sin(i / 7)) : 0;
    pcm[i] = Math.max(-32768, Math.min(32767, Math.round(chirp + 3000 * noise() + square)));
  }
  return pcm;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

test('G.722 matches the ITU reference (spandsp g722.c as librarized in libg722) bit for bit, encoding and decoding', () => {
  // Both hashes are libg722's own output for referenceInput() (g722_encoder_new/g722_decoder_new
  // at 64000 bit/s, options 0), fed the same samples: encoder and decoder are bit-exact with it.
  const pcm = referenceInput();
  const encoder = new G722Encoder();
  const decoder = new G722Decoder();
  const encoded = Buffer.alloc(pcm.length / 2);
  const decoded = new Int16Array(pcm.length);
  // 20 ms packets: the state carries over from one to the next.
  for (let i = 0; i < pcm.length; i += 320) encoder.encode(pcm.subarray(i, i + 320)).copy(encoded, i / 2);
  for (let i = 0; i < encoded.length; i += 160)
    expect(decoder.decode(encoded.subarray(i, i + 160), decoded, 2 * i)).toBe(320);
  expect(sha256(encoded)).toBe('68b730e455771f21b4af779193d8188b4b2c0293e5cc6bd517240037b6f1fbf5');
  expect(sha256(new Uint8Array(decoded.buffer))).toBe(
    '11d72adc525403d98649fa7f787cadf18046b78d242d1112a8c6724d7d5d5c76',
  );
});

test('a tone through G.722 comes back at its frequency, level and onset, in either band', () => {
  for (const freq of [1000, 6000]) {
    const pcm = synthesizeTones(16000, 1, 1, [[0, freq, 200, 700]]);
    const decoded = new Int16Array(pcm.length);
    new G722Decoder().decode(new G722Encoder().encode(pcm), decoded);
    const samples = Float32Array.from(decoded, (s) => s / 32768);
    const [burst, ...rest] = findBursts(samples, 16000, freq);
    expect(rest).toEqual([]);
    // The QMF pair delays by 23 samples (1.44 ms); the high band's 2-bit quantizer takes a few ms
    // more to adapt from silence to a full-scale tone.
    if (freq === 1000) expect(burst.startMs - 200).toBeCloseTo(23 / 16, 0);
    else expect(burst.startMs - 200).toBeGreaterThan(23 / 16);
    expect(burst.startMs - 200).toBeLessThan(6);
    expect(burst.endMs - 700).toBeCloseTo(23 / 16, 0);
    let energy = 0;
    let original = 0;
    for (let i = 4000; i < 10_000; i++) {
      energy += decoded[i] ** 2;
      original += pcm[i] ** 2;
    }
    expect(Math.abs(10 * Math.log10(energy / original))).toBeLessThan(0.5);
    // Another frequency is absent.
    expect(findBursts(samples, 16000, freq === 1000 ? 3000 : 2000)).toEqual([]);
  }
});

test('the decoder refuses an output too small for the payload', () => {
  expect(() => new G722Decoder().decode(new Uint8Array(10), new Int16Array(19))).toThrow(RangeError);
});
