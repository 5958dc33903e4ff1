/**
 * Chunked AES-256-GCM: the at-rest format of a recording (SPEC §6). Each chunk is sealed on its
 * own, so any byte range decrypts from just the chunks holding it, and a tampered chunk fails
 * by itself instead of poisoning the whole object.
 *
 *   header  = "CREC" ‖ version (u8) ‖ chunkSize (u32 BE) ‖ keyId length (u8) ‖ keyId ‖ noncePrefix (8)
 *   chunk i = AES-256-GCM(plain[i·chunkSize, (i+1)·chunkSize)) ‖ tag (16)
 *   nonce i = noncePrefix ‖ i (u32 BE)
 *   AAD   i = header ‖ i (u32 BE) ‖ final (u8: 1 on the last chunk, else 0)
 *
 * Every object holds at least one chunk (an empty recording is one empty final chunk), and only
 * the last chunk may be short, so the chunk count follows from the object's size. The final flag
 * makes dropping trailing chunks detectable; the index, reordering; the header (and its random
 * nonce prefix), moving chunks between objects.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { CallrecError } from '../errors.js';

const MAGIC = Buffer.from('CREC', 'latin1');
const VERSION = 1;
const TAG_LENGTH = 16;
const NONCE_PREFIX_LENGTH = 8;
/** Bytes before the key id: magic, version, chunk size, key id length. */
const FIXED_PREFIX = MAGIC.length + 1 + 4 + 1;
const MAX_KEY_ID_BYTES = 255;
/** The largest possible header; fetching this many leading bytes always gets the whole header. */
export const MAX_HEADER_LENGTH = FIXED_PREFIX + MAX_KEY_ID_BYTES + NONCE_PREFIX_LENGTH;
export const DEFAULT_CHUNK_SIZE = 64 * 1024;
/** Bounds a chunk's buffer, so a corrupt header cannot make a reader allocate gigabytes. */
const MAX_CHUNK_SIZE = 16 * 1024 * 1024;
/** The chunk index is a u32 in the nonce; beyond it nonces would repeat. */
const MAX_CHUNKS = 2 ** 32;

export interface ChunkedHeader {
  version: number;
  /** Plain bytes per chunk; the last chunk may hold fewer. */
  chunkSize: number;
  /** Names the key that wrapped this object's data key; informational, the database is authoritative. */
  keyId: string;
  noncePrefix: Buffer;
  /** The header's exact bytes, authenticated with every chunk. */
  raw: Buffer;
}

function corrupt(message: string): CallrecError {
  return new CallrecError('ERR_DECRYPT', message);
}

function checkDataKey(dataKey: Buffer): void {
  if (dataKey.length !== 32)
    throw new CallrecError('ERR_BAD_ARGUMENT', `data key must be 32 bytes, got ${dataKey.length}`);
}

function checkChunkSize(chunkSize: number): boolean {
  return Number.isInteger(chunkSize) && chunkSize >= 1 && chunkSize <= MAX_CHUNK_SIZE;
}

function writeHeader(chunkSize: number, keyId: string): ChunkedHeader {
  const id = Buffer.from(keyId, 'utf8');
  if (id.length > MAX_KEY_ID_BYTES)
    throw new CallrecError('ERR_BAD_ARGUMENT', `key id must be at most ${MAX_KEY_ID_BYTES} bytes`);
  const raw = Buffer.alloc(FIXED_PREFIX + id.length + NONCE_PREFIX_LENGTH);
  MAGIC.copy(raw, 0);
  raw.writeUInt8(VERSION, 4);
  raw.writeUInt32BE(chunkSize, 5);
  raw.writeUInt8(id.length, 9);
  id.copy(raw, FIXED_PREFIX);
  const noncePrefix = raw.subarray(FIXED_PREFIX + id.length);
  randomBytes(NONCE_PREFIX_LENGTH).copy(noncePrefix);
  return { version: VERSION, chunkSize, keyId, noncePrefix, raw };
}

