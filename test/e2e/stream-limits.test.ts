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
  startMessage = JSON.parse(fixture.messages.find((m) => (m.data as string).includes('"event":"start"'))!.data as string);
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
  const settings = { enabled: true, auto_record: true, consent_prompt: false, dual_channel: true, format: 'wav' as const };
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
  JSON.stringify({ event: 'media', streamSid: startMessage.streamSid, media: { track: 'inbound', chunk: '1', timestamp: String(timestampMs), payload: PAYLOAD } });
const STOP = () => JSON.stringify({ event: 'stop', streamSid: startMessage.streamSid, stop: {} });

interface Stream {
  ws: WebSocket;
  closed: Promise<{ code: number; reason: string }>;
}

/** An open Twilio stream (the upgrade accepted), sent through a proxy saying it is for `forwardedFor` when given. */
async function open(ts: { wsUrl: string }, forwardedFor?: string): Promise<Stream> {
  const ws = new WebSocket(`${ts.wsUrl}/media/twilio`, { headers: forwardedFor ? { 'x-forwarded-for': forwardedFor } : {} });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on('error', () => {});
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade answered ${res.statusCode}`)));
  });
  return { ws, closed };
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
    const padded = JSON.stringify({ event: 'connected', protocol: 'Call', version: '1.0.0', pad: 'x'.repeat(50 * 1024) });
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
    guarded = await startTestServer({ env: { AUTH_FAILURES_PER_IP: '3', TRUST_PROXY: '127.0.0.1' } });
    await guarded.agent(AGENT, { enabled: true, auto_record: true, consent_prompt: false, format: 'wav' });
  });
  afterAll(() => guarded?.close());

  /** Streams a start with `token` from `client`; resolves with how the stream was closed (a stream that goes live is hung up). */
  async function attempt(client: string, token: string): Promise<{ code: number; reason: string }> {
    const stream = await open(guarded, client);
    const message = structuredClone(startMessage);
    message.start.customParameters = { agent_id: AGENT, token, call_id: uniqueCallId('guess') };
    stream.ws.send(JSON.stringify(message));
    stream.ws.send(media(0));
    stream.ws.send(STOP());
    return stream.closed;
  }

  test('past AUTH_FAILURES_PER_IP bad tokens an address is refused 1008 ERR_RATE_LIMITED, a good token too; other addresses are not; HTTP shares the budget', async () => {
    const before = await metric(guarded, 'callrec_stream_limit_total', 'limit="ERR_RATE_LIMITED"');
    for (let i = 0; i < 3; i++) expect(await attempt('203.0.113.7', `crk_guess${i}`)).toMatchObject({ code: 1008, reason: expect.stringMatching(/^ERR_BAD_TOKEN: /) });
    expect(await attempt('203.0.113.7', 'crk_guess3')).toEqual({ code: 1008, reason: expect.stringMatching(/^ERR_RATE_LIMITED: too many failed authentications from this address; retry in \d+ s/) });
    // The budget is spent: the right key from that address is refused as well, until the window ends.
    expect(await attempt('203.0.113.7', guarded.key)).toMatchObject({ code: 1008, reason: expect.stringMatching(/^ERR_RATE_LIMITED: /) });
    expect(await metric(guarded, 'callrec_stream_limit_total', 'limit="ERR_RATE_LIMITED"')).toBe(before + 2);
    // Another client behind the same proxy streams as usual.
    expect(await attempt('203.0.113.8', guarded.key)).toEqual({ code: 1000, reason: 'call ended' });
    // One budget with the HTTP API: the next bad key from that address is a 429 at once.
    const res = await fetch(`${guarded.server.url}/api/calls`, { headers: { authorization: 'Bearer crk_guess', 'x-forwarded-for': '203.0.113.7' } });
    expect(res.status).toBe(429);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('ERR_RATE_LIMITED');
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
        const outcome = await Promise.race([attempt.closed.then(({ code }) => code), (async () => {
          while (!(await isLive(callId))) await new Promise((resolve) => setTimeout(resolve, 20));
          return 'admitted' as const;
        })()]);
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
    expect(await timed.server.store.calls.get(timed.tenantId, callId)).toMatchObject({ status: 'ended', endReason: expect.stringMatching(/^ERR_STREAM_IDLE/) });
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

  test('50 s of audio sent as fast as the socket takes it records no more than the wall time plus 1 s', async () => {
    const { recording, call, wallMs } = await flood(2500, (i) => i * 20);
    expect(recording.status).toBe('ready');
    expect(recording.durationMs!).toBeLessThanOrEqual(wallMs + 1000 + 20);
    expect((call.alignment as { framesAhead: number }).framesAhead).toBeGreaterThan(0);
  });

  test('a stream at real time loses nothing to the wall-clock bound', async () => {
    const short = await readFixture(path.join(import.meta.dirname, '../../fixtures/telnyx-fork-pcma.jsonl'));
    const callId = uniqueCallId('realtime');
    const result = await replayFixture(short, { url: `${timed.wsUrl}/media/telnyx`, agentId: AGENT, token: timed.key, callId, speed: 'realtime' });
    expect(result.closeCode).toBe(1000);
    expect((await timed.recording(callId)).status).toBe('ready');
    expect(await timed.server.store.calls.get(timed.tenantId, callId)).toMatchObject({ alignment: { framesAhead: 0 } });
  });
});
