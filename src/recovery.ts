import fs from 'node:fs/promises';
import path from 'node:path';
import type { Queue } from 'bullmq';
import { requeueRecording, spoolExists } from './jobs.js';
import type { Logger } from './log.js';
import type { RecordingJobData } from './queue/recordings.js';
import type { CallWithRecording, Recording, RecordingStatus, Store } from './store/index.js';

/** A spool written within this long may belong to a call still live on some node. */
export const STALE_SPOOL_MS = 2 * 60_000;

/** Statuses whose recording still has (or should have) a spool on disk. */
const SPOOLED: readonly RecordingStatus[] = ['recording', 'paused', 'processing', 'failed'];

export interface RecoveryReport {
  /** Recordings whose job was (re)added. */
  requeued: Recording[];
  /** Spool files under `$DATA_DIR/spool` no recording refers to; reported, never deleted. */
  orphanSpools: string[];
}

async function* recordingsIn(store: Store, tenantId: string, status: RecordingStatus): AsyncGenerator<CallWithRecording> {
  let cursor: string | undefined;
  do {
    const page = await store.calls.list(tenantId, { status }, cursor, 200);
    yield* page.items;
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
}

async function spoolAgeMs(recording: Recording, nowMs: number): Promise<number> {
  return nowMs - (await fs.stat(recording.spoolPath!)).mtimeMs;
}

/**
 * Start-up recovery: queues the job of every recording that was left half-way with its spool
 * on this machine: `processing` ones (a worker died), `recording`/`paused` ones whose call has
 * ended or whose node has no heartbeat (`isNodeAlive`), and `recording` ones whose spool has not
 * been written for `STALE_SPOOL_MS` (a live recording's spool is flushed every second). A call
 * still marked live is then ended, with the reason `media node lost`. Those are moved to `processing`. Adding is
 * idempotent (job id per call), so running this twice, or on two nodes, queues each once.
 */
export async function recoverSpools(
  store: Store,
  queue: Queue<RecordingJobData>,
  dataDir: string,
  opts: { log?: Logger; now?: () => Date; isNodeAlive?: (nodeId: string) => Promise<boolean> } = {},
): Promise<RecoveryReport> {
  const nowMs = (opts.now?.() ?? new Date()).getTime();
  const requeued: Recording[] = [];
  const known = new Set<string>();
  // Listed in full before anything changes: a recording moved to `processing` below must not come round again.
  const spooled: CallWithRecording[] = [];
  for (const tenant of await store.tenants.list()) {
    for (const status of SPOOLED) {
      for await (const item of recordingsIn(store, tenant.id, status)) spooled.push(item);
    }
  }
  for (const { call, recording } of spooled) {
    if (!recording?.spoolPath) continue;
    known.add(path.resolve(recording.spoolPath));
    if (recording.status === 'failed' || !(await spoolExists(recording))) continue;
    // A paused spool may rightly sit unwritten for long (pause_behavior `skip` writes nothing),
    // so only the call's end, or its node's missing heartbeat, says a paused recording was abandoned.
    const nodeGone = call.status === 'live' && call.nodeId !== null && opts.isNodeAlive !== undefined && !(await opts.isNodeAlive(call.nodeId));
    const stranded =
      recording.status === 'processing' ||
      call.status === 'ended' ||
      nodeGone ||
      (recording.status === 'recording' && (await spoolAgeMs(recording, nowMs)) >= STALE_SPOOL_MS);
    if (!stranded) continue;
    if (call.status === 'live') {
      await store.calls.update(call.tenantId, call.id, { status: 'ended', endedAt: new Date(nowMs).toISOString(), endReason: 'media node lost' });
    }
    const processing = recording.status === 'processing' ? recording : (await store.recordings.update(recording.id, { status: 'processing' }))!;
    await requeueRecording(queue, processing);
    requeued.push(processing);
  }
  const orphanSpools = await orphans(path.join(dataDir, 'spool'), known);
  if (requeued.length > 0) opts.log?.info({ recordings: requeued.map((r) => r.id) }, 'recovered recordings from their spools');
  if (orphanSpools.length > 0) opts.log?.warn({ files: orphanSpools }, 'spool files without a recording (kept)');
  return { requeued, orphanSpools };
}

/** Spool files are `<uuid>.wav` (as the recorder names them); the worker's encoder output beside them is not one. */
const SPOOL_NAME = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.wav$/;

/** Spool files that no recording names. */
async function orphans(spoolDir: string, known: Set<string>): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(spoolDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter((name) => SPOOL_NAME.test(name))
    .map((name) => path.join(spoolDir, name))
    .filter((file) => !known.has(path.resolve(file)))
    .sort();
}
