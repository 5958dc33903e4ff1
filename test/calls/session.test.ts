import { SpoolOpener } from '../../src/recording/shared-spool.js';
import { webhookContext } from '../helpers/api-deps.js';
import { EventEmitter } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BufferPool } from '../../media/buffer-pool.js';
import { AuthFailures } from '../../src/auth/failures.js';
import { StreamAdmission } from '../../src/calls/stream-admission.js';
import { CallRegistry } from '../../src/calls/registry.js';
import type { MediaContext } from '../../src/calls/live-call.js';
import { CallSession, MAX_MESSAGE_BYTES, type SessionState } from '../../src/calls/session.js';
import { PromptCache } from '../../src/consent/prompts.js';
import { STREAM_LIMIT_DEFAULTS } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { MediaMetrics } from '../../src/metrics.js';
import { adapters } from '../../src/protocols/index.js';
import type { RecordingJobData } from '../../src/queue/recordings.js';
import { readFixture } from '../../src/replay/fixture.js';
import { HeldEngine } from '../consent/helpers.js';
import { createTestStore, type TestStore } from '../helpers/db.js';
import { expectOnlyMoves, reaches } from './helpers.js';

const STATUSES: SessionState['status'][] = ['connecting', 'authenticating', 'claimed', 'live', 'ending', 'ended'];

/** The provider's end of the socket, in memory: what the session sent, how it closed, whether it reads. */
class FakeProviderSocket extends EventEmitter {
  readyState = 1;
  bufferedAmount = 0;
  paused = false;
  readonly sent: string[] = [];
  closed: { code: number; reason: string } | null = null;

