import fs from 'node:fs/promises';
import path from 'node:path';
import { passesInTime } from './api/health.js';
import { requeueRecording, spoolExists, spoolNode } from './jobs.js';
import type { Logger } from './log.js';
import type { RecordingQueues } from './queue/recordings.js';
import type { ObjectStore } from './storage/types.js';
import type { CallWithRecording, Recording, RecordingStatus, Store } from './store/index.js';

/** A spool written within this long may belong to a call still live on some node. */
export const STALE_SPOOL_MS = 2 * 60_000;

/** Statuses whose recording still has (or should have) a spool. */
const SPOOLED: readonly RecordingStatus[] = ['recording', 'paused', 'processing', 'failed'];

/**
 * The error a recording is failed with while its spool cannot be reached: on a node that is down
 * (retried when that node is back), or shipped to a bucket that did not answer.
 */
export const SPOOL_UNREACHABLE = 'ERR_SPOOL_UNREACHABLE';
/** The error a recording is failed with when its bucket did not answer the upload. */
export const STORAGE_UNREACHABLE = 'ERR_STORAGE_UNREACHABLE';

/**
 * A recording failed because a bucket did not answer is queued again by the sweep whenever that
 * bucket answers again, for this long after the recording started; after that, `callrec jobs retry`.
 */
export const OUTAGE_RETRY_WINDOW_MS = 24 * 3600_000;

export interface RecoveryReport {
  /** Recordings whose job was (re)added (not those whose job was already waiting or running). */
  requeued: Recording[];
  /** Recordings failed because their spool is on a node that is down. */
  unreachable: Recording[];
  /** Recordings failed by a bucket outage, queued again now that the bucket answers. */
  outageRetried: Recording[];
  /**
   * Spool files under `$DATA_DIR/spool` no unfinished recording refers to; reported, and kept
   * unless a stored recording names the file (it was finalized elsewhere from its shipped copy).
   */
  orphanSpools: string[];
  /** Leftover spool files of recordings finalized elsewhere, deleted. */
  removedSpools: string[];
}

/** The buckets a failed recording needed, probed to see whether they answer again. */
export interface BucketProbes {
  /** The store the recording is uploaded to (the tenant's own bucket, or `STORAGE_URL`'s). */
  storageFor(recording: Recording): Promise<ObjectStore>;
  /** The store a `spool_url` names. */
  spoolAt(url: string): ObjectStore;
}

export interface RecoveryOptions {
  /** This node: spools found on its disk are finalized by its own queue. */
  nodeId: string;
  /** Whether a node holds its calls: it has a heartbeat (or, once started, it is this node). */
  isNodeAlive(nodeId: string): Promise<boolean>;
  /** When a node last beat, if known. */
  lastSeen?(nodeId: string): Promise<Date | null>;
  /** Without them, recordings failed by a bucket outage are left to `callrec jobs retry`. */
  buckets?: BucketProbes;
  /**
   * A periodic sweep's place in the unbounded lists (see `SWEEP_BATCH`); without it (recovery at
   * start) every recording is checked, and spool files no recording names are looked for.
   */
  batches?: SweepBatches;
  log?: Logger;
  now?: () => Date;
}

/**
 * Recordings a periodic sweep checks per tenant and status, of those whose number has no bound
 * (`processing`: a worker backlog; `failed`: a long bucket outage), continuing each sweep where
 * the last one stopped and starting over at the end: with thousands of them, a sweep's Redis and
 * disk work stays the same, and each is still looked at every few sweeps.
 */
export const SWEEP_BATCH = 200;

/** Where the periodic sweeps have got to in each (tenant, status) list; one per node. */
export class SweepBatches {
  readonly size: number;
  readonly #cursors = new Map<string, string>();

  constructor(size = SWEEP_BATCH) {
    this.size = size;
  }

