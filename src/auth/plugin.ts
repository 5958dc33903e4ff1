import rateLimit from '@fastify/rate-limit';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { HttpError } from '../errors.js';
import type { HttpLimits } from '../config.js';
import type { KeyRepository } from '../store/keys.js';
import type { AuthFailures } from './failures.js';
import type { PlaybackGrant, PlaybackTokens } from './playback.js';
import { hasScope, type Principal, type Scope } from './scopes.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Served without an API key (health checks). */
    public?: boolean;
    /** The key must hold at least one of these scopes (`admin` holds them all). */
    scopes?: Scope[];
    /** Also served to a playback token (`?token=`) instead of an API key; the route checks what the grant covers. */
    playbackToken?: boolean;
  }
  interface FastifyRequest {
    /** Who the request's API key belongs to (for a playback token, the key that minted it); null only on public routes. */
    principal: Principal | null;
    /** The playback token's grant when the request came with one instead of an API key. */
    playback: PlaybackGrant | null;
  }
}

export interface AuthPluginOptions {
  keys: Pick<KeyRepository, 'verify' | 'get'>;
  playback: PlaybackTokens;
  limits: HttpLimits;
  /** The failure budget per client address, shared with the media endpoints' stream tokens. */
  failures: AuthFailures;
}

const MINUTE_MS = 60_000;

const BEARER = /^Bearer +(\S+) *$/i;

const unauthorized = () =>
  new HttpError('ERR_UNAUTHORIZED', 'a valid API key is required: Authorization: Bearer <key>', {
    headers: { 'WWW-Authenticate': 'Bearer' },
  });

const tooManyRequests = (what: string, retryAfterSeconds: number) =>
  new HttpError('ERR_RATE_LIMITED', `${what}; retry in ${retryAfterSeconds} s`, {
    headers: { 'Retry-After': String(retryAfterSeconds) },
  });

/**
 * Authenticates every route of the instance it is registered on with `Authorization: Bearer
 * <secret>`, except routes with `config: { public: true }` and unknown routes (their 404 says
 * nothing), and enforces a route's `config.scopes`. Sets `request.principal`. Routes with
 * `config: { playbackToken: true }` also take a playback token in `?token=` (when no
 * `Authorization` is sent) and get its grant in `request.playback`.
 *
 * Rate limits (per node, in memory): each key's requests per minute, and each client
 * address's failed authentications (keys and playback tokens; stream tokens spend the same
 * budget, see `AuthFailures`) per minute. Only failures count
 * against an address, and a valid key is still let in from an address over its budget, so
 * guessing from behind the same NAT as real users does not lock them out.
 */
const auth: FastifyPluginAsync<AuthPluginOptions> = async (app, { keys, playback, limits, failures }) => {
  await app.register(rateLimit, { global: false });
  const requestsOf = app.createRateLimit({
    max: limits.requestsPerKeyPerMinute,
    timeWindow: MINUTE_MS,
    keyGenerator: (request) => `key:${request.principal!.keyId}`,
  });

  app.decorateRequest('principal', null);
  app.decorateRequest('playback', null);

  // How each route it guards authenticates, as the route's OpenAPI `security`; routes it does not guard declare none.
  app.addHook('onRoute', (route) => {
    if (route.config?.public) return;
    (route.schema ??= {}).security = route.config?.playbackToken
      ? [{ apiKey: [] }, { playbackToken: [] }]
      : [{ apiKey: [] }];
  });

  async function keyPrincipal(authorization: string | undefined): Promise<Principal> {
    const secret = BEARER.exec(authorization ?? '')?.[1];
    const principal = secret === undefined ? null : await keys.verify(secret);
    if (!principal) throw unauthorized();
    return principal;
  }

  /** The minting key's principal, still subject to the route's scopes. */
  async function playbackPrincipal(request: FastifyRequest, token: string): Promise<Principal> {
    const grant = playback.verify(token);
    // Revoking a key also ends the playback URLs it minted.
    const key = await keys.get(grant.tenantId, grant.keyId);
    if (!key || key.revokedAt !== null)
      throw new HttpError('ERR_TOKEN_REVOKED', 'the API key that minted this playback token has been revoked');
    request.playback = grant;
    return { keyId: key.id, tenantId: key.tenantId, scopes: key.scopes, operator: key.operator };
  }

  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    if (config.public || request.is404) return;
    const token = (request.query as { token?: unknown }).token;
    const principal = await (config.playbackToken &&
    request.headers.authorization === undefined &&
    typeof token === 'string'
      ? playbackPrincipal(request, token)
      : keyPrincipal(request.headers.authorization)
    ).catch((err: unknown) => {
      const retryAfterMs = failures.fail(request.ip);
      if (retryAfterMs > 0)
        throw tooManyRequests('too many failed authentications from this address', Math.ceil(retryAfterMs / 1000));
      throw err;
    });
    request.principal = principal;
    const requests = await requestsOf(request);
    if (!requests.isAllowed && requests.isExceeded)
      throw tooManyRequests(
        `API key ${principal.keyId} exceeded ${limits.requestsPerKeyPerMinute} requests per minute`,
        requests.ttlInSeconds,
      );
    if (config.scopes && !config.scopes.some((scope) => hasScope(principal, scope))) {
      throw new HttpError('ERR_FORBIDDEN', `this API key lacks the ${config.scopes.join(' or ')} scope`);
    }
  });
};

// What `fastify-plugin` would do: the hook must apply to the routes of the instance that
// registers this plugin, not to a child context of its own.
(auth as unknown as Record<symbol, unknown>)[Symbol.for('skip-override')] = true;
(auth as unknown as Record<symbol, unknown>)[Symbol.for('fastify.display-name')] = 'callrec-auth';

export const authPlugin = auth;

/** The authenticated principal of a route that is not public. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw unauthorized();
  return request.principal;
}
