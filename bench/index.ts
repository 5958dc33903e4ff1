/**
 * `callrec bench`: the performance suite. callrec runs as a child process (so its CPU and memory
 * are its own, read from /proc), loaded by real-time Twilio calls from this process. Each call is
 * streamed at once to callrec and to a baseline (a bare `ws` sink, or in bridge mode a bare relay)
 * so the two are compared on the same frames at the same moment; a fake agent runtime answers
 * bridge calls.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { benchCrypto } from './crypto.js';
import { benchEvidence } from './evidence.js';
import { benchMedia } from './media.js';
import type { Provider } from '../src/protocols/types.js';
import { fixtureStream } from './fixture-stream.js';
import { blastCall, runLoad, wireStream, type LoadResult } from './load.js';
import { adapters } from '../src/protocols/index.js';
import { LOAD_WIRES, sameAudioStream } from './wires.js';
import { CLI, deleteKeys, provision, startCallrec, startWorker, type Provisioned } from './node.js';
import { cpuSeconds, firstMessage, freePort, rssBytes, startChild, type Child } from './proc.js';
import { benchScaleOut } from './scale-out.js';
import { SiprecClient, siprecFrames, siprecFramesCounted, siprecStream } from './siprec-client.js';

export interface BenchOptions {
  /** Concurrent calls per load phase. */
  calls: number;
  /** Length of each load call, s. */
  seconds: number;
  /**
   * Concurrent calls in the bridge phases. Each bridge call is four sockets on this machine (the
   * generator, callrec both ways, the fake runtime), so the latency phases may need a lighter
   * load than the fork phases for the bare relay itself to stay out of saturation.
   */
  bridgeCalls: number;
  /** Rounds of each comparison (baseline and callrec side by side), pooled: more frames for the p99s and a spread to read. */
  rounds: number;
  /** Concurrent SIPREC sessions in the SIPREC phase (two RTP streams each); 0 skips it. */
  siprecSessions?: number;
  /** Length of the time-to-ready call, min (streamed at max speed). */
  readyMinutes: number;
  /** Where the results JSON goes. */
  out: string;
  /** The fork phase's traffic: this provider's (`bench/wires.ts`, else its capture in `fixtures/`); default Twilio's. The bridge phases speak Twilio's. */
  provider?: Provider;
  /** With Twilio's fork phase, the providers compared with it on the same audio (phase 2b); default every one `bench/wires.ts` writes. */
  compare?: Provider[];
  redisUrl?: string;
  /**
   * Run the scale-out section instead (`bench/scale-out.ts`): `calls` per media node, phase-1
   * calls of `seconds`, nodes sharing the PostgreSQL server at `postgresUrl`.
   */
  scaleOut?: { postgresUrl: string };
}

export interface BenchRow {
  metric: string;
  value: number;
  unit: string;
  /** Human-readable target, e.g. `≤ 1.3`; empty when the row is informational. */
  target: string;
  pass: boolean | null;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const AGENT = 'bench-agent';
/** The baseline's traffic: the bare sink reads Twilio's messages. */
const TWILIO_LOAD = LOAD_WIRES.twilio!;
/** No consent prompt: a forked stream cannot play one, and the bench measures the frame path. */
const BENCH_NODE: Provisioned = {
  tenantId: 'default',
  agentId: AGENT,
  scopes: ['media:stream', 'recordings:read'],
  settings: { enabled: true, auto_record: true, dual_channel: true, consent_prompt: false },
};

/** Compiled scripts only: `npm run bench` builds first, and children must not pay for a TS loader. */
function script(name: string): string {
  return path.join(here, `${name}.js`);
}

/** p-quantile of a Prometheus histogram given cumulative bucket counts, interpolated within its bucket. */
export function histogramQuantile(buckets: Array<{ le: number; count: number }>, q: number): number {
  const total = buckets[buckets.length - 1]?.count ?? 0;
  if (total === 0) return Number.NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const { le, count } of buckets) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return prevLe; // beyond the last bound: the bound is all we know
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1, count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

async function frameHistogram(baseUrl: string): Promise<Array<{ le: number; count: number }>> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const buckets: Array<{ le: number; count: number }> = [];
  for (const m of text.matchAll(/^callrec_frame_processing_seconds_bucket\{le="([^"]+)"\} (\d+)/gm)) {
    buckets.push({ le: m[1] === '+Inf' ? Infinity : Number(m[1]), count: Number(m[2]) });
  }
  return buckets;
}

/** The set-up phases `callrec_stream_setup_seconds` times, in order (src/calls/session.ts). */
const SETUP_PHASES = ['start', 'auth', 'claim', 'live', 'recording_row'] as const;
type SetupPhase = (typeof SETUP_PHASES)[number];
type SetupTimes = Record<SetupPhase, { sum: number; count: number }>;

/** Each set-up phase's summed seconds and count so far. */
async function setupTimes(baseUrl: string): Promise<SetupTimes> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const times = Object.fromEntries(SETUP_PHASES.map((p) => [p, { sum: 0, count: 0 }])) as SetupTimes;
  for (const m of text.matchAll(/^callrec_stream_setup_seconds_(sum|count)\{phase="(\w+)"\} (\S+)/gm)) {
    const phase = times[m[2] as SetupPhase];
    if (phase) phase[m[1] as 'sum' | 'count'] = Number(m[3]);
  }
  return times;
}

