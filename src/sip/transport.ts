import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { CallrecError } from '../errors.js';
import type { Logger } from '../log.js';
import {
  MAX_SIP_MESSAGE_BYTES,
  parseMessage,
  parseVia,
  responseTo,
  serialize,
  SipParseError,
  type SipMessage,
} from './message.js';
import type { SipPeer } from './transaction.js';

/** A SIP transport callrec listens on (RFC 3261 §18; TLS over TCP, §26.3.1). */
export type SipProtocol = 'udp' | 'tcp' | 'tls';

/** One `SIP_LISTEN` entry. */
export interface SipListen {
  protocol: SipProtocol;
  host: string;
  port: number;
}

/** Where a message came from, and how to answer it. */
export interface SipSource extends SipPeer {
  protocol: SipProtocol;
  /** The sender's address and port (the TCP or TLS peer, or the datagram's source). */
  address: string;
  port: number;
}

export interface SipTransportEvents {
  message: [message: SipMessage, source: SipSource];
}

/** A TCP connection idle this long is closed (RFC 3261 leaves it to the implementation). */
const TCP_IDLE_MS = 5 * 60_000;

/**
 * The UDP sockets and TCP and TLS listeners of `SIP_LISTEN`. Each datagram, or each message
 * framed by Content-Length on a TCP or TLS stream, is parsed and emitted with its source; a
 * request that breaks the grammar is answered 400 where its head could be read (RFC 3261
 * §21.4.1), else dropped; a stream that breaks it is closed.
 */
export class SipTransport extends EventEmitter<SipTransportEvents> {
  readonly #log: Logger;
  readonly #udp: dgram.Socket[] = [];
  /** TCP and TLS listeners (a `tls.Server` is a `net.Server`). */
  readonly #streams: { protocol: 'tcp' | 'tls'; server: net.Server }[] = [];
  readonly #connections = new Set<net.Socket>();

  constructor(log: Logger) {
    super();
    this.#log = log;
  }

