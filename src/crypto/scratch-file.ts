import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { Readable } from 'node:stream';
import { CallrecError } from '../errors.js';

const CHUNK = 64 * 1024;
const NONCE = 12;
const TAG = 16;
/** One chunk on disk: nonce ‖ tag ‖ ciphertext of a full (zero-padded) chunk. */
const SLOT = NONCE + TAG + CHUNK;

/**
 * A temporary file that never holds plaintext: AES-256-GCM in 64 KiB chunks under a key that
 * lives only in this process's memory, so after a crash what is left is noise. Unlike the
 * recordings' format (`chunked.ts`, written once as a stream) it takes positioned writes,
 * as encoders patch their headers at the end: a chunk rewritten is sealed again under a fresh
 * random nonce, never the old one. The chunk's index is authenticated (AAD), so chunks cannot
 * be swapped. Writes are buffered one chunk at a time, appends being the common case.
 */
export class EncryptedScratchFile {
  readonly #handle: fs.FileHandle;
  readonly #key: Buffer;
  /** Chunks sealed on disk: 0 … sealed-1. */
  #sealed = 0;
  /** The chunk being filled (index `#sealed`), in memory until it is full or the file is finished. */
  #open = Buffer.alloc(CHUNK);
  #size = 0;

  private constructor(handle: fs.FileHandle, key: Buffer) {
    this.#handle = handle;
    this.#key = key;
  }

  /** Creates `file` (mode 0600; it must not exist: no clobbering, no following a planted link). */
  static async create(file: string, key: Buffer): Promise<EncryptedScratchFile> {
    return new EncryptedScratchFile(await fs.open(file, 'wx+', 0o600), key);
  }

  /** Plain bytes written so far (the highest position reached). */
  get size(): number {
    return this.#size;
  }

  /** Writes `data` at plain `position`. */
  async write(data: Uint8Array, position: number): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      const at = position + offset;
      const index = Math.floor(at / CHUNK);
      const within = at % CHUNK;
      const n = Math.min(CHUNK - within, data.length - offset);
      const part = data.subarray(offset, offset + n);
      while (index > this.#sealed) await this.#sealOpen();
      if (index === this.#sealed) {
        this.#open.set(part, within);
      } else {
        const chunk = await this.#readChunk(index);
        chunk.set(part, within);
        await this.#writeChunk(index, chunk);
      }
      offset += n;
    }
    this.#size = Math.max(this.#size, position + data.length);
  }

  /** Seals the last chunk and closes the file; it can then be read with `read`. */
  async finish(): Promise<void> {
    if (this.#size > this.#sealed * CHUNK) await this.#sealOpen();
    await this.#handle.close();
  }

  /** Closes the file without sealing what is buffered (after a failure). */
  async abandon(): Promise<void> {
    await this.#handle.close();
  }

  async #sealOpen(): Promise<void> {
    await this.#writeChunk(this.#sealed++, this.#open);
    this.#open = Buffer.alloc(CHUNK);
  }

  async #writeChunk(index: number, plain: Buffer): Promise<void> {
    await this.#handle.write(seal(this.#key, index, plain), 0, SLOT, index * SLOT);
  }

  async #readChunk(index: number): Promise<Buffer> {
    const slot = Buffer.alloc(SLOT);
    await this.#handle.read(slot, 0, SLOT, index * SLOT);
    return unseal(this.#key, index, slot);
  }

  /** Plain bytes [start, end] (inclusive) of a finished scratch file. */
  static read(file: string, key: Buffer, start: number, end: number): Readable {
    async function* plain(): AsyncGenerator<Buffer> {
      const handle = await fs.open(file, 'r');
      try {
        const slot = Buffer.alloc(SLOT);
        for (let index = Math.floor(start / CHUNK); index <= Math.floor(end / CHUNK); index++) {
          const { bytesRead } = await handle.read(slot, 0, SLOT, index * SLOT);
          if (bytesRead !== SLOT)
            throw new CallrecError('ERR_DECRYPT', `scratch file ${file} ends inside chunk ${index}`);
          const chunk = unseal(key, index, slot);
          yield chunk.subarray(Math.max(start - index * CHUNK, 0), Math.min(end - index * CHUNK, CHUNK - 1) + 1);
        }
      } finally {
        await handle.close();
      }
    }
    return Readable.from(plain(), { objectMode: false });
  }
}

function aad(index: number): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64BE(BigInt(index));
  return buf;
}

function seal(key: Buffer, index: number, plain: Buffer): Buffer {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG });
  cipher.setAAD(aad(index));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([nonce, cipher.getAuthTag(), body]);
}

function unseal(key: Buffer, index: number, slot: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, slot.subarray(0, NONCE), { authTagLength: TAG });
  decipher.setAAD(aad(index));
  decipher.setAuthTag(slot.subarray(NONCE, NONCE + TAG));
  try {
    return Buffer.concat([decipher.update(slot.subarray(NONCE + TAG)), decipher.final()]);
  } catch (err) {
    throw new CallrecError('ERR_DECRYPT', `scratch chunk ${index} does not authenticate`, { cause: err });
  }
}
