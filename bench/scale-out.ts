/**
 * `callrec bench --scale-out`: a cluster on this machine, as issue 12 describes one. Two media
 * nodes (`serve --no-workers`, `SPOOL_URL` set, each its own `DATA_DIR`: a private tmpfs when the
 * bench runs as root, so no other node can open its files) and one `callrec worker`, sharing
 * PostgreSQL, Redis and a bucket (`file://` directories standing in for one). Three phases:
 * 1. calls on both media nodes, hung up together: hang-up → `ready` when the job runs on the worker;
 * 2. more calls, then one media node `kill -9`ed and the other sent SIGTERM at once: how long a
 *    third media node takes to recover the dead node's calls (heartbeats, the sweep) and what they
 *    lost; how long the drain takes, its calls running to their end.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { createStore, type Recording, type Store } from '../src/store/index.js';
import { runLoad } from './load.js';
import { freePort } from './proc.js';

export interface ScaleOutOptions {
  /** Calls per media node in each phase. */
  calls: number;
  /** Length of each call in phase 1, s. */
  seconds: number;
  /** A PostgreSQL server the nodes share (a schema of the bench's own is made and dropped there). */
  postgresUrl: string;
  redisUrl: string;
  cli: string;
  /** Provisions tenant, key and agent in a database; returns the key. */
  provision(databaseUrl: string): Promise<string>;
  agentId: string;
  tenantId: string;
  note(text: string): void;
  row(metric: string, value: number, unit: string, target?: string, pass?: boolean | null): void;
  /** Redis key prefix of the run (dropped by the caller). */
  prefix: string;
}

/** Audio per shipped segment (the default) and the length of each phase-2 call: three segments. */
const SEGMENT_SECONDS = 10;
const PHASE2_SECONDS = 3 * SEGMENT_SECONDS;
/** Into the phase-2 calls, the kill and the SIGTERM: one and a half segments. */
const CUT_AT_SECONDS = 1.5 * SEGMENT_SECONDS;

interface Node {
  name: string;
  url: string;
  wsUrl: string;
  exited: Promise<number | null>;
  stderr(): string;
  signal(signal: NodeJS.Signals): void;
}

const isRoot = process.getuid?.() === 0;

