/**
 * `callrec fuzz`: hostile input at a real node. callrec runs as a child process; cases, each
 * built from the run's seed and its number alone, stream mutated fixture captures at the three
 * media endpoints and send mutated requests to every route of the node's own `/openapi.json`,
 * with and without a valid key. Meanwhile one ordinary call, in another tenant, streams in real
 * time. A run fails when the node exits, answers a 5xx its route does not document, closes a
 * stream 1011 (an internal error), lets its RSS grow past a bound, or records the neighbouring
 * call other than bit for bit.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { decoderFor } from '../media/codec.js';
import { adapters, AUDIOHOOK_KEY_HEADER } from '../src/protocols/index.js';
import type { Provider } from '../src/protocols/types.js';
import { isStart, paramsOnUrl, rewriteStart, urlWithParams, type Credentials } from '../src/replay/client.js';
import { readFixture, type Fixture, type FixtureMessage } from '../src/replay/fixture.js';
import { FRAME_MS, payloadAt, runLoad } from './load.js';
import {
  between,
  httpRequest,
  mutateStream,
  pick,
  type FuzzRequest,
  type OpenApiDocument,
  type Random,
} from './mutate.js';
import { startFuzzRuntime, type FuzzRuntime } from './fuzz-runtime.js';
import { buildSipCase, describeSipCase, FUZZ_SIP_SOURCE, runSipCase, sipProblem, type SipCase } from './fuzz-sip.js';
import { SiprecClient, siprecStream } from './siprec-client.js';
import { nodeData, provision, REPO_ROOT, startCallrec, type Callrec } from './node.js';
import { freePort, rssBytes } from './proc.js';
import { rng } from './rng.js';

export interface FuzzOptions {
  seconds: number;
  seed: number;
  /** Run only this case (as a failure report names it), once. */
  only?: number;
  /** Cases in flight at once (default 4). */
  concurrency?: number;
  /**
   * How far the node's RSS may grow past its level at the end of the warm-up (the first quarter
   * of the run, at most 10 s: V8's heap, the prompt synthesizer and the encoders load then), MiB
   * (default 256); and twice that past its level at the start.
   */
  maxRssGrowthMiB?: number;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

export interface FuzzFailure {
  case: number;
  problem: string;
  /** What was sent, printable. */
  input: string;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  /** Cases by target (`stream:twilio`, `http`…), stream close codes and HTTP statuses seen. */
  targets: Record<string, number>;
  outcomes: Record<string, number>;
  rssStartMiB: number;
  rssWarmMiB: number;
  rssPeakMiB: number;
  failures: FuzzFailure[];
}

const FIXTURES = path.join(REPO_ROOT, 'fixtures');
const FIXTURE_NAMES = [
  'twilio-fork-tones',
  'twilio-connect-caller',
  'twilio-speech',
  'telnyx-fork-tones',
  'telnyx-fork-pcma',
  'vonage-tones',
  'signalwire-fork-tones',
  'plivo-fork-tones',
  'plivo-bidirectional-caller',
  'exotel-voicebot-caller',
  'exotel-voicebot-24k',
  'bandwidth-fork-tones',
  'bandwidth-fork-pcm24k',
  'bandwidth-bidirectional-caller',
  'jambonz-stereo',
  'jambonz-mono-24k',
  'freeswitch-mono',
  'asterisk-slin48',
  'azure-unmixed-24k',
  'genesys-audiohook-tones',
];
/** Every media endpoint: a capture now and then goes to another provider's. */
const PROVIDERS = Object.keys(adapters) as Provider[];
const NEIGHBOUR = {
  tenantId: 'default',
  agentId: 'neighbour',
  sipSources: ['127.0.0.1/32'],
  scopes: ['media:stream', 'recordings:read'],
  settings: { enabled: true, auto_record: true, consent_prompt: false, dual_channel: true, format: 'wav' },
} as const;
const TARGET = {
  tenantId: 'fuzz',
  agentId: 'fuzz-target',
  sipSources: [`${FUZZ_SIP_SOURCE}/32`],
  scopes: ['admin'],
  settings: { enabled: true, auto_record: true, consent_prompt: false, dual_channel: true, format: 'wav' },
} as const;
/** Streams for this agent go through the consent gate (a prompt, then a digit). */
const CONSENTING = {
  ...TARGET,
  agentId: 'fuzz-consent',
  settings: { enabled: true, auto_record: true, consent_mode: 'two_party', consent_timeout_seconds: 1 },
} as const;
/** How long a stream case waits for the node to close it after its last message, ms. */
const LINGER_MS = 300;
const HTTP_TIMEOUT_MS = 15_000;
const MIB = 1024 * 1024;

