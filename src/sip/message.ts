import { CallrecError } from '../errors.js';

/*
 * The SIP message grammar of RFC 3261 §7, §20 and §25 as a recording server needs it.
 * Hand-written: npm has no maintained SIP stack for a server role without a separate daemon
 * (`sip` 0.0.6 is unmaintained since 2016; `drachtio-srf` drives the drachtio-server C++
 * daemon), and RFC 4475's torture messages check this one (test/sip/parser.test.ts).
 */

/** RFC 3261 §7.3.3 compact forms, and RFC 3515/4028/3265's, to the long names messages are kept under. */
const COMPACT: Readonly<Record<string, string>> = {
  i: 'call-id',
  m: 'contact',
  e: 'content-encoding',
  l: 'content-length',
  c: 'content-type',
  f: 'from',
  s: 'subject',
  k: 'supported',
  t: 'to',
  v: 'via',
  o: 'event',
  r: 'refer-to',
  b: 'referred-by',
  x: 'session-expires',
  u: 'allow-events',
  a: 'accept-contact',
  j: 'reject-contact',
  d: 'request-disposition',
  y: 'identity',
};

/** Headers whose value is a comma-separated list (RFC 3261 §7.3.1): split into one value each. */
const LISTS: ReadonlySet<string> = new Set([
  'via',
  'contact',
  'route',
  'record-route',
  'require',
  'supported',
  'allow',
  'accept',
  'proxy-require',
  'unsupported',
]);