  send(data: Buffer | string): void {
    this.sent.push(data.toString());
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = { code, reason };
    this.readyState = 3;
    queueMicrotask(() => this.emit('close', code, Buffer.from(reason)));
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  /** The provider sends a message. */
  deliver(message: string | object): void {
    this.emit('message', Buffer.from(typeof message === 'string' ? message : JSON.stringify(message)), false);
  }
}

let db: TestStore;
let dataDir: string;
let webhooks: Awaited<ReturnType<typeof webhookContext>>;
let token: string;
let jobs: RecordingJobData[];
let ctx: MediaContext;
let connected: string;
let start: Record<string, any>;
let media: string[];
let stop: string;

beforeAll(async () => {
  const fixture = await readFixture(path.join(import.meta.dirname, '../../fixtures/twilio-connect-caller.jsonl'));
  const texts = fixture.messages.map((m) => m.data as string);
  [connected, stop] = [texts[0], texts.at(-1)!];
  start = JSON.parse(texts[1]);
  media = texts.slice(2, -1).filter((t) => t.includes('"media"'));
});

beforeEach(async () => {
  db = await createTestStore('sqlite');
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-session-'));
  webhooks = await webhookContext(db.store, dataDir);
  await db.store.tenants.ensure('t1', 'Tenant one');
  token = (await db.store.keys.create({ tenantId: 't1', name: 'stream', scopes: ['media:stream'] })).secret;
  await db.store.agents.patch(
    't1',
    'agent-a',
    { voice_tools: { call_recording: { enabled: true, auto_record: true, consent_prompt: false, format: 'wav' } } },
    null,
  );
  jobs = [];
  const authFailures = new AuthFailures(20);
  ctx = {
    store: db.store,
    registry: new CallRegistry(),
    log: createLogger('silent'),
    dataDir,
    nodeId: 'node-1',
    spools: new SpoolOpener(null),
    webhooks,
    enqueue: async (job) => jobs.push(job),
    metrics: new MediaMetrics(),
    prompts: new PromptCache(new HeldEngine()),
    buffers: new BufferPool(),
    limits: STREAM_LIMIT_DEFAULTS,
    authFailures,
    admission: new StreamAdmission(authFailures, 100, STREAM_LIMIT_DEFAULTS.authTimeoutMs),
    egress: webhooks.egress,
  };
});
afterEach(async () => {
  await webhooks.close();
  await db.cleanup();
  await fs.rm(dataDir, { recursive: true, force: true });
});

function session(): { session: CallSession; socket: FakeProviderSocket } {
  const socket = new FakeProviderSocket();
  const upgrade = { headers: {}, query: {}, address: '192.0.2.1' };
  return { session: new CallSession(socket, adapters.twilio(upgrade), upgrade, ctx), socket };
}

function startMessage(params: Record<string, string>): object {
  return {
    ...start,
    start: { ...start.start, customParameters: { agent_id: 'agent-a', token, call_id: 'call-1', ...params } },
  };
}

test('connecting: keeps what comes before the start; may only authenticate or end', () => {
  const { session: s, socket } = session();
  socket.deliver(connected);
  expect(s.state).toMatchObject({ status: 'connecting', connected: [expect.anything()] });
  expectOnlyMoves(s, STATUSES, ['authenticating', 'ending']);
});

test.each([
  ['media before the start', () => media[0], 1008, /^ERR_UNEXPECTED_MESSAGE: /],
  ['a message over the size limit', () => 'x'.repeat(MAX_MESSAGE_BYTES + 1), 1009, /^ERR_MESSAGE_TOO_LARGE: /],
  ['malformed JSON', () => '{"event": ', 1007, /^ERR_MALFORMED_MESSAGE: /],
])('connecting → ending → ended on %s, with a clear close reason', async (_name, message, code, reason) => {
  const { session: s, socket } = session();
  socket.deliver(message());
  expect(s.state.status).toBe('ending');
  await s.ended;
  expect(s.state.status).toBe('ended');
  expect(socket.closed).toEqual({ code, reason: expect.stringMatching(reason) });
});

test('connecting → authenticating → claimed → live → ending → ended: the whole call, recorded', async () => {
  const { session: s, socket } = session();
  const seen: string[] = [];
  s.on('stateChange', (_prev, next) => {
    seen.push(next.status);
    if (next.status === 'authenticating') {
      expect(socket.paused).toBe(true);
      expectOnlyMoves(s, STATUSES, ['claimed', 'ending']);
    }
    if (next.status === 'claimed') {
      expect(ctx.registry.get('t1', 'call-1')).toBe(s);
      expectOnlyMoves(s, STATUSES, ['live', 'ending']);
    }
  });
  socket.deliver(connected);
  socket.deliver(startMessage({}));
  // Arrives during set-up: waits, and is recorded once live.
  socket.deliver(media[0]);
  await reaches(s, 'live');
  expect(socket.paused).toBe(false);
  expectOnlyMoves(s, STATUSES, ['ending']);
  for (const m of media.slice(1)) socket.deliver(m);
  await expect(s.control('pause')).resolves.toEqual({ recordingStatus: 'paused' });
  await expect(s.control('resume')).resolves.toEqual({ recordingStatus: 'recording' });
  socket.deliver(stop);
  await s.ended;
  expect(seen).toEqual(['authenticating', 'claimed', 'live', 'ending', 'ended']);
  expectOnlyMoves(s, STATUSES, []);
  expect(socket.closed).toEqual({ code: 1000, reason: 'call ended' });
  expect(ctx.registry.size).toBe(0);
  const call = (await db.store.calls.get('t1', 'call-1'))!;
  expect(call).toMatchObject({
    status: 'ended',
    endReason: 'provider stop',
    mode: 'fork',
    legs: ['caller'],
    alignment: { framesDropped: 0 },
  });
  expect(jobs).toEqual([{ tenantId: 't1', callId: 'call-1', recordingId: expect.any(String) }]);
  await expect(s.control('stop')).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
  // Its set-up, phase by phase, once each.
  expect(await setupCounts()).toEqual({ start: 1, auth: 1, claim: 1, live: 1, recording_row: 1 });
});

/** How many calls `callrec_stream_setup_seconds` timed, by phase. */
async function setupCounts(): Promise<Record<string, number>> {
  const { values } = await ctx.metrics.streamSetupSeconds.get();
  return Object.fromEntries(
    values.filter((v) => v.metricName?.endsWith('_count')).map((v) => [v.labels.phase as string, v.value]),
  );
}

test('authenticating → ending on a bad token: closed 1008, nothing created', async () => {
  const { session: s, socket } = session();
  socket.deliver(startMessage({ token: 'cr_wrong' }));
  await s.ended;
  expect(socket.closed).toEqual({ code: 1008, reason: expect.stringMatching(/^ERR_BAD_TOKEN: /) });
  expect(await db.store.calls.get('t1', 'call-1')).toBeNull();
  // A refused stream's start is timed; nothing after it.
  expect(await setupCounts()).toEqual({ start: 1 });
});

test('authenticating → ending when the provider hangs up during set-up: nothing is claimed', async () => {
  const { session: s, socket } = session();
  socket.deliver(startMessage({}));
  socket.close(1000, 'bye');
  await s.ended;
  expect(ctx.registry.size).toBe(0);
  expect(await db.store.calls.get('t1', 'call-1')).toBeNull();
});

test('claimed → ending when the provider hangs up before the call went live: the row is still finalized', async () => {
  const { session: s, socket } = session();
  s.on('stateChange', (_prev, next) => {
    if (next.status === 'claimed') socket.close(1000, 'bye');
  });
  socket.deliver(startMessage({}));
  await s.ended;
  expect(ctx.registry.size).toBe(0);
  expect(await db.store.calls.get('t1', 'call-1')).toMatchObject({
    status: 'ended',
    endReason: 'provider closed (1000 bye)',
  });
});

test('a second stream for a call this node holds is refused with ERR_CALL_EXISTS', async () => {
  const first = session();
  first.socket.deliver(startMessage({}));
  await reaches(first.session, 'live');
  const second = session();
  second.socket.deliver(startMessage({}));
  await second.session.ended;
  expect(second.socket.closed).toEqual({ code: 1008, reason: expect.stringMatching(/^ERR_CALL_EXISTS: /) });
  expect(ctx.registry.get('t1', 'call-1')).toBe(first.session);
  await first.session.shutdown();
  expect(first.socket.closed).toEqual({ code: 1001, reason: expect.stringMatching(/^ERR_SHUTTING_DOWN: /) });
  expect(await db.store.calls.get('t1', 'call-1')).toMatchObject({
    status: 'ended',
    endReason: expect.stringMatching(/^ERR_SHUTTING_DOWN/),
  });
});

test('control before the call is live is ERR_NOT_FOUND', async () => {
  const { session: s } = session();
  await expect(s.control('start')).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
});
