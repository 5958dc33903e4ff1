/**
 * AudioHook's authentication, as Genesys Cloud performs it on the WebSocket upgrade: the
 * `X-API-KEY` header is a callrec API key with `media:stream`, and a key issued with an
 * AudioHook client secret also needs an RFC 9421 HTTP Message Signature (`hmac-sha256`, `keyid`
 * the API key) over the request target, authority, the AudioHook headers and the key, with
 * `created`/`expires`/`nonce`; a nonce is accepted once across the cluster (Redis).
 * Signatures are verified by `http-message-signatures`; only the nonce store is ours.
 * Every refusal spends the failure budget the other media endpoints spend (AUTH_FAILURES_PER_IP,
 * per client address and key prefix): past it that key is refused 429 without a look-up.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createVerifier, httpbis, type SignatureParameters } from 'http-message-signatures';
import { Redis } from 'ioredis';
import type { MasterKeyring } from '../crypto/keys.js';
import { CallrecError, HttpError } from '../errors.js';
import type { Store } from '../store/index.js';
import { openSecret, sealSecret, type SealedSecret } from '../tenants/secrets.js';
import { streamFailureKey, tooManyFailures } from '../calls/stream-auth.js';
import type { AuthFailures } from './failures.js';
import { hasScope } from './scopes.js';

/** What a signature must cover (Genesys signs these). */
export const AUDIOHOOK_SIGNED_FIELDS = [
  '@request-target',
  '@authority',
  'audiohook-organization-id',
  'audiohook-session-id',
  'audiohook-correlation-id',
  'x-api-key',
];
const REQUIRED_PARAMS = ['keyid', 'alg', 'created', 'expires', 'nonce'];
/** Clock difference allowed between Genesys and this node, s. */
const CLOCK_TOLERANCE_S = 30;
/** A signature older than this is refused whatever its `expires` says, so a nonce is remembered at most this long, s. */
const MAX_AGE_S = 600;
const SECRET_BYTES = 32;

/** The AAD a key's sealed client secret is bound to: it opens for that key only. */
const secretContext = (keyId: string) => `audiohook-client-secret:${keyId}`;

/**
 * Issues the client secret (base64 of 32 random bytes) of a key being created: `seal` goes to
 * `keys.create`, which calls it with the new key's id; `secret` is then shown once.
 */
export function audiohookSecretIssuer(ring: MasterKeyring): {
  seal: (keyId: string) => SealedSecret;
  readonly secret: string | undefined;
} {
  let secret: string | undefined;
  return {
    seal(keyId) {
      secret = randomBytes(SECRET_BYTES).toString('base64');
      return sealSecret(ring, secret, secretContext(keyId));
    },
    get secret() {
      return secret;
    },
  };
}

function refused(reason: string): CallrecError {
  return new CallrecError('ERR_UNAUTHORIZED', reason);
}

/** `tooManyFailures` as an upgrade's answer: 429 with `Retry-After`. */
function limited(retryAfterMs: number): HttpError {
  const err = tooManyFailures(retryAfterMs);
  return new HttpError('ERR_RATE_LIMITED', err.message, {
    headers: { 'Retry-After': String(Math.ceil(retryAfterMs / 1000)) },
  });
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export interface AudiohookAuthOptions {
  store: Store;
  keyring: MasterKeyring;
  redisUrl: string;
  /** Key prefix of this deployment's Redis keys. */
  prefix: string;
  /** The failure budgets (AUTH_FAILURES_PER_IP), shared with the other endpoints. */
  authFailures: AuthFailures;
}

export class AudiohookAuth {
  readonly #opts: AudiohookAuthOptions;
  readonly #redis: Redis;

  constructor(opts: AudiohookAuthOptions) {
    this.#opts = opts;
    this.#redis = new Redis(opts.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  }

  /**
   * Resolves when the upgrade from `address` may proceed; rejects `ERR_UNAUTHORIZED` with the
   * reason otherwise, counted as a failure of the address and key, and `ERR_RATE_LIMITED` (429,
   * `Retry-After`) once they failed AUTH_FAILURES_PER_IP times in the minute.
   */
  async check(req: IncomingMessage, address: string): Promise<void> {
    const { authFailures } = this.#opts;
    const failureKey = streamFailureKey(address, header(req, 'x-api-key') ?? '');
    const wait = authFailures.retryAfterMs(failureKey);
    if (wait > 0) throw limited(wait);
    try {
      await this.#verify(req);
    } catch (err) {
      if (!(err instanceof CallrecError && err.code === 'ERR_UNAUTHORIZED')) throw err;
      const retryAfterMs = authFailures.fail(failureKey);
      throw retryAfterMs > 0 ? limited(retryAfterMs) : err;
    }
  }

  async #verify(req: IncomingMessage): Promise<void> {
    const apiKey = header(req, 'x-api-key');
    if (!apiKey) throw refused('no X-API-KEY header');
    const principal = await this.#opts.store.keys.verify(apiKey);
    if (!principal || !hasScope(principal, 'media:stream'))
      throw refused('X-API-KEY is unknown, revoked or without media:stream scope');
    const sealed = await this.#opts.store.keys.audiohookSecret(principal.keyId);
    if (sealed === null) return;
    const secret = Buffer.from(
      openSecret(this.#opts.keyring, sealed, secretContext(principal.keyId)) as string,
      'base64',
    );
    let signed: SignatureParameters | undefined;
    let valid: boolean | null;
    try {
      valid = await httpbis.verifyMessage(
        {
          keyLookup: async (params) => {
            if (params.keyid !== apiKey || params.alg !== 'hmac-sha256') return null;
            signed = params;
            return { id: apiKey, algs: ['hmac-sha256'], verify: createVerifier(secret, 'hmac-sha256') };
          },
          requiredParams: REQUIRED_PARAMS,
          requiredFields: AUDIOHOOK_SIGNED_FIELDS,
          tolerance: CLOCK_TOLERANCE_S,
          maxAge: MAX_AGE_S,
        },
        {
          method: req.method ?? 'GET',
          url: `http://${header(req, 'host') ?? 'localhost'}${req.url ?? '/'}`,
          headers: req.headers as Record<string, string | string[]>,
        },
      );
    } catch (err) {
      throw refused(`signature refused: ${(err as Error).message}`);
    }
    if (valid === null)
      throw refused(
        signed
          ? 'signature is not by this key'
          : 'this key requires a signature (keyid = the API key, alg hmac-sha256)',
      );
    if (!valid || !signed) throw refused('signature does not verify with the client secret');
    await this.#spendNonce(principal.keyId, String(signed.nonce), Number(signed.expires));
  }

  /** Remembers the nonce until the signature expires; a nonce seen before is a replay. */
  async #spendNonce(keyId: string, nonce: string, expires: number): Promise<void> {
    const ttl = Math.max(1, Math.min(MAX_AGE_S, expires - Math.floor(Date.now() / 1000)) + CLOCK_TOLERANCE_S);
    const fresh = await this.#redis.set(`${this.#opts.prefix}:audiohook:nonce:${keyId}:${nonce}`, '1', 'EX', ttl, 'NX');
    if (fresh !== 'OK') throw refused('signature nonce was used before (replay)');
  }

  async close(): Promise<void> {
    this.#redis.disconnect();
  }
}
