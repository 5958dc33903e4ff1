/**
 * Envelope keys (SPEC §6): each recording has its own data key, stored wrapped either by a
 * master key (AES-256-GCM, kept in a ring so rotation leaves old recordings readable) or by a
 * tenant's RSA public key (then only the tenant can unwrap it).
 *
 * Where the master keys live:
 * - current: `CALLREC_MASTER_KEY` if set, else `$DATA_DIR/master.key` (generated on first use);
 * - retired: every `$DATA_DIR/master-keys/*.key`, plus `master.key` when the environment key
 *   overrides it. Key files hold the key in base64; ids are derived from the key, never the name.
 *
 * Rotating: with the file, `rotate()` does it all. With `CALLREC_MASTER_KEY` the operator owns
 * the key, so the rule is: copy the old value into `$DATA_DIR/master-keys/<anything>.key`, set
 * the variable to the new value, restart, then rewrap; `rotate()` refuses and says so.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  hkdfSync,
  publicEncrypt,
  randomBytes,
  constants,
} from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { CallrecError } from '../errors.js';

/** A data key as stored beside its recording. */
export interface WrappedKey {
  /** A master key id (16 hex chars), or `tenant:<fingerprint>` for a tenant-wrapped key. */
  keyId: string;
  /** base64 of nonce (12) ‖ ciphertext (32) ‖ tag (16) for master keys; of the RSA-OAEP block for tenants. */
  wrapped: string;
}

const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const TENANT_PREFIX = 'tenant:';

/** A fresh random 256-bit data key, one per recording. */
export function newDataKey(): Buffer {
  return randomBytes(KEY_BYTES);
}

/** First 16 hex chars of SHA-256: a stable, non-secret name for a key. */
function fingerprint(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

function decodeKey(text: string, source: string): Buffer {
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== KEY_BYTES)
    throw new CallrecError('ERR_CONFIG', `${source}: must hold a 32-byte key, base64-encoded`);
  return key;
}

/** The wrap binds the key id, so a wrapped key relabelled with another id fails to unwrap. */
function aadFor(keyId: string): Buffer {
  return Buffer.from(`callrec-data-key:${keyId}`);
}

/**
 * Writes a secret file with mode 0600, atomically: readers see the whole key or no file.
 * `exclusive` fails with EEXIST rather than replace (link, unlike rename, refuses to overwrite).
 */
async function writeSecret(file: string, text: string, exclusive = false): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(temp, text, { mode: 0o600, flag: 'wx' });
  try {
    if (exclusive) await fs.link(temp, file);
    else await fs.rename(temp, file);
  } finally {
    await fs.rm(temp, { force: true });
  }
}

/** The master keys: one current key that wraps, any number of retired keys that only unwrap. */
export class MasterKeyring {
  readonly #keys = new Map<string, Buffer>();
  #currentId: string;
  readonly #dataDir: string;
  /** True when the current key comes from `CALLREC_MASTER_KEY`, which we cannot rotate. */
  readonly #fromEnv: boolean;

  private constructor(dataDir: string, current: Buffer, fromEnv: boolean) {
    this.#dataDir = dataDir;
    this.#fromEnv = fromEnv;
    this.#currentId = this.#add(current);
  }

  /**
   * Loads the ring: `masterKey` (base64, from `CALLREC_MASTER_KEY`) or `$dataDir/master.key`,
   * creating that file if neither exists, plus the retired keys under `$dataDir/master-keys/`.
   */
  static async load(opts: { dataDir: string; masterKey?: string | undefined }): Promise<MasterKeyring> {
    const { dataDir, masterKey } = opts;
    await fs.mkdir(dataDir, { recursive: true });
    const file = path.join(dataDir, 'master.key');
    const fileKey = await readKeyFile(file);
    let ring: MasterKeyring;
    if (masterKey !== undefined) {
      ring = new MasterKeyring(dataDir, decodeKey(masterKey, 'CALLREC_MASTER_KEY'), true);
      // Recordings from before the operator set the variable stay readable.
      if (fileKey) ring.#add(fileKey);
    } else {
      ring = new MasterKeyring(dataDir, fileKey ?? (await createKeyFile(file)), false);
    }
    await ring.#addRetired();
    return ring;
  }

