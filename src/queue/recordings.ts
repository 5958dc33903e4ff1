import { Queue, type ConnectionOptions } from 'bullmq';

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
      queue = new Queue<RecordingJobData>(name, { connection: this.#connection, prefix: this.#prefix, defaultJobOptions: RECORDING_JOB_OPTIONS });
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
