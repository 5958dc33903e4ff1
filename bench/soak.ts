/**
 * `callrec soak`: a node in its own process under sustained load at the fastest pace it allows:
 * one long call streaming for the whole run, and `calls` more at once, each a few minutes of
 * audio sent as fast as the socket drains and replaced by a new call when it hangs up. Every few
 * seconds it prints the node's RSS, RSS per live call, spool backlog and recordings queue; at the
 * end, whether RSS per call stayed flat: whether RSS grew over the run beyond what the number
 * of live calls explains.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { blastCall } from './load.js';
import { nodeData, provision, startCallrec, startWorker, type Callrec } from './node.js';
import { rssBytes, type Child } from './proc.js';

export interface SoakOptions {
  minutes: number;
  /** Calls streaming at once besides the long one. */
  calls: number;
  /** Seconds between samples (default 10). */
  everySeconds?: number;
  /** Finalize recordings in a separate `callrec worker` (spools shipped through a file:// SPOOL_URL) instead of in the node. */
  worker?: boolean;
  /** glibc's MALLOC_ARENA_MAX for the processes; default 2, as the image sets it; null leaves it unset. */
  mallocArenaMax?: number | null;
  log?: (line: string) => void;
}

export interface SoakSample {
  atMinutes: number;
  rssMiB: number;
  /** V8's heap in use and memory outside it (Buffers, typed arrays), MiB: where RSS goes. */
  heapMiB: number;
  externalMiB: number;
  liveCalls: number;
  /** RSS above the idle node's, per live call, KiB. */
  rssPerCallKiB: number;
  /** `callrec_spool_pending_bytes`; null where the node does not serve it. */
  spoolPendingBytes: number | null;
  /** Recording jobs waiting or running, on this node's queue and the shared one. */
  queueJobs: number;
  /** The separate worker's RSS, MiB; null without one. */
  workerRssMiB: number | null;
}

export interface SoakReport {
  samples: SoakSample[];
  idleRssMiB: number;
  callsEnded: number;
  /** RSS above idle per live call, KiB: the fit's call term (see `fitRss`). */
  perCallKiB: number;
  /** RSS growth at a constant number of live calls, KiB per minute: the fit's time term. */
  slopeKiBPerMinute: number;
  /** That growth over the run after the warm-up, as a share of the mean RSS above idle. */
  drift: number;
  /** The separate worker's RSS growth after the warm-up, KiB per minute; null without one. */
  workerSlopeKiBPerMinute: number | null;
  flat: boolean;
}

const AGENT = {
  tenantId: 'default',
  agentId: 'soak',
  scopes: ['media:stream', 'recordings:read'],
  settings: { enabled: true, auto_record: true, consent_prompt: false, dual_channel: true, format: 'wav' },
} as const;
/** Audio per short call, s: long enough to be a call, short enough that calls come and go. */
const CALL_SECONDS = 180;
/** The first share of the run is warm-up (V8 heap, buffer pool, SQLite cache), left out of the slope. */
const WARM_UP = 0.2;
/** RSS growing, at a constant number of calls, by less than this share of itself over the run counts as flat. */
const FLAT_DRIFT = 0.1;
/** A worker's RSS (its load does not follow live calls) growing by less than this, KiB per minute, counts as flat. */
const FLAT_WORKER_KIB_PER_MINUTE = 1024;
const MIB = 1024 * 1024;

