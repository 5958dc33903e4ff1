import { Readable } from 'node:stream';
import { GcsObjectStore } from '../../src/storage/gcs.js';
import { GcsTestServer } from '../helpers/gcs-server.js';
import { BUCKET, generated, sha256 } from './backends.js';

const MiB = 1024 * 1024;

describe('GcsObjectStore against a failing server', () => {
  let server: GcsTestServer;

  beforeEach(async () => {
    server = await GcsTestServer.start([BUCKET]);
  });
  afterEach(() => server.close());

  function store(opts: { maxRetries?: number; timeoutMs?: number } = {}): GcsObjectStore {
    return new GcsObjectStore(`gs://${BUCKET}/rec`, { endpoint: server.endpoint, ...opts });
  }

  test('keys go under the URL prefix, and the URL names the store', async () => {
    const s = new GcsObjectStore(`gs://${BUCKET}/a/b/`, { endpoint: server.endpoint });
    expect(s.url).toBe(`gs://${BUCKET}/a/b`);
    await s.put('t1/call.mp3', Readable.from([Buffer.from('x')]));
    expect(server.objectNames(BUCKET)).toEqual(['a/b/t1/call.mp3']);
  });

  // Uploads are not retried (see GcsObjectStore), so an interrupted one must fail cleanly.
  test.each([
    ['the connection drops', null],
    ['the server goes down', 'refuse'],
  ] as const)('an upload cut off mid-stream because %s rejects and leaves no object', async (_, then) => {
    server.dropUploadAt(10 * MiB + 12345, then);
    await expect(store().put('cut', generated(20 * MiB).stream)).rejects.toThrow();
    await server.recover();
    expect(server.uploadedBytes).toBe(10 * MiB + 12345);
    expect(server.objectNames(BUCKET)).toEqual([]);
    expect(await store().exists('cut')).toBe(false);
  });

  test('a put rejects when the server refuses connections', async () => {
    server.fail('refuse');
    await expect(store().put('down', Readable.from([Buffer.from('x')]))).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
  });

  test('reads retry through transient 503s', async () => {
    const data = Buffer.from('after the outage');
    await store().put('retried', Readable.from([data]));
    server.fail('503', 1);
    expect(await store().size('retried')).toBe(data.length);
    server.fail('503', 1);
    expect(await sha256(await store().get('retried'))).toBe(await sha256(Readable.from([data])));
  });

  test('a put rejects when the server answers 503, without waiting out retries', async () => {
    server.fail('503');
    await expect(store().put('never', Readable.from([Buffer.from('x')]))).rejects.toMatchObject({ status: 503 });
    expect(server.requests.filter((r) => r.startsWith('POST '))).toHaveLength(1);
    expect(server.objectNames(BUCKET)).toEqual([]);
  });

  test('a read rejects after its retries when the server keeps answering 503', async () => {
    server.fail('503');
    await expect(store({ maxRetries: 1 }).size('never')).rejects.toMatchObject({ code: 503 });
    expect(server.requests).toHaveLength(2);
  });

  test('a server that never answers fails a put and a get instead of hanging them', async () => {
    await store().put('there', Readable.from([Buffer.from('x')]));
    server.fail('stall');
    const impatient = store({ timeoutMs: 200, maxRetries: 1 });
    await expect(impatient.put('stalled', Readable.from([Buffer.from('x')]))).rejects.toThrow();
    await expect(impatient.get('there')).rejects.toThrow();
  });
});