/** Waits until `live` calls more than `before` finished their set-up (polled lightly: the scrape costs the node CPU). */
async function waitLive(baseUrl: string, before: SetupTimes, calls: number, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await setupTimes(baseUrl)).live.count - before.live.count < calls) {
    if (Date.now() > deadline) throw new Error(`calls never went live within ${timeoutMs / 1000} s`);
    await sleep(100);
  }
}

function bucketDelta(after: Array<{ le: number; count: number }>, before: Array<{ le: number; count: number }>) {
  return after.map((b, i) => ({ le: b.le, count: b.count - (before[i]?.count ?? 0) }));
}

/** Bucket-wise sum of two histograms' counts; `a` may be empty. */
function addBuckets(a: Array<{ le: number; count: number }>, b: Array<{ le: number; count: number }>) {
  return a.length ? b.map((bucket, i) => ({ le: bucket.le, count: bucket.count + a[i].count })) : b;
}

/** All runs' values in one sorted array. */
function pooled(runs: Float64Array[]): Float64Array {
  const all = new Float64Array(runs.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of runs) {
    all.set(r, at);
    at += r.length;
  }
  return all.sort();
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** Provider → runtime delivery times (µs) of every relayed caller frame, sorted, and how many never arrived. */
function deliveryLatencies(received: Float64Array, sendTimes: Float64Array): { sorted: Float64Array; lost: number } {
  const latencies: number[] = [];
  let lost = 0;
  for (let i = 0; i < received.length; i++) {
    if (received[i] === 0) lost++;
    else latencies.push(received[i] - sendTimes[i]);
  }
  return { sorted: Float64Array.from(latencies).sort(), lost };
}

/** Waits until each call's recording is capturing (set-up done), so the load measures the frame path. */
async function waitRecording(baseUrl: string, key: string, callIds: string[], timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(callIds);
  while (pending.size > 0) {
    if (Date.now() > deadline) throw new Error(`${pending.size} calls never started recording`);
    await Promise.all(
      [...pending].map(async (id) => {
        const r = await fetch(`${baseUrl}/api/calls/${id}`, { headers: { authorization: `Bearer ${key}` } });
        if (r.ok && ((await r.json()) as { recording_status: string }).recording_status === 'recording')
          pending.delete(id);
      }),
    );
    if (pending.size > 0) await sleep(100);
  }
  await sleep(200); // the session goes live right after the spool is open
}

async function callAlignment(baseUrl: string, key: string, callIds: string[]) {
  const totals = { dropped: 0, late: 0, duplicate: 0, missing: 0 };
  for (let i = 0; i < callIds.length; i += 50) {
    await Promise.all(
      callIds.slice(i, i + 50).map(async (id) => {
        const r = await fetch(`${baseUrl}/api/calls/${id}`, { headers: { authorization: `Bearer ${key}` } });
        const alignment = r.ok ? ((await r.json()) as { alignment: Record<string, number> | null }).alignment : null;
        if (!alignment) return void totals.missing++;
        totals.dropped += alignment.framesDropped ?? 0;
        totals.late += alignment.framesLate ?? 0;
        totals.duplicate += alignment.framesDuplicate ?? 0;
      }),
    );
  }
  return totals;
}

/** The node's RTP loss counters. */
async function rtpMetrics(baseUrl: string): Promise<{ lost: number; late: number }> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { lost: value('callrec_rtp_packets_lost_total'), late: value('callrec_rtp_packets_late_total') };
}

/** Waits until every call has ended (the session wrote its alignment). */
async function waitEnded(baseUrl: string, key: string, callIds: string[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const id of callIds) {
    for (;;) {
      const r = await fetch(`${baseUrl}/api/calls/${id}`, { headers: { authorization: `Bearer ${key}` } });
      if (r.ok && ((await r.json()) as { status: string }).status === 'ended') break;
      if (Date.now() > deadline) return;
      await sleep(100);
    }
  }
}

function cpuMeter(pid: number) {
  let start = 0;
  let used = 0;
  return {
    start: () => void (start = cpuSeconds(pid)),
    stop: () => void (used = cpuSeconds(pid) - start),
    get used() {
      return used;
    },
  };
}

function fmt(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  const abs = Math.abs(value);
  return abs >= 100 ? value.toFixed(0) : abs >= 1 ? value.toFixed(2) : value.toPrecision(3);
}

