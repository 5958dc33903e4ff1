import path from 'node:path';
import WebSocket from 'ws';
import { readFixture, type Fixture } from '../../src/replay/fixture.js';
import { replayFixture } from '../../src/replay/client.js';
import { startServerProcess, startTestServer, uniqueCallId, type TestServer } from '../helpers/server.js';

// Issue 13, cases 1, 2 and 8: the media endpoints' limits (README "Limits"), set low here so
// misbehaving sockets hit them quickly; each test waits for the server's answer, not for a time.

const AGENT = 'limited-agent';
/** Short deadlines and a 1 s lead of audio over the wall clock. */
let timed: TestServer;
/** Caps on streams per node and per tenant; deadlines at their defaults. */
let capped: TestServer;
let startMessage: Record<string, any>;
let fixture: Fixture;

beforeAll(async () => {
  fixture = await readFixture(path.join(import.meta.dirname, '../../fixtures/twilio-fork-tones.jsonl'));
  startMessage = JSON.parse(
    fixture.messages.find((m) => (m.data as string).includes('"event":"start"'))!.data as string,
  );
  [timed, capped] = await Promise.all([
    startTestServer({
      env: {
        STREAM_AUTH_TIMEOUT_SECONDS: '1',
        // Count at its default (256): frames a paused socket had already read are held too.
        STREAM_PRESTART_BYTES: '131072',
        STREAM_IDLE_TIMEOUT_SECONDS: '1',
        STREAM_AUDIO_LEAD_SECONDS: '1',
      },
    }),
    startTestServer({ env: { MAX_STREAMS_PER_NODE: '3', MAX_STREAMS_PER_TENANT: '2' } }),
  ]);
  const settings = {
    enabled: true,
    auto_record: true,
    consent_prompt: false,
    dual_channel: true,
    format: 'wav' as const,
  };
  await Promise.all([timed.agent(AGENT, settings), capped.agent(AGENT, settings)]);
});
afterAll(() => Promise.all([timed?.close(), capped?.close()]));

const CONNECTED = JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0' });

function start(ts: TestServer, callId: string): string {
  const message = structuredClone(startMessage);
  message.start.customParameters = { agent_id: AGENT, token: ts.key, call_id: callId };
  return JSON.stringify(message);
}

/** 20 ms of μ-law silence on the caller leg at `timestampMs`. */
const PAYLOAD = Buffer.alloc(160, 0xff).toString('base64');
const media = (timestampMs: number) =>
  JSON.stringify({
    event: 'media',
    streamSid: startMessage.streamSid,
    media: { track: 'inbound', chunk: '1', timestamp: String(timestampMs), payload: PAYLOAD },
  });
const STOP = () => JSON.stringify({ event: 'stop', streamSid: startMessage.streamSid, stop: {} });

interface Stream {
  ws: WebSocket;
  closed: Promise<{ code: number; reason: string }>;
}

/** How an upgrade was refused: its status and body (`ERR_…: reason`). */
interface Refusal {
  status: number;
  body: string;
  retryAfter: string | undefined;
}

/**
 * A Twilio stream: open (the upgrade accepted) or how its upgrade was refused. Sent from
 * `localAddress` (a loopback address) when given, through a proxy saying it is for
 * `forwardedFor` when given.
 */
function tryOpen(
  ts: { wsUrl: string },
  opts: { forwardedFor?: string; localAddress?: string } = {},
): Promise<Stream | Refusal> {
  const ws = new WebSocket(`${ts.wsUrl}/media/twilio`, {
    headers: opts.forwardedFor ? { 'x-forwarded-for': opts.forwardedFor } : {},
    localAddress: opts.localAddress,
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.on('error', () => {});
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ ws, closed }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, retryAfter: res.headers['retry-after'] }));
    });
  });
}

/**
 * Streams one call with `token` (start, a frame, stop) as `tryOpen` opens it; resolves with how
 * the stream was closed (a stream that goes live is hung up), or how its upgrade was refused.
 */
async function streamOnce(
  ts: TestServer,
  token: string,
  opts: { forwardedFor?: string; localAddress?: string },
): Promise<{ code: number; reason: string } | Refusal> {
  const stream = await tryOpen(ts, opts);
  if ('status' in stream) return stream;
  const message = structuredClone(startMessage);
  message.start.customParameters = { agent_id: AGENT, token, call_id: uniqueCallId('once') };
  stream.ws.send(JSON.stringify(message));
  stream.ws.send(media(0));
  stream.ws.send(STOP());
  return stream.closed;
}

