import { Worker, type ConnectionOptions } from 'bullmq';
import { RECORDINGS_QUEUE, type RecordingJobData } from '../src/queue/recordings.js';
import { createRecordingProcessor, recordFailure, type RecordingProcessorDeps } from './recording.js';

export interface WorkerOptions {
  connection: ConnectionOptions;
  prefix: string;
  concurrency?: number;
}

/** Starts the BullMQ workers (under `callrec serve` in-process, or alone under `callrec worker`). */
export function startWorkers(deps: RecordingProcessorDeps, opts: WorkerOptions): { close(): Promise<void> } {
  const recordings = new Worker<RecordingJobData>(RECORDINGS_QUEUE, createRecordingProcessor(deps), {
    connection: opts.connection,
    prefix: opts.prefix,
    concurrency: opts.concurrency ?? 2,
  });
  recordings.on('failed', (job, err) => {
    if (!job) return;
    deps.log.warn({ jobId: job.id, attempt: job.attemptsMade, err: err.message }, 'recording job failed');
    recordFailure(deps.store, job, err).catch((e: Error) => deps.log.error({ err: e.message }, 'could not mark recording failed'));
  });
  recordings.on('error', (err) => deps.log.error({ err: err.message }, 'recordings worker error'));
  return { close: () => recordings.close() };
}
