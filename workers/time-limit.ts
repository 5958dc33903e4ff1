import type { Job } from 'bullmq';
import { CallrecError } from '../src/errors.js';

/**
 * A job that runs past `ms` fails with `ERR_JOB_TIME_LIMIT` (BullMQ then retries it with backoff).
 * Each remote call in a job has its own timeouts, but a job is many of them: without a bound for
 * the whole, a bucket that answers just inside every timeout could hold a worker slot for hours.
 * The job's work cannot be cancelled from outside and finishes in the background; its slot (and
 * its tenant's share, `sharedFairly`) is free at once. Jobs are idempotent (a fixed object key, a
 * recording already ready is left alone), so a retry overlapping that tail is harmless.
 */
export function withinTime<T, R>(ms: number, process: (job: Job<T>) => Promise<R>): (job: Job<T>) => Promise<R> {
  return (job) => {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () =>
          reject(new CallrecError('ERR_JOB_TIME_LIMIT', `the job ran past ${ms / 1000} s (JOB_TIME_LIMIT_SECONDS)`)),
        ms,
      );
    });
    return Promise.race([process(job), limit]).finally(() => clearTimeout(timer));
  };
}