type Case =
  /** `runtime`: the seed of the fuzz runtime a bridged stream relays to; null for a fork. */
  | {
      kind: 'stream';
      provider: string;
      fixture: string;
      mutations: string[];
      messages: FixtureMessage[];
      runtime: number | null;
      credentials: Credentials;
      key: string;
    }
  | { kind: 'http'; request: FuzzRequest }
  | SipCase;

/** Case `n`'s own random source: its input depends on the seed and its number only. */
function caseRandom(seed: number, n: number): Random {
  return rng(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(n + 1, 0xc2b2ae35));
}

const callIdOf = (seed: number, n: number) => `fuzz-${(seed >>> 0).toString(16)}-${n}`;

function buildCase(
  seed: number,
  n: number,
  fixtures: Map<string, Fixture>,
  doc: OpenApiDocument,
  key: string,
  sip: { host: string; port: number },
): Case {
  const random = caseRandom(seed, n);
  if (random() < 0.25) return buildSipCase(random, TARGET.agentId, callIdOf(seed, n), sip);
  // The calls of the cases just before this one: HTTP cases act on them (control, recordings).
  const recentCalls = Array.from({ length: Math.min(n, 8) }, (_, k) => callIdOf(seed, n - 1 - k));
  if (random() < 0.4) return { kind: 'http', request: httpRequest(doc, key, random, recentCalls) };
  const name = pick(random, FIXTURE_NAMES);
  const fixture = fixtures.get(name)!;
  const provider = fixture.meta.provider;
  const count = between(random, 2, Math.min(fixture.messages.length, 150));
  const start = fixture.messages.findIndex((m) => isStart(provider, m));
  const agentId = random() < 0.2 ? CONSENTING.agentId : TARGET.agentId;
  const credentials = { agentId, token: key, callId: callIdOf(seed, n) };
  const messages = fixture.messages
    .slice(0, Math.max(count, start + 1))
    .map((m, i) => (i === start ? { ...m, data: rewriteStart(provider, m.data as string, credentials) } : m));
  const mutated = mutateStream(messages, start, random);
  // Now and then a capture goes to another provider's endpoint.
  const target = random() < 0.1 ? pick(random, PROVIDERS) : provider;
  // A quarter of the streams are bridged to a runtime whose answers are fuzzed too.
  const runtime = random() < 0.25 ? Math.floor(random() * 2 ** 31) : null;
  return {
    kind: 'stream',
    provider: target,
    fixture: name,
    mutations: mutated.names,
    messages: mutated.messages,
    runtime,
    credentials: paramsOnUrl(provider) ? credentials : {},
    key,
  };
}

const clip = (text: string, max = 300) => (text.length > max ? `${text.slice(0, max)}…(${text.length} chars)` : text);

function describeCase(c: Case): string {
  if (c.kind === 'sip' || c.kind === 'rtp') return describeSipCase(c, clip);
  if (c.kind === 'http') {
    const { method, path: url, headers, body } = c.request;
    return [
      `${method} ${url}`,
      ...Object.entries(headers).map(([k, v]) => `${k}: ${clip(v, 120)}`),
      body === undefined ? '' : `\n${clip(body, 2000)}`,
    ].join('\n');
  }
  const lines = c.messages
    .slice(0, 40)
    .map((m) =>
      JSON.stringify(
        m.binary ? { binary: clip(Buffer.from(m.data).toString('base64')) } : { text: clip(m.data as string) },
      ),
    );
  return [
    `/media/${c.provider}, from ${c.fixture}, mutations ${c.mutations.join(', ')}${c.runtime === null ? '' : `, bridged to the fuzz runtime (seed ${c.runtime})`}`,
    ...lines,
    c.messages.length > 40 ? `… ${c.messages.length - 40} more messages` : '',
  ].join('\n');
}

