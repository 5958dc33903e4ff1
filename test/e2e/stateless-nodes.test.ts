import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { RecordingQueues, recordingJobId } from '../../src/queue/recordings.js';
import { spoolIdOf, spoolObjects } from '../../src/recording/shared-spool.js';
import { replayFixture } from '../../src/replay/client.js';
import { readFixture, type Fixture } from '../../src/replay/fixture.js';
import { REDIS_URL } from '../helpers/redis.js';
import {
  startServerProcess,
  startTestServer,
  uniqueCallId,
  type ServerProcess,
  type TestServer,
} from '../helpers/server.js';

/*
 * Stateless media nodes (issue 12): with SPOOL_URL set a call's spool is shipped to object storage
 * as it runs, so a `callrec worker` finalizes it, and a media node that dies (its disk with it)
 * loses at most one segment plus a second of each call.
 */

const FIXTURE = path.resolve(import.meta.dirname, '../../fixtures/twilio-fork-tones.jsonl');
/** One-second segments, so a 6-second call ships several before it ends. */
const SEGMENT_SECONDS = 1;

let fixture: Fixture;
let primary: TestServer;
let worker: ServerProcess;
let queues: RecordingQueues;
/** The bucket SPOOL_URL names: a directory every node sees (each node's DATA_DIR is its own). */
let spoolDir: string;
let spoolEnv: Record<string, string>;

beforeAll(async () => {
  fixture = await readFixture(FIXTURE);
  spoolDir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-spool-bucket-'));
  spoolEnv = {
    SPOOL_URL: pathToFileURL(spoolDir).href,
    SPOOL_SEGMENT_SECONDS: String(SEGMENT_SECONDS),
    RECOVERY_INTERVAL_SECONDS: '2',
  };
  // The cluster's database, Redis prefix and keys. It takes no shared jobs: only the worker node
  // can finalize a shipped spool here, and it sweeps for dead nodes every 2 s.
  primary = await startTestServer({ db: 'postgres', workers: false, env: { RECOVERY_INTERVAL_SECONDS: '2' } });
  await primary.agent('support', { enabled: true, auto_record: true, consent_prompt: false, dual_channel: true });
  worker = await startServerProcess(primary, { command: 'worker' });
  queues = new RecordingQueues({ url: REDIS_URL }, primary.cluster.prefix);
}, 60_000);
afterAll(async () => {
  await queues?.close();
  await worker?.close();
  await primary?.close();
  await fs.rm(spoolDir, { recursive: true, force: true });
});

