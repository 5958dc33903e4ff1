import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';

/** A caller's `X-Request-Id` is kept when it is a plain token (it may end up in other systems' logs). */
const REQUEST_ID = /^[\w.:-]{1,128}$/;

/** Fastify's `genReqId`: the caller's `X-Request-Id` (a proxy's, say), else a fresh UUID. */
export function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/** Probes and scrapes: logged at debug, or every few seconds of every node would be theirs. */
const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * One log line per answered request: method, route pattern (never the URL: a query may hold a
 * playback token), status and duration, on the request's logger (its `reqId`, which the answer echoes in `X-Request-Id`).
 * No header is logged, so neither an `Authorization` nor a key can leak into the logs.
 */
// biome-ignore lint/suspicious/noExplicitAny: accepts the instance whatever its server, request, reply and logger types.
export function logRequests(app: FastifyInstance<any, any, any, any>): void {
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? '(no route)';
    const line = {
      method: request.method,
      route,
      status: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 10) / 10,
    };
    if (QUIET_ROUTES.has(route)) request.log.debug(line, 'request');
    else request.log.info(line, 'request');
  });
}
