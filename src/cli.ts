#!/usr/bin/env node
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { isScope, SCOPES, type Scope } from './auth/scopes.js';
import { loadConfig, type Config } from './config.js';
import { audiohookSecretIssuer } from './auth/audiohook.js';
import { MasterKeyring } from './crypto/keys.js';
import { rotateMasterKey } from './crypto/rotation.js';
import { CallrecError, errorCode } from './errors.js';
import { createLogger } from './log.js';
import type { Provider } from './protocols/types.js';
import { isProvider, parseSpeed, PROVIDERS, runReplay } from './replay/command.js';
import { startServer } from './server.js';
import { retryRecording } from './jobs.js';
import { MediaMetrics } from './metrics.js';
import { NodeGauges } from './node-gauges.js';
import { Listener } from './listener.js';
import { redisOfThisMachine } from './private-redis.js';
import { startWorkerHttp } from './worker-http.js';
import { openServices } from './services.js';
import { createStore, OPERATOR_TENANT_ID, sqliteFile, type Store } from './store/index.js';
import { startWorkers } from '../workers/index.js';
import { registerEvidenceCommands } from './evidence/commands.js';

/** Settings may live in ./.env (SPEC §2); real environment variables win. */
function config(): Config {
  if (fs.existsSync('.env')) process.loadEnvFile('.env');
  return loadConfig();
}

/** The package's version, from the `package.json` above this file (`src/` when run from source, `dist/src/` when built). */
function version(): string {
  for (let dir = import.meta.dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
  }
  return 'unknown';
}

/**
 * Says (on stderr) which database a command opens, and refuses a SQLite file that does not exist
 * unless `create`: a command run away from the server's `DATA_DIR` would otherwise make a new
 * empty database and work on it (a key created there is unknown to the server).
 */
function openingDatabase(cfg: Config, create: boolean): void {
  const sqlite = cfg.databaseUrl.startsWith('sqlite:');
  // A SQLite URL may be relative (`sqlite://./data/callrec.db`), which URL would misread; it holds no password.
  const shown = sqlite ? null : new URL(cfg.databaseUrl);
  if (shown?.password) shown.password = '***';
  console.error(`callrec: database ${shown?.href ?? cfg.databaseUrl}`);
  if (!sqlite || create) return;
  const file = sqliteFile(cfg.databaseUrl);
  if (file !== ':memory:' && !fs.existsSync(file)) {
    throw new CallrecError(
      'ERR_NO_DATABASE',
      `no database at ${file}: run this where the server runs, with its DATA_DIR or DATABASE_URL (now DATA_DIR=${cfg.dataDir}), or create one with \`callrec migrate\``,
    );
  }
}

