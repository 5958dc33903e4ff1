import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { replayFixture } from '../../src/replay/client.js';
import { readFixture, type Fixture } from '../../src/replay/fixture.js';
import {
  startServerProcess,
  startTestServer,
  uniqueCallId,
  type ServerProcess,
  type TestServer,
} from '../helpers/server.js';

const FIXTURE = path.resolve(import.meta.dirname, '../../fixtures/twilio-fork-tones.jsonl');
const CALLS_PER_NODE = 20;

let fixture: Fixture;
let primary: TestServer;
beforeAll(async () => {
  fixture = await readFixture(FIXTURE);
  // The cluster's database, Redis prefix, bucket and keys; this in-process node takes shared work only.
  primary = await startTestServer({ db: 'postgres' });
  await primary.agent('support', { enabled: true, auto_record: true, consent_prompt: false, dual_channel: true });
});
afterAll(() => primary.close());

/** Streams `count` calls at a node, a few at a time; resolves with their ids. */
async function streamCalls(
  node: { wsUrl: string },
  label: string,
  count: number,
  speed: 'max' | 'realtime' = 'max',
): Promise<string[]> {
  const ids = Array.from({ length: count }, () => uniqueCallId(label));
  for (let i = 0; i < ids.length; i += 5) {
    await Promise.all(
      ids.slice(i, i + 5).map((callId) =>
        replayFixture(fixture, {
          url: `${node.wsUrl}/media/twilio`,
          agentId: 'support',
          token: primary.key,
          callId,
          speed,
        }),
      ),
    );
  }
  return ids;
}

/**
 * Two media nodes, each with a disk of its own mounted at the same path (as two pods have), and
 * a worker-only node. With one cluster-wide queue, a node's worker took the other's jobs and
 * failed ENOENT on a spool it could not see.
 */
test('two media nodes with their own disks and a worker node: every recording is ready on its first attempt, exact', async () => {
  const dataDir = path.join(os.tmpdir(), `callrec-pod-${process.pid}`);
  const nodes: ServerProcess[] = [];
  try {
    nodes.push(await startServerProcess(primary, { dataDir, privateDisk: true }));
    nodes.push(await startServerProcess(primary, { dataDir, privateDisk: true }));
    nodes.push(await startServerProcess(primary, { command: 'worker' }));
    const ids = (
      await Promise.all(nodes.slice(0, 2).map((node, n) => streamCalls(node, `pod${n}`, CALLS_PER_NODE)))
    ).flat();
    // Nothing of either pod's disk is on the host's.
    expect(await fs.readdir(dataDir)).toEqual([]);
    for (const callId of ids) {
      const recording = await primary.recording(callId, 60_000);
      expect(recording).toMatchObject({
        status: 'ready',
        attempts: 1,
        error: null,
        durationMs: fixture.meta.durationMs,
      });
    }
  } finally {
    for (const node of nodes) await node.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
});

/**
 * A supervisor restarts a killed node at once on the same disk. Its calls' recordings must not
 * wait for the dead process's heartbeat to expire: the node is its DATA_DIR, so the new process
 * knows the calls for its own and has queued them before it answers its first request. Each
 * says what it lost: the audio between its spool's end and the node's last heartbeat, at most
 * about a second of the call (the spool is written every 500 ms, behind a 300 ms jitter window).
 */
test('kill -9 mid-call and an immediate restart on the same DATA_DIR: the calls are recovered before the node serves again, each missing at most ~1 s, listed', async () => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-restart-'));
  let node = await startServerProcess(primary, { dataDir });
  try {
    const ids = Array.from({ length: 3 }, () => uniqueCallId('killed'));
    const calls = ids.map((callId) =>
      replayFixture(fixture, {
        url: `${node.wsUrl}/media/twilio`,
        agentId: 'support',
        token: primary.key,
        callId,
        speed: 'realtime',
      }),
    );
    // Let every call get well under way (the spool is written once a second).
    for (const callId of ids) {
      for (let tries = 0; ; tries++) {
        const recording = await primary.server.store.recordings.getByCall(primary.tenantId, callId);
        if (
          recording?.spoolPath &&
          (await fs.stat(recording.spoolPath).then(
            (s) => s.size > 44 + 2 * 16_000,
            () => false,
          ))
        )
          break;
        if (tries > 200) throw new Error(`call ${callId} never spooled`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    const killedAt = Date.now();
    await node.kill();
    await Promise.all(calls);
    node = await startServerProcess(primary, { dataDir });
    for (const callId of ids) {
      expect(await primary.server.store.calls.get(primary.tenantId, callId)).toMatchObject({
        status: 'ended',
        endReason: 'media node lost',
      });
      expect(['processing', 'ready']).toContain(
        (await primary.server.store.recordings.getByCall(primary.tenantId, callId))!.status,
      );
    }
    for (const callId of ids) {
      const recording = await primary.recording(callId);
      expect(recording.status).toBe('ready');
      expect(recording.durationMs).toBeGreaterThan(1000);
      expect(recording.durationMs).toBeLessThan(fixture.meta.durationMs);
      // The call ran (on the recording's clock) until the kill; the spool kept all but its last second.
      const ranMs = killedAt - Date.parse(recording.createdAt);
      expect(ranMs - recording.durationMs!).toBeLessThan(1100);
      expect(recording.complete).toBe(false);
      expect(recording.lostSpans).toEqual([
        { start_ms: recording.durationMs, end_ms: expect.any(Number), reason: 'media node lost' },
      ]);
      // It ends where the node was last known alive (its last heartbeat or spool write), never after the kill;
      // audio still in the jitter window at the spool's last write was never written, so it is never empty.
      const [lost] = recording.lostSpans;
      expect(lost.end_ms).toBeLessThanOrEqual(ranMs);
      expect(lost.end_ms).toBeGreaterThan(lost.start_ms);
    }
  } finally {
    await node.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  }
});
