import { PlayoutQueue } from '../../media/playout-queue.js';
import { MediaError } from '../../media/errors.js';

function ramp(from: number, length: number): Int16Array {
  return Int16Array.from({ length }, (_, i) => from + i);
}

/** Collects released audio as [position, samples] pairs. */
function drain(queue: PlayoutQueue, upTo: number): Array<[number, number[]]> {
  const released: Array<[number, number[]]> = [];
  queue.release(upTo, (position, pcm) => released.push([position, Array.from(pcm)]));
  return released;
}

test('a chunk starts now when nothing is queued, else after the queued audio', () => {
  const queue = new PlayoutQueue({ maxQueuedSamples: 10_000 });
  expect(queue.push(100, ramp(0, 160))).toBe(100);
  expect(queue.push(120, ramp(160, 160))).toBe(260);
  expect(queue.queuedSamples).toBe(320);
  expect(queue.end).toBe(420);
  // After the queue has played out, a late push starts at its own `now`.
  drain(queue, 420);
  expect(queue.push(1000, ramp(0, 10))).toBe(1000);
});

test('release emits only what has started playing, splitting a straddling chunk', () => {
  const queue = new PlayoutQueue({ maxQueuedSamples: 10_000 });
  queue.push(0, ramp(0, 160));
  queue.push(0, ramp(160, 160));
  expect(drain(queue, 0)).toEqual([]);
  const first = drain(queue, 200);
  expect(first.map(([p, s]) => [p, s.length])).toEqual([
    [0, 160],
    [160, 40],
  ]);
  expect(first[1][1]).toEqual(Array.from(ramp(160, 40)));
  expect(queue.queuedSamples).toBe(120);
  const rest = drain(queue, 10_000);
  expect(rest).toEqual([[200, Array.from(ramp(200, 120))]]);
  expect(queue.queuedSamples).toBe(0);
});

test('clear drops audio from now on and the next push starts at now', () => {
  const queue = new PlayoutQueue({ maxQueuedSamples: 10_000 });
  queue.push(0, ramp(0, 160));
  queue.push(0, ramp(160, 160));
  queue.push(0, ramp(320, 160));
  drain(queue, 100);
  expect(queue.clear(200)).toBe(280);
  expect(queue.queuedSamples).toBe(100);
  expect(queue.push(210, ramp(0, 10))).toBe(210);
  expect(drain(queue, 10_000)).toEqual([
    [100, Array.from(ramp(100, 60))],
    [160, Array.from(ramp(160, 40))],
    [210, Array.from(ramp(0, 10))],
  ]);
});

test('clear with nothing at or after now drops nothing', () => {
  const queue = new PlayoutQueue({ maxQueuedSamples: 10_000 });
  queue.push(0, ramp(0, 160));
  expect(queue.clear(500)).toBe(0);
  expect(queue.queuedSamples).toBe(160);
  expect(queue.push(500, ramp(0, 1))).toBe(500);
});

test('pushing past the bound throws ERR_PLAYOUT_OVERFLOW and queues nothing', () => {
  const queue = new PlayoutQueue({ maxQueuedSamples: 320 });
  queue.push(0, ramp(0, 320));
  let error: unknown;
  try {
    queue.push(0, ramp(0, 1));
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(MediaError);
  expect((error as MediaError).code).toBe('ERR_PLAYOUT_OVERFLOW');
  expect(queue.queuedSamples).toBe(320);
  expect(queue.end).toBe(320);
});
