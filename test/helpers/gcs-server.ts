import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createHash, randomUUID } from 'node:crypto';
import { CRC32C } from '@google-cloud/storage';

/**
 * Enough of the Cloud Storage JSON API for `@google-cloud/storage` (there is no internet here and
 * no emulator package): resumable uploads (chunked, with the "308 Resume Incomplete" status
 * query), media uploads, object metadata, ranged media downloads, delete and list. Objects live
 * in memory; hooks make the server fail in the ways a real one does.
 */
export class GcsTestServer {
  /** `apiEndpoint` for the client. */
  readonly endpoint: string;
  /** Every request received, in order: `METHOD /path?query`, then the Content-Range if any. */
  readonly requests: string[] = [];
  /** Bytes of upload data received, across all sessions (a partial chunk counts as far as it got). */
  uploadedBytes = 0;

  readonly #server: http.Server;
  readonly #port: number;
  readonly #sockets = new Set<Socket>();
  readonly #buckets: Map<string, Map<string, StoredObject>>;
  readonly #sessions = new Map<string, UploadSession>();
  #outage: Outage | null = null;
  #outageLeft = Infinity;
  #dropAt: { bytes: number; then: Outage | null } | null = null;
  #generation = 1;

  private constructor(server: http.Server, buckets: string[]) {
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
    this.endpoint = `http://127.0.0.1:${this.#port}`;
    this.#buckets = new Map(buckets.map((name) => [name, new Map()]));
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    server.on('request', (req, res) => this.#handle(req, res));
  }

  /** Starts a server on a free port holding the given (empty) buckets. */
  static async start(buckets: string[]): Promise<GcsTestServer> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new GcsTestServer(server, buckets);
  }

  /**
   * Makes the server unavailable until `recover()`, or for the next `requests` requests:
   * `refuse` stops listening (connections are refused, open ones dropped), `503` answers 503,
   * `stall` never answers, `403` denies access (bad credentials or permissions).
   */
  fail(outage: Outage, requests = Infinity): void {
    this.#outage = outage;
    this.#outageLeft = requests;
    if (outage === 'refuse') this.#stopListening();
  }

