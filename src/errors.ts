import { MediaError, type MediaErrorCode } from '../media/errors.js';

/** What an error code means where it ends a conversation: the WebSocket close code, the HTTP status. */
interface Transport {
  /** RFC 6455 §7.4.1 close code a media stream is closed with; absent: 1011 (internal error). */
  ws?: number;
  /** HTTP status the API answers with; absent: 500 (internal error, details logged, not sent). */
  http?: number;
  /** SIP status a SIPREC request is answered with; absent: 500. */
  sip?: number;
}

/**
 * Every error code callrec raises, and what each means on the wire. The one table: a stream's
 * close code and an API answer's status are both read from here.
 */
const REGISTRY = {
  // A provider or runtime message we cannot take.
  ERR_MALFORMED_MESSAGE: { ws: 1007 },
  ERR_BAD_PAYLOAD: { ws: 1007 },
  ERR_MESSAGE_TOO_LARGE: { ws: 1009 },
  ERR_UNKNOWN_EVENT: { ws: 1003 },
  ERR_UNSUPPORTED_CODEC: { ws: 1003 },
  ERR_UNEXPECTED_MESSAGE: { ws: 1008 },
  // A stream that may not record.
  ERR_MISSING_AGENT: { ws: 1008, sip: 404 },
  ERR_UNKNOWN_AGENT: { ws: 1008, sip: 404 },
  ERR_BAD_TOKEN: { ws: 1008, sip: 403 },
  ERR_BAD_PARAMETER: { ws: 1008, sip: 400 },
  ERR_NO_RUNTIME: { ws: 1008 },
  ERR_CALL_EXISTS: { ws: 1008, sip: 482 },
  // A stream over one of the media endpoints' limits (README "Limits").
  ERR_AUTH_TIMEOUT: { ws: 1008 },
  ERR_PRESTART_LIMIT: { ws: 1008 },
  ERR_NODE_STREAM_LIMIT: { ws: 1013, http: 503, sip: 503 },
  // An upgrade from an address holding its MAX_PENDING_STREAMS_PER_IP unauthenticated sockets: answered 429.
  ERR_PENDING_STREAM_LIMIT: { http: 429 },
  // Bridge mode: one side stopped reading and the other's messages for it passed BRIDGE_RELAY_MAX_BYTES.
  ERR_RELAY_OVERFLOW: { ws: 1008 },
  ERR_TENANT_STREAM_LIMIT: { ws: 1013, sip: 503 },
  ERR_STREAM_IDLE: { ws: 1008 },
  ERR_AGENT_UNREACHABLE: { ws: 1014 },
  // A tenant- or stream-supplied URL whose host is internal (EGRESS_ALLOW): refused at PATCH (400) and at connect.
  ERR_EGRESS_REFUSED: { ws: 1008, http: 400 },
  ERR_SHUTTING_DOWN: { ws: 1001, sip: 503 },
  // A new stream while this node's spool disk takes no writes (full): its upgrade is answered 503.
  ERR_SPOOL_UNWRITABLE: { ws: 1013, http: 503, sip: 503 },
  // A new stream at a draining node: its upgrade is answered 503 (the provider retries elsewhere).
  ERR_DRAINING: { http: 503, sip: 503 },
  // SIP (SIPREC): a message that breaks RFC 3261's grammar; an offer callrec cannot record.
  ERR_SIP_PARSE: { sip: 400 },
  ERR_SIP_NOT_ACCEPTABLE: { sip: 488 },
  // SIP (SIPREC): no session refresh came within the RFC 4028 interval; callrec sent the SRC a BYE.
  ERR_SIP_SESSION_EXPIRED: {},
  // API answers.
  ERR_VALIDATION: { http: 400 },
  ERR_BAD_REQUEST: { http: 400 },
  ERR_INVALID_CURSOR: { http: 400 },
  ERR_BAD_KEY: { http: 400 },
  ERR_UNAUTHORIZED: { http: 401 },
  ERR_TOKEN_INVALID: { http: 401 },
  ERR_TOKEN_EXPIRED: { http: 401 },
  ERR_TOKEN_REVOKED: { http: 401 },
  ERR_FORBIDDEN: { http: 403 },
  ERR_TOKEN_MISMATCH: { http: 403 },
  ERR_TOKEN_STALE: { http: 403 },
  ERR_NOT_FOUND: { http: 404 },
  ERR_NOT_CONFIGURED: { http: 404 },
  ERR_CONFLICT: { http: 409 },
  ERR_NOT_READY: { http: 409 },
  ERR_TENANT_ENCRYPTED: { http: 409 },
  ERR_PAYLOAD_TOO_LARGE: { http: 413 },
  ERR_UNSUPPORTED_MEDIA_TYPE: { http: 415 },
  ERR_RANGE_NOT_SATISFIABLE: { http: 416 },
  ERR_LEGAL_HOLD: { http: 423 },
  ERR_UPSTREAM: { http: 502 },
  // Also a stream refused for its address's failed authentications (AUTH_FAILURES_PER_IP).
  ERR_RATE_LIMITED: { ws: 1008, http: 429, sip: 403 },
  ERR_UNAVAILABLE: { http: 503, sip: 503 },
  // A `?format=` transcode past MAX_TRANSCODES (the node's): answered 503 with Retry-After.
  ERR_TRANSCODE_BUSY: { http: 503 },
  // Internal: logged, answered as 500 / closed 1011.
  ERR_INTERNAL: {},
  ERR_ILLEGAL_TRANSITION: {},
  ERR_CONFIG: {},
  ERR_MIGRATION: {},
  ERR_BAD_ARGUMENT: {},
  ERR_REDIS_UNAVAILABLE: {},
  // At start: the listener's port is taken (PORT, WORKER_PORT).
  ERR_PORT_IN_USE: {},
  // A CLI command's database does not exist, and the command would not create it unasked.
  ERR_NO_DATABASE: {},
  ERR_TTS: {},
  // Consent synthesis refused for a limit (docs/limits.md): the consent fails with the reason, nothing is recorded.
  ERR_TTS_BUSY: {},
  ERR_PROMPT_LIMIT: {},
  ERR_DECRYPT: {},
  ERR_UNKNOWN_KEY: {},
  ERR_WEBHOOK: {},
  // A recording or retention job past JOB_TIME_LIMIT_SECONDS: failed, and retried with backoff.
  ERR_JOB_TIME_LIMIT: {},
  ERR_SPOOL_CLOSED: {},
  ERR_BAD_SPOOL: {},
  ERR_NO_SPOOL: {},
  // A recording job that failed because a bucket did not answer: the sweep retries it once it does.
  ERR_STORAGE_UNREACHABLE: {},
  ERR_SPOOL_UNREACHABLE: {},
  // A bucket that answered but refused us (credentials, permissions, no such bucket): retrying cannot help.
  ERR_STORAGE_REFUSED: {},
  ERR_OBJECT_MISSING: {},
  ERR_BAD_FIXTURE: {},
  // Evidence (SPEC §9): no key to sign with; a manifest, audio or ledger that does not verify.
  ERR_NO_SIGNING_KEY: {},
  ERR_NOT_VERIFIED: {},
  // A time-stamping authority that refused or answered nonsense: the manifest is stamped later.
  ERR_TSA: {},
  // Raised by media/ (MediaError).
  ERR_BAD_RECORDING: {},
  ERR_UNSUPPORTED_RATE: {},
  ERR_MP3_JOIN: {},
  ERR_MP3_FRAME: {},
  ERR_PLAYOUT_OVERFLOW: {},
} as const satisfies Record<string, Transport>;