/** Streams the case's messages as fast as the socket takes them; resolves with how the node ended it (`upgrade <status>` if it refused). */
async function runStream(node: Callrec, runtime: FuzzRuntime, c: Extract<Case, { kind: 'stream' }>): Promise<string> {
  const url = new URL(urlWithParams(c.provider as Provider, node.wsUrl.replace(/twilio$/, c.provider), c.credentials));
  if (c.runtime !== null) {
    url.searchParams.set('mode', 'bridge');
    url.searchParams.set('agent_url', runtime.urlFor(c.runtime));
  }
  // AudioHook's key is an upgrade header (other endpoints ignore it).
  const ws = new WebSocket(url, { perMessageDeflate: false, headers: { [AUDIOHOOK_KEY_HEADER]: c.key } });
  ws.on('error', () => {});
  const closed = new Promise<string>((resolve) => ws.on('close', (code) => resolve(`close ${code}`)));
  const opened = await new Promise<string | null>((resolve) => {
    ws.once('open', () => resolve(null));
    ws.once('unexpected-response', (_req, res) => resolve(`upgrade ${res.statusCode}`));
    ws.once('error', (err) => resolve(`error ${err.message}`));
  });
  if (opened !== null) return opened;
  for (const m of c.messages) {
    if (ws.readyState !== WebSocket.OPEN) break;
    ws.send(m.data, { binary: m.binary });
    while (ws.bufferedAmount > MIB && ws.readyState === WebSocket.OPEN) await sleep(5);
  }
  const early = await Promise.race([closed, sleep(LINGER_MS, null, { ref: false })]);
  if (early) return early;
  ws.close(1000);
  return Promise.race([closed, sleep(5000, null, { ref: false }).then(() => (ws.terminate(), 'no close within 5 s'))]);
}