  /** Ends an outage. */
  async recover(): Promise<void> {
    if (this.#outage === 'refuse')
      await new Promise<void>((resolve) => this.#server.listen(this.#port, '127.0.0.1', resolve));
    this.#outage = null;
  }

  /**
   * Once an upload session has received `bytes` bytes, keeps exactly those and drops the
   * connection mid-request, as a server going away does; then (optionally) starts an outage.
   */
  dropUploadAt(bytes: number, then: Outage | null = null): void {
    this.#dropAt = { bytes, then };
  }

  /** The stored object's bytes, or undefined. */
  object(bucket: string, name: string): Buffer | undefined {
    return this.#buckets.get(bucket)?.get(name)?.data;
  }

  /** Names of the objects in a bucket. */
  objectNames(bucket: string): string[] {
    return [...(this.#buckets.get(bucket)?.keys() ?? [])];
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    if (this.#server.listening) await closed;
  }

  #stopListening(): void {
    this.#server.close();
    for (const socket of this.#sockets) socket.destroy();
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requests.push(
      `${req.method} ${req.url}${req.headers['content-range'] ? ` ${req.headers['content-range']}` : ''}`,
    );
    const outage = this.#outage;
    if (outage && --this.#outageLeft <= 0) this.#outage = null;
    if (outage === 'stall') return;
    if (outage === '503') return error(res, 503, 'backendError', 'service unavailable');
    if (outage === '403') return error(res, 403, 'forbidden', 'caller does not have storage.objects.create access');
    const url = new URL(req.url ?? '/', this.endpoint);
    // Object names arrive percent-encoded as one path segment (`a%2Fb`), so split before decoding.
    const parts = url.pathname.split('/').slice(1).map(decodeURIComponent);
    const method = req.method ?? 'GET';
    if (parts[0] === 'upload' && parts[1] === 'storage' && parts[3] === 'b' && parts[5] === 'o' && parts.length === 6) {
      const bucket = this.#buckets.get(parts[4]);
      if (!bucket) return error(res, 404, 'notFound', `no bucket ${parts[4]}`);
      const uploadId = url.searchParams.get('upload_id');
      if (method === 'PUT' && uploadId) return this.#uploadChunk(req, res, uploadId);
      if (method === 'POST' && url.searchParams.get('uploadType') === 'resumable')
        return this.#startSession(req, res, url, parts[4]);
      if (method === 'POST' && url.searchParams.get('uploadType') === 'media')
        return this.#mediaUpload(req, res, parts[4], url.searchParams.get('name') ?? '');
      return error(res, 400, 'invalid', `unsupported upload ${method} ${req.url}`);
    }
    if (parts[0] === 'storage' && parts[2] === 'b' && parts[4] === 'o') {
      const bucket = this.#buckets.get(parts[3]);
      if (!bucket) return error(res, 404, 'notFound', `no bucket ${parts[3]}`);
      if (parts.length === 5 && method === 'GET') {
        const prefix = url.searchParams.get('prefix') ?? '';
        const items = [...bucket.values()].filter((o) => o.name.startsWith(prefix)).map(metadata);
        return json(res, 200, { kind: 'storage#objects', items });
      }
      const object = parts.length === 6 ? bucket.get(parts[5]) : undefined;
      if (!object) return error(res, 404, 'notFound', `No such object: ${parts[3]}/${parts[5]}`);
      if (method === 'DELETE') {
        bucket.delete(object.name);
        res.writeHead(204).end();
        return;
      }
      if (method === 'GET' && url.searchParams.get('alt') === 'media') return sendMedia(req, res, object);
      if (method === 'GET') return json(res, 200, metadata(object));
    }
    error(res, 400, 'invalid', `unsupported ${method} ${req.url}`);
  }

  #startSession(req: http.IncomingMessage, res: http.ServerResponse, url: URL, bucket: string): void {
    const name = url.searchParams.get('name');
    if (!name) return error(res, 400, 'required', 'name is required');
    req.resume().on('end', () => {
      const id = randomUUID();
      this.#sessions.set(id, {
        bucket,
        name,
        contentType: String(req.headers['x-upload-content-type'] ?? 'application/octet-stream'),
        chunks: [],
        received: 0,
        done: null,
      });
      const location = new URL(`/upload/storage/v1/b/${encodeURIComponent(bucket)}/o`, this.endpoint);
      location.searchParams.set('uploadType', 'resumable');
      location.searchParams.set('name', name);
      location.searchParams.set('upload_id', id);
      res.writeHead(200, { location: location.href }).end();
    });
  }

  #uploadChunk(req: http.IncomingMessage, res: http.ServerResponse, id: string): void {
    const session = this.#sessions.get(id);
    if (!session) return error(res, 404, 'notFound', 'no such upload session');
    // `bytes */*` or `bytes */total` (a status query), `bytes first-last/total|*`, `bytes first-*/total|*`;
    // the client sends an empty last chunk as `bytes 0--1/0`.
    const range = /^bytes (?:\*|(\d+)-(-?\d+|\*))\/(\d+|\*)$/.exec(String(req.headers['content-range'] ?? ''));
    if (!range) return error(res, 400, 'invalid', `bad Content-Range: ${req.headers['content-range']}`);
    const first = range[1] === undefined ? session.received : Number(range[1]);
    const total = range[3] === '*' ? null : Number(range[3]);
    if (first > session.received)
      return error(res, 400, 'invalid', `chunk starts at ${first}, have ${session.received}`);
    let skip = session.received - first; // a resent chunk overlaps bytes we already hold
    req.on('data', (chunk: Buffer) => {
      if (session.done || req.socket.destroyed) return;
      if (skip >= chunk.length) {
        skip -= chunk.length;
        return;
      }
      let accepted = chunk.subarray(skip);
      skip = 0;
      const drop = this.#dropAt;
      if (drop && session.received + accepted.length >= drop.bytes)
        accepted = accepted.subarray(0, drop.bytes - session.received);
      session.chunks.push(accepted);
      session.received += accepted.length;
      this.uploadedBytes += accepted.length;
      if (drop && session.received === drop.bytes) {
        this.#dropAt = null;
        req.socket.destroy();
        if (drop.then) this.fail(drop.then);
      }
    });
    req.on('end', () => {
      if (session.done) return json(res, 200, metadata(session.done));
      // `first-*` streams the rest of the object in this one request: its end is the object's end.
      if ((total !== null && session.received === total) || range[2] === '*') {
        session.done = this.#store(session.bucket, session.name, Buffer.concat(session.chunks), session.contentType);
        session.chunks = [];
        return json(res, 200, metadata(session.done));
      }
      const headers: http.OutgoingHttpHeaders =
        session.received > 0 ? { range: `bytes=0-${session.received - 1}` } : {};
      res.writeHead(308, headers).end();
    });
  }

  #mediaUpload(req: http.IncomingMessage, res: http.ServerResponse, bucket: string, name: string): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const object = this.#store(
        bucket,
        name,
        Buffer.concat(chunks),
        String(req.headers['content-type'] ?? 'application/octet-stream'),
      );
      json(res, 200, metadata(object));
    });
  }

  #store(bucket: string, name: string, data: Buffer, contentType: string): StoredObject {
    const object: StoredObject = {
      bucket,
      name,
      data,
      contentType,
      generation: this.#generation++,
      crc32c: crc32c(data),
      md5: createHash('md5').update(data).digest('base64'),
      updated: new Date().toISOString(),
    };
    this.#buckets.get(bucket)!.set(name, object);
    return object;
  }
}

