import { createHash, randomBytes } from 'node:crypto';

const SECRET_PREFIX = 'crk_';
/** Characters of the secret kept in clear for display ("crk_AbCd…"), enough to tell keys apart. */
const DISPLAY_PREFIX_LENGTH = SECRET_PREFIX.length + 6;

/** A new API key secret: `crk_` + 32 random bytes, base64url. */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64url');
}

/**
 * The stored form of a secret. A plain SHA-256 is enough: the secrets we issue carry 256 bits
 * of entropy, so there is nothing for a slow KDF (bcrypt, scrypt) to protect against, and a
 * fast deterministic hash lets us look keys up by it with an index.
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** The part of a secret shown in key listings. */
export function displayPrefix(secret: string): string {
  return secret.slice(0, DISPLAY_PREFIX_LENGTH);
}
