import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { MasterKeyring } from '../crypto/keys.js';
import { openSecret, sealSecret, type SealedSecret } from '../tenants/secrets.js';
import { splitList } from './message.js';

/*
 * SIP digest authentication (RFC 3261 §22.4 with RFC 8760's SHA-256; MD5 for older SBCs),
 * `qop=auth`. The username is a callrec key's id, the password its secret. callrec keeps only
 * a hash of a key's secret, so a key that may authenticate SIP keeps its HA1s
 * (H(username:realm:secret), one per algorithm), sealed with the master key, derived when the
 * key is created (`POST /api/keys` with `"sip_digest": true`).
 */

export type DigestAlgorithm = 'SHA-256' | 'MD5';

/** In the order they are offered (RFC 8760 §2.4: the preferred first). */
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['SHA-256', 'MD5'];

/** The realm of callrec's challenges (part of every HA1, so it is fixed). */
export const DIGEST_REALM = 'callrec';

/** How long a nonce is taken after it was issued. */
const NONCE_MS = 5 * 60_000;

const HASH: Readonly<Record<DigestAlgorithm, string>> = { 'SHA-256': 'sha256', MD5: 'md5' };

function h(algorithm: DigestAlgorithm, text: string): string {
  return createHash(HASH[algorithm]).update(text).digest('hex');
}

/** HA1 of a key for each algorithm (kept sealed with the key). */
export function digestHa1(username: string, password: string, realm = DIGEST_REALM): Record<DigestAlgorithm, string> {
  return {
    'SHA-256': h('SHA-256', `${username}:${realm}:${password}`),
    MD5: h('MD5', `${username}:${realm}:${password}`),
  };
}

/** The `response` a client computes (RFC 7616 §3.4.1), from the HA1. */
export function digestResponse(
  algorithm: DigestAlgorithm,
  ha1: string,
  p: { nonce: string; nc: string; cnonce: string; qop: string; method: string; uri: string },
): string {
  const ha2 = h(algorithm, `${p.method}:${p.uri}`);
  return h(algorithm, [ha1, p.nonce, p.nc, p.cnonce, p.qop, ha2].join(':'));
}

/**
 * Issues and checks nonces without keeping them: a nonce is its issue time and an HMAC of it
 * under a secret of this process (a node restart invalidates outstanding nonces; SBCs then
 * take the new challenge).
 */
export class DigestNonces {
  readonly #secret = randomBytes(32);

  issue(now = Date.now()): string {
    return `${now.toString(36)}.${this.#mac(now.toString(36))}`;
  }

  /** Whether `nonce` is one of ours and still fresh. */
  valid(nonce: string, now = Date.now()): boolean {
    const [time, mac] = nonce.split('.');
    if (!time || !mac) return false;
    const expected = Buffer.from(this.#mac(time));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return false;
    const issued = Number.parseInt(time, 36);
    return now - issued >= 0 && now - issued <= NONCE_MS;
  }

  /** One `WWW-Authenticate` value per algorithm, the preferred first. */
  challenges(stale = false): string[] {
    const nonce = this.issue();
    return DIGEST_ALGORITHMS.map(
      (algorithm) =>
        `Digest realm="${DIGEST_REALM}", nonce="${nonce}", algorithm=${algorithm}, qop="auth"${stale ? ', stale=true' : ''}`,
    );
  }

  #mac(text: string): string {
    return createHmac('sha256', this.#secret).update(text).digest('base64url').slice(0, 22);
  }
}

/** An `Authorization: Digest …` header's parameters. */
export interface DigestCredentials {
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  algorithm: DigestAlgorithm;
  qop: string;
  nc: string;
  cnonce: string;
}

/** Parses an `Authorization` value; null when it is not a digest with what callrec needs. */
export function parseDigest(value: string): DigestCredentials | null {
  const m = /^Digest\s+(.*)$/is.exec(value.trim());
  if (!m) return null;
  const params = new Map<string, string>();
  for (const part of splitList(m[1])) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const raw = part.slice(eq + 1).trim();
    params.set(
      part.slice(0, eq).trim().toLowerCase(),
      raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw,
    );
  }
  const algorithm =
    (params.get('algorithm') ?? 'MD5').toUpperCase() === 'SHA-256'
      ? 'SHA-256'
      : (params.get('algorithm') ?? 'MD5').toUpperCase() === 'MD5'
        ? 'MD5'
        : null;
  const [username, realm, nonce, uri, response] = ['username', 'realm', 'nonce', 'uri', 'response'].map((k) =>
    params.get(k),
  );
  if (!algorithm || !username || !realm || !nonce || !uri || !response) return null;
  return {
    username,
    realm,
    nonce,
    uri,
    response,
    algorithm,
    qop: params.get('qop') ?? '',
    nc: params.get('nc') ?? '',
    cnonce: params.get('cnonce') ?? '',
  };
}

/** Whether `credentials` answer a challenge for `method` with the key's HA1s (`qop=auth`, or RFC 2069's none for MD5). */
export function checkDigest(
  credentials: DigestCredentials,
  method: string,
  ha1s: Record<DigestAlgorithm, string>,
): boolean {
  const ha1 = ha1s[credentials.algorithm];
  if (!ha1 || credentials.realm !== DIGEST_REALM) return false;
  const expected =
    credentials.qop === 'auth'
      ? digestResponse(credentials.algorithm, ha1, { ...credentials, method })
      : h(
          credentials.algorithm,
          `${ha1}:${credentials.nonce}:${h(credentials.algorithm, `${method}:${credentials.uri}`)}`,
        );
  const a = Buffer.from(expected);
  const b = Buffer.from(credentials.response.toLowerCase());
  return a.length === b.length && timingSafeEqual(a, b);
}

const sealContext = (keyId: string) => `callrec-sip-digest:${keyId}`;

/** What a key created with `sip_digest` keeps: its HA1s sealed with the master keyring, bound to the key's id. */
export function sealDigest(ring: MasterKeyring, keyId: string, secret: string): string {
  return JSON.stringify(sealSecret(ring, digestHa1(keyId, secret), sealContext(keyId)));
}

/** The HA1s `sealDigest` kept. Throws `ERR_DECRYPT`/`ERR_UNKNOWN_KEY` when they cannot be opened. */
export function openDigest(ring: MasterKeyring, keyId: string, sealed: string): Record<DigestAlgorithm, string> {
  return openSecret(ring, JSON.parse(sealed) as SealedSecret, sealContext(keyId)) as Record<DigestAlgorithm, string>;
}
