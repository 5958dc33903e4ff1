import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * A throw-away self-signed certificate for 127.0.0.1 (P-256), made by `openssl req` in a fresh
 * temporary directory: no private key is kept in the repository. `remove` deletes the directory.
 */
export async function selfSignedCertificate(): Promise<{
  certFile: string;
  keyFile: string;
  cert: string;
  remove(): Promise<void>;
}> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-tls-'));
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
  return {
    certFile,
    keyFile,
    cert: await fs.readFile(certFile, 'utf8'),
    remove: () => fs.rm(dir, { recursive: true, force: true }),
  };
}
