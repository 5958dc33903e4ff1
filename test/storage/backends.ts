import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import S3rver, { type S3rverMiddleware } from 's3rver';
import { LocalObjectStore } from '../../src/storage/local.js';
import { GcsObjectStore } from '../../src/storage/gcs.js';
import { S3ObjectStore } from '../../src/storage/s3.js';
import type { ObjectStore } from '../../src/storage/types.js';
import { GcsTestServer } from '../helpers/gcs-server.js';

/** One object store on a real (local) back end, for the shared contract suite. */
export interface Backend {
  store: ObjectStore;
  /** Upload bytes the back end has taken in so far (to show a put streams rather than buffers). */
  received(): Promise<number>;
  close(): Promise<void>;
}

export const BUCKET = 'callrec-test';

export const BACKENDS: Record<string, () => Promise<Backend>> = {
  async local() {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-local-'));
    return {
      store: new LocalObjectStore(dir),
      received: () => dirSize(dir),
      close: () => fs.rm(dir, { recursive: true, force: true }),
    };
  },

  async gcs() {
    const server = await GcsTestServer.start([BUCKET]);
    return {
      store: new GcsObjectStore(`gs://${BUCKET}/recordings`, { endpoint: server.endpoint }),
      received: async () => server.uploadedBytes,
      close: () => server.close(),
    };
  },

  async s3() {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-s3rver-'));
    const server = new S3rver({
      port: 0,
      address: '127.0.0.1',
      silent: true,
      directory: dir,
      configureBuckets: [{ name: BUCKET }],
    });
    server.middleware.unshift(s3rverFixes);
    const { port } = await server.run();
    const store = new S3ObjectStore(`s3://${BUCKET}/recordings`, {
      endpoint: `http://127.0.0.1:${port}`,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    return {
      store,
      // s3rver streams object and part bodies into files under its directory as they arrive.
      received: () => dirSize(dir),
      async close() {
        store.destroy();
        server.httpServer.closeAllConnections();
        await server.close();
        await fs.rm(dir, { recursive: true, force: true });
      },
    };
  },
};

/**
 * Fills two gaps in s3rver 3.7 that S3 itself doesn't have: it reads `Range: bytes=0-0` as the
 * whole object (a falsy end), and has no AbortMultipartUpload (a failed multipart put aborts).
 */
const s3rverFixes: S3rverMiddleware = async (ctx, next) => {
  if (ctx.method === 'DELETE' && ctx.query.uploadId !== undefined) {
    ctx.status = 204;
    return;
  }
  const firstByteOnly = ctx.method === 'GET' && ctx.headers.range === 'bytes=0-0';
  await next();
  if (!firstByteOnly || ctx.status >= 300) return;
  const body = ctx.body as Readable;
  let first: Buffer = Buffer.alloc(0);
  for await (const chunk of body) {
    first = (chunk as Buffer).subarray(0, 1);
    break;
  }
  ctx.set('Content-Range', ctx.response.get('Content-Range').replace(/^bytes 0-\d+\//, 'bytes 0-0/'));
  ctx.body = first;
};

async function dirSize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    // A file can vanish between listing and stat (a temp file renamed into place).
    const stat = await fs.stat(path.join(entry.parentPath, entry.name)).catch(() => null);
    total += stat?.size ?? 0;
  }
  return total;
}

/**
 * `size` random bytes produced only as they are read, and their SHA-256 once all were read.
 * `beforeChunk` runs (and is awaited) before each chunk, with the bytes produced so far.
 */
export function generated(
  size: number,
  beforeChunk?: (produced: number) => Promise<void>,
): { stream: Readable; digest: () => string } {
  const hash = createHash('sha256');
  let produced = 0;
  let digest: string | undefined;
  const stream = new Readable({
    read() {
      void (async () => {
        await beforeChunk?.(produced);
        const n = Math.min(64 * 1024, size - produced);
        if (n === 0) {
          digest = hash.digest('hex');
          this.push(null);
          return;
        }
        const chunk = randomBytes(n);
        hash.update(chunk);
        produced += n;
        this.push(chunk);
      })().catch((err: Error) => this.destroy(err));
    },
  });
  return {
    stream,
    digest() {
      if (digest === undefined) throw new Error('the stream was not read to its end');
      return digest;
    },
  };
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function sha256(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
