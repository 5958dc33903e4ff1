import fs from 'node:fs/promises';
import type { Queue } from 'bullmq';
import { CallrecError } from './errors.js';
import { enqueueRecording, recordingJobId, type RecordingJobData } from './queue/recordings.js';
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
 * Adds the recording's job. The job id is fixed per recording, so BullMQ ignores the add while a job
 * with that id exists; a finished (failed or completed) one is removed first so this one runs.
 * A waiting, delayed or active job is left alone: the recording is already on its way.
 */
export async function requeueRecording(queue: Queue<RecordingJobData>, recording: Recording): Promise<void> {
  const jobId = recordingJobId(recording.id);
  const state = await queue.getJobState(jobId);
  if (state === 'failed' || state === 'completed') await queue.remove(jobId);
  await enqueueRecording(queue, { tenantId: recording.tenantId, callId: recording.callId, recordingId: recording.id });
}

/**
 * `callrec jobs retry`: a `failed` recording whose spool is still on disk goes back to
 * `processing` and its job is queued again. Throws `ERR_NOT_FOUND` (no recording),
 * `ERR_CONFLICT` (not failed) or `ERR_NO_SPOOL` (the spool is gone: nothing to retry from).
 */
export async function retryRecording(store: Store, queue: Queue<RecordingJobData>, tenantId: string, callId: string): Promise<Recording> {
  const recording = await store.recordings.getByCall(tenantId, callId);
  if (!recording) throw new CallrecError('ERR_NOT_FOUND', `call ${callId} of tenant ${tenantId} has no recording`);
  if (recording.status !== 'failed') throw new CallrecError('ERR_CONFLICT', `the recording of call ${callId} is ${recording.status}, not failed`);
  if (!(await spoolExists(recording))) {
    throw new CallrecError('ERR_NO_SPOOL', `the spool of call ${callId} (${recording.spoolPath ?? 'none'}) is not on this machine`);
  }
  const processing = (await store.recordings.update(recording.id, { status: 'processing', error: null }))!;
  await requeueRecording(queue, processing);
  return processing;
}
