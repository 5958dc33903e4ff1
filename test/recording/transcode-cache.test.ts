import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { encodeRecording } from '../../media/encoders/index.js';
import { EncryptedScratchFile } from '../../src/crypto/scratch-file.js';
import { httpStatus, type HttpError } from '../../src/errors.js';
import { TranscodeCache } from '../../src/recording/transcode-cache.js';
import { CALL_TONES, CALL_TONES_SECONDS, decodeAudio, synthesizeTones } from '../helpers/audio.js';
import { readyCall, startTestServer, type TestServer } from '../helpers/server.js';

const MARKER = Buffer.from('PLAINTEXT-MARKER-');

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

/** Every file under `dir`, read whole. */
async function contentsUnder(dir: string): Promise<Buffer[]> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  return Promise.all(names.map((name) => fs.readFile(path.join(dir, name))));
}

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-scratch-'));
});
afterEach(() => fs.rm(dir, { recursive: true, force: true }));

describe('EncryptedScratchFile', () => {
  it('takes appends, gaps and header patches, reads any range back, and keeps no plaintext on disk', async () => {
    const key = randomBytes(32);
    const file = path.join(dir, 'scratch');
    const expected = Buffer.alloc(300_000);
    const out = await EncryptedScratchFile.create(file, key);
    const write = async (data: Buffer, position: number) => {
      data.copy(expected, position);
      await out.write(data, position);
    };
    for (let position = 100; position < 200_000; position += 7_000)
      await write(Buffer.concat(Array(400).fill(MARKER)), position);
    await write(Buffer.from('HEADER PATCH'), 0); // into a sealed chunk
    await write(Buffer.alloc(1000, 7), 299_000); // past a gap of unwritten chunks
    await write(Buffer.from('ACROSS'), 65_533); // straddling two sealed chunks
    await out.finish();
    expect(out.size).toBe(300_000);

    const disk = await fs.readFile(file);
    expect(disk.includes(MARKER)).toBe(false);
    expect(disk.includes(Buffer.from('HEADER PATCH'))).toBe(false);
    expect((await fs.stat(file)).mode & 0o777).toBe(0o600);
    for (const [start, end] of [
      [0, 299_999],
      [0, 0],
      [65_530, 65_540],
      [131_071, 131_072],
      [299_500, 299_999],
    ]) {
      expect(await readAll(EncryptedScratchFile.read(file, key, start, end))).toEqual(
        expected.subarray(start, end + 1),
      );
    }
    await expect(readAll(EncryptedScratchFile.read(file, randomBytes(32), 0, 10))).rejects.toMatchObject({
      code: 'ERR_DECRYPT',
    });
  });

  it('never replaces an existing file', async () => {
    const file = path.join(dir, 'existing');
    await fs.writeFile(file, 'keep me');
    await expect(EncryptedScratchFile.create(file, randomBytes(32))).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await fs.readFile(file, 'utf8')).toBe('keep me');
  });
});

