import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { recordingJobId, RecordingEnqueuer, RecordingQueues } from '../../src/queue/recordings.js';
import { createMaintenanceQueue } from '../../workers/retention.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis.js';
import { testPrefix } from '../helpers/redis.js';
import { startTestServer } from '../helpers/server.js';

/** Polls `condition` until it holds (the test's own timeout bounds the wait). */
async function until(condition: () => Promise<boolean> | boolean): Promise<void> {
  while (!(await condition())) await sleep(50);
}

describe('Redis outages of any length', () => {
  let redis: PrivateRedis;
  beforeAll(async () => {
    redis = await startPrivateRedis();
  });
  afterAll(() => redis.stop());

  it('keeps queueing a finished recording until Redis is back, counting it as waiting meanwhile', async () => {
    // ioredis gives up on a command after `maxRetriesPerRequest` reconnects (20 by default,
    // about 3 minutes); 1 makes this outage "long" within the test.
    const queues = new RecordingQueues({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 1 }, testPrefix());
    const queue = queues.queue(null);
    const lines: string[] = [];
    const log = pino(
      { level: 'warn' },
      new Writable({
        write: (chunk: Buffer, _enc, done) => {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    let waiting = 0;
    const enqueuer = new RecordingEnqueuer(queues, {
      log,
      waiting: { inc: () => waiting++, dec: () => waiting-- },
      retry: { firstMs: 20, maxMs: 200 },
    });
    try {
      await queue.waitUntilReady();
      await redis.stop();
      const job = { tenantId: 't1', callId: 'CA-outage', recordingId: 'rec-1' };
      let settled = false;
      const added = enqueuer.add(job, null).finally(() => (settled = true));
      await until(() => lines.filter((line) => line.includes('retrying')).length >= 3);
      expect(settled).toBe(false);
      expect(waiting).toBe(1);

      await redis.start();
      await added;
      expect(waiting).toBe(0);
      expect(await queue.getJob(recordingJobId(job.recordingId))).toMatchObject({ data: job });
    } finally {
      enqueuer.close();
      await queues.close();
    }
  });

  it('answers /readyz promptly naming Redis while it is down, and re-creates the retention schedule when Redis comes back empty', async () => {
    const ts = await startTestServer({ env: { REDIS_URL: redis.url } });
    const maintenance = createMaintenanceQueue({ host: '127.0.0.1', port: redis.port }, ts.cluster.prefix);
    maintenance.on('error', () => {});
    try {
      expect(await maintenance.getJobScheduler('retention')).toBeDefined();
      await redis.stop();
      // A guard, not a measurement: before each check had a timeout, this request hung for as long as Redis was away.
      const res = await fetch(`${ts.server.url}/readyz`, { signal: AbortSignal.timeout(5_000) });
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({
        status: 'unavailable',
        failed: ['redis'],
        checks: { database: true, redis: false, storage: true },
      });

      await redis.start();
      await until(async () => (await fetch(`${ts.server.url}/readyz`)).status === 200);
      await until(async () => (await maintenance.getJobScheduler('retention')) !== undefined);
    } finally {
      await maintenance.close();
      await ts.close();
    }
  });
});
