import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readSpoolInfo, SpoolWriter } from '../../src/recording/spool.js';
import { positionPattern, readSpoolPcm } from '../helpers/audio.js';

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-spool-'));
});
afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

test('audio appended while earlier audio is being written lands in order, byte for byte', async () => {
  const file = path.join(dir, 'spool', 'a.wav');
  // 100 ms buffers: each append below fills several, so writes queue behind each other while
  // appending goes on.
  const spool = new SpoolWriter(file, { sampleRate: 8000, channels: 2, flushMs: 100 });
  let frames = 0;
  const flushes: Array<Promise<void>> = [];
  for (const n of [1, 799, 800, 2500, 13, 4000, 160, 160, 7]) {
    spool.append(positionPattern(frames, n), n);
    frames += n;
    // Not awaited: the next append must not wait for the disk.
    if (frames % 2) flushes.push(spool.flush());
  }
  await Promise.all(flushes);
  expect(await spool.close()).toBe(frames);
  expect(spool.failure).toBeNull();
  expect(spool.lostSpans).toEqual([]);
  expect(await readSpoolPcm(file)).toEqual(positionPattern(0, frames));
});

test('what was flushed is on disk, readable as a spool, before the spool is closed', async () => {
  const file = path.join(dir, 'b.wav');
  const spool = new SpoolWriter(file, { sampleRate: 8000, channels: 2 });
  spool.append(positionPattern(0, 12_345), 12_345);
  await spool.flush();
  // The header still says "size unknown", as a crash would leave it.
  expect((await readSpoolInfo(file)).frames).toBe(12_345);
  expect(await readSpoolPcm(file)).toEqual(positionPattern(0, 12_345));
  spool.append(positionPattern(12_345, 100), 100);
  expect(await spool.close()).toBe(12_445);
  expect(await readSpoolPcm(file)).toEqual(positionPattern(0, 12_445));
});

test('a spool that cannot be created reports why, loses its audio as a span, and never takes the file over', async () => {
  const file = path.join(dir, 'c.wav');
  await fs.writeFile(file, 'taken');
  const spool = new SpoolWriter(file, { sampleRate: 8000, channels: 2 });
  spool.append(positionPattern(0, 8000), 8000);
  await spool.flush();
  expect(spool.failure).toMatchObject({ code: 'EEXIST' });
  expect(spool.lostSpans).toEqual([{ start_ms: 0, end_ms: 1000, reason: 'spool write failed' }]);
  expect(await spool.close()).toBe(0);
  expect(await fs.readFile(file, 'utf8')).toBe('taken');
});
