/**
 * A callrec node for the suites that load one from outside (bench, fuzz, soak): its data in a
 * fresh directory, its tenant, key and agent provisioned through the store it will open, run as
 * a child process, and its Redis keys removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { CallRecordingSettings } from '../src/agents/settings.js';
import type { Scope } from '../src/auth/scopes.js';
import { createStore } from '../src/store/index.js';
import { freePort, startChild, waitForHttp, type Child } from './proc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Run from the build (`npm run bench`), the compiled CLI; from TypeScript source (jest), cli.ts through tsx. */
const FROM_SOURCE = fileURLToPath(import.meta.url).endsWith('.ts');
export const CLI = path.join(here, `../src/cli.${FROM_SOURCE ? 'ts' : 'js'}`);
/** The repository's root (`dist/` holds no fixtures). */
export const REPO_ROOT = path.join(here, FROM_SOURCE ? '..' : '../..');

export interface Callrec {
  child: Child;
  baseUrl: string;
  /** `ws://…/media/twilio`. */
  wsUrl: string;
}

/** What a node's data lives in: its environment (DATA_DIR, SQLite, a Redis prefix of its own) and how to remove it. */
export interface NodeData {
  env: Record<string, string>;
  redisUrl: string;
  dataDir: string;
  /** Deletes the directory and the Redis keys under the node's prefix. */
  remove(): Promise<void>;
}

/** A fresh DATA_DIR, SQLite database and Redis queue prefix named after `label`. */
export async function nodeData(
  label: string,
  redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
): Promise<NodeData> {
  const run = `${label}-${randomBytes(4).toString('hex')}`;
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), `callrec-${label}-`));
  const env = {
    DATA_DIR: dataDir,
    DATABASE_URL: `sqlite://${path.join(dataDir, 'callrec.db')}`,
    REDIS_URL: redisUrl,
    LOG_LEVEL: 'warn',
    CALLREC_QUEUE_PREFIX: run,
  };
  return {
    env,
    redisUrl,
    dataDir,
    async remove() {
      await deleteKeys(redisUrl, [run]);
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface Provisioned {
  tenantId: string;
  agentId: string;
  scopes: Scope[];
  settings: Partial<CallRecordingSettings>;
  /** The tenant's `sip_sources` as stored (normalised CIDRs, `127.0.0.1/32`): whose SIPREC INVITEs are its. */
  sipSources?: string[];
}

/** Provisions, through the store the server will open, the tenant, a key and the recording agent; returns the key's secret. */
export async function provision(databaseUrl: string, what: Provisioned): Promise<string> {
  const store = await createStore(databaseUrl);
  try {
    await store.migrate();
    await store.tenants.ensure(what.tenantId, what.tenantId);
    const { secret } = await store.keys.create({ tenantId: what.tenantId, name: what.agentId, scopes: what.scopes });
    await store.agents.patch(what.tenantId, what.agentId, { voice_tools: { call_recording: what.settings } }, null);
    const sources = what.sipSources;
    if (sources)
      await store.tenants.updateSettings(what.tenantId, (settings) => ({ ...settings, sip_sources: sources }));
    return secret;
  } finally {
    await store.close();
  }
}

/** Starts `callrec serve` as a child and waits for `/healthz`; `onLog` gets its log output (JSON lines), else it is dropped. */
export async function startCallrec(
  env: Record<string, string | undefined>,
  workers: boolean,
  onLog?: (chunk: string) => void,
): Promise<Callrec> {
  const port = await freePort();
  const child = startChild(
    CLI,
    workers ? ['serve'] : ['serve', '--no-workers'],
    { ...env, PORT: String(port), HOST: '127.0.0.1', PUBLIC_URL: `http://127.0.0.1:${port}` },
    {
      execArgv: FROM_SOURCE ? ['--import', 'tsx'] : undefined,
      onStdout: onLog,
    },
  );
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${baseUrl}/healthz`, child);
  return { child, baseUrl, wsUrl: `ws://127.0.0.1:${port}/media/twilio` };
}

/** Starts `callrec worker` as a child and waits for its `/healthz` (on WORKER_PORT). */
export async function startWorker(env: Record<string, string | undefined>): Promise<{ child: Child; baseUrl: string }> {
  const port = await freePort();
  const child = startChild(
    CLI,
    ['worker'],
    { ...env, WORKER_PORT: String(port), HOST: '127.0.0.1' },
    { execArgv: FROM_SOURCE ? ['--import', 'tsx'] : undefined },
  );
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitForHttp(`${baseUrl}/healthz`, child);
  return { child, baseUrl };
}

/** Removes every Redis key under the prefixes. */
export async function deleteKeys(redisUrl: string, prefixes: string[]): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    for (const prefix of prefixes) {
      for await (const keys of redis.scanStream({ match: `${prefix}:*`, count: 500 }))
        if ((keys as string[]).length) await redis.del(...(keys as string[]));
    }
  } finally {
    redis.disconnect();
  }
}