/**
 * The header's length in bytes, from the object's first 10 bytes (or more). Throws
 * `ERR_DECRYPT` if they are not a callrec header.
 */
export function headerLength(prefix: Buffer): number {
  if (prefix.length < FIXED_PREFIX || !prefix.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw corrupt('not a callrec encrypted object (bad magic)');
  }
  const version = prefix.readUInt8(4);
  if (version !== VERSION) throw corrupt(`unsupported encrypted object version ${version}`);
  return FIXED_PREFIX + prefix.readUInt8(9) + NONCE_PREFIX_LENGTH;
}

/** Parses the header at the start of `buf` (trailing bytes are ignored). Throws `ERR_DECRYPT` if malformed. */
export function readHeader(buf: Buffer): ChunkedHeader {
  const length = headerLength(buf);
  if (buf.length < length) throw corrupt(`encrypted object header truncated: need ${length} bytes, have ${buf.length}`);
  const chunkSize = buf.readUInt32BE(5);
  if (!checkChunkSize(chunkSize)) throw corrupt(`encrypted object has invalid chunk size ${chunkSize}`);
  const raw = Buffer.from(buf.subarray(0, length)); // a copy: callers may reuse `buf`
  const idEnd = length - NONCE_PREFIX_LENGTH;
  return {
    version: VERSION,
    chunkSize,
    keyId: raw.toString('utf8', FIXED_PREFIX, idEnd),
    noncePrefix: raw.subarray(idEnd),
    raw,
  };
}

/** The number of chunks in an object of `objectSize` bytes. Throws `ERR_DECRYPT` if no valid object has that size. */
export function chunkCount(objectSize: number, header: ChunkedHeader): number {
  const body = objectSize - header.raw.length;
  const sealed = header.chunkSize + TAG_LENGTH;
  const count = Math.ceil(body / sealed);
  const last = body - (count - 1) * sealed;
  if (body < TAG_LENGTH || last < TAG_LENGTH || (last === TAG_LENGTH && count > 1)) {
    throw corrupt(`encrypted object is truncated or corrupt: ${objectSize} bytes cannot hold whole chunks`);
  }
  return count;
}

/** The plain (decrypted) length of an object of `objectSize` bytes. */
export function plainLength(objectSize: number, header: ChunkedHeader): number {
  return objectSize - header.raw.length - chunkCount(objectSize, header) * TAG_LENGTH;
}

/**
 * The object bytes holding plain bytes [plainStart, plainEnd] (inclusive): whole chunks, from
 * the first one needed to the last. For the final chunk `end` may lie past the object's last
 * byte, which stores clamp as HTTP ranges do; clamp `plainEnd` to `plainLength` first.
 */
export function cipherRangeFor(
  header: ChunkedHeader,
  plainStart: number,
  plainEnd: number,
): { start: number; end: number; firstChunk: number } {
  if (!(Number.isInteger(plainStart) && Number.isInteger(plainEnd) && plainStart >= 0 && plainEnd >= plainStart)) {
    throw new CallrecError('ERR_BAD_ARGUMENT', `bad plain range ${plainStart}-${plainEnd}`);
  }
  const sealed = header.chunkSize + TAG_LENGTH;
  const firstChunk = Math.floor(plainStart / header.chunkSize);
  const lastChunk = Math.floor(plainEnd / header.chunkSize);
  return {
    start: header.raw.length + firstChunk * sealed,
    end: header.raw.length + (lastChunk + 1) * sealed - 1,
    firstChunk,
  };
}

/** Per-chunk nonce and AAD buffers, rewritten in place for each chunk (createCipheriv copies them). */
class ChunkParams {
  readonly nonce = Buffer.alloc(NONCE_PREFIX_LENGTH + 4);
  readonly aad: Buffer;
  readonly #indexAt: number;

  constructor(header: ChunkedHeader) {
    header.noncePrefix.copy(this.nonce);
    this.aad = Buffer.alloc(header.raw.length + 5);
    header.raw.copy(this.aad);
    this.#indexAt = header.raw.length;
  }

