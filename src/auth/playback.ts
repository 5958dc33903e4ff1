import { createHmac, timingSafeEqual } from 'node:crypto';
import type { RecordingFormat } from '../../media/types.js';
import { HttpError } from '../errors.js';
import type { MasterKeyring } from '../crypto/keys.js';

/** What a playback token allows: one format of one recording, for a while, on behalf of the key that minted it. */
export interface PlaybackGrant {
  tenantId: string;
  /** The API key that minted the token: each use is logged as its listen. */
  keyId: string;
  callId: string;
  recordingId: string;
  format: RecordingFormat;
  /** Unix seconds. */
  expiresAt: number;
}

/** Long enough to start a player and seek around, short enough that a leaked URL soon stops working. */
export const PLAYBACK_TOKEN_TTL_SECONDS = 600;

const PURPOSE = 'playback-token';
const VERSION = 'v1';

/** The grant's fields under short names: the token travels in every range request's URL. */
interface Claims {
  t: string;
  k: string;
  c: string;
  r: string;
  f: RecordingFormat;
  e: number;
  /** The master key the signing secret is derived from, so tokens outlive a key rotation. */
  m: string;
}

const invalid = (why: string) =>
  new HttpError(
    'ERR_TOKEN_INVALID',
    `the playback token is not valid: ${why}; ask POST /api/calls/{call_id}/recording/url for a new one`,
  );

/**
 * Signed, URL-safe playback tokens (`v1.<claims>.<HMAC-SHA256>`, base64url) that let an
 * `<audio>` element, which cannot send `Authorization`, stream one recording. Signed with a
 * secret derived from the master keyring, so any node of the cluster verifies what another
 * minted. Hand-written rather than a JWT library: one fixed algorithm and claim set, nothing
 * to negotiate, and a dozen lines of `node:crypto`.
 */
export class PlaybackTokens {
  readonly #keyring: MasterKeyring;

  constructor(keyring: MasterKeyring) {
    this.#keyring = keyring;
  }

  mint(
    grant: Omit<PlaybackGrant, 'expiresAt'>,
    ttlSeconds = PLAYBACK_TOKEN_TTL_SECONDS,
  ): { token: string; expiresAt: Date } {
    const expiresAt = Math.floor(Date.now() / 1000) + ttlSeconds;
    const masterKeyId = this.#keyring.currentKeyId;
    const claims: Claims = {
      t: grant.tenantId,
      k: grant.keyId,
      c: grant.callId,
      r: grant.recordingId,
      f: grant.format,
      e: expiresAt,
      m: masterKeyId,
    };
    const body = `${VERSION}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    return {
      token: `${body}.${this.#sign(body, masterKeyId)!.toString('base64url')}`,
      expiresAt: new Date(expiresAt * 1000),
    };
  }

  /** The grant a token carries; throws 401 `ERR_TOKEN_INVALID` (malformed, forged) or `ERR_TOKEN_EXPIRED`. */
  verify(token: string): PlaybackGrant {
    const [version, payload, signature, ...rest] = token.split('.');
    if (version !== VERSION || !payload || !signature || rest.length > 0) throw invalid('malformed');
    let claims: Claims;
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Claims;
    } catch {
      throw invalid('malformed');
    }
    const expected = typeof claims.m === 'string' ? this.#sign(`${version}.${payload}`, claims.m) : null;
    const given = Buffer.from(signature, 'base64url');
    if (!expected || given.length !== expected.length || !timingSafeEqual(given, expected))
      throw invalid('bad signature');
    if (!(claims.e * 1000 > Date.now())) {
      throw new HttpError(
        'ERR_TOKEN_EXPIRED',
        'the playback token has expired; ask POST /api/calls/{call_id}/recording/url for a new one',
      );
    }
    return {
      tenantId: claims.t,
      keyId: claims.k,
      callId: claims.c,
      recordingId: claims.r,
      format: claims.f,
      expiresAt: claims.e,
    };
  }

  #sign(body: string, masterKeyId: string): Buffer | null {
    const secret = this.#keyring.deriveSecret(PURPOSE, masterKeyId);
    return secret && createHmac('sha256', secret).update(body).digest();
  }
}
