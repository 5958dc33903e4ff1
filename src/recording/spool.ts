import { write as writeFd } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { NO_POOL, type BufferPool } from '../../media/buffer-pool.js';
import { parseWavHeader, WAV_HEADER_BYTES, WAV_UNKNOWN_SIZE, wavHeader } from '../../media/wav.js';
import { CallrecError } from '../errors.js';
import type { LostSpan } from '../store/index.js';
import { addLostSpan, LOST } from './lost-spans.js';

/*
 * The spool is a 16-bit PCM WAV file written while the call runs. Its RIFF and data sizes are
 * left at 0xFFFFFFFF ("unknown", as streaming WAV writers do) until the spool is closed, so any
 * prefix of the file, such as what a crash leaves behind, is itself a readable recording.
 */

export interface SpoolWriterOptions {
  sampleRate: number;
  channels: number;
  /**
   * Pending audio is written once it reaches this many milliseconds, and on every `flush()`;
   * default 1000. A live call's session flushes every 500 ms (`TICK_MS`), which is what bounds
   * the audio a process killed mid-call loses; this size is a cap for bursts between flushes.
   */
  flushMs?: number;
  /** Where the pending buffer and each write's copy come from, and go back to. */
  pool?: BufferPool;
  /** Told of what happens to the spool that the node as a whole cares about. */
  observer?: SpoolObserver;
}

/** What a spool tells the node: its disk failing, audio it could not keep, its lifetime. */
export interface SpoolObserver {
  opened(spool: SpoolWriter): void;
  /** A write failed (a full disk): the node's spool disk is to be taken for unwritable. */
  writeFailed(err: Error): void;
  /** Audio the spool could not keep, in seconds. */
  lost(reason: string, seconds: number): void;
  closed(spool: SpoolWriter): void;
}

/**
 * Audio queued for the disk at most, in ms: past it a stalled or slow disk would grow memory
 * without bound, so what would queue is dropped instead (a lost span; the file keeps its place,
 * so later audio lands where it belongs). Room for the burst a network stall releases at once
 * (capture appends a socket read's frames in one go), which a healthy disk writes in milliseconds.
 */
export const MAX_QUEUED_MS = 8000;

/**
 * One positioned write through the callback API: a spool writes twice a second for every live
 * call, and `FileHandle.write`'s promise machinery costs measurably more per call (bench).
 * Resolves with the bytes written, which a nearly full disk may make fewer than asked.
 */
function writeAt(fd: number, chunk: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    writeFd(fd, chunk, 0, chunk.length, position, (err, written) => (err ? reject(err) : resolve(written))),
  );
}

/**
 * Appends interleaved PCM to a spool file. `append` only copies into a fixed pending buffer;
 * writes happen in the background, one at a time, in order, each at the place its audio belongs.
 * Nothing stops the spool: audio a write could not keep (a full disk) or that found too many
 * writes queued is a lost span, and the file's later audio still lands at its true position
 * (what is missing reads as silence), so writing resumes by itself once the disk takes it.
 */
export class SpoolWriter {
  readonly path: string;
  readonly sampleRate: number;
  readonly channels: number;
  readonly #pool: BufferPool;
  readonly #observer: SpoolObserver | null;
  #pending: Buffer;
  #pendingBytes = 0;
  /** Bytes handed to writes not yet done, and the most that may be. */
  #queuedBytes = 0;
  readonly #maxQueuedBytes: number;
  /** End of the file as appended (holes included), and of what is really on disk. */
  #fileBytes = WAV_HEADER_BYTES;
  #extent = 0;
  /** The chain of file operations, in order: each write opens the file and writes the header first if that is not done yet. */
  #writing: Promise<unknown> = Promise.resolve();
  #handle: fs.FileHandle | null = null;
  #headerWritten = false;
  #failure: Error | null = null;
  readonly #lostSpans: LostSpan[] = [];
  #closed = false;