async function withStore<T>(fn: (store: Store) => Promise<T>, opts: { create?: boolean } = {}): Promise<T> {
  const cfg = config();
  const create = opts.create ?? false;
  openingDatabase(cfg, create);
  const store = await createStore(cfg.databaseUrl);
  try {
    // A PostgreSQL database (or schema) callrec never ran on: as empty as a new SQLite file.
    if (!create && !(await store.migrated())) {
      throw new CallrecError(
        'ERR_NO_DATABASE',
        "the database holds no callrec tables: point DATABASE_URL at the server's, or create them with `callrec migrate`",
      );
    }
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

/**
 * SIGTERM or SIGINT runs `stop` (a graceful shutdown) and exits 128 + the signal's number once it
 * is done (143, 130: what a shell reports for a process the signal ended, so supervisors read it
 * as "stopped on request"). A second signal runs `hurry` (which shortens the shutdown without
 * losing anything); without one, or at a third, the process exits at once. A failed shutdown exits 1.
 */
function stopOnSignal(stop: () => Promise<void>, hurry?: () => void): void {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    const code = 128 + os.constants.signals[signal];
    if (signals === 1) {
      console.error(`callrec: ${signal}, shutting down gracefully (a second signal hurries, a third stops at once)`);
      stop().then(
        () => process.exit(code),
        (err: Error) => {
          console.error('callrec: shutdown failed:', err);
          process.exit(1);
        },
      );
    } else if (signals === 2 && hurry) {
      console.error(`callrec: second ${signal}, hurrying the shutdown`);
      hurry();
    } else {
      process.exit(code);
    }
  };
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
}

/** `--help`'s tail: the environment variables a command reads and an example. */
function helpTail(variables: string[], example: string): string {
  const env =
    variables.length > 0
      ? `\nEnvironment (also read from ./.env; docs/cli.md lists them all):\n  ${variables.join(', ')}\n`
      : '';
  return `${env}\nExample:\n  $ ${example}\n`;
}

/** A `--provider` value: one of the media endpoints. */
function parseProvider(value: string): Provider {
  if (!isProvider(value)) throw new InvalidArgumentError(`must be one of ${PROVIDERS.join(', ')}`);
  return value;
}

/** A comma-separated list of providers, or `none`. */
function parseProviders(value: string): Provider[] {
  return value === 'none' ? [] : value.split(',').map((name) => parseProvider(name.trim()));
}

/** What every command that opens the database reads. */
const DATABASE_ENV = ['DATABASE_URL', 'DATA_DIR'];
/** What `serve` and `worker` read besides their own (docs/cli.md, README "Configuration"). */
const NODE_ENV = [
  ...DATABASE_ENV,
  'REDIS_URL',
  'STORAGE_URL',
  'STORAGE_ENDPOINT',
  'SPOOL_URL',
  'CALLREC_MASTER_KEY',
  'CALLREC_QUEUE_PREFIX',
  'LOG_LEVEL',
  'LOG_FORMAT',
  'AWS_REGION',
  'GOOGLE_APPLICATION_CREDENTIALS',
];

const program = new Command('callrec')
  .description('Self-hostable call-recording media server')
  .version(version(), '-V, --version', 'print the version')
  // Usage errors throw a CommanderError instead of exiting 1, so they exit 2 (below).
  .exitOverride()
  .showHelpAfterError()
  .addHelpText('after', helpTail([], 'callrec serve    (then open http://localhost:8080/)'));

program
  .command('serve')
  .description('HTTP API, provider media WebSockets and in-process workers')
  .option(
    '--no-workers',
    'run no workers in this process: with SPOOL_URL, `callrec worker` nodes finalize its calls; without it they wait until it runs with workers',
  )
  .addHelpText(
    'after',
    helpTail(
      [
        'PORT',
        'HOST',
        'PUBLIC_URL',
        ...NODE_ENV,
        'CALLREC_API_KEY',
        'TRUST_PROXY',
        'TTS_ENGINE',
        'FLITE_VOICE',
        'GOOGLE_TTS_VOICE',
        'GOOGLE_TTS_API_KEY',
        'TELNYX_API_KEY',
        'TELNYX_CREDENTIAL_ID',
        'TELNYX_TEST_NUMBER',
        'DRAIN_TIMEOUT_SECONDS',
        'RECOVERY_INTERVAL_SECONDS',
        'MAX_STREAMS_PER_NODE',
        'MAX_STREAMS_PER_TENANT',
        'and the other limits',
      ],
      'PORT=8080 DATA_DIR=./data callrec serve',
    ),
  )
  .action(async (opts: { workers: boolean }) => {
    const cfg = config();
    const server = await startServer(cfg, { workers: opts.workers });
    openingDatabase(cfg, true);
    const base = cfg.publicUrl;
    console.error(
      `callrec is up: dashboard ${base}/, API ${base}/api, media endpoints ${base.replace(/^http/, 'ws')}/media/{${PROVIDERS.join(',')}}`,
    );
    if (!cfg.apiKey)
      console.error(
        'API keys: set CALLREC_API_KEY for an operator key, or run `npm run callrec -- keys create --name me --scopes admin`.',
      );
    // Live calls run on (up to DRAIN_TIMEOUT_SECONDS); a second signal ends them now, still finalized.
    stopOnSignal(
      () => server.drain(),
      () => void server.drain(),
    );
  });

program
  .command('worker')
  .description('recording, webhook and retention workers only (scale them apart from the media nodes)')
  .option('--concurrency <n>', 'recording jobs at once', positiveInt, 2)
  .option(
    '--create-database',
    "start on a SQLite database that does not exist yet (normally a mistake: the worker shares the media nodes' database)",
  )
  .addHelpText(
    'after',
    helpTail(
      ['WORKER_PORT', 'HOST', ...NODE_ENV],
      'DATABASE_URL=postgres://callrec@db/callrec REDIS_URL=redis://redis:6379 callrec worker --concurrency 4',
    ),
  )
  .action(async (opts: { concurrency: number; createDatabase?: boolean }) => {
    const cfg = config();
    // The port first: a busy one stops the worker before it has touched Redis or the database.
    const listener = await Listener.bind(cfg.host, cfg.workerPort, 'WORKER_PORT');
    openingDatabase(cfg, opts.createDatabase ?? false);
    const log = createLogger(cfg.logLevel, { format: cfg.logFormat }).child({ role: 'worker' });
    const services = await openServices(await redisOfThisMachine(cfg), log);
    const { store, storage, keyring, webhooks, spools } = services;
    const metrics = new MediaMetrics();
    metrics.registry.registerMetric(services.egress.refused);
    const workers = startWorkers(
      { store, storage, log, keyring, webhooks, spools },
      {
        connection: services.connection,
        prefix: cfg.queuePrefix,
        concurrency: opts.concurrency,
        jobTimeLimitMs: cfg.jobTimeLimitMs,
        metrics,
      },
    );
    const gauges = new NodeGauges({
      metrics,
      store,
      recordings: services.recordings,
      spoolBytes: services.spoolBytes,
      dataDir: cfg.dataDir,
    });
    let stopping = false;
    const http = await startWorkerHttp({
      listener,
      host: cfg.host,
      log,
      metrics,
      gauges,
      readiness: () => services.readiness(),
      draining: () => stopping,
    });
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
  .description(
    'queue a failed recording again, from any node: a shipped spool on the shared queue, a local one on the queue of the node whose disk holds it',
  )
  .option('--tenant <id>', 'tenant', OPERATOR_TENANT_ID)
  .addHelpText(
    'after',
    helpTail(
      [...DATABASE_ENV, 'REDIS_URL', 'CALLREC_QUEUE_PREFIX', 'STORAGE_URL'],
      'callrec jobs retry CA0123456789abcdef --tenant default',
    ),
  )
  .action(async (callId: string, opts: { tenant: string }) => {
    const cfg = config();
    openingDatabase(cfg, false);
    const services = await openServices(await redisOfThisMachine(cfg), createLogger('warn', { format: cfg.logFormat }));
    try {
      const recording = await retryRecording(services.store, services.recordings, opts.tenant, callId);
      console.log(`queued recording ${recording.id} of call ${callId} again`);
    } finally {
      await services.close();
    }
  });

program
  .command('migrate')
  .description('create or update the database schema (creating the database if it does not exist)')
  .addHelpText('after', helpTail(DATABASE_ENV, 'DATABASE_URL=postgres://callrec@db/callrec callrec migrate'))
  .action(() => withStore(async () => console.log('database is up to date'), { create: true }));

/** `--token-stdin`: the first line of stdin, so `echo "$KEY" |` and `< keyfile` both work. */
async function readToken(stdin: NodeJS.ReadStream): Promise<string> {
  if (stdin.isTTY) process.stderr.write('API key: ');
  let text = '';
  for await (const chunk of stdin) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  const token = text.split('\n')[0].trim();
  if (token === '') throw new CallrecError('ERR_BAD_ARGUMENT', '--token-stdin: stdin held no API key');
  return token;
}

/** Columns padded to their widest cell, a header first: what `ls -l`-style listings look like. */
function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  for (const row of [header, ...rows])
    console.log(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  '));
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number, 0 or more');
  return n;
}

program
  .command('replay <files...>')
  .description('stream fixture captures at a server as the providers would (QA)')
  .requiredOption(
    '--url <url>',
    'the server: host:port, a ws://, wss://, http:// or https:// base, or a full endpoint URL',
  )
  .option('--provider <name>', `${PROVIDERS.join(', ')} (default: each fixture's own)`, parseProvider)
  .option('--agent <id>', 'agent_id parameter')
  .option('--token-stdin', 'read the API key (media:stream scope) from stdin instead of CALLREC_TOKEN')
  .option(
    '--token <key>',
    'the API key on the command line (seen by `ps` and shell history: prefer CALLREC_TOKEN or --token-stdin)',
  )
  .option(
    '--speed <speed>',
    'realtime, max or a multiplier',
    (v: string) => {
      try {
        return parseSpeed(v);
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
    },
    'realtime' as const,
  )
  .option('--concurrency <n>', 'calls streaming at once', positiveInt, 1)
  .option('--calls <n>', 'total calls, repeating the files (default: one per file, times --repeat)', positiveInt)
  .option('--repeat <k>', 'stream each file k times', positiveInt, 1)
  .option('--dtmf <key>', 'press this key after the consent prompt has played (two-party consent)')
  .option('--no-check-recording', "do not wait for each call's recording to become ready")
  .addHelpText(
    'after',
    helpTail(
      ['CALLREC_TOKEN (the API key, unless --token-stdin or --token)'],
      'CALLREC_TOKEN=$KEY callrec replay fixtures/twilio-fork-tones.jsonl --url localhost:8080 --agent support-bot',
    ),
  )
  .action(
    async (
      files: string[],
      opts: {
        url: string;
        provider?: Provider;
        agent?: string;
        token?: string;
        tokenStdin?: boolean;
        speed: 'realtime' | 'max' | number;
        concurrency: number;
        calls?: number;
        repeat: number;
        dtmf?: string;
        checkRecording: boolean;
      },
    ) => {
      if (opts.tokenStdin && opts.token !== undefined)
        throw new CallrecError('ERR_BAD_ARGUMENT', 'give the API key once: --token-stdin or --token');
      const token = opts.tokenStdin
        ? await readToken(process.stdin)
        : (opts.token ?? (process.env.CALLREC_TOKEN || undefined));
      const summary = await runReplay({
        files,
        url: opts.url,
        provider: opts.provider,
        agentId: opts.agent,
        token,
        speed: opts.speed,
        concurrency: opts.concurrency,
        calls: opts.calls,
        repeat: opts.repeat,
        dtmf: opts.dtmf,
        checkRecording: opts.checkRecording,
      });
      if (summary.failed > 0) process.exitCode = 1;
    },
  );

program
  .command('bench')
  .description(
    'performance suite: starts callrec as a child process, loads it, prints a table and writes bench/results.json',
  )
  .option('--calls <n>', 'concurrent calls', positiveInt, 100)
  .option('--seconds <n>', 'length of each call, s', positiveInt, 20)
  .option('--bridge-calls <n>', 'concurrent calls in the bridge (latency) phases', positiveInt, 100)
  .option('--rounds <n>', 'rounds of each comparison (baseline and callrec side by side)', positiveInt, 3)
  .option(
    '--siprec-sessions <n>',
    'concurrent SIPREC sessions (two RTP streams each) in the SIPREC phase; 0 skips it',
    nonNegativeInt,
    200,
  )
  .option('--ready-minutes <n>', 'length of the time-to-ready call, min', positiveInt, 10)
  .option('--out <file>', 'results file', 'bench/results.json')
  .option(
    '--provider <name>',
    `the fork phase's traffic: ${PROVIDERS.join(', ')} (the same audio in its own messages where bench/wires.ts writes them, else its capture in fixtures/)`,
    parseProvider,
    'twilio',
  )
  .option(
    '--compare <providers>',
    "with Twilio's fork phase, the providers whose fork runs beside it on the same audio: a comma-separated list, or none (default: every one bench/wires.ts writes)",
    parseProviders,
  )
  .option(
    '--scale-out',
    'instead, the scale-out section: two media nodes and a worker sharing PostgreSQL, Redis and a bucket; --calls per media node, --seconds per call',
  )
  .option(
    '--postgres <url>',
    'with --scale-out: the PostgreSQL server the nodes share (a schema of their own is made and dropped)',
    'postgres://postgres@127.0.0.1:5432/postgres',
  )
  .addHelpText(
    'after',
    helpTail(
      ['REDIS_URL (the Redis the nodes under test use; default redis://127.0.0.1:6379)'],
      'npm run bench -- --calls 200 --seconds 30',
    ),
  )
  .action(
    async (opts: {
      calls: number;
      provider: Provider;
      compare?: Provider[];
      bridgeCalls: number;
      seconds: number;
      rounds: number;
      siprecSessions: number;
      readyMinutes: number;
      out: string;
      scaleOut?: boolean;
      postgres: string;
    }) => {
      // Loaded on demand: `serve` should not pay for the bench code.
      const { runBench } = await import('../bench/index.js');
      const scaleOut = opts.scaleOut ? { postgresUrl: opts.postgres } : undefined;
      const { failed } = await runBench({
        calls: opts.calls,
        provider: opts.provider,
        compare: opts.compare,
        bridgeCalls: opts.bridgeCalls,
        seconds: opts.seconds,
        rounds: opts.rounds,
        siprecSessions: opts.siprecSessions,
        readyMinutes: opts.readyMinutes,
        out: opts.out,
        scaleOut,
      });
      if (failed > 0) process.exitCode = 1;
    },
  );

program
  .command('fuzz')
  .description(
    'fuzzer: starts callrec as a child process and sends it mutated provider streams and HTTP requests while a normal call runs',
  )
  .option('--seconds <n>', 'how long to fuzz, s', positiveInt, 60)
  .option('--seed <n>', 'seed of the run (default: random; printed)', Number)
  .option('--case <n>', 'run only this case of the seed, once (as a failure report names it)', Number)
  .option('--concurrency <n>', 'cases in flight at once', positiveInt, 4)
  .addHelpText('after', helpTail([], 'npm run fuzz -- --seconds 120 --seed 42'))
  .action(async (opts: { seconds: number; seed?: number; case?: number; concurrency: number }) => {
    const { runFuzz, formatFuzzReport } = await import('../bench/fuzz.js');
    const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
    const report = await runFuzz({ seconds: opts.seconds, seed, only: opts.case, concurrency: opts.concurrency });
    console.log(formatFuzzReport(report));
    if (report.failures.length > 0) process.exitCode = 1;
  });

program
  .command('soak')
  .description(
    'soak test: starts callrec as a child process, streams a long call and many more at max speed, prints RSS, RSS per call, spool backlog and queue over time',
  )
  .option('--minutes <n>', 'how long to run, min', positiveInt, 10)
  .option('--calls <n>', 'calls streaming at once besides the long one', positiveInt, 50)
  .option(
    '--worker',
    'finalize recordings in a separate `callrec worker` process (spools shipped through a file:// SPOOL_URL)',
  )
  .option('--malloc-arena-max <n>', "glibc's MALLOC_ARENA_MAX for the processes (as the image sets it)", positiveInt, 2)
  .option('--no-malloc-arena-max', 'leave MALLOC_ARENA_MAX unset (glibc default: 8 arenas per core)')
  .addHelpText('after', helpTail([], 'npm run soak -- --minutes 30 --calls 100 --worker'))
  .action(async (opts: { minutes: number; calls: number; worker?: boolean; mallocArenaMax: number | false }) => {
    const { runSoak } = await import('../bench/soak.js');
    const report = await runSoak({
      minutes: opts.minutes,
      calls: opts.calls,
      worker: opts.worker,
      mallocArenaMax: opts.mallocArenaMax === false ? null : opts.mallocArenaMax,
    });
    if (!report.flat) process.exitCode = 1;
  });

const keys = program.command('keys').description('API keys');
keys
  .command('create')
  .description('create an API key (the secret is printed once)')
  .requiredOption('--name <name>', 'what the key is for')
  .option('--tenant <id>', 'tenant the key belongs to', OPERATOR_TENANT_ID)
  .option('--scopes <list>', `comma-separated: ${SCOPES.join(', ')}`, parseScopes, ['admin'] as Scope[])
  .option(
    '--audiohook',
    'also issue a Genesys AudioHook client secret (its upgrades must then be signed with it; shown once)',
  )
  .option('--secret-only', 'print the secret alone (for `export KEY=$(callrec keys create …)`)')
  .option('--json', 'print the key and its secret(s) as JSON')
  .option(
    '--create-database',
    "create the database if there is none (normally a mistake: keys are checked against the server's database)",
  )
  .addHelpText(
    'after',
    helpTail(
      [...DATABASE_ENV, 'CALLREC_MASTER_KEY (with --audiohook)'],
      'export CALLREC_TOKEN=$(callrec keys create --name replay --scopes media:stream --secret-only)',
    ),
  )
  .action(
    (opts: {
      name: string;
      tenant: string;
      scopes: Scope[];
      audiohook?: boolean;
      secretOnly?: boolean;
      json?: boolean;
      createDatabase?: boolean;
    }) => {
      if (opts.secretOnly && opts.json)
        throw new CallrecError('ERR_BAD_ARGUMENT', 'choose one of --secret-only and --json');
      if (opts.secretOnly && opts.audiohook)
        throw new CallrecError(
          'ERR_BAD_ARGUMENT',
          '--audiohook issues two secrets: use --json (or neither) to see both',
        );
      return withStore(
        async (store) => {
          if (opts.tenant === OPERATOR_TENANT_ID) await store.tenants.ensure(OPERATOR_TENANT_ID, 'Default');
          const cfg = config();
          const issuer = opts.audiohook
            ? audiohookSecretIssuer(await MasterKeyring.load({ dataDir: cfg.dataDir, masterKey: cfg.masterKey }))
            : null;
          const { key, secret } = await store.keys.create({
            tenantId: opts.tenant,
            name: opts.name,
            scopes: opts.scopes,
            audiohookSecret: issuer?.seal,
          });
          if (opts.secretOnly) console.log(secret);
          else if (opts.json)
            console.log(
              JSON.stringify(
                {
                  id: key.id,
                  tenant_id: key.tenantId,
                  name: key.name,
                  scopes: key.scopes,
                  secret,
                  ...(issuer ? { audiohook_client_secret: issuer.secret } : {}),
                },
                null,
                2,
              ),
            );
          else {
            console.log(
              `created key ${key.id} "${key.name}" in tenant ${key.tenantId}, scopes ${key.scopes.join(',')}`,
            );
            console.log(`secret (shown this once): ${secret}`);
            if (issuer) console.log(`AudioHook client secret (shown this once): ${issuer.secret}`);
          }
        },
        { create: opts.createDatabase },
      );
    },
  );
keys
  .command('list')
  .description("list API keys (every tenant's unless --tenant is given)")
  .option('--tenant <id>', 'only this tenant')
  .option('--json', 'print a JSON array')
  .addHelpText('after', helpTail(DATABASE_ENV, 'callrec keys list --tenant default --json'))
  .action((opts: { tenant?: string; json?: boolean }) =>
    withStore(async (store) => {
      const list = await store.keys.list(opts.tenant ?? null);
      if (opts.json) {
        const rows = list.map((k) => ({
          id: k.id,
          tenant_id: k.tenantId,
          prefix: k.prefix,
          name: k.name,
          scopes: k.scopes,
          revoked_at: k.revokedAt,
        }));
        console.log(JSON.stringify(rows, null, 2));
        return;
      }
      if (list.length === 0) console.error(`callrec: no API keys${opts.tenant ? ` in tenant ${opts.tenant}` : ''}`);
      else
        printTable(
          ['ID', 'TENANT', 'PREFIX', 'NAME', 'SCOPES', 'STATUS'],
          list.map((k) => [
            k.id,
            k.tenantId,
            `${k.prefix}…`,
            k.name,
            k.scopes.join(','),
            k.revokedAt ? `revoked ${k.revokedAt}` : 'active',
          ]),
        );
    }),
  );
keys
  .command('revoke <id>')
  .description('revoke an API key by its id, in whichever tenant it is')
  .option('--tenant <id>', 'only if it belongs to this tenant')
  .addHelpText('after', helpTail(DATABASE_ENV, 'callrec keys revoke key_0123456789abcdef'))
  .action((id: string, opts: { tenant?: string }) =>
    withStore(async (store) => {
      if (!(await store.keys.revoke(opts.tenant ?? null, id)))
        throw new CallrecError('ERR_NOT_FOUND', `no active key ${id}${opts.tenant ? ` in tenant ${opts.tenant}` : ''}`);
      console.log(`revoked ${id}`);
    }),
  );

keys
  .command('rotate-master')
  .description(
    'make a new master key current and re-wrap every recording key and tenant secret under it (audio untouched)',
  )
  .addHelpText('after', helpTail([...DATABASE_ENV, 'CALLREC_MASTER_KEY'], 'callrec keys rotate-master'))
  .action(async () => {
    const cfg = config();
    const ring = await MasterKeyring.load({ dataDir: cfg.dataDir, masterKey: cfg.masterKey });
    await withStore(async (store) => {
      const report = await rotateMasterKey(store, ring);
      if (report.rotated)
        console.log(
          `new master key ${report.rotated.newKeyId}; ${report.rotated.oldKeyId} is retired (kept to read what was not re-wrapped)`,
        );
      else
        console.log(
          `CALLREC_MASTER_KEY is set: re-wrapping under it (${ring.currentKeyId}); keep the old key in ${cfg.dataDir}/master-keys/`,
        );
      console.log(
        `re-wrapped ${report.recordings} recording key(s) and ${report.tenantSecrets} tenant secret(s). Restart every callrec node so it loads the new key.`,
      );
    });
  });

registerEvidenceCommands(program, { config, withStore, helpTail });

/** Exit codes (docs/cli.md): 0 done, 1 failed, 2 a usage error (the command line, or what it asks for). */
program.parseAsync().catch((err: Error) => {
  // Commander has printed its message (and help) already; --help and --version end here too, with 0.
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  // Expected failures (bad config, no Redis, bad arguments) are one clear line, not a stack.
  const code = errorCode(err);
  console.error(code ? `callrec: ${err.message}` : err);
  process.exit(code === 'ERR_BAD_ARGUMENT' ? 2 : 1);
});
