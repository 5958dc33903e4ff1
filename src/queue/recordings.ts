import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, type ConnectionOptions } from 'bullmq';
import type { Logger } from '../log.js';

/** BullMQ queue that turns finished spools into stored recordings (SPEC §6). */
export const RECORDINGS_QUEUE = 'recordings';

export interface RecordingJobData {
  tenantId: string;
  callId: string;
  recordingId: string;
}

/** Retries with exponential backoff: 2 s, 4 s, 8 s, 16 s. */
export const RECORDING_JOB_OPTIONS = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 2000 },
  removeOnComplete: { age: 24 * 3600, count: 10_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
} as const;

/**
 * The job id is derived from the call, so finalizing a call twice (a retried hang-up, two nodes
 * racing) adds one job. BullMQ forbids ':' in custom ids; tenant and call ids may hold one.
 */
export function recordingJobId(tenantId: string, callId: string): string {
  return `${encodeURIComponent(tenantId)}/${encodeURIComponent(callId)}`.replaceAll(':', '%3A');
}

export function createRecordingsQueue(connection: ConnectionOptions, prefix: string): Queue<RecordingJobData> {
  return new Queue<RecordingJobData>(RECORDINGS_QUEUE, { connection, prefix, defaultJobOptions: RECORDING_JOB_OPTIONS });
}

export function enqueueRecording(queue: Queue<RecordingJobData>, data: RecordingJobData): Promise<unknown> {
  return queue.add('finalize', data, { jobId: recordingJobId(data.tenantId, data.callId) });
}

/** How long one attempt to add a job may take before it counts as failed (ioredis would wait minutes). */
const ATTEMPT_TIMEOUT_MS = 5_000;
/** Backoff between attempts: doubling from the first, capped. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 30_000;

export interface RecordingEnqueuerOptions {
  log: Logger;
  /** Counts the recordings waiting for Redis (a gauge on `/metrics`). */
  waiting: { inc(): void; dec(): void };
  /** Backoff bounds, ms (tests shorten them). */
  retry?: { firstMs: number; maxMs: number };
}

/**
 * Queues finished recordings for the workers through Redis outages of any length: an add that
 * fails is tried again with capped backoff until Redis takes it, while the spool on disk and
 * the recording's `processing` status are the durable record. Adding twice is harmless (the
 * job id is fixed per call), so an attempt that timed out and later went through does no harm.
 */
export class RecordingEnqueuer {
  readonly #queue: Queue<RecordingJobData>;
  readonly #opts: RecordingEnqueuerOptions;
  readonly #stop = new AbortController();

  constructor(queue: Queue<RecordingJobData>, opts: RecordingEnqueuerOptions) {
    this.#queue = queue;
    this.#opts = opts;
  }

  /**
   * Resolves once the job is queued, or, after `close()`, once an attempt has failed: the
   * recording then stays `processing` and start-up recovery queues it from its spool.
   */
  async add(job: RecordingJobData): Promise<void> {
    const { log, waiting, retry = { firstMs: RETRY_FIRST_MS, maxMs: RETRY_MAX_MS } } = this.#opts;
    let delayMs = retry.firstMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await attemptWithin(enqueueRecording(this.#queue, job), ATTEMPT_TIMEOUT_MS);
        if (attempt > 1) {
          waiting.dec();
          log.info({ callId: job.callId, recordingId: job.recordingId, attempts: attempt }, 'recording queued after Redis came back');
        }
        return;
      } catch (err) {
        if (attempt === 1) waiting.inc();
        if (this.#stop.signal.aborted) {
          waiting.dec();
          log.warn({ callId: job.callId, recordingId: job.recordingId, err: (err as Error).message }, 'Redis unavailable at shutdown: the recording stays processing and is queued from its spool at next start');
          return;
        }
        log.warn({ callId: job.callId, recordingId: job.recordingId, attempt, retryInMs: delayMs, err: (err as Error).message }, 'cannot queue recording: Redis unavailable, retrying');
      }
      await sleep(delayMs, undefined, { signal: this.#stop.signal }).catch(() => {});
      delayMs = Math.min(delayMs * 2, retry.maxMs);
    }
  }

  /** Stops retrying: adds under way make one more attempt each and then give up (see `add`). */
  close(): void {
    this.#stop.abort();
  }
}

function attemptWithin(attempt: Promise<unknown>, ms: number): Promise<unknown> {
  const timer = sleep(ms, undefined, { ref: false }).then(() => {
    throw new Error(`no answer from Redis within ${ms} ms`);
  });
  return Promise.race([attempt, timer]);
}
