import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { newDataKey, type MasterKeyring } from '../crypto/keys.js';
import { CallrecError } from '../errors.js';

/**
 * A tenant secret at rest: the value sealed with its own data key (AES-256-GCM), that key
 * wrapped by the master keyring. The envelope (rather than sealing with the master key
 * directly) keeps the master keys inside `MasterKeyring`, and lets `rewrap` rotate them.
 */
export interface SealedSecret {
  key_id: string;
  wrapped_key: string;
  /** base64 of nonce (12) ‖ ciphertext ‖ tag (16). */
  ciphertext: string;
}

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Seals a JSON value. `context` (tenant and field) is bound as additional data, so a sealed
 * value moved to another tenant or field fails to open.
 */
export function sealSecret(ring: MasterKeyring, value: unknown, context: string): SealedSecret {
  const dataKey = newDataKey();
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', dataKey, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(context));
  const sealed = Buffer.concat([
    nonce,
    cipher.update(JSON.stringify(value), 'utf8'),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  const { keyId, wrapped } = ring.wrap(dataKey);
  return { key_id: keyId, wrapped_key: wrapped, ciphertext: sealed.toString('base64') };
}

/** Opens a sealed value; throws `ERR_DECRYPT` (tampered, or another context) or `ERR_UNKNOWN_KEY`. */
export function openSecret(ring: MasterKeyring, secret: SealedSecret, context: string): unknown {
  const dataKey = ring.unwrap({ keyId: secret.key_id, wrapped: secret.wrapped_key });
  const sealed = Buffer.from(secret.ciphertext, 'base64');
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new CallrecError('ERR_DECRYPT', 'sealed secret is truncated');
  const decipher = createDecipheriv('aes-256-gcm', dataKey, sealed.subarray(0, NONCE_BYTES), {
    authTagLength: TAG_BYTES,
  });
  decipher.setAAD(Buffer.from(context));
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    const plain = Buffer.concat([
      decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)),
      decipher.final(),
    ]);
    return JSON.parse(plain.toString('utf8'));
  } catch (err) {
    throw new CallrecError('ERR_DECRYPT', `sealed secret (${context}) failed authentication`, { cause: err });
  }
}