  /**
   * Opens every listener; rejects `ERR_PORT_IN_USE` naming the one that could not bind.
   * `credentials`: the PEM certificate chain and key of the `tls:` listeners.
   */
  async listen(specs: readonly SipListen[], credentials?: { cert: string; key: string }): Promise<void> {
    if (!credentials && specs.some((spec) => spec.protocol === 'tls'))
      throw new CallrecError('ERR_CONFIG', 'a tls: listener needs SIP_TLS_CERT and SIP_TLS_KEY');
    for (const spec of specs) {
      try {
        if (spec.protocol === 'udp') await this.#listenUdp(spec);
        else if (spec.protocol === 'tcp') await this.#listenStream(spec, 'tcp', net.createServer());
        else await this.#listenStream(spec, 'tls', tls.createServer(credentials!));
      } catch (err) {
        await this.close();
        throw new CallrecError(
          'ERR_PORT_IN_USE',
          `SIP_LISTEN ${spec.protocol}:${spec.host}:${spec.port}: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
  }

  /** The bound addresses, in `SIP_LISTEN` order (port 0 resolved). */
  addresses(): SipListen[] {
    return [
      ...this.#udp.map((s) => ({ protocol: 'udp' as const, host: s.address().address, port: s.address().port })),
      ...this.#streams.map(({ protocol, server }) => {
        const a = server.address() as net.AddressInfo;
        return { protocol, host: a.address, port: a.port };
      }),
    ];
  }

  async close(): Promise<void> {
    for (const socket of this.#connections) socket.destroy();
    await Promise.all([
      ...this.#udp.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
      ...this.#streams.splice(0).map(({ server }) => new Promise<void>((resolve) => server.close(() => resolve()))),
    ]);
  }

  async #listenUdp(spec: SipListen): Promise<void> {
    const socket = dgram.createSocket(net.isIPv6(spec.host) ? 'udp6' : 'udp4');
    socket.on('message', (data, rinfo) => {
      this.#receive(data, udpSource(socket, rinfo.address, rinfo.port), false, (port) =>
        udpSource(socket, rinfo.address, port),
      );
    });
    await bound(socket, (done) => socket.bind(spec.port, spec.host, done));
    socket.on('error', (err) => this.#log.warn({ err }, 'SIP UDP socket error'));
    this.#udp.push(socket);
  }

  /** A TCP listener, or a TLS one (its sockets, once the handshake is done, framed the same way). */
  async #listenStream(spec: SipListen, protocol: 'tcp' | 'tls', server: net.Server): Promise<void> {
    server.on(protocol === 'tls' ? 'secureConnection' : 'connection', (socket: net.Socket) =>
      this.#accept(socket, protocol),
    );
    // A failed handshake (a scanner, a client that distrusts the certificate) closes that socket only.
    if (protocol === 'tls')
      server.on('tlsClientError', (err, socket) => {
        this.#log.debug({ address: socket.remoteAddress, reason: err.message }, 'SIP TLS handshake failed');
        socket.destroy();
      });
    await bound(server, (done) => server.listen(spec.port, spec.host, done));
    this.#streams.push({ protocol, server });
  }

  #accept(socket: net.Socket, protocol: 'tcp' | 'tls'): void {
    this.#connections.add(socket);
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('close', () => this.#connections.delete(socket));
    socket.on('error', () => {});
    const source: SipSource = {
      protocol,
      address: socket.remoteAddress ?? '',
      port: socket.remotePort ?? 0,
      reliable: true,
      send: (out) => {
        if (!socket.destroyed) socket.write(out);
      },
    };
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      while (pending.length) {
        const consumed = this.#receive(pending, source, true);
        if (consumed < 0) return void socket.destroy();
        if (consumed === 0) break;
        pending = pending.subarray(consumed);
      }
      if (pending.length > 2 * MAX_SIP_MESSAGE_BYTES) socket.destroy();
    });
  }

  /** Parses and emits one message; returns the bytes it took, 0 when more must arrive, -1 on a stream it cannot frame. */
  #receive(data: Buffer, source: SipSource, stream: boolean, atPort?: (port: number) => SipSource): number {
    let parsed;
    try {
      parsed = parseMessage(data, stream);
    } catch (err) {
      if (!(err instanceof SipParseError)) throw err;
      this.#log.debug({ address: source.address, reason: err.message }, 'bad SIP message');
      if (err.headers && err.method && err.method !== 'ACK') {
        replyPeer(source, err.headers.getAll('via')[0], atPort).send(
          serialize(responseTo({ headers: err.headers }, 400, undefined, `Bad Request (${err.message.slice(0, 80)})`)),
        );
      }
      return -1;
    }
    if (!parsed) return 0;
    const { message } = parsed;
    this.emit(
      'message',
      message,
      message.kind === 'request' ? replyPeer(source, message.headers.getAll('via')[0], atPort) : source,
    );
    return parsed.length;
  }
}

/**
 * Where responses to a request go (RFC 3261 §18.2.2, RFC 3581): over TCP, the connection;
 * over UDP, the source address, at the source port when the top Via asks for `rport`, else
 * at the Via's port.
 */
function replyPeer(
  source: SipSource,
  topVia: string | undefined,
  atPort: ((port: number) => SipSource) | undefined,
): SipSource {
  const via = topVia === undefined ? null : parseVia(topVia);
  if (!atPort || !via || via.params.has('rport')) return source;
  const port = via.port ?? 5060;
  return port === source.port ? source : atPort(port);
}

/**
 * callrec's Contact URI in a dialog over `protocol`: `sips:` when the dialog's request asked for
 * SIPS (RFC 3261 §12.1.1), else a `sip:` URI naming the transport when it is not UDP (§19.1.1).
 */
export function contactUri(host: string, port: number, protocol: SipProtocol, sips: boolean): string {
  if (sips) return `sips:${host}:${port}`;
  return `sip:${host}:${port}${protocol === 'udp' ? '' : `;transport=${protocol}`}`;
}

/** Resolves once `start` calls back (bound, listening); rejects with an 'error' before that. */
function bound(target: EventEmitter, start: (done: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    target.once('error', reject);
    start(() => {
      target.off('error', reject);
      resolve();
    });
  });
}

function udpSource(socket: dgram.Socket, address: string, port: number): SipSource {
  const send = (out: Buffer) => {
    try {
      socket.send(out, port, address);
    } catch {
      // The socket closed (the node is stopping): a retransmission due then goes nowhere.
    }
  };
  return { protocol: 'udp', address, port, reliable: false, send };
}
