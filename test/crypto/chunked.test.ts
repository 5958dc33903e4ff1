import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DEFAULT_CHUNK_SIZE,
  MAX_HEADER_LENGTH,
  chunkCount,
  cipherRangeFor,
  decryptRange,
  encryptStream,
  openEncrypted,
  plainLength,
  readHeader,
  type EncryptedObject,
} from '../../src/crypto/chunked.js';
import { newDataKey } from '../../src/crypto/keys.js';

const CHUNK = 1000; // not a power of two, so off-by-one slips in offset arithmetic show
const SEALED = CHUNK + 16;

let dir: string;
beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'callrec-crypto-'));
});
afterAll(() => fsp.rm(dir, { recursive: true, force: true }));

/** Audio-looking plain bytes: a RIFF header, then a recognisable text pattern and some noise. */
function plainOf(size: number): Buffer {
  const text = Buffer.from('callrec-plaintext-marker:'.repeat(Math.ceil(size / 25) + 1)).subarray(0, size);
  if (size >= 4) text.write('RIFF', 0, 'latin1');
  for (let i = 7; i < size; i += 97) text[i] = randomInt(256);
  return text;
}

/** Feeds `plain` to the encryptor in uneven pieces, to cross chunk boundaries at odd places. */
async function encrypt(plain: Buffer, dataKey: Buffer, chunkSize = CHUNK): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let at = 0; at < plain.length; ) {
    const n = Math.min(plain.length - at, 1 + randomInt(chunkSize * 2));
    pieces.push(plain.subarray(at, at + n));
    at += n;
  }
  const out: Buffer[] = [];
  await pipeline(Readable.from(pieces), encryptStream(dataKey, { chunkSize, keyId: 'test-key' }), async (source) => {
    for await (const part of source) out.push(part as Buffer);
  });
  return Buffer.concat(out);
}

let fileSeq = 0;
/** Writes `object` to disk and opens it as the API would, counting the object bytes each range pulls. */
async function open(object: Buffer, dataKey: Buffer): Promise<{ obj: EncryptedObject; pulled: () => number }> {
  const file = path.join(dir, `obj-${fileSeq++}.enc`);
  await fsp.writeFile(file, object);
  let bytes = 0;
  const obj = await openEncrypted(dataKey, object.length, async ({ start, end }) => {
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        bytes += chunk.length;
        done(null, chunk);
      },
    });
    pipeline(fs.createReadStream(file, { start, end }), counter).catch(() => {}); // errors reach the reader through `counter`
    return counter;
  });
  return { obj, pulled: () => bytes };
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

async function readRange(obj: EncryptedObject, start: number, end: number): Promise<Buffer> {
  return collect(await obj.read(start, end));
}

/** Reads the whole object, going through every step that can reject a tampered one. */
async function readAll(object: Buffer, dataKey: Buffer): Promise<Buffer> {
  const { obj } = await open(object, dataKey);
  return readRange(obj, 0, obj.plainLength - 1);
}

function flipped(object: Buffer, at: number): Buffer {
  const copy = Buffer.from(object);
  copy[at] ^= 0x40;
  return copy;
}

const decryptError = expect.objectContaining({ code: 'ERR_DECRYPT' });

describe('encryptStream', () => {
  const key = newDataKey();

  test.each([0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 5 * CHUNK + 17])(
    '%i plain bytes: opaque object that decrypts to exactly the input',
    async (size) => {
      const plain = plainOf(size);
      const object = await encrypt(plain, key);
      const header = readHeader(object);
      expect(header.chunkSize).toBe(CHUNK);
      expect(header.keyId).toBe('test-key');
      expect(object.subarray(0, 4).toString('latin1')).toBe('CREC');
      expect(object.length).toBe(header.raw.length + size + 16 * Math.max(1, Math.ceil(size / CHUNK)));
      expect(plainLength(object.length, header)).toBe(size);
      for (const magic of ['RIFF', 'ID3', 'OggS']) expect(object.includes(Buffer.from(magic, 'latin1'))).toBe(false);
      expect(object.subarray(0, 2).equals(Buffer.from([0xff, 0xfb]))).toBe(false);
      expect(object.includes(Buffer.from('plaintext'))).toBe(false);
      if (size > 0) expect((await readAll(object, key)).equals(plain)).toBe(true);
    },
  );

  test('the default chunk size is 64 KiB and the empty object still authenticates its final chunk', async () => {
    const object = await encrypt(Buffer.alloc(0), key, DEFAULT_CHUNK_SIZE);
    const header = readHeader(object);
    expect(header.chunkSize).toBe(65536);
    expect(chunkCount(object.length, header)).toBe(1);
    const ok = collect(decryptRange(key, header, Readable.from([object.subarray(header.raw.length)]), 0, 0, 0, 1));
    await expect(ok).resolves.toHaveLength(0);
    const bad = collect(
      decryptRange(
        key,
        header,
        Readable.from([flipped(object, object.length - 1).subarray(header.raw.length)]),
        0,
        0,
        0,
        1,
      ),
    );
    await expect(bad).rejects.toEqual(decryptError);
  });

  test('the same plain bytes under the same key encrypt differently (fresh nonce prefix)', async () => {
    const plain = plainOf(3000);
    const [a, b] = [await encrypt(plain, key), await encrypt(plain, key)];
    expect(a.equals(b)).toBe(false);
  });

  test('rejects bad data keys and chunk sizes', () => {
    expect(() => encryptStream(Buffer.alloc(16))).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
    expect(() => encryptStream(key, { chunkSize: 0 })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }));
  });
});