  /**
   * Starts a spool file (and its directory) with an open-ended WAV header. Returns at once, so
   * capture can begin on the frame that asked for it; the file is created in the background
   * and any failure is reported like a write error (and tried again with the next write).
   */
  constructor(file: string, options: SpoolWriterOptions) {
    const opts = { flushMs: 1000, ...options };
    this.path = file;
    this.sampleRate = opts.sampleRate;
    this.channels = opts.channels;
    this.#pool = opts.pool ?? NO_POOL;
    this.#observer = opts.observer ?? null;
    this.#pending = this.#take(Math.ceil((opts.sampleRate * opts.flushMs) / 1000) * opts.channels * 2);
    this.#maxQueuedBytes = Math.ceil((opts.sampleRate * MAX_QUEUED_MS) / 1000) * opts.channels * 2;
    this.#observer?.opened(this);
    this.#writing = this.#prepare().catch((err: Error) => this.#failed(err));
  }

  /** The error of the latest write if it failed; null once a write succeeds (again). */
  get failure(): Error | null {
    return this.#failure;
  }

  /** Audio the file lacks, in ms of the recording, oldest first (see `addLostSpan`). */
  get lostSpans(): readonly LostSpan[] {
    return this.#lostSpans;
  }

  /** Whether the whole spool is in shared object storage too (see `ShippedSpoolWriter`), so any worker can finalize it. */
  get shipped(): boolean {
    return false;
  }

