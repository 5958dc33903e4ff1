import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import type { MasterKeyring } from '../crypto/keys.js';
import { CallrecError } from '../errors.js';
import type { Store } from '../store/index.js';
import { openSecret, sealSecret, type SealedSecret } from '../tenants/secrets.js';

/** An Ed25519 public key as a JWK (RFC 8037), with its RFC 7638 thumbprint as `kid`. */
export interface PublicJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: 'EdDSA';
  use: 'sig';
}

/** The key set served at `/.well-known/callrec-keys.json`: current and retired keys, so old manifests still verify. */
export interface KeySet {
  keys: PublicJwk[];
}

/** The key that signs now. */
export interface Signer {
  kid: string;
  key: KeyObject;
}

/** The sealed private half is bound to its kid: moved onto another key's row, it fails to open. */
const sealContext = (kid: string) => `signing-key:${kid}`;

/**
 * Manifest signing keys: generated into the database, the private half sealed under the master
 * keyring, so every node of a cluster (same database, same master key) signs with the same set.
 */
export class SigningKeys {
  readonly #store: Store;
  readonly #ring: MasterKeyring;
  /** Opened private keys by kid: opening one costs an unwrap, signing happens per recording. */
  readonly #opened = new Map<string, KeyObject>();

  constructor(store: Store, ring: MasterKeyring) {
    this.#store = store;
    this.#ring = ring;
  }

  /** Makes a first key when there is none (first start). */
  async ensure(): Promise<void> {
    if ((await this.#store.evidence.signingKeys()).length === 0) await this.rotate();
  }

  /** Makes a new key current; the previous ones stay published (retired), so what they signed still verifies. Returns the new kid. */
  async rotate(): Promise<string> {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const jwk = publicKey.export({ format: 'jwk' });
    const kid = await calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: jwk.x! });
    const publicJwk: PublicJwk = { kty: 'OKP', crv: 'Ed25519', x: jwk.x!, kid, alg: 'EdDSA', use: 'sig' };
    const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64');
    await this.#store.evidence.addSigningKey({
      kid,
      public_jwk: JSON.stringify(publicJwk),
      private_key: JSON.stringify(sealSecret(this.#ring, pkcs8, sealContext(kid))),
      created_at: new Date().toISOString(),
    });
    return kid;
  }

  /**
   * The current key, made on first use; read each time, so a rotation by another process takes
   * effect at the next signature.
   */
  async current(): Promise<Signer> {
    let rows = await this.#store.evidence.signingKeys();
    if (rows.length === 0) {
      await this.rotate();
      rows = await this.#store.evidence.signingKeys();
    }
    const row = rows.filter((r) => r.retired_at === null).at(-1);
    if (!row) throw new CallrecError('ERR_NO_SIGNING_KEY', 'no current signing key: run `callrec signing-keys rotate`');
    let key = this.#opened.get(row.kid);
    if (!key) {
      const der = openSecret(this.#ring, JSON.parse(row.private_key) as SealedSecret, sealContext(row.kid)) as string;
      key = createPrivateKey({ key: Buffer.from(der, 'base64'), format: 'der', type: 'pkcs8' });
      this.#opened.set(row.kid, key);
    }
    return { kid: row.kid, key };
  }

  async keySet(): Promise<KeySet> {
    return { keys: (await this.#store.evidence.signingKeys()).map((row) => JSON.parse(row.public_jwk) as PublicJwk) };
  }
}
