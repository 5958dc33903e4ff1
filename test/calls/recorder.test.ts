import { SpoolOpener } from '../../src/recording/shared-spool.js';
import { webhookContext } from '../helpers/api-deps.js';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { BufferPool } from '../../media/buffer-pool.js';
import { CALL_RECORDING_DEFAULTS, type CallRecordingSettings } from '../../src/agents/settings.js';
import { StreamClock } from '../../src/calls/clock.js';
import { CallRecorder, type RecorderContext, type RecorderState } from '../../src/calls/recorder.js';
import { ConsentGate } from '../../src/consent/gate.js';
import { PromptCache } from '../../src/consent/prompts.js';
import { createLogger } from '../../src/log.js';
import type { RecordingJobData } from '../../src/queue/recordings.js';
import type { TestStore } from '../helpers/db.js';
import { HeldEngine } from '../consent/helpers.js';
import { expectOnlyMoves, FakePromptPort, reaches, storedCall, storeWithCall } from './helpers.js';

const STATUSES: RecorderState['status'][] = ['idle', 'consent', 'recording', 'paused', 'finalizing', 'done'];
const FORMAT = { codec: 'pcmu', sampleRate: 8000 } as const;
/** 20 ms of μ-law silence. */
const FRAME = Buffer.alloc(160, 0xff);

let db: TestStore;
let dataDir: string;
let webhooks: Awaited<ReturnType<typeof webhookContext>>;
let engine: HeldEngine;
let port: FakePromptPort;
let jobs: RecordingJobData[];

beforeEach(async () => {
  db = await storeWithCall();
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-recorder-'));
  webhooks = await webhookContext(db.store, dataDir);
  engine = new HeldEngine();
  port = new FakePromptPort();
  jobs = [];
});
afterEach(async () => {
  await webhooks.close();
  await db.cleanup();
  await fs.rm(dataDir, { recursive: true, force: true });
});

function recorder(settings: Partial<CallRecordingSettings> = {}): {
  recorder: CallRecorder;
  gate: ConsentGate;
  clock: StreamClock;
} {
  const log = createLogger('silent');
  const all = { ...CALL_RECORDING_DEFAULTS, enabled: true, auto_record: true, consent_prompt: false, ...settings };
  const clock = new StreamClock(FORMAT);
  port.clockMs = () => clock.ms;
  const gate = new ConsentGate({
    store: db.store,
    log,
    prompts: new PromptCache(engine),
    tenantId: 't1',
    callId: 'c1',
    settings: all,
    format: FORMAT,
    port,
  });
  const ctx: RecorderContext = {
    store: db.store,
    log,
    dataDir,
    spools: new SpoolOpener(null),
    webhooks,
    enqueue: async (job) => jobs.push(job),
    buffers: new BufferPool(),
    limits: { audioLeadMs: Infinity },
    tenantId: 't1',
    callId: 'c1',
    settings: all,
    format: FORMAT,
    bridged: true,
    gate,
    clock,
  };
  return { recorder: new CallRecorder(ctx), gate, clock };
}

/** Feeds `count` caller frames from stream time `fromMs`. */
function frames(r: CallRecorder, fromMs: number, count: number): void {
  for (let i = 0; i < count; i++) r.frame('caller', fromMs + i * 20, FRAME);
}

const conflict = expect.objectContaining({ code: 'ERR_CONFLICT' });

test('idle: recording disabled; every action is refused and consent is "not required"', async () => {
  const { recorder: r, gate } = recorder({ enabled: false });
  r.begin();
  expect(r.state.status).toBe('idle');
  expect(gate.record).toMatchObject({ outcome: 'not_required', reason: 'recording is disabled for this agent' });
  for (const action of ['start', 'stop', 'pause', 'resume'] as const)
    await expect(r.control(action)).rejects.toEqual(conflict);
  expectOnlyMoves(r, STATUSES, ['consent', 'recording', 'done']);
  await r.finish('provider stop');
  expect(r.state).toMatchObject({ status: 'done', result: 'none' });
  expectOnlyMoves(r, STATUSES, []);
});

