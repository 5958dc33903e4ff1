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
