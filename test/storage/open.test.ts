import { Readable } from 'node:stream';
import { openObjectStore } from '../../src/storage/index.js';
import { LocalObjectStore } from '../../src/storage/local.js';
import { S3ObjectStore } from '../../src/storage/s3.js';
import { GcsTestServer } from '../helpers/gcs-server.js';
import { BUCKET } from './backends.js';

describe('openObjectStore', () => {
  test('picks the store by URL scheme', () => {
    expect(openObjectStore('file:///tmp/callrec-recordings')).toBeInstanceOf(LocalObjectStore);
    const s3 = openObjectStore('s3://bucket/pre/fix', {
      endpoint: 'http://127.0.0.1:9',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    });
    expect(s3).toBeInstanceOf(S3ObjectStore);
    expect(s3.url).toBe('s3://bucket/pre/fix');
    (s3 as S3ObjectStore).destroy();
  });

  test('passes the endpoint on: a gs:// store reaches it without credentials', async () => {
    const server = await GcsTestServer.start([BUCKET]);
    try {
      const store = openObjectStore(`gs://${BUCKET}`, { endpoint: server.endpoint });
      await store.put('k', Readable.from([Buffer.from('v')]));
      expect(server.object(BUCKET, 'k')?.toString()).toBe('v');
    } finally {
      await server.close();
    }
  });

  test('rejects other schemes and a bucket URL without a bucket', () => {
    expect(() => openObjectStore('ftp://host/dir')).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
    expect(() => openObjectStore('gs:///prefix')).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
  });
});
