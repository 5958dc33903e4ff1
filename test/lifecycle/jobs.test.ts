import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Worker, type Queue } from 'bullmq';
import { CALL_RECORDING_DEFAULTS } from '../../src/agents/settings.js';
import { retryRecording } from '../../src/jobs.js';
import {
  RecordingQueues,
  recordingJobId,
  recordingsQueueName,
  type RecordingJobData,
} from '../../src/queue/recordings.js';
import { recoverSpools, SPOOL_UNREACHABLE } from '../../src/recovery.js';
import type { Recording, RecordingStatus } from '../../src/store/index.js';
import { createTestStore, TEST_DB_KINDS, type TestStore } from '../helpers/db.js';
import { dropRedisPrefix, REDIS_URL, testPrefix } from '../helpers/redis.js';

describe.each(TEST_DB_KINDS)('job tooling on %s', (kind) => {
  let db: TestStore;
  let dataDir: string;
  let queues: RecordingQueues;
  /** This node's queue: recovery finalizes the spools on this node's disk there. */
  let queue: Queue<RecordingJobData>;
  const prefix = testPrefix();
  const SELF = 'this-node';

  /**
   * A call (live or ended) with a recording in `status` and a spool file on this disk; `spool`
   * false: the spool is named but on another disk; `'none'`: the recording has no spool.
   */
  async function addRecording(
    callId: string,
    status: RecordingStatus,
    opts: { ended?: boolean; spool?: boolean | 'none'; spoolAgeMs?: number; nodeId?: string; spoolUrl?: string } = {},
  ): Promise<Recording> {
    await db.store.calls.create({
      tenantId: 't1',
      id: callId,
      agentId: 'agent-1',
      provider: 'twilio',
      mode: 'fork',
      sampleRate: 8000,
      legs: ['caller', 'agent'],
      settings: CALL_RECORDING_DEFAULTS,
      nodeId: opts.nodeId,
    });
    if (opts.ended) await db.store.calls.update('t1', callId, { status: 'ended', endedAt: new Date().toISOString() });
    const spoolPath = path.join(dataDir, 'spool', `${randomUUID()}.wav`);
    if (opts.spool === undefined || opts.spool === true) {
      await fs.writeFile(spoolPath, 'RIFF');
      if (opts.spoolAgeMs) {
        const then = new Date(Date.now() - opts.spoolAgeMs);
        await fs.utimes(spoolPath, then, then);
      }
    }
    const recording = await db.store.recordings.create({
      tenantId: 't1',
      callId,
      format: 'mp3',
      channels: 1,
      sampleRate: 8000,
      storageDays: 30,
      status,
      spoolPath: opts.spool === 'none' ? null : spoolPath,
      spoolUrl: opts.spoolUrl,
    });
    return status === 'failed'
      ? (await db.store.recordings.update(recording.id, { error: 'upload failed' }))!
      : recording;
  }

  const jobIds = async () =>
    (await queue.getJobs(['waiting', 'delayed', 'active', 'failed', 'completed'])).map((job) => job.id).sort();

  beforeAll(async () => {
    db = await createTestStore(kind);
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-jobs-'));
    await fs.mkdir(path.join(dataDir, 'spool'));
    await db.store.tenants.ensure('t1', 'One');
    queues = new RecordingQueues({ url: REDIS_URL }, prefix);
    queue = queues.queue(SELF);
  });

  afterAll(async () => {
    await queues.close();
    await db.cleanup();
    await fs.rm(dataDir, { recursive: true, force: true });
    await dropRedisPrefix(prefix);
  });

  test('retryRecording, from any node, replaces the failed job with a fresh one on the queue of the node holding the spool, once', async () => {
    // The spool is on node-a's disk, not this one's: retry works from here all the same.
    const recording = await addRecording('retry-me', 'failed', { ended: true, spool: false, nodeId: 'node-a' });
    const queue = queues.queue('node-a');
    const jobId = recordingJobId(recording.id);
    // The job that failed for good, as the worker leaves it.
    await queue.add(
      'finalize',
      { tenantId: 't1', callId: 'retry-me', recordingId: recording.id },
      { jobId, attempts: 1 },
    );
    const failing = new Worker(
      recordingsQueueName('node-a'),
      async () => {
        throw new Error('boom');
      },
      { connection: { url: REDIS_URL }, prefix },
    );
    await new Promise((resolve) => failing.once('failed', resolve));
    await failing.close();
    expect(await queue.getJobState(jobId)).toBe('failed');

    const retried = await retryRecording(db.store, queues, 't1', 'retry-me');
    expect(retried).toMatchObject({ id: recording.id, status: 'processing', error: null });
    expect((await db.store.recordings.get(recording.id))!.status).toBe('processing');
    const job = (await queue.getJob(jobId))!;
    expect(await job.getState()).toBe('waiting');
    expect(job.attemptsMade).toBe(0);
    expect(job.data).toEqual({ tenantId: 't1', callId: 'retry-me', recordingId: recording.id });

    await expect(retryRecording(db.store, queues, 't1', 'retry-me')).rejects.toMatchObject({ code: 'ERR_CONFLICT' });
    expect((await queue.getJobs(['waiting', 'failed', 'completed'])).filter((job) => job.id === jobId)).toHaveLength(1);
    expect(await queues.queue(null).getJob(jobId)).toBeUndefined();
  });

  test('retryRecording refuses without a spool, for other statuses and unknown calls', async () => {
    const noSpool = await addRecording('no-spool', 'failed', { ended: true, spool: 'none' });
    await addRecording('is-ready', 'ready', { ended: true, spool: false });
    await expect(retryRecording(db.store, queues, 't1', 'no-spool')).rejects.toMatchObject({ code: 'ERR_NO_SPOOL' });
    expect((await db.store.recordings.getByCall('t1', 'no-spool'))!.status).toBe('failed');
    await expect(retryRecording(db.store, queues, 't1', 'is-ready')).rejects.toMatchObject({ code: 'ERR_CONFLICT' });
    await expect(retryRecording(db.store, queues, 't1', 'nobody')).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    await expect(retryRecording(db.store, queues, 't2', 'retry-me')).rejects.toMatchObject({ code: 'ERR_NOT_FOUND' });
    expect(await queue.getJob(recordingJobId(noSpool.id))).toBeUndefined();
  });

  test('recoverSpools queues stranded recordings once and reports orphan spools without deleting them', async () => {
    const processing = await addRecording('rec-processing', 'processing', { ended: true });
    const endedCall = await addRecording('rec-ended', 'recording', { ended: true });
    const deadNode = await addRecording('rec-dead-node', 'recording', { spoolAgeMs: 3 * 60_000 });
    await addRecording('rec-live', 'recording');
    // A skip-pause writes nothing: an old spool alone does not make a paused live call stranded.
    await addRecording('rec-paused', 'paused', { spoolAgeMs: 3 * 60_000 });
    // Its node's missing heartbeat does, fresh spool or not; a node that beats keeps its calls.
    const lostNode = await addRecording('rec-node-lost', 'paused', { nodeId: 'crashed-node' });
    await addRecording('rec-node-alive', 'paused', { nodeId: 'running-node' });
    const isNodeAlive = async (nodeId: string) => ['running-node', 'node-a', SELF].includes(nodeId);
    // This node's own live call is left alone; it is running here.
    await addRecording('rec-mine', 'recording', { nodeId: SELF });
    // A spool on a dead node's disk cannot be finalized here: failed, saying where it is.
    const elsewhere = await addRecording('rec-elsewhere', 'recording', { spool: false, nodeId: 'crashed-node' });
    await addRecording('rec-gone', 'processing', { ended: true, spool: false });
    await addRecording('rec-failed', 'failed', { ended: true });
    // Already queued and waiting: recovery must not add a second job.
    const waiting = await addRecording('rec-waiting', 'processing', { ended: true });
    await queues.add({ tenantId: 't1', callId: 'rec-waiting', recordingId: waiting.id }, SELF);
    const orphan = path.join(dataDir, 'spool', `${randomUUID()}.wav`);
    await fs.writeFile(orphan, 'RIFF');
    const before = await jobIds();

    const first = await recoverSpools(db.store, queues, dataDir, { nodeId: SELF, isNodeAlive });
    // `retry-me` (the test above) is processing with its spool on node-a, which is up: left to it.
    expect(first.requeued.map((r) => r.callId).sort()).toEqual([
      'rec-dead-node',
      'rec-ended',
      'rec-node-lost',
      'rec-processing',
    ]);
    expect(first.unreachable.map((r) => r.callId)).toEqual(['rec-elsewhere']);
    expect((await db.store.recordings.get(elsewhere.id))!.error).toMatch(
      new RegExp(`^${SPOOL_UNREACHABLE}: the spool is on node crashed-node`),
    );
    expect(await db.store.calls.get('t1', 'rec-elsewhere')).toMatchObject({
      status: 'ended',
      endReason: 'media node lost',
    });
    expect((await db.store.recordings.getByCall('t1', 'rec-mine'))!.status).toBe('recording');
    expect(first.orphanSpools).toEqual([orphan]);
    await expect(fs.stat(orphan)).resolves.toBeTruthy();
    for (const r of [processing, endedCall, deadNode])
      expect((await db.store.recordings.get(r.id))!.status).toBe('processing');
    expect((await db.store.recordings.getByCall('t1', 'rec-live'))!.status).toBe('recording');
    expect((await db.store.recordings.getByCall('t1', 'rec-paused'))!.status).toBe('paused');
    expect((await db.store.recordings.getByCall('t1', 'rec-node-alive'))!.status).toBe('paused');
    expect((await db.store.recordings.get(lostNode.id))!.status).toBe('processing');
    expect(await db.store.calls.get('t1', 'rec-node-lost')).toMatchObject({
      status: 'ended',
      endReason: 'media node lost',
    });
    expect((await db.store.recordings.getByCall('t1', 'rec-failed'))!.status).toBe('failed');

    const added = await Promise.all(
      ['rec-dead-node', 'rec-ended', 'rec-node-lost', 'rec-processing'].map(async (callId) =>
        recordingJobId((await db.store.recordings.getByCall('t1', callId))!.id),
      ),
    );
    expect(await jobIds()).toEqual([...before, ...added].sort());
    const waitingAfterFirst = await queue.getJobCounts('waiting');
    await recoverSpools(db.store, queues, dataDir, { nodeId: SELF, isNodeAlive });
    expect(await jobIds()).toEqual([...before, ...added].sort());
    expect(await queue.getJobCounts('waiting')).toEqual(waitingAfterFirst);

    // The dead node is back with its disk: the spool is reachable again and its recording goes on.
    await fs.writeFile(elsewhere.spoolPath!, 'RIFF');
    const back = await recoverSpools(db.store, queues, dataDir, { nodeId: SELF, isNodeAlive });
    expect(back.requeued.map((r) => r.callId)).toEqual(['rec-elsewhere']);
    expect((await db.store.recordings.get(elsewhere.id))!).toMatchObject({ status: 'processing', error: null });
    expect(await jobIds()).toContain(recordingJobId(elsewhere.id));
  });

  test("recoverSpools, on any node, sends a dead node's shipped spools to the shared queue and ends its calls when the node was last seen", async () => {
    const shared = queues.queue(null);
    const spoolUrl = 'file:///spools';
    const lastSeen = new Date(Date.now() - 20_000);
    const isNodeAlive = async (nodeId: string) => nodeId === 'live-node';
    const lost = await addRecording('shipped-lost', 'recording', { spool: false, nodeId: 'dead-node', spoolUrl });
    const mine = await addRecording('shipped-alive', 'recording', { spool: false, nodeId: 'live-node', spoolUrl });
    const report = await recoverSpools(db.store, queues, dataDir, {
      nodeId: SELF,
      isNodeAlive,
      lastSeen: async (id) => (id === 'dead-node' ? lastSeen : null),
    });
    expect(report.requeued.map((r) => r.callId)).toContain('shipped-lost');
    expect(report.unreachable.map((r) => r.callId)).not.toContain('shipped-lost');
    expect(await db.store.calls.get('t1', 'shipped-lost')).toMatchObject({
      status: 'ended',
      endReason: 'media node lost',
      endedAt: lastSeen.toISOString(),
    });
    expect((await db.store.recordings.get(lost.id))!).toMatchObject({ status: 'processing', error: null, spoolUrl });
    expect(await shared.getJobState(recordingJobId(lost.id))).toBe('waiting');
    expect(await queue.getJobState(recordingJobId(lost.id))).toBe('unknown');
    // A node that beats keeps its calls, shipped or not.
    expect((await db.store.recordings.get(mine.id))!.status).toBe('recording');
    expect(await shared.getJobState(recordingJobId(mine.id))).toBe('unknown');

    // `callrec jobs retry` of a shipped spool also goes to the shared queue, whichever node held the call.
    await shared.remove(recordingJobId(lost.id));
    await db.store.recordings.update(lost.id, { status: 'failed', error: 'bucket away' });
    await retryRecording(db.store, queues, 't1', 'shipped-lost');
    expect(await shared.getJobState(recordingJobId(lost.id))).toBe('waiting');
    expect(await queues.queue('dead-node').getJobState(recordingJobId(lost.id))).toBe('unknown');
  });

  test("recoverSpools finalizes a dead call's shipped spool on this node when its file is on this disk: the file holds the segment never shipped", async () => {
    const spoolUrl = 'file:///spools';
    const here = await addRecording('shipped-here', 'recording', { nodeId: 'dead-node', spoolUrl });
    const report = await recoverSpools(db.store, queues, dataDir, {
      nodeId: SELF,
      isNodeAlive: async (id) => id !== 'dead-node',
    });
    expect(report.requeued.map((r) => r.callId)).toContain('shipped-here');
    expect(await queue.getJobState(recordingJobId(here.id))).toBe('waiting');
    expect(await queues.queue(null).getJobState(recordingJobId(here.id))).toBe('unknown');
  });
});