  async #addRetired(): Promise<void> {
    const retiredDir = path.join(this.#dataDir, 'master-keys');
    let names: string[] = [];
    try {
      names = await fs.readdir(retiredDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const name of names) {
      if (!name.endsWith('.key')) continue;
      const key = await readKeyFile(path.join(retiredDir, name));
      if (key) this.#add(key);
    }
  }

  /**
   * As `unwrap`, but a master key id the ring lacks makes it read the key files again first:
   * `callrec keys rotate-master`, run by another process, may have re-wrapped the data key under
   * a key this long-running ring has not seen. The file's key then becomes current here too.
   */
  async unwrapFresh(wrapped: WrappedKey): Promise<Buffer> {
    if (!this.#keys.has(wrapped.keyId) && !wrapped.keyId.startsWith(TENANT_PREFIX)) {
      const fileKey = await readKeyFile(path.join(this.#dataDir, 'master.key'));
      if (fileKey) {
        const id = this.#add(fileKey);
        if (!this.#fromEnv) this.#currentId = id;
      }
      await this.#addRetired();
    }
    return this.unwrap(wrapped);
  }

  #add(key: Buffer): string {
    const id = fingerprint(key);
    this.#keys.set(id, key);
    return id;
  }

  /** The id of the key that wraps new data keys. */
  get currentKeyId(): string {
    return this.#currentId;
  }

  /** Ids of every key in the ring, current first. */
  get keyIds(): string[] {
    return [this.#currentId, ...[...this.#keys.keys()].filter((id) => id !== this.#currentId)];
  }

  /**
   * A 256-bit secret for `purpose` derived (HKDF-SHA256) from master key `keyId`, by default the
   * current one: every node holding the same keys derives the same secret, and the master key
   * itself is never used for anything but wrapping. Null when the ring lacks `keyId`.
   */
  deriveSecret(purpose: string, keyId: string = this.#currentId): Buffer | null {
    const master = this.#keys.get(keyId);
    return master ? Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `callrec:${purpose}`, KEY_BYTES)) : null;
  }

  /** Wraps a data key under the current master key (AES-256-GCM, random nonce). */
  wrap(dataKey: Buffer): WrappedKey {
    if (dataKey.length !== KEY_BYTES)
      throw new CallrecError('ERR_BAD_ARGUMENT', `data key must be ${KEY_BYTES} bytes, got ${dataKey.length}`);
    const keyId = this.#currentId;
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#keys.get(keyId)!, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(aadFor(keyId));
    const sealed = Buffer.concat([nonce, cipher.update(dataKey), cipher.final(), cipher.getAuthTag()]);
    return { keyId, wrapped: sealed.toString('base64') };
  }

  /**
   * Recovers a data key wrapped by any key in the ring. Throws `ERR_UNKNOWN_KEY` when the ring
   * lacks that key (including tenant-wrapped keys), `ERR_DECRYPT` when the wrap fails authentication.
   */
  unwrap({ keyId, wrapped }: WrappedKey): Buffer {
    const master = this.#keys.get(keyId);
    if (!master) {
      const hint = keyId.startsWith(TENANT_PREFIX) ? ' (wrapped for a tenant: only its private key can unwrap it)' : '';
      throw new CallrecError('ERR_UNKNOWN_KEY', `master key ${keyId} is not in the keyring${hint}`);
    }
    const sealed = Buffer.from(wrapped, 'base64');
    if (sealed.length !== NONCE_BYTES + KEY_BYTES + TAG_BYTES)
      throw new CallrecError(
        'ERR_DECRYPT',
        `wrapped data key has ${sealed.length} bytes, expected ${NONCE_BYTES + KEY_BYTES + TAG_BYTES}`,
      );
    const decipher = createDecipheriv('aes-256-gcm', master, sealed.subarray(0, NONCE_BYTES), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(aadFor(keyId));
    decipher.setAuthTag(sealed.subarray(NONCE_BYTES + KEY_BYTES));
    const dataKey = decipher.update(sealed.subarray(NONCE_BYTES, NONCE_BYTES + KEY_BYTES));
    try {
      decipher.final();
    } catch (err) {
      throw new CallrecError('ERR_DECRYPT', `wrapped data key failed authentication under master key ${keyId}`, {
        cause: err,
      });
    }
    return dataKey;
  }

  /**
   * Makes a new random key current and retires the old one (written to
   * `master-keys/<oldKeyId>.key` before `master.key` is replaced, so a crash loses neither).
   * Throws `ERR_CONFIG` when the key comes from `CALLREC_MASTER_KEY` (see the module comment).
   */
  async rotate(): Promise<{ oldKeyId: string; newKeyId: string }> {
    if (this.#fromEnv) {
      throw new CallrecError(
        'ERR_CONFIG',
        'CALLREC_MASTER_KEY is set, so the operator rotates it: copy the current value into ' +
          `${path.join(this.#dataDir, 'master-keys')}/<name>.key, set CALLREC_MASTER_KEY to a new 32-byte base64 key, restart, then rewrap`,
      );
    }
    const oldKeyId = this.#currentId;
    const retiredDir = path.join(this.#dataDir, 'master-keys');
    await fs.mkdir(retiredDir, { recursive: true, mode: 0o700 });
    await writeSecret(path.join(retiredDir, `${oldKeyId}.key`), this.#keys.get(oldKeyId)!.toString('base64'));
    const key = randomBytes(KEY_BYTES);
    await writeSecret(path.join(this.#dataDir, 'master.key'), key.toString('base64'));
    this.#currentId = this.#add(key);
    return { oldKeyId, newKeyId: this.#currentId };
  }
}

async function readKeyFile(file: string): Promise<Buffer | null> {
  try {
    return decodeKey(await fs.readFile(file, 'utf8'), file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Generates `master.key`; if another process (server and worker start together) won the race, uses its key. */
async function createKeyFile(file: string): Promise<Buffer> {
  const key = randomBytes(KEY_BYTES);
  try {
    await writeSecret(file, key.toString('base64'), true);
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return (await readKeyFile(file))!;
  }
}

/**
 * Re-wraps a data key under the ring's current master key without touching the audio (for
 * `callrec keys rotate-master`). Keys already under the current key, and tenant-wrapped keys
 * (not under any master key), come back unchanged: compare `keyId` to see whether to save.
 */
export function rewrap(wrappedKey: WrappedKey, ring: MasterKeyring): WrappedKey {
  if (wrappedKey.keyId === ring.currentKeyId || wrappedKey.keyId.startsWith(TENANT_PREFIX)) return wrappedKey;
  return ring.wrap(ring.unwrap(wrappedKey));
}

/**
 * Wraps a data key for a tenant with RSA-OAEP (SHA-256 for hash and MGF1), so only the holder of
 * the matching private key can unwrap it. The id is `tenant:` plus the first 16 hex chars of the
 * SHA-256 of the key's DER SubjectPublicKeyInfo. Throws `ERR_BAD_KEY` for a non-RSA or short key.
 */
export function wrapForTenant(dataKey: Buffer, publicKeyPem: string): WrappedKey {
  let key;
  try {
    key = createPublicKey(publicKeyPem);
  } catch (err) {
    throw new CallrecError('ERR_BAD_KEY', 'tenant public key is not a valid PEM public key', { cause: err });
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa' || bits < 2048) {
    throw new CallrecError(
      'ERR_BAD_KEY',
      `tenant public key must be RSA of at least 2048 bits, got ${key.asymmetricKeyType} ${bits || ''}`.trim(),
    );
  }
  const wrapped = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, dataKey);
  return {
    keyId: `${TENANT_PREFIX}${fingerprint(key.export({ type: 'spki', format: 'der' }))}`,
    wrapped: wrapped.toString('base64'),
  };
}
