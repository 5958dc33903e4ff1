import type { Readable } from 'node:stream';

/** Where finished recordings live: one interface for local disk, GCS and S3-compatible stores. */
export interface ObjectStore {
  /** A URL naming the store (`file:///…`, `gs://bucket/prefix`, `s3://bucket/prefix`). */
  readonly url: string;
  /**
   * Writes an object from a stream, replacing any object with that key. The object becomes
   * visible only once complete, so a reader never sees a partial object.
   */
  put(key: string, body: Readable): Promise<{ size: number }>;
  /** Reads bytes [start, end] (inclusive, as HTTP Range) or the whole object. Rejects with code `ERR_NOT_FOUND`. */
  get(key: string, range?: { start: number; end: number }): Promise<Readable>;
  /** Size in bytes, or null when there is no such object. */
  size(key: string): Promise<number | null>;
  exists(key: string): Promise<boolean>;
  /** Deletes the object; deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
}