/** Every code an error of callrec's may carry. */
export type ErrorCode = keyof typeof REGISTRY;

/** Fails to compile if `media/` gains a code the registry does not know. */
const _mediaCodesRegistered: Record<MediaErrorCode, Transport> = REGISTRY;
void _mediaCodesRegistered;

/**
 * An error with a stable, machine-readable code (as `ws` and Node do), so callers branch on
 * `err.code` rather than on message text.
 */
export class CallrecError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CallrecError';
    this.code = code;
  }
}

/**
 * An error that is the answer to a request: a code the registry gives an HTTP status, and
 * optionally the field at fault, response headers (`WWW-Authenticate`, `Content-Range`) and
 * extra body properties.
 */
export class HttpError extends CallrecError {
  readonly field: string | undefined;
  readonly headers: Record<string, string>;
  readonly details: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    options: {
      field?: string;
      headers?: Record<string, string>;
      details?: Record<string, unknown>;
      cause?: unknown;
    } = {},
  ) {
    super(code, message, { cause: options.cause });
    this.name = 'HttpError';
    this.field = options.field;
    this.headers = options.headers ?? {};
    this.details = options.details ?? {};
  }
}

/** The code of one of our errors (callrec's or media's), or undefined for anything else. */
export function errorCode(err: unknown): ErrorCode | undefined {
  return err instanceof CallrecError || err instanceof MediaError ? err.code : undefined;
}

/** HTTP status for an error: the registry's for our codes, 500 for the rest. */
export function httpStatus(err: unknown): number {
  const code = errorCode(err);
  return (code && (REGISTRY[code] as Transport).http) || 500;
}

/** WebSocket close code for an error: the registry's for our codes, 1011 for the rest. */
export function wsCloseCode(err: unknown): number {
  const code = errorCode(err);
  return (code && (REGISTRY[code] as Transport).ws) || 1011;
}

/** SIP status for an error: the registry's for our codes, 500 for the rest. */
export function sipStatus(err: unknown): number {
  const code = errorCode(err);
  return (code && (REGISTRY[code] as Transport).sip) || 500;
}

/** `code: message`, cut to the 123 bytes a WebSocket close frame's reason may hold. */
export function closeReason(code: string, message: string): string {
  const text = message.startsWith(code) ? message : `${code}: ${message}`;
  const bytes = Buffer.from(text);
  return bytes.length <= 123
    ? text
    : `${bytes
        .subarray(0, 120)
        .toString('utf8')
        .replace(/\uFFFD*$/, '')}...`;
}