async function until(what: string, ok: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

/** Files left in the spool bucket. */
async function bucketFiles(): Promise<string[]> {
  return (await fs.readdir(spoolDir, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => e.name);
}

test('a call on a media node with a private disk is finalized by a worker node from the shipped spool: exact, and nothing left in the bucket', async () => {
  const dataDir = path.join(os.tmpdir(), `callrec-stateless-${process.pid}`);
  const media = await startServerProcess(primary, {
    dataDir,
    privateDisk: true,
    env: spoolEnv,
    args: ['--no-workers'],
  });
  try {
    const ids = Array.from({ length: 3 }, () => uniqueCallId('shipped'));
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
    expect(await fs.readdir(dataDir)).toEqual([]); // the media node's disk is not the host's
    for (const callId of ids) {
      const recording = await primary.recording(callId, 60_000);
      expect(recording).toMatchObject({
        status: 'ready',
        attempts: 1,
        error: null,
        durationMs: fixture.meta.durationMs,
        complete: true,
        lostSpans: [],
        spoolUrl: pathToFileURL(spoolDir).href,
      });
      // Finalized from the shared queue, which only the worker node takes (the job completes just
      // after the recording is marked ready and its spool removed).
      await until(
        'the shared job completes',
        async () => (await queues.queue(null).getJobState(recordingJobId(recording.id))) === 'completed',
      );
    }
    await until('the shipped spools are deleted', async () => (await bucketFiles()).length === 0);
  } finally {
    await media.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}, 120_000);

test('kill -9 of a media node mid-call, its disk gone: every call is recovered within a minute, incomplete by at most a segment plus a second, saying so', async () => {
  const dataDir = path.join(os.tmpdir(), `callrec-stateless-killed-${process.pid}`);
  const media = await startServerProcess(primary, { dataDir, privateDisk: true, env: spoolEnv });
  try {
    const ids = Array.from({ length: 4 }, () => uniqueCallId('killed'));
    const calls = ids.map((callId) =>
      replayFixture(fixture, {
        url: `${media.wsUrl}/media/twilio`,
        agentId: 'support',
        token: primary.key,
        callId,
        speed: 'realtime',
      }).catch(() => null),
    );
    // Each call well under way: two segments shipped.
    for (const callId of ids) {
      await until(`call ${callId} shipped two segments`, async () => {
        const recording = await primary.server.store.recordings.getByCall(primary.tenantId, callId);
        return recording?.spoolPath
          ? fs.stat(path.join(spoolDir, spoolObjects.segment(spoolIdOf(recording.spoolPath), 2))).then(
              () => true,
              () => false,
            )
          : false;
      });
    }
    await media.kill();
    const killedAt = Date.now();
    await Promise.all(calls);
    for (const callId of ids) {
      const before = (await primary.server.store.recordings.getByCall(primary.tenantId, callId))!;
      // Audio the node had received when it died (the stream started with the recording).
      const heardMs = killedAt - Date.parse(before.createdAt);
      const recording = await primary.recording(callId, 60_000 - (Date.now() - killedAt));
      expect(recording).toMatchObject({ status: 'ready', error: null, complete: false });
      expect(await primary.server.store.calls.get(primary.tenantId, callId)).toMatchObject({
        status: 'ended',
        endReason: 'media node lost',
      });
      expect(recording.durationMs).toBeGreaterThanOrEqual(2 * SEGMENT_SECONDS * 1000);
      expect(recording.durationMs).toBeLessThan(fixture.meta.durationMs);
      // At most one segment plus a second lost; 500 ms more for the jitter window and an upload in flight.
      expect(recording.durationMs).toBeGreaterThanOrEqual(heardMs - SEGMENT_SECONDS * 1000 - 1000 - 500);
      expect(recording.lostSpans).toEqual([
        { start_ms: recording.durationMs, end_ms: expect.any(Number), reason: 'media node lost' },
      ]);
      // The span ends when the node was last seen alive: it beats every second.
      expect(recording.lostSpans[0].end_ms).toBeGreaterThanOrEqual(recording.durationMs!);
      expect(recording.lostSpans[0].end_ms).toBeGreaterThan(heardMs - 1000 - 500);
      expect(recording.lostSpans[0].end_ms).toBeLessThanOrEqual(heardMs);
      const view = (await (await primary.api(`/api/calls/${callId}`)).json()) as {
        recording: { complete: boolean; lost_spans: unknown[] };
      };
      expect(view.recording).toMatchObject({ complete: false, lost_spans: recording.lostSpans });
    }
    await until('the shipped spools are deleted', async () => (await bucketFiles()).length === 0);
  } finally {
    await media.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
}, 120_000);

/** `/metrics` of a node (a media node, or a worker's listener): each sample's value by its series. */
async function scrape(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return new Map([...text.matchAll(/^([a-z_]+(?:\{[^}]*\})?) (\S+)$/gm)].map((m) => [m[1], Number(m[2])]));
}

/** Bytes of shipped segments in the spool bucket. */
async function segmentBytes(): Promise<number> {
  const entries = await fs.readdir(spoolDir, { recursive: true, withFileTypes: true });
  const sizes = await Promise.all(
    entries
      .filter((e) => e.isFile() && e.name.endsWith('.pcm.enc'))
      .map(async (e) => (await fs.stat(path.join(e.parentPath, e.name))).size),
  );
  return sizes.reduce((a, b) => a + b, 0);
}

test('a node killed mid-call and restarted on the same disk deletes its local copies of the spools finalized elsewhere; the worker serves its metrics and readiness', async () => {
  // Its disk survives the restart, but no other node sees it at its DATA_DIR.
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-stateless-restart-'));
  const disk = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-stateless-disk-'));
  const node = { dataDir, privateDisk: true, disk, env: spoolEnv };
  let media = await startServerProcess(primary, node);
  try {
    expect(await (await fetch(`${worker.url}/readyz`)).json()).toEqual({
      status: 'ok',
      checks: { database: true, redis: true, storage: true },
    });
    const ids = Array.from({ length: 2 }, () => uniqueCallId('restarted'));
    const calls = ids.map((callId) =>
      replayFixture(fixture, {
        url: `${media.wsUrl}/media/twilio`,
        agentId: 'support',
        token: primary.key,
        callId,
        speed: 'realtime',
      }).catch(() => null),
    );
    const spoolPaths: string[] = [];
    for (const callId of ids) {
      await until(`call ${callId} shipped two segments`, async () => {
        const recording = await primary.server.store.recordings.getByCall(primary.tenantId, callId);
        return recording?.spoolPath
          ? fs.stat(path.join(spoolDir, spoolObjects.segment(spoolIdOf(recording.spoolPath), 2))).then(
              () => true,
              () => false,
            )
          : false;
      });
      spoolPaths.push((await primary.server.store.recordings.getByCall(primary.tenantId, callId))!.spoolPath!);
    }
    await media.kill();
    await Promise.all(calls);
    // What the dead node shipped is in the bucket until it is finalized, and the cluster-wide gauge says how much.
    const inBucket = await segmentBytes();
    expect(inBucket).toBeGreaterThan(0);
    expect((await scrape(worker.url)).get('callrec_spool_bytes_in_storage')).toBe(inBucket);

    // Another node notices (heartbeats) and the worker finalizes from the bucket; the dead node's disk still holds its copies.
    for (const callId of ids)
      expect(await primary.recording(callId, 60_000)).toMatchObject({ status: 'ready', complete: false });
    const onDisk = spoolPaths.map((file) => path.join(disk, path.relative(dataDir, file)));
    for (const file of onDisk) await expect(fs.stat(file)).resolves.toBeTruthy();
    await until('the shipped spools are deleted', async () => (await bucketFiles()).length === 0);
    const worked = await scrape(worker.url);
    expect(worked.get('callrec_spool_bytes_in_storage')).toBe(0);
    expect(worked.get('callrec_recording_jobs_total{outcome="ready"}')).toBeGreaterThanOrEqual(2);
    expect(worked.get('callrec_recording_job_retries_total{by="backoff"}')).toBe(0);
    // A worker beats no heartbeat: no timestamp series (a 0 would read as a heartbeat in 1970).
    expect(worked.has('callrec_node_heartbeat_timestamp_seconds')).toBe(false);

    // Back on the same disk: its start-up recovery finds the files, named by stored recordings, and deletes them.
    media = await startServerProcess(primary, node);
    for (const file of onDisk) await expect(fs.stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await fs.readdir(path.join(disk, 'spool'))).toEqual([]);
  } finally {
    await media.close();
    await fs.rm(dataDir, { recursive: true, force: true });
    await fs.rm(disk, { recursive: true, force: true });
  }
}, 120_000);
