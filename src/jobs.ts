import fs from 'node:fs/promises';
import { CallrecError } from './errors.js';
import { recordingJobId, type RecordingQueues } from './queue/recordings.js';
import type { Recording, Store } from './store/index.js';

/** Whether the recording's spool file is on this machine's disk. */
export async function spoolExists(recording: Recording): Promise<boolean> {
  if (!recording.spoolPath) return false;
  try {
    return (await fs.stat(recording.spoolPath)).isFile();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * The node whose queue finalizes `recording`: none (the shared queue) for a spool shipped to
 * object storage, else `diskNode`, whose disk holds it.
 */
export function spoolNode(recording: Recording, diskNode: string | null): string | null {
  return recording.spoolUrl === null ? diskNode : null;
}

/**
 * Adds the recording's job; false when it is already on its way (a waiting, delayed or active
 * job). The job id is fixed per recording, so BullMQ would ignore the add while a job with that
 * id exists: a finished (failed or completed) one is removed first so this one runs.
 */
export async function requeueRecording(
  queues: RecordingQueues,
  recording: Recording,
  spoolNode: string | null,
): Promise<boolean> {
  const queue = queues.queue(spoolNode);
  const jobId = recordingJobId(recording.id);
  const state = await queue.getJobState(jobId);
  if (state !== 'unknown' && state !== 'failed' && state !== 'completed') return false;
  if (state !== 'unknown') await queue.remove(jobId);
  await queues.add({ tenantId: recording.tenantId, callId: recording.callId, recordingId: recording.id }, spoolNode);
  return true;
}

/**
 * `callrec jobs retry`, from any node: a `failed` recording that still has a spool goes back to
 * `processing` and its job is queued again: on the shared queue if the spool was shipped, else on
 * the queue of the node whose disk holds it (whose worker fails it with `ERR_NO_SPOOL` if the
 * spool is gone). Throws `ERR_NOT_FOUND`
 * (no recording), `ERR_CONFLICT` (not failed) or `ERR_NO_SPOOL` (it never kept one, or it was
 * deleted once stored).
 */
export async function retryRecording(
  store: Store,
  queues: RecordingQueues,
  tenantId: string,
  callId: string,
): Promise<Recording> {
  const recording = await store.recordings.getByCall(tenantId, callId);
  if (!recording) throw new CallrecError('ERR_NOT_FOUND', `call ${callId} of tenant ${tenantId} has no recording`);
  if (recording.status !== 'failed')
    throw new CallrecError('ERR_CONFLICT', `the recording of call ${callId} is ${recording.status}, not failed`);
  if (!recording.spoolPath)
    throw new CallrecError('ERR_NO_SPOOL', `the recording of call ${callId} has no spool to retry from`);
  const call = await store.calls.get(tenantId, callId);
  const processing = (await store.recordings.update(recording.id, { status: 'processing', error: null }))!;
  await requeueRecording(queues, processing, spoolNode(recording, call?.nodeId ?? null));
  return processing;
}
