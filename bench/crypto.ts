import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { encryptStream, openEncrypted } from '../src/crypto/chunked.js';
import { newDataKey } from '../src/crypto/keys.js';
import type { BenchResult } from './media.js';

/** About an hour of 128 kbit/s MP3. */
const PLAIN_BYTES = 60 * 1024 * 1024;
/** Pieces of the size an encoder hands the encryptor. */
const PIECE = 16 * 1024;
const SEEKS = 25;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Drains a stream, resolving with the time its first byte arrived. */
async function firstByteAt(stream: Readable): Promise<number> {
  let first = Number.NaN;
  await pipeline(
    stream,
    new Writable({
      write(_chunk, _encoding, done) {
        if (Number.isNaN(first)) first = performance.now();
        done();
      },
    }),
  );
  return first;
}

/**
 * Chunked AES-256-GCM on local disk: encrypting an hour-long recording to a file, decrypting it
 * whole, and the time to first byte of a 1 MiB range seeked into the middle (header read included).
 */
export async function benchCrypto(): Promise<BenchResult[]> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'callrec-bench-crypto-'));
  try {
    const file = path.join(dir, 'recording.mp3.enc');
    const plain = randomBytes(PLAIN_BYTES);
    const dataKey = newDataKey();
    const pieces = function* () {
      for (let at = 0; at < plain.length; at += PIECE) yield plain.subarray(at, at + PIECE);
    };

    let started = performance.now();
    await pipeline(
      Readable.from(pieces(), { objectMode: false }),
      encryptStream(dataKey, { keyId: 'bench' }),
      fs.createWriteStream(file),
    );
    const encryptSeconds = (performance.now() - started) / 1000;

    const size = (await fsp.stat(file)).size;
    const readObject = async ({ start, end }: { start: number; end: number }) =>
      fs.createReadStream(file, { start, end });

    started = performance.now();
    const whole = await openEncrypted(dataKey, size, readObject);
    await firstByteAt(await whole.read(0, whole.plainLength - 1));
    const decryptSeconds = (performance.now() - started) / 1000;

    const ttfb: number[] = [];
    for (let i = 0; i < SEEKS; i++) {
      // Seek points spread around the middle, off chunk boundaries.
      const seek = Math.floor(PLAIN_BYTES / 2 + (i - SEEKS / 2) * 65_537);
      const t0 = performance.now();
      const obj = await openEncrypted(dataKey, size, readObject);
      const first = await firstByteAt(await obj.read(seek, seek + 1024 * 1024 - 1));
      ttfb.push(first - t0);
    }

    const mb = PLAIN_BYTES / 1e6;
    return [
      { name: 'encrypt to local disk (AES-256-GCM, 64 KiB chunks)', value: mb / encryptSeconds, unit: 'MB/s' },
      { name: 'decrypt whole object from local disk', value: mb / decryptSeconds, unit: 'MB/s' },
      // The largest recording an hour makes: WAV, 8 kHz stereo 16-bit = 115.2 MB.
      {
        name: 'encryption + local upload per recorded hour (WAV 8 kHz stereo)',
        value: (115.2 / (mb / encryptSeconds)) * 1000,
        unit: 'ms',
      },
      {
        name: `time to first byte, seek into a ${PLAIN_BYTES / 2 ** 20} MiB object (median of ${SEEKS})`,
        value: median(ttfb),
        unit: 'ms',
      },
    ];
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
