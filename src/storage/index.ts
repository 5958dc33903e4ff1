import { fileURLToPath } from 'node:url';
import { CallrecError } from '../errors.js';
import { GcsObjectStore, type GcsObjectStoreOptions } from './gcs.js';
import { LocalObjectStore } from './local.js';
import { S3ObjectStore, type S3ObjectStoreOptions } from './s3.js';
import type { ObjectStore } from './types.js';

export type { ObjectStore } from './types.js';

export interface OpenObjectStoreOptions {
  /** API endpoint override (`STORAGE_ENDPOINT`) for `gs:` and `s3:` stores. */
  endpoint?: string;
  /**
   * Credentials in the back end's own shape (a tenant's bucket): GCS service-account
   * `{ client_email, private_key }`, S3 `{ accessKeyId, secretAccessKey, sessionToken? }`.
   * Default: the SDK's own credential chain.
   */
  credentials?: unknown;
  /** S3 region (default `AWS_REGION`, else `us-east-1`). */
  region?: string;
}

/** Opens the object store a `STORAGE_URL` names. */
export function openObjectStore(storageUrl: string, opts: OpenObjectStoreOptions = {}): ObjectStore {
  const url = new URL(storageUrl);
  switch (url.protocol) {
    case 'file:':
      return new LocalObjectStore(fileURLToPath(url));
    case 'gs:':
      return new GcsObjectStore(storageUrl, { endpoint: opts.endpoint, credentials: opts.credentials as GcsObjectStoreOptions['credentials'] });
    case 's3:':
      return new S3ObjectStore(storageUrl, { endpoint: opts.endpoint, region: opts.region, credentials: opts.credentials as S3ObjectStoreOptions['credentials'] });
    default:
      throw new CallrecError('ERR_CONFIG', `STORAGE_URL: ${url.protocol}// storage is not supported; use file://, gs:// or s3://`);
  }
}
