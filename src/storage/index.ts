import type http from 'node:http';
import { fileURLToPath } from 'node:url';
import type { RemoteTimeouts } from '../config.js';
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
  /** Connect and request timeouts of `gs:` and `s3:` stores (default `REMOTE_TIMEOUT_DEFAULTS`). */
  timeouts?: RemoteTimeouts;
  /** The agent an `s3:` store connects through, by protocol: the egress policy's for a tenant's endpoint. */
  agent?: (protocol: 'http:' | 'https:') => http.Agent;
}

/** Opens the object store a `STORAGE_URL` names. */
export function openObjectStore(storageUrl: string, opts: OpenObjectStoreOptions = {}): ObjectStore {
  const url = new URL(storageUrl);
  switch (url.protocol) {
    case 'file:':
      return new LocalObjectStore(fileURLToPath(url));
    case 'gs:':
      return new GcsObjectStore(storageUrl, {
        endpoint: opts.endpoint,
        credentials: opts.credentials as GcsObjectStoreOptions['credentials'],
        timeoutMs: opts.timeouts?.requestMs,
      });
    case 's3:':
      return new S3ObjectStore(storageUrl, {
        endpoint: opts.endpoint,
        region: opts.region,
        credentials: opts.credentials as S3ObjectStoreOptions['credentials'],
        timeouts: opts.timeouts,
        agent: opts.agent,
      });
    default:
      throw new CallrecError(
        'ERR_CONFIG',
        `STORAGE_URL: ${url.protocol}// storage is not supported; use file://, gs:// or s3://`,
      );
  }
}
