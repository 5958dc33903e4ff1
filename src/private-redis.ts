import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { Config } from './config.js';
import { CallrecError } from './errors.js';
import type { Logger } from './log.js';
import { redisAnswers } from './redis.js';

/** What to install when there is neither a Redis nor a `redis-server` to start. */
export const REDIS_INSTALL_HINT =
  'install Redis (Debian/Ubuntu: `sudo apt-get install redis-server`; macOS: `brew install redis`) and run this again, or set REDIS_URL to a Redis of yours';

/** The longest unix socket path Linux and macOS take (`sun_path` is 108 and 104 bytes, with its NUL). */
const MAX_SOCKET_PATH = 103;
const START_TIMEOUT_MS = 10_000;

export interface PrivateRedis {
  /** The socket's path, which ioredis and BullMQ take as a Redis URL. */
  url: string;
  /** Shuts the server down (its append-only file flushed). */
  stop(): Promise<void>;
}

/** The first `name` on `PATH` that may be run. Hand-written: a few lines, where `which` would be a dependency. */
function onPath(name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * The first run on a bare machine (`REDIS_URL` unset, nothing on the default address): a
 * `redis-server` of this node's own, on a unix socket under `DATA_DIR/redis` (`port 0`: no TCP
 * port, so nothing else on the machine or network reaches it) with the append-only file on, so
 * queued jobs outlive a restart. One left running by a node that was killed is taken over.
 * Without `redis-server` installed, says what to install.
 */
export async function startPrivateRedis(dataDir: string, defaultUrl: string, log: Logger): Promise<PrivateRedis> {
  const dir = path.join(dataDir, 'redis');
  const socket = privateSocket(dataDir);
  if (await socketAnswers(socket)) {
    log.info({ socket }, 'REDIS_URL is unset: using the private redis-server a previous run left under DATA_DIR');
    return { url: socket, stop: () => shutdown(socket) };
  }
  const binary = onPath('redis-server');
  if (!binary)
    throw new CallrecError(
      'ERR_REDIS_UNAVAILABLE',
      `No Redis answers at ${defaultUrl} and REDIS_URL is unset; callrec would start a private one, but redis-server is not installed: ${REDIS_INSTALL_HINT}.`,
    );
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
    throw new CallrecError(
      'ERR_CONFIG',
      `DATA_DIR is too deep for the private Redis's unix socket (${socket}): use a shorter DATA_DIR, or set REDIS_URL`,
    );
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const args = [
    '--port',
    '0',
    '--unixsocket',
    socket,
    '--unixsocketperm',
    '700',
    '--dir',
    dir,
    '--appendonly',
    'yes',
    '--daemonize',
    'no',
    '--loglevel',
    'warning',
  ];
  // A process group of its own: a Ctrl-C at the terminal reaches callrec, which drains, then stops Redis.
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  for (const stream of [child.stdout, child.stderr])
    stream.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-2000)));
  const exited = once(child, 'exit');
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await socketAnswers(socket))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new CallrecError(
        'ERR_REDIS_UNAVAILABLE',
        `the private redis-server (${binary}) did not start: ${output.trim().split('\n').at(-1) ?? 'no output'}. Set REDIS_URL to a Redis of yours.`,
      );
    }
    await sleep(50);
  }
  log.info(
    { socket, redisPid: child.pid },
    `no Redis at ${defaultUrl} and REDIS_URL is unset: started a private redis-server under DATA_DIR (no TCP port; set REDIS_URL to share one between nodes)`,
  );
  return { url: socket, stop: () => stopChild(child, exited) };
}

function privateSocket(dataDir: string): string {
  return path.join(dataDir, 'redis', 'redis.sock');
}

async function socketAnswers(socket: string): Promise<boolean> {
  return fs.existsSync(socket) && (await redisAnswers(socket));
}

/**
 * The Redis other commands (`worker`, `jobs retry`) use: `config`'s, unless `REDIS_URL` is unset,
 * nothing answers at the default address, and a `callrec serve` on the same `DATA_DIR` runs a
 * private one.
 */
export async function redisOfThisMachine(config: Config): Promise<Config> {
  if (!config.redisUrlDefault || (await redisAnswers(config.redisUrl))) return config;
  const socket = privateSocket(config.dataDir);
  return (await socketAnswers(socket)) ? { ...config, redisUrl: socket } : config;
}

async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  // SIGTERM: Redis flushes its append-only file, removes its socket and exits.
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  await exited;
}

/** A taken-over server is no child of ours: it is asked to shut down. */
async function shutdown(socket: string): Promise<void> {
  const client = new Redis(socket, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  await client
    .connect()
    .then(() => client.shutdown())
    .catch(() => {});
  client.disconnect();
}
