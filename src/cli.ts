#!/usr/bin/env node
import fs from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { isScope, SCOPES, type Scope } from './auth/scopes.js';
import { loadConfig, type Config } from './config.js';
import { audiohookSecretIssuer } from './auth/audiohook.js';
import { MasterKeyring } from './crypto/keys.js';
import { rotateMasterKey } from './crypto/rotation.js';
import { CallrecError, errorCode } from './errors.js';
import { createLogger } from './log.js';
import { isProvider, parseSpeed, PROVIDERS, runReplay } from './replay/command.js';
import { startServer } from './server.js';
import { retryRecording } from './jobs.js';
import { MediaMetrics } from './metrics.js';
import { NodeGauges } from './node-gauges.js';
import { startWorkerHttp } from './worker-http.js';
import { openServices } from './services.js';
import { createStore, OPERATOR_TENANT_ID, type Store } from './store/index.js';
import { startWorkers } from '../workers/index.js';

/** Settings may live in ./.env (SPEC §2); real environment variables win. */
function config(): Config {
  if (fs.existsSync('.env')) process.loadEnvFile('.env');
  return loadConfig();
}

async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await createStore(config().databaseUrl);
  try {
    await store.migrate();
    return await fn(store);
  } finally {
    await store.close();
  }
}

function parseScopes(value: string): Scope[] {
  const scopes = value.split(',').map((s) => s.trim());
  const bad = scopes.find((s) => !isScope(s));
  if (bad !== undefined) throw new InvalidArgumentError(`unknown scope "${bad}" (known: ${SCOPES.join(', ')})`);
  return scopes as Scope[];
}

/** Runs until SIGINT/SIGTERM, then closes gracefully (live calls are finalized first). */
/**
 * SIGTERM or SIGINT runs `stop` (a graceful shutdown) and exits 0 once it is done. A second
 * signal runs `hurry` (which shortens the shutdown without losing anything); without one, or at
 * a third, the process exits 1 at once.
 */