/** RFC 3261 token characters. */
const TOKEN = /^[A-Za-z0-9\-.!%*_+`'~]+$/;

/** Largest message callrec takes (UDP's 65 507-byte payload; more over TCP is refused too). */
export const MAX_SIP_MESSAGE_BYTES = 65_507;

/** A message's header fields, names lower-case and long-form, in arrival order. */
export class SipHeaders {
  readonly #fields: [name: string, value: string][] = [];

  static canonical(name: string): string {
    const lower = name.toLowerCase();
    return COMPACT[lower] ?? lower;
  }

  /** Adds a value; a list header's comma-separated value becomes one field per element. */
  add(name: string, value: string): this {
    const key = SipHeaders.canonical(name);
    if (LISTS.has(key)) for (const element of splitList(value)) this.#fields.push([key, element]);
    else this.#fields.push([key, value]);
    return this;
  }

  set(name: string, value: string): this {
    this.delete(name);
    return this.add(name, value);
  }

  delete(name: string): void {
    const key = SipHeaders.canonical(name);
    for (let i = this.#fields.length - 1; i >= 0; i--) if (this.#fields[i][0] === key) this.#fields.splice(i, 1);
  }

  get(name: string): string | undefined {
    const key = SipHeaders.canonical(name);
    return this.#fields.find(([n]) => n === key)?.[1];
  }

  getAll(name: string): string[] {
    const key = SipHeaders.canonical(name);
    return this.#fields.filter(([n]) => n === key).map(([, v]) => v);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  entries(): readonly (readonly [string, string])[] {
    return this.#fields;
  }
}

export interface SipRequest {
  kind: 'request';
  method: string;
  uri: string;
  headers: SipHeaders;
  body: Buffer;
}

export interface SipResponse {
  kind: 'response';
  status: number;
  reason: string;
  headers: SipHeaders;
  body: Buffer;
}

export type SipMessage = SipRequest | SipResponse;

/**
 * A message that breaks the grammar (`ERR_SIP_PARSE`). `headers` holds what was read of it when
 * the head parsed, so a request can still be answered 400 (RFC 3261 §21.4.1); without it the
 * message is dropped.
 */
export class SipParseError extends CallrecError {
  readonly headers: SipHeaders | undefined;
  readonly method: string | undefined;
  constructor(message: string, headers?: SipHeaders, method?: string) {
    super('ERR_SIP_PARSE', message);
    this.headers = headers;
    this.method = method;
  }
}

function fail(message: string, headers?: SipHeaders, method?: string): never {
  throw new SipParseError(message, headers, method);
}

/** Splits on commas outside quoted strings and `<…>`. */
export function splitList(value: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (quoted) {
      if (ch === '\\') i++;
      else if (ch === '"') quoted = false;
    } else if (ch === '"') quoted = true;
    else if (ch === '<') depth++;
    else if (ch === '>') depth = Math.max(0, depth - 1);
    else if (ch === ',' && depth === 0) {
      out.push(value.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(value.slice(start).trim());
  return out.filter(Boolean);
}

/** Where the head ends (after its blank line), or -1 while it has not all arrived. */
function headEnd(buf: Buffer, from: number): number {
  const crlf = buf.indexOf('\r\n\r\n', from);
  const lf = buf.indexOf('\n\n', from);
  if (crlf < 0) return lf < 0 ? -1 : lf + 2;
  return lf >= 0 && lf < crlf ? lf + 2 : crlf + 4;
}

/** A parsed message and the bytes it took from the buffer (a stream holds more than one). */
export interface Parsed {
  message: SipMessage;
  length: number;
}

/**
 * Parses one message at the start of `buf`. Datagram (`stream: false`): the buffer is the whole
 * message; a body longer than Content-Length is cut (RFC 3261 §18.3), a shorter one is an
 * error. Stream: returns null until the whole message has arrived; Content-Length is required.
 * Leading CRLFs (keep-alives, RFC 5626) are skipped. Throws `SipParseError`.
 */
export function parseMessage(buf: Buffer, stream: boolean): Parsed | null {
  let start = 0;
  while (start < buf.length && (buf[start] === 0x0d || buf[start] === 0x0a)) start++;
  if (start === buf.length) return stream ? null : fail('empty message');
  const end = headEnd(buf, start);
  if (end < 0) {
    if (buf.length - start > MAX_SIP_MESSAGE_BYTES) fail('head too large');
    return stream ? null : fail('no blank line after the header fields');
  }
  const lines = unfold(buf.toString('utf8', start, end));
  const first = lines.shift()!;
  const headers = new SipHeaders();
  let method: string | undefined;
  const startLine = parseStartLine(first);
  if (startLine.kind === 'request') method = startLine.method;
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon).trimEnd();
    if (!TOKEN.test(name)) fail(`bad header field line "${line.slice(0, 40)}"`, undefined, method);
    headers.add(name, line.slice(colon + 1).trim());
  }
  const lengthValue = headers.get('content-length');
  let bodyLength: number;
  if (lengthValue === undefined) {
    if (stream) fail('no Content-Length on a stream transport', headers, method);
    bodyLength = buf.length - end;
  } else {
    if (!/^\d{1,10}$/.test(lengthValue)) fail(`bad Content-Length "${lengthValue.slice(0, 20)}"`, headers, method);
    bodyLength = Number(lengthValue);
    if (bodyLength > MAX_SIP_MESSAGE_BYTES) fail(`Content-Length ${bodyLength} is too large`, headers, method);
    if (end + bodyLength > buf.length) {
      if (stream) return null;
      fail(`Content-Length ${bodyLength} is more than the ${buf.length - end} bytes of body`, headers, method);
    }
  }
  const body = buf.subarray(end, end + bodyLength);
  const message: SipMessage =
    startLine.kind === 'request' ? { ...startLine, headers, body } : { ...startLine, headers, body };
  validate(message);
  return { message, length: end + bodyLength };
}

/** Header lines with folded continuations (RFC 3261 §7.3.1 LWS) joined by one space. */
function unfold(head: string): string[] {
  const lines: string[] = [];
  for (const line of head.split(/\r?\n/)) {
    if (line === '') continue;
    if ((line[0] === ' ' || line[0] === '\t') && lines.length > 1) lines[lines.length - 1] += ` ${line.trim()}`;
    else lines.push(line);
  }
  return lines;
}

type StartLine = Omit<SipRequest, 'headers' | 'body'> | Omit<SipResponse, 'headers' | 'body'>;

function parseStartLine(line: string): StartLine {
  if (line.startsWith('SIP/')) {
    const m = /^SIP\/2\.0 (\d{3}) (.*)$/.exec(line) ?? /^SIP\/2\.0 (\d{3})$/.exec(line);
    if (!m) fail(`bad status line "${line.slice(0, 40)}"`);
    return { kind: 'response', status: Number(m[1]), reason: m[2] ?? '' };
  }
  // Exactly one space each side of the Request-URI, which holds no whitespace and is no <…> (RFC 4475 §3.1.2.{10-14}).
  const m = /^([^ ]+) ([^ <>]+) SIP\/2\.0$/.exec(line);
  if (!m) fail(`bad request line "${line.slice(0, 40)}"`);
  if (!TOKEN.test(m[1])) fail(`bad method "${m[1].slice(0, 20)}"`);
  if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$/.test(m[2])) fail(`bad Request-URI "${m[2].slice(0, 40)}"`);
  // A SIP Request-URI carries no header fields (RFC 3261 §19.1.1; RFC 4475 §3.1.2.11).
  if (/^sips?:/i.test(m[2]) && parseSipUri(m[2])?.headers !== '') fail(`bad Request-URI "${m[2].slice(0, 40)}"`);
  return { kind: 'request', method: m[1], uri: m[2] };
}

/** The CSeq header: sequence number and method. */
export function parseCSeq(value: string | undefined): { seq: number; method: string } | null {
  const m = value === undefined ? null : /^(\d{1,10})\s+(\S+)$/.exec(value);
  if (!m) return null;
  const seq = Number(m[1]);
  return seq < 2 ** 31 ? { seq, method: m[2] } : null;
}

/** Checks what a transaction and dialog rely on: the mandatory header fields and their syntax. */
function validate(message: SipMessage): void {
  const { headers } = message;
  const method = message.kind === 'request' ? message.method : undefined;
  for (const name of ['via', 'from', 'to', 'call-id', 'cseq']) {
    if (!headers.has(name)) fail(`no ${name} header field`, headers, method);
  }
  const vias = headers.getAll('via');
  for (const via of vias) if (!parseVia(via)) fail(`bad Via "${via.slice(0, 60)}"`, headers, method);
  const cseq = parseCSeq(headers.get('cseq'));
  if (!cseq) fail(`bad CSeq "${headers.get('cseq')!.slice(0, 40)}"`, headers, method);
  if (message.kind === 'request' && cseq.method !== message.method)
    fail(`CSeq method ${cseq.method} is not the request's ${message.method}`, headers, method);
  for (const name of ['from', 'to'])
    if (!parseNameAddr(headers.get(name)!)) fail(`bad ${name} "${headers.get(name)!.slice(0, 60)}"`, headers, method);
  for (const contact of headers.getAll('contact'))
    if (contact !== '*' && !parseNameAddr(contact)) fail(`bad Contact "${contact.slice(0, 60)}"`, headers, method);
  const maxForwards = headers.get('max-forwards');
  if (maxForwards !== undefined && !(/^\d{1,10}$/.test(maxForwards) && Number(maxForwards) <= 255))
    fail(`bad Max-Forwards "${maxForwards.slice(0, 20)}"`, headers, method);
}

