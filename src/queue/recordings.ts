import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, type ConnectionOptions } from 'bullmq';
import type { Logger } from '../log.js';

/**
 * BullMQ queues that turn finished spools into stored recordings (SPEC §6). A spool on a media
 * node's local disk can only be finalized there, so its job goes to that node's own queue
 * (`recordings.node.<id>`), which only that node (or its restart on the same DATA_DIR) works;
 * a spool in shared object storage goes to the shared queue (`recordings`) that every worker
 * takes from. One cluster-wide queue sent jobs to workers that could not open the file.
 */
export const RECORDINGS_QUEUE = 'recordings';

/** The queue of jobs whose spool is on `nodeId`'s disk, or the shared queue when `nodeId` is null. */
export function recordingsQueueName(nodeId: string | null): string {
  return nodeId === null ? RECORDINGS_QUEUE : `${RECORDINGS_QUEUE}.node.${nodeId}`;
}

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
 * The job id is the recording's, so finalizing it twice (a retried hang-up, two nodes racing)
 * adds one job, while a call id used again (a database reset, another deployment on the same
 * Redis prefix) is a new recording with a job of its own: BullMQ keeps finished jobs for a day,
 * and one keyed by call would swallow the new recording's add.
 */
export function recordingJobId(recordingId: string): string {
  return `recording-${recordingId}`;
}

/** The recordings queues of one Redis prefix, opened as they are first needed. */
export class RecordingQueues {
  readonly #connection: ConnectionOptions;
  readonly #prefix: string;
  readonly #queues = new Map<string, Queue<RecordingJobData>>();
  readonly #onError: (err: Error, queue: string) => void;

  constructor(connection: ConnectionOptions, prefix: string, onError: (err: Error, queue: string) => void = () => {}) {
    this.#connection = connection;
    this.#prefix = prefix;
    this.#onError = onError;
  }

  /** The queue for spools on `nodeId`'s disk (null: in shared storage). */
  queue(nodeId: string | null): Queue<RecordingJobData> {
    const name = recordingsQueueName(nodeId);
    let queue = this.#queues.get(name);
    if (!queue) {
      queue = new Queue<RecordingJobData>(name, {
        connection: this.#connection,
        prefix: this.#prefix,
        defaultJobOptions: RECORDING_JOB_OPTIONS,
      });
      queue.on('error', (err) => this.#onError(err, name));
      this.#queues.set(name, queue);
    }
    return queue;
  }

  /** Adds the recording's job (once: the job id is the recording's) to the queue its spool's place asks for. */
  add(data: RecordingJobData, spoolNode: string | null): Promise<unknown> {
    return this.queue(spoolNode).add('finalize', data, { jobId: recordingJobId(data.recordingId) });
  }

  async close(): Promise<void> {
    await Promise.all([...this.#queues.values()].map((queue) => queue.close()));
    this.#queues.clear();
  }
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
 * job id is fixed per recording), so an attempt that timed out and later went through does no harm.
 */
export class RecordingEnqueuer {
  readonly #queues: RecordingQueues;
  readonly #opts: RecordingEnqueuerOptions;
  readonly #stop = new AbortController();

  constructor(queues: RecordingQueues, opts: RecordingEnqueuerOptions) {
    this.#queues = queues;
    this.#opts = opts;
  }

  /**
   * Resolves once the job is queued, or, after `close()`, once an attempt has failed: the
   * recording then stays `processing` and start-up recovery queues it from its spool.
   */
  async add(job: RecordingJobData, spoolNode: string | null): Promise<void> {
    const { log, waiting, retry = { firstMs: RETRY_FIRST_MS, maxMs: RETRY_MAX_MS } } = this.#opts;
    let delayMs = retry.firstMs;
    for (let attempt = 1; ; attempt++) {
      try {
        await attemptWithin(this.#queues.add(job, spoolNode), ATTEMPT_TIMEOUT_MS);
        if (attempt > 1) {
          waiting.dec();
          log.info(
            { tenantId: job.tenantId, callId: job.callId, recordingId: job.recordingId, attempts: attempt },
            'recording queued after Redis came back',
          );
        }
        return;
      } catch (err) {
        if (attempt === 1) waiting.inc();
        if (this.#stop.signal.aborted) {
          waiting.dec();
          log.warn(
            { tenantId: job.tenantId, callId: job.callId, recordingId: job.recordingId, err },
            'Redis unavailable at shutdown: the recording stays processing and is queued from its spool at next start',
          );
          return;
        }
        log.warn(
          {
            tenantId: job.tenantId,
            callId: job.callId,
            recordingId: job.recordingId,
            attempt,
            retryInMs: delayMs,
            err,
          },
          'cannot queue recording: Redis unavailable, retrying',
        );
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

/** The attempt, or a rejection after `ms`; the timer goes with the attempt (a retry loop through an outage would otherwise pile them up). */
async function attemptWithin(attempt: Promise<unknown>, ms: number): Promise<unknown> {
  const settled = new AbortController();
  const timeout = sleep(ms, undefined, { signal: settled.signal }).then(() => {
    throw new Error(`no answer from Redis within ${ms} ms`);
  });
  try {
    return await Promise.race([attempt, timeout]);
  } finally {
    settled.abort();
  }
}
