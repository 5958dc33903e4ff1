import rateLimit from '@fastify/rate-limit';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { HttpError } from '../errors.js';
import type { HttpLimits } from '../config.js';
import type { KeyRepository } from '../store/keys.js';
import { hasScope, type Principal, type Scope } from './scopes.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Served without an API key (health checks). */
    public?: boolean;
    /** The key must hold at least one of these scopes (`admin` holds them all). */
    scopes?: Scope[];
  }
  interface FastifyRequest {
    /** Who the request's API key belongs to; null only on public routes. */
    principal: Principal | null;
  }
}

export interface AuthPluginOptions {
  keys: Pick<KeyRepository, 'verify'>;
  limits: HttpLimits;
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
 * nothing), and enforces a route's `config.scopes`. Sets `request.principal`.
 *
 * Rate limits (per node, in memory): each key's requests per minute, and each client
 * address's failed authentications per minute. Only failures count against an address, and a
 * valid key is still let in from an address over its budget, so guessing from behind the
 * same NAT as real users does not lock them out.
 */
const auth: FastifyPluginAsync<AuthPluginOptions> = async (app, { keys, limits }) => {
  await app.register(rateLimit, { global: false });
  const failuresOf = app.createRateLimit({ max: limits.authFailuresPerIpPerMinute, timeWindow: MINUTE_MS, keyGenerator: (request) => `ip:${request.ip}` });
  const requestsOf = app.createRateLimit({ max: limits.requestsPerKeyPerMinute, timeWindow: MINUTE_MS, keyGenerator: (request) => `key:${request.principal!.keyId}` });

  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    if (config.public || request.is404) return;
    const secret = BEARER.exec(request.headers.authorization ?? '')?.[1];
    const principal = secret === undefined ? null : await keys.verify(secret);
    if (!principal) {
      const failures = await failuresOf(request);
      if (!failures.isAllowed && failures.isExceeded) throw tooManyRequests('too many failed authentications from this address', failures.ttlInSeconds);
      throw unauthorized();
    }
    request.principal = principal;
    const requests = await requestsOf(request);
    if (!requests.isAllowed && requests.isExceeded) throw tooManyRequests(`API key ${principal.keyId} exceeded ${limits.requestsPerKeyPerMinute} requests per minute`, requests.ttlInSeconds);
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