describe('ranged decryption', () => {
  const key = newDataKey();
  const size = 9 * CHUNK + 345; // 10 chunks, the last one short
  const plain = plainOf(size);
  let object: Buffer;
  beforeAll(async () => {
    object = await encrypt(plain, key);
  });

  test('random ranges equal the same plain bytes and pull only the chunks holding them', async () => {
    const header = readHeader(object);
    const { obj, pulled } = await open(object, key);
    expect(obj.plainLength).toBe(size);
    const afterHeader = pulled();
    expect(afterHeader).toBe(Math.min(object.length, MAX_HEADER_LENGTH));
    let before = afterHeader;
    for (let i = 0; i < 300; i++) {
      const start = randomInt(size);
      const end = i % 10 === 0 ? start : start + randomInt(Math.min(size - start, 3 * CHUNK));
      const got = await readRange(obj, start, end);
      expect(got.equals(plain.subarray(start, end + 1))).toBe(true);
      const first = Math.floor(start / CHUNK);
      const last = Math.floor(end / CHUNK);
      const needed =
        Math.min(object.length, header.raw.length + (last + 1) * SEALED) - (header.raw.length + first * SEALED);
      expect(pulled() - before).toBe(needed);
      before = pulled();
    }
  });

  test('cipherRangeFor names whole chunks', () => {
    const header = readHeader(object);
    const h = header.raw.length;
    expect(cipherRangeFor(header, 0, 0)).toEqual({ start: h, end: h + SEALED - 1, firstChunk: 0 });
    expect(cipherRangeFor(header, CHUNK - 1, CHUNK)).toEqual({ start: h, end: h + 2 * SEALED - 1, firstChunk: 0 });
    expect(cipherRangeFor(header, 2 * CHUNK, 3 * CHUNK - 1)).toEqual({
      start: h + 2 * SEALED,
      end: h + 3 * SEALED - 1,
      firstChunk: 2,
    });
  });

  test('decryptRange stops at the last chunk it needs even when handed the rest of the object', async () => {
    const header = readHeader(object);
    const source = Readable.from([object.subarray(header.raw.length + 3 * SEALED)], { objectMode: false });
    const got = await collect(
      decryptRange(key, header, source, 3 * CHUNK + 5, 4 * CHUNK + 9, 3, chunkCount(object.length, header)),
    );
    expect(got.equals(plain.subarray(3 * CHUNK + 5, 4 * CHUNK + 10))).toBe(true);
    expect(source.destroyed).toBe(true);
  });

  test('destroying the plain stream (a client going away) releases the object stream', async () => {
    const header = readHeader(object);
    const source = new PassThrough(); // a slow store: two chunks arrived, the rest still to come
    source.write(object.subarray(header.raw.length, header.raw.length + 2 * SEALED));
    const plainStream = decryptRange(key, header, source, 0, size - 1, 0, chunkCount(object.length, header));
    for await (const part of plainStream) {
      expect((part as Buffer).equals(plain.subarray(0, CHUNK))).toBe(true);
      break; // leaving the loop destroys plainStream
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(source.destroyed).toBe(true);
  });

  test('a byte flipped in any chunk fails ranges covering it, naming the chunk, and spares the others', async () => {
    const header = readHeader(object);
    const chunks = chunkCount(object.length, header);
    for (let c = 0; c < chunks; c++) {
      const chunkStart = header.raw.length + c * SEALED;
      const chunkBytes = Math.min(SEALED, object.length - chunkStart);
      // Somewhere in the ciphertext, or in the tag.
      const at = chunkStart + (c % 2 === 0 ? randomInt(chunkBytes - 16) : chunkBytes - 1 - randomInt(16));
      const { obj } = await open(flipped(object, at), key);
      const plainEnd = Math.min(size, (c + 1) * CHUNK) - 1;
      await expect(readRange(obj, c * CHUNK, c * CHUNK)).rejects.toEqual(
        expect.objectContaining({ code: 'ERR_DECRYPT', message: expect.stringContaining(`chunk ${c} of ${chunks}`) }),
      );
      await expect(readRange(obj, Math.max(0, c * CHUNK - 10), plainEnd)).rejects.toEqual(decryptError);
      for (const other of [c - 1, c + 1]) {
        if (other < 0 || other >= chunks) continue;
        const s = other * CHUNK;
        const e = Math.min(size, s + CHUNK) - 1;
        expect((await readRange(obj, s, e)).equals(plain.subarray(s, e + 1))).toBe(true);
      }
    }
  });

  test('bytes before a bad chunk are right, and nothing from the bad chunk is emitted', async () => {
    const header = readHeader(object);
    const { obj } = await open(flipped(object, header.raw.length + 2 * SEALED + 5), key);
    const emitted: Buffer[] = [];
    const stream = await obj.read(10, 5 * CHUNK);
    await expect(
      (async () => {
        for await (const part of stream) emitted.push(part as Buffer);
      })(),
    ).rejects.toEqual(decryptError);
    expect(Buffer.concat(emitted).equals(plain.subarray(10, 2 * CHUNK))).toBe(true);
  });

  test('a byte flipped anywhere in the header fails decryption', async () => {
    const headerBytes = readHeader(object).raw.length;
    for (let at = 0; at < headerBytes; at++) {
      await expect(readAll(flipped(object, at), key)).rejects.toEqual(decryptError);
    }
  });

  test('truncation fails: a cut inside the last chunk, a whole chunk dropped, or a stub left', async () => {
    await expect(readAll(object.subarray(0, object.length - 1), key)).rejects.toEqual(decryptError);
    const exact = await encrypt(plainOf(4 * CHUNK), key);
    await expect(readAll(exact.subarray(0, exact.length - SEALED), key)).rejects.toEqual(
      expect.objectContaining({ code: 'ERR_DECRYPT', message: expect.stringContaining('chunk 2 of 3') }),
    );
    await expect(readAll(exact.subarray(0, exact.length - SEALED + 10), key)).rejects.toEqual(decryptError);
    // A truncated object read through its original size: the store hands back fewer bytes than the chunk needs.
    const header = readHeader(object);
    const total = chunkCount(object.length, header);
    const short = Readable.from([object.subarray(header.raw.length + 9 * SEALED, object.length - 20)], {
      objectMode: false,
    });
    await expect(collect(decryptRange(key, header, short, 9 * CHUNK, size - 1, 9, total))).rejects.toEqual(
      expect.objectContaining({ code: 'ERR_DECRYPT', message: expect.stringContaining('truncated') }),
    );
  });

  test('reordered chunks, chunks from another object, and the wrong key all fail', async () => {
    const header = readHeader(object);
    const h = header.raw.length;
    const swapped = Buffer.from(object);
    object.copy(swapped, h + SEALED, h + 2 * SEALED, h + 3 * SEALED);
    object.copy(swapped, h + 2 * SEALED, h + SEALED, h + 2 * SEALED);
    await expect(readAll(swapped, key)).rejects.toEqual(decryptError);

    const other = await encrypt(plainOf(size), key);
    const spliced = Buffer.from(object);
    other.copy(spliced, h + 4 * SEALED, h + 4 * SEALED, h + 5 * SEALED);
    await expect(readAll(spliced, key)).rejects.toEqual(decryptError);

    await expect(readAll(object, newDataKey())).rejects.toEqual(decryptError);
  });

  test('rejects objects that are not ours', async () => {
    await expect(readAll(Buffer.from('RIFF....WAVEfmt '), key)).rejects.toEqual(decryptError);
    await expect(readAll(Buffer.alloc(0), key)).rejects.toEqual(decryptError);
    expect(() => readHeader(object.subarray(0, 12))).toThrow(decryptError);
  });
});
