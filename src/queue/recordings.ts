import { Queue, type ConnectionOptions } from 'bullmq';

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
 * The job id is the recording's, so finalizing it twice (a retried hang-up, two nodes racing)
 * adds one job, while a call id used again (a database reset, another deployment on the same
 * Redis prefix) is a new recording with a job of its own: BullMQ keeps finished jobs for a day,
 * and one keyed by call would swallow the new recording's add.
 */
export function recordingJobId(recordingId: string): string {
  return `recording-${recordingId}`;
}

export function createRecordingsQueue(connection: ConnectionOptions, prefix: string): Queue<RecordingJobData> {
  return new Queue<RecordingJobData>(RECORDINGS_QUEUE, { connection, prefix, defaultJobOptions: RECORDING_JOB_OPTIONS });
}

export function enqueueRecording(queue: Queue<RecordingJobData>, data: RecordingJobData): Promise<unknown> {
  return queue.add('finalize', data, { jobId: recordingJobId(data.recordingId) });
}
