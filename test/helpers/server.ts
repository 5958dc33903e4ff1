import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CALL_RECORDING_DEFAULTS, type CallRecordingSettings } from '../../src/agents/settings.js';
import { loadConfig } from '../../src/config.js';
import { MasterKeyring } from '../../src/crypto/keys.js';
import { createLogger, type Logger } from '../../src/log.js';
import { startServer, type CallrecServer, type ServerOptions } from '../../src/server.js';
import type { Recording } from '../../src/store/index.js';
import { createTestStore, type TestDbKind } from './db.js';
import { putEncrypted } from './recordings.js';
import { dropRedisPrefix, testPrefix } from './redis.js';

export interface TestServer {
  server: CallrecServer;
  /** What a second node needs to join this one's cluster (same database and Redis prefix). */
  cluster: { databaseUrl: string; prefix: string; storageUrl: string; masterKey: string };
  /** `ws://…` base for the media endpoints. */
  wsUrl: string;
  dataDir: string;
  tenantId: string;
  /** An admin key of `tenantId` (admin holds every scope, `media:stream` included). */
  key: string;
  /** Creates (or updates) an agent with these recording settings. */
  agent(id: string, settings: Partial<CallRecordingSettings>): Promise<void>;
  /** Waits until the call's recording is `ready` or `failed`. */
  recording(callId: string, timeoutMs?: number): Promise<Recording>;
  /** `fetch` against the API with the admin key. */
  api(pathname: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

/**
 * A real callrec server on a free port: fresh data dir, database and Redis key prefix.
 * `redisPrefix` shares a prefix the caller owns (and drops) with a server on a fresh database.
 */
export async function startTestServer(
  opts: {
    db?: TestDbKind;
    jitterMs?: number;
    join?: TestServer;
    redisPrefix?: string;
    env?: Record<string, string>;
    onRoute?: ServerOptions['onRoute'];
    workers?: boolean;
    recordingsRefreshMs?: number;
    log?: Logger;
  } = {},
): Promise<TestServer> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-e2e-'));
  // A node joining another shares its database and Redis prefix; the first node owns them.
  const db = opts.join
    ? { url: opts.join.cluster.databaseUrl, cleanup: async () => {} }
    : await createTestStore(opts.db ?? 'sqlite');
  const prefix = opts.join?.cluster.prefix ?? opts.redisPrefix ?? testPrefix();
  const storageUrl = opts.join?.cluster.storageUrl ?? `file://${path.join(dataDir, 'recordings')}`;
  // Nodes of one cluster share the master key, or one could not open another's recordings.
  const masterKey = opts.join?.cluster.masterKey ?? randomBytes(32).toString('base64');
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    DATABASE_URL: db.url,
    CALLREC_QUEUE_PREFIX: prefix,
    STORAGE_URL: storageUrl,
    CALLREC_MASTER_KEY: masterKey,
    LOG_LEVEL: 'silent',
    // Tests replay fixtures faster than real time: audio may run ahead of the wall clock.
    STREAM_AUDIO_LEAD_SECONDS: '86400',
    // Tests' runtimes, webhook receivers and buckets listen on loopback.
    EGRESS_ALLOW: '127.0.0.1,::1',
    ...opts.env,
  });
  const server = await startServer(config, {
    log: opts.log ?? createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'),
    jitterMs: opts.jitterMs,
    onRoute: opts.onRoute,
    workers: opts.workers,
    recordingsRefreshMs: opts.recordingsRefreshMs,
  });
  const tenantId = 'default';
  await server.store.tenants.ensure(tenantId, 'Default');
  const key = opts.join?.key ?? (await server.store.keys.create({ tenantId, name: 'e2e', scopes: ['admin'] })).secret;

  return {
    server,
    cluster: { databaseUrl: db.url, prefix, storageUrl, masterKey },
    wsUrl: server.url.replace(/^http/, 'ws'),
    dataDir,
    tenantId,
    key,
    async agent(id, settings) {
      await server.store.agents.patch(tenantId, id, { voice_tools: { call_recording: settings } }, null);
    },
    async recording(callId, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const rec = await server.store.recordings.getByCall(tenantId, callId);
        if (rec && (rec.status === 'ready' || rec.status === 'failed')) return rec;
        if (Date.now() > deadline) throw new Error(`recording of ${callId} not finished: ${rec?.status ?? 'none'}`);
        await sleep(50);
      }
    },
    api(pathname, init = {}) {
      return fetch(server.url + pathname, { ...init, headers: { authorization: `Bearer ${key}`, ...init.headers } });
    },
    async close() {
      await server.close();
      await db.cleanup();
      await fs.rm(dataDir, { recursive: true, force: true });
      if (opts.join || opts.redisPrefix) return;
      // BullMQ keys of this run only.
      await dropRedisPrefix(prefix, config.redisUrl);
    },
  };
}

/** A call id no other test run uses. */
export function uniqueCallId(label: string): string {
  return `${label}-${randomBytes(6).toString('hex')}`;
}

