import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { CALL_RECORDING_DEFAULTS } from '../../src/agents/settings.js';
import { RecordingQueues } from '../../src/queue/recordings.js';
import { recoverSpools, SWEEP_BATCH, SweepBatches } from '../../src/recovery.js';
import { createTestStore, type TestStore } from '../helpers/db.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';

/**
 * The periodic recovery sweep with a large worker backlog: `processing` recordings whose spools
 * were shipped to a bucket (so each has a job to look for), on a Redis of the test's own so its
 * commands can be counted.
 */
describe('the recovery sweep with many processing recordings', () => {
  const SELF = 'this-node';
  let db: TestStore;
  let dataDir: string;
  let redis: PrivateRedis;
  let queues: RecordingQueues;
  let counter: Redis;

  beforeAll(async () => {
    db = await createTestStore('sqlite');
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'callrec-sweep-'));
    redis = await startPrivateRedis();
    queues = new RecordingQueues({ url: redis.url }, 'sweep');
    counter = new Redis(redis.url);
  });

  afterAll(async () => {
    counter.disconnect();
    await queues.close();
    await redis.stop();
    await db.cleanup();
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  /** `n` ended calls of tenant `tenantId` whose recordings wait, `processing`, with a shipped spool. */
  async function backlog(tenantId: string, n: number): Promise<string[]> {
    await db.store.tenants.ensure(tenantId, tenantId);
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const callId = `${tenantId}-${i}`;
      await db.store.calls.create({
        tenantId,
        id: callId,
        agentId: 'a',
        provider: 'twilio',
        mode: 'fork',
        sampleRate: 8000,
        legs: ['caller', 'agent'],
        settings: CALL_RECORDING_DEFAULTS,
        nodeId: 'gone',
      });
      await db.store.calls.update(tenantId, callId, { status: 'ended', endedAt: new Date().toISOString() });
      const rec = await db.store.recordings.create({
        tenantId,
        callId,
        format: 'wav',
        channels: 2,
        sampleRate: 8000,
        storageDays: 30,
        status: 'processing',
        spoolPath: path.join(dataDir, 'spool', `${randomUUID()}.wav`),
        spoolUrl: 'file:///shipped',
      });
      ids.push(rec.id);
    }
    return ids;
  }

  const sweep = (batches?: SweepBatches) =>
    recoverSpools(db.store, queues, dataDir, { nodeId: SELF, isNodeAlive: async () => false, batches });

  /** Redis commands a sweep sends. */
  async function commandsOf(run: () => Promise<unknown>): Promise<number> {
    const processed = async () => Number(/total_commands_processed:(\d+)/.exec(await counter.info('stats'))![1]);
    const before = await processed();
    await run();
    // Less the INFO command that read the count.
    return (await processed()) - before - 1;
  }

  test('periodic sweeps take the list a batch at a time, where the last stopped, and start over at its end', async () => {
    const ids = await backlog('rotating', 250);
    const batches = new SweepBatches(100);
    const seen: string[][] = [];
    for (let i = 0; i < 3; i++) seen.push((await sweep(batches)).requeued.map((r) => r.id));
    expect(seen.map((s) => s.length)).toEqual([100, 100, 50]);
    expect(seen.flat().sort()).toEqual([...ids].sort());
    // Round again: every job is waiting now, so nothing is added twice.
    expect((await sweep(batches)).requeued).toEqual([]);
  });

  test("with 10 000 processing recordings a periodic sweep's Redis work is one batch's, not one per recording", async () => {
    await backlog('big', 10_000);
    // At start every recording is checked (and here, each gets its job).
    const atStart = await sweep();
    expect(atStart.requeued.length).toBe(10_000);
    const full = await commandsOf(() => sweep());
    const batched = await commandsOf(() => sweep(new SweepBatches()));
    // Two tenants (the 250 above and these): a batch of each.
    expect(full).toBeGreaterThanOrEqual(10_000);
    expect(batched).toBeLessThanOrEqual((full / 10_250) * 2 * SWEEP_BATCH);
  }, 600_000);
});