async function runHttp(node: Callrec, request: FuzzRequest): Promise<string> {
  const res = await fetch(node.baseUrl + request.path, {
    method: request.method,
    headers: request.headers,
    body: request.body,
    redirect: 'manual',
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  await res.arrayBuffer();
  return `status ${res.status}`;
}

/** What is wrong with an outcome, or null. */
function problemOf(c: Case, outcome: string): string | null {
  if (c.kind === 'sip' || c.kind === 'rtp') return sipProblem(c, outcome);
  if (c.kind === 'stream') {
    if (outcome === 'close 1011') return 'stream closed 1011 (internal error)';
    if (/^upgrade 5/.test(outcome) && outcome !== 'upgrade 503') return `upgrade answered ${outcome.slice(8)}`;
    return outcome.startsWith('no close') ? outcome : null;
  }
  const status = /^status (\d+)$/.exec(outcome)?.[1];
  if (status === undefined) return `no answer: ${outcome}`;
  return status.startsWith('5') && !c.request.documented.includes(status)
    ? `${c.request.method} answered ${status}, which the route does not document`
    : null;
}

/** The neighbouring call's recording must be what it sent on both tracks, sample for sample. */
function expectedNeighbour(ticks: number): Int16Array {
  const decode = decoderFor({ codec: 'pcmu', sampleRate: 8000 });
  const frame = new Int16Array(160);
  const stereo = new Int16Array(ticks * 160 * 2);
  for (let tick = 0; tick < ticks; tick++) {
    decode(Buffer.from(payloadAt(tick), 'base64'), frame);
    for (let i = 0; i < 160; i++) stereo[2 * (tick * 160 + i)] = stereo[2 * (tick * 160 + i) + 1] = frame[i];
  }
  return stereo;
}

/** The samples of a 16-bit WAV file's `data` chunk. */
function wavSamples(wav: Buffer): Int16Array {
  for (let at = 12; at + 8 <= wav.length; ) {
    const size = wav.readUInt32LE(at + 4);
    if (wav.toString('latin1', at, at + 4) === 'data') {
      const data = wav.subarray(at + 8, at + 8 + Math.min(size, wav.length - at - 8));
      return new Int16Array(data.buffer.slice(data.byteOffset, data.byteOffset + (data.length & ~1)));
    }
    at += 8 + size + (size & 1);
  }
  throw new Error('no data chunk in the WAV file');
}

/** Why the neighbouring call's recording is not what it sent, or null when it is. */
async function checkNeighbour(node: Callrec, key: string, callId: string, ticks: number): Promise<string | null> {
  const headers = { authorization: `Bearer ${key}` };
  let status = 'none';
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(200)) {
    const res = await fetch(`${node.baseUrl}/api/calls/${callId}`, { headers });
    status = res.ok ? ((await res.json()) as { recording_status: string }).recording_status : `HTTP ${res.status}`;
    if (status === 'ready' || status === 'failed') break;
  }
  if (status !== 'ready') return `its recording is ${status}`;
  const got = wavSamples(
    Buffer.from(await (await fetch(`${node.baseUrl}/api/calls/${callId}/recording`, { headers })).arrayBuffer()),
  );
  const expected = expectedNeighbour(ticks);
  if (got.length !== expected.length) return `its recording holds ${got.length / 2} frames, not ${expected.length / 2}`;
  const at = got.findIndex((v, i) => v !== expected[i]);
  return at < 0
    ? null
    : `its recording differs from sample ${at} (frame ${at >> 1}, ${((at >> 1) / 8).toFixed(1)} ms in)`;
}

/** Why the neighbouring SIPREC session did not end well or its node did not take every packet it was sent, or null. */
async function checkSipNeighbour(node: Callrec, key: string, callId: string, ticks: number): Promise<string | null> {
  const headers = { authorization: `Bearer ${key}` };
  interface CallView {
    recording_status: string;
    alignment: Record<string, number> | null;
  }
  let call: CallView | null = null;
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(200)) {
    const res = await fetch(`${node.baseUrl}/api/calls/${callId}`, { headers });
    const view: CallView | null = res.ok ? ((await res.json()) as CallView) : null;
    call = view;
    if (view?.recording_status === 'ready' || view?.recording_status === 'failed') break;
  }
  if (call?.recording_status !== 'ready') return `its recording is ${call?.recording_status ?? 'not there'}`;
  // Every packet placed, none dropped: a stall of the node holds both streams' packets, and the
  // session hands their backlogs on in position order however the node reads its sockets.
  const { framesPlaced = 0, framesDropped = 0 } = call.alignment ?? {};
  if (framesPlaced !== 2 * ticks || framesDropped !== 0)
    return `${framesPlaced} of its ${2 * ticks} packets placed, ${framesDropped} dropped: ${JSON.stringify(call.alignment)}`;
  return null;
}

