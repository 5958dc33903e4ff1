import type { FastifyError, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { Type, type Static } from 'typebox';
import { errorCode, HttpError, httpStatus } from '../errors.js';

/** The one error body the API answers with (SPEC §3); some codes add details beside these fields. */
export const ErrorResponse = Type.Object(
  {
    error: Type.Object(
      {
        code: Type.String({ description: 'stable, e.g. ERR_VALIDATION, ERR_NOT_FOUND, ERR_UNAUTHORIZED' }),
        message: Type.String({ description: 'for people; may change' }),
        field: Type.Optional(Type.String({ description: 'the request field at fault, as a dotted path' })),
      },
      { additionalProperties: true },
    ),
  },
  { description: 'An error' },
);
export type ErrorBody = Static<typeof ErrorResponse>;

/**
 * Declares the error body for every 4xx and 5xx a route does not describe itself, so the
 * document (and a client generated from it) knows what each error looks like. An `onRoute` hook.
 */
export function declareErrorResponses(route: RouteOptions): void {
  const schema = route.schema ?? (route.schema = {});
  schema.response = { '4xx': ErrorResponse, '5xx': ErrorResponse, ...(schema.response as object | undefined) };
}

export function notFound(what: string): HttpError {
  return new HttpError('ERR_NOT_FOUND', `${what} not found`);
}

/** Fastify's own client errors (bad JSON, wrong content type, body too large) under our codes. */
const FASTIFY_CLIENT_CODES: Record<number, string> = {
  400: 'ERR_BAD_REQUEST',
  413: 'ERR_PAYLOAD_TOO_LARGE',
  415: 'ERR_UNSUPPORTED_MEDIA_TYPE',
};

/**
 * Most of a refused body read and dropped rather than cut off. Fastify refuses a body over its
 * limit from the `Content-Length` alone and closes the connection; a client still sending (fetch
 * sends the whole body before it reads) then meets a reset and never sees the 413: 37 of 200
 * 2 MiB posts did. Below this size the connection stays open, Node reads the rest of the body
 * and drops it, and the answer arrives, as nginx's lingering close does. Larger bodies are cut off.
 */
const MAX_DRAINED_BODY_BYTES = 16 * 1024 * 1024;

function send(reply: FastifyReply, status: number, error: ErrorBody['error']): void {
  reply
    .code(status)
    .type('application/json; charset=utf-8')
    .send({ error } satisfies ErrorBody);
}

/**
 * Every error the API raises, shaped as `{"error":{...}}` with the status the error registry
 * gives its code; anything else is logged and answered 500 without internals.
 */
export function errorHandler(err: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): void {
  const code = errorCode(err);
  const status = httpStatus(err);
  if (code && status !== 500) {
    const body: ErrorBody['error'] = { ...(err instanceof HttpError ? err.details : {}), code, message: err.message };
    if (err instanceof HttpError) {
      reply.headers(err.headers);
      if (err.field !== undefined) body.field = err.field;
    }
    send(reply, status, body);
    return;
  }
  const fastifyStatus = (err as FastifyError).statusCode;
  if (!code && fastifyStatus !== undefined && fastifyStatus >= 400 && fastifyStatus < 500) {
    if (
      (err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE' &&
      Number(request.headers['content-length']) <= MAX_DRAINED_BODY_BYTES
    )
      reply.removeHeader('connection');
    send(reply, fastifyStatus, {
      code: FASTIFY_CLIENT_CODES[fastifyStatus] ?? 'ERR_BAD_REQUEST',
      message: err.message,
    });
    return;
  }
  request.log.error({ err }, 'unhandled error');
  send(reply, 500, { code: 'ERR_INTERNAL', message: 'internal server error' });
}

/** Unknown routes answer in the API's error format. */
export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): void {
  send(reply, 404, { code: 'ERR_NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` });
}
