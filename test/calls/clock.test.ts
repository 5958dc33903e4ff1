import { setTimeout as sleep } from 'node:timers/promises';
import { StreamClock } from '../../src/calls/clock.js';

const FORMAT = { codec: 'pcmu', sampleRate: 8000 } as const;
/** 20 ms of μ-law. */
const FRAME_BYTES = 160;

describe('StreamClock', () => {
  test('stands at the end of the newest frame and never moves back', () => {
    const clock = new StreamClock(FORMAT, 5_000);
    clock.advance(0, FRAME_BYTES);
    expect(clock.ms).toBe(20);
    clock.advance(40, FRAME_BYTES);
    expect(clock.ms).toBe(60);
    clock.advance(20, FRAME_BYTES); // a late frame
    expect(clock.ms).toBe(60);
  });

  test('a far-future timestamp moves it no further than the lead past the wall clock', () => {
    const clock = new StreamClock(FORMAT, 1_000);
    clock.advance(3_600_000, FRAME_BYTES);
    expect(clock.ms).toBeGreaterThanOrEqual(1_000);
    expect(clock.ms).toBeLessThan(1_500);
    clock.advance(Number.MAX_SAFE_INTEGER, FRAME_BYTES);
    expect(clock.ms).toBeLessThan(1_500);
  });

  test('the bound follows the wall clock: frames in real time are never held back', async () => {
    const clock = new StreamClock(FORMAT, 100);
    clock.advance(3_600_000, FRAME_BYTES);
    const first = clock.ms;
    await sleep(300);
    clock.advance(3_600_000, FRAME_BYTES);
    expect(clock.ms - first).toBeGreaterThanOrEqual(250);
    expect(clock.ms).toBeLessThan(3_600_000);
    // Real-time frames stay exact: behind the bound, the clock is the frames' own time.
    const realTime = new StreamClock(FORMAT, 100);
    realTime.advance(0, FRAME_BYTES);
    realTime.advance(20, FRAME_BYTES);
    expect(realTime.ms).toBe(40);
  });

  test('without a lead it follows any timestamp (replays at full speed)', () => {
    const clock = new StreamClock(FORMAT);
    clock.advance(3_600_000, FRAME_BYTES);
    expect(clock.ms).toBe(3_600_020);
  });
});
