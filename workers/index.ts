import { Worker, type ConnectionOptions } from 'bullmq';
import { RECORDINGS_QUEUE, type RecordingJobData } from '../src/queue/recordings.js';
import { createRecordingProcessor, recordFailure, type RecordingProcessorDeps } from './recording.js';
import { startRetentionWorker } from './retention.js';
import { startWebhookWorker } from './webhooks.js';

export interface WorkerOptions {
  connection: ConnectionOptions;
  prefix: string;
  concurrency?: number;
}

/**
 * Starts the BullMQ workers (under `callrec serve` in-process, or alone under `callrec worker`):
 * recordings (encode → encrypt → upload), webhooks, and maintenance (retention).
 */
export function startWorkers(deps: RecordingProcessorDeps, opts: WorkerOptions): { close(): Promise<void> } {
  const { log } = deps;
  const recordings = new Worker<RecordingJobData>(RECORDINGS_QUEUE, createRecordingProcessor(deps), {
    connection: opts.connection,
    prefix: opts.prefix,
    concurrency: opts.concurrency ?? 2,
  });
  recordings.on('failed', (job, err) => {
    if (!job) return;
    log.warn({ jobId: job.id, attempt: job.attemptsMade, err: err.message }, 'recording job failed');
    recordFailure(deps, job, err).catch((e: Error) => log.error({ err: e.message }, 'could not mark recording failed'));
  });
  recordings.on('error', (err) => log.error({ err: err.message }, 'recordings worker error'));
  const webhooks = startWebhookWorker({ store: deps.store, keyring: deps.keyring, log }, opts);
  const retention = startRetentionWorker(
    { store: deps.store, storageFor: (recording) => deps.storage.forRecording(recording), webhooks: deps.webhooks, log, now: () => new Date() },
    opts,
  );
  return {
    async close() {
      await Promise.all([recordings.close(), webhooks.close(), retention.close()]);
    },
  };
}
