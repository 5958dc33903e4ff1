import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyServerFactory } from 'fastify';
import { CallrecError } from './errors.js';

/**
 * The HTTP server of a node, bound before anything else starts: a busy port is then one clear
 * error before the node has touched Redis or the database. Until `open`, requests are answered
 * 503 (`/healthz` included: the node is not up yet); then Fastify's handler takes them.
 * Fastify gets the server through `serverFactory`, and `listen` is not called on it again.
 */
export class Listener {
  readonly server: http.Server;
  #handler: http.RequestListener | null = null;

  private constructor(server: http.Server) {
    this.server = server;
  }

  /** Binds `host:port`; `variable` names the setting in the error when the port is taken. */
  static async bind(host: string, port: number, variable: string): Promise<Listener> {
    const server = http.createServer((_req, res) =>
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' }).end('starting'),
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'EADDRINUSE')
          reject(
            new CallrecError(
              'ERR_PORT_IN_USE',
              `${variable} ${port} is in use on ${host} (another callrec, or another program, listens there): stop it or set ${variable} to a free port`,
            ),
          );
        else if (err.code === 'EACCES')
          reject(
            new CallrecError(
              'ERR_PORT_IN_USE',
              `${variable} ${port} on ${host} may not be bound by this user: set ${variable} to a port above 1023`,
            ),
          );
        else reject(err);
      });
      server.listen({ port, host }, resolve);
    });
    return new Listener(server);
  }

  /** The port bound (the one picked, for 0). */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /**
   * For `Fastify({ serverFactory })`: keeps Fastify's handler until `open`, and applies Fastify's
   * timeouts as it does to a server of its own (keep-alive 72 s, longer than load balancers' idle
   * timeouts, so they never reuse a socket the node has just closed).
   */
  readonly factory: FastifyServerFactory = (handler, options) => {
    this.#handler = handler;
    this.server.keepAliveTimeout = options.keepAliveTimeout as number;
    this.server.requestTimeout = options.requestTimeout as number;
    this.server.setTimeout(options.connectionTimeout as number);
    return this.server;
  };

  /** From now on Fastify answers (call once `app.ready()` has resolved). */
  open(): void {
    if (!this.#handler) throw new Error('Listener.open before Fastify took the server');
    this.server.removeAllListeners('request');
    this.server.on('request', this.#handler);
  }

  /** Closes the server and every connection left on it (Fastify does not close a server it did not listen on). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }
}