/** A Via header field value (one element). */
export interface Via {
  transport: string;
  host: string;
  port: number | undefined;
  params: Map<string, string>;
}

/** Parses `SIP / 2.0 / UDP host:port;params` (LWS allowed around the slashes and semicolons). */
export function parseVia(value: string): Via | null {
  const m =
    /^SIP\s*\/\s*2\.0\s*\/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?:\s*:\s*(\d{1,5}))?\s*((?:;.*)?)$/.exec(
      value,
    );
  if (!m) return null;
  const params = parseParams(m[4]);
  if (!params) return null;
  return { transport: m[1].toUpperCase(), host: m[2], port: m[3] === undefined ? undefined : Number(m[3]), params };
}

/** `;name=value;flag` (LWS allowed), names lower-cased; null when malformed (an empty name). */
export function parseParams(text: string): Map<string, string> | null {
  const params = new Map<string, string>();
  if (text.trim() === '') return params;
  const parts = text.trim().slice(1).split(';');
  for (const part of parts) {
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).trim();
    if (!TOKEN.test(name)) return null;
    const raw = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (eq >= 0 && raw === '') return null;
    params.set(name.toLowerCase(), raw.startsWith('"') && raw.endsWith('"') && raw.length > 1 ? raw.slice(1, -1) : raw);
  }
  return params;
}

/** A From, To or Contact value: display name, URI and header parameters (tag, expires, +sip.src). */
export interface NameAddr {
  display: string;
  uri: string;
  params: Map<string, string>;
}

/**
 * Parses `"Display" <uri>;params`, `Display <uri>;params` or `uri;params` (an addr-spec, whose
 * parameters are the header's, RFC 3261 §20.10). Null on an unbalanced quote, `<` without `>`,
 * whitespace inside `<…>`, or malformed parameters.
 */
