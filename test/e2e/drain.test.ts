import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket } from 'ws';
import { RecordingQueues, recordingJobId } from '../../src/queue/recordings.js';
import { replayFixture, type ReplayResult } from '../../src/replay/client.js';
import { readFixture, type Fixture } from '../../src/replay/fixture.js';
import { REDIS_URL } from '../helpers/redis.js';
import {
  startServerProcess,
  startTestServer,
  uniqueCallId,
  type ServerProcess,
  type TestServer,
} from '../helpers/server.js';

const FIXTURE = path.resolve(import.meta.dirname, '../../fixtures/twilio-fork-tones.jsonl');

let fixture: Fixture;
let primary: TestServer;
beforeAll(async () => {
  fixture = await readFixture(FIXTURE);
  // Takes no shared jobs: a node's own queue is worked by that node alone, a shared one by the worker under test.
  primary = await startTestServer({ db: 'postgres', workers: false });
  await primary.agent('support', { enabled: true, auto_record: true, consent_prompt: false, dual_channel: true });
});
afterAll(() => primary.close());

/** Starts `count` realtime calls at `node`; resolves once every one is live there. */
async function liveCalls(
  node: ServerProcess,
  label: string,
  count: number,
): Promise<{ ids: string[]; streams: Promise<ReplayResult[]> }> {
  const ids = Array.from({ length: count }, () => uniqueCallId(label));
  const streams = Promise.all(
    ids.map((callId) =>
      replayFixture(fixture, {
        url: `${node.wsUrl}/media/twilio`,
        agentId: 'support',
        token: primary.key,
        callId,
        speed: 'realtime',
      }),
    ),
  );
  for (const callId of ids) {
    while ((await primary.server.store.calls.get(primary.tenantId, callId))?.status !== 'live') await sleep(20);
  }
  return { ids, streams };
}

/** Polls `/readyz` until it answers 503; returns its body. */
async function untilNotReady(node: ServerProcess): Promise<unknown> {
  for (;;) {
    const res = await fetch(`${node.url}/readyz`);
    if (res.status === 503) return res.json();
    await sleep(20);
  }
}