  /** Sample frames handed to `append`: the spool's length, lost audio included. */
  get frames(): number {
    return (this.#fileBytes - WAV_HEADER_BYTES + this.#pendingBytes) / (2 * this.channels);
  }

  /** Sample frames up to the end of the last write that reached the disk (holes before it read as silence). */
  get framesOnDisk(): number {
    return Math.max(0, this.#extent - WAV_HEADER_BYTES) / (2 * this.channels);
  }

  /** Bytes appended but not on disk yet: the pending buffer and the writes under way. */
  get pendingBytes(): number {
    return this.#pendingBytes + this.#queuedBytes;
  }

  /** Copies `frames` interleaved frames from `pcm`. */
  append(pcm: Int16Array, frames: number): void {
    if (this.#closed) throw new CallrecError('ERR_SPOOL_CLOSED', 'spool is closed');
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

  /** Marks sample frames [start, end) of the spool as lost audio (silence where the call had sound). */
  markLost(start: number, end: number, reason: string): void {
    const ms = 1000 / this.sampleRate;
    addLostSpan(this.#lostSpans, Math.floor(start * ms), Math.ceil(end * ms), reason);
  }

  /** Starts writing what is pending and resolves once everything appended so far is on disk, or lost. */
  flush(): Promise<void> {
    this.#startWrite();
    return this.#writing.then(() => {});
  }

  #startWrite(): void {
    if (this.#pendingBytes === 0) return;
    const position = this.#fileBytes;
    const length = this.#pendingBytes;
    this.#pendingBytes = 0;
    this.#fileBytes += length;
    if (this.#queuedBytes + length > this.#maxQueuedBytes) {
      this.#lose(position, position + length, LOST.queueFull);
      return;
    }
    // A write of its own copy, so `append` can go on filling the pending buffer meanwhile. The
    // copy is back in the pool once written (within milliseconds), so a node's calls share a few.
    const copy = this.#take(this.#pending.length);
    const chunk = copy.subarray(0, this.#pending.copy(copy, 0, 0, length));
    this.#queuedBytes += length;
    this.#writing = this.#writing.then(async () => {
      let written = 0;
      try {
        // Prepared once; awaiting the no-op after that was an extra async hop on every write.
        if (!this.#headerWritten) await this.#prepare();
        written = await writeAt(this.#handle!.fd, chunk, position);
        if (written < length)
          throw Object.assign(new Error(`short write to ${this.path}: ${written} of ${length} bytes`), {
            code: 'ENOSPC',
          });
        this.#failure = null;
      } catch (err) {
        this.#failed(err as Error);
        this.#lose(position + written, position + length, LOST.writeFailed);
      } finally {
        if (written > 0) this.#extent = Math.max(this.#extent, position + written);
        this.#queuedBytes -= length;
        this.#pool.give(copy.buffer as ArrayBuffer);
      }
    });
  }

  /** Opens the file and writes its open-ended header, unless done; a failed attempt is tried again by the next write. */
  async #prepare(): Promise<void> {
    if (!this.#handle) {
      await fs.mkdir(path.dirname(this.path), { recursive: true });
      // `wx`: a spool never takes over a file that is there, whatever happened to its own.
      this.#handle = await fs.open(this.path, 'wx', 0o600);
    }
    if (!this.#headerWritten) {
      await this.#handle.write(wavHeader(this.sampleRate, this.channels, WAV_UNKNOWN_SIZE), 0, WAV_HEADER_BYTES, 0);
      this.#headerWritten = true;
      this.#extent = Math.max(this.#extent, WAV_HEADER_BYTES);
    }
  }

  #failed(err: Error): void {
    this.#failure = err;
    this.#observer?.writeFailed(err);
  }

  /** Bytes [from, to) of the file will hold no audio. */
  #lose(from: number, to: number, reason: string): void {
    if (to <= from) return;
    const frameBytes = 2 * this.channels;
    this.markLost(
      Math.floor((from - WAV_HEADER_BYTES) / frameBytes),
      Math.ceil((to - WAV_HEADER_BYTES) / frameBytes),
      reason,
    );
    this.#observer?.lost(reason, (to - from) / frameBytes / this.sampleRate);
  }

  #take(bytes: number): Buffer {
    return Buffer.from(this.#pool.take(bytes));
  }

  /**
   * Writes what is pending, fills in the WAV sizes, syncs and closes. Returns the frame count:
   * every frame appended, lost ones (silence in the file) included; 0 if the file could never
   * be written at all.
   */
  async close(): Promise<number> {
    if (this.#closed) throw new CallrecError('ERR_SPOOL_CLOSED', 'spool is closed');
    this.#startWrite();
    this.#closed = true;
    this.#pool.give(this.#pending.buffer as ArrayBuffer);
    this.#pending = Buffer.alloc(0);
    await this.#writing;
    this.#observer?.closed(this);
    const handle = this.#handle;
    if (!handle || !this.#headerWritten) {
      await handle?.close();
      return 0;
    }
    try {
      // Audio lost at the end leaves the file short: extended (with silence, taking no space) to its true length.
      if (this.#extent < this.#fileBytes) await handle.truncate(this.#fileBytes);
      this.#extent = this.#fileBytes;
      const dataBytes = this.#fileBytes - WAV_HEADER_BYTES;
      await handle.write(wavHeader(this.sampleRate, this.channels, dataBytes), 0, WAV_HEADER_BYTES, 0);
      await handle.sync();
    } catch (err) {
      this.#failed(err as Error);
    } finally {
      await handle.close();
    }
    return this.framesOnDisk;
  }
}

export interface SpoolInfo {
  sampleRate: number;
  channels: number;
  /** Whole sample frames present (a torn last frame is ignored). */
  frames: number;
}

/**
 * Reads a spool's header; works on a closed spool and on any prefix a crash left (`closed`
 * false: its writer never filled in the sizes).
 */
export async function readSpoolInfo(file: string): Promise<SpoolInfo & { closed: boolean }> {
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
    if (!parsed || parsed.dataStart !== WAV_HEADER_BYTES)
      throw new CallrecError('ERR_BAD_SPOOL', `${file} is not a callrec spool`);
    const { channels, sampleRate } = parsed;
    const { size } = await handle.stat();
    const dataBytes = Math.min(parsed.dataBytes, size - WAV_HEADER_BYTES);
    return {
      sampleRate,
      channels,
      frames: Math.floor(dataBytes / (2 * channels)),
      closed: parsed.dataBytes !== Infinity,
    };
  } finally {
    await handle.close();
  }
}

/** Streams a spool's interleaved PCM of sample frames [start, end) in chunks of up to `chunkFrames` frames. */
export async function* readSpool(
  file: string,
  info: SpoolInfo,
  start = 0,
  end = info.frames,
  chunkFrames = 8192,
): AsyncGenerator<Int16Array> {
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