export function parseNameAddr(value: string): NameAddr | null {
  let rest = value.trim();
  let display = '';
  if (rest.startsWith('"')) {
    let i = 1;
    for (; i < rest.length && rest[i] !== '"'; i++) if (rest[i] === '\\') i++;
    if (i >= rest.length) return null;
    display = rest.slice(1, i).replace(/\\(.)/g, '$1');
    rest = rest.slice(i + 1).trimStart();
    if (!rest.startsWith('<')) return null;
  }
  let uri: string;
  const lt = rest.indexOf('<');
  if (lt >= 0) {
    const gt = rest.indexOf('>', lt);
    if (gt < 0) return null;
    if (!display) display = rest.slice(0, lt).trim();
    uri = rest.slice(lt + 1, gt);
    rest = rest.slice(gt + 1);
  } else {
    const semi = rest.indexOf(';');
    uri = (semi < 0 ? rest : rest.slice(0, semi)).trim();
    rest = semi < 0 ? '' : rest.slice(semi);
  }
  if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:[^\s<>"]+$/.test(uri)) return null;
  const params = parseParams(rest);
  return params ? { display, uri, params } : null;
}

/** The parts of a sip:/sips: URI a recording server reads: user (percent-decoded), host, port, `?headers`. */
export interface SipUri {
  scheme: string;
  user: string;
  host: string;
  port: number | undefined;
  /** The `?…` part, '' when there is none. */
  headers: string;
}

export function parseSipUri(uri: string): SipUri | null {
  const m = /^(sips?):(.+)$/i.exec(uri);
  if (!m) return null;
  // The user part may hold ';' and '?' (RFC 4475 §3.1.1.2); '@' appears in it only escaped.
  const at = m[2].lastIndexOf('@');
  const hostPart = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?::(\d{1,5}))?(?:;[^?]*)?(\?.*)?$/.exec(m[2].slice(at + 1));
  if (!hostPart) return null;
  let user = '';
  try {
    if (at > 0) user = decodeURIComponent(m[2].slice(0, at).split(':')[0]);
  } catch {
    return null;
  }
  return {
    scheme: m[1].toLowerCase(),
    user,
    host: hostPart[1],
    port: hostPart[2] === undefined ? undefined : Number(hostPart[2]),
    headers: hostPart[3] ?? '',
  };
}

const REASONS: Readonly<Record<number, string>> = {
  100: 'Trying',
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  415: 'Unsupported Media Type',
  420: 'Bad Extension',
  422: 'Session Interval Too Small',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  491: 'Request Pending',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? (status < 300 ? 'OK' : 'Error');
}

/** Writes a message; Content-Length is always set from the body. */
export function serialize(message: SipMessage): Buffer {
  const start =
    message.kind === 'request'
      ? `${message.method} ${message.uri} SIP/2.0`
      : `SIP/2.0 ${message.status} ${message.reason}`;
  const lines = [start];
  for (const [name, value] of message.headers.entries())
    if (name !== 'content-length') lines.push(`${headerName(name)}: ${value}`);
  lines.push(`Content-Length: ${message.body.length}`, '', '');
  return Buffer.concat([Buffer.from(lines.join('\r\n')), message.body]);
}

const SPELLING: Readonly<Record<string, string>> = {
  'call-id': 'Call-ID',
  cseq: 'CSeq',
  'www-authenticate': 'WWW-Authenticate',
};

function headerName(name: string): string {
  return SPELLING[name] ?? name.replace(/(^|-)([a-z])/g, (_, dash: string, ch: string) => dash + ch.toUpperCase());
}

/**
 * A response to `request` (RFC 3261 §8.2.6): Via, From, Call-ID and CSeq copied, To copied with
 * `toTag` added when it has none.
 */
export function responseTo(
  request: { headers: SipHeaders },
  status: number,
  toTag?: string,
  reason = reasonPhrase(status),
): SipResponse {
  const headers = new SipHeaders();
  for (const via of request.headers.getAll('via')) headers.add('via', via);
  headers.add('from', request.headers.get('from') ?? '');
  const to = request.headers.get('to') ?? '';
  headers.add('to', toTag && status > 100 && !parseNameAddr(to)?.params.has('tag') ? `${to};tag=${toTag}` : to);
  headers.add('call-id', request.headers.get('call-id') ?? '');
  headers.add('cseq', request.headers.get('cseq') ?? '');
  return { kind: 'response', status, reason, headers, body: Buffer.alloc(0) };
}