/** Sum of a Prometheus metric's samples whose label text includes `labels`; null when the node does not serve the metric. */
export function metricSum(text: string, name: string, labels = ''): number | null {
  let sum: number | null = null;
  for (const line of text.split('\n')) {
    if ((line.startsWith(`${name} `) || line.startsWith(`${name}{`)) && line.includes(labels))
      sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * Least squares of RSS above idle (KiB) = perCall × live calls + perMinute × minutes + c. At the
 * soak's pace calls end and are replaced at random, so live calls swing by half within a minute;
 * RSS divided by calls then swings with them, and its slope said "not flat" of runs whose RSS
 * stood still. The time term is what grows whatever the number of calls: a leak.
 */
export function fitRss(points: Array<{ calls: number; minutes: number; kib: number }>): {
  perCall: number;
  perMinute: number;
} {
  const n = points.length;
  const mean = (f: (p: (typeof points)[number]) => number) => points.reduce((sum, p) => sum + f(p), 0) / n;
  const [mc, mt, my] = [mean((p) => p.calls), mean((p) => p.minutes), mean((p) => p.kib)];
  let [scc, stt, sct, scy, sty] = [0, 0, 0, 0, 0];
  for (const p of points) {
    const [c, t, y] = [p.calls - mc, p.minutes - mt, p.kib - my];
    scc += c * c;
    stt += t * t;
    sct += c * t;
    scy += c * y;
    sty += t * y;
  }
  const det = scc * stt - sct * sct;
  // Calls that never changed (or one sample) leave the two terms inseparable: the time term alone.
  if (Math.abs(det) < 1e-9) return { perCall: mc > 0 ? my / mc : 0, perMinute: stt > 0 ? sty / stt : 0 };
  return { perCall: (stt * scy - sct * sty) / det, perMinute: (scc * sty - sct * scy) / det };
}

async function sample(node: Callrec, worker: Child | null, startedAt: number, idleRss: number): Promise<SoakSample> {
  const text = await (await fetch(`${node.baseUrl}/metrics`)).text();
  const rss = rssBytes(node.child.pid);
  const liveCalls = metricSum(text, 'callrec_calls_active') ?? 0;
  const queueJobs = ['waiting', 'active', 'prioritized', 'delayed'].reduce(
    (n, state) => n + (metricSum(text, 'callrec_recording_queue_jobs', `state="${state}"`) ?? 0),
    0,
  );
  return {
    atMinutes: (performance.now() - startedAt) / 60_000,
    rssMiB: rss / MIB,
    heapMiB: (metricSum(text, 'nodejs_heap_size_used_bytes') ?? 0) / MIB,
    externalMiB: (metricSum(text, 'nodejs_external_memory_bytes') ?? 0) / MIB,
    liveCalls,
    rssPerCallKiB: liveCalls > 0 ? (rss - idleRss) / 1024 / liveCalls : 0,
    spoolPendingBytes: metricSum(text, 'callrec_spool_pending_bytes'),
    queueJobs,
    workerRssMiB: worker ? rssBytes(worker.pid) / MIB : null,
  };
}

const formatSample = (s: SoakSample) =>
  `${s.atMinutes.toFixed(1).padStart(5)} min  RSS ${s.rssMiB.toFixed(0).padStart(5)} MiB (heap ${s.heapMiB.toFixed(0)}, external ${s.externalMiB.toFixed(0)})  calls ${String(s.liveCalls).padStart(4)}  RSS/call ${s.rssPerCallKiB.toFixed(0).padStart(5)} KiB  spool backlog ${s.spoolPendingBytes === null ? 'n/a' : `${(s.spoolPendingBytes / 1024).toFixed(0)} KiB`}  queue ${s.queueJobs}${s.workerRssMiB === null ? '' : `  worker RSS ${s.workerRssMiB.toFixed(0)} MiB`}`;

/** Runs the soak; prints a line per sample and the verdict. */
export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const log = opts.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const data = await nodeData('soak');
  // As fast as the node allows: audio may run ahead of the wall clock (README "Limits"), one key
  // polls far past its rate limit, and every call is opened at once from one address.
  // glibc's allocator set by default as the image sets it (Dockerfile, MALLOC_ARENA_MAX): the node as deployed.
  const arenas = opts.mallocArenaMax === undefined ? 2 : opts.mallocArenaMax;
  const env: Record<string, string | undefined> = {
    ...data.env,
    MALLOC_ARENA_MAX: arenas === null ? undefined : String(arenas),
    STREAM_AUDIO_LEAD_SECONDS: '86400',
    RATE_LIMIT_PER_KEY: String(1e9),
    MAX_PENDING_STREAMS_PER_IP: String(1e6),
    // With a separate worker, spools reach it through a bucket, and both hold the one master key.
    ...(opts.worker
      ? {
          SPOOL_URL: pathToFileURL(path.join(data.dataDir, 'spools')).href,
          CALLREC_MASTER_KEY: randomBytes(32).toString('base64'),
        }
      : {}),
  };
  let node: Callrec | null = null;
  let worker: Child | null = null;
  const stop = new AbortController();
  try {
    const token = await provision(data.env.DATABASE_URL, { ...AGENT, scopes: [...AGENT.scopes] });
    node = await startCallrec(env, !opts.worker);
    if (opts.worker) worker = (await startWorker({ ...env, DATA_DIR: path.join(data.dataDir, 'worker') })).child;
    const live = node;
    await sleep(1000);
    const idleRss = rssBytes(live.child.pid);
    log(
      `soak: ${opts.minutes} min, one long call and ${opts.calls} calls of ${CALL_SECONDS} s audio at once, each at max speed; ` +
        `${worker ? 'recordings finalized by a separate callrec worker' : 'workers in the node'}; MALLOC_ARENA_MAX ${arenas ?? 'unset'}; idle RSS ${(idleRss / MIB).toFixed(0)} MiB`,
    );
    const params = { agent_id: AGENT.agentId, token };
    let callsEnded = 0;
    let next = 0;
    /** Streams calls one after another until the run ends. */
    const caller = async (seconds: number) => {
      while (!stop.signal.aborted) {
        const call = await blastCall({
          url: live.wsUrl,
          callId: `soak-${next++}`,
          seconds,
          params,
          signal: stop.signal,
        });
        await call.closed;
        callsEnded++;
      }
    };
    const startedAt = performance.now();
    const callers = [
      caller(opts.minutes * 60 * 1000),
      ...Array.from({ length: opts.calls }, () => caller(CALL_SECONDS)),
    ];
    const samples: SoakSample[] = [];
    const deadline = startedAt + opts.minutes * 60_000;
    while (performance.now() < deadline) {
      await sleep(Math.min((opts.everySeconds ?? 10) * 1000, Math.max(0, deadline - performance.now())));
      for (const [name, child] of [
        ['node', live.child],
        ['worker', worker],
      ] as const) {
        if (child && (child.process.exitCode !== null || child.process.signalCode !== null))
          throw new Error(`the ${name} exited: ${child.stderr().slice(-2000)}`);
      }
      const s = await sample(live, worker, startedAt, idleRss);
      samples.push(s);
      log(formatSample(s));
    }
    stop.abort();
    await Promise.all(callers);

    const steady = samples.filter((s) => s.atMinutes >= opts.minutes * WARM_UP && s.liveCalls > 0);
    const points = steady.map((s) => ({
      calls: s.liveCalls,
      minutes: s.atMinutes,
      kib: (s.rssMiB * MIB - idleRss) / 1024,
    }));
    const { perCall, perMinute } = fitRss(points);
    const meanKiB = points.reduce((n, p) => n + p.kib, 0) / Math.max(1, points.length);
    const drift = meanKiB > 0 ? Math.abs(perMinute * opts.minutes * (1 - WARM_UP)) / meanKiB : 0;
    // The worker's load is the recordings in hand, not live calls: its time term alone.
    const workerSlope = worker
      ? fitRss(steady.map((s) => ({ calls: 0, minutes: s.atMinutes, kib: s.workerRssMiB! * 1024 }))).perMinute
      : null;
    const workerFlat = workerSlope === null || workerSlope < FLAT_WORKER_KIB_PER_MINUTE;
    const report = {
      samples,
      idleRssMiB: idleRss / MIB,
      callsEnded,
      perCallKiB: perCall,
      slopeKiBPerMinute: perMinute,
      drift,
      workerSlopeKiBPerMinute: workerSlope,
      flat: steady.length >= 2 && drift < FLAT_DRIFT && workerFlat,
    };
    log(
      `soak: ${callsEnded} calls ended; after the warm-up RSS above idle is ${perCall.toFixed(0)} KiB per live call and grows ${perMinute >= 0 ? '+' : ''}${perMinute.toFixed(1)} KiB/min at a constant number of calls ` +
        `(${(drift * 100).toFixed(1)}% of it over the run)${workerSlope === null ? '' : `; the worker's RSS grows ${workerSlope >= 0 ? '+' : ''}${workerSlope.toFixed(1)} KiB/min`}: ` +
        `${report.flat ? 'flat' : steady.length < 2 ? 'too few samples to tell' : 'NOT flat'}`,
    );
    return report;
  } finally {
    stop.abort();
    await Promise.all([node?.child.stop(10_000), worker?.stop(10_000)]);
    await data.remove().catch((err: Error) => log(`could not remove the node's data: ${err.message}`));
  }
}
