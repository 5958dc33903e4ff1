import { fitRss } from '../../bench/soak.js';

const minutes = Array.from({ length: 20 }, (_, i) => 0.5 + i * 0.15);
// Live calls swinging as they do at the soak's pace (calls end and are replaced at random).
const calls = minutes.map((_, i) => [19, 20, 18, 27, 19, 25, 50, 36, 41, 20][i % 10]);

test('RSS that follows the live calls alone has no time term, however the calls swing', () => {
  const fit = fitRss(minutes.map((m, i) => ({ calls: calls[i], minutes: m, kib: 4000 * calls[i] + 2000 })));
  expect(fit.perCall).toBeCloseTo(4000);
  expect(fit.perMinute).toBeCloseTo(0);
});

test('RSS that also grows with time is a leak, told apart from the calls', () => {
  const fit = fitRss(minutes.map((m, i) => ({ calls: calls[i], minutes: m, kib: 4000 * calls[i] + 3000 * m })));
  expect(fit.perCall).toBeCloseTo(4000);
  expect(fit.perMinute).toBeCloseTo(3000);
});

test('a constant number of calls leaves the time term alone', () => {
  const fit = fitRss(minutes.map((m) => ({ calls: 20, minutes: m, kib: 80_000 + 500 * m })));
  expect(fit.perMinute).toBeCloseTo(500);
  expect(fit.perCall).toBeGreaterThan(0);
});
