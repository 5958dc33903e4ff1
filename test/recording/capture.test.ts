import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BufferPool } from '../../media/buffer-pool.js';
import { Capture } from '../../src/recording/capture.js';
import { SpoolWriter } from '../../src/recording/spool.js';
import { readSpoolPcm } from '../helpers/audio.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-capture-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe('calls sharing a pool', () => {
  /** Streams `frames` 20 ms μ-law frames of one byte value on each leg (the caller's `lost` frames never arrive); returns the spool's samples. */
  async function call(
    pool: BufferPool,
    name: string,
    frames: number,
    bytes: { caller: number; agent: number },
    lost: number[] = [],
  ): Promise<Int16Array> {
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
    expect(held).toBeGreaterThan(100_000); // two rings, the work blocks and the spool's buffers (1 s each)
    // The second call is shorter, silent, and loses frames: where it has nothing of its own, any
    // of the first call's samples would show.
    const second = await call(pool, 'second', 30, { caller: 0xff, agent: 0xff }, [3, 10, 11, 12]);
    expect(pool.freeBytes).toBe(held); // it took the same buffers and gave them back
    expect(second.length).toBe(30 * 160 * 2);
    expect(second.every((v) => Math.abs(v) < 8)).toBe(true);
  });
});

describe('frames too late for the jitter window', () => {
  test('leave silence in the recording, listed as one lost span where they belonged; frames late within the window are put in place', async () => {
    const file = path.join(dir, 'late.wav');
    const spool = new SpoolWriter(file, { sampleRate: 8000, channels: 2 });
    const capture = new Capture({ format: { codec: 'pcmu', sampleRate: 8000 }, spool, bridged: false, jitterMs: 100 });
    const tone = Buffer.alloc(160, 0x80);
    // Caller frames 20–24 (400–500 ms) come 700 ms late, after frame 59; frame 70 comes 60 ms late, within the window.
    const held = [20, 21, 22, 23, 24];
    for (let f = 0; f < 100; f++) {
      if (!held.includes(f) && f !== 70) capture.pushFrame('caller', f * 20, tone);
      if (f === 59) for (const h of held) capture.pushFrame('caller', h * 20, tone);
      if (f === 73) capture.pushFrame('caller', 70 * 20, tone);
      capture.pushFrame('agent', f * 20, tone);
    }
    expect(await capture.finish()).toBe(100 * 160);
    expect(capture.alignment).toMatchObject({ framesDropped: 5, framesLate: 1 });
    expect(spool.lostSpans).toEqual([{ start_ms: 400, end_ms: 500, reason: 'frames arrived too late' }]);
    const pcm = await readSpoolPcm(file);
    const caller = pcm.filter((_, i) => i % 2 === 0);
    expect(caller.subarray(400 * 8, 500 * 8).every((v) => v === 0)).toBe(true);
    expect(caller.subarray(0, 400 * 8).every((v) => v !== 0)).toBe(true);
    expect(caller.subarray(500 * 8).every((v) => v !== 0)).toBe(true);
  });
});

describe('frames ahead of the wall clock', () => {
  test('are dropped and listed as one lost span from where the bound cut them off to where the stream ended', async () => {
    const file = path.join(dir, 'ahead.wav');
    const spool = new SpoolWriter(file, { sampleRate: 8000, channels: 2 });
    const capture = new Capture({
      format: { codec: 'pcmu', sampleRate: 8000 },
      spool,
      bridged: false,
      jitterMs: 100,
      maxLeadMs: 500,
    });
    const tone = Buffer.alloc(160, 0x80);
    // 2 s of audio at once: what runs past the wall clock plus 500 ms is dropped.
    for (let f = 0; f < 100; f++) {
      capture.pushFrame('caller', f * 20, tone);
      capture.pushFrame('agent', f * 20, tone);
    }
    const frames = await capture.finish();
    const { framesAhead } = capture.alignment;
    expect(framesAhead).toBeGreaterThan(0);
    expect(spool.lostSpans).toHaveLength(1);
    const [span] = spool.lostSpans;
    expect(span).toMatchObject({ end_ms: 2000, reason: 'frames ran ahead of the wall clock' });
    // The span starts where the kept audio ends, and covers just the dropped frames.
    expect(span.start_ms).toBe((frames / 8000) * 1000);
    expect(((span.end_ms - span.start_ms) / 20) * 2).toBe(framesAhead);
  });
});
