import { downmix, interleave, softLimit } from '../../media/mix.js';

function tone(freqHz: number, amplitude: number, length: number, sampleRate = 8000): Int16Array {
  return Int16Array.from({ length }, (_, i) =>
    Math.round(amplitude * Math.sin((2 * Math.PI * freqHz * i) / sampleRate)),
  );
}

test('interleave puts left first, at an offset', () => {
  const out = new Int16Array(8);
  interleave(Int16Array.from([1, 2, 3]), Int16Array.from([-1, -2, -3]), out, 3, 2);
  expect(Array.from(out)).toEqual([0, 0, 1, -1, 2, -2, 3, -3]);
});

test('one leg alone below the knee comes through unchanged', () => {
  const left = tone(440, 23000, 800); // just under -3 dBFS (23197)
  const stereo = new Int16Array(1600);
  interleave(left, new Int16Array(800), stereo, 800);
  const mono = new Int16Array(800);
  downmix(stereo, mono, 800);
  expect(Array.from(mono)).toEqual(Array.from(left));
});

test('two quiet legs are summed exactly', () => {
  const stereo = new Int16Array(800);
  interleave(tone(1000, 8000, 400), tone(1500, 8000, 400), stereo, 400);
  const mono = new Int16Array(400);
  downmix(stereo, mono, 400);
  for (let i = 0; i < 400; i++) expect(mono[i]).toBe(stereo[2 * i] + stereo[2 * i + 1]);
});

test('two full-scale in-phase tones never reach full scale', () => {
  const full = tone(400, 32767, 8000);
  full[2] = -32768;
  const stereo = new Int16Array(16000);
  interleave(full, full, stereo, 8000);
  const mono = new Int16Array(8000);
  downmix(stereo, mono, 8000);
  let peak = 0;
  for (const sample of mono) peak = Math.max(peak, Math.abs(sample));
  expect(peak).toBeLessThan(32767);
  expect(peak).toBeGreaterThan(32000);
});

test('the limiter is monotonic and odd over every possible sum', () => {
  let previous = softLimit(-65536);
  expect(previous).toBeGreaterThan(-32767);
  for (let sum = -65535; sum <= 65534; sum++) {
    const y = softLimit(sum);
    if (y < previous) throw new Error(`softLimit(${sum}) = ${y} < softLimit(${sum - 1}) = ${previous}`);
    if (y !== -softLimit(-sum)) throw new Error(`softLimit is not odd at ${sum}`);
    previous = y;
  }
  expect(softLimit(65534)).toBeLessThan(32767);
  expect(softLimit(23197)).toBe(23197);
  expect(softLimit(23198)).toBe(23198); // slope 1 at the knee: no audible kink
});