  /** The next `size` recordings of the list, from where the last sweep stopped. */
  async *next(store: Store, tenantId: string, status: RecordingStatus): AsyncGenerator<CallWithRecording> {
    const key = `${tenantId}\u0000${status}`;
    const page = await store.calls.list(tenantId, { status }, this.#cursors.get(key), this.size);
    if (page.nextCursor) this.#cursors.set(key, page.nextCursor);
    else this.#cursors.delete(key);
    yield* page.items;
  }
}

/** Statuses whose recordings are all checked by every sweep: as many as the live calls. */
const LIVE: readonly RecordingStatus[] = ['recording', 'paused'];

async function* recordingsIn(
  store: Store,
  tenantId: string,
  status: RecordingStatus,
  batches: SweepBatches | undefined,
): AsyncGenerator<CallWithRecording> {
  if (batches && !LIVE.includes(status)) {
    yield* batches.next(store, tenantId, status);
    return;
  }
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

/** Whether the call holding a spooled recording is gone: ended, its node down, or (no node known) its spool stale. */
async function abandoned(
  { call, recording }: CallWithRecording & { recording: Recording },
  opts: RecoveryOptions,
  nowMs: number,
  local: boolean,
): Promise<boolean> {
  if (recording.status === 'processing' || call.status === 'ended') return true;
  if (call.nodeId !== null) return !(await opts.isNodeAlive(call.nodeId));
  // A paused spool may rightly sit unwritten for long (pause_behavior `skip` writes nothing).
  return local && recording.status === 'recording' && (await spoolAgeMs(recording, nowMs)) >= STALE_SPOOL_MS;
}

/**
 * Recovery, run at start and then every few seconds on every node (idempotent: a job id per
 * recording, so nodes racing queue each once). For each recording left half-way:
 * - its spool on this node's disk, or shipped to object storage: queued when its call is gone
 *   (ended, its node down, or its spool stale) or it is `processing` (a worker died), on the
 *   shared queue if the spool was shipped (unless its call died with the file on this disk),
 *   else on this node's queue; a recording failed
 *   because the spool was unreachable is queued again now that it is reachable;
 * - its spool elsewhere and its node down: failed with `ERR_SPOOL_UNREACHABLE` naming the node, so
 *   it shows rather than staying `recording`; that node finalizes it when it comes back.
 * A call still marked live whose node is gone is ended with the reason `media node lost`.
 */
export async function recoverSpools(
  store: Store,
  queues: RecordingQueues,
  dataDir: string,
  opts: RecoveryOptions,
): Promise<RecoveryReport> {
  const nowMs = (opts.now?.() ?? new Date()).getTime();
  const report: RecoveryReport = {
    requeued: [],
    unreachable: [],
    outageRetried: [],
    orphanSpools: [],
    removedSpools: [],
  };
  const outages = new OutageProbe(opts.buckets, nowMs);
  const known = new Set<string>();
  // Listed in full before anything changes: a recording moved to `processing` below must not come round again.
  const spooled: Array<CallWithRecording & { recording: Recording }> = [];
  for (const tenant of await store.tenants.list()) {
    for (const status of SPOOLED) {
      for await (const item of recordingsIn(store, tenant.id, status, opts.batches))
        if (item.recording?.spoolPath) spooled.push(item as CallWithRecording & { recording: Recording });
    }
  }
  // Asked once per node per sweep, however many of its calls are listed.
  const alive = new Map<string, Promise<boolean>>();
  const isNodeAlive = (nodeId: string) => alive.get(nodeId) ?? alive.set(nodeId, opts.isNodeAlive(nodeId)).get(nodeId)!;
  const sweepOpts = { ...opts, isNodeAlive };
  for (const item of spooled) {
    const { call, recording } = item;
    known.add(path.resolve(recording.spoolPath!));
    // Cheap checks first, so a sweep stats no spool it has nothing to do with: a live call on a
    // live node, or a recording failed for a reason that no returning node or bucket mends.
    if (
      recording.status === 'failed' &&
      !recording.error?.startsWith(SPOOL_UNREACHABLE) &&
      !recording.error?.startsWith(STORAGE_UNREACHABLE)
    )
      continue;
    if (
      LIVE.includes(recording.status) &&
      call.status !== 'ended' &&
      call.nodeId !== null &&
      (await isNodeAlive(call.nodeId))
    )
      continue;
    const local = await spoolExists(recording);
    if (recording.status === 'failed') {
      const nodeBack = local && recording.spoolUrl === null && recording.error?.startsWith(SPOOL_UNREACHABLE);
      const bucketBack =
        !nodeBack && (local || recording.spoolUrl !== null || call.nodeId !== null) && (await outages.over(recording));
      if (nodeBack || bucketBack) {
        const processing = (await store.recordings.update(recording.id, { status: 'processing', error: null }))!;
        if (await requeueRecording(queues, processing, spoolNode(recording, local ? opts.nodeId : call.nodeId)))
          (nodeBack ? report.requeued : report.outageRetried).push(processing);
      }
      continue;
    }
    if (!(await abandoned(item, sweepOpts, nowMs, local))) continue;
    // A shipped spool is reachable from every node, and finalized from the shared queue; but one
    // whose call died with its file on this disk is finalized here from the file, which also holds
    // the segment being filled: a node restarted on its DATA_DIR loses ~1 s per call, not a segment.
    if (local || recording.spoolUrl !== null) {
      const died = call.status === 'live' && recording.status !== 'processing';
      if (call.status === 'live') {
        // The call ended when its node was last seen: what the spool lacks after that is lost.
        const lastSeen = call.nodeId === null ? null : await opts.lastSeen?.(call.nodeId);
        await store.calls.update(call.tenantId, call.id, {
          status: 'ended',
          endedAt: (lastSeen ?? new Date(nowMs)).toISOString(),
          endReason: 'media node lost',
        });
      }
      const processing =
        recording.status === 'processing'
          ? recording
          : (await store.recordings.update(recording.id, { status: 'processing' }))!;
      if (await requeueRecording(queues, processing, local && died ? opts.nodeId : spoolNode(recording, opts.nodeId)))
        report.requeued.push(processing);
    } else if (call.nodeId !== null && call.nodeId !== opts.nodeId && !(await isNodeAlive(call.nodeId))) {
      if (call.status === 'live')
        await store.calls.update(call.tenantId, call.id, {
          status: 'ended',
          endedAt: new Date(nowMs).toISOString(),
          endReason: 'media node lost',
        });
      const error = `${SPOOL_UNREACHABLE}: the spool is on node ${call.nodeId}, which is down; it is finalized when that node is back`;
      report.unreachable.push((await store.recordings.update(recording.id, { status: 'failed', error }))!);
    }
  }
  // Only with every recording listed: a batch knows too few to tell an orphan.
  for (const file of opts.batches ? [] : await orphans(path.join(dataDir, 'spool'), known)) {
    // Its recording was finalized on another node from the shipped copy (this node died, or was
    // slower to take the job): the local copy is only plaintext audio lying about.
    const owner = await store.recordings.getBySpoolPath(file);
    if (owner?.status === 'ready' || owner?.status === 'deleted') {
      await fs.rm(file, { force: true });
      report.removedSpools.push(file);
    } else report.orphanSpools.push(file);
  }
  if (report.requeued.length > 0)
    opts.log?.info({ recordings: report.requeued.map((r) => r.id) }, 'recovered recordings from their spools');
  if (report.outageRetried.length > 0)
    opts.log?.info(
      { recordings: report.outageRetried.map((r) => r.id) },
      'retrying recordings failed by a bucket outage: the bucket answers again',
    );
  if (report.removedSpools.length > 0)
    opts.log?.info({ files: report.removedSpools }, 'deleted local copies of spools finalized elsewhere');
  if (report.unreachable.length > 0)
    opts.log?.warn(
      { recordings: report.unreachable.map((r) => r.id) },
      'recordings whose spool is on a node that is down',
    );
  return report;
}

/**
 * Whether a recording failed by a bucket outage may be retried now: within `OUTAGE_RETRY_WINDOW_MS`,
 * and the bucket it failed on answers. Each bucket is probed once per sweep.
 */
class OutageProbe {
  readonly #buckets: BucketProbes | undefined;
  readonly #nowMs: number;
  readonly #answers = new Map<string, Promise<boolean>>();

  constructor(buckets: BucketProbes | undefined, nowMs: number) {
    this.#buckets = buckets;
    this.#nowMs = nowMs;
  }

  async over(recording: Recording): Promise<boolean> {
    const buckets = this.#buckets;
    if (!buckets || this.#nowMs - Date.parse(recording.createdAt) > OUTAGE_RETRY_WINDOW_MS) return false;
    // A tenant bucket that cannot even be opened (its credentials do not unseal) is no outage that ends.
    if (recording.error?.startsWith(STORAGE_UNREACHABLE))
      return buckets.storageFor(recording).then(
        (store) => this.#answering(store),
        () => false,
      );
    if (recording.error?.startsWith(SPOOL_UNREACHABLE) && recording.spoolUrl !== null)
      return this.#answering(buckets.spoolAt(recording.spoolUrl));
    return false;
  }

  #answering(store: ObjectStore): Promise<boolean> {
    let answer = this.#answers.get(store.url);
    if (!answer) this.#answers.set(store.url, (answer = passesInTime(store.exists('.readyz'))));
    return answer;
  }
}

/**
 * Runs `recoverSpools` every `intervalMs` on a running node, so what a dead node left is
 * finalized without waiting for a restart. One sweep at a time; a failed sweep (Redis or the
 * database away) is logged and tried again at the next tick.
 */
export class RecoverySweep {
  readonly #run: () => Promise<RecoveryReport>;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  constructor(run: () => Promise<RecoveryReport>, log: Logger) {
    this.#run = run;
    this.#log = log;
  }

  start(intervalMs: number): void {
    this.#timer = setInterval(() => void this.sweep(), intervalMs);
    this.#timer.unref();
  }

  /** One sweep now (or the one under way). */
  sweep(): Promise<void> {
    this.#running ??= this.#run()
      .then(
        () => {},
        (err: Error) => this.#log.warn({ err }, 'recovery sweep failed; trying again at the next'),
      )
      .finally(() => (this.#running = null));
    return this.#running;
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#running;
  }
}

/** Spool files are `<uuid>.wav` (as the recorder names them); the worker's encoder output beside them is not one. */
const SPOOL_NAME = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.wav$/;

/** Spool files that no recording in `known` names. */
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