/** Opens a media stream; resolves with the HTTP answer its upgrade got instead. */
function refusedUpgrade(node: ServerProcess): Promise<{ status: number; header: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${node.wsUrl}/media/twilio`);
    ws.on('open', () => reject(new Error('a draining node took a new stream')));
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, header: res.headers['x-callrec-error'] as string | undefined, body }),
      );
    });
  });
}

test('SIGTERM during 5 live calls: not ready at once, new streams refused, the calls run to their end and are ready, exit 143 (128 + SIGTERM)', async () => {
  const node = await startServerProcess(primary);
  try {
    expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
    const { ids, streams } = await liveCalls(node, 'drain', 5);
    node.signal('SIGTERM');
    expect(await untilNotReady(node)).toEqual({ status: 'draining' });
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    expect(metrics).toMatch(/^callrec_draining 1$/m);
    expect(await refusedUpgrade(node)).toEqual({
      status: 503,
      header: 'ERR_DRAINING',
      body: expect.stringMatching(/^ERR_DRAINING: .*draining/),
    });
    // Each call ran to the fixture's end: the provider stopped it, the node did not.
    for (const result of await streams) expect(result.closeReason).not.toMatch(/ERR_/);
    expect(await node.exitCode).toBe(143);
    // The node handed its own queue over before it exited: every recording is already ready.
    for (const callId of ids) {
      const recording = await primary.server.store.recordings.getByCall(primary.tenantId, callId);
      expect(recording).toMatchObject({
        status: 'ready',
        attempts: 1,
        error: null,
        durationMs: fixture.meta.durationMs,
      });
      expect(await primary.server.store.calls.get(primary.tenantId, callId)).toMatchObject({
        status: 'ended',
        endReason: 'provider stop',
      });
    }
  } finally {
    await node.close();
  }
});

test.each<{ cut: string; env: Record<string, string>; hurry: boolean }>([
  { cut: 'a second SIGTERM', env: {}, hurry: true },
  { cut: 'DRAIN_TIMEOUT_SECONDS passing', env: { DRAIN_TIMEOUT_SECONDS: '1' }, hurry: false },
])('$cut ends the live calls now, and they are still finalized and ready before exit 143', async ({ env, hurry }) => {
  const node = await startServerProcess(primary, { env });
  try {
    const { ids, streams } = await liveCalls(node, 'hurry', 3);
    node.signal('SIGTERM');
    await untilNotReady(node);
    if (hurry) node.signal('SIGTERM');
    for (const result of await streams) expect(result.closeReason).toMatch(/^ERR_SHUTTING_DOWN/);
    expect(await node.exitCode).toBe(143);
    for (const callId of ids) {
      const recording = await primary.server.store.recordings.getByCall(primary.tenantId, callId);
      expect(recording).toMatchObject({ status: 'ready', error: null });
      expect(recording!.durationMs).toBeGreaterThan(0);
      expect(recording!.durationMs).toBeLessThan(fixture.meta.durationMs);
    }
  } finally {
    await node.close();
  }
});

test('a worker on SIGTERM finishes the jobs it holds, then exits 143; what it had not taken waits for the next worker', async () => {
  const spoolDir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-drain-bucket-'));
  const spoolEnv = { SPOOL_URL: pathToFileURL(spoolDir).href };
  const queues = new RecordingQueues({ url: REDIS_URL }, primary.cluster.prefix);
  const shared = queues.queue(null);
  // Shipped spools go to the shared queue, which only the worker processes take.
  const media = await startServerProcess(primary, { env: spoolEnv, args: ['--no-workers'] });
  let worker = await startServerProcess(primary, { command: 'worker', env: spoolEnv });
  try {
    // Ready means this node's workers reach what they need: the spool bucket too, when spools are shipped.
    expect(await (await fetch(`${media.url}/readyz`)).json()).toMatchObject({
      status: 'ok',
      checks: { database: true, redis: true, storage: true, spool: true },
    });
    const ids = Array.from({ length: 4 }, () => uniqueCallId('worker-drain'));
    await Promise.all(
      ids.map((callId) =>
        replayFixture(fixture, {
          url: `${media.wsUrl}/media/twilio`,
          agentId: 'support',
          token: primary.key,
          callId,
          speed: 'max',
        }),
      ),
    );
    while ((await shared.getJobCounts('active')).active === 0) await sleep(5);
    worker.signal('SIGTERM');
    expect(await worker.exitCode).toBe(143);
    // Nothing was left half-done: no job is still active (it would wait for the stalled-job check).
    expect(await shared.getJobCounts('active')).toEqual({ active: 0 });
    const recordings = await Promise.all(
      ids.map((callId) => primary.server.store.recordings.getByCall(primary.tenantId, callId)),
    );
    const finished = recordings.filter((r) => r!.status === 'ready');
    expect(finished.length).toBeGreaterThan(0);
    for (const recording of finished)
      expect(recording).toMatchObject({ attempts: 1, error: null, durationMs: fixture.meta.durationMs });
    for (const recording of recordings.filter((r) => r!.status !== 'ready')) {
      expect(recording!.status).toBe('processing');
      // Waiting, or delayed a second by the tenant's fair share of the worker's slots (workers/index.ts).
      expect(['waiting', 'delayed']).toContain(
        await shared.getJob(recordingJobId(recording!.id)).then((job) => job?.getState()),
      );
    }
    worker = await startServerProcess(primary, { command: 'worker', env: spoolEnv });
    for (const callId of ids)
      expect(await primary.recording(callId)).toMatchObject({
        status: 'ready',
        attempts: 1,
        durationMs: fixture.meta.durationMs,
      });
  } finally {
    await queues.close();
    await worker.close();
    await media.close();
    await fs.rm(spoolDir, { recursive: true, force: true });
  }
});
