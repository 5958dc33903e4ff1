import { fileURLToPath } from 'node:url';
import { CallrecError } from '../errors.js';
import { LocalObjectStore } from './local.js';
import type { ObjectStore } from './types.js';

export type { ObjectStore } from './types.js';

/** Opens the object store a `STORAGE_URL` names. */
export function openObjectStore(storageUrl: string): ObjectStore {
  const url = new URL(storageUrl);
  switch (url.protocol) {
    case 'file:':
      return new LocalObjectStore(fileURLToPath(url));
    default:
      // gs:// and s3:// arrive with the encrypted storage pipeline (issue 5).
      throw new CallrecError('ERR_CONFIG', `STORAGE_URL: ${url.protocol}// storage is not available yet; use file://`);
  }
}
