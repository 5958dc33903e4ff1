import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createLogger } from '../../src/log.js';
import { MediaMetrics } from '../../src/metrics.js';
import { SpoolMonitor } from '../../src/recording/spool-monitor.js';
import { MAX_QUEUED_MS, SpoolWriter } from '../../src/recording/spool.js';
import { fillDisk } from '../helpers/disk.js';
import { positionPattern, readSpoolPcm } from '../helpers/audio.js';

const run = promisify(execFile);
const RATE = 8000;
/** Bytes of the spool's pending buffer (its default, 1 s of 16-bit stereo at 8 kHz): what one write takes at most. */
const CHUNK_BYTES = RATE * 4;

/*
 * Real disks in real trouble (this needs root, as CI and the development machines have): a
 * filesystem frozen with fsfreeze(8), where writes block until it is thawed, as on a stalled
 * disk; and a tmpfs filled to its last byte.
 */

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-spool-disk-'));
});
afterEach(async () => {
  await run('umount', ['-l', dir]).catch(() => {});
  await fs.rm(dir, { recursive: true, force: true });
});

/** Appends frames [from, from + frames) of the position pattern, 160 at a time as capture would; returns the most bytes the spool held meanwhile. */
function appendPattern(spool: SpoolWriter, from: number, frames: number): number {
  let most = 0;
  for (let f = from; f < from + frames; f += 160) {
    const n = Math.min(160, from + frames - f);
    spool.append(positionPattern(f, n), n);
    most = Math.max(most, spool.pendingBytes);
  }
  return most;
}

/** Expects the file to hold the pattern in frames [0, keptTo) and [lostTo, frames), and silence in [lostFrom, lostTo). */
function expectPatternWithHole(
  pcm: Int16Array,
  frames: number,
  keptTo: number,
  lostFrom: number,
  lostTo: number,
): void {
  expect(pcm.length).toBe(2 * frames);
  expect(pcm.subarray(0, 2 * keptTo)).toEqual(positionPattern(0, keptTo));
  expect(pcm.subarray(2 * lostFrom, 2 * lostTo).every((s) => s === 0)).toBe(true);
  expect(pcm.subarray(2 * lostTo)).toEqual(positionPattern(lostTo, frames - lostTo));
}

test('a stalled disk: bytes queued for it stay under the ceiling, what would queue is a lost span, and later audio lands in its place', async () => {
  const image = `${dir}.img`;
  await run('truncate', ['-s', '32M', image]);
  await run('mkfs.ext4', ['-q', image]);
  await run('mount', ['-o', 'loop', image, dir]);
  try {
    const file = path.join(dir, 'stalled.wav');
    const spool = new SpoolWriter(file, { sampleRate: RATE, channels: 2 });
    appendPattern(spool, 0, RATE);
    await spool.flush();
    await run('fsfreeze', ['-f', dir]);
    let most: number;
    try {
      // 20 s of audio against a disk that takes none of it.
      most = appendPattern(spool, RATE, 20 * RATE);
    } finally {
      await run('fsfreeze', ['-u', dir]);
    }
    // The pending buffer and the writes queued, whatever came in: not 20 s of audio.
    expect(most).toBeLessThanOrEqual((MAX_QUEUED_MS / 1000) * RATE * 4 + CHUNK_BYTES);
    await spool.flush();
    expect(spool.pendingBytes).toBe(0);
    // Written before the stall, and queued up to the ceiling, is kept: the rest is lost.
    const keptTo = 1000 + MAX_QUEUED_MS;
    expect(spool.lostSpans).toEqual([{ start_ms: keptTo, end_ms: 21_000, reason: 'spool write queue full' }]);
    appendPattern(spool, 21 * RATE, RATE);
    expect(await spool.close()).toBe(22 * RATE);
    expect(spool.failure).toBeNull();
    expectPatternWithHole(
      await readSpoolPcm(file),
      22 * RATE,
      (keptTo / 1000) * RATE,
      (keptTo / 1000) * RATE,
      21 * RATE,
    );
  } finally {
    await run('umount', [dir]).catch(() => {});
    await fs.rm(image, { force: true });
  }
});

test('a full disk: writes fail into a lost span, the node refuses new spools until space is back, then the spool resumes in place', async () => {
  await run('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir]);
  const metrics = new MediaMetrics();
  const monitor = new SpoolMonitor({ dir: path.join(dir, 'spool'), log: createLogger('silent'), metrics });
  await monitor.probe();
  expect(monitor.writable).toBe(true);
  const file = path.join(dir, 'spool', 'full.wav');
  const spool = new SpoolWriter(file, { sampleRate: RATE, channels: 2, observer: monitor });
  appendPattern(spool, 0, RATE);
  await spool.flush();

  const filler = path.join(dir, 'filler');
  await fillDisk(filler);

  appendPattern(spool, RATE, 2 * RATE);
  await spool.flush();
  expect(spool.failure).toMatchObject({ code: 'ENOSPC' });
  expect(monitor.writable).toBe(false);
  expect(monitor.reason).toMatch(/ENOSPC/);
  await monitor.probe();
  expect(monitor.writable).toBe(false);
  const [lost] = spool.lostSpans;
  expect(spool.lostSpans).toEqual([{ start_ms: expect.any(Number), end_ms: 3000, reason: 'spool write failed' }]);
  // A write that found the last few bytes free may have kept a little of the first lost chunk.
  expect(lost.start_ms).toBeGreaterThanOrEqual(1000);
  expect(lost.start_ms).toBeLessThan(1100);
  expect(
    (await metrics.registry.getSingleMetric('callrec_spool_write_errors_total')!.get()).values[0].value,
  ).toBeGreaterThanOrEqual(1);
  expect(
    (await metrics.registry.getSingleMetric('callrec_spool_lost_seconds_total')!.get()).values[0].value,
  ).toBeCloseTo((3000 - lost.start_ms) / 1000, 2);

  await fs.rm(filler);
  await monitor.probe();
  expect(monitor.writable).toBe(true);
  appendPattern(spool, 3 * RATE, RATE);
  await spool.flush();
  expect(spool.failure).toBeNull();
  expect(await spool.close()).toBe(4 * RATE);
  // The span's first millisecond may hold the last bytes a short write kept.
  const ms = RATE / 1000;
  expectPatternWithHole(await readSpoolPcm(file), 4 * RATE, lost.start_ms * ms, (lost.start_ms + 1) * ms, 3 * RATE);
});
