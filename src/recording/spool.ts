import { write as writeFd } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { NO_POOL, type BufferPool } from '../../media/buffer-pool.js';
import { parseWavHeader, WAV_HEADER_BYTES, WAV_UNKNOWN_SIZE, wavHeader } from '../../media/wav.js';
import { CallrecError } from '../errors.js';

/*
 * The spool is a 16-bit PCM WAV file written while the call runs. Its RIFF and data sizes are
 * left at 0xFFFFFFFF ("unknown", as streaming WAV writers do) until the spool is closed, so any
 * prefix of the file, such as what a crash leaves behind, is itself a readable recording.
 */

export interface SpoolWriterOptions {
  sampleRate: number;
  channels: number;
  /** Pending audio is written once it reaches this many milliseconds (and on every `flush()`); default 1000. */
  flushMs?: number;
  /** Where the pending buffer and each write's copy come from, and go back to. */
  pool?: BufferPool;
}

/**
 * One positioned write through the callback API: a spool writes every second for every live
 * call, and `FileHandle.write`'s promise machinery costs measurably more per call (bench).
 */
function writeAt(fd: number, chunk: Buffer, position: number): Promise<void> {
  return new Promise((resolve, reject) => writeFd(fd, chunk, 0, chunk.length, position, (err) => (err ? reject(err) : resolve())));
}

/**
 * Appends interleaved PCM to a spool file. `append` only copies into a fixed pending buffer;
 * writes happen in the background, one at a time, in order. A write error (a full disk) is kept
 * and reported by `error`, `flush()` and `close()`; later audio is discarded, never reordered.
 */

export class SpoolWriter {
  readonly path: string;
  readonly sampleRate: number;
  readonly channels: number;
  readonly #pool: BufferPool;
  #pending: Buffer;
  #pendingBytes = 0;
  #fileBytes = WAV_HEADER_BYTES;
  /** The chain of file operations, in order: open and header first, then each write. */
  #writing: Promise<unknown>;
  #handle: fs.FileHandle | null = null;
  #error: Error | null = null;
  #closed = false;

