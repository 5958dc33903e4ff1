import { randomBytes, randomInt } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ObjectStore } from '../../src/storage/types.js';
import { BACKENDS, generated, readAll, sha256, type Backend } from './backends.js';

const MiB = 1024 * 1024;

describe.each(Object.keys(BACKENDS))('ObjectStore contract: %s', (name) => {
  let backend: Backend;
  let store: ObjectStore;

  beforeAll(async () => {
    backend = await BACKENDS[name]();
    store = backend.store;
  });
  afterAll(() => backend.close());

  test('put then get returns the same bytes, size and exists agree', async () => {
    const data = randomBytes(1000);
    await expect(store.put('calls/a/one.mp3', Readable.from([data]))).resolves.toEqual({ size: 1000 });
    expect(await readAll(await store.get('calls/a/one.mp3'))).toEqual(data);
    expect(await store.size('calls/a/one.mp3')).toBe(1000);
    expect(await store.exists('calls/a/one.mp3')).toBe(true);
  });

  test('an empty object', async () => {
    await expect(store.put('empty', Readable.from([Buffer.alloc(0)]))).resolves.toEqual({ size: 0 });
    expect(await store.size('empty')).toBe(0);
    expect((await readAll(await store.get('empty'))).length).toBe(0);
  });

  test('a byte range is the same slice of the object', async () => {
    const data = randomBytes(300_000);
    await store.put('ranged', Readable.from([data.subarray(0, 70_000), data.subarray(70_000)]));
    const last = data.length - 1;
    const ranges: [number, number][] = [
      [0, 0],
      [last, last],
      [0, last],
      [1, last - 1],
    ];
    for (let i = 0; i < 20; i++) {
      const start = randomInt(data.length);
      ranges.push([start, randomInt(start, data.length)]);
    }
    for (const [start, end] of ranges) {
      const got = await readAll(await store.get('ranged', { start, end }));
      expect({ start, end, equal: got.equals(data.subarray(start, end + 1)) }).toEqual({ start, end, equal: true });
    }
  });

  test('a missing object: get rejects ERR_NOT_FOUND, size is null, exists is false', async () => {
    await expect(store.get('missing')).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    await expect(store.get('missing', { start: 0, end: 9 })).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    expect(await store.size('missing')).toBeNull();
    expect(await store.exists('missing')).toBe(false);
  });

  test('delete removes the object and is idempotent', async () => {
    await store.put('doomed', Readable.from([Buffer.from('bye')]));
    await store.delete('doomed');
    expect(await store.exists('doomed')).toBe(false);
    await expect(store.get('doomed')).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    await expect(store.delete('doomed')).resolves.toBeUndefined();
  });

  test('put replaces an existing object', async () => {
    await store.put('twice', Readable.from([randomBytes(5000)]));
    const second = randomBytes(1234);
    await expect(store.put('twice', Readable.from([second]))).resolves.toEqual({ size: 1234 });
    expect(await readAll(await store.get('twice'))).toEqual(second);
    expect(await store.size('twice')).toBe(1234);
  });

  test('a key that escapes the store is rejected', async () => {
    await expect(store.put('../escape', Readable.from([Buffer.from('x')]))).rejects.toMatchObject({
      code: 'ERR_BAD_KEY',
    });
    await expect(store.get('../escape')).rejects.toMatchObject({ code: 'ERR_BAD_KEY' });
  });

  test('a put whose source fails rejects and leaves no object', async () => {
    const { stream } = generated(40 * MiB, async (produced) => {
      if (produced >= 12 * MiB) throw new Error('source broke');
    });
    await expect(store.put('broken', stream)).rejects.toThrow('source broke');
    expect(await store.exists('broken')).toBe(false);
  });

  test('a large put streams: it never runs far ahead of what the back end has received', async () => {
    const size = 48 * MiB;
    const start = await backend.received();
    let maxLead = 0;
    const source = generated(size, async (produced) => {
      maxLead = Math.max(maxLead, produced - ((await backend.received()) - start));
    });
    await expect(store.put('large', source.stream)).resolves.toEqual({ size });
    expect(await sha256(await store.get('large'))).toBe(source.digest());
    // The largest buffer in play is a GCS chunk (8 MiB) or two S3 parts in flight (2 x 5 MiB).
    expect(maxLead).toBeLessThan(20 * MiB);
  });
});