function stopOnSignal(stop: () => Promise<void>, hurry?: () => void): void {
  let signals = 0;
  const onSignal = (signal: string) => {
    signals++;
    if (signals === 1) {
      console.error(`callrec: ${signal}, shutting down gracefully (a second signal hurries, a third stops at once)`);
      stop().then(() => process.exit(0), (err: Error) => {
        console.error(`callrec: shutdown failed: ${err.message}`);
        process.exit(1);
      });
    } else if (signals === 2 && hurry) {
      console.error(`callrec: second ${signal}, hurrying the shutdown`);
      hurry();
    } else {
      process.exit(1);
    }
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
}

const program = new Command('callrec').description('Self-hostable call-recording media server').showHelpAfterError();

program
  .command('serve')
  .description('HTTP API, provider media WebSockets and in-process workers')
  .option('--no-workers', "run no workers in this process: with SPOOL_URL, `callrec worker` nodes finalize its calls; without it they wait until it runs with workers")
  .action(async (opts: { workers: boolean }) => {
    const cfg = config();
    const server = await startServer(cfg, { workers: opts.workers });
    const base = cfg.publicUrl;
    console.error(`callrec is up: dashboard ${base}/, API ${base}/api, media endpoints ${base.replace(/^http/, 'ws')}/media/{twilio,telnyx,vonage}`);
    if (!cfg.apiKey) console.error('API keys: set CALLREC_API_KEY for an operator key, or run `npm run callrec -- keys create --name me --scopes admin`.');
    // Live calls run on (up to DRAIN_TIMEOUT_SECONDS); a second signal ends them now, still finalized.
    stopOnSignal(() => server.drain(), () => void server.drain());
  });

program
  .command('worker')
  .description('recording, webhook and retention workers only (scale them apart from the media nodes)')
  .option('--concurrency <n>', 'recording jobs at once', (v) => Number.parseInt(v, 10), 2)
  .action(async (opts: { concurrency: number }) => {
    const cfg = config();
    const log = createLogger(cfg.logLevel);
    const services = await openServices(cfg, log);
    const { store, storage, keyring, webhooks, spools } = services;
    const metrics = new MediaMetrics();
    const workers = startWorkers({ store, storage, log, keyring, webhooks, spools }, { connection: services.connection, prefix: cfg.queuePrefix, concurrency: opts.concurrency, metrics });
    const gauges = new NodeGauges({ metrics, store, recordings: services.recordings, spoolBytes: services.spoolBytes, dataDir: cfg.dataDir });
    let stopping = false;
    const http = await startWorkerHttp({ host: cfg.host, port: cfg.workerPort, log, metrics, gauges, readiness: () => services.readiness(), draining: () => stopping });
    log.info({ url: http.url }, 'callrec worker running: /healthz, /readyz and /metrics there');
    // BullMQ's close waits for the jobs in hand; a second signal leaves them to its stalled-job check.
    stopOnSignal(async () => {
      stopping = true;
      log.info('callrec worker stopping: finishing the jobs in hand');
      await workers.close();
      await http.close();
      await services.close();
      log.info('callrec worker stopped');
    });
  });

const jobs = program.command('jobs').description('recording jobs');
jobs
  .command('retry <call_id>')
  .description("queue a failed recording again, from any node: a shipped spool on the shared queue, a local one on the queue of the node whose disk holds it")
  .option('--tenant <id>', 'tenant', OPERATOR_TENANT_ID)
  .action(async (callId: string, opts: { tenant: string }) => {
    const cfg = config();
    const services = await openServices(cfg, createLogger('warn'));
    try {
      const recording = await retryRecording(services.store, services.recordings, opts.tenant, callId);
      console.log(`queued recording ${recording.id} of call ${callId} again`);
    } finally {
      await services.close();
    }
  });

program
  .command('migrate')
  .description('create or update the database schema')
  .action(() => withStore(async () => console.log('database is up to date')));

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

program
  .command('replay <files...>')
  .description('stream fixture captures at a server as the providers would (QA)')
  .requiredOption('--url <url>', 'ws:// base (e.g. ws://127.0.0.1:8080) or full endpoint URL')
  .option('--provider <name>', `${PROVIDERS.join(', ')} (default: each fixture's own)`, (v: string) => {
    if (!isProvider(v)) throw new InvalidArgumentError(`must be one of ${PROVIDERS.join(', ')}`);
    return v;
  })
  .option('--agent <id>', 'agent_id parameter')
  .option('--token <key>', 'API key with media:stream scope')
  .option('--speed <speed>', 'realtime, max or a multiplier', (v: string) => {
    try {
      return parseSpeed(v);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  }, 'realtime' as const)
  .option('--concurrency <n>', 'calls streaming at once', positiveInt, 1)
  .option('--calls <n>', 'total calls, repeating the files (default: one per file, times --repeat)', positiveInt)
  .option('--repeat <k>', 'stream each file k times', positiveInt, 1)
  .option('--dtmf <key>', 'press this key after the consent prompt has played (two-party consent)')
  .option('--no-check-recording', "do not wait for each call's recording to become ready")
  .action(async (files: string[], opts: { url: string; provider?: 'twilio' | 'telnyx' | 'vonage'; agent?: string; token?: string; speed: 'realtime' | 'max' | number; concurrency: number; calls?: number; repeat: number; dtmf?: string; checkRecording: boolean }) => {
    const summary = await runReplay({ files, url: opts.url, provider: opts.provider, agentId: opts.agent, token: opts.token, speed: opts.speed, concurrency: opts.concurrency, calls: opts.calls, repeat: opts.repeat, dtmf: opts.dtmf, checkRecording: opts.checkRecording });
    if (summary.failed > 0) process.exitCode = 1;
  });

program
  .command('bench')
  .description('performance suite: starts callrec as a child process, loads it, prints a table and writes bench/results.json')
  .option('--calls <n>', 'concurrent calls', positiveInt, 100)
  .option('--seconds <n>', 'length of each call, s', positiveInt, 20)
  .option('--bridge-calls <n>', 'concurrent calls in the bridge (latency) phases', positiveInt, 100)
  .option('--rounds <n>', 'rounds of each comparison (baseline and callrec side by side)', positiveInt, 3)
  .option('--ready-minutes <n>', 'length of the time-to-ready call, min', positiveInt, 10)
  .option('--out <file>', 'results file', 'bench/results.json')
  .option('--scale-out', 'instead, the scale-out section: two media nodes and a worker sharing PostgreSQL, Redis and a bucket; --calls per media node, --seconds per call')
  .option('--postgres <url>', 'with --scale-out: the PostgreSQL server the nodes share (a schema of their own is made and dropped)', 'postgres://postgres@127.0.0.1:5432/postgres')
  .action(async (opts: { calls: number; bridgeCalls: number; seconds: number; rounds: number; readyMinutes: number; out: string; scaleOut?: boolean; postgres: string }) => {
    // Loaded on demand: `serve` should not pay for the bench code.
    const { runBench } = await import('../bench/index.js');
    const scaleOut = opts.scaleOut ? { postgresUrl: opts.postgres } : undefined;
    const { failed } = await runBench({ calls: opts.calls, bridgeCalls: opts.bridgeCalls, seconds: opts.seconds, rounds: opts.rounds, readyMinutes: opts.readyMinutes, out: opts.out, scaleOut });
    if (failed > 0) process.exitCode = 1;
  });

program
  .command('fuzz')
  .description('fuzzer: starts callrec as a child process and sends it mutated provider streams and HTTP requests while a normal call runs')
  .option('--seconds <n>', 'how long to fuzz, s', positiveInt, 60)
  .option('--seed <n>', 'seed of the run (default: random; printed)', Number)
  .option('--case <n>', 'run only this case of the seed, once (as a failure report names it)', Number)
  .option('--concurrency <n>', 'cases in flight at once', positiveInt, 4)
  .action(async (opts: { seconds: number; seed?: number; case?: number; concurrency: number }) => {
    const { runFuzz, formatFuzzReport } = await import('../bench/fuzz.js');
    const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
    const report = await runFuzz({ seconds: opts.seconds, seed, only: opts.case, concurrency: opts.concurrency });
    console.log(formatFuzzReport(report));
    if (report.failures.length > 0) process.exitCode = 1;
  });

program
  .command('soak')
  .description('soak test: starts callrec as a child process, streams a long call and many more at max speed, prints RSS, RSS per call, spool backlog and queue over time')
  .option('--minutes <n>', 'how long to run, min', positiveInt, 10)
  .option('--calls <n>', 'calls streaming at once besides the long one', positiveInt, 50)
  .action(async (opts: { minutes: number; calls: number }) => {
    const { runSoak } = await import('../bench/soak.js');
    const report = await runSoak({ minutes: opts.minutes, calls: opts.calls });
    if (!report.flat) process.exitCode = 1;
  });

const keys = program.command('keys').description('API keys');
keys
  .command('create')
  .description('create an API key (the secret is printed once)')
  .requiredOption('--name <name>', 'what the key is for')
  .option('--tenant <id>', 'tenant the key belongs to', OPERATOR_TENANT_ID)
  .option('--scopes <list>', `comma-separated: ${SCOPES.join(', ')}`, parseScopes, ['admin'] as Scope[])
  .option('--audiohook', 'also issue a Genesys AudioHook client secret (its upgrades must then be signed with it)')
  .action((opts: { name: string; tenant: string; scopes: Scope[]; audiohook?: boolean }) =>
    withStore(async (store) => {
      if (opts.tenant === OPERATOR_TENANT_ID) await store.tenants.ensure(OPERATOR_TENANT_ID, 'Default');
      const issuer = opts.audiohook ? audiohookSecretIssuer(await MasterKeyring.load({ dataDir: config().dataDir, masterKey: config().masterKey })) : null;
      const { key, secret } = await store.keys.create({ tenantId: opts.tenant, name: opts.name, scopes: opts.scopes, audiohookSecret: issuer?.seal });
      console.log(JSON.stringify({ id: key.id, tenant_id: key.tenantId, name: key.name, scopes: key.scopes, secret, audiohook_client_secret: issuer?.secret }, null, 2));
    }),
  );
keys
  .command('list')
  .description("list API keys (every tenant's unless --tenant is given)")
  .option('--tenant <id>', 'only this tenant')
  .action((opts: { tenant?: string }) =>
    withStore(async (store) => {
      for (const k of await store.keys.list(opts.tenant ?? null)) {
        console.log(`${k.id}\t${k.tenantId}\t${k.prefix}…\t${k.name}\t${k.scopes.join(',')}\t${k.revokedAt ? `revoked ${k.revokedAt}` : 'active'}`);
      }
    }),
  );
keys
  .command('revoke <id>')
  .description('revoke an API key by its id, in whichever tenant it is')
  .option('--tenant <id>', 'only if it belongs to this tenant')
  .action((id: string, opts: { tenant?: string }) =>
    withStore(async (store) => {
      if (!(await store.keys.revoke(opts.tenant ?? null, id))) throw new CallrecError('ERR_NOT_FOUND', `no active key ${id}${opts.tenant ? ` in tenant ${opts.tenant}` : ''}`);
      console.log(`revoked ${id}`);
    }),
  );

keys
  .command('rotate-master')
  .description('make a new master key current and re-wrap every recording key and tenant secret under it (audio untouched)')
  .action(async () => {
    const cfg = config();
    const ring = await MasterKeyring.load({ dataDir: cfg.dataDir, masterKey: cfg.masterKey });
    await withStore(async (store) => {
      const report = await rotateMasterKey(store, ring);
      if (report.rotated) console.log(`new master key ${report.rotated.newKeyId}; ${report.rotated.oldKeyId} is retired (kept to read what was not re-wrapped)`);
      else console.log(`CALLREC_MASTER_KEY is set: re-wrapping under it (${ring.currentKeyId}); keep the old key in ${cfg.dataDir}/master-keys/`);
      console.log(`re-wrapped ${report.recordings} recording key(s) and ${report.tenantSecrets} tenant secret(s). Restart every callrec node so it loads the new key.`);
    });
  });

program.parseAsync().catch((err: Error) => {
  // Expected failures (bad config, no Redis, bad arguments) are one clear line, not a stack.
  console.error(errorCode(err) ? `callrec: ${err.message}` : err);
  process.exit(1);
});