  /**
   * Starts a spool file (and its directory) with an open-ended WAV header. Returns at once, so
   * capture can begin on the frame that asked for it; the file is created in the background
   * and any failure is reported like a write error.
   */
  constructor(file: string, options: SpoolWriterOptions) {
    const opts = { flushMs: 1000, ...options };
    this.path = file;
    this.sampleRate = opts.sampleRate;
    this.channels = opts.channels;
    this.#pool = opts.pool ?? NO_POOL;
    this.#pending = this.#take(Math.ceil((opts.sampleRate * opts.flushMs) / 1000) * opts.channels * 2);
    this.#writing = (async () => {
      await fs.mkdir(path.dirname(file), { recursive: true });
      this.#handle = await fs.open(file, 'wx', 0o600);
      await this.#handle.write(wavHeader(opts.sampleRate, opts.channels, WAV_UNKNOWN_SIZE), 0, WAV_HEADER_BYTES, 0);
    })().catch((err: Error) => {
      this.#error = err;
    });
  }

  /** The first write error, if any: audio after it was not spooled. */
  get error(): Error | null {
    return this.#error;
  }

  /** Sample frames handed to `append` that are (or will be, once written) in the file. */
  get frames(): number {
    return (this.#fileBytes - WAV_HEADER_BYTES + this.#pendingBytes) / (2 * this.channels);
  }

  /** Copies `frames` interleaved frames from `pcm`. */
  append(pcm: Int16Array, frames: number): void {
    if (this.#closed) throw new CallrecError('ERR_SPOOL_CLOSED', 'spool is closed');
    if (this.#error) return;
    const bytes = Buffer.from(pcm.buffer, pcm.byteOffset, frames * this.channels * 2);
    let offset = 0;
    while (offset < bytes.length) {
      const n = Math.min(bytes.length - offset, this.#pending.length - this.#pendingBytes);
      bytes.copy(this.#pending, this.#pendingBytes, offset, offset + n);
      this.#pendingBytes += n;
      offset += n;
      if (this.#pendingBytes === this.#pending.length) this.#startWrite();
    }
  }

  /** Starts writing what is pending and resolves once everything appended so far is on disk. */
  flush(): Promise<void> {
    this.#startWrite();
    return this.#writing.then(() => {
      if (this.#error) throw this.#error;
    });
  }

  #startWrite(): void {
    if (this.#pendingBytes === 0) return;
    // A write of its own copy, so `append` can go on filling the pending buffer meanwhile. The
    // copy is back in the pool once written (within milliseconds), so a node's calls share a few.
    const copy = this.#take(this.#pending.length);
    const chunk = copy.subarray(0, this.#pending.copy(copy, 0, 0, this.#pendingBytes));
    this.#pendingBytes = 0;
    const position = this.#fileBytes;
    this.#fileBytes += chunk.length;
    this.#writing = this.#writing.then(async () => {
      try {
        if (!this.#error) await writeAt(this.#handle!.fd, chunk, position);
      } catch (err) {
        this.#error = err as Error;
        this.#fileBytes = position;
      } finally {
        this.#pool.give(copy.buffer as ArrayBuffer);
      }
    });
  }

  #take(bytes: number): Buffer {
    return Buffer.from(this.#pool.take(bytes));
  }

  /** Writes what is pending, fills in the WAV sizes, syncs and closes. Returns the frame count. */
  async close(): Promise<number> {
    if (this.#closed) throw new CallrecError('ERR_SPOOL_CLOSED', 'spool is closed');
    this.#startWrite();
    this.#closed = true;
    this.#pool.give(this.#pending.buffer as ArrayBuffer);
    this.#pending = Buffer.alloc(0);
    await this.#writing;
    const handle = this.#handle;
    if (!handle) return 0; // never created: the error says why
    try {
      const dataBytes = this.#fileBytes - WAV_HEADER_BYTES;
      await handle.write(wavHeader(this.sampleRate, this.channels, dataBytes), 0, WAV_HEADER_BYTES, 0);
      await handle.sync();
    } catch (err) {
      this.#error ??= err as Error;
    } finally {
      await handle.close();
    }
    return (this.#fileBytes - WAV_HEADER_BYTES) / (2 * this.channels);
  }
}

export interface SpoolInfo {
  sampleRate: number;
  channels: number;
  /** Whole sample frames present (a torn last frame is ignored). */
  frames: number;
}

/** Reads a spool's header; works on a closed spool and on any prefix a crash left. */
export async function readSpoolInfo(file: string): Promise<SpoolInfo> {
  const handle = await fs.open(file, 'r');
  try {
    const header = Buffer.alloc(WAV_HEADER_BYTES);
    const { bytesRead } = await handle.read(header, 0, WAV_HEADER_BYTES, 0);
    let parsed;
    try {
      parsed = parseWavHeader(header.subarray(0, bytesRead));
    } catch {
      parsed = null;
    }
    // callrec writes the canonical 44-byte header; anything else is not one of its spools.
    if (!parsed || parsed.dataStart !== WAV_HEADER_BYTES) throw new CallrecError('ERR_BAD_SPOOL', `${file} is not a callrec spool`);
    const { channels, sampleRate } = parsed;
    const { size } = await handle.stat();
    const dataBytes = Math.min(parsed.dataBytes, size - WAV_HEADER_BYTES);
    return { sampleRate, channels, frames: Math.floor(dataBytes / (2 * channels)) };
  } finally {
    await handle.close();
  }
}

/** Streams a spool's interleaved PCM of sample frames [start, end) in chunks of up to `chunkFrames` frames. */
export async function* readSpool(file: string, info: SpoolInfo, start = 0, end = info.frames, chunkFrames = 8192): AsyncGenerator<Int16Array> {
  const handle = await fs.open(file, 'r');
  try {
    const frameBytes = 2 * info.channels;
    for (let frame = start; frame < end; frame += chunkFrames) {
      const n = Math.min(chunkFrames, end - frame);
      // A fresh buffer per chunk: consumers (encoders) may hold on to it.
      const buf = Buffer.allocUnsafe(n * frameBytes);
      await handle.read(buf, 0, buf.length, WAV_HEADER_BYTES + frame * frameBytes);
      yield new Int16Array(buf.buffer, buf.byteOffset, n * info.channels);
    }
  } finally {
    await handle.close();
  }
}
