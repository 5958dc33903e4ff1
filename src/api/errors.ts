import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { CallrecError } from '../errors.js';

/** The one error body the API answers with (SPEC §3). */
export interface ErrorBody {
  error: { code: string; message: string; field?: string; [extra: string]: unknown };
}

/**
 * An error that is the answer to a request: status, stable code, and optionally the field at
 * fault, response headers (`WWW-Authenticate`, `Content-Range`) and extra body properties.
 */
export class HttpError extends CallrecError {
  readonly statusCode: number;
  readonly field: string | undefined;
  readonly headers: Record<string, string>;
  readonly details: Record<string, unknown>;

  constructor(
    statusCode: number,
    code: string,
    message: string,
    options: { field?: string; headers?: Record<string, string>; details?: Record<string, unknown> } = {},
  ) {
    super(code, message);
    this.name = 'HttpError';
    this.statusCode = statusCode;
    this.field = options.field;
    this.headers = options.headers ?? {};
    this.details = options.details ?? {};
  }
}

export function notFound(what: string): HttpError {
  return new HttpError(404, 'ERR_NOT_FOUND', `${what} not found`);
}

/**
 * Rethrows `err` as the answer to the request when it is a `CallrecError` whose code
 * `statuses` lists (same code and message, that status); anything else is rethrown as is.
 */
export function rethrowAs(err: unknown, statuses: Readonly<Record<string, number>>): never {
  if (err instanceof CallrecError && !(err instanceof HttpError) && statuses[err.code] !== undefined) {
    throw new HttpError(statuses[err.code], err.code, err.message);
  }
  throw err;
}

/** Fastify's own client errors (bad JSON, wrong content type, body too large) under our codes. */
const FASTIFY_CLIENT_CODES: Record<number, string> = {
  400: 'ERR_BAD_REQUEST',
  413: 'ERR_PAYLOAD_TOO_LARGE',
  415: 'ERR_UNSUPPORTED_MEDIA_TYPE',
};

function send(reply: FastifyReply, status: number, error: ErrorBody['error']): void {
  reply.code(status).type('application/json; charset=utf-8').send({ error } satisfies ErrorBody);
}

/** Every error the API raises, shaped as `{"error":{...}}`; unexpected ones are logged and answered 500 without internals. */
export function errorHandler(err: FastifyError | HttpError, request: FastifyRequest, reply: FastifyReply): void {
  if (err instanceof HttpError) {
    reply.headers(err.headers);
    const body: ErrorBody['error'] = { ...err.details, code: err.code, message: err.message };
    if (err.field !== undefined) body.field = err.field;
    send(reply, err.statusCode, body);
    return;
  }
  const status = (err as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    send(reply, status, { code: FASTIFY_CLIENT_CODES[status] ?? 'ERR_BAD_REQUEST', message: err.message });
    return;
  }
  request.log.error({ err }, 'unhandled error');
  send(reply, 500, { code: 'ERR_INTERNAL', message: 'internal server error' });
}

/** Unknown routes answer in the API's error format. */
export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): void {
  send(reply, 404, { code: 'ERR_NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` });
}
