import { CallrecError } from '../errors.js';

/** A bucket store's URL (`gs://bucket/prefix`, `s3://bucket/prefix`): the bucket, and the prefix every key goes under. */
export class BucketUrl {
  readonly bucket: string;
  /** Empty, or ends with `/`. */
  readonly prefix: string;
  /** The normalised URL, for `ObjectStore.url`. */
  readonly href: string;

  constructor(storageUrl: string, protocol: 'gs:' | 's3:') {
    const url = new URL(storageUrl);
    if (url.protocol !== protocol)
      throw new CallrecError('ERR_CONFIG', `STORAGE_URL: expected ${protocol}//bucket/prefix, got "${storageUrl}"`);
    if (!url.hostname) throw new CallrecError('ERR_CONFIG', `STORAGE_URL: no bucket in "${storageUrl}"`);
    const prefix = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, '');
    this.bucket = url.hostname;
    this.prefix = prefix ? `${prefix}/` : '';
    this.href = `${protocol}//${this.bucket}/${prefix}`;
  }

  /**
   * The object name for a store key. Keys are rejected where the local store would reject them
   * (`..`, absolute), so a key means the same object on every back end.
   */
  objectName(key: string): string {
    if (key === '' || key.split('/').some((part) => part === '' || part === '.' || part === '..')) {
      throw new CallrecError('ERR_BAD_KEY', `bad object key: ${key}`);
    }
    return this.prefix + key;
  }
}