/** Runs the fuzzer for `seconds` (or case `only`); the report lists every failure with its input. */
export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`fuzz: ${line}\n`));
  const data = await nodeData('fuzz');
  // Fuzz streams fail authentication by the thousand from one address and the cases run far
  // past a key's request budget: only the limits under test stay at their defaults.
  // SIPREC on (UDP and TCP on one port), with RTP ports enough for the cases in flight.
  const sip = { host: '127.0.0.1', port: await freePort() };
  const rtp = 20_000 + 2 * Math.floor(Math.random() * 10_000);
  const env = {
    ...data.env,
    AUTH_FAILURES_PER_IP: String(1e9),
    RATE_LIMIT_PER_KEY: String(1e9),
    SIP_LISTEN: `udp:${sip.host}:${sip.port},tcp:${sip.host}:${sip.port}`,
    RTP_PORTS: `${rtp}-${rtp + 399}`,
  };
  const report: FuzzReport = {
    seed: opts.seed,
    cases: 0,
    targets: {},
    outcomes: {},
    rssStartMiB: 0,
    rssWarmMiB: 0,
    rssPeakMiB: 0,
    failures: [],
  };
  const count = (into: Record<string, number>, key: string) => (into[key] = (into[key] ?? 0) + 1);
  let node: Callrec | null = null;
  const closers: Array<() => Promise<void>> = [];
  const runtime = await startFuzzRuntime();
  try {
    const [neighbourKey, key] = [
      await provision(data.env.DATABASE_URL, {
        ...NEIGHBOUR,
        scopes: [...NEIGHBOUR.scopes],
        sipSources: [...NEIGHBOUR.sipSources],
      }),
      await provision(data.env.DATABASE_URL, {
        ...TARGET,
        scopes: [...TARGET.scopes],
        sipSources: [...TARGET.sipSources],
      }),
    ];
    await provision(data.env.DATABASE_URL, { ...CONSENTING, scopes: [...CONSENTING.scopes], sipSources: undefined });
    const fixtures = new Map(
      await Promise.all(
        FIXTURE_NAMES.map(async (name) => [name, await readFixture(path.join(FIXTURES, `${name}.jsonl`))] as const),
      ),
    );
    // Errors the node logs (pino level 50 and up): each is something that went wrong inside it.
    const errors: string[] = [];
    let partial = '';
    node = await startCallrec(env, true, (chunk) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) if (/"level":(5|6)\d/.test(line)) errors.push(line);
    });
    const live = node;
    const doc = (await (await fetch(`${live.baseUrl}/openapi.json`)).json()) as OpenApiDocument;
    let exited: string | null = null;
    live.child.process.once(
      'exit',
      (code, signal) => (exited = `the node exited (${signal ?? code}): ${live.child.stderr().slice(-2000)}`),
    );

    const seconds = opts.only === undefined ? opts.seconds : 2;
    const neighbourId = `neighbour-${(opts.seed >>> 0).toString(16)}`;
    const neighbour = runLoad({
      url: live.wsUrl,
      callIds: [neighbourId],
      seconds,
      tracks: 'both',
      params: { agent_id: NEIGHBOUR.agentId, token: neighbourKey },
    });
    // A SIPREC session beside it, from the neighbour's tenant: it must record every packet.
    const sipClients = [await SiprecClient.open(sip), await SiprecClient.open(sip, FUZZ_SIP_SOURCE)];
    closers.push(...sipClients.map((client) => () => client.close()));
    const [neighbourSrc, fuzzSrc] = sipClients;
    const neighbourStream = await siprecStream(neighbourSrc);
    closers.push(() => neighbourStream.close());
    const sipNeighbourId = `neighbour-sip-${(opts.seed >>> 0).toString(16)}`;
    const sipNeighbour = runLoad({
      url: '',
      stream: neighbourStream,
      callIds: [sipNeighbourId],
      seconds,
      tracks: 'both',
      params: { agent_id: NEIGHBOUR.agentId },
      // Its last packets read before its BYE (what the node reads after it is dropped).
      beforeHangUp: () => sleep(1000),
    }).catch((err: Error) => ({ closeCodes: [`not set up: ${err.message}`], ticks: 0 }));
    await sleep(500);
    report.rssStartMiB = report.rssWarmMiB = report.rssPeakMiB = rssBytes(live.child.pid) / MIB;
    const growth = opts.maxRssGrowthMiB ?? 256;
    const warmUpEnds = performance.now() + Math.min(10_000, seconds * 250);
    let rssProblem: string | null = null;
    const sampler = setInterval(() => {
      if (exited !== null) return;
      const rss = rssBytes(live.child.pid) / MIB;
      report.rssPeakMiB = Math.max(report.rssPeakMiB, rss);
      if (performance.now() < warmUpEnds) report.rssWarmMiB = rss;
      else if (rss > report.rssWarmMiB + growth)
        rssProblem = `RSS grew from ${report.rssWarmMiB.toFixed(0)} MiB after the warm-up to ${rss.toFixed(0)} MiB (bound: +${growth} MiB)`;
      if (rss > report.rssStartMiB + 2 * growth)
        rssProblem = `RSS grew from ${report.rssStartMiB.toFixed(0)} MiB at the start to ${rss.toFixed(0)} MiB (bound: +${2 * growth} MiB)`;
    }, 250);

    const deadline = performance.now() + seconds * 1000;
    let next = opts.only ?? 0;
    const inFlight = new Map<number, Case>();
    const fail = (n: number, c: Case, problem: string) => {
      report.failures.push({ case: n, problem, input: describeCase(c) });
      log(`FAILED case ${n} (seed ${opts.seed}): ${problem}`);
    };
    const worker = async () => {
      while (
        exited === null &&
        rssProblem === null &&
        (opts.only === undefined ? performance.now() < deadline : next === opts.only)
      ) {
        const n = next++;
        const c = buildCase(opts.seed, n, fixtures, doc, key, sip);
        inFlight.set(n, c);
        count(
          report.targets,
          c.kind === 'stream' ? `stream:${c.provider}` : c.kind === 'sip' ? `sip:${c.transport}` : c.kind,
        );
        const run = () => {
          switch (c.kind) {
            case 'http':
              return runHttp(live, c.request);
            case 'stream':
              return runStream(live, runtime, c);
            default:
              return runSipCase(c, sip, fuzzSrc).then(async (outcome) => {
                // The node still answers after what it was sent.
                const health = await fetch(`${live.baseUrl}/healthz`, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
                return health.ok ? outcome : `${outcome}, then /healthz ${health.status}`;
              });
          }
        };
        const outcome = await run().catch((err: Error) => `error ${err.message}`);
        inFlight.delete(n);
        report.cases++;
        count(report.outcomes, outcome);
        // A request cut off because the node died is the node's failure, reported once below.
        const problem = exited === null ? problemOf(c, outcome) : null;
        if (problem) fail(n, c, problem);
      }
    };
    const progress = setInterval(
      () =>
        log(
          `${report.cases} cases, RSS ${report.rssPeakMiB.toFixed(0)} MiB peak (${report.rssStartMiB.toFixed(0)} at start), ${report.failures.length} failures`,
        ),
      5000,
    );
    await Promise.all(Array.from({ length: opts.only === undefined ? (opts.concurrency ?? 4) : 1 }, worker));
    clearInterval(progress);
    clearInterval(sampler);
    for (const [n, c] of inFlight) fail(n, c, exited ?? 'in flight when the run stopped');
    if (exited !== null) return report;
    for (const line of new Set(errors))
      report.failures.push({ case: -1, problem: `the node logged an error: ${clip(line, 1500)}`, input: '' });
    if (rssProblem !== null) report.failures.push({ case: -1, problem: rssProblem, input: '' });
    const { closeCodes, ticks } = await neighbour;
    const wrong =
      closeCodes[0] !== 1000
        ? `the neighbouring call was closed ${closeCodes[0]}`
        : await checkNeighbour(live, neighbourKey, neighbourId, ticks);
    if (wrong)
      report.failures.push({
        case: -1,
        problem: `neighbouring call: ${wrong}`,
        input: `${ticks} frames of ${FRAME_MS} ms, both tracks`,
      });
    const sipResult = await sipNeighbour;
    const sipWrong =
      sipResult.closeCodes[0] !== 1000
        ? `its BYE got ${sipResult.closeCodes[0]}`
        : await checkSipNeighbour(live, neighbourKey, sipNeighbourId, sipResult.ticks);
    if (sipWrong)
      report.failures.push({
        case: -1,
        problem: `neighbouring SIPREC session: ${sipWrong}`,
        input: `${sipResult.ticks} RTP packets of ${FRAME_MS} ms per participant`,
      });
    return report;
  } finally {
    for (const close of closers) await close().catch(() => {});
    await node?.child.stop(5000);
    await runtime.close();
    await data.remove().catch((err: Error) => log(`could not remove the node's data: ${err.message}`));
  }
}

/** The report as printed by `callrec fuzz`: a summary, then each failure with how to reproduce it. */
export function formatFuzzReport(report: FuzzReport): string {
  const lines = [
    `seed ${report.seed}: ${report.cases} cases (${Object.entries(report.targets)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')})`,
    `outcomes: ${Object.entries(report.outcomes)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k} ×${v}`)
      .join(', ')}`,
    `node RSS: ${report.rssStartMiB.toFixed(0)} MiB at start, ${report.rssWarmMiB.toFixed(0)} MiB after the warm-up, ${report.rssPeakMiB.toFixed(0)} MiB peak`,
    report.failures.length === 0 ? 'no failures' : `${report.failures.length} failure(s):`,
  ];
  for (const f of report.failures) {
    lines.push(
      '',
      f.case < 0
        ? `- ${f.problem}`
        : `- case ${f.case}: ${f.problem}\n  reproduce: npm run fuzz -- --seed ${report.seed} --case ${f.case}`,
    );
    if (f.input) lines.push(f.input.replace(/^/gm, '    '));
  }
  return lines.join('\n');
}
