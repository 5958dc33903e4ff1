import { resample, StreamResampler } from '../../media/resample.js';

function tone(freqHz: number, amplitude: number, seconds: number, sampleRate: number): Int16Array {
  const length = Math.round(seconds * sampleRate);
  return Int16Array.from({ length }, (_, i) =>
    Math.round(amplitude * Math.sin((2 * Math.PI * freqHz * i) / sampleRate)),
  );
}

/** Amplitude of the `freqHz` component (a single DFT bin), away from the filter's edge effects. */
function amplitudeAt(pcm: Int16Array, freqHz: number, sampleRate: number): number {
  const skip = Math.round(sampleRate * 0.05);
  const n = pcm.length - 2 * skip;
  let re = 0;
  let im = 0;
  for (let i = 0; i < n; i++) {
    const angle = (2 * Math.PI * freqHz * i) / sampleRate;
    re += pcm[skip + i] * Math.cos(angle);
    im += pcm[skip + i] * Math.sin(angle);
  }
  return (2 * Math.hypot(re, im)) / n;
}

/** RMS of the middle of a signal (skipping the edges, where the filter sees silence). */
function rms(pcm: Int16Array, sampleRate: number): number {
  const skip = Math.round(sampleRate * 0.05);
  let sum = 0;
  for (let i = skip; i < pcm.length - skip; i++) sum += pcm[i] * pcm[i];
  return Math.sqrt(sum / (pcm.length - 2 * skip));
}

const db = (ratio: number): number => 20 * Math.log10(ratio);

describe('resample', () => {
  test.each([
    [16000, 8000],
    [22050, 8000],
    [22050, 16000],
    [8000, 16000],
    [24000, 16000],
  ])('a 1 kHz tone keeps its frequency and level, %i → %i Hz', (from, to) => {
    const out = resample(tone(1000, 10000, 1, from), from, to);
    const level = amplitudeAt(out, 1000, to);
    expect(Math.abs(db(level / 10000))).toBeLessThan(0.1);
    // Nearly all the energy is at 1 kHz: a shifted frequency would leave the bin nearly empty.
    expect(Math.abs(db(rms(out, to) / (level / Math.SQRT2)))).toBeLessThan(0.1);
  });

  test.each([
    [16000, 8000, 4200],
    [16000, 8000, 6000],
    [22050, 8000, 4100],
    [22050, 8000, 9000],
    [22050, 16000, 8500],
  ])('a tone above the new Nyquist is attenuated at least 40 dB, %i → %i Hz (%i Hz tone)', (from, to, freq) => {
    const out = resample(tone(freq, 10000, 1, from), from, to);
    expect(db(rms(out, to) / (10000 / Math.SQRT2))).toBeLessThan(-40);
  });

  test('upsampling leaves no image of the tone above the old Nyquist', () => {
    const out = resample(tone(1000, 10000, 1, 8000), 8000, 16000);
    expect(db(amplitudeAt(out, 7000, 16000) / 10000)).toBeLessThan(-40);
  });

  test.each([
    [12345, 16000, 8000],
    [12345, 8000, 16000],
    [10001, 22050, 8000],
    [1, 22050, 16000],
    [0, 16000, 8000],
  ])('%i samples at %i Hz become round(n × to/from) at %i Hz', (n, from, to) => {
    expect(resample(new Int16Array(n), from, to).length).toBe(Math.round((n * to) / from));
  });

  test('full-scale input stays within 16 bits', () => {
    const square = Int16Array.from({ length: 8000 }, (_, i) => ((i >> 4) & 1 ? 32767 : -32768));
    const out = resample(square, 16000, 8000);
    expect(Math.max(...out)).toBeLessThanOrEqual(32767);
    expect(Math.min(...out)).toBeGreaterThanOrEqual(-32768);
    expect(Math.max(...out)).toBeGreaterThan(30000);
  });

  test('equal rates return the input; bad rates throw', () => {
    const pcm = tone(1000, 1000, 0.1, 8000);
    expect(resample(pcm, 8000, 8000)).toBe(pcm);
    expect(() => resample(pcm, 0, 8000)).toThrow(RangeError);
    expect(() => resample(pcm, 8000, 11025.5)).toThrow(RangeError);
  });
});

describe('StreamResampler', () => {
  test.each([
    [48000, 16000],
    [24000, 16000],
    [48000, 8000],
    [16000, 24000],
  ])('fed in 20 ms frames, matches resample() of the whole signal, %i → %i Hz', (from, to) => {
    const input = tone(1000, 10000, 0.5, from);
    const whole = resample(input, from, to);
    const stream = new StreamResampler(from, to);
    const out: number[] = [];
    const frame = from / 50;
    for (let i = 0; i < input.length; i += frame) {
      expect(stream.emitted).toBe(out.length);
      out.push(...stream.push(input.subarray(i, i + frame)));
    }
    // The stream trails by half its kernel: what it has emitted is the whole signal's start.
    expect(out.length).toBeGreaterThan(whole.length - (to / 1000) * 5);
    for (let j = 0; j < out.length; j++) expect(Math.abs(out[j] - whole[j])).toBeLessThanOrEqual(1);
  });

  test('a push of a frame size seen before allocates no new output', () => {
    const stream = new StreamResampler(48000, 16000);
    const frame = new Int16Array(960);
    stream.push(frame);
    const a = stream.push(frame);
    const b = stream.push(frame);
    expect(b).toBe(a);
    expect(a.length).toBe(320);
  });
});

test('StreamResampler.flush: the held-back end of the input, then a fresh start', () => {
  const input = tone(1000, 10000, 0.1, 48000);
  const whole = resample(input, 48000, 16000);
  const stream = new StreamResampler(48000, 16000);
  const head = Array.from(stream.push(input));
  const tail = Array.from(stream.flush());
  expect(head.length + tail.length).toBe(whole.length);
  [...head, ...tail].forEach((s, j) => {
    expect(Math.abs(s - whole[j])).toBeLessThanOrEqual(1);
  });
  expect([stream.received, stream.emitted]).toEqual([0, 0]);
  expect(Array.from(stream.push(input))).toEqual(head);
});