/** A call of `ts`'s tenant with a ready recording (`audio`, stored as mp3) whose object really is in the server's store. */
export async function readyCall(ts: TestServer, audio = Buffer.from('audio')): Promise<string> {
  const { store, storage } = ts.server;
  const callId = uniqueCallId('ready');
  await store.calls.create({
    tenantId: ts.tenantId,
    id: callId,
    agentId: 'agent-1',
    provider: 'twilio',
    mode: 'fork',
    sampleRate: 8000,
    legs: ['caller', 'agent'],
    settings: CALL_RECORDING_DEFAULTS,
  });
  const recording = await store.recordings.create({
    tenantId: ts.tenantId,
    callId,
    format: 'mp3',
    channels: 1,
    sampleRate: 8000,
    storageDays: 90,
  });
  const keyring = await MasterKeyring.load({ dataDir: ts.dataDir, masterKey: ts.cluster.masterKey });
  const object = await putEncrypted(
    storage.default,
    keyring,
    `${ts.tenantId}/${callId}/${recording.id}.mp3.enc`,
    audio,
  );
  await store.recordings.update(recording.id, { status: 'ready', ...object });
  return callId;
}

/** A callrec node in a process of its own (`callrec serve` or `worker` run from source), joined to `cluster`. */
export interface ServerProcess {
  /** `http://…` of its listener: a media node's API, or a worker's `/healthz`, `/readyz` and `/metrics`. */
  url: string;
  /** `ws://…` base for the media endpoints. */
  wsUrl: string;
  dataDir: string;
  api(pathname: string, init?: RequestInit): Promise<Response>;
  /** Ends the process as `kill -9` would: no clean-up of any kind. */
  kill(): Promise<void>;
  /** Sends `signal` without waiting (a drain test watches what follows). */
  signal(signal: NodeJS.Signals): void;
  /** Resolves with the process's exit code (null if a signal ended it). */
  exitCode: Promise<number | null>;
  /** What the process wrote to stderr so far (its logs). */
  stderr(): string;
  close(): Promise<void>;
}

export interface ServerProcessOptions {
  command?: 'serve' | 'worker';
  /** Use this DATA_DIR (kept on close) instead of a fresh one. */
  dataDir?: string;
  /**
   * Give the node a disk of its own at `dataDir`: a tmpfs mounted there in a private mount
   * namespace, so nodes started with the same path see different files, as two hosts or pods do.
   */
  privateDisk?: boolean;
  /**
   * With `privateDisk`: the disk is this host directory, bind-mounted at `dataDir` instead of a
   * tmpfs, so a node restarted with it finds what it left, while no other process sees it at `dataDir`.
   */
  disk?: string;
  /** More environment (`SPOOL_URL`…) and command-line arguments (`--no-workers`). */
  env?: Record<string, string>;
  args?: string[];
}

export async function startServerProcess(join: TestServer, opts: ServerProcessOptions = {}): Promise<ServerProcess> {
  const dataDir = opts.dataDir ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-node-')));
  await fs.mkdir(dataDir, { recursive: true });
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
  const env = {
    ...process.env,
    PORT: String(port),
    // A worker node listens on WORKER_PORT (`/healthz`, `/readyz`, `/metrics`), a media node on PORT.
    WORKER_PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    DATABASE_URL: join.cluster.databaseUrl,
    CALLREC_QUEUE_PREFIX: join.cluster.prefix,
    STORAGE_URL: join.cluster.storageUrl,
    CALLREC_MASTER_KEY: join.cluster.masterKey,
    LOG_LEVEL: 'warn',
    STREAM_AUDIO_LEAD_SECONDS: '86400',
    EGRESS_ALLOW: '127.0.0.1,::1',
    ...(opts.disk ? { CALLREC_TEST_DISK: opts.disk } : {}),
    ...opts.env,
  };
  const cli = path.join(import.meta.dirname, '../../src/cli.ts');
  const node = [process.execPath, '--import', 'tsx', cli, opts.command ?? 'serve', ...(opts.args ?? [])];
  // unshare(1) gives the shell a mount namespace of its own; the tmpfs it mounts is seen by no other process.
  const argv = opts.privateDisk
    ? [
        'unshare',
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        `${opts.disk ? 'mount --bind "$CALLREC_TEST_DISK"' : 'mount -t tmpfs tmpfs'} "$DATA_DIR" && exec "$@"`,
        'sh',
        ...node,
      ]
    : node;
  const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit');
  const url = `http://127.0.0.1:${port}`;
  // Started once it answers (a worker on its small listener).
  for (let tries = 0; ; tries++) {
    if (child.exitCode !== null) throw new Error(`callrec node exited: ${stderr}`);
    if (
      await fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (tries > 300) throw new Error(`callrec node did not start: ${stderr}`);
    await sleep(100);
  }
  const stop = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    url,
    wsUrl: url.replace(/^http/, 'ws'),
    dataDir,
    api: (pathname, init = {}) =>
      fetch(url + pathname, { ...init, headers: { authorization: `Bearer ${join.key}`, ...init.headers } }),
    kill: () => stop('SIGKILL'),
    signal: (signal) => child.kill(signal),
    exitCode: exited.then(() => child.exitCode),
    stderr: () => stderr,
    async close() {
      await stop('SIGTERM');
      if (!opts.dataDir) await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}
