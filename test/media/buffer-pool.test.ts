import { BufferPool } from '../../media/buffer-pool.js';
import { LegBuffer } from '../../media/leg-buffer.js';

test('a buffer handed back is the next one of its size taken, zeroed', () => {
  const pool = new BufferPool();
  const first = pool.take(64);
  new Uint8Array(first).fill(7);
  pool.give(first);
  expect(pool.freeBytes).toBe(64);
  expect(pool.take(32)).not.toBe(first); // sizes are kept apart
  const again = pool.take(64);
  expect(again).toBe(first);
  expect(new Uint8Array(again).every((b) => b === 0)).toBe(true);
  expect(pool.freeBytes).toBe(0);
});

test('the pool keeps no more than maxFreeBytes', () => {
  const pool = new BufferPool({ maxFreeBytes: 100 });
  pool.give(new ArrayBuffer(60));
  pool.give(new ArrayBuffer(60));
  expect(pool.freeBytes).toBe(60);
});

test('a released ring gives its memory back once and holds nothing after', () => {
  const pool = new BufferPool();
  const ring = new LegBuffer({ capacity: 1000, pool });
  ring.write(0, new Int16Array(160).fill(1000));
  ring.release();
  expect(pool.freeBytes).toBe(1024 * 3); // samples (2 bytes a slot) and written flags (1)
  ring.release();
  expect(pool.freeBytes).toBe(1024 * 3);
  // A stray read after release has no memory behind it: nothing comes out.
  const out = new Int16Array(160).fill(-1);
  ring.read(160, out);
  expect(out.every((v) => v === -1)).toBe(true);
});