  set(index: number, final: boolean): void {
    if (index >= MAX_CHUNKS)
      throw new CallrecError(
        'ERR_BAD_ARGUMENT',
        'object has too many chunks for its nonce space; use a larger chunk size',
      );
    this.nonce.writeUInt32BE(index, NONCE_PREFIX_LENGTH);
    this.aad.writeUInt32BE(index, this.#indexAt);
    this.aad.writeUInt8(final ? 1 : 0, this.#indexAt + 4);
  }
}

/** Plain in, object bytes out; see {@link encryptStream}. */
class EncryptStream extends Transform {
  readonly #key: Buffer;
  readonly #params: ChunkParams;
  /** Plain bytes of the chunk being filled; held back until we know whether it is the final one. */
  readonly #pending: Buffer;
  #filled = 0;
  #index = 0;

  constructor(dataKey: Buffer, header: ChunkedHeader) {
    super();
    this.#key = dataKey;
    this.#params = new ChunkParams(header);
    this.#pending = Buffer.allocUnsafe(header.chunkSize);
    this.push(header.raw);
  }

  #seal(final: boolean): void {
    this.#params.set(this.#index++, final);
    const cipher = createCipheriv('aes-256-gcm', this.#key, this.#params.nonce, { authTagLength: TAG_LENGTH });
    cipher.setAAD(this.#params.aad);
    const body = cipher.update(this.#pending.subarray(0, this.#filled));
    cipher.final(); // GCM emits nothing here; it computes the tag
    this.push(body);
    this.push(cipher.getAuthTag());
    this.#filled = 0;
  }

  override _transform(data: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      let at = 0;
      while (at < data.length) {
        // A full chunk is sealed only once more data proves it is not the last.
        if (this.#filled === this.#pending.length) this.#seal(false);
        const n = data.copy(this.#pending, this.#filled, at);
        this.#filled += n;
        at += n;
      }
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.#seal(true);
      done();
    } catch (err) {
      done(err as Error);
    }
  }
}

/**
 * Encrypts a recording: write plain bytes in, read the object's bytes out. Memory stays at one
 * chunk whatever the length. `dataKey` must be fresh for each object (32 bytes, see `newDataKey`).
 */
export function encryptStream(dataKey: Buffer, opts: { chunkSize?: number; keyId?: string } = {}): Transform {
  checkDataKey(dataKey);
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!checkChunkSize(chunkSize))
    throw new CallrecError('ERR_BAD_ARGUMENT', `chunk size must be an integer 1-${MAX_CHUNK_SIZE}, got ${chunkSize}`);
  return new EncryptStream(dataKey, writeHeader(chunkSize, opts.keyId ?? ''));
}

/**
 * Decrypts plain bytes [plainStart, plainEnd] (inclusive) from `objectRange`, the object's bytes
 * from `cipherRangeFor(header, plainStart, plainEnd).start` on. Each chunk is verified before
 * any of it is emitted; a chunk that fails (or is cut short) errors the stream with
 * `ERR_DECRYPT` naming it. `totalChunks` is `chunkCount(objectSize, header)`.
 */
export function decryptRange(
  dataKey: Buffer,
  header: ChunkedHeader,
  objectRange: Readable,
  plainStart: number,
  plainEnd: number,
  firstChunk: number,
  totalChunks: number,
): Readable {
  checkDataKey(dataKey);
  const { chunkSize } = header;
  const lastChunk = Math.floor(plainEnd / chunkSize);
  if (firstChunk !== Math.floor(plainStart / chunkSize) || lastChunk >= totalChunks) {
    throw new CallrecError(
      'ERR_BAD_ARGUMENT',
      `plain range ${plainStart}-${plainEnd} does not fit chunks ${firstChunk}..${totalChunks - 1}`,
    );
  }
  const params = new ChunkParams(header);
  const sealedSize = chunkSize + TAG_LENGTH;

  function open(index: number, sealed: Buffer): Buffer {
    params.set(index, index === totalChunks - 1);
    const decipher = createDecipheriv('aes-256-gcm', dataKey, params.nonce, { authTagLength: TAG_LENGTH });
    decipher.setAAD(params.aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_LENGTH));
    const plain = decipher.update(sealed.subarray(0, sealed.length - TAG_LENGTH));
    try {
      decipher.final();
    } catch (err) {
      throw new CallrecError(
        'ERR_DECRYPT',
        `chunk ${index} of ${totalChunks} failed authentication (wrong key, or the object was altered or truncated)`,
        { cause: err },
      );
    }
    // Trim to the requested bytes: only the first and last chunks of the range are partial.
    const base = index * chunkSize;
    return plain.subarray(Math.max(0, plainStart - base), Math.min(plain.length, plainEnd - base + 1));
  }

  async function* plain(): AsyncGenerator<Buffer> {
    const buffer = Buffer.allocUnsafe(sealedSize);
    let filled = 0;
    let index = firstChunk;
    for await (const data of objectRange as AsyncIterable<Buffer>) {
      let at = 0;
      while (at < data.length) {
        let sealed: Buffer;
        if (filled === 0 && data.length - at >= sealedSize) {
          sealed = data.subarray(at, at + sealedSize); // whole chunk in hand: no copy
          at += sealedSize;
        } else {
          const n = data.copy(buffer, filled, at, Math.min(data.length, at + sealedSize - filled));
          filled += n;
          at += n;
          if (filled < sealedSize) break;
          sealed = buffer;
          filled = 0;
        }
        const out = open(index, sealed);
        if (out.length > 0) yield out;
        if (index++ === lastChunk) return; // anything after is not ours to read
      }
    }
    // The source ended inside the range: only the object's final chunk may be short.
    if (index === totalChunks - 1 && filled >= TAG_LENGTH) {
      const out = open(index, buffer.subarray(0, filled));
      if (out.length > 0) yield out;
      if (index === lastChunk) return;
    }
    throw corrupt(`encrypted object ends inside chunk ${index} of ${totalChunks} (truncated)`);
  }

  return Readable.from(plain(), { objectMode: false });
}

/** An encrypted object opened for ranged reads; see {@link openEncrypted}. */
export interface EncryptedObject {
  header: ChunkedHeader;
  /** Decrypted length in bytes: what `Content-Length` and `Range` refer to. */
  plainLength: number;
  /** Plain bytes [plainStart, plainEnd] (inclusive, within `plainLength`), fetching only the chunks holding them. */
  read(plainStart: number, plainEnd: number): Promise<Readable>;
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/**
 * Reads an object's header and returns a ranged reader over its plain bytes. `readObject`
 * fetches an inclusive byte range of the stored object, e.g. `(r) => store.get(key, r)`.
 */
export async function openEncrypted(
  dataKey: Buffer,
  objectSize: number,
  readObject: (range: { start: number; end: number }) => Promise<Readable>,
): Promise<EncryptedObject> {
  checkDataKey(dataKey);
  if (objectSize === 0) throw corrupt('encrypted object is empty');
  const header = readHeader(
    await collect(await readObject({ start: 0, end: Math.min(objectSize, MAX_HEADER_LENGTH) - 1 })),
  );
  const totalChunks = chunkCount(objectSize, header);
  const plain = plainLength(objectSize, header);
  return {
    header,
    plainLength: plain,
    async read(plainStart, plainEnd) {
      if (plainEnd >= plain)
        throw new CallrecError(
          'ERR_BAD_ARGUMENT',
          `plain range ${plainStart}-${plainEnd} is beyond the ${plain}-byte recording`,
        );
      const range = cipherRangeFor(header, plainStart, plainEnd);
      const source = await readObject({ start: range.start, end: Math.min(range.end, objectSize - 1) });
      return decryptRange(dataKey, header, source, plainStart, plainEnd, range.firstChunk, totalChunks);
    },
  };
}
