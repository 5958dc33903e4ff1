import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A real RFC 3161 time-stamping authority on 127.0.0.1: `openssl ts -reply` behind a small HTTP
 * front, with a throwaway certificate. `silent` makes it accept connections and never answer.
 */
export class TsaServer {
  readonly url: string;
  /** While true, requests are held open without an answer (an authority that does not respond). */
  silent = false;
  readonly #server: http.Server;
  readonly #dir: string;
  /** The authority's certificate (PEM path), for `openssl ts -verify -CAfile`. */
  readonly certFile: string;

  private constructor(server: http.Server, dir: string) {
    this.#server = server;
    this.#dir = dir;
    this.certFile = path.join(dir, 'tsa.crt');
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tsa`;
  }

  static async start(): Promise<TsaServer> {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-tsa-'));
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      path.join(dir, 'tsa.key'),
      '-out',
      path.join(dir, 'tsa.crt'),
      '-days',
      '2',
      '-subj',
      '/CN=callrec test TSA',
      '-addext',
      'extendedKeyUsage=critical,timeStamping',
    ]);
    await fs.writeFile(path.join(dir, 'serial'), '01\n');
    await fs.writeFile(
      path.join(dir, 'tsa.cnf'),
      [
        '[ tsa ]',
        'default_tsa = tsa1',
        '[ tsa1 ]',
        `dir = ${dir}`,
        'serial = $dir/serial',
        'signer_cert = $dir/tsa.crt',
        'signer_key = $dir/tsa.key',
        'signer_digest = sha256',
        'default_policy = 1.2.3.4.1',
        'digests = sha256',
        'accuracy = secs:1',
        'ess_cert_id_alg = sha256',
        '',
      ].join('\n'),
    );
    let seq = 0;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (tsa.silent) return; // held open: the client's timeout ends it
        const n = ++seq;
        const query = path.join(dir, `q${n}.tsq`);
        const reply = path.join(dir, `r${n}.tsr`);
        fs.writeFile(query, Buffer.concat(chunks))
          .then(() =>
            run('openssl', ['ts', '-reply', '-config', path.join(dir, 'tsa.cnf'), '-queryfile', query, '-out', reply]),
          )
          .then(() => fs.readFile(reply))
          .then(
            (body) => res.writeHead(200, { 'content-type': 'application/timestamp-reply' }).end(body),
            (err: Error) => res.writeHead(500).end(err.message),
          );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const tsa = new TsaServer(server, dir);
    return tsa;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
    await fs.rm(this.#dir, { recursive: true, force: true });
  }
}
