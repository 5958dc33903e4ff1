import { findBursts } from '../helpers/audio.js';

/** Adds a sine burst to `signal` covering [startMs, endMs), starting at phase 0. */
function addTone(
  signal: Float32Array,
  sampleRate: number,
  freqHz: number,
  startMs: number,
  endMs: number,
  amplitude = 0.5,
): void {
  const from = Math.round((startMs * sampleRate) / 1000);
  const to = Math.round((endMs * sampleRate) / 1000);
  for (let m = from; m < to; m++) signal[m] += amplitude * Math.sin((2 * Math.PI * freqHz * (m - from)) / sampleRate);
}

describe.each([8000, 16000, 48000])('at %i Hz', (sampleRate) => {
  test('finds each burst with sub-millisecond edges', () => {
    const signal = new Float32Array(sampleRate * 2);
    addTone(signal, sampleRate, 1000, 100, 300);
    addTone(signal, sampleRate, 1000, 812.5, 1000.25, 0.1);
    const bursts = findBursts(signal, sampleRate, 1000);
    expect(bursts).toHaveLength(2);
    const expected = [
      [100, 300],
      [812.5, 1000.25],
    ];
    bursts.forEach((burst, i) => {
      expect(Math.abs(burst.startMs - expected[i][0])).toBeLessThan(0.3);
      expect(Math.abs(burst.endMs - expected[i][1])).toBeLessThan(0.3);
    });
  });
});

test('tells a 1000 Hz burst from a 1500 Hz one in a mono mix of both, even overlapping', () => {
  const sampleRate = 8000;
  const mix = new Float32Array(sampleRate);
  addTone(mix, sampleRate, 1000, 100, 400, 0.4);
  addTone(mix, sampleRate, 1500, 300, 700, 0.4);
  const low = findBursts(mix, sampleRate, 1000);
  const high = findBursts(mix, sampleRate, 1500);
  expect(low).toHaveLength(1);
  expect(high).toHaveLength(1);
  expect(Math.abs(low[0].startMs - 100)).toBeLessThan(0.5);
  expect(Math.abs(low[0].endMs - 400)).toBeLessThan(0.5);
  expect(Math.abs(high[0].startMs - 300)).toBeLessThan(0.5);
  expect(Math.abs(high[0].endMs - 700)).toBeLessThan(0.5);
});

test('finds nothing in silence, noise, or a different tone', () => {
  const sampleRate = 8000;
  const signal = new Float32Array(sampleRate);
  expect(findBursts(signal, sampleRate, 1000)).toEqual([]);
  let seed = 1;
  for (let m = 0; m < signal.length; m++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    signal[m] = (seed / 2 ** 32 - 0.5) * 0.02; // -40 dBFS white noise
  }
  addTone(signal, sampleRate, 2000, 100, 600);
  expect(findBursts(signal, sampleRate, 1000)).toEqual([]);
  expect(findBursts(signal, sampleRate, 2000)).toHaveLength(1);
});