/** A server with `env` and the test agent. */
async function serverWithAgent(env: Record<string, string>): Promise<TestServer> {
  const ts = await startTestServer({ env });
  await ts.agent(AGENT, { enabled: true, auto_record: true, consent_prompt: false, format: 'wav' });
  return ts;
}

/** An open Twilio stream (the upgrade accepted), sent through a proxy saying it is for `forwardedFor` when given. */
async function open(ts: { wsUrl: string }, forwardedFor?: string): Promise<Stream> {
  const stream = await tryOpen(ts, { forwardedFor });
  if ('status' in stream) throw new Error(`upgrade answered ${stream.status}: ${stream.body}`);
  return stream;
}

/** Sum of a metric's samples whose labels include `labels` (e.g. `limit="ERR_AUTH_TIMEOUT"`). */
async function metric(ts: TestServer, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${ts.server.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(name) && line.includes(labels))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

/** Waits until the node holds no provider socket (closed sockets finish ending in the background). */
async function drained(ts: TestServer): Promise<void> {
  while ((await metric(ts, 'callrec_calls_active')) > 0) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe('before authentication', () => {
  test('a socket that sends nothing, or only `connected`, is closed 1008 ERR_AUTH_TIMEOUT', async () => {
    const before = await metric(timed, 'callrec_stream_limit_total', 'limit="ERR_AUTH_TIMEOUT"');
    const silent = await open(timed);
    const chatty = await open(timed);
    chatty.ws.send(CONNECTED);
    for (const { closed } of [silent, chatty]) {
      const { code, reason } = await closed;
      expect(code).toBe(1008);
      expect(reason).toMatch(/^ERR_AUTH_TIMEOUT: no valid start within 1 s/);
    }
    expect(await metric(timed, 'callrec_stream_limit_total', 'limit="ERR_AUTH_TIMEOUT"')).toBe(before + 2);
  });

  test('messages held before the start are bounded in count and in bytes (1008 ERR_PRESTART_LIMIT)', async () => {
    const many = await open(timed);
    for (let i = 0; i < 257; i++) many.ws.send(CONNECTED);
    const large = await open(timed);
    // 50 KiB messages: each under the message limit, three over the 128 KiB budget.
    const padded = JSON.stringify({
      event: 'connected',
      protocol: 'Call',
      version: '1.0.0',
      pad: 'x'.repeat(50 * 1024),
    });
    for (let i = 0; i < 3; i++) large.ws.send(padded);
    for (const { closed } of [many, large]) {
      const { code, reason } = await closed;
      expect(code).toBe(1008);
      expect(reason).toMatch(/^ERR_PRESTART_LIMIT: more than 256 messages or 131072 bytes/);
    }
    expect(await metric(timed, 'callrec_stream_limit_total', 'limit="ERR_PRESTART_LIMIT"')).toBeGreaterThanOrEqual(2);
  });
});

describe('failed stream authentication', () => {
  /** AUTH_FAILURES_PER_IP=3, behind a proxy on 127.0.0.1 that names each client. */
  let guarded: TestServer;
  beforeAll(async () => {
    guarded = await serverWithAgent({ AUTH_FAILURES_PER_IP: '3', TRUST_PROXY: '127.0.0.1' });
  });
  afterAll(() => guarded?.close());

  /** Streams a start with `token` from `client`, through the proxy. */
  const attempt = (client: string, token: string) => streamOnce(guarded, token, { forwardedFor: client });

  test("only failures are limited, per address and token prefix: 25 bad tokens from a shared provider address refuse neither a valid stream from it nor another customer's", async () => {
    const before = await metric(guarded, 'callrec_stream_limit_total', 'limit="ERR_RATE_LIMITED"');
    // One customer's broken configuration: the same (revoked, mistyped…) token again and again.
    for (let i = 0; i < 25; i++) {
      const expected =
        i < 3
          ? /^ERR_BAD_TOKEN: /
          : /^ERR_RATE_LIMITED: too many failed authentications of this token from this address; retry in \d+ s/;
      expect(await attempt('203.0.113.7', `crk_broken-${i}`)).toEqual({
        code: 1008,
        reason: expect.stringMatching(expected),
      });
    }
    expect(await metric(guarded, 'callrec_stream_limit_total', 'limit="ERR_RATE_LIMITED"')).toBe(before + 22);
    // Every other customer of that provider streams from the same address as usual.
    expect(await attempt('203.0.113.7', guarded.key)).toEqual({ code: 1000, reason: 'call ended' });
    expect(await attempt('203.0.113.7', 'crk_another')).toEqual({
      code: 1008,
      reason: expect.stringMatching(/^ERR_BAD_TOKEN: /),
    });
    expect(await attempt('203.0.113.8', guarded.key)).toEqual({ code: 1000, reason: 'call ended' });
  });
});

describe('unauthenticated sockets', () => {
  /** Behind a proxy on 127.0.0.1; sockets wait 60 s for their start, so none times out during the flood. */
  let pending: TestServer;
  beforeAll(async () => {
    pending = await serverWithAgent({ TRUST_PROXY: '127.0.0.1', STREAM_AUTH_TIMEOUT_SECONDS: '60' });
  });
  afterAll(() => pending?.close());

  /** Opens `count` sockets that send nothing, 200 at a time: those let in, and the refusals' bodies. */
  async function flood(
    count: number,
    opts: { forwardedFor?: string; localAddress?: string },
  ): Promise<{ open: Stream[]; refused: string[] }> {
    const open: Stream[] = [];
    const refused: string[] = [];
    for (let sent = 0; sent < count; sent += 200) {
      for (const stream of await Promise.all(
        Array.from({ length: Math.min(200, count - sent) }, () => tryOpen(pending, opts)),
      )) {
        if ('status' in stream) {
          expect(stream).toMatchObject({ status: 429, retryAfter: '60' });
          refused.push(stream.body);
        } else open.push(stream);
      }
    }
    return { open, refused };
  }

  /** Streams a valid start (and hangs up). */
  const valid = (opts: { forwardedFor?: string; localAddress?: string }) => streamOnce(pending, pending.key, opts);

  test("2 000 silent sockets from one address hold only MAX_PENDING_STREAMS_PER_IP; another address's valid stream gets in", async () => {
    const attacker = await flood(2000, { localAddress: '127.0.0.2' });
    expect(attacker.open).toHaveLength(100);
    expect(attacker.refused).toHaveLength(1900);
    expect(attacker.refused[0]).toMatch(
      /^ERR_PENDING_STREAM_LIMIT: this address holds 100 streams that have not authenticated \(MAX_PENDING_STREAMS_PER_IP\)/,
    );
    expect(await metric(pending, 'callrec_stream_limit_total', 'limit="ERR_PENDING_STREAM_LIMIT"')).toBe(1900);
    expect(await valid({ localAddress: '127.0.0.1' })).toEqual({ code: 1000, reason: 'call ended' });
    // A socket that authenticates no longer counts: the attacker's address takes one more once one of its sockets goes.
    attacker.open[0].ws.close();
    await attacker.open[0].closed;
    while (!('ws' in (await tryOpen(pending, { localAddress: '127.0.0.2' }))))
      await new Promise((resolve) => setTimeout(resolve, 20));
    for (const { ws } of attacker.open) ws.terminate();
  });

  test('TRUST_PROXY: clients behind a trusted proxy are counted apart by X-Forwarded-For; an untrusted peer cannot dodge its cap with the header', async () => {
    const behind = await flood(101, { forwardedFor: '203.0.113.9' });
    expect(behind.open).toHaveLength(100);
    expect(behind.refused).toHaveLength(1);
    expect(await valid({ forwardedFor: '203.0.113.10' })).toEqual({ code: 1000, reason: 'call ended' });
    // 127.0.0.3 is no trusted proxy: each socket claims another client, all count as 127.0.0.3.
    const spoofed = await Promise.all(
      Array.from({ length: 101 }, (_, i) =>
        tryOpen(pending, { localAddress: '127.0.0.3', forwardedFor: `198.51.100.${i}` }),
      ),
    );
    expect(spoofed.filter((s) => 'status' in s)).toHaveLength(1);
    for (const s of [...behind.open, ...spoofed]) if ('ws' in s) s.ws.terminate();
  });
});

describe('auth timeouts', () => {
  test('an auth timeout counts as a failure of its address: past AUTH_FAILURES_PER_IP of them the address is refused 429; other addresses are not', async () => {
    const silent = await Promise.all(Array.from({ length: 21 }, () => tryOpen(timed, { localAddress: '127.0.0.4' })));
    for (const s of silent) {
      if ('status' in s) throw new Error(`refused: ${s.body}`);
      expect((await s.closed).reason).toMatch(/^ERR_AUTH_TIMEOUT: /);
    }
    const refused = await tryOpen(timed, { localAddress: '127.0.0.4' });
    expect(refused).toEqual({
      status: 429,
      body: expect.stringMatching(
        /^ERR_RATE_LIMITED: too many streams from this address sent no valid start in time; retry in \d+ s/,
      ),
      retryAfter: expect.stringMatching(/^\d+$/),
    });
    const other = await tryOpen(timed, { localAddress: '127.0.0.5' });
    if ('status' in other) throw new Error(`refused: ${other.body}`);
    other.ws.terminate();
  });
});

describe('caps on streams', () => {
  test('the upgrade past MAX_STREAMS_PER_NODE is answered 503 with a reason; a freed slot is taken again', async () => {
    const held = await Promise.all([open(capped), open(capped), open(capped)]);
    const refused = await new Promise<{ status: number; body: string }>((resolve) => {
      const ws = new WebSocket(`${capped.wsUrl}/media/twilio`);
      ws.on('error', () => {});
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
    });
    expect(refused.status).toBe(503);
    expect(refused.body).toMatch(/^ERR_NODE_STREAM_LIMIT: .*MAX_STREAMS_PER_NODE/);
    expect(await metric(capped, 'callrec_stream_limit_total', 'limit="ERR_NODE_STREAM_LIMIT"')).toBe(1);
    held[0].ws.close();
    while ((await metric(capped, 'callrec_calls_active')) >= 3) await new Promise((resolve) => setTimeout(resolve, 20));
    const again = await open(capped);
    for (const { ws } of [again, ...held]) ws.close();
    await drained(capped);
  });

  test('a tenant past MAX_STREAMS_PER_TENANT is closed 1013 ERR_TENANT_STREAM_LIMIT; its live calls go on', async () => {
    const ids = [uniqueCallId('cap'), uniqueCallId('cap'), uniqueCallId('cap')];
    const live = await Promise.all([open(capped), open(capped)]);
    live.forEach(({ ws }, i) => {
      ws.send(start(capped, ids[i]));
    });
    while (capped.server.registry.size < 2) await new Promise((resolve) => setTimeout(resolve, 20));
    const third = await open(capped);
    third.ws.send(start(capped, ids[2]));
    const { code, reason } = await third.closed;
    expect(code).toBe(1013);
    expect(reason).toMatch(/^ERR_TENANT_STREAM_LIMIT: .*MAX_STREAMS_PER_TENANT/);
    expect(await capped.server.store.calls.get(capped.tenantId, ids[2])).toBeNull();
    for (const { ws } of live) {
      ws.send(media(0));
      ws.send(STOP());
    }
    for (const { closed } of live) expect((await closed).code).toBe(1000);
    for (const callId of ids.slice(0, 2)) expect((await capped.recording(callId)).status).toBe('ready');
    expect(await metric(capped, 'callrec_stream_limit_total', 'limit="ERR_TENANT_STREAM_LIMIT"')).toBe(1);
  });
});

describe('MAX_STREAMS_PER_TENANT across media nodes', () => {
  test("counts the tenant's streams on every live node, and a dead node's no longer once its heartbeat expires", async () => {
    const env = { MAX_STREAMS_PER_TENANT: '2' };
    const first = await startTestServer({ db: 'postgres', env });
    await first.agent(AGENT, { enabled: true, auto_record: true, consent_prompt: false, format: 'wav' });
    const second = await startServerProcess(first, { env });
    const isLive = async (callId: string) => (await first.server.store.calls.get(first.tenantId, callId)) !== null;
    const streams: Stream[] = [];
    try {
      // One stream on each node: the tenant is at its cap across the cluster, at one on each node.
      const [a, b] = [uniqueCallId('cluster'), uniqueCallId('cluster')];
      streams.push(await open(first), await open(second));
      streams[0].ws.send(start(first, a));
      streams[1].ws.send(start(first, b));
      while (!(await isLive(a)) || !(await isLive(b))) await new Promise((resolve) => setTimeout(resolve, 20));
      const refused = await open(first);
      const c = uniqueCallId('cluster');
      refused.ws.send(start(first, c));
      const { code, reason } = await refused.closed;
      expect(code).toBe(1013);
      expect(reason).toMatch(/^ERR_TENANT_STREAM_LIMIT: .*across the cluster \(MAX_STREAMS_PER_TENANT\)/);
      expect(await isLive(c)).toBe(false);
      expect(await metric(first, 'callrec_stream_limit_total', 'limit="ERR_TENANT_STREAM_LIMIT"')).toBe(1);

      // The second node dies holding its stream: refused until its heartbeat expires (15 s), then admitted.
      await second.kill();
      const killedAt = Date.now();
      let refusals = 0;
      for (;;) {
        const attempt = await open(first);
        const callId = uniqueCallId('cluster');
        attempt.ws.send(start(first, callId));
        const outcome = await Promise.race([
          attempt.closed.then(({ code }) => code),
          (async () => {
            while (!(await isLive(callId))) await new Promise((resolve) => setTimeout(resolve, 20));
            return 'admitted' as const;
          })(),
        ]);
        if (outcome === 'admitted') {
          streams.push(attempt);
          break;
        }
        expect(outcome).toBe(1013);
        refusals++;
        expect(Date.now() - killedAt).toBeLessThan(30_000);
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      expect(refusals).toBeGreaterThan(0);
    } finally {
      for (const { ws } of streams) ws.close();
      await drained(first);
      await second.close();
      await first.close();
    }
  }, 60_000);
});

describe('live streams', () => {
  test('a live stream without media for STREAM_IDLE_TIMEOUT_SECONDS is ended 1008 ERR_STREAM_IDLE and its recording finalized', async () => {
    const callId = uniqueCallId('idle');
    const stream = await open(timed);
    stream.ws.send(start(timed, callId));
    for (let i = 0; i < 10; i++) stream.ws.send(media(i * 20));
    const { code, reason } = await stream.closed;
    expect(code).toBe(1008);
    expect(reason).toMatch(/^ERR_STREAM_IDLE: no media for 1 s/);
    expect((await timed.recording(callId)).status).toBe('ready');
    expect(await timed.server.store.calls.get(timed.tenantId, callId)).toMatchObject({
      status: 'ended',
      endReason: expect.stringMatching(/^ERR_STREAM_IDLE/),
    });
  });

  /** Streams `frames` caller frames at `timestampOf(i)` as fast as the socket takes them, then stops; returns the recording and the wall time the stream took. */
  async function flood(frames: number, timestampOf: (i: number) => number) {
    const callId = uniqueCallId('flood');
    const began = performance.now();
    const stream = await open(timed);
    stream.ws.send(start(timed, callId));
    for (let i = 0; i < frames; i++) stream.ws.send(media(timestampOf(i)));
    stream.ws.send(STOP());
    expect((await stream.closed).code).toBe(1000);
    const wallMs = performance.now() - began;
    const recording = await timed.recording(callId);
    const call = await timed.server.store.calls.get(timed.tenantId, callId);
    return { recording, call: call!, wallMs };
  }

  test('500 frames each jumping 59 s ahead do not make an 8-hour recording: frames past wall clock + 1 s are dropped and counted', async () => {
    const before = await metric(timed, 'callrec_frames_ahead_of_wall_clock_total');
    const { recording, call, wallMs } = await flood(500, (i) => i * 59_000);
    expect(recording.status).toBe('ready');
    expect(recording.durationMs!).toBeLessThanOrEqual(wallMs + 1000 + 20);
    expect(call.alignment).toMatchObject({ framesAhead: expect.any(Number) });
    const ahead = (call.alignment as { framesAhead: number }).framesAhead;
    expect(ahead).toBeGreaterThan(0);
    expect(await metric(timed, 'callrec_frames_ahead_of_wall_clock_total')).toBe(before + ahead);
  });

  test('50 s of audio sent as fast as the socket takes it records no more than the wall time plus 1 s, the rest listed as lost', async () => {
    const { recording, call, wallMs } = await flood(2500, (i) => i * 20);
    expect(recording.status).toBe('ready');
    expect(recording.durationMs!).toBeLessThanOrEqual(wallMs + 1000 + 20);
    expect((call.alignment as { framesAhead: number }).framesAhead).toBeGreaterThan(0);
    // What was dropped is audio the call lost: the recording says so.
    expect(recording.complete).toBe(false);
    expect(recording.lostSpans).toEqual([
      expect.objectContaining({ end_ms: 50_000, reason: 'frames ran ahead of the wall clock' }),
    ]);
  });

  test('a stream at real time loses nothing to the wall-clock bound', async () => {
    const short = await readFixture(path.join(import.meta.dirname, '../../fixtures/telnyx-fork-pcma.jsonl'));
    const callId = uniqueCallId('realtime');
    const result = await replayFixture(short, {
      url: `${timed.wsUrl}/media/telnyx`,
      agentId: AGENT,
      token: timed.key,
      callId,
      speed: 'realtime',
    });
    expect(result.closeCode).toBe(1000);
    expect((await timed.recording(callId)).status).toBe('ready');
    expect(await timed.server.store.calls.get(timed.tenantId, callId)).toMatchObject({ alignment: { framesAhead: 0 } });
  });
});