export type Outage = 'refuse' | '503' | 'stall' | '403';

interface StoredObject {
  bucket: string;
  name: string;
  data: Buffer;
  contentType: string;
  generation: number;
  crc32c: string;
  md5: string;
  updated: string;
}

interface UploadSession {
  bucket: string;
  name: string;
  contentType: string;
  chunks: Buffer[];
  received: number;
  /** The object, once the last byte arrived (a finished session answers status queries with it). */
  done: StoredObject | null;
}

function metadata(o: StoredObject): Record<string, unknown> {
  return {
    kind: 'storage#object',
    id: `${o.bucket}/${o.name}/${o.generation}`,
    bucket: o.bucket,
    name: o.name,
    generation: String(o.generation),
    metageneration: '1',
    contentType: o.contentType,
    size: String(o.data.length),
    crc32c: o.crc32c,
    md5Hash: o.md5,
    updated: o.updated,
  };
}

function sendMedia(req: http.IncomingMessage, res: http.ServerResponse, o: StoredObject): void {
  const headers: http.OutgoingHttpHeaders = {
    'content-type': o.contentType,
    'x-goog-generation': String(o.generation),
    'x-goog-stored-content-encoding': 'identity',
    'x-goog-hash': `crc32c=${o.crc32c},md5=${o.md5}`,
    'accept-ranges': 'bytes',
  };
  const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
  if (!range) {
    res.writeHead(200, { ...headers, 'content-length': o.data.length }).end(o.data);
    return;
  }
  const start = Number(range[1]);
  const end = Math.min(range[2] ? Number(range[2]) : o.data.length - 1, o.data.length - 1);
  if (start >= o.data.length) return error(res, 416, 'requestedRangeNotSatisfiable', 'range not satisfiable');
  res.writeHead(206, {
    ...headers,
    'content-length': end - start + 1,
    'content-range': `bytes ${start}-${end}/${o.data.length}`,
  });
  res.end(o.data.subarray(start, end + 1));
}

function crc32c(data: Buffer): string {
  const crc = new CRC32C();
  crc.update(data);
  return crc.toString();
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res
    .writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) })
    .end(text);
}

function error(res: http.ServerResponse, status: number, reason: string, message: string): void {
  json(res, status, { error: { code: status, message, errors: [{ reason, message }] } });
}