test('no prompt: idle → recording from the first sample → paused → recording → finalizing → done, queued', async () => {
  const { recorder: r } = recorder({ pause_behavior: 'silence' });
  r.begin();
  expect(r.state.status).toBe('recording');
  expectOnlyMoves(r, STATUSES, ['paused', 'finalizing']);
  frames(r, 0, 50);
  await expect(r.control('resume')).rejects.toEqual(conflict);
  expect(await r.control('pause')).toEqual({ recordingStatus: 'paused' });
  expectOnlyMoves(r, STATUSES, ['recording', 'finalizing']);
  await expect(r.control('pause')).rejects.toEqual(conflict);
  const recording = (await db.store.recordings.getByCall('t1', 'c1'))!;
  expect(recording.status).toBe('paused');
  expect((await storedCall(db.store)).pauses).toEqual([
    { paused_at_ms: 1000, resumed_at_ms: null, behavior: 'silence', recording_offset_ms: 1000 },
  ]);
  frames(r, 1000, 25);
  expect(await r.control('resume')).toEqual({ recordingStatus: 'recording' });
  expect((await storedCall(db.store)).pauses).toMatchObject([{ paused_at_ms: 1000, resumed_at_ms: 1500 }]);
  frames(r, 1500, 25);
  r.on('stateChange', (_prev, next) => {
    if (next.status === 'finalizing') expectOnlyMoves(r, STATUSES, ['done']);
  });
  expect(await r.control('stop')).toEqual({ recordingStatus: 'processing' });
  expect(r.state).toMatchObject({ status: 'done', result: 'processing', reason: 'stopped' });
  expect(r.alignment).toMatchObject({ framesDropped: 0 });
  expect(jobs).toEqual([{ tenantId: 't1', callId: 'c1', recordingId: recording.id }]);
  expect((await db.store.recordings.get(recording.id))!.status).toBe('processing');
  await expect(r.control('start')).rejects.toEqual(
    expect.objectContaining({ message: expect.stringContaining('one recording per call') }),
  );
});

test('auto_record off: idle until a start action, which asks for consent (idle → consent)', async () => {
  const { recorder: r, gate } = recorder({ auto_record: false, consent_prompt: true });
  r.begin();
  expect(r.state.status).toBe('idle');
  expect(gate.record).toMatchObject({ outcome: 'not_required' });
  expect(await r.control('start')).toEqual({ recordingStatus: 'consent' });
  expect(gate.state.status).toBe('synthesizing');
  expectOnlyMoves(r, STATUSES, ['recording', 'done']);
  await expect(r.control('start')).rejects.toEqual(conflict);
  await expect(r.control('pause')).rejects.toEqual(conflict);
});

test('consent → recording once the prompt played: only what follows the mark is captured', async () => {
  const { recorder: r, gate } = recorder({ consent_prompt: true });
  r.begin();
  expect(r.state.status).toBe('consent');
  frames(r, 0, 10);
  engine.finish(200);
  const playing = await reaches(gate, 'playing');
  frames(r, 200, 10);
  gate.mark((playing as { mark: string }).mark);
  expect(r.state.status).toBe('recording');
  frames(r, 400, 30);
  await r.finish('provider stop');
  expect(r.state).toMatchObject({ status: 'done', result: 'processing' });
  expect(gate.record).toMatchObject({ outcome: 'announced', prompt_ended_ms: 400 });
  expect(r.alignment).toMatchObject({ framesPlaced: 30 });
  expect(jobs).toHaveLength(1);
});

test('consent → done when consent fails; nothing is recorded', async () => {
  const { recorder: r, gate } = recorder({ consent_prompt: true });
  r.begin();
  engine.fail(new Error('engine down'));
  await reaches(r, 'done');
  expect(r.state).toMatchObject({ result: 'none', reason: 'consent failed' });
  expect(gate.record).toMatchObject({ outcome: 'failed' });
  expect(await db.store.recordings.getByCall('t1', 'c1')).toBeNull();
});

test.each([
  ['a stop action', (r: CallRecorder) => r.control('stop'), 'recording stopped before the prompt finished playing'],
  [
    'the call ending',
    (r: CallRecorder) => r.finish('provider stop'),
    'call ended (provider stop) before the prompt finished playing',
  ],
])('consent → done by %s gives consent up, once, as failed', async (_name, end, reason) => {
  const { recorder: r, gate } = recorder({ consent_prompt: true });
  r.begin();
  await end(r);
  expect(r.state).toMatchObject({ status: 'done', result: 'none' });
  await gate.saved;
  expect((await storedCall(db.store)).consent).toMatchObject({ outcome: 'failed', reason });
});

test('the call ending while paused closes the pause and finalizes', async () => {
  const { recorder: r } = recorder({ pause_behavior: 'skip' });
  r.begin();
  frames(r, 0, 25);
  await r.control('pause');
  frames(r, 500, 25);
  await r.finish('provider stop');
  expect(r.state).toMatchObject({
    status: 'done',
    result: 'processing',
    pauses: [{ paused_at_ms: 500, resumed_at_ms: 1000, behavior: 'skip' }],
  });
  expect((await storedCall(db.store)).pauses).toMatchObject([{ resumed_at_ms: 1000 }]);
});

test('a recording without a single frame fails rather than queueing', async () => {
  const { recorder: r } = recorder();
  r.begin();
  await r.finish('provider stop');
  expect(r.state).toMatchObject({ status: 'done', result: 'failed' });
  expect((await db.store.recordings.getByCall('t1', 'c1'))!).toMatchObject({
    status: 'failed',
    error: 'no audio was captured',
  });
  expect(jobs).toEqual([]);
});
