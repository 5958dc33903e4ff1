import { Queue, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { CallrecError } from '../src/errors.js';
import type { Evidence } from '../src/evidence/index.js';
import type { Logger } from '../src/log.js';
import type { ObjectStore } from '../src/storage/types.js';
import type { Recording, Store } from '../src/store/index.js';
import { JOB_TIME_LIMIT_DEFAULT_MS } from '../src/config.js';
import { withinTime } from './time-limit.js';
import { emitRecordingEvent, type WebhookContext } from '../src/webhooks/index.js';

/** BullMQ queue of periodic housekeeping (retention). */
export const MAINTENANCE_QUEUE = 'maintenance';
const RETENTION_SCHEDULER = 'retention';
const PAGE_SIZE = 100;

export interface RetentionDeps {
  store: Store;
  /** The object store a recording lives in (the server's, or its tenant's own bucket). */
  storageFor: (recording: Recording) => Pick<ObjectStore, 'delete'> | Promise<Pick<ObjectStore, 'delete'>>;
  /** Sends `recording.deleted`; null when webhooks are off (tools, tests). */
  webhooks: WebhookContext | null;
  log: Logger;
  /** Where each deletion's signed tombstone goes (the tenant's ledger). */
  evidence: Evidence;
  /** The clock retention judges age by (injectable for tests). */
  now: () => Date;
}

export interface RetentionResult {
  deleted: number;
  /** Expired recordings that could not be deleted this run (a hold placed meanwhile, a storage error). */
  failed: number;
}

export function createMaintenanceQueue(connection: ConnectionOptions, prefix: string): Queue {
  return new Queue(MAINTENANCE_QUEUE, {
    connection,
    prefix,
    defaultJobOptions: { removeOnComplete: 100, removeOnFail: 100 },
  });
}

/** Runs retention every `everyMs` (and once now); calling it again just updates the interval. */
export async function scheduleRetention(queue: Queue, everyMs: number): Promise<void> {
  await queue.upsertJobScheduler(RETENTION_SCHEDULER, { every: everyMs }, { name: RETENTION_SCHEDULER });
}

/** How often every node checks that the retention schedule is still in Redis. */
const SCHEDULE_CHECK_MS = 5 * 60_000;

/**
 * Schedules retention and keeps it scheduled: a Redis restarted empty forgets repeatable
 * jobs, so the schedule is re-created when found missing, checked on every reconnect and every
 * `checkEveryMs` (the reconnect may be missed when Redis comes back between two connections).
 */
export async function keepRetentionScheduled(
  queue: Queue,
  everyMs: number,
  opts: { log: Logger; checkEveryMs?: number },
): Promise<{ stop(): void }> {
  const { log } = opts;
  await scheduleRetention(queue, everyMs);
  const ensure = () => {
    queue
      .getJobScheduler(RETENTION_SCHEDULER)
      .then(async (scheduler) => {
        if (scheduler) return;
        await scheduleRetention(queue, everyMs);
        log.warn('the retention schedule was missing from Redis (restarted empty?): re-created it');
      })
      .catch((err: Error) => log.warn({ err }, 'could not check the retention schedule; will try again'));
  };
  const connection = queue.getBackend();
  connection.on('ready', ensure);
  const timer = setInterval(ensure, opts.checkEveryMs ?? SCHEDULE_CHECK_MS).unref();
  return {
    stop() {
      clearInterval(timer);
      connection.off('ready', ensure);
    },
  };
}

/**
 * Deletes every recording past its `storage_days` (SPEC §6), oldest first, page by page:
 * each through `recordings.delete`, which re-checks the legal hold in its transaction and
 * leaves a tombstone by `retention`; then `recording.deleted` is emitted. A recording that
 * fails stays expired (or `deleting`, which recovery finishes) and is tried again on the next
 * run. After a tenant's bucket fails, the rest of that tenant's are left to the next run too: a
 * bucket that never answers costs one timeout per run, not one per recording, and the other
 * tenants' retention goes on.
 */
export function createRetentionProcessor(deps: RetentionDeps) {
  const { store, storageFor, webhooks, evidence, log, now } = deps;
  return async function runRetention(_job?: Job): Promise<RetentionResult> {
    const cutoff = now();
    const failedIds = new Set<string>();
    const failingTenants = new Set<string>();
    let deleted = 0;
    for (;;) {
      // Deleted ones leave the list, failed ones stay: the page is fetched with room for them.
      const page = (await store.recordings.listExpired(cutoff, failedIds.size + PAGE_SIZE)).filter(
        (r) => !failedIds.has(r.id),
      );
      if (page.length === 0) break;
      for (const recording of page) {
        if (failingTenants.has(recording.tenantId)) {
          failedIds.add(recording.id);
          continue;
        }
        try {
          const objects = await storageFor(recording);
          const result = await store.recordings.delete(recording.tenantId, recording.callId, objects, {
            deletedBy: 'retention',
            reason: 'retention',
          });
          deleted++;
          await evidence.recordDeletion(result.tombstone);
          if (webhooks) await emitRecordingEvent(webhooks, 'recording.deleted', result.recording);
        } catch (err) {
          failedIds.add(recording.id);
          // A hold placed since the listing is retention working as meant, not an error.
          const held = err instanceof CallrecError && err.code === 'ERR_LEGAL_HOLD';
          if (!held) failingTenants.add(recording.tenantId);
          log[held ? 'info' : 'warn'](
            { recordingId: recording.id, callId: recording.callId, err },
            'retention skipped a recording',
          );
        }
      }
    }
    if (deleted > 0 || failedIds.size > 0) log.info({ deleted, failed: failedIds.size }, 'retention run');
    return { deleted, failed: failedIds.size };
  };
}

/** Runs the maintenance queue's jobs (retention). */
export function startRetentionWorker(
  deps: RetentionDeps,
  opts: { connection: ConnectionOptions; prefix: string; timeLimitMs?: number },
): Worker {
  // A run stopped at the limit leaves the rest expired: the next run (hourly) goes on.
  const run = withinTime(opts.timeLimitMs ?? JOB_TIME_LIMIT_DEFAULT_MS, createRetentionProcessor(deps));
  const worker = new Worker(MAINTENANCE_QUEUE, run, {
    connection: opts.connection,
    prefix: opts.prefix,
    concurrency: 1,
  });
  worker.on('error', (err) => deps.log.error({ err }, 'maintenance worker error'));
  return worker;
}
