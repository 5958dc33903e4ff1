import type http from 'node:http';
import { Readable } from 'node:stream';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { REMOTE_TIMEOUT_DEFAULTS, type RemoteTimeouts } from '../config.js';
import { CallrecError } from '../errors.js';
import { BucketUrl } from './bucket.js';
import type { ObjectStore } from './types.js';

export interface S3ObjectStoreOptions {
  /** Endpoint of an S3-compatible store (`STORAGE_ENDPOINT`); addressed path-style (`endpoint/bucket/key`). */
  endpoint?: string;
  /** Default: `AWS_REGION`, else `us-east-1`. */
  region?: string;
  /** Default: the SDK's credential chain (environment, profile, instance role…). */
  credentials?: S3ClientConfig['credentials'];
  /** Multipart part size (at least 5 MiB, the S3 minimum; default 5 MiB). */
  partSize?: number;
  /** Parts uploaded at once (default 2). A put buffers up to `partSize * queueSize` bytes. */
  queueSize?: number;
  /** Connect timeout, and how long a request may wait for a byte (default `REMOTE_TIMEOUT_DEFAULTS`): without them a silent endpoint holds a call forever. */
  timeouts?: RemoteTimeouts;
  /** The agent requests go through, by protocol (default the SDK's). */
  agent?: (protocol: 'http:' | 'https:') => http.Agent;
}

const MiB = 1024 * 1024;

type Sdk = typeof import('@aws-sdk/client-s3') & Pick<typeof import('@aws-sdk/lib-storage'), 'Upload'>;

/** Objects in an S3 (or S3-compatible) bucket, `s3://bucket/prefix`. */
export class S3ObjectStore implements ObjectStore {
  readonly url: string;
  readonly #location: BucketUrl;
  /** The SDK (tens of MB) loads here, so only a process that uses S3 pays for it. */
  readonly #sdk: Promise<{ client: S3Client } & Sdk>;
  readonly #partSize: number;
  readonly #queueSize: number;

  constructor(storageUrl: string, opts: S3ObjectStoreOptions = {}) {
    this.#location = new BucketUrl(storageUrl, 's3:');
    this.url = this.#location.href;
    this.#partSize = opts.partSize ?? 5 * MiB;
    this.#queueSize = opts.queueSize ?? 2;
    const timeouts = opts.timeouts ?? REMOTE_TIMEOUT_DEFAULTS;
    this.#sdk = Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]).then(
      ([s3, { Upload }]) => ({
        ...s3,
        Upload,
        client: new s3.S3Client({
          region: opts.region ?? (process.env.AWS_REGION || 'us-east-1'),
          credentials: opts.credentials,
          requestHandler: {
            connectionTimeout: timeouts.connectMs,
            requestTimeout: timeouts.requestMs,
            ...(opts.agent ? { httpAgent: opts.agent('http:'), httpsAgent: opts.agent('https:') } : {}),
          },
          ...(opts.endpoint ? { endpoint: opts.endpoint, forcePathStyle: true } : {}),
        }),
      }),
    );
    this.#sdk.catch(() => {}); // reported by the first call that needs it
  }

  async put(key: string, body: Readable): Promise<{ size: number }> {
    const { client, Upload } = await this.#sdk;
    let size = 0;
    // Count on the way through: S3 answers a completed upload with an ETag, not a size.
    const counted = Readable.from(
      (async function* () {
        for await (const chunk of body) {
          size += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
      })(),
      { objectMode: false },
    );
    // One PutObject for a body under a part, else a multipart upload, which S3 makes visible only
    // on completion and aborts (dropping its parts) on failure.
    const upload = new Upload({
      client,
      params: {
        Bucket: this.#location.bucket,
        Key: this.#location.objectName(key),
        Body: counted,
        ContentType: 'application/octet-stream',
      },
      partSize: this.#partSize,
      queueSize: this.#queueSize,
    });
    try {
      await upload.done();
    } catch (err) {
      counted.destroy(); // and with it the caller's stream, as `pipeline` would
      throw err;
    }
    return { size };
  }

  async get(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const { client, GetObjectCommand } = await this.#sdk;
    try {
      const res = await client.send(
        new GetObjectCommand({
          Bucket: this.#location.bucket,
          Key: this.#location.objectName(key),
          Range: range ? `bytes=${range.start}-${range.end}` : undefined,
        }),
      );
      // In Node the SDK's body is the HTTP response stream.
      return res.Body as Readable;
    } catch (err) {
      if (notFound(err)) throw new CallrecError('ERR_NOT_FOUND', `no object ${key}`, { cause: err });
      throw err;
    }
  }

  async size(key: string): Promise<number | null> {
    const { client, HeadObjectCommand } = await this.#sdk;
    try {
      const head = await client.send(
        new HeadObjectCommand({ Bucket: this.#location.bucket, Key: this.#location.objectName(key) }),
      );
      return head.ContentLength ?? 0;
    } catch (err) {
      if (notFound(err)) return null;
      throw err;
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.size(key)) !== null;
  }

  async delete(key: string): Promise<void> {
    // S3 answers 204 for a missing key too.
    const { client, DeleteObjectCommand } = await this.#sdk;
    await client.send(new DeleteObjectCommand({ Bucket: this.#location.bucket, Key: this.#location.objectName(key) }));
  }

  /** Closes the client's sockets. */
  destroy(): void {
    void this.#sdk.then(
      ({ client }) => client.destroy(),
      () => {},
    );
  }
}

function notFound(err: unknown): boolean {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404;
}
