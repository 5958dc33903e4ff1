import { Readable } from 'node:stream';
import { encryptStream } from '../../src/crypto/chunked.js';
import { newDataKey, type MasterKeyring } from '../../src/crypto/keys.js';
import type { ObjectStore } from '../../src/storage/types.js';

/**
 * Stores `audio` as the worker does (encrypted under a fresh data key wrapped by `keyring`) and
 * returns the fields the recording row keeps, for API tests that need a ready recording.
 */
export async function putEncrypted(
  storage: ObjectStore,
  keyring: MasterKeyring,
  objectKey: string,
  audio: Buffer,
): Promise<{ objectKey: string; keyId: string; wrappedKey: string }> {
  const dataKey = newDataKey();
  const { keyId, wrapped } = keyring.wrap(dataKey);
  await storage.put(objectKey, Readable.from([audio]).pipe(encryptStream(dataKey, { keyId })));
  return { objectKey, keyId, wrappedKey: wrapped };
}