describe('TranscodeCache', () => {
  it('clears what an earlier process left when it opens', async () => {
    const cacheDir = path.join(dir, 'cache');
    await fs.mkdir(cacheDir);
    await fs.writeFile(path.join(cacheDir, 'left-by-a-crash'), MARKER);
    const cache = await TranscodeCache.open(cacheDir);
    expect(await fs.readdir(cacheDir)).toEqual([]);
    await cache.close();
  });

  it("makes each copy once, leaves nothing behind a failed make, and evicts a recording's copies", async () => {
    const cacheDir = path.join(dir, 'cache');
    const cache = await TranscodeCache.open(cacheDir);
    let makes = 0;
    const make = async (out: { write(data: Uint8Array, position: number): Promise<void> }) => {
      makes++;
      await out.write(Buffer.concat(Array(100).fill(MARKER)), 0);
    };
    const [a, b] = await Promise.all([cache.get('rec-1', 'wav', 't1', make), cache.get('rec-1', 'wav', 't1', make)]);
    await cache.get('rec-2', 'wav', 't1', make);
    expect(makes).toBe(2);
    expect(a.size).toBe(b.size);
    expect(await readAll(a.read(0, MARKER.length - 1))).toEqual(MARKER);
    for (const contents of await contentsUnder(cacheDir)) expect(contents.includes(MARKER)).toBe(false);

    await expect(
      cache.get('rec-3', 'ogg', 't1', async (out) => {
        await out.write(MARKER, 0);
        throw new Error('encoder failed');
      }),
    ).rejects.toThrow('encoder failed');
    expect(await fs.readdir(cacheDir)).toHaveLength(2);

    await cache.evict('rec-1');
    expect(await fs.readdir(cacheDir)).toHaveLength(1);
    await cache.get('rec-1', 'wav', 't1', make);
    expect(makes).toBe(3);
    await cache.close();
  });

  it('runs at most MAX_TRANSCODES at once and MAX_TRANSCODES_PER_TENANT of one tenant: 429 or 503 with Retry-After; a copy being made is shared', async () => {
    const cache = await TranscodeCache.open(path.join(dir, 'limited'), { limits: { perNode: 2, perTenant: 1 } });
    let finish!: () => void;
    const held = new Promise<void>((resolve) => (finish = resolve));
    const slow = async (out: { write(data: Uint8Array, position: number): Promise<void> }) => {
      await held;
      await out.write(MARKER, 0);
    };
    const refusal = async (recordingId: string, tenantId: string) => {
      const err = await cache.get(recordingId, 'wav', tenantId, slow).then(
        () => null,
        (e: unknown) => e,
      );
      return (
        err && {
          status: httpStatus(err),
          code: (err as HttpError).code,
          headers: (err as HttpError).headers,
          message: (err as Error).message,
        }
      );
    };
    const first = cache.get('rec-a1', 'wav', 'tenant-a', slow);
    expect(await refusal('rec-a2', 'tenant-a')).toEqual({
      status: 429,
      code: 'ERR_RATE_LIMITED',
      headers: { 'Retry-After': '5' },
      message: expect.stringMatching(/MAX_TRANSCODES_PER_TENANT/),
    });
    const shared = cache.get('rec-a1', 'wav', 'tenant-a', slow);
    const other = cache.get('rec-b1', 'wav', 'tenant-b', slow);
    expect(await refusal('rec-c1', 'tenant-c')).toEqual({
      status: 503,
      code: 'ERR_TRANSCODE_BUSY',
      headers: { 'Retry-After': '5' },
      message: expect.stringMatching(/MAX_TRANSCODES\)/),
    });
    finish();
    await Promise.all([first, shared, other]);
    await expect(cache.get('rec-c1', 'wav', 'tenant-c', slow)).resolves.toMatchObject({ size: MARKER.length });
    await expect(cache.get('rec-a2', 'wav', 'tenant-a', slow)).resolves.toMatchObject({ size: MARKER.length });
    await cache.close();
  });
});

describe('?format= conversions on a server', () => {
  let ts: TestServer;
  beforeAll(async () => {
    ts = await startTestServer();
  });
  afterAll(() => ts.close());

  it('are never plaintext on disk and go with their recording on DELETE', async () => {
    const pcm = synthesizeTones(8000, 1, CALL_TONES_SECONDS, CALL_TONES);
    const mp3: Buffer[] = [];
    for await (const { data } of encodeRecording('mp3', {
      sampleRate: 8000,
      channels: 1,
      chunks: (async function* () {
        yield pcm;
      })(),
    }))
      mp3.push(Buffer.from(data));
    const callId = await readyCall(ts, Buffer.concat(mp3));
    const res = await ts.api(`/api/calls/${callId}/recording?format=wav`);
    expect(res.status).toBe(200);
    const wav = Buffer.from(await res.arrayBuffer());
    expect((await decodeAudio(wav, 'wav')).sampleRate).toBe(8000);

    const cacheDir = path.join(ts.dataDir, 'tmp', 'transcoded');
    const cached = await contentsUnder(cacheDir);
    expect(cached).toHaveLength(1);
    expect(cached[0].includes(wav.subarray(0, 44))).toBe(false);
    expect(cached[0].includes(Buffer.from('WAVE'))).toBe(false);

    expect((await ts.api(`/api/calls/${callId}/recording`, { method: 'DELETE' })).status).toBe(200);
    expect(await fs.readdir(cacheDir)).toEqual([]);
  });
});