/** Prints the table: metric, value, target, pass/fail. */
export function formatTable(rows: BenchRow[]): string {
  const cells = rows.map((r) => [
    r.metric,
    `${fmt(r.value)} ${r.unit}`,
    r.target,
    r.pass === null ? '' : r.pass ? 'pass' : 'FAIL',
  ]);
  const head = ['metric', 'value', 'target', 'result'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => `| ${c.map((v, i) => v.padEnd(widths[i])).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}

/**
 * The fork ÷ bare sink bar at `calls` calls: ≤ 1.15× from 800 calls, ≤ 1.35× below (at fewer
 * calls, a call's fixed costs — its timers, its spool writes — weigh more against its frames).
 */
export function forkRatioBar(calls: number): number {
  return calls >= 800 ? 1.15 : 1.35;
}

/** How the table names the set-up phases (src/calls/session.ts, `callrec_stream_setup_seconds`). */
const SETUP_PHASE_NAMES: Record<SetupPhase, string> = {
  start: 'upgrade → start message (the provider’s pace)',
  auth: 'auth (key hash + api_keys row, agent row)',
  claim: 'claim (registry, cluster count if capped, calls row)',
  live: 'live (gate, recorder, spool, timer)',
  recording_row: 'recording row (background)',
};

const note = (text: string) => process.stderr.write(`bench: ${text}\n`);

/** Prints the table and writes the results file; returns how many targets were missed. */
async function report(rows: BenchRow[], opts: BenchOptions): Promise<number> {
  const failed = rows.filter((r) => r.pass === false).length;
  process.stdout.write(
    `\n${formatTable(rows)}\n\n${failed === 0 ? 'all targets met' : `${failed} target(s) missed`}\n`,
  );
  const results = {
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model ?? '',
      node: process.version,
      memoryGiB: os.totalmem() / 2 ** 30,
    },
    options: {
      calls: opts.calls,
      provider: opts.provider ?? 'twilio',
      compare: opts.compare ?? null,
      bridgeCalls: opts.bridgeCalls,
      seconds: opts.seconds,
      rounds: opts.rounds,
      siprecSessions: opts.siprecSessions ?? 0,
      readyMinutes: opts.readyMinutes,
      scaleOut: opts.scaleOut !== undefined,
    },
    rows,
  };
  await fs.mkdir(path.dirname(path.resolve(opts.out)), { recursive: true });
  await fs.writeFile(opts.out, `${JSON.stringify(results, null, 2)}\n`);
  note(`results written to ${opts.out}`);
  return failed;
}

/** The scale-out section alone (`--scale-out`): a cluster of nodes on this machine. */
async function runScaleOutBench(
  opts: BenchOptions,
  redisUrl: string,
  postgresUrl: string,
): Promise<{ rows: BenchRow[]; failed: number }> {
  const rows: BenchRow[] = [];
  const prefix = `bench-${randomBytes(4).toString('hex')}-scale-out`;
  try {
    await benchScaleOut({
      calls: opts.calls,
      seconds: opts.seconds,
      postgresUrl,
      redisUrl,
      cli: CLI,
      provision: (databaseUrl) => provision(databaseUrl, BENCH_NODE),
      agentId: BENCH_NODE.agentId,
      tenantId: BENCH_NODE.tenantId,
      note,
      row: (metric, value, unit, target = '', pass = null) => rows.push({ metric, value, unit, target, pass }),
      prefix,
    });
    return { rows, failed: await report(rows, opts) };
  } finally {
    await deleteKeys(redisUrl, [prefix]).catch((err: Error) => note(`could not clean Redis keys: ${err.message}`));
  }
}

/** Runs the whole suite (or, with `scaleOut`, its scale-out section); prints progress to stderr and the table to stdout. */
export async function runBench(opts: BenchOptions): Promise<{ rows: BenchRow[]; failed: number }> {
  const redisUrl = opts.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  if (opts.scaleOut) return runScaleOutBench(opts, redisUrl, opts.scaleOut.postgresUrl);
  const run = randomBytes(4).toString('hex');
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-bench-'));
  const prefixes = [`bench-${run}`, `bench-${run}-ready`];
  // One tenant, one key: the bench opens every call at once from one address (past the default
  // MAX_PENDING_STREAMS_PER_IP) and polls every call's status many times a minute, far past the
  // API's per-key rate limit. On a saturated machine a few of hundreds of calls opened at once
  // may miss STREAM_AUTH_TIMEOUT_SECONDS: each is counted as a call closed with an error, and
  // must not lock the generator's address out of the phases after it (AUTH_FAILURES_PER_IP).
  // Hundreds of calls opened at once on a busy machine may take longer than the default
  // STREAM_AUTH_TIMEOUT_SECONDS (5 s) to be read: the bench measures what a call costs, not that
  // limit, and a call it closed would stop the round (the set-up phase times show how long it took).
  const env = {
    DATA_DIR: dataDir,
    DATABASE_URL: `sqlite://${path.join(dataDir, 'callrec.db')}`,
    REDIS_URL: redisUrl,
    LOG_LEVEL: 'warn',
    CALLREC_QUEUE_PREFIX: prefixes[0],
    RATE_LIMIT_PER_KEY: String(1e9),
    MAX_PENDING_STREAMS_PER_IP: String(1e6),
    AUTH_FAILURES_PER_IP: String(1e9),
    STREAM_AUTH_TIMEOUT_SECONDS: '60',
    // The fake runtime listens on loopback, an internal address a tenant's runtime may not be unless allowed.
    EGRESS_ALLOW: '127.0.0.1',
  };
  // SIPREC for its phase: two RTP ports per session, and as many again for ports other processes hold.
  const sipN = opts.siprecSessions ?? 0;
  const sip = { host: '127.0.0.1', port: await freePort() };
  const rtpFirst = 20_000 + 2 * Math.floor(Math.random() * 5_000);
  const sipEnv =
    sipN > 0 ? { SIP_LISTEN: `udp:${sip.host}:${sip.port}`, RTP_PORTS: `${rtpFirst}-${rtpFirst + 8 * sipN - 1}` } : {};
  const { calls: n, bridgeCalls: nb, seconds } = opts;
  const rows: BenchRow[] = [];
  const row = (metric: string, value: number, unit: string, target = '', pass: boolean | null = null) =>
    rows.push({ metric, value, unit, target, pass });
  const children: Child[] = [];

  try {
    // The bridge phases' runtime listens where the agent lists it: a stream's agent_url may only
    // pick one of its agent's runtimes.
    const runtimePort = await freePort();
    const runtimeUrl = `ws://127.0.0.1:${runtimePort}/`;
    const key = await provision(env.DATABASE_URL, {
      ...BENCH_NODE,
      settings: { ...BENCH_NODE.settings, agent_ws_urls: [runtimeUrl] },
      sipSources: ['127.0.0.1/32'],
    });
    const params = { agent_id: AGENT, token: key };
    const ids = (phase: string, count = n, from = 0) =>
      Array.from({ length: count }, (_, i) => `bench-${run}-${phase}-${from + i}`);

    // 1–2. callrec in fork mode (workers off, so recording jobs do not run inside the measurement)
    // against the baseline, a bare sink that JSON.parses and base64-decodes, on the same traffic: every call is streamed
    // to both at once, each frame to both at the same moment, so the two are measured over the
    // same seconds of the same machine. Measured one after the other, as they once were, this
    // shared machine's drift from minute to minute moved the ratio by a tenth between rounds.
    // The fork phase's traffic: the same audio in the provider's own messages where bench/wires.ts
    // writes them (so providers compare on equal terms), else the provider's capture in fixtures/.
    const forkProvider = opts.provider ?? 'twilio';
    const sameAudio = sameAudioStream(forkProvider, ['inbound', 'outbound']);
    const forkStream = sameAudio ?? (await fixtureStream(forkProvider));
    /** Whose traffic the fork phase streams: named in its rows, so runs of different providers compare. */
    const forkTraffic = sameAudio ? forkProvider : `${forkProvider} capture`;
    const sink = startChild(script('bare-sink'), [], {});
    children.push(sink);
    const sinkUrl = `ws://127.0.0.1:${(await firstMessage<{ port: number }>(sink)).port}/media/twilio`;
    const callrec = await startCallrec({ ...env, ...sipEnv }, false);
    children.push(callrec.child);
    // A `callrec worker` beside it, idle, for its footprint (the media node runs no workers here).
    const worker = await startWorker(env);
    children.push(worker.child);
    await sleep(1000);
    const idleRss = rssBytes(callrec.child.pid);
    const workerIdleRss = rssBytes(worker.child.pid);
    await worker.child.stop();
    const roundRss: number[][] = [];
    const sinkCpu: number[] = [];
    const forkCpu: number[] = [];
    const forkIds: string[] = [];
    const forkLoads: LoadResult[] = [];
    /** Each round's CPU seconds from the first upgrade until every call is live: callrec's, the sink's. */
    const setupCpu: number[] = [];
    const sinkSetupCpu: number[] = [];
    /** The set-up phases' time over all fork rounds (src/calls/session.ts). */
    const setupPhases = Object.fromEntries(SETUP_PHASES.map((p) => [p, { sum: 0, count: 0 }])) as SetupTimes;
    const forkUrl = callrec.wsUrl.replace(/twilio$/, forkProvider);
    let forkHist: Awaited<ReturnType<typeof frameHistogram>> = [];
    for (let round = 0; round < opts.rounds; round++) {
      note(
        `round ${round + 1}/${opts.rounds}: fork (${forkTraffic}), ${n} calls × ${seconds} s each, to a bare ws sink and to callrec at once`,
      );
      const sinkMeter = cpuMeter(sink.pid);
      const forkMeter = cpuMeter(callrec.child.pid);
      const setupMeter = cpuMeter(callrec.child.pid);
      const sinkSetupMeter = cpuMeter(sink.pid);
      const setupBefore = await setupTimes(callrec.baseUrl);
      const roundIds = ids(`fork${round}`);
      /** RSS each second. */
      const rss: number[] = [];
      let histStart: Awaited<ReturnType<typeof frameHistogram>> = [];
      forkLoads.push(
        await runLoad({
          url: forkUrl,
          stream: forkStream,
          callIds: roundIds,
          paired: { url: sinkUrl, callIds: ids(`sink${round}`) },
          seconds,
          tracks: 'both',
          params,
          // Set-up: from the first upgrade until every call is live (before any frame is sent).
          beforeOpen: () => (setupMeter.start(), sinkSetupMeter.start()),
          beforeFrames: async () => {
            await waitLive(callrec.baseUrl, setupBefore, n);
            setupMeter.stop();
            sinkSetupMeter.stop();
            await waitRecording(callrec.baseUrl, key, roundIds);
            histStart = await frameHistogram(callrec.baseUrl);
          },
          onLoadStart: () => (forkMeter.start(), sinkMeter.start()),
          onLoadEnd: () => (forkMeter.stop(), sinkMeter.stop()),
          onSecond: () => void rss.push(rssBytes(callrec.child.pid)),
        }),
      );
      forkHist = addBuckets(forkHist, bucketDelta(await frameHistogram(callrec.baseUrl), histStart));
      sinkCpu.push(sinkMeter.used);
      forkCpu.push(forkMeter.used);
      setupCpu.push(setupMeter.used);
      sinkSetupCpu.push(sinkSetupMeter.used);
      // Each round as it ends: a later phase that fails leaves these in the log.
      note(
        `round ${round + 1}: callrec ${forkMeter.used.toFixed(2)} s CPU, sink ${sinkMeter.used.toFixed(2)} s, ratio ${(forkMeter.used / sinkMeter.used).toFixed(3)}; set-up ${((setupMeter.used / n) * 1000).toFixed(2)} ms CPU per call`,
      );
      const setupAfter = await setupTimes(callrec.baseUrl);
      for (const phase of SETUP_PHASES) {
        setupPhases[phase].sum += setupAfter[phase].sum - setupBefore[phase].sum;
        setupPhases[phase].count += setupAfter[phase].count - setupBefore[phase].count;
      }
      roundRss.push(rss);
      forkIds.push(...roundIds);
      await waitEnded(callrec.baseUrl, key, roundIds);
    }
    // 2b. Each other provider's fork, carrying the same audio, side by side with the bare sink
    // (fed Twilio's messages) as in 1–2: its CPU over the sink's, against Twilio's over the
    // sink's, so this machine's drift between the phases cancels out (the bar: within 10 %).
    /** Each round's CPU seconds, callrec's and the sink's, per provider. */
    const wireCpu = new Map<string, { callrec: number[]; sink: number[] }>();
    const wireLoads: LoadResult[] = [];
    // Measured against a Twilio fork phase only (SignalWire speaks Twilio's messages).
    const compared =
      forkProvider === 'twilio'
        ? (opts.compare ?? (Object.keys(adapters) as Provider[])).filter((p) => p !== 'twilio' && p !== 'signalwire')
        : [];
    for (const name of compared) {
      const stream = sameAudioStream(name, ['inbound', 'outbound']);
      if (!stream) continue;
      const used = { callrec: [] as number[], sink: [] as number[] };
      for (let round = 0; round < opts.rounds; round++) {
        note(
          `round ${round + 1}/${opts.rounds}: ${name} fork, ${n} calls × ${seconds} s each, to callrec and (as Twilio) to a bare ws sink at once`,
        );
        const meter = cpuMeter(callrec.child.pid);
        const sinkMeter = cpuMeter(sink.pid);
        const roundIds = ids(`${name}${round}`);
        const load = await runLoad({
          url: callrec.wsUrl.replace(/twilio$/, name),
          stream,
          callIds: roundIds,
          paired: {
            url: sinkUrl,
            callIds: ids(`${name}-sink${round}`),
            stream: wireStream(TWILIO_LOAD, ['inbound', 'outbound']),
          },
          seconds,
          tracks: 'both',
          params,
          beforeFrames: () => waitRecording(callrec.baseUrl, key, roundIds),
          onLoadStart: () => (meter.start(), sinkMeter.start()),
          onLoadEnd: () => (meter.stop(), sinkMeter.stop()),
        });
        wireLoads.push(load);
        note(`round ${round + 1}: ${name} over the sink ${(meter.used / sinkMeter.used).toFixed(3)}`);
        used.callrec.push(meter.used);
        used.sink.push(sinkMeter.used);
        await waitEnded(callrec.baseUrl, key, roundIds);
      }
      wireCpu.set(name, used);
    }
    // 2c. SIPREC: recording sessions set up over UDP, each two RTP streams (one per participant)
    // carrying the same audio as the fork phases, side by side with the bare sink fed Twilio's
    // messages as in 2b: its CPU over the sink's, against the Twilio fork's over the sink's.
    const siprec = { callrec: 0, sink: 0, ids: [] as string[], badCloses: 0 };
    if (sipN > 0) {
      const client = await SiprecClient.open(sip);
      const stream = await siprecStream(client);
      try {
        for (let round = 0; round < opts.rounds; round++) {
          note(
            `round ${round + 1}/${opts.rounds}: SIPREC, ${sipN} sessions (two RTP streams each) × ${seconds} s, to callrec and (as Twilio) to a bare ws sink at once`,
          );
          const meter = cpuMeter(callrec.child.pid);
          const sinkMeter = cpuMeter(sink.pid);
          const roundIds = ids(`siprec${round}`, sipN);
          const counted = await siprecFrames(callrec.baseUrl);
          const load = await runLoad({
            url: '',
            stream,
            callIds: roundIds,
            paired: {
              url: sinkUrl,
              callIds: ids(`siprec-sink${round}`, sipN),
              stream: wireStream(TWILIO_LOAD, ['inbound', 'outbound']),
            },
            seconds,
            tracks: 'both',
            params,
            beforeFrames: () => waitRecording(callrec.baseUrl, key, roundIds),
            onLoadStart: () => (meter.start(), sinkMeter.start()),
            onLoadEnd: () => (meter.stop(), sinkMeter.stop()),
            // The BYEs once the node has read every packet (what it reads after a BYE is dropped).
            beforeHangUp: () =>
              siprecFramesCounted(callrec.baseUrl, counted + 2 * sipN * Math.round((seconds * 1000) / 20)),
          });
          siprec.callrec += meter.used;
          siprec.sink += sinkMeter.used;
          siprec.badCloses += load.closeCodes.slice(0, sipN).filter((c) => c !== 1000).length;
          siprec.ids.push(...roundIds);
          await waitEnded(callrec.baseUrl, key, roundIds);
        }
      } finally {
        await stream.close();
        await client.close();
      }
    }
    const rtpCounters = sipN > 0 ? await rtpMetrics(callrec.baseUrl) : { lost: 0, late: 0 };
    const siprecAlignment = await callAlignment(callrec.baseUrl, key, siprec.ids);
    await sink.stop();
    const alignment = await callAlignment(callrec.baseUrl, key, forkIds);

    // 3. Bridge mode: caller-only streams relayed to a fake agent runtime that talks back. Every
    // call is streamed twice at once, each frame to both at the same moment: through a bare relay
    // (what any relay costs on this machine) and through callrec. Side by side, the two are
    // measured on the same frames under the same machine: run one after the other, as they once
    // were, this machine's minute-to-minute drift moved their p99 difference by ±3 ms a round.
    const ticks = Math.round((seconds * 1000) / 20);
    const relayRuns: Float64Array[] = [];
    const bridgeRuns: Float64Array[] = [];
    const bridgeLoads: LoadResult[] = [];
    let framesLost = 0;
    let bridgeCpuUsed = 0;
    let relayCpuUsed = 0;
    let bridgeHist: Awaited<ReturnType<typeof frameHistogram>> = [];
    for (let round = 0; round < opts.rounds; round++) {
      note(
        `round ${round + 1}/${opts.rounds}: bridge, ${nb} calls × ${seconds} s each, through a bare relay and through callrec at once`,
      );
      // The runtime numbers calls by their id's last part: the relay's 0…nb−1, callrec's nb…2nb−1.
      const runtime = startChild(script('fake-runtime'), [], {
        BENCH_CALLS: String(2 * nb),
        BENCH_TICKS: String(ticks),
        BENCH_PORT: String(runtimePort),
      });
      children.push(runtime);
      await firstMessage<{ port: number }>(runtime);
      const relay = startChild(script('bare-relay'), [], { BENCH_UPSTREAM: runtimeUrl });
      children.push(relay);
      const relayUrl = `ws://127.0.0.1:${(await firstMessage<{ port: number }>(relay)).port}/`;
      const bridgeMeter = cpuMeter(callrec.child.pid);
      const relayMeter = cpuMeter(relay.pid);
      const bridgeIds = ids(`bridge${round}`, nb, nb);
      let histStart: Awaited<ReturnType<typeof frameHistogram>> = [];
      const load = await runLoad({
        url: relayUrl,
        callIds: ids(`relay${round}`, nb),
        paired: { url: callrec.wsUrl, callIds: bridgeIds },
        seconds,
        tracks: 'inbound',
        params: { ...params, agent_url: runtimeUrl },
        recordSendTimes: true,
        beforeFrames: async () => {
          await waitRecording(callrec.baseUrl, key, bridgeIds);
          histStart = await frameHistogram(callrec.baseUrl);
        },
        onLoadStart: () => (bridgeMeter.start(), relayMeter.start()),
        onLoadEnd: () => (bridgeMeter.stop(), relayMeter.stop()),
      });
      bridgeHist = addBuckets(bridgeHist, bucketDelta(await frameHistogram(callrec.baseUrl), histStart));
      runtime.process.send('report');
      const { received } = await firstMessage<{ received: Float64Array }>(runtime);
      await Promise.all([runtime.stop(), relay.stop()]);
      const half = nb * ticks;
      const relayed = deliveryLatencies(received.subarray(0, half), load.sendTimes!.subarray(0, half));
      const bridged = deliveryLatencies(received.subarray(half), load.sendTimes!.subarray(half));
      relayRuns.push(relayed.sorted);
      bridgeRuns.push(bridged.sorted);
      bridgeLoads.push(load);
      framesLost += relayed.lost + bridged.lost;
      bridgeCpuUsed += bridgeMeter.used;
      relayCpuUsed += relayMeter.used;
      await waitEnded(callrec.baseUrl, key, bridgeIds);
    }
    await callrec.child.stop();

    // 4. Time to `ready`: a fresh node with workers on and no backlog from the load phases. It
    // has a database and data directory of its own: the load phases' recordings (never
    // processed, workers were off) would otherwise be recovered at its start and queued ahead
    // of the measured call.
    const readyMinutes = opts.readyMinutes;
    note(`time to ready: one ${readyMinutes}-minute stereo call at max speed`);
    const readyDir = path.join(dataDir, 'ready');
    // A call at max speed runs ahead of the wall clock: the node must let it (README "Limits").
    const readyEnv = {
      ...env,
      DATA_DIR: readyDir,
      DATABASE_URL: `sqlite://${path.join(readyDir, 'callrec.db')}`,
      CALLREC_QUEUE_PREFIX: prefixes[1],
      STREAM_AUDIO_LEAD_SECONDS: '86400',
    };
    const readyKey = await provision(readyEnv.DATABASE_URL, BENCH_NODE);
    const ready = await startCallrec(readyEnv, true);
    children.push(ready.child);
    const readyId = `bench-${run}-ready`;
    const blast = await blastCall({
      url: ready.wsUrl,
      callId: readyId,
      seconds: readyMinutes * 60,
      params: { agent_id: AGENT, token: readyKey },
      beforeFrames: () => waitRecording(ready.baseUrl, readyKey, [readyId]),
    });
    let readyStatus = 'none';
    const readyDeadline = performance.now() + 120_000;
    while (performance.now() < readyDeadline) {
      const r = await fetch(`${ready.baseUrl}/api/calls/${readyId}`, {
        headers: { authorization: `Bearer ${readyKey}` },
      });
      readyStatus = r.ok ? ((await r.json()) as { recording_status: string }).recording_status : 'none';
      if (readyStatus === 'ready' || readyStatus === 'failed') break;
      await sleep(20);
    }
    const readySeconds = (performance.now() - blast.hungUpAt) / 1000;
    await ready.child.stop();

    // 5. Encoders and the capture frame path, in this process.
    note('media: encoders and frame path');
    const media = await benchMedia();
    note('storage: encryption and seek-decrypt');
    const crypto = await benchCrypto();
    note('evidence: signing, ledger appends, audit verify');
    const evidence = await benchEvidence();

    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    /** CPU ms per call-second, from the CPU seconds all rounds of a phase used with `calls` calls each. */
    const perCallSecond = (cpu: number, calls: number) => (cpu / opts.rounds / (calls * seconds)) * 1000;
    const forkMs = perCallSecond(sum(forkCpu), n);
    const bareMs = perCallSecond(sum(sinkCpu), n);
    const roundRatios = forkCpu.map((cpu, r) => cpu / sinkCpu[r]);
    // A round's memory per call: its peak RSS over the node's idle RSS, shared out over the calls.
    // Conservative: it also charges the calls with what V8 grew its heap to for their garbage.
    const roundRssPerCall = roundRss.map((rss) => (Math.max(...rss) - idleRss) / n / 1024);
    const medianRss = quantile(Float64Array.from(roundRssPerCall).sort(), 0.5);
    const badCloses = (l: LoadResult) => l.closeCodes.filter((c) => c !== 1000 && c !== 1005).length;
    const forkCloses = sum(forkLoads.map(badCloses));
    const bridgeCloses = sum(bridgeLoads.map(badCloses));
    const wireCloses = sum(wireLoads.map(badCloses));
    row('concurrent calls (each phase)', n, 'calls', '≥ 500', n >= 500);
    row(`callrec CPU, fork (${forkTraffic})`, forkMs, 'ms CPU per call-second');
    row(`callrec CPU, bridge (${nb} calls)`, perCallSecond(bridgeCpuUsed, nb), 'ms CPU per call-second');
    row('bare relay CPU on the same calls', perCallSecond(relayCpuUsed, nb), 'ms CPU per call-second');
    row('bare ws sink CPU (JSON.parse + base64 decode)', bareMs, 'ms CPU per call-second');
    const forkBar = forkRatioBar(n);
    row(
      `callrec fork / bare sink CPU (side by side, ${opts.rounds} rounds)`,
      forkMs / bareMs,
      '×',
      `≤ ${forkBar}`,
      forkMs / bareMs <= forkBar,
    );
    row(
      '… per round, in order',
      roundRatios[0],
      `× … ${roundRatios
        .slice(1)
        .map((v) => v.toFixed(2))
        .join(', ')} ×`,
    );
    // A call's start, per call: CPU from its upgrade until it is live, with n calls starting at
    // once, and where its time goes (each phase's mean, queueing behind the other calls included).
    row(
      `call set-up, callrec CPU per call (upgrade to live, ${n} at once)`,
      (sum(setupCpu) / opts.rounds / n) * 1000,
      `ms (rounds ${setupCpu.map((c) => ((c / n) * 1000).toFixed(2)).join(', ')} ms)`,
    );
    row('… the bare sink, the same calls (upgrade only)', (sum(sinkSetupCpu) / opts.rounds / n) * 1000, 'ms');
    for (const phase of SETUP_PHASES) {
      const { sum: seconds, count } = setupPhases[phase];
      row(`… set-up phase ${SETUP_PHASE_NAMES[phase]}, mean`, (seconds / Math.max(1, count)) * 1000, 'ms');
    }
    for (const [name, used] of wireCpu) {
      const twilioRatio = sum(forkCpu) / sum(sinkCpu);
      const ratio = sum(used.callrec) / sum(used.sink) / twilioRatio;
      const rounds = used.callrec.map((cpu, r) => (cpu / used.sink[r] / twilioRatio).toFixed(2)).join(', ');
      row(
        `${name} fork / Twilio fork CPU (each over the bare sink, same audio)`,
        ratio,
        `× (rounds ${rounds})`,
        '≤ 1.1',
        ratio <= 1.1,
      );
    }
    if (sipN > 0) {
      const ratio = siprec.callrec / siprec.sink / (sum(forkCpu) / sum(sinkCpu));
      row(`callrec CPU, SIPREC (${sipN} sessions, RTP)`, perCallSecond(siprec.callrec, sipN), 'ms CPU per call-second');
      row(`SIPREC / ${forkTraffic} fork CPU (each over the bare sink, same audio)`, ratio, '×', '≤ 1.3', ratio <= 1.3);
      const missed = rtpCounters.lost + rtpCounters.late + siprecAlignment.dropped + siprecAlignment.missing;
      row(
        'RTP packets lost / late (SIPREC, all sessions)',
        rtpCounters.lost,
        `packets / ${rtpCounters.late} late, ${siprecAlignment.dropped} dropped`,
        '0',
        missed === 0,
      );
      row('SIPREC sessions not ended by their BYE (200)', siprec.badCloses, 'sessions', '0', siprec.badCloses === 0);
    }
    row('callrec busy share of one core (fork)', (sum(forkCpu) / opts.rounds / seconds) * 100, '%');
    row('p99 frame processing, fork', histogramQuantile(forkHist, 0.99) * 1e6, 'µs');
    row('p99 frame processing, bridge', histogramQuantile(bridgeHist, 0.99) * 1e6, 'µs');
    const relayed = pooled(relayRuns);
    const bridged = pooled(bridgeRuns);
    const relayP99 = quantile(relayed, 0.99);
    const bridgeP99 = quantile(bridged, 0.99);
    const addedPerRound = bridgeRuns.map((run, r) => (quantile(run, 0.99) - quantile(relayRuns[r], 0.99)) / 1000);
    row(
      'bare relay delivery latency p50 / p99',
      quantile(relayed, 0.5) / 1000,
      `ms / ${(relayP99 / 1000).toFixed(2)} ms`,
    );
    row('callrec bridge delivery latency p50', quantile(bridged, 0.5) / 1000, 'ms');
    row('callrec bridge delivery latency p99', bridgeP99 / 1000, 'ms');
    row(
      `added forwarding latency p99 (callrec − bare relay, side by side, ${opts.rounds} rounds)`,
      (bridgeP99 - relayP99) / 1000,
      'ms',
      '< 1',
      bridgeP99 - relayP99 < 1000,
    );
    row(
      '… per round, in order',
      addedPerRound[0],
      `ms … ${addedPerRound
        .slice(1)
        .map((v) => v.toFixed(2))
        .join(', ')} ms`,
    );
    row('bridge caller frames not relayed (either path)', framesLost, 'frames', '0', framesLost === 0);
    row(
      'frames dropped (fork, all calls)',
      alignment.dropped,
      'frames',
      '0',
      alignment.dropped === 0 && alignment.missing === 0,
    );
    row('frames late, put in place (fork)', alignment.late, 'frames');
    const closes = forkCloses + wireCloses + bridgeCloses;
    row(
      'calls closed with an error code (fork / other providers / bridge)',
      closes,
      `calls (${forkCloses} / ${wireCloses} / ${bridgeCloses})`,
      '0',
      closes === 0,
    );
    row('generator ticks over 20 ms late', sum([...forkLoads, ...bridgeLoads].map((l) => l.lateTicks)), 'ticks');
    row('RSS idle, media node (serve --no-workers)', idleRss / 2 ** 20, 'MiB');
    row('RSS idle, callrec worker', workerIdleRss / 2 ** 20, 'MiB');
    row('RSS per active call (peak above idle, median round)', medianRss, 'KiB', '≤ 256', medianRss <= 256);
    row(
      '… per round, in order',
      roundRssPerCall[0],
      `KiB … ${roundRssPerCall
        .slice(1)
        .map((v) => v.toFixed(0))
        .join(', ')} KiB`,
    );
    row(
      `time to ready (${readyMinutes}-min stereo call)`,
      readySeconds,
      `s (${readyStatus})`,
      '≤ 3',
      readyStatus === 'ready' && readySeconds <= 3,
    );
    for (const m of [...media, ...crypto]) {
      if (m.name.startsWith('time to first byte')) row(m.name, m.value, m.unit, '< 50', m.value < 50);
      else row(m.name, m.value, m.unit);
    }
    for (const m of evidence) row(m.name, m.value, m.unit, m.target?.text ?? '', m.target?.pass ?? null);

    const failed = await report(rows, opts);
    return { rows, failed };
  } finally {
    await Promise.all(children.map((c) => c.stop(5000)));
    await deleteKeys(redisUrl, prefixes).catch((err: Error) => note(`could not clean Redis keys: ${err.message}`));
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}
