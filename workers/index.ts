import { DelayedError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { errorCode } from '../src/errors.js';
import { Evidence } from '../src/evidence/index.js';
import type { MediaMetrics } from '../src/metrics.js';
import { recordingsQueueName, type RecordingJobData } from '../src/queue/recordings.js';
import {
  createRecordingProcessor,
  isLastFailure,
  recordFailure,
  type RecordingJobResult,
  type RecordingProcessorDeps,
} from './recording.js';
import { startRetentionWorker } from './retention.js';
import { JOB_TIME_LIMIT_DEFAULT_MS } from '../src/config.js';
import { withinTime } from './time-limit.js';
import { startWebhookWorker } from './webhooks.js';

export interface WorkerOptions {
  connection: ConnectionOptions;
  prefix: string;
  concurrency?: number;
  /** A media node's id: it finalizes the spools on its own disk (its own queue), which no other node can. */
  nodeId?: string;
  /** A recording or retention job running longer than this fails (and is retried); default `JOB_TIME_LIMIT_DEFAULT_MS`. */
  jobTimeLimitMs?: number;
  /** Where recording jobs are measured (the node's `/metrics`). */
  metrics?: Pick<
    MediaMetrics,
    'recordingJobs' | 'recordingJobSeconds' | 'encodeRealtimeFactor' | 'recordingBucketErrors' | 'recordingJobRetries'
  >;
}

/** How long a recording job waits before it is tried again, when its tenant already holds its share of this worker. */
const TENANT_BUSY_DELAY_MS = 1_000;

/**
 * At most `perTenant` of one tenant's jobs run at once in this worker; another of that tenant's is
 * put back, delayed (`TENANT_BUSY_DELAY_MS`), without spending an attempt (BullMQ's
 * `DelayedError`), its job id kept. So a tenant whose bucket never answers holds at most that
 * many slots, and the other tenants' recordings keep the rest.
 */
export function sharedFairly<T extends { tenantId: string }, R>(
  perTenant: number,
  process: (job: Job<T>) => Promise<R>,
): (job: Job<T>, token?: string) => Promise<R> {
  const running = new Map<string, number>();
  return async (job, token) => {
    const { tenantId } = job.data;
    const now = running.get(tenantId) ?? 0;
    if (now >= perTenant) {
      await job.moveToDelayed(Date.now() + TENANT_BUSY_DELAY_MS, token);
      throw new DelayedError();
    }
    running.set(tenantId, now + 1);
    try {
      return await process(job);
    } finally {
      const left = running.get(tenantId)! - 1;
      if (left === 0) running.delete(tenantId);
      else running.set(tenantId, left);
    }
  };
}

/**
 * Starts the BullMQ workers: under `callrec serve` in-process (its own spools and the shared
 * work), or under `callrec worker` (the shared work only): recordings
 * (encode → encrypt → upload), webhooks, and maintenance (retention).
 */
export function startWorkers(deps: RecordingProcessorDeps, opts: WorkerOptions): { close(): Promise<void> } {
  const { log } = deps;
  const concurrency = opts.concurrency ?? 2;
  const timeLimitMs = opts.jobTimeLimitMs ?? JOB_TIME_LIMIT_DEFAULT_MS;
  const processRecording = withinTime(timeLimitMs, createRecordingProcessor(deps));
  const spoolNodes = opts.nodeId === undefined ? [null] : [null, opts.nodeId];
  const workers: Array<{ close(): Promise<void> }> = spoolNodes.map((nodeId) => {
    // One slot per worker is always left to the other tenants.
    const worker = new Worker<RecordingJobData>(
      recordingsQueueName(nodeId),
      sharedFairly(Math.max(1, concurrency - 1), processRecording),
      {
        connection: opts.connection,
        prefix: opts.prefix,
        concurrency,
      },
    );
    const { metrics } = opts;
    const measure = (job: Job, outcome: string) => {
      const seconds = ((job.finishedOn ?? Date.now()) - (job.processedOn ?? Date.now())) / 1000;
      metrics?.recordingJobs.inc({ outcome });
      metrics?.recordingJobSeconds.observe({ outcome }, seconds);
      return seconds;
    };
    worker.on('completed', (job, result: RecordingJobResult | null) => {
      const seconds = measure(job, result ? 'ready' : 'skipped');
      if (result && seconds > 0) metrics?.encodeRealtimeFactor.observe(result.durationMs / 1000 / seconds);
    });
    worker.on('failed', (job, err) => {
      if (!job) return;
      const last = isLastFailure(job, err);
      measure(job, last ? 'failed' : 'retried');
      if (!last) metrics?.recordingJobRetries.inc({ by: 'backoff' });
      const code = errorCode(err);
      if (code === 'ERR_STORAGE_UNREACHABLE' || code === 'ERR_SPOOL_UNREACHABLE')
        metrics?.recordingBucketErrors.inc({ bucket: code === 'ERR_STORAGE_UNREACHABLE' ? 'storage' : 'spool' });
      const jobLog = log.child({
        tenantId: job.data.tenantId,
        callId: job.data.callId,
        recordingId: job.data.recordingId,
      });
      jobLog.warn({ jobId: job.id, attempt: job.attemptsMade, err }, 'recording job failed');
      recordFailure(deps, job, err).catch((e: Error) => jobLog.error({ err: e }, 'could not mark recording failed'));
    });
    worker.on('error', (err) => log.error({ err, queue: worker.name }, 'recordings worker error'));
    return worker;
  });
  workers.push(
    startWebhookWorker({ store: deps.store, keyring: deps.keyring, log, egress: deps.webhooks.egress }, opts),
  );
  workers.push(
    startRetentionWorker(
      {
        store: deps.store,
        storageFor: (recording) => deps.storage.forRecording(recording),
        webhooks: deps.webhooks,
        evidence: new Evidence(deps.store, deps.keyring),
        log,
        now: () => new Date(),
      },
      { ...opts, timeLimitMs },
    ),
  );
  return {
    async close() {
      await Promise.all(workers.map((worker) => worker.close()));
    },
  };
}
