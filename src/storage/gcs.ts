import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Bucket, RETRYABLE_ERR_FN_DEFAULT, Storage, StorageOptions } from '@google-cloud/storage';
import { CallrecError } from '../errors.js';
import { BucketUrl } from './bucket.js';
import type { ObjectStore } from './types.js';

export interface GcsObjectStoreOptions {
  /** API endpoint (`STORAGE_ENDPOINT`: an emulator or private endpoint); requests to it carry no credentials. */
  endpoint?: string;
  /** Service-account credentials; default: the library's application-default credentials. */
  credentials?: StorageOptions['credentials'];
  /** Retries of a failed read or metadata request before giving up (default 3; the library reads 0 as 3). */
  maxRetries?: number;
  /** Per-request timeout in ms (default 60 s), so a stalled server fails a put instead of hanging it. */
  timeoutMs?: number;
}

type Interceptor = Storage['interceptors'][number];

/** First pause before a read is retried; doubled on each further attempt (the library's default). */
const READ_RETRY_DELAY_MS = 1000;

/** Objects in a Google Cloud Storage bucket, `gs://bucket/prefix`. */
export class GcsObjectStore implements ObjectStore {
  readonly url: string;
  readonly #location: BucketUrl;
  /**
   * The bucket, and the same bucket without the library's retries for object reads (see `get`).
   * The SDK (gRPC, protobufs: tens of MB) loads here, so only a process that uses GCS pays for it.
   */
  readonly #sdk: Promise<{ bucket: Bucket; reads: Bucket; retryable: typeof RETRYABLE_ERR_FN_DEFAULT }>;
  readonly #maxRetries: number;
  readonly #timeoutMs: number;

  constructor(storageUrl: string, opts: GcsObjectStoreOptions = {}) {
    this.#location = new BucketUrl(storageUrl, 'gs:');
    this.url = this.#location.href;
    const timeout = (this.#timeoutMs = opts.timeoutMs ?? 60_000);
    this.#maxRetries = opts.maxRetries ?? 3;
    const storage = (
      Storage: typeof import('@google-cloud/storage').Storage,
      retryOptions: StorageOptions['retryOptions'],
    ) => {
      const client = new Storage({
        ...(opts.endpoint ? { apiEndpoint: opts.endpoint, useAuthWithCustomEndpoint: false } : {}),
        credentials: opts.credentials,
        timeout,
        retryOptions,
      });
      // `timeout` above covers JSON API calls only; resumable upload requests take their options
      // from interceptors, and without one a stalled server would hang a put forever.
      // (The library types interceptors as seeing only JSON API requests, hence the cast.)
      client.interceptors.push({
        request: (reqOpts) => Object.assign(reqOpts, { timeout }) as ReturnType<Interceptor['request']>,
      });
      return client.bucket(this.#location.bucket);
    };
    // The default idempotency strategy matters: it leaves uploads (which carry no generation
    // precondition) unretried. The library's resume after an interrupted upload crashes the
    // process with an unhandled 'error' when its status query fails too (the server went away;
    // seen with 7.22), so a failed put rejects instead and the caller retries the whole put.
    this.#sdk = import('@google-cloud/storage').then((sdk) => ({
      bucket: storage(sdk.Storage, { maxRetries: this.#maxRetries }),
      reads: storage(sdk.Storage, { autoRetry: false }),
      retryable: sdk.RETRYABLE_ERR_FN_DEFAULT,
    }));
    this.#sdk.catch(() => {}); // reported by the first call that needs it
  }

  async put(key: string, body: Readable): Promise<{ size: number }> {
    const file = (await this.#sdk).bucket.file(this.#location.objectName(key));
    // A resumable upload session, streamed as one request: the object appears only once the
    // session completes, so a failed put leaves nothing behind.
    await pipeline(body, file.createWriteStream({ resumable: true, contentType: 'application/octet-stream' }));
    return { size: Number(file.metadata.size) };
  }

  /**
   * Retried here, not by the library (8.4): its read-stream retry pipes the new attempt into the
   * destroyed previous one, which on Node 22+ throws out of an event handler and ends the
   * process; and its read streams ignore `timeout`, so a stalled server would hang a get.
   */
  async get(key: string, range?: { start: number; end: number }): Promise<Readable> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#open(key, range);
      } catch (err) {
        if (
          attempt >= this.#maxRetries ||
          !(await this.#sdk).retryable(err as Parameters<typeof RETRYABLE_ERR_FN_DEFAULT>[0])
        )
          throw err;
        await sleep(READ_RETRY_DELAY_MS * 2 ** attempt);
      }
    }
  }

  async #open(key: string, range?: { start: number; end: number }): Promise<Readable> {
    const stream = (await this.#sdk).reads
      .file(this.#location.objectName(key))
      .createReadStream(range ? { start: range.start, end: range.end } : {});
    // The library sends the request on the first read and reports a 404 only as a stream error;
    // wait for the response so a missing object rejects here, as the contract says.
    const deadline = setTimeout(
      () =>
        stream.destroy(new CallrecError('ERR_STORAGE_UNREACHABLE', `no response for ${key} in ${this.#timeoutMs} ms`)),
      this.#timeoutMs,
    );
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: unknown) =>
          reject(notFound(err) ? new CallrecError('ERR_NOT_FOUND', `no object ${key}`, { cause: err }) : err);
        stream.once('error', onError);
        stream.once('response', (res: IncomingMessage) => {
          if ((res.statusCode ?? 0) >= 300) return; // the error follows
          stream.off('error', onError);
          resolve();
        });
        stream.read(0);
      });
    } finally {
      clearTimeout(deadline);
    }
    return stream;
  }

  async size(key: string): Promise<number | null> {
    try {
      const [metadata] = await (await this.#sdk).bucket.file(this.#location.objectName(key)).getMetadata();
      return Number(metadata.size);
    } catch (err) {
      if (notFound(err)) return null;
      throw err;
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.size(key)) !== null;
  }

  async delete(key: string): Promise<void> {
    await (await this.#sdk).bucket.file(this.#location.objectName(key)).delete({ ignoreNotFound: true });
  }
}

function notFound(err: unknown): boolean {
  return (err as { code?: unknown }).code === 404;
}