/** Starts a callrec node from the build; a media node on a disk of its own (see the module comment). */
async function startNode(
  name: string,
  cli: string,
  command: 'serve' | 'worker',
  args: string[],
  env: Record<string, string>,
): Promise<Node> {
  const port = await freePort();
  const node = [process.execPath, cli, command, ...args];
  const argv =
    isRoot && command === 'serve'
      ? [
          'unshare',
          '--mount',
          '--propagation',
          'private',
          'sh',
          '-c',
          'mount -t tmpfs tmpfs "$DATA_DIR" && exec "$@"',
          'sh',
          ...node,
        ]
      : node;
  const child = spawn(argv[0], argv.slice(1), {
    env: { ...process.env, ...env, PORT: String(port), WORKER_PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
  const exited = once(child, 'exit').then(() => child.exitCode);
  const url = `http://127.0.0.1:${port}`;
  for (
    let tries = 0;
    !(await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    ));
    tries++
  ) {
    if (child.exitCode !== null || tries > 300) throw new Error(`${name} did not start: ${stderr}`);
    await sleep(100);
  }
  return {
    name,
    url,
    wsUrl: `ws://127.0.0.1:${port}/media/twilio`,
    exited,
    stderr: () => stderr,
    signal: (s) => child.kill(s),
  };
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Waits until every call's recording is `ready` or `failed` (or `timeoutMs` passes); returns them. */
async function settled(store: Store, tenantId: string, callIds: string[], timeoutMs: number): Promise<Recording[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const recordings = await Promise.all(callIds.map((id) => store.recordings.getByCall(tenantId, id)));
    const done = recordings.filter((r): r is Recording => r?.status === 'ready' || r?.status === 'failed');
    if (done.length === callIds.length || Date.now() > deadline) return done;
    await sleep(100);
  }
}

export async function benchScaleOut(opts: ScaleOutOptions): Promise<void> {
  const { calls: n, note, row } = opts;
  const run = randomBytes(4).toString('hex');
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-scale-out-'));
  const schema = `bench_scale_out_${run}`;
  const databaseUrl = `${opts.postgresUrl}${opts.postgresUrl.includes('?') ? '&' : '?'}schema=${schema}`;
  const shared = {
    DATABASE_URL: databaseUrl,
    REDIS_URL: opts.redisUrl,
    CALLREC_QUEUE_PREFIX: opts.prefix,
    CALLREC_MASTER_KEY: randomBytes(32).toString('base64'),
    STORAGE_URL: pathToFileURL(path.join(root, 'bucket', 'recordings')).href,
    SPOOL_URL: pathToFileURL(path.join(root, 'bucket', 'spools')).href,
    SPOOL_SEGMENT_SECONDS: String(SEGMENT_SECONDS),
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_KEY: String(1e9),
    // The load generator opens every call at once from one address.
    MAX_PENDING_STREAMS_PER_IP: String(1e6),
  };
  const nodes: Node[] = [];
  const start = async (name: string, command: 'serve' | 'worker', args: string[] = []) => {
    const dataDir = path.join(root, name);
    await fs.mkdir(dataDir, { recursive: true });
    const node = await startNode(name, opts.cli, command, args, { ...shared, DATA_DIR: dataDir });
    nodes.push(node);
    return node;
  };
  const store = await createStore(databaseUrl);
  try {
    await store.migrate();
    const key = await opts.provision(databaseUrl);
    const params = { agent_id: opts.agentId, token: key };
    const ids = (phase: string, node: string, count: number) =>
      Array.from({ length: count }, (_, i) => `bench-${run}-${phase}-${node}-${i}`);
    note(
      `scale-out: two media nodes (${isRoot ? 'private tmpfs disks' : 'separate DATA_DIRs on one disk: not root, so no private mounts'}), one worker, PostgreSQL, Redis, file:// bucket`,
    );
    await start('worker', 'worker');
    const [a, b] = [
      await start('media-a', 'serve', ['--no-workers']),
      await start('media-b', 'serve', ['--no-workers']),
    ];

    // 1. Hang-up → ready, every job on the worker (the media nodes run none).
    note(`scale-out 1/2: ${n} calls × ${opts.seconds} s on each media node, finalized by the worker`);
    const [idsA, idsB] = [ids('ready', 'a', n), ids('ready', 'b', n)];
    let hungUpAt = 0;
    await runLoad({
      url: a.wsUrl,
      callIds: idsA,
      paired: { url: b.wsUrl, callIds: idsB },
      seconds: opts.seconds,
      tracks: 'both',
      params,
      onLoadEnd: () => (hungUpAt = Date.now()),
    });
    const phase1 = await settled(store, opts.tenantId, [...idsA, ...idsB], 120_000);
    const toReady = phase1.filter((r) => r.status === 'ready').map((r) => (Date.parse(r.readyAt!) - hungUpAt) / 1000);
    const firstAttempt = phase1.filter((r) => r.status === 'ready' && r.attempts === 1).length;
    row(
      `scale-out: calls ready on the first attempt (${n} per media node, jobs on the worker)`,
      firstAttempt,
      `of ${2 * n}`,
      `${2 * n}`,
      firstAttempt === 2 * n,
    );
    row('scale-out: hang-up → ready p50 / p99', quantile(toReady, 0.5), `s / ${quantile(toReady, 0.99).toFixed(2)} s`);

    // 2. Kill one node, drain the other, mid-call; a third media node sweeps.
    await start('media-c', 'serve', ['--no-workers']);
    note(
      `scale-out 2/2: ${n} calls × ${PHASE2_SECONDS} s on each media node; at ${CUT_AT_SECONDS} s media-a is killed (-9) and media-b gets SIGTERM`,
    );
    const [killIds, drainIds] = [ids('killed', 'a', n), ids('drained', 'b', n)];
    let killedAt = 0;
    let termAt = 0;
    let readyz503Ms = Number.NaN;
    const cutAt = performance.now() + CUT_AT_SECONDS * 1000;
    const load = runLoad({
      url: a.wsUrl,
      callIds: killIds,
      paired: { url: b.wsUrl, callIds: drainIds },
      seconds: PHASE2_SECONDS,
      tracks: 'both',
      params,
      onSecond: () => {
        if (killedAt !== 0 || performance.now() < cutAt) return;
        killedAt = Date.now();
        a.signal('SIGKILL');
        termAt = performance.now();
        b.signal('SIGTERM');
        void (async () => {
          while (
            (await fetch(`${b.url}/readyz`).then(
              (r) => r.status,
              () => 0,
            )) !== 503
          )
            await sleep(5);
          readyz503Ms = performance.now() - termAt;
        })();
      },
    });
    const drainExit = b.exited.then((code) => ({ code, seconds: (performance.now() - termAt) / 1000 }));
    await load;
    const drained = await drainExit;
    const recovered = await settled(store, opts.tenantId, killIds, 180_000);
    const drainedRecordings = await settled(store, opts.tenantId, drainIds, 60_000);
    const recoveredReady = recovered.filter((r) => r.status === 'ready');
    const recoverySeconds = recoveredReady.map((r) => (Date.parse(r.readyAt!) - killedAt) / 1000);
    // Audio the dead node had received (its calls started with their recordings) that the recording lacks.
    const lostMs = recoveredReady.map((r) => killedAt - Date.parse(r.createdAt) - r.durationMs!);
    const spans = recoveredReady.flatMap((r) => r.lostSpans.map((s) => s.end_ms - s.start_ms));
    row(
      `scale-out: killed node's calls recovered ready by another node (of ${n})`,
      recoveredReady.length,
      'calls',
      `${n}`,
      recoveredReady.length === n,
    );
    row(
      'scale-out: kill -9 → recovered ready, first / last',
      Math.min(...recoverySeconds),
      `s / ${Math.max(...recoverySeconds).toFixed(1)} s`,
      '≤ 60',
      Math.max(...recoverySeconds) <= 60,
    );
    row(
      'scale-out: audio lost per recovered call, p50 / max',
      quantile(lostMs, 0.5) / 1000,
      `s / ${(Math.max(...lostMs) / 1000).toFixed(2)} s`,
      `≤ ${SEGMENT_SECONDS + 1}`,
      Math.max(...lostMs) <= (SEGMENT_SECONDS + 1) * 1000,
    );
    row(
      'scale-out: lost span listed, p50 / max',
      quantile(spans, 0.5) / 1000,
      `s / ${(Math.max(...spans) / 1000).toFixed(2)} s`,
    );
    const whole = drainedRecordings.filter(
      (r) => r.status === 'ready' && r.complete && Math.abs(r.durationMs! - PHASE2_SECONDS * 1000) <= 100,
    ).length;
    row('scale-out: SIGTERM → /readyz 503', readyz503Ms, 'ms', '< 1000', readyz503Ms < 1000);
    row(
      `scale-out: drain, SIGTERM → exit (${n} live calls with ${PHASE2_SECONDS - CUT_AT_SECONDS} s left)`,
      drained.seconds,
      `s (exit ${drained.code})`,
      '',
      drained.code === 0,
    );
    row('scale-out: drained calls complete and ready', whole, `of ${n}`, `${n}`, whole === n);
  } finally {
    for (const node of nodes) node.signal('SIGKILL');
    await Promise.all(nodes.map((node) => node.exited));
    await store.close();
    const client = new pg.Client({ connectionString: opts.postgresUrl });
    await client.connect();
    await client.query(`drop schema if exists "${schema}" cascade`).finally(() => client.end());
    await fs.rm(root, { recursive: true, force: true });
  }
}
