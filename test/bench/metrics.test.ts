import { histogramQuantile } from '../../bench/index.js';
import { cpuSeconds, rssBytes } from '../../bench/proc.js';

test('histogramQuantile interpolates within the bucket that holds the rank', () => {
  const buckets = [
    { le: 0.001, count: 50 },
    { le: 0.002, count: 90 },
    { le: 0.004, count: 100 },
    { le: Infinity, count: 100 },
  ];
  expect(histogramQuantile(buckets, 0.5)).toBeCloseTo(0.001);
  expect(histogramQuantile(buckets, 0.7)).toBeCloseTo(0.0015);
  expect(histogramQuantile(buckets, 0.99)).toBeCloseTo(0.0038);
  // Past the last finite bound only the bound is known.
  expect(
    histogramQuantile(
      [
        { le: 0.001, count: 1 },
        { le: Infinity, count: 10 },
      ],
      0.99,
    ),
  ).toBe(0.001);
  expect(histogramQuantile([{ le: Infinity, count: 0 }], 0.99)).toBeNaN();
});

test('cpuSeconds and rssBytes read this process from /proc', () => {
  const before = cpuSeconds(process.pid);
  const until = Date.now() + 150;
  while (Date.now() < until); // burn CPU so the clock must move
  expect(cpuSeconds(process.pid)).toBeGreaterThan(before);
  expect(rssBytes(process.pid)).toBeGreaterThan(10 * 2 ** 20);
});
