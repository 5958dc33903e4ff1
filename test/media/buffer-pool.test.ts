import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BufferPool } from '../../media/buffer-pool.js';
import { LegBuffer } from '../../media/leg-buffer.js';
import { Capture } from '../../src/recording/capture.js';
import { SpoolWriter } from '../../src/recording/spool.js';
import { readSpoolPcm } from '../helpers/audio.js';

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

describe('calls sharing a pool', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-pool-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** Streams `frames` 20 ms μ-law frames of one byte value on each leg (the caller's `lost` frames never arrive); returns the spool's samples. */
  async function call(pool: BufferPool, name: string, frames: number, bytes: { caller: number; agent: number }, lost: number[] = []): Promise<Int16Array> {
    const file = path.join(dir, `${name}.wav`);
    const spool = new SpoolWriter(file, { sampleRate: 8000, channels: 2, pool });
    const capture = new Capture({ format: { codec: 'pcmu', sampleRate: 8000 }, spool, bridged: false, pool });
    for (let f = 0; f < frames; f++) {
      if (!lost.includes(f)) capture.pushFrame('caller', f * 20, Buffer.alloc(160, bytes.caller));
      capture.pushFrame('agent', f * 20, Buffer.alloc(160, bytes.agent));
      if (f % 50 === 49) await capture.flush();
    }
    await capture.finish();
    return readSpoolPcm(file);
  }

  test("the next call reuses an ended call's buffers and hears none of its audio", async () => {
    const pool = new BufferPool();
    // μ-law 0x80 and 0x00 decode to full-scale; 0xff is silence.
    const first = await call(pool, 'first', 120, { caller: 0x80, agent: 0x00 });
    expect(first.length).toBe(120 * 160 * 2);
    const held = pool.freeBytes;
    expect(held).toBeGreaterThan(100_000); // two rings, the work blocks and the spool's buffers
    // The second call is shorter, silent, and loses frames: where it has nothing of its own, any
    // of the first call's samples would show.
    const second = await call(pool, 'second', 30, { caller: 0xff, agent: 0xff }, [3, 10, 11, 12]);
    expect(pool.freeBytes).toBe(held); // it took the same buffers and gave them back
    expect(second.length).toBe(30 * 160 * 2);
    expect(second.every((v) => Math.abs(v) < 8)).toBe(true);
  });
});
